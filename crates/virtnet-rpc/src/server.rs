//! The server half: drive one client connection against a [`Handler`].
//!
//! The daemon owns the listening sockets, the authentication policy and the
//! object store. For every accepted connection it spawns a thread and calls
//! [`serve_connection`], which:
//!
//! * reads frames, answering keepalive PINGs with PONGs (and, when
//!   [`ServeOptions::keepalive`] is set and the client announced keepalive
//!   support, pinging an idle client and dropping it after too many
//!   unanswered PINGs, as libvirtd does);
//! * decodes each CALL into a typed [`Call`] and enforces what libvirt's RPC
//!   layer enforces before a driver sees it: the connection must be opened
//!   with `CONNECT_OPEN` first, mutating procedures are refused on a
//!   read-only connection (`operation forbidden: read only access prevents
//!   virNetworkDefineXML`), undecodable arguments get an RPC error;
//! * hands the call to [`Handler::call`] and sends its [`Reply`] or
//!   [`RemoteError`] back with the call's serial;
//! * answers unknown procedures with libvirt's `unknown procedure: N` error
//!   and keeps the connection;
//! * closes the connection on a frame that breaks framing (bad length word,
//!   undecodable header) without affecting any other connection.
//!
//! Other threads push events to the client through the connection's
//! [`EventSink`], which the handler receives with every call (keep a clone
//! when the client registers for events). Writes of replies, events and
//! keepalive messages are serialized by one mutex.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{ErrorDomain, RemoteError, RpcError};
use crate::message::{
    FrameReader, Header, KEEPALIVE_PROC_PING, KEEPALIVE_PROC_PONG, KEEPALIVE_PROGRAM,
    KEEPALIVE_PROTOCOL_VERSION, Message, MessageStatus, MessageType, REMOTE_PROGRAM,
    REMOTE_PROTOCOL_VERSION, ReadOutcome, encode_frame, encode_frame_raw,
};
use crate::protocol::{
    self, Call, ConnectSupportsFeatureRet, Event, Procedure, Reply, connect_flags, feature,
};

/// Credentials of the process at the other end of a Unix socket
/// (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process ID.
    pub pid: i32,
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
}

/// Reads `SO_PEERCRED` of a connected Unix socket.
pub fn peer_credentials(stream: &UnixStream) -> io::Result<PeerCredentials> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials as PeerCred};
    let cred = getsockopt(stream, PeerCred).map_err(io::Error::from)?;
    Ok(PeerCredentials {
        pid: cred.pid(),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// How the client opened the connection (`CONNECT_OPEN` arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    /// URI the client asked for (`network:///system`), if any.
    pub name: Option<String>,
    /// `virConnectFlags`.
    pub flags: u32,
}

/// Per-connection state visible to the handler.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Unique ID of this connection within the process.
    pub id: u64,
    /// The peer's credentials, when the transport is a Unix socket.
    pub peer: Option<PeerCredentials>,
    /// True when mutating procedures must be refused: the connection came
    /// in on a read-only socket, or the client opened it with `VIR_CONNECT_RO`.
    pub read_only: bool,
    /// Set once `CONNECT_OPEN` succeeded.
    pub open: Option<OpenRequest>,
    /// True once the client asked whether keepalive is supported.
    pub keepalive_supported_by_client: bool,
}

/// What a [`Handler`] sees with each call.
pub struct CallContext<'a> {
    /// The connection.
    pub conn: &'a mut ConnectionInfo,
    /// Serial of the call being served.
    pub serial: u32,
    /// Handle to push events to this connection; clone it to keep it.
    pub events: &'a EventSink,
}

/// Serves calls. One implementation is shared by all connections (hence
/// `Send + Sync`); per-connection state lives in [`ConnectionInfo`] or in
/// the implementation keyed by [`ConnectionInfo::id`].
///
/// The server has already checked, before `call` runs, that the connection
/// is open (except for the handshake procedures), that a read-only
/// connection is not calling a mutating procedure, and that the arguments
/// decoded. `CONNECT_OPEN` reaches the handler with
/// [`ConnectionInfo::read_only`] already updated from the open flags; an
/// error from it leaves the connection unopened. The server itself answers
/// `CONNECT_SUPPORTS_FEATURE` for [`feature::PROGRAM_KEEPALIVE`].
///
/// Return [`RemoteError::no_support`] with [`Procedure::api_name`] for
/// procedures the implementation does not provide: that is what libvirt
/// reports for a driver method that is missing.
pub trait Handler: Send + Sync {
    /// Handles one call; the reply must be the variant of the same procedure.
    fn call(&self, ctx: &mut CallContext<'_>, call: Call) -> Result<Reply, RemoteError>;

    /// A connection was accepted (before its first message).
    fn connected(&self, _conn: &ConnectionInfo, _events: &EventSink) {}

    /// A procedure number this crate does not know arrived; the client gets
    /// `unknown procedure: N` regardless. Useful for logging and statistics.
    fn unknown_procedure(&self, _conn: &ConnectionInfo, _procedure: i32) {}

    /// The connection ended; drop anything kept for it (event callbacks...).
    fn disconnected(&self, _conn: &ConnectionInfo) {}
}

/// Server-side keepalive, as libvirtd's `keepalive_interval` /
/// `keepalive_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Idle time before a PING is sent, and between PINGs.
    pub interval: Duration,
    /// Unanswered PINGs after which the connection is closed.
    pub count: u32,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            count: 5,
        }
    }
}

/// Options for one served connection.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The socket is read-only (libvirt's `-ro` socket).
    pub read_only: bool,
    /// Ping idle clients that announced keepalive support; `None` disables
    /// server-initiated PINGs (PINGs from the client are still answered).
    pub keepalive: Option<KeepaliveConfig>,
    /// Bound on a single write to the client, so a client that stops reading
    /// cannot block threads pushing events. `None` blocks indefinitely.
    pub write_timeout: Option<Duration>,
    /// How long to poll the socket for the next call before sleeping in a
    /// blocking read. A client making calls back to back then finds the
    /// connection's thread awake instead of waking it, which on an idle
    /// (virtual) CPU costs far more than the call itself. Zero disables.
    pub busy_poll: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            keepalive: Some(KeepaliveConfig::default()),
            write_timeout: Some(Duration::from_secs(30)),
            busy_poll: Duration::ZERO,
        }
    }
}

struct WriterInner {
    out: Mutex<Box<dyn Write + Send>>,
    closed: AtomicBool,
    shutdown: Option<UnixStream>,
}

/// Sends event messages (and, internally, replies and keepalives) to one
/// connection. Cloneable and usable from any thread; writes are serialized.
#[derive(Clone)]
pub struct EventSink {
    inner: Arc<WriterInner>,
    conn_id: u64,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("conn_id", &self.conn_id)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl EventSink {
    fn new(out: Box<dyn Write + Send>, shutdown: Option<UnixStream>, conn_id: u64) -> Self {
        Self {
            inner: Arc::new(WriterInner {
                out: Mutex::new(out),
                closed: AtomicBool::new(false),
                shutdown,
            }),
            conn_id,
        }
    }

    /// ID of the connection this sink writes to.
    pub fn connection_id(&self) -> u64 {
        self.conn_id
    }

    /// True once the connection is closed (or a write failed).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Sends an event message (type MESSAGE, serial 0).
    pub fn send(&self, event: &Event) -> Result<(), RpcError> {
        let body = event.encode_body()?;
        self.send_raw(event.procedure().number(), &body)
    }

    /// Sends a remote-program MESSAGE with an already encoded body.
    pub fn send_raw(&self, procedure: i32, body: &[u8]) -> Result<(), RpcError> {
        let header = Header::remote(procedure, MessageType::Message, 0, MessageStatus::Ok);
        let frame = encode_frame_raw(&header, body)?;
        self.write_frame(&frame)
    }

    /// Sends a keepalive PING.
    pub fn send_ping(&self) -> Result<(), RpcError> {
        let frame = encode_frame(&Header::keepalive(KEEPALIVE_PROC_PING), &())?;
        self.write_frame(&frame)
    }

    fn write_frame(&self, frame: &[u8]) -> Result<(), RpcError> {
        if self.is_closed() {
            return Err(RpcError::Closed);
        }
        let mut out = match self.inner.out.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let res = out.write_all(frame).and_then(|()| out.flush());
        drop(out);
        if let Err(e) = res {
            self.close();
            return Err(RpcError::Io(e));
        }
        Ok(())
    }

    /// Closes the connection: further sends fail and the serving thread
    /// sees end of stream (for Unix sockets).
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        if let Some(s) = &self.inner.shutdown {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Serves one client on a Unix socket until it disconnects, closes the
/// connection, or breaks framing. Runs on the calling thread.
///
/// Returns `Ok(())` when the client went away cleanly (end of stream or
/// `CONNECT_CLOSE`), an error when the connection had to be dropped.
pub fn serve_connection<H: Handler + ?Sized>(
    stream: UnixStream,
    handler: &H,
    options: &ServeOptions,
) -> Result<(), RpcError> {
    let peer = peer_credentials(&stream).ok();
    stream.set_write_timeout(options.write_timeout)?;
    let writer = stream.try_clone()?;
    let shutdown = stream.try_clone()?;
    let keepalive = options.keepalive;
    let reader = TimedReader {
        stream,
        timeout_set: None,
        busy_poll: options.busy_poll,
    };
    run(
        reader,
        Box::new(writer),
        Some(shutdown),
        peer,
        handler,
        options,
        keepalive,
    )
}

/// Serves one client over any byte streams (for example the standard input
/// and output of a tunnel process). Server-initiated keepalive PINGs need
/// read timeouts and are not sent here; PINGs from the client are answered.
pub fn serve_io<R, W, H>(
    reader: R,
    writer: W,
    peer: Option<PeerCredentials>,
    handler: &H,
    options: &ServeOptions,
) -> Result<(), RpcError>
where
    R: io::Read,
    W: Write + Send + 'static,
    H: Handler + ?Sized,
{
    let reader = PlainReader(reader);
    run(reader, Box::new(writer), None, peer, handler, options, None)
}

/// A reader whose read timeout can be adjusted.
trait PollRead: io::Read {
    fn set_timeout(&mut self, t: Option<Duration>) -> io::Result<()>;
}

struct TimedReader {
    stream: UnixStream,
    timeout_set: Option<Option<Duration>>,
    busy_poll: Duration,
}

impl TimedReader {
    /// Reads what is there without blocking, polling for up to `busy_poll`;
    /// `None` when nothing came. Yields between polls, so a client waiting
    /// for this CPU runs first.
    fn poll_read(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        use nix::errno::Errno;
        use nix::sys::socket::{MsgFlags, recv};
        use std::os::fd::AsRawFd;
        let deadline = Instant::now() + self.busy_poll;
        loop {
            match recv(self.stream.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => return Some(Ok(n)),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Some(Err(e.into())),
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::yield_now();
        }
    }
}

impl io::Read for TimedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.busy_poll.is_zero() && !buf.is_empty() {
            if let Some(r) = self.poll_read(buf) {
                return r;
            }
        }
        self.stream.read(buf)
    }
}

impl PollRead for TimedReader {
    fn set_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        if self.timeout_set != Some(t) {
            self.stream.set_read_timeout(t)?;
            self.timeout_set = Some(t);
        }
        Ok(())
    }
}

struct PlainReader<R>(R);

impl<R: io::Read> io::Read for PlainReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: io::Read> PollRead for PlainReader<R> {
    fn set_timeout(&mut self, _t: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

struct Conn<'h, H: Handler + ?Sized> {
    info: ConnectionInfo,
    sink: EventSink,
    handler: &'h H,
    close_after_reply: bool,
}

#[allow(clippy::too_many_arguments)]
fn run<R: PollRead, H: Handler + ?Sized>(
    reader: R,
    writer: Box<dyn Write + Send>,
    shutdown: Option<UnixStream>,
    peer: Option<PeerCredentials>,
    handler: &H,
    options: &ServeOptions,
    keepalive: Option<KeepaliveConfig>,
) -> Result<(), RpcError> {
    let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
    let sink = EventSink::new(writer, shutdown, id);
    let mut conn = Conn {
        info: ConnectionInfo {
            id,
            peer,
            read_only: options.read_only,
            open: None,
            keepalive_supported_by_client: false,
        },
        sink: sink.clone(),
        handler,
        close_after_reply: false,
    };
    log::debug!("connection {id}: accepted (peer {peer:?})");
    handler.connected(&conn.info, &sink);
    let result = serve_loop(reader, &mut conn, keepalive);
    sink.close();
    handler.disconnected(&conn.info);
    match &result {
        Ok(()) => log::debug!("connection {id}: closed"),
        Err(e) => log::info!("connection {id}: dropped: {e}"),
    }
    result
}

fn serve_loop<R: PollRead, H: Handler + ?Sized>(
    reader: R,
    conn: &mut Conn<'_, H>,
    keepalive: Option<KeepaliveConfig>,
) -> Result<(), RpcError> {
    let mut frames = FrameReader::new(reader);
    let mut last_rx = Instant::now();
    let mut unanswered: u32 = 0;
    loop {
        let active_keepalive = keepalive.filter(|_| conn.info.keepalive_supported_by_client);
        let timeout = active_keepalive.map(|k| {
            let next = k.interval.saturating_mul(unanswered + 1);
            next.saturating_sub(last_rx.elapsed())
                .max(Duration::from_millis(10))
        });
        frames.get_mut().set_timeout(timeout)?;
        match frames.read()? {
            ReadOutcome::Eof => return Ok(()),
            ReadOutcome::TimedOut => {
                let Some(k) = active_keepalive else { continue };
                if last_rx.elapsed() < k.interval.saturating_mul(unanswered + 1) {
                    continue;
                }
                if unanswered >= k.count {
                    log::warn!(
                        "connection {}: no keepalive response after {} pings, closing",
                        conn.info.id,
                        unanswered
                    );
                    return Err(RpcError::KeepaliveTimeout);
                }
                conn.sink.send_ping()?;
                unanswered += 1;
            }
            ReadOutcome::Message(msg) => {
                last_rx = Instant::now();
                unanswered = 0;
                conn.dispatch(msg)?;
                if conn.close_after_reply || conn.sink.is_closed() {
                    return Ok(());
                }
            }
        }
    }
}

impl<H: Handler + ?Sized> Conn<'_, H> {
    fn send_reply_raw(&self, header: &Header, body: &[u8]) -> Result<(), RpcError> {
        let frame = encode_frame_raw(header, body)?;
        self.sink.write_frame(&frame)
    }

    fn send_error(&self, req: &Header, err: &RemoteError) -> Result<(), RpcError> {
        let header = Header {
            program: req.program,
            version: req.version,
            procedure: req.procedure,
            kind: MessageType::Reply,
            serial: req.serial,
            status: MessageStatus::Error,
        };
        let frame = encode_frame(&header, err)?;
        self.sink.write_frame(&frame)
    }

    fn dispatch(&mut self, msg: Message) -> Result<(), RpcError> {
        let h = msg.header;
        if h.program == KEEPALIVE_PROGRAM && h.version == KEEPALIVE_PROTOCOL_VERSION {
            if h.kind == MessageType::Message && h.procedure == KEEPALIVE_PROC_PING {
                let frame = encode_frame(&Header::keepalive(KEEPALIVE_PROC_PONG), &())?;
                self.sink.write_frame(&frame)?;
            }
            return Ok(());
        }
        let is_call = matches!(h.kind, MessageType::Call | MessageType::CallWithFds);
        if h.program != REMOTE_PROGRAM || h.version != REMOTE_PROTOCOL_VERSION {
            if is_call {
                let err = RemoteError::rpc(format!(
                    "Cannot find program {} version {}",
                    h.program, h.version
                ));
                return self.send_error(&h, &err);
            }
            log::debug!(
                "connection {}: ignoring message for program {:#x}",
                self.info.id,
                h.program
            );
            return Ok(());
        }
        if !is_call {
            log::debug!(
                "connection {}: ignoring unexpected message type {:?}",
                self.info.id,
                h.kind
            );
            return Ok(());
        }
        if h.kind == MessageType::CallWithFds {
            let err = RemoteError::rpc("file descriptor passing is not supported");
            return self.send_error(&h, &err);
        }
        if h.status != MessageStatus::Ok {
            let err = RemoteError::rpc(format!("Unexpected message status {}", h.status as i32));
            return self.send_error(&h, &err);
        }
        let Some(procedure) = Procedure::from_i32(h.procedure) else {
            log::warn!(
                "connection {}: unknown procedure {} ({})",
                self.info.id,
                h.procedure,
                protocol::libvirt_procedure_name(h.procedure).unwrap_or("not a libvirt procedure")
            );
            self.handler.unknown_procedure(&self.info, h.procedure);
            // A procedure libvirt defines but this server does not provide
            // is reported as libvirt reports a driver method it lacks;
            // anything else as libvirt's RPC layer reports an unknown number.
            let err = match protocol::libvirt_api_name(h.procedure) {
                Some(api) => RemoteError::no_support(&api),
                None => RemoteError::unknown_procedure(h.procedure),
            };
            return self.send_error(&h, &err);
        };
        let call = match Call::decode(procedure, &msg.body) {
            Ok(Some(call)) => call,
            Ok(None) => {
                // An event procedure sent as a call.
                return self.send_error(&h, &RemoteError::unknown_procedure(h.procedure));
            }
            Err(e) => {
                log::info!(
                    "connection {}: cannot decode {} arguments: {e}",
                    self.info.id,
                    procedure.name()
                );
                return self.send_error(&h, &RemoteError::rpc("Unable to decode message payload"));
            }
        };
        match self.serve_call(h.serial, call) {
            Ok(reply) => {
                if reply.procedure() != procedure {
                    log::error!(
                        "connection {}: handler answered {} with a {} reply",
                        self.info.id,
                        procedure.name(),
                        reply.procedure().name()
                    );
                    let err = RemoteError::internal(
                        ErrorDomain::RPC,
                        format!("reply does not match procedure {}", procedure.name()),
                    );
                    return self.send_error(&h, &err);
                }
                let body = match reply.encode_body() {
                    Ok(b) => b,
                    Err(e) => {
                        let err =
                            RemoteError::rpc(format!("Unable to encode message payload: {e}"));
                        return self.send_error(&h, &err);
                    }
                };
                let header = Header {
                    kind: MessageType::Reply,
                    status: MessageStatus::Ok,
                    ..h
                };
                match self.send_reply_raw(&header, &body) {
                    // The reply could not be framed (too large): tell the
                    // client rather than leaving it waiting.
                    Err(RpcError::Xdr(e)) => {
                        let err =
                            RemoteError::rpc(format!("Unable to encode message payload: {e}"));
                        self.send_error(&h, &err)
                    }
                    other => other,
                }
            }
            Err(err) => self.send_error(&h, &err),
        }
    }

    fn serve_call(&mut self, serial: u32, call: Call) -> Result<Reply, RemoteError> {
        let procedure = call.procedure();
        match &call {
            Call::ConnectSupportsFeature(a) if a.feature == feature::PROGRAM_KEEPALIVE => {
                self.info.keepalive_supported_by_client = true;
                return Ok(Reply::ConnectSupportsFeature(ConnectSupportsFeatureRet {
                    supported: 1,
                }));
            }
            Call::ConnectOpen(_) if self.info.open.is_some() => {
                return Err(RemoteError::internal(
                    ErrorDomain::RPC,
                    "connection already open",
                ));
            }
            _ => {}
        }
        if self.info.open.is_none() && !procedure.allowed_before_open() {
            return Err(RemoteError::internal(
                ErrorDomain::RPC,
                "connection not open",
            ));
        }
        if self.info.read_only && !procedure.allowed_read_only() {
            return Err(RemoteError::read_only(
                procedure.api_name(),
                ErrorDomain::NETWORK,
            ));
        }
        let open_request = match &call {
            Call::ConnectOpen(a) => Some(OpenRequest {
                name: a.name.clone(),
                flags: a.flags,
            }),
            _ => None,
        };
        let was_read_only = self.info.read_only;
        if let Some(req) = &open_request {
            if req.flags & connect_flags::RO != 0 {
                self.info.read_only = true;
            }
        }
        let is_close = procedure == Procedure::ConnectClose;
        let sink = self.sink.clone();
        let mut ctx = CallContext {
            conn: &mut self.info,
            serial,
            events: &sink,
        };
        let handler = self.handler;
        let result = catch_unwind(AssertUnwindSafe(|| handler.call(&mut ctx, call)))
            .unwrap_or_else(|_| {
                log::error!("handler panicked serving {}", procedure.name());
                Err(RemoteError::internal(
                    ErrorDomain::RPC,
                    format!("failed to handle {}", procedure.api_name()),
                ))
            });
        match (&result, open_request) {
            (Ok(_), Some(req)) => self.info.open = Some(req),
            (Err(_), Some(_)) => self.info.read_only = was_read_only,
            _ => {}
        }
        if is_close && result.is_ok() {
            self.close_after_reply = true;
        }
        result
    }
}
