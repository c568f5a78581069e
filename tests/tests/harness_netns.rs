//! Self-tests of namespaces, links, and the whoami instrument across a
//! routed (and then masqueraded) setup.

// Test code: a failing setup step should panic right there.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use virtnet_tests::netns::unique_ifname;
use virtnet_tests::ping::ping;
use virtnet_tests::tcp::{WhoamiServer, whoami};
use virtnet_tests::{
    Bridge, Netns, Veth, Wan, WanOpts, connect_to_bridge, connect_to_bridge_in, or_skip, require,
};

const T: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn netns_lifecycle_kills_what_runs_inside() {
    or_skip!(require(&["ip"]));
    let ns = Netns::new("life").unwrap();
    let name = ns.name().unwrap().to_string();
    assert!(std::path::Path::new(&format!("/run/netns/{name}")).exists());
    let out = ns.run_ok(["ip", "-o", "link"]).unwrap();
    assert!(
        out.stdout.contains("lo:") && out.stdout.contains("UP"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), 1, "a new namespace has only lo");

    // Something started in there without a Proc handle of ours.
    ns.sh("setsid sleep 60 >/dev/null 2>&1 < /dev/null &")
        .unwrap();
    let deadline = Instant::now() + T;
    while ns.pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids = ns.pids();
    assert_eq!(pids.len(), 1, "{pids:?}");

    // enter() runs code inside: its sockets belong to the namespace.
    let bound = ns
        .enter(|| std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().unwrap()))
        .unwrap()
        .unwrap();
    assert!(bound.port() > 0);

    let clone = ns.clone();
    drop(ns);
    assert!(
        std::path::Path::new(&format!("/run/netns/{name}")).exists(),
        "clone keeps it"
    );
    drop(clone);
    assert!(!std::path::Path::new(&format!("/run/netns/{name}")).exists());
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}/comm")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z"),
            "pid {pid} survived its namespace"
        );
    }
}

#[test]
fn run_in_namespace_times_out() {
    or_skip!(require(&["ip"]));
    let ns = Netns::new("slow").unwrap();
    let t = Instant::now();
    let err = ns
        .run_timeout(["sleep", "30"], Duration::from_millis(300))
        .unwrap_err();
    assert!(matches!(err, virtnet_tests::Error::Timeout { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn veth_between_namespaces() {
    or_skip!(require(&["ip"]));
    let a = Netns::new("va").unwrap();
    let b = Netns::new("vb").unwrap();
    let veth = Veth::create(&a, "eth0", &b, "eth0").unwrap();
    assert_eq!((veth.a_name(), veth.b_name()), ("eth0", "eth0"));
    a.ip(&["addr", "add", "10.200.0.1/24", "dev", "eth0"])
        .unwrap();
    b.ip(&["addr", "add", "10.200.0.2/24", "dev", "eth0"])
        .unwrap();
    assert_eq!(
        b.ipv4_addrs("eth0").unwrap(),
        vec![(Ipv4Addr::new(10, 200, 0, 2), 24)]
    );
    let stats = ping(&a, ip("10.200.0.2"), 2, T).unwrap();
    assert_eq!((stats.transmitted, stats.received), (2, 2), "{stats:?}");
    drop(veth);
    assert!(!a.link_exists("eth0"));
    assert!(!b.link_exists("eth0"));
}

#[test]
fn hosts_on_a_bridge_in_the_test_namespace() {
    or_skip!(require(&["ip"]));
    let here = Netns::current();
    let br = Bridge::new(&here).unwrap();
    br.add_addr("10.201.0.1/24").unwrap();
    let h1 = Netns::new("h1").unwrap();
    let h2 = Netns::new("h2").unwrap();
    let v1 = connect_to_bridge(&h1, br.name(), "eth0").unwrap();
    let _v2 = connect_to_bridge(&h2, br.name(), "eth0").unwrap();
    let master = here
        .ip(&["-o", "link", "show", "dev", v1.a_name()])
        .unwrap();
    assert!(
        master.contains(&format!("master {}", br.name())),
        "{master}"
    );
    h1.ip(&["addr", "add", "10.201.0.11/24", "dev", "eth0"])
        .unwrap();
    h2.ip(&["addr", "add", "10.201.0.12/24", "dev", "eth0"])
        .unwrap();
    let stats = ping(&h1, ip("10.201.0.12"), 2, T).unwrap();
    assert_eq!(stats.received, 2, "{stats:?}");
    let stats = ping(&h2, ip("10.201.0.1"), 2, T).unwrap();
    assert_eq!(stats.received, 2, "{stats:?}");
    let name = br.name().to_string();
    drop(br);
    assert!(!here.link_exists(&name));
}

/// lan (10.202.0.2) -> router -> wan (203.0.113.2): the whoami server in
/// the wan sees the lan's own address when routed, the router's wan
/// address once the router masquerades.
#[test]
fn whoami_tells_route_from_nat() {
    or_skip!(require(&["ip", "nft"]));
    let router = Netns::new("router").unwrap();
    let wan = Wan::create(&router, WanOpts::default()).unwrap();
    let lan = Netns::new("lan").unwrap();
    let br = Bridge::new(&router).unwrap();
    br.add_addr("10.202.0.1/24").unwrap();
    let _v = connect_to_bridge_in(&router, br.name(), &lan, "eth0").unwrap();
    lan.ip(&["addr", "add", "10.202.0.2/24", "dev", "eth0"])
        .unwrap();
    lan.ip(&["route", "add", "default", "via", "10.202.0.1"])
        .unwrap();
    router.sysctl("net.ipv4.ip_forward", "1").unwrap();

    let server =
        WhoamiServer::start(&wan.ns, SocketAddr::new(IpAddr::V4(wan.wan_addr), 0)).unwrap();
    assert_eq!(
        server.addr().ip(),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2))
    );
    let seen = whoami(&lan, server.addr(), T).unwrap();
    assert_eq!(seen.ip(), ip("10.202.0.2"), "routed");

    router
        .sh(&format!(
            "nft add table ip nat && \
             nft 'add chain ip nat post {{ type nat hook postrouting priority 100; }}' && \
             nft add rule ip nat post oifname {} masquerade",
            wan.host_if
        ))
        .unwrap();
    let seen = whoami(&lan, server.addr(), T).unwrap();
    assert_eq!(seen.ip(), IpAddr::V4(wan.host_addr), "masqueraded");
}

#[test]
fn wan_default_route_points_back_to_the_host() {
    or_skip!(require(&["ip"]));
    let host = Netns::new("host").unwrap();
    let wan = Wan::create(&host, WanOpts::default()).unwrap();
    let route = wan.ns.ip(&["route", "show", "default"]).unwrap();
    assert!(route.contains("via 203.0.113.1 dev eth0"), "{route}");
    let stats = ping(&wan.ns, IpAddr::V4(wan.host_addr), 1, T).unwrap();
    assert_eq!(stats.received, 1);
    assert!(host.link_exists(&wan.host_if));
}

#[test]
fn unique_names_fit_the_kernel_limit() {
    let a = unique_ifname("averylongprefix");
    let b = unique_ifname("averylongprefix");
    assert_ne!(a, b);
    assert!(a.len() <= 15, "{a}");
}
