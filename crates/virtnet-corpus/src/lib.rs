//! Test support for the crates that check themselves against libvirt's
//! own test corpus (libvirt 11.3.0: networkxml2xml, networkxml2confdata,
//! networkxml2firewalldata, virnetworkportxml2xmldata).
//!
//! The corpus is not part of the repository. It is looked up in
//! `$VIRTNET_CONFORMANCE_DIR`, else in `../shared/conformance/libvirt-11.3.0`
//! beside the workspace; tests that need it and do not find it print
//! [`MISSING`] and pass. The case lists are the corpus manifest's, kept here
//! once so every consumer checks the same cases.

use std::path::{Path, PathBuf};

/// What a test prints when it skips because the corpus is absent.
pub const MISSING: &str =
    "skipped: libvirt conformance corpus not found (set VIRTNET_CONFORMANCE_DIR)";

/// `networkxml2xmlin` → `networkxml2xmlout` cases that must round-trip.
pub const NETWORKXML2XML: &[&str] = &[
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

/// The [`NETWORKXML2XML`] cases libvirt formats with the INACTIVE flag.
pub const NETWORKXML2XML_INACTIVE: &[&str] =
    &["passthrough-pf", "hostdev-pf", "hostdev-pf-driver-model"];

/// `networkxml2xmlin` definitions libvirt refuses, with its message.
pub const NETWORKXML2XML_MUST_FAIL: &[(&str, &str)] = &[
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

/// `networkxml2confdata` cases: network XML → dnsmasq conf (and hostsfile).
pub const NETWORKXML2CONF: &[&str] = &[
    "isolated-network",
    "netboot-network",
    "netboot-proxy-network",
    "netboot-tftp",
    "nat-network-dns-srv-record-minimal",
    "nat-network-name-with-quotes",
    "routed-network",
    "routed-network-no-dns",
    "open-network",
    "nat-network",
    "nat-network-dns-txt-record",
    "nat-network-dns-srv-record",
    "nat-network-dns-hosts",
    "nat-network-dns-forward-plain",
    "nat-network-dns-forwarders",
    "nat-network-dns-forwarder-no-resolv",
    "nat-network-dns-local-domain",
    "nat-network-mtu",
    "dhcp6-network",
    "dhcp6-nat-network",
    "dhcp6host-routed-network",
    "ptr-domains-auto",
    "dnsmasq-options",
    "leasetime-seconds",
    "leasetime-minutes",
    "leasetime-hours",
    "leasetime-infinite",
];

/// `virnetworkportxml2xmldata` cases: network ports that must round-trip.
pub const NETWORKPORT: &[&str] = &[
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

/// The corpus root (the directory holding `MANIFEST.md`), if present.
pub fn dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTNET_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/libvirt-11.3.0")
        }
    };
    dir.join("MANIFEST.md").is_file().then_some(dir)
}

/// One of the corpus's data directories (`networkxml2confdata`, ...), if
/// the corpus is present.
pub fn subdir(name: &str) -> Option<PathBuf> {
    dir().map(|d| d.join(name)).filter(|d| d.is_dir())
}

/// Follows the corpus's in-tree links: libvirt keeps some files as a
/// symbolic link that the corpus stores as text, a file whose whole
/// content is a relative path to another `.xml` file.
pub fn resolve(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..8 {
        match std::fs::read_to_string(&p) {
            Ok(s) => {
                let t = s.trim();
                if t.starts_with('<') || t.contains('\n') || !t.ends_with(".xml") {
                    break;
                }
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                p = base.join(t);
            }
            Err(_) => break,
        }
    }
    p
}

/// Reads a corpus file, following its in-tree links ([`resolve`]).
pub fn read_linked(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(resolve(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_followed_and_plain_files_read_as_they_are() {
        let tmp = std::env::temp_dir().join(format!("virtnet-corpus-{}", std::process::id()));
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("net.xml"), "<network/>\n").unwrap();
        std::fs::write(a.join("net.xml"), "../b/net.xml\n").unwrap();
        assert_eq!(read_linked(&a.join("net.xml")).unwrap(), "<network/>\n");
        assert_eq!(read_linked(&b.join("net.xml")).unwrap(), "<network/>\n");
        assert!(read_linked(&a.join("absent.xml")).is_err());
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn the_lists_match_the_manifest_when_the_corpus_is_present() {
        let Some(dir) = dir() else {
            eprintln!("{MISSING}");
            return;
        };
        let manifest = std::fs::read_to_string(dir.join("MANIFEST.md")).unwrap();
        let words: std::collections::HashSet<&str> = manifest
            .split(|c: char| c.is_whitespace() || ",():".contains(c))
            .collect();
        let all = NETWORKXML2XML
            .iter()
            .chain(NETWORKXML2CONF)
            .chain(NETWORKPORT)
            .chain(NETWORKXML2XML_MUST_FAIL.iter().map(|(n, _)| n));
        for name in all {
            assert!(words.contains(name), "{name} is not in MANIFEST.md");
        }
        for name in NETWORKXML2XML_INACTIVE {
            assert!(
                manifest.contains(&format!("{name} (INACTIVE)")),
                "{name} is not INACTIVE in MANIFEST.md"
            );
        }
        assert!(manifest.contains(&format!("Success cases ({})", NETWORKXML2XML.len())));
        assert!(manifest.contains(&format!(
            "Must fail to parse ({};",
            NETWORKXML2XML_MUST_FAIL.len()
        )));
        assert!(manifest.contains(&format!("Cases ({}):", NETWORKXML2CONF.len())));
        assert!(manifest.contains(&format!("Cases ({}): plug-none", NETWORKPORT.len())));
    }
}
