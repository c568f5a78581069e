//! DHCP lease records: the `BRIDGE.status` file libvirt's leases helper
//! keeps in the dnsmasq state directory.
//!
//! dnsmasq runs with `--leasefile-ro --dhcp-script=HELPER`: it keeps no
//! lease file itself and calls the helper as `HELPER add|old|del MAC IP
//! [HOSTNAME]` (and `HELPER init` at start, to read the leases back), with
//! `DNSMASQ_*` variables in the environment. The helper keeps a JSON array
//! of lease objects:
//!
//! ```json
//! [
//!   {
//!     "iaid": "…",            (DHCPv6 only)
//!     "ip-address": "192.168.122.45",
//!     "mac-address": "52:54:00:…",
//!     "hostname": "guest",     (when known)
//!     "client-id": "01:52:…",  (IPv4: DNSMASQ_CLIENT_ID; IPv6: the client DUID)
//!     "server-duid": "…",     (DHCPv6 only)
//!     "expiry-time": 1700000000
//!   }
//! ]
//! ```
//!
//! An `expiry-time` of 0 is an infinite lease. Everything here is pure: the
//! caller passes the arguments, the environment, the current file contents
//! and the time, and writes what comes back.

use std::collections::HashMap;

use virtnet_conf::{AddressFamily, MacAddr, NetworkDef};

use crate::json::{self, Json};

/// Largest status file libvirt reads (32 MiB).
pub const MAX_STATUS_FILE_SIZE: usize = 32 * 1024 * 1024;

/// An error reading lease records or a dnsmasq script call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The status file is not JSON.
    #[error("invalid json in lease status file at byte {offset}: {message}")]
    InvalidJson {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        message: &'static str,
    },
    /// The status file is larger than [`MAX_STATUS_FILE_SIZE`].
    #[error("lease status file is larger than {MAX_STATUS_FILE_SIZE} bytes")]
    TooLarge,
    /// The status file is JSON but not an array.
    #[error("couldn't fetch array of leases")]
    NotArray,
    /// An entry of the array is not a usable lease.
    #[error("failed to parse json: lease {index} {problem}")]
    BadLease {
        /// Index in the array.
        index: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A lease has no MAC address (libvirt's `networkGetDHCPLeases` check).
    #[error("found lease without mac-address")]
    NoMac,
    /// Neither `DNSMASQ_INTERFACE` nor `VIR_BRIDGE_NAME` is set.
    #[error("interface not set")]
    NoInterface,
    /// The interface name cannot name a status file.
    #[error("invalid interface name '{0}'")]
    BadInterface(String),
    /// Wrong number of arguments.
    #[error("usage: add|old|del MAC|CLIENTID IP [HOSTNAME] | init")]
    Usage,
    /// The action is none of add, old, del, init.
    #[error("Unsupported action: {0}")]
    UnsupportedAction(String),
    /// `DNSMASQ_LEASE_EXPIRES` is not a number.
    #[error("Unable to convert lease expiry time to long long: {0}")]
    BadExpiry(String),
}

/// One lease record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lease {
    /// `iaid`: the DHCPv6 identity association id.
    pub iaid: Option<String>,
    /// `ip-address`.
    pub ip_address: String,
    /// `mac-address`.
    pub mac_address: Option<String>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `client-id`: the DHCPv4 client identifier, or the DHCPv6 client DUID.
    pub client_id: Option<String>,
    /// `server-duid`: dnsmasq's DUID (DHCPv6 leases).
    pub server_duid: Option<String>,
    /// `expiry-time`: seconds since the epoch; 0 for an infinite lease.
    pub expiry_time: i64,
    /// Members this crate does not know, kept in file order.
    pub extra: Vec<(String, Json)>,
}

impl Lease {
    /// An IPv6 lease (libvirt tells by a `:` in the address).
    pub fn is_ipv6(&self) -> bool {
        self.ip_address.contains(':')
    }

    /// True when the lease has a finite expiry before `now`.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expiry_time > 0 && self.expiry_time < now
    }

    fn from_json(index: usize, v: Json) -> Result<Lease, LeaseError> {
        let Json::Object(members) = v else {
            return Err(LeaseError::BadLease {
                index,
                problem: "is not an object",
            });
        };
        let mut lease = Lease::default();
        let mut ip = None;
        let mut expiry = None;
        for (k, v) in members {
            let slot = match k.as_str() {
                "iaid" => &mut lease.iaid,
                "ip-address" if ip.is_none() => &mut ip,
                "mac-address" => &mut lease.mac_address,
                "hostname" => &mut lease.hostname,
                "client-id" => &mut lease.client_id,
                "server-duid" => &mut lease.server_duid,
                "expiry-time" if expiry.is_none() => {
                    match v.as_i64() {
                        Some(n) => expiry = Some(n),
                        None => {
                            return Err(LeaseError::BadLease {
                                index,
                                problem: "has an expiry-time that is not an integer",
                            });
                        }
                    }
                    continue;
                }
                _ => {
                    lease.extra.push((k, v));
                    continue;
                }
            };
            match v {
                Json::String(s) if slot.is_none() => *slot = Some(s),
                other => lease.extra.push((k, other)),
            }
        }
        let Some(ip) = ip else {
            return Err(LeaseError::BadLease {
                index,
                problem: "has no ip-address",
            });
        };
        lease.ip_address = ip;
        // libvirt always writes expiry-time; a record without one is read
        // as an infinite lease rather than making the whole file unusable.
        lease.expiry_time = expiry.unwrap_or(0);
        Ok(lease)
    }

    fn to_json(&self) -> Json {
        let mut m: Vec<(String, Json)> = Vec::with_capacity(7 + self.extra.len());
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.push((k.to_string(), Json::String(v.clone())));
            }
        };
        put("iaid", &self.iaid);
        put("ip-address", &Some(self.ip_address.clone()));
        put("mac-address", &self.mac_address);
        put("hostname", &self.hostname);
        put("client-id", &self.client_id);
        put("server-duid", &self.server_duid);
        m.push((
            "expiry-time".to_string(),
            Json::Number(self.expiry_time.to_string()),
        ));
        m.extend(self.extra.iter().cloned());
        Json::Object(m)
    }
}

/// The contents of a `BRIDGE.status` file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseFile {
    /// The leases, in file order.
    pub leases: Vec<Lease>,
}

impl LeaseFile {
    /// Read a status file. An empty file has no leases; anything else must
    /// be a JSON array of objects each with an `ip-address` string and an
    /// integer `expiry-time` (missing: read as 0, infinite).
    pub fn parse(text: &str) -> Result<LeaseFile, LeaseError> {
        if text.len() > MAX_STATUS_FILE_SIZE {
            return Err(LeaseError::TooLarge);
        }
        if text.is_empty() {
            return Ok(LeaseFile::default());
        }
        let v = json::parse(text).map_err(|e| LeaseError::InvalidJson {
            offset: e.offset,
            message: e.message,
        })?;
        let Json::Array(items) = v else {
            return Err(LeaseError::NotArray);
        };
        let leases = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| Lease::from_json(i, v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LeaseFile { leases })
    }

    /// The file as libvirt's leases helper writes it (pretty JSON, final
    /// newline).
    pub fn to_json(&self) -> String {
        json::to_pretty(&Json::Array(
            self.leases.iter().map(Lease::to_json).collect(),
        ))
    }

    /// Drop leases whose finite expiry is before `now`; returns how many.
    /// (libvirt leaves them in the file until dnsmasq's `del` and only
    /// hides them when listing; pruning keeps the file from growing.)
    pub fn prune_expired(&mut self, now: i64) -> usize {
        let before = self.leases.len();
        self.leases.retain(|l| !l.is_expired(now));
        before - self.leases.len()
    }

    /// Drop every lease of `ip`; returns how many.
    pub fn remove_ip(&mut self, ip: &str) -> usize {
        let before = self.leases.len();
        self.leases.retain(|l| l.ip_address != ip);
        before - self.leases.len()
    }

    /// The lease database in dnsmasq's lease-file format, for the `init`
    /// call: IPv4 leases as `EXPIRY MAC IP HOSTNAME CLIENTID`, then, when a
    /// server DUID is known, `duid DUID` and the IPv6 leases as `EXPIRY
    /// IAID IP HOSTNAME CLIENTDUID` (`*` for an unknown field). Leases that
    /// cannot be written in this format are left out.
    pub fn dnsmasq_leases(&self, server_duid: Option<&str>) -> String {
        let mut out = String::new();
        let field_ok =
            |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        let opt = |s: &Option<String>| -> String {
            match s {
                Some(s) if field_ok(s) => s.clone(),
                _ => "*".to_string(),
            }
        };
        let line = |key: &Option<String>, l: &Lease, out: &mut String| {
            if let Some(key) = key.as_deref().filter(|k| field_ok(k)) {
                if field_ok(&l.ip_address) {
                    out.push_str(&format!(
                        "{} {} {} {} {}\n",
                        l.expiry_time,
                        key,
                        l.ip_address,
                        opt(&l.hostname),
                        opt(&l.client_id)
                    ));
                }
            }
        };
        for l in self.leases.iter().filter(|l| !l.is_ipv6()) {
            line(&l.mac_address, l, &mut out);
        }
        if let Some(duid) = server_duid.filter(|d| field_ok(d)) {
            out.push_str(&format!("duid {duid}\n"));
            for l in self.leases.iter().filter(|l| l.is_ipv6()) {
                line(&l.iaid, l, &mut out);
            }
        }
        out
    }

    /// The leases `net-dhcp-leases` reports for `def` (libvirt's
    /// `networkGetDHCPLeases`): those of `mac` if given, not expired at
    /// `now`, with the prefix of the network's first `<ip>` of the lease's
    /// family.
    pub fn dhcp_leases(
        &self,
        def: &NetworkDef,
        mac: Option<&str>,
        now: i64,
    ) -> Result<Vec<DhcpLease>, LeaseError> {
        let mut out = Vec::new();
        for l in &self.leases {
            let Some(lease_mac) = l.mac_address.as_deref() else {
                return Err(LeaseError::NoMac);
            };
            if let Some(want) = mac {
                if !same_mac(want, lease_mac) {
                    continue;
                }
            }
            if l.is_expired(now) {
                continue;
            }
            let ipv6 = l.is_ipv6();
            let family = if ipv6 {
                AddressFamily::Ipv6
            } else {
                AddressFamily::Ipv4
            };
            let prefix = def
                .ips_of(Some(family))
                .next()
                .map(|ip| {
                    if ipv6 {
                        ip.prefix.unwrap_or(0)
                    } else {
                        ip.prefix_len().unwrap_or(0)
                    }
                })
                .unwrap_or(0);
            out.push(DhcpLease {
                iface: def.bridge.clone().unwrap_or_default(),
                expiry_time: l.expiry_time,
                family,
                mac: lease_mac.to_string(),
                iaid: l.iaid.clone(),
                ip_address: l.ip_address.clone(),
                prefix,
                hostname: l.hostname.clone(),
                client_id: l.client_id.clone(),
            });
        }
        Ok(out)
    }
}

/// libvirt's `virMacAddrCompare`: equal as MAC addresses when both parse,
/// else equal ignoring case.
fn same_mac(a: &str, b: &str) -> bool {
    match (MacAddr::parse(a), MacAddr::parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// One lease as `virNetworkGetDHCPLeases` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpLease {
    /// The network's bridge.
    pub iface: String,
    /// Seconds since the epoch; 0 for an infinite lease.
    pub expiry_time: i64,
    /// IPv4 or IPv6.
    pub family: AddressFamily,
    /// The guest's MAC address.
    pub mac: String,
    /// The DHCPv6 IAID.
    pub iaid: Option<String>,
    /// The leased address.
    pub ip_address: String,
    /// The network's prefix length for that family.
    pub prefix: u32,
    /// The guest's host name.
    pub hostname: Option<String>,
    /// The client id (IPv4) or client DUID (IPv6).
    pub client_id: Option<String>,
}

/// What dnsmasq asked the script to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseAction {
    /// A new lease.
    Add,
    /// A lease renewed (or known at dnsmasq start).
    Old,
    /// A lease released or expired.
    Del,
    /// dnsmasq starts and asks for the lease database.
    Init,
}

impl LeaseAction {
    /// Look up the script's first argument.
    pub fn from_name(s: &str) -> Option<LeaseAction> {
        match s {
            "add" => Some(LeaseAction::Add),
            "old" => Some(LeaseAction::Old),
            "del" => Some(LeaseAction::Del),
            "init" => Some(LeaseAction::Init),
            _ => None,
        }
    }
}

/// One call of the `--dhcp-script`, read from its arguments and
/// environment like libvirt's leases helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEvent {
    /// The action.
    pub action: LeaseAction,
    /// The bridge the lease is on (`DNSMASQ_INTERFACE`, else
    /// `VIR_BRIDGE_NAME`): the status file is `INTERFACE.status`.
    pub interface: String,
    /// The MAC address: the second argument for IPv4, `DNSMASQ_MAC` for
    /// IPv6 (a DHCPv6 lease without it is not recorded).
    pub mac: Option<String>,
    /// The leased address (third argument).
    pub ip: Option<String>,
    /// The fourth argument, else `DNSMASQ_SUPPLIED_HOSTNAME`, else
    /// `DNSMASQ_OLD_HOSTNAME`.
    pub hostname: Option<String>,
    /// `DNSMASQ_CLIENT_ID` for IPv4; the second argument (client DUID) for
    /// IPv6.
    pub client_id: Option<String>,
    /// `DNSMASQ_IAID` (set only for DHCPv6).
    pub iaid: Option<String>,
    /// `DNSMASQ_SERVER_DUID`.
    pub server_duid: Option<String>,
    /// `DNSMASQ_LEASE_EXPIRES` (0 when absent: infinite).
    pub expires: i64,
}

/// What to do after a script call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseUpdate {
    /// New status file contents to write (`None`: leave the file alone).
    pub status: Option<String>,
    /// What to print on standard output (the `init` answer).
    pub stdout: Option<String>,
    /// The old file was not JSON and is replaced (libvirt: "rewriting it").
    pub reset: bool,
}

impl LeaseEvent {
    /// Read a script call: `args` are the arguments after the program name
    /// (`add|old|del MAC IP [HOSTNAME]`, or `init`), `env` the environment.
    pub fn from_script<S: AsRef<str>>(
        args: &[S],
        env: &HashMap<String, String>,
    ) -> Result<LeaseEvent, LeaseError> {
        let var = |k: &str| env.get(k).cloned();
        let nonempty = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        let arg = |i: usize| args.get(i).map(|s| s.as_ref().to_string());
        if !matches!(args.len(), 1 | 3 | 4) {
            return Err(LeaseError::Usage);
        }
        let interface = nonempty("DNSMASQ_INTERFACE")
            .or_else(|| nonempty("VIR_BRIDGE_NAME"))
            .ok_or(LeaseError::NoInterface)?;
        if interface.contains(['/', '\0']) || interface == "." || interface == ".." {
            return Err(LeaseError::BadInterface(interface));
        }
        let name = arg(0).unwrap_or_default();
        let action = LeaseAction::from_name(&name).ok_or(LeaseError::UnsupportedAction(name))?;
        if (action == LeaseAction::Init) != (args.len() == 1) {
            return Err(LeaseError::Usage);
        }
        let iaid = var("DNSMASQ_IAID");
        let (mac, client_id) = if iaid.is_some() {
            (var("DNSMASQ_MAC"), arg(1))
        } else {
            (arg(1), var("DNSMASQ_CLIENT_ID"))
        };
        let hostname = arg(3)
            .or_else(|| var("DNSMASQ_SUPPLIED_HOSTNAME"))
            .or_else(|| var("DNSMASQ_OLD_HOSTNAME"));
        let expires = match var("DNSMASQ_LEASE_EXPIRES") {
            None => 0,
            Some(raw) => parse_expiry(&raw).ok_or(LeaseError::BadExpiry(raw))?,
        };
        Ok(LeaseEvent {
            action,
            interface,
            mac,
            ip: arg(2),
            hostname,
            client_id,
            iaid,
            server_duid: var("DNSMASQ_SERVER_DUID"),
            expires,
        })
    }

    /// The status file this call reads and writes, inside `state_dir`.
    pub fn status_file_path(&self, state_dir: &str) -> String {
        crate::paths::status_file_path(state_dir, &self.interface)
    }

    /// The lease this call records, if any (`add`/`old` with a MAC).
    pub fn lease(&self) -> Option<Lease> {
        if !matches!(self.action, LeaseAction::Add | LeaseAction::Old) {
            return None;
        }
        Some(Lease {
            iaid: self.iaid.clone(),
            ip_address: self.ip.clone()?,
            mac_address: Some(self.mac.clone()?),
            hostname: self.hostname.clone(),
            client_id: self.client_id.clone(),
            server_duid: self.server_duid.clone(),
            expiry_time: self.expires,
            extra: Vec::new(),
        })
    }

    /// Apply this call to the status file contents `current`, like
    /// libvirt's leases helper: `add`/`old` replace the lease of the
    /// address (when the MAC is known), `del` removes it, `init` prints the
    /// leases for dnsmasq. IPv6 leases without a server DUID get the known
    /// one. Nothing is pruned here; see [`LeaseFile::prune_expired`].
    pub fn apply(&self, current: &str) -> Result<LeaseUpdate, LeaseError> {
        let (mut file, reset) = match LeaseFile::parse(current) {
            Ok(f) => (f, false),
            Err(LeaseError::InvalidJson { .. }) => (LeaseFile::default(), true),
            Err(e) => return Err(e),
        };
        let new_lease = self.lease();
        let delete = match self.action {
            LeaseAction::Add | LeaseAction::Old => new_lease.is_some(),
            LeaseAction::Del => true,
            LeaseAction::Init => false,
        };
        if delete {
            if let Some(ip) = &self.ip {
                file.remove_ip(ip);
            }
        }
        let mut duid = self.server_duid.clone();
        for l in file.leases.iter_mut().filter(|l| l.is_ipv6()) {
            match (&l.server_duid, &duid) {
                (Some(have), None) => duid = Some(have.clone()),
                (None, Some(known)) => l.server_duid = Some(known.clone()),
                _ => {}
            }
        }
        match self.action {
            LeaseAction::Init => Ok(LeaseUpdate {
                status: None,
                stdout: Some(file.dnsmasq_leases(duid.as_deref())),
                reset,
            }),
            LeaseAction::Add | LeaseAction::Old | LeaseAction::Del => {
                if let Some(l) = new_lease {
                    file.leases.push(l);
                }
                Ok(LeaseUpdate {
                    status: Some(file.to_json()),
                    stdout: None,
                    reset,
                })
            }
        }
    }
}

/// `DNSMASQ_LEASE_EXPIRES`: one trailing space (dnsmasq < 2.52) dropped,
/// then a whole decimal `long long`.
fn parse_expiry(raw: &str) -> Option<i64> {
    let s = raw.strip_suffix(' ').unwrap_or(raw);
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']);
    if s.is_empty() {
        return None;
    }
    s.parse::<i64>().ok()
}
