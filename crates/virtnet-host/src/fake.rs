//! Recording fakes of every host-effect trait, for testing the daemon
//! without touching the host.
//!
//! Each fake keeps a small in-memory model (links, addresses, routes,
//! sysctls, applied firewall plans, running dnsmasqs) so lookups answer
//! like the real thing, and a [`Recorder`] that logs every call as one line
//! (`create_bridge virbr0`, `write net/ipv4/ip_forward=1`, …) and can be told
//! to fail the Nth call, or every call starting with some text, with an
//! error of the trait's own type.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

mod bandwidth;
mod openvswitch;
mod sriov;

pub use bandwidth::FakeBandwidth;
pub use openvswitch::FakeOvs;
pub use sriov::FakeSriov;

use crate::dnsmasq::{DeathHook, DnsmasqDeath, DnsmasqError, DnsmasqSpec, DnsmasqSupervisor};
use crate::firewall::{Firewall, FirewallError, FirewallMode, FirewallPlan, apply_batch};
use crate::netlink::{
    AddressEntry, AddressOptions, BridgeAttrs, BridgePortAttrs, BridgePortOptions, BridgeSpec,
    Link, MacvtapSpec, NetlinkError, NetlinkOps, NetnsTarget, RouteEntry, RouteSpec,
    validate_ifname,
};
use crate::sysctl::{Sysctl, SysctlError};
use crate::types::{Family, IpPrefix, MacAddr};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct RecorderState {
    calls: Vec<String>,
    fail_at: BTreeSet<usize>,
    fail_prefixes: Vec<String>,
}

/// Call log and fault plan shared by the fakes.
#[derive(Debug, Default)]
pub struct Recorder {
    state: Mutex<RecorderState>,
}

impl Recorder {
    /// Every call so far, in order, one line each.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }

    /// Forgets the calls so far (call numbering restarts at 1).
    pub fn clear(&self) {
        lock(&self.state).calls.clear();
    }

    /// Makes the `n`th call (1-based, counted from the last [`clear`]) fail.
    ///
    /// [`clear`]: Recorder::clear
    pub fn fail_at(&self, n: usize) {
        lock(&self.state).fail_at.insert(n);
    }

    /// Makes every call whose line starts with `prefix` fail.
    pub fn fail_on(&self, prefix: &str) {
        lock(&self.state).fail_prefixes.push(prefix.to_string());
    }

    /// Removes all planned failures.
    pub fn heal(&self) {
        let mut s = lock(&self.state);
        s.fail_at.clear();
        s.fail_prefixes.clear();
    }

    /// Records a call; `Err` with a description when it is to fail.
    fn enter(&self, call: String) -> Result<(), String> {
        let mut s = lock(&self.state);
        s.calls.push(call.clone());
        let n = s.calls.len();
        if s.fail_at.contains(&n) || s.fail_prefixes.iter().any(|p| call.starts_with(p)) {
            return Err(format!("injected failure at call {n} ({call})"));
        }
        Ok(())
    }
}

fn injected_io(msg: &str) -> io::Error {
    io::Error::other(msg.to_string())
}

fn nl_injected(msg: String) -> NetlinkError {
    NetlinkError::Kernel {
        op: "injected failure".to_string(),
        target: msg,
        source: io::Error::from_raw_os_error(libc::EIO),
        detail: None,
    }
}

fn nl_errno(op: &str, target: &str, errno: i32) -> NetlinkError {
    NetlinkError::Kernel {
        op: op.to_string(),
        target: target.to_string(),
        source: io::Error::from_raw_os_error(errno),
        detail: None,
    }
}

#[derive(Debug)]
struct NetModel {
    links: BTreeMap<String, Link>,
    next_index: u32,
    addresses: Vec<AddressEntry>,
    routes: Vec<RouteEntry>,
}

/// Fake [`NetlinkOps`]: a namespace with only `lo` (index 1) to start with.
#[derive(Debug)]
pub struct FakeNetlink {
    /// The call log and fault plan.
    pub recorder: Recorder,
    model: Mutex<NetModel>,
}

impl Default for FakeNetlink {
    fn default() -> Self {
        FakeNetlink::new()
    }
}

impl FakeNetlink {
    /// A fresh fake namespace.
    pub fn new() -> FakeNetlink {
        let mut links = BTreeMap::new();
        links.insert("lo".to_string(), blank_link(1, "lo", None));
        FakeNetlink {
            recorder: Recorder::default(),
            model: Mutex::new(NetModel {
                links,
                next_index: 2,
                addresses: Vec::new(),
                routes: Vec::new(),
            }),
        }
    }

    /// Adds a device as if it had been there already (e.g. a physical NIC).
    pub fn add_existing(&self, name: &str, kind: Option<&str>) -> u32 {
        let mut m = lock(&self.model);
        let index = m.next_index;
        m.next_index += 1;
        m.links.insert(
            name.to_string(),
            blank_link(index, name, kind.map(str::to_string)),
        );
        index
    }

    fn call(&self, line: String) -> Result<(), NetlinkError> {
        self.recorder.enter(line).map_err(nl_injected)
    }

    fn with_link<T>(&self, name: &str, f: impl FnOnce(&mut Link) -> T) -> Result<T, NetlinkError> {
        let mut m = lock(&self.model);
        match m.links.get_mut(name) {
            Some(l) => Ok(f(l)),
            None => Err(NetlinkError::NoSuchDevice(name.to_string())),
        }
    }

    fn create(&self, name: &str, kind: &str, op: &str) -> Result<u32, NetlinkError> {
        validate_ifname(name)?;
        let mut m = lock(&self.model);
        if m.links.contains_key(name) {
            return Err(nl_errno(op, name, libc::EEXIST));
        }
        let index = m.next_index;
        m.next_index += 1;
        m.links.insert(
            name.to_string(),
            blank_link(index, name, Some(kind.to_string())),
        );
        Ok(index)
    }

    fn index_of(&self, name: &str) -> Result<u32, NetlinkError> {
        lock(&self.model)
            .links
            .get(name)
            .map(|l| l.index)
            .ok_or_else(|| NetlinkError::NoSuchDevice(name.to_string()))
    }
}

fn blank_link(index: u32, name: &str, kind: Option<String>) -> Link {
    Link {
        index,
        name: name.to_string(),
        kind,
        mac: None,
        mtu: 1500,
        up: false,
        master: None,
        lower: None,
        bridge: None,
        port: None,
        macvlan_mode: None,
    }
}

impl NetlinkOps for FakeNetlink {
    fn create_bridge(&self, spec: &BridgeSpec) -> Result<(), NetlinkError> {
        self.call(format!("create_bridge {}", spec.name))?;
        self.create(&spec.name, "bridge", "cannot create bridge")?;
        self.with_link(&spec.name, |l| {
            l.mac = spec.mac;
            if let Some(mtu) = spec.mtu {
                l.mtu = mtu;
            }
            l.bridge = Some(BridgeAttrs {
                stp: spec.stp,
                forward_delay: spec.forward_delay,
            });
        })
    }

    fn create_veth(
        &self,
        name: &str,
        peer: &str,
        peer_netns: Option<NetnsTarget>,
    ) -> Result<(), NetlinkError> {
        self.call(format!("create_veth {name} {peer}"))?;
        self.create(name, "veth", "cannot create veth pair")?;
        if peer_netns.is_none() {
            self.create(peer, "veth", "cannot create veth pair")?;
        }
        Ok(())
    }

    fn create_macvtap(&self, spec: &MacvtapSpec) -> Result<u32, NetlinkError> {
        self.call(format!("create_macvtap {} on {}", spec.name, spec.lower))?;
        let lower = self.index_of(&spec.lower)?;
        let index = self.create(&spec.name, "macvtap", "cannot create macvtap device")?;
        self.with_link(&spec.name, |l| {
            l.mac = spec.mac;
            l.lower = Some(lower);
            l.macvlan_mode = Some(spec.mode);
        })?;
        Ok(index)
    }

    fn create_ifb(&self, name: &str) -> Result<(), NetlinkError> {
        self.call(format!("create_ifb {name}"))?;
        self.create(name, "ifb", "cannot create ifb device")?;
        Ok(())
    }

    fn delete_link(&self, name: &str) -> Result<(), NetlinkError> {
        self.call(format!("delete_link {name}"))?;
        let mut m = lock(&self.model);
        let Some(link) = m.links.remove(name) else {
            return Err(NetlinkError::NoSuchDevice(name.to_string()));
        };
        m.addresses.retain(|a| a.index != link.index);
        m.routes.retain(|r| r.oif != Some(link.index));
        for other in m.links.values_mut() {
            if other.master == Some(link.index) {
                other.master = None;
                other.port = None;
            }
        }
        Ok(())
    }

    fn link(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        Ok(lock(&self.model).links.get(name).cloned())
    }

    fn link_by_index(&self, index: u32) -> Result<Option<Link>, NetlinkError> {
        Ok(lock(&self.model)
            .links
            .values()
            .find(|l| l.index == index)
            .cloned())
    }

    fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        Ok(lock(&self.model).links.values().cloned().collect())
    }

    fn set_up(&self, name: &str, up: bool) -> Result<(), NetlinkError> {
        self.call(format!("set_up {name} {}", if up { "up" } else { "down" }))?;
        self.with_link(name, |l| l.up = up)
    }

    fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        self.call(format!("set_mtu {name} {mtu}"))?;
        self.with_link(name, |l| l.mtu = mtu)
    }

    fn set_mac(&self, name: &str, mac: MacAddr) -> Result<(), NetlinkError> {
        self.call(format!("set_mac {name} {mac}"))?;
        self.with_link(name, |l| l.mac = Some(mac))
    }

    fn set_master(&self, name: &str, master: Option<&str>) -> Result<(), NetlinkError> {
        self.call(format!("set_master {name} {}", master.unwrap_or("none")))?;
        let index = match master {
            Some(m) => Some(self.index_of(m)?),
            None => None,
        };
        self.with_link(name, |l| {
            l.master = index;
            l.port = index.map(|_| BridgePortAttrs {
                isolated: Some(false),
                learning: Some(true),
                unicast_flood: Some(true),
            });
        })
    }

    fn set_bridge_port(&self, name: &str, options: &BridgePortOptions) -> Result<(), NetlinkError> {
        self.call(format!("set_bridge_port {name} {options:?}"))?;
        self.with_link(name, |l| {
            if l.master.is_none() {
                return Err(nl_errno(
                    "cannot set bridge port options of device",
                    name,
                    libc::EOPNOTSUPP,
                ));
            }
            let p = l.port.get_or_insert_with(BridgePortAttrs::default);
            if options.isolated.is_some() {
                p.isolated = options.isolated;
            }
            if options.learning.is_some() {
                p.learning = options.learning;
            }
            if options.unicast_flood.is_some() {
                p.unicast_flood = options.unicast_flood;
            }
            Ok(())
        })?
    }

    fn move_to_netns(&self, name: &str, target: NetnsTarget) -> Result<(), NetlinkError> {
        self.call(format!("move_to_netns {name} {target:?}"))?;
        let mut m = lock(&self.model);
        match m.links.remove(name) {
            Some(_) => Ok(()),
            None => Err(NetlinkError::NoSuchDevice(name.to_string())),
        }
    }

    fn add_address(
        &self,
        name: &str,
        address: IpPrefix,
        options: AddressOptions,
    ) -> Result<(), NetlinkError> {
        self.call(format!("add_address {name} {address}"))?;
        let index = self.index_of(name)?;
        let mut m = lock(&self.model);
        if m.addresses
            .iter()
            .any(|a| a.index == index && a.prefix.addr() == address.addr())
        {
            return Err(nl_errno(
                "cannot add address",
                &format!("{address} dev {name}"),
                libc::EEXIST,
            ));
        }
        m.addresses.push(AddressEntry {
            index,
            prefix: address,
            tentative: address.family() == Family::V6 && !options.nodad,
            dad_failed: false,
        });
        Ok(())
    }

    fn delete_address(&self, name: &str, address: IpPrefix) -> Result<(), NetlinkError> {
        self.call(format!("delete_address {name} {address}"))?;
        let index = self.index_of(name)?;
        let mut m = lock(&self.model);
        let before = m.addresses.len();
        m.addresses
            .retain(|a| !(a.index == index && a.prefix == address));
        if m.addresses.len() == before {
            return Err(nl_errno(
                "cannot delete address",
                &format!("{address} dev {name}"),
                libc::EADDRNOTAVAIL,
            ));
        }
        Ok(())
    }

    fn addresses(&self, name: Option<&str>) -> Result<Vec<AddressEntry>, NetlinkError> {
        let index = match name {
            Some(n) => Some(self.index_of(n)?),
            None => None,
        };
        let mut m = lock(&self.model);
        // DAD "completes" once the addresses have been looked at.
        let out = m
            .addresses
            .iter()
            .filter(|a| index.is_none_or(|i| a.index == i))
            .copied()
            .collect();
        for a in m.addresses.iter_mut() {
            a.tentative = false;
        }
        Ok(out)
    }

    fn add_route(&self, route: &RouteSpec) -> Result<(), NetlinkError> {
        self.call(format!("add_route {}", route_line(route)))?;
        let oif = match &route.device {
            Some(d) => Some(self.index_of(d)?),
            None => None,
        };
        let entry = RouteEntry {
            destination: route.destination.network(),
            gateway: route.gateway,
            oif,
            metric: route.metric,
            table: 254,
        };
        let mut m = lock(&self.model);
        if m.routes.iter().any(|r| {
            r.destination == entry.destination && r.metric.unwrap_or(0) == entry.metric.unwrap_or(0)
        }) {
            return Err(nl_errno(
                "cannot add route",
                &route_line(route),
                libc::EEXIST,
            ));
        }
        m.routes.push(entry);
        Ok(())
    }

    fn delete_route(&self, route: &RouteSpec) -> Result<(), NetlinkError> {
        self.call(format!("delete_route {}", route_line(route)))?;
        let dest = route.destination.network();
        let mut m = lock(&self.model);
        let before = m.routes.len();
        m.routes.retain(|r| {
            !(r.destination == dest && (route.metric.is_none() || r.metric == route.metric))
        });
        if m.routes.len() == before {
            return Err(nl_errno(
                "cannot delete route",
                &route_line(route),
                libc::ESRCH,
            ));
        }
        Ok(())
    }

    fn routes(&self, family: Option<Family>) -> Result<Vec<RouteEntry>, NetlinkError> {
        Ok(lock(&self.model)
            .routes
            .iter()
            .filter(|r| family.is_none_or(|f| r.destination.family() == f))
            .cloned()
            .collect())
    }
}

fn route_line(route: &RouteSpec) -> String {
    let mut s = route.destination.network().to_string();
    if let Some(gw) = route.gateway {
        s.push_str(&format!(" via {gw}"));
    }
    if let Some(dev) = &route.device {
        s.push_str(&format!(" dev {dev}"));
    }
    if let Some(m) = route.metric {
        s.push_str(&format!(" metric {m}"));
    }
    s
}

/// Fake [`Sysctl`]: a map of keys to values; reading an unknown key fails
/// like a missing /proc file.
#[derive(Debug, Default)]
pub struct FakeSysctl {
    /// The call log and fault plan.
    pub recorder: Recorder,
    values: Mutex<BTreeMap<String, String>>,
}

impl FakeSysctl {
    /// A fake with no keys.
    pub fn new() -> FakeSysctl {
        FakeSysctl::default()
    }

    /// Sets a key without recording a call.
    pub fn preset(&self, key: &str, value: &str) {
        lock(&self.values).insert(key.to_string(), value.to_string());
    }

    /// The current value of a key.
    pub fn value(&self, key: &str) -> Option<String> {
        lock(&self.values).get(key).cloned()
    }
}

impl Sysctl for FakeSysctl {
    fn read(&self, key: &str) -> Result<String, SysctlError> {
        let path = std::path::PathBuf::from("/proc/sys").join(key);
        self.recorder
            .enter(format!("read {key}"))
            .map_err(|m| SysctlError::Read {
                path: path.clone(),
                source: injected_io(&m),
            })?;
        self.value(key).ok_or(SysctlError::Read {
            path,
            source: io::Error::from_raw_os_error(libc::ENOENT),
        })
    }

    fn write(&self, key: &str, value: &str) -> Result<(), SysctlError> {
        self.recorder
            .enter(format!("write {key}={value}"))
            .map_err(|m| SysctlError::Write {
                path: std::path::PathBuf::from("/proc/sys").join(key),
                value: value.to_string(),
                source: injected_io(&m),
            })?;
        self.preset(key, value);
        Ok(())
    }
}

/// Fake [`Firewall`]: keeps the applied plans (after checking that the real
/// batch builder accepts them).
#[derive(Debug, Default)]
pub struct FakeFirewall {
    /// The call log and fault plan.
    pub recorder: Recorder,
    applied: Mutex<BTreeMap<String, FirewallPlan>>,
}

impl FakeFirewall {
    /// A fake with nothing applied.
    pub fn new() -> FakeFirewall {
        FakeFirewall::default()
    }

    /// The plan applied for a network, if any.
    pub fn applied(&self, network: &str) -> Option<FirewallPlan> {
        lock(&self.applied).get(network).cloned()
    }

    fn call(&self, line: String) -> Result<(), FirewallError> {
        self.recorder.enter(line).map_err(|m| FirewallError::Nft {
            action: "run a transaction".to_string(),
            detail: m,
        })
    }
}

impl Firewall for FakeFirewall {
    fn apply(&self, plan: &FirewallPlan) -> Result<(), FirewallError> {
        self.call(format!("apply {} {}", plan.network, plan.bridge))?;
        apply_batch(plan)?;
        if plan.mode != FirewallMode::Open {
            lock(&self.applied).insert(plan.network.clone(), plan.clone());
        }
        Ok(())
    }

    fn remove(&self, network: &str, bridge: &str) -> Result<(), FirewallError> {
        self.call(format!("remove {network} {bridge}"))?;
        lock(&self.applied).remove(network);
        Ok(())
    }

    fn exists(&self, network: &str) -> Result<bool, FirewallError> {
        self.call(format!("exists {network}"))?;
        Ok(lock(&self.applied).contains_key(network))
    }

    fn networks(&self) -> Result<Vec<String>, FirewallError> {
        self.call("networks".to_string())?;
        Ok(lock(&self.applied).keys().cloned().collect())
    }
}

/// Fake [`DnsmasqSupervisor`]: hands out pids from 10000 up; [`kill`]
/// simulates an unexpected death and calls the hook.
///
/// [`kill`]: FakeDnsmasq::kill
pub struct FakeDnsmasq {
    /// The call log and fault plan.
    pub recorder: Recorder,
    running: Mutex<BTreeMap<String, (DnsmasqSpec, i32)>>,
    next_pid: Mutex<i32>,
    /// Pids of dnsmasqs that died (adopting one fails).
    dead: Mutex<BTreeSet<i32>>,
    hook: Option<DeathHook>,
}

impl Default for FakeDnsmasq {
    fn default() -> Self {
        FakeDnsmasq::new(None)
    }
}

impl FakeDnsmasq {
    /// A fake reporting simulated deaths to `hook`.
    pub fn new(hook: Option<DeathHook>) -> FakeDnsmasq {
        FakeDnsmasq {
            recorder: Recorder::default(),
            running: Mutex::new(BTreeMap::new()),
            next_pid: Mutex::new(10000),
            dead: Mutex::new(BTreeSet::new()),
            hook,
        }
    }

    /// Simulates the network's dnsmasq dying on its own.
    pub fn kill(&self, network: &str) -> Option<i32> {
        let (_, pid) = lock(&self.running).remove(network)?;
        lock(&self.dead).insert(pid);
        if let Some(hook) = &self.hook {
            hook(DnsmasqDeath {
                network: network.to_string(),
                pid,
            });
        }
        Some(pid)
    }

    /// The spec a network's dnsmasq was started or adopted with.
    pub fn spec(&self, network: &str) -> Option<DnsmasqSpec> {
        lock(&self.running).get(network).map(|(s, _)| s.clone())
    }

    fn call(&self, line: String, network: &str) -> Result<(), DnsmasqError> {
        self.recorder.enter(line).map_err(|m| DnsmasqError::Start {
            network: network.to_string(),
            detail: m,
        })
    }
}

impl std::fmt::Debug for FakeDnsmasq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDnsmasq")
            .field("recorder", &self.recorder)
            .field("running", &self.running)
            .finish()
    }
}

impl DnsmasqSupervisor for FakeDnsmasq {
    fn start(&self, spec: &DnsmasqSpec) -> Result<i32, DnsmasqError> {
        self.call(format!("start {}", spec.network), &spec.network)?;
        let mut running = lock(&self.running);
        if let Some((_, pid)) = running.get(&spec.network) {
            return Err(DnsmasqError::AlreadyRunning {
                network: spec.network.clone(),
                pid: *pid,
            });
        }
        let pid = {
            let mut next = lock(&self.next_pid);
            *next += 1;
            *next
        };
        running.insert(spec.network.clone(), (spec.clone(), pid));
        Ok(pid)
    }

    fn adopt(&self, spec: &DnsmasqSpec, pid: i32) -> Result<(), DnsmasqError> {
        self.call(format!("adopt {} {pid}", spec.network), &spec.network)?;
        if lock(&self.dead).contains(&pid) {
            return Err(DnsmasqError::NotOurs {
                pid,
                conf: spec.conf_file.clone(),
            });
        }
        lock(&self.running).insert(spec.network.clone(), (spec.clone(), pid));
        Ok(())
    }

    fn reload(&self, network: &str) -> Result<(), DnsmasqError> {
        self.call(format!("reload {network}"), network)?;
        if lock(&self.running).contains_key(network) {
            Ok(())
        } else {
            Err(DnsmasqError::NotRunning(network.to_string()))
        }
    }

    fn stop(&self, network: &str) -> Result<(), DnsmasqError> {
        self.call(format!("stop {network}"), network)?;
        lock(&self.running).remove(network);
        Ok(())
    }

    fn pid(&self, network: &str) -> Option<i32> {
        lock(&self.running).get(network).map(|(_, p)| *p)
    }
}

/// A death hook that collects reports, for tests.
pub fn collecting_hook() -> (DeathHook, Arc<Mutex<Vec<DnsmasqDeath>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let hook: DeathHook = Arc::new(move |d| lock(&sink).push(d));
    (hook, seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn bridge(name: &str) -> BridgeSpec {
        BridgeSpec {
            name: name.into(),
            mac: None,
            mtu: None,
            stp: true,
            forward_delay: Duration::ZERO,
        }
    }

    #[test]
    fn netlink_fake_models_and_records() {
        let nl = FakeNetlink::new();
        nl.create_bridge(&bridge("virbr0")).unwrap();
        assert!(nl.create_bridge(&bridge("virbr0")).unwrap_err().is_exists());
        nl.add_address(
            "virbr0",
            "192.168.122.1/24".parse().unwrap(),
            AddressOptions::default(),
        )
        .unwrap();
        nl.set_up("virbr0", true).unwrap();
        let eth = nl.add_existing("eth0", None);
        nl.add_route(&RouteSpec {
            destination: "10.0.0.0/8".parse().unwrap(),
            gateway: None,
            device: Some("eth0".into()),
            metric: None,
        })
        .unwrap();
        let collision = crate::netlink::check_route_collision_with(
            &nl,
            "virbr1",
            &["10.0.0.1/8".parse().unwrap()],
            &[],
        )
        .unwrap();
        assert_eq!(
            collision.unwrap_err().to_string(),
            "Network is already in use by interface eth0"
        );
        assert_eq!(nl.routes(None).unwrap()[0].oif, Some(eth));
        assert!(nl.link("virbr0").unwrap().unwrap().up);
        assert_eq!(
            nl.recorder.calls(),
            vec![
                "create_bridge virbr0",
                "create_bridge virbr0",
                "add_address virbr0 192.168.122.1/24",
                "set_up virbr0 up",
                "add_route 10.0.0.0/8 dev eth0",
            ]
        );
        nl.delete_link("virbr0").unwrap();
        assert!(nl.addresses(None).unwrap().is_empty());
    }

    #[test]
    fn faults_are_injected_by_number_and_by_prefix() {
        let nl = FakeNetlink::new();
        nl.recorder.fail_at(2);
        nl.create_bridge(&bridge("a0")).unwrap();
        let err = nl.create_bridge(&bridge("b0")).unwrap_err();
        assert!(
            err.to_string().contains("injected failure at call 2"),
            "{err}"
        );
        assert!(
            nl.link("b0").unwrap().is_none(),
            "a failed call changes nothing"
        );
        nl.create_bridge(&bridge("c0")).unwrap();

        let sys = FakeSysctl::new();
        sys.recorder.fail_on("write net/ipv6");
        sys.write("net/ipv4/ip_forward", "1").unwrap();
        assert!(sys.write("net/ipv6/conf/all/forwarding", "1").is_err());
        assert_eq!(sys.value("net/ipv4/ip_forward").as_deref(), Some("1"));
        sys.recorder.heal();
        sys.write("net/ipv6/conf/all/forwarding", "1").unwrap();

        let fw = FakeFirewall::new();
        fw.recorder.fail_at(1);
        let plan = FirewallPlan::new("default", "virbr0", FirewallMode::Isolated);
        assert!(fw.apply(&plan).is_err());
        fw.apply(&plan).unwrap();
        assert!(fw.exists("default").unwrap());
        fw.remove("default", "virbr0").unwrap();
        assert!(fw.networks().unwrap().is_empty());
    }

    #[test]
    fn dnsmasq_fake_reports_simulated_deaths() {
        let (hook, seen) = collecting_hook();
        let d = FakeDnsmasq::new(Some(hook));
        let spec = DnsmasqSpec {
            network: "default".into(),
            binary: "dnsmasq".into(),
            conf_file: "/x/default.conf".into(),
            pid_file: "/x/default.pid".into(),
            dhcp_script: None,
            env: Vec::new(),
        };
        let pid = d.start(&spec).unwrap();
        assert!(matches!(
            d.start(&spec),
            Err(DnsmasqError::AlreadyRunning { .. })
        ));
        d.reload("default").unwrap();
        assert_eq!(d.kill("default"), Some(pid));
        assert_eq!(lock(&seen).len(), 1);
        assert!(d.reload("default").is_err());
        assert_eq!(d.pid("default"), None);
        assert_eq!(
            d.recorder.calls(),
            vec![
                "start default",
                "start default",
                "reload default",
                "reload default"
            ]
        );
    }
}
