//! Runtime state that only an active network has: connection counts and
//! the pool of devices found behind a `<pf>`. `net-dumpxml` shows them,
//! `net-dumpxml --inactive` (and the saved config) does not.

use virtnet_conf::{FormatFlags, ForwardDevice, ForwardIfDef, NetworkDef, PciAddress};

#[test]
fn passthrough_pf_expanded_when_active() {
    let mut def = NetworkDef::parse(
        "<network><name>pf</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>\
         <forward mode='passthrough'><pf dev='eth0'/></forward></network>",
    )
    .unwrap();
    def.connections = 2;
    def.forward.pfs[0].connections = 2;
    for (dev, connections) in [("eth0v0", 1), ("eth0v1", 1), ("eth0v2", 0)] {
        def.forward.ifs.push(ForwardIfDef {
            device: ForwardDevice::Netdev(dev.into()),
            connections,
        });
    }
    assert_eq!(
        def.to_xml(FormatFlags::ACTIVE),
        "<network connections='2'>
  <name>pf</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward mode='passthrough'>
    <pf dev='eth0'/>
    <interface dev='eth0v0' connections='1'/>
    <interface dev='eth0v1' connections='1'/>
    <interface dev='eth0v2'/>
  </forward>
</network>
"
    );
    assert_eq!(
        def.to_xml(FormatFlags::INACTIVE),
        "<network>
  <name>pf</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward mode='passthrough'>
    <pf dev='eth0'/>
  </forward>
</network>
"
    );
}

#[test]
fn hostdev_pf_expanded_to_addresses_when_active() {
    let mut def = NetworkDef::parse(
        "<network><name>vf</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>\
         <forward mode='hostdev' managed='yes'><pf dev='eth2'/></forward></network>",
    )
    .unwrap();
    def.connections = 1;
    def.forward.ifs.push(ForwardIfDef {
        device: ForwardDevice::Pci(PciAddress {
            domain: 0,
            bus: 3,
            slot: 0x10,
            function: 1,
        }),
        connections: 1,
    });
    let active = def.to_xml(FormatFlags::ACTIVE);
    assert!(
        active.starts_with("<network connections='1'>\n"),
        "{active}"
    );
    assert!(
        active.contains(
            "    <pf dev='eth2'/>\n    <address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/>\n"
        ),
        "{active}"
    );
    let inactive = def.to_xml(FormatFlags::INACTIVE);
    assert!(!inactive.contains("<address"), "{inactive}");
    assert!(!inactive.contains("connections"), "{inactive}");
}

#[test]
fn interface_pool_connections_shown_only_when_active() {
    let mut def = NetworkDef::parse(
        "<network><name>br</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>\
         <forward mode='bridge'><interface dev='eth1'/><interface dev='eth2'/></forward></network>",
    )
    .unwrap();
    def.connections = 3;
    def.forward.ifs[0].connections = 2;
    def.forward.ifs[1].connections = 1;
    let active = def.to_xml(FormatFlags::ACTIVE);
    assert!(
        active.contains("<forward dev='eth1' mode='bridge'>"),
        "{active}"
    );
    assert!(
        active.contains("<interface dev='eth1' connections='2'/>"),
        "{active}"
    );
    assert!(
        active.contains("<interface dev='eth2' connections='1'/>"),
        "{active}"
    );
    let inactive = def.to_xml(FormatFlags::INACTIVE);
    assert!(inactive.contains("<interface dev='eth1'/>"), "{inactive}");
    assert!(inactive.starts_with("<network>\n"), "{inactive}");
}

#[test]
fn status_view_parses_back_with_runtime_state() {
    let mut def = NetworkDef::parse(
        "<network><name>pf</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>\
         <forward mode='passthrough'><pf dev='eth0'/></forward></network>",
    )
    .unwrap();
    def.connections = 2;
    for (dev, connections) in [("eth0v0", 2), ("eth0v1", 0)] {
        def.forward.ifs.push(ForwardIfDef {
            device: ForwardDevice::Netdev(dev.into()),
            connections,
        });
    }
    let live = def.to_xml(FormatFlags::ACTIVE);
    let back = NetworkDef::parse_status(&live).unwrap();
    assert_eq!(back, def);
    assert_eq!(back.to_xml(FormatFlags::ACTIVE), live);
    // The plain parser behaves like libvirt's: runtime state is not read.
    let plain = NetworkDef::parse(&live).unwrap();
    assert_eq!(plain.connections, 0);
    assert!(plain.forward.pfs.is_empty());

    let mut nat = NetworkDef::parse(
        "<network><name>n</name><forward mode='nat' dev='eth1'/><ip address='10.0.0.1' prefix='8'/></network>",
    )
    .unwrap();
    nat.connections = 1;
    nat.forward.ifs[0].connections = 1;
    let live = nat.to_xml(FormatFlags::ACTIVE);
    assert!(
        live.contains("<interface dev='eth1' connections='1'/>"),
        "{live}"
    );
    assert_eq!(NetworkDef::parse_status(&live).unwrap(), nat);
}
