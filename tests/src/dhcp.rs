//! DHCP: a busybox `udhcpc` client inside a namespace, and a hand-run
//! dnsmasq server for scenarios that need one outside virtnetd.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::process::{self, Proc, SpawnOpts, TempDir};

/// What a DHCP server handed out, as applied to the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The leased address.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// The first router offered, if any (installed as the default route).
    pub router: Option<Ipv4Addr>,
    /// DNS servers offered.
    pub dns: Vec<Ipv4Addr>,
    /// Domain offered.
    pub domain: Option<String>,
    /// Lease time in seconds.
    pub lease_secs: Option<u32>,
    /// The server's identifier.
    pub server: Option<Ipv4Addr>,
}

impl Lease {
    /// Parses the `key=value` lines the lease script writes (the names of
    /// udhcpc's environment variables).
    pub fn parse(text: &str) -> Result<Lease> {
        let mut ip = None;
        let mut prefix = None;
        let mut lease = Lease {
            ip: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
            router: None,
            dns: Vec::new(),
            domain: None,
            lease_secs: None,
            server: None,
        };
        let bad = |key: &str, value: &str| Error::parse("udhcpc lease", format!("{key}={value:?}"));
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key {
                "ip" => ip = Some(value.parse().map_err(|_| bad(key, value))?),
                "mask" => prefix = Some(value.parse().map_err(|_| bad(key, value))?),
                "router" => {
                    lease.router = value
                        .split_whitespace()
                        .next()
                        .map(|r| r.parse().map_err(|_| bad(key, value)))
                        .transpose()?;
                }
                "dns" => {
                    lease.dns = value
                        .split_whitespace()
                        .map(|d| d.parse().map_err(|_| bad(key, value)))
                        .collect::<Result<_>>()?;
                }
                "domain" => lease.domain = Some(value.to_string()),
                "lease" => lease.lease_secs = Some(value.parse().map_err(|_| bad(key, value))?),
                "serverid" => lease.server = Some(value.parse().map_err(|_| bad(key, value))?),
                _ => {}
            }
        }
        lease.ip = ip.ok_or_else(|| Error::parse("udhcpc lease", format!("no ip in {text:?}")))?;
        lease.prefix = prefix.unwrap_or(24);
        Ok(lease)
    }
}

/// How [`udhcpc`] asks for a lease.
#[derive(Debug, Clone)]
pub struct DhcpOpts {
    /// Give up after this long.
    pub timeout: Duration,
    /// Send this host name (option 12).
    pub hostname: Option<String>,
    /// Ask for this address.
    pub request: Option<Ipv4Addr>,
    /// Install the offered router as default route.
    pub default_route: bool,
}

impl Default for DhcpOpts {
    fn default() -> Self {
        DhcpOpts {
            timeout: Duration::from_secs(20),
            hostname: None,
            request: None,
            default_route: true,
        }
    }
}

/// The event script: applies the lease to the interface and records it in
/// `$1`'s file. It never touches `/etc/resolv.conf` (shared with the host
/// filesystem); DNS servers are only recorded.
fn lease_script(lease_file: &str, default_route: bool) -> String {
    let route = if default_route {
        r#"    if [ -n "${router:-}" ]; then
        ip route replace default via "${router%% *}" dev "$interface"
    fi
"#
    } else {
        ""
    };
    format!(
        r#"#!/bin/sh
# udhcpc event script: apply the lease to the interface, record it.
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${{mask:-24}}" dev "$interface"
{route}    {{
        echo "ip=$ip"
        echo "mask=${{mask:-}}"
        echo "router=${{router:-}}"
        echo "dns=${{dns:-}}"
        echo "domain=${{domain:-}}"
        echo "lease=${{lease:-}}"
        echo "serverid=${{serverid:-}}"
    }} > '{lease_file}.tmp'
    mv '{lease_file}.tmp' '{lease_file}'
    ;;
esac
exit 0
"#
    )
}

/// Leases an address on `ifname` in `ns` with busybox `udhcpc`, applies
/// it (address, default route) and returns it. Fails after
/// [`DhcpOpts::timeout`].
pub fn udhcpc(ns: &Netns, ifname: &str, opts: &DhcpOpts) -> Result<Lease> {
    let busybox = process::busybox()?;
    let dir = TempDir::new("udhcpc")?;
    let lease_file = dir.join("lease");
    let script = dir.join("script");
    let lease_path = lease_file.to_string_lossy().into_owned();
    write_executable(&script, &lease_script(&lease_path, opts.default_route))?;
    let tries = opts.timeout.as_secs().max(1).to_string();
    let mut argv: Vec<String> = vec![
        busybox.to_string_lossy().into_owned(),
        "udhcpc".into(),
        "-i".into(),
        ifname.into(),
        "-f".into(),
        "-q".into(),
        "-n".into(),
        "-t".into(),
        tries,
        "-T".into(),
        "1".into(),
        "-s".into(),
        script.to_string_lossy().into_owned(),
    ];
    if let Some(h) = &opts.hostname {
        argv.push("-x".into());
        argv.push(format!("hostname:{h}"));
    }
    if let Some(r) = opts.request {
        argv.push("-r".into());
        argv.push(r.to_string());
    }
    let out = ns.run_timeout(&argv, opts.timeout + Duration::from_secs(5))?;
    match std::fs::read_to_string(&lease_file) {
        Ok(text) if out.success() => Lease::parse(&text),
        _ => Err(Error::WaitTimeout {
            what: format!("a DHCP lease on {ifname} in {}", ns.label()),
            after: opts.timeout,
            context: format!("{}\n{}{}", out.cmd, out.stdout, out.stderr),
        }),
    }
}

pub(crate) fn write_executable(path: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))
}

/// A dnsmasq started by hand (DHCP and DNS on one interface), for scenarios
/// that need a server that is not virtnetd's. Stopped on drop.
#[derive(Debug)]
pub struct Dnsmasq {
    proc: Proc,
    dir: TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq in `ns`, bound to `interface` (which must already have
    /// its address), with no configuration but `args` (for example
    /// `--dhcp-range=10.0.0.10,10.0.0.50,12h`, `--address=/name/10.0.0.9`).
    /// Returns once it has started.
    pub fn start(ns: &Netns, interface: &str, args: &[&str]) -> Result<Dnsmasq> {
        let dir = TempDir::new("dnsmasq")?;
        let mut argv: Vec<String> = vec![
            "dnsmasq".into(),
            "--keep-in-foreground".into(),
            "--conf-file=/dev/null".into(),
            "--log-facility=-".into(),
            "--bind-interfaces".into(),
            format!("--interface={interface}"),
            "--except-interface=lo".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--user=root".into(),
            // No group change: it needs setgroups(2), which a user
            // namespace may deny.
            "--group=".into(),
            "--log-dhcp".into(),
            "--log-queries".into(),
            "--dhcp-authoritative".into(),
            format!("--dhcp-leasefile={}", dir.join("leases").display()),
            format!("--pid-file={}", dir.join("pid").display()),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let mut proc = ns.spawn_with(
            &argv,
            SpawnOpts {
                label: Some(format!("dnsmasq on {interface}")),
                ..Default::default()
            },
        )?;
        proc.wait_for("started, version", Duration::from_secs(10))?;
        Ok(Dnsmasq { proc, dir })
    }

    /// The lease file's content.
    pub fn leases(&self) -> String {
        std::fs::read_to_string(self.dir.join("leases")).unwrap_or_default()
    }

    /// What dnsmasq logged so far.
    pub fn log(&self) -> String {
        self.proc.output()
    }

    /// The running process.
    pub fn proc(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} ----\n{}\n---- end of dnsmasq log ----",
                self.proc.label(),
                process::tail(&self.log(), 100)
            );
        }
    }
}
