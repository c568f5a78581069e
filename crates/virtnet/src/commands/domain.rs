//! virsh's domain interface commands for guests that virtnet plugs in:
//! `attach-interface`, `detach-interface`, `domiflist`, `domifaddr`, and
//! virtnet's `qemu-args`.
//!
//! virtnet runs no hypervisor, so a domain is what owns network ports: the
//! `<owner>` (name and UUID) recorded on each port of every active
//! network. A domain that holds no port has no interfaces. Attaching an
//! interface creates a port (`virNetworkPortCreateXML`) whose host device
//! — a TAP on the bridge, a macvtap, or a PCI device — a hypervisor then
//! uses (`qemu-args` prints how); detaching deletes it.
//!
//! An interface's type is how its port is plugged: `network` (a TAP on a
//! bridge virtnet runs, source: the network), `bridge` (a TAP on a host
//! bridge of a `<forward mode='bridge'>` network, source: the bridge),
//! `direct` (a macvtap) or `hostdev` (a PCI device). Every port comes from
//! a network, so `detach-interface --type network` finds any of them, and
//! `--type bridge` also finds TAPs on virtnet's own bridges (which is what
//! `attach-interface --type bridge --source virbr0` makes).

use virtnet_conf::{
    Bandwidth, BandwidthRate, MacAddr, PortDef, PortDevice, PortDeviceKind, PortPlug, Uuid,
};
use virtnet_rpc::ErrorCode;
use virtnet_rpc::protocol::{
    ConnectListAllNetworksArgs, ConnectListAllNetworksRet, NetworkArgs, NetworkGetBridgeNameRet,
    NetworkGetDhcpLeasesArgs, NetworkGetDhcpLeasesRet, NetworkListAllPortsArgs,
    NetworkListAllPortsRet, NetworkPortCreateXmlArgs, NetworkPortFlagsArgs, NetworkPortRet,
    NonnullNetwork, NonnullNetworkPort, Procedure, XmlRet, ip_addr_type, list_networks,
};

use super::{exclusive, opt_network, opt_string};
use crate::qemu;
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};
use crate::table::Table;

/// libvirt's interface types (`virDomainNetType`), for virsh's check.
const NET_TYPES: &[&str] = &[
    "user",
    "ethernet",
    "vhostuser",
    "server",
    "client",
    "mcast",
    "network",
    "bridge",
    "internal",
    "direct",
    "hostdev",
    "udp",
    "vdpa",
    "null",
    "vds",
];

/// One interface of a domain: a port and the network it is on.
#[derive(Debug, Clone)]
pub struct Iface {
    /// The network.
    pub net: NonnullNetwork,
    /// The port, as net-port-dumpxml shows it.
    pub port: PortDef,
}

impl Iface {
    /// The interface type (the Type column of domiflist).
    pub fn kind(&self) -> &'static str {
        iface_type(&self.port)
    }

    /// The Source column of domiflist.
    pub fn source(&self) -> String {
        match &self.port.plug {
            PortPlug::Bridge { bridge, .. } => bridge.clone(),
            _ => self.net.name.clone(),
        }
    }

    /// The host device's name (the Interface column), if it has one.
    pub fn device_name(&self) -> Option<&str> {
        self.port.device.as_ref().and_then(|d| d.name.as_deref())
    }

    fn handle(&self) -> NonnullNetworkPort {
        NonnullNetworkPort {
            net: self.net.clone(),
            uuid: self.port.uuid.0,
        }
    }
}

/// How a port is plugged, in libvirt's interface type names.
pub fn iface_type(port: &PortDef) -> &'static str {
    match &port.plug {
        PortPlug::Bridge { .. } => "bridge",
        PortPlug::Direct { .. } => "direct",
        PortPlug::HostdevPci { .. } => "hostdev",
        PortPlug::Network { .. } | PortPlug::None => {
            match port.device.as_ref().and_then(|d| d.kind) {
                Some(PortDeviceKind::Macvtap) => "direct",
                Some(PortDeviceKind::Hostdev) => "hostdev",
                _ => "network",
            }
        }
    }
}

/// Whether `detach-interface --type wanted` applies to an interface of
/// type `have` (see the module documentation).
pub fn type_matches(wanted: &str, have: &str) -> bool {
    wanted == have || wanted == "network" || (wanted == "bridge" && have == "network")
}

/// A stable UUID for a domain known only by name (RFC 9562 version 8,
/// from two seeded FNV-1a hashes of the name, each finished with
/// SplitMix64's mixer), so that every port of one domain names the same
/// owner.
pub fn domain_uuid(name: &str) -> Uuid {
    let fnv = |seed: u64| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
        for b in b"virtnet-domain\0".iter().chain(name.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    };
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&fnv(0).to_be_bytes());
    b[8..].copy_from_slice(&fnv(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid(b)
}

/// A random (version 4) UUID for a new port.
pub fn random_uuid() -> Result<Uuid, String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| {
            format!(
                "Unable to read from /dev/urandom: {}",
                crate::conn::strerror(&e)
            )
        })?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(Uuid(b))
}

/// Sort key putting `vnet2` before `vnet10`.
fn natural_key(s: &str) -> (String, u64, String) {
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, num) = s.split_at(s.len() - digits);
    (prefix.to_owned(), num.parse().unwrap_or(0), s.to_owned())
}

/// The networks matching `flags` ([`list_networks`]).
pub fn networks(ctl: &mut Ctl<'_>, flags: u32) -> Result<Vec<NonnullNetwork>, Failed> {
    let r: ConnectListAllNetworksRet = ctl.call(
        Procedure::ConnectListAllNetworks,
        &ConnectListAllNetworksArgs {
            need_results: 1,
            flags,
        },
    )?;
    Ok(r.nets)
}

/// The bridge of a network, if it has one.
pub fn bridge_of(ctl: &mut Ctl<'_>, net: &NonnullNetwork) -> Option<String> {
    let r: Result<NetworkGetBridgeNameRet, _> = ctl.try_call(
        Procedure::NetworkGetBridgeName,
        &NetworkArgs { net: net.clone() },
    );
    r.ok().map(|r| r.name).filter(|n| !n.is_empty())
}

/// A port's definition as the daemon shows it.
pub fn port_def(ctl: &mut Ctl<'_>, port: &NonnullNetworkPort) -> Result<PortDef, Failed> {
    let r: XmlRet = ctl.call(
        Procedure::NetworkPortGetXmlDesc,
        &NetworkPortFlagsArgs {
            port: port.clone(),
            flags: 0,
        },
    )?;
    PortDef::parse(&r.xml).map_err(|e| {
        ctl.set_error(e.to_string());
        Failed
    })
}

/// Every port of every active network (ports and networks that vanish
/// meanwhile are left out).
pub fn all_ifaces(ctl: &mut Ctl<'_>) -> Result<Vec<Iface>, Failed> {
    let mut out = Vec::new();
    for net in networks(ctl, list_networks::ACTIVE)? {
        let r: Result<NetworkListAllPortsRet, _> = ctl.try_call(
            Procedure::NetworkListAllPorts,
            &NetworkListAllPortsArgs {
                network: net.clone(),
                need_results: 1,
                flags: 0,
            },
        );
        let Ok(r) = r else { continue };
        for p in r.ports {
            if let Ok(port) = port_def(ctl, &p) {
                out.push(Iface {
                    net: net.clone(),
                    port,
                });
            }
        }
    }
    ctl.last_error = None;
    out.sort_by_key(|i| {
        (
            natural_key(i.device_name().unwrap_or("")),
            i.port.mac.map(|m| m.0),
        )
    });
    Ok(out)
}

fn owned_by(iface: &Iface, domain: &str) -> bool {
    iface.port.owner_name == domain || Uuid::parse(domain) == Some(iface.port.owner_uuid)
}

/// The interfaces of `domain` (by name or UUID).
pub fn domain_ifaces(ctl: &mut Ctl<'_>, domain: &str) -> Result<Vec<Iface>, Failed> {
    Ok(all_ifaces(ctl)?
        .into_iter()
        .filter(|i| owned_by(i, domain))
        .collect())
}

fn opt_domain<'c>(ctl: &mut Ctl<'_>, cmd: &'c ParsedCmd) -> Result<&'c str, Failed> {
    match opt_string(ctl, cmd, "domain")? {
        Some(d) => Ok(d),
        None => {
            ctl.error("Failed to get option 'domain': Mandatory option not present");
            Err(Failed)
        }
    }
}

/// virsh's exclusive flags of attach-interface and detach-interface.
fn affect_flags(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> Result<bool, Failed> {
    exclusive(ctl, cmd, "persistent", "current")?;
    exclusive(ctl, cmd, "current", "live")?;
    exclusive(ctl, cmd, "current", "config")?;
    Ok(cmd.has("config") || cmd.has("persistent"))
}

/// `average,peak,burst,floor` (virsh's `virshParseRateStr`).
fn parse_rate(ctl: &mut Ctl<'_>, s: &str) -> Result<BandwidthRate, Failed> {
    let fields: Vec<&str> = s.split(',').collect();
    if fields.len() > 4 {
        ctl.error(&format!("Rate string '{s}' has too many fields"));
        return Err(Failed);
    }
    let mut v = [0u64; 4];
    for (i, name) in ["average", "peak", "burst", "floor"].iter().enumerate() {
        if let Some(f) = fields.get(i).filter(|f| !f.is_empty()) {
            match crate::shell::global::parse_c_int(f, 10).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => v[i] = n,
                None => {
                    ctl.error(&format!("field '{name}' is malformed"));
                    return Err(Failed);
                }
            }
        }
    }
    Ok(BandwidthRate {
        average: v[0],
        peak: v[1],
        burst: v[2],
        floor: v[3],
    })
}

/// `dddd:bb:ss.f` (or `bb:ss.f`) as virsh reads a hostdev source.
fn parse_pci(s: &str) -> Option<[u32; 4]> {
    let (rest, function) = s.rsplit_once('.')?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (domain, bus, slot) = match parts.as_slice() {
        [d, b, s] => (*d, *b, *s),
        [b, s] => ("0", *b, *s),
        _ => return None,
    };
    let hex = |x: &str| u32::from_str_radix(x.trim_start_matches("0x"), 16).ok();
    Some([hex(domain)?, hex(bus)?, hex(slot)?, hex(function)?])
}

fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

pub(super) fn cmd_attach_interface(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let persistent = affect_flags(ctl, cmd)?;
    let mut vals = std::collections::HashMap::new();
    for name in [
        "type",
        "source",
        "target",
        "mac",
        "script",
        "model",
        "alias",
        "inbound",
        "outbound",
        "source-mode",
    ] {
        if let Some(v) = opt_string(ctl, cmd, name)? {
            vals.insert(name, v.to_owned());
        }
    }
    let get = |n: &str| vals.get(n).map(String::as_str);
    let (Some(ty), Some(source)) = (get("type"), get("source")) else {
        return Err(Failed);
    };
    if !NET_TYPES.contains(&ty) {
        ctl.error(&format!(
            "No support for {ty} in command 'attach-interface'"
        ));
        return Err(Failed);
    }
    if let Some(m) = get("source-mode") {
        if !matches!(m, "server" | "client") {
            ctl.error(&format!("Invalid source mode: {m}"));
            return Err(Failed);
        }
    }
    let inbound = match get("inbound") {
        Some(s) => {
            let r = parse_rate(ctl, s)?;
            if r.average == 0 && r.floor == 0 {
                ctl.error("either inbound average or floor is mandatory");
                return Err(Failed);
            }
            Some(r)
        }
        None => None,
    };
    let outbound = match get("outbound") {
        Some(s) => {
            let r = parse_rate(ctl, s)?;
            if r.average == 0 {
                ctl.error("outbound average is mandatory");
                return Err(Failed);
            }
            if r.floor != 0 {
                ctl.error("outbound floor is unsupported yet");
                return Err(Failed);
            }
            Some(r)
        }
        None => None,
    };

    // The interface as virsh writes it (--print-xml).
    let mut xml = format!("<interface type='{ty}'");
    xml.push_str(if cmd.has("managed") {
        " managed='yes'>\n"
    } else {
        ">\n"
    });
    match ty {
        "network" | "bridge" => xml.push_str(&format!("  <source {ty}='{source}'/>\n")),
        "direct" => xml.push_str(&format!("  <source dev='{source}'/>\n")),
        "hostdev" => {
            let Some([d, b, s, f]) = parse_pci(source) else {
                ctl.error(&format!(
                    "cannot parse pci address '{source}' for network interface"
                ));
                return Err(Failed);
            };
            xml.push_str(&format!(
                "  <source>\n    <address type='pci' domain='0x{d:04x}' bus='0x{b:02x}' slot='0x{s:02x}' function='0x{f:x}'/>\n  </source>\n"
            ));
        }
        "vhostuser" => {
            let Some(mode) = get("source-mode") else {
                ctl.error("source-mode is mandatory");
                return Err(Failed);
            };
            xml.push_str(&format!(
                "  <source type='unix' path='{source}' mode='{mode}'/>\n"
            ));
        }
        _ => {
            ctl.error(&format!(
                "No support for {ty} in command 'attach-interface'"
            ));
            return Err(Failed);
        }
    }
    for (opt, elem, attr) in [
        ("target", "target", "dev"),
        ("mac", "mac", "address"),
        ("script", "script", "path"),
        ("model", "model", "type"),
        ("alias", "alias", "name"),
    ] {
        if let Some(v) = get(opt) {
            xml.push_str(&format!("  <{elem} {attr}='{v}'/>\n"));
        }
    }
    if inbound.is_some() || outbound.is_some() {
        xml.push_str("  <bandwidth>\n");
        if let Some(r) = &inbound {
            xml.push_str("    <inbound");
            for (n, v) in [
                ("average", r.average),
                ("peak", r.peak),
                ("burst", r.burst),
                ("floor", r.floor),
            ] {
                if v > 0 {
                    xml.push_str(&format!(" {n}='{v}'"));
                }
            }
            xml.push_str("/>\n");
        }
        if let Some(r) = &outbound {
            xml.push_str(&format!("    <outbound average='{}'", r.average));
            for (n, v) in [("peak", r.peak), ("burst", r.burst)] {
                if v > 0 {
                    xml.push_str(&format!(" {n}='{v}'"));
                }
            }
            xml.push_str("/>\n");
        }
        xml.push_str("  </bandwidth>\n");
    }
    xml.push_str("</interface>\n");
    if cmd.has("print-xml") {
        ctl.print(&xml);
        return Ok(());
    }

    let domain = opt_domain(ctl, cmd)?;
    let failed = |ctl: &mut Ctl<'_>, why: Option<String>| {
        if let Some(w) = why {
            ctl.set_error(w);
        }
        ctl.error("Failed to attach interface");
        Err(Failed)
    };
    if !matches!(ty, "network" | "bridge") {
        return failed(
            ctl,
            Some(format!(
                "Operation not supported: virtnet attaches interfaces of type 'network' or 'bridge', not '{ty}'"
            )),
        );
    }
    if get("script").is_some() {
        return failed(
            ctl,
            Some(
                "unsupported configuration: virtnet plugs interfaces itself and runs no interface scripts"
                    .into(),
            ),
        );
    }
    let mac = match get("mac") {
        None => None,
        Some(m) => match MacAddr::parse(m) {
            None => {
                return failed(
                    ctl,
                    Some(format!("XML error: unable to parse mac address '{m}'")),
                );
            }
            Some(a) if a.is_multicast() => {
                return failed(
                    ctl,
                    Some(format!(
                        "XML error: expected unicast mac address, found multicast '{m}'"
                    )),
                );
            }
            Some(a) => Some(a),
        },
    };
    let net = if ty == "network" {
        let r = ctl.connection()?.lookup_by_name(source);
        match r {
            Ok(n) => n,
            Err(e) => return failed(ctl, Some(e.message)),
        }
    } else {
        let mut found = None;
        for n in networks(ctl, 0)? {
            if bridge_of(ctl, &n).as_deref() == Some(source) {
                found = Some(n);
                break;
            }
        }
        match found {
            Some(n) => n,
            None => {
                return failed(
                    ctl,
                    Some(format!(
                        "unsupported configuration: bridge '{source}' is not managed by virtnet: no virtnet network uses it"
                    )),
                );
            }
        }
    };

    // One owner UUID per domain: the one its ports already carry, else one
    // derived from its name.
    let existing = all_ifaces(ctl)?;
    let (owner_name, owner_uuid) = match existing.iter().find(|i| owned_by(i, domain)) {
        Some(i) => (i.port.owner_name.clone(), i.port.owner_uuid),
        None => (domain.to_owned(), domain_uuid(domain)),
    };
    let uuid = match random_uuid() {
        Ok(u) => u,
        Err(e) => return failed(ctl, Some(e)),
    };
    let def = PortDef {
        uuid,
        owner_name,
        owner_uuid,
        mac,
        bandwidth: (inbound.is_some() || outbound.is_some())
            .then_some(Bandwidth { inbound, outbound }),
        device: Some(PortDevice {
            name: get("target").map(str::to_owned),
            model: get("model").map(str::to_owned),
            persistent,
            ..PortDevice::default()
        }),
        ..PortDef::default()
    };
    let r: Result<NetworkPortRet, Failed> = ctl.call(
        Procedure::NetworkPortCreateXml,
        &NetworkPortCreateXmlArgs {
            network: net,
            xml: def.to_xml(),
            flags: 0,
        },
    );
    let Ok(r) = r else {
        return failed(ctl, None);
    };
    ctl.print_extra("Interface attached successfully\n");
    if cmd.has("qemu-args") {
        print_qemu_args(ctl, &r.port, "net0")?;
    }
    Ok(())
}

/// Prints the QEMU arguments of a port.
pub fn print_qemu_args(ctl: &mut Ctl<'_>, port: &NonnullNetworkPort, id: &str) -> CmdResult {
    let def = port_def(ctl, port)?;
    match qemu::qemu_args(&def, id) {
        Ok(line) => {
            ctl.print(&format!("{line}\n"));
            Ok(())
        }
        Err(e) => {
            ctl.set_error(format!("Operation not supported: {e}"));
            Err(Failed)
        }
    }
}

/// The interface as `--print-xml` of detach-interface shows it.
fn iface_xml(i: &Iface) -> String {
    let ty = i.kind();
    let mut xml = format!("<interface type='{ty}'>\n");
    if let Some(mac) = i.port.mac {
        xml.push_str(&format!("  <mac address='{mac}'/>\n"));
    }
    let net = xml_attr(&i.net.name);
    match &i.port.plug {
        PortPlug::Network { bridge, .. } | PortPlug::Bridge { bridge, .. } => {
            xml.push_str(&format!(
                "  <source network='{net}' bridge='{}'/>\n",
                xml_attr(bridge)
            ))
        }
        PortPlug::Direct { linkdev, mode } => xml.push_str(&format!(
            "  <source network='{net}' dev='{}' mode='{}'/>\n",
            xml_attr(linkdev),
            mode.as_str()
        )),
        _ => xml.push_str(&format!("  <source network='{net}'/>\n")),
    }
    if let Some(n) = i.device_name() {
        xml.push_str(&format!("  <target dev='{}'/>\n", xml_attr(n)));
    }
    if let Some(m) = i.port.device.as_ref().and_then(|d| d.model.as_deref()) {
        xml.push_str(&format!("  <model type='{}'/>\n", xml_attr(m)));
    }
    xml.push_str("</interface>\n");
    xml
}

pub(super) fn cmd_detach_interface(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    affect_flags(ctl, cmd)?;
    let domain = opt_domain(ctl, cmd)?;
    let Some(ty) = opt_string(ctl, cmd, "type")? else {
        return Err(Failed);
    };
    let mac = opt_string(ctl, cmd, "mac")?;
    let failed = |ctl: &mut Ctl<'_>, msg: Option<String>| {
        if let Some(m) = msg {
            ctl.error(&m);
        }
        ctl.error("Failed to detach interface");
        Err(Failed)
    };
    let ifaces: Vec<Iface> = domain_ifaces(ctl, domain)?
        .into_iter()
        .filter(|i| type_matches(ty, i.kind()))
        .collect();
    if ifaces.is_empty() {
        return failed(ctl, Some(format!("No interface found whose type is {ty}")));
    }
    let chosen = match mac {
        None if ifaces.len() > 1 => {
            return failed(
                ctl,
                Some(format!(
                    "Domain has {} interfaces. Please specify which one to detach using --mac",
                    ifaces.len()
                )),
            );
        }
        None => &ifaces[0],
        Some(m) => {
            let want = MacAddr::parse(m);
            let matching: Vec<&Iface> = ifaces
                .iter()
                .filter(|i| want.is_some() && i.port.mac == want)
                .collect();
            match matching.as_slice() {
                [] => {
                    return failed(
                        ctl,
                        Some(format!("No interface with MAC address {m} was found")),
                    );
                }
                [one] => *one,
                _ => {
                    return failed(
                        ctl,
                        Some(format!(
                            "Domain has multiple interfaces matching MAC address {m}. You must use detach-device and specify the device pci address to remove it."
                        )),
                    );
                }
            }
        }
    };
    if cmd.has("print-xml") {
        let xml = iface_xml(chosen);
        ctl.print(&xml);
        return Ok(());
    }
    let r: Result<(), Failed> = ctl.call(
        Procedure::NetworkPortDelete,
        &NetworkPortFlagsArgs {
            port: chosen.handle(),
            flags: 0,
        },
    );
    if r.is_err() {
        return failed(ctl, None);
    }
    ctl.print_extra("Interface detached successfully\n");
    Ok(())
}

pub(super) fn cmd_domiflist(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let domain = opt_domain(ctl, cmd)?;
    let inactive = cmd.has("inactive");
    let ifaces = domain_ifaces(ctl, domain)?;
    let mut table = Table::new(&["Interface", "Type", "Source", "Model", "MAC"]);
    for i in ifaces
        .iter()
        .filter(|i| !inactive || i.port.device.as_ref().is_some_and(|d| d.persistent))
    {
        table.push(vec![
            i.device_name().unwrap_or("-").to_owned(),
            i.kind().to_owned(),
            i.source(),
            i.port
                .device
                .as_ref()
                .and_then(|d| d.model.clone())
                .unwrap_or_else(|| "-".into()),
            i.port
                .mac
                .map(|m| m.to_string())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    ctl.print_table(&table);
    Ok(())
}

/// The ARP table of the host virtnetd runs on (`/proc/net/arp`): read
/// here for a local connection, through the connection's ssh otherwise.
fn arp_table(ctl: &Ctl<'_>) -> Result<String, String> {
    const ARP: &str = "/proc/net/arp";
    let Some((host, argv)) = ctl
        .conn
        .as_ref()
        .and_then(|c| c.ssh_command(&format!("cat {ARP}")))
    else {
        return std::fs::read_to_string(ARP)
            .map_err(|e| format!("cannot read {ARP}: {}", crate::conn::strerror(&e)));
    };
    // The ssh command line starts with the ssh program.
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    let out = virtnet_host::process::run_checked(cmd, None, ARP_TIMEOUT)
        .map_err(|e| format!("cannot read {ARP} on {host}: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How long reading a remote host's ARP table may take.
const ARP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The addresses `/proc/net/arp` text lists for `mac` (complete entries).
fn arp_addresses(table: &str, mac: &MacAddr) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // IP address, HW type, Flags, HW address, Mask, Device; flags
            // 0x0 is an incomplete entry.
            match f.as_slice() {
                [ip, _, flags, hw, ..]
                    if *flags != "0x0" && MacAddr::parse(hw).as_ref() == Some(mac) =>
                {
                    Some((*ip).to_owned())
                }
                _ => None,
            }
        })
        .collect()
}

/// A domifaddr row: name, MAC, then (protocol, address/prefix) pairs.
type AddrRow = (String, String, Vec<(&'static str, String)>);

pub(super) fn cmd_domifaddr(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let iface_name = opt_string(ctl, cmd, "interface")?;
    let source = opt_string(ctl, cmd, "source")?;
    let full = cmd.has("full");
    let source = source.unwrap_or("lease");
    if !matches!(source, "lease" | "agent" | "arp") {
        ctl.error(&format!("Unknown data source '{source}'"));
        return Err(Failed);
    }
    let domain = opt_domain(ctl, cmd)?;
    if source == "agent" {
        ctl.set_error(
            "Operation not supported: virtnet runs no guest agent; use --source lease or --source arp",
        );
        ctl.error("Failed to query for interfaces addresses");
        return Err(Failed);
    }
    let ifaces = domain_ifaces(ctl, domain)?;
    let arp = if source == "arp" && !ifaces.is_empty() {
        match arp_table(ctl) {
            Ok(t) => t,
            Err(e) => {
                ctl.set_error(format!("internal error: {e}"));
                ctl.error("Failed to query for interfaces addresses");
                return Err(Failed);
            }
        }
    } else {
        String::new()
    };
    let mut rows: Vec<AddrRow> = Vec::new();
    for i in &ifaces {
        let Some(mac) = i.port.mac else { continue };
        let name = i.device_name().unwrap_or("-").to_owned();
        let addrs: Vec<(&'static str, String)> = if source == "arp" {
            arp_addresses(&arp, &mac)
                .into_iter()
                .map(|ip| ("ipv4", format!("{ip}/0")))
                .collect()
        } else {
            let r: Result<NetworkGetDhcpLeasesRet, _> = ctl.try_call(
                Procedure::NetworkGetDhcpLeases,
                &NetworkGetDhcpLeasesArgs {
                    net: i.net.clone(),
                    mac: Some(mac.to_string()),
                    need_results: 1,
                    flags: 0,
                },
            );
            match r {
                Ok(r) => r
                    .leases
                    .iter()
                    .map(|l| {
                        let proto = if l.kind == ip_addr_type::IPV6 {
                            "ipv6"
                        } else {
                            "ipv4"
                        };
                        (proto, format!("{}/{}", l.ipaddr, l.prefix))
                    })
                    .collect(),
                Err(e) if e.code == ErrorCode::NO_SUPPORT => Vec::new(),
                Err(e) => {
                    ctl.set_error(e.message);
                    ctl.error("Failed to query for interfaces addresses");
                    return Err(Failed);
                }
            }
        };
        // As libvirt does for leases and ARP: interfaces without an
        // address are left out.
        if !addrs.is_empty() {
            rows.push((name, mac.to_string(), addrs));
        }
    }
    ctl.print_extra(&format!(
        " {:<10} {:<20} {:<8}     {}\n{}{}\n",
        "Name",
        "MAC address",
        "Protocol",
        "Address",
        "-------------------------------------------------",
        "------------------------------"
    ));
    for (name, mac, addrs) in &rows {
        if iface_name.is_some_and(|n| n != name) {
            continue;
        }
        for (j, (proto, addr)) in addrs.iter().enumerate() {
            let text = format!("{proto:<12} {addr}");
            if full || j == 0 {
                ctl.print(&format!(" {name:<10} {mac:<17}    {text}\n"));
            } else {
                ctl.print(&format!(" {:<10} {:<17}    {text}\n", "-", "-"));
            }
        }
    }
    Ok(())
}

pub(super) fn cmd_qemu_args(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (net, _) = opt_network(ctl, cmd)?;
    let port = super::port::opt_port(ctl, cmd, &net)?;
    let id = opt_string(ctl, cmd, "id")?.unwrap_or("net0").to_owned();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        ctl.error(&format!("invalid netdev id '{id}'"));
        return Err(Failed);
    }
    print_qemu_args(ctl, &port, &id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_addresses_are_complete_entries_for_the_mac() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     10.0.0.7         0x1         0x2         52:54:00:aa:bb:01     *        virbr0\n\
                     10.0.0.8         0x1         0x0         52:54:00:aa:bb:01     *        virbr0\n\
                     10.0.0.9         0x1         0x6         52:54:00:AA:BB:01     *        virbr1\n\
                     10.0.0.10        0x1         0x2         52:54:00:aa:bb:02     *        virbr0\n";
        let mac = MacAddr::parse("52:54:00:aa:bb:01").unwrap();
        assert_eq!(arp_addresses(table, &mac), ["10.0.0.7", "10.0.0.9"]);
        assert!(arp_addresses("", &mac).is_empty());
    }

    #[test]
    fn domain_uuids_are_stable_and_distinct() {
        let a = domain_uuid("vm1");
        assert_eq!(a, domain_uuid("vm1"));
        assert_ne!(a, domain_uuid("vm2"));
        let s = a.to_string();
        assert_eq!(&s[14..15], "8", "version 8 in {s}");
        assert!(
            matches!(&s[19..20], "8" | "9" | "a" | "b"),
            "variant in {s}"
        );
    }

    #[test]
    fn detach_types() {
        assert!(type_matches("network", "network"));
        assert!(type_matches("network", "direct"));
        assert!(type_matches("bridge", "network"));
        assert!(type_matches("bridge", "bridge"));
        assert!(!type_matches("bridge", "direct"));
        assert!(!type_matches("direct", "network"));
        assert!(type_matches("hostdev", "hostdev"));
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["vnet10", "vnet2", "-", "macvtap0", "vnet1"];
        v.sort_by_key(|s| natural_key(s));
        assert_eq!(v, ["-", "macvtap0", "vnet1", "vnet2", "vnet10"]);
    }

    #[test]
    fn pci_sources() {
        assert_eq!(parse_pci("0000:03:00.1"), Some([0, 3, 0, 1]));
        assert_eq!(parse_pci("03:1f.7"), Some([0, 3, 0x1f, 7]));
        assert_eq!(parse_pci("nope"), None);
    }
}
