//! Self-tests of the DHCP client and DNS client against a dnsmasq started
//! by hand on a plain Linux bridge.

// Test code: a failing setup step should panic right there.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use virtnet_tests::dhcp::{DhcpOpts, Dnsmasq, udhcpc};
use virtnet_tests::dns::{QType, RData, query, reverse_name};
use virtnet_tests::{Bridge, Netns, connect_to_bridge_in, or_skip, require};

const T: Duration = Duration::from_secs(10);

struct Lan {
    host: Netns,
    client: Netns,
    dnsmasq: Dnsmasq,
    _br: Bridge,
    _veth: virtnet_tests::Veth,
}

/// host: bridge 10.210.0.1/24 with dnsmasq; client: eth0 on the bridge.
fn lan(extra: &[&str]) -> Lan {
    let host = Netns::new("dhcphost").unwrap();
    let br = Bridge::new(&host).unwrap();
    br.add_addr("10.210.0.1/24").unwrap();
    let mut args = vec![
        "--dhcp-range=10.210.0.100,10.210.0.150,1h",
        "--domain=lan.test",
        "--address=/web.lan.test/10.210.0.80",
        "--ptr-record=80.0.210.10.in-addr.arpa,web.lan.test",
        "--txt-record=info.lan.test,hello world",
        "--srv-host=_http._tcp.lan.test,web.lan.test,80,1,2",
    ];
    args.extend_from_slice(extra);
    let dnsmasq = Dnsmasq::start(&host, br.name(), &args).unwrap();
    let client = Netns::new("dhcpclient").unwrap();
    let veth = connect_to_bridge_in(&host, br.name(), &client, "eth0").unwrap();
    Lan {
        host,
        client,
        dnsmasq,
        _br: br,
        _veth: veth,
    }
}

#[test]
fn udhcpc_leases_and_applies() {
    or_skip!(require(&["ip", "dnsmasq"]));
    let lan = lan(&[]);
    let opts = DhcpOpts {
        hostname: Some("client1".into()),
        ..Default::default()
    };
    let lease = udhcpc(&lan.client, "eth0", &opts).unwrap();
    let o = lease.ip.octets();
    assert_eq!(&o[..3], &[10, 210, 0], "{lease:?}");
    assert!((100..=150).contains(&o[3]), "{lease:?}");
    assert_eq!(lease.prefix, 24);
    assert_eq!(lease.router, Some(Ipv4Addr::new(10, 210, 0, 1)));
    assert_eq!(lease.dns, vec![Ipv4Addr::new(10, 210, 0, 1)]);
    assert_eq!(lease.domain.as_deref(), Some("lan.test"));
    assert_eq!(lease.lease_secs, Some(3600));
    assert_eq!(lan.client.ipv4_addrs("eth0").unwrap(), vec![(lease.ip, 24)]);
    let route = lan.client.ip(&["route", "show", "default"]).unwrap();
    assert!(route.contains("via 10.210.0.1"), "{route}");
    let leases = lan.dnsmasq.leases();
    assert!(
        leases.contains(&lease.ip.to_string()) && leases.contains("client1"),
        "{leases}"
    );
    // The host name was registered in DNS.
    let r = query(&lan.client, dns_server(), "client1.lan.test", QType::A, T).unwrap();
    assert_eq!(r.ipv4(), vec![lease.ip], "{r:?}");
}

#[test]
fn udhcpc_times_out_without_server() {
    or_skip!(require(&["ip"]));
    let a = Netns::new("nodhcp").unwrap();
    let b = Netns::new("nodhcpb").unwrap();
    let _v = virtnet_tests::Veth::create(&a, "eth0", &b, "eth0").unwrap();
    let t = std::time::Instant::now();
    let err = udhcpc(
        &a,
        "eth0",
        &DhcpOpts {
            timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(err.to_string().contains("DHCP lease on eth0"), "{err}");
}

fn dns_server() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 210, 0, 1)), 53)
}

#[test]
fn dns_queries_of_each_kind() {
    or_skip!(require(&["ip", "dnsmasq"]));
    let lan = lan(&[]);
    lan.client
        .ip(&["addr", "add", "10.210.0.9/24", "dev", "eth0"])
        .unwrap();
    let s = dns_server();

    let r = query(&lan.client, s, "web.lan.test", QType::A, T).unwrap();
    assert_eq!(r.rcode, 0);
    assert_eq!(r.ipv4(), vec![Ipv4Addr::new(10, 210, 0, 80)]);

    let rev = reverse_name("10.210.0.80".parse().unwrap());
    let r = query(&lan.client, s, &rev, QType::Ptr, T).unwrap();
    assert_eq!(r.names(), vec!["web.lan.test".to_string()], "{r:?}");

    let r = query(&lan.client, s, "info.lan.test", QType::Txt, T).unwrap();
    assert_eq!(
        r.answers[0].data,
        RData::Txt(vec!["hello world".into()]),
        "{r:?}"
    );

    let r = query(&lan.client, s, "_http._tcp.lan.test", QType::Srv, T).unwrap();
    assert_eq!(
        r.answers[0].data,
        RData::Srv {
            priority: 1,
            weight: 2,
            port: 80,
            target: "web.lan.test".into()
        },
        "{r:?}"
    );

    // dnsmasq answers names of its own domain it does not know with NXDOMAIN.
    let r = query(&lan.client, s, "nothing.lan.test", QType::A, T).unwrap();
    assert!(r.is_nxdomain() || r.answers.is_empty(), "{r:?}");

    // The server's log shows the queries came from the client.
    assert!(
        lan.dnsmasq
            .log()
            .contains("query[A] web.lan.test from 10.210.0.9")
    );
    drop(lan.host);
}

#[test]
fn dns_query_without_server_fails_in_time() {
    or_skip!(require(&["ip"]));
    let ns = Netns::new("nodns").unwrap();
    let t = std::time::Instant::now();
    let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53);
    let err = query(&ns, server, "x.test", QType::A, Duration::from_secs(1)).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let _ = err;
}
