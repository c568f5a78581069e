//! libvirt's own network XML test corpus (11.3.0): every round trip must be
//! byte-identical and every must-fail case must be rejected.

mod common;

use virtnet_conf::{FormatFlags, NetworkDef, PortDef};

const SUCCESS: &[&str] = &[
    "dhcp6host-routed-network",
    "empty-allow-ipv6",
    "isolated-network",
    "routed-network",
    "routed-network-no-dns",
    "open-network",
    "nat-network",
    "netboot-network",
    "netboot-proxy-network",
    "netboot-tftp",
    "nat-network-dns-txt-record",
    "nat-network-dns-srv-record",
    "nat-network-dns-srv-records",
    "nat-network-dns-srv-record-minimal",
    "nat-network-dns-hosts",
    "nat-network-dns-forward-plain",
    "nat-network-dns-forwarders",
    "nat-network-dns-forwarder-no-resolv",
    "nat-network-forward-nat-ipv6",
    "nat-network-forward-nat-address",
    "nat-network-forward-nat-no-address",
    "nat-network-mtu",
    "8021Qbh-net",
    "direct-net",
    "host-bridge-net",
    "vepa-net",
    "bandwidth-network",
    "openvswitch-net",
    "passthrough-pf",
    "hostdev",
    "hostdev-pf",
    "hostdev-pf-driver-model",
    "passthrough-address-crash",
    "nat-network-explicit-flood",
    "host-bridge-no-flood",
    "metadata",
    "set-mtu",
    "dnsmasq-options",
    "leasetime-seconds",
    "leasetime-minutes",
    "leasetime-hours",
    "leasetime-infinite",
    "isolated-ports",
];

const INACTIVE: &[&str] = &["passthrough-pf", "hostdev-pf", "hostdev-pf-driver-model"];

/// Must-fail cases and the message libvirt gives for each.
const MUST_FAIL: &[(&str, &str)] = &[
    (
        "routed-network-no-dns-extra-elements",
        "XML error: Extra data in disabled network 'local'",
    ),
    (
        "open-network-with-forward-dev",
        "XML error: forward dev not allowed for network 'open' with forward mode='open'",
    ),
    (
        "hostdev-duplicate",
        "XML error: PCI device '0000:03:00.3' can only be listed once in network hostdev",
    ),
    (
        "passthrough-duplicate",
        "XML error: interface 'eth3' can only be listed once in network passthrough-duplicate",
    ),
];

const PORTS: &[&str] = &[
    "plug-none",
    "plug-bridge",
    "plug-bridge-basic",
    "plug-bridge-mactbl",
    "plug-direct",
    "plug-hostdev-pci",
    "plug-hostdev-pci-unmanaged",
    "plug-network",
    "plug-network-basic",
];

#[test]
fn networkxml2xml_round_trips() {
    let Some(dir) = common::conformance_dir() else {
        eprintln!("skipped: libvirt conformance corpus not found (set VIRTNET_CONFORMANCE_DIR)");
        return;
    };
    assert_eq!(SUCCESS.len(), 43);
    let mut failures = Vec::new();
    for name in SUCCESS {
        let input = common::read_linked(&dir.join("networkxml2xmlin").join(format!("{name}.xml")));
        let expected =
            common::read_linked(&dir.join("networkxml2xmlout").join(format!("{name}.xml")));
        let (input, expected) = match (input, expected) {
            (Ok(i), Ok(e)) => (i, e),
            (i, e) => {
                failures.push(format!(
                    "{name}: cannot read case: {:?} {:?}",
                    i.err(),
                    e.err()
                ));
                continue;
            }
        };
        let flags = FormatFlags {
            inactive: INACTIVE.contains(name),
        };
        match NetworkDef::parse(&input) {
            Ok(def) => {
                let got = def.to_xml(flags);
                if got != expected {
                    failures.push(format!(
                        "{name}: output differs\n{}",
                        common::diff(&expected, &got)
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: parse failed: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn networkxml2xml_must_fail() {
    let Some(dir) = common::conformance_dir() else {
        eprintln!("skipped: libvirt conformance corpus not found (set VIRTNET_CONFORMANCE_DIR)");
        return;
    };
    let mut failures = Vec::new();
    for (name, message) in MUST_FAIL {
        let input =
            match common::read_linked(&dir.join("networkxml2xmlin").join(format!("{name}.xml"))) {
                Ok(i) => i,
                Err(e) => {
                    failures.push(format!("{name}: cannot read case: {e}"));
                    continue;
                }
            };
        match NetworkDef::parse(&input) {
            Ok(_) => failures.push(format!("{name}: parsed but must fail")),
            Err(e) if e.to_string() == *message => {}
            Err(e) => failures.push(format!(
                "{name}: wrong error\n    want: {message}\n    got:  {e}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn networkport_round_trips() {
    let Some(dir) = common::conformance_dir() else {
        eprintln!("skipped: libvirt conformance corpus not found (set VIRTNET_CONFORMANCE_DIR)");
        return;
    };
    let mut failures = Vec::new();
    for name in PORTS {
        let input = match common::read_linked(
            &dir.join("virnetworkportxml2xmldata")
                .join(format!("{name}.xml")),
        ) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{name}: cannot read case: {e}"));
                continue;
            }
        };
        match PortDef::parse(&input) {
            Ok(def) => {
                let got = def.to_xml();
                if got != input {
                    failures.push(format!(
                        "{name}: output differs\n{}",
                        common::diff(&input, &got)
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: parse failed: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The dnsmasq corpus inputs are network definitions too: they must parse,
/// and formatting must be stable.
#[test]
fn networkxml2conf_inputs_parse() {
    let Some(dir) = common::conformance_dir() else {
        eprintln!("skipped: libvirt conformance corpus not found (set VIRTNET_CONFORMANCE_DIR)");
        return;
    };
    let mut failures = Vec::new();
    let mut count = 0;
    for sub in ["networkxml2confdata", "networkxml2firewalldata"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("xml") {
                continue;
            }
            count += 1;
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_string();
            let input = match common::read_linked(&p) {
                Ok(i) => i,
                Err(e) => {
                    failures.push(format!("{sub}/{name}: {e}"));
                    continue;
                }
            };
            match NetworkDef::parse(&input) {
                Ok(def) => {
                    let once = def.to_xml(FormatFlags::ACTIVE);
                    match NetworkDef::parse(&once) {
                        Ok(d2) => {
                            let twice = d2.to_xml(FormatFlags::ACTIVE);
                            if once != twice {
                                failures.push(format!(
                                    "{sub}/{name}: unstable\n{}",
                                    common::diff(&once, &twice)
                                ));
                            }
                        }
                        Err(e) => failures.push(format!("{sub}/{name}: reparse failed: {e}")),
                    }
                }
                Err(e) => failures.push(format!("{sub}/{name}: parse failed: {e}")),
            }
        }
    }
    eprintln!("checked {count} corpus inputs");
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
