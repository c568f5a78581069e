//! Parsing `<network>` like libvirt's `virNetworkDefParseXML`, with the
//! same checks in the same order and the same messages.

use std::net::{IpAddr, Ipv4Addr};

use roxmltree::Node;

use crate::addr::{self, Family, MacAddr, PciAddress, Uuid};
use crate::error::{Error, ErrorDomain, ErrorKind};
use crate::metadata;
use crate::model::*;
use crate::netdev;
use crate::xml::{self, child, child_attr, child_text, children, prop, xattr};

/// The dnsmasq option namespace of network XML.
pub const DNSMASQ_NAMESPACE: &str = "http://libvirt.org/schemas/network/dnsmasq/1.0";

/// Longest DNS SRV service name (RFC 2782 limit minus overhead).
const DNS_RECORD_LENGTH_SRV: usize = 512 - 30;

const PROTOCOL_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+/";
const SERVICE_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/*";

/// `virSocketAddrParse` with its own error (`Cannot parse socket address`).
pub(crate) fn socket_addr(s: &str, family: Family) -> Result<IpAddr, Error> {
    addr::parse_ip(s, family).map_err(|why| {
        Error::new(
            ErrorKind::SystemError,
            ErrorDomain::None,
            format!("Cannot parse socket address '{s}': {why}"),
        )
    })
}

fn sys_internal(msg: String) -> Error {
    Error::new(ErrorKind::InternalError, ErrorDomain::None, msg)
}

/// libvirt's `virSocketAddrGetRange`: check a range (and that it lies in
/// `network`/`prefix` when given); returns the number of addresses.
pub(crate) fn get_range(
    start: &IpAddr,
    end: &IpAddr,
    network: Option<(&IpAddr, Option<u32>)>,
) -> Result<u32, Error> {
    let s = addr::format_ip(start);
    let e = addr::format_ip(end);
    if start.is_ipv4() != end.is_ipv4() {
        return Err(sys_internal(format!(
            "mismatch of address family in range {s} - {e}"
        )));
    }
    if let Some((net, prefix)) = network {
        let n = addr::format_ip(net);
        if start.is_ipv4() != net.is_ipv4() {
            return Err(sys_internal(format!(
                "mismatch of address family in range {s} - {e} for network {n}"
            )));
        }
        let prefix_shown = prefix.map_or(-1i64, i64::from);
        let mask = prefix.and_then(|p| addr::prefix_to_netmask(p, net));
        let Some(mask) = mask else {
            return Err(sys_internal(format!(
                "bad prefix {prefix_shown} for network {n} when checking range {s} - {e}"
            )));
        };
        let netaddr = addr::mask_addr(net, &mask);
        if addr::mask_addr(start, &mask) != netaddr || addr::mask_addr(end, &mask) != netaddr {
            return Err(sys_internal(format!(
                "range {s} - {e} is not entirely within network {n}/{prefix_shown}"
            )));
        }
        if let (IpAddr::V4(netv4), IpAddr::V4(maskv4)) = (net, mask) {
            let base = u32::from(*netv4) & u32::from(maskv4);
            let broadcast = u32::from(*netv4) | !u32::from(maskv4);
            if *start == IpAddr::V4(Ipv4Addr::from(base)) {
                return Err(sys_internal(format!(
                    "start of range {s} - {e} in network {n}/{prefix_shown} is the network address"
                )));
            }
            if *end == IpAddr::V4(Ipv4Addr::from(broadcast)) {
                return Err(sys_internal(format!(
                    "end of range {s} - {e} in network {n}/{prefix_shown} is the broadcast address"
                )));
            }
        }
    }
    match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let (a, b) = (a.octets(), b.octets());
            if a[0] != b[0] || a[1] != b[1] {
                return Err(sys_internal(format!(
                    "range {s} - {e} is too large (> 65535)"
                )));
            }
            let size =
                (i64::from(b[2]) - i64::from(a[2])) * 256 + (i64::from(b[3]) - i64::from(a[3]));
            if size < 0 {
                return Err(sys_internal(format!("range {s} - {e} is reversed ")));
            }
            Ok(size as u32 + 1)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let (a, b) = (a.segments(), b.segments());
            if a[..7] != b[..7] {
                return Err(sys_internal(format!(
                    "range {s} - {e} is too large (> 65535)"
                )));
            }
            let size = i64::from(b[7]) - i64::from(a[7]);
            if size < 0 {
                return Err(sys_internal(format!(
                    "range {s} - {e} start larger than end"
                )));
            }
            Ok(size as u32 + 1)
        }
        _ => Err(sys_internal(format!(
            "unsupported address family for range {s} - {e}, must be ipv4 or ipv6"
        ))),
    }
}

fn parse_lease(node: Node) -> Result<Option<LeaseDef>, Error> {
    let Some(expiry) = xml::prop_ulonglong(node, "expiry", 0)? else {
        return Ok(None);
    };
    let unit = xml::prop_enum(node, "unit", LeaseUnit::from_name, None)?.unwrap_or_default();
    if expiry > 0
        && ((unit == LeaseUnit::Seconds && expiry < 120)
            || (unit == LeaseUnit::Minutes && expiry < 2))
    {
        return Err(Error::unsupported(
            "The minimum lease time should be greater than 2 minutes",
        ));
    }
    Ok(Some(LeaseDef { expiry, unit }))
}

pub(crate) fn parse_dhcp_range(net: &str, ip: &IpDef, node: Node) -> Result<DhcpRangeDef, Error> {
    let Some(start) = prop(node, "start") else {
        return Err(Error::xml(format!(
            "Missing 'start' attribute in dhcp range for network '{net}'"
        )));
    };
    let start = socket_addr(start, Family::Any)?;
    let Some(end) = prop(node, "end") else {
        return Err(Error::xml(format!(
            "Missing 'end' attribute in dhcp range for network '{net}'"
        )));
    };
    let end = socket_addr(end, Family::Any)?;
    get_range(&start, &end, Some((&ip.address, ip.prefix_len())))?;
    let lease = match xml::subelement(node, "lease") {
        Some(l) => parse_lease(l)?,
        None => None,
    };
    Ok(DhcpRangeDef { start, end, lease })
}

/// libvirt's `virNetworkDHCPHostDefParseXML`. With `partial_ok` (used by
/// net-update delete) only one of mac, name or ip is needed.
pub(crate) fn parse_dhcp_host(
    net: &str,
    ip: &IpDef,
    node: Node,
    partial_ok: bool,
) -> Result<DhcpHostDef, Error> {
    let mac = prop(node, "mac");
    if let Some(mac) = mac {
        if ip.address.is_ipv6() {
            return Err(Error::xml(format!(
                "Invalid to specify MAC address '{mac}' in network '{net}' IPv6 static host definition"
            )));
        }
        let Some(parsed) = MacAddr::parse(mac) else {
            return Err(Error::xml(format!(
                "Cannot parse MAC address '{mac}' in network '{net}'"
            )));
        };
        if parsed.is_multicast() {
            return Err(Error::xml(format!(
                "expected unicast mac address, found multicast '{mac}' in network '{net}'"
            )));
        }
    }
    let id = prop(node, "id");
    if let Some(id) = id {
        if let Some(bad) = id.chars().find(|c| !(c.is_ascii_hexdigit() || *c == ':')) {
            return Err(Error::xml(format!(
                "Invalid character '{bad}' in id '{id}' of network '{net}'"
            )));
        }
    }
    let name = prop(node, "name");
    if let Some(name) = name {
        if !name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            return Err(Error::xml(format!(
                "Cannot use host name '{name}' in network '{net}'"
            )));
        }
    }
    let host_ip = match prop(node, "ip") {
        Some(s) => Some(addr::parse_ip(s, Family::Any).map_err(|_| {
            Error::xml(format!(
                "Invalid IP address in static host definition for network '{net}'"
            ))
        })?),
        None => None,
    };
    if partial_ok {
        if mac.is_none() && name.is_none() && host_ip.is_none() {
            return Err(Error::xml(format!(
                "At least one of name, mac, or ip attribute must be specified for static host definition in network '{net}'"
            )));
        }
    } else {
        if ip.address.is_ipv6() {
            if id.is_none() && name.is_none() {
                return Err(Error::xml(format!(
                    "Static host definition in IPv6 network '{net}' must have id or name attribute"
                )));
            }
        } else if mac.is_none() && name.is_none() {
            return Err(Error::xml(format!(
                "Static host definition in IPv4 network '{net}' must have mac or name attribute"
            )));
        }
        if host_ip.is_none() {
            return Err(Error::xml(format!(
                "Missing IP address in static host definition for network '{net}'"
            )));
        }
    }
    let lease = match xml::subelement(node, "lease") {
        Some(l) => parse_lease(l)?,
        None => None,
    };
    Ok(DhcpHostDef {
        mac: mac.map(str::to_string),
        id: id.map(str::to_string),
        name: name.map(str::to_string),
        ip: host_ip,
        lease,
    })
}

fn parse_dhcp(net: &str, node: Node, ip: &mut IpDef) -> Result<(), Error> {
    for r in xml::subelements(node, "range") {
        let range = parse_dhcp_range(net, ip, r)?;
        ip.ranges.push(range);
    }
    for h in xml::subelements(node, "host") {
        let host = parse_dhcp_host(net, ip, h, false)?;
        ip.hosts.push(host);
    }
    if let Some(bootp) = xml::subelement(node, "bootp") {
        if ip.address.is_ipv4() {
            let server = prop(bootp, "server");
            ip.bootfile = Some(xml::prop_required(bootp, "file")?.to_string());
            if let Some(server) = server {
                ip.bootserver = Some(socket_addr(server, Family::Any)?);
            }
        }
    }
    Ok(())
}

fn parse_ip(net: &str, node: Node) -> Result<IpDef, Error> {
    let family = xattr(node, "family");
    let Some(address_s) = xattr(node, "address") else {
        return Err(Error::xml(format!(
            "Missing required address attribute in network '{net}'"
        )));
    };
    let address = addr::parse_ip(address_s, Family::Any)
        .map_err(|_| Error::xml(format!("Invalid address '{address_s}' in network '{net}'")))?;
    let netmask_s = xattr(node, "netmask");
    let netmask = match netmask_s {
        Some(m) => Some(
            addr::parse_ip(m, Family::Any)
                .map_err(|_| Error::xml(format!("Invalid netmask '{m}' in network '{net}'")))?,
        ),
        None => None,
    };
    let prefix = xml::prop_uint(node, "prefix", 10, false)?.unwrap_or(0);
    let local_ptr = xml::prop_tristate(Some(node), "localPtr")?;

    let fam = match family {
        None | Some("ipv4") => {
            if address.is_ipv6() {
                return Err(Error::unsupported(format!(
                    "{} family specified for non-IPv4 address '{address_s}' in network '{net}'",
                    if family.is_none() { "no" } else { "ipv4" }
                )));
            }
            if let (Some(m), Some(ms)) = (netmask, netmask_s) {
                if !m.is_ipv4() {
                    return Err(Error::unsupported(format!(
                        "Invalid netmask '{ms}' for address '{address_s}' in network '{net}' (both must be IPv4)"
                    )));
                }
                if prefix > 0 {
                    return Err(Error::unsupported(format!(
                        "Network '{net}' IP address cannot have both a prefix and a netmask"
                    )));
                }
            } else if prefix > 32 {
                return Err(Error::unsupported(format!(
                    "Invalid IPv4 prefix '{prefix}' in network '{net}'"
                )));
            }
            family.map(|_| AddressFamily::Ipv4)
        }
        Some("ipv6") => {
            if !address.is_ipv6() {
                return Err(Error::unsupported(format!(
                    "Family 'ipv6' specified for non-IPv6 address '{address_s}' in network '{net}'"
                )));
            }
            if netmask.is_some() {
                return Err(Error::unsupported(format!(
                    "netmask not allowed for IPv6 address '{address_s}' in network '{net}'"
                )));
            }
            if prefix > 128 {
                return Err(Error::unsupported(format!(
                    "Invalid IPv6 prefix '{prefix}' in network '{net}'"
                )));
            }
            Some(AddressFamily::Ipv6)
        }
        Some(other) => {
            return Err(Error::xml(format!(
                "Unrecognized family '{other}' in network '{net}'"
            )));
        }
    };
    let mut ip = IpDef::new(address);
    ip.family = fam;
    ip.prefix = (prefix > 0).then_some(prefix);
    ip.netmask = match netmask {
        Some(IpAddr::V4(m)) => Some(m),
        _ => None,
    };
    ip.local_ptr = local_ptr;
    if let Some(dhcp) = child(node, "dhcp") {
        parse_dhcp(net, dhcp, &mut ip)?;
    }
    if child(node, "tftp").is_some() {
        if !ip.address.is_ipv4() {
            return Err(Error::unsupported(format!(
                "Unsupported <tftp> element in an IPv6 element in network '{net}'"
            )));
        }
        ip.tftproot = child_attr(node, "tftp", "root").map(str::to_string);
    }
    Ok(ip)
}

/// libvirt's `virNetworkDNSHostDefParseXML`.
pub(crate) fn parse_dns_host(
    net: &str,
    node: Node,
    partial_ok: bool,
) -> Result<(Option<IpAddr>, Vec<String>), Error> {
    let name_nodes = xml::subelements(node, "hostname");
    let mut names = Vec::with_capacity(name_nodes.len());
    for n in &name_nodes {
        let name = xml::text_content(*n);
        if name.is_empty() {
            return Err(Error::xml_detail(format!(
                "Missing hostname in network '{net}' DNS HOST record"
            )));
        }
        names.push(name);
    }
    if name_nodes.is_empty() && !partial_ok {
        return Err(Error::xml_detail(format!(
            "Missing hostname in network '{net}' DNS HOST record"
        )));
    }
    let ip = match prop(node, "ip") {
        Some(s) => Some(addr::parse_ip(s, Family::Any).map_err(|_| {
            Error::xml_detail(format!(
                "Invalid IP address in network '{net}' DNS HOST record"
            ))
        })?),
        None => {
            if !partial_ok {
                return Err(Error::xml_detail(format!(
                    "Missing IP address in network '{net}' DNS HOST record"
                )));
            }
            if name_nodes.is_empty() {
                return Err(Error::xml_detail(format!(
                    "Missing ip and hostname in network '{net}' DNS HOST record"
                )));
            }
            None
        }
    };
    Ok((ip, names))
}

/// `virXPathUInt` on an attribute: `Ok(None)` absent/empty, `Err(())` not a number.
fn xpath_uint(node: Node, name: &str) -> Result<Option<u32>, ()> {
    match xattr(node, name) {
        None => Ok(None),
        Some(v) => xml::str_to_uip(v, 10).map(Some).ok_or(()),
    }
}

/// An SRV record as written, possibly partial (for net-update delete).
pub(crate) struct SrvFields {
    pub(crate) service: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) port: Option<u32>,
    pub(crate) priority: Option<u32>,
    pub(crate) weight: Option<u32>,
}

impl SrvFields {
    pub(crate) fn into_def(self) -> DnsSrvDef {
        DnsSrvDef {
            service: self.service.unwrap_or_default(),
            protocol: self.protocol.unwrap_or_default(),
            domain: self.domain,
            target: self.target,
            port: self.port,
            priority: self.priority,
            weight: self.weight,
        }
    }
}

/// libvirt's `virNetworkDNSSrvDefParseXML`.
pub(crate) fn parse_dns_srv(net: &str, node: Node, partial_ok: bool) -> Result<SrvFields, Error> {
    let service = prop(node, "service");
    if service.is_none() && !partial_ok {
        return Err(Error::xml_detail(format!(
            "missing required service attribute in DNS SRV record of network '{net}'"
        )));
    }
    let svc = service.unwrap_or("(null)");
    if let Some(s) = service {
        if s.len() > DNS_RECORD_LENGTH_SRV {
            return Err(Error::xml_detail(format!(
                "service attribute '{s}' in network '{net}' is too long, limit is {DNS_RECORD_LENGTH_SRV} bytes"
            )));
        }
        if !s.chars().all(|c| SERVICE_CHARS.contains(c)) {
            return Err(Error::xml_detail(format!(
                "invalid character in service attribute '{s}' in DNS SRV record of network '{net}'"
            )));
        }
    }
    let protocol = prop(node, "protocol");
    if protocol.is_none() && !partial_ok {
        return Err(Error::xml_detail(format!(
            "missing required protocol attribute in DNS SRV record '{svc}' of network '{net}'"
        )));
    }
    if let Some(p) = protocol {
        if !p.chars().all(|c| PROTOCOL_CHARS.contains(c)) {
            return Err(Error::xml_detail(format!(
                "invalid character in protocol attribute '{p}' in DNS SRV record of network '{net}'"
            )));
        }
    }
    let domain = prop(node, "domain").map(str::to_string);
    let target = prop(node, "target").map(str::to_string);
    let check = |attr: &str,
                 invalid: &str,
                 max_ok: &dyn Fn(u32) -> bool|
     -> Result<Option<u32>, Error> {
        let v = xpath_uint(node, attr);
        if matches!(v, Ok(Some(_))) && target.is_none() {
            return Err(Error::xml_detail(format!(
                "DNS SRV {attr} attribute not permitted without target for service '{svc}' in network '{net}'"
            )));
        }
        match v {
            Err(()) => Err(Error::xml_detail(format!(
                "{invalid} DNS SRV {attr} attribute for service '{svc}' in network '{net}'"
            ))),
            Ok(Some(n)) if !max_ok(n) => Err(Error::xml_detail(format!(
                "{invalid} DNS SRV {attr} attribute for service '{svc}' in network '{net}'"
            ))),
            Ok(v) => Ok(v),
        }
    };
    let port = check("port", "invalid", &|n| (1..=65535).contains(&n))?;
    let priority = check("priority", "Invalid", &|n| n <= 65535)?;
    let weight = check("weight", "invalid", &|n| n <= 65535)?;
    Ok(SrvFields {
        service: service.map(str::to_string),
        protocol: protocol.map(str::to_string),
        domain,
        target,
        port: port.filter(|n| *n != 0),
        priority: priority.filter(|n| *n != 0),
        weight: weight.filter(|n| *n != 0),
    })
}

/// libvirt's `virNetworkDNSTxtDefParseXML`.
pub(crate) fn parse_dns_txt(
    net: &str,
    node: Node,
    partial_ok: bool,
) -> Result<(String, Option<String>), Error> {
    let Some(name) = prop(node, "name") else {
        return Err(Error::xml_detail(format!(
            "missing required name attribute in DNS TXT record of network {net}"
        )));
    };
    if name.contains([' ', ',']) {
        return Err(Error::xml_detail(format!(
            "prohibited character in DNS TXT record name '{name}' of network {net}"
        )));
    }
    let value = prop(node, "value");
    if value.is_none() && !partial_ok {
        return Err(Error::xml_detail(format!(
            "missing required value attribute in DNS TXT record named '{name}' of network {net}"
        )));
    }
    if value.is_some_and(|v| v.contains(['\r', '\n'])) {
        return Err(Error::xml_detail(
            "invalid line break in DNS TXT record value attribute",
        ));
    }
    Ok((name.to_string(), value.map(str::to_string)))
}

fn parse_dns(net: &str, node: Node) -> Result<DnsDef, Error> {
    let mut dns = DnsDef {
        enable: xml::prop_tristate(Some(node), "enable")?,
        forward_plain_names: xml::prop_tristate(Some(node), "forwardPlainNames")?,
        ..DnsDef::default()
    };
    let fwd_nodes = children(node, "forwarder");
    for f in &fwd_nodes {
        let mut fwd = DnsForwarder::default();
        let addr_s = prop(*f, "addr");
        if let Some(a) = addr_s {
            fwd.addr = Some(addr::parse_ip(a, Family::Any).map_err(|_| {
                Error::xml(format!(
                    "Invalid forwarder IP address '{a}' in network '{net}'"
                ))
            })?);
            if let Some(port) = xml::prop_int_positive(*f, "port")? {
                let port = u16::try_from(port).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidArg,
                        ErrorDomain::Network,
                        format!("port '{port}' out of range"),
                    )
                })?;
                fwd.port = Some(port);
            }
        }
        fwd.domain = prop(*f, "domain").map(str::to_string);
        if addr_s.is_none() && fwd.domain.is_none() {
            return Err(Error::xml(
                "Invalid forwarder element, must contain at least one of addr or domain",
            ));
        }
        dns.forwarders.push(fwd);
    }
    let host_nodes = children(node, "host");
    for h in &host_nodes {
        let (ip, names) = parse_dns_host(net, *h, false)?;
        if let Some(ip) = ip {
            dns.hosts.push(DnsHostDef { ip, names });
        }
    }
    let srv_nodes = children(node, "srv");
    for s in &srv_nodes {
        dns.srvs.push(parse_dns_srv(net, *s, false)?.into_def());
    }
    let txt_nodes = children(node, "txt");
    for t in &txt_nodes {
        let (name, value) = parse_dns_txt(net, *t, false)?;
        dns.txts.push(DnsTxtDef {
            name,
            value: value.unwrap_or_default(),
        });
    }
    if dns.enable == TristateBool::No
        && !(fwd_nodes.is_empty()
            && host_nodes.is_empty()
            && srv_nodes.is_empty()
            && txt_nodes.is_empty())
    {
        return Err(Error::xml(format!(
            "Extra data in disabled network '{net}'"
        )));
    }
    Ok(dns)
}

/// libvirt's `virNetworkPortGroupParseXML`.
pub(crate) fn parse_portgroup(node: Node) -> Result<PortGroupDef, Error> {
    let Some(name) = xattr(node, "name") else {
        return Err(Error::xml("Missing required name attribute in portgroup"));
    };
    let is_default = xattr(node, "default").is_some_and(|d| d.eq_ignore_ascii_case("yes"));
    let trust = xml::prop_tristate(Some(node), "trustGuestRxFilters")?;
    let virt_port_profile = match child(node, "virtualport") {
        Some(v) => Some(netdev::parse_virtualport(v, false)?).filter(|vp| !vp.is_empty()),
        None => None,
    };
    let bandwidth = match child(node, "bandwidth") {
        Some(b) => netdev::parse_bandwidth(b, false, false)?.0,
        None => None,
    };
    let vlan = match child(node, "vlan") {
        Some(v) => Some(netdev::parse_vlan(v)?),
        None => None,
    };
    Ok(PortGroupDef {
        name: name.to_string(),
        is_default,
        virt_port_profile,
        bandwidth,
        vlan,
        trust_guest_rx_filters: trust,
    })
}

fn parse_route(net: &str, node: Node) -> Result<RouteDef, Error> {
    let family = prop(node, "family");
    let address = prop(node, "address");
    let netmask = prop(node, "netmask");
    let gateway = prop(node, "gateway");
    let prefix = xml::prop_uint(node, "prefix", 10, false)?;
    let metric = xml::prop_uint(node, "metric", 10, true)?;
    let Some(address_s) = address else {
        return Err(Error::xml(format!(
            "{net}: Missing required address attribute in route definition"
        )));
    };
    let Some(gateway_s) = gateway else {
        return Err(Error::xml(format!(
            "{net}: Missing required gateway attribute in route definition"
        )));
    };
    let address = addr::parse_ip(address_s, Family::Any).map_err(|_| {
        Error::xml(format!(
            "{net}: Bad network address '{address_s}' in route definition"
        ))
    })?;
    let gateway = addr::parse_ip(gateway_s, Family::Any).map_err(|_| {
        Error::xml(format!(
            "{net}: Bad gateway address '{gateway_s}' in route definition"
        ))
    })?;
    let p = prefix.unwrap_or(0);
    let mut mask: Option<IpAddr> = None;
    let fam = match family {
        None | Some("ipv4") => {
            let what = if family.is_none() {
                "No family"
            } else {
                "IPv4 family"
            };
            if !address.is_ipv4() {
                return Err(Error::xml(format!(
                    "{net}: {what} specified for non-IPv4 address '{address_s}' in route definition"
                )));
            }
            if !gateway.is_ipv4() {
                return Err(Error::xml(format!(
                    "{net}: {what} specified for non-IPv4 gateway '{address_s}' in route definition"
                )));
            }
            if let Some(m) = netmask {
                let parsed = addr::parse_ip(m, Family::Any).map_err(|_| {
                    Error::xml(format!(
                        "{net}: Bad netmask address '{m}' in route definition"
                    ))
                })?;
                if !parsed.is_ipv4() {
                    return Err(Error::xml(format!(
                        "{net}: Invalid netmask '{m}' for address '{address_s}' (both must be IPv4)"
                    )));
                }
                if prefix.is_some() {
                    return Err(Error::xml(format!(
                        "{net}: Route definition cannot have both a prefix and a netmask"
                    )));
                }
                mask = Some(parsed);
            }
            if p > 32 {
                return Err(Error::xml(format!(
                    "{net}: Invalid prefix {p} specified in route definition, must be 0 - 32"
                )));
            }
            family.map(|_| AddressFamily::Ipv4)
        }
        Some("ipv6") => {
            if !address.is_ipv6() {
                return Err(Error::xml(format!(
                    "{net}: ipv6 family specified for non-IPv6 address '{address_s}' in route definition"
                )));
            }
            if netmask.is_some() {
                return Err(Error::xml(format!(
                    "{net}: Specifying netmask invalid for IPv6 address '{address_s}' in route definition"
                )));
            }
            if !gateway.is_ipv6() {
                return Err(Error::xml(format!(
                    "{net}: ipv6 specified for non-IPv6 gateway address '{gateway_s}' in route definition"
                )));
            }
            if p > 128 {
                return Err(Error::xml(format!(
                    "{net}: Invalid prefix {p} specified in route definition, must be 0 - 128"
                )));
            }
            Some(AddressFamily::Ipv6)
        }
        Some(other) => {
            return Err(Error::xml(format!(
                "{net}: Unrecognized family '{other}' in route definition"
            )));
        }
    };
    let masked = match &mask {
        Some(m) => addr::mask_addr(&address, m),
        None => addr::mask_by_prefix(&address, p),
    };
    if masked != Some(address) {
        return Err(Error::xml(format!(
            "{net}: Address '{address_s}' in route definition is not a network address"
        )));
    }
    Ok(RouteDef {
        family: fam,
        address,
        netmask: match mask {
            Some(IpAddr::V4(m)) => Some(m),
            _ => None,
        },
        prefix,
        gateway,
        metric,
    })
}

/// libvirt's `virPCIDeviceAddressParseXML`.
pub(crate) fn parse_pci_address(node: Node) -> Result<PciAddress, Error> {
    let a = PciAddress {
        domain: xml::prop_uint(node, "domain", 0, false)?.unwrap_or(0),
        bus: xml::prop_uint(node, "bus", 0, false)?.unwrap_or(0),
        slot: xml::prop_uint(node, "slot", 0, false)?.unwrap_or(0),
        function: xml::prop_uint(node, "function", 0, false)?.unwrap_or(0),
    };
    xml::prop_enum(
        node,
        "multifunction",
        |s| match s {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        },
        None,
    )?;
    let empty = a.domain == 0 && a.bus == 0 && a.slot == 0;
    if !empty {
        let dev = |msg: String| Error::new(ErrorKind::XmlError, ErrorDomain::Device, msg);
        if a.domain > 0xffff {
            return Err(dev(format!(
                "Invalid PCI address domain='0x{:x}', must be <= 0xFFFF",
                a.domain
            )));
        }
        if a.bus > 0xff {
            return Err(dev(format!(
                "Invalid PCI address bus='0x{:x}', must be <= 0xFF",
                a.bus
            )));
        }
        if a.slot > 0x1f {
            return Err(dev(format!(
                "Invalid PCI address slot='0x{:x}', must be <= 0x1F",
                a.slot
            )));
        }
        if a.function > 7 {
            return Err(dev(format!(
                "Invalid PCI address function=0x{:x}, must be <= 7",
                a.function
            )));
        }
    }
    Ok(a)
}

/// libvirt's `virDeviceHostdevPCIDriverInfoParseXML`.
pub(crate) fn parse_hostdev_driver(node: Node) -> Result<HostdevDriver, Error> {
    let name = xml::prop_enum(
        node,
        "name",
        HostdevDriverName::from_name,
        Some(HostdevDriverName::Default),
    )?
    .unwrap_or_default();
    Ok(HostdevDriver {
        name,
        model: prop(node, "model").map(str::to_string),
    })
}

fn parse_nat(net: &str, node: Node, fwd: &mut ForwardDef) -> Result<(), Error> {
    if fwd.mode != ForwardMode::Nat {
        return Err(Error::xml(format!(
            "The <nat> element can only be used when <forward> 'mode' is 'nat' in network {net}"
        )));
    }
    fwd.nat_ipv6 = xml::prop_tristate(Some(node), "ipv6")?;
    let addrs = children(node, "address");
    let (mut start_s, mut end_s) = (None, None);
    if addrs.len() > 1 {
        return Err(Error::xml(format!(
            "Only one <address> element is allowed in <nat> in <forward> in network {net}"
        )));
    } else if let Some(a) = addrs.first() {
        start_s = prop(*a, "start");
        if start_s.is_none() {
            return Err(Error::xml(format!(
                "missing 'start' attribute in <address> element in <nat> in <forward> in network {net}"
            )));
        }
        end_s = prop(*a, "end");
        if end_s.is_none() {
            return Err(Error::xml(format!(
                "missing 'end' attribute in <address> element in <nat> in <forward> in network {net}"
            )));
        }
    }
    if let (Some(s), Some(e)) = (start_s, end_s) {
        let start = match addr::parse_ip(s, Family::V4) {
            Ok(IpAddr::V4(a)) => a,
            _ => {
                return Err(Error::xml(format!(
                    "Bad ipv4 start address '{s}' in <nat> in <forward> in network '{net}'"
                )));
            }
        };
        let end = match addr::parse_ip(e, Family::V4) {
            Ok(IpAddr::V4(a)) => a,
            _ => {
                return Err(Error::xml(format!(
                    "Bad ipv4 end address '{e}' in <nat> in <forward> in network '{net}'"
                )));
            }
        };
        get_range(&IpAddr::V4(start), &IpAddr::V4(end), None)?;
        fwd.nat_addr = Some(NatAddrRange { start, end });
    }
    let ports = children(node, "port");
    if ports.len() > 1 {
        return Err(Error::xml(format!(
            "Only one <port> element is allowed in <nat> in <forward> in network {net}"
        )));
    } else if let Some(p) = ports.first() {
        let start = match xpath_uint(*p, "start") {
            Ok(Some(n)) if n <= 65535 => n,
            _ => {
                return Err(Error::xml_detail(format!(
                    "Missing or invalid 'start' attribute in <port> in <nat> in <forward> in network {net}"
                )));
            }
        };
        let end = match xpath_uint(*p, "end") {
            Ok(Some(n)) if n <= 65535 && n >= start => n,
            _ => {
                return Err(Error::xml_detail(format!(
                    "Missing or invalid 'end' attribute in <port> in <nat> in <forward> in network {net}"
                )));
            }
        };
        fwd.nat_port = Some(PortRange { start, end });
    }
    Ok(())
}

fn parse_forward(net: &str, node: Node, status: bool) -> Result<ForwardDef, Error> {
    let mode = match xattr(node, "mode") {
        None => ForwardMode::Nat,
        Some(m) => ForwardMode::from_name(m)
            .ok_or_else(|| Error::unsupported(format!("unknown forwarding type '{m}'")))?,
    };
    let mut fwd = ForwardDef {
        mode,
        ..ForwardDef::default()
    };
    fwd.managed = xattr(node, "managed").is_some_and(|m| m.eq_ignore_ascii_case("yes"));
    if let Some(d) = child(node, "driver") {
        fwd.driver = parse_hostdev_driver(d)?;
    }
    let if_nodes = children(node, "interface");
    let addr_nodes = children(node, "address");
    let pf_nodes = children(node, "pf");
    let nat_nodes = children(node, "nat");
    if nat_nodes.len() > 1 {
        return Err(Error::xml(format!(
            "Only one <nat> element is allowed in <forward> of network {net}"
        )));
    } else if let Some(n) = nat_nodes.first() {
        parse_nat(net, *n, &mut fwd)?;
    }
    let dev = xattr(node, "dev");
    if dev.is_some() && (!addr_nodes.is_empty() || !pf_nodes.is_empty()) {
        return Err(Error::xml(format!(
            "the <forward> 'dev' attribute cannot be used when <address> or <pf> sub-elements are present in network {net}"
        )));
    }
    if !if_nodes.is_empty() || dev.is_some() {
        if let Some(d) = dev {
            fwd.ifs.push(ForwardIfDef {
                device: ForwardDevice::Netdev(d.to_string()),
                connections: 0,
            });
        }
        for (i, n) in if_nodes.iter().enumerate() {
            let Some(devi) = prop(*n, "dev") else {
                return Err(Error::xml(format!(
                    "Missing required dev attribute in <forward> <interface> element of network {net}"
                )));
            };
            let connections = if status {
                xml::prop_uint(*n, "connections", 10, false)?.unwrap_or(0)
            } else {
                0
            };
            if i == 0 {
                if let Some(d) = dev {
                    if devi != d {
                        return Err(Error::xml(format!(
                            "<forward dev='{d}'> must match first <interface dev='{devi}'/> in network {net}"
                        )));
                    }
                    if let Some(first) = fwd.ifs.first_mut() {
                        first.connections = connections;
                    }
                    continue;
                }
            }
            if fwd.ifs.iter().any(|f| f.dev() == Some(devi)) {
                return Err(Error::xml(format!(
                    "interface '{devi}' can only be listed once in network {net}"
                )));
            }
            fwd.ifs.push(ForwardIfDef {
                device: ForwardDevice::Netdev(devi.to_string()),
                connections,
            });
        }
    } else if !addr_nodes.is_empty() {
        for a in &addr_nodes {
            let Some(ty) = prop(*a, "type") else {
                return Err(Error::xml(format!("missing address type in network {net}")));
            };
            match ty {
                "pci" => {
                    let pci = parse_pci_address(*a)?;
                    if fwd.ifs.iter().any(|f| f.device == ForwardDevice::Pci(pci)) {
                        return Err(Error::xml(format!(
                            "PCI device '{pci}' can only be listed once in network {net}"
                        )));
                    }
                    fwd.ifs.push(ForwardIfDef {
                        device: ForwardDevice::Pci(pci),
                        connections: 0,
                    });
                }
                "none" | "netdev" => {
                    return Err(Error::xml(format!(
                        "unsupported address type '{ty}' in network {net}"
                    )));
                }
                _ => {
                    return Err(Error::unsupported(format!(
                        "unknown address type '{ty}' in network {net}"
                    )));
                }
            }
        }
    }
    // libvirt reads <pf> only when there is no pool; a status file also
    // lists the pool a <pf> was expanded to, so it keeps both.
    if fwd.ifs.is_empty() || status {
        if pf_nodes.len() > 1 {
            return Err(Error::xml(format!(
                "Only one <pf> element is allowed in <forward> of network {net}"
            )));
        } else if let Some(pf) = pf_nodes.first() {
            let Some(d) = prop(*pf, "dev") else {
                return Err(Error::xml(format!(
                    "Missing required dev attribute in <pf> element of network '{net}'"
                )));
            };
            fwd.pfs.push(ForwardPfDef {
                dev: d.to_string(),
                connections: 0,
            });
        }
    }
    Ok(fwd)
}

/// Parse a network definition from a document's root element. With
/// `status`, runtime state written in the live view is read back too.
pub(crate) fn parse_network(root: Node, status: bool) -> Result<NetworkDef, Error> {
    let mut def = NetworkDef {
        stp: true,
        ..NetworkDef::default()
    };
    let Some(name) = child_text(root, "name") else {
        return Err(Error::bare(ErrorKind::NoName, ErrorDomain::Network));
    };
    if let Some(c) = name.chars().find(|c| *c == '/') {
        return Err(Error::new(
            ErrorKind::XmlDetail,
            ErrorDomain::Xml,
            format!("invalid char in name: {c}"),
        ));
    }
    def.name = name;
    let net = def.name.clone();
    let net = net.as_str();

    if let Some(uuid) = child_text(root, "uuid") {
        def.uuid =
            Some(Uuid::parse(&uuid).ok_or_else(|| Error::internal("malformed uuid element"))?);
    }
    def.title = child_text(root, "title");
    if def.title.as_deref().is_some_and(|t| t.contains('\n')) {
        return Err(Error::xml("Network title can't contain newlines"));
    }
    def.description = child_text(root, "description");
    if let Some(v) = xattr(root, "ipv6") {
        def.ipv6nogw = match v {
            "yes" => true,
            "no" => false,
            _ => {
                return Err(Error::xml(format!(
                    "Invalid ipv6 setting '{v}' in network '{net}'"
                )));
            }
        };
    }
    def.trust_guest_rx_filters = xml::prop_tristate(Some(root), "trustGuestRxFilters")?;
    if status {
        def.connections = xml::prop_uint(root, "connections", 10, false)?.unwrap_or(0);
    }

    let domain_node = child(root, "domain");
    def.domain = domain_node
        .and_then(|d| prop(d, "name"))
        .map(str::to_string);
    def.domain_local_only = xml::prop_tristate(domain_node, "localOnly")?;
    def.domain_register = xml::prop_tristate(domain_node, "register")?;
    if def.domain_register == TristateBool::Yes && def.domain_local_only != TristateBool::Yes {
        return Err(Error::unsupported(format!(
            "attribute 'register=yes' in <domain> element requires 'localOnly=yes' in network {net}"
        )));
    }

    if let Some(b) = child(root, "bandwidth") {
        def.bandwidth = netdev::parse_bandwidth(b, false, false)?.0;
    }
    if let Some(v) = child(root, "vlan") {
        def.vlan = Some(netdev::parse_vlan(v)?);
    }
    def.isolated_port = xml::prop_tristate(child(root, "port"), "isolated")?;

    def.bridge = child_attr(root, "bridge", "name").map(str::to_string);
    def.bridge_zone = child_attr(root, "bridge", "zone").map(str::to_string);
    let stp = child_attr(root, "bridge", "stp");
    def.stp = stp != Some("off");
    if let Some(d) = child_attr(root, "bridge", "delay") {
        def.delay = xml::str_to_ullp(d, 10)
            .ok_or_else(|| Error::xml(format!("Invalid delay value in network '{net}'")))?;
    }
    if let Some(m) = child_attr(root, "bridge", "macTableManager") {
        def.mac_table_manager = match MacTableManager::from_name(m) {
            Some(t) if t != MacTableManager::Default => t,
            _ => {
                return Err(Error::xml(format!(
                    "Invalid macTableManager setting '{m}' in network '{net}'"
                )));
            }
        };
    }
    if let Some(m) = child_attr(root, "mac", "address") {
        let Some(mac) = MacAddr::parse(m) else {
            return Err(Error::xml(format!(
                "Invalid bridge mac address '{m}' in network '{net}'"
            )));
        };
        if mac.is_multicast() {
            return Err(Error::xml(format!(
                "Invalid multicast bridge mac address '{m}' in network '{net}'"
            )));
        }
        def.mac = Some(mac);
    }
    if let Some(m) = xml::first_child_attr(root, "mtu", "size") {
        let mtu = xml::str_to_ui(m, 10)
            .ok_or_else(|| Error::xml(format!("Invalid mtu size '{m}' in network '{net}'")))?;
        def.mtu = (mtu != 0).then_some(mtu);
    }
    if let Some(d) = child(root, "dns") {
        def.dns = parse_dns(net, d)?;
    }
    if let Some(v) = child(root, "virtualport") {
        def.virt_port_profile = Some(netdev::parse_virtualport(v, true)?);
    }
    for pg in children(root, "portgroup") {
        def.port_groups.push(parse_portgroup(pg)?);
    }
    for ip in children(root, "ip") {
        def.ips.push(parse_ip(net, ip)?);
    }
    for r in children(root, "route") {
        def.routes.push(parse_route(net, r)?);
    }
    for r in &def.routes {
        let reachable = def.ips.iter().any(|ip| {
            if ip.address.is_ipv4() != r.gateway.is_ipv4() {
                return false;
            }
            let Some(prefix) = ip.prefix_len() else {
                return false;
            };
            match (
                addr::mask_by_prefix(&ip.address, prefix),
                addr::mask_by_prefix(&r.gateway, prefix),
            ) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            }
        });
        if !reachable {
            return Err(Error::unsupported(format!(
                "unreachable static route gateway '{}' specified for network '{net}'",
                addr::format_ip(&r.gateway)
            )));
        }
    }
    if let Some(f) = child(root, "forward") {
        def.forward = parse_forward(net, f, status)?;
    }
    check_forward_mode(&def, stp.is_some())?;

    // Kept even when nothing in it survives (elements without a namespace
    // are dropped): libvirt then formats `<metadata/>`.
    if let Some(md) = child(root, "metadata") {
        def.metadata = Some(metadata::copy_metadata(md));
    }
    for opts in root.children().filter(|c| {
        c.is_element()
            && c.tag_name().namespace() == Some(DNSMASQ_NAMESPACE)
            && c.tag_name().name() == "options"
    }) {
        for opt in opts.children().filter(|c| {
            c.is_element()
                && c.tag_name().namespace() == Some(DNSMASQ_NAMESPACE)
                && c.tag_name().name() == "option"
        }) {
            let Some(v) = prop(opt, "value") else {
                return Err(Error::internal("No dnsmasq options value specified"));
            };
            def.dnsmasq_options.push(v.to_string());
        }
    }
    Ok(def)
}

/// The checks libvirt's parser makes between the forward mode and the rest.
fn check_forward_mode(def: &NetworkDef, stp_given: bool) -> Result<(), Error> {
    let net = &def.name;
    let mode = def.forward.mode;
    match mode {
        ForwardMode::None => {}
        ForwardMode::Route | ForwardMode::Nat => {
            if def.ips.is_empty() {
                return Err(Error::xml(format!(
                    "{mode} forwarding requested, but no IP address provided for network '{net}'"
                )));
            }
            if def.forward.ifs.len() > 1 {
                return Err(Error::xml(format!(
                    "multiple forwarding interfaces specified for network '{net}', only one is supported"
                )));
            }
        }
        ForwardMode::Open => {
            if !def.forward.ifs.is_empty() {
                return Err(Error::xml(format!(
                    "forward dev not allowed for network '{net}' with forward mode='{mode}'"
                )));
            }
        }
        ForwardMode::Private
        | ForwardMode::Vepa
        | ForwardMode::Passthrough
        | ForwardMode::Hostdev
        | ForwardMode::Bridge => {
            if mode != ForwardMode::Bridge {
                if def.bridge.is_some() {
                    return Err(Error::xml(format!(
                        "bridge name not allowed in {mode} mode (network '{net}')"
                    )));
                }
                if def.bridge_zone.is_some() {
                    return Err(Error::xml(format!(
                        "bridge zone not allowed in {mode} mode (network '{net}')"
                    )));
                }
                if def.mac_table_manager != MacTableManager::Default {
                    return Err(Error::xml(format!(
                        "bridge macTableManager setting not allowed in {mode} mode (network '{net}')"
                    )));
                }
            }
            if def.delay != 0 || stp_given || def.bridge_zone.is_some() {
                return Err(Error::xml(format!(
                    "bridge delay/stp/zone options only allowed in open, route, nat, and isolated mode, not in {mode} (network '{net}')"
                )));
            }
            if def.bridge.is_some() && (!def.forward.ifs.is_empty() || !def.forward.pfs.is_empty())
            {
                return Err(Error::xml(format!(
                    "A network with forward mode='{mode}' can specify a bridge name or a forward dev, but not both (network '{net}')"
                )));
            }
        }
    }
    if def.mtu.is_some() && !mode.is_virtual() {
        return Err(Error::xml(format!(
            "mtu size only allowed in open, route, nat, and isolated mode, not in {mode} (network '{net}')"
        )));
    }
    Ok(())
}
