//! An in-memory network driver behind `serve_connection`, for driving the
//! server with real libvirt clients and with our own `Client`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use virtnet_rpc::protocol::{
    self, AuthListRet, ConnectGetHostnameRet, ConnectGetLibVersionRet, ConnectGetTypeRet,
    ConnectGetUriRet, ConnectGetVersionRet, ConnectIsSecureRet, ConnectListAllNetworksRet,
    ConnectListNetworksRet, ConnectNetworkEventRegisterAnyRet, ConnectNumOfNetworksRet,
    ConnectSupportsFeatureRet, NetworkEventLifecycleMsg, NetworkGetAutostartRet,
    NetworkGetBridgeNameRet, NetworkIsActiveRet, NetworkIsPersistentRet, NetworkRet,
    NonnullNetwork, Uuid, XmlRet, feature, list_networks, network_event,
};
use virtnet_rpc::{
    Call, CallContext, ConnectionInfo, ErrorDomain, Event, EventSink, Handler, Procedure,
    RemoteError, Reply, ServeOptions, serve_connection,
};

/// One network of the fake driver.
#[derive(Debug, Clone)]
pub struct FakeNetwork {
    pub name: String,
    pub uuid: Uuid,
    pub active: bool,
    pub persistent: bool,
    pub autostart: bool,
    pub bridge: String,
}

impl FakeNetwork {
    pub fn new(name: &str, uuid: &str, active: bool, autostart: bool, bridge: &str) -> Self {
        Self {
            name: name.into(),
            uuid: protocol::parse_uuid(uuid).expect("test uuid"),
            active,
            persistent: true,
            autostart,
            bridge: bridge.into(),
        }
    }

    fn reference(&self) -> NonnullNetwork {
        NonnullNetwork {
            name: self.name.clone(),
            uuid: self.uuid,
        }
    }

    pub fn xml(&self) -> String {
        format!(
            "<network>\n  <name>{}</name>\n  <uuid>{}</uuid>\n  <bridge name='{}' stp='on' delay='0'/>\n</network>\n",
            self.name,
            protocol::format_uuid(&self.uuid),
            self.bridge
        )
    }
}

struct Registration {
    callback_id: i32,
    event_id: i32,
    net: Option<NonnullNetwork>,
    sink: EventSink,
}

/// The fake driver: a few networks in a Vec.
#[derive(Default)]
pub struct FakeDriver {
    pub networks: Mutex<Vec<FakeNetwork>>,
    registrations: Mutex<Vec<Registration>>,
    next_callback: AtomicI32,
    /// Every procedure served, in order.
    pub calls: Mutex<Vec<Procedure>>,
    /// Serial of every call served, in order.
    pub serials: Mutex<Vec<u32>>,
    /// Features asked about with `CONNECT_SUPPORTS_FEATURE`.
    pub features: Mutex<Vec<i32>>,
    /// Unknown procedure numbers received.
    pub unknown: Mutex<Vec<i32>>,
    /// Peer credentials of every connection at CONNECT_OPEN.
    pub peers: Mutex<Vec<Option<virtnet_rpc::PeerCredentials>>>,
    /// Connections seen and closed.
    pub connected: AtomicU64,
    pub disconnected: AtomicU64,
    /// Arguments of the last `NETWORK_UPDATE`.
    pub last_update: Mutex<Option<protocol::NetworkUpdateArgs>>,
    /// Ports: (network UUID, port UUID, bandwidth parameters).
    pub ports: Mutex<Vec<(Uuid, Uuid, Vec<protocol::TypedParam>)>>,
    /// Delay applied to `NetworkGetXmlDesc`, to keep a call in flight.
    pub xml_delay: Mutex<Option<Duration>>,
}

fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].trim().to_owned())
}

fn xml_bridge(xml: &str) -> Option<String> {
    let at = xml.find("<bridge name='")? + "<bridge name='".len();
    let end = xml[at..].find('\'')? + at;
    Some(xml[at..end].to_owned())
}

impl FakeDriver {
    pub fn with_networks(nets: Vec<FakeNetwork>) -> Arc<Self> {
        let d = Self {
            next_callback: AtomicI32::new(1),
            ..Self::default()
        };
        *d.networks.lock().unwrap() = nets;
        Arc::new(d)
    }

    pub fn standard() -> Arc<Self> {
        Self::with_networks(vec![
            FakeNetwork::new(
                "default",
                "c7a72b2e-6a35-4e0c-8a3d-2f5e9a1b0001",
                true,
                true,
                "virbr0",
            ),
            FakeNetwork::new(
                "isolated",
                "c7a72b2e-6a35-4e0c-8a3d-2f5e9a1b0002",
                false,
                false,
                "virbr1",
            ),
        ])
    }

    fn find<'a>(
        nets: &'a mut [FakeNetwork],
        r: &NonnullNetwork,
    ) -> Result<&'a mut FakeNetwork, RemoteError> {
        nets.iter_mut()
            .find(|n| n.uuid == r.uuid)
            .ok_or_else(|| RemoteError::no_network_uuid(&r.uuid))
    }

    /// Pushes a lifecycle event to every matching registration.
    pub fn emit(&self, net: &FakeNetwork, event: i32) {
        let regs = self.registrations.lock().unwrap();
        for r in regs.iter() {
            if r.event_id != network_event::ID_LIFECYCLE {
                continue;
            }
            if let Some(filter) = &r.net {
                if filter.uuid != net.uuid {
                    continue;
                }
            }
            let _ = r
                .sink
                .send(&Event::NetworkEventLifecycle(NetworkEventLifecycleMsg {
                    callback_id: r.callback_id,
                    net: net.reference(),
                    event,
                    detail: 0,
                }));
        }
    }

    pub fn registration_count(&self) -> usize {
        self.registrations.lock().unwrap().len()
    }

    fn handle(&self, ctx: &mut CallContext<'_>, call: Call) -> Result<Reply, RemoteError> {
        let mut nets = self.networks.lock().unwrap();
        Ok(match call {
            Call::ConnectOpen(_) => {
                self.peers.lock().unwrap().push(ctx.conn.peer);
                Reply::ConnectOpen(())
            }
            Call::ConnectClose(()) => Reply::ConnectClose(()),
            Call::AuthList(()) => Reply::AuthList(AuthListRet {
                types: vec![protocol::auth::NONE],
            }),
            Call::ConnectSupportsFeature(a) => {
                self.features.lock().unwrap().push(a.feature);
                let supported = feature::network_daemon_supports(a.feature);
                Reply::ConnectSupportsFeature(ConnectSupportsFeatureRet {
                    supported: i32::from(supported),
                })
            }
            Call::ConnectGetType(()) => Reply::ConnectGetType(ConnectGetTypeRet {
                r#type: "network".into(),
            }),
            Call::ConnectGetUri(()) => Reply::ConnectGetUri(ConnectGetUriRet {
                uri: "network:///system".into(),
            }),
            Call::ConnectGetHostname(()) => Reply::ConnectGetHostname(ConnectGetHostnameRet {
                hostname: "fakehost".into(),
            }),
            Call::ConnectGetVersion(()) => {
                Reply::ConnectGetVersion(ConnectGetVersionRet { hv_ver: 9_000_000 })
            }
            Call::ConnectGetLibVersion(()) => {
                Reply::ConnectGetLibVersion(ConnectGetLibVersionRet { lib_ver: 9_000_000 })
            }
            Call::ConnectIsSecure(()) => Reply::ConnectIsSecure(ConnectIsSecureRet { secure: 1 }),
            Call::ConnectRegisterCloseCallback(()) => Reply::ConnectRegisterCloseCallback(()),
            Call::ConnectUnregisterCloseCallback(()) => Reply::ConnectUnregisterCloseCallback(()),
            Call::ConnectListAllNetworks(a) => {
                let f = a.flags;
                let matching: Vec<NonnullNetwork> = nets
                    .iter()
                    .filter(|n| {
                        let state = f & (list_networks::ACTIVE | list_networks::INACTIVE);
                        let pers = f & (list_networks::PERSISTENT | list_networks::TRANSIENT);
                        let auto = f & (list_networks::AUTOSTART | list_networks::NO_AUTOSTART);
                        (state == 0
                            || (n.active && state & list_networks::ACTIVE != 0)
                            || (!n.active && state & list_networks::INACTIVE != 0))
                            && (pers == 0
                                || (n.persistent && pers & list_networks::PERSISTENT != 0)
                                || (!n.persistent && pers & list_networks::TRANSIENT != 0))
                            && (auto == 0
                                || (n.autostart && auto & list_networks::AUTOSTART != 0)
                                || (!n.autostart && auto & list_networks::NO_AUTOSTART != 0))
                    })
                    .map(FakeNetwork::reference)
                    .collect();
                let ret = matching.len() as u32;
                Reply::ConnectListAllNetworks(ConnectListAllNetworksRet {
                    nets: if a.need_results != 0 {
                        matching
                    } else {
                        Vec::new()
                    },
                    ret,
                })
            }
            Call::ConnectNumOfNetworks(()) => {
                Reply::ConnectNumOfNetworks(ConnectNumOfNetworksRet {
                    num: nets.iter().filter(|n| n.active).count() as i32,
                })
            }
            Call::ConnectNumOfDefinedNetworks(()) => {
                Reply::ConnectNumOfDefinedNetworks(ConnectNumOfNetworksRet {
                    num: nets.iter().filter(|n| !n.active).count() as i32,
                })
            }
            Call::ConnectListNetworks(a) => Reply::ConnectListNetworks(ConnectListNetworksRet {
                names: nets
                    .iter()
                    .filter(|n| n.active)
                    .take(a.maxnames.max(0) as usize)
                    .map(|n| n.name.clone())
                    .collect(),
            }),
            Call::ConnectListDefinedNetworks(a) => {
                Reply::ConnectListDefinedNetworks(ConnectListNetworksRet {
                    names: nets
                        .iter()
                        .filter(|n| !n.active)
                        .take(a.maxnames.max(0) as usize)
                        .map(|n| n.name.clone())
                        .collect(),
                })
            }
            Call::NetworkLookupByName(a) => Reply::NetworkLookupByName(NetworkRet {
                net: nets
                    .iter()
                    .find(|n| n.name == a.name)
                    .map(FakeNetwork::reference)
                    .ok_or_else(|| RemoteError::no_network_name(&a.name))?,
            }),
            Call::NetworkLookupByUuid(a) => Reply::NetworkLookupByUuid(NetworkRet {
                net: nets
                    .iter()
                    .find(|n| n.uuid == a.uuid)
                    .map(FakeNetwork::reference)
                    .ok_or_else(|| RemoteError::no_network_uuid(&a.uuid))?,
            }),
            Call::NetworkDefineXml(a) => Reply::NetworkDefineXml(NetworkRet {
                net: self.define(&mut nets, &a.xml)?,
            }),
            Call::NetworkDefineXmlFlags(a) => Reply::NetworkDefineXmlFlags(NetworkRet {
                net: self.define(&mut nets, &a.xml)?,
            }),
            Call::NetworkCreateXml(a) => Reply::NetworkCreateXml(NetworkRet {
                net: self.create(&mut nets, &a.xml)?,
            }),
            Call::NetworkCreateXmlFlags(a) => Reply::NetworkCreateXmlFlags(NetworkRet {
                net: self.create(&mut nets, &a.xml)?,
            }),
            Call::NetworkGetXmlDesc(a) => {
                let xml = Self::find(&mut nets, &a.net)?.xml();
                let delay = *self.xml_delay.lock().unwrap();
                drop(nets);
                if let Some(d) = delay {
                    std::thread::sleep(d);
                }
                Reply::NetworkGetXmlDesc(XmlRet { xml })
            }
            Call::NetworkGetAutostart(a) => Reply::NetworkGetAutostart(NetworkGetAutostartRet {
                autostart: i32::from(Self::find(&mut nets, &a.net)?.autostart),
            }),
            Call::NetworkSetAutostart(a) => {
                let n = Self::find(&mut nets, &a.net)?;
                if !n.persistent {
                    return Err(RemoteError::operation_invalid(
                        ErrorDomain::NETWORK,
                        "cannot set autostart for transient network",
                    ));
                }
                n.autostart = a.autostart != 0;
                Reply::NetworkSetAutostart(())
            }
            Call::NetworkGetBridgeName(a) => Reply::NetworkGetBridgeName(NetworkGetBridgeNameRet {
                name: Self::find(&mut nets, &a.net)?.bridge.clone(),
            }),
            Call::NetworkIsActive(a) => Reply::NetworkIsActive(NetworkIsActiveRet {
                active: i32::from(Self::find(&mut nets, &a.net)?.active),
            }),
            Call::NetworkIsPersistent(a) => Reply::NetworkIsPersistent(NetworkIsPersistentRet {
                persistent: i32::from(Self::find(&mut nets, &a.net)?.persistent),
            }),
            Call::NetworkCreate(a) => {
                let n = Self::find(&mut nets, &a.net)?;
                if n.active {
                    return Err(RemoteError::operation_invalid(
                        ErrorDomain::NETWORK,
                        "network is already active",
                    ));
                }
                n.active = true;
                let n = n.clone();
                drop(nets);
                self.emit(&n, network_event::STARTED);
                Reply::NetworkCreate(())
            }
            Call::NetworkDestroy(a) => {
                let n = Self::find(&mut nets, &a.net)?;
                if !n.active {
                    return Err(RemoteError::operation_invalid(
                        ErrorDomain::NETWORK,
                        format!("network '{}' is not active", n.name),
                    ));
                }
                n.active = false;
                let n = n.clone();
                if !n.persistent {
                    nets.retain(|x| x.uuid != n.uuid);
                }
                drop(nets);
                self.emit(&n, network_event::STOPPED);
                Reply::NetworkDestroy(())
            }
            Call::NetworkUndefine(a) => {
                let n = Self::find(&mut nets, &a.net)?.clone();
                if n.active {
                    if let Some(x) = nets.iter_mut().find(|x| x.uuid == n.uuid) {
                        x.persistent = false;
                    }
                } else {
                    nets.retain(|x| x.uuid != n.uuid);
                }
                drop(nets);
                self.emit(&n, network_event::UNDEFINED);
                Reply::NetworkUndefine(())
            }
            Call::NetworkUpdate(a) => {
                Self::find(&mut nets, &a.net)?;
                *self.last_update.lock().unwrap() = Some(a);
                Reply::NetworkUpdate(())
            }
            Call::NetworkGetDhcpLeases(a) => {
                let n = Self::find(&mut nets, &a.net)?;
                let lease = protocol::NetworkDhcpLease {
                    iface: n.bridge.clone(),
                    expirytime: 1_700_000_000,
                    kind: protocol::ip_addr_type::IPV4,
                    mac: Some("52:54:00:00:00:01".into()),
                    iaid: None,
                    ipaddr: "192.168.122.5".into(),
                    prefix: 24,
                    hostname: Some("guest1".into()),
                    clientid: Some("01:52:54:00:00:00:01".into()),
                };
                let leases: Vec<_> = [lease]
                    .into_iter()
                    .filter(|l| a.mac.is_none() || l.mac == a.mac)
                    .collect();
                let ret = leases.len() as u32;
                Reply::NetworkGetDhcpLeases(protocol::NetworkGetDhcpLeasesRet {
                    leases: if a.need_results != 0 {
                        leases
                    } else {
                        Vec::new()
                    },
                    ret,
                })
            }
            Call::NetworkListAllPorts(a) => {
                let n = Self::find(&mut nets, &a.network)?.reference();
                let ports: Vec<_> = self
                    .ports
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|p| p.0 == n.uuid)
                    .map(|p| protocol::NonnullNetworkPort {
                        net: n.clone(),
                        uuid: p.1,
                    })
                    .collect();
                let ret = ports.len() as u32;
                Reply::NetworkListAllPorts(protocol::NetworkListAllPortsRet {
                    ports: if a.need_results != 0 {
                        ports
                    } else {
                        Vec::new()
                    },
                    ret,
                })
            }
            Call::NetworkPortLookupByUuid(a) => {
                let n = Self::find(&mut nets, &a.network)?.reference();
                let found = self.ports.lock().unwrap().iter().any(|p| p.1 == a.uuid);
                if !found {
                    return Err(RemoteError::new(
                        virtnet_rpc::ErrorCode::NO_NETWORK_PORT,
                        ErrorDomain::NETWORK,
                        format!(
                            "network port with UUID {} does not exist",
                            protocol::format_uuid(&a.uuid)
                        ),
                    ));
                }
                Reply::NetworkPortLookupByUuid(protocol::NetworkPortRet {
                    port: protocol::NonnullNetworkPort {
                        net: n,
                        uuid: a.uuid,
                    },
                })
            }
            Call::NetworkPortGetXmlDesc(a) => Reply::NetworkPortGetXmlDesc(XmlRet {
                xml: format!(
                    "<networkport>\n  <uuid>{}</uuid>\n  <owner>\n    <name>guest1</name>\n  </owner>\n  <mac address='52:54:00:00:00:01'/>\n</networkport>\n",
                    protocol::format_uuid(&a.port.uuid)
                ),
            }),
            Call::NetworkPortGetParameters(a) => {
                let ports = self.ports.lock().unwrap();
                let set = ports
                    .iter()
                    .find(|p| p.1 == a.port.uuid)
                    .map(|p| p.2.clone())
                    .unwrap_or_default();
                // Like libvirt's network driver: every bandwidth field, as UINT.
                use protocol::port_bandwidth as bw;
                let params: Vec<_> = [
                    bw::IN_AVERAGE,
                    bw::IN_PEAK,
                    bw::IN_FLOOR,
                    bw::IN_BURST,
                    bw::OUT_AVERAGE,
                    bw::OUT_PEAK,
                    bw::OUT_BURST,
                ]
                .iter()
                .map(|f| {
                    set.iter()
                        .find(|p| p.field == *f)
                        .cloned()
                        .unwrap_or_else(|| {
                            protocol::TypedParam::new(*f, protocol::TypedParamValue::UInt(0))
                        })
                })
                .collect();
                let nparams = params.len() as i32;
                Reply::NetworkPortGetParameters(protocol::NetworkPortGetParametersRet {
                    params,
                    nparams,
                })
            }
            Call::NetworkPortSetParameters(a) => {
                protocol::validate_typed_params(&a.params)
                    .map_err(|e| RemoteError::invalid_arg(ErrorDomain::NETWORK, e))?;
                let mut ports = self.ports.lock().unwrap();
                if let Some(p) = ports.iter_mut().find(|p| p.1 == a.port.uuid) {
                    for param in a.params {
                        p.2.retain(|q| q.field != param.field);
                        p.2.push(param);
                    }
                }
                Reply::NetworkPortSetParameters(())
            }
            Call::ConnectNetworkEventRegisterAny(a) => {
                let callback_id = self.next_callback.fetch_add(1, Ordering::Relaxed);
                self.registrations.lock().unwrap().push(Registration {
                    callback_id,
                    event_id: a.event_id,
                    net: a.net,
                    sink: ctx.events.clone(),
                });
                Reply::ConnectNetworkEventRegisterAny(ConnectNetworkEventRegisterAnyRet {
                    callback_id,
                })
            }
            Call::ConnectNetworkEventDeregisterAny(a) => {
                let conn = ctx.conn.id;
                let mut regs = self.registrations.lock().unwrap();
                let before = regs.len();
                regs.retain(|r| {
                    !(r.callback_id == a.callback_id && r.sink.connection_id() == conn)
                });
                if regs.len() == before {
                    return Err(RemoteError::invalid_arg(
                        ErrorDomain::NETWORK,
                        format!(
                            "could not find event callback {} for deletion",
                            a.callback_id
                        ),
                    ));
                }
                Reply::ConnectNetworkEventDeregisterAny(())
            }
            other => {
                return Err(RemoteError::no_support(other.procedure().api_name()));
            }
        })
    }

    fn create(
        &self,
        nets: &mut Vec<FakeNetwork>,
        xml: &str,
    ) -> Result<NonnullNetwork, RemoteError> {
        let name = xml_tag(xml, "name").unwrap_or_default();
        if let Some(n) = nets.iter().find(|n| n.name == name) {
            if n.active {
                return Err(RemoteError::operation_invalid(
                    ErrorDomain::NETWORK,
                    format!("network is already active as '{}'", n.name),
                ));
            }
            let persistent = n.persistent;
            let r = self.define(nets, xml)?;
            if let Some(n) = nets.iter_mut().find(|n| n.uuid == r.uuid) {
                n.active = true;
                n.persistent = persistent;
                let n = n.clone();
                self.emit(&n, network_event::STARTED);
            }
            return Ok(r);
        }
        let r = self.define(nets, xml)?;
        if let Some(n) = nets.iter_mut().find(|n| n.uuid == r.uuid) {
            n.active = true;
            n.persistent = false;
            let n = n.clone();
            self.emit(&n, network_event::STARTED);
        }
        Ok(r)
    }

    fn define(
        &self,
        nets: &mut Vec<FakeNetwork>,
        xml: &str,
    ) -> Result<NonnullNetwork, RemoteError> {
        let name = xml_tag(xml, "name").ok_or_else(|| {
            RemoteError::xml_error(ErrorDomain::NETWORK, "missing network name element")
        })?;
        let uuid = match xml_tag(xml, "uuid") {
            Some(u) => protocol::parse_uuid(&u).ok_or_else(|| {
                RemoteError::xml_error(ErrorDomain::NETWORK, "malformed uuid element")
            })?,
            None => {
                let mut u = [0u8; 16];
                u[..8].copy_from_slice(&(nets.len() as u64 + 100).to_be_bytes());
                u[8..].copy_from_slice(&0x5a5a_5a5a_5a5a_5a5a_u64.to_be_bytes());
                u
            }
        };
        let bridge = xml_bridge(xml).unwrap_or_else(|| format!("virbr{}", nets.len()));
        let net = match nets.iter_mut().find(|n| n.name == name) {
            Some(n) => {
                n.persistent = true;
                n.bridge = bridge;
                n.clone()
            }
            None => {
                let n = FakeNetwork {
                    name,
                    uuid,
                    active: false,
                    persistent: true,
                    autostart: false,
                    bridge,
                };
                nets.push(n.clone());
                n
            }
        };
        self.emit(&net, network_event::DEFINED);
        Ok(net.reference())
    }
}

impl Handler for FakeDriver {
    fn call(&self, ctx: &mut CallContext<'_>, call: Call) -> Result<Reply, RemoteError> {
        self.calls.lock().unwrap().push(call.procedure());
        self.serials.lock().unwrap().push(ctx.serial);
        self.handle(ctx, call)
    }

    fn connected(&self, _conn: &ConnectionInfo, _events: &EventSink) {
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    fn unknown_procedure(&self, _conn: &ConnectionInfo, procedure: i32) {
        self.unknown.lock().unwrap().push(procedure);
    }

    fn disconnected(&self, conn: &ConnectionInfo) {
        self.registrations
            .lock()
            .unwrap()
            .retain(|r| r.sink.connection_id() != conn.id);
        self.disconnected.fetch_add(1, Ordering::Relaxed);
    }
}

/// A private temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "virtnet-rpc-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server listening on a Unix socket in a temp dir, one thread per
/// connection.
pub struct TestServer {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub driver: Arc<FakeDriver>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    pub results: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    pub fn start(driver: Arc<FakeDriver>, options: ServeOptions) -> Self {
        let dir = TempDir::new("srv");
        let socket = dir.path().join("sock");
        let listener = UnixListener::bind(&socket).expect("bind test socket");
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let stop = stop.clone();
            let driver = driver.clone();
            let results = results.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let driver = driver.clone();
                    let options = options.clone();
                    let results = results.clone();
                    std::thread::spawn(move || {
                        let r = serve_connection(stream, &*driver, &options);
                        results.lock().unwrap().push(match r {
                            Ok(()) => "ok".to_string(),
                            Err(e) => e.to_string(),
                        });
                    });
                }
            })
        };
        Self {
            dir,
            socket,
            driver,
            stop,
            accept: Some(accept),
            results,
        }
    }

    pub fn uri(&self) -> String {
        format!("network:///system?socket={}", self.socket.display())
    }

    /// Waits until `n` connections have ended, or the timeout passes.
    pub fn wait_disconnected(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.driver.disconnected.load(Ordering::Acquire) >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = UnixStream::connect(&self.socket);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Output of a command run with a time limit.
#[derive(Debug)]
pub struct Output {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command with a time limit, killing it when the limit passes.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn command");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(st) => break st.code(),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}
