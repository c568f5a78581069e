//! What the network lifecycle scenarios (`scenario_*.rs`) share: a "host"
//! namespace running its own virtnetd, both clients (virtnet and Debian's
//! virsh) behind one type, `net-list` parsing, a reading of
//! `nft -j list ruleset`, and the dnsmasq processes of a network.
//!
//! Each scenario plays the host in a namespace of its own (the daemon, its
//! bridges, its nftables table and its dnsmasqs live there), so scenarios of
//! one test binary run in parallel without seeing each other.

// Each scenario binary uses a different part of this module.
#![allow(dead_code)]
// Test code: a failing setup step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use virtnet_tests::daemon::locate_binary;
use virtnet_tests::process::{self, DEFAULT_TIMEOUT};
use virtnet_tests::{Daemon, DaemonOpts, Error, Netns, Output, Result, Wan, WanOpts, require};

pub mod json;

pub use json::Json;

/// `tests/data/scenarios/<name>`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/scenarios")
        .join(name)
}

/// The tools every lifecycle scenario needs.
pub const TOOLS: &[&str] = &["ip", "nft", "dnsmasq", "sysctl"];

/// Which libvirt client drives the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// virtnet's own CLI.
    Virtnet,
    /// Debian's `virsh` (libvirt-clients), `$VIRSH_BIN` if set.
    Virsh,
}

impl Client {
    /// Both clients.
    pub const ALL: [Client; 2] = [Client::Virtnet, Client::Virsh];

    /// The program, or `Unavailable` when it is not there.
    pub fn program(self) -> Result<PathBuf> {
        match self {
            Client::Virtnet => locate_binary("virtnet", "VIRTNET_BIN"),
            Client::Virsh => match std::env::var_os("VIRSH_BIN") {
                Some(p) => Ok(PathBuf::from(p)),
                None => process::find_tool("virsh").ok_or_else(|| {
                    Error::Unavailable("virsh not installed (libvirt-clients)".into())
                }),
            },
        }
    }

    /// Checks that this client can run.
    pub fn check(self) -> Result<()> {
        self.program().map(drop)
    }

    /// Runs `PROGRAM -c URI ARGS` in `cwd` (file arguments can then be given
    /// as in a shell session, and messages naming them are predictable).
    pub fn run_at(self, uri: &str, args: &[&str], cwd: Option<&Path>) -> Output {
        let mut cmd = Command::new(self.program().expect("client program"));
        cmd.arg("-c").arg(uri).args(args);
        cmd.env("LIBVIRT_DEFAULT_URI", uri);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        process::run(cmd, DEFAULT_TIMEOUT).expect("client finished in time")
    }

    /// Runs a command against `daemon`'s read-write socket.
    pub fn run(self, daemon: &Daemon, args: &[&str]) -> Output {
        self.run_at(&daemon.uri(), args, None)
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(self, daemon: &Daemon, args: &[&str]) -> String {
        let out = self.run(daemon, args);
        assert!(
            out.success(),
            "{self:?}: `{}` failed ({:?}):\n{}{}",
            args.join(" "),
            out.code(),
            out.stdout,
            out.stderr
        );
        out.stdout
    }
}

/// Asserts that `out` has a line exactly equal to `line`.
pub fn assert_line(out: &str, line: &str) {
    assert!(
        out.lines().any(|l| l == line),
        "expected the line {line:?} in:\n{out}"
    );
}

/// A row of `net-list`: name, state, autostart, persistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRow {
    pub name: String,
    pub state: String,
    pub autostart: String,
    pub persistent: String,
}

/// Parses virsh's `net-list` table, checking its header.
pub fn parse_net_list(out: &str) -> Vec<NetRow> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["Name", "State", "Autostart", "Persistent"],
        "net-list header in:\n{out}"
    );
    let rule = lines.next().unwrap_or_default();
    assert!(
        !rule.is_empty() && rule.chars().all(|c| c == '-'),
        "net-list rule in:\n{out}"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 4, "net-list row {l:?}");
            NetRow {
                name: w[0].into(),
                state: w[1].into(),
                autostart: w[2].into(),
                persistent: w[3].into(),
            }
        })
        .collect()
}

/// `net-list --all` through `client`.
pub fn net_list(client: Client, daemon: &Daemon) -> Vec<NetRow> {
    parse_net_list(&client.ok(daemon, &["net-list", "--all"]))
}

/// The `net-list` row of `name`.
pub fn row(rows: &[NetRow], name: &str) -> NetRow {
    rows.iter()
        .find(|r| r.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no net-list row for {name} in {rows:?}"))
}

/// A namespace playing the host: virtnetd runs there, with a wan namespace
/// hanging off it (host 203.0.113.1, wan 203.0.113.2).
pub struct Host {
    /// The daemon (declared first: stopped before the namespaces go).
    pub daemon: Daemon,
    /// The wan.
    pub wan: Wan,
    /// The host's namespace.
    pub ns: Netns,
}

impl Host {
    /// A host namespace with a wan and virtnetd (`--no-default-network` and
    /// `args`) running in it.
    pub fn start(args: &[&str]) -> Result<Host> {
        same_length_daemon_dirs();
        let ns = Netns::new("host")?;
        let wan = Wan::create(&ns, WanOpts::default())?;
        let daemon = Daemon::start(DaemonOpts {
            no_default_network: true,
            netns: Some(ns.clone()),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..DaemonOpts::default()
        })?;
        Ok(Host { daemon, wan, ns })
    }

    /// Everything about the host a failed operation must leave unchanged:
    /// links, addresses, routes, the nftables ruleset (with handles), the
    /// daemon's files, dnsmasq processes.
    pub fn snapshot(&self) -> Snapshot {
        let links = self
            .ns
            .ip(&["-o", "link", "show"])
            .unwrap()
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
            .collect();
        // IPv6 link-local addresses (and their routes) come and go with the
        // kernel's address autoconfiguration, not with anything virtnet does.
        let kernel_made = |l: &&str| l.contains("fe80::");
        let addrs = self.ns.ip(&["-o", "addr", "show"]).unwrap();
        let addrs = addrs
            .lines()
            .filter(|l| !kernel_made(l))
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect();
        let routes = self.ns.ip(&["route", "show", "table", "all"]).unwrap();
        let routes = routes
            .lines()
            .filter(|l| !kernel_made(l))
            .map(str::to_string)
            .collect();
        let mut files = BTreeSet::new();
        for dir in [
            self.daemon.config_dir(),
            self.daemon.run_dir(),
            self.daemon.state_dir(),
        ] {
            list_files(&dir, &dir, &mut files);
        }
        Snapshot {
            links,
            addrs,
            routes,
            ruleset: Ruleset::read(&self.ns),
            files,
            dnsmasqs: all_dnsmasqs(&self.daemon),
        }
    }

    /// Asserts that nothing of network `name` (bridge `bridge`) is left on
    /// the host: no bridge, no `net_NAME_*` chain, no map or set element
    /// naming the bridge, no dnsmasq, no status or pid file.
    pub fn assert_no_trace(&self, name: &str, bridge: &str) {
        assert!(
            !self.ns.link_exists(bridge),
            "bridge {bridge} of {name} is still there:\n{}",
            self.ns.ip(&["-br", "link"]).unwrap_or_default()
        );
        let rules = Ruleset::read(&self.ns);
        let prefix = format!("net_{name}_");
        let chains: Vec<&String> = rules
            .chains
            .keys()
            .filter(|k| k.name.starts_with(&prefix))
            .map(|k| &k.name)
            .collect();
        assert!(chains.is_empty(), "chains of {name} left: {chains:?}");
        for (set, elems) in &rules.sets {
            for e in elems {
                assert!(
                    !e.contains(&format!("\"{bridge}\"")) && !e.contains(&prefix),
                    "element {e} of {} {} still names {name}",
                    set.kind,
                    set.name
                );
            }
        }
        let pids = dnsmasq_pids(&self.daemon, name);
        assert!(pids.is_empty(), "dnsmasq of {name} still runs: {pids:?}");
        let status = self.daemon.run_dir().join(format!("network/{name}.xml"));
        assert!(!status.exists(), "{} is still there", status.display());
        let pid = self.daemon.run_dir().join(format!("network/{name}.pid"));
        assert!(!pid.exists(), "{} is still there", pid.display());
    }
}

/// Daemon directories are `virtnet-daemon-<pid>-<n>`, with `n` from a
/// counter all temporary directories of the process share, and dropping a
/// [`Daemon`] kills every process whose command line contains its
/// directory's path as a substring: the daemon of `…-1` would take the
/// daemons of `…-10` to `…-19` (and their dnsmasqs) with it. Moving the
/// counter to three digits first keeps every daemon directory of a test
/// binary the same length, so none is a prefix of another.
fn same_length_daemon_dirs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for _ in 0..200 {
            let Ok(dir) = process::TempDir::new("counter") else {
                return;
            };
            let n = dir
                .path()
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.rsplit('-').next())
                .and_then(|n| n.parse::<u32>().ok());
            if n.is_none_or(|n| n >= 99) {
                return;
            }
        }
    });
}

fn list_files(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
        if p.is_dir() {
            list_files(base, &p, out);
        } else {
            out.insert(format!("{}/{rel}", base.display()));
        }
    }
}

/// The state of a host, compared before and after an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub links: BTreeSet<String>,
    pub addrs: BTreeSet<String>,
    pub routes: BTreeSet<String>,
    pub ruleset: Ruleset,
    pub files: BTreeSet<String>,
    pub dnsmasqs: BTreeMap<String, Vec<u32>>,
}

impl Snapshot {
    /// The same snapshot with nftables handles cleared (a network start
    /// re-creates the shared dispatch rules in its transaction, with new
    /// handles).
    pub fn without_handles(&self) -> Snapshot {
        let mut s = self.clone();
        s.ruleset = s.ruleset.without_handles();
        s
    }

    /// A readable difference, empty when equal.
    pub fn diff(&self, after: &Snapshot) -> String {
        let mut out = String::new();
        let mut set_diff = |what: &str, a: &BTreeSet<String>, b: &BTreeSet<String>| {
            for x in a.difference(b) {
                let _ = writeln!(out, "{what} gone: {x}");
            }
            for x in b.difference(a) {
                let _ = writeln!(out, "{what} new: {x}");
            }
        };
        set_diff("link", &self.links, &after.links);
        set_diff("address", &self.addrs, &after.addrs);
        set_diff("route", &self.routes, &after.routes);
        set_diff("file", &self.files, &after.files);
        if self.ruleset != after.ruleset {
            let _ = writeln!(
                out,
                "ruleset changed:\n{}",
                self.ruleset.diff(&after.ruleset)
            );
        }
        if self.dnsmasqs != after.dnsmasqs {
            let _ = writeln!(out, "dnsmasqs: {:?} -> {:?}", self.dnsmasqs, after.dnsmasqs);
        }
        out
    }
}

/// Where a chain or set lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// `chain`, `set` or `map`.
    pub kind: String,
    pub family: String,
    pub table: String,
    pub name: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.kind, self.family, self.table, self.name
        )
    }
}

/// A rule as listed: its handle and its expressions (counters zeroed, so
/// traffic does not make two listings differ).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub handle: u64,
    pub expr: String,
}

/// A reading of `nft -j list ruleset`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    /// Tables (`family name`) with their handles.
    pub tables: BTreeMap<String, u64>,
    /// Chains with their handle and rules.
    pub chains: BTreeMap<Key, (u64, Vec<Rule>)>,
    /// Sets and maps with their elements.
    pub sets: BTreeMap<Key, Vec<String>>,
}

impl Ruleset {
    /// Lists the ruleset of `ns`.
    pub fn read(ns: &Netns) -> Ruleset {
        let out = ns.run_ok(["nft", "-j", "list", "ruleset"]).unwrap();
        Ruleset::parse(&out.stdout)
    }

    /// Parses `nft -j` output.
    pub fn parse(text: &str) -> Ruleset {
        let mut rs = Ruleset::default();
        if text.trim().is_empty() {
            return rs;
        }
        let doc = Json::parse(text).unwrap_or_else(|e| panic!("nft -j output: {e}\n{text}"));
        let s = |o: &Json, k: &str| o.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let n = |o: &Json, k: &str| o.get(k).and_then(Json::as_u64).unwrap_or(0);
        for item in doc.get("nftables").map(Json::items).unwrap_or_default() {
            let Json::Obj(fields) = item else { continue };
            for (kind, o) in fields {
                let key = Key {
                    kind: kind.clone(),
                    family: s(o, "family"),
                    table: s(o, "table"),
                    name: s(o, "name"),
                };
                match kind.as_str() {
                    "table" => {
                        rs.tables
                            .insert(format!("{} {}", key.family, key.name), n(o, "handle"));
                    }
                    "chain" => {
                        rs.chains.entry(key).or_default().0 = n(o, "handle");
                    }
                    "set" | "map" => {
                        let elems = o
                            .get("elem")
                            .map(|e| e.items().iter().map(|x| x.to_string()).collect())
                            .unwrap_or_default();
                        rs.sets.insert(key, elems);
                    }
                    "rule" => {
                        let chain = Key {
                            kind: "chain".into(),
                            family: key.family,
                            table: key.table,
                            name: s(o, "chain"),
                        };
                        let expr = o.get("expr").map(zero_counters).unwrap_or(Json::Null);
                        rs.chains.entry(chain).or_default().1.push(Rule {
                            handle: n(o, "handle"),
                            expr: expr.to_string(),
                        });
                    }
                    _ => {}
                }
            }
        }
        rs
    }

    /// Names of the chains of table `inet virtnet`.
    pub fn virtnet_chains(&self) -> Vec<String> {
        self.chains
            .keys()
            .filter(|k| k.family == "inet" && k.table == "virtnet")
            .map(|k| k.name.clone())
            .collect()
    }

    /// How many rules each chain and elements each set has.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (k, (_, rules)) in &self.chains {
            m.insert(k.to_string(), rules.len());
        }
        for (k, elems) in &self.sets {
            m.insert(k.to_string(), elems.len());
        }
        m
    }

    /// The same ruleset with every handle cleared: what a listing shows
    /// when rules were re-created identically.
    pub fn without_handles(&self) -> Ruleset {
        let mut r = self.clone();
        for h in r.tables.values_mut() {
            *h = 0;
        }
        for (h, rules) in r.chains.values_mut() {
            *h = 0;
            for rule in rules.iter_mut() {
                rule.handle = 0;
            }
        }
        for elems in r.sets.values_mut() {
            elems.sort();
        }
        r
    }

    /// A readable difference.
    pub fn diff(&self, other: &Ruleset) -> String {
        let mut out = String::new();
        if self.tables != other.tables {
            let _ = writeln!(out, "  tables {:?} -> {:?}", self.tables, other.tables);
        }
        let keys: BTreeSet<&Key> = self.chains.keys().chain(other.chains.keys()).collect();
        for k in keys {
            let (a, b) = (self.chains.get(k), other.chains.get(k));
            if a != b {
                let _ = writeln!(out, "  {k}:\n    before {a:?}\n    after  {b:?}");
            }
        }
        let keys: BTreeSet<&Key> = self.sets.keys().chain(other.sets.keys()).collect();
        for k in keys {
            let (a, b) = (self.sets.get(k), other.sets.get(k));
            if a != b {
                let _ = writeln!(out, "  {k}:\n    before {a:?}\n    after  {b:?}");
            }
        }
        out
    }
}

/// `expr` with every `counter`'s packets and bytes set to 0.
fn zero_counters(v: &Json) -> Json {
    match v {
        Json::Obj(fields) => Json::Obj(
            fields
                .iter()
                .map(|(k, x)| {
                    if k == "counter" || k == "packets" || k == "bytes" {
                        if let Json::Num(_) = x {
                            return (k.clone(), Json::Num("0".into()));
                        }
                    }
                    (k.clone(), zero_counters(x))
                })
                .collect(),
        ),
        Json::Arr(items) => Json::Arr(items.iter().map(zero_counters).collect()),
        other => other.clone(),
    }
}

/// The dnsmasq processes started for network `name` by `daemon`: those
/// whose command line names its conf file. dnsmasq keeps a helper child for
/// the lease script; only the main processes (whose parent is not one of
/// them) are returned.
pub fn dnsmasq_pids(daemon: &Daemon, name: &str) -> Vec<u32> {
    let conf = format!(
        "--conf-file={}",
        daemon
            .state_dir()
            .join(format!("dnsmasq/{name}.conf"))
            .display()
    );
    let procs = procs_with_arg(&conf);
    let pids: BTreeSet<u32> = procs.iter().map(|p| p.0).collect();
    procs
        .iter()
        .filter(|(_, ppid)| !pids.contains(ppid))
        .map(|(pid, _)| *pid)
        .collect()
}

/// Every network's dnsmasq main processes, by conf file name.
pub fn all_dnsmasqs(daemon: &Daemon) -> BTreeMap<String, Vec<u32>> {
    let dir = daemon.state_dir().join("dnsmasq");
    let prefix = format!("--conf-file={}/", dir.display());
    let mut names = BTreeSet::new();
    for (pid, _) in procs_with_arg(&prefix) {
        if let Ok(args) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            for a in args.split(|&b| b == 0) {
                let a = String::from_utf8_lossy(a);
                if let Some(rest) = a.strip_prefix(&prefix) {
                    if let Some(n) = rest.strip_suffix(".conf") {
                        names.insert(n.to_string());
                    }
                }
            }
        }
    }
    names
        .into_iter()
        .map(|n| {
            let pids = dnsmasq_pids(daemon, &n);
            (n, pids)
        })
        .collect()
}

/// (pid, ppid) of live processes with an argument starting with `arg`.
fn procs_with_arg(arg: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if !cmdline
            .split(|&b| b == 0)
            .any(|a| a.starts_with(arg.as_bytes()))
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after ')'.
        let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or_default();
        let mut f = after.split_whitespace();
        let state = f.next().unwrap_or("Z");
        if state == "Z" {
            continue;
        }
        let ppid = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        out.push((pid, ppid));
    }
    out
}

/// Whether process `pid` is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|x| x.1.split_whitespace().next()),
            Some("Z") | None
        ),
        Err(_) => false,
    }
}

/// Waits up to `timeout` for `pred`, polling every 50 ms.
pub fn wait_until(what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Skips unless root in the runner's namespace with the lifecycle tools,
/// busybox and `client`.
pub fn require_all(client: Option<Client>) -> Result<()> {
    require(TOOLS)?;
    process::busybox()?;
    if let Some(c) = client {
        c.check()?;
    }
    Ok(())
}

/// An IPv4 address parsed from a literal.
pub fn v4(s: &str) -> std::net::Ipv4Addr {
    s.parse().unwrap()
}

/// Splits a scenario step into words as the data generators' `eval "set --
/// STEP"` does for the steps written there: blanks separate words, and '…' or "…"
/// quote (no escapes, no expansions).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quote in step {line:?}");
    if in_word {
        out.push(cur);
    }
    out
}
