//! Small value types shared by the host-effect traits: MAC addresses and
//! address/prefix pairs. They carry no policy; callers convert from their
//! own configuration model.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The raw octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Builds a MAC address from a netlink/sysfs byte string of length 6.
    pub fn from_slice(bytes: &[u8]) -> Option<MacAddr> {
        let octets: [u8; 6] = bytes.try_into().ok()?;
        Some(MacAddr(octets))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

/// Error parsing a [`MacAddr`] or an [`IpPrefix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not six colon-separated hex octets.
    #[error("invalid MAC address '{0}'")]
    Mac(String),
    /// Not `ADDRESS/PREFIX` with a prefix that fits the family.
    #[error("invalid address/prefix '{0}'")]
    Prefix(String),
}

impl FromStr for MacAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for slot in out.iter_mut() {
            let part = parts.next().ok_or_else(|| ParseError::Mac(s.to_string()))?;
            if part.is_empty() || part.len() > 2 {
                return Err(ParseError::Mac(s.to_string()));
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| ParseError::Mac(s.to_string()))?;
        }
        if parts.next().is_some() {
            return Err(ParseError::Mac(s.to_string()));
        }
        Ok(MacAddr(out))
    }
}

/// Address family of an address, a route or a firewall rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Longest prefix length of the family.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// An address with a prefix length, e.g. `192.168.122.1/24`. The address
/// keeps its host bits; [`IpPrefix::network`] masks them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    prefix: u8,
}

impl IpPrefix {
    /// Builds a prefix; fails when `prefix` is longer than the family allows.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<IpPrefix, ParseError> {
        if prefix > Family::of(&addr).max_prefix() {
            return Err(ParseError::Prefix(format!("{addr}/{prefix}")));
        }
        Ok(IpPrefix { addr, prefix })
    }

    /// A host prefix (/32 or /128) for `addr`.
    pub fn host(addr: IpAddr) -> IpPrefix {
        IpPrefix {
            addr,
            prefix: Family::of(&addr).max_prefix(),
        }
    }

    /// The address as given (host bits kept).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The family of the address.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// The same prefix with host bits cleared (`192.168.122.0/24`).
    pub fn network(&self) -> IpPrefix {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = prefix_mask_v4(self.prefix);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = prefix_mask_v6(self.prefix);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        IpPrefix {
            addr,
            prefix: self.prefix,
        }
    }

    /// IPv4 broadcast address of the prefix (None for IPv6, /31 and /32).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(a) if self.prefix < 31 => {
                Some(Ipv4Addr::from(u32::from(a) | !prefix_mask_v4(self.prefix)))
            }
            _ => None,
        }
    }

    /// Whether `addr` lies inside this prefix.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = prefix_mask_v4(self.prefix);
                u32::from(n) & m == u32::from(*a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = prefix_mask_v6(self.prefix);
                u128::from(n) & m == u128::from(*a) & m
            }
            _ => false,
        }
    }
}

fn prefix_mask_v4(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

fn prefix_mask_v6(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpPrefix {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::Prefix(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                let addr: IpAddr = a.parse().map_err(|_| bad())?;
                let prefix: u8 = p.parse().map_err(|_| bad())?;
                (addr, prefix)
            }
            None => {
                let addr: IpAddr = s.parse().map_err(|_| bad())?;
                (addr, Family::of(&addr).max_prefix())
            }
        };
        IpPrefix::new(addr, prefix).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let mac: MacAddr = "52:54:00:AB:cd:0f".parse().unwrap();
        assert_eq!(mac.to_string(), "52:54:00:ab:cd:0f");
        assert!("52:54:00:ab:cd".parse::<MacAddr>().is_err());
        assert!("52:54:00:ab:cd:0f:00".parse::<MacAddr>().is_err());
        assert!("52:54:00:ab:cd:xyz".parse::<MacAddr>().is_err());
    }

    #[test]
    fn prefix_network_and_broadcast() {
        let p: IpPrefix = "192.168.122.1/24".parse().unwrap();
        assert_eq!(p.network().to_string(), "192.168.122.0/24");
        assert_eq!(p.broadcast(), Some(Ipv4Addr::new(192, 168, 122, 255)));
        assert!(p.contains(&"192.168.122.77".parse().unwrap()));
        let v6: IpPrefix = "2001:db8:ca2:2::1/64".parse().unwrap();
        assert_eq!(v6.network().to_string(), "2001:db8:ca2:2::/64");
        assert!("10.0.0.1/33".parse::<IpPrefix>().is_err());
        assert_eq!("10.0.0.1".parse::<IpPrefix>().map(|p| p.prefix()), Ok(32));
    }
}
