//! The dnsmasq conf file of a network, as libvirt's
//! `networkDnsmasqConfContents` writes it for a dnsmasq of version 2.67 or
//! later (which has `--bind-dynamic`, `--ra-param` and DHCPv6).

use std::fmt::Write as _;
use std::net::IpAddr;

use virtnet_conf::addr::{format_ip, prefix_to_netmask};
use virtnet_conf::{ForwardMode, IpDef, NetworkDef, TristateBool};

use crate::error::{Error, Result};
use crate::hosts::{HostsBuilder, HostsFiles, lease_time};
use crate::paths;
use crate::safety::{Rules, check, violation};

/// Where the generated files live and what the conf file points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The dnsmasq state directory: the conf file names the hostsfile and
    /// addnhosts file inside it (libvirt: `/var/lib/libvirt/dnsmasq`).
    pub state_dir: String,
    /// The `pid-file=` line, if any (libvirt: `/run/libvirt/network/NAME.pid`).
    pub pid_file: Option<String>,
}

impl Options {
    /// Options for `state_dir`, with no pid-file line.
    pub fn new(state_dir: impl Into<String>) -> Options {
        Options {
            state_dir: state_dir.into(),
            pid_file: None,
        }
    }

    /// The same options with a `pid-file=` line.
    pub fn with_pid_file(mut self, pid_file: impl Into<String>) -> Options {
        self.pid_file = Some(pid_file.into());
        self
    }
}

impl Default for Options {
    /// libvirt's system state directory, no pid-file line.
    fn default() -> Options {
        Options::new(paths::DEFAULT_STATE_DIR)
    }
}

/// Everything dnsmasq needs for one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqFiles {
    /// The conf file (`--conf-file=`) contents.
    pub conf: String,
    /// The dhcp hostsfile contents; `None` when there is no static DHCP
    /// host. libvirt writes the file (empty) all the same, so it can be
    /// filled at run time; see [`DnsmasqFiles::hostsfile_contents`].
    pub hostsfile: Option<String>,
    /// The addnhosts contents (possibly empty; always written).
    pub addnhosts: String,
    /// `STATE_DIR/NAME.conf`.
    pub conf_path: String,
    /// `STATE_DIR/NAME.hostsfile` (NAME XML-escaped), as the conf names it.
    pub hostsfile_path: String,
    /// `STATE_DIR/NAME.addnhosts` (NAME XML-escaped), as the conf names it.
    pub addnhosts_path: String,
    /// dnsmasq serves DHCP (the conf has `dhcp-hostsfile=`).
    pub dhcp: bool,
    /// dnsmasq serves DNS (the conf has no `port=0`).
    pub dns: bool,
}

impl DnsmasqFiles {
    /// The dhcp hostsfile as it is written to disk (empty when `None`).
    pub fn hostsfile_contents(&self) -> &str {
        self.hostsfile.as_deref().unwrap_or("")
    }

    /// Just the two host files (what a SIGHUP makes dnsmasq re-read).
    pub fn hosts(&self) -> HostsFiles {
        HostsFiles {
            hostsfile: self.hostsfile.clone(),
            addnhosts: self.addnhosts.clone(),
        }
    }
}

/// Whether a network runs a dnsmasq at all (libvirt's
/// `networkStartDhcpDaemon` decision): only networks whose bridge libvirt
/// manages (isolated, nat, route, open), only when they have an `<ip>`, and
/// not when DNS is disabled and no `<ip>` serves DHCP or TFTP.
pub fn needs_dnsmasq(def: &NetworkDef) -> bool {
    if !def.forward.mode.is_virtual() || def.ips.is_empty() {
        return false;
    }
    let serves = def
        .ips
        .iter()
        .any(|ip| ip.has_dhcp() || ip.tftproot.is_some());
    serves || def.dns.enable != TristateBool::No
}

/// The first `<ip>` of each family that serves DHCP, as libvirt picks them.
fn dhcp_ips(def: &NetworkDef) -> (Option<&IpDef>, Option<&IpDef>) {
    (
        def.ipv4s().find(|ip| ip.has_dhcp()),
        def.ipv6s().find(|ip| ip.has_dhcp()),
    )
}

/// The two host files alone, for refreshing a running dnsmasq (libvirt's
/// `networkRefreshDhcpDaemon`): the static hosts of the first DHCP `<ip>`
/// of each family, and the `<dns>` hosts.
pub fn hosts_files(def: &NetworkDef) -> Result<HostsFiles> {
    let net = def.name.as_str();
    let (v4, v6) = dhcp_ips(def);
    let mut hosts = HostsBuilder::default();
    for ip in [v4, v6].into_iter().flatten() {
        hosts.add_dhcp_hosts(net, ip)?;
    }
    hosts.add_dns_hosts(net, &def.dns)?;
    Ok(hosts.finish())
}

/// What a change of definition means for a running dnsmasq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateAction {
    /// Nothing dnsmasq reads changed.
    Nothing,
    /// Only the hostsfile or addnhosts changed: rewrite them and send
    /// SIGHUP (dnsmasq re-reads both files; it cannot re-read its conf
    /// file, which it no longer has the rights to read).
    Reload,
    /// The conf file changed: rewrite everything and restart dnsmasq.
    Restart,
    /// The network did not need dnsmasq and now does: start it.
    Start,
    /// The network needed dnsmasq and no longer does: stop it.
    Stop,
}

/// The result of [`DnsmasqConfig::plan_update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePlan {
    /// What to do with the running dnsmasq.
    pub action: UpdateAction,
    /// The files for the new definition, when it needs dnsmasq.
    pub files: Option<DnsmasqFiles>,
}

/// The dnsmasq generator: all entry points of this crate's generation side.
#[derive(Debug, Clone, Copy)]
pub struct DnsmasqConfig;

impl DnsmasqConfig {
    /// Generate the conf file, dhcp hostsfile and addnhosts of `def`
    /// exactly as libvirt does. See [`generate`].
    pub fn generate(def: &NetworkDef, opts: &Options) -> Result<DnsmasqFiles> {
        generate(def, opts)
    }

    /// See [`needs_dnsmasq`].
    pub fn needs_dnsmasq(def: &NetworkDef) -> bool {
        needs_dnsmasq(def)
    }

    /// See [`hosts_files`].
    pub fn hosts_files(def: &NetworkDef) -> Result<HostsFiles> {
        hosts_files(def)
    }

    /// Decide how a running network's dnsmasq follows a change from `old`
    /// to `new`: compare what dnsmasq would read. A changed conf file needs
    /// a restart; changed host files need only a SIGHUP (this is what
    /// libvirt's per-section choice in `networkUpdate` amounts to: DHCP and
    /// DNS hosts reload, everything else on the conf file restarts).
    pub fn plan_update(old: &NetworkDef, new: &NetworkDef, opts: &Options) -> Result<UpdatePlan> {
        let old_needs = needs_dnsmasq(old);
        let new_needs = needs_dnsmasq(new);
        let files = if new_needs {
            Some(generate(new, opts)?)
        } else {
            None
        };
        let action = match (old_needs, &files) {
            (false, None) => UpdateAction::Nothing,
            (true, None) => UpdateAction::Stop,
            (false, Some(_)) => UpdateAction::Start,
            (true, Some(newf)) => match generate(old, opts) {
                Err(_) => UpdateAction::Restart,
                Ok(oldf) => {
                    if oldf.conf != newf.conf || oldf.conf_path != newf.conf_path {
                        UpdateAction::Restart
                    } else if oldf.hostsfile != newf.hostsfile || oldf.addnhosts != newf.addnhosts {
                        UpdateAction::Reload
                    } else {
                        UpdateAction::Nothing
                    }
                }
            },
        };
        Ok(UpdatePlan { action, files })
    }

    /// See [`command_line`].
    pub fn command_line(
        def: &NetworkDef,
        conf_path: &str,
        dhcp_script: &str,
    ) -> Result<DnsmasqCommand> {
        command_line(def, conf_path, dhcp_script)
    }
}

/// Arguments and environment of the dnsmasq process (libvirt's
/// `networkBuildDhcpDaemonCommandLine`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqCommand {
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// `--conf-file=CONF --leasefile-ro --dhcp-script=SCRIPT` with
/// `VIR_BRIDGE_NAME=BRIDGE` in the environment: dnsmasq keeps no lease file
/// of its own; the script keeps the lease records (see [`crate::lease`]).
pub fn command_line(
    def: &NetworkDef,
    conf_path: &str,
    dhcp_script: &str,
) -> Result<DnsmasqCommand> {
    let bridge = bridge_name(def)?;
    Ok(DnsmasqCommand {
        args: vec![
            format!("--conf-file={conf_path}"),
            "--leasefile-ro".to_string(),
            format!("--dhcp-script={dhcp_script}"),
        ],
        env: vec![("VIR_BRIDGE_NAME".to_string(), bridge.to_string())],
    })
}

fn bridge_name(def: &NetworkDef) -> Result<&str> {
    let net = def.name.as_str();
    let bridge = def
        .bridge
        .as_deref()
        .ok_or_else(|| Error::Internal(format!("network '{net}' has no bridge name")))?;
    check(net, "bridge name", bridge, Rules::FIELD)?;
    Ok(bridge)
}

/// Generate the files of `def` exactly as libvirt's
/// `networkDnsmasqConfContents` does; values that would inject or corrupt
/// dnsmasq options are refused with [`Error::UnsafeValue`].
pub fn generate(def: &NetworkDef, opts: &Options) -> Result<DnsmasqFiles> {
    let net = def.name.as_str();
    check(net, "network name", net, Rules::LINE)?;
    check(
        net,
        "dnsmasq state directory",
        &opts.state_dir,
        Rules::VALUE,
    )?;
    let conf_path = paths::conf_path(&opts.state_dir, net);
    let hostsfile_path = paths::hostsfile_path(&opts.state_dir, net);
    let addnhosts_path = paths::addnhosts_path(&opts.state_dir, net);
    // The name may hold quotes and the like (escaped in the paths); what
    // matters is how the paths read.
    for path in [&hostsfile_path, &addnhosts_path] {
        if let Some(reason) = violation(path, Rules::VALUE) {
            return Err(Error::UnsafeValue {
                network: net.to_string(),
                element: "network name",
                value: net.to_string(),
                reason,
            });
        }
    }
    if let Some(pid) = &opts.pid_file {
        check(net, "pid file", pid, Rules::VALUE)?;
    }
    let bridge = bridge_name(def)?;

    let dns = &def.dns;
    let want_dns = dns.enable != TristateBool::No;
    let mut c = String::with_capacity(1024);

    // Infallible: writing to a String never fails.
    let _ = write!(
        c,
        "##WARNING:  THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n\
         ##OVERWRITTEN AND LOST.  Changes to this configuration should be made using:\n\
         ##    virsh net-edit {net}\n\
         ## or other application using the libvirt API.\n\
         ##\n\
         ## dnsmasq conf file created by libvirt\n\
         strict-order\n"
    );

    if !want_dns {
        c.push_str("port=0\n");
    }

    if want_dns && !dns.forwarders.is_empty() {
        let mut no_resolv = false;
        for fwd in &dns.forwarders {
            c.push_str("server=");
            if let Some(domain) = &fwd.domain {
                check(net, "DNS forwarder domain", domain, Rules::DOMAIN)?;
                let _ = write!(c, "/{domain}/");
            }
            match &fwd.addr {
                Some(addr) => {
                    c.push_str(&format_ip(addr));
                    if let Some(port) = fwd.port {
                        let _ = write!(c, "#{port}");
                    }
                    c.push('\n');
                    if fwd.domain.is_none() {
                        no_resolv = true;
                    }
                }
                // "don't forward requests for this domain"
                None => c.push_str("#\n"),
            }
        }
        if no_resolv {
            c.push_str("no-resolv\n");
        }
    }

    if let Some(domain) = &def.domain {
        check(net, "domain name", domain, Rules::DOMAIN)?;
        if def.domain_local_only == TristateBool::Yes {
            let _ = writeln!(c, "local=/{domain}/");
        }
        let _ = write!(c, "domain={domain}\nexpand-hosts\n");
    }

    if want_dns {
        for ip in &def.ips {
            if ip.local_ptr != TristateBool::Yes {
                continue;
            }
            // libvirt passes the (possibly invalid, -1) prefix as unsigned.
            let prefix = ip.prefix_len().unwrap_or(u32::MAX);
            match ptr_domain(&ip.address, prefix) {
                Some(ptr) => {
                    let _ = writeln!(c, "local=/{ptr}/");
                }
                None => {
                    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
                    return Err(Error::Unsupported(format!(
                        "PTR domain for {family} network with prefix {prefix} cannot be automatically created"
                    )));
                }
            }
        }
    }

    if want_dns && dns.forward_plain_names == TristateBool::No {
        c.push_str("domain-needed\nlocal=//\n");
    }

    if let Some(pid) = &opts.pid_file {
        let _ = writeln!(c, "pid-file={pid}");
    }

    // dnsmasq always listens on localhost unless told otherwise; with
    // bind-dynamic and only interface= it answers only on the bridge
    // (CVE-2012-3411).
    c.push_str("except-interface=lo\n");
    let _ = write!(c, "bind-dynamic\ninterface={bridge}\n");

    if def.forward.mode == ForwardMode::None {
        // Isolated: no default route for guests, no upstream DNS, and an RA
        // default route lifetime of 0.
        c.push_str("dhcp-option=3\nno-resolv\nra-param=*,0,0\n");
    }

    if want_dns {
        for txt in &dns.txts {
            check(net, "DNS TXT record name", &txt.name, Rules::FIELD)?;
            check(net, "DNS TXT record value", &txt.value, Rules::VALUE)?;
            let _ = writeln!(c, "txt-record={},{}", txt.name, txt.value);
        }
        for srv in &dns.srvs {
            if srv.service.is_empty() || srv.protocol.is_empty() {
                // libvirt's message names 'service' for both attributes.
                return Err(Error::Internal(format!(
                    "Missing required 'service' attribute in SRV record of network '{net}'"
                )));
            }
            check(net, "DNS SRV record service", &srv.service, Rules::FIELD)?;
            check(net, "DNS SRV record protocol", &srv.protocol, Rules::FIELD)?;
            let _ = write!(c, "srv-host=_{}._{}", srv.service, srv.protocol);
            if let Some(domain) = &srv.domain {
                check(net, "DNS SRV record domain", domain, Rules::FIELD)?;
                let _ = write!(c, ".{domain}");
            }
            // An empty or "." target means "decidedly not available" (RFC
            // 2782): port, priority and weight are irrelevant then.
            if let Some(target) = srv.target.as_deref().filter(|t| *t != ".") {
                check(net, "DNS SRV record target", target, Rules::FIELD)?;
                let _ = write!(c, ",{target}");
                let port = srv.port.unwrap_or(0);
                let priority = srv.priority.unwrap_or(0);
                let weight = srv.weight.unwrap_or(0);
                // Positional fields: a later one given needs the earlier
                // ones (dnsmasq's default port is 1).
                if port != 0 || priority != 0 || weight != 0 {
                    let _ = write!(c, ",{}", if port != 0 { port } else { 1 });
                }
                if priority != 0 || weight != 0 {
                    let _ = write!(c, ",{priority}");
                }
                if weight != 0 {
                    let _ = write!(c, ",{weight}");
                }
            }
            c.push('\n');
        }
    }

    // The first DHCP <ip> of each family; TFTP for every IPv4 <ip>.
    let mut ipv4def: Option<&IpDef> = None;
    let mut ipv6def: Option<&IpDef> = None;
    let mut tftp_enabled = false;
    for ip in &def.ips {
        if ip.is_ipv4() {
            if ip.has_dhcp() {
                if ipv4def.is_some() {
                    return Err(Error::Unsupported(
                        "For IPv4, multiple DHCP definitions cannot be specified.".into(),
                    ));
                }
                ipv4def = Some(ip);
            }
            if let Some(root) = &ip.tftproot {
                check(net, "TFTP root", root, Rules::FIELD)?;
                if !tftp_enabled {
                    c.push_str("enable-tftp\n");
                    tftp_enabled = true;
                }
                let _ = writeln!(c, "tftp-root={root}");
            }
        } else if ip.has_dhcp() {
            if ipv6def.is_some() {
                return Err(Error::Unsupported(
                    "For IPv6, multiple DHCP definitions cannot be specified.".into(),
                ));
            }
            ipv6def = Some(ip);
        }
    }

    let mut hosts = HostsBuilder::default();
    let mut nbleases: i64 = 0;
    for ip in [ipv4def, ipv6def].into_iter().flatten() {
        dhcp_section(&mut c, net, bridge, ip, &mut nbleases, &mut hosts)?;
    }
    if nbleases > 0 {
        let _ = writeln!(c, "dhcp-lease-max={nbleases}");
    }

    hosts.add_dns_hosts(net, dns)?;

    // Written even without static hosts, so hosts can be added at run time.
    let dhcp = ipv4def.is_some() || ipv6def.is_some();
    if dhcp {
        let _ = writeln!(c, "dhcp-hostsfile={hostsfile_path}");
    }
    if want_dns {
        let _ = writeln!(c, "addn-hosts={addnhosts_path}");
    }

    if let Some(mtu) = def.mtu.filter(|m| *m > 0) {
        let _ = writeln!(c, "dhcp-option=option:mtu,{mtu}");
    }

    // dnsmasq does router advertisement: with DHCPv6 stateful, else
    // SLAAC-only ranges on every IPv6 address.
    if ipv6def.is_some() {
        c.push_str("enable-ra\n");
    } else {
        for ip in def.ipv6s().filter(|ip| !ip.has_dhcp()) {
            let _ = writeln!(c, "dhcp-range={},ra-only", format_ip(&ip.address));
        }
    }

    for opt in &def.dnsmasq_options {
        check(net, "dnsmasq:option value", opt, Rules::LINE)?;
        c.push_str(opt);
        c.push('\n');
    }

    let HostsFiles {
        hostsfile,
        addnhosts,
    } = hosts.finish();
    Ok(DnsmasqFiles {
        conf: c,
        hostsfile,
        addnhosts,
        conf_path,
        hostsfile_path,
        addnhosts_path,
        dhcp,
        dns: want_dns,
    })
}

/// libvirt's `networkDnsmasqConfDHCP` for one `<ip>`.
fn dhcp_section(
    c: &mut String,
    net: &str,
    bridge: &str,
    ip: &IpDef,
    nbleases: &mut i64,
    hosts: &mut HostsBuilder,
) -> Result<()> {
    let prefix = ip
        .prefix_len()
        .ok_or_else(|| Error::Internal(format!("bridge '{bridge}' has an invalid prefix")))?;
    for range in &ip.ranges {
        let start = format_ip(&range.start);
        let end = format_ip(&range.end);
        if ip.is_ipv6() {
            let _ = write!(c, "dhcp-range={start},{end},{prefix}");
        } else {
            let netmask = prefix_to_netmask(prefix, &ip.address).ok_or_else(|| {
                Error::Internal(format!(
                    "Failed to translate bridge '{bridge}' prefix {prefix} to netmask"
                ))
            })?;
            let _ = write!(c, "dhcp-range={start},{end},{}", format_ip(&netmask));
        }
        if let Some(lease) = &range.lease {
            let _ = write!(c, ",{}", lease_time(lease));
        }
        c.push('\n');
        *nbleases += i64::from(range_size(&range.start, &range.end, &ip.address, prefix)?);
    }

    // Static hosts only: a special range turns DHCP on for dhcp-host lines.
    if ip.ranges.is_empty() && !ip.hosts.is_empty() {
        let _ = write!(c, "dhcp-range={},static", format_ip(&ip.address));
        if ip.is_ipv6() {
            let _ = write!(c, ",{prefix}");
        }
        c.push('\n');
    }

    hosts.add_dhcp_hosts(net, ip)?;

    if ip.is_ipv4() {
        if ip.has_dhcp() {
            c.push_str("dhcp-no-override\ndhcp-authoritative\n");
        }
        if let Some(file) = &ip.bootfile {
            check(net, "BOOTP file", file, Rules::FIELD)?;
            match &ip.bootserver {
                Some(server) => {
                    let _ = writeln!(c, "dhcp-boot={file},,{}", format_ip(server));
                }
                None => {
                    let _ = writeln!(c, "dhcp-boot={file}");
                }
            }
        }
    }
    Ok(())
}

/// libvirt's `virSocketAddrGetRange` with a network: the number of
/// addresses from `start` to `end`, which must lie in `network/prefix`
/// (IPv4: not the network or broadcast address) and differ only in the
/// last 16 bits.
pub(crate) fn range_size(
    start: &IpAddr,
    end: &IpAddr,
    network: &IpAddr,
    prefix: u32,
) -> Result<u32> {
    let s = format_ip(start);
    let e = format_ip(end);
    let n = format_ip(network);
    let internal = |m: String| Err(Error::Internal(m));
    if start.is_ipv4() != end.is_ipv4() {
        return internal(format!("mismatch of address family in range {s} - {e}"));
    }
    if start.is_ipv4() != network.is_ipv4() {
        return internal(format!(
            "mismatch of address family in range {s} - {e} for network {n}"
        ));
    }
    let Some(mask) = prefix_to_netmask(prefix, network) else {
        return internal(format!(
            "bad prefix {prefix} for network {n} when checking range {s} - {e}"
        ));
    };
    let masked = |a: &IpAddr| virtnet_conf::addr::mask_addr(a, &mask);
    let net_addr = masked(network);
    if masked(start) != net_addr || masked(end) != net_addr {
        return internal(format!(
            "range {s} - {e} is not entirely within network {n}/{prefix}"
        ));
    }
    match (start, end, network, mask) {
        (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(nw), IpAddr::V4(m)) => {
            let base = u32::from(*nw) & u32::from(m);
            let broadcast = u32::from(*nw) | !u32::from(m);
            if u32::from(*a) == base {
                return internal(format!(
                    "start of range {s} - {e} in network {n}/{prefix} is the network address"
                ));
            }
            if u32::from(*b) == broadcast {
                return internal(format!(
                    "end of range {s} - {e} in network {n}/{prefix} is the broadcast address"
                ));
            }
            let (x, y) = (a.octets(), b.octets());
            if x[..2] != y[..2] {
                return internal(format!("range {s} - {e} is too large (> 65535)"));
            }
            let size =
                (i32::from(y[2]) - i32::from(x[2])) * 256 + (i32::from(y[3]) - i32::from(x[3]));
            if size < 0 {
                return internal(format!("range {s} - {e} is reversed "));
            }
            Ok(size.unsigned_abs() + 1)
        }
        (IpAddr::V6(a), IpAddr::V6(b), _, _) => {
            let (x, y) = (a.segments(), b.segments());
            if x[..7] != y[..7] {
                return internal(format!("range {s} - {e} is too large (> 65535)"));
            }
            let size = i32::from(y[7]) - i32::from(x[7]);
            if size < 0 {
                return internal(format!("range {s} - {e} start larger than end"));
            }
            Ok(size.unsigned_abs() + 1)
        }
        _ => internal(format!(
            "unsupported address family for range {s} - {e}, must be ipv4 or ipv6"
        )),
    }
}

/// libvirt's `virSocketAddrPTRDomain`: the reverse-lookup domain of
/// `addr/prefix`, for prefixes on an octet (IPv4) or nibble (IPv6) boundary.
pub(crate) fn ptr_domain(addr: &IpAddr, prefix: u32) -> Option<String> {
    let mut out = String::new();
    match addr {
        IpAddr::V4(a) => {
            if prefix == 0 || prefix >= 32 || prefix % 8 != 0 {
                return None;
            }
            let o = a.octets();
            for i in (0..(prefix / 8) as usize).rev() {
                let _ = write!(out, "{}.", o[i]);
            }
            out.push_str("in-addr.arpa");
        }
        IpAddr::V6(a) => {
            if prefix == 0 || prefix >= 128 || prefix % 4 != 0 {
                return None;
            }
            let o = a.octets();
            for i in (0..(prefix / 4) as usize).rev() {
                let byte = o[i / 2];
                let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0xf };
                let _ = write!(out, "{nibble:x}.");
            }
            out.push_str("ip6.arpa");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptr_domains() {
        let a: IpAddr = "192.168.122.1".parse().unwrap();
        assert_eq!(
            ptr_domain(&a, 24).as_deref(),
            Some("122.168.192.in-addr.arpa")
        );
        assert_eq!(ptr_domain(&a, 16).as_deref(), Some("168.192.in-addr.arpa"));
        assert_eq!(ptr_domain(&a, 20), None);
        assert_eq!(ptr_domain(&a, 32), None);
        let b: IpAddr = "2001:db8:ac10:fe01::1".parse().unwrap();
        assert_eq!(
            ptr_domain(&b, 64).as_deref(),
            Some("1.0.e.f.0.1.c.a.8.b.d.0.1.0.0.2.ip6.arpa")
        );
        assert_eq!(ptr_domain(&b, 62), None);
    }

    #[test]
    fn range_sizes() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let n = ip("192.168.122.1");
        assert_eq!(
            range_size(&ip("192.168.122.2"), &ip("192.168.122.254"), &n, 24),
            Ok(253)
        );
        assert_eq!(
            range_size(&ip("10.0.0.2"), &ip("10.0.1.1"), &ip("10.0.0.1"), 16),
            Ok(256)
        );
        assert!(range_size(&ip("192.168.122.0"), &ip("192.168.122.9"), &n, 24).is_err());
        assert!(range_size(&ip("192.168.122.9"), &ip("192.168.122.255"), &n, 24).is_err());
        assert!(range_size(&ip("192.168.122.9"), &ip("192.168.122.3"), &n, 24).is_err());
        assert!(range_size(&ip("192.168.123.9"), &ip("192.168.123.10"), &n, 24).is_err());
        let v6 = ip("2001:db8:ac10:fd01::1");
        assert_eq!(
            range_size(
                &ip("2001:db8:ac10:fd01::1:10"),
                &ip("2001:db8:ac10:fd01::1:ff"),
                &v6,
                64
            ),
            Ok(240)
        );
        assert!(
            range_size(
                &ip("2001:db8:ac10:fd01::1:10"),
                &ip("2001:db8:ac10:fd01::2:ff"),
                &v6,
                64
            )
            .is_err()
        );
    }
}
