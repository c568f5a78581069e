//! A small DNS client over UDP, run inside a namespace: asks one server one
//! question and decodes the answer section. Tolerates any reply bytes
//! (truncated or malformed replies are errors, never panics).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// Query types the harness asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Reverse lookup.
    Ptr,
    /// Text.
    Txt,
    /// Service location.
    Srv,
    /// Mail exchanger.
    Mx,
    /// Canonical name.
    Cname,
    /// Any other type by number.
    Other(u16),
}

impl QType {
    /// The wire value.
    pub fn code(self) -> u16 {
        match self {
            QType::A => 1,
            QType::Cname => 5,
            QType::Ptr => 12,
            QType::Mx => 15,
            QType::Txt => 16,
            QType::Aaaa => 28,
            QType::Srv => 33,
            QType::Other(n) => n,
        }
    }
}

/// Decoded record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// An A record.
    A(Ipv4Addr),
    /// An AAAA record.
    Aaaa(Ipv6Addr),
    /// CNAME, PTR or NS target.
    Name(String),
    /// TXT strings.
    Txt(Vec<String>),
    /// An SRV record.
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: String,
    },
    /// An MX record.
    Mx {
        /// Preference.
        preference: u16,
        /// Exchanger host.
        exchange: String,
    },
    /// Anything else, undecoded.
    Other(Vec<u8>),
}

impl fmt::Display for RData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RData::A(a) => write!(f, "{a}"),
            RData::Aaaa(a) => write!(f, "{a}"),
            RData::Name(n) => write!(f, "{n}"),
            RData::Txt(t) => write!(f, "{}", t.join(" ")),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                write!(f, "{priority} {weight} {port} {target}")
            }
            RData::Mx {
                preference,
                exchange,
            } => write!(f, "{preference} {exchange}"),
            RData::Other(b) => write!(f, "{} bytes", b.len()),
        }
    }
}

/// One answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, without the trailing dot.
    pub name: String,
    /// Type number.
    pub rtype: u16,
    /// Time to live.
    pub ttl: u32,
    /// The data.
    pub data: RData,
}

/// A server's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Response code: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED.
    pub rcode: u8,
    /// Whether the server claims authority.
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Record>,
}

impl Response {
    /// The IPv4 addresses in the answer section.
    pub fn ipv4(&self) -> Vec<Ipv4Addr> {
        self.answers
            .iter()
            .filter_map(|r| {
                if let RData::A(a) = r.data {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    }

    /// The IPv6 addresses in the answer section.
    pub fn ipv6(&self) -> Vec<Ipv6Addr> {
        self.answers
            .iter()
            .filter_map(|r| {
                if let RData::Aaaa(a) = r.data {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    }

    /// The names in the answer section (PTR, CNAME).
    pub fn names(&self) -> Vec<String> {
        self.answers
            .iter()
            .filter_map(|r| {
                if let RData::Name(n) = &r.data {
                    Some(n.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    /// Whether the name does not exist.
    pub fn is_nxdomain(&self) -> bool {
        self.rcode == 3
    }
}

/// The `in-addr.arpa` / `ip6.arpa` name for a reverse lookup of `ip`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut labels: Vec<String> = Vec::with_capacity(33);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0xf));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.push("ip6.arpa".into());
            labels.join(".")
        }
    }
}

/// Asks `server` (port 53 unless given) about `name` from inside `ns`,
/// trying three times with `timeout` split between the tries.
pub fn query(
    ns: &Netns,
    server: SocketAddr,
    name: &str,
    qtype: QType,
    timeout: Duration,
) -> Result<Response> {
    let name = name.to_string();
    ns.enter(move || query_here(server, &name, qtype, timeout))?
}

/// [`query`] from the calling thread's namespace.
pub fn query_here(
    server: SocketAddr,
    name: &str,
    qtype: QType,
    timeout: Duration,
) -> Result<Response> {
    let what = format!("DNS query {name} to {server}");
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(bind).map_err(|e| Error::io(what.clone(), e))?;
    sock.connect(server)
        .map_err(|e| Error::io(what.clone(), e))?;
    let tries = 3u32;
    let per_try = (timeout / tries).max(Duration::from_millis(100));
    let mut last_err = None;
    for attempt in 0..tries {
        let id = (std::process::id() as u16) ^ (attempt as u16).wrapping_mul(0x9e37) ^ 0x5a5a;
        let packet = encode_query(id, name, qtype)?;
        if let Err(e) = sock.send(&packet) {
            last_err = Some(Error::io(what.clone(), e));
            std::thread::sleep(per_try);
            continue;
        }
        let deadline = Instant::now() + per_try;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))
                .map_err(|e| Error::io(what.clone(), e))?;
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let reply = &buf[..n];
                    if reply.len() >= 2 && u16::from_be_bytes([reply[0], reply[1]]) == id {
                        return decode_response(reply);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => {
                    // ICMP port unreachable and the like: wait and retry.
                    last_err = Some(Error::io(what.clone(), e));
                    std::thread::sleep(left.min(Duration::from_millis(200)));
                    break;
                }
            }
        }
    }
    Err(last_err.unwrap_or(Error::WaitTimeout {
        what,
        after: timeout,
        context: String::new(),
    }))
}

/// Builds a query packet with recursion desired.
pub fn encode_query(id: u16, name: &str, qtype: QType) -> Result<Vec<u8>> {
    let mut p = Vec::with_capacity(32 + name.len());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00]); // RD
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&l| l <= 63)
            .ok_or_else(|| Error::parse("DNS name", format!("label too long in {name:?}")))?;
        p.push(len);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.code().to_be_bytes());
    p.extend_from_slice(&[0, 1]); // IN
    Ok(p)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(detail: &str) -> Error {
        Error::parse("DNS reply", detail.to_string())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| Self::err("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| Self::err("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a possibly compressed name starting at the current position.
    fn name(&mut self) -> Result<String> {
        let (name, next) = read_name(self.buf, self.pos)?;
        self.pos = next;
        Ok(name)
    }
}

/// Reads a name at `pos`; returns it and the position after it in the
/// original stream. Bounded number of compression jumps.
fn read_name(buf: &[u8], mut pos: usize) -> Result<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut after = None;
    for _ in 0..128 {
        let len = *buf.get(pos).ok_or_else(|| Reader::err("truncated name"))?;
        match len {
            0 => {
                let next = after.unwrap_or(pos + 1);
                return Ok((labels.join("."), next));
            }
            l if l & 0xc0 == 0xc0 => {
                let lo = *buf
                    .get(pos + 1)
                    .ok_or_else(|| Reader::err("truncated pointer"))?;
                if after.is_none() {
                    after = Some(pos + 2);
                }
                pos = (usize::from(l & 0x3f) << 8) | usize::from(lo);
            }
            l if l & 0xc0 == 0 => {
                let start = pos + 1;
                let end = start + usize::from(l);
                let label = buf
                    .get(start..end)
                    .ok_or_else(|| Reader::err("truncated label"))?;
                labels.push(String::from_utf8_lossy(label).into_owned());
                pos = end;
            }
            _ => return Err(Reader::err("unknown label type")),
        }
    }
    Err(Reader::err("too many compression pointers"))
}

/// Decodes a reply's header and answer section.
pub fn decode_response(buf: &[u8]) -> Result<Response> {
    let mut r = Reader { buf, pos: 0 };
    let _id = r.u16()?;
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err(Reader::err("not a response"));
    }
    let qd = r.u16()?;
    let an = r.u16()?;
    let _ns = r.u16()?;
    let _ar = r.u16()?;
    for _ in 0..qd {
        r.name()?;
        r.take(4)?;
    }
    let mut answers = Vec::with_capacity(usize::from(an).min(64));
    for _ in 0..an {
        let name = r.name()?;
        let rtype = r.u16()?;
        let _class = r.u16()?;
        let ttl = r.u32()?;
        let len = usize::from(r.u16()?);
        let start = r.pos;
        let raw = r.take(len)?;
        let data = match rtype {
            1 if len == 4 => RData::A(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
            28 if len == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(raw);
                RData::Aaaa(Ipv6Addr::from(o))
            }
            2 | 5 | 12 => RData::Name(read_name(buf, start)?.0),
            15 if len >= 3 => RData::Mx {
                preference: u16::from_be_bytes([raw[0], raw[1]]),
                exchange: read_name(buf, start + 2)?.0,
            },
            33 if len >= 7 => RData::Srv {
                priority: u16::from_be_bytes([raw[0], raw[1]]),
                weight: u16::from_be_bytes([raw[2], raw[3]]),
                port: u16::from_be_bytes([raw[4], raw[5]]),
                target: read_name(buf, start + 6)?.0,
            },
            16 => {
                let mut t = Reader { buf: raw, pos: 0 };
                let mut strings = Vec::new();
                while t.pos < raw.len() {
                    let l = usize::from(t.u8()?);
                    strings.push(String::from_utf8_lossy(t.take(l)?).into_owned());
                }
                RData::Txt(strings)
            }
            _ => RData::Other(raw.to_vec()),
        };
        answers.push(Record {
            name,
            rtype,
            ttl,
            data,
        });
    }
    Ok(Response {
        rcode: (flags & 0x000f) as u8,
        authoritative: flags & 0x0400 != 0,
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.168.122.5".parse().unwrap()),
            "5.122.168.192.in-addr.arpa"
        );
        assert!(
            reverse_name("2001:db8::1".parse().unwrap()).ends_with(".8.b.d.0.1.0.0.2.ip6.arpa")
        );
    }

    #[test]
    fn decodes_compressed_answer() {
        let mut reply = encode_query(7, "host.example", QType::A).unwrap();
        reply[2] = 0x85; // response, authoritative, RD
        reply[3] = 0x80;
        reply[7] = 2; // two answers
        // CNAME host.example -> web.example (pointer to "example" at 17)
        reply.extend_from_slice(&[
            0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'w', b'e', b'b', 0xc0, 17,
        ]);
        // A web.example (pointer to the CNAME target) -> 10.0.0.9
        let web = 12 + 14 + 4 + 12; // header, question, CNAME's fixed part
        reply.extend_from_slice(&[0xc0, web as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 9]);
        let r = decode_response(&reply).unwrap();
        assert_eq!(r.rcode, 0);
        assert!(r.authoritative);
        assert_eq!(r.names(), vec!["web.example".to_string()]);
        assert_eq!(r.answers[1].name, "web.example");
        assert_eq!(r.ipv4(), vec![Ipv4Addr::new(10, 0, 0, 9)]);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 0xc1) as u8).collect();
            let _ = decode_response(&junk);
        }
        let mut loop_ptr = encode_query(1, "a", QType::A).unwrap();
        loop_ptr[2] = 0x80;
        loop_ptr[7] = 1;
        loop_ptr.extend_from_slice(&[0xc0, 19, 0xc0, 19]);
        let n = loop_ptr.len();
        loop_ptr[n - 4] = 0xc0;
        loop_ptr[n - 3] = (n - 4) as u8;
        assert!(decode_response(&loop_ptr).is_err());
    }
}
