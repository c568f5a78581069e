//! The networkport XML (`virNetworkPortDef`): a guest interface's port on a
//! network, as created by `virNetworkPortCreateXML` and shown by
//! `net-port-dumpxml`.

use roxmltree::Node;

use crate::addr::{MacAddr, PciAddress, Uuid};
use crate::error::{Error, ErrorKind};
use crate::format::{format_pci, format_port_options};
use crate::model::{
    Bandwidth, HostdevDriver, HostdevDriverName, MacTableManager, TristateBool, VirtPortProfile,
    Vlan,
};
use crate::netdev;
use crate::parse::{parse_hostdev_driver, parse_pci_address};
use crate::xml::{self, Buf, child, escape, escape_text, prop};

/// macvtap mode of a `direct` plug (`virNetDevMacVLanMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MacvlanMode {
    /// `vepa` (the default)
    #[default]
    Vepa,
    /// `private`
    Private,
    /// `bridge`
    Bridge,
    /// `passthrough`
    Passthrough,
}

impl MacvlanMode {
    /// libvirt's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Private => "private",
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Passthrough => "passthrough",
        }
    }

    /// Look up by name.
    pub fn from_name(s: &str) -> Option<MacvlanMode> {
        match s {
            "vepa" => Some(MacvlanMode::Vepa),
            "private" => Some(MacvlanMode::Private),
            "bridge" => Some(MacvlanMode::Bridge),
            "passthrough" => Some(MacvlanMode::Passthrough),
            _ => None,
        }
    }
}

/// How the port is plugged into the host (`<plug type=…>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PortPlug {
    /// No `<plug>` (or `type='none'`).
    #[default]
    None,
    /// `type='network'`: a tap on a libvirt-managed bridge.
    Network {
        /// Bridge name.
        bridge: String,
        /// The bridge's MAC table manager.
        mac_table_manager: MacTableManager,
    },
    /// `type='bridge'`: a tap on a host bridge.
    Bridge {
        /// Bridge name.
        bridge: String,
        /// The bridge's MAC table manager.
        mac_table_manager: MacTableManager,
    },
    /// `type='direct'`: macvtap on a host device.
    Direct {
        /// The link device.
        linkdev: String,
        /// macvtap mode.
        mode: MacvlanMode,
    },
    /// `type='hostdev-pci'`: a PCI device assigned to the guest.
    HostdevPci {
        /// `managed=`.
        managed: TristateBool,
        /// `<driver>`.
        driver: HostdevDriver,
        /// The device.
        addr: PciAddress,
    },
}

impl PortPlug {
    /// libvirt's plug type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            PortPlug::None => "none",
            PortPlug::Network { .. } => "network",
            PortPlug::Bridge { .. } => "bridge",
            PortPlug::Direct { .. } => "direct",
            PortPlug::HostdevPci { .. } => "hostdev-pci",
        }
    }
}

/// A network port definition (`virNetworkPortDef`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortDef {
    /// The port's UUID. Nil only in a port being created with
    /// [`PortDef::parse_for_create`] that left it out: the network assigns
    /// one.
    pub uuid: Uuid,
    /// Owning domain's name.
    pub owner_name: String,
    /// Owning domain's UUID.
    pub owner_uuid: Uuid,
    /// `<group>`: the portgroup.
    pub group: Option<String>,
    /// Guest MAC address. Always present in libvirt's format; a port
    /// being created with [`PortDef::parse_for_create`] may leave it out,
    /// and the network assigns one.
    pub mac: Option<MacAddr>,
    /// `<virtualport>`.
    pub virt_port_profile: Option<VirtPortProfile>,
    /// `<bandwidth>`.
    pub bandwidth: Option<Bandwidth>,
    /// `<bandwidth classID=…>` (0 = none).
    pub class_id: u32,
    /// `<vlan>`.
    pub vlan: Option<Vlan>,
    /// `<port isolated=…>`.
    pub isolated_port: TristateBool,
    /// `<rxfilters trustGuest=…>`.
    pub trust_guest_rx_filters: TristateBool,
    /// `<plug>`.
    pub plug: PortPlug,
    /// virtnet's `<virtnet:device>` extension: the host device realising
    /// the port.
    pub device: Option<PortDevice>,
}

/// Namespace of virtnet's networkport extension.
pub const VIRTNET_PORT_NAMESPACE: &str = "http://virtnet.dev/schemas/networkport/1.0";

/// What kind of host device realises a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortDeviceKind {
    /// A TAP device (plug types network and bridge).
    Tap,
    /// A macvtap device (plug type direct).
    Macvtap,
    /// A PCI device handed to the guest (plug type hostdev-pci).
    Hostdev,
}

impl PortDeviceKind {
    /// The name used in XML.
    pub fn as_str(self) -> &'static str {
        match self {
            PortDeviceKind::Tap => "tap",
            PortDeviceKind::Macvtap => "macvtap",
            PortDeviceKind::Hostdev => "hostdev",
        }
    }

    fn from_name(s: &str) -> Option<PortDeviceKind> {
        [
            PortDeviceKind::Tap,
            PortDeviceKind::Macvtap,
            PortDeviceKind::Hostdev,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// `<virtnet:device xmlns:virtnet='http://virtnet.dev/schemas/networkport/1.0' …/>`:
/// how virtnet realises the port on the host. On input every attribute is
/// a request (all optional); net-port-dumpxml shows what was done.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortDevice {
    /// `type=`: the kind of device (filled in by the daemon).
    pub kind: Option<PortDeviceKind>,
    /// `name=`: the device name, or a template with `%d` (default
    /// `vnet%d` for TAPs, `macvtap%d` for macvtaps).
    pub name: Option<String>,
    /// `path=`: the character device a hypervisor opens (macvtap).
    pub path: Option<String>,
    /// `user=`: uid owning the TAP (an unprivileged QEMU).
    pub user: Option<u32>,
    /// `group=`: gid owning the TAP.
    pub group: Option<u32>,
    /// `vnetHdr=`: create the TAP with IFF_VNET_HDR (default yes).
    pub vnet_hdr: TristateBool,
    /// `queues=`: a multiqueue TAP with this many queues.
    pub queues: Option<u32>,
    /// `model=`: the guest NIC model, for `domiflist` and QEMU arguments.
    pub model: Option<String>,
    /// `persistent='yes'`: the attachment is part of the configuration and
    /// is recreated whenever the network starts.
    pub persistent: bool,
}

fn internal(msg: String) -> Error {
    Error::internal(msg)
}

/// `string(./a/b)`: text of the first `b` under any `a`.
fn nested_text(root: Node, a: &str, b: &str) -> Option<String> {
    xml::children(root, a)
        .into_iter()
        .find_map(|n| child(n, b))
        .map(xml::text_content)
        .filter(|s| !s.is_empty())
}

impl PortDef {
    /// Parse `<networkport>` XML like libvirt's `virNetworkPortDefParseString`.
    pub fn parse(xml_text: &str) -> Result<PortDef, Error> {
        Self::parse_with(xml_text, true)
    }

    /// Parse a port to be created: like [`PortDef::parse`], but `<uuid>`
    /// and `<mac>` may be left out, for the network to assign. A missing
    /// uuid is the nil UUID here, a missing MAC `None`.
    pub fn parse_for_create(xml_text: &str) -> Result<PortDef, Error> {
        Self::parse_with(xml_text, false)
    }

    /// Whether the network is to assign this port's uuid.
    pub fn needs_uuid(&self) -> bool {
        self.uuid == Uuid::default()
    }

    fn parse_with(xml_text: &str, complete: bool) -> Result<PortDef, Error> {
        let doc = xml::parse_document(xml_text, "(networkport_definition)", Some("networkport"))
            .map_err(|e| {
                if e.kind() == ErrorKind::XmlError
                    && e.detail()
                        .is_some_and(|d| d.starts_with("expecting root element"))
                {
                    Error::xml("unknown root element for network port")
                } else {
                    e
                }
            })?;
        parse_port(doc.root_element(), complete)
    }

    /// Format like libvirt's `virNetworkPortDefFormat`.
    pub fn to_xml(&self) -> String {
        format_port(self)
    }
}

/// `complete`: the port must name its uuid and MAC (as libvirt requires of
/// every port); otherwise either may be left out, for the network to assign.
fn parse_port(root: Node, complete: bool) -> Result<PortDef, Error> {
    let mut def = PortDef::default();
    match xml::child_text(root, "uuid") {
        Some(uuid) => {
            def.uuid = Uuid::parse(&uuid)
                .ok_or_else(|| internal(format!("Unable to parse UUID '{uuid}'")))?;
        }
        None if complete => return Err(internal("network port has no uuid".into())),
        None => {}
    }
    let Some(owner_name) = nested_text(root, "owner", "name") else {
        return Err(internal("network port has no owner name".into()));
    };
    def.owner_name = owner_name;
    let Some(owner_uuid) = nested_text(root, "owner", "uuid") else {
        return Err(internal("network port has no owner UUID".into()));
    };
    def.owner_uuid = Uuid::parse(&owner_uuid)
        .ok_or_else(|| internal(format!("Unable to parse UUID '{owner_uuid}'")))?;
    def.group = xml::child_text(root, "group");
    if let Some(v) = child(root, "virtualport") {
        def.virt_port_profile =
            Some(netdev::parse_virtualport(v, false)?).filter(|vp| !vp.is_empty());
    }
    match xml::first_child_attr(root, "mac", "address") {
        Some(mac) => {
            def.mac = Some(
                MacAddr::parse(mac)
                    .ok_or_else(|| internal(format!("Unable to parse MAC '{mac}'")))?,
            );
        }
        None if complete => return Err(internal("network port has no mac".into())),
        None => {}
    }
    if let Some(d) = root.children().find(|n| {
        n.is_element()
            && n.tag_name().name() == "device"
            && n.tag_name().namespace() == Some(VIRTNET_PORT_NAMESPACE)
    }) {
        def.device = Some(parse_device(d)?);
    }
    if let Some(b) = child(root, "bandwidth") {
        let (bw, class_id) = netdev::parse_bandwidth(b, true, true)?;
        // libvirt only formats classID inside a non-empty <bandwidth>.
        def.class_id = if bw.is_some() {
            class_id.unwrap_or(0)
        } else {
            0
        };
        def.bandwidth = bw;
    }
    if let Some(v) = child(root, "vlan") {
        def.vlan = Some(netdev::parse_vlan(v)?);
    }
    def.isolated_port = xml::prop_tristate(child(root, "port"), "isolated")?;
    def.trust_guest_rx_filters = xml::prop_tristate(child(root, "rxfilters"), "trustGuest")?;
    let Some(plug) = child(root, "plug") else {
        return Ok(def);
    };
    let ty = xml::prop_enum(
        plug,
        "type",
        |s| {
            ["none", "network", "bridge", "direct", "hostdev-pci"]
                .into_iter()
                .find(|t| *t == s)
        },
        None,
    )?
    .unwrap_or("none");
    def.plug = match ty {
        "network" | "bridge" => {
            let Some(bridge) = prop(plug, "bridge") else {
                return Err(Error::xml("Missing network port bridge name"));
            };
            let mut mtm = MacTableManager::Default;
            if let Some(m) = prop(plug, "macTableManager") {
                mtm = match MacTableManager::from_name(m) {
                    Some(t) if t != MacTableManager::Default => t,
                    _ => {
                        return Err(Error::xml(format!(
                            "Invalid macTableManager setting '{m}' in network port"
                        )));
                    }
                };
            }
            if ty == "network" {
                PortPlug::Network {
                    bridge: bridge.to_string(),
                    mac_table_manager: mtm,
                }
            } else {
                PortPlug::Bridge {
                    bridge: bridge.to_string(),
                    mac_table_manager: mtm,
                }
            }
        }
        "direct" => {
            let Some(dev) = prop(plug, "dev") else {
                return Err(Error::xml("Missing network port link device name"));
            };
            let mut mode = MacvlanMode::Vepa;
            if let Some(m) = prop(plug, "mode") {
                mode = MacvlanMode::from_name(m).ok_or_else(|| {
                    Error::xml(format!("Invalid mode setting '{m}' in network port"))
                })?;
            }
            PortPlug::Direct {
                linkdev: dev.to_string(),
                mode,
            }
        }
        "hostdev-pci" => {
            let managed = xml::prop_tristate(Some(plug), "managed")?;
            let driver = match child(plug, "driver") {
                Some(d) => parse_hostdev_driver(d)?,
                None => HostdevDriver {
                    name: HostdevDriverName::Default,
                    model: None,
                },
            };
            let Some(a) = child(plug, "address") else {
                return Err(Error::xml("Missing network port PCI address"));
            };
            PortPlug::HostdevPci {
                managed,
                driver,
                addr: parse_pci_address(a)?,
            }
        }
        _ => PortPlug::None,
    };
    Ok(def)
}

fn parse_device(node: Node) -> Result<PortDevice, Error> {
    let bad = |attr: &str, v: &str| {
        Error::xml(format!(
            "invalid value '{v}' of attribute '{attr}' in <virtnet:device> of network port"
        ))
    };
    let num = |attr: &str| -> Result<Option<u32>, Error> {
        node.attribute(attr)
            .map(|v| v.parse::<u32>().map_err(|_| bad(attr, v)))
            .transpose()
    };
    let mut dev = PortDevice {
        user: num("user")?,
        group: num("group")?,
        queues: num("queues")?,
        ..PortDevice::default()
    };
    if dev.queues == Some(0) {
        return Err(bad("queues", "0"));
    }
    if let Some(k) = node.attribute("type") {
        dev.kind = Some(PortDeviceKind::from_name(k).ok_or_else(|| bad("type", k))?);
    }
    if let Some(n) = node.attribute("name") {
        if n.is_empty()
            || n.len() > 15
            || n.contains(|c: char| c == '/' || c.is_whitespace() || c.is_control())
            || n.matches('%').count() > 1
            || (n.contains('%') && !n.contains("%d"))
        {
            return Err(bad("name", n));
        }
        dev.name = Some(n.to_string());
    }
    dev.path = node.attribute("path").map(str::to_string);
    dev.model = node.attribute("model").map(str::to_string);
    if let Some(m) = &dev.model {
        if m.is_empty()
            || !m
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad("model", m));
        }
    }
    if let Some(v) = node.attribute("vnetHdr") {
        dev.vnet_hdr = TristateBool::from_yes_no(v).ok_or_else(|| bad("vnetHdr", v))?;
    }
    if let Some(v) = node.attribute("persistent") {
        dev.persistent = TristateBool::from_yes_no(v)
            .ok_or_else(|| bad("persistent", v))?
            .is_yes();
    }
    Ok(dev)
}

fn format_device(buf: &mut Buf, dev: &PortDevice) {
    let mut s = format!("<virtnet:device xmlns:virtnet='{VIRTNET_PORT_NAMESPACE}'");
    if let Some(k) = dev.kind {
        s.push_str(&format!(" type='{}'", k.as_str()));
    }
    if let Some(n) = &dev.name {
        s.push_str(&format!(" name='{}'", escape(n)));
    }
    if let Some(p) = &dev.path {
        s.push_str(&format!(" path='{}'", escape(p)));
    }
    if let Some(u) = dev.user {
        s.push_str(&format!(" user='{u}'"));
    }
    if let Some(g) = dev.group {
        s.push_str(&format!(" group='{g}'"));
    }
    if let Some(v) = dev.vnet_hdr.as_str() {
        s.push_str(&format!(" vnetHdr='{v}'"));
    }
    if let Some(q) = dev.queues {
        s.push_str(&format!(" queues='{q}'"));
    }
    if let Some(m) = &dev.model {
        s.push_str(&format!(" model='{}'", escape(m)));
    }
    if dev.persistent {
        s.push_str(" persistent='yes'");
    }
    s.push_str("/>\n");
    buf.add(&s);
}

fn format_port(def: &PortDef) -> String {
    let mut buf = Buf::new();
    buf.add("<networkport>\n");
    buf.adjust(2);
    buf.add(&format!("<uuid>{}</uuid>\n", def.uuid));
    buf.add("<owner>\n");
    buf.adjust(2);
    buf.add(&format!("<name>{}</name>\n", escape_text(&def.owner_name)));
    buf.add(&format!("<uuid>{}</uuid>\n", def.owner_uuid));
    buf.adjust(-2);
    buf.add("</owner>\n");
    if let Some(g) = &def.group {
        buf.add(&format!("<group>{}</group>\n", escape_text(g)));
    }
    if let Some(mac) = def.mac {
        buf.add(&format!("<mac address='{mac}'/>\n"));
    }
    netdev::format_virtualport(&mut buf, def.virt_port_profile.as_ref());
    netdev::format_bandwidth(&mut buf, def.bandwidth.as_ref(), def.class_id);
    netdev::format_vlan(&mut buf, def.vlan.as_ref());
    format_port_options(&mut buf, def.isolated_port);
    if let Some(t) = def.trust_guest_rx_filters.as_str() {
        buf.add(&format!("<rxfilters trustGuest='{t}'/>\n"));
    }
    match &def.plug {
        PortPlug::None => {}
        PortPlug::Network {
            bridge,
            mac_table_manager,
        }
        | PortPlug::Bridge {
            bridge,
            mac_table_manager,
        } => {
            let mut s = format!(
                "<plug type='{}' bridge='{}'",
                def.plug.type_name(),
                escape(bridge)
            );
            if *mac_table_manager != MacTableManager::Default {
                s.push_str(&format!(
                    " macTableManager='{}'",
                    mac_table_manager.as_str()
                ));
            }
            s.push_str("/>\n");
            buf.add(&s);
        }
        PortPlug::Direct { linkdev, mode } => {
            buf.add(&format!(
                "<plug type='direct' dev='{}' mode='{}'/>\n",
                escape(linkdev),
                mode.as_str()
            ));
        }
        PortPlug::HostdevPci {
            managed,
            driver,
            addr,
        } => {
            let mut s = String::from("<plug type='hostdev-pci'");
            if let Some(m) = managed.as_str() {
                s.push_str(&format!(" managed='{m}'"));
            }
            s.push_str(">\n");
            buf.add(&s);
            buf.adjust(2);
            if !driver.is_empty() {
                let mut d = String::from("<driver");
                if driver.name != HostdevDriverName::Default {
                    d.push_str(&format!(" name='{}'", driver.name.as_str()));
                }
                if let Some(m) = &driver.model {
                    d.push_str(&format!(" model='{}'", escape(m)));
                }
                d.push_str("/>\n");
                buf.add(&d);
            }
            format_pci(&mut buf, addr, false);
            buf.adjust(-2);
            buf.add("</plug>\n");
        }
    }
    if let Some(dev) = &def.device {
        format_device(&mut buf, dev);
    }
    buf.adjust(-2);
    buf.add("</networkport>\n");
    buf.into_string()
}

#[cfg(test)]
mod create_tests {
    use super::*;

    const NO_MAC: &str = "<networkport><uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid>\
        <owner><name>vm1</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
        </networkport>";

    #[test]
    fn a_port_to_create_may_leave_out_its_mac() {
        assert_eq!(
            PortDef::parse(NO_MAC).unwrap_err().to_string(),
            "internal error: network port has no mac"
        );
        let p = PortDef::parse_for_create(NO_MAC).unwrap();
        assert_eq!(p.mac, None);
        assert!(!p.to_xml().contains("<mac"));
    }

    #[test]
    fn a_port_to_create_may_leave_out_its_uuid() {
        let xml = "<networkport><owner><name>vm1</name>\
            <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
            <mac address='52:54:00:11:22:33'/></networkport>";
        assert_eq!(
            PortDef::parse(xml).unwrap_err().to_string(),
            "internal error: network port has no uuid"
        );
        let p = PortDef::parse_for_create(xml).unwrap();
        assert!(p.needs_uuid());
        assert!(!PortDef::parse_for_create(NO_MAC).unwrap().needs_uuid());
        // A uuid that is there must still be one.
        let bad = xml.replace("<owner>", "<uuid>nope</uuid><owner>");
        assert_eq!(
            PortDef::parse_for_create(&bad).unwrap_err().to_string(),
            "internal error: Unable to parse UUID 'nope'"
        );
    }
}
