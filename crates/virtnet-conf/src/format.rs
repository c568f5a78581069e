//! Formatting `<network>` like libvirt's `virNetworkDefFormatBuf`.

use crate::addr::format_ip;
use crate::model::*;
use crate::netdev;
use crate::parse::DNSMASQ_NAMESPACE;
use crate::xml::{Buf, escape, escape_text};

/// How to format a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatFlags {
    /// Format the persistent (inactive) view: no connection counts, no
    /// runtime pool devices (`net-dumpxml --inactive`, config files).
    pub inactive: bool,
}

impl FormatFlags {
    /// The live view (`net-dumpxml`).
    pub const ACTIVE: FormatFlags = FormatFlags { inactive: false };
    /// The persistent view (`net-dumpxml --inactive`).
    pub const INACTIVE: FormatFlags = FormatFlags { inactive: true };
}

fn yes_no(b: TristateBool) -> &'static str {
    b.as_str().unwrap_or("")
}

fn format_driver(buf: &mut Buf, d: &HostdevDriver) {
    if d.is_empty() {
        return;
    }
    let mut s = String::from("<driver");
    if d.name != HostdevDriverName::Default {
        s.push_str(&format!(" name='{}'", d.name.as_str()));
    }
    if let Some(m) = &d.model {
        s.push_str(&format!(" model='{}'", escape(m)));
    }
    s.push_str("/>\n");
    buf.add(&s);
}

/// libvirt writes the function as `0x%d`: the same as hex for every valid
/// function (0-7), but an address it counts as empty (domain, bus and slot
/// zero) is not checked, and `function='0xA2'` would come back as `0x162`.
/// Hex keeps such an address what it was.
pub(crate) fn format_pci(buf: &mut Buf, a: &crate::addr::PciAddress, with_type: bool) {
    buf.add(&format!(
        "<address {}domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{:x}'/>\n",
        if with_type { "type='pci' " } else { "" },
        a.domain,
        a.bus,
        a.slot,
        a.function
    ));
}

fn format_nat(buf: &mut Buf, f: &ForwardDef) {
    let port = f.nat_port.filter(|p| p.start != 0 || p.end != 0);
    if f.nat_addr.is_none() && port.is_none() && !f.nat_ipv6.is_set() {
        return;
    }
    let mut s = String::from("<nat");
    if f.nat_ipv6.is_set() {
        s.push_str(&format!(" ipv6='{}'", yes_no(f.nat_ipv6)));
    }
    if f.nat_addr.is_none() && port.is_none() {
        s.push_str("/>\n");
        buf.add(&s);
        return;
    }
    s.push_str(">\n");
    buf.add(&s);
    buf.adjust(2);
    if let Some(a) = f.nat_addr {
        buf.add(&format!("<address start='{}' end='{}'/>\n", a.start, a.end));
    }
    if let Some(p) = port {
        if p.end != 0 {
            buf.add(&format!("<port start='{}' end='{}'/>\n", p.start, p.end));
        } else {
            buf.add(&format!("<port start='{}'/>\n", p.start));
        }
    }
    buf.adjust(-2);
    buf.add("</nat>\n");
}

fn format_forward(buf: &mut Buf, def: &NetworkDef, flags: FormatFlags) {
    let f = &def.forward;
    if f.mode == ForwardMode::None {
        return;
    }
    let dev = if f.pfs.is_empty() { f.dev(0) } else { None };
    let mut s = String::from("<forward");
    if let Some(d) = dev {
        s.push_str(&format!(" dev='{}'", escape(d)));
    }
    s.push_str(&format!(" mode='{}'", f.mode.as_str()));
    if f.mode == ForwardMode::Hostdev {
        s.push_str(if f.managed {
            " managed='yes'"
        } else {
            " managed='no'"
        });
    }
    let short = f.ifs.is_empty()
        && f.pfs.is_empty()
        && f.nat_addr.is_none()
        && f.nat_port.is_none_or(|p| p.start == 0 && p.end == 0)
        && f.driver.is_empty()
        && !f.nat_ipv6.is_set();
    s.push_str(if short { "/>\n" } else { ">\n" });
    buf.add(&s);
    if short {
        return;
    }
    buf.adjust(2);
    format_driver(buf, &f.driver);
    if f.mode == ForwardMode::Nat {
        format_nat(buf, f);
    }
    if let Some(pf) = f.pfs.first() {
        buf.add(&format!("<pf dev='{}'/>\n", escape(&pf.dev)));
    }
    if !f.ifs.is_empty() && (f.pfs.is_empty() || !flags.inactive) {
        for i in &f.ifs {
            match &i.device {
                ForwardDevice::Netdev(d) => {
                    let mut s = format!("<interface dev='{}'", escape(d));
                    if !flags.inactive && i.connections > 0 {
                        s.push_str(&format!(" connections='{}'", i.connections));
                    }
                    s.push_str("/>\n");
                    buf.add(&s);
                }
                ForwardDevice::Pci(a) => format_pci(buf, a, true),
            }
        }
    }
    buf.adjust(-2);
    buf.add("</forward>\n");
}

fn format_lease(buf: &mut Buf, lease: &LeaseDef) {
    if lease.expiry == 0 {
        buf.add("<lease expiry='0'/>\n");
    } else {
        buf.add(&format!(
            "<lease expiry='{}' unit='{}'/>\n",
            lease.expiry,
            lease.unit.as_str()
        ));
    }
}

fn format_ip_def(buf: &mut Buf, ip: &IpDef) {
    let mut s = String::from("<ip");
    if let Some(f) = ip.family {
        s.push_str(&format!(" family='{}'", f.as_str()));
    }
    s.push_str(&format!(" address='{}'", format_ip(&ip.address)));
    if let Some(m) = ip.netmask {
        s.push_str(&format!(" netmask='{m}'"));
    }
    if let Some(p) = ip.prefix.filter(|p| *p > 0) {
        s.push_str(&format!(" prefix='{p}'"));
    }
    if ip.local_ptr.is_set() {
        s.push_str(&format!(" localPtr='{}'", yes_no(ip.local_ptr)));
    }
    s.push_str(">\n");
    buf.add(&s);
    buf.adjust(2);
    if let Some(t) = &ip.tftproot {
        buf.add(&format!("<tftp root='{}'/>\n", escape(t)));
    }
    if ip.has_dhcp() {
        buf.add("<dhcp>\n");
        buf.adjust(2);
        for r in &ip.ranges {
            let head = format!(
                "<range start='{}' end='{}'",
                format_ip(&r.start),
                format_ip(&r.end)
            );
            match &r.lease {
                Some(l) => {
                    buf.add(&format!("{head}>\n"));
                    buf.adjust(2);
                    format_lease(buf, l);
                    buf.adjust(-2);
                    buf.add("</range>\n");
                }
                None => buf.add(&format!("{head}/>\n")),
            }
        }
        for h in &ip.hosts {
            let mut s = String::from("<host");
            if let Some(m) = &h.mac {
                s.push_str(&format!(" mac='{}'", escape(m)));
            }
            if let Some(id) = &h.id {
                s.push_str(&format!(" id='{}'", escape(id)));
            }
            if let Some(n) = &h.name {
                s.push_str(&format!(" name='{}'", escape(n)));
            }
            if let Some(a) = &h.ip {
                s.push_str(&format!(" ip='{}'", format_ip(a)));
            }
            match &h.lease {
                Some(l) => {
                    buf.add(&format!("{s}>\n"));
                    buf.adjust(2);
                    format_lease(buf, l);
                    buf.adjust(-2);
                    buf.add("</host>\n");
                }
                None => buf.add(&format!("{s}/>\n")),
            }
        }
        if let Some(file) = &ip.bootfile {
            let mut s = format!("<bootp file='{}'", escape(file));
            if let Some(server) = &ip.bootserver {
                s.push_str(&format!(" server='{}'", format_ip(server)));
            }
            s.push_str("/>\n");
            buf.add(&s);
        }
        buf.adjust(-2);
        buf.add("</dhcp>\n");
    }
    buf.adjust(-2);
    buf.add("</ip>\n");
}

fn format_dns(buf: &mut Buf, dns: &DnsDef) {
    if dns.is_empty() {
        return;
    }
    let mut s = String::from("<dns");
    if dns.enable.is_set() {
        s.push_str(&format!(" enable='{}'", yes_no(dns.enable)));
    }
    if dns.forward_plain_names.is_set() {
        s.push_str(&format!(
            " forwardPlainNames='{}'",
            yes_no(dns.forward_plain_names)
        ));
    }
    if dns.forwarders.is_empty()
        && dns.hosts.is_empty()
        && dns.srvs.is_empty()
        && dns.txts.is_empty()
    {
        s.push_str("/>\n");
        buf.add(&s);
        return;
    }
    s.push_str(">\n");
    buf.add(&s);
    buf.adjust(2);
    for f in &dns.forwarders {
        let mut s = String::from("<forwarder");
        if let Some(d) = &f.domain {
            s.push_str(&format!(" domain='{}'", escape(d)));
        }
        if let Some(a) = &f.addr {
            s.push_str(&format!(" addr='{}'", format_ip(a)));
            if let Some(p) = f.port.filter(|p| *p > 0) {
                s.push_str(&format!(" port='{p}'"));
            }
        }
        s.push_str("/>\n");
        buf.add(&s);
    }
    for t in &dns.txts {
        buf.add(&format!(
            "<txt name='{}' value='{}'/>\n",
            escape(&t.name),
            escape(&t.value)
        ));
    }
    for srv in &dns.srvs {
        let mut s = format!(
            "<srv service='{}' protocol='{}'",
            escape(&srv.service),
            escape(&srv.protocol)
        );
        if let Some(d) = &srv.domain {
            s.push_str(&format!(" domain='{}'", escape(d)));
        }
        if let Some(t) = &srv.target {
            s.push_str(&format!(" target='{}'", escape(t)));
        }
        if let Some(p) = srv.port.filter(|p| *p > 0) {
            s.push_str(&format!(" port='{p}'"));
        }
        if let Some(p) = srv.priority.filter(|p| *p > 0) {
            s.push_str(&format!(" priority='{p}'"));
        }
        if let Some(w) = srv.weight.filter(|w| *w > 0) {
            s.push_str(&format!(" weight='{w}'"));
        }
        s.push_str("/>\n");
        buf.add(&s);
    }
    for h in &dns.hosts {
        buf.add(&format!("<host ip='{}'>\n", format_ip(&h.ip)));
        buf.adjust(2);
        for n in &h.names {
            buf.add(&format!("<hostname>{}</hostname>\n", escape_text(n)));
        }
        buf.adjust(-2);
        buf.add("</host>\n");
    }
    buf.adjust(-2);
    buf.add("</dns>\n");
}

fn format_route(buf: &mut Buf, r: &RouteDef) {
    let mut s = String::from("<route");
    if let Some(f) = r.family {
        s.push_str(&format!(" family='{}'", f.as_str()));
    }
    s.push_str(&format!(" address='{}'", format_ip(&r.address)));
    if let Some(m) = r.netmask {
        s.push_str(&format!(" netmask='{m}'"));
    }
    if let Some(p) = r.prefix {
        s.push_str(&format!(" prefix='{p}'"));
    }
    s.push_str(&format!(" gateway='{}'", format_ip(&r.gateway)));
    if let Some(m) = r.metric.filter(|m| *m > 0) {
        s.push_str(&format!(" metric='{m}'"));
    }
    s.push_str("/>\n");
    buf.add(&s);
}

fn format_portgroup(buf: &mut Buf, pg: &PortGroupDef) {
    let mut s = format!("<portgroup name='{}'", escape(&pg.name));
    if pg.is_default {
        s.push_str(" default='yes'");
    }
    if pg.trust_guest_rx_filters.is_set() {
        s.push_str(&format!(
            " trustGuestRxFilters='{}'",
            yes_no(pg.trust_guest_rx_filters)
        ));
    }
    s.push_str(">\n");
    buf.add(&s);
    buf.adjust(2);
    netdev::format_vlan(buf, pg.vlan.as_ref());
    netdev::format_virtualport(buf, pg.virt_port_profile.as_ref());
    netdev::format_bandwidth(buf, pg.bandwidth.as_ref(), 0);
    buf.adjust(-2);
    buf.add("</portgroup>\n");
}

/// `<port isolated='…'/>`.
pub(crate) fn format_port_options(buf: &mut Buf, isolated: TristateBool) {
    if isolated.is_set() {
        buf.add(&format!("<port isolated='{}'/>\n", yes_no(isolated)));
    }
}

pub(crate) fn format_network(def: &NetworkDef, flags: FormatFlags) -> String {
    let mut buf = Buf::new();
    let mut s = String::from("<network");
    if !def.dnsmasq_options.is_empty() {
        s.push_str(&format!(" xmlns:dnsmasq='{DNSMASQ_NAMESPACE}'"));
    }
    if !flags.inactive && def.connections > 0 {
        s.push_str(&format!(" connections='{}'", def.connections));
    }
    if def.ipv6nogw {
        s.push_str(" ipv6='yes'");
    }
    if def.trust_guest_rx_filters.is_set() {
        s.push_str(&format!(
            " trustGuestRxFilters='{}'",
            yes_no(def.trust_guest_rx_filters)
        ));
    }
    s.push_str(">\n");
    buf.add(&s);
    buf.adjust(2);
    buf.add(&format!("<name>{}</name>\n", escape_text(&def.name)));
    if let Some(u) = def.uuid {
        buf.add(&format!("<uuid>{u}</uuid>\n"));
    }
    if let Some(t) = &def.title {
        buf.add(&format!("<title>{}</title>\n", escape_text(t)));
    }
    if let Some(d) = &def.description {
        buf.add(&format!("<description>{}</description>\n", escape_text(d)));
    }
    if let Some(md) = &def.metadata {
        let level = buf.indent() / 2;
        buf.add(&format!("{}\n", md.to_xml(level)));
    }
    format_forward(&mut buf, def, flags);

    let has_bridge = def.forward.mode.is_virtual();
    if has_bridge || def.bridge.is_some() || def.mac_table_manager != MacTableManager::Default {
        let mut s = String::from("<bridge");
        if let Some(b) = &def.bridge {
            s.push_str(&format!(" name='{}'", escape(b)));
        }
        if let Some(z) = &def.bridge_zone {
            s.push_str(&format!(" zone='{}'", escape(z)));
        }
        if has_bridge {
            s.push_str(&format!(
                " stp='{}' delay='{}'",
                if def.stp { "on" } else { "off" },
                def.delay
            ));
        }
        if def.mac_table_manager != MacTableManager::Default {
            s.push_str(&format!(
                " macTableManager='{}'",
                def.mac_table_manager.as_str()
            ));
        }
        s.push_str("/>\n");
        buf.add(&s);
    }
    if let Some(mtu) = def.mtu.filter(|m| *m > 0) {
        buf.add(&format!("<mtu size='{mtu}'/>\n"));
    }
    if let Some(mac) = def.mac {
        buf.add(&format!("<mac address='{mac}'/>\n"));
    }
    if let Some(d) = &def.domain {
        let mut s = format!("<domain name='{}'", escape(d));
        if def.domain_local_only.is_set() {
            s.push_str(&format!(" localOnly='{}'", yes_no(def.domain_local_only)));
        }
        if def.domain_register.is_set() {
            s.push_str(&format!(" register='{}'", yes_no(def.domain_register)));
        }
        s.push_str("/>\n");
        buf.add(&s);
    }
    format_dns(&mut buf, &def.dns);
    netdev::format_vlan(&mut buf, def.vlan.as_ref());
    netdev::format_bandwidth(&mut buf, def.bandwidth.as_ref(), 0);
    format_port_options(&mut buf, def.isolated_port);
    for ip in &def.ips {
        format_ip_def(&mut buf, ip);
    }
    for r in &def.routes {
        format_route(&mut buf, r);
    }
    netdev::format_virtualport(&mut buf, def.virt_port_profile.as_ref());
    for pg in &def.port_groups {
        format_portgroup(&mut buf, pg);
    }
    if !def.dnsmasq_options.is_empty() {
        buf.add("<dnsmasq:options>\n");
        buf.adjust(2);
        for o in &def.dnsmasq_options {
            buf.add(&format!("<dnsmasq:option value='{}'/>\n", escape(o)));
        }
        buf.adjust(-2);
        buf.add("</dnsmasq:options>\n");
    }
    buf.adjust(-2);
    buf.add("</network>\n");
    buf.into_string()
}
