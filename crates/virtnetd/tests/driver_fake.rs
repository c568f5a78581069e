//! The driver against recording fakes of the host: lifecycle semantics and
//! messages, persistence, restart adoption, and rollback of a start that
//! fails at any step.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Fakes, TempDir, driver};
use virtnet_host::dnsmasq::DnsmasqSupervisor;
use virtnet_host::firewall::Firewall;
use virtnet_host::netlink::NetlinkOps;
use virtnetd::driver::XML_INACTIVE;
use virtnetd::status::SetupStep;

const NAT: &str = "<network><name>n1</name><uuid>11111111-2222-3333-4444-555555555555</uuid>\
    <forward mode='nat'/><bridge name='vnbr1'/>\
    <ip address='192.168.51.1' netmask='255.255.255.0'><dhcp>\
    <range start='192.168.51.2' end='192.168.51.254'/>\
    <host mac='52:54:00:00:00:01' name='g1' ip='192.168.51.10'/></dhcp></ip></network>";

#[test]
fn first_start_defines_and_autostarts_default() {
    let dir = TempDir::new("default");
    let fakes = Fakes::new();
    let d = driver(&dir, &fakes, true);
    let list = d.list_all(0);
    assert_eq!(list.len(), 1);
    let def = &list[0];
    assert_eq!(def.net.name, "default");
    assert!(def.active && def.persistent && def.autostart);
    let xml = d.xml_desc(&def.net, 0).unwrap();
    assert!(
        xml.contains("<bridge name='virbr0' stp='on' delay='0'/>"),
        "{xml}"
    );
    assert!(xml.contains("<forward mode='nat'>"), "{xml}");
    assert!(xml.contains("<range start='192.168.122.2' end='192.168.122.254'/>"));
    assert!(fakes.netlink.link("virbr0").unwrap().is_some());
    assert!(fakes.dnsmasq.pid("default").is_some());
    assert!(dir.paths().autostart_link("default").exists());

    // An empty but existing configuration directory is not a first start:
    // an undefined default network stays undefined.
    d.destroy(&def.net).unwrap();
    d.undefine(&def.net).unwrap();
    drop(d);
    let d = driver(&dir, &fakes, true);
    assert!(d.list_all(0).is_empty());
}

#[test]
fn default_network_moves_off_a_used_subnet() {
    let dir = TempDir::new("default-subnet");
    let fakes = Fakes::new();
    let idx = fakes.netlink.add_existing("eth0", None);
    assert!(idx > 0);
    fakes
        .netlink
        .add_route(&virtnet_host::netlink::RouteSpec {
            destination: virtnet_host::IpPrefix::new("192.168.122.0".parse().unwrap(), 24).unwrap(),
            gateway: None,
            device: Some("eth0".into()),
            metric: None,
        })
        .unwrap();
    let d = driver(&dir, &fakes, true);
    let net = d.lookup_by_name("default").unwrap();
    let xml = d.xml_desc(&net, 0).unwrap();
    assert!(xml.contains("address='192.168.123.1'"), "{xml}");
    assert!(d.info(&net).unwrap().active);
}

#[test]
fn lifecycle_messages_match_libvirt() {
    let dir = TempDir::new("lifecycle");
    let fakes = Fakes::new();
    let d = driver(&dir, &fakes, false);
    assert!(d.list_all(0).is_empty());

    let n1 = d.define_xml(NAT, 0).unwrap();
    assert_eq!(n1.name, "n1");
    assert!(dir.paths().network_config("n1").exists());
    let info = d.info(&n1).unwrap();
    assert!(!info.active && info.persistent && !info.autostart);

    let err = d.destroy(&n1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Requested operation is not valid: network 'n1' is not active"
    );

    d.create(&n1).unwrap();
    assert!(dir.paths().network_status("n1").exists());
    let err = d.create(&n1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Requested operation is not valid: network is already active"
    );

    // Same name, other UUID.
    let other = NAT.replace(
        "11111111-2222-3333-4444-555555555555",
        "21111111-2222-3333-4444-555555555555",
    );
    assert_eq!(
        d.define_xml(&other, 0).unwrap_err().to_string(),
        "operation failed: network 'n1' already exists with uuid 11111111-2222-3333-4444-555555555555"
    );
    // Same UUID, other name.
    let renamed = NAT.replace("<name>n1</name>", "<name>n2</name>");
    assert_eq!(
        d.define_xml(&renamed, 0).unwrap_err().to_string(),
        "operation failed: network 'n1' is already defined with uuid 11111111-2222-3333-4444-555555555555"
    );
    // Bridge taken by another network.
    let clash = "<network><name>n3</name><bridge name='vnbr1'/></network>";
    assert_eq!(
        d.define_xml(clash, 0).unwrap_err().to_string(),
        "internal error: bridge name 'vnbr1' already in use."
    );
    assert_eq!(
        d.lookup_by_name("nosuch").unwrap_err().to_string(),
        "Network not found: no network with matching name 'nosuch'"
    );

    // Redefining a running network changes the next start, not the live one.
    let changed = NAT.replace("192.168.51.254", "192.168.51.200");
    d.define_xml(&changed, 0).unwrap();
    assert!(d.xml_desc(&n1, 0).unwrap().contains("192.168.51.254"));
    assert!(
        d.xml_desc(&n1, XML_INACTIVE)
            .unwrap()
            .contains("192.168.51.200")
    );
    d.destroy(&n1).unwrap();
    assert!(!dir.paths().network_status("n1").exists());
    assert!(d.xml_desc(&n1, 0).unwrap().contains("192.168.51.200"));
    fakes.assert_clean("n1", "vnbr1");

    d.set_autostart(&n1, true).unwrap();
    assert!(d.autostart_of(&n1).unwrap());
    d.set_autostart(&n1, false).unwrap();
    assert!(!dir.paths().autostart_link("n1").exists());

    d.undefine(&n1).unwrap();
    assert!(d.list_all(0).is_empty());
    assert!(!dir.paths().network_config("n1").exists());
}

#[test]
fn transient_networks() {
    let dir = TempDir::new("transient");
    let fakes = Fakes::new();
    let d = driver(&dir, &fakes, false);
    let t = d
        .create_xml(
            "<network><name>t</name><ip address='10.7.0.1' prefix='24'/></network>",
            0,
        )
        .unwrap();
    let info = d.info(&t).unwrap();
    assert!(info.active && !info.persistent);
    assert_eq!(
        d.set_autostart(&t, true).unwrap_err().to_string(),
        "Requested operation is not valid: cannot set autostart for transient network"
    );
    assert_eq!(
        d.undefine(&t).unwrap_err().to_string(),
        "Requested operation is not valid: can't undefine transient network"
    );
    let bridge = d.bridge_name(&t).unwrap();
    assert_eq!(bridge, "virbr0");
    d.destroy(&t).unwrap();
    assert!(d.list_all(0).is_empty());
    fakes.assert_clean("t", &bridge);

    // An undefined running network keeps running, as a transient one.
    let n = d.define_xml(NAT, 0).unwrap();
    d.create(&n).unwrap();
    d.undefine(&n).unwrap();
    let info = d.info(&n).unwrap();
    assert!(info.active && !info.persistent);
    d.destroy(&n).unwrap();
    assert!(d.list_all(0).is_empty());
}

#[test]
fn list_filters() {
    use virtnet_rpc::protocol::list_networks::*;
    let dir = TempDir::new("filters");
    let fakes = Fakes::new();
    let d = driver(&dir, &fakes, false);
    let a = d.define_xml(NAT, 0).unwrap();
    d.create(&a).unwrap();
    d.set_autostart(&a, true).unwrap();
    d.define_xml("<network><name>b</name></network>", 0)
        .unwrap();
    d.create_xml("<network><name>c</name></network>", 0)
        .unwrap();
    let names =
        |flags| -> Vec<String> { d.list_all(flags).into_iter().map(|i| i.net.name).collect() };
    assert_eq!(names(0), ["b", "c", "n1"]);
    assert_eq!(names(ACTIVE), ["c", "n1"]);
    assert_eq!(names(INACTIVE), ["b"]);
    assert_eq!(names(ACTIVE | INACTIVE), ["b", "c", "n1"]);
    assert_eq!(names(PERSISTENT), ["b", "n1"]);
    assert_eq!(names(TRANSIENT), ["c"]);
    assert_eq!(names(AUTOSTART), ["n1"]);
    assert_eq!(names(NO_AUTOSTART | ACTIVE), ["c"]);
    assert_eq!(d.names(true, 10), ["c", "n1"]);
    assert_eq!(d.names(false, 10), ["b"]);
    assert_eq!(d.names(true, 1), ["c"]);
    d.destroy_all();
}

#[test]
fn networks_that_cannot_start_are_refused_without_side_effects() {
    let dir = TempDir::new("unsupported");
    let fakes = Fakes::new();
    let d = driver(&dir, &fakes, false);
    // A PF the host does not have.
    let n = d
        .define_xml(
            "<network><name>hd</name><forward mode='hostdev' managed='yes'>\
             <pf dev='eth9'/></forward></network>",
            0,
        )
        .unwrap();
    let err = d.create(&n).unwrap_err().to_string();
    assert!(
        err.starts_with("network 'hd': ") && err.contains("eth9"),
        "{err}"
    );
    assert!(!d.info(&n).unwrap().active);
    assert!(
        fakes
            .netlink
            .recorder
            .calls()
            .iter()
            .all(|c| !c.starts_with("create"))
    );
    // A macvtap network without devices.
    let m = d
        .define_xml(
            "<network><name>mv</name><forward mode='vepa'/></network>",
            0,
        )
        .unwrap();
    assert_eq!(
        d.create(&m).unwrap_err().to_string(),
        "internal error: network 'mv' uses a direct mode, but has no forward dev and no interface pool"
    );
    assert!(!d.info(&m).unwrap().active);

    // A host bridge that does not exist.
    let b = d
        .define_xml(
            "<network><name>hb</name><forward mode='bridge'/><bridge name='br9'/></network>",
            0,
        )
        .unwrap();
    assert_eq!(
        d.create(&b).unwrap_err().to_string(),
        "operation failed: network 'hb': host bridge 'br9' does not exist"
    );
    fakes.netlink.add_existing("br9", Some("bridge"));
    d.create(&b).unwrap();
    assert_eq!(d.setup_of(&b).unwrap(), Some(Vec::new()));
    d.destroy(&b).unwrap();
    assert!(
        fakes.netlink.link("br9").unwrap().is_some(),
        "host bridge must stay"
    );
}

#[test]
fn route_collision_is_refused() {
    let dir = TempDir::new("collision");
    let fakes = Fakes::new();
    fakes.netlink.add_existing("eth0", None);
    fakes
        .netlink
        .add_route(&virtnet_host::netlink::RouteSpec {
            destination: virtnet_host::IpPrefix::new("192.168.51.0".parse().unwrap(), 24).unwrap(),
            gateway: None,
            device: Some("eth0".into()),
            metric: None,
        })
        .unwrap();
    let d = driver(&dir, &fakes, false);
    let n = d.define_xml(NAT, 0).unwrap();
    assert_eq!(
        d.create(&n).unwrap_err().to_string(),
        "internal error: Network is already in use by interface eth0"
    );
    fakes.assert_clean("n1", "vnbr1");
}

/// Every host call a start makes, failed in turn: the start reports the
/// failure and nothing is left behind.
#[test]
fn failed_start_rolls_back_at_every_step() {
    let xml = NAT.replace(
        "</ip>",
        "</ip><ip family='ipv6' address='fd00:51::1' prefix='64'/>\
         <route address='10.99.0.0' prefix='16' gateway='192.168.51.9'/>",
    );
    // One successful start to learn the calls each fake gets.
    let counts = {
        let dir = TempDir::new("rollback-probe");
        let fakes = Fakes::new();
        let d = driver(&dir, &fakes, false);
        let n = d.define_xml(&xml, 0).unwrap();
        fakes.netlink.recorder.clear();
        fakes.sysctl.recorder.clear();
        fakes.firewall.recorder.clear();
        fakes.dnsmasq.recorder.clear();
        d.create(&n).unwrap();
        let steps = d.setup_of(&n).unwrap().unwrap();
        assert!(matches!(steps[0], SetupStep::Bridge { .. }));
        assert!(matches!(steps[1], SetupStep::Firewall { .. }));
        assert!(matches!(steps[2], SetupStep::Dnsmasq { .. }));
        [
            fakes.netlink.recorder.calls().len(),
            fakes.sysctl.recorder.calls().len(),
            fakes.firewall.recorder.calls().len(),
            fakes.dnsmasq.recorder.calls().len(),
        ]
    };
    assert!(counts.iter().all(|c| *c > 0), "{counts:?}");
    let mut cases = 0;
    for (fake, &count) in counts.iter().enumerate() {
        for call in 1..=count {
            let dir = TempDir::new("rollback");
            let fakes = Fakes::new();
            let d = driver(&dir, &fakes, false);
            let n = d.define_xml(&xml, 0).unwrap();
            fakes.netlink.recorder.clear();
            fakes.sysctl.recorder.clear();
            fakes.firewall.recorder.clear();
            fakes.dnsmasq.recorder.clear();
            match fake {
                0 => fakes.netlink.recorder.fail_at(call),
                1 => fakes.sysctl.recorder.fail_at(call),
                2 => fakes.firewall.recorder.fail_at(call),
                _ => fakes.dnsmasq.recorder.fail_at(call),
            }
            let res = d.create(&n);
            let what = format!("fake {fake} call {call}");
            match res {
                Err(_) => {
                    cases += 1;
                    assert!(!d.info(&n).unwrap().active, "{what}");
                    assert!(!dir.paths().network_status("n1").exists(), "{what}");
                    fakes.assert_clean("n1", "vnbr1");
                }
                // A failing read (e.g. the probe of the route table) may be
                // tolerated; then the network must be fully up.
                Ok(()) => {
                    assert!(d.info(&n).unwrap().active, "{what}");
                    d.destroy(&n).unwrap();
                    fakes.assert_clean("n1", "vnbr1");
                }
            }
        }
    }
    assert!(
        cases >= 8,
        "only {cases} injected failures made the start fail"
    );
}

#[test]
fn restart_adopts_running_networks_without_redoing_them() {
    let dir = TempDir::new("adopt");
    let fakes = Fakes::new();
    let d = driver(&dir, &fakes, false);
    let n = d.define_xml(NAT, 0).unwrap();
    d.create(&n).unwrap();
    let t = d
        .create_xml(
            "<network><name>t</name><ip address='10.8.0.1' prefix='24'/></network>",
            0,
        )
        .unwrap();
    let pid = fakes.dnsmasq.pid("n1").unwrap();
    drop(d);

    fakes.netlink.recorder.clear();
    fakes.firewall.recorder.clear();
    fakes.dnsmasq.recorder.clear();
    let d = driver(&dir, &fakes, false);
    assert!(d.info(&n).unwrap().active);
    let info = d.info(&t).unwrap();
    assert!(info.active && !info.persistent);
    assert!(
        fakes
            .netlink
            .recorder
            .calls()
            .iter()
            .all(|c| !c.starts_with("create")),
        "{:?}",
        fakes.netlink.recorder.calls()
    );
    assert!(
        fakes
            .firewall
            .recorder
            .calls()
            .iter()
            .all(|c| !c.starts_with("apply")),
        "{:?}",
        fakes.firewall.recorder.calls()
    );
    assert_eq!(fakes.dnsmasq.pid("n1"), Some(pid));
    assert!(
        fakes
            .dnsmasq
            .recorder
            .calls()
            .iter()
            .all(|c| !c.starts_with("start")),
        "{:?}",
        fakes.dnsmasq.recorder.calls()
    );

    // What vanished meanwhile is repaired.
    drop(d);
    fakes.dnsmasq.kill("n1");
    fakes.firewall.remove("t", "virbr0").unwrap();
    let d = driver(&dir, &fakes, false);
    assert!(fakes.dnsmasq.pid("n1").is_some_and(|p| p != pid));
    assert!(fakes.firewall.exists("t").unwrap());
    // A deleted bridge: the network is set up again.
    drop(d);
    fakes.netlink.delete_link("vnbr1").unwrap();
    let d = driver(&dir, &fakes, false);
    assert!(d.info(&n).unwrap().active);
    assert!(fakes.netlink.link("vnbr1").unwrap().is_some());
    d.destroy_all();
    fakes.assert_clean("n1", "vnbr1");
    fakes.assert_clean("t", "virbr0");
}

#[test]
fn dnsmasq_death_respawns_it() {
    let dir = TempDir::new("respawn");
    let fakes = Fakes::new();
    let d = driver(&dir, &fakes, false);
    let n = d.define_xml(NAT, 0).unwrap();
    d.create(&n).unwrap();
    let pid = fakes.dnsmasq.kill("n1").unwrap();
    d.on_dnsmasq_death(virtnet_host::dnsmasq::DnsmasqDeath {
        network: "n1".into(),
        pid,
    });
    let new = fakes.dnsmasq.pid("n1").unwrap();
    assert_ne!(new, pid);
    let steps = d.setup_of(&n).unwrap().unwrap();
    assert!(steps.contains(&SetupStep::Dnsmasq { pid: new }));
    // A stale report (old pid) changes nothing.
    d.on_dnsmasq_death(virtnet_host::dnsmasq::DnsmasqDeath {
        network: "n1".into(),
        pid,
    });
    assert_eq!(fakes.dnsmasq.pid("n1"), Some(new));
    d.destroy(&n).unwrap();
}
