//! The typed model of libvirt's Network XML (`virNetworkDef` and friends).
//!
//! Field names follow libvirt's C structures (`virNetworkDef`,
//! `virNetworkIPDef`, `virNetworkDHCPHostDef`, `virNetworkDNSDef`, …) in
//! snake case. Where libvirt uses a sentinel (0, NULL, `_specified` flags)
//! the model uses `Option` or an enum with an explicit default variant.

use std::net::{IpAddr, Ipv4Addr};

use crate::addr::{MacAddr, PciAddress, Uuid};
use crate::metadata::XmlElement;

/// libvirt's `virTristateBool`: an optional yes/no attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TristateBool {
    /// The attribute was not given.
    #[default]
    Absent,
    /// `yes`
    Yes,
    /// `no`
    No,
}

impl TristateBool {
    /// `Some("yes")`, `Some("no")`, or `None` when absent.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            TristateBool::Absent => None,
            TristateBool::Yes => Some("yes"),
            TristateBool::No => Some("no"),
        }
    }

    /// Parse `yes` / `no` (exact, as libvirt's enum lookup).
    pub fn from_yes_no(s: &str) -> Option<TristateBool> {
        match s {
            "yes" => Some(TristateBool::Yes),
            "no" => Some(TristateBool::No),
            _ => None,
        }
    }

    /// True only for an explicit `yes`.
    pub fn is_yes(self) -> bool {
        self == TristateBool::Yes
    }

    /// True only for an explicit `no`.
    pub fn is_no(self) -> bool {
        self == TristateBool::No
    }

    /// True unless the attribute was absent.
    pub fn is_set(self) -> bool {
        self != TristateBool::Absent
    }
}

/// The forward mode of a network (`<forward mode='…'>`), libvirt's
/// `virNetworkForwardType`. `None` means no `<forward>` element (isolated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ForwardMode {
    /// No `<forward>`: an isolated network.
    #[default]
    None,
    /// `nat`: NAT to the outside (the default when `<forward>` has no mode).
    Nat,
    /// `route`: routed without NAT.
    Route,
    /// `open`: no firewall rules at all.
    Open,
    /// `bridge`: an existing host bridge (or macvtap bridge mode with a pool).
    Bridge,
    /// `private`: macvtap private mode.
    Private,
    /// `vepa`: macvtap VEPA mode.
    Vepa,
    /// `passthrough`: macvtap passthrough mode.
    Passthrough,
    /// `hostdev`: SR-IOV VF assignment by PCI address.
    Hostdev,
}

impl ForwardMode {
    /// All modes in libvirt's enum order.
    pub const ALL: [ForwardMode; 9] = [
        ForwardMode::None,
        ForwardMode::Nat,
        ForwardMode::Route,
        ForwardMode::Open,
        ForwardMode::Bridge,
        ForwardMode::Private,
        ForwardMode::Vepa,
        ForwardMode::Passthrough,
        ForwardMode::Hostdev,
    ];

    /// libvirt's name for the mode (`none`, `nat`, `route`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardMode::None => "none",
            ForwardMode::Nat => "nat",
            ForwardMode::Route => "route",
            ForwardMode::Open => "open",
            ForwardMode::Bridge => "bridge",
            ForwardMode::Private => "private",
            ForwardMode::Vepa => "vepa",
            ForwardMode::Passthrough => "passthrough",
            ForwardMode::Hostdev => "hostdev",
        }
    }

    /// Look a mode up by libvirt's name (including `none`).
    pub fn from_name(s: &str) -> Option<ForwardMode> {
        ForwardMode::ALL.iter().copied().find(|m| m.as_str() == s)
    }

    /// The modes where libvirt creates and manages the bridge itself
    /// (isolated, nat, route, open): these get a bridge name, MAC, IPs, DNS.
    pub fn is_virtual(self) -> bool {
        matches!(
            self,
            ForwardMode::None | ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open
        )
    }

    /// The macvtap ("direct") modes using a pool of host interfaces.
    pub fn is_direct(self) -> bool {
        matches!(
            self,
            ForwardMode::Bridge
                | ForwardMode::Private
                | ForwardMode::Vepa
                | ForwardMode::Passthrough
        )
    }
}

impl std::fmt::Display for ForwardMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<bridge macTableManager='…'>`, libvirt's `virNetworkBridgeMACTableManagerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MacTableManager {
    /// Not set.
    #[default]
    Default,
    /// `kernel`: the bridge learns and floods as usual.
    Kernel,
    /// `libvirt`: learning/flooding off, libvirt adds FDB entries.
    Libvirt,
}

impl MacTableManager {
    /// libvirt's name (`default`, `kernel`, `libvirt`).
    pub fn as_str(self) -> &'static str {
        match self {
            MacTableManager::Default => "default",
            MacTableManager::Kernel => "kernel",
            MacTableManager::Libvirt => "libvirt",
        }
    }

    /// Look up by name; `default` is a valid name but never accepted in XML.
    pub fn from_name(s: &str) -> Option<MacTableManager> {
        match s {
            "default" => Some(MacTableManager::Default),
            "kernel" => Some(MacTableManager::Kernel),
            "libvirt" => Some(MacTableManager::Libvirt),
            _ => None,
        }
    }
}

/// PCI passthrough driver backend (`<driver name='…'>`),
/// libvirt's `virDeviceHostdevPCIDriverName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HostdevDriverName {
    /// Not set.
    #[default]
    Default,
    /// `kvm` (legacy device assignment).
    Kvm,
    /// `vfio`.
    Vfio,
    /// `xen`.
    Xen,
}

impl HostdevDriverName {
    /// libvirt's name.
    pub fn as_str(self) -> &'static str {
        match self {
            HostdevDriverName::Default => "default",
            HostdevDriverName::Kvm => "kvm",
            HostdevDriverName::Vfio => "vfio",
            HostdevDriverName::Xen => "xen",
        }
    }

    /// Look up by name.
    pub fn from_name(s: &str) -> Option<HostdevDriverName> {
        match s {
            "default" => Some(HostdevDriverName::Default),
            "kvm" => Some(HostdevDriverName::Kvm),
            "vfio" => Some(HostdevDriverName::Vfio),
            "xen" => Some(HostdevDriverName::Xen),
            _ => None,
        }
    }
}

/// `<driver name='…' model='…'/>` for hostdev pools and hostdev-pci plugs
/// (libvirt's `virDeviceHostdevPCIDriverInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HostdevDriver {
    /// The backend name.
    pub name: HostdevDriverName,
    /// The VFIO variant driver model (e.g. `vfio-pci-igb`).
    pub model: Option<String>,
}

impl HostdevDriver {
    /// True when nothing is set (no `<driver>` is formatted).
    pub fn is_empty(&self) -> bool {
        self.name == HostdevDriverName::Default && self.model.is_none()
    }
}

/// One device of a forward pool (`virNetworkForwardIfDef`'s device union).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardDevice {
    /// `<interface dev='…'/>` (or `<forward dev='…'>`): a network device name.
    Netdev(String),
    /// `<address type='pci' …/>`: an SR-IOV VF by PCI address.
    Pci(PciAddress),
}

/// A pool member of `<forward>` (`virNetworkForwardIfDef`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForwardIfDef {
    /// The device.
    pub device: ForwardDevice,
    /// Runtime: how many guest interfaces use this device (shown when active).
    pub connections: u32,
}

impl ForwardIfDef {
    /// The network device name, if this is a `<interface dev=…>` entry.
    pub fn dev(&self) -> Option<&str> {
        match &self.device {
            ForwardDevice::Netdev(d) => Some(d),
            ForwardDevice::Pci(_) => None,
        }
    }
}

/// `<pf dev='…'/>` (`virNetworkForwardPfDef`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForwardPfDef {
    /// The SR-IOV physical function's device name.
    pub dev: String,
    /// Runtime connection count.
    pub connections: u32,
}

/// `<nat><address start end/></nat>`: the SNAT source address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatAddrRange {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address.
    pub end: Ipv4Addr,
}

/// `<nat><port start end/></nat>`: the SNAT/MASQUERADE source port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub start: u32,
    /// Last port.
    pub end: u32,
}

/// `<forward>` (`virNetworkForwardDef`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardDef {
    /// The forward mode; `None` when there is no `<forward>` element.
    pub mode: ForwardMode,
    /// `managed='yes'` (hostdev mode).
    pub managed: bool,
    /// `<driver>` for hostdev pools.
    pub driver: HostdevDriver,
    /// `<pf dev=…/>` (at most one).
    pub pfs: Vec<ForwardPfDef>,
    /// The device pool: `<interface>`s or `<address>`es. When a `<pf>` is
    /// given this holds the VFs found at start (runtime, hidden inactive).
    pub ifs: Vec<ForwardIfDef>,
    /// `<nat><address …/>`.
    pub nat_addr: Option<NatAddrRange>,
    /// `<nat><port …/>`.
    pub nat_port: Option<PortRange>,
    /// `<nat ipv6='yes|no'>`.
    pub nat_ipv6: TristateBool,
}

impl ForwardDef {
    /// The n-th pool device's name, if it is a network device
    /// (libvirt's `virNetworkDefForwardIf`).
    pub fn dev(&self, n: usize) -> Option<&str> {
        self.ifs.get(n).and_then(ForwardIfDef::dev)
    }
}

/// `<lease unit='…'>` (`virNetworkDHCPLeaseTimeUnitType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LeaseUnit {
    /// `seconds`
    Seconds,
    /// `minutes` (the default)
    #[default]
    Minutes,
    /// `hours`
    Hours,
}

impl LeaseUnit {
    /// libvirt's name.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseUnit::Seconds => "seconds",
            LeaseUnit::Minutes => "minutes",
            LeaseUnit::Hours => "hours",
        }
    }

    /// Look up by name.
    pub fn from_name(s: &str) -> Option<LeaseUnit> {
        match s {
            "seconds" => Some(LeaseUnit::Seconds),
            "minutes" => Some(LeaseUnit::Minutes),
            "hours" => Some(LeaseUnit::Hours),
            _ => None,
        }
    }
}

/// `<lease expiry='…' unit='…'/>` (`virNetworkDHCPLeaseTimeDef`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseDef {
    /// Lease length in `unit`s; 0 means infinite.
    pub expiry: u64,
    /// Unit of `expiry`.
    pub unit: LeaseUnit,
}

impl LeaseDef {
    /// The lease length in seconds, `None` for an infinite lease.
    pub fn seconds(&self) -> Option<u64> {
        if self.expiry == 0 {
            return None;
        }
        Some(match self.unit {
            LeaseUnit::Seconds => self.expiry,
            LeaseUnit::Minutes => self.expiry.saturating_mul(60),
            LeaseUnit::Hours => self.expiry.saturating_mul(3600),
        })
    }
}

/// `<range start end>` in `<dhcp>` (`virNetworkDHCPRangeDef`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DhcpRangeDef {
    /// First address handed out.
    pub start: IpAddr,
    /// Last address handed out.
    pub end: IpAddr,
    /// Lease time for this range.
    pub lease: Option<LeaseDef>,
}

/// `<host>` in `<dhcp>` (`virNetworkDHCPHostDef`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DhcpHostDef {
    /// `mac=` exactly as written (IPv4 only).
    pub mac: Option<String>,
    /// `id=` (DHCPv6 DUID) as written.
    pub id: Option<String>,
    /// `name=`.
    pub name: Option<String>,
    /// `ip=`.
    pub ip: Option<IpAddr>,
    /// Lease time for this host.
    pub lease: Option<LeaseDef>,
}

impl DhcpHostDef {
    /// The parsed MAC address, if one was given.
    pub fn mac_addr(&self) -> Option<MacAddr> {
        self.mac.as_deref().and_then(MacAddr::parse)
    }
}

/// `<ip family='…'>`: which address family was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// `ipv4`
    Ipv4,
    /// `ipv6`
    Ipv6,
}

impl AddressFamily {
    /// libvirt's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressFamily::Ipv4 => "ipv4",
            AddressFamily::Ipv6 => "ipv6",
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> AddressFamily {
        match addr {
            IpAddr::V4(_) => AddressFamily::Ipv4,
            IpAddr::V6(_) => AddressFamily::Ipv6,
        }
    }
}

/// `<ip>` (`virNetworkIPDef`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpDef {
    /// `family=` as written (absent means IPv4).
    pub family: Option<AddressFamily>,
    /// The bridge's address.
    pub address: IpAddr,
    /// `prefix=` (never 0; never together with `netmask`).
    pub prefix: Option<u32>,
    /// `netmask=` (IPv4 only).
    pub netmask: Option<Ipv4Addr>,
    /// `localPtr=`.
    pub local_ptr: TristateBool,
    /// DHCP ranges.
    pub ranges: Vec<DhcpRangeDef>,
    /// DHCP static hosts.
    pub hosts: Vec<DhcpHostDef>,
    /// `<tftp root=…>` (IPv4 only).
    pub tftproot: Option<String>,
    /// `<bootp file=…>` (IPv4 only).
    pub bootfile: Option<String>,
    /// `<bootp server=…>`.
    pub bootserver: Option<IpAddr>,
}

impl IpDef {
    /// A bare definition for `address` (no prefix, no DHCP).
    pub fn new(address: IpAddr) -> IpDef {
        IpDef {
            family: None,
            address,
            prefix: None,
            netmask: None,
            local_ptr: TristateBool::Absent,
            ranges: Vec::new(),
            hosts: Vec::new(),
            tftproot: None,
            bootfile: None,
            bootserver: None,
        }
    }

    /// The prefix length libvirt uses for this address
    /// (`virNetworkIPDefPrefix`): prefix, else netmask, else classful/64.
    pub fn prefix_len(&self) -> Option<u32> {
        crate::addr::ip_prefix(
            &self.address,
            self.netmask.map(IpAddr::V4).as_ref(),
            self.prefix,
        )
    }

    /// The netmask for this address (`virNetworkIPDefNetmask`).
    pub fn netmask_addr(&self) -> Option<IpAddr> {
        if let Some(m) = self.netmask {
            return Some(IpAddr::V4(m));
        }
        crate::addr::prefix_to_netmask(self.prefix_len()?, &self.address)
    }

    /// The network address (the address with host bits cleared).
    pub fn network(&self) -> Option<IpAddr> {
        crate::addr::mask_by_prefix(&self.address, self.prefix_len()?)
    }

    /// True when `addr` lies within this address's subnet.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        match (self.prefix_len(), self.network()) {
            (Some(p), Some(net)) => crate::addr::mask_by_prefix(addr, p) == Some(net),
            _ => false,
        }
    }

    /// True for an IPv4 address.
    pub fn is_ipv4(&self) -> bool {
        self.address.is_ipv4()
    }

    /// True for an IPv6 address.
    pub fn is_ipv6(&self) -> bool {
        self.address.is_ipv6()
    }

    /// True when this `<ip>` serves DHCP (has ranges or static hosts).
    pub fn has_dhcp(&self) -> bool {
        !self.ranges.is_empty() || !self.hosts.is_empty()
    }
}

/// `<route>` (`virNetDevIPRoute`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteDef {
    /// `family=` as written.
    pub family: Option<AddressFamily>,
    /// Destination network address.
    pub address: IpAddr,
    /// `netmask=` (IPv4 only).
    pub netmask: Option<Ipv4Addr>,
    /// `prefix=` when given (0 is kept).
    pub prefix: Option<u32>,
    /// Next hop.
    pub gateway: IpAddr,
    /// `metric=` when given (never 0).
    pub metric: Option<u32>,
}

impl RouteDef {
    /// The destination prefix length (prefix, else netmask, else classful).
    pub fn prefix_len(&self) -> Option<u32> {
        crate::addr::ip_prefix(
            &self.address,
            self.netmask.map(IpAddr::V4).as_ref(),
            self.prefix,
        )
    }
}

/// `<forwarder>` in `<dns>` (`virNetworkDNSForwarder`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DnsForwarder {
    /// `addr=`.
    pub addr: Option<IpAddr>,
    /// `port=` (only with `addr`).
    pub port: Option<u16>,
    /// `domain=`.
    pub domain: Option<String>,
}

/// `<txt>` in `<dns>` (`virNetworkDNSTxtDef`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsTxtDef {
    /// Record name.
    pub name: String,
    /// Record value.
    pub value: String,
}

/// `<srv>` in `<dns>` (`virNetworkDNSSrvDef`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DnsSrvDef {
    /// `service=`.
    pub service: String,
    /// `protocol=`.
    pub protocol: String,
    /// `domain=`.
    pub domain: Option<String>,
    /// `target=`.
    pub target: Option<String>,
    /// `port=` (1–65535).
    pub port: Option<u32>,
    /// `priority=` (a 0 is not kept).
    pub priority: Option<u32>,
    /// `weight=` (a 0 is not kept).
    pub weight: Option<u32>,
}

/// `<host ip=…><hostname>…</hostname></host>` in `<dns>` (`virNetworkDNSHostDef`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsHostDef {
    /// The address.
    pub ip: IpAddr,
    /// Its names.
    pub names: Vec<String>,
}

/// `<dns>` (`virNetworkDNSDef`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsDef {
    /// `enable=`.
    pub enable: TristateBool,
    /// `forwardPlainNames=`.
    pub forward_plain_names: TristateBool,
    /// `<txt>` records.
    pub txts: Vec<DnsTxtDef>,
    /// `<host>` records.
    pub hosts: Vec<DnsHostDef>,
    /// `<srv>` records.
    pub srvs: Vec<DnsSrvDef>,
    /// `<forwarder>`s.
    pub forwarders: Vec<DnsForwarder>,
}

impl DnsDef {
    /// True when nothing would be formatted.
    pub fn is_empty(&self) -> bool {
        !self.enable.is_set()
            && !self.forward_plain_names.is_set()
            && self.txts.is_empty()
            && self.hosts.is_empty()
            && self.srvs.is_empty()
            && self.forwarders.is_empty()
    }
}

/// `<inbound>`/`<outbound>` rates (`virNetDevBandwidthRate`); 0 means unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BandwidthRate {
    /// Average rate in KiB/s.
    pub average: u64,
    /// Peak rate in KiB/s.
    pub peak: u64,
    /// Guaranteed minimum in KiB/s (inbound only).
    pub floor: u64,
    /// Burst size in KiB.
    pub burst: u64,
}

/// `<bandwidth>` (`virNetDevBandwidth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Bandwidth {
    /// `<inbound>`.
    pub inbound: Option<BandwidthRate>,
    /// `<outbound>`.
    pub outbound: Option<BandwidthRate>,
}

/// `<tag nativeMode=…>` (`virNativeVlanMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NativeVlanMode {
    /// No native VLAN.
    #[default]
    Default,
    /// `tagged`
    Tagged,
    /// `untagged`
    Untagged,
}

impl NativeVlanMode {
    /// libvirt's name.
    pub fn as_str(self) -> &'static str {
        match self {
            NativeVlanMode::Default => "default",
            NativeVlanMode::Tagged => "tagged",
            NativeVlanMode::Untagged => "untagged",
        }
    }

    /// Look up by name.
    pub fn from_name(s: &str) -> Option<NativeVlanMode> {
        match s {
            "default" => Some(NativeVlanMode::Default),
            "tagged" => Some(NativeVlanMode::Tagged),
            "untagged" => Some(NativeVlanMode::Untagged),
            _ => None,
        }
    }
}

/// `<vlan>` (`virNetDevVlan`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Vlan {
    /// `trunk='yes'` (implied by more than one tag).
    pub trunk: bool,
    /// Tag ids (0–4095), at least one.
    pub tags: Vec<u32>,
    /// The native VLAN mode, if one tag carries `nativeMode`.
    pub native_mode: NativeVlanMode,
    /// The tag id the native mode applies to.
    pub native_tag: u32,
}

/// `<virtualport type=…>` (`virNetDevVPortProfile` type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VirtPortType {
    /// No type given (parameters may still be given, to be merged).
    #[default]
    None,
    /// `802.1Qbg`
    Ieee8021Qbg,
    /// `802.1Qbh`
    Ieee8021Qbh,
    /// `openvswitch`
    Openvswitch,
    /// `midonet`
    Midonet,
}

impl VirtPortType {
    /// libvirt's name.
    pub fn as_str(self) -> &'static str {
        match self {
            VirtPortType::None => "none",
            VirtPortType::Ieee8021Qbg => "802.1Qbg",
            VirtPortType::Ieee8021Qbh => "802.1Qbh",
            VirtPortType::Openvswitch => "openvswitch",
            VirtPortType::Midonet => "midonet",
        }
    }

    /// Look up by name.
    pub fn from_name(s: &str) -> Option<VirtPortType> {
        match s {
            "none" => Some(VirtPortType::None),
            "802.1Qbg" => Some(VirtPortType::Ieee8021Qbg),
            "802.1Qbh" => Some(VirtPortType::Ieee8021Qbh),
            "openvswitch" => Some(VirtPortType::Openvswitch),
            "midonet" => Some(VirtPortType::Midonet),
            _ => None,
        }
    }
}

/// `<virtualport>` with its `<parameters>` (`virNetDevVPortProfile`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VirtPortProfile {
    /// The type.
    pub virt_port_type: VirtPortType,
    /// `managerid` (802.1Qbg).
    pub manager_id: Option<u8>,
    /// `typeid` (802.1Qbg, 24 bits).
    pub type_id: Option<u32>,
    /// `typeidversion` (802.1Qbg).
    pub type_id_version: Option<u8>,
    /// `instanceid` (802.1Qbg).
    pub instance_id: Option<Uuid>,
    /// `profileid` (802.1Qbh, openvswitch; at most 39 bytes).
    pub profile_id: Option<String>,
    /// `interfaceid` (openvswitch, midonet).
    pub interface_id: Option<Uuid>,
}

/// `<portgroup>` (`virPortGroupDef`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortGroupDef {
    /// `name=`.
    pub name: String,
    /// `default='yes'`.
    pub is_default: bool,
    /// `<virtualport>`.
    pub virt_port_profile: Option<VirtPortProfile>,
    /// `<bandwidth>`.
    pub bandwidth: Option<Bandwidth>,
    /// `<vlan>`.
    pub vlan: Option<Vlan>,
    /// `trustGuestRxFilters=`.
    pub trust_guest_rx_filters: TristateBool,
}

/// A whole network definition (`virNetworkDef`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkDef {
    /// `<uuid>`; `None` until one is given or generated
    /// ([`crate::defaults::assign_uuid`]).
    pub uuid: Option<Uuid>,
    /// `<name>`.
    pub name: String,
    /// `<title>` (one line).
    pub title: Option<String>,
    /// `<description>`.
    pub description: Option<String>,
    /// `<metadata>`, kept as an XML subtree.
    pub metadata: Option<XmlElement>,
    /// Runtime: number of guest interfaces connected (shown when active).
    pub connections: u32,
    /// `<bridge name=…>` (may be a `%d` template until defaults run).
    pub bridge: Option<String>,
    /// `<bridge zone=…>` (firewalld zone).
    pub bridge_zone: Option<String>,
    /// `<bridge macTableManager=…>`.
    pub mac_table_manager: MacTableManager,
    /// `<domain name=…>`.
    pub domain: Option<String>,
    /// `<domain localOnly=…>`.
    pub domain_local_only: TristateBool,
    /// `<domain register=…>`.
    pub domain_register: TristateBool,
    /// `<bridge delay=…>` in seconds.
    pub delay: u64,
    /// `<bridge stp=…>` (on unless `off`).
    pub stp: bool,
    /// `<mtu size=…>` (never 0).
    pub mtu: Option<u32>,
    /// `<mac address=…>` of the bridge.
    pub mac: Option<MacAddr>,
    /// `<network ipv6='yes'>`: allow guest-to-guest IPv6 without a gateway.
    pub ipv6nogw: bool,
    /// `<forward>`.
    pub forward: ForwardDef,
    /// `<ip>` elements in document order.
    pub ips: Vec<IpDef>,
    /// `<route>` elements.
    pub routes: Vec<RouteDef>,
    /// `<dns>`.
    pub dns: DnsDef,
    /// `<virtualport>` (type required at network level).
    pub virt_port_profile: Option<VirtPortProfile>,
    /// `<portgroup>`s.
    pub port_groups: Vec<PortGroupDef>,
    /// `<bandwidth>`.
    pub bandwidth: Option<Bandwidth>,
    /// `<vlan>`.
    pub vlan: Option<Vlan>,
    /// `<network trustGuestRxFilters=…>`.
    pub trust_guest_rx_filters: TristateBool,
    /// `<port isolated=…>`.
    pub isolated_port: TristateBool,
    /// `<dnsmasq:options><dnsmasq:option value=…/>` values, in order.
    pub dnsmasq_options: Vec<String>,
}

impl NetworkDef {
    /// The `n`-th `<ip>` of `family` (`None` = any family), like
    /// libvirt's `virNetworkDefGetIPByIndex`.
    pub fn ip_by_index(&self, family: Option<AddressFamily>, n: usize) -> Option<&IpDef> {
        self.ips_of(family).nth(n)
    }

    /// All `<ip>`s of `family` (`None` = all) in document order.
    pub fn ips_of(&self, family: Option<AddressFamily>) -> impl Iterator<Item = &IpDef> {
        self.ips
            .iter()
            .filter(move |ip| family.is_none_or(|f| AddressFamily::of(&ip.address) == f))
    }

    /// The IPv4 `<ip>`s.
    pub fn ipv4s(&self) -> impl Iterator<Item = &IpDef> {
        self.ips_of(Some(AddressFamily::Ipv4))
    }

    /// The IPv6 `<ip>`s.
    pub fn ipv6s(&self) -> impl Iterator<Item = &IpDef> {
        self.ips_of(Some(AddressFamily::Ipv6))
    }

    /// The `n`-th `<route>` of `family` (`virNetworkDefGetRouteByIndex`).
    pub fn route_by_index(&self, family: Option<AddressFamily>, n: usize) -> Option<&RouteDef> {
        self.routes
            .iter()
            .filter(|r| family.is_none_or(|f| AddressFamily::of(&r.address) == f))
            .nth(n)
    }

    /// The portgroup named `name`, or the default portgroup when `name` is
    /// `None` (`virPortGroupFindByName`).
    pub fn port_group(&self, name: Option<&str>) -> Option<&PortGroupDef> {
        match name {
            Some(n) => self.port_groups.iter().find(|pg| pg.name == n),
            None => self.port_groups.iter().find(|pg| pg.is_default),
        }
    }

    /// The `n`-th forward pool device name (`virNetworkDefForwardIf`).
    pub fn forward_if(&self, n: usize) -> Option<&str> {
        self.forward.dev(n)
    }
}
