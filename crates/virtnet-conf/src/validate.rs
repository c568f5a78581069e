//! Define-time validation: the checks libvirt's network driver makes in
//! `networkValidate` before a definition is accepted, plus a few that
//! libvirt leaves to fail later at start (bridge name length, MTU range,
//! static DHCP hosts inside their subnet and unique).

use std::collections::HashSet;

use crate::addr::format_ip;
use crate::error::{Error, ErrorDomain, ErrorKind};
use crate::model::*;

/// Longest network device name Linux accepts (`IFNAMSIZ - 1`).
pub const MAX_IFNAME_LEN: usize = 15;
/// Smallest MTU accepted.
pub const MIN_MTU: u32 = 68;
/// Largest MTU accepted.
pub const MAX_MTU: u32 = 65535;

impl NetworkDef {
    /// Check the definition the way libvirt's network driver does when a
    /// network is defined or created (`networkValidate`), without the
    /// checks that need the host or the other networks (bridge name in use,
    /// PCI devices being SR-IOV VFs). Bridge names that are still `%d`
    /// templates are not length-checked here; see
    /// [`crate::defaults::prepare_define`].
    pub fn validate(&self) -> Result<(), Error> {
        check_name(self)?;
        validate_rest(self)
    }
}

pub(crate) fn check_name(def: &NetworkDef) -> Result<(), Error> {
    if def.name.contains('\n') {
        return Err(Error::new(
            ErrorKind::XmlDetail,
            ErrorDomain::Xml,
            "invalid char in name: \n",
        ));
    }
    Ok(())
}

pub(crate) fn check_bridge_name_len(def: &NetworkDef) -> Result<(), Error> {
    if let Some(b) = &def.bridge {
        if !b.contains("%d") && b.len() > MAX_IFNAME_LEN {
            return Err(Error::unsupported(format!(
                "bridge name '{b}' in network '{}' is too long (at most {MAX_IFNAME_LEN} bytes)",
                def.name
            )));
        }
    }
    Ok(())
}

pub(crate) fn validate_rest(def: &NetworkDef) -> Result<(), Error> {
    let net = &def.name;
    let mode = def.forward.mode;
    check_bridge_name_len(def)?;

    let bandwidth_allowed =
        mode.is_virtual() || (mode == ForwardMode::Bridge && def.bridge.is_some());
    if !mode.is_virtual() {
        let unsupported = |what: &str| {
            Error::unsupported(format!(
                "Unsupported <{what}> element in network {net} with forward mode='{mode}'"
            ))
        };
        if def.mac.is_some() {
            return Err(unsupported("mac"));
        }
        if !def.ips.is_empty() {
            return Err(unsupported("ip"));
        }
        if !def.dns.txts.is_empty() || !def.dns.hosts.is_empty() || !def.dns.srvs.is_empty() {
            return Err(unsupported("dns"));
        }
        if def.domain.is_some() {
            return Err(unsupported("domain"));
        }
    }
    if def.bandwidth.is_some() && !bandwidth_allowed {
        return Err(Error::unsupported(format!(
            "Unsupported network-wide <bandwidth> element in network {net} with forward mode='{mode}'"
        )));
    }

    let mut uses_interface = false;
    let mut uses_address = false;
    for i in &def.forward.ifs {
        match &i.device {
            ForwardDevice::Netdev(dev) => {
                uses_interface = true;
                if mode == ForwardMode::Hostdev {
                    return Err(Error::unsupported(format!(
                        "hostdev network '{net}' lists '{dev}' in the device pool, but hostdev networks require all devices to be listed by PCI address, not network device name"
                    )));
                }
            }
            ForwardDevice::Pci(_) => {
                uses_address = true;
                if mode != ForwardMode::Hostdev {
                    return Err(Error::unsupported(format!(
                        "network '{net}' has forward mode '{mode}' but lists a device by PCI address in the device pool. This is only supported for networks with forward mode 'hostdev'"
                    )));
                }
            }
        }
    }
    if usize::from(!def.forward.pfs.is_empty())
        + usize::from(uses_interface)
        + usize::from(uses_address)
        > 1
    {
        return Err(Error::unsupported(format!(
            "<address>, <interface>, and <pf> elements of <forward> in network {net} are mutually exclusive"
        )));
    }

    let mut v4_dhcp = false;
    let mut v6_dhcp = false;
    for ip in &def.ips {
        if !ip.has_dhcp() {
            continue;
        }
        let (seen, fam) = if ip.is_ipv4() {
            (&mut v4_dhcp, "IPv4")
        } else {
            (&mut v6_dhcp, "IPv6")
        };
        if *seen {
            return Err(Error::unsupported(format!(
                "Multiple {fam} dhcp sections found -- dhcp is supported only for a single {fam} address on each network"
            )));
        }
        *seen = true;
    }

    let vlan_allowed = matches!(mode, ForwardMode::Hostdev | ForwardMode::Passthrough)
        || (mode == ForwardMode::Bridge
            && def
                .virt_port_profile
                .as_ref()
                .is_some_and(|v| v.virt_port_type == VirtPortType::Openvswitch));
    let vlan_used = def.vlan.as_ref().is_some_and(|v| !v.tags.is_empty());
    let mut bad_vlan_use = false;
    let mut default_pg: Option<&PortGroupDef> = None;
    for (i, pg) in def.port_groups.iter().enumerate() {
        if vlan_used || pg.vlan.as_ref().is_some_and(|v| !v.tags.is_empty()) {
            match &pg.virt_port_profile {
                Some(vp) => {
                    if mode != ForwardMode::Bridge || vp.virt_port_type != VirtPortType::Openvswitch
                    {
                        bad_vlan_use = true;
                    }
                }
                None => {
                    if !vlan_allowed {
                        bad_vlan_use = true;
                    }
                }
            }
        }
        if pg.is_default {
            if let Some(d) = default_pg {
                return Err(Error::unsupported(format!(
                    "network '{net}' has multiple default <portgroup> elements ({} and {}), but only one default is allowed",
                    d.name, pg.name
                )));
            }
            default_pg = Some(pg);
        }
        if def.port_groups[i + 1..].iter().any(|o| o.name == pg.name) {
            return Err(Error::unsupported(format!(
                "multiple <portgroup> elements with the same name ({}) in network '{net}'",
                pg.name
            )));
        }
        if pg.bandwidth.is_some() && !bandwidth_allowed {
            return Err(Error::unsupported(format!(
                "Unsupported <bandwidth> element in network '{net}' in portgroup '{}' with forward mode='{mode}'",
                pg.name
            )));
        }
    }
    if bad_vlan_use || (vlan_used && !vlan_allowed && default_pg.is_none()) {
        return Err(Error::unsupported(format!(
            "<vlan> element specified for network {net}, whose type doesn't support vlan configuration"
        )));
    }
    if mode == ForwardMode::Hostdev {
        if let Some(pg) = def.port_groups.iter().find(|pg| pg.bandwidth.is_some()) {
            return Err(Error::unsupported(format!(
                "unsupported <bandwidth> element in <portgroup name='{}'> of network '{net}' with forward mode='{mode}'",
                pg.name
            )));
        }
    }

    let vlans = def.vlan.iter().map(|v| (v, None)).chain(
        def.port_groups
            .iter()
            .filter_map(|pg| pg.vlan.as_ref().map(|v| (v, Some(&pg.name)))),
    );
    for (vlan, pg) in vlans {
        let mut seen = HashSet::new();
        if let Some(dup) = vlan.tags.iter().find(|t| !seen.insert(**t)) {
            let place = match pg {
                Some(pg) => format!("portgroup '{pg}' of network '{net}'"),
                None => format!("network '{net}'"),
            };
            return Err(Error::unsupported(format!(
                "vlan tag id {dup} is listed more than once in {place}"
            )));
        }
    }

    if let Some(mtu) = def.mtu {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(Error::unsupported(format!(
                "invalid MTU size '{mtu}' in network '{net}', must be between {MIN_MTU} and {MAX_MTU}"
            )));
        }
    }
    check_dhcp_hosts(def)
}

/// Static DHCP hosts must lie within their `<ip>`'s subnet and must not
/// repeat a MAC address, IP address, DUID or name.
fn check_dhcp_hosts(def: &NetworkDef) -> Result<(), Error> {
    let net = &def.name;
    let mut ips_seen = HashSet::new();
    for ip in &def.ips {
        let mut macs = HashSet::new();
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        for h in &ip.hosts {
            if let Some(a) = &h.ip {
                if !ip.contains(a) {
                    let prefix = ip.prefix_len().map_or("?".to_string(), |p| p.to_string());
                    return Err(Error::unsupported(format!(
                        "IP address '{}' of DHCP host in network '{net}' is not within network {}/{prefix}",
                        format_ip(a),
                        format_ip(&ip.address)
                    )));
                }
                if !ips_seen.insert(*a) {
                    return Err(Error::unsupported(format!(
                        "multiple DHCP hosts with IP address '{}' in network '{net}'",
                        format_ip(a)
                    )));
                }
            }
            if let (Some(m), Some(parsed)) = (&h.mac, h.mac_addr()) {
                if !macs.insert(parsed) {
                    return Err(Error::unsupported(format!(
                        "multiple DHCP hosts with MAC address '{m}' in network '{net}'"
                    )));
                }
            }
            if let Some(id) = &h.id {
                if !ids.insert(id.to_ascii_lowercase()) {
                    return Err(Error::unsupported(format!(
                        "multiple DHCP hosts with id '{id}' in network '{net}'"
                    )));
                }
            }
            if let Some(n) = &h.name {
                if !names.insert(n.as_str()) {
                    return Err(Error::unsupported(format!(
                        "multiple DHCP hosts named '{n}' in network '{net}'"
                    )));
                }
            }
        }
    }
    Ok(())
}
