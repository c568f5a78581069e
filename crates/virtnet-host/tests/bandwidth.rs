//! Real traffic control inside the test runner's private network namespace:
//! a veth pair between it (the host) and a guest namespace, shaped like a
//! TAP in both directions and measured with a small TCP sender/receiver;
//! and libvirt's floor hierarchy on a bridge.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use virtnet_host::bandwidth::{
    Bandwidth, BandwidthOps, DeviceShaping, FloorPool, Rate, Tc, ifb_name,
};
use virtnet_host::netlink::{AddressOptions, BridgeSpec, Netlink, NetlinkOps, NetnsTarget};
use virtnet_host::netns::Netns;

fn ready(test: &str) -> bool {
    common::may_touch_kernel(test) && common::have_program(test, "tc")
}

/// Whether the kernel can build what shaping needs; prints why not. Probed
/// once per test binary (the tests share one namespace).
fn kernel_has_shaping(test: &str, nl: &Netlink) -> bool {
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = PROBE.get_or_init(|| {
        nl.create_ifb("vtifbprobe")
            .map_err(|e| format!("kernel has no ifb devices: {e}"))?;
        nl.delete_link("vtifbprobe").unwrap();
        nl.create_veth("vtprobe0", "vtprobe1", None).unwrap();
        let htb = common::run_status(&[
            "tc", "qdisc", "add", "dev", "vtprobe0", "root", "handle", "1:", "htb",
        ]);
        let ingress = common::run_status(&["tc", "qdisc", "add", "dev", "vtprobe0", "ingress"]);
        let mirred = common::run_status(&[
            "tc", "filter", "add", "dev", "vtprobe0", "parent", "ffff:", "protocol", "all", "u32",
            "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "vtprobe1",
        ]);
        nl.delete_link("vtprobe0").unwrap();
        for (what, ok) in [
            ("htb", htb),
            ("the ingress qdisc", ingress),
            ("u32 with mirred", mirred),
        ] {
            if !ok {
                return Err(format!("kernel lacks {what}"));
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {test}: {why}");
            false
        }
    }
}

/// A guest namespace joined to the runner's namespace by a veth pair:
/// `host_dev` (here, `host_ip`) and `eth0` there (`guest_ip`).
struct Guest {
    ns: Netns,
    nl: Netlink,
}

fn guest_on_veth(nl: &Netlink, host_dev: &str, host_ip: Option<&str>, guest_ip: &str) -> Guest {
    let ns = Netns::new().unwrap();
    nl.create_veth(host_dev, "eth0", Some(NetnsTarget::Fd(ns.raw_fd())))
        .unwrap();
    if let Some(ip) = host_ip {
        nl.add_address(host_dev, ip.parse().unwrap(), AddressOptions::default())
            .unwrap();
    }
    nl.set_up(host_dev, true).unwrap();
    let gnl = Netlink::open_in(ns.file()).unwrap();
    gnl.add_address("eth0", guest_ip.parse().unwrap(), AddressOptions::default())
        .unwrap();
    gnl.set_up("eth0", true).unwrap();
    gnl.set_up("lo", true).unwrap();
    Guest { ns, nl: gnl }
}

/// Caps a socket's pacing rate (`SO_MAX_PACING_RATE`, bytes per second).
/// TCP then sizes its segmentation-offload bursts to about a millisecond of
/// that rate instead of up to 64 KiB, so a shaped flow arrives smoothly
/// enough to be measured over a couple of seconds.
fn cap_pacing(stream: &TcpStream, bytes_per_sec: u64) {
    use std::os::fd::AsRawFd;
    let value: libc::c_ulong = bytes_per_sec as libc::c_ulong;
    // SAFETY: setsockopt reads `size_of::<c_ulong>()` bytes from a live
    // local; the descriptor is an open TCP socket.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MAX_PACING_RATE,
            (&value as *const libc::c_ulong).cast(),
            std::mem::size_of::<libc::c_ulong>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "SO_MAX_PACING_RATE: {}",
        std::io::Error::last_os_error()
    );
}

/// Sends as fast as TCP allows (or at most `pace` bytes per second) from
/// `from` (a namespace, or this one) to a listener bound in `to` for
/// `warmup + window`, and returns what the receiver saw during `window`, in
/// bits per second.
fn throughput(
    from: Option<&Netns>,
    to: Option<&Netns>,
    addr: &str,
    window: Duration,
    pace: Option<u64>,
) -> f64 {
    let warmup = Duration::from_millis(700);
    let addr: SocketAddr = addr.parse().unwrap();
    let listener = match to {
        Some(ns) => ns.run(|| TcpListener::bind(addr)).unwrap().unwrap(),
        None => TcpListener::bind(addr).unwrap(),
    };
    let bound = listener.local_addr().unwrap();
    let stream = match from {
        Some(ns) => ns
            .run(|| TcpStream::connect_timeout(&bound, Duration::from_secs(5)))
            .unwrap()
            .unwrap(),
        None => TcpStream::connect_timeout(&bound, Duration::from_secs(5)).unwrap(),
    };
    if let Some(p) = pace {
        cap_pacing(&stream, p);
    }
    let (mut conn, _) = listener.accept().unwrap();
    let start = Instant::now();
    let stop_at = start + warmup + window + Duration::from_millis(300);
    let sender = std::thread::spawn(move || {
        let mut stream = stream;
        stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let chunk = vec![0x5au8; 64 * 1024];
        while Instant::now() < stop_at {
            match stream.write(&chunk) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
    });
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // The rate is the data after the first arrival in the window over the
    // time from that arrival to the last one.
    let mut buf = vec![0u8; 256 * 1024];
    let from_t = start + warmup;
    let until_t = from_t + window;
    let mut first: Option<Instant> = None;
    let mut last = start;
    let mut counted = 0u64;
    while Instant::now() < until_t {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let now = Instant::now();
                if now < from_t || now >= until_t {
                    continue;
                }
                match first {
                    None => first = Some(now),
                    Some(_) => {
                        counted += n as u64;
                        last = now;
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("receiving: {e}"),
        }
    }
    drop(conn);
    sender.join().unwrap();
    let elapsed = first
        .map(|f| last.saturating_duration_since(f))
        .unwrap_or_default();
    assert!(
        elapsed >= window / 2,
        "too few arrivals to measure ({counted} bytes over {elapsed:?})"
    );
    counted as f64 * 8.0 / elapsed.as_secs_f64()
}

fn mbit(bits: f64) -> String {
    format!("{:.2} Mbit/s", bits / 1e6)
}

#[test]
fn tap_like_shaping_limits_both_directions() {
    let test = "tap_like_shaping_limits_both_directions";
    if !ready(test) {
        return;
    }
    let nl = Arc::new(Netlink::open().unwrap());
    nl.set_up("lo", true).unwrap();
    if !kernel_has_shaping(test, &nl) {
        return;
    }
    let guest = guest_on_veth(&nl, "vtbw0", Some("10.77.0.1/24"), "10.77.0.2/24");
    let tc = Tc::new(nl.clone());
    let window = Duration::from_secs(2);

    // Unshaped: veth between namespaces runs at memory speed.
    let free_in = throughput(None, Some(&guest.ns), "10.77.0.2:0", window, None);
    let free_out = throughput(Some(&guest.ns), None, "10.77.0.1:0", window, None);
    eprintln!(
        "unshaped: to guest {}, from guest {}",
        mbit(free_in),
        mbit(free_out)
    );

    // 1 Mbit/s = 125 kilobytes per second, each direction. vtbw0 plays the
    // TAP: the guest is on its far side.
    let one_mbit = Rate::average(125);
    let bw = Bandwidth {
        inbound: Some(one_mbit),
        outbound: Some(one_mbit),
    };
    let started = Instant::now();
    tc.set(&bw.swapped("vtbw0")).unwrap();
    eprintln!(
        "set (egress htb + ifb + redirect) took {:?}; sfq: {:?}",
        started.elapsed(),
        tc.sfq_available()
    );
    let ifb = ifb_name("vtbw0");
    let ifb_link = nl.link(&ifb).unwrap().expect("ifb created");
    assert_eq!(ifb_link.kind.as_deref(), Some("ifb"));
    assert!(ifb_link.up);
    let classes = tc.classes("vtbw0").unwrap();
    assert_eq!(classes.len(), 1, "{classes:?}");
    assert_eq!(classes[0].rate_bits, 1_000_000);
    assert_eq!(tc.classes(&ifb).unwrap()[0].rate_bits, 1_000_000);

    // Paced at 1 MB/s (8 Mbit/s): well over the limit, in small bursts.
    let pace = Some(1_000_000);
    let shaped_in = throughput(None, Some(&guest.ns), "10.77.0.2:0", window, pace);
    let shaped_out = throughput(Some(&guest.ns), None, "10.77.0.1:0", window, pace);
    eprintln!(
        "shaped at 1 Mbit/s: to guest (TAP egress) {}, from guest (TAP ingress via {ifb}) {}",
        mbit(shaped_in),
        mbit(shaped_out)
    );
    for (what, rate, free) in [
        ("to guest", shaped_in, free_in),
        ("from guest", shaped_out, free_out),
    ] {
        assert!(rate <= 1.2e6, "{what}: {} over the limit", mbit(rate));
        assert!(rate >= 0.5e6, "{what}: {} far under the limit", mbit(rate));
        assert!(
            free >= 10.0 * 1.2e6 && free >= 10.0 * rate,
            "{what}: unshaped {} is not 10× the shaped {}",
            mbit(free),
            mbit(rate)
        );
    }

    // Setting again replaces (no "exists" errors), and clearing removes
    // qdiscs and the ifb.
    tc.set(&bw.swapped("vtbw0")).unwrap();
    let started = Instant::now();
    tc.clear("vtbw0").unwrap();
    eprintln!("clear took {:?}", started.elapsed());
    assert!(nl.link(&ifb).unwrap().is_none(), "ifb removed");
    assert!(tc.classes("vtbw0").unwrap().is_empty());
    let qdiscs = common::run(&["tc", "-j", "qdisc", "show", "dev", "vtbw0"]);
    assert!(
        !qdiscs.contains("htb") && !qdiscs.contains("ingress"),
        "{qdiscs}"
    );
    let again = throughput(None, Some(&guest.ns), "10.77.0.2:0", window, None);
    assert!(
        again >= 10.0 * 1.2e6,
        "after clear: {} (still shaped?)",
        mbit(again)
    );
    // Clearing twice, or a device that does not exist, is fine.
    tc.clear("vtbw0").unwrap();
    tc.clear("vtnodev0").unwrap();

    // Only the ingress side: the ifb outlives the device and clear still
    // finds it by name.
    tc.set(&DeviceShaping {
        device: "vtbw0".into(),
        egress: None,
        ingress: Some(one_mbit),
        floor_tree: false,
    })
    .unwrap();
    assert!(nl.link(&ifb).unwrap().is_some());
    nl.delete_link("vtbw0").unwrap();
    assert!(nl.link(&ifb).unwrap().is_some(), "ifb outlives its device");
    tc.clear("vtbw0").unwrap();
    assert!(nl.link(&ifb).unwrap().is_none());

    let err = tc.set(&bw.swapped("vtnodev0")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Cannot set bandwidth on 'vtnodev0': no such device"
    );
    drop(guest.nl);
}

#[test]
fn floor_classes_on_a_bridge() {
    let test = "floor_classes_on_a_bridge";
    if !ready(test) {
        return;
    }
    let nl = Arc::new(Netlink::open().unwrap());
    nl.set_up("lo", true).unwrap();
    if !kernel_has_shaping(test, &nl) {
        return;
    }
    nl.create_bridge(&BridgeSpec {
        name: "vtfbr0".into(),
        mac: None,
        mtu: None,
        stp: false,
        forward_delay: Duration::ZERO,
    })
    .unwrap();
    nl.add_address(
        "vtfbr0",
        "10.78.0.1/24".parse().unwrap(),
        AddressOptions::default(),
    )
    .unwrap();
    nl.set_up("vtfbr0", true).unwrap();
    // A guest behind a bridge port, with the MAC its floor class matches.
    let guest = guest_on_veth(&nl, "vtfp0", None, "10.78.0.2/24");
    nl.set_master("vtfp0", Some("vtfbr0")).unwrap();
    let guest_mac = guest.nl.link("eth0").unwrap().unwrap().mac.unwrap();

    let tc = Tc::new(nl.clone());
    // The network: inbound average 1000 kB/s, peak 2000 kB/s; shaped on
    // the bridge's egress (traffic towards the guests) with the floor tree.
    let inbound = Rate {
        average: 1000,
        peak: Some(2000),
        burst: None,
        floor: None,
    };
    let shaping = Bandwidth {
        inbound: Some(inbound),
        outbound: None,
    }
    .network_bridge("vtfbr0");
    tc.set(&shaping).unwrap();

    let mut pool = FloorPool::new("vtnet", "vtfbr0", Some(inbound), true);
    let floor = |f| Rate {
        floor: Some(f),
        ..Rate::default()
    };
    let other_mac = "52:54:00:00:00:99".parse().unwrap();
    let guest_class = pool
        .plug(&tc, guest_mac, Some(&floor(300)))
        .unwrap()
        .unwrap();
    let other_class = pool
        .plug(&tc, other_mac, Some(&floor(500)))
        .unwrap()
        .unwrap();
    assert_eq!((guest_class, other_class), (3, 4));
    // Overcommitting the peak is refused with libvirt's message and leaves
    // the classes alone.
    let err = pool.plug(&tc, other_mac, Some(&floor(1300))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Cannot plug '52:54:00:00:00:99' interface into 'vtfbr0' because new combined inbound floor=2100 would overcommit peak=2000 on network 'vtnet'"
    );

    let listing = common::run(&["tc", "-j", "class", "show", "dev", "vtfbr0"]);
    eprintln!("tc -j class show dev vtfbr0:\n{listing}");
    let classes = tc.classes("vtfbr0").unwrap();
    let by_id = |id: &str| {
        classes
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("class {id} in {classes:?}"))
            .clone()
    };
    assert_eq!(classes.len(), 4, "{classes:?}");
    let top = by_id("1:1");
    assert_eq!(
        (top.parent, top.rate_bits, top.ceil_bits),
        (None, 8_000_000, 16_000_000)
    );
    // Class 2 keeps what floors leave of the peak: 2000 - 800 kB/s.
    let rest = by_id("1:2");
    assert_eq!(rest.parent.as_deref(), Some("1:1"));
    assert_eq!(rest.rate_bits, 1200 * 8000);
    let g = by_id("1:3");
    assert_eq!((g.rate_bits, g.ceil_bits), (300 * 8000, 16_000_000));
    assert_eq!(by_id("1:4").rate_bits, 500 * 8000);
    let filters = common::run(&["tc", "filter", "show", "dev", "vtfbr0"]);
    assert!(
        filters.contains("800::3") && filters.contains("flowid 1:3"),
        "{filters}"
    );

    // Traffic to the guest's MAC lands in its class.
    let _ = throughput(
        None,
        Some(&guest.ns),
        "10.78.0.2:0",
        Duration::from_millis(500),
        None,
    );
    let stats = common::run(&[
        "tc", "-s", "class", "show", "dev", "vtfbr0", "classid", "1:3",
    ]);
    let sent: u64 = stats
        .split_whitespace()
        .skip_while(|t| *t != "Sent")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(sent > 10_000, "class 1:3 carried {sent} bytes: {stats}");

    // Updating a floor, then unplugging, puts class 2 back.
    let mut id = other_class;
    pool.update(
        &tc,
        other_mac,
        &mut id,
        Some(&floor(500)),
        Some(&floor(100)),
    )
    .unwrap();
    let classes = tc.classes("vtfbr0").unwrap();
    assert!(
        classes
            .iter()
            .any(|c| c.id == "1:4" && c.rate_bits == 100 * 8000)
    );
    assert!(
        classes
            .iter()
            .any(|c| c.id == "1:2" && c.rate_bits == 1600 * 8000)
    );
    pool.unplug(&tc, guest_class, 300).unwrap();
    pool.unplug(&tc, id, 100).unwrap();
    let classes = tc.classes("vtfbr0").unwrap();
    assert_eq!(classes.len(), 2, "{classes:?}");
    assert!(
        classes
            .iter()
            .any(|c| c.id == "1:2" && c.rate_bits == 2000 * 8000)
    );
    let filters = common::run(&["tc", "filter", "show", "dev", "vtfbr0"]);
    assert!(!filters.contains("800::3"), "{filters}");
    // Unplugging again is harmless.
    pool.unplug(&tc, guest_class, 0).unwrap();

    tc.clear("vtfbr0").unwrap();
    assert!(tc.classes("vtfbr0").unwrap().is_empty());
    nl.delete_link("vtfp0").unwrap();
    nl.delete_link("vtfbr0").unwrap();
}
