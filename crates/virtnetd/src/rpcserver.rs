//! virtnetd's side of libvirt's remote protocol: the listening sockets, one
//! thread per client connection, the mapping of each procedure to the
//! driver, and the fan-out of events to the clients that registered for
//! them.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use virtnet_conf::Uuid;
use virtnet_rpc::protocol::{self, *};
use virtnet_rpc::{
    Call, CallContext, ConnectionInfo, ErrorCode, ErrorDomain, Event, EventSink, Handler,
    Procedure, RemoteError, Reply, ServeOptions,
};

use crate::driver::{Driver, NetRef};
use crate::error::Error;
use crate::events::{EventKind, NetworkEvent};

/// The libvirt version whose network XML and behaviour virtnet follows,
/// reported by `virConnectGetLibVersion` (major * 1,000,000 + minor * 1,000
/// + release).
pub const LIBVIRT_COMPAT_VERSION: u64 = 11_003_000;

/// virtnet's own version, reported by `virConnectGetVersion`.
pub fn own_version() -> u64 {
    let parse = |s: &str| s.parse::<u64>().unwrap_or(0);
    parse(env!("CARGO_PKG_VERSION_MAJOR")) * 1_000_000
        + parse(env!("CARGO_PKG_VERSION_MINOR")) * 1_000
        + parse(env!("CARGO_PKG_VERSION_PATCH"))
}

fn remote(e: Error) -> RemoteError {
    RemoteError::new(ErrorCode(e.code()), ErrorDomain(e.domain()), e.detail())
}

fn net_ref(n: &NonnullNetwork) -> NetRef {
    NetRef {
        name: n.name.clone(),
        uuid: Uuid(n.uuid),
    }
}

fn nonnull(r: &NetRef) -> NonnullNetwork {
    NonnullNetwork {
        name: r.name.clone(),
        uuid: r.uuid.0,
    }
}

/// One client's registration for network events.
struct Registration {
    conn: u64,
    event_id: i32,
    network: Option<Uuid>,
    sink: EventSink,
}

/// Serves the driver over libvirt's remote protocol.
pub struct Server {
    driver: Arc<Driver>,
    registrations: Mutex<HashMap<i32, Registration>>,
    next_callback: AtomicI32,
    busy_poll: std::time::Duration,
}

/// How long a connection's thread polls for the next call before it
/// sleeps (see [`ServeOptions::busy_poll`]); `--busy-poll-us` sets it.
pub const DEFAULT_BUSY_POLL: std::time::Duration = std::time::Duration::from_micros(200);

impl Server {
    /// A server for `driver`; starts the thread that delivers the driver's
    /// events to registered clients. Each connection polls for its next
    /// call for `busy_poll` before sleeping.
    pub fn new(driver: Arc<Driver>, busy_poll: std::time::Duration) -> Arc<Server> {
        let server = Arc::new(Server {
            driver: driver.clone(),
            registrations: Mutex::new(HashMap::new()),
            next_callback: AtomicI32::new(1),
            busy_poll,
        });
        let (tx, rx) = mpsc::channel::<NetworkEvent>();
        driver.events.subscribe(tx);
        let weak = Arc::downgrade(&server);
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                while let Ok(ev) = rx.recv() {
                    match weak.upgrade() {
                        Some(s) => s.deliver(&ev),
                        None => break,
                    }
                }
            })
            .map(drop)
            .unwrap_or_else(|e| log::error!("cannot start the event thread: {e}"));
        server
    }

    fn registrations(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Registration>> {
        self.registrations.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, ev: &NetworkEvent) {
        let mut regs = self.registrations();
        let mut dead = Vec::new();
        let net = NonnullNetwork {
            name: ev.name.clone(),
            uuid: ev.uuid.0,
        };
        for (id, reg) in regs.iter() {
            if reg.network.is_some_and(|u| u != ev.uuid) {
                continue;
            }
            let msg = match (&ev.kind, reg.event_id) {
                (EventKind::Lifecycle(l), network_event::ID_LIFECYCLE) => {
                    Event::NetworkEventLifecycle(NetworkEventLifecycleMsg {
                        callback_id: *id,
                        net: net.clone(),
                        event: *l as i32,
                        detail: 0,
                    })
                }
                (EventKind::MetadataChange { kind, nsuri }, network_event::ID_METADATA_CHANGE) => {
                    Event::NetworkEventCallbackMetadataChange(
                        NetworkEventCallbackMetadataChangeMsg {
                            callback_id: *id,
                            net: net.clone(),
                            kind: *kind,
                            nsuri: nsuri.clone(),
                        },
                    )
                }
                _ => continue,
            };
            if reg.sink.send(&msg).is_err() {
                dead.push(*id);
            }
        }
        for id in dead {
            regs.remove(&id);
        }
    }

    /// Binds the read-write (mode 0600) and read-only (mode 0666) sockets,
    /// replacing socket files a previous daemon left. Call with the
    /// instance lock held ([`lock_instance`]), so a live daemon's sockets
    /// are never replaced.
    pub fn bind(rw: &Path, ro: &Path) -> io::Result<(UnixListener, UnixListener)> {
        Ok((bind_socket(rw, 0o600)?, bind_socket(ro, 0o666)?))
    }

    /// Accepts clients on `listener` forever, one thread each.
    pub fn serve(self: &Arc<Self>, listener: UnixListener, read_only: bool) {
        for stream in listener.incoming() {
            match stream {
                Ok(s) => self.spawn_connection(s, read_only),
                Err(e) => {
                    log::warn!("accept: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }

    fn spawn_connection(self: &Arc<Self>, stream: UnixStream, read_only: bool) {
        let server = self.clone();
        let res = std::thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                let opts = ServeOptions {
                    read_only,
                    busy_poll: server.busy_poll,
                    ..ServeOptions::default()
                };
                if let Err(e) = virtnet_rpc::serve_connection(stream, &*server, &opts) {
                    log::debug!("client connection ended: {e}");
                }
            });
        if let Err(e) = res {
            log::error!("cannot start a client thread: {e}");
        }
    }

    fn audit(ctx: &CallContext<'_>, what: &str) {
        match ctx.conn.peer {
            Some(p) => log::info!("client uid={} pid={}: {what}", p.uid, p.pid),
            None => log::info!("client (tunnel): {what}"),
        }
    }

    fn dispatch(&self, ctx: &mut CallContext<'_>, call: Call) -> Result<Reply, Error> {
        let d = &*self.driver;
        Ok(match call {
            Call::ConnectOpen(_) => Reply::ConnectOpen(()),
            Call::ConnectClose(()) => Reply::ConnectClose(()),
            Call::AuthList(()) => Reply::AuthList(AuthListRet {
                types: vec![protocol::auth::NONE],
            }),
            Call::AuthPolkit(()) => Reply::AuthPolkit(AuthPolkitRet { complete: 1 }),
            Call::ConnectSetIdentity(_) => Reply::ConnectSetIdentity(()),
            Call::ConnectSupportsFeature(a) => {
                let supported = matches!(
                    a.feature,
                    feature::NETWORK_UPDATE_HAS_CORRECT_ORDER
                        | feature::REMOTE_EVENT_CALLBACK
                        | feature::REMOTE_CLOSE_CALLBACK
                        | feature::TYPED_PARAM_STRING
                );
                Reply::ConnectSupportsFeature(ConnectSupportsFeatureRet {
                    supported: i32::from(supported),
                })
            }
            Call::ConnectGetType(()) => Reply::ConnectGetType(ConnectGetTypeRet {
                r#type: "network".into(),
            }),
            Call::ConnectGetUri(()) => Reply::ConnectGetUri(ConnectGetUriRet {
                uri: ctx
                    .conn
                    .open
                    .as_ref()
                    .and_then(|o| o.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "virtnet:///system".into()),
            }),
            Call::ConnectGetHostname(()) => Reply::ConnectGetHostname(ConnectGetHostnameRet {
                hostname: nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "localhost".into()),
            }),
            Call::ConnectGetVersion(()) => Reply::ConnectGetVersion(ConnectGetVersionRet {
                hv_ver: own_version(),
            }),
            Call::ConnectGetLibVersion(()) => {
                Reply::ConnectGetLibVersion(ConnectGetLibVersionRet {
                    lib_ver: LIBVIRT_COMPAT_VERSION,
                })
            }
            Call::ConnectIsSecure(()) => Reply::ConnectIsSecure(ConnectIsSecureRet { secure: 1 }),
            Call::ConnectRegisterCloseCallback(()) => Reply::ConnectRegisterCloseCallback(()),
            Call::ConnectUnregisterCloseCallback(()) => Reply::ConnectUnregisterCloseCallback(()),

            Call::ConnectListAllNetworks(a) => {
                let list = d.list_all(a.flags);
                let ret = u32::try_from(list.len()).unwrap_or(u32::MAX);
                let nets = if a.need_results != 0 {
                    list.iter().map(|i| nonnull(&i.net)).collect()
                } else {
                    Vec::new()
                };
                Reply::ConnectListAllNetworks(ConnectListAllNetworksRet { nets, ret })
            }
            Call::ConnectNumOfNetworks(()) => {
                Reply::ConnectNumOfNetworks(ConnectNumOfNetworksRet {
                    num: i32::try_from(d.counts().0).unwrap_or(i32::MAX),
                })
            }
            Call::ConnectNumOfDefinedNetworks(()) => {
                Reply::ConnectNumOfDefinedNetworks(ConnectNumOfNetworksRet {
                    num: i32::try_from(d.counts().1).unwrap_or(i32::MAX),
                })
            }
            Call::ConnectListNetworks(a) => Reply::ConnectListNetworks(ConnectListNetworksRet {
                names: d.names(true, usize::try_from(a.maxnames).unwrap_or(0)),
            }),
            Call::ConnectListDefinedNetworks(a) => {
                Reply::ConnectListDefinedNetworks(ConnectListNetworksRet {
                    names: d.names(false, usize::try_from(a.maxnames).unwrap_or(0)),
                })
            }
            Call::NetworkLookupByName(a) => Reply::NetworkLookupByName(NetworkRet {
                net: nonnull(&d.lookup_by_name(&a.name)?),
            }),
            Call::NetworkLookupByUuid(a) => Reply::NetworkLookupByUuid(NetworkRet {
                net: nonnull(&d.lookup_by_uuid(&Uuid(a.uuid))?),
            }),
            Call::NetworkDefineXml(a) => {
                let r = d.define_xml(&a.xml, 0)?;
                Self::audit(ctx, &format!("defined network '{}'", r.name));
                Reply::NetworkDefineXml(NetworkRet { net: nonnull(&r) })
            }
            Call::NetworkDefineXmlFlags(a) => {
                let r = d.define_xml(&a.xml, a.flags)?;
                Self::audit(ctx, &format!("defined network '{}'", r.name));
                Reply::NetworkDefineXmlFlags(NetworkRet { net: nonnull(&r) })
            }
            Call::NetworkCreateXml(a) => {
                let r = d.create_xml(&a.xml, 0)?;
                Self::audit(ctx, &format!("created network '{}'", r.name));
                Reply::NetworkCreateXml(NetworkRet { net: nonnull(&r) })
            }
            Call::NetworkCreateXmlFlags(a) => {
                let r = d.create_xml(&a.xml, a.flags)?;
                Self::audit(ctx, &format!("created network '{}'", r.name));
                Reply::NetworkCreateXmlFlags(NetworkRet { net: nonnull(&r) })
            }
            Call::NetworkCreate(a) => {
                d.create(&net_ref(&a.net))?;
                Self::audit(ctx, &format!("started network '{}'", a.net.name));
                Reply::NetworkCreate(())
            }
            Call::NetworkDestroy(a) => {
                d.destroy(&net_ref(&a.net))?;
                Self::audit(ctx, &format!("destroyed network '{}'", a.net.name));
                Reply::NetworkDestroy(())
            }
            Call::NetworkUndefine(a) => {
                d.undefine(&net_ref(&a.net))?;
                Self::audit(ctx, &format!("undefined network '{}'", a.net.name));
                Reply::NetworkUndefine(())
            }
            Call::NetworkGetXmlDesc(a) => Reply::NetworkGetXmlDesc(XmlRet {
                xml: d.xml_desc(&net_ref(&a.net), a.flags)?,
            }),
            Call::NetworkGetAutostart(a) => Reply::NetworkGetAutostart(NetworkGetAutostartRet {
                autostart: i32::from(d.autostart_of(&net_ref(&a.net))?),
            }),
            Call::NetworkSetAutostart(a) => {
                d.set_autostart(&net_ref(&a.net), a.autostart != 0)?;
                Self::audit(
                    ctx,
                    &format!(
                        "set autostart of network '{}' to {}",
                        a.net.name,
                        a.autostart != 0
                    ),
                );
                Reply::NetworkSetAutostart(())
            }
            Call::NetworkGetBridgeName(a) => Reply::NetworkGetBridgeName(NetworkGetBridgeNameRet {
                name: d.bridge_name(&net_ref(&a.net))?,
            }),
            Call::NetworkIsActive(a) => Reply::NetworkIsActive(NetworkIsActiveRet {
                active: i32::from(d.info(&net_ref(&a.net))?.active),
            }),
            Call::NetworkIsPersistent(a) => Reply::NetworkIsPersistent(NetworkIsPersistentRet {
                persistent: i32::from(d.info(&net_ref(&a.net))?.persistent),
            }),

            Call::NetworkUpdate(a) => {
                d.update(
                    &net_ref(&a.net),
                    a.command,
                    a.section,
                    a.parent_index,
                    &a.xml,
                    a.flags,
                )?;
                Self::audit(
                    ctx,
                    &format!(
                        "updated network '{}' (command {}, section {}, flags {})",
                        a.net.name, a.command, a.section, a.flags
                    ),
                );
                Reply::NetworkUpdate(())
            }
            Call::NetworkGetDhcpLeases(a) => {
                if a.flags != 0 {
                    return Err(Error::InvalidArg(format!(
                        "unsupported flags (0x{:x}) in function networkGetDHCPLeases",
                        a.flags
                    )));
                }
                let leases = d.dhcp_leases(&net_ref(&a.net), a.mac.as_deref())?;
                let ret = u32::try_from(leases.len()).unwrap_or(u32::MAX);
                let leases = if a.need_results != 0 {
                    leases
                        .into_iter()
                        .map(|l| NetworkDhcpLease {
                            iface: l.iface,
                            expirytime: l.expiry_time,
                            kind: match l.family {
                                virtnet_conf::AddressFamily::Ipv6 => 1,
                                _ => 0,
                            },
                            mac: Some(l.mac),
                            iaid: l.iaid,
                            ipaddr: l.ip_address,
                            prefix: l.prefix,
                            hostname: l.hostname,
                            clientid: l.client_id,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Reply::NetworkGetDhcpLeases(NetworkGetDhcpLeasesRet { leases, ret })
            }
            Call::NetworkSetMetadata(a) => {
                d.set_metadata(
                    &net_ref(&a.network),
                    a.kind,
                    a.metadata.as_deref(),
                    a.key.as_deref(),
                    a.uri.as_deref(),
                    a.flags,
                )?;
                Self::audit(
                    ctx,
                    &format!(
                        "set metadata (type {}) of network '{}'",
                        a.kind, a.network.name
                    ),
                );
                Reply::NetworkSetMetadata(())
            }
            Call::NetworkGetMetadata(a) => Reply::NetworkGetMetadata(NetworkGetMetadataRet {
                metadata: d.get_metadata(
                    &net_ref(&a.network),
                    a.kind,
                    a.uri.as_deref(),
                    a.flags,
                )?,
            }),
            Call::NetworkListAllPorts(a) => {
                check_no_flags(a.flags, "virNetworkListAllPorts")?;
                let list = d.ports(&net_ref(&a.network))?;
                let ret = u32::try_from(list.len()).unwrap_or(u32::MAX);
                let ports = if a.need_results != 0 {
                    list.iter()
                        .map(|p| NonnullNetworkPort {
                            net: a.network.clone(),
                            uuid: p.uuid.0,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Reply::NetworkListAllPorts(NetworkListAllPortsRet { ports, ret })
            }
            Call::NetworkPortLookupByUuid(a) => {
                let net = d.port_lookup(&net_ref(&a.network), &Uuid(a.uuid))?;
                Reply::NetworkPortLookupByUuid(NetworkPortRet {
                    port: NonnullNetworkPort {
                        net: nonnull(&net),
                        uuid: a.uuid,
                    },
                })
            }
            Call::NetworkPortCreateXml(a) => {
                let (net, uuid) = d.port_create(&net_ref(&a.network), &a.xml, a.flags)?;
                Self::audit(
                    ctx,
                    &format!("created port {uuid} on network '{}'", a.network.name),
                );
                Reply::NetworkPortCreateXml(NetworkPortRet {
                    port: NonnullNetworkPort {
                        net: nonnull(&net),
                        uuid: uuid.0,
                    },
                })
            }
            Call::NetworkPortGetXmlDesc(a) => {
                check_no_flags(a.flags, "virNetworkPortGetXMLDesc")?;
                Reply::NetworkPortGetXmlDesc(XmlRet {
                    xml: d.port(&net_ref(&a.port.net), &Uuid(a.port.uuid))?.to_xml(),
                })
            }
            Call::NetworkPortDelete(a) => {
                check_no_flags(a.flags, "virNetworkPortDelete")?;
                d.port_delete(&net_ref(&a.port.net), &Uuid(a.port.uuid))?;
                Self::audit(
                    ctx,
                    &format!(
                        "deleted port {} of network '{}'",
                        Uuid(a.port.uuid),
                        a.port.net.name
                    ),
                );
                Reply::NetworkPortDelete(())
            }
            Call::NetworkPortGetParameters(a) => {
                check_no_flags(a.flags, "virNetworkPortGetParameters")?;
                let port = d.port(&net_ref(&a.port.net), &Uuid(a.port.uuid))?;
                let params = bandwidth_params(port.bandwidth.as_ref());
                let nparams = i32::try_from(params.len()).unwrap_or(0);
                Reply::NetworkPortGetParameters(NetworkPortGetParametersRet { params, nparams })
            }
            Call::NetworkPortSetParameters(a) => {
                check_no_flags(a.flags, "virNetworkPortSetParameters")?;
                validate_typed_params(&a.params).map_err(Error::InvalidArg)?;
                let bw = bandwidth_from_params(&a.params)?;
                d.port_set_bandwidth(&net_ref(&a.port.net), &Uuid(a.port.uuid), bw)?;
                Self::audit(
                    ctx,
                    &format!(
                        "set bandwidth of port {} of network '{}'",
                        Uuid(a.port.uuid),
                        a.port.net.name
                    ),
                );
                Reply::NetworkPortSetParameters(())
            }
            Call::ConnectNetworkEventRegisterAny(a) => {
                if a.event_id != network_event::ID_LIFECYCLE
                    && a.event_id != network_event::ID_METADATA_CHANGE
                {
                    return Err(Error::InvalidArg(format!(
                        "unsupported event ID {}",
                        a.event_id
                    )));
                }
                let network = match &a.net {
                    Some(n) => Some(d.info(&net_ref(n))?.net.uuid),
                    None => None,
                };
                let id = self.next_callback.fetch_add(1, Ordering::Relaxed);
                self.registrations().insert(
                    id,
                    Registration {
                        conn: ctx.conn.id,
                        event_id: a.event_id,
                        network,
                        sink: ctx.events.clone(),
                    },
                );
                Reply::ConnectNetworkEventRegisterAny(ConnectNetworkEventRegisterAnyRet {
                    callback_id: id,
                })
            }
            Call::ConnectNetworkEventDeregisterAny(a) => {
                let mut regs = self.registrations();
                match regs.get(&a.callback_id) {
                    Some(r) if r.conn == ctx.conn.id => {
                        regs.remove(&a.callback_id);
                    }
                    _ => {
                        return Err(Error::InvalidArg(format!(
                            "callback ID {} not registered",
                            a.callback_id
                        )));
                    }
                }
                Reply::ConnectNetworkEventDeregisterAny(())
            }
        })
    }
}

impl Handler for Server {
    fn call(&self, ctx: &mut CallContext<'_>, call: Call) -> Result<Reply, RemoteError> {
        let lifecycle = matches!(
            call.procedure(),
            Procedure::NetworkCreate
                | Procedure::NetworkCreateXml
                | Procedure::NetworkCreateXmlFlags
                | Procedure::NetworkDestroy
                | Procedure::NetworkUndefine
                | Procedure::NetworkUpdate
        );
        let result = self.dispatch(ctx, call).map_err(remote);
        if lifecycle {
            // Starting and stopping networks allocates and frees a lot
            // (firewall transactions, dnsmasq files); give the freed memory
            // back instead of keeping it in malloc's free lists.
            // SAFETY: malloc_trim only releases free heap memory.
            unsafe {
                libc::malloc_trim(0);
            }
        }
        result
    }

    fn connected(&self, conn: &ConnectionInfo, _events: &EventSink) {
        match conn.peer {
            Some(p) => log::debug!(
                "connection {} from uid={} pid={}{}",
                conn.id,
                p.uid,
                p.pid,
                if conn.read_only { " (read-only)" } else { "" }
            ),
            None => log::debug!("connection {}", conn.id),
        }
    }

    fn unknown_procedure(&self, conn: &ConnectionInfo, procedure: i32) {
        log::info!("connection {}: unknown procedure {procedure}", conn.id);
    }

    fn disconnected(&self, conn: &ConnectionInfo) {
        self.registrations().retain(|_, r| r.conn != conn.id);
    }
}

fn check_no_flags(flags: u32, api: &str) -> Result<(), Error> {
    if flags == 0 {
        Ok(())
    } else {
        Err(Error::InvalidArg(format!(
            "unsupported flags (0x{flags:x}) in function {api}"
        )))
    }
}

/// A port's bandwidth as typed parameters: every field, as libvirt-python
/// expects to learn their types from a get before a set.
fn bandwidth_params(bw: Option<&virtnet_conf::Bandwidth>) -> Vec<TypedParam> {
    use protocol::port_bandwidth as f;
    let inb = bw.and_then(|b| b.inbound).unwrap_or_default();
    let out = bw.and_then(|b| b.outbound).unwrap_or_default();
    let v = |x: u64| TypedParamValue::UInt(u32::try_from(x).unwrap_or(u32::MAX));
    vec![
        TypedParam::new(f::IN_AVERAGE, v(inb.average)),
        TypedParam::new(f::IN_PEAK, v(inb.peak)),
        TypedParam::new(f::IN_FLOOR, v(inb.floor)),
        TypedParam::new(f::IN_BURST, v(inb.burst)),
        TypedParam::new(f::OUT_AVERAGE, v(out.average)),
        TypedParam::new(f::OUT_PEAK, v(out.peak)),
        TypedParam::new(f::OUT_BURST, v(out.burst)),
    ]
}

/// libvirt's `networkPortSetParameters`: the fields given replace the
/// port's bandwidth; a direction without average (or floor) is removed.
fn bandwidth_from_params(params: &[TypedParam]) -> Result<Option<virtnet_conf::Bandwidth>, Error> {
    use protocol::port_bandwidth as f;
    let mut inb = virtnet_conf::BandwidthRate::default();
    let mut out = virtnet_conf::BandwidthRate::default();
    for p in params {
        let value = match &p.value {
            TypedParamValue::UInt(v) => u64::from(*v),
            _ => {
                return Err(Error::InvalidArg(format!(
                    "invalid type for parameter '{}'",
                    p.field
                )));
            }
        };
        match p.field.as_str() {
            x if x == f::IN_AVERAGE => inb.average = value,
            x if x == f::IN_PEAK => inb.peak = value,
            x if x == f::IN_BURST => inb.burst = value,
            x if x == f::IN_FLOOR => inb.floor = value,
            x if x == f::OUT_AVERAGE => out.average = value,
            x if x == f::OUT_PEAK => out.peak = value,
            x if x == f::OUT_BURST => out.burst = value,
            _ => {}
        }
    }
    let bw = virtnet_conf::Bandwidth {
        inbound: (inb.average != 0 || inb.floor != 0).then_some(inb),
        outbound: (out.average != 0).then_some(out),
    };
    Ok((bw.inbound.is_some() || bw.outbound.is_some()).then_some(bw))
}

fn bind_socket(path: &Path, mode: u32) -> io::Result<UnixListener> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// Makes this daemon the only one using `run_dir`: an exclusive lock on
/// `RUN/virtnetd.lock`, held until the process exits (the kernel drops it
/// then, however the process ends). A daemon that is still exiting gets up
/// to `wait` to let go.
pub fn lock_instance(run_dir: &Path, wait: std::time::Duration) -> io::Result<fs::File> {
    use std::os::fd::AsRawFd;
    let path = run_dir.join("virtnetd.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        // SAFETY: flock on an open descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(file);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(err);
        }
        if std::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "another virtnetd is running with run directory '{}' (it holds {})",
                    run_dir.display(),
                    path.display()
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn second_instance_is_refused_while_the_first_holds_the_lock() {
        let dir = std::env::temp_dir().join(format!("virtnet-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let first = lock_instance(&dir, Duration::ZERO).unwrap();
        let started = Instant::now();
        let err = lock_instance(&dir, Duration::from_millis(100)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("another virtnetd"), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(100));
        drop(first);
        let again = lock_instance(&dir, Duration::ZERO);
        assert!(again.is_ok(), "lock not released: {again:?}");
        drop(again);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_socket_file_is_replaced() {
        let dir = std::env::temp_dir().join(format!("virtnet-sock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let listener = bind_socket(&path, 0o600).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        drop(listener);
        fs::remove_dir_all(&dir).unwrap();
    }
}
