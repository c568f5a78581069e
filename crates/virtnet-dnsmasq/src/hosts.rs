//! The dhcp hostsfile (`dhcp-hostsfile=`) and the addnhosts file
//! (`addn-hosts=`), as libvirt's `dnsmasqAddDhcpHost` / `dnsmasqAddHost`
//! build them.
//!
//! Both files are re-read by dnsmasq on SIGHUP, so static DHCP hosts and
//! DNS hosts can change without restarting dnsmasq.

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
    dhcp: Vec<String>,
    addn: Vec<(String, Vec<String>)>,
}

impl HostsBuilder {
    /// libvirt's `networkBuildDnsmasqDhcpHostsList`: the static hosts of
    /// one `<ip>`, skipping hosts without an address.
    pub(crate) fn add_dhcp_hosts(&mut self, network: &str, ip: &IpDef) -> Result<()> {
        let ipv6 = ip.is_ipv6();
        for host in &ip.hosts {
            if let Some(addr) = host.ip {
                let line = dhcp_host_line(network, host, &addr, ipv6)?;
                self.dhcp.push(line);
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
        let hostsfile = if self.dhcp.is_empty() {
            None
        } else {
            let mut s = String::with_capacity(self.dhcp.iter().map(|l| l.len() + 1).sum());
            for line in &self.dhcp {
                s.push_str(line);
                s.push('\n');
            }
            Some(s)
        };
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

/// One dhcp-hostsfile line (libvirt's `hostsfileAdd`):
/// IPv4 `MAC,IP,NAME` / `NAME,IP` / `MAC,IP`;
/// IPv6 `id:DUID,NAME,[IP]` / `NAME,[IP]` / `id:DUID,[IP]`;
/// then `,LEASETIME` when the host has its own lease time.
fn dhcp_host_line(network: &str, host: &DhcpHostDef, addr: &IpAddr, ipv6: bool) -> Result<String> {
    let ip = format_ip(addr);
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
    let mut line = if ipv6 {
        let head = match (name, host.id.as_deref()) {
            (Some(n), Some(id)) => format!("id:{id},{n}"),
            (Some(n), None) => n.to_string(),
            (None, Some(id)) => format!("id:{id}"),
            (None, None) => {
                return Err(Error::Internal(format!(
                    "static host {ip} of network '{network}' has neither id nor name"
                )));
            }
        };
        format!("{head},[{ip}]")
    } else {
        match (host.mac.as_deref(), name) {
            (Some(mac), Some(n)) => format!("{mac},{ip},{n}"),
            (None, Some(n)) => format!("{n},{ip}"),
            (Some(mac), None) => format!("{mac},{ip}"),
            (None, None) => {
                return Err(Error::Internal(format!(
                    "static host {ip} of network '{network}' has neither mac nor name"
                )));
            }
        }
    };
    if let Some(lease) = &host.lease {
        line.push(',');
        line.push_str(&lease_time(lease));
    }
    Ok(line)
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

    #[test]
    fn host_lines() {
        let a: IpAddr = "192.168.122.10".parse().unwrap();
        let h = host(Some("00:16:3e:77:e2:ed"), None, Some("a"), "192.168.122.10");
        assert_eq!(
            dhcp_host_line("n", &h, &a, false).unwrap(),
            "00:16:3e:77:e2:ed,192.168.122.10,a"
        );
        let h = host(None, None, Some("a"), "192.168.122.10");
        assert_eq!(
            dhcp_host_line("n", &h, &a, false).unwrap(),
            "a,192.168.122.10"
        );
        let mut h = host(Some("00:16:3e:77:e2:ed"), None, None, "192.168.122.10");
        h.lease = Some(LeaseDef {
            expiry: 3,
            unit: LeaseUnit::Hours,
        });
        assert_eq!(
            dhcp_host_line("n", &h, &a, false).unwrap(),
            "00:16:3e:77:e2:ed,192.168.122.10,3h"
        );
        let b: IpAddr = "2001:db8::1:20".parse().unwrap();
        let h = host(None, Some("0:3:0:1"), Some("p"), "2001:db8::1:20");
        assert_eq!(
            dhcp_host_line("n", &h, &b, true).unwrap(),
            "id:0:3:0:1,p,[2001:db8::1:20]"
        );
        let h = host(None, Some("0:3:0:1"), None, "2001:db8::1:20");
        assert_eq!(
            dhcp_host_line("n", &h, &b, true).unwrap(),
            "id:0:3:0:1,[2001:db8::1:20]"
        );
        let h = host(None, None, Some("paul"), "2001:db8::1:20");
        assert_eq!(
            dhcp_host_line("n", &h, &b, true).unwrap(),
            "paul,[2001:db8::1:20]"
        );
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
