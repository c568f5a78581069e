//! Starting and stopping a network on the host, one forward-mode family at a
//! time.
//!
//! A start reads top to bottom like libvirt's: route-collision check →
//! bridge (with MAC, MTU, STP, forward delay) → IPv6 sysctls of the bridge →
//! addresses → up → static routes → forwarding sysctls → firewall (one
//! transaction) and dnsmasq, side by side → bandwidth. Every step that
//! changes the host is pushed on a list of [`SetupStep`]s as soon as it
//! succeeded; if a later step fails, the list is undone in reverse and the
//! start reports the failure. The list is what the status file records, so
//! a stop (or a restarted daemon) undoes exactly what was done.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use virtnet_conf::{ForwardDevice, ForwardIfDef, ForwardMode, NetworkDef, PciAddress};
use virtnet_host::IpPrefix;
use virtnet_host::MacAddr as HostMac;
use virtnet_host::bandwidth::{Bandwidth as HostBandwidth, Rate as HostRate};
use virtnet_host::dnsmasq::DnsmasqSpec;
use virtnet_host::firewall::{FirewallMode, FirewallPlan, HostServices, NatOptions};
use virtnet_host::netlink::{
    AddressOptions, BridgeSpec, NetlinkError, RouteSpec, check_route_collision_with,
};
use virtnet_host::sysctl;

use crate::error::{Error, Result};
use crate::host::Host;
use crate::status::SetupStep;
use crate::store::{self, Paths};

/// What a start or stop needs besides the definition.
pub struct SetupContext<'a> {
    /// Host effects.
    pub host: &'a Host,
    /// Directories.
    pub paths: &'a Paths,
    /// dnsmasq's `--dhcp-script` (the lease helper), if any.
    pub dhcp_script: Option<&'a Path>,
}

/// dnsmasq's files for one network.
pub struct DnsmasqPaths {
    /// `STATE/dnsmasq/NAME.conf`.
    pub conf: PathBuf,
    /// `RUN/network/NAME.pid`.
    pub pid: PathBuf,
}

impl SetupContext<'_> {
    /// Where a network's dnsmasq files live.
    pub fn dnsmasq_paths(&self, network: &str) -> DnsmasqPaths {
        DnsmasqPaths {
            conf: self.paths.dnsmasq_dir().join(format!("{network}.conf")),
            pid: self.paths.status_dir().join(format!("{network}.pid")),
        }
    }

    /// How dnsmasq is run for `def`.
    pub fn dnsmasq_spec(&self, def: &NetworkDef) -> Result<DnsmasqSpec> {
        let p = self.dnsmasq_paths(&def.name);
        let script = self.dhcp_script.map(|s| s.display().to_string());
        let env = match &script {
            Some(s) => {
                let mut cmd = virtnet_dnsmasq::command_line(def, &p.conf.display().to_string(), s)?;
                cmd.env.push((
                    "VIRTNET_LEASES_DIR".to_string(),
                    self.paths.dnsmasq_dir().display().to_string(),
                ));
                cmd.env
            }
            None => Vec::new(),
        };
        Ok(DnsmasqSpec {
            network: def.name.clone(),
            binary: self.host.dnsmasq_binary.clone(),
            conf_file: p.conf,
            pid_file: p.pid,
            dhcp_script: self.dhcp_script.map(Path::to_path_buf),
            env,
        })
    }
}

/// Whether a definition can be started: a direct-mode network needs a
/// device pool (`<interface>`s or a `<pf>`), as libvirt requires.
pub fn check_supported(def: &NetworkDef) -> Result<()> {
    let mode = def.forward.mode;
    let direct = mode.is_direct() && !(mode == ForwardMode::Bridge && def.bridge.is_some());
    if direct && def.forward.ifs.is_empty() && def.forward.pfs.is_empty() {
        return Err(Error::Internal(format!(
            "network '{}' uses a direct mode, but has no forward dev and no interface pool",
            def.name
        )));
    }
    Ok(())
}

/// libvirt's `networkCreateInterfacePool`: for a network with a `<pf>`,
/// the pool is the PF's virtual functions, found at start (network devices
/// for direct modes, PCI addresses for hostdev). The live definition holds
/// them; `net-dumpxml --inactive` does not show them.
pub fn create_interface_pool(ctx: &SetupContext<'_>, def: &mut NetworkDef) -> Result<()> {
    let Some(pf) = def.forward.pfs.first().map(|p| p.dev.clone()) else {
        return Ok(());
    };
    if !def.forward.ifs.is_empty() {
        return Ok(());
    }
    let vfs = ctx
        .host
        .sriov
        .virtual_functions(&pf)
        .map_err(|e| Error::host(&def.name, e))?;
    let hostdev = def.forward.mode == ForwardMode::Hostdev;
    for vf in vfs {
        let device = if hostdev {
            ForwardDevice::Pci(PciAddress {
                domain: vf.address.domain,
                bus: u32::from(vf.address.bus),
                slot: u32::from(vf.address.slot),
                function: u32::from(vf.address.function),
            })
        } else {
            match vf.netdev {
                Some(n) => ForwardDevice::Netdev(n),
                None => continue,
            }
        };
        def.forward.ifs.push(ForwardIfDef {
            device,
            connections: 0,
        });
    }
    if def.forward.ifs.is_empty() {
        return Err(Error::Internal(format!(
            "No usable Vf's present on SRIOV PF {pf}"
        )));
    }
    Ok(())
}

/// libvirt's `<bandwidth>` in the host layer's terms (0 = not given).
pub fn host_bandwidth(bw: &virtnet_conf::Bandwidth) -> HostBandwidth {
    let rate = |r: &virtnet_conf::BandwidthRate| HostRate {
        average: r.average,
        peak: (r.peak > 0).then_some(r.peak),
        burst: (r.burst > 0).then_some(r.burst),
        floor: (r.floor > 0).then_some(r.floor),
    };
    HostBandwidth {
        inbound: bw.inbound.as_ref().map(rate),
        outbound: bw.outbound.as_ref().map(rate),
    }
}

/// Whether the network runs on an Open vSwitch bridge.
pub fn is_openvswitch(def: &NetworkDef) -> bool {
    def.virt_port_profile
        .as_ref()
        .is_some_and(|p| p.virt_port_type == virtnet_conf::VirtPortType::Openvswitch)
}

/// Starts `def` on the host and returns what was done. On failure
/// everything done so far has been undone.
pub fn start(ctx: &SetupContext<'_>, def: &NetworkDef) -> Result<Vec<SetupStep>> {
    check_supported(def)?;
    let mut steps = Vec::new();
    let result = if def.forward.mode.is_virtual() {
        start_virtual(ctx, def, &mut steps)
    } else {
        start_host_bridge(ctx, def)
    };
    match result {
        Ok(()) => Ok(steps),
        Err(e) => {
            for err in stop(ctx, &def.name, &steps) {
                log::warn!("network '{}': rollback after failed start: {err}", def.name);
            }
            Err(e)
        }
    }
}

/// Undoes `steps` in reverse. Teardown keeps going: every failure is
/// collected and returned, none stops the rest.
pub fn stop(ctx: &SetupContext<'_>, network: &str, steps: &[SetupStep]) -> Vec<Error> {
    let host = ctx.host;
    let mut errors = Vec::new();
    let mut timer = StepTimer {
        network,
        last: std::time::Instant::now(),
    };
    for step in steps.iter().rev() {
        let res = match step {
            SetupStep::Dnsmasq { .. } => {
                let res = host
                    .dnsmasq
                    .stop(network)
                    .map_err(|e| Error::host(network, e));
                let _ = store::remove_if_exists(&ctx.dnsmasq_paths(network).pid);
                res
            }
            SetupStep::Firewall { bridge } => host
                .firewall
                .remove(network, bridge)
                .map_err(|e| Error::host(network, e)),
            SetupStep::Bridge { name } => match host.netlink.delete_link(name) {
                Err(e) if !e.is_not_found() => Err(Error::host(network, e)),
                _ => Ok(()),
            },
            SetupStep::Bandwidth { device } => host
                .bandwidth
                .clear(device)
                .map_err(|e| Error::host(network, e)),
        };
        if let Err(e) = res {
            errors.push(e);
        }
        timer.done(match step {
            SetupStep::Dnsmasq { .. } => "stopping dnsmasq",
            SetupStep::Firewall { .. } => "removing firewall rules",
            SetupStep::Bridge { .. } => "deleting the bridge",
            SetupStep::Bandwidth { .. } => "removing bandwidth",
        });
    }
    errors
}

/// Networks on host devices: `<forward mode='bridge'>` with `<bridge
/// name=…>` (a Linux or Open vSwitch bridge the host already has), the
/// macvtap modes and hostdev. Nothing is set up; the bridge must exist.
fn start_host_bridge(ctx: &SetupContext<'_>, def: &NetworkDef) -> Result<()> {
    let Some(bridge) = def.bridge.as_deref() else {
        return Ok(());
    };
    if is_openvswitch(def) {
        return match ctx.host.ovs.bridge_exists(bridge) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::OperationFailed(format!(
                "network '{}': Open vSwitch bridge '{bridge}' does not exist",
                def.name
            ))),
            Err(e) => Err(Error::host(&def.name, e)),
        };
    }
    match ctx.host.netlink.link(bridge) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::OperationFailed(format!(
            "network '{}': host bridge '{bridge}' does not exist",
            def.name
        ))),
        Err(e) => Err(Error::host(&def.name, e)),
    }
}

fn prefix_of(network: &str, address: IpAddr, prefix: Option<u32>) -> Result<IpPrefix> {
    let p = prefix
        .and_then(|p| u8::try_from(p).ok())
        .ok_or_else(|| Error::Internal(format!("network '{network}': no prefix for {address}")))?;
    IpPrefix::new(address, p)
        .map_err(|e| Error::Internal(format!("network '{network}': address {address}/{p}: {e}")))
}

/// The firewall plan of a virtual network (isolated, nat, route, open).
pub fn firewall_plan(def: &NetworkDef) -> Result<FirewallPlan> {
    let bridge = def.bridge.as_deref().unwrap_or_default();
    let mode = match def.forward.mode {
        ForwardMode::Nat => FirewallMode::Nat,
        ForwardMode::Route => FirewallMode::Route,
        ForwardMode::Open => FirewallMode::Open,
        _ => FirewallMode::Isolated,
    };
    let mut plan = FirewallPlan::new(&def.name, bridge, mode);
    for ip in &def.ips {
        let p = prefix_of(&def.name, ip.address, ip.prefix_len())?;
        if ip.is_ipv4() {
            plan.ipv4.push(p);
        } else {
            plan.ipv6.push(p);
        }
    }
    plan.ipv6_without_gateway = def.ipv6nogw && plan.ipv6.is_empty();
    plan.nat = NatOptions {
        address_start: def.forward.nat_addr.map(|a| a.start),
        address_end: def.forward.nat_addr.map(|a| a.end),
        port_start: def
            .forward
            .nat_port
            .and_then(|p| u16::try_from(p.start).ok())
            .unwrap_or(0),
        port_end: def
            .forward
            .nat_port
            .and_then(|p| u16::try_from(p.end).ok())
            .unwrap_or(0),
        ipv6: def.forward.nat_ipv6.is_yes(),
    };
    plan.forward_dev = def.forward_if(0).map(str::to_string);
    let tftp = def.ipv4s().any(|ip| ip.tftproot.is_some());
    plan.services_v4 = HostServices::libvirt(tftp);
    plan.services_v6 = if plan.ipv6.is_empty() {
        HostServices::none()
    } else {
        HostServices::libvirt(false)
    };
    Ok(plan)
}

/// Logs how long each step of a start took (at debug level).
struct StepTimer<'a> {
    network: &'a str,
    last: std::time::Instant,
}

impl StepTimer<'_> {
    fn done(&mut self, step: &str) {
        let now = std::time::Instant::now();
        log::debug!(
            "network '{}': {step} took {:.2} ms",
            self.network,
            now.duration_since(self.last).as_secs_f64() * 1000.0
        );
        self.last = now;
    }
}

fn start_virtual(
    ctx: &SetupContext<'_>,
    def: &NetworkDef,
    steps: &mut Vec<SetupStep>,
) -> Result<()> {
    let host = ctx.host;
    let name = def.name.as_str();
    let mut timer = StepTimer {
        network: name,
        last: std::time::Instant::now(),
    };
    let bridge = def
        .bridge
        .as_deref()
        .ok_or_else(|| Error::Internal(format!("network '{name}' has no bridge name")))?;
    let herr = |e: &dyn std::fmt::Display| Error::host(name, e);

    // Validate against the host: the subnets must not already be routed
    // elsewhere.
    let mut subnets = Vec::new();
    for ip in &def.ips {
        subnets.push(prefix_of(name, ip.address, ip.prefix_len())?);
    }
    let mut route_dests = Vec::new();
    for r in &def.routes {
        route_dests.push(prefix_of(name, r.address, r.prefix_len())?);
    }
    match check_route_collision_with(&*host.netlink, bridge, &subnets, &route_dests) {
        Ok(Ok(())) => {}
        Ok(Err(collision)) => return Err(Error::Internal(collision.to_string())),
        Err(e) => return Err(herr(&e)),
    }
    timer.done("route collision check");

    // Bridge, with its MAC, MTU, STP and forward delay.
    let spec = BridgeSpec {
        name: bridge.to_string(),
        mac: def.mac.map(|m| HostMac(m.0)),
        mtu: def.mtu,
        stp: def.stp,
        forward_delay: Duration::from_secs(def.delay),
    };
    host.netlink
        .create_bridge(&spec)
        .map_err(|e| bridge_create_error(name, bridge, &e))?;
    steps.push(SetupStep::Bridge {
        name: bridge.to_string(),
    });
    timer.done("bridge");

    // IPv6 on the bridge: off unless the network has IPv6 addresses; never
    // accept router advertisements or autoconfigure (the bridge is a router).
    let has_ipv6 = def.ipv6s().next().is_some();
    if host.sysctl.read(sysctl::IPV6_FORWARD).is_ok() {
        let sets = [
            (
                sysctl::disable_ipv6_key(bridge),
                if has_ipv6 { "0" } else { "1" },
            ),
            (sysctl::accept_ra_key(bridge), "0"),
            (sysctl::autoconf_key(bridge), "0"),
        ];
        for (key, value) in sets {
            host.sysctl.write(&key, value).map_err(|e| herr(&e))?;
        }
    }
    timer.done("bridge sysctls");

    // Addresses. IPv6 addresses skip duplicate address detection: the
    // bridge is new and ours, and dnsmasq must be able to bind at once.
    for p in &subnets {
        let opts = AddressOptions {
            nodad: p.family() == virtnet_host::Family::V6,
            ..AddressOptions::default()
        };
        host.netlink
            .add_address(bridge, *p, opts)
            .map_err(|e| herr(&e))?;
    }

    host.netlink.set_up(bridge, true).map_err(|e| herr(&e))?;
    timer.done("addresses and up");

    for (r, dest) in def.routes.iter().zip(&route_dests) {
        let route = RouteSpec {
            destination: dest.network(),
            gateway: Some(r.gateway),
            device: Some(bridge.to_string()),
            metric: r.metric,
        };
        host.netlink.add_route(&route).map_err(|e| herr(&e))?;
    }

    // Forwarding, for the modes that route (open too, as libvirt does).
    if matches!(
        def.forward.mode,
        ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open
    ) {
        if def.ipv4s().next().is_some() {
            host.sysctl
                .write(sysctl::IPV4_FORWARD, "1")
                .map_err(|e| herr(&e))?;
        }
        if has_ipv6 {
            host.sysctl
                .write(sysctl::IPV6_FORWARD, "1")
                .map_err(|e| herr(&e))?;
        }
    }

    timer.done("routes and forwarding");

    // The firewall (one transaction) and dnsmasq do not depend on each
    // other: set them up side by side. The bridge has no ports yet, so no
    // guest traffic passes before the rules are in.
    let plan = match def.forward.mode {
        ForwardMode::Open => None,
        _ => Some(firewall_plan(def)?),
    };
    let wants_dnsmasq = virtnet_dnsmasq::needs_dnsmasq(def);
    let (firewall, dnsmasq) = std::thread::scope(|s| {
        let dnsmasq = wants_dnsmasq.then(|| s.spawn(|| start_dnsmasq(ctx, def)));
        let firewall = plan
            .as_ref()
            .map(|p| host.firewall.apply(p).map_err(|e| herr(&e)));
        let dnsmasq = dnsmasq.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::Internal("starting dnsmasq panicked".into())))
        });
        (firewall, dnsmasq)
    });
    if let Some(Ok(())) = firewall {
        steps.push(SetupStep::Firewall {
            bridge: bridge.to_string(),
        });
    }
    if let Some(Ok(pid)) = dnsmasq {
        steps.push(SetupStep::Dnsmasq { pid });
    }
    if let Some(Err(e)) = firewall {
        return Err(e);
    }
    if let Some(Err(e)) = dnsmasq {
        return Err(e);
    }
    timer.done("firewall and dnsmasq");

    // Bandwidth of the whole network, with the hierarchy port floors use.
    if let Some(bw) = &def.bandwidth {
        let shaping = host_bandwidth(bw).network_bridge(bridge);
        if !shaping.is_empty() {
            steps.push(SetupStep::Bandwidth {
                device: bridge.to_string(),
            });
            host.bandwidth.set(&shaping).map_err(|e| herr(&e))?;
            timer.done("bandwidth");
        }
    }
    Ok(())
}

/// Writes a network's dnsmasq files and starts dnsmasq; returns its pid.
pub fn start_dnsmasq(ctx: &SetupContext<'_>, def: &NetworkDef) -> Result<i32> {
    write_dnsmasq_files(ctx, def)?;
    let spec = ctx.dnsmasq_spec(def)?;
    // dnsmasq's errors name the network already.
    ctx.host.dnsmasq.start(&spec).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("inotify") {
            // Every dnsmasq holds an inotify instance; the per-user limit
            // (128 by default) caps how many networks can run.
            Error::System(format!(
                "{msg} (each network's dnsmasq needs an inotify instance: raise the \
                 sysctl fs.inotify.max_user_instances)"
            ))
        } else {
            Error::System(msg)
        }
    })
}

/// Writes the conf file, hostsfile and addnhosts of `def`.
pub fn write_dnsmasq_files(ctx: &SetupContext<'_>, def: &NetworkDef) -> Result<()> {
    let p = ctx.dnsmasq_paths(&def.name);
    let opts = virtnet_dnsmasq::Options::new(ctx.paths.dnsmasq_dir().display().to_string())
        .with_pid_file(p.pid.display().to_string());
    let files = virtnet_dnsmasq::generate(def, &opts)?;
    let io = |path: &str, e: std::io::Error| {
        Error::host(&def.name, format!("cannot write '{path}': {e}"))
    };
    store::write_atomic(
        Path::new(&files.hostsfile_path),
        files.hostsfile_contents().as_bytes(),
        0o644,
    )
    .map_err(|e| io(&files.hostsfile_path, e))?;
    store::write_atomic(
        Path::new(&files.addnhosts_path),
        files.addnhosts.as_bytes(),
        0o644,
    )
    .map_err(|e| io(&files.addnhosts_path, e))?;
    store::write_atomic(Path::new(&files.conf_path), files.conf.as_bytes(), 0o600)
        .map_err(|e| io(&files.conf_path, e))?;
    Ok(())
}

/// Removes a network's dnsmasq files (on undefine, as libvirt does).
pub fn remove_dnsmasq_files(paths: &Paths, def: &NetworkDef) {
    let dir = paths.dnsmasq_dir();
    let opts = virtnet_dnsmasq::Options::new(dir.display().to_string());
    let mut files = vec![dir.join(format!("{}.conf", def.name))];
    if let Ok(f) = virtnet_dnsmasq::generate(def, &opts) {
        files.push(PathBuf::from(f.hostsfile_path));
        files.push(PathBuf::from(f.addnhosts_path));
    }
    if let Some(bridge) = &def.bridge {
        files.push(dir.join(format!("{bridge}.status")));
    }
    for f in files {
        if let Err(e) = store::remove_if_exists(&f) {
            log::warn!("network '{}': cannot remove {}: {e}", def.name, f.display());
        }
    }
}

/// A refused bridge creation, in libvirt's words ("error creating bridge
/// interface virbr0: File exists"): scripts and people match that text.
/// Other failures (no netlink socket, no reply) name the network.
fn bridge_create_error(network: &str, bridge: &str, e: &NetlinkError) -> Error {
    match e {
        NetlinkError::Kernel { source, detail, .. } => Error::System(format!(
            "error creating bridge interface {bridge}: {source}{}",
            detail
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )),
        other => Error::host(network, other),
    }
}
