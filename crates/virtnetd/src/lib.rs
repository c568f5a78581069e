//! virtnetd: libvirt's virtual networks on the host, served over libvirt's
//! remote protocol.
//!
//! - [`driver`] — the network objects and their lifecycle, with libvirt's
//!   semantics and messages.
//! - [`setup`] — what a start does to the host, step by step, and how each
//!   step is undone.
//! - [`status`] — status files: the live definition and the undo record.
//! - [`store`] — directories and atomic file writes.
//! - [`host`] — the host effects, bundled (real, or recording fakes).
//! - [`rpcserver`] — sockets, client connections, procedure dispatch and
//!   event delivery.
//! - [`events`] — the events the driver emits.

pub mod driver;
pub mod error;
pub mod events;
pub mod hooks;
pub mod host;
pub mod logger;
pub mod ports;
pub mod reaper;
pub mod rpcserver;
pub mod setup;
pub mod status;
pub mod store;
