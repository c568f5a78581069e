//! `virtnet doctor`: what virtnet needs on this host, what is wrong, and
//! how to fix it.
//!
//! Each check prints one line, `[ OK ]`, `[WARN]`, `[FAIL]` or `[SKIP]`,
//! then for problems an indented `fix:` line. The command exits 1 when a
//! check failed. Everything is read from `/proc`, `/sys`, the daemon and
//! one short run of each tool (`--version`, `nft list table`), so it takes
//! well under a second.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use virtnet_conf::{ForwardMode, NetworkDef};
use virtnet_rpc::protocol::{
    ConnectGetVersionRet, NetworkGetXmlDescArgs, NonnullNetwork, Procedure, XmlRet, list_networks,
};

use super::domain::networks;
use crate::conn::Connection;
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};
use crate::uri::{ConnectUri, Transport};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Fine.
    Ok,
    /// Not checked.
    Skip,
    /// Works, but something deserves attention.
    Warn,
    /// Broken.
    Fail,
}

impl Status {
    fn tag(self) -> &'static str {
        match self {
            Status::Ok => "[ OK ]",
            Status::Skip => "[SKIP]",
            Status::Warn => "[WARN]",
            Status::Fail => "[FAIL]",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The outcome.
    pub status: Status,
    /// What was checked and what was found.
    pub text: String,
    /// How to fix it.
    pub fix: Option<String>,
}

fn check(status: Status, text: impl Into<String>) -> Check {
    Check {
        status,
        text: text.into(),
        fix: None,
    }
}

fn with_fix(status: Status, text: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        status,
        text: text.into(),
        fix: Some(fix.into()),
    }
}

/// Renders the report and its summary line.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!("{} {}\n", c.status.tag(), c.text));
        if let Some(f) = &c.fix {
            out.push_str(&format!("       fix: {f}\n"));
        }
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "\n{} checks: {} failed, {} warnings\n",
        checks.len(),
        count(Status::Fail),
        count(Status::Warn)
    ));
    out
}

/// A running process: pid, `comm`, command line.
struct ProcInfo {
    comm: String,
    cmdline: Vec<String>,
}

fn processes() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let p = e.path();
            let comm = std::fs::read_to_string(p.join("comm")).ok()?;
            let cmdline = std::fs::read(p.join("cmdline")).ok()?;
            Some(ProcInfo {
                comm: comm.trim_end().to_owned(),
                cmdline: cmdline
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            })
        })
        .collect()
}

/// A program on `PATH` or in the sbin directories (not always on a user's
/// `PATH`).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The first line a program prints with `args`.
fn first_line(prog: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(prog).args(args).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

fn tool_checks(checks: &mut Vec<Check>) -> Option<PathBuf> {
    let tools: [(&str, &[&str], Status, &str); 3] = [
        (
            "dnsmasq",
            &["--version"],
            Status::Fail,
            "install dnsmasq (Debian: apt-get install dnsmasq-base); virtnetd runs one per network for DHCP and DNS",
        ),
        (
            "nft",
            &["--version"],
            Status::Fail,
            "install nftables 0.9.3 or later (Debian: apt-get install nftables); virtnetd programs the firewall with 'nft -j'",
        ),
        (
            "ip",
            &["-V"],
            Status::Warn,
            "install iproute2 (Debian: apt-get install iproute2); virtnet does not need it, but it is the tool to look at what virtnet made",
        ),
    ];
    let mut nft = None;
    for (name, args, missing, fix) in tools {
        match find_program(name) {
            Some(p) => {
                let version = first_line(&p, args).unwrap_or_else(|| "version unknown".into());
                checks.push(check(
                    Status::Ok,
                    format!("{name}: {} ({version})", p.display()),
                ));
                if name == "nft" {
                    nft = Some(p);
                }
            }
            None => checks.push(with_fix(missing, format!("{name}: not found"), fix)),
        }
    }
    nft
}

/// The kernel's configuration (`/proc/config.gz`, else
/// `/boot/config-RELEASE`), if readable.
fn kernel_config() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    if Path::new("/proc/config.gz").exists() {
        if let Some(zcat) = find_program("zcat") {
            if let Ok(out) = Command::new(zcat).arg("/proc/config.gz").output() {
                if out.status.success() {
                    return Some(String::from_utf8_lossy(&out.stdout).into_owned());
                }
            }
        }
    }
    std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()
}

/// Whether a kernel feature is there: `Some(Ok(how))`, `Some(Err(()))`
/// when it is known to be missing, `None` when nothing tells.
fn module_state(
    name: &str,
    symbol: &str,
    config: Option<&str>,
) -> Option<Result<&'static str, ()>> {
    if Path::new("/sys/module").join(name).exists() {
        return Some(Ok("loaded"));
    }
    if let Some(cfg) = config {
        let key = format!("CONFIG_{symbol}=");
        return Some(
            match cfg
                .lines()
                .find_map(|l| l.strip_prefix(&key))
                .map(str::trim)
            {
                Some("y") => Ok("built in"),
                Some("m") => Ok("available as a module"),
                _ => Err(()),
            },
        );
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let dir = Path::new("/lib/modules").join(release.trim());
    let needle = format!("/{name}.ko");
    let listed = |file: &str| -> Option<bool> {
        let t = std::fs::read_to_string(dir.join(file)).ok()?;
        Some(t.lines().any(|l| {
            let path = l.split(':').next().unwrap_or("");
            path.ends_with(&needle) || path.contains(&format!("{needle}."))
        }))
    };
    match (listed("modules.builtin"), listed("modules.dep")) {
        (Some(true), _) => Some(Ok("built in")),
        (_, Some(true)) => Some(Ok("available as a module")),
        (Some(false), Some(false)) => Some(Err(())),
        _ => None,
    }
}

fn kernel_checks(checks: &mut Vec<Check>) {
    let config = kernel_config();
    for (module, symbol, what, missing) in [
        (
            "bridge",
            "BRIDGE",
            "Linux bridges of NAT, routed, isolated and open networks",
            Status::Fail,
        ),
        ("tun", "TUN", "TAP devices of guest ports", Status::Fail),
        (
            "nf_tables",
            "NF_TABLES",
            "nftables, the firewall and NAT",
            Status::Fail,
        ),
        ("veth", "VETH", "veth pairs", Status::Warn),
        (
            "macvtap",
            "MACVTAP",
            "macvtap devices of direct networks",
            Status::Warn,
        ),
    ] {
        match module_state(module, symbol, config.as_deref()) {
            Some(Ok(state)) => {
                checks.push(check(Status::Ok, format!("kernel: {module} {state}, for {what}")));
            }
            Some(Err(())) => checks.push(with_fix(
                missing,
                format!("kernel: no {module}, needed for {what}"),
                format!(
                    "use a kernel with CONFIG_{symbol}, or install its modules package, then 'modprobe {module}'"
                ),
            )),
            None => checks.push(check(
                Status::Warn,
                format!("kernel: cannot tell whether {module} is there (no kernel configuration or module list); needed for {what}"),
            )),
        }
    }
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata("/dev/net/tun") {
        Ok(m) if m.file_type().is_char_device() => {
            checks.push(check(Status::Ok, "/dev/net/tun: present"));
        }
        _ => checks.push(with_fix(
            Status::Fail,
            "/dev/net/tun: missing",
            "modprobe tun; or: mkdir -p /dev/net && mknod /dev/net/tun c 10 200",
        )),
    }
}

/// IPv4 routes: (destination, prefix, device).
fn ipv4_routes() -> Vec<(Ipv4Addr, u32, String)> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dev = (*f.first()?).to_owned();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // /proc/net/route prints addresses in host (little-endian) order.
            let dest = Ipv4Addr::from(dest.swap_bytes());
            let prefix = mask.count_ones();
            Some((dest, prefix, dev))
        })
        .collect()
}

fn overlaps(a: Ipv4Addr, ap: u32, b: Ipv4Addr, bp: u32) -> bool {
    let p = ap.min(bp);
    if p == 0 {
        return false;
    }
    let mask = u32::MAX << (32 - p);
    (u32::from(a) & mask) == (u32::from(b) & mask)
}

/// Links of this network namespace: name and whether it is up (netlink,
/// since `/sys/class/net` shows the namespace that mounted `/sys`).
fn links() -> Option<std::collections::BTreeMap<String, bool>> {
    use virtnet_host::netlink::NetlinkOps;
    let nl = virtnet_host::netlink::Netlink::open().ok()?;
    Some(
        nl.links()
            .ok()?
            .into_iter()
            .map(|l| (l.name, l.up))
            .collect(),
    )
}

/// Bridges libvirt's own network driver runs (its status files).
fn libvirt_bridges() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/run/libvirt/network") else {
        return out;
    };
    for e in dir.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "xml") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        for part in text.split("<bridge ").skip(1) {
            if let Some(rest) = part.split("name='").nth(1) {
                if let Some(name) = rest.split('\'').next() {
                    out.insert(name.to_owned());
                }
            }
        }
    }
    out
}

fn network_checks(
    checks: &mut Vec<Check>,
    nets: &[NetworkDef],
    procs: &[ProcInfo],
    nft: Option<&Path>,
) {
    let ruleset = nft.and_then(|p| {
        let out = Command::new(p)
            .args(["list", "table", "inet", "virtnet"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let routes = ipv4_routes();
    let links = links().unwrap_or_default();
    let link_up = |dev: &str| links.get(dev).copied();
    for net in nets {
        let name = &net.name;
        let mode = net.forward.mode;
        let own_bridge = matches!(
            mode,
            ForwardMode::None | ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open
        );
        if let Some(br) = net.bridge.as_deref() {
            match link_up(br) {
                Some(true) => checks.push(check(
                    Status::Ok,
                    format!("network {name}: bridge {br} is up"),
                )),
                Some(false) => checks.push(with_fix(
                    Status::Fail,
                    format!("network {name}: bridge {br} is down"),
                    format!("ip link set {br} up (or: virtnet net-destroy {name}; virtnet net-start {name})"),
                )),
                None => checks.push(with_fix(
                    Status::Fail,
                    format!("network {name}: bridge {br} does not exist"),
                    if own_bridge {
                        format!("restart virtnetd (it re-creates it) or: virtnet net-destroy {name}; virtnet net-start {name}")
                    } else {
                        format!("create the host bridge {br}; virtnet uses it but does not make it")
                    },
                )),
            }
        }
        for dev in net.forward.ifs.iter().filter_map(|d| d.dev()) {
            if link_up(dev).is_none() && !own_bridge {
                checks.push(with_fix(
                    Status::Fail,
                    format!("network {name}: forward device {dev} does not exist"),
                    format!("fix <forward dev='{dev}'> with virtnet net-edit {name}"),
                ));
            }
        }
        if own_bridge && !net.ips.is_empty() {
            let conf = format!("/{name}.conf");
            let running = procs.iter().any(|p| {
                p.comm == "dnsmasq"
                    && p.cmdline.iter().any(|a| {
                        a.strip_prefix("--conf-file=")
                            .is_some_and(|f| f.ends_with(&conf))
                    })
            });
            if running {
                checks.push(check(
                    Status::Ok,
                    format!("network {name}: dnsmasq is running"),
                ));
            } else {
                checks.push(with_fix(
                    Status::Fail,
                    format!("network {name}: no dnsmasq runs for it (no DHCP, no DNS)"),
                    "virtnetd restarts a dnsmasq that dies; read virtnetd's log for why it stopped, then: virtnet net-destroy NAME; virtnet net-start NAME".replace("NAME", name),
                ));
            }
        }
        if matches!(
            mode,
            ForwardMode::None | ForwardMode::Nat | ForwardMode::Route
        ) {
            match &ruleset {
                None => checks.push(check(
                    Status::Skip,
                    format!("network {name}: firewall not checked (nft list table inet virtnet failed; root needed)"),
                )),
                Some(rules) => {
                    let mut suffixes = vec!["fwo", "fwi", "inp", "out"];
                    if mode == ForwardMode::Nat {
                        suffixes.push("nat");
                    }
                    let missing: Vec<String> = suffixes
                        .iter()
                        .filter_map(|s| virtnet_host::firewall::chain_name(name, s).ok())
                        .filter(|c| !rules.contains(&format!("chain {c} {{")))
                        .collect();
                    if missing.is_empty() {
                        checks.push(check(
                            Status::Ok,
                            format!("network {name}: firewall chains present"),
                        ));
                    } else {
                        checks.push(with_fix(
                            Status::Fail,
                            format!(
                                "network {name}: firewall chains missing: {}",
                                missing.join(", ")
                            ),
                            "restart virtnetd (it re-installs missing rules); check that nothing else flushes nftables (firewalld, 'nft flush ruleset' in scripts)",
                        ));
                    }
                }
            }
        }
        for ip in &net.ips {
            let (std::net::IpAddr::V4(addr), Some(prefix)) = (ip.address, ip.prefix_len()) else {
                continue;
            };
            let clash: Vec<String> = routes
                .iter()
                .filter(|(d, p, dev)| {
                    *p > 0
                        && Some(dev.as_str()) != net.bridge.as_deref()
                        && overlaps(*d, *p, addr, prefix)
                })
                .map(|(d, p, dev)| format!("{d}/{p} dev {dev}"))
                .collect();
            if clash.is_empty() {
                checks.push(check(
                    Status::Ok,
                    format!("network {name}: {addr}/{prefix} collides with no other route"),
                ));
            } else {
                checks.push(with_fix(
                    Status::Fail,
                    format!(
                        "network {name}: {addr}/{prefix} overlaps {}",
                        clash.join(", ")
                    ),
                    format!("give the network another subnet (virtnet net-edit {name}) or remove the other route"),
                ));
            }
        }
    }
}

pub(super) fn cmd_doctor(ctl: &mut Ctl<'_>, _cmd: &ParsedCmd) -> CmdResult {
    let mut checks = Vec::new();
    let remote = match ConnectUri::parse(&ctl.uri) {
        Ok(u) => match &u.transport {
            Transport::Ssh { host, .. } => Some(host.clone()),
            Transport::Unix { .. } => None,
        },
        Err(e) => {
            ctl.error(&e.to_string());
            return Err(Failed);
        }
    };
    let where_ = ConnectUri::parse(&ctl.uri)
        .ok()
        .and_then(|u| u.local_socket(true))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| ctl.uri.clone());

    // The daemon.
    let mut nets: Vec<NetworkDef> = Vec::new();
    // Read-only: doctor changes nothing, and anyone may run it.
    match Connection::open(&ctl.uri, true, (Some(0), None)) {
        Ok(conn) => {
            ctl.conn = Some(conn);
            let version: Result<ConnectGetVersionRet, _> =
                ctl.try_call(Procedure::ConnectGetVersion, &());
            let v = version
                .map(|r| {
                    let v = r.hv_ver;
                    format!(", version {}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000)
                })
                .unwrap_or_default();
            checks.push(check(
                Status::Ok,
                format!("daemon: answers on {where_}{v}"),
            ));
            let active: Vec<NonnullNetwork> =
                networks(ctl, list_networks::ACTIVE).unwrap_or_default();
            for n in active {
                let r: Result<XmlRet, _> = ctl.try_call(
                    Procedure::NetworkGetXmlDesc,
                    &NetworkGetXmlDescArgs {
                        net: n.clone(),
                        flags: 0,
                    },
                );
                if let Some(def) = r.ok().and_then(|r| NetworkDef::parse_status(&r.xml).ok()) {
                    nets.push(def);
                }
            }
            ctl.last_error = None;
            checks.push(check(
                Status::Ok,
                format!("daemon: {} active network(s)", nets.len()),
            ));
        }
        Err(e) => checks.push(with_fix(
            Status::Fail,
            format!("daemon: not reachable on {where_}: {e}"),
            if remote.is_some() {
                "check the ssh connection and that virtnetd runs on the far side".to_owned()
            } else {
                "start virtnetd (as root: virtnetd, or systemctl start virtnetd); another socket: virtnet -c 'virtnet:///system?socket=PATH' doctor".to_owned()
            },
        )),
    }

    if let Some(host) = remote {
        checks.push(check(
            Status::Skip,
            format!("host checks: the connection goes to {host}; run 'virtnet doctor' there"),
        ));
    } else {
        let nft = tool_checks(&mut checks);
        kernel_checks(&mut checks);
        let forwarding = nets.iter().any(|n| {
            matches!(
                n.forward.mode,
                ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open
            )
        });
        match std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .map(|s| s.trim().to_owned())
        {
            Ok(v) if v == "1" => checks.push(check(Status::Ok, "net.ipv4.ip_forward = 1")),
            Ok(v) if forwarding => checks.push(with_fix(
                Status::Fail,
                format!("net.ipv4.ip_forward = {v}, but a NAT, routed or open network is active"),
                "sysctl -w net.ipv4.ip_forward=1 (virtnetd sets it when such a network starts; something reset it)",
            )),
            Ok(v) => checks.push(check(
                Status::Ok,
                format!("net.ipv4.ip_forward = {v} (virtnetd enables it when a NAT, routed or open network starts)"),
            )),
            Err(e) => checks.push(check(
                Status::Warn,
                format!("net.ipv4.ip_forward: cannot read: {}", crate::conn::strerror(&e)),
            )),
        }
        let procs = processes();
        network_checks(&mut checks, &nets, &procs, nft.as_deref());

        let libvirt: Vec<&str> = procs
            .iter()
            .filter(|p| matches!(p.comm.as_str(), "libvirtd" | "virtnetworkd"))
            .map(|p| p.comm.as_str())
            .collect();
        if libvirt.is_empty() {
            checks.push(check(
                Status::Ok,
                "libvirt: its network driver is not running",
            ));
        } else {
            let ours: BTreeSet<&str> = nets.iter().filter_map(|n| n.bridge.as_deref()).collect();
            let theirs = libvirt_bridges();
            let shared: Vec<&str> = ours
                .iter()
                .copied()
                .filter(|b| theirs.contains(*b))
                .collect();
            if shared.is_empty() {
                checks.push(with_fix(
                    Status::Warn,
                    format!("libvirt: {} runs too (no bridge in common)", libvirt.join(", ")),
                    "run one network service per host: stop libvirt's networks (virsh net-destroy) or point libvirt's guests at virtnetd",
                ));
            } else {
                checks.push(with_fix(
                    Status::Fail,
                    format!(
                        "libvirt: {} runs networks on the same bridge(s) as virtnet: {}",
                        libvirt.join(", "),
                        shared.join(", ")
                    ),
                    "stop libvirt's network on that bridge (virsh -c qemu:///system net-destroy NAME; net-autostart --disable) or rename virtnet's bridge",
                ));
            }
        }
        if procs.iter().any(|p| p.comm == "firewalld") {
            checks.push(with_fix(
                Status::Warn,
                "firewalld is running: its rules may reject guest traffic virtnet's rules accept",
                "put virtnet's bridges in a zone that accepts them, e.g. firewall-cmd --permanent --zone=trusted --add-interface=virbr0; firewall-cmd --reload",
            ));
        } else {
            checks.push(check(Status::Ok, "firewalld: not running"));
        }
    }

    let report = render(&checks);
    ctl.print(&report);
    if checks.iter().any(|c| c.status == Status::Fail) {
        Err(Failed)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_layout() {
        let text = render(&[
            check(Status::Ok, "a"),
            with_fix(Status::Fail, "b", "do c"),
            check(Status::Warn, "d"),
        ]);
        assert_eq!(
            text,
            "[ OK ] a\n[FAIL] b\n       fix: do c\n[WARN] d\n\n3 checks: 1 failed, 1 warnings\n"
        );
    }

    #[test]
    fn subnet_overlap() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(overlaps(ip("192.168.122.0"), 24, ip("192.168.122.1"), 24));
        assert!(overlaps(ip("192.168.0.0"), 16, ip("192.168.122.1"), 24));
        assert!(!overlaps(ip("192.168.123.0"), 24, ip("192.168.122.1"), 24));
        assert!(!overlaps(ip("0.0.0.0"), 0, ip("192.168.122.1"), 24));
    }
}
