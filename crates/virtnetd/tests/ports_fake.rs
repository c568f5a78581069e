//! Ports against recording fakes of the host: allocation as libvirt does it
//! (plug types, pools, exclusivity, floors), the devices virtnet makes for
//! them, their errors, and their life across network and daemon restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fakes, TempDir, driver};
use virtnet_conf::{PortDef, PortDeviceKind, PortPlug, Uuid};
use virtnet_host::netlink::NetlinkOps;
use virtnet_host::openvswitch::OpenvswitchOps;
use virtnet_host::sriov::PciAddress;
use virtnetd::driver::{Driver, NetRef};

struct World {
    f: Fakes,
    dir: TempDir,
}

impl World {
    fn new(tag: &str) -> World {
        World {
            f: Fakes::new(),
            dir: TempDir::new(&format!("ports-{tag}")),
        }
    }

    fn driver(&self) -> Driver {
        driver(&self.dir, &self.f, false)
    }

    fn has_link(&self, name: &str) -> bool {
        self.f.netlink.link(name).unwrap().is_some()
    }
}

fn port_xml(uuid: &str, extra: &str) -> String {
    format!(
        "<networkport xmlns:virtnet='http://virtnet.dev/schemas/networkport/1.0'>\
         <uuid>{uuid}</uuid><owner><name>vm1</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>{extra}</networkport>"
    )
}

const U1: &str = "11111111-0000-4000-8000-000000000001";
const U2: &str = "11111111-0000-4000-8000-000000000002";
const U3: &str = "11111111-0000-4000-8000-000000000003";

fn start(d: &Driver, xml: &str) -> NetRef {
    let n = d.define_xml(xml, 0).unwrap();
    d.create(&n).unwrap();
    n
}

fn port(d: &Driver, n: &NetRef, uuid: &str) -> PortDef {
    d.port(n, &Uuid::parse(uuid).unwrap()).unwrap()
}

#[test]
fn nat_network_ports_get_taps() {
    let w = World::new("nat");
    let d = w.driver();
    let n = start(
        &d,
        "<network><name>n1</name><forward mode='nat'/><bridge name='vnbr1'/>\
         <ip address='192.168.51.1' prefix='24'/><portgroup name='web'/></network>",
    );
    // No MAC given: one is assigned.
    d.port_create(&n, &port_xml(U1, "<group>web</group>"), 0)
        .unwrap();
    let p1 = port(&d, &n, U1);
    let mac = p1.mac.unwrap();
    assert_eq!(&mac.0[..3], &[0x52, 0x54, 0x00]);
    assert_eq!(
        p1.plug,
        PortPlug::Network {
            bridge: "vnbr1".into(),
            mac_table_manager: Default::default()
        }
    );
    let dev = p1.device.clone().unwrap();
    assert_eq!(dev.kind, Some(PortDeviceKind::Tap));
    assert_eq!(dev.name.as_deref(), Some("vnet0"));
    let link = w.f.netlink.link("vnet0").unwrap().unwrap();
    assert!(link.up);
    let bridge = w.f.netlink.link("vnbr1").unwrap().unwrap();
    assert_eq!(link.master, Some(bridge.index));
    // Host-side MAC: the guest's with 0xFE first.
    assert_eq!(link.mac.unwrap().0[0], 0xFE);
    assert_eq!(&link.mac.unwrap().0[1..], &mac.0[1..]);
    assert!(p1.to_xml().contains("<virtnet:device xmlns:virtnet='http://virtnet.dev/schemas/networkport/1.0' type='tap' name='vnet0'/>"), "{}", p1.to_xml());
    assert!(
        d.xml_desc(&n, 0)
            .unwrap()
            .starts_with("<network connections='1'>")
    );

    // Errors, each leaving nothing behind.
    let m = format!("<mac address='{mac}'/>");
    let err = |xml: String, flags: u32| d.port_create(&n, &xml, flags).unwrap_err().to_string();
    assert_eq!(
        err(port_xml(U1, ""), 0),
        format!("network port Network port with UUID {U1} already exists exists already")
    );
    assert_eq!(
        err(port_xml(U2, &m), 0),
        format!(
            "operation failed: MAC address {mac} is already in use by port {U1} on network 'n1'"
        )
    );
    assert_eq!(
        err(port_xml(U2, "<group>nosuch</group>"), 0),
        "unsupported configuration: network 'n1' has no portgroup named 'nosuch'"
    );
    assert_eq!(
        err(port_xml(U2, "<virtnet:device name='vnet0'/>"), 0),
        "operation failed: target device 'vnet0' already exists"
    );
    assert_eq!(
        err(port_xml(U2, "<plug type='network' bridge='vnbr1'/>"), 0),
        "invalid argument: Port reclaim not requested but plug type is not none"
    );
    assert_eq!(
        err(port_xml(U2, "<virtualport type='openvswitch'/>"), 0),
        "unsupported configuration: <virtualport type='openvswitch'> not supported for network 'n1' which uses IP forwarding"
    );
    assert!(!w.has_link("vnet1"));
    assert_eq!(d.ports(&n).unwrap().len(), 1);

    // A named, persistent port survives a restart of the network.
    d.port_create(
        &n,
        &port_xml(
            U2,
            "<virtnet:device name='guest0' user='107' persistent='yes'/>",
        ),
        0,
    )
    .unwrap();
    assert!(w.has_link("guest0"));
    d.destroy(&n).unwrap();
    assert!(!w.has_link("vnet0") && !w.has_link("guest0"));
    assert_eq!(
        d.ports(&n).unwrap_err().to_string(),
        "Requested operation is not valid: network 'n1' is not active"
    );
    d.create(&n).unwrap();
    let ports = d.ports(&n).unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].uuid.to_string(), U2);
    assert!(w.has_link("guest0"));
    assert_eq!(ports[0].device.as_ref().unwrap().user, Some(107));

    // Deleting removes the TAP and the persistent attachment.
    d.port_delete(&n, &ports[0].uuid).unwrap();
    d.settle();
    assert!(!w.has_link("guest0"));
    assert_eq!(
        d.port_delete(&n, &ports[0].uuid).unwrap_err().to_string(),
        format!("network port not found: Network port with UUID {U2} does not exist")
    );
    d.destroy(&n).unwrap();
    d.create(&n).unwrap();
    assert!(d.ports(&n).unwrap().is_empty());
    d.destroy_all();
}

#[test]
fn ports_survive_a_daemon_restart() {
    let w = World::new("restart");
    let d = w.driver();
    let n = start(
        &d,
        "<network><name>n1</name><bridge name='vnbr1'/><ip address='10.1.0.1' prefix='24'/></network>",
    );
    d.port_create(&n, &port_xml(U1, ""), 0).unwrap();
    d.port_create(&n, &port_xml(U2, ""), 0).unwrap();
    drop(d);
    // One TAP vanished while the daemon was down.
    w.f.netlink.delete_link("vnet1").unwrap();
    let d = w.driver();
    let ports = d.ports(&n).unwrap();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(ports[0].uuid.to_string(), U1);
    assert!(
        d.xml_desc(&n, 0)
            .unwrap()
            .starts_with("<network connections='1'>")
    );
    // The bridge vanished: the network is set up again and the TAP re-plugged.
    drop(d);
    w.f.netlink.delete_link("vnbr1").unwrap();
    let d = w.driver();
    let bridge = w.f.netlink.link("vnbr1").unwrap().unwrap();
    assert_eq!(
        w.f.netlink.link("vnet0").unwrap().unwrap().master,
        Some(bridge.index)
    );
    d.destroy_all();
    assert!(!w.has_link("vnet0"));
}

#[test]
fn macvtap_pool_least_used_and_passthrough_exclusive() {
    let w = World::new("direct");
    w.f.netlink.add_existing("eth1", None);
    w.f.netlink.add_existing("eth2", None);
    let d = w.driver();
    let n = start(
        &d,
        "<network><name>dir</name><forward mode='bridge'>\
         <interface dev='eth1'/><interface dev='eth2'/></forward></network>",
    );
    for u in [U1, U2, U3] {
        d.port_create(&n, &port_xml(u, ""), 0).unwrap();
    }
    let devs: Vec<String> = [U1, U2, U3]
        .iter()
        .map(|u| match port(&d, &n, u).plug {
            PortPlug::Direct { linkdev, .. } => linkdev,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(devs, ["eth1", "eth2", "eth1"]);
    let p = port(&d, &n, U1);
    let dev = p.device.unwrap();
    assert_eq!(dev.kind, Some(PortDeviceKind::Macvtap));
    assert_eq!(dev.name.as_deref(), Some("macvtap0"));
    assert!(dev.path.unwrap().starts_with("/dev/tap"));
    let xml = d.xml_desc(&n, 0).unwrap();
    assert!(
        xml.contains("<interface dev='eth1' connections='2'/>"),
        "{xml}"
    );
    d.destroy_all();
    assert!(!w.has_link("macvtap0"));

    let p = start(
        &d,
        "<network><name>pt</name><forward mode='passthrough'>\
         <interface dev='eth1'/></forward></network>",
    );
    d.port_create(&p, &port_xml(U1, ""), 0).unwrap();
    assert_eq!(
        d.port_create(&p, &port_xml(U2, ""), 0)
            .unwrap_err()
            .to_string(),
        "internal error: network 'pt' requires exclusive access to interfaces, but none are available"
    );
    d.port_delete(&p, &Uuid::parse(U1).unwrap()).unwrap();
    d.settle();
    d.port_create(&p, &port_xml(U2, ""), 0).unwrap();
    d.destroy_all();
}

#[test]
fn hostdev_virtual_functions_from_the_pf() {
    let w = World::new("hostdev");
    let addr = |f: u8| PciAddress {
        domain: 0,
        bus: 3,
        slot: 16,
        function: f,
    };
    w.f.sriov.add_pf(
        "enp3s0f0",
        PciAddress {
            domain: 0,
            bus: 3,
            slot: 0,
            function: 0,
        },
        &[(addr(1), None), (addr(3), None)],
    );
    let d = w.driver();
    let n = start(
        &d,
        "<network><name>hd</name><forward mode='hostdev' managed='yes'>\
         <pf dev='enp3s0f0'/></forward></network>",
    );
    let live = d.xml_desc(&n, 0).unwrap();
    assert!(
        live.contains(
            "<address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/>"
        ),
        "{live}"
    );
    assert!(!d.xml_desc(&n, 1).unwrap().contains("<address"));
    d.port_create(&n, &port_xml(U1, ""), 0).unwrap();
    d.port_create(&n, &port_xml(U2, ""), 0).unwrap();
    let p = port(&d, &n, U2);
    assert!(
        p.to_xml()
            .contains("<address domain='0x0000' bus='0x03' slot='0x10' function='0x3'/>"),
        "{}",
        p.to_xml()
    );
    assert_eq!(
        d.port_create(&n, &port_xml(U3, ""), 0)
            .unwrap_err()
            .to_string(),
        "internal error: network 'hd' requires exclusive access to interfaces, but none are available"
    );
    d.port_delete(&n, &Uuid::parse(U1).unwrap()).unwrap();
    d.settle();
    d.port_create(&n, &port_xml(U3, ""), 0).unwrap();
    assert!(port(&d, &n, U3).to_xml().contains("function='0x1'"));
    d.destroy_all();
}

#[test]
fn openvswitch_ports_get_vlans_and_external_ids() {
    let w = World::new("ovs");
    w.f.ovs.add_bridge("ovsbr0");
    let d = w.driver();
    let n = start(
        &d,
        "<network><name>ovs</name><forward mode='bridge'/><bridge name='ovsbr0'/>\
         <virtualport type='openvswitch'/>\
         <portgroup name='blue' default='yes'><vlan><tag id='10'/></vlan></portgroup>\
         <portgroup name='red'><vlan><tag id='20'/></vlan></portgroup></network>",
    );
    d.port_create(&n, &port_xml(U1, "<mac address='52:54:00:00:00:0a'/>"), 0)
        .unwrap();
    d.port_create(&n, &port_xml(U2, "<group>red</group>"), 0)
        .unwrap();
    let p = w.f.ovs.port("vnet0").unwrap().unwrap();
    assert_eq!(p.tag, Some(10));
    assert_eq!(
        p.external_ids.get("attached-mac").map(String::as_str),
        Some("52:54:00:00:00:0a")
    );
    assert_eq!(p.external_ids.get("iface-id").map(String::as_str), Some(U1));
    assert_eq!(
        p.external_ids.get("vm-id").map(String::as_str),
        Some("d54df46f-1ab5-4a22-8618-4560ef5fac2c")
    );
    assert_eq!(w.f.ovs.port("vnet1").unwrap().unwrap().tag, Some(20));
    d.port_delete(&n, &Uuid::parse(U1).unwrap()).unwrap();
    d.settle();
    assert!(w.f.ovs.port("vnet0").unwrap().is_none());
    d.destroy_all();
    assert!(w.f.ovs.port("vnet1").unwrap().is_none());

    let missing = d
        .define_xml(
            "<network><name>ovs2</name><forward mode='bridge'/><bridge name='nosuch'/>\
             <virtualport type='openvswitch'/></network>",
            0,
        )
        .unwrap();
    assert_eq!(
        d.create(&missing).unwrap_err().to_string(),
        "operation failed: network 'ovs2': Open vSwitch bridge 'nosuch' does not exist"
    );
}

#[test]
fn bandwidth_and_floors() {
    let w = World::new("bandwidth");
    let d = w.driver();
    let n = start(
        &d,
        "<network><name>q</name><bridge name='vnbrq'/><ip address='10.2.0.1' prefix='24'/>\
         <bandwidth><inbound average='1000'/><outbound average='1000'/></bandwidth></network>",
    );
    assert!(w.f.bandwidth.shaping("vnbrq").is_some());
    let bw = |floor: u32| {
        format!(
            "<bandwidth><inbound average='500' floor='{floor}'/><outbound average='100'/></bandwidth>"
        )
    };
    d.port_create(&n, &port_xml(U1, &bw(600)), 0).unwrap();
    let p = port(&d, &n, U1);
    assert_eq!(p.class_id, 3);
    let s = w.f.bandwidth.shaping("vnet0").unwrap();
    assert_eq!(s.egress.unwrap().average, 500);
    assert_eq!(s.ingress.unwrap().average, 100);
    let err = d.port_create(&n, &port_xml(U2, &bw(600)), 0).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Requested operation is not valid: Cannot plug '"),
        "{err}"
    );
    assert!(
        err.to_string().ends_with(
            "because new combined inbound floor=1200 would overcommit average=1000 on network 'q'"
        ),
        "{err}"
    );
    assert!(!w.has_link("vnet1"));
    d.port_delete(&n, &p.uuid).unwrap();
    d.settle();
    d.port_create(&n, &port_xml(U2, &bw(600)), 0).unwrap();
    // Changing a port's bandwidth reshapes it.
    let u2 = Uuid::parse(U2).unwrap();
    d.port_set_bandwidth(
        &n,
        &u2,
        Some(virtnet_conf::Bandwidth {
            inbound: Some(virtnet_conf::BandwidthRate {
                average: 125,
                ..Default::default()
            }),
            outbound: None,
        }),
    )
    .unwrap();
    let s = w.f.bandwidth.shaping("vnet0").unwrap();
    assert_eq!(s.egress.unwrap().average, 125);
    assert!(s.ingress.is_none());
    assert_eq!(port(&d, &n, U2).class_id, 0);
    d.destroy_all();
    assert!(w.f.bandwidth.shaping("vnbrq").is_none());
}

#[test]
fn a_port_whose_tap_vanished_is_released() {
    let w = World::new("vanish");
    let d = w.driver();
    let n = start(
        &d,
        "<network><name>n1</name><bridge name='vnbr1'/><ip address='10.3.0.1' prefix='24'/></network>",
    );
    d.port_create(&n, &port_xml(U1, ""), 0).unwrap();
    d.port_create(&n, &port_xml(U2, ""), 0).unwrap();
    // QEMU exited and its non-persistent TAP went with it.
    w.f.netlink.delete_link("vnet0").unwrap();
    let left: Vec<String> = d
        .ports(&n)
        .unwrap()
        .iter()
        .map(|p| p.uuid.to_string())
        .collect();
    assert_eq!(left, [U2]);
    assert!(
        d.xml_desc(&n, 0)
            .unwrap()
            .starts_with("<network connections='1'>")
    );
    d.destroy_all();
}

#[test]
fn a_port_created_without_uuid_or_mac_gets_both() {
    let w = World::new("nouuid");
    let d = w.driver();
    let n = start(
        &d,
        "<network><name>n1</name><forward mode='nat'/><bridge name='vnbr1'/>\
         <ip address='192.168.51.1' prefix='24'/></network>",
    );
    let bare = "<networkport><owner><name>vm1</name>\
                <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner></networkport>";
    let (_, u1) = d.port_create(&n, bare, 0).unwrap();
    let (_, u2) = d.port_create(&n, bare, 0).unwrap();
    assert_ne!(u1, Uuid::default());
    assert_ne!(u1, u2);
    // Version 4, variant 1, like the uuids libvirt generates.
    assert_eq!(u1.0[6] >> 4, 4);
    assert_eq!(u1.0[8] >> 6, 2);
    let p1 = d.port(&n, &u1).unwrap();
    assert_eq!(p1.uuid, u1);
    assert!(p1.mac.is_some());
    assert!(p1.to_xml().contains(&format!("<uuid>{u1}</uuid>")));
    assert_eq!(d.ports(&n).unwrap().len(), 2);
    // Reclaiming names a port that exists: it must say which.
    let reclaim = bare.replace(
        "</owner>",
        "</owner><mac address='52:54:00:00:00:0b'/><plug type='network' bridge='vnbr1'/>",
    );
    assert_eq!(
        d.port_create(&n, &reclaim, 1).unwrap_err().to_string(),
        "internal error: network port has no uuid"
    );
    assert_eq!(d.ports(&n).unwrap().len(), 2);
}
