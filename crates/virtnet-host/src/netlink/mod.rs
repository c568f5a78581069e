//! Links, addresses and routes through rtnetlink.
//!
//! [`NetlinkOps`] is the narrow surface the daemon uses; [`Netlink`] is the
//! real implementation over a synchronous socket, and
//! [`crate::fake::FakeNetlink`] records calls for tests. Only this module
//! builds netlink messages: `socket` sends them and checks replies,
//! `route` builds and decodes them.

mod route;
mod socket;

use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::Duration;

pub use route::Netlink;

use crate::types::{Family, IpPrefix, MacAddr};

/// Errors from netlink requests. Each names the operation and the device,
/// address or route at fault.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be opened or configured.
    #[error("cannot open netlink socket: {0}")]
    Socket(#[source] io::Error),
    /// The kernel refused a request.
    #[error("{op} '{target}': {source}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Kernel {
        /// What was attempted, e.g. `cannot create bridge`.
        op: String,
        /// The device, address or route concerned.
        target: String,
        /// The errno the kernel returned.
        #[source]
        source: io::Error,
        /// The kernel's extended-ack explanation, when it gave one.
        detail: Option<String>,
    },
    /// No reply arrived in time.
    #[error("{op} '{target}': no netlink reply within {timeout:?}")]
    Timeout {
        /// What was attempted.
        op: String,
        /// The device, address or route concerned.
        target: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// A reply could not be decoded or made no sense.
    #[error("{op} '{target}': {detail}")]
    Protocol {
        /// What was attempted.
        op: String,
        /// The device, address or route concerned.
        target: String,
        /// What was wrong with the reply.
        detail: String,
    },
    /// The named device does not exist.
    #[error("Cannot find device '{0}'")]
    NoSuchDevice(String),
    /// A parameter cannot be expressed (bad name, out-of-range value).
    #[error("invalid {what} '{value}'")]
    Invalid {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: String,
    },
}

impl NetlinkError {
    /// The errno behind a kernel refusal, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            NetlinkError::NoSuchDevice(_) => Some(libc::ENODEV),
            _ => None,
        }
    }

    /// Whether the kernel said the object already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// Whether the object (device, address, route) was not there.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV) | Some(libc::ENOENT) | Some(libc::ESRCH) | Some(libc::EADDRNOTAVAIL)
        )
    }
}

/// A Linux bridge to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    /// Device name (at most 15 bytes).
    pub name: String,
    /// The bridge's own MAC address; libvirt pins it so the bridge does not
    /// take the address of whichever port joins first.
    pub mac: Option<MacAddr>,
    /// MTU to create the bridge with.
    pub mtu: Option<u32>,
    /// Spanning tree on or off.
    pub stp: bool,
    /// STP forward delay (libvirt's `<bridge delay='N'/>`, in seconds there).
    pub forward_delay: Duration,
}

/// MACVLAN/macvtap mode (`<forward mode='bridge|private|vepa|passthrough'>`
/// with `<interface type='direct'>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacvlanMode {
    /// Ports on the same lower device talk to each other directly.
    Bridge,
    /// No traffic between ports on the same lower device.
    Private,
    /// Traffic between ports goes out through the adjacent switch.
    Vepa,
    /// One port takes over the lower device.
    Passthru,
}

/// A macvtap device to create on a lower (physical) device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacvtapSpec {
    /// Device name, e.g. `macvtap0`.
    pub name: String,
    /// The lower device, e.g. `eth0`.
    pub lower: String,
    /// The macvlan mode.
    pub mode: MacvlanMode,
    /// MAC address of the new device.
    pub mac: Option<MacAddr>,
}

/// The link group (`ip link set … group N`) [`NetlinkOps::delete_links`]
/// uses to mark links about to be deleted ("vnet" in ASCII).
pub const RETIRED_LINK_GROUP: u32 = 0x766e_6574;

/// Settings applied to an existing link at once ([`NetlinkOps::configure_link`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkConfig {
    /// MAC address.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Bridge to enslave it to.
    pub master: Option<String>,
    /// Bring it up.
    pub up: bool,
}

/// Which network namespace to move a link into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetnsTarget {
    /// The namespace of this process id.
    Pid(u32),
    /// An open namespace file (`/proc/PID/ns/net`, `/run/netns/NAME`).
    Fd(RawFd),
}

/// Bridge port options; `None` leaves an option as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgePortOptions {
    /// `IFLA_BRPORT_ISOLATED`: isolated ports only talk to non-isolated
    /// ports (libvirt's `<port isolated='yes'/>`).
    pub isolated: Option<bool>,
    /// `IFLA_BRPORT_LEARNING`: learn source MACs on this port
    /// (off with `macTableManager='libvirt'`).
    pub learning: Option<bool>,
    /// `IFLA_BRPORT_UNICAST_FLOOD`: flood unknown unicast to this port
    /// (off with `macTableManager='libvirt'`).
    pub unicast_flood: Option<bool>,
}

/// Bridge attributes read back from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeAttrs {
    /// STP enabled.
    pub stp: bool,
    /// Forward delay.
    pub forward_delay: Duration,
}

/// Bridge port attributes read back from the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgePortAttrs {
    /// Isolated port.
    pub isolated: Option<bool>,
    /// MAC learning.
    pub learning: Option<bool>,
    /// Unknown-unicast flooding.
    pub unicast_flood: Option<bool>,
}

/// A network device as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Device name.
    pub name: String,
    /// `IFLA_INFO_KIND` (`bridge`, `veth`, `tun`, `macvtap`, …) if any.
    pub kind: Option<String>,
    /// MAC address, for Ethernet-like devices.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Index of the bridge (or other master) this device is enslaved to.
    pub master: Option<u32>,
    /// Index of the lower device (macvtap, veth peer), when reported.
    pub lower: Option<u32>,
    /// Bridge attributes, for bridges.
    pub bridge: Option<BridgeAttrs>,
    /// Bridge port attributes, for bridge ports.
    pub port: Option<BridgePortAttrs>,
    /// macvlan/macvtap mode, for those devices.
    pub macvlan_mode: Option<MacvlanMode>,
}

/// Options for adding an address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressOptions {
    /// IPv6: skip duplicate address detection (`IFA_F_NODAD`), so the
    /// address is usable at once instead of after DAD completes.
    pub nodad: bool,
    /// IPv4: do not set the broadcast address (set by default, as libvirt does).
    pub no_broadcast: bool,
}

/// An address on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressEntry {
    /// Interface index of the device.
    pub index: u32,
    /// The address and prefix length.
    pub prefix: IpPrefix,
    /// IPv6 duplicate address detection still running.
    pub tentative: bool,
    /// IPv6 duplicate address detection failed.
    pub dad_failed: bool,
}

/// A static route to add or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination network (host bits are cleared before sending).
    pub destination: IpPrefix,
    /// Next hop, for routes via a gateway.
    pub gateway: Option<IpAddr>,
    /// Output device (required when there is no gateway).
    pub device: Option<String>,
    /// Route metric (`<route metric='N'>`).
    pub metric: Option<u32>,
}

/// A route as the kernel reports it (main table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// Destination network.
    pub destination: IpPrefix,
    /// Next hop, if any.
    pub gateway: Option<IpAddr>,
    /// Output interface index, if any.
    pub oif: Option<u32>,
    /// Metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
    /// Routing table id.
    pub table: u32,
}

/// Netlink operations on links, addresses and routes of one network
/// namespace. Names are device names; implementations resolve indexes.
pub trait NetlinkOps {
    /// Creates a Linux bridge (`ip link add NAME type bridge …`). The bridge
    /// starts down.
    fn create_bridge(&self, spec: &BridgeSpec) -> Result<(), NetlinkError>;
    /// Creates a veth pair; the peer may be created directly in another
    /// namespace.
    fn create_veth(
        &self,
        name: &str,
        peer: &str,
        peer_netns: Option<NetnsTarget>,
    ) -> Result<(), NetlinkError>;
    /// Creates a macvtap device on a lower device and returns its index
    /// (its character device is `/dev/tapINDEX`).
    fn create_macvtap(&self, spec: &MacvtapSpec) -> Result<u32, NetlinkError>;
    /// Creates an ifb (intermediate functional block) device, the target
    /// that traffic arriving on another device is redirected to so it can be
    /// shaped on the way out. The device starts down.
    fn create_ifb(&self, name: &str) -> Result<(), NetlinkError>;
    /// Deletes a link (`ip link del NAME`).
    fn delete_link(&self, name: &str) -> Result<(), NetlinkError>;
    /// Deletes several links at once: the kernel unregisters them together,
    /// which costs about as much as deleting one (its per-deletion wait is
    /// shared). Links already gone are skipped. The real implementation
    /// marks them with [`RETIRED_LINK_GROUP`] and deletes the group, which
    /// with no names removes what an interrupted call left marked.
    fn delete_links(&self, names: &[String]) -> Result<(), NetlinkError> {
        for n in names {
            match self.delete_link(n) {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
    /// Looks a link up by name; `Ok(None)` when there is none.
    fn link(&self, name: &str) -> Result<Option<Link>, NetlinkError>;
    /// Looks a link up by index; `Ok(None)` when there is none.
    fn link_by_index(&self, index: u32) -> Result<Option<Link>, NetlinkError>;
    /// All links.
    fn links(&self) -> Result<Vec<Link>, NetlinkError>;
    /// Sets a link administratively up or down.
    fn set_up(&self, name: &str, up: bool) -> Result<(), NetlinkError>;
    /// Sets a link's MTU.
    fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetlinkError>;
    /// Sets a link's MAC address.
    fn set_mac(&self, name: &str, mac: MacAddr) -> Result<(), NetlinkError>;
    /// Enslaves a link to a bridge (`Some`) or releases it (`None`).
    fn set_master(&self, name: &str, master: Option<&str>) -> Result<(), NetlinkError>;
    /// Sets bridge port options on a link that is a bridge port.
    fn set_bridge_port(&self, name: &str, options: &BridgePortOptions) -> Result<(), NetlinkError>;
    /// Sets MAC, MTU and bridge and brings the link up; the real
    /// implementation does it in one request (a port's TAP is configured
    /// this way).
    fn configure_link(&self, name: &str, config: &LinkConfig) -> Result<(), NetlinkError> {
        if let Some(mac) = config.mac {
            self.set_mac(name, mac)?;
        }
        if let Some(mtu) = config.mtu {
            self.set_mtu(name, mtu)?;
        }
        if let Some(master) = &config.master {
            self.set_master(name, Some(master))?;
        }
        if config.up {
            self.set_up(name, true)?;
        }
        Ok(())
    }
    /// Moves a link into another network namespace.
    fn move_to_netns(&self, name: &str, target: NetnsTarget) -> Result<(), NetlinkError>;
    /// Adds an address with its prefix length to a device.
    fn add_address(
        &self,
        name: &str,
        address: IpPrefix,
        options: AddressOptions,
    ) -> Result<(), NetlinkError>;
    /// Deletes an address from a device.
    fn delete_address(&self, name: &str, address: IpPrefix) -> Result<(), NetlinkError>;
    /// Addresses of one device (`Some(name)`) or of all devices.
    fn addresses(&self, name: Option<&str>) -> Result<Vec<AddressEntry>, NetlinkError>;
    /// Adds a static route.
    fn add_route(&self, route: &RouteSpec) -> Result<(), NetlinkError>;
    /// Deletes a static route.
    fn delete_route(&self, route: &RouteSpec) -> Result<(), NetlinkError>;
    /// Routes of the main table, of one family or both.
    fn routes(&self, family: Option<Family>) -> Result<Vec<RouteEntry>, NetlinkError>;
}

/// A subnet that collides with a route already on the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteCollision {
    /// A network address is already routed through another device.
    #[error("Network is already in use by interface {0}")]
    NetworkInUse(String),
    /// A static route of the network is already routed.
    #[error("Route address '{address}' conflicts with IP address for '{iface}'")]
    RouteInUse {
        /// The route's network address.
        address: IpAddr,
        /// The device the existing route uses.
        iface: String,
    },
}

/// Checks a network's IPv4 subnets and static routes against the host's
/// main routing table, with libvirt's rule: a collision is an existing route
/// with exactly the same destination network and prefix length (on any
/// device). `iface_name` resolves an output interface index to its name.
/// Like libvirt, only IPv4 is checked.
pub fn check_route_collision(
    existing: &[RouteEntry],
    iface_name: &dyn Fn(Option<u32>) -> String,
    subnets: &[IpPrefix],
    static_routes: &[IpPrefix],
) -> Result<(), RouteCollision> {
    for route in existing {
        if route.table != u32::from(libc::RT_TABLE_MAIN) || route.destination.family() != Family::V4
        {
            continue;
        }
        let dest = route.destination.network();
        for subnet in subnets.iter().filter(|s| s.family() == Family::V4) {
            if subnet.network() == dest {
                return Err(RouteCollision::NetworkInUse(iface_name(route.oif)));
            }
        }
        for r in static_routes.iter().filter(|s| s.family() == Family::V4) {
            if r.network() == dest {
                return Err(RouteCollision::RouteInUse {
                    address: r.network().addr(),
                    iface: iface_name(route.oif),
                });
            }
        }
    }
    Ok(())
}

/// Runs [`check_route_collision`] against the routes `ops` reports, leaving
/// out routes through the network's own `bridge` (they are its own, e.g.
/// when a running network is re-adopted).
pub fn check_route_collision_with(
    ops: &dyn NetlinkOps,
    bridge: &str,
    subnets: &[IpPrefix],
    static_routes: &[IpPrefix],
) -> Result<Result<(), RouteCollision>, NetlinkError> {
    // Single lookups, not a dump of every link: on a host with many
    // networks that dump is most of the check's cost.
    let own = ops.link(bridge)?.map(|l| l.index);
    let routes: Vec<RouteEntry> = ops
        .routes(Some(Family::V4))?
        .into_iter()
        .filter(|r| own.is_none() || r.oif != own)
        .collect();
    let name = |oif: Option<u32>| -> String {
        oif.and_then(|i| ops.link_by_index(i).ok().flatten())
            .map(|l| l.name)
            .unwrap_or_else(|| "*".to_string())
    };
    Ok(check_route_collision(
        &routes,
        &name,
        subnets,
        static_routes,
    ))
}

/// Waits until no address on `name` is still doing IPv6 duplicate address
/// detection, polling every 50 ms for at most `timeout`. Returns whether DAD
/// finished; addresses whose DAD failed count as finished.
pub fn wait_dad_finished(
    ops: &dyn NetlinkOps,
    name: &str,
    timeout: Duration,
) -> Result<bool, NetlinkError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let pending = ops
            .addresses(Some(name))?
            .iter()
            .any(|a| a.tentative && !a.dad_failed);
        if !pending {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks a device name the way the kernel will: 1..=15 bytes, no `/`,
/// no whitespace, not `.` or `..`.
pub fn validate_ifname(name: &str) -> Result<(), NetlinkError> {
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if ok {
        Ok(())
    } else {
        Err(NetlinkError::Invalid {
            what: "device name",
            value: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dest: &str, oif: u32) -> RouteEntry {
        RouteEntry {
            destination: dest.parse().unwrap(),
            gateway: None,
            oif: Some(oif),
            metric: None,
            table: 254,
        }
    }

    #[test]
    fn route_collision_is_exact_network_match() {
        let names = |oif: Option<u32>| match oif {
            Some(2) => "eth0".to_string(),
            _ => "*".to_string(),
        };
        let existing = vec![route("192.168.122.0/24", 2), route("10.0.0.0/8", 2)];
        let net: IpPrefix = "192.168.122.1/24".parse().unwrap();
        assert_eq!(
            check_route_collision(&existing, &names, &[net], &[]),
            Err(RouteCollision::NetworkInUse("eth0".into()))
        );
        // A narrower subnet inside an existing route is not a collision for libvirt.
        let inner: IpPrefix = "10.1.0.1/16".parse().unwrap();
        assert_eq!(
            check_route_collision(&existing, &names, &[inner], &[]),
            Ok(())
        );
        let static_route: IpPrefix = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            check_route_collision(&existing, &names, &[inner], &[static_route])
                .map_err(|e| e.to_string()),
            Err("Route address '10.0.0.0' conflicts with IP address for 'eth0'".to_string())
        );
    }

    #[test]
    fn ifname_rules() {
        assert!(validate_ifname("virbr0").is_ok());
        assert!(validate_ifname("").is_err());
        assert!(validate_ifname("a/b").is_err());
        assert!(validate_ifname("0123456789abcdef").is_err());
        assert!(validate_ifname("0123456789abcde").is_ok());
    }
}
