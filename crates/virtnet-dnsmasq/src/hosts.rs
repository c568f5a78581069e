//! The dhcp hostsfile (`dhcp-hostsfile=`) and the addnhosts file
//! (`addn-hosts=`), as libvirt's `dnsmasqAddDhcpHost` / `dnsmasqAddHost`
//! build them.
//!
//! Both files are re-read by dnsmasq on SIGHUP, so static DHCP hosts and
//! DNS hosts can change without restarting dnsmasq.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use virtnet_conf::addr::format_ip;
use virtnet_conf::{DhcpHostDef, DnsDef, IpDef, LeaseDef, LeaseUnit};

use crate::error::{Error, Result};
use crate::safety::{Rules, check};

/// libvirt's `networkBuildDnsmasqLeaseTime`: `infinite` for 0, else the
/// number and the unit's first letter (`200s`, `5m`, `2h`).
pub fn lease_time(lease: &LeaseDef) -> String {
    if lease.expiry == 0 {
        return "infinite".to_string();
    }
    let unit = match lease.unit {
        LeaseUnit::Seconds => 's',
        LeaseUnit::Minutes => 'm',
        LeaseUnit::Hours => 'h',
    };
    format!("{}{unit}", lease.expiry)
}

/// The contents of the two host files of a network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostsFiles {
    /// The dhcp hostsfile: one line per static DHCP host. `None` when there
    /// is no static host (libvirt then produces no hostsfile content, and
    /// writes an empty file).
    pub hostsfile: Option<String>,
    /// The addnhosts file: `IP\tNAME\t…\n` per address of `<dns><host>`;
    /// empty when there is none.
    pub addnhosts: String,
}

impl HostsFiles {
    /// The dhcp hostsfile as it is written to disk (empty when `None`).
    pub fn hostsfile_contents(&self) -> &str {
        self.hostsfile.as_deref().unwrap_or("")
    }
}

/// Accumulates the lines of both files.
#[derive(Debug, Default)]
pub(crate) struct HostsBuilder {
    /// The hostsfile lines, each ending in a newline.
    dhcp: String,
    addn: Vec<(String, Vec<String>)>,
}

impl HostsBuilder {
    /// libvirt's `networkBuildDnsmasqDhcpHostsList`: the static hosts of
    /// one `<ip>`, skipping hosts without an address.
    pub(crate) fn add_dhcp_hosts(&mut self, network: &str, ip: &IpDef) -> Result<()> {
        let ipv6 = ip.is_ipv6();
        for host in &ip.hosts {
            if let Some(addr) = host.ip {
                dhcp_host_line(&mut self.dhcp, network, host, &addr, ipv6)?;
                self.dhcp.push('\n');
            }
        }
        Ok(())
    }

    /// libvirt's `networkBuildDnsmasqHostsList`: every name of every
    /// `<dns><host>`, grouped by address in order of first appearance.
    pub(crate) fn add_dns_hosts(&mut self, network: &str, dns: &DnsDef) -> Result<()> {
        for host in &dns.hosts {
            let ip = format_ip(&host.ip);
            for name in &host.names {
                check(network, "DNS host name", name, Rules::HOSTS_NAME)?;
                match self.addn.iter_mut().find(|(a, _)| *a == ip) {
                    Some((_, names)) => names.push(name.clone()),
                    None => self.addn.push((ip.clone(), vec![name.clone()])),
                }
            }
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> HostsFiles {
        let hostsfile = (!self.dhcp.is_empty()).then_some(self.dhcp);
        let mut addnhosts = String::new();
        for (ip, names) in &self.addn {
            addnhosts.push_str(ip);
            addnhosts.push('\t');
            for name in names {
                addnhosts.push_str(name);
                addnhosts.push('\t');
            }
            addnhosts.push('\n');
        }
        HostsFiles {
            hostsfile,
            addnhosts,
        }
    }
}

/// One dhcp-hostsfile line (libvirt's `hostsfileAdd`), appended to `out`
/// without its newline:
/// IPv4 `MAC,IP,NAME` / `NAME,IP` / `MAC,IP`;
/// IPv6 `id:DUID,NAME,[IP]` / `NAME,[IP]` / `id:DUID,[IP]`;
/// then `,LEASETIME` when the host has its own lease time.
fn dhcp_host_line(
    out: &mut String,
    network: &str,
    host: &DhcpHostDef,
    addr: &IpAddr,
    ipv6: bool,
) -> Result<()> {
    if let Some(mac) = &host.mac {
        check(network, "DHCP host MAC address", mac, Rules::FIRST_FIELD)?;
    }
    if let Some(name) = &host.name {
        check(network, "DHCP host name", name, Rules::FIRST_FIELD)?;
    }
    if let Some(id) = &host.id {
        check(network, "DHCP host id", id, Rules::FIELD)?;
    }
    let name = host.name.as_deref();
    // Writing to a String cannot fail.
    let _ = if ipv6 {
        match (name, host.id.as_deref()) {
            (Some(n), Some(id)) => write!(out, "id:{id},{n},"),
            (Some(n), None) => write!(out, "{n},"),
            (None, Some(id)) => write!(out, "id:{id},"),
            (None, None) => {
                return Err(Error::Internal(format!(
                    "static host {} of network '{network}' has neither id nor name",
                    format_ip(addr)
                )));
            }
        }
        .and_then(|()| write!(out, "[{}]", Ip(addr)))
    } else {
        match (host.mac.as_deref(), name) {
            (Some(mac), Some(n)) => write!(out, "{mac},{},{n}", Ip(addr)),
            (None, Some(n)) => write!(out, "{n},{}", Ip(addr)),
            (Some(mac), None) => write!(out, "{mac},{}", Ip(addr)),
            (None, None) => {
                return Err(Error::Internal(format!(
                    "static host {} of network '{network}' has neither mac nor name",
                    format_ip(addr)
                )));
            }
        }
    };
    if let Some(lease) = &host.lease {
        out.push(',');
        out.push_str(&lease_time(lease));
    }
    Ok(())
}

/// An address printed like glibc's `inet_ntop` (see [`format_ip`]).
struct Ip<'a>(&'a IpAddr);

impl fmt::Display for Ip<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => {
                let o = a.octets();
                write!(f, "{}.{}.{}.{}", o[0], o[1], o[2], o[3])
            }
            IpAddr::V6(_) => f.write_str(&format_ip(self.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_conf::DnsHostDef;

    fn host(mac: Option<&str>, id: Option<&str>, name: Option<&str>, ip: &str) -> DhcpHostDef {
        DhcpHostDef {
            mac: mac.map(str::to_string),
            id: id.map(str::to_string),
            name: name.map(str::to_string),
            ip: ip.parse().ok(),
            lease: None,
        }
    }

    #[test]
    fn lease_times() {
        let l = |expiry, unit| lease_time(&LeaseDef { expiry, unit });
        assert_eq!(l(0, LeaseUnit::Hours), "infinite");
        assert_eq!(l(200, LeaseUnit::Seconds), "200s");
        assert_eq!(l(5, LeaseUnit::Minutes), "5m");
        assert_eq!(l(2, LeaseUnit::Hours), "2h");
    }

    fn line(h: &DhcpHostDef, a: &IpAddr, ipv6: bool) -> Result<String> {
        let mut s = String::new();
        dhcp_host_line(&mut s, "n", h, a, ipv6)?;
        Ok(s)
    }

    #[test]
    fn host_lines() {
        let a: IpAddr = "192.168.122.10".parse().unwrap();
        let h = host(Some("00:16:3e:77:e2:ed"), None, Some("a"), "192.168.122.10");
        assert_eq!(
            line(&h, &a, false).unwrap(),
            "00:16:3e:77:e2:ed,192.168.122.10,a"
        );
        let h = host(None, None, Some("a"), "192.168.122.10");
        assert_eq!(line(&h, &a, false).unwrap(), "a,192.168.122.10");
        let mut h = host(Some("00:16:3e:77:e2:ed"), None, None, "192.168.122.10");
        h.lease = Some(LeaseDef {
            expiry: 3,
            unit: LeaseUnit::Hours,
        });
        assert_eq!(
            line(&h, &a, false).unwrap(),
            "00:16:3e:77:e2:ed,192.168.122.10,3h"
        );
        let b: IpAddr = "2001:db8::1:20".parse().unwrap();
        let h = host(None, Some("0:3:0:1"), Some("p"), "2001:db8::1:20");
        assert_eq!(line(&h, &b, true).unwrap(), "id:0:3:0:1,p,[2001:db8::1:20]");
        let h = host(None, Some("0:3:0:1"), None, "2001:db8::1:20");
        assert_eq!(line(&h, &b, true).unwrap(), "id:0:3:0:1,[2001:db8::1:20]");
        let h = host(None, None, Some("paul"), "2001:db8::1:20");
        assert_eq!(line(&h, &b, true).unwrap(), "paul,[2001:db8::1:20]");
    }

    #[test]
    fn addnhosts_groups_by_address() {
        let dns = DnsDef {
            hosts: vec![
                DnsHostDef {
                    ip: "192.168.122.1".parse().unwrap(),
                    names: vec!["host".into(), "gateway".into()],
                },
                DnsHostDef {
                    ip: "2001:db8::1".parse().unwrap(),
                    names: vec!["six".into()],
                },
                DnsHostDef {
                    ip: "192.168.122.1".parse().unwrap(),
                    names: vec!["again".into()],
                },
            ],
            ..DnsDef::default()
        };
        let mut b = HostsBuilder::default();
        b.add_dns_hosts("n", &dns).unwrap();
        let f = b.finish();
        assert_eq!(f.hostsfile, None);
        assert_eq!(
            f.addnhosts,
            "192.168.122.1\thost\tgateway\tagain\t\n2001:db8::1\tsix\t\n"
        );
    }
}
