//! Real netlink, inside the test runner's private network namespace: a
//! bridge with addresses and routes, veth pairs into sub-namespaces, bridge
//! port flags, checked through our own dumps and through `ip -j`.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use virtnet_host::netlink::{
    AddressOptions, BridgePortOptions, BridgeSpec, Netlink, NetlinkOps, NetnsTarget, RouteSpec,
    check_route_collision_with, wait_dad_finished,
};
use virtnet_host::netns::Netns;
use virtnet_host::sysctl::{ProcSysctl, Sysctl, accept_ra_key, disable_ipv6_key};
use virtnet_host::{Family, IpPrefix, MacAddr};

fn prefix(s: &str) -> IpPrefix {
    s.parse().unwrap()
}

#[test]
fn bridge_addresses_routes_and_ports() {
    if !common::may_touch_kernel("bridge_addresses_routes_and_ports") {
        return;
    }
    let nl = Netlink::open().unwrap();
    let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
    let spec = BridgeSpec {
        name: "vtbr0".into(),
        mac: Some(mac),
        mtu: Some(1400),
        stp: true,
        forward_delay: Duration::from_secs(2),
    };
    let started = Instant::now();
    nl.create_bridge(&spec).unwrap();
    eprintln!("bridge created in {:?}", started.elapsed());

    // Creating it again is refused with EEXIST and names the device.
    let err = nl.create_bridge(&spec).unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(err.to_string().contains("vtbr0"), "{err}");

    let link = nl.link("vtbr0").unwrap().expect("bridge exists");
    assert_eq!(link.kind.as_deref(), Some("bridge"));
    assert_eq!(link.mac, Some(mac));
    assert_eq!(link.mtu, 1400);
    assert!(!link.up);
    let battrs = link.bridge.expect("bridge attributes");
    assert!(battrs.stp);
    assert_eq!(battrs.forward_delay, Duration::from_secs(2));
    assert_eq!(
        nl.link_by_index(link.index).unwrap().map(|l| l.name),
        Some("vtbr0".to_string())
    );

    // Same facts through iproute2.
    let j = common::ip_json(&["-d", "link", "show", "dev", "vtbr0"]);
    assert_eq!(j[0]["address"], "52:54:00:12:34:56");
    assert_eq!(j[0]["mtu"], 1400);
    assert_eq!(j[0]["linkinfo"]["info_kind"], "bridge");
    assert_eq!(j[0]["linkinfo"]["info_data"]["stp_state"], 1);
    assert_eq!(j[0]["linkinfo"]["info_data"]["forward_delay"], 200);

    nl.set_up("vtbr0", true).unwrap();
    nl.set_mtu("vtbr0", 1500).unwrap();
    let other: MacAddr = "52:54:00:aa:bb:cc".parse().unwrap();
    nl.set_mac("vtbr0", other).unwrap();
    let link = nl.link("vtbr0").unwrap().unwrap();
    assert!(link.up);
    assert_eq!(link.mtu, 1500);
    assert_eq!(link.mac, Some(other));

    // Addresses, IPv4 with broadcast and IPv6 without DAD.
    nl.add_address(
        "vtbr0",
        prefix("192.168.200.1/24"),
        AddressOptions::default(),
    )
    .unwrap();
    nl.add_address(
        "vtbr0",
        prefix("2001:db8:ca2:2::1/64"),
        AddressOptions {
            nodad: true,
            ..Default::default()
        },
    )
    .unwrap();
    let err = nl
        .add_address(
            "vtbr0",
            prefix("192.168.200.1/24"),
            AddressOptions::default(),
        )
        .unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(err.to_string().contains("192.168.200.1/24"), "{err}");
    let addrs = nl.addresses(Some("vtbr0")).unwrap();
    assert!(
        addrs.iter().any(|a| a.prefix == prefix("192.168.200.1/24")),
        "{addrs:?}"
    );
    let v6 = addrs
        .iter()
        .find(|a| a.prefix == prefix("2001:db8:ca2:2::1/64"))
        .expect("IPv6 address listed");
    assert!(!v6.tentative, "nodad address must not be tentative");
    assert!(wait_dad_finished(&nl, "vtbr0", Duration::from_secs(5)).unwrap());
    let j = common::ip_json(&["addr", "show", "dev", "vtbr0"]);
    let infos = j[0]["addr_info"].as_array().unwrap();
    let v4 = infos
        .iter()
        .find(|a| a["local"] == "192.168.200.1")
        .unwrap();
    assert_eq!(v4["prefixlen"], 24);
    assert_eq!(v4["broadcast"], "192.168.200.255");

    // Static routes via a gateway on the bridge's subnet, with a metric.
    let route = RouteSpec {
        destination: prefix("10.77.0.0/16"),
        gateway: Some("192.168.200.2".parse::<IpAddr>().unwrap()),
        device: Some("vtbr0".into()),
        metric: Some(7),
    };
    nl.add_route(&route).unwrap();
    let route6 = RouteSpec {
        destination: prefix("2001:db8:99::/48"),
        gateway: Some("2001:db8:ca2:2::2".parse::<IpAddr>().unwrap()),
        device: Some("vtbr0".into()),
        metric: None,
    };
    nl.add_route(&route6).unwrap();
    let routes = nl.routes(Some(Family::V4)).unwrap();
    let r = routes
        .iter()
        .find(|r| r.destination == prefix("10.77.0.0/16"))
        .expect("route listed");
    assert_eq!(r.gateway, route.gateway);
    assert_eq!(r.metric, Some(7));
    assert_eq!(r.oif, Some(link.index));
    assert!(
        nl.routes(Some(Family::V6))
            .unwrap()
            .iter()
            .any(|r| r.destination == prefix("2001:db8:99::/48"))
    );
    let j = common::ip_json(&["route", "show", "10.77.0.0/16"]);
    assert_eq!(j[0]["gateway"], "192.168.200.2");
    assert_eq!(j[0]["dev"], "vtbr0");
    assert_eq!(j[0]["metric"], 7);

    // Route collision, libvirt's rule: same network and prefix on another
    // device collides; the network's own bridge does not count.
    let probe = [prefix("10.77.0.1/16")];
    let verdict = check_route_collision_with(&nl, "virbr9", &probe, &[]).unwrap();
    assert_eq!(
        verdict.map_err(|e| e.to_string()),
        Err("Network is already in use by interface vtbr0".to_string())
    );
    assert!(
        check_route_collision_with(&nl, "vtbr0", &probe, &[])
            .unwrap()
            .is_ok()
    );
    let inside = [prefix("10.77.5.1/24")];
    assert!(
        check_route_collision_with(&nl, "virbr9", &inside, &[])
            .unwrap()
            .is_ok()
    );

    nl.delete_route(&route).unwrap();
    nl.delete_route(&route6).unwrap();
    assert!(
        !nl.routes(Some(Family::V4))
            .unwrap()
            .iter()
            .any(|r| r.destination == prefix("10.77.0.0/16"))
    );
    nl.delete_address("vtbr0", prefix("192.168.200.1/24"))
        .unwrap();
    assert!(
        !nl.addresses(Some("vtbr0"))
            .unwrap()
            .iter()
            .any(|a| a.prefix == prefix("192.168.200.1/24"))
    );

    // A veth end as a bridge port, with isolation and no learning/flooding.
    nl.create_veth("vtp0", "vtp0-peer", None).unwrap();
    nl.set_master("vtp0", Some("vtbr0")).unwrap();
    nl.set_bridge_port(
        "vtp0",
        &BridgePortOptions {
            isolated: Some(true),
            learning: Some(false),
            unicast_flood: Some(false),
        },
    )
    .unwrap();
    let port = nl.link("vtp0").unwrap().unwrap();
    assert_eq!(port.master, Some(link.index));
    let pattrs = port.port.expect("bridge port attributes");
    assert_eq!(pattrs.isolated, Some(true));
    assert_eq!(pattrs.learning, Some(false));
    assert_eq!(pattrs.unicast_flood, Some(false));
    let j = common::ip_json(&["-d", "link", "show", "dev", "vtp0"]);
    assert_eq!(j[0]["master"], "vtbr0");
    assert_eq!(j[0]["linkinfo"]["info_slave_data"]["isolated"], true);
    assert_eq!(j[0]["linkinfo"]["info_slave_data"]["learning"], false);
    nl.set_master("vtp0", None).unwrap();

    // Per-device sysctls of this namespace: disabling IPv6 on the bridge
    // (as for a network without IPv6) drops its IPv6 addresses.
    let sys = ProcSysctl::default();
    sys.write(&accept_ra_key("vtbr0"), "0").unwrap();
    assert_eq!(sys.read(&accept_ra_key("vtbr0")).unwrap(), "0");
    sys.write(&disable_ipv6_key("vtbr0"), "1").unwrap();
    assert_eq!(sys.read(&disable_ipv6_key("vtbr0")).unwrap(), "1");
    assert!(
        !nl.addresses(Some("vtbr0"))
            .unwrap()
            .iter()
            .any(|a| a.prefix.family() == Family::V6)
    );
    assert_eq!(nl.link("vtp0").unwrap().unwrap().master, None);

    nl.delete_link("vtp0").unwrap();
    assert!(
        nl.link("vtp0-peer").unwrap().is_none(),
        "deleting one end removes the pair"
    );
    nl.delete_link("vtbr0").unwrap();
    assert!(nl.link("vtbr0").unwrap().is_none());
    let err = nl.delete_link("vtbr0").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.to_string(), "Cannot find device 'vtbr0'");
    assert!(nl.set_up("vtbr0", true).unwrap_err().is_not_found());
}

#[test]
fn veth_into_other_namespaces() {
    if !common::may_touch_kernel("veth_into_other_namespaces") {
        return;
    }
    let nl = Netlink::open().unwrap();
    let guest = Netns::new().unwrap();
    let guest2 = Netns::new().unwrap();

    // Peer created straight into a namespace (by fd).
    nl.create_veth("vtv0", "eth0", Some(NetnsTarget::Fd(guest.raw_fd())))
        .unwrap();
    assert!(
        nl.link("eth0").unwrap().is_none(),
        "peer is not in our namespace"
    );
    let inner = Netlink::open_in(guest.file()).unwrap();
    let eth0 = inner
        .link("eth0")
        .unwrap()
        .expect("peer inside the guest namespace");
    assert_eq!(eth0.kind.as_deref(), Some("veth"));
    inner.set_up("eth0", true).unwrap();
    inner
        .add_address(
            "eth0",
            prefix("192.168.201.2/24"),
            AddressOptions::default(),
        )
        .unwrap();
    // iproute2 run inside the namespace sees the same.
    let out = guest
        .output({
            let mut c = Command::new("ip");
            c.args(["-j", "addr", "show", "dev", "eth0"]);
            c
        })
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j[0]["addr_info"][0]["local"], "192.168.201.2");

    // A pair created here, one end moved afterwards (by pid of a holder
    // process that lives in the second namespace).
    nl.create_veth("vtv1", "vtv1-peer", None).unwrap();
    let mut holder = guest2
        .run(|| Command::new("sleep").arg("30").spawn())
        .unwrap()
        .unwrap();
    nl.move_to_netns("vtv1-peer", NetnsTarget::Pid(holder.id()))
        .unwrap();
    assert!(nl.link("vtv1-peer").unwrap().is_none());
    let inner2 = Netlink::open_in(guest2.file()).unwrap();
    assert!(inner2.link("vtv1-peer").unwrap().is_some());
    let _ = holder.kill();
    let _ = holder.wait();

    // Traffic across the first pair.
    nl.set_up("vtv0", true).unwrap();
    nl.add_address(
        "vtv0",
        prefix("192.168.201.1/24"),
        AddressOptions::default(),
    )
    .unwrap();
    let ping = guest
        .output({
            let mut c = Command::new("ping");
            c.args(["-c", "1", "-W", "5", "192.168.201.1"]);
            c
        })
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );

    nl.delete_link("vtv0").unwrap();
    nl.delete_link("vtv1").unwrap();
}

#[test]
fn errors_name_the_device() {
    if !common::may_touch_kernel("errors_name_the_device") {
        return;
    }
    let nl = Netlink::open().unwrap();
    let err = nl
        .add_address(
            "nosuchdev0",
            prefix("10.1.1.1/24"),
            AddressOptions::default(),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "Cannot find device 'nosuchdev0'");
    let err = nl.set_master("lo", Some("nosuchbr")).unwrap_err();
    assert!(err.to_string().contains("nosuchbr"), "{err}");
    let bad = BridgeSpec {
        name: "way-too-long-name0".into(),
        mac: None,
        mtu: None,
        stp: false,
        forward_delay: Duration::ZERO,
    };
    assert_eq!(
        nl.create_bridge(&bad).unwrap_err().to_string(),
        "invalid device name 'way-too-long-name0'"
    );
}

#[test]
fn many_links_are_deleted_together() {
    if !common::may_touch_kernel("many_links_are_deleted_together") {
        return;
    }
    // Its own namespace: a group deletion must see only these links.
    let ns = Netns::new().unwrap();
    ns.run(|| {
        let nl = Netlink::open().unwrap();
        nl.create_bridge(&BridgeSpec {
            name: "grpbr0".into(),
            mac: None,
            mtu: None,
            stp: false,
            forward_delay: Duration::ZERO,
        })
        .unwrap();
        let mut names = Vec::new();
        for i in 0..8 {
            let a = format!("grpa{i}");
            nl.create_veth(&a, &format!("grpb{i}"), None).unwrap();
            nl.set_master(&a, Some("grpbr0")).unwrap();
            names.push(a);
        }
        // One of them is already gone: skipped.
        nl.delete_link("grpa7").unwrap();
        let t = Instant::now();
        nl.delete_links(&names).unwrap();
        eprintln!("deleting 7 veth pairs together: {:?}", t.elapsed());
        for n in &names {
            assert!(nl.link(n).unwrap().is_none(), "{n} survived");
        }
        assert!(
            nl.link("grpbr0").unwrap().is_some(),
            "the bridge is not in the group"
        );
        // Nothing marked: nothing to do.
        nl.delete_links(&[]).unwrap();
        // A link marked by an interrupted call is removed by the next one.
        nl.create_veth("grpx0", "grpy0", None).unwrap();
        let status = Command::new("ip")
            .args(["link", "set", "grpx0", "group"])
            .arg(virtnet_host::netlink::RETIRED_LINK_GROUP.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        nl.delete_links(&[]).unwrap();
        assert!(nl.link("grpx0").unwrap().is_none());
        nl.delete_link("grpbr0").unwrap();
    })
    .unwrap();
}
