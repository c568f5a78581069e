//! The thin rtnetlink socket: sends one request, matches replies by sequence
//! number, turns NLMSG_ERROR into typed errors (with the kernel's extended
//! ack message when it sends one) and collects dumps. Every message in and
//! out is logged at trace level. Only `netlink::route` hands it messages.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    ErrorMessage, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::NetlinkError;

/// How long one request may wait for its reply by default.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Dumps interrupted by concurrent changes (NLM_F_DUMP_INTR) are retried
/// this many times before giving up.
const DUMP_ATTEMPTS: usize = 5;

/// `NLMSGERR_ATTR_MSG`: the extended-ack text attribute.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// `NLM_F_CAPPED` on an error reply: only the request header is echoed.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS` on an error reply: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;

/// What a request is about, for error messages: the operation and the
/// device/address/route it touches.
#[derive(Debug, Clone)]
pub(crate) struct Ctx<'a> {
    pub op: &'a str,
    pub target: &'a str,
}

pub(crate) struct NetlinkSocket {
    sock: Socket,
    seq: u32,
    timeout: Duration,
}

impl NetlinkSocket {
    /// Opens a route netlink socket in the calling thread's network namespace.
    pub(crate) fn open() -> Result<NetlinkSocket, NetlinkError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        sock.bind_auto().map_err(NetlinkError::Socket)?;
        // Extended acks give the kernel's own explanation of a refusal;
        // older kernels lack them, which is fine.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_netlink_get_strict_chk(true);
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(NetlinkSocket {
            sock,
            seq: 0,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn send(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        ctx: &Ctx<'_>,
    ) -> Result<u32, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        log::trace!("netlink >> seq {} {}: {:?}", self.seq, ctx.op, packet);
        let sent = self.sock.send(&buf, 0).map_err(|e| kernel(ctx, e, None))?;
        if sent != buf.len() {
            return Err(NetlinkError::Protocol {
                op: ctx.op.to_string(),
                target: ctx.target.to_string(),
                detail: format!("short send ({sent} of {} bytes)", buf.len()),
            });
        }
        Ok(self.seq)
    }

    /// Receives the next datagram, waiting at most until `deadline`.
    fn recv(&mut self, deadline: Instant, ctx: &Ctx<'_>) -> Result<Vec<u8>, NetlinkError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NetlinkError::Timeout {
                    op: ctx.op.to_string(),
                    target: ctx.target.to_string(),
                    timeout: self.timeout,
                });
            }
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms.max(1))) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(kernel(ctx, io::Error::from(e), None)),
            }
            match self.sock.recv_from_full() {
                Ok((buf, _)) => return Ok(buf),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(kernel(ctx, e, None)),
            }
        }
    }

    /// Waits for the replies to request `seq` and hands each, in order, to
    /// `on_reply` until it returns a result. Replies to earlier requests
    /// (stale sequence numbers) are skipped.
    fn replies<T, F>(&mut self, seq: u32, ctx: &Ctx<'_>, mut on_reply: F) -> Result<T, NetlinkError>
    where
        F: FnMut(NetlinkMessage<RouteNetlinkMessage>) -> Option<Result<T, NetlinkError>>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            let buf = self.recv(deadline, ctx)?;
            for packet in parse_all(&buf, ctx)? {
                if packet.header.sequence_number != seq {
                    log::trace!(
                        "netlink << stale seq {} (want {seq}) ignored",
                        packet.header.sequence_number
                    );
                    continue;
                }
                log::trace!("netlink << seq {seq}: {packet:?}");
                if let Some(result) = on_reply(packet) {
                    return result;
                }
            }
        }
    }

    /// Sends a request that expects only an acknowledgement.
    pub(crate) fn request_ack(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        ctx: &Ctx<'_>,
    ) -> Result<(), NetlinkError> {
        let seq = self.send(msg, flags | NLM_F_ACK, ctx)?;
        self.replies(seq, ctx, |packet| {
            let flags = packet.header.flags;
            match packet.payload {
                NetlinkPayload::Error(err) => Some(acknowledgement(ctx, flags, err)),
                NetlinkPayload::Done(_) => Some(Ok(())),
                _ => None,
            }
        })
    }

    /// Sends a request that returns exactly one message (e.g. RTM_GETLINK by
    /// name). `Ok(None)` when the kernel answers ENODEV/ENOENT.
    pub(crate) fn request_one(
        &mut self,
        msg: RouteNetlinkMessage,
        ctx: &Ctx<'_>,
    ) -> Result<Option<RouteNetlinkMessage>, NetlinkError> {
        let seq = self.send(msg, 0, ctx)?;
        self.replies(seq, ctx, |packet| {
            let flags = packet.header.flags;
            match packet.payload {
                NetlinkPayload::InnerMessage(m) => Some(Ok(Some(m))),
                NetlinkPayload::Error(err) => {
                    let io = err.to_io();
                    if matches!(io.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENOENT)) {
                        return Some(Ok(None));
                    }
                    let ext = ext_ack_message(flags, &err.header);
                    Some(Err(kernel(ctx, io, ext)))
                }
                NetlinkPayload::Done(_) => Some(Ok(None)),
                _ => None,
            }
        })
    }

    /// Dumps a table (links, addresses, routes). Retries a dump the kernel
    /// marks as interrupted by a concurrent change.
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        for _ in 0..DUMP_ATTEMPTS {
            let (out, interrupted) = self.dump_once(msg.clone(), ctx)?;
            if !interrupted {
                return Ok(out);
            }
            log::trace!("netlink dump for {} interrupted, retrying", ctx.op);
        }
        Err(NetlinkError::Protocol {
            op: ctx.op.to_string(),
            target: ctx.target.to_string(),
            detail: format!("dump interrupted {DUMP_ATTEMPTS} times by concurrent changes"),
        })
    }

    fn dump_once(
        &mut self,
        msg: RouteNetlinkMessage,
        ctx: &Ctx<'_>,
    ) -> Result<(Vec<RouteNetlinkMessage>, bool), NetlinkError> {
        let seq = self.send(msg, NLM_F_DUMP, ctx)?;
        let mut out = Vec::new();
        let mut interrupted = false;
        self.replies(seq, ctx, |packet| {
            let flags = packet.header.flags;
            if flags & NLM_F_DUMP_INTR != 0 {
                interrupted = true;
            }
            match packet.payload {
                NetlinkPayload::InnerMessage(m) => {
                    out.push(m);
                    None
                }
                NetlinkPayload::Done(_) => Some(Ok(())),
                NetlinkPayload::Error(err) => Some(acknowledgement(ctx, flags, err)),
                _ => None,
            }
        })?;
        Ok((out, interrupted))
    }
}

/// The outcome an NLMSG_ERROR reply carries: success (an ACK) or the
/// kernel's error with its extended-ack text.
fn acknowledgement(ctx: &Ctx<'_>, flags: u16, err: ErrorMessage) -> Result<(), NetlinkError> {
    match err.code {
        None => Ok(()),
        Some(_) => {
            let ext = ext_ack_message(flags, &err.header);
            Err(kernel(ctx, err.to_io(), ext))
        }
    }
}

fn kernel(ctx: &Ctx<'_>, source: io::Error, ext: Option<String>) -> NetlinkError {
    NetlinkError::Kernel {
        op: ctx.op.to_string(),
        target: ctx.target.to_string(),
        source,
        detail: ext,
    }
}

/// Splits one datagram into netlink messages.
fn parse_all(
    buf: &[u8],
    ctx: &Ctx<'_>,
) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, NetlinkError> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    while offset + 16 <= buf.len() {
        let rest = &buf[offset..];
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            return Err(NetlinkError::Protocol {
                op: ctx.op.to_string(),
                target: ctx.target.to_string(),
                detail: format!("bad message length {len} at offset {offset}"),
            });
        }
        let packet =
            NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len]).map_err(|e| {
                NetlinkError::Protocol {
                    op: ctx.op.to_string(),
                    target: ctx.target.to_string(),
                    detail: format!("cannot decode reply: {e}"),
                }
            })?;
        out.push(packet);
        offset += (len + 3) & !3;
    }
    Ok(out)
}

/// Extracts the kernel's extended-ack text from an NLMSG_ERROR payload
/// (the echoed request, then attributes).
fn ext_ack_message(flags: u16, echoed: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || echoed.len() < 16 {
        return None;
    }
    let skip = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        u32::from_ne_bytes([echoed[0], echoed[1], echoed[2], echoed[3]]) as usize
    };
    let mut tlvs = echoed.get(skip..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        let step = (len + 3) & !3;
        tlvs = tlvs.get(step..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_text_is_found_after_capped_header() {
        let mut echoed = vec![0u8; 16];
        let text = b"Unknown device type\0";
        let len = (4 + text.len()) as u16;
        echoed.extend_from_slice(&len.to_ne_bytes());
        echoed.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        echoed.extend_from_slice(text);
        let msg = ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &echoed);
        assert_eq!(msg.as_deref(), Some("Unknown device type"));
        assert_eq!(ext_ack_message(0, &echoed), None);
    }

    #[test]
    fn truncated_datagram_is_an_error() {
        let ctx = Ctx {
            op: "dump links",
            target: "",
        };
        let mut buf = vec![0u8; 20];
        buf[0] = 200;
        assert!(parse_all(&buf, &ctx).is_err());
    }
}
