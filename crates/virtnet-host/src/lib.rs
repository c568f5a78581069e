//! virtnet's host effects: everything that changes the host on behalf of a
//! virtual network, behind small traits so the daemon can be tested with
//! recording fakes.
//!
//! - [`netlink::NetlinkOps`] — links (bridges, veth, macvtap), addresses,
//!   routes, bridge ports; real: [`netlink::Netlink`].
//! - [`tap::Tap`] — TAP devices through `/dev/net/tun`, and macvtap
//!   character devices.
//! - [`sysctl::Sysctl`] — `/proc/sys/net/...`; real: [`sysctl::ProcSysctl`].
//! - [`firewall::Firewall`] — per-network nftables rules applied in one
//!   transaction; real: [`firewall::Nftables`].
//! - [`dnsmasq::DnsmasqSupervisor`] — one dnsmasq per network, watched
//!   through pidfds; real: [`dnsmasq::Dnsmasq`].
//! - [`bandwidth::BandwidthOps`] — `<bandwidth>` limits and floors with
//!   tc (htb; ifb for traffic from guests); real: [`bandwidth::Tc`], with
//!   the floor accounting in [`bandwidth::FloorPool`].
//! - [`openvswitch::OpenvswitchOps`] — ports on Open vSwitch bridges;
//!   real: [`openvswitch::OvsVsctl`]; [`openvswitch::PrivateOvs`] runs a
//!   switch of its own for tests.
//! - [`sriov::SriovOps`] — SR-IOV virtual functions from sysfs; real:
//!   [`sriov::SysfsSriov`].
//! - [`tap`] also makes macvtap devices for ports (first free name,
//!   `/dev/tapN`), and [`fdpass`] passes descriptors over Unix sockets.
//! - [`fake`] — recording fakes of all of them, with fault injection.
//!
//! This crate knows nothing about network XML: callers pass plain values.

pub mod bandwidth;
pub mod dnsmasq;
pub mod fake;
pub mod fdpass;
pub mod firewall;
pub mod netlink;
pub mod netns;
pub mod openvswitch;
pub mod process;
pub mod sriov;
pub mod sysctl;
pub mod tap;
pub mod types;

pub use types::{Family, IpPrefix, MacAddr};
