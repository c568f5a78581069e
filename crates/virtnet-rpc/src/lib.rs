//! libvirt's remote protocol, wire-exact, for virtnet.
//!
//! Debian's `virsh` and libvirt-python talk to `virtnetd` through this
//! crate unchanged, and so does the `virtnet` CLI.
//!
//! * [`xdr`] — XDR encoding/decoding with the protocol's length limits;
//!   decoding untrusted input never panics and never allocates beyond what
//!   the input holds.
//! * [`message`] — frames (length word + header + payload), program numbers,
//!   keepalive constants, a timeout-tolerant [`message::FrameReader`].
//! * [`error`] — `remote_error` ([`RemoteError`]), libvirt's error codes,
//!   domains and levels, and the exact message texts virsh prints.
//! * [`protocol`] — procedure numbers ([`Procedure`]), argument/return
//!   structs for networks, ports and the handshake, typed [`Call`],
//!   [`Reply`] and [`Event`] enums, flag constants.
//! * [`client`] — a blocking [`Client`] doing virsh's handshake.
//! * [`server`] — [`serve_connection`] drives one client connection against
//!   a [`Handler`].
//!
//! # Serving
//!
//! ```no_run
//! use std::os::unix::net::UnixListener;
//! use std::sync::Arc;
//! use virtnet_rpc::protocol::{AuthListRet, auth};
//! use virtnet_rpc::{Call, CallContext, Handler, RemoteError, Reply, ServeOptions};
//!
//! struct Driver;
//!
//! impl Handler for Driver {
//!     fn call(&self, ctx: &mut CallContext<'_>, call: Call) -> Result<Reply, RemoteError> {
//!         match call {
//!             Call::AuthList(()) => Ok(Reply::AuthList(AuthListRet { types: vec![auth::NONE] })),
//!             Call::ConnectOpen(_) => Ok(Reply::ConnectOpen(())),
//!             Call::NetworkLookupByName(a) => Err(RemoteError::no_network_name(&a.name)),
//!             other => Err(RemoteError::no_support(other.procedure().api_name())),
//!         }
//!     }
//! }
//!
//! let driver = Arc::new(Driver);
//! let listener = UnixListener::bind("/run/virtnet/virtnetd-sock")?;
//! for stream in listener.incoming() {
//!     let (stream, driver) = (stream?, driver.clone());
//!     std::thread::spawn(move || {
//!         let _ = virtnet_rpc::serve_connection(stream, &*driver, &ServeOptions::default());
//!     });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Calling
//!
//! ```no_run
//! use virtnet_rpc::protocol::{ConnectListAllNetworksArgs, ConnectListAllNetworksRet};
//! use virtnet_rpc::{Client, ConnectOptions, Procedure};
//!
//! let client = Client::connect_unix("/run/virtnet/virtnetd-sock", &ConnectOptions::default())?;
//! let all: ConnectListAllNetworksRet = client.call(
//!     Procedure::ConnectListAllNetworks,
//!     &ConnectListAllNetworksArgs { need_results: 1, flags: 0 },
//! )?;
//! for net in &all.nets {
//!     println!("{}", net.name);
//! }
//! client.close()?;
//! # Ok::<(), virtnet_rpc::RpcError>(())
//! ```

pub mod client;
pub mod error;
pub mod message;
mod proctable;
pub mod protocol;
pub mod server;
pub mod xdr;

pub use client::{Client, ClientKeepalive, ConnectOptions, ServerFeatures};
pub use error::{ErrorCode, ErrorDomain, ErrorLevel, RemoteError, RemoteErrorData, RpcError};
pub use protocol::{Call, Event, Procedure, Reply};
pub use server::{
    CallContext, ConnectionInfo, EventSink, Handler, KeepaliveConfig, OpenRequest, PeerCredentials,
    ServeOptions, peer_credentials, serve_connection, serve_io,
};
