//! Self-test of the QEMU guest: it boots on a TAP enslaved to a hand-made
//! bridge, leases an address from a hand-run dnsmasq, runs its actions, and
//! takes commands on its console.
//!
//! Needs the guest image: run `tests/guest/build.sh` once (it downloads
//! Debian's cloud kernel); without it the test skips.

// Test code: a failing setup step should panic right there.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use virtnet_tests::dhcp::Dnsmasq;
use virtnet_tests::guest::{Action, GuestImage};
use virtnet_tests::tcp::{WhoamiServer, parse_whoami};
use virtnet_tests::{Bridge, Guest, GuestOpts, Netns, or_skip, require};

#[test]
fn guest_boots_leases_and_runs_actions() {
    or_skip!(require(&["ip", "dnsmasq", "qemu-system-x86_64"]));
    let t0 = Instant::now();
    let image = or_skip!(GuestImage::get());
    eprintln!("guest image ready in {:?}: {image:?}", t0.elapsed());

    let host = Netns::new("guesthost").unwrap();
    let br = Bridge::new(&host).unwrap();
    br.add_addr("10.230.0.1/24").unwrap();
    let dnsmasq = Dnsmasq::start(
        &host,
        br.name(),
        &[
            "--dhcp-range=10.230.0.100,10.230.0.150,1h",
            "--address=/web.guest.test/10.230.0.80",
        ],
    )
    .unwrap();
    let gw = Ipv4Addr::new(10, 230, 0, 1);
    let server = WhoamiServer::start(&host, SocketAddr::new(IpAddr::V4(gw), 0)).unwrap();

    let mut opts = GuestOpts::on_bridge(br.name())
        .action(Action::Ping(gw, 2))
        .action(Action::Tcp(server.addr()))
        .action(Action::Dns("web.guest.test".into(), None))
        .action(Action::Loop(gw));
    opts.netns = Some(host.clone());
    opts.image = Some(image);
    opts.hostname = Some("vm1".into());
    let t1 = Instant::now();
    let mut guest = Guest::boot(opts).unwrap();

    let lease = guest.wait_lease(Duration::from_secs(90)).unwrap();
    eprintln!("boot to lease: {:?} ({lease:?})", t1.elapsed());
    let console = guest.console();
    for marker in ["VIRTNET-INIT", "VIRTNET-LEASE"] {
        let line = console
            .lines()
            .find(|l| l.starts_with(marker))
            .unwrap_or_default();
        eprintln!("  {line}");
    }
    let o = lease.ip.octets();
    assert_eq!(&o[..3], &[10, 230, 0]);
    assert!((100..=150).contains(&o[3]), "{lease:?}");
    assert_eq!(lease.router, Some(gw));
    assert_eq!(lease.dns, vec![gw]);
    let leases = dnsmasq.leases();
    assert!(
        leases.contains(guest.mac()) && leases.contains("vm1"),
        "{leases}"
    );

    let ping = guest.wait_ping(gw, Duration::from_secs(30)).unwrap();
    assert_eq!((ping.transmitted, ping.received), (2, 2));
    let answer = guest
        .wait_tcp(server.addr(), Duration::from_secs(30))
        .unwrap();
    assert_eq!(
        parse_whoami(&answer).unwrap(),
        IpAddr::V4(lease.ip),
        "{answer}"
    );
    let addrs = guest
        .wait_dns("web.guest.test", Duration::from_secs(30))
        .unwrap();
    assert_eq!(addrs, vec![Ipv4Addr::new(10, 230, 0, 80)]);
    guest.wait_ready(Duration::from_secs(30)).unwrap();
    eprintln!("boot to ready: {:?}", t1.elapsed());

    let (code, out) = guest
        .exec("ip -4 -o addr show dev eth0", Duration::from_secs(20))
        .unwrap();
    assert_eq!(code, 0);
    assert!(out.contains(&format!("inet {}/24", lease.ip)), "{out}");
    let (code, out) = guest
        .exec("echo to-stderr >&2; exit 7", Duration::from_secs(20))
        .unwrap();
    assert_eq!((code, out.trim()), (7, "to-stderr"));

    // The host sees the guest.
    let stats =
        virtnet_tests::ping::ping(&host, IpAddr::V4(lease.ip), 2, Duration::from_secs(10)).unwrap();
    assert_eq!(stats.received, 2);

    let looped = guest.stop_loop().unwrap();
    assert!(looped.received > 0 && looped.lost() == 0, "{looped:?}");
    assert_eq!(guest.lease().unwrap(), lease);

    let tap = guest.tap_name().unwrap().to_string();
    assert!(host.link_exists(&tap));
    drop(guest);
    assert!(!host.link_exists(&tap), "the TAP goes with the guest");
}
