//! The `virtnet` command line: virsh's network commands, option grammar,
//! messages and output, for virtnetd (or libvirt's own network driver),
//! and `net-lint` for checking definitions offline.
//!
//! * [`shell`] — option grammar ([`shell::parse`]), global options, help,
//!   output and error reporting, the command loop.
//! * [`registry`] — every command and its options.
//! * [`commands`] — what each command does.
//! * [`uri`], [`conn`] — connection URIs, transports and the connection.
//! * [`remote`] — the ssh transport and its far end, `virtnet tunnel`.
//! * [`qemu`] — QEMU arguments for a port; [`acl`] — the bridge helper's
//!   access list.
//! * [`table`] — virsh's table layout.
//! * [`xpath`] — `--xpath` selection and libxml2-style node output.

pub mod acl;
pub mod commands;
pub mod conn;
pub mod qemu;
pub mod registry;
pub mod remote;
pub mod shell;
pub mod table;
pub mod term;
pub mod uri;
pub mod xpath;

pub use shell::{Env, run};
