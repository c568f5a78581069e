//! libvirt's remote protocol, wire-exact, for virtnet.
//!
//! Debian's `virsh` and libvirt-python talk to `virtnetd` through this
//! crate, and so does the `virtnet` CLI.
//!
//! * [`xdr`] — XDR encoding/decoding with protocol length limits.
//! * [`message`] — frames (length word + header + payload), keepalive
//!   program constants, a timeout-tolerant [`message::FrameReader`].
//! * [`error`] — `remote_error`, libvirt error codes/domains and the exact
//!   message texts virsh prints.
//! * [`protocol`] — procedure numbers, argument/return structs for networks,
//!   ports and the handshake; typed [`Call`], [`Reply`] and [`Event`] enums.
//! * [`client`] — a blocking [`Client`] doing virsh's handshake.
//! * [`server`] — [`serve_connection`] drives one client connection against a
//!   [`Handler`].

pub mod client;
pub mod error;
pub mod message;
pub mod protocol;
pub mod server;
pub mod xdr;

pub use client::{Client, ClientKeepalive, ConnectOptions, ServerFeatures};
pub use error::{ErrorCode, ErrorDomain, ErrorLevel, RemoteError, RemoteErrorData, RpcError};
pub use protocol::{Call, Event, Procedure, Reply};
pub use server::{
    CallContext, ConnectionInfo, EventSink, Handler, KeepaliveConfig, PeerCredentials,
    ServeOptions, serve_connection, serve_io,
};
