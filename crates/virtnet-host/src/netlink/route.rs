//! [`Netlink`]: the real [`NetlinkOps`] over one rtnetlink socket. Builds the
//! RTM_* messages and decodes replies into this crate's plain types.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    BridgeStpState, InfoBridge, InfoBridgePort, InfoData, InfoKind, InfoMacVlan, InfoMacVtap,
    InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    MacVlanMode,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::socket::{Ctx, NetlinkSocket};
use super::{
    AddressEntry, AddressOptions, BridgeAttrs, BridgePortAttrs, BridgePortOptions, BridgeSpec,
    Link, LinkConfig, MacvlanMode, MacvtapSpec, NetlinkError, NetlinkOps, NetnsTarget,
    RETIRED_LINK_GROUP, RouteEntry, RouteSpec, validate_ifname,
};
use crate::types::{Family, IpPrefix, MacAddr};

/// Linux `USER_HZ`: bridge timers travel in hundredths of a second.
const USER_HZ: u128 = 100;

/// The real netlink implementation: one route socket, bound to the network
/// namespace it was opened in. Safe to share between threads; requests are
/// serialised.
pub struct Netlink {
    sock: Mutex<NetlinkSocket>,
}

impl Netlink {
    /// Opens a socket in the caller's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        Ok(Netlink {
            sock: Mutex::new(NetlinkSocket::open()?),
        })
    }

    /// Opens a socket in the network namespace `ns` (an open
    /// `/proc/PID/ns/net` or `/run/netns/NAME`). A helper thread enters the
    /// namespace just long enough to create the socket, which then stays
    /// bound to it; the caller's own namespace is never changed.
    pub fn open_in(ns: &File) -> Result<Netlink, NetlinkError> {
        let fd = ns.as_fd();
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NetlinkError::Socket(e.into()))?;
                Netlink::open()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetlinkError::Socket(std::io::Error::other(
                    "namespace helper thread panicked",
                )))
            })
        })
    }

    /// Changes how long one request waits for its reply (default 5 s).
    pub fn set_timeout(&self, timeout: Duration) {
        self.lock().set_timeout(timeout);
    }

    fn lock(&self) -> MutexGuard<'_, NetlinkSocket> {
        // A panic while holding the lock leaves the socket usable: replies
        // are matched by sequence number, stale ones are skipped.
        self.sock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn index_of(&self, name: &str) -> Result<u32, NetlinkError> {
        match self.link(name)? {
            Some(link) => Ok(link.index),
            None => Err(NetlinkError::NoSuchDevice(name.to_string())),
        }
    }

    fn get_link(&self, msg: LinkMessage, target: &str) -> Result<Option<Link>, NetlinkError> {
        let ctx = Ctx {
            op: "cannot look up device",
            target,
        };
        match self
            .lock()
            .request_one(RouteNetlinkMessage::GetLink(msg), &ctx)?
        {
            Some(RouteNetlinkMessage::NewLink(m)) => Ok(Some(decode_link(&m))),
            Some(_) => Err(NetlinkError::Protocol {
                op: ctx.op.to_string(),
                target: target.to_string(),
                detail: "unexpected reply type".to_string(),
            }),
            None => Ok(None),
        }
    }

    fn set_link(
        &self,
        name: &str,
        op: &str,
        build: impl FnOnce(&mut LinkMessage),
    ) -> Result<(), NetlinkError> {
        validate_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        build(&mut msg);
        let ctx = Ctx { op, target: name };
        self.lock()
            .request_ack(RouteNetlinkMessage::SetLink(msg), 0, &ctx)
            .map_err(|e| not_found_as_no_device(e, name))
    }

    fn new_link(&self, msg: LinkMessage, op: &str, target: &str) -> Result<(), NetlinkError> {
        let ctx = Ctx { op, target };
        self.lock().request_ack(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &ctx,
        )
    }
}

fn not_found_as_no_device(e: NetlinkError, name: &str) -> NetlinkError {
    if e.errno() == Some(libc::ENODEV) {
        NetlinkError::NoSuchDevice(name.to_string())
    } else {
        e
    }
}

fn centiseconds(d: Duration) -> Result<u32, NetlinkError> {
    u32::try_from(d.as_millis() / (1000 / USER_HZ)).map_err(|_| NetlinkError::Invalid {
        what: "bridge forward delay",
        value: format!("{d:?}"),
    })
}

fn to_kernel_mode(mode: MacvlanMode) -> netlink_packet_route::link::MacVtapMode {
    match mode {
        MacvlanMode::Bridge => netlink_packet_route::link::MacVtapMode::Bridge,
        MacvlanMode::Private => netlink_packet_route::link::MacVtapMode::Private,
        MacvlanMode::Vepa => netlink_packet_route::link::MacVtapMode::Vepa,
        MacvlanMode::Passthru => netlink_packet_route::link::MacVtapMode::Passthrough,
    }
}

fn from_kernel_mode(mode: &MacVlanMode) -> Option<MacvlanMode> {
    match mode {
        MacVlanMode::Bridge => Some(MacvlanMode::Bridge),
        MacVlanMode::Private => Some(MacvlanMode::Private),
        MacVlanMode::Vepa => Some(MacvlanMode::Vepa),
        MacVlanMode::Passthrough => Some(MacvlanMode::Passthru),
        _ => None,
    }
}

fn family_of(prefix: &IpPrefix) -> AddressFamily {
    match prefix.family() {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

fn decode_link(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        kind: None,
        mac: None,
        mtu: 0,
        up: m.header.flags.contains(LinkFlags::Up),
        master: None,
        lower: None,
        bridge: None,
        port: None,
        macvlan_mode: None,
    };
    for attr in &m.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) => link.mac = MacAddr::from_slice(a),
            LinkAttribute::Mtu(v) => link.mtu = *v,
            LinkAttribute::Controller(v) if *v != 0 => link.master = Some(*v),
            LinkAttribute::Link(v) if *v != 0 => link.lower = Some(*v),
            LinkAttribute::LinkInfo(infos) => decode_link_info(infos, &mut link),
            _ => {}
        }
    }
    link
}

fn decode_link_info(infos: &[LinkInfo], link: &mut Link) {
    for info in infos {
        match info {
            LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
            LinkInfo::Data(InfoData::Bridge(attrs)) => {
                let mut b = BridgeAttrs {
                    stp: false,
                    forward_delay: Duration::ZERO,
                };
                for a in attrs {
                    match a {
                        InfoBridge::StpState(s) => b.stp = *s != BridgeStpState::Disabled,
                        InfoBridge::ForwardDelay(cs) => {
                            b.forward_delay = Duration::from_millis(u64::from(*cs) * 10)
                        }
                        _ => {}
                    }
                }
                link.bridge = Some(b);
            }
            LinkInfo::Data(InfoData::MacVtap(attrs)) => {
                for a in attrs {
                    if let InfoMacVtap::Mode(mode) = a {
                        link.macvlan_mode = from_kernel_mode(mode);
                    }
                }
            }
            LinkInfo::Data(InfoData::MacVlan(attrs)) => {
                for a in attrs {
                    if let InfoMacVlan::Mode(mode) = a {
                        link.macvlan_mode = from_kernel_mode(mode);
                    }
                }
            }
            LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => {
                let mut p = BridgePortAttrs::default();
                for a in attrs {
                    match a {
                        InfoBridgePort::Isolated(v) => p.isolated = Some(*v),
                        InfoBridgePort::Learning(v) => p.learning = Some(*v),
                        InfoBridgePort::UnicastFlood(v) => p.unicast_flood = Some(*v),
                        _ => {}
                    }
                }
                link.port = Some(p);
            }
            _ => {}
        }
    }
}

fn decode_address(m: &AddressMessage) -> Option<AddressEntry> {
    let mut local = None;
    let mut address = None;
    let mut flags = AddressFlags::from_bits_retain(u32::from(m.header.flags.bits()));
    for attr in &m.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    // For IPv4 IFA_LOCAL is the interface's own address (IFA_ADDRESS is the
    // peer on point-to-point links); IPv6 only sends IFA_ADDRESS.
    let addr = local.or(address)?;
    let prefix = IpPrefix::new(addr, m.header.prefix_len).ok()?;
    Some(AddressEntry {
        index: m.header.index,
        prefix,
        tentative: flags.contains(AddressFlags::Tentative),
        dad_failed: flags.contains(AddressFlags::Dadfailed),
    })
}

fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn ip_of(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn decode_route(m: &RouteMessage) -> Option<RouteEntry> {
    let family = match m.header.address_family {
        AddressFamily::Inet => Family::V4,
        AddressFamily::Inet6 => Family::V6,
        _ => return None,
    };
    let mut dest = None;
    let mut gateway = None;
    let mut oif = None;
    let mut metric = None;
    let mut table = u32::from(m.header.table);
    for attr in &m.attributes {
        match attr {
            RouteAttribute::Destination(a) => dest = ip_of(a),
            RouteAttribute::Gateway(a) => gateway = ip_of(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    let dest = dest.unwrap_or(match family {
        Family::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    });
    Some(RouteEntry {
        destination: IpPrefix::new(dest, m.header.destination_prefix_length).ok()?,
        gateway,
        oif,
        metric,
        table,
    })
}

impl Netlink {
    fn route_message(&self, route: &RouteSpec, delete: bool) -> Result<RouteMessage, NetlinkError> {
        let dest = route.destination.network();
        let mut msg = RouteMessage::default();
        msg.header.address_family = family_of(&dest);
        msg.header.destination_prefix_length = dest.prefix();
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        if delete {
            msg.header.scope = RouteScope::NoWhere;
        } else {
            msg.header.protocol = RouteProtocol::Boot;
            msg.header.kind = RouteType::Unicast;
            msg.header.scope = if route.gateway.is_some() {
                RouteScope::Universe
            } else {
                RouteScope::Link
            };
        }
        msg.attributes
            .push(RouteAttribute::Destination(route_addr(dest.addr())));
        if let Some(gw) = route.gateway {
            if Family::of(&gw) != dest.family() {
                return Err(NetlinkError::Invalid {
                    what: "route gateway",
                    value: format!("{gw} for {dest}"),
                });
            }
            msg.attributes.push(RouteAttribute::Gateway(route_addr(gw)));
        }
        if let Some(dev) = &route.device {
            msg.attributes
                .push(RouteAttribute::Oif(self.index_of(dev)?));
        }
        if let Some(metric) = route.metric {
            msg.attributes.push(RouteAttribute::Priority(metric));
        }
        Ok(msg)
    }
}

fn route_target(route: &RouteSpec) -> String {
    let mut s = route.destination.network().to_string();
    if let Some(gw) = route.gateway {
        s.push_str(&format!(" via {gw}"));
    }
    if let Some(dev) = &route.device {
        s.push_str(&format!(" dev {dev}"));
    }
    if let Some(m) = route.metric {
        s.push_str(&format!(" metric {m}"));
    }
    s
}

impl NetlinkOps for Netlink {
    fn create_bridge(&self, spec: &BridgeSpec) -> Result<(), NetlinkError> {
        validate_ifname(&spec.name)?;
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.clone()));
        if let Some(mac) = spec.mac {
            msg.attributes
                .push(LinkAttribute::Address(mac.octets().to_vec()));
        }
        if let Some(mtu) = spec.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        // The forward delay goes first: the kernel applies bridge options in
        // a fixed order with the delay before STP, and only range-checks the
        // delay while STP is on.
        let data = vec![
            InfoBridge::ForwardDelay(centiseconds(spec.forward_delay)?),
            InfoBridge::StpState(if spec.stp {
                BridgeStpState::KernelStp
            } else {
                BridgeStpState::Disabled
            }),
        ];
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bridge),
            LinkInfo::Data(InfoData::Bridge(data)),
        ]));
        self.new_link(msg, "cannot create bridge", &spec.name)
    }

    fn create_veth(
        &self,
        name: &str,
        peer: &str,
        peer_netns: Option<NetnsTarget>,
    ) -> Result<(), NetlinkError> {
        validate_ifname(name)?;
        validate_ifname(peer)?;
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        match peer_netns {
            Some(NetnsTarget::Pid(pid)) => peer_msg.attributes.push(LinkAttribute::NetNsPid(pid)),
            Some(NetnsTarget::Fd(fd)) => peer_msg.attributes.push(LinkAttribute::NetNsFd(fd)),
            None => {}
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.new_link(msg, "cannot create veth pair", &format!("{name}/{peer}"))
    }

    fn create_macvtap(&self, spec: &MacvtapSpec) -> Result<u32, NetlinkError> {
        validate_ifname(&spec.name)?;
        let lower = self.index_of(&spec.lower)?;
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.clone()));
        msg.attributes.push(LinkAttribute::Link(lower));
        if let Some(mac) = spec.mac {
            msg.attributes
                .push(LinkAttribute::Address(mac.octets().to_vec()));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVtap),
            LinkInfo::Data(InfoData::MacVtap(vec![InfoMacVtap::Mode(to_kernel_mode(
                spec.mode,
            ))])),
        ]));
        self.new_link(msg, "cannot create macvtap device", &spec.name)?;
        self.index_of(&spec.name)
    }

    fn create_ifb(&self, name: &str) -> Result<(), NetlinkError> {
        validate_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Ifb)]));
        self.new_link(msg, "cannot create ifb device", name)
    }

    fn delete_link(&self, name: &str) -> Result<(), NetlinkError> {
        validate_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let ctx = Ctx {
            op: "cannot delete device",
            target: name,
        };
        self.lock()
            .request_ack(RouteNetlinkMessage::DelLink(msg), 0, &ctx)
            .map_err(|e| not_found_as_no_device(e, name))
    }

    fn delete_links(&self, names: &[String]) -> Result<(), NetlinkError> {
        for n in names {
            let res = self.set_link(n, "cannot mark device for deletion", |m| {
                m.attributes.push(LinkAttribute::Group(RETIRED_LINK_GROUP))
            });
            match res {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::Group(RETIRED_LINK_GROUP));
        let ctx = Ctx {
            op: "cannot delete devices",
            target: &format!("group {RETIRED_LINK_GROUP}"),
        };
        match self
            .lock()
            .request_ack(RouteNetlinkMessage::DelLink(msg), 0, &ctx)
        {
            // No device in the group: nothing was left to delete.
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    fn link(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        validate_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(msg, name)
    }

    fn link_by_index(&self, index: u32) -> Result<Option<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.get_link(msg, &format!("#{index}"))
    }

    fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        let ctx = Ctx {
            op: "cannot list devices",
            target: "",
        };
        let replies = self
            .lock()
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), &ctx)?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(decode_link(l)),
                _ => None,
            })
            .collect())
    }

    fn set_up(&self, name: &str, up: bool) -> Result<(), NetlinkError> {
        let op = if up {
            "cannot set device up"
        } else {
            "cannot set device down"
        };
        self.set_link(name, op, |m| {
            m.header.change_mask = LinkFlags::Up;
            if up {
                m.header.flags = LinkFlags::Up;
            }
        })
    }

    fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        self.set_link(name, "cannot set MTU of device", |m| {
            m.attributes.push(LinkAttribute::Mtu(mtu))
        })
    }

    fn set_mac(&self, name: &str, mac: MacAddr) -> Result<(), NetlinkError> {
        self.set_link(name, "cannot set MAC address of device", |m| {
            m.attributes
                .push(LinkAttribute::Address(mac.octets().to_vec()))
        })
    }

    fn set_master(&self, name: &str, master: Option<&str>) -> Result<(), NetlinkError> {
        let index = match master {
            Some(m) => self.index_of(m)?,
            None => 0,
        };
        let op = if master.is_some() {
            "cannot attach device to bridge"
        } else {
            "cannot detach device from bridge"
        };
        self.set_link(name, op, |m| {
            m.attributes.push(LinkAttribute::Controller(index))
        })
    }

    fn set_bridge_port(&self, name: &str, options: &BridgePortOptions) -> Result<(), NetlinkError> {
        validate_ifname(name)?;
        let mut data = Vec::new();
        if let Some(v) = options.isolated {
            data.push(InfoBridgePort::Isolated(v));
        }
        if let Some(v) = options.learning {
            data.push(InfoBridgePort::Learning(v));
        }
        if let Some(v) = options.unicast_flood {
            data.push(InfoBridgePort::UnicastFlood(v));
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(data)),
        ]));
        let ctx = Ctx {
            op: "cannot set bridge port options of device",
            target: name,
        };
        // RTM_NEWLINK without NLM_F_CREATE changes an existing device; only
        // that path applies IFLA_INFO_SLAVE_DATA.
        self.lock()
            .request_ack(RouteNetlinkMessage::NewLink(msg), 0, &ctx)
            .map_err(|e| not_found_as_no_device(e, name))
    }

    fn configure_link(&self, name: &str, config: &LinkConfig) -> Result<(), NetlinkError> {
        let master = match &config.master {
            Some(m) => Some(self.index_of(m)?),
            None => None,
        };
        self.set_link(name, "cannot configure device", |m| {
            if let Some(mac) = config.mac {
                m.attributes
                    .push(LinkAttribute::Address(mac.octets().to_vec()));
            }
            if let Some(mtu) = config.mtu {
                m.attributes.push(LinkAttribute::Mtu(mtu));
            }
            if let Some(index) = master {
                m.attributes.push(LinkAttribute::Controller(index));
            }
            if config.up {
                m.header.change_mask = LinkFlags::Up;
                m.header.flags = LinkFlags::Up;
            }
        })
    }

    fn move_to_netns(&self, name: &str, target: NetnsTarget) -> Result<(), NetlinkError> {
        self.set_link(name, "cannot move device to namespace", |m| match target {
            NetnsTarget::Pid(pid) => m.attributes.push(LinkAttribute::NetNsPid(pid)),
            NetnsTarget::Fd(fd) => m.attributes.push(LinkAttribute::NetNsFd(fd)),
        })
    }

    fn add_address(
        &self,
        name: &str,
        address: IpPrefix,
        options: AddressOptions,
    ) -> Result<(), NetlinkError> {
        let index = self.index_of(name)?;
        let mut msg = AddressMessage::default();
        msg.header.family = family_of(&address);
        msg.header.prefix_len = address.prefix();
        msg.header.index = index;
        msg.header.scope = AddressScope::Universe;
        let addr = address.addr();
        match addr {
            IpAddr::V4(_) => {
                msg.attributes.push(AddressAttribute::Local(addr));
                msg.attributes.push(AddressAttribute::Address(addr));
                if !options.no_broadcast {
                    if let Some(b) = address.broadcast() {
                        msg.attributes.push(AddressAttribute::Broadcast(b));
                    }
                }
            }
            IpAddr::V6(_) => {
                msg.attributes.push(AddressAttribute::Address(addr));
                if options.nodad {
                    msg.header.flags = AddressHeaderFlags::Nodad;
                    msg.attributes
                        .push(AddressAttribute::Flags(AddressFlags::Nodad));
                }
            }
        }
        let target = format!("{address} dev {name}");
        let ctx = Ctx {
            op: "cannot add address",
            target: &target,
        };
        self.lock().request_ack(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &ctx,
        )
    }

    fn delete_address(&self, name: &str, address: IpPrefix) -> Result<(), NetlinkError> {
        let index = self.index_of(name)?;
        let mut msg = AddressMessage::default();
        msg.header.family = family_of(&address);
        msg.header.prefix_len = address.prefix();
        msg.header.index = index;
        let addr = address.addr();
        if addr.is_ipv4() {
            msg.attributes.push(AddressAttribute::Local(addr));
        }
        msg.attributes.push(AddressAttribute::Address(addr));
        let target = format!("{address} dev {name}");
        let ctx = Ctx {
            op: "cannot delete address",
            target: &target,
        };
        self.lock()
            .request_ack(RouteNetlinkMessage::DelAddress(msg), 0, &ctx)
    }

    fn addresses(&self, name: Option<&str>) -> Result<Vec<AddressEntry>, NetlinkError> {
        let index = match name {
            Some(n) => Some(self.index_of(n)?),
            None => None,
        };
        let mut req = AddressMessage::default();
        if let Some(i) = index {
            // With strict checking the kernel filters the dump by index.
            req.header.index = i;
        }
        let ctx = Ctx {
            op: "cannot list addresses",
            target: name.unwrap_or(""),
        };
        let replies = self
            .lock()
            .dump(RouteNetlinkMessage::GetAddress(req), &ctx)?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => decode_address(a),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }

    fn add_route(&self, route: &RouteSpec) -> Result<(), NetlinkError> {
        if route.gateway.is_none() && route.device.is_none() {
            return Err(NetlinkError::Invalid {
                what: "route without gateway or device",
                value: route.destination.to_string(),
            });
        }
        let msg = self.route_message(route, false)?;
        let target = route_target(route);
        let ctx = Ctx {
            op: "cannot add route",
            target: &target,
        };
        self.lock().request_ack(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &ctx,
        )
    }

    fn delete_route(&self, route: &RouteSpec) -> Result<(), NetlinkError> {
        let msg = self.route_message(route, true)?;
        let target = route_target(route);
        let ctx = Ctx {
            op: "cannot delete route",
            target: &target,
        };
        self.lock()
            .request_ack(RouteNetlinkMessage::DelRoute(msg), 0, &ctx)
    }

    fn routes(&self, family: Option<Family>) -> Result<Vec<RouteEntry>, NetlinkError> {
        let mut req = RouteMessage::default();
        req.header.address_family = match family {
            Some(Family::V4) => AddressFamily::Inet,
            Some(Family::V6) => AddressFamily::Inet6,
            None => AddressFamily::Unspec,
        };
        let ctx = Ctx {
            op: "cannot list routes",
            target: "",
        };
        let replies = self.lock().dump(RouteNetlinkMessage::GetRoute(req), &ctx)?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => decode_route(r),
                _ => None,
            })
            .filter(|r| r.table == u32::from(RouteHeader::RT_TABLE_MAIN))
            .collect())
    }
}
