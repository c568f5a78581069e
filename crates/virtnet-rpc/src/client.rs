//! A blocking client for the remote protocol.
//!
//! [`Client::connect_unix`] (or [`Client::from_io`] for any pair of byte
//! streams, such as the standard input and output of an `ssh … virtnet
//! tunnel` child) performs the handshake virsh 9.0 performs:
//!
//! 1. `AUTH_LIST` — accept `none` (or `polkit`, answered with `AUTH_POLKIT`);
//! 2. `CONNECT_SUPPORTS_FEATURE(PROGRAM_KEEPALIVE)`;
//! 3. `CONNECT_OPEN(name, flags)` with `VIR_CONNECT_RO` for read-only;
//! 4. `CONNECT_SUPPORTS_FEATURE` for `REMOTE_EVENT_CALLBACK` and
//!    `REMOTE_CLOSE_CALLBACK`.
//!
//! A reader thread demultiplexes incoming frames: replies are matched to
//! waiting calls by serial, keepalive PINGs are answered at once, event
//! MESSAGEs go to every [`Client::subscribe_events`] receiver — all while
//! calls are in flight. Calls may be made from several threads at once.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{RemoteError, RpcError};
use crate::message::{
    FrameReader, Header, KEEPALIVE_PROC_PING, KEEPALIVE_PROC_PONG, KEEPALIVE_PROGRAM, Message,
    MessageStatus, MessageType, REMOTE_PROGRAM, ReadOutcome, encode_frame,
};
use crate::protocol::{
    AuthListRet, AuthPolkitRet, ConnectOpenArgs, ConnectSupportsFeatureArgs,
    ConnectSupportsFeatureRet, Event, Procedure, auth, connect_flags, feature,
};
use crate::xdr::{XdrDecode, XdrEncode};

/// The URI name sent in `CONNECT_OPEN` when none is given.
pub const DEFAULT_NAME: &str = "network:///system";

/// Client-side keepalive: PING after `interval` without traffic from the
/// server, give up after `count` unanswered PINGs. virsh uses 5 s / 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientKeepalive {
    /// Idle time before a PING, and between PINGs.
    pub interval: Duration,
    /// Unanswered PINGs before the connection is declared dead.
    pub count: u32,
}

impl Default for ClientKeepalive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            count: 6,
        }
    }
}

/// How to open a connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// URI name sent in `CONNECT_OPEN` (`network:///system`); `None` sends a
    /// null name.
    pub name: Option<String>,
    /// Open read-only (`VIR_CONNECT_RO`).
    pub read_only: bool,
    /// Most time to wait for any reply; `None` waits indefinitely (the
    /// keepalive then detects a dead server).
    pub call_timeout: Option<Duration>,
    /// Ping an idle server, if it supports keepalive.
    pub keepalive: Option<ClientKeepalive>,
    /// Perform the handshake; `false` leaves a bare transport for callers
    /// that drive it themselves.
    pub handshake: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            name: Some(DEFAULT_NAME.to_owned()),
            read_only: false,
            call_timeout: Some(Duration::from_secs(300)),
            keepalive: Some(ClientKeepalive::default()),
            handshake: true,
        }
    }
}

/// What the server told us during the handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFeatures {
    /// The server speaks the keepalive program.
    pub keepalive: bool,
    /// Server-side event filtering by callback ID.
    pub event_callback: bool,
    /// Close callback RPCs.
    pub close_callback: bool,
}

#[derive(Default)]
struct State {
    /// Serial -> reply, once it arrived.
    pending: HashMap<u32, Option<Message>>,
    /// Why the connection is gone, once it is.
    closed: Option<String>,
    /// PONGs received.
    pongs: u64,
    /// Last time anything arrived from the server.
    last_rx: Option<Instant>,
    subscribers: Vec<mpsc::Sender<Event>>,
    /// Keepalive declared the server dead.
    keepalive_expired: bool,
}

struct Shared {
    writer: Mutex<Box<dyn Write + Send>>,
    state: Mutex<State>,
    cond: Condvar,
    next_serial: AtomicU32,
    shutdown: Option<UnixStream>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn write_frame(&self, frame: &[u8]) -> Result<(), RpcError> {
        let mut w = match self.writer.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        w.write_all(frame)?;
        w.flush()?;
        Ok(())
    }

    fn mark_closed(&self, why: String) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some(why);
        }
        st.subscribers.clear();
        drop(st);
        self.cond.notify_all();
        if let Some(s) = &self.shutdown {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A connection to a libvirt-protocol server.
pub struct Client {
    shared: Arc<Shared>,
    child: Option<Child>,
    reader: Option<JoinHandle<()>>,
    keepalive: Option<JoinHandle<()>>,
    call_timeout: Option<Duration>,
    features: ServerFeatures,
    opened: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("features", &self.features)
            .field("opened", &self.opened)
            .finish()
    }
}

impl Client {
    /// Connects to a Unix socket and performs the handshake.
    pub fn connect_unix(
        path: impl AsRef<Path>,
        options: &ConnectOptions,
    ) -> Result<Self, RpcError> {
        let stream = UnixStream::connect(path)?;
        let reader = stream.try_clone()?;
        let shutdown = stream.try_clone()?;
        Self::start(Box::new(reader), Box::new(stream), Some(shutdown), options)
    }

    /// Uses an arbitrary pair of byte streams (for example a tunnel
    /// process's stdout and stdin) and performs the handshake. Dropping the
    /// client drops `writer`, which should make the far end close `reader`.
    pub fn from_io<R, W>(reader: R, writer: W, options: &ConnectOptions) -> Result<Self, RpcError>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        Self::start(Box::new(reader), Box::new(writer), None, options)
    }

    /// Runs `command` (for example `ssh host virtnet tunnel`) and speaks the
    /// protocol over its standard input and output, then performs the
    /// handshake. The child's stderr is inherited. Closing the client closes
    /// the child's stdin and reaps it, killing it if it lingers.
    pub fn connect_command(
        mut command: Command,
        options: &ConnectOptions,
    ) -> Result<Self, RpcError> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RpcError::Protocol(
                "tunnel command has no stdio pipes".into(),
            ));
        };
        let shared = Self::new_shared(Box::new(stdin), None);
        let reader = Self::spawn_reader(&shared, Box::new(stdout));
        let mut client = Client {
            shared,
            child: Some(child),
            reader: None,
            keepalive: None,
            call_timeout: options.call_timeout,
            features: ServerFeatures::default(),
            opened: false,
        };
        client.reader = Some(reader?);
        client.finish_start(options)?;
        Ok(client)
    }

    fn new_shared(writer: Box<dyn Write + Send>, shutdown: Option<UnixStream>) -> Arc<Shared> {
        Arc::new(Shared {
            writer: Mutex::new(writer),
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            next_serial: AtomicU32::new(0),
            shutdown,
        })
    }

    fn spawn_reader(
        shared: &Arc<Shared>,
        reader: Box<dyn Read + Send>,
    ) -> Result<JoinHandle<()>, RpcError> {
        let shared = shared.clone();
        Ok(std::thread::Builder::new()
            .name("virtnet-rpc-client".into())
            .spawn(move || reader_loop(reader, &shared))?)
    }

    fn finish_start(&mut self, options: &ConnectOptions) -> Result<(), RpcError> {
        if options.handshake {
            self.handshake(options)?;
            if let (Some(ka), true) = (options.keepalive, self.features.keepalive) {
                self.start_keepalive(ka)?;
            }
        }
        Ok(())
    }

    fn start(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        shutdown: Option<UnixStream>,
        options: &ConnectOptions,
    ) -> Result<Self, RpcError> {
        let shared = Self::new_shared(writer, shutdown);
        let reader = Self::spawn_reader(&shared, reader)?;
        let mut client = Client {
            shared,
            child: None,
            reader: Some(reader),
            keepalive: None,
            call_timeout: options.call_timeout,
            features: ServerFeatures::default(),
            opened: false,
        };
        client.finish_start(options)?;
        Ok(client)
    }

    fn handshake(&mut self, options: &ConnectOptions) -> Result<(), RpcError> {
        let auth: AuthListRet = self.call(Procedure::AuthList, &())?;
        if !auth.types.is_empty() && !auth.types.contains(&auth::NONE) {
            if auth.types.contains(&auth::POLKIT) {
                let r: AuthPolkitRet = self.call(Procedure::AuthPolkit, &())?;
                if r.complete == 0 {
                    return Err(RpcError::Protocol(
                        "polkit authentication did not complete".into(),
                    ));
                }
            } else {
                return Err(RpcError::Protocol(format!(
                    "server requires unsupported authentication types {:?}",
                    auth.types
                )));
            }
        }
        self.features.keepalive = self.supports_feature(feature::PROGRAM_KEEPALIVE)?;
        let flags = if options.read_only {
            connect_flags::RO
        } else {
            0
        };
        self.call::<_, ()>(
            Procedure::ConnectOpen,
            &ConnectOpenArgs {
                name: options.name.clone(),
                flags,
            },
        )?;
        self.opened = true;
        self.features.event_callback = self.supports_feature(feature::REMOTE_EVENT_CALLBACK)?;
        self.features.close_callback = self.supports_feature(feature::REMOTE_CLOSE_CALLBACK)?;
        Ok(())
    }

    /// Asks `CONNECT_SUPPORTS_FEATURE`.
    pub fn supports_feature(&self, feature: i32) -> Result<bool, RpcError> {
        let r: ConnectSupportsFeatureRet = self.call(
            Procedure::ConnectSupportsFeature,
            &ConnectSupportsFeatureArgs { feature },
        )?;
        Ok(r.supported != 0)
    }

    /// What the server reported during the handshake.
    pub fn features(&self) -> &ServerFeatures {
        &self.features
    }

    fn start_keepalive(&mut self, ka: ClientKeepalive) -> Result<(), RpcError> {
        let shared = self.shared.clone();
        let handle = std::thread::Builder::new()
            .name("virtnet-rpc-keepalive".into())
            .spawn(move || keepalive_loop(&shared, ka))?;
        self.keepalive = Some(handle);
        Ok(())
    }

    /// Calls `procedure` with `args` and decodes its return value.
    pub fn call<A, R>(&self, procedure: Procedure, args: &A) -> Result<R, RpcError>
    where
        A: XdrEncode + ?Sized,
        R: XdrDecode,
    {
        let body = args.to_xdr()?;
        let reply = self.call_raw(procedure.number(), &body)?;
        Ok(R::from_xdr(&reply)?)
    }

    /// Calls a procedure by number with an encoded body and returns the
    /// encoded return value.
    pub fn call_raw(&self, procedure: i32, body: &[u8]) -> Result<Vec<u8>, RpcError> {
        let serial = self.shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let header = Header::remote(procedure, MessageType::Call, serial, MessageStatus::Ok);
        let frame = crate::message::encode_frame_raw(&header, body)?;
        {
            let mut st = self.shared.lock();
            if let Some(why) = &st.closed {
                return Err(closed_error(why, st.keepalive_expired));
            }
            st.pending.insert(serial, None);
        }
        if let Err(e) = self.shared.write_frame(&frame) {
            self.shared.lock().pending.remove(&serial);
            return Err(e);
        }
        let deadline = self.call_timeout.map(|t| Instant::now() + t);
        let mut st = self.shared.lock();
        loop {
            if let Some(Some(_)) = st.pending.get(&serial) {
                let msg = st.pending.remove(&serial).flatten();
                drop(st);
                let Some(msg) = msg else {
                    return Err(RpcError::Closed);
                };
                return decode_reply(msg);
            }
            if st.closed.is_some() {
                st.pending.remove(&serial);
                let why = st.closed.clone().unwrap_or_default();
                return Err(closed_error(&why, st.keepalive_expired));
            }
            st = match deadline {
                None => match self.shared.cond.wait(st) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                },
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        st.pending.remove(&serial);
                        return Err(RpcError::Timeout(procedure));
                    }
                    match self.shared.cond.wait_timeout(st, d - now) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    }
                }
            };
        }
    }

    /// Receives every event message that arrives from now on. Events are
    /// delivered while calls are in flight; dropping the receiver
    /// unsubscribes.
    pub fn subscribe_events(&self) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        self.shared.lock().subscribers.push(tx);
        rx
    }

    /// Sends a keepalive PING and waits for the PONG.
    pub fn ping(&self, timeout: Duration) -> Result<Duration, RpcError> {
        let start = Instant::now();
        let before = self.shared.lock().pongs;
        let frame = encode_frame(&Header::keepalive(KEEPALIVE_PROC_PING), &())?;
        self.shared.write_frame(&frame)?;
        let deadline = start + timeout;
        let mut st = self.shared.lock();
        loop {
            if st.pongs > before {
                return Ok(start.elapsed());
            }
            if let Some(why) = &st.closed {
                return Err(closed_error(why, st.keepalive_expired));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RpcError::Timeout(KEEPALIVE_PROC_PING));
            }
            st = match self.shared.cond.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// True while the connection is usable.
    pub fn is_alive(&self) -> bool {
        self.shared.lock().closed.is_none()
    }

    /// Sends `CONNECT_CLOSE` (if the connection was opened) and shuts the
    /// connection down.
    pub fn close(mut self) -> Result<(), RpcError> {
        let res = if self.opened && self.is_alive() {
            self.opened = false;
            self.call::<_, ()>(Procedure::ConnectClose, &())
        } else {
            Ok(())
        };
        self.shutdown();
        res
    }

    fn shutdown(&mut self) {
        self.shared
            .mark_closed("connection closed by client".into());
        if let Some(h) = self.keepalive.take() {
            let _ = h.join();
        }
        if let Some(mut child) = self.child.take() {
            // Closing the child's stdin asks it to finish; give it a moment,
            // then make sure it does.
            *self.shared.writer.lock().unwrap_or_else(|p| p.into_inner()) = Box::new(io::sink());
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
            if let Some(h) = self.reader.take() {
                let _ = h.join();
            }
        }
        // Only join the reader when we could unblock it (Unix sockets, child
        // processes); a generic reader ends when the peer closes its end.
        if self.shared.shutdown.is_some() {
            if let Some(h) = self.reader.take() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn closed_error(why: &str, keepalive: bool) -> RpcError {
    if keepalive {
        RpcError::KeepaliveTimeout
    } else {
        log::debug!("call on closed connection: {why}");
        RpcError::Closed
    }
}

fn decode_reply(msg: Message) -> Result<Vec<u8>, RpcError> {
    match msg.header.status {
        MessageStatus::Ok => Ok(msg.body),
        MessageStatus::Error => Err(RpcError::Remote(RemoteError::from_xdr(&msg.body)?)),
        MessageStatus::Continue => Err(RpcError::Protocol(
            "unexpected CONTINUE status in a reply".into(),
        )),
    }
}

fn reader_loop(reader: Box<dyn Read + Send>, shared: &Shared) {
    let mut frames = FrameReader::new(reader);
    let why = loop {
        let msg = match frames.read() {
            Ok(ReadOutcome::Message(m)) => m,
            Ok(ReadOutcome::TimedOut) => continue,
            Ok(ReadOutcome::Eof) => break "connection closed by server".to_owned(),
            Err(e) => break format!("connection broken: {e}"),
        };
        shared.lock().last_rx = Some(Instant::now());
        let h = msg.header;
        if h.program == KEEPALIVE_PROGRAM {
            if h.procedure == KEEPALIVE_PROC_PING {
                if let Ok(frame) = encode_frame(&Header::keepalive(KEEPALIVE_PROC_PONG), &()) {
                    if let Err(e) = shared.write_frame(&frame) {
                        break format!("cannot answer keepalive: {e}");
                    }
                }
            } else if h.procedure == KEEPALIVE_PROC_PONG {
                shared.lock().pongs += 1;
                shared.cond.notify_all();
            }
            continue;
        }
        if h.program != REMOTE_PROGRAM {
            log::debug!("ignoring message for program {:#x}", h.program);
            continue;
        }
        match h.kind {
            MessageType::Reply | MessageType::ReplyWithFds => {
                let mut st = shared.lock();
                match st.pending.get_mut(&h.serial) {
                    Some(slot @ None) => {
                        *slot = Some(msg);
                        drop(st);
                        shared.cond.notify_all();
                    }
                    _ => log::warn!(
                        "reply with serial {} to procedure {} matches no call",
                        h.serial,
                        h.procedure
                    ),
                }
            }
            MessageType::Message => deliver_event(shared, &msg),
            other => log::debug!("ignoring {other:?} message"),
        }
    };
    log::debug!("client reader stopping: {why}");
    shared.mark_closed(why);
}

fn deliver_event(shared: &Shared, msg: &Message) {
    let Some(procedure) = Procedure::from_i32(msg.header.procedure) else {
        log::debug!("ignoring unknown event procedure {}", msg.header.procedure);
        return;
    };
    match Event::decode(procedure, &msg.body) {
        Ok(Some(event)) => {
            let mut st = shared.lock();
            st.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
        }
        Ok(None) => log::debug!("ignoring non-event message {}", procedure.name()),
        Err(e) => log::warn!("cannot decode {} event: {e}", procedure.name()),
    }
}

fn keepalive_loop(shared: &Shared, ka: ClientKeepalive) {
    let mut sent_since_rx: u32 = 0;
    let mut last_seen = shared.lock().last_rx;
    loop {
        let st = shared.lock();
        if st.closed.is_some() {
            return;
        }
        let (st, _) = match shared.cond.wait_timeout(st, ka.interval) {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        if st.closed.is_some() {
            return;
        }
        if st.last_rx != last_seen {
            last_seen = st.last_rx;
            sent_since_rx = 0;
        }
        let idle = st.last_rx.map(|t| t.elapsed()).unwrap_or(ka.interval);
        drop(st);
        if idle < ka.interval {
            continue;
        }
        if sent_since_rx >= ka.count {
            log::warn!("no keepalive response from server after {sent_since_rx} pings");
            shared.lock().keepalive_expired = true;
            shared.mark_closed("keepalive timeout".into());
            return;
        }
        let Ok(frame) = encode_frame(&Header::keepalive(KEEPALIVE_PROC_PING), &()) else {
            return;
        };
        if shared.write_frame(&frame).is_err() {
            shared.mark_closed("cannot send keepalive".into());
            return;
        }
        sent_since_rx += 1;
    }
}
