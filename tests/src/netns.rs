//! Network namespaces as hosts, and the links between them.
//!
//! A [`Netns`] is either a namespace made with `ip netns add` inside the
//! test's private namespace (deleted, with everything running in it, when the
//! last handle is dropped) or [`Netns::current`], the test's own namespace.
//! Helpers that have a "host side" take the namespace it lives in, so a
//! scenario can also play the host in a namespace of its own and run in
//! parallel with others in the same test binary.
//!
//! Names of namespaces and of links made by the harness carry a per-process
//! counter, so parallel tests never collide.

use std::ffi::OsStr;
use std::fs::File;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::process::{self, DEFAULT_TIMEOUT, Output, Proc, SpawnOpts};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A link name unique within this process: `prefix` (at most 9 characters
/// are kept) followed by a counter, within the kernel's 15-character limit.
pub fn unique_ifname(prefix: &str) -> String {
    let prefix: String = prefix.chars().take(9).collect();
    format!("{prefix}{}", next_id())
}

struct Inner {
    /// `None` for the test's own namespace.
    name: Option<String>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            cleanup_netns(name);
        }
    }
}

/// Kills everything running in namespace `name`, then deletes it.
fn cleanup_netns(name: &str) {
    let me = std::process::id();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = netns_pids(name);
        let pids: Vec<u32> = pids.into_iter().filter(|&p| p != me).collect();
        if pids.is_empty() || Instant::now() >= deadline {
            break;
        }
        for pid in pids {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "del", name]);
    let _ = process::run(cmd, Duration::from_secs(10));
}

fn netns_pids(name: &str) -> Vec<u32> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "pids", name]);
    match process::run(cmd, Duration::from_secs(10)) {
        Ok(out) => out
            .stdout
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A network namespace playing a host. Cheap to clone; the namespace is
/// deleted (after killing whatever still runs in it) when the last clone of
/// a namespace made by [`Netns::new`] is dropped.
#[derive(Clone)]
pub struct Netns {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner.name {
            Some(n) => write!(f, "Netns({n})"),
            None => write!(f, "Netns(current)"),
        }
    }
}

impl Netns {
    /// Creates a namespace named `<prefix>-<n>` with `lo` up.
    pub fn new(prefix: &str) -> Result<Netns> {
        let name = format!("{prefix}-{}", next_id());
        process::run_ok(["ip", "netns", "add", &name])?;
        let ns = Netns {
            inner: Arc::new(Inner { name: Some(name) }),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The test's own namespace (the runner's private one). Dropping it
    /// deletes nothing.
    pub fn current() -> Netns {
        Netns {
            inner: Arc::new(Inner { name: None }),
        }
    }

    /// The `ip netns` name, or `None` for [`Netns::current`].
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Whether this is the test's own namespace.
    pub fn is_current(&self) -> bool {
        self.inner.name.is_none()
    }

    /// A name for messages.
    pub fn label(&self) -> &str {
        self.name().unwrap_or("test namespace")
    }

    /// A [`Command`] that runs `program` in this namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match self.name() {
            Some(name) => {
                let mut cmd = Command::new("ip");
                cmd.args([OsStr::new("netns"), OsStr::new("exec"), OsStr::new(name)]);
                cmd.arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// A [`Command`] for an argument vector (program first) in this namespace.
    pub fn cmd<I, S>(&self, argv: I) -> Result<Command>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut it = argv.into_iter();
        let program = it
            .next()
            .ok_or_else(|| Error::parse("command line", "empty argument vector"))?;
        let mut cmd = self.command(program);
        cmd.args(it);
        Ok(cmd)
    }

    /// Runs a program here with [`DEFAULT_TIMEOUT`]; a non-zero exit is
    /// returned, not an error.
    pub fn run<I, S>(&self, argv: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_timeout(argv, DEFAULT_TIMEOUT)
    }

    /// Runs a program here, killing it after `timeout`.
    pub fn run_timeout<I, S>(&self, argv: I, timeout: Duration) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        process::run(self.cmd(argv)?, timeout)
    }

    /// Runs a program here and fails unless it exits with status 0.
    pub fn run_ok<I, S>(&self, argv: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run(argv)?.ok()
    }

    /// Runs a shell snippet here (`sh -c`), failing on a non-zero exit;
    /// returns its stdout.
    pub fn sh(&self, script: &str) -> Result<String> {
        Ok(self.run_ok(["sh", "-c", script])?.stdout)
    }

    /// Runs `ip <args>` here, failing on a non-zero exit; returns stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut argv = vec!["ip"];
        argv.extend_from_slice(args);
        Ok(self.run_ok(argv)?.stdout)
    }

    /// Sets a sysctl of this namespace (`net.ipv4.ip_forward`, …).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.run_ok(["sysctl", "-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Starts a long-running program here with output captured; it is
    /// killed when the returned [`Proc`] (or this namespace) goes away.
    pub fn spawn<I, S>(&self, argv: I) -> Result<Proc>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn_with(argv, SpawnOpts::default())
    }

    /// [`Netns::spawn`] with options (label, log file, stdin pipe).
    pub fn spawn_with<I, S>(&self, argv: I, opts: SpawnOpts) -> Result<Proc>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Proc::spawn(self.cmd(argv)?, opts)
    }

    /// Ids of the processes running in this namespace (empty for
    /// [`Netns::current`]).
    pub fn pids(&self) -> Vec<u32> {
        self.name().map(netns_pids).unwrap_or_default()
    }

    fn open(&self) -> Result<Option<File>> {
        match self.name() {
            Some(name) => {
                let path = format!("/run/netns/{name}");
                File::open(&path)
                    .map(Some)
                    .map_err(|e| Error::io(format!("open {path}"), e))
            }
            None => Ok(None),
        }
    }

    /// Runs `f` on a thread inside this namespace and returns its result:
    /// sockets it opens belong to this namespace. A panic in `f` is passed
    /// on.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let file = self.open()?;
        let label = self.label().to_string();
        thread::scope(|s| {
            let handle = s.spawn(move || -> Result<T> {
                if let Some(file) = file {
                    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| {
                        Error::io(format!("enter network namespace {label}"), e.into())
                    })?;
                }
                Ok(f())
            });
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts a background thread inside this namespace running `f`.
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<thread::JoinHandle<T>> {
        let file = self.open()?;
        let label = self.label().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = thread::spawn(move || {
            let entered = match file {
                Some(file) => setns(&file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from),
                None => Ok(()),
            };
            let ok = entered.is_ok();
            let _ = tx.send(entered);
            if !ok {
                // The caller gets the error; nothing to run.
                std::panic::resume_unwind(Box::new("setns failed"));
            }
            f()
        });
        match rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => Err(Error::io(format!("enter network namespace {label}"), e)),
            Err(_) => Err(Error::io(
                format!("enter network namespace {label}"),
                std::io::ErrorKind::Other.into(),
            )),
        }
    }

    /// Whether a link named `ifname` exists here.
    pub fn link_exists(&self, ifname: &str) -> bool {
        self.run(["ip", "link", "show", "dev", ifname])
            .map(|o| o.success())
            .unwrap_or(false)
    }

    /// Waits up to `timeout` for link `ifname` to be gone (virtnetd deletes
    /// the TAPs of deleted ports in the background); true when it is.
    pub fn wait_link_gone(&self, ifname: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.link_exists(ifname) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Waits up to `timeout` for link `ifname` to appear here.
    pub fn wait_for_link(&self, ifname: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.link_exists(ifname) {
            if Instant::now() >= deadline {
                return Err(Error::WaitTimeout {
                    what: format!("link {ifname} in {}", self.label()),
                    after: timeout,
                    context: self.ip(&["-br", "link"]).unwrap_or_default(),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// The IPv4 addresses (with prefix length) on `ifname`.
    pub fn ipv4_addrs(&self, ifname: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
        let out = self.ip(&["-o", "-4", "addr", "show", "dev", ifname])?;
        let mut addrs = Vec::new();
        for line in out.lines() {
            let mut words = line.split_whitespace();
            while let Some(w) = words.next() {
                if w == "inet" {
                    if let Some(cidr) = words.next() {
                        addrs.push(parse_cidr(cidr)?);
                    }
                }
            }
        }
        Ok(addrs)
    }
}

/// Parses `a.b.c.d/len`.
pub fn parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Error::parse("IPv4 address with prefix", cidr.to_string());
    let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    Ok((addr, len))
}

/// Runs `ip` in `ns` ignoring failures, for teardown.
fn ip_quiet(ns: &Netns, args: &[&str]) {
    let _ = ns.run_timeout(
        std::iter::once("ip").chain(args.iter().copied()),
        Duration::from_secs(10),
    );
}

/// A Linux bridge made with `ip link` (STP off, no forward delay, up);
/// deleted on drop.
#[derive(Debug)]
pub struct Bridge {
    ns: Netns,
    name: String,
}

impl Bridge {
    /// Creates a bridge with a unique name (`vtbr<n>`) in `ns`.
    pub fn new(ns: &Netns) -> Result<Bridge> {
        Bridge::create(ns, &unique_ifname("vtbr"))
    }

    /// Creates bridge `name` in `ns`.
    pub fn create(ns: &Netns, name: &str) -> Result<Bridge> {
        ns.ip(&[
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ])?;
        let bridge = Bridge {
            ns: ns.clone(),
            name: name.to_string(),
        };
        ns.ip(&["link", "set", name, "up"])?;
        Ok(bridge)
    }

    /// The bridge's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace it is in.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// Adds an address like `10.0.0.1/24`.
    pub fn add_addr(&self, cidr: &str) -> Result<()> {
        self.ns
            .ip(&["addr", "add", cidr, "dev", &self.name])
            .map(drop)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        ip_quiet(&self.ns, &["link", "del", &self.name]);
    }
}

/// A persistent TAP device (as a VM's NIC back-end); deleted on drop.
#[derive(Debug)]
pub struct Tap {
    ns: Netns,
    name: String,
}

impl Tap {
    /// Creates a TAP with a unique name (`vttap<n>`) in `ns`.
    pub fn new(ns: &Netns) -> Result<Tap> {
        Tap::create(ns, &unique_ifname("vttap"))
    }

    /// Creates TAP `name` in `ns`.
    pub fn create(ns: &Netns, name: &str) -> Result<Tap> {
        ns.ip(&["tuntap", "add", "dev", name, "mode", "tap"])?;
        Ok(Tap {
            ns: ns.clone(),
            name: name.to_string(),
        })
    }

    /// The TAP's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Enslaves the TAP to `bridge` (in the same namespace) and brings it up.
    pub fn attach(&self, bridge: &str) -> Result<()> {
        self.ns.ip(&["link", "set", &self.name, "master", bridge])?;
        self.ns.ip(&["link", "set", &self.name, "up"]).map(drop)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        ip_quiet(&self.ns, &["link", "del", &self.name]);
    }
}

/// A veth pair whose ends may live in different namespaces; deleted on
/// drop (deleting a namespace deletes its end too).
#[derive(Debug)]
pub struct Veth {
    a: (Netns, String),
    b: (Netns, String),
}

impl Veth {
    /// Creates a veth pair with end `a_name` in `a` and `b_name` in `b`,
    /// both up.
    pub fn create(a: &Netns, a_name: &str, b: &Netns, b_name: &str) -> Result<Veth> {
        // Made in the test's namespace under unique names, then moved and
        // renamed, so the final names may repeat across namespaces.
        let here = Netns::current();
        let (ta, tb) = (unique_ifname("vtva"), unique_ifname("vtvb"));
        here.ip(&["link", "add", &ta, "type", "veth", "peer", "name", &tb])?;
        let mut veth = Veth {
            a: (here.clone(), ta.clone()),
            b: (here.clone(), tb.clone()),
        };
        veth.a = place(&ta, a, a_name)?;
        veth.b = place(&tb, b, b_name)?;
        Ok(veth)
    }

    /// The end in the first namespace.
    pub fn a_name(&self) -> &str {
        &self.a.1
    }

    /// The end in the second namespace.
    pub fn b_name(&self) -> &str {
        &self.b.1
    }
}

/// Moves link `tmp` from the test's namespace into `ns` as `name`, up.
fn place(tmp: &str, ns: &Netns, name: &str) -> Result<(Netns, String)> {
    let here = Netns::current();
    if let Some(ns_name) = ns.name() {
        here.ip(&["link", "set", tmp, "netns", ns_name])?;
    }
    if tmp != name {
        ns.ip(&["link", "set", tmp, "name", name])?;
    }
    ns.ip(&["link", "set", name, "up"])?;
    Ok((ns.clone(), name.to_string()))
}

impl Drop for Veth {
    fn drop(&mut self) {
        let (ns, name) = &self.a;
        if ns.link_exists(name) {
            ip_quiet(ns, &["link", "del", name]);
        } else {
            let (ns, name) = &self.b;
            ip_quiet(ns, &["link", "del", name]);
        }
    }
}

/// Connects `ns` to `bridge` in the test's own namespace: a veth whose end
/// in `ns` is named `guest_if`, the other end enslaved to the bridge.
pub fn connect_to_bridge(ns: &Netns, bridge: &str, guest_if: &str) -> Result<Veth> {
    connect_to_bridge_in(&Netns::current(), bridge, ns, guest_if)
}

/// Like [`connect_to_bridge`] with the bridge in `bridge_ns`.
/// [`Veth::a_name`] is the bridge port, [`Veth::b_name`] is `guest_if`.
pub fn connect_to_bridge_in(
    bridge_ns: &Netns,
    bridge: &str,
    ns: &Netns,
    guest_if: &str,
) -> Result<Veth> {
    let port = unique_ifname("vtp");
    let veth = Veth::create(bridge_ns, &port, ns, guest_if)?;
    bridge_ns.ip(&["link", "set", &port, "master", bridge])?;
    Ok(veth)
}

/// Addresses of a [`Wan`] link.
#[derive(Debug, Clone)]
pub struct WanOpts {
    /// Address of the host side, e.g. `203.0.113.1`.
    pub host_addr: Ipv4Addr,
    /// Address of the wan side, e.g. `203.0.113.2`.
    pub wan_addr: Ipv4Addr,
    /// Prefix length of the link.
    pub prefix: u8,
}

impl Default for WanOpts {
    /// 203.0.113.0/24 (TEST-NET-3): host .1, wan .2.
    fn default() -> Self {
        WanOpts {
            host_addr: Ipv4Addr::new(203, 0, 113, 1),
            wan_addr: Ipv4Addr::new(203, 0, 113, 2),
            prefix: 24,
        }
    }
}

/// An "uplink" namespace: a veth from the host namespace with addresses on
/// both sides, and in the wan namespace a default route back through the
/// host. Whatever a guest sends "to the internet" through the host ends
/// here, so traffic never leaves the test.
#[derive(Debug)]
pub struct Wan {
    /// The wan namespace (run servers here).
    pub ns: Netns,
    /// The host side's link name.
    pub host_if: String,
    /// The host side's address.
    pub host_addr: Ipv4Addr,
    /// The wan side's address (`eth0` in [`Wan::ns`]).
    pub wan_addr: Ipv4Addr,
    /// Prefix length of the link.
    pub prefix: u8,
    _veth: Veth,
}

impl Wan {
    /// A wan attached to the test's own namespace with [`WanOpts::default`].
    pub fn new() -> Result<Wan> {
        Wan::create(&Netns::current(), WanOpts::default())
    }

    /// A wan attached to `host`.
    pub fn create(host: &Netns, opts: WanOpts) -> Result<Wan> {
        let ns = Netns::new("wan")?;
        let host_if = unique_ifname("vtwan");
        let veth = Veth::create(host, &host_if, &ns, "eth0")?;
        host.ip(&[
            "addr",
            "add",
            &format!("{}/{}", opts.host_addr, opts.prefix),
            "dev",
            &host_if,
        ])?;
        ns.ip(&[
            "addr",
            "add",
            &format!("{}/{}", opts.wan_addr, opts.prefix),
            "dev",
            "eth0",
        ])?;
        ns.ip(&[
            "route",
            "add",
            "default",
            "via",
            &opts.host_addr.to_string(),
            "dev",
            "eth0",
        ])?;
        Ok(Wan {
            ns,
            host_if,
            host_addr: opts.host_addr,
            wan_addr: opts.wan_addr,
            prefix: opts.prefix,
            _veth: veth,
        })
    }
}
