//! Self-tests of the measuring instruments: throughput with and without a
//! `tc tbf` limit, and loss counting of a continuous ping.

// Test code: a failing setup step should panic right there.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use virtnet_tests::ping::{ContinuousPing, ping};
use virtnet_tests::tcp::{ThroughputSink, measure_throughput};
use virtnet_tests::{Netns, Veth, or_skip, require};

/// a (10.220.0.1) <-veth-> b (10.220.0.2)
fn pair() -> (Netns, Netns, Veth) {
    let a = Netns::new("tpa").unwrap();
    let b = Netns::new("tpb").unwrap();
    let v = Veth::create(&a, "eth0", &b, "eth0").unwrap();
    a.ip(&["addr", "add", "10.220.0.1/24", "dev", "eth0"])
        .unwrap();
    b.ip(&["addr", "add", "10.220.0.2/24", "dev", "eth0"])
        .unwrap();
    (a, b, v)
}

fn b_addr() -> IpAddr {
    "10.220.0.2".parse().unwrap()
}

#[test]
fn throughput_with_and_without_tbf() {
    or_skip!(require(&["ip", "tc"]));
    let (a, b, _v) = pair();
    let sink = ThroughputSink::start(&b, SocketAddr::new(b_addr(), 0)).unwrap();

    let free = measure_throughput(&a, sink.addr(), Duration::from_secs(2)).unwrap();
    eprintln!(
        "unlimited veth: {:.0} Mbit/s ({free:?})",
        free.mbit_per_sec()
    );
    assert!(free.seconds > 1.5 && free.seconds < 3.0, "{free:?}");
    assert!(free.mbit_per_sec() > 200.0, "{free:?}");
    assert!(free.sent_bytes >= free.bytes);

    a.run_ok([
        "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "20mbit", "burst", "32kb",
        "latency", "100ms",
    ])
    .unwrap();
    let limited = measure_throughput(&a, sink.addr(), Duration::from_secs(3)).unwrap();
    eprintln!(
        "tbf 20mbit: {:.2} Mbit/s ({limited:?})",
        limited.mbit_per_sec()
    );
    let rate = limited.mbit_per_sec();
    assert!((15.0..=23.0).contains(&rate), "{limited:?}");

    // The sink keeps serving after a run.
    a.run_ok(["tc", "qdisc", "del", "dev", "eth0", "root"])
        .unwrap();
    let again = measure_throughput(&a, sink.addr(), Duration::from_secs(1)).unwrap();
    assert!(again.mbit_per_sec() > 200.0, "{again:?}");
}

#[test]
fn throughput_to_nowhere_fails() {
    or_skip!(require(&["ip"]));
    let (a, _b, _v) = pair();
    let nobody = SocketAddr::new(b_addr(), 9);
    assert!(measure_throughput(&a, nobody, Duration::from_secs(1)).is_err());
}

#[test]
fn counted_ping_reports_losses() {
    or_skip!(require(&["ip"]));
    let (a, _b, _v) = pair();
    let ok = ping(&a, b_addr(), 3, Duration::from_secs(10)).unwrap();
    assert_eq!(
        (ok.transmitted, ok.received, ok.lost()),
        (3, 3, 0),
        "{ok:?}"
    );
    let none = ping(
        &a,
        "10.220.0.99".parse().unwrap(),
        2,
        Duration::from_secs(3),
    )
    .unwrap();
    assert_eq!(none.received, 0, "{none:?}");
    assert!(none.transmitted >= 2, "{none:?}");
}

#[test]
fn continuous_ping_counts_loss_across_an_outage() {
    or_skip!(require(&["ip"]));
    let (a, b, _v) = pair();

    let mut clean = ContinuousPing::start(&a, b_addr(), Duration::from_millis(50)).unwrap();
    clean.wait_replies(10, Duration::from_secs(10)).unwrap();
    let clean = clean.stop().unwrap();
    assert!(clean.transmitted >= 10, "{clean:?}");
    assert_eq!(clean.lost(), 0, "{clean:?}");
    assert_eq!(clean.longest_gap(), 0);

    let mut p = ContinuousPing::start(&a, b_addr(), Duration::from_millis(50)).unwrap();
    p.wait_replies(5, Duration::from_secs(10)).unwrap();
    // b stops answering: requests reach it and are dropped.
    b.ip(&["addr", "del", "10.220.0.2/24", "dev", "eth0"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    b.ip(&["addr", "add", "10.220.0.2/24", "dev", "eth0"])
        .unwrap();
    let before = p.so_far().unwrap().received as usize;
    p.wait_replies(before + 5, Duration::from_secs(10)).unwrap();
    let s = p.stop().unwrap();
    eprintln!("outage: {s:?}");
    assert!(s.lost() >= 5, "{s:?}");
    assert!(s.longest_gap() >= 5, "{s:?}");
    assert!(s.received >= 10, "{s:?}");
}
