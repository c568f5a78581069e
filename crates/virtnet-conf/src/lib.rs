//! libvirt's Network and networkport XML for virtnet.
//!
//! This crate is pure (no I/O). It holds a typed model of a libvirt network
//! definition ([`NetworkDef`], field names after libvirt's `virNetworkDef`,
//! `virNetworkIPDef`, `virNetworkDHCPHostDef`, `virNetworkDNSDef`, …) and of
//! a network port ([`PortDef`]); a parser that applies the checks libvirt
//! makes, in libvirt's order and with libvirt's messages; and a formatter
//! whose output is byte-identical to `virsh net-dumpxml` (checked against
//! libvirt 11.3.0's own test corpus).
//!
//! # Defining a network
//!
//! What `net-define` / `net-create` do, step by step:
//!
//! ```
//! use virtnet_conf::{defaults, FormatFlags, NetworkDef};
//!
//! let xml = "<network><name>lab</name><forward mode='nat'/>\
//!            <ip address='192.168.50.1' prefix='24'/></network>";
//! // 1. parse, with the parse-time checks (virNetworkDefParseString)
//! let mut def = NetworkDef::parse(xml)?;
//! // 2. fill in uuid, MAC and bridge name, then the define-time checks
//! //    (networkValidate); the caller says which bridge names are taken
//! let taken = ["virbr0"];
//! defaults::prepare_define(&mut def, &|name| taken.contains(&name), &mut rand::rng())?;
//! assert_eq!(def.bridge.as_deref(), Some("virbr1"));
//! // 3. the persistent config, as libvirt saves it
//! let config = def.to_xml(FormatFlags::INACTIVE);
//! assert!(config.contains("<bridge name='virbr1' stp='on' delay='0'/>"));
//! # Ok::<(), virtnet_conf::Error>(())
//! ```
//!
//! # API
//!
//! - [`NetworkDef::parse`] / [`NetworkDef::to_xml`] with [`FormatFlags`]
//!   (`inactive` hides runtime state: connection counts and the devices a
//!   `<pf>` was expanded to); [`NetworkDef::parse_status`] reads that
//!   runtime state back from the live view.
//! - [`NetworkDef::validate`]: libvirt's define-time rules (elements each
//!   forward mode allows, one DHCP `<ip>` per family, vlan/portgroup/
//!   bandwidth rules) plus bridge name length, MTU range, repeated vlan
//!   tags, static DHCP hosts inside their subnet and unique.
//! - [`defaults`]: UUID, `52:54:00:xx:xx:xx` MAC, first free `virbrN` or
//!   `%d`-template bridge name; random source and names in use passed in.
//! - [`PortDef::parse`] / [`PortDef::to_xml`]: the networkport XML.
//! - [`NetworkDef::metadata_get`] / [`NetworkDef::metadata_set`] with
//!   [`MetadataType`]: `net-desc` and `net-metadata`.
//! - [`NetworkDef::update_section`] with [`UpdateCommand`] and
//!   [`UpdateSection`]: `net-update`, like `virNetworkDefUpdateSection`
//!   (DNS host and TXT records can also be modified, as in newer libvirt).
//! - Helpers: [`ForwardMode`] with libvirt's names,
//!   [`NetworkDef::ips_of`] / [`NetworkDef::ip_by_index`] by family,
//!   [`IpDef::prefix_len`], [`IpDef::netmask_addr`], [`IpDef::network`],
//!   [`IpDef::contains`], [`addr`] (parsing like glibc, printing like
//!   `getnameinfo`), [`VirtPortProfile::merge3`], [`NetworkDef::port_group`].
//! - [`Error`]: [`Error::kind`] is an [`ErrorKind`] whose discriminant is
//!   libvirt's `virErrorNumber` (`XmlError` = 27, `ConfigUnsupported` = 67,
//!   …), [`Error::domain`] the `virErrorDomain`, and `Display` the full
//!   message with libvirt's prefix (`XML error: …`, `unsupported
//!   configuration: …`, `internal error: …`).
//!
//! # Where virtnet differs from libvirt
//!
//! Only where libvirt's output could not be read back or its checks come
//! too late: attribute values keep tab/newline/CR as character references;
//! a repeated native vlan tag is marked once; validation also refuses bridge
//! names over 15 bytes, MTUs outside 68–65535, repeated vlan tags, and
//! static DHCP hosts outside their subnet or repeating a MAC, IP, DUID or
//! name. Input is untrusted: documents over [`MAX_INPUT_BYTES`], with more
//! than [`MAX_NODES`] nodes or deeper than [`MAX_DEPTH`] are refused, and a
//! document type declaration may not declare entities (libvirt expands
//! them; virtnet never does).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod defaults;
pub mod error;
mod format;
pub mod metadata;
pub mod model;
pub mod netdev;
mod parse;
pub mod port;
pub mod update;
pub mod validate;
mod xml;
mod xmlerror;

pub use addr::{MacAddr, PciAddress, Uuid};
pub use error::{Error, ErrorDomain, ErrorKind, Result};
pub use format::FormatFlags;
pub use metadata::{MetadataType, NsDecl, XmlAttr, XmlElement, XmlNode};
pub use model::*;
pub use parse::DNSMASQ_NAMESPACE;
pub use port::{
    MacvlanMode, PortDef, PortDevice, PortDeviceKind, PortPlug, VIRTNET_PORT_NAMESPACE,
};
pub use update::{UpdateCommand, UpdateSection};
pub use xml::{MAX_DEPTH, MAX_INPUT_BYTES, MAX_NODES};

impl NetworkDef {
    /// Parse network XML and apply the checks libvirt makes while parsing
    /// (`virNetworkDefParseString`). Define-time checks that depend on the
    /// forward mode as a whole are in [`NetworkDef::validate`]; defaults
    /// (uuid, MAC, bridge name) are filled in by [`defaults`].
    pub fn parse(xml_text: &str) -> Result<NetworkDef> {
        let doc = xml::parse_document(xml_text, "(network_definition)", Some("network"))?;
        parse::parse_network(doc.root_element(), false)
    }

    /// Parse the live view written by [`NetworkDef::to_xml`] with
    /// [`FormatFlags::ACTIVE`] (e.g. a status file kept while a network
    /// runs), restoring the runtime state libvirt's parser ignores:
    /// connection counts and the pool devices listed next to a `<pf>`.
    /// Otherwise the same as [`NetworkDef::parse`].
    pub fn parse_status(xml_text: &str) -> Result<NetworkDef> {
        let doc = xml::parse_document(xml_text, "(network_status)", Some("network"))?;
        parse::parse_network(doc.root_element(), true)
    }

    /// Format like libvirt's `virNetworkDefFormat` (`net-dumpxml`).
    pub fn to_xml(&self, flags: FormatFlags) -> String {
        format::format_network(self, flags)
    }
}
