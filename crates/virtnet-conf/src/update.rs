//! `virsh net-update`: change one section of a definition in place, like
//! libvirt's `virNetworkDefUpdateSection`. The caller decides which
//! definition to change (live, persistent or both) and saves or applies the
//! result; DHCP, DNS and portgroup changes only touch the model here.

use std::net::IpAddr;

use roxmltree::Node;

use crate::addr::{MacAddr, format_ip};
use crate::error::{Error, ErrorDomain, ErrorKind};
use crate::model::*;
use crate::parse::{
    parse_dhcp_host, parse_dhcp_range, parse_dns_host, parse_dns_srv, parse_dns_txt,
    parse_portgroup,
};
use crate::xml::{self, prop};

/// What to do (`virNetworkUpdateCommand`); discriminants are libvirt's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum UpdateCommand {
    /// `VIR_NETWORK_UPDATE_COMMAND_NONE` (invalid).
    None = 0,
    /// Replace an existing entry.
    Modify = 1,
    /// Remove an entry.
    Delete = 2,
    /// Append an entry.
    AddLast = 3,
    /// Prepend an entry.
    AddFirst = 4,
}

impl UpdateCommand {
    /// The command for libvirt's numeric value.
    pub fn from_code(code: u32) -> Option<UpdateCommand> {
        Some(match code {
            0 => UpdateCommand::None,
            1 => UpdateCommand::Modify,
            2 => UpdateCommand::Delete,
            3 => UpdateCommand::AddLast,
            4 => UpdateCommand::AddFirst,
            _ => return None,
        })
    }

    fn is_add(self) -> bool {
        matches!(self, UpdateCommand::AddFirst | UpdateCommand::AddLast)
    }
}

/// Which part to change (`virNetworkUpdateSection`); discriminants are libvirt's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum UpdateSection {
    /// `VIR_NETWORK_SECTION_NONE` (invalid).
    None = 0,
    /// `<bridge>` (not updatable).
    Bridge = 1,
    /// `<domain>` (not updatable).
    Domain = 2,
    /// `<ip>` (not updatable).
    Ip = 3,
    /// `<ip><dhcp><host>`.
    IpDhcpHost = 4,
    /// `<ip><dhcp><range>`.
    IpDhcpRange = 5,
    /// `<forward>` (not updatable).
    Forward = 6,
    /// `<forward><interface>`.
    ForwardInterface = 7,
    /// `<forward><pf>` (not updatable).
    ForwardPf = 8,
    /// `<portgroup>`.
    Portgroup = 9,
    /// `<dns><host>`.
    DnsHost = 10,
    /// `<dns><txt>`.
    DnsTxt = 11,
    /// `<dns><srv>`.
    DnsSrv = 12,
}

impl UpdateSection {
    /// The section for libvirt's numeric value.
    pub fn from_code(code: u32) -> Option<UpdateSection> {
        Some(match code {
            0 => UpdateSection::None,
            1 => UpdateSection::Bridge,
            2 => UpdateSection::Domain,
            3 => UpdateSection::Ip,
            4 => UpdateSection::IpDhcpHost,
            5 => UpdateSection::IpDhcpRange,
            6 => UpdateSection::Forward,
            7 => UpdateSection::ForwardInterface,
            8 => UpdateSection::ForwardPf,
            9 => UpdateSection::Portgroup,
            10 => UpdateSection::DnsHost,
            11 => UpdateSection::DnsTxt,
            12 => UpdateSection::DnsSrv,
            _ => return None,
        })
    }
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::OperationInvalid, ErrorDomain::Network, msg)
}

fn unsupported_op(msg: String) -> Error {
    Error::new(ErrorKind::OperationUnsupported, ErrorDomain::Network, msg)
}

fn no_support(def: &NetworkDef, section: &str) -> Error {
    unsupported_op(format!(
        "can't update '{section}' section of network '{}'",
        def.name
    ))
}

fn unknown_command(command: UpdateCommand) -> Error {
    unsupported_op(format!(
        "unrecognized network update command code {}",
        command as u32
    ))
}

fn check_element(def: &NetworkDef, node: Node, section: &str) -> Result<(), Error> {
    let name = xml::elem_name(node);
    if name != section {
        return Err(Error::xml(format!(
            "unexpected element <{name}>, expecting <{section}>, while updating network '{}'",
            def.name
        )));
    }
    Ok(())
}

/// libvirt's `virNetworkIPDefByIndex`: the `<ip>` a DHCP change applies to.
fn ip_index(def: &NetworkDef, parent_index: i32) -> Result<usize, Error> {
    if parent_index >= 0 {
        let i = parent_index as usize;
        if i < def.ips.len() {
            return Ok(i);
        }
        return Err(invalid(format!(
            "couldn't update dhcp host entry - no <ip> element found at index {parent_index} in network '{}'",
            def.name
        )));
    }
    if let Some(i) = def.ips.iter().position(IpDef::has_dhcp) {
        return Ok(i);
    }
    if let Some(i) = def.ips.iter().position(IpDef::is_ipv4) {
        return Ok(i);
    }
    if let Some(i) = def.ips.iter().position(IpDef::is_ipv6) {
        return Ok(i);
    }
    Err(invalid(format!(
        "couldn't update dhcp host entry - no <ip> element found in network '{}'",
        def.name
    )))
}

fn check_multi_dhcp(def: &NetworkDef, idx: usize) -> Result<(), Error> {
    let v4 = def.ips[idx].is_ipv4();
    let other = def
        .ips
        .iter()
        .enumerate()
        .any(|(i, ip)| i != idx && ip.is_ipv4() == v4 && ip.has_dhcp());
    if other {
        return Err(invalid(format!(
            "dhcp is supported only for a single {} address on each network",
            if v4 { "IPv4" } else { "IPv6" }
        )));
    }
    Ok(())
}

fn mac_eq(a: &Option<String>, b: &Option<String>) -> bool {
    match (
        a.as_deref().and_then(MacAddr::parse),
        b.as_deref().and_then(MacAddr::parse),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn show_ip(ip: &Option<IpAddr>) -> String {
    ip.as_ref().map_or("unknown".to_string(), format_ip)
}

fn insert<T>(v: &mut Vec<T>, command: UpdateCommand, item: T) {
    if command == UpdateCommand::AddFirst {
        v.insert(0, item);
    } else {
        v.push(item);
    }
}

fn update_dhcp_host(
    def: &mut NetworkDef,
    command: UpdateCommand,
    parent: i32,
    node: Node,
) -> Result<(), Error> {
    let idx = ip_index(def, parent);
    check_element(def, node, "host")?;
    let idx = idx?;
    let partial = command == UpdateCommand::Delete;
    let host = parse_dhcp_host(&def.name, &def.ips[idx], node, partial)?;
    if !partial && host.ip.map(|a| a.is_ipv4()) != Some(def.ips[idx].is_ipv4()) {
        return Err(invalid(
            "the address family of a host entry IP must match the address family of the dhcp element's parent"
                .to_string(),
        ));
    }
    let net = def.name.clone();
    match command {
        UpdateCommand::Modify => {
            let hosts = &mut def.ips[idx].hosts;
            let Some(i) = hosts.iter().position(|h| {
                mac_eq(&host.mac, &h.mac)
                    || (host.ip.is_some() && host.ip == h.ip)
                    || (host.name.is_some() && host.name == h.name)
            }) else {
                return Err(invalid(format!(
                    "couldn't locate an existing dhcp host entry with \"mac='{}'\" \"name='{}'\" \"ip='{}'\" in network '{net}'",
                    host.mac.as_deref().unwrap_or("unknown"),
                    host.name.as_deref().unwrap_or("(null)"),
                    show_ip(&host.ip)
                )));
            };
            hosts[i] = host;
        }
        UpdateCommand::AddFirst | UpdateCommand::AddLast => {
            check_multi_dhcp(def, idx)?;
            let hosts = &mut def.ips[idx].hosts;
            if hosts.iter().any(|h| {
                mac_eq(&host.mac, &h.mac)
                    || (host.name.is_some() && host.name == h.name)
                    || (host.ip.is_some() && host.ip == h.ip)
            }) {
                return Err(invalid(format!(
                    "there is an existing dhcp host entry in network '{net}' that matches \"<host mac='{}' name='{}' ip='{}'/>\"",
                    host.mac.as_deref().unwrap_or("unknown"),
                    host.name.as_deref().unwrap_or("(null)"),
                    show_ip(&host.ip)
                )));
            }
            insert(hosts, command, host);
        }
        UpdateCommand::Delete => {
            let hosts = &mut def.ips[idx].hosts;
            let Some(i) = hosts.iter().position(|h| {
                (host.mac.is_none() || h.mac.is_none() || mac_eq(&host.mac, &h.mac))
                    && (host.name.is_none() || host.name == h.name)
                    && (host.ip.is_none() || host.ip == h.ip)
            }) else {
                return Err(invalid(format!(
                    "couldn't locate a matching dhcp host entry in network '{net}'"
                )));
            };
            hosts.remove(i);
        }
        UpdateCommand::None => return Err(unknown_command(command)),
    }
    Ok(())
}

fn update_dhcp_range(
    def: &mut NetworkDef,
    command: UpdateCommand,
    parent: i32,
    node: Node,
) -> Result<(), Error> {
    let idx = ip_index(def, parent);
    check_element(def, node, "range")?;
    let idx = idx?;
    if command == UpdateCommand::Modify {
        return Err(unsupported_op(
            "dhcp ranges cannot be modified, only added or deleted".to_string(),
        ));
    }
    let range = parse_dhcp_range(&def.name, &def.ips[idx], node)?;
    if range.start.is_ipv4() != def.ips[idx].is_ipv4() {
        return Err(invalid(
            "the address family of a dhcp range must match the address family of the dhcp element's parent"
                .to_string(),
        ));
    }
    let net = def.name.clone();
    let found = def.ips[idx]
        .ranges
        .iter()
        .position(|r| r.start == range.start && r.end == range.end);
    match command {
        UpdateCommand::AddFirst | UpdateCommand::AddLast => {
            check_multi_dhcp(def, idx)?;
            if found.is_some() {
                return Err(invalid(format!(
                    "there is an existing dhcp range entry in network '{net}' that matches \"<range start='{}' end='{}'/>\"",
                    format_ip(&range.start),
                    format_ip(&range.end)
                )));
            }
            insert(&mut def.ips[idx].ranges, command, range);
        }
        UpdateCommand::Delete => {
            let Some(i) = found else {
                return Err(invalid(format!(
                    "couldn't locate a matching dhcp range entry in network '{net}'"
                )));
            };
            def.ips[idx].ranges.remove(i);
        }
        _ => return Err(unknown_command(command)),
    }
    Ok(())
}

fn update_forward_interface(
    def: &mut NetworkDef,
    command: UpdateCommand,
    node: Node,
) -> Result<(), Error> {
    check_element(def, node, "interface")?;
    if command == UpdateCommand::Modify {
        return Err(unsupported_op(
            "forward interface entries cannot be modified, only added or deleted".to_string(),
        ));
    }
    let Some(dev) = prop(node, "dev") else {
        return Err(Error::xml("missing dev attribute in <interface> element"));
    };
    let net = def.name.clone();
    let found = def.forward.ifs.iter().position(|f| f.dev() == Some(dev));
    match command {
        UpdateCommand::AddFirst | UpdateCommand::AddLast => {
            if found.is_some() {
                return Err(invalid(format!(
                    "there is an existing interface entry in network '{net}' that matches \"<interface dev='{dev}'>\""
                )));
            }
            insert(
                &mut def.forward.ifs,
                command,
                ForwardIfDef {
                    device: ForwardDevice::Netdev(dev.to_string()),
                    connections: 0,
                },
            );
        }
        UpdateCommand::Delete => {
            let Some(i) = found else {
                return Err(invalid(format!(
                    "couldn't find an interface entry in network '{net}' matching <interface dev='{dev}'>"
                )));
            };
            let connections = def.forward.ifs[i].connections;
            if connections > 0 {
                return Err(invalid(format!(
                    "unable to delete interface '{dev}' in network '{net}'. It is currently being used by {connections} domains."
                )));
            }
            def.forward.ifs.remove(i);
        }
        _ => return Err(unknown_command(command)),
    }
    Ok(())
}

fn update_portgroup(def: &mut NetworkDef, command: UpdateCommand, node: Node) -> Result<(), Error> {
    check_element(def, node, "portgroup")?;
    let pg = parse_portgroup(node)?;
    let net = def.name.clone();
    let found_name = def.port_groups.iter().position(|p| p.name == pg.name);
    let found_default = def.port_groups.iter().rposition(|p| p.is_default);
    match (found_name, command) {
        (None, UpdateCommand::Modify | UpdateCommand::Delete) => {
            return Err(invalid(format!(
                "couldn't find a portgroup entry in network '{net}' matching <portgroup name='{}'>",
                pg.name
            )));
        }
        (Some(_), UpdateCommand::AddFirst | UpdateCommand::AddLast) => {
            return Err(invalid(format!(
                "there is an existing portgroup entry in network '{net}' that matches \"<portgroup name='{}'>\"",
                pg.name
            )));
        }
        _ => {}
    }
    if command != UpdateCommand::Delete
        && pg.is_default
        && found_default.is_some_and(|d| Some(d) != found_name)
    {
        return Err(invalid(format!(
            "a different portgroup entry in network '{net}' is already set as the default. Only one default is allowed."
        )));
    }
    match (command, found_name) {
        (UpdateCommand::Modify, Some(i)) => def.port_groups[i] = pg,
        (UpdateCommand::AddFirst | UpdateCommand::AddLast, _) => {
            insert(&mut def.port_groups, command, pg)
        }
        (UpdateCommand::Delete, Some(i)) => {
            def.port_groups.remove(i);
        }
        _ => return Err(unknown_command(command)),
    }
    Ok(())
}

fn update_dns_host(def: &mut NetworkDef, command: UpdateCommand, node: Node) -> Result<(), Error> {
    check_element(def, node, "host")?;
    let (ip, names) = parse_dns_host(&def.name, node, !command.is_add())?;
    let net = def.name.clone();
    let mut found_ct = 0;
    let mut found_idx = None;
    let mut found_ip_idx = None;
    for (i, h) in def.dns.hosts.iter().enumerate() {
        let mut this = ip == Some(h.ip);
        if this {
            found_ip_idx = Some(i);
        }
        if command == UpdateCommand::Delete && !this {
            this = names.iter().any(|n| h.names.contains(n));
        }
        if this {
            found_ct += 1;
            found_idx = Some(i);
        }
    }
    let not_found = || {
        invalid(format!(
            "couldn't locate a matching DNS HOST record in network {net}"
        ))
    };
    let multiple = || {
        invalid(format!(
            "multiple matching DNS HOST records were found in network {net}"
        ))
    };
    match command {
        UpdateCommand::AddFirst | UpdateCommand::AddLast => {
            if found_ct > 0 {
                return Err(invalid(format!(
                    "there is already at least one DNS HOST record with a matching field in network {net}"
                )));
            }
            let Some(ip) = ip else {
                return Err(not_found());
            };
            insert(&mut def.dns.hosts, command, DnsHostDef { ip, names });
        }
        UpdateCommand::Delete => match (found_ct, found_idx) {
            (0, _) | (_, None) => return Err(not_found()),
            (1, Some(i)) => {
                def.dns.hosts.remove(i);
            }
            _ => return Err(multiple()),
        },
        UpdateCommand::Modify => {
            if found_ct == 0 {
                return Err(not_found());
            }
            if found_ct > 1 {
                return Err(multiple());
            }
            if names.is_empty() {
                return Err(Error::xml_detail(format!(
                    "Missing hostname in network '{net}' DNS HOST record"
                )));
            }
            match (found_ip_idx, ip) {
                (Some(i), Some(ip)) => def.dns.hosts[i] = DnsHostDef { ip, names },
                _ => return Err(not_found()),
            }
        }
        UpdateCommand::None => return Err(unknown_command(command)),
    }
    Ok(())
}

fn update_dns_srv(def: &mut NetworkDef, command: UpdateCommand, node: Node) -> Result<(), Error> {
    if command == UpdateCommand::Modify {
        return Err(unsupported_op(
            "DNS SRV records cannot be modified, only added or deleted".to_string(),
        ));
    }
    check_element(def, node, "srv")?;
    let srv = parse_dns_srv(&def.name, node, !command.is_add())?;
    let net = def.name.clone();
    let matches = |d: &DnsSrvDef| {
        srv.domain
            .as_ref()
            .is_none_or(|x| Some(x) == d.domain.as_ref())
            && srv.service.as_ref().is_none_or(|x| *x == d.service)
            && srv.protocol.as_ref().is_none_or(|x| *x == d.protocol)
            && srv
                .target
                .as_ref()
                .is_none_or(|x| Some(x) == d.target.as_ref())
    };
    let found: Vec<usize> = def
        .dns
        .srvs
        .iter()
        .enumerate()
        .filter(|(_, d)| matches(d))
        .map(|(i, _)| i)
        .collect();
    match command {
        UpdateCommand::AddFirst | UpdateCommand::AddLast => {
            if !found.is_empty() {
                return Err(invalid(format!(
                    "there is already at least one DNS SRV record matching all specified fields in network {net}"
                )));
            }
            insert(&mut def.dns.srvs, command, srv.into_def());
        }
        UpdateCommand::Delete => match found.as_slice() {
            [] => {
                return Err(invalid(format!(
                    "couldn't locate a matching DNS SRV record in network {net}"
                )));
            }
            [i] => {
                def.dns.srvs.remove(*i);
            }
            _ => {
                return Err(invalid(format!(
                    "multiple DNS SRV records matching all specified fields were found in network {net}"
                )));
            }
        },
        _ => return Err(unknown_command(command)),
    }
    Ok(())
}

fn update_dns_txt(def: &mut NetworkDef, command: UpdateCommand, node: Node) -> Result<(), Error> {
    check_element(def, node, "txt")?;
    let (name, value) = parse_dns_txt(&def.name, node, !command.is_add())?;
    let net = def.name.clone();
    let found = def.dns.txts.iter().position(|t| t.name == name);
    let not_found = || {
        invalid(format!(
            "couldn't locate a matching DNS TXT record in network {net}"
        ))
    };
    match command {
        UpdateCommand::AddFirst | UpdateCommand::AddLast => {
            if found.is_some() {
                return Err(invalid(format!(
                    "there is already a DNS TXT record with name '{name}' in network {net}"
                )));
            }
            insert(
                &mut def.dns.txts,
                command,
                DnsTxtDef {
                    name,
                    value: value.unwrap_or_default(),
                },
            );
        }
        UpdateCommand::Delete => {
            let i = found.ok_or_else(not_found)?;
            def.dns.txts.remove(i);
        }
        UpdateCommand::Modify => {
            let i = found.ok_or_else(not_found)?;
            let Some(value) = value else {
                return Err(invalid(format!(
                    "missing value of modifying DNS TXT record in network {net}"
                )));
            };
            def.dns.txts[i].value = value;
        }
        UpdateCommand::None => return Err(unknown_command(command)),
    }
    Ok(())
}

impl NetworkDef {
    /// Apply one `net-update` change, like libvirt's
    /// `virNetworkDefUpdateSection`. `parent_index` selects the `<ip>` for
    /// DHCP sections (-1: the one with DHCP, else the first IPv4, else the
    /// first IPv6). On error the definition is unchanged.
    pub fn update_section(
        &mut self,
        command: UpdateCommand,
        section: UpdateSection,
        parent_index: i32,
        xml_text: &str,
    ) -> Result<(), Error> {
        let doc = xml::parse_document(xml_text, "network_update_xml", None)?;
        let node = doc.root_element();
        let mut def = self.clone();
        match section {
            UpdateSection::Bridge => return Err(no_support(self, "bridge")),
            UpdateSection::Domain => return Err(no_support(self, "domain")),
            UpdateSection::Ip => return Err(no_support(self, "ip")),
            UpdateSection::Forward => return Err(no_support(self, "forward")),
            UpdateSection::ForwardPf => return Err(no_support(self, "forward pf")),
            UpdateSection::IpDhcpHost => update_dhcp_host(&mut def, command, parent_index, node)?,
            UpdateSection::IpDhcpRange => update_dhcp_range(&mut def, command, parent_index, node)?,
            UpdateSection::ForwardInterface => update_forward_interface(&mut def, command, node)?,
            UpdateSection::Portgroup => update_portgroup(&mut def, command, node)?,
            UpdateSection::DnsHost => update_dns_host(&mut def, command, node)?,
            UpdateSection::DnsTxt => update_dns_txt(&mut def, command, node)?,
            UpdateSection::DnsSrv => update_dns_srv(&mut def, command, node)?,
            UpdateSection::None => {
                return Err(unsupported_op(
                    "can't update unrecognized section of network".to_string(),
                ));
            }
        }
        *self = def;
        Ok(())
    }
}
