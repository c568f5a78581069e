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
    /// The port's UUID.
    pub uuid: Uuid,
    /// Owning domain's name.
    pub owner_name: String,
    /// Owning domain's UUID.
    pub owner_uuid: Uuid,
    /// `<group>`: the portgroup.
    pub group: Option<String>,
    /// Guest MAC address.
    pub mac: MacAddr,
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
        parse_port(doc.root_element())
    }

    /// Format like libvirt's `virNetworkPortDefFormat`.
    pub fn to_xml(&self) -> String {
        format_port(self)
    }
}

fn parse_port(root: Node) -> Result<PortDef, Error> {
    let mut def = PortDef::default();
    let Some(uuid) = xml::child_text(root, "uuid") else {
        return Err(internal("network port has no uuid".into()));
    };
    def.uuid =
        Uuid::parse(&uuid).ok_or_else(|| internal(format!("Unable to parse UUID '{uuid}'")))?;
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
    let Some(mac) = xml::first_child_attr(root, "mac", "address") else {
        return Err(internal("network port has no mac".into()));
    };
    def.mac =
        MacAddr::parse(mac).ok_or_else(|| internal(format!("Unable to parse MAC '{mac}'")))?;
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
    buf.add(&format!("<mac address='{}'/>\n", def.mac));
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
    buf.adjust(-2);
    buf.add("</networkport>\n");
    buf.into_string()
}
