//! The network driver: the list of networks, their lifecycle (define,
//! undefine, create, start, destroy, autostart) and their persistence, with
//! libvirt's semantics and messages.
//!
//! One lock guards the list. Operations are short (a start is a handful of
//! netlink messages, one nft transaction and a dnsmasq spawn), so callers are
//! simply serialized; events are sent while the lock is held, so every
//! listener sees them in the order the changes happened.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use virtnet_conf::metadata::MetadataType;
use virtnet_conf::update::{UpdateCommand, UpdateSection};
use virtnet_conf::{FormatFlags, NetworkDef, PortDef, PortDeviceKind, Uuid, defaults};
use virtnet_host::dnsmasq::DnsmasqDeath;

use crate::error::{Error, Result};
use crate::events::{EventEmitter, EventKind, Lifecycle, NetworkEvent};
use crate::hooks::{self, HookOp};
use crate::host::Host;
use crate::ports;
use crate::reaper::Reaper;
use crate::setup::{self, SetupContext};
use crate::status::{NetworkStatus, SetupStep};
use crate::store::{self, Paths};
use virtnet_host::bandwidth::FloorPool;

/// libvirt's refusal of a persistent metadata change on a transient network.
const NO_PERSISTENT_CONFIG: &str = "transient networks do not have any persistent config";

/// `VIR_NETWORK_XML_INACTIVE`.
pub const XML_INACTIVE: u32 = 1;

/// The header libvirt puts on the configuration files it writes.
fn config_header(name: &str) -> String {
    format!(
        "<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n\
         OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n  \
         virsh net-edit {name}\nor other application using the libvirt API.\n-->\n\n"
    )
}

/// The network Debian's libvirt-daemon-config-network installs.
pub const DEFAULT_NETWORK_XML: &str = "<network>
  <name>default</name>
  <bridge name='virbr0'/>
  <forward/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
";

/// How the driver is set up.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Directories.
    pub paths: Paths,
    /// The lease helper dnsmasq runs (`--dhcp-script`).
    pub dhcp_script: Option<PathBuf>,
    /// On the very first start (no configuration directory yet), define
    /// and autostart the `default` network.
    pub default_network: bool,
}

/// A reference to a network as clients hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRef {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: Uuid,
}

/// The state of one network as `net-list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Name and UUID.
    pub net: NetRef,
    /// Running.
    pub active: bool,
    /// Has a configuration file.
    pub persistent: bool,
    /// Starts with the daemon.
    pub autostart: bool,
}

/// One network.
#[derive(Debug, Clone)]
struct NetworkObj {
    /// The live definition while active, else the configuration.
    def: NetworkDef,
    /// The configuration to use at the next start, when it was redefined
    /// while active.
    new_def: Option<NetworkDef>,
    persistent: bool,
    autostart: bool,
    /// What start did, while active.
    setup: Option<Vec<SetupStep>>,
    /// Recent dnsmasq respawns, to stop respawning a dnsmasq that keeps dying.
    respawns: Vec<Instant>,
    /// Ports of the running network, as allocated and realised.
    ports: Vec<PortDef>,
    /// Floor accounting of the running network's ports.
    floors: Option<FloorPool>,
}

impl NetworkObj {
    fn is_active(&self) -> bool {
        self.setup.is_some()
    }

    fn uuid(&self) -> Uuid {
        self.def.uuid.unwrap_or(Uuid([0; 16]))
    }

    fn net_ref(&self) -> NetRef {
        NetRef {
            name: self.def.name.clone(),
            uuid: self.uuid(),
        }
    }

    /// The persistent configuration (what `--inactive` shows).
    fn config(&self) -> &NetworkDef {
        self.new_def.as_ref().unwrap_or(&self.def)
    }
}

type Networks = BTreeMap<String, NetworkObj>;

/// The network driver.
pub struct Driver {
    cfg: DriverConfig,
    host: Host,
    /// Deletes port TAPs in the background, many at a time.
    reaper: Arc<Reaper>,
    nets: Mutex<Networks>,
    rng: Mutex<StdRng>,
    /// Lifecycle and metadata events.
    pub events: EventEmitter,
}

const RESPAWN_WINDOW: Duration = Duration::from_secs(60);
const RESPAWN_LIMIT: usize = 5;

impl Driver {
    /// A driver with no networks loaded yet; see [`Driver::load`].
    pub fn new(cfg: DriverConfig, host: Host) -> Driver {
        Driver {
            cfg,
            reaper: Reaper::start(host.netlink.clone()),
            host,
            nets: Mutex::new(BTreeMap::new()),
            rng: Mutex::new(StdRng::from_os_rng()),
            events: EventEmitter::default(),
        }
    }

    /// The directories in use.
    pub fn paths(&self) -> &Paths {
        &self.cfg.paths
    }

    fn lock(&self) -> MutexGuard<'_, Networks> {
        self.nets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ctx(&self) -> SetupContext<'_> {
        SetupContext {
            host: &self.host,
            paths: &self.cfg.paths,
            dhcp_script: self.cfg.dhcp_script.as_deref(),
        }
    }

    fn emit(&self, obj: &NetworkObj, what: Lifecycle) {
        self.events.emit(NetworkEvent {
            name: obj.def.name.clone(),
            uuid: obj.uuid(),
            kind: EventKind::Lifecycle(what),
        });
    }

    // ----- startup -------------------------------------------------------

    /// Loads configuration and status, re-adopts running networks, creates
    /// the default network on the very first start, and starts autostart
    /// networks. Problems with single networks are logged, not fatal.
    pub fn load(&self) -> Result<()> {
        let paths = &self.cfg.paths;
        let first_start = !paths.networks_dir().exists();
        paths
            .create_all()
            .map_err(|e| Error::Internal(format!("cannot create directories: {e}")))?;
        if let Some(dir) = paths.dnsmasq_dir_blocked_at() {
            log::warn!(
                "{} is not searchable by others: dnsmasq (running as nobody) cannot read \
                 static DHCP hosts or DNS hosts below it",
                dir.display()
            );
        }
        {
            let mut nets = self.lock();
            self.load_configs(&mut nets);
            self.load_status(&mut nets);
            self.adopt_all(&mut nets);
        }
        if first_start && self.cfg.default_network {
            self.create_default_network();
        }
        self.autostart();
        Ok(())
    }

    fn load_configs(&self, nets: &mut Networks) {
        let paths = &self.cfg.paths;
        for (name, path) in xml_files(&paths.networks_dir()) {
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    log::error!("cannot read {}: {e}", path.display());
                    continue;
                }
            };
            let def = match NetworkDef::parse(&text) {
                Ok(d) => d,
                Err(e) => {
                    log::error!("ignoring {}: {e}", path.display());
                    continue;
                }
            };
            if def.name != name {
                log::error!(
                    "ignoring {}: Network config filename '{name}' does not match network name '{}'",
                    path.display(),
                    def.name
                );
                continue;
            }
            let autostart = paths.autostart_link(&name).exists();
            nets.insert(
                name,
                NetworkObj {
                    def,
                    new_def: None,
                    persistent: true,
                    autostart,
                    setup: None,
                    respawns: Vec::new(),
                    ports: Vec::new(),
                    floors: None,
                },
            );
        }
    }

    fn load_status(&self, nets: &mut Networks) {
        for (name, path) in xml_files(&self.cfg.paths.status_dir()) {
            let status = match fs::read_to_string(&path)
                .map_err(|e| Error::Internal(e.to_string()))
                .and_then(|t| NetworkStatus::parse(&t))
            {
                Ok(s) => s,
                Err(e) => {
                    log::error!("ignoring status file {}: {e}", path.display());
                    continue;
                }
            };
            match nets.get_mut(&name) {
                Some(obj) => {
                    let config = std::mem::replace(&mut obj.def, status.def);
                    obj.new_def = Some(config);
                    obj.setup = Some(status.setup);
                }
                None => {
                    nets.insert(
                        name,
                        NetworkObj {
                            def: status.def,
                            new_def: None,
                            persistent: false,
                            autostart: false,
                            setup: Some(status.setup),
                            respawns: Vec::new(),
                            ports: Vec::new(),
                            floors: None,
                        },
                    );
                }
            }
        }
    }

    /// Checks every network recorded as running against the host and takes
    /// it over: nothing is set up twice; what vanished is repaired, or the
    /// network is marked inactive with the reason logged.
    fn adopt_all(&self, nets: &mut Networks) {
        let with_rules = match self.host.firewall.networks() {
            Ok(list) => Some(list),
            Err(e) => {
                log::warn!("cannot list firewall rules: {e}");
                None
            }
        };
        let names: Vec<String> = nets
            .iter()
            .filter(|(_, o)| o.is_active())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(obj) = nets.get_mut(&name) else {
                continue;
            };
            match self.adopt(obj, with_rules.as_deref()) {
                Ok((changed, rebuilt)) => {
                    log::info!("network '{name}': re-adopted");
                    let connections = obj.ports.len();
                    obj.floors = Some(floor_pool(&obj.def));
                    self.adopt_ports(obj, rebuilt);
                    if changed || rebuilt || obj.ports.len() != connections {
                        self.save_status(obj);
                    }
                }
                Err(e) => {
                    log::error!("network '{name}': marked inactive: {e}");
                    self.mark_inactive(nets, &name);
                }
            }
        }
    }

    /// Adopts one running network; returns whether its setup record changed
    /// and whether it had to be set up again (its bridge had vanished).
    fn adopt(&self, obj: &mut NetworkObj, with_rules: Option<&[String]>) -> Result<(bool, bool)> {
        let ctx = self.ctx();
        let name = obj.def.name.clone();
        let steps = obj.setup.clone().unwrap_or_default();
        let mut changed = false;

        // A bridge deleted behind our back takes the guests' links with it:
        // set the whole network up again.
        for step in &steps {
            if let SetupStep::Bridge { name: br } = step {
                let present = self
                    .host
                    .netlink
                    .link(br)
                    .map_err(|e| Error::host(&name, e))?;
                if present.is_none() {
                    log::warn!("network '{name}': bridge '{br}' vanished; setting it up again");
                    // Take over the old dnsmasq first, so the teardown stops
                    // it instead of leaving it holding the network's address.
                    for step in &steps {
                        if let SetupStep::Dnsmasq { pid } = step {
                            if let Ok(spec) = ctx.dnsmasq_spec(&obj.def) {
                                let _ = self.host.dnsmasq.adopt(&spec, *pid);
                            }
                        }
                    }
                    for e in setup::stop(&ctx, &name, &steps) {
                        log::warn!("network '{name}': {e}");
                    }
                    obj.setup = Some(setup::start(&ctx, &obj.def)?);
                    return Ok((true, true));
                }
            }
        }

        let mut new_steps = Vec::with_capacity(steps.len());
        for step in steps {
            match step {
                SetupStep::Firewall { bridge } => {
                    let present = with_rules.is_some_and(|l| l.iter().any(|n| n == &name));
                    if !present {
                        log::warn!("network '{name}': firewall rules missing; installing them");
                        let plan = setup::firewall_plan(&obj.def)?;
                        self.host
                            .firewall
                            .apply(&plan)
                            .map_err(|e| Error::host(&name, e))?;
                    }
                    new_steps.push(SetupStep::Firewall { bridge });
                }
                SetupStep::Dnsmasq { pid } => {
                    let spec = ctx.dnsmasq_spec(&obj.def)?;
                    let pid = match self.host.dnsmasq.adopt(&spec, pid) {
                        Ok(()) => pid,
                        Err(e) => {
                            log::warn!("network '{name}': dnsmasq not adopted ({e}); starting it");
                            changed = true;
                            setup::start_dnsmasq(&ctx, &obj.def)?
                        }
                    };
                    new_steps.push(SetupStep::Dnsmasq { pid });
                }
                other => new_steps.push(other),
            }
        }
        obj.setup = Some(new_steps);
        Ok((changed, false))
    }

    /// Forgets that a network runs (after a failed adoption): its status
    /// file goes; a transient network disappears.
    fn mark_inactive(&self, nets: &mut Networks, name: &str) {
        let _ = store::remove_if_exists(&self.cfg.paths.network_status(name));
        let Some(obj) = nets.get_mut(name) else {
            return;
        };
        obj.setup = None;
        if !obj.persistent {
            nets.remove(name);
        } else if let Some(d) = obj.new_def.take() {
            obj.def = d;
        }
    }

    fn create_default_network(&self) {
        let mut xml = DEFAULT_NETWORK_XML.to_string();
        // When 192.168.122.0/24 is taken on this host, use the next free
        // 192.168.N.0/24 instead of failing to start.
        if let Some(n) = self.free_default_subnet() {
            if n != 122 {
                log::info!("192.168.122.0/24 is in use; the default network uses 192.168.{n}.0/24");
                xml = xml.replace("192.168.122.", &format!("192.168.{n}."));
            }
        }
        // When another bridge is already called virbr0 (libvirt's own
        // default network, say), take the first free virbrN.
        if matches!(self.host.netlink.link("virbr0"), Ok(Some(_))) {
            xml = xml.replace("  <bridge name='virbr0'/>\n", "");
        }
        match self.define_xml(&xml, 0) {
            Ok(net) => {
                if let Err(e) = self.set_autostart(&net, true) {
                    log::error!("cannot mark the default network autostart: {e}");
                }
            }
            Err(e) => log::error!("cannot define the default network: {e}"),
        }
    }

    fn free_default_subnet(&self) -> Option<u8> {
        let routes = self
            .host
            .netlink
            .routes(Some(virtnet_host::Family::V4))
            .ok()?;
        (122..=254u8).find(|n| {
            let Ok(p) = virtnet_host::IpPrefix::new(
                std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 168, *n, 0)),
                24,
            ) else {
                return false;
            };
            !routes.iter().any(|r| {
                r.destination.prefix() > 0
                    && (r.destination.contains(&p.addr()) || p.contains(&r.destination.addr()))
            })
        })
    }

    /// Starts every persistent autostart network that is not running.
    pub fn autostart(&self) {
        let names: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, o)| o.autostart && o.persistent && !o.is_active())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let net = match self.lookup_by_name(&name) {
                Ok(n) => n,
                Err(_) => continue,
            };
            match self.create(&net) {
                Ok(()) => log::info!("network '{name}': autostarted"),
                Err(e) => log::error!("network '{name}': autostart failed: {e}"),
            }
        }
    }

    /// A supervised dnsmasq died: start it again, unless the network is no
    /// longer running it or it keeps dying.
    pub fn on_dnsmasq_death(&self, death: DnsmasqDeath) {
        let mut nets = self.lock();
        let Some(obj) = nets.get_mut(&death.network) else {
            return;
        };
        let Some(steps) = obj.setup.as_mut() else {
            return;
        };
        let Some(slot) = steps.iter_mut().find_map(|s| match s {
            SetupStep::Dnsmasq { pid } if *pid == death.pid => Some(pid),
            _ => None,
        }) else {
            return;
        };
        let now = Instant::now();
        obj.respawns
            .retain(|t| now.duration_since(*t) < RESPAWN_WINDOW);
        if obj.respawns.len() >= RESPAWN_LIMIT {
            log::error!(
                "network '{}': dnsmasq (pid {}) died {} times within {:?}; not restarting it",
                death.network,
                death.pid,
                RESPAWN_LIMIT,
                RESPAWN_WINDOW
            );
            return;
        }
        obj.respawns.push(now);
        log::warn!(
            "network '{}': dnsmasq (pid {}) died; restarting it",
            death.network,
            death.pid
        );
        let ctx = SetupContext {
            host: &self.host,
            paths: &self.cfg.paths,
            dhcp_script: self.cfg.dhcp_script.as_deref(),
        };
        match setup::start_dnsmasq(&ctx, &obj.def) {
            Ok(pid) => {
                *slot = pid;
                self.save_status(obj);
            }
            Err(e) => log::error!("network '{}': cannot restart dnsmasq: {e}", death.network),
        }
    }

    // ----- lookups -------------------------------------------------------

    /// Finds a network by name.
    pub fn lookup_by_name(&self, name: &str) -> Result<NetRef> {
        self.lock()
            .get(name)
            .map(NetworkObj::net_ref)
            .ok_or_else(|| Error::NoNetworkName(name.to_string()))
    }

    /// Finds a network by UUID.
    pub fn lookup_by_uuid(&self, uuid: &Uuid) -> Result<NetRef> {
        self.lock()
            .values()
            .find(|o| o.uuid() == *uuid)
            .map(NetworkObj::net_ref)
            .ok_or_else(|| Error::NoNetworkUuid(uuid.to_string()))
    }

    fn find<'a>(nets: &'a mut Networks, net: &NetRef) -> Result<&'a mut NetworkObj> {
        nets.values_mut()
            .find(|o| o.uuid() == net.uuid)
            .ok_or_else(|| Error::NoNetwork {
                uuid: net.uuid.to_string(),
                name: net.name.clone(),
            })
    }

    /// Every network matching `flags` (`VIR_CONNECT_LIST_NETWORKS_*`, as in
    /// [`virtnet_rpc::protocol::list_networks`]; 0 = all).
    pub fn list_all(&self, flags: u32) -> Vec<NetworkInfo> {
        use virtnet_rpc::protocol::list_networks::*;
        // Each pair of flags filters one property; neither or both = any.
        let pick = |yes: u32, no: u32, value: bool| {
            let m = flags & (yes | no);
            m == 0 || (value && m & yes != 0) || (!value && m & no != 0)
        };
        self.lock()
            .values()
            .filter(|o| {
                pick(ACTIVE, INACTIVE, o.is_active())
                    && pick(PERSISTENT, TRANSIENT, o.persistent)
                    && pick(AUTOSTART, NO_AUTOSTART, o.autostart)
            })
            .map(|o| NetworkInfo {
                net: o.net_ref(),
                active: o.is_active(),
                persistent: o.persistent,
                autostart: o.autostart,
            })
            .collect()
    }

    /// The state of one network.
    pub fn info(&self, net: &NetRef) -> Result<NetworkInfo> {
        let mut nets = self.lock();
        let o = Self::find(&mut nets, net)?;
        Ok(NetworkInfo {
            net: o.net_ref(),
            active: o.is_active(),
            persistent: o.persistent,
            autostart: o.autostart,
        })
    }

    /// Names of active (`active`) or inactive networks, at most `max`.
    pub fn names(&self, active: bool, max: usize) -> Vec<String> {
        self.lock()
            .values()
            .filter(|o| o.is_active() == active)
            .take(max)
            .map(|o| o.def.name.clone())
            .collect()
    }

    /// The network's XML; `flags` may hold [`XML_INACTIVE`].
    pub fn xml_desc(&self, net: &NetRef, flags: u32) -> Result<String> {
        let mut nets = self.lock();
        let o = Self::find(&mut nets, net)?;
        if flags & XML_INACTIVE != 0 {
            Ok(o.config().to_xml(FormatFlags::INACTIVE))
        } else {
            Ok(o.def.to_xml(FormatFlags::ACTIVE))
        }
    }

    /// The network's bridge device.
    pub fn bridge_name(&self, net: &NetRef) -> Result<String> {
        let mut nets = self.lock();
        let o = Self::find(&mut nets, net)?;
        o.def.bridge.clone().ok_or_else(|| {
            Error::Internal(format!(
                "network '{}' does not have a bridge name.",
                o.def.name
            ))
        })
    }

    // ----- lifecycle -----------------------------------------------------

    /// Parses and completes a definition the way net-define and net-create
    /// do, checking it against the networks that exist.
    fn prepare(&self, nets: &Networks, xml: &str) -> Result<NetworkDef> {
        let mut def = NetworkDef::parse(xml)?;
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let uuid = defaults::assign_uuid(&mut def, &mut *rng);
        if let Some(o) = nets.values().find(|o| o.uuid() == uuid) {
            if o.def.name != def.name {
                return Err(Error::OperationFailed(format!(
                    "network '{}' is already defined with uuid {uuid}",
                    o.def.name
                )));
            }
        } else if let Some(o) = nets.get(&def.name) {
            return Err(Error::OperationFailed(format!(
                "network '{}' already exists with uuid {}",
                def.name,
                o.uuid()
            )));
        }
        // Bridge names taken: other networks' bridges and, for a generated
        // name, host devices too (an explicit name that a host device
        // already has is reported when the bridge is created).
        let others: Vec<&str> = nets
            .values()
            .filter(|o| o.def.name != def.name)
            .flat_map(|o| [Some(&o.def), o.new_def.as_ref()])
            .flatten()
            .filter_map(|d| d.bridge.as_deref())
            .collect();
        let generated = def.bridge.as_deref().is_none_or(|b| b.contains("%d"));
        let host_links: Vec<String> = if generated {
            self.host
                .netlink
                .links()
                .map(|l| l.into_iter().map(|l| l.name).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let in_use = |n: &str| others.contains(&n) || host_links.iter().any(|l| l == n);
        defaults::prepare_define(&mut def, &in_use, &mut *rng)?;
        Ok(def)
    }

    fn save_config(&self, def: &NetworkDef) -> Result<()> {
        let mut text = config_header(&def.name);
        text.push_str(&def.to_xml(FormatFlags::INACTIVE));
        store::write_atomic(
            &self.cfg.paths.network_config(&def.name),
            text.as_bytes(),
            0o600,
        )
        .map_err(|e| {
            Error::System(format!(
                "cannot save configuration of network '{}': {e}",
                def.name
            ))
        })
    }

    fn save_status(&self, obj: &NetworkObj) {
        let Some(steps) = &obj.setup else {
            return;
        };
        let status = NetworkStatus {
            setup: steps.clone(),
            def: obj.def.clone(),
        };
        let path = self.cfg.paths.network_status(&obj.def.name);
        if let Err(e) = store::write_runtime(&path, status.to_xml().as_bytes(), 0o600) {
            log::error!(
                "network '{}': cannot write {}: {e}",
                obj.def.name,
                path.display()
            );
        }
    }

    /// `net-define`: adds or replaces a persistent definition. A running
    /// network keeps its live definition until it is restarted.
    pub fn define_xml(&self, xml: &str, _flags: u32) -> Result<NetRef> {
        let mut nets = self.lock();
        let def = self.prepare(&nets, xml)?;
        self.save_config(&def)?;
        let name = def.name.clone();
        match nets.get_mut(&name) {
            Some(obj) => {
                if obj.is_active() {
                    obj.new_def = Some(def);
                } else {
                    obj.def = def;
                }
                obj.persistent = true;
            }
            None => {
                nets.insert(
                    name.clone(),
                    NetworkObj {
                        def,
                        new_def: None,
                        persistent: true,
                        autostart: false,
                        setup: None,
                        respawns: Vec::new(),
                        ports: Vec::new(),
                        floors: None,
                    },
                );
            }
        }
        let obj = nets
            .get(&name)
            .ok_or_else(|| Error::Internal(format!("network '{name}' vanished")))?;
        self.emit(obj, Lifecycle::Defined);
        Ok(obj.net_ref())
    }

    /// `net-create`: starts a transient network (or, for a defined inactive
    /// network of the same name and UUID, starts it with this definition).
    pub fn create_xml(&self, xml: &str, _flags: u32) -> Result<NetRef> {
        let mut nets = self.lock();
        let def = self.prepare(&nets, xml)?;
        let name = def.name.clone();
        if let Some(obj) = nets.get(&name) {
            if obj.is_active() {
                return Err(Error::OperationInvalid(format!(
                    "network is already active as '{name}'"
                )));
            }
        }
        setup::check_supported(&def)?;
        // The start hook comes first and sees the definition as given, as
        // in libvirt: it may set up devices the start needs (the VFs of a
        // pool's PF, say).
        hooks::run(&self.cfg.paths.hooks_dir(), HookOp::Start, &def, None)?;
        let mut def = live_def(&def);
        setup::create_interface_pool(&self.ctx(), &mut def)?;
        let steps = setup::start(&self.ctx(), &def)?;
        let floors = Some(floor_pool(&def));
        let obj = match nets.remove(&name) {
            Some(mut obj) => {
                let config = std::mem::replace(&mut obj.def, def);
                obj.new_def = Some(obj.new_def.take().unwrap_or(config));
                obj.setup = Some(steps);
                obj.floors = floors;
                obj
            }
            None => NetworkObj {
                def,
                new_def: None,
                persistent: false,
                autostart: false,
                setup: Some(steps),
                respawns: Vec::new(),
                ports: Vec::new(),
                floors,
            },
        };
        self.save_status(&obj);
        self.emit(&obj, Lifecycle::Started);
        self.run_hook(HookOp::Started, &obj.def);
        let r = obj.net_ref();
        nets.insert(name, obj);
        Ok(r)
    }

    /// `net-start`.
    pub fn create(&self, net: &NetRef) -> Result<()> {
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        if obj.is_active() {
            return Err(Error::OperationInvalid(
                "network is already active".to_string(),
            ));
        }
        if let Some(d) = obj.new_def.take() {
            obj.def = d;
        }
        setup::check_supported(&obj.def)?;
        // The start hook comes first and sees the configuration, as in
        // libvirt: it may set up devices the start needs (the VFs of a
        // pool's PF, say).
        hooks::run(&self.cfg.paths.hooks_dir(), HookOp::Start, &obj.def, None)?;
        let mut live = live_def(&obj.def);
        setup::create_interface_pool(&self.ctx(), &mut live)?;
        let steps = setup::start(&self.ctx(), &live)?;
        // While running, `def` is the live definition and `new_def` the
        // persistent one, restored when the network stops.
        obj.new_def = Some(std::mem::replace(&mut obj.def, live));
        obj.setup = Some(steps);
        obj.respawns.clear();
        obj.floors = Some(floor_pool(&obj.def));
        self.save_status(obj);
        self.restore_persistent_ports(obj);
        self.emit(obj, Lifecycle::Started);
        self.run_hook(HookOp::Started, &obj.def);
        Ok(())
    }

    /// `net-destroy`: undoes everything start did. Teardown goes on past
    /// failures; they are logged.
    pub fn destroy(&self, net: &NetRef) -> Result<()> {
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        let name = obj.def.name.clone();
        if !obj.is_active() {
            return Err(Error::OperationInvalid(format!(
                "network '{name}' is not active"
            )));
        }
        self.remove_all_ports(obj);
        obj.floors = None;
        let steps = obj.setup.take().unwrap_or_default();
        for e in setup::stop(&self.ctx(), &name, &steps) {
            log::error!("network '{name}': during destroy: {e}");
        }
        let _ = store::remove_if_exists(&self.cfg.paths.network_status(&name));
        self.emit(obj, Lifecycle::Stopped);
        self.run_hook(HookOp::Stopped, &obj.def);
        if !obj.persistent {
            let def = obj.def.clone();
            nets.remove(&name);
            setup::remove_dnsmasq_files(&self.cfg.paths, &def);
        } else if let Some(d) = obj.new_def.take() {
            obj.def = d;
        }
        Ok(())
    }

    /// `net-undefine`: removes the configuration. A running network keeps
    /// running, as a transient one.
    pub fn undefine(&self, net: &NetRef) -> Result<()> {
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        let name = obj.def.name.clone();
        if !obj.persistent {
            return Err(Error::OperationInvalid(
                "can't undefine transient network".to_string(),
            ));
        }
        let paths = &self.cfg.paths;
        store::remove_if_exists(&paths.autostart_link(&name))
            .and_then(|()| store::remove_if_exists(&paths.network_config(&name)))
            .map_err(|e| {
                Error::System(format!(
                    "cannot remove configuration of network '{name}': {e}"
                ))
            })?;
        obj.autostart = false;
        obj.persistent = false;
        self.emit(obj, Lifecycle::Undefined);
        if obj.is_active() {
            obj.new_def = None;
        } else {
            let def = obj.def.clone();
            nets.remove(&name);
            setup::remove_dnsmasq_files(paths, &def);
        }
        Ok(())
    }

    /// Whether the network starts with the daemon.
    pub fn autostart_of(&self, net: &NetRef) -> Result<bool> {
        let mut nets = self.lock();
        Ok(Self::find(&mut nets, net)?.autostart)
    }

    /// `net-autostart [--disable]`.
    pub fn set_autostart(&self, net: &NetRef, on: bool) -> Result<()> {
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        if !obj.persistent {
            return Err(Error::OperationInvalid(
                "cannot set autostart for transient network".to_string(),
            ));
        }
        let paths = &self.cfg.paths;
        let name = obj.def.name.clone();
        let link = paths.autostart_link(&name);
        let res = if on {
            match fs::symlink_metadata(&link) {
                Ok(_) => Ok(()),
                Err(_) => std::os::unix::fs::symlink(format!("../{name}.xml"), &link),
            }
        } else {
            store::remove_if_exists(&link)
        };
        res.map_err(|e| {
            Error::System(format!(
                "Failed to {} autostart link '{}' for network '{name}': {e}",
                if on { "create" } else { "delete" },
                link.display()
            ))
        })?;
        obj.autostart = on;
        Ok(())
    }

    /// Runs a hook whose failure cannot undo what happened: logged only.
    fn run_hook(&self, op: HookOp, def: &NetworkDef) {
        if let Err(e) = hooks::run(&self.cfg.paths.hooks_dir(), op, def, None) {
            log::warn!("network '{}': {e}", def.name);
        }
    }

    /// `net-update`: one change to one section, on the live definition,
    /// the persistent one or both (`VIR_NETWORK_UPDATE_AFFECT_*` in
    /// `flags`), with libvirt's semantics. A live change is applied to the
    /// running network without disturbing traffic: host entries are
    /// rewritten and dnsmasq re-reads them on SIGHUP; changes to what
    /// dnsmasq reads only at start restart dnsmasq alone; firewall rules
    /// are replaced in one transaction, never removed and re-added.
    pub fn update(
        &self,
        net: &NetRef,
        command: u32,
        section: u32,
        parent_index: i32,
        xml: &str,
        flags: u32,
    ) -> Result<()> {
        const LIVE: u32 = 1;
        const CONFIG: u32 = 2;
        if flags & !(LIVE | CONFIG) != 0 {
            return Err(Error::InvalidArg(format!(
                "unsupported flags (0x{:x}) in function networkUpdate",
                flags & !(LIVE | CONFIG)
            )));
        }
        let command = UpdateCommand::from_code(command).ok_or_else(|| {
            Error::Unsupported(format!(
                "unrecognized network update command code {command}"
            ))
        })?;
        let section = UpdateSection::from_code(section).ok_or_else(|| {
            Error::Unsupported("can't update unrecognized section of network".to_string())
        })?;
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        let active = obj.is_active();
        let (live_flag, config_flag) = Self::affected(
            obj,
            flags,
            "cannot change persistent config of a transient network",
        )?;
        let apply = |base: &NetworkDef, format: FormatFlags| -> Result<NetworkDef> {
            let mut d = base.clone();
            d.update_section(command, section, parent_index, xml)?;
            // A format/parse cycle catches anything the change made invalid.
            NetworkDef::parse(&d.to_xml(format))?;
            Ok(d)
        };
        let live = if live_flag {
            Some(apply(&obj.def, FormatFlags::ACTIVE)?)
        } else {
            None
        };
        let config = if config_flag {
            Some(apply(obj.config(), FormatFlags::INACTIVE)?)
        } else {
            None
        };
        if let Some(c) = config {
            self.save_config(&c)?;
            if active {
                obj.new_def = Some(c);
            } else {
                obj.def = c;
            }
        }
        if let Some(l) = live {
            let old = std::mem::replace(&mut obj.def, l);
            let res = self.apply_live_update(obj, &old);
            self.save_status(obj);
            res?;
        }
        self.run_hook(HookOp::Updated, &obj.def);
        Ok(())
    }

    /// Brings the host in line with a running network whose live
    /// definition changed from `old` to `obj.def`.
    fn apply_live_update(&self, obj: &mut NetworkObj, old: &NetworkDef) -> Result<()> {
        let new = obj.def.clone();
        let name = new.name.clone();
        if new.forward.mode.is_virtual() && new.forward.mode != virtnet_conf::ForwardMode::Open {
            let plan = setup::firewall_plan(&new)?;
            if plan != setup::firewall_plan(old)? {
                self.host
                    .firewall
                    .apply(&plan)
                    .map_err(|e| Error::host(&name, e))?;
            }
        }
        let ctx = self.ctx();
        let p = ctx.dnsmasq_paths(&name);
        let opts =
            virtnet_dnsmasq::Options::new(self.cfg.paths.dnsmasq_dir().display().to_string())
                .with_pid_file(p.pid.display().to_string());
        let plan = virtnet_dnsmasq::DnsmasqConfig::plan_update(old, &new, &opts)?;
        let steps = obj.setup.get_or_insert_with(Vec::new);
        let herr = |e: &dyn std::fmt::Display| Error::host(&name, e);
        match plan.action {
            virtnet_dnsmasq::UpdateAction::Nothing => {}
            virtnet_dnsmasq::UpdateAction::Reload => {
                setup::write_dnsmasq_files(&ctx, &new)?;
                self.host.dnsmasq.reload(&name).map_err(|e| herr(&e))?;
            }
            virtnet_dnsmasq::UpdateAction::Restart => {
                self.host.dnsmasq.stop(&name).map_err(|e| herr(&e))?;
                let pid = setup::start_dnsmasq(&ctx, &new)?;
                for s in steps.iter_mut() {
                    if let SetupStep::Dnsmasq { pid: p } = s {
                        *p = pid;
                    }
                }
            }
            virtnet_dnsmasq::UpdateAction::Start => {
                let pid = setup::start_dnsmasq(&ctx, &new)?;
                steps.push(SetupStep::Dnsmasq { pid });
            }
            virtnet_dnsmasq::UpdateAction::Stop => {
                self.host.dnsmasq.stop(&name).map_err(|e| herr(&e))?;
                steps.retain(|s| !matches!(s, SetupStep::Dnsmasq { .. }));
            }
        }
        Ok(())
    }

    /// Resolves `VIR_NETWORK_UPDATE_AFFECT_*` flags (current = live when
    /// running, else config) into (live, config), refusing live changes to
    /// an inactive network and persistent ones to a transient network
    /// (with `transient_msg`, which differs between libvirt's APIs).
    fn affected(obj: &NetworkObj, flags: u32, transient_msg: &str) -> Result<(bool, bool)> {
        const LIVE: u32 = 1;
        const CONFIG: u32 = 2;
        let active = obj.is_active();
        let mut flags = flags;
        if flags & (LIVE | CONFIG) == 0 {
            flags |= if active { LIVE } else { CONFIG };
        }
        if flags & LIVE != 0 && !active {
            return Err(Error::OperationInvalid(
                "network is not running".to_string(),
            ));
        }
        if flags & CONFIG != 0 && !obj.persistent {
            return Err(Error::OperationInvalid(transient_msg.to_string()));
        }
        Ok((flags & LIVE != 0, flags & CONFIG != 0))
    }

    /// `virNetworkSetMetadata` (`net-desc`, `net-metadata`).
    pub fn set_metadata(
        &self,
        net: &NetRef,
        kind: i32,
        value: Option<&str>,
        key: Option<&str>,
        uri: Option<&str>,
        flags: u32,
    ) -> Result<()> {
        let mtype = MetadataType::from_code(kind)
            .ok_or_else(|| Error::InvalidArg(format!("unknown metadata type '{kind}'")))?;
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        let (live, config) = Self::affected(obj, flags, NO_PERSISTENT_CONFIG)?;
        if live {
            let mut d = obj.def.clone();
            d.metadata_set(mtype, value, key, uri)?;
            obj.def = d;
            self.save_status(obj);
        }
        if config {
            let mut d = obj.config().clone();
            d.metadata_set(mtype, value, key, uri)?;
            self.save_config(&d)?;
            if obj.is_active() {
                obj.new_def = Some(d);
            } else {
                obj.def = d;
            }
        }
        self.events.emit(NetworkEvent {
            name: obj.def.name.clone(),
            uuid: obj.uuid(),
            kind: EventKind::MetadataChange {
                kind,
                nsuri: uri.map(str::to_string),
            },
        });
        Ok(())
    }

    /// `virNetworkGetMetadata`.
    pub fn get_metadata(
        &self,
        net: &NetRef,
        kind: i32,
        uri: Option<&str>,
        flags: u32,
    ) -> Result<String> {
        let mtype = MetadataType::from_code(kind)
            .ok_or_else(|| Error::InvalidArg(format!("unknown metadata type '{kind}'")))?;
        if flags & 3 == 3 {
            return Err(Error::InvalidArg(
                "Flags 'affect live' and 'affect config' are mutually exclusive".to_string(),
            ));
        }
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        let (live, _) = Self::affected(obj, flags, NO_PERSISTENT_CONFIG)?;
        let def = if live { &obj.def } else { obj.config() };
        Ok(def.metadata_get(mtype, uri)?)
    }

    /// `net-dhcp-leases`: the network's current leases (of `mac` only, if
    /// given), from the lease helper's records.
    pub fn dhcp_leases(
        &self,
        net: &NetRef,
        mac: Option<&str>,
    ) -> Result<Vec<virtnet_dnsmasq::DhcpLease>> {
        if let Some(m) = mac {
            if virtnet_conf::MacAddr::parse(m).is_none() {
                return Err(Error::InvalidMac(m.to_string()));
            }
        }
        let def = {
            let mut nets = self.lock();
            Self::find(&mut nets, net)?.def.clone()
        };
        let Some(bridge) = &def.bridge else {
            return Ok(Vec::new());
        };
        let path = self
            .cfg
            .paths
            .dnsmasq_dir()
            .join(format!("{bridge}.status"));
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::System(format!(
                    "Unable to read leases file: {}: {e}",
                    path.display()
                )));
            }
        };
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let file = virtnet_dnsmasq::LeaseFile::parse(&text).map_err(|e| {
            Error::Internal(format!("invalid json in file: {}: {e}", path.display()))
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        file.dhcp_leases(&def, mac, now)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    // ----- ports ---------------------------------------------------------

    fn require_active(obj: &NetworkObj) -> Result<()> {
        if obj.is_active() {
            Ok(())
        } else {
            Err(Error::OperationInvalid(format!(
                "network '{}' is not active",
                obj.def.name
            )))
        }
    }

    fn save_port_status(&self, network: &str, port: &PortDef) {
        let dir = self.cfg.paths.port_status_dir(network);
        let path = dir.join(format!("{}.xml", port.uuid));
        let xml = port.to_xml();
        // The directory exists after the network's first port.
        let res = match store::write_runtime(&path, xml.as_bytes(), 0o600) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir_all(&dir)
                .and_then(|()| store::write_runtime(&path, xml.as_bytes(), 0o600)),
            other => other,
        };
        if let Err(e) = res {
            log::error!("network '{network}': cannot save port {}: {e}", port.uuid);
        }
    }

    /// Allocates, realises and records one port on a running network.
    /// `request` is the port as asked for; on failure nothing is left.
    fn add_port(&self, obj: &mut NetworkObj, request: PortDef) -> Result<PortDef> {
        let name = obj.def.name.clone();
        if obj.ports.iter().any(|p| p.uuid == request.uuid) {
            return Err(Error::PortExists(request.uuid.to_string()));
        }
        let mut port = request;
        let mut live = obj.def.clone();
        {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            ports::allocate(&mut live, &mut port, &obj.ports, &mut *rng)?;
        }
        let t = Instant::now();
        ports::realise(
            &self.host,
            &self.reaper,
            &live,
            &mut port,
            obj.floors.as_mut(),
        )?;
        log::debug!(
            "network '{name}': port {} realised in {:.2} ms",
            port.uuid,
            t.elapsed().as_secs_f64() * 1000.0
        );
        if let Err(e) = hooks::run(
            &self.cfg.paths.hooks_dir(),
            HookOp::PortCreated,
            &live,
            Some(&port),
        ) {
            let _ = ports::unrealise(&self.host, None, &live, &port, obj.floors.as_mut());
            return Err(e);
        }
        obj.def = live;
        // The port's own status file is enough: connection counts are
        // recounted from the ports when a restarted daemon adopts them.
        self.save_port_status(&name, &port);
        obj.ports.push(port.clone());
        log::info!(
            "MAC {} using network {name} ({} connections)",
            port.mac.map(|m| m.to_string()).unwrap_or_default(),
            obj.def.connections
        );
        Ok(port)
    }

    /// Removes one port: its device, its allocation, its records.
    fn remove_port(&self, obj: &mut NetworkObj, uuid: &Uuid) -> Result<PortDef> {
        let name = obj.def.name.clone();
        let i = obj
            .ports
            .iter()
            .position(|p| p.uuid == *uuid)
            .ok_or_else(|| Error::NoPort(uuid.to_string()))?;
        let port = obj.ports.remove(i);
        if let Err(e) = ports::unrealise(
            &self.host,
            Some(&self.reaper),
            &obj.def,
            &port,
            obj.floors.as_mut(),
        ) {
            log::warn!("network '{name}': port {uuid}: {e}");
        }
        ports::release(&mut obj.def, &port);
        let _ = store::remove_if_exists(
            &self
                .cfg
                .paths
                .port_status_dir(&name)
                .join(format!("{uuid}.xml")),
        );
        if let Err(e) = hooks::run(
            &self.cfg.paths.hooks_dir(),
            HookOp::PortDeleted,
            &obj.def,
            Some(&port),
        ) {
            log::warn!("network '{name}': {e}");
        }
        log::info!(
            "MAC {} releasing network {name} ({} connections)",
            port.mac.map(|m| m.to_string()).unwrap_or_default(),
            obj.def.connections
        );
        Ok(port)
    }

    /// `virNetworkPortCreateXML`: allocates a port on a running network and
    /// realises it on the host. With `<virtnet:device persistent='yes'/>`
    /// the attachment is also kept in the configuration and recreated
    /// whenever the network starts.
    pub fn port_create(&self, net: &NetRef, xml: &str, flags: u32) -> Result<(NetRef, Uuid)> {
        const RECLAIM: u32 = 1;
        const VALIDATE: u32 = 2;
        if flags & !(RECLAIM | VALIDATE) != 0 {
            return Err(Error::InvalidArg(format!(
                "unsupported flags (0x{:x}) in function virNetworkPortCreateXML",
                flags & !(RECLAIM | VALIDATE)
            )));
        }
        let request = PortDef::parse_for_create(xml)?;
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        Self::require_active(obj)?;
        // A port that clashes with one whose device vanished (a QEMU that
        // exited and starts again with the same MAC) replaces it.
        let wanted_name = request.device.as_ref().and_then(|d| d.name.as_deref());
        let clashes = obj.ports.iter().any(|p| {
            (request.mac.is_some() && p.mac == request.mac)
                || (wanted_name.is_some()
                    && p.device.as_ref().and_then(|d| d.name.as_deref()) == wanted_name)
        });
        if clashes {
            self.drop_vanished_ports(obj);
        }
        let reclaim = flags & RECLAIM != 0;
        match (&request.plug, reclaim) {
            (virtnet_conf::PortPlug::None, true) => {
                return Err(Error::InvalidArg(
                    "Port reclaim requested but plug type is none".into(),
                ));
            }
            (virtnet_conf::PortPlug::None, false) | (_, true) => {}
            (_, false) => {
                return Err(Error::InvalidArg(
                    "Port reclaim not requested but plug type is not none".into(),
                ));
            }
        }
        let persistent = request.device.as_ref().is_some_and(|d| d.persistent);
        let port = if reclaim {
            // A hypervisor reclaiming a port it already plugged: count it.
            if request.needs_uuid() {
                return Err(Error::Internal("network port has no uuid".into()));
            }
            if obj.ports.iter().any(|p| p.uuid == request.uuid) {
                return Err(Error::PortExists(request.uuid.to_string()));
            }
            obj.def.connections += 1;
            let name = obj.def.name.clone();
            self.save_port_status(&name, &request);
            obj.ports.push(request.clone());
            request
        } else {
            let port = self.add_port(obj, request)?;
            if persistent {
                let mut keep = port.clone();
                // What was asked for: the device is made anew each time.
                keep.plug = virtnet_conf::PortPlug::None;
                if let Some(d) = keep.device.as_mut() {
                    d.kind = None;
                    d.path = None;
                }
                let dir = self.cfg.paths.port_config_dir(&obj.def.name);
                fs::create_dir_all(&dir)
                    .and_then(|()| {
                        store::write_atomic(
                            &dir.join(format!("{}.xml", keep.uuid)),
                            keep.to_xml().as_bytes(),
                            0o600,
                        )
                    })
                    .map_err(|e| {
                        Error::System(format!(
                            "cannot save port {} of network '{}': {e}",
                            keep.uuid, obj.def.name
                        ))
                    })?;
            }
            port
        };
        Ok((obj.net_ref(), port.uuid))
    }

    /// `virNetworkPortLookupByUUID`.
    pub fn port_lookup(&self, net: &NetRef, uuid: &Uuid) -> Result<NetRef> {
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        if !obj.ports.iter().any(|p| p.uuid == *uuid) {
            return Err(Error::NoPort(uuid.to_string()));
        }
        Self::require_active(obj)?;
        Ok(obj.net_ref())
    }

    /// The port as `net-port-dumpxml` shows it.
    pub fn port(&self, net: &NetRef, uuid: &Uuid) -> Result<PortDef> {
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        let port = obj
            .ports
            .iter()
            .find(|p| p.uuid == *uuid)
            .cloned()
            .ok_or_else(|| Error::NoPort(uuid.to_string()))?;
        Self::require_active(obj)?;
        Ok(port)
    }

    /// `virNetworkPortDelete`: removes the device and the allocation, and
    /// a persistent attachment from the configuration.
    pub fn port_delete(&self, net: &NetRef, uuid: &Uuid) -> Result<()> {
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        if !obj.ports.iter().any(|p| p.uuid == *uuid) {
            return Err(Error::NoPort(uuid.to_string()));
        }
        Self::require_active(obj)?;
        self.remove_port(obj, uuid)?;
        let _ = store::remove_if_exists(
            &self
                .cfg
                .paths
                .port_config_dir(&obj.def.name)
                .join(format!("{uuid}.xml")),
        );
        Ok(())
    }

    /// `virNetworkListAllPorts`.
    pub fn ports(&self, net: &NetRef) -> Result<Vec<PortDef>> {
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        Self::require_active(obj)?;
        self.drop_vanished_ports(obj);
        Ok(obj.ports.clone())
    }

    /// Releases the ports whose TAP or macvtap is gone: a hypervisor that
    /// was handed a non-persistent TAP (`virtnet qemu-bridge-helper`) and
    /// exited, or a device deleted by hand.
    fn drop_vanished_ports(&self, obj: &mut NetworkObj) {
        let device = |p: &PortDef| {
            p.device
                .as_ref()
                .filter(|d| matches!(d.kind, Some(PortDeviceKind::Tap | PortDeviceKind::Macvtap)))
                .and_then(|d| d.name.clone())
        };
        if !obj.ports.iter().any(|p| device(p).is_some()) {
            return;
        }
        // One dump of the links, however many ports.
        let Ok(links) = self.host.netlink.links() else {
            return;
        };
        let present: std::collections::HashSet<String> =
            links.into_iter().map(|l| l.name).collect();
        let gone: Vec<Uuid> = obj
            .ports
            .iter()
            .filter(|p| device(p).is_some_and(|n| !present.contains(&n)))
            .map(|p| p.uuid)
            .collect();
        for uuid in gone {
            log::info!(
                "network '{}': the device of port {uuid} is gone; releasing the port",
                obj.def.name
            );
            if let Err(e) = self.remove_port(obj, &uuid) {
                log::warn!("network '{}': port {uuid}: {e}", obj.def.name);
            }
        }
    }

    /// Every port of every running network (for `domiflist`-style views).
    pub fn all_ports(&self) -> Vec<(NetRef, PortDef)> {
        self.lock()
            .values()
            .flat_map(|o| o.ports.iter().map(|p| (o.net_ref(), p.clone())))
            .collect()
    }

    /// `virNetworkPortSetParameters`: the port's bandwidth.
    pub fn port_set_bandwidth(
        &self,
        net: &NetRef,
        uuid: &Uuid,
        bandwidth: Option<virtnet_conf::Bandwidth>,
    ) -> Result<()> {
        let mut nets = self.lock();
        let obj = Self::find(&mut nets, net)?;
        if !obj.ports.iter().any(|p| p.uuid == *uuid) {
            return Err(Error::NoPort(uuid.to_string()));
        }
        Self::require_active(obj)?;
        let name = obj.def.name.clone();
        let Some(port) = obj.ports.iter_mut().find(|p| p.uuid == *uuid) else {
            return Err(Error::NoPort(uuid.to_string()));
        };
        ports::reshape(&self.host, &obj.def, port, bandwidth, obj.floors.as_mut())?;
        let port = port.clone();
        self.save_port_status(&name, &port);
        Ok(())
    }

    /// Recreates the persistent attachments of a network that just started.
    fn restore_persistent_ports(&self, obj: &mut NetworkObj) {
        let name = obj.def.name.clone();
        for (_, path) in xml_files(&self.cfg.paths.port_config_dir(&name)) {
            let request = match fs::read_to_string(&path)
                .map_err(|e| Error::Internal(e.to_string()))
                .and_then(|t| Ok(PortDef::parse_for_create(&t)?))
            {
                Ok(p) => p,
                Err(e) => {
                    log::error!("network '{name}': ignoring {}: {e}", path.display());
                    continue;
                }
            };
            let uuid = request.uuid;
            if let Err(e) = self.add_port(obj, request) {
                log::error!("network '{name}': cannot recreate port {uuid}: {e}");
            }
        }
    }

    /// Removes every port of a network that stops.
    fn remove_all_ports(&self, obj: &mut NetworkObj) {
        let uuids: Vec<Uuid> = obj.ports.iter().map(|p| p.uuid).collect();
        for u in uuids {
            if let Err(e) = self.remove_port(obj, &u) {
                log::warn!("network '{}': port {u}: {e}", obj.def.name);
            }
        }
        // The network's devices go before it does.
        self.reaper.flush();
        let _ = fs::remove_dir_all(self.cfg.paths.port_status_dir(&obj.def.name));
        let _ = fs::remove_dir(self.cfg.paths.status_dir().join(&obj.def.name));
    }

    /// Reads the port status files of a running network after a restart;
    /// a port whose device vanished is released.
    fn adopt_ports(&self, obj: &mut NetworkObj, replug: bool) {
        let name = obj.def.name.clone();
        // Connection counts are recounted from the ports that are still
        // there (the status file's may predate the last port changes).
        obj.def.connections = 0;
        for d in &mut obj.def.forward.ifs {
            d.connections = 0;
        }
        for (_, path) in xml_files(&self.cfg.paths.port_status_dir(&name)) {
            let port = match fs::read_to_string(&path)
                .map_err(|e| Error::Internal(e.to_string()))
                .and_then(|t| Ok(PortDef::parse(&t)?))
            {
                Ok(p) => p,
                Err(e) => {
                    log::error!(
                        "network '{name}': ignoring port file {}: {e}",
                        path.display()
                    );
                    continue;
                }
            };
            if !ports::device_present(&self.host, &port) {
                log::warn!(
                    "network '{name}': the device of port {} is gone; releasing the port",
                    port.uuid
                );
                let _ = store::remove_if_exists(&path);
                continue;
            }
            if replug {
                if let Err(e) = ports::replug(&self.host, &obj.def, &port) {
                    log::error!("network '{name}': cannot re-plug port {}: {e}", port.uuid);
                }
            }
            if let (Some(pool), Some(bw)) = (obj.floors.as_mut(), port.bandwidth) {
                let floor = bw.inbound.map(|r| r.floor).unwrap_or(0);
                if port.class_id != 0 {
                    if let Err(e) = pool.restore(&[(port.class_id, floor)]) {
                        log::warn!("network '{name}': port {}: {e}", port.uuid);
                    }
                }
            }
            ports::count(&mut obj.def, &port);
            obj.ports.push(port);
        }
    }

    /// Waits until the devices of deleted ports are gone from the host
    /// (they are deleted in the background).
    pub fn settle(&self) {
        self.reaper.flush();
    }

    /// Stops every running network (for tests and explicit shutdown; the
    /// daemon itself leaves networks running when it exits).
    pub fn destroy_all(&self) {
        let refs: Vec<NetRef> = self
            .lock()
            .values()
            .filter(|o| o.is_active())
            .map(NetworkObj::net_ref)
            .collect();
        for r in refs {
            if let Err(e) = self.destroy(&r) {
                log::error!("network '{}': {e}", r.name);
            }
        }
    }

    /// The setup record of a running network (for diagnostics and tests).
    pub fn setup_of(&self, net: &NetRef) -> Result<Option<Vec<SetupStep>>> {
        let mut nets = self.lock();
        Ok(Self::find(&mut nets, net)?.setup.clone())
    }

    /// Counts of active and inactive networks.
    pub fn counts(&self) -> (usize, usize) {
        let nets = self.lock();
        let active = nets.values().filter(|o| o.is_active()).count();
        (active, nets.len() - active)
    }

    /// Names to UUIDs of all networks.
    pub fn uuids(&self) -> HashMap<String, Uuid> {
        self.lock()
            .values()
            .map(|o| (o.def.name.clone(), o.uuid()))
            .collect()
    }
}

/// The floor accounting of a running network: its inbound limits, and
/// whether its forward mode can give ports floors (isolated, nat, route,
/// open).
fn floor_pool(def: &NetworkDef) -> FloorPool {
    let inbound = def
        .bandwidth
        .as_ref()
        .and_then(|b| setup::host_bandwidth(b).inbound);
    FloorPool::new(
        &def.name,
        def.bridge.as_deref().unwrap_or_default(),
        inbound,
        def.forward.mode.is_virtual(),
    )
}

/// The definition a network runs with: the configuration plus what libvirt
/// fills in at start (NAT's default source port range).
fn live_def(config: &NetworkDef) -> NetworkDef {
    let mut live = config.clone();
    if live.forward.mode == virtnet_conf::ForwardMode::Nat && live.forward.nat_port.is_none() {
        live.forward.nat_port = Some(virtnet_conf::PortRange {
            start: 1024,
            end: 65535,
        });
    }
    live
}

/// `NAME.xml` files of a directory, as (NAME, path), sorted by name.
fn xml_files(dir: &std::path::Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let name = file.strip_suffix(".xml")?.to_string();
            (!name.is_empty() && !name.starts_with('.')).then(|| (name, e.path()))
        })
        .collect();
    out.sort();
    out
}
