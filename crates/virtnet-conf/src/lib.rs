//! libvirt Network and networkport XML for virtnet.
//!
//! This crate is pure (no I/O): a typed model of libvirt's network
//! definition, a parser that applies the checks libvirt makes when parsing
//! and defining a network, and a formatter whose output is byte-identical
//! to libvirt's `net-dumpxml`.

#![forbid(unsafe_code)]

pub mod addr;
pub mod error;
pub mod metadata;
pub mod model;

pub use addr::{MacAddr, PciAddress, Uuid};
pub use error::{Error, ErrorDomain, ErrorKind, Result};
pub use metadata::{NsDecl, XmlAttr, XmlElement, XmlNode};
pub use model::*;
