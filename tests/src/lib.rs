//! Shared harness for virtnet's end-to-end scenarios.
//!
//! Every test binary of this package is started by `scripts/netns-runner` in
//! a private network namespace and a private mount namespace (with a private
//! tmpfs on `/run/netns`). Everything the harness creates lives inside that:
//! the harness refuses to work anywhere else (see [`require`]).
//!
//! The pieces:
//! - [`Netns`]: a network namespace playing a host; run and spawn programs in
//!   it, run Rust code in it ([`Netns::enter`]); [`Bridge`], [`Tap`],
//!   [`Veth`], [`connect_to_bridge`] and [`Wan`] wire namespaces together.
//! - Guest-side tools run inside a namespace: [`dhcp::udhcpc`],
//!   [`dns::query`], [`ping::ping`] and [`ping::ContinuousPing`],
//!   [`tcp::WhoamiServer`] / [`tcp::whoami`], [`tcp::ThroughputSink`] /
//!   [`tcp::measure_throughput`], and a hand-run [`dhcp::Dnsmasq`].
//! - [`Daemon`]: `virtnetd` on private directories, plus the `virtnet` and
//!   `virsh` clients pointed at its socket.
//! - [`Guest`]: a real QEMU guest (TCG) booting a Debian kernel and a busybox
//!   initramfs that leases an address by DHCP and runs actions.
//!
//! A test starts with the requirements it has, and skips (printing why) when
//! they are not met:
//!
//! ```no_run
//! use virtnet_tests::{or_skip, require, Netns};
//!
//! #[test]
//! fn two_hosts() {
//!     or_skip!(require(&["ip"]));
//!     let a = Netns::new("a").unwrap();
//!     a.run_ok(["ip", "link", "set", "lo", "up"]).unwrap();
//! }
//! ```

pub mod daemon;
pub mod dhcp;
pub mod dns;
mod error;
pub mod guest;
pub mod netns;
pub mod ping;
pub mod process;
pub mod tcp;

pub use daemon::{Daemon, DaemonOpts};
pub use error::{Error, Result};
pub use guest::{Guest, GuestImage, GuestNet, GuestOpts};
pub use netns::{Bridge, Netns, Tap, Veth, Wan, WanOpts, connect_to_bridge, connect_to_bridge_in};
pub use process::{DEFAULT_TIMEOUT, Output, Proc, SpawnOpts, TempDir};

/// Checks that this process may build networks: it runs as root, inside the
/// private network namespace set up by `scripts/netns-runner` (never the
/// host's), and every tool in `tools` is installed.
///
/// Returns [`Error::Unavailable`] naming what is missing; pair it with
/// [`or_skip!`].
pub fn require(tools: &[&str]) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Unavailable("needs root".into()));
    }
    if !in_private_netns() {
        return Err(Error::Unavailable(
            "not inside the private network namespace of scripts/netns-runner \
             (run through `cargo test`)"
                .into(),
        ));
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| process::find_tool(t).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Unavailable(format!(
            "missing tools: {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Whether this process runs in the runner's private network namespace:
/// the runner says so and the namespace differs from pid 1's.
pub fn in_private_netns() -> bool {
    if std::env::var("VIRTNET_TEST_IN_NETNS").as_deref() != Ok("1") {
        return false;
    }
    let Ok(own) = std::fs::read_link("/proc/self/ns/net") else {
        return false;
    };
    match std::fs::read_link("/proc/1/ns/net") {
        Ok(init) => own != init,
        // pid 1 invisible (a pid namespace): trust the runner.
        Err(_) => true,
    }
}

/// Unwraps a [`Result`], or prints `skipped: <reason>` and returns from the
/// test when the error is [`Error::Unavailable`]. Any other error panics
/// with its message.
#[macro_export]
macro_rules! or_skip {
    ($e:expr) => {
        match $e {
            ::std::result::Result::Ok(v) => v,
            ::std::result::Result::Err($crate::Error::Unavailable(reason)) => {
                eprintln!("skipped: {reason}");
                return;
            }
            ::std::result::Result::Err(e) => panic!("{e}"),
        }
    };
}
