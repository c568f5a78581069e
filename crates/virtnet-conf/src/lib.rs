//! libvirt Network and networkport XML for virtnet.
//!
//! This crate is pure (no I/O): a typed model of libvirt's network
//! definition, a parser that applies the checks libvirt makes when parsing
//! and defining a network, and a formatter whose output is byte-identical
//! to libvirt's `net-dumpxml`.

#![forbid(unsafe_code)]

pub mod addr;
pub mod defaults;
pub mod error;
mod format;
pub mod metadata;
pub mod model;
pub mod netdev;
mod parse;
pub mod port;
pub mod validate;
mod xml;

pub use addr::{MacAddr, PciAddress, Uuid};
pub use error::{Error, ErrorDomain, ErrorKind, Result};
pub use format::FormatFlags;
pub use metadata::{NsDecl, XmlAttr, XmlElement, XmlNode};
pub use model::*;
pub use parse::DNSMASQ_NAMESPACE;
pub use port::{MacvlanMode, PortDef, PortPlug};
pub use xml::{MAX_DEPTH, MAX_INPUT_BYTES, MAX_NODES};

impl NetworkDef {
    /// Parse network XML and apply the checks libvirt makes while parsing
    /// (`virNetworkDefParseString`). Define-time checks that depend on the
    /// forward mode as a whole are in [`NetworkDef::validate`]; defaults
    /// (uuid, MAC, bridge name) are filled in by [`defaults`].
    pub fn parse(xml_text: &str) -> Result<NetworkDef> {
        let doc = xml::parse_document(xml_text, "(network_definition)", "network")?;
        parse::parse_network(doc.root_element())
    }

    /// Format like libvirt's `virNetworkDefFormat` (`net-dumpxml`).
    pub fn to_xml(&self, flags: FormatFlags) -> String {
        format::format_network(self, flags)
    }
}
