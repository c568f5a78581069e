//! TCP instruments run inside namespaces, on threads of the test process:
//!
//! - a *whoami* server that answers every connection with the peer address
//!   it saw (`ip:port\n`) and closes, so a scenario can tell NAT (the
//!   host's address) from routing (the guest's own), and its client;
//! - a throughput sink and sender: the sender streams for a bounded time;
//!   the sink counts the bytes it received during that time and reports
//!   them back, so the figure is what crossed the network, not what sat in
//!   socket buffers.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// How often accept loops look at their stop flag.
const POLL: Duration = Duration::from_millis(20);

/// A listener thread that stops (and closes its socket) on drop.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(
        ns: &Netns,
        bind: SocketAddr,
        what: &str,
        handle: impl Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    ) -> Result<Server> {
        let what = what.to_string();
        let listener = ns.enter(move || {
            let l = TcpListener::bind(bind)
                .map_err(|e| Error::io(format!("bind {what} to {bind}"), e))?;
            l.set_nonblocking(true)
                .map_err(|e| Error::io(format!("{what} on {bind}"), e))?;
            Ok::<_, Error>(l)
        })??;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("listener address", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = Arc::new(handle);
        // The listening socket already belongs to `ns`; the thread itself
        // need not be in it.
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nonblocking(false);
                        let h = handle.clone();
                        thread::spawn(move || h(stream, peer));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
                    Err(_) => thread::sleep(POLL),
                }
            }
        });
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers each TCP connection with `"<peer ip>:<peer port>\n"` and closes
/// it. Stops on drop.
pub struct WhoamiServer {
    server: Server,
}

impl WhoamiServer {
    /// Listens on `bind` in `ns` (port 0 picks a free port; see
    /// [`WhoamiServer::addr`]).
    pub fn start(ns: &Netns, bind: SocketAddr) -> Result<WhoamiServer> {
        let server = Server::start(ns, bind, "whoami server", |mut stream, peer| {
            let _ = stream.write_all(format!("{peer}\n").as_bytes());
            let _ = stream.shutdown(Shutdown::Both);
        })?;
        Ok(WhoamiServer { server })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

/// Connects from `ns` to a [`WhoamiServer`] at `server` and returns the
/// address the server saw us as.
pub fn whoami(ns: &Netns, server: SocketAddr, timeout: Duration) -> Result<SocketAddr> {
    ns.enter(move || {
        let what = format!("whoami answer from {server}");
        let mut stream = TcpStream::connect_timeout(&server, timeout)
            .map_err(|e| Error::io(format!("connect to whoami server {server}"), e))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| Error::io(what.clone(), e))?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| Error::io(what.clone(), e))?;
        answer
            .trim()
            .parse()
            .map_err(|_| Error::parse(what, answer.clone()))
    })?
}

/// Parses a whoami answer (`ip:port`) and returns the IP, e.g. from a
/// guest's console.
pub fn parse_whoami(answer: &str) -> Result<IpAddr> {
    let addr: SocketAddr = answer
        .trim()
        .parse()
        .map_err(|_| Error::parse("whoami answer", answer.to_string()))?;
    Ok(addr.ip())
}

/// What a throughput run measured at the receiving end.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputReport {
    /// Bytes the receiver got during the measurement window.
    pub bytes: u64,
    /// Length of the window, from the first byte received.
    pub seconds: f64,
    /// Bytes the sender handed to its socket.
    pub sent_bytes: u64,
}

impl ThroughputReport {
    /// Received bits per second.
    pub fn bits_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 * 8.0 / self.seconds
        } else {
            0.0
        }
    }

    /// Received megabits (10^6) per second.
    pub fn mbit_per_sec(&self) -> f64 {
        self.bits_per_sec() / 1e6
    }
}

/// Receives throughput runs (see [`measure_throughput`]); stops on drop.
pub struct ThroughputSink {
    server: Server,
}

impl ThroughputSink {
    /// Listens on `bind` in `ns` (port 0 picks a free port).
    pub fn start(ns: &Netns, bind: SocketAddr) -> Result<ThroughputSink> {
        let server = Server::start(ns, bind, "throughput sink", sink_connection)?;
        Ok(ThroughputSink { server })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

/// Protocol: the sender first writes the window length in milliseconds
/// (u32, big endian), then streams. The sink counts bytes from the first
/// stream byte until the window ends, writes back `bytes: u64, nanos: u64`
/// (big endian), and discards the rest until the sender closes.
fn sink_connection(mut stream: TcpStream, _peer: SocketAddr) {
    let mut header = [0u8; 4];
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.read_exact(&mut header).is_err() {
        return;
    }
    let window = Duration::from_millis(u64::from(u32::from_be_bytes(header)));
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    let mut start = None;
    loop {
        let now = Instant::now();
        let left = match start {
            Some(s) => window.saturating_sub(now - s),
            None => Duration::from_secs(10),
        };
        if left.is_zero() {
            break;
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if start.is_none() {
                    start = Some(Instant::now());
                }
                bytes += n as u64;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if start.is_none() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
    let elapsed = start.map_or(Duration::ZERO, |s| s.elapsed());
    let mut reply = [0u8; 16];
    reply[..8].copy_from_slice(&bytes.to_be_bytes());
    reply[8..].copy_from_slice(&(elapsed.as_nanos() as u64).to_be_bytes());
    if stream.write_all(&reply).is_err() {
        return;
    }
    // Drain until the sender goes away (bounded).
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Streams from `ns` to a [`ThroughputSink`] at `sink` for `duration` and
/// returns what the sink measured. Takes about `duration` plus a round
/// trip; fails after `duration + 20 s`.
pub fn measure_throughput(
    ns: &Netns,
    sink: SocketAddr,
    duration: Duration,
) -> Result<ThroughputReport> {
    ns.enter(move || measure_here(sink, duration))?
}

fn measure_here(sink: SocketAddr, duration: Duration) -> Result<ThroughputReport> {
    let what = format!("throughput run to {sink}");
    let limit = duration + Duration::from_secs(20);
    let mut stream = TcpStream::connect_timeout(&sink, Duration::from_secs(10))
        .map_err(|e| Error::io(format!("connect to throughput sink {sink}"), e))?;
    let millis = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
    stream
        .write_all(&millis.to_be_bytes())
        .map_err(|e| Error::io(what.clone(), e))?;
    let mut reader = stream.try_clone().map_err(|e| Error::io(what.clone(), e))?;
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let writer = thread::spawn(move || {
        let chunk = vec![0x5au8; 64 * 1024];
        let mut sent = 0u64;
        let start = Instant::now();
        // A write blocks while buffers are full, so a short timeout lets
        // the loop notice the end.
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        while !flag.load(Ordering::Relaxed) && start.elapsed() < limit {
            match stream.write(&chunk) {
                Ok(n) => sent += n as u64,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        // Abort rather than wait for buffered data to drain through a
        // slow link.
        let _ = nix::sys::socket::setsockopt(
            &stream,
            nix::sys::socket::sockopt::Linger,
            &libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        );
        sent
    });
    reader
        .set_read_timeout(Some(limit))
        .map_err(|e| Error::io(what.clone(), e))?;
    let mut reply = [0u8; 16];
    let result = reader.read_exact(&mut reply);
    done.store(true, Ordering::Relaxed);
    let sent_bytes = writer.join().unwrap_or(0);
    drop(reader);
    result.map_err(|e| Error::io(format!("{what}: reading the sink's report"), e))?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&reply[..8]);
    let bytes = u64::from_be_bytes(b);
    b.copy_from_slice(&reply[8..]);
    let nanos = u64::from_be_bytes(b);
    Ok(ThroughputReport {
        bytes,
        seconds: nanos as f64 / 1e9,
        sent_bytes,
    })
}
