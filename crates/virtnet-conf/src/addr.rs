//! Addresses as libvirt reads and writes them: UUIDs, MAC addresses, IP
//! addresses (parsed like glibc's numeric `getaddrinfo`, printed like
//! `getnameinfo`), netmasks and prefixes, PCI addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A 128-bit UUID, printed in libvirt's lowercase `8-4-4-4-12` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Parse like libvirt's `virUUIDParse`: 32 hex digits, with `-` or
    /// spaces allowed between digit pairs and whitespace around.
    pub fn parse(s: &str) -> Option<Uuid> {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        while n < 16 {
            let c = *b.get(i)?;
            if c == b'-' || c == b' ' {
                i += 1;
                continue;
            }
            let hi = hex_val(c)?;
            let lo = hex_val(*b.get(i + 1)?)?;
            out[n] = hi * 16 + lo;
            n += 1;
            i += 2;
        }
        if b[i..].iter().all(|c| c.is_ascii_whitespace()) {
            Some(Uuid(out))
        } else {
            None
        }
    }

    /// A random (version 4) UUID from the given random bytes source.
    pub fn new_v4(rng: &mut dyn rand::RngCore) -> Uuid {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }

    /// The 16 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for Uuid {
    type Err = ();
    fn from_str(s: &str) -> Result<Uuid, ()> {
        Uuid::parse(s).ok_or(())
    }
}

/// A 48-bit Ethernet MAC address, printed lowercase `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Parse like libvirt's `virMacAddrParse`: six groups of one or two hex
    /// digits separated by `:`; anything at or below a space may follow.
    pub fn parse(s: &str) -> Option<MacAddr> {
        let b = s.as_bytes();
        let mut out = [0u8; 6];
        let mut pos = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            if !b.get(pos).is_some_and(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            let start = pos;
            while pos < b.len() && b[pos].is_ascii_hexdigit() {
                pos += 1;
            }
            let len = pos - start;
            if !(1..=2).contains(&len) {
                return None;
            }
            let mut v = 0u8;
            for &c in &b[start..pos] {
                v = v * 16 + hex_val(c)?;
            }
            *slot = v;
            let next = b.get(pos).copied().unwrap_or(0);
            if i == 5 {
                return if next <= b' ' {
                    Some(MacAddr(out))
                } else {
                    None
                };
            }
            if next != b':' {
                return None;
            }
            pos += 1;
        }
        None
    }

    /// True for a multicast (group) address: the low bit of the first octet.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The six raw bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            a[0], a[1], a[2], a[3], a[4], a[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = ();
    fn from_str(s: &str) -> Result<MacAddr, ()> {
        MacAddr::parse(s).ok_or(())
    }
}

/// Which address families a parse accepts (`AF_UNSPEC`, `AF_INET`, `AF_INET6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Any,
    V4,
}

/// Why a numeric address did not parse, in `gai_strerror` words.
pub(crate) fn parse_ip(s: &str, family: Family) -> Result<IpAddr, &'static str> {
    if let Some(v4) = inet_aton_exact(s) {
        return Ok(IpAddr::V4(v4));
    }
    if let Ok(v6) = Ipv6Addr::from_str(s) {
        return match family {
            Family::Any => Ok(IpAddr::V6(v6)),
            Family::V4 => Err("Address family for hostname not supported"),
        };
    }
    Err("Name or service not known")
}

/// glibc's `inet_aton` without trailing garbage: `a`, `a.b`, `a.b.c`,
/// `a.b.c.d`, each part decimal, octal (`0…`) or hex (`0x…`).
fn inet_aton_exact(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    let mut pos = 0;
    loop {
        if !b.get(pos).is_some_and(|c| c.is_ascii_digit()) {
            return None;
        }
        let (val, end) = strtoul_c(b, pos)?;
        pos = end;
        if b.get(pos) == Some(&b'.') {
            if parts.len() >= 3 || val > 0xff {
                return None;
            }
            parts.push(val);
            pos += 1;
        } else {
            if pos != b.len() {
                return None;
            }
            let max: u64 = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff][parts.len()];
            if val > max {
                return None;
            }
            let mut addr: u64 = val;
            for (i, p) in parts.iter().enumerate() {
                addr |= p << (24 - 8 * i);
            }
            return Some(Ipv4Addr::from(addr as u32));
        }
    }
}

/// `strtoul(s, &end, 0)` on a string that starts with a digit.
fn strtoul_c(b: &[u8], start: usize) -> Option<(u64, usize)> {
    let mut pos = start;
    let mut base = 10u64;
    if b.get(pos) == Some(&b'0') {
        if matches!(b.get(pos + 1), Some(b'x' | b'X'))
            && b.get(pos + 2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            base = 16;
            pos += 2;
        } else {
            base = 8;
        }
    }
    let mut val: u64 = 0;
    let digits_start = pos;
    while let Some(&c) = b.get(pos) {
        let d = match hex_val(c) {
            Some(d) if u64::from(d) < base => u64::from(d),
            _ => break,
        };
        val = val.checked_mul(base)?.checked_add(d)?;
        if val > 0xffff_ffff {
            return None;
        }
        pos += 1;
    }
    if pos == digits_start && base != 8 {
        return None;
    }
    Some((val, pos))
}

/// Print an IP address the way glibc's `getnameinfo(NI_NUMERICHOST)` does.
pub fn format_ip(addr: &IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format_ipv6(a),
    }
}

/// glibc `inet_ntop` for IPv6: longest run (≥2) of zero groups becomes `::`,
/// and `::a.b.c.d` / `::ffff:a.b.c.d` keep the embedded IPv4 form.
pub fn format_ipv6(a: &Ipv6Addr) -> String {
    let w = a.segments();
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, &seg) in w.iter().enumerate() {
        if seg == 0 {
            cur = Some(match cur {
                Some((b, l)) => (b, l + 1),
                None => (i, 1),
            });
        } else if let Some(c) = cur.take() {
            if best.is_none_or(|b| c.1 > b.1) {
                best = Some(c);
            }
        }
    }
    if let Some(c) = cur {
        if best.is_none_or(|b| c.1 > b.1) {
            best = Some(c);
        }
    }
    if best.is_some_and(|b| b.1 < 2) {
        best = None;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if let Some((b, l)) = best {
            if i == b {
                out.push(':');
                if b + l == 8 {
                    out.push(':');
                }
                i += l;
                continue;
            }
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best.is_some_and(|(b, l)| b == 0 && (l == 6 || (l == 5 && w[5] == 0xffff))) {
            let o = a.octets();
            out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
            break;
        }
        out.push_str(&format!("{:x}", w[i]));
        i += 1;
    }
    out
}

/// Number of leading one bits in a netmask, or `None` if the mask is not
/// contiguous (libvirt's `virSocketAddrGetNumNetmaskBits`).
pub fn netmask_bits(mask: &IpAddr) -> Option<u8> {
    let (bits, width) = match mask {
        IpAddr::V4(m) => (u128::from(u32::from(*m)) << 96, 32u32),
        IpAddr::V6(m) => (u128::from(*m), 128u32),
    };
    let ones = bits.leading_ones();
    let rest = bits.checked_shl(ones).unwrap_or(0);
    if rest != 0 || ones > width {
        return None;
    }
    u8::try_from(ones).ok()
}

/// The netmask with `prefix` leading ones for the family of `like`, or
/// `None` when the prefix is too long for the family.
pub fn prefix_to_netmask(prefix: u32, like: &IpAddr) -> Option<IpAddr> {
    match like {
        IpAddr::V4(_) => {
            if prefix > 32 {
                return None;
            }
            let m: u32 = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            Some(IpAddr::V4(Ipv4Addr::from(m)))
        }
        IpAddr::V6(_) => {
            if prefix > 128 {
                return None;
            }
            let m: u128 = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            Some(IpAddr::V6(Ipv6Addr::from(m)))
        }
    }
}

/// `addr` with the host bits cleared (both must be of the same family).
pub fn mask_addr(addr: &IpAddr, mask: &IpAddr) -> Option<IpAddr> {
    match (addr, mask) {
        (IpAddr::V4(a), IpAddr::V4(m)) => {
            Some(IpAddr::V4(Ipv4Addr::from(u32::from(*a) & u32::from(*m))))
        }
        (IpAddr::V6(a), IpAddr::V6(m)) => {
            Some(IpAddr::V6(Ipv6Addr::from(u128::from(*a) & u128::from(*m))))
        }
        _ => None,
    }
}

/// `addr` masked to `prefix` bits (libvirt's `virSocketAddrMaskByPrefix`).
pub fn mask_by_prefix(addr: &IpAddr, prefix: u32) -> Option<IpAddr> {
    mask_addr(addr, &prefix_to_netmask(prefix, addr)?)
}

/// The prefix libvirt derives for an address: the explicit prefix, else the
/// netmask's length, else the classful default for IPv4 (0 for 0.0.0.0) or
/// 64 for IPv6 (0 for `::`). `None` when it cannot be derived.
pub fn ip_prefix(address: &IpAddr, netmask: Option<&IpAddr>, prefix: Option<u32>) -> Option<u32> {
    if let Some(p) = prefix.filter(|p| *p > 0) {
        return Some(p);
    }
    if let Some(m) = netmask {
        return netmask_bits(m).map(u32::from);
    }
    match address {
        IpAddr::V4(a) => {
            if a.is_unspecified() {
                return Some(0);
            }
            let octet = a.octets()[0];
            if octet & 0x80 == 0 {
                Some(8)
            } else if octet & 0xc0 == 0x80 {
                Some(16)
            } else if octet & 0xe0 == 0xc0 {
                Some(24)
            } else {
                None
            }
        }
        IpAddr::V6(a) => Some(if a.is_unspecified() { 0 } else { 64 }),
    }
}

/// A PCI address (`domain:bus:slot.function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PciAddress {
    /// PCI domain (at most 0xFFFF).
    pub domain: u32,
    /// Bus number (at most 0xFF).
    pub bus: u32,
    /// Slot number (at most 0x1F).
    pub slot: u32,
    /// Function number (at most 7).
    pub function: u32,
}

impl fmt::Display for PciAddress {
    /// `0000:03:00.1`, the form libvirt uses in messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.slot, self.function
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_parse_and_format() {
        let u = Uuid::parse("81ff0d90-c91e-6742-64da-4a736edb9a8c").unwrap();
        assert_eq!(u.to_string(), "81ff0d90-c91e-6742-64da-4a736edb9a8c");
        let u2 = Uuid::parse("  81FF0D90C91E674264DA4A736EDB9A8C \n").unwrap();
        assert_eq!(u, u2);
        assert!(Uuid::parse("81ff0d90-c91e-6742-64da-4a736edb9a8").is_none());
        assert!(Uuid::parse("81ff0d90-c91e-6742-64da-4a736edb9a8cx").is_none());
        assert!(Uuid::parse("").is_none());
    }

    #[test]
    fn mac_parse() {
        assert_eq!(
            MacAddr::parse("52:54:00:E6:A2:C9").unwrap().to_string(),
            "52:54:00:e6:a2:c9"
        );
        assert_eq!(
            MacAddr::parse("2:4:0:e:a:c").unwrap().to_string(),
            "02:04:00:0e:0a:0c"
        );
        assert!(MacAddr::parse("52:54:00:e6:a2").is_none());
        assert!(MacAddr::parse("52:54:00:e6:a2:c9:11").is_none());
        assert!(MacAddr::parse("523:54:00:e6:a2:c9").is_none());
        assert!(MacAddr::parse(" 52:54:00:e6:a2:c9").is_none());
        assert!(MacAddr::parse("01:00:00:00:00:00").unwrap().is_multicast());
    }

    #[test]
    fn ipv4_like_glibc() {
        let p = |s| parse_ip(s, Family::Any).map(|a| a.to_string());
        assert_eq!(p("192.168.122.1").unwrap(), "192.168.122.1");
        assert_eq!(p("10.1").unwrap(), "10.0.0.1");
        assert_eq!(p("0x0a.010.1").unwrap(), "10.8.0.1");
        assert_eq!(p("1").unwrap(), "0.0.0.1");
        assert!(p("256.1.1.1").is_err());
        assert!(p("1.2.3.4 ").is_err());
        assert!(p("1.2.3.").is_err());
        assert!(p("08.1.1.1").is_err());
        assert!(p("").is_err());
        assert!(parse_ip("::1", Family::V4).is_err());
    }

    #[test]
    fn ipv6_format_like_glibc() {
        let f = |s: &str| format_ipv6(&Ipv6Addr::from_str(s).unwrap());
        assert_eq!(f("2001:db8:ac10:fd01::1:20"), "2001:db8:ac10:fd01::1:20");
        assert_eq!(f("::"), "::");
        assert_eq!(f("::1"), "::1");
        assert_eq!(f("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(f("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(f("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
        assert_eq!(f("1:0:2:0:3:0:4:0"), "1:0:2:0:3:0:4:0");
        assert_eq!(f("fe80::"), "fe80::");
        assert_eq!(
            f("FD8F:1391:3A82:150::C0A8:9603"),
            "fd8f:1391:3a82:150::c0a8:9603"
        );
    }

    #[test]
    fn netmask_prefixes() {
        let m = |s: &str| netmask_bits(&IpAddr::from_str(s).unwrap());
        assert_eq!(m("255.255.255.0"), Some(24));
        assert_eq!(m("0.0.0.0"), Some(0));
        assert_eq!(m("255.255.255.255"), Some(32));
        assert_eq!(m("255.0.255.0"), None);
        let a = IpAddr::from_str("10.24.10.1").unwrap();
        assert_eq!(ip_prefix(&a, None, None), Some(8));
        let a = IpAddr::from_str("192.168.1.1").unwrap();
        assert_eq!(
            mask_by_prefix(&a, 24).unwrap(),
            IpAddr::from_str("192.168.1.0").unwrap()
        );
    }
}
