//! A real guest: QEMU (TCG) booting Debian's cloud kernel with a busybox
//! initramfs (`tests/guest/`), its NIC a virtio-net on a TAP.
//!
//! The guest's `/init` leases an address by DHCP and reports on the serial
//! console with `VIRTNET-*` marker lines:
//!
//! | line | when |
//! | --- | --- |
//! | `VIRTNET-INIT kernel=V up=S` | `/init` started (`up=`: guest uptime in seconds) |
//! | `VIRTNET-LEASE ip=A prefix=N router=R dns=D1,D2 domain=X up=S` | DHCP lease applied |
//! | `VIRTNET-DHCP-FAILED` | no lease (udhcpc gave up after ~60 s) |
//! | `VIRTNET-STATIC ip=A/N` | static address applied |
//! | `VIRTNET-PING ip=A transmitted=T received=R` | a [`Action::Ping`] ended |
//! | `VIRTNET-TCP addr=A:P answer=…` | a [`Action::Tcp`] ended |
//! | `VIRTNET-DNS name=N addrs=A1,A2` | a [`Action::Dns`] ended |
//! | `VIRTNET-LOOP ip=A` | a [`Action::Loop`] started |
//! | `VIRTNET-READY up=S` | all actions done; console accepts commands ([`Guest::exec`]) |
//!
//! The image is built by `tests/guest/build.sh` into `$VIRTNET_GUEST_DIR`
//! or `<target dir>/guest`. Tests run without network, so they only use a
//! kernel package that is already there: run `tests/guest/build.sh` once
//! beforehand (it downloads with `apt-get download`); without it
//! [`GuestImage::get`] returns [`Error::Unavailable`].

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::{Netns, Tap};
use crate::ping::PingStats;
use crate::process::{self, Proc, SpawnOpts};

/// The kernel and initramfs to boot.
#[derive(Debug, Clone)]
pub struct GuestImage {
    /// The kernel (`vmlinuz`).
    pub kernel: PathBuf,
    /// The initramfs (gzip'd newc cpio).
    pub initrd: PathBuf,
    /// The kernel version.
    pub kver: String,
}

impl GuestImage {
    /// The cache directory: `$VIRTNET_GUEST_DIR`, else `guest/` in the cargo
    /// target directory this test executable was built into.
    pub fn dir() -> PathBuf {
        if let Some(d) = std::env::var_os("VIRTNET_GUEST_DIR") {
            return PathBuf::from(d);
        }
        let from_exe = std::env::current_exe().ok().and_then(|exe| {
            let deps = exe.parent()?;
            (deps.file_name()? == "deps")
                .then(|| deps.parent()?.parent().map(|t| t.join("guest")))?
        });
        from_exe.unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
                PathBuf::from,
            );
            target.join("guest")
        })
    }

    /// Returns the cached image, building the initramfs if needed, without
    /// network: [`Error::Unavailable`] if the kernel package was never
    /// downloaded.
    pub fn get() -> Result<GuestImage> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/guest/build.sh");
        let mut cmd = std::process::Command::new("sh");
        cmd.arg(script)
            .arg("--offline")
            .env("VIRTNET_GUEST_DIR", Self::dir());
        let out = process::run(cmd, Duration::from_secs(600))?;
        if out.code() == Some(3) {
            return Err(Error::Unavailable(out.stderr.trim().to_string()));
        }
        let out = out.ok()?;
        let field = |key: &str| {
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::to_string)
                .ok_or_else(|| Error::parse("tests/guest/build.sh output", out.stdout.clone()))
        };
        Ok(GuestImage {
            kernel: PathBuf::from(field("KERNEL=")?),
            initrd: PathBuf::from(field("INITRD=")?),
            kver: field("KVER=")?,
        })
    }
}

/// What the guest's NIC is plugged into.
#[derive(Debug, Clone)]
pub enum GuestNet {
    /// A new TAP (made by the harness, deleted with the guest) enslaved to
    /// this bridge, as a hypervisor does for `<interface type='network'>`.
    Bridge(String),
    /// An existing TAP device.
    Tap(String),
    /// `-netdev bridge,br=BRIDGE,helper=HELPER`: QEMU asks the helper
    /// program (QEMU's bridge helper protocol) for a TAP on the bridge.
    Helper {
        /// The bridge.
        bridge: String,
        /// The helper command (may include arguments).
        helper: String,
    },
    /// No NIC.
    None,
}

/// Something the guest does after configuring its address.
#[derive(Debug, Clone)]
pub enum Action {
    /// Ping `target` `count` times.
    Ping(Ipv4Addr, u32),
    /// Connect to a TCP server (a whoami server) and print its answer.
    Tcp(SocketAddr),
    /// Look a name up, at the given server or the leased one.
    Dns(String, Option<Ipv4Addr>),
    /// Ping continuously in the background (5 per second); see
    /// [`Guest::stop_loop`].
    Loop(Ipv4Addr),
}

impl Action {
    fn kernel_arg(&self) -> String {
        match self {
            Action::Ping(ip, count) => format!("virtnet.ping={ip},{count}"),
            Action::Tcp(addr) => format!("virtnet.tcp={addr}"),
            Action::Dns(name, Some(server)) => format!("virtnet.dns={name}@{server}"),
            Action::Dns(name, None) => format!("virtnet.dns={name}"),
            Action::Loop(ip) => format!("virtnet.loop={ip}"),
        }
    }
}

/// How [`Guest::boot`] starts the guest.
#[derive(Debug, Clone)]
pub struct GuestOpts {
    /// The NIC's back-end.
    pub net: GuestNet,
    /// Run QEMU (and make the TAP) in this namespace; default: the test's own.
    pub netns: Option<Netns>,
    /// The NIC's MAC; default: a unique `52:54:00:…`.
    pub mac: Option<String>,
    /// Lease by DHCP (default), or not.
    pub dhcp: bool,
    /// A static `ip/len[,gateway]` instead of DHCP.
    pub static_addr: Option<String>,
    /// Host name sent with DHCP requests.
    pub hostname: Option<String>,
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// More kernel command line arguments.
    pub kernel_args: Vec<String>,
    /// Memory in MiB (default 256).
    pub memory_mb: u32,
    /// The image; default: [`GuestImage::get`].
    pub image: Option<GuestImage>,
}

impl Default for GuestOpts {
    fn default() -> Self {
        GuestOpts {
            net: GuestNet::None,
            netns: None,
            mac: None,
            dhcp: true,
            static_addr: None,
            hostname: None,
            actions: Vec::new(),
            kernel_args: Vec::new(),
            memory_mb: 256,
            image: None,
        }
    }
}

impl GuestOpts {
    /// A guest on a new TAP enslaved to `bridge`.
    pub fn on_bridge(bridge: &str) -> GuestOpts {
        GuestOpts {
            net: GuestNet::Bridge(bridge.to_string()),
            ..Default::default()
        }
    }

    /// Adds an action.
    pub fn action(mut self, action: Action) -> GuestOpts {
        self.actions.push(action);
        self
    }
}

/// A unique locally administered MAC in QEMU's `52:54:00` range.
pub fn unique_mac() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    format!(
        "52:54:00:{:02x}:{:02x}:{:02x}",
        pid & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

/// The address a guest leased, from its `VIRTNET-LEASE` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestLease {
    /// The address.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// The router offered.
    pub router: Option<Ipv4Addr>,
    /// DNS servers offered.
    pub dns: Vec<Ipv4Addr>,
    /// Domain offered.
    pub domain: Option<String>,
}

/// The value of `key=` in a marker line (values end at a space, except
/// `answer=`, which runs to the end of the line).
pub fn marker_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let start = line.find(&pat)? + pat.len();
    let rest = &line[start..];
    if key == "answer" {
        return Some(rest.trim_end());
    }
    Some(rest.split(' ').next().unwrap_or(""))
}

/// A running QEMU guest; killed on drop (its console is printed if the
/// test is panicking).
pub struct Guest {
    proc: Proc,
    mac: String,
    tap: Option<Tap>,
    tap_name: Option<String>,
    next_exec: u32,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest")
            .field("mac", &self.mac)
            .field("tap", &self.tap_name)
            .finish()
    }
}

impl Guest {
    /// Starts QEMU. Returns at once; use [`Guest::wait_lease`] or
    /// [`Guest::wait_for`].
    pub fn boot(opts: GuestOpts) -> Result<Guest> {
        if process::find_tool("qemu-system-x86_64").is_none() {
            return Err(Error::Unavailable(
                "qemu-system-x86_64 not installed".into(),
            ));
        }
        if matches!(
            opts.net,
            GuestNet::Bridge(_) | GuestNet::Tap(_) | GuestNet::Helper { .. }
        ) {
            // Opening the clone device attaches nothing; it tells whether
            // TAPs can be made here (not in a user namespace, say).
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .map_err(|e| Error::Unavailable(format!("cannot open /dev/net/tun: {e}")))?;
        }
        let image = match opts.image.clone() {
            Some(i) => i,
            None => GuestImage::get()?,
        };
        let ns = opts.netns.clone().unwrap_or_else(Netns::current);
        let mac = opts.mac.clone().unwrap_or_else(unique_mac);
        let (tap, tap_name) = match &opts.net {
            GuestNet::Bridge(bridge) => {
                let tap = Tap::new(&ns)?;
                tap.attach(bridge)?;
                let name = tap.name().to_string();
                (Some(tap), Some(name))
            }
            GuestNet::Tap(name) => (None, Some(name.clone())),
            GuestNet::Helper { .. } | GuestNet::None => (None, None),
        };
        let mut append = vec![
            "console=ttyS0,115200".to_string(),
            "panic=-1".into(),
            "quiet".into(),
            "mitigations=off".into(),
        ];
        if let Some(s) = &opts.static_addr {
            append.push(format!("virtnet.static={s}"));
        } else if !opts.dhcp {
            append.push("virtnet.dhcp=0".into());
        }
        if let Some(h) = &opts.hostname {
            append.push(format!("virtnet.hostname={h}"));
        }
        append.extend(opts.actions.iter().map(Action::kernel_arg));
        append.extend(opts.kernel_args.iter().cloned());

        let mut argv: Vec<String> = vec![
            "qemu-system-x86_64".into(),
            "-accel".into(),
            "tcg".into(),
            "-m".into(),
            opts.memory_mb.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-serial".into(),
            "stdio".into(),
            "-no-reboot".into(),
            "-kernel".into(),
            image.kernel.to_string_lossy().into_owned(),
            "-initrd".into(),
            image.initrd.to_string_lossy().into_owned(),
            "-append".into(),
            append.join(" "),
        ];
        if let Some(name) = &tap_name {
            argv.extend([
                "-netdev".into(),
                format!("tap,id=net0,ifname={name},script=no,downscript=no"),
                "-device".into(),
                format!("virtio-net-pci,netdev=net0,mac={mac}"),
            ]);
        }
        if let GuestNet::Helper { bridge, helper } = &opts.net {
            // QEMU's option syntax doubles a literal comma.
            let helper = helper.replace(',', ",,");
            argv.extend([
                "-netdev".into(),
                format!("bridge,id=net0,br={bridge},helper={helper}"),
                "-device".into(),
                format!("virtio-net-pci,netdev=net0,mac={mac}"),
            ]);
        }
        let proc = ns.spawn_with(
            &argv,
            SpawnOpts {
                label: Some(format!("guest {mac}")),
                log_file: None,
                stdin: true,
            },
        )?;
        Ok(Guest {
            proc,
            mac,
            tap,
            tap_name,
            next_exec: 0,
        })
    }

    /// The NIC's MAC address.
    pub fn mac(&self) -> &str {
        &self.mac
    }

    /// The TAP the NIC is on.
    pub fn tap_name(&self) -> Option<&str> {
        self.tap_name.as_deref()
    }

    /// Everything on the serial console so far.
    pub fn console(&self) -> String {
        self.proc.output()
    }

    /// Waits for a console line containing `marker` and returns it.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<String> {
        self.proc.wait_for(marker, timeout)
    }

    /// Waits for the DHCP outcome and returns the lease (failing with the
    /// console if DHCP failed).
    pub fn wait_lease(&mut self, timeout: Duration) -> Result<GuestLease> {
        let line = self
            .proc
            .wait_for_line("the guest's DHCP lease", timeout, |l| {
                l.starts_with("VIRTNET-LEASE ") || l.starts_with("VIRTNET-DHCP-FAILED")
            })?;
        if line.starts_with("VIRTNET-DHCP-FAILED") {
            return Err(Error::WaitTimeout {
                what: "the guest's DHCP lease".into(),
                after: timeout,
                context: process::tail(&self.console(), 40),
            });
        }
        parse_lease_line(&line)
    }

    /// The lease, if the guest has reported one.
    pub fn lease(&self) -> Option<GuestLease> {
        self.console()
            .lines()
            .find(|l| l.starts_with("VIRTNET-LEASE "))
            .and_then(|l| parse_lease_line(l.trim_end_matches('\r')).ok())
    }

    /// Waits until all actions are done and the console takes commands.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        self.wait_for("VIRTNET-READY", timeout).map(drop)
    }

    /// Waits for the result of an [`Action::Ping`] to `target`.
    pub fn wait_ping(&mut self, target: Ipv4Addr, timeout: Duration) -> Result<PingStats> {
        let prefix = format!("VIRTNET-PING ip={target} ");
        let line = self
            .proc
            .wait_for_line(&prefix, timeout, |l| l.starts_with(&prefix))?;
        let num = |k| marker_field(&line, k).and_then(|v| v.parse().ok());
        match (num("transmitted"), num("received")) {
            (Some(transmitted), Some(received)) => Ok(PingStats {
                transmitted,
                received,
                reply_seqs: Vec::new(),
            }),
            _ => Err(Error::parse("guest ping marker", line.clone())),
        }
    }

    /// Waits for the answer of an [`Action::Tcp`] to `addr`.
    pub fn wait_tcp(&mut self, addr: SocketAddr, timeout: Duration) -> Result<String> {
        let prefix = format!("VIRTNET-TCP addr={addr} ");
        let line = self
            .proc
            .wait_for_line(&prefix, timeout, |l| l.starts_with(&prefix))?;
        Ok(marker_field(&line, "answer").unwrap_or("").to_string())
    }

    /// Waits for the addresses of an [`Action::Dns`] for `name`.
    pub fn wait_dns(&mut self, name: &str, timeout: Duration) -> Result<Vec<Ipv4Addr>> {
        let prefix = format!("VIRTNET-DNS name={name} ");
        let line = self
            .proc
            .wait_for_line(&prefix, timeout, |l| l.starts_with(&prefix))?;
        Ok(marker_field(&line, "addrs")
            .unwrap_or("")
            .split(',')
            .filter_map(|a| a.parse().ok())
            .collect())
    }

    /// Runs a one-line shell command in the guest (after `VIRTNET-READY`)
    /// and returns its exit code and output (stdout and stderr).
    pub fn exec(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, String)> {
        if cmd.contains('\n') {
            return Err(Error::parse("guest command", "must be a single line"));
        }
        self.next_exec += 1;
        let marker = format!("VIRTNET-EXIT-{}", self.next_exec);
        let start = self.proc.output_len();
        self.proc
            .write_stdin(format!("( {cmd} ) 2>&1; echo \"{marker} $?\"\n").as_bytes())?;
        let what = format!("guest command `{cmd}`");
        let (line, _) = self
            .proc
            .wait_for_line_from(start, &what, timeout, &mut |l| {
                l.starts_with(&format!("{marker} "))
            })?;
        let code = line
            .get(marker.len()..)
            .and_then(|c| c.trim().parse().ok())
            .ok_or_else(|| Error::parse("guest exit marker", line.clone()))?;
        let text = self.proc.output_since(start);
        let body = text
            .split(&format!("{marker} "))
            .next()
            .unwrap_or("")
            .replace('\r', "");
        Ok((code, body))
    }

    /// Stops an [`Action::Loop`] ping and returns its statistics.
    pub fn stop_loop(&mut self) -> Result<PingStats> {
        let (_, out) = self.exec(
            "kill -INT $(cat /run/loop.pid); sleep 1; cat /run/loop.log",
            Duration::from_secs(20),
        )?;
        PingStats::parse(&out, 0)
    }

    /// The QEMU process.
    pub fn proc(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// Prints the console to stderr.
    pub fn dump_console(&self) {
        eprintln!(
            "---- guest {} console ----\n{}\n---- end of guest console ----",
            self.mac,
            process::tail(&self.console().replace('\r', ""), 200)
        );
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_console();
        }
        self.proc.kill();
        // The TAP (if ours) goes after QEMU has let go of it.
        drop(self.tap.take());
    }
}

fn parse_lease_line(line: &str) -> Result<GuestLease> {
    let bad = || Error::parse("guest lease marker", line.to_string());
    let ip = marker_field(line, "ip")
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    let prefix = marker_field(line, "prefix")
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let router = marker_field(line, "router").and_then(|v| v.split(' ').next()?.parse().ok());
    let dns = marker_field(line, "dns")
        .unwrap_or("")
        .split(',')
        .filter_map(|a| a.parse().ok())
        .collect();
    let domain = marker_field(line, "domain")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    Ok(GuestLease {
        ip,
        prefix,
        router,
        dns,
        domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_markers() {
        let l = "VIRTNET-LEASE ip=10.0.0.5 prefix=24 router=10.0.0.1 dns=10.0.0.1,10.0.0.2 domain=";
        let lease = parse_lease_line(l).unwrap();
        assert_eq!(lease.ip, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(lease.dns.len(), 2);
        assert_eq!(lease.domain, None);
        let t = "VIRTNET-TCP addr=203.0.113.2:80 answer=203.0.113.1:4000";
        assert_eq!(marker_field(t, "answer"), Some("203.0.113.1:4000"));
    }

    #[test]
    fn macs_are_unique() {
        assert_ne!(unique_mac(), unique_mac());
    }
}
