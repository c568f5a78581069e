//! Bandwidth limits (libvirt's `<bandwidth>`) and guaranteed minimums
//! (`floor`) through Linux traffic control.
//!
//! [`BandwidthOps`] is the narrow surface the daemon uses; [`Tc`] is the real
//! implementation (the `tc` program in batch mode, one run per change, plus
//! netlink for ifb devices) and [`crate::fake::FakeBandwidth`] records calls.
//! [`FloorPool`] is the per-network accounting of floors and class ids.
//!
//! # Units
//!
//! As in libvirt's XML: rates (`average`, `peak`, `floor`) in kilobytes per
//! second (1000 bytes, tc's `kbps`), `burst` in kibibytes (tc's `kb`).
//!
//! # Directions
//!
//! libvirt's `inbound` is traffic *to* the guest, `outbound` traffic *from*
//! the guest. Traffic control only shapes what a device transmits (its
//! egress), so which side of the device the guest sits on matters:
//!
//! - On a TAP device, and on a network's bridge, the host's view is the
//!   guest's view swapped: what the guest receives the host transmits on the
//!   TAP (egress), what the guest sends arrives on the TAP (ingress). So
//!   `inbound` shapes the device's egress and `outbound` its ingress —
//!   [`Bandwidth::swapped`], libvirt's `swapped` / `DIRECT_SWAP`.
//! - On devices that share the guest's view (libvirt's
//!   `virDomainNetTypeSharesHostView`: macvtap, plain ethernet), `inbound` is
//!   the device's ingress and `outbound` its egress — [`Bandwidth::unswapped`].
//!
//! # Mechanism
//!
//! Egress: an htb qdisc `1:` at the root with one class `1:1` (rate
//! `average`, ceil `peak`, `burst`), as libvirt does.
//!
//! Ingress: libvirt polices ingress with the tc `police` action, which many
//! kernels build without (and which drops instead of shaping). virtnet
//! redirects the device's ingress instead (ingress qdisc, u32 match-all
//! filter, `mirred egress redirect`) to an ifb device of its own (named by
//! [`ifb_name`]) and shapes there with the same htb class as egress. That
//! needs only htb, ingress, u32, mirred and ifb, and honours `peak` and
//! `burst` like the egress direction does. Without a `burst`, the ingress
//! direction gets htb's default burst (as egress does), not the one second of
//! `average` that libvirt's police rule allows.
//!
//! Floor (guaranteed minimum for ports of a network): the network's bridge
//! gets libvirt's hierarchy — class `1:1` (rate = the network's inbound
//! `average`, ceil = its `peak` or `average`), class `1:2` under it for all
//! traffic without a floor (the root's default), and per port with a floor a
//! class `1:ID` (ID ≥ 3, hexadecimal in tc's notation) with rate = the floor
//! and ceil = the network's peak or average, plus a u32 filter (priority 2,
//! handle `800::ID`) steering frames to the port's MAC address into it. The
//! rate of `1:2` is the network's peak (or average) minus the sum of floors.
//! Unlike libvirt's filter, which only matches IPv4, the filter matches every
//! protocol, so a guest's IPv6 traffic counts towards its floor too.
//!
//! Each leaf class gets an `sfq` qdisc (fair queueing between flows) where
//! the kernel has it; where it does not, the class keeps htb's default FIFO.
//!
//! HTB's `quantum` is set explicitly to rate/10 bytes (the kernel's default
//! `r2q`) kept between one full frame (1500) and 200000, so the kernel never
//! logs "quantum of class … is small/big".

mod tc;

use std::collections::BTreeSet;

pub use tc::Tc;

use crate::netlink::NetlinkError;
use crate::process::ProcessError;
use crate::types::MacAddr;

/// One direction's limits (`<inbound>` or `<outbound>`), in libvirt's units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Average rate in kilobytes per second; 0 means none (an inbound
    /// element with only a floor).
    pub average: u64,
    /// Peak rate in kilobytes per second.
    pub peak: Option<u64>,
    /// Burst size in kibibytes.
    pub burst: Option<u64>,
    /// Guaranteed minimum in kilobytes per second (inbound only, ports of
    /// networks only).
    pub floor: Option<u64>,
}

impl Rate {
    /// A rate with only an average.
    pub fn average(kbytes_per_sec: u64) -> Rate {
        Rate {
            average: kbytes_per_sec,
            ..Rate::default()
        }
    }

    /// The floor, 0 when there is none.
    pub fn floor_or_zero(&self) -> u64 {
        self.floor.unwrap_or(0)
    }

    /// The ceiling a floor class may borrow up to: the peak, else the average.
    pub fn ceiling(&self) -> u64 {
        match self.peak {
            Some(p) if p > 0 => p,
            _ => self.average,
        }
    }
}

/// libvirt's `<bandwidth>`: limits of traffic to (`inbound`) and from
/// (`outbound`) the guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Bandwidth {
    /// Traffic to the guest.
    pub inbound: Option<Rate>,
    /// Traffic from the guest.
    pub outbound: Option<Rate>,
}

impl Bandwidth {
    /// Shaping for a TAP device or a network's bridge, where the host's view
    /// is the guest's swapped: inbound → the device's egress, outbound → its
    /// ingress.
    pub fn swapped(&self, device: &str) -> DeviceShaping {
        DeviceShaping {
            device: device.to_string(),
            egress: self.inbound,
            ingress: self.outbound,
            floor_tree: false,
        }
    }

    /// Shaping for a network's bridge (`<network><bandwidth>`), as libvirt
    /// sets it at network start: swapped, with the floor hierarchy on the
    /// bridge's egress so ports can be given floors later.
    pub fn network_bridge(&self, bridge: &str) -> DeviceShaping {
        DeviceShaping {
            floor_tree: true,
            ..self.swapped(bridge)
        }
    }

    /// Shaping for a device that shares the guest's view (macvtap): inbound
    /// → the device's ingress, outbound → its egress.
    pub fn unswapped(&self, device: &str) -> DeviceShaping {
        DeviceShaping {
            device: device.to_string(),
            egress: self.outbound,
            ingress: self.inbound,
            floor_tree: false,
        }
    }

    /// Whether the inbound part has a floor.
    pub fn has_floor(&self) -> bool {
        self.inbound.is_some_and(|r| r.floor_or_zero() > 0)
    }
}

/// Traffic control for one device, in the host's directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceShaping {
    /// The device.
    pub device: String,
    /// Limits of what the device transmits.
    pub egress: Option<Rate>,
    /// Limits of what arrives on the device.
    pub ingress: Option<Rate>,
    /// Build libvirt's floor hierarchy on egress (classes `1:1` and `1:2`),
    /// for a network's bridge whose ports may have floors.
    pub floor_tree: bool,
}

impl DeviceShaping {
    /// Whether anything is shaped at all (a rate with an average).
    pub fn is_empty(&self) -> bool {
        !active(self.egress.as_ref()) && !active(self.ingress.as_ref())
    }
}

fn active(rate: Option<&Rate>) -> bool {
    rate.is_some_and(|r| r.average > 0)
}

/// A port's floor class on a network's bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorClass {
    /// The network's bridge.
    pub bridge: String,
    /// Class id (≥ 3), from [`FloorPool`].
    pub class_id: u32,
    /// The port's MAC address (frames to it go to the class).
    pub mac: MacAddr,
    /// The guaranteed rate, kilobytes per second.
    pub floor: u64,
    /// What the class may borrow up to: the network's inbound peak or
    /// average, kilobytes per second.
    pub ceil: u64,
}

/// A class as `tc class show` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcClass {
    /// Qdisc kind (`htb`).
    pub kind: String,
    /// Class id, e.g. `1:3`.
    pub id: String,
    /// Parent class id; `None` for a class at the root.
    pub parent: Option<String>,
    /// Rate in bits per second.
    pub rate_bits: u64,
    /// Ceil in bits per second.
    pub ceil_bits: u64,
}

/// How a [`BandwidthError`] is classed in libvirt's error codes, so the
/// daemon can prefix the message the way libvirt does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// `VIR_ERR_OPERATION_INVALID` ("Requested operation is not valid: …").
    OperationInvalid,
    /// `VIR_ERR_OPERATION_UNSUPPORTED` ("Operation not supported: …").
    OperationUnsupported,
    /// `VIR_ERR_CONFIG_UNSUPPORTED` ("unsupported configuration: …").
    ConfigUnsupported,
    /// `VIR_ERR_INTERNAL_ERROR` ("internal error: …").
    Internal,
}

/// Errors setting up traffic control. Messages are libvirt's where libvirt
/// has them, without the prefix of the error class ([`BandwidthError::class`]).
#[derive(Debug, thiserror::Error)]
pub enum BandwidthError {
    /// tc refused a change.
    #[error("cannot {action} on '{device}': {detail}")]
    Tc {
        /// What was attempted, e.g. `set bandwidth`.
        action: String,
        /// The device.
        device: String,
        /// tc's own message.
        detail: String,
    },
    /// The device does not exist.
    #[error("Cannot set bandwidth on '{0}': no such device")]
    NoSuchDevice(String),
    /// The kernel lacks something shaping needs.
    #[error("Cannot set bandwidth on '{device}': {detail}")]
    Unsupported {
        /// The device.
        device: String,
        /// What is missing.
        detail: String,
    },
    /// A floor was asked of a network whose forward mode cannot honour it.
    #[error(
        "Invalid use of 'floor' on interface with MAC address {mac} - 'floor' is only supported for interface type 'network' with forward type 'nat', 'route', 'open' or none"
    )]
    FloorUnsupported {
        /// The port's MAC address.
        mac: MacAddr,
    },
    /// A floor was asked of a network without inbound limits.
    #[error(
        "Invalid use of 'floor' on interface with MAC address {mac} - network '{network}' has no inbound QoS set"
    )]
    NoNetworkQos {
        /// The port's MAC address.
        mac: MacAddr,
        /// The network.
        network: String,
    },
    /// A floor class was asked of a bridge without the floor hierarchy.
    #[error("Bridge '{bridge}' has no QoS set, therefore unable to set 'floor' on '{mac}'")]
    NoBridgeQos {
        /// The bridge.
        bridge: String,
        /// The port's MAC address.
        mac: MacAddr,
    },
    /// The floors would add up to more than the network's peak.
    #[error(
        "Cannot plug '{mac}' interface into '{bridge}' because new combined inbound floor={sum} would overcommit peak={peak} on network '{network}'"
    )]
    OvercommitPeak {
        /// The port's MAC address.
        mac: MacAddr,
        /// The network's bridge.
        bridge: String,
        /// The sum of floors it would make.
        sum: u64,
        /// The network's inbound peak.
        peak: u64,
        /// The network.
        network: String,
    },
    /// The floors would add up to more than the network's average.
    #[error(
        "Cannot plug '{mac}' interface into '{bridge}' because new combined inbound floor={sum} would overcommit average={average} on network '{network}'"
    )]
    OvercommitAverage {
        /// The port's MAC address.
        mac: MacAddr,
        /// The network's bridge.
        bridge: String,
        /// The sum of floors it would make.
        sum: u64,
        /// The network's inbound average.
        average: u64,
        /// The network.
        network: String,
    },
    /// Every class id is taken.
    #[error("Could not generate next class ID")]
    NoClassId,
    /// A class id below 3 (those belong to the hierarchy itself) or above
    /// what tc can address.
    #[error("Invalid class ID {0}")]
    InvalidClassId(u32),
    /// Netlink (ifb devices, device lookups) failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// tc could not be run.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// Several teardown steps failed; all are reported.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<BandwidthError>),
}

impl BandwidthError {
    /// libvirt's error class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            BandwidthError::FloorUnsupported { .. } | BandwidthError::NoNetworkQos { .. } => {
                ErrorClass::OperationUnsupported
            }
            BandwidthError::OvercommitPeak { .. } | BandwidthError::OvercommitAverage { .. } => {
                ErrorClass::OperationInvalid
            }
            BandwidthError::NoBridgeQos { .. } => ErrorClass::ConfigUnsupported,
            _ => ErrorClass::Internal,
        }
    }
}

/// Traffic control of one network namespace.
pub trait BandwidthOps {
    /// Replaces whatever shaping the device had with `shaping`
    /// (libvirt's `virNetDevBandwidthSet`). Nothing is left half-applied: on
    /// failure the device is cleared.
    fn set(&self, shaping: &DeviceShaping) -> Result<(), BandwidthError>;
    /// Removes all shaping from the device: root and ingress qdiscs and its
    /// ifb (libvirt's `virNetDevBandwidthClear`). Succeeds when there was
    /// nothing, or when the device is gone (its ifb is still removed).
    fn clear(&self, device: &str) -> Result<(), BandwidthError>;
    /// Adds a port's floor class and filter under the bridge's class `1:1`
    /// (libvirt's `virNetDevBandwidthPlug`).
    fn plug_floor(&self, class: &FloorClass) -> Result<(), BandwidthError>;
    /// Removes a port's floor class and filter (libvirt's
    /// `virNetDevBandwidthUnplug`); keeps going past what is already gone.
    fn unplug_floor(&self, bridge: &str, class_id: u32) -> Result<(), BandwidthError>;
    /// Changes the rate of class `1:ID` (ceil stays the network's peak or
    /// average) — class 2 after floors change, a floor class when its floor
    /// does (libvirt's `virNetDevBandwidthUpdateRate`).
    fn update_class_rate(
        &self,
        bridge: &str,
        class_id: u32,
        rate: u64,
        ceil: u64,
    ) -> Result<(), BandwidthError>;
    /// Points a floor class's filter at a new MAC address (libvirt's
    /// `virNetDevBandwidthUpdateFilter`).
    fn update_floor_filter(
        &self,
        bridge: &str,
        class_id: u32,
        mac: MacAddr,
    ) -> Result<(), BandwidthError>;
    /// The classes on a device.
    fn classes(&self, device: &str) -> Result<Vec<TcClass>, BandwidthError>;
}

/// The ifb device that shapes what arrives on `device`: `ifb-DEVICE` when
/// that fits in a device name, else `ifb-` and 11 hex digits of a hash of
/// the name. It depends only on the name, so it can be found (and removed)
/// after the device itself is gone.
pub fn ifb_name(device: &str) -> String {
    const MAX: usize = libc::IFNAMSIZ - 1;
    let plain = format!("ifb-{device}");
    if plain.len() <= MAX {
        return plain;
    }
    // FNV-1a: stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in device.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("ifb-{:011x}", h & 0x0fff_ffff_ffff)
}

/// HTB quantum for a class of `rate` kilobytes per second.
fn quantum(rate_kbytes: u64) -> u64 {
    (rate_kbytes.saturating_mul(1000) / 10).clamp(1500, 200_000)
}

/// Lowest class id of a port's floor class; 1 and 2 belong to the hierarchy.
pub const FIRST_FLOOR_CLASS_ID: u32 = 3;
/// Highest class id: u32 filter handles hold 12 bits of node id.
pub const MAX_FLOOR_CLASS_ID: u32 = 0xfff;

fn check_class_id(id: u32) -> Result<(), BandwidthError> {
    if (FIRST_FLOOR_CLASS_ID..=MAX_FLOOR_CLASS_ID).contains(&id) {
        Ok(())
    } else {
        Err(BandwidthError::InvalidClassId(id))
    }
}

/// The tc batch lines that build `shaping` (egress htb, and the ifb's htb
/// plus the redirect for ingress), given the ifb's name and whether leaf
/// classes get an sfq qdisc.
pub fn set_batch(shaping: &DeviceShaping, ifb: &str, sfq: bool) -> Vec<String> {
    let dev = &shaping.device;
    let mut out = Vec::new();
    if let Some(tx) = shaping.egress.filter(|r| r.average > 0) {
        htb_lines(&mut out, dev, &tx, shaping.floor_tree, sfq);
    }
    if let Some(rx) = shaping.ingress.filter(|r| r.average > 0) {
        // Shape on the ifb first, so redirected traffic is never unshaped.
        htb_lines(&mut out, ifb, &rx, false, sfq);
        out.push(format!("qdisc add dev {dev} handle ffff: ingress"));
        out.push(format!(
            "filter add dev {dev} parent ffff: protocol all prio 1 u32 match u32 0 0 \
             action mirred egress redirect dev {ifb}"
        ));
    }
    out
}

fn htb_lines(out: &mut Vec<String>, dev: &str, rate: &Rate, floor_tree: bool, sfq: bool) {
    let avg = rate.average;
    let q = quantum(avg);
    let mut leaf = format!("rate {avg}kbps");
    if let Some(p) = rate.peak.filter(|p| *p > 0) {
        leaf.push_str(&format!(" ceil {p}kbps"));
    }
    if let Some(b) = rate.burst.filter(|b| *b > 0) {
        leaf.push_str(&format!(" burst {b}kb"));
    }
    leaf.push_str(&format!(" quantum {q}"));
    if floor_tree {
        out.push(format!("qdisc add dev {dev} root handle 1: htb default 2"));
        out.push(format!(
            "class add dev {dev} parent 1: classid 1:1 htb rate {avg}kbps ceil {}kbps quantum {q}",
            rate.ceiling()
        ));
        out.push(format!(
            "class add dev {dev} parent 1:1 classid 1:2 htb {leaf}"
        ));
        if sfq {
            out.push(format!(
                "qdisc add dev {dev} parent 1:2 handle 2: sfq perturb 10"
            ));
        }
    } else {
        out.push(format!("qdisc add dev {dev} root handle 1: htb default 1"));
        out.push(format!(
            "class add dev {dev} parent 1: classid 1:1 htb {leaf}"
        ));
        if sfq {
            out.push(format!(
                "qdisc add dev {dev} parent 1:1 handle 2: sfq perturb 10"
            ));
        }
    }
}

/// The u32 filter steering frames addressed to `mac` into class `1:ID`:
/// the destination MAC is the first six bytes of the Ethernet header, 14
/// bytes before the network header.
fn floor_filter_line(bridge: &str, class_id: u32, mac: MacAddr) -> String {
    let o = mac.octets();
    format!(
        "filter add dev {bridge} protocol all prio 2 handle 800::{class_id:x} u32 \
         match u16 0x{:02x}{:02x} 0xffff at -14 \
         match u32 0x{:02x}{:02x}{:02x}{:02x} 0xffffffff at -12 \
         flowid 1:{class_id:x}",
        o[0], o[1], o[2], o[3], o[4], o[5]
    )
}

fn floor_filter_del_line(bridge: &str, class_id: u32) -> String {
    format!("filter del dev {bridge} protocol all prio 2 handle 800::{class_id:x} u32")
}

/// The tc batch lines that add a port's floor class.
pub fn plug_batch(class: &FloorClass, sfq: bool) -> Vec<String> {
    let FloorClass {
        bridge,
        class_id: id,
        mac,
        floor,
        ceil,
    } = class;
    let mut out = vec![format!(
        "class add dev {bridge} parent 1:1 classid 1:{id:x} htb rate {floor}kbps ceil {ceil}kbps quantum {}",
        quantum(*floor)
    )];
    if sfq {
        out.push(format!(
            "qdisc add dev {bridge} parent 1:{id:x} handle {id:x}: sfq perturb 10"
        ));
    }
    out.push(floor_filter_line(bridge, *id, *mac));
    out
}

/// The tc batch lines that remove a port's floor class: the filter first (a
/// class a filter points to cannot be deleted), then the class with its
/// leaf qdisc.
pub fn unplug_batch(bridge: &str, class_id: u32) -> Vec<String> {
    vec![
        floor_filter_del_line(bridge, class_id),
        format!("class del dev {bridge} classid 1:{class_id:x}"),
    ]
}

/// Parses `tc class show` output (tc 6.1 prints text for htb classes even
/// with `-j`).
pub fn parse_classes(text: &str) -> Vec<TcClass> {
    let mut out = Vec::new();
    for line in text.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() < 3 || toks[0] != "class" {
            continue;
        }
        let mut class = TcClass {
            kind: toks[1].to_string(),
            id: toks[2].to_string(),
            parent: None,
            rate_bits: 0,
            ceil_bits: 0,
        };
        let mut i = 3;
        while i < toks.len() {
            let next = toks.get(i + 1).copied();
            match (toks[i], next) {
                ("parent", Some(v)) => {
                    class.parent = Some(v.to_string());
                    i += 1;
                }
                ("rate", Some(v)) => {
                    class.rate_bits = parse_rate_bits(v).unwrap_or(0);
                    i += 1;
                }
                ("ceil", Some(v)) => {
                    class.ceil_bits = parse_rate_bits(v).unwrap_or(0);
                    i += 1;
                }
                _ => {}
            }
            i += 1;
        }
        out.push(class);
    }
    out
}

/// Parses a rate as tc prints it (`800Kbit`, `16Mbit`, `1464Kibit`, `12bit`).
pub fn parse_rate_bits(s: &str) -> Option<u64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let mult: f64 = match unit {
        "bit" | "" => 1.0,
        "Kbit" => 1e3,
        "Mbit" => 1e6,
        "Gbit" => 1e9,
        "Tbit" => 1e12,
        "Kibit" => 1024.0,
        "Mibit" => 1024.0 * 1024.0,
        "Gibit" => 1024.0 * 1024.0 * 1024.0,
        "Tibit" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bits = value * mult;
    (bits.is_finite() && bits >= 0.0).then_some(bits.round() as u64)
}

/// The floors of one network's ports: which class ids are taken and what
/// the floors add up to, with libvirt's checks (`networkCheckBandwidth`,
/// `networkPlugBandwidth`, `networkUnplugBandwidth`,
/// `networkUpdatePortBandwidth`). The daemon keeps one per running network
/// and records the class id of each port in the port's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorPool {
    network: String,
    bridge: String,
    inbound: Option<Rate>,
    floor_supported: bool,
    class_ids: BTreeSet<u32>,
    floor_sum: u64,
}

impl FloorPool {
    /// The pool of a network: its name, its bridge, its inbound limits, and
    /// whether its forward mode can honour floors (libvirt: none, nat,
    /// route, open).
    pub fn new(
        network: &str,
        bridge: &str,
        inbound: Option<Rate>,
        floor_supported: bool,
    ) -> FloorPool {
        FloorPool {
            network: network.to_string(),
            bridge: bridge.to_string(),
            inbound: inbound.filter(|r| r.average > 0),
            floor_supported,
            class_ids: BTreeSet::new(),
            floor_sum: 0,
        }
    }

    /// Re-adopts the ports already plugged (after a daemon restart): their
    /// class ids and floors, as recorded in their status.
    pub fn restore(&mut self, ports: &[(u32, u64)]) -> Result<(), BandwidthError> {
        for &(id, floor) in ports {
            check_class_id(id)?;
            if self.class_ids.insert(id) {
                self.floor_sum = self.floor_sum.saturating_add(floor);
            }
        }
        Ok(())
    }

    /// The sum of the plugged ports' floors (libvirt's `floor_sum`).
    pub fn floor_sum(&self) -> u64 {
        self.floor_sum
    }

    /// Class ids in use.
    pub fn class_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.class_ids.iter().copied()
    }

    /// The rate class `1:2` should have now: what floors leave of the
    /// network's peak (or average); at least 1, which tc accepts.
    pub fn unguaranteed_rate(&self) -> u64 {
        self.inbound
            .map(|r| r.ceiling().saturating_sub(self.floor_sum).max(1))
            .unwrap_or(0)
    }

    /// libvirt's `networkCheckBandwidth`: whether the port's `new` inbound
    /// (replacing `old`, for updates) fits. `Ok(false)` means no floor is
    /// involved and nothing needs doing; `Ok(true)` that the floors fit.
    pub fn check(
        &self,
        mac: MacAddr,
        new: Option<&Rate>,
        old: Option<&Rate>,
    ) -> Result<bool, BandwidthError> {
        let new_floor = new.map(Rate::floor_or_zero).unwrap_or(0);
        let old_floor = old.map(Rate::floor_or_zero).unwrap_or(0);
        if new_floor > 0 && !self.floor_supported {
            return Err(BandwidthError::FloorUnsupported { mac });
        }
        let Some(net) = self.inbound else {
            if new_floor > 0 {
                return Err(BandwidthError::NoNetworkQos {
                    mac,
                    network: self.network.clone(),
                });
            }
            return Ok(false);
        };
        if new_floor == 0 && old_floor == 0 {
            return Ok(false);
        }
        let sum = self
            .floor_sum
            .saturating_sub(old_floor)
            .saturating_add(new_floor);
        match net.peak.filter(|p| *p > 0) {
            Some(peak) if sum > peak => Err(BandwidthError::OvercommitPeak {
                mac,
                bridge: self.bridge.clone(),
                sum,
                peak,
                network: self.network.clone(),
            }),
            None if sum > net.average => Err(BandwidthError::OvercommitAverage {
                mac,
                bridge: self.bridge.clone(),
                sum,
                average: net.average,
                network: self.network.clone(),
            }),
            _ => Ok(true),
        }
    }

    fn next_class_id(&self) -> Result<u32, BandwidthError> {
        (FIRST_FLOOR_CLASS_ID..=MAX_FLOOR_CLASS_ID)
            .find(|id| !self.class_ids.contains(id))
            .ok_or(BandwidthError::NoClassId)
    }

    /// Plugs a port: when its inbound has a floor (and the network has
    /// inbound limits), checks the floors, creates its class and lowers the
    /// rate of class `1:2`. Returns the class id, or `None` when the port
    /// needs no class.
    pub fn plug(
        &mut self,
        ops: &dyn BandwidthOps,
        mac: MacAddr,
        inbound: Option<&Rate>,
    ) -> Result<Option<u32>, BandwidthError> {
        if !self.check(mac, inbound, None)? {
            return Ok(None);
        }
        let floor = inbound.map(Rate::floor_or_zero).unwrap_or(0);
        self.plug_class(ops, mac, floor).map(Some)
    }

    fn plug_class(
        &mut self,
        ops: &dyn BandwidthOps,
        mac: MacAddr,
        floor: u64,
    ) -> Result<u32, BandwidthError> {
        let Some(net) = self.inbound else {
            return Err(BandwidthError::NoBridgeQos {
                bridge: self.bridge.clone(),
                mac,
            });
        };
        let id = self.next_class_id()?;
        let class = FloorClass {
            bridge: self.bridge.clone(),
            class_id: id,
            mac,
            floor,
            ceil: net.ceiling(),
        };
        if let Err(e) = ops.plug_floor(&class) {
            let _ = ops.unplug_floor(&self.bridge, id);
            return Err(e);
        }
        self.class_ids.insert(id);
        self.floor_sum = self.floor_sum.saturating_add(floor);
        self.refresh_unguaranteed(ops);
        Ok(id)
    }

    fn refresh_unguaranteed(&self, ops: &dyn BandwidthOps) {
        let Some(net) = self.inbound else { return };
        if let Err(e) =
            ops.update_class_rate(&self.bridge, 2, self.unguaranteed_rate(), net.ceiling())
        {
            log::warn!(
                "Unable to update rate for 1:2 class on {} bridge: {e}",
                self.bridge
            );
        }
    }

    /// Unplugs a port that got class `class_id` (0: none) with `floor`:
    /// removes its class, returns the id and raises the rate of `1:2`.
    pub fn unplug(
        &mut self,
        ops: &dyn BandwidthOps,
        class_id: u32,
        floor: u64,
    ) -> Result<(), BandwidthError> {
        if class_id == 0 {
            return Ok(());
        }
        if self.inbound.is_none() {
            log::warn!(
                "Network {} has no bandwidth but unplug requested",
                self.network
            );
            return Ok(());
        }
        check_class_id(class_id)?;
        ops.unplug_floor(&self.bridge, class_id)?;
        if self.class_ids.remove(&class_id) {
            self.floor_sum = self.floor_sum.saturating_sub(floor);
        }
        self.refresh_unguaranteed(ops);
        Ok(())
    }

    /// Changes a plugged port's inbound from `old` to `new` (libvirt's
    /// `networkUpdatePortBandwidth`): adjusts its class's rate, or creates
    /// or removes the class when the floor appears or goes. `class_id` is
    /// the port's class (0: none) and is updated.
    pub fn update(
        &mut self,
        ops: &dyn BandwidthOps,
        mac: MacAddr,
        class_id: &mut u32,
        old: Option<&Rate>,
        new: Option<&Rate>,
    ) -> Result<(), BandwidthError> {
        let old_floor = old.map(Rate::floor_or_zero).unwrap_or(0);
        let new_floor = new.map(Rate::floor_or_zero).unwrap_or(0);
        if old_floor == new_floor {
            return Ok(());
        }
        if !self.check(mac, new, old)? {
            return Ok(());
        }
        let Some(net) = self.inbound else {
            return Ok(());
        };
        if old_floor > 0 && new_floor > 0 && *class_id != 0 {
            check_class_id(*class_id)?;
            ops.update_class_rate(&self.bridge, *class_id, new_floor, net.ceiling())?;
            self.floor_sum = self
                .floor_sum
                .saturating_sub(old_floor)
                .saturating_add(new_floor);
            if let Err(e) =
                ops.update_class_rate(&self.bridge, 2, self.unguaranteed_rate(), net.ceiling())
            {
                self.floor_sum = self
                    .floor_sum
                    .saturating_sub(new_floor)
                    .saturating_add(old_floor);
                let _ = ops.update_class_rate(&self.bridge, *class_id, old_floor, net.ceiling());
                return Err(e);
            }
        } else if new_floor > 0 {
            *class_id = self.plug_class(ops, mac, new_floor)?;
        } else {
            self.unplug(ops, *class_id, old_floor)?;
            *class_id = 0;
        }
        Ok(())
    }
}

/// Whether tc's stderr line says the object was not there (teardown of
/// something already gone).
fn is_absent_message(line: &str) -> bool {
    const ABSENT: [&str; 8] = [
        "Cannot delete qdisc with handle of zero",
        "Cannot find specified qdisc",
        "Cannot find device",
        "No such file or directory",
        "Filter with specified priority/protocol not found",
        "Cannot find specified filter chain",
        "Specified filter handle not found",
        "Invalid handle",
    ];
    ABSENT.iter().any(|m| line.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    #[test]
    fn tap_egress_and_ingress_batches() {
        let bw = Bandwidth {
            inbound: Some(Rate {
                average: 1000,
                peak: Some(2000),
                burst: Some(256),
                floor: None,
            }),
            outbound: Some(Rate::average(125)),
        };
        let shaping = bw.swapped("vnet0");
        assert_eq!(shaping.egress, bw.inbound);
        assert_eq!(shaping.ingress, bw.outbound);
        let lines = set_batch(&shaping, &ifb_name("vnet0"), false);
        assert_eq!(
            lines,
            vec![
                "qdisc add dev vnet0 root handle 1: htb default 1",
                "class add dev vnet0 parent 1: classid 1:1 htb rate 1000kbps ceil 2000kbps burst 256kb quantum 100000",
                "qdisc add dev ifb-vnet0 root handle 1: htb default 1",
                "class add dev ifb-vnet0 parent 1: classid 1:1 htb rate 125kbps quantum 12500",
                "qdisc add dev vnet0 handle ffff: ingress",
                "filter add dev vnet0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ifb-vnet0",
            ]
        );
        let unswapped = bw.unswapped("macvtap0");
        assert_eq!(unswapped.egress, bw.outbound);
        assert_eq!(unswapped.ingress, bw.inbound);
    }

    #[test]
    fn floor_tree_and_sfq_leaves() {
        let shaping = DeviceShaping {
            device: "virbr0".into(),
            egress: Some(Rate {
                average: 1000,
                peak: Some(5000),
                burst: None,
                floor: None,
            }),
            ingress: None,
            floor_tree: true,
        };
        assert_eq!(
            set_batch(&shaping, "unused", true),
            vec![
                "qdisc add dev virbr0 root handle 1: htb default 2",
                "class add dev virbr0 parent 1: classid 1:1 htb rate 1000kbps ceil 5000kbps quantum 100000",
                "class add dev virbr0 parent 1:1 classid 1:2 htb rate 1000kbps ceil 5000kbps quantum 100000",
                "qdisc add dev virbr0 parent 1:2 handle 2: sfq perturb 10",
            ]
        );
        // An inbound with only a floor shapes nothing on the device.
        let floor_only = Bandwidth {
            inbound: Some(Rate {
                floor: Some(100),
                ..Rate::default()
            }),
            outbound: None,
        };
        assert!(floor_only.swapped("vnet1").is_empty());
        let net = Bandwidth {
            inbound: shaping.egress,
            outbound: None,
        };
        assert_eq!(net.network_bridge("virbr0"), shaping);
        assert!(set_batch(&floor_only.swapped("vnet1"), "x", true).is_empty());
    }

    #[test]
    fn floor_class_batches() {
        let class = FloorClass {
            bridge: "virbr0".into(),
            class_id: 12,
            mac: mac("52:54:00:aa:bb:cc"),
            floor: 200,
            ceil: 5000,
        };
        assert_eq!(
            plug_batch(&class, true),
            vec![
                "class add dev virbr0 parent 1:1 classid 1:c htb rate 200kbps ceil 5000kbps quantum 20000",
                "qdisc add dev virbr0 parent 1:c handle c: sfq perturb 10",
                "filter add dev virbr0 protocol all prio 2 handle 800::c u32 match u16 0x5254 0xffff at -14 match u32 0x00aabbcc 0xffffffff at -12 flowid 1:c",
            ]
        );
        assert_eq!(
            unplug_batch("virbr0", 12),
            vec![
                "filter del dev virbr0 protocol all prio 2 handle 800::c u32",
                "class del dev virbr0 classid 1:c",
            ]
        );
    }

    #[test]
    fn ifb_names_fit_and_are_stable() {
        assert_eq!(ifb_name("vnet0"), "ifb-vnet0");
        assert_eq!(ifb_name("abcdefghijk"), "ifb-abcdefghijk");
        let long = ifb_name("abcdefghijkl");
        assert_eq!(long.len(), 15);
        assert!(long.starts_with("ifb-"));
        assert_eq!(long, ifb_name("abcdefghijkl"));
        assert_ne!(long, ifb_name("abcdefghijkm"));
    }

    #[test]
    fn class_listing_parses() {
        let text = "class htb 1:1 root rate 8Mbit ceil 16Mbit burst 1600b cburst 1600b \n\
                    class htb 1:2 parent 1:1 leaf 2: prio 0 rate 7200Kbit ceil 16Mbit burst 1598b cburst 1600b \n\
                    class htb 1:3 parent 1:1 prio 0 rate 800Kbit ceil 1464Kibit burst 1600b cburst 1600b \n";
        let classes = parse_classes(text);
        assert_eq!(classes.len(), 3);
        assert_eq!(classes[0].parent, None);
        assert_eq!(classes[0].rate_bits, 8_000_000);
        assert_eq!(classes[1].parent.as_deref(), Some("1:1"));
        assert_eq!(classes[1].rate_bits, 7_200_000);
        assert_eq!(classes[2].id, "1:3");
        assert_eq!(classes[2].ceil_bits, 1464 * 1024);
        assert_eq!(parse_rate_bits("12bit"), Some(12));
        assert_eq!(parse_rate_bits("1.5Mbit"), Some(1_500_000));
        assert_eq!(parse_rate_bits("fast"), None);
    }

    #[test]
    fn floor_checks_use_libvirts_words() {
        let net = Rate {
            average: 1000,
            peak: None,
            burst: None,
            floor: None,
        };
        let pool = FloorPool::new("default", "virbr0", Some(net), true);
        let m = mac("52:54:00:00:00:01");
        let want = |floor| Rate {
            floor: Some(floor),
            ..Rate::default()
        };
        assert!(pool.check(m, Some(&want(1000)), None).unwrap());
        assert!(!pool.check(m, Some(&Rate::average(5)), None).unwrap());
        let err = pool.check(m, Some(&want(1001)), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot plug '52:54:00:00:00:01' interface into 'virbr0' because new combined inbound floor=1001 would overcommit average=1000 on network 'default'"
        );
        assert_eq!(err.class(), ErrorClass::OperationInvalid);

        let peaky = FloorPool::new(
            "default",
            "virbr0",
            Some(Rate {
                peak: Some(1500),
                ..net
            }),
            true,
        );
        assert!(peaky.check(m, Some(&want(1400)), None).unwrap());
        assert!(
            peaky
                .check(m, Some(&want(1501)), None)
                .unwrap_err()
                .to_string()
                .contains("would overcommit peak=1500")
        );

        let none = FloorPool::new("isolated", "virbr9", None, true);
        let err = none.check(m, Some(&want(10)), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid use of 'floor' on interface with MAC address 52:54:00:00:00:01 - network 'isolated' has no inbound QoS set"
        );
        assert_eq!(err.class(), ErrorClass::OperationUnsupported);
        assert!(!none.check(m, None, None).unwrap());

        let bridged = FloorPool::new("host", "br0", Some(net), false);
        assert!(matches!(
            bridged.check(m, Some(&want(10)), None),
            Err(BandwidthError::FloorUnsupported { .. })
        ));
    }

    #[test]
    fn floor_pool_allocates_and_accounts() {
        let ops = crate::fake::FakeBandwidth::new();
        let net = Rate {
            average: 1000,
            peak: Some(2000),
            burst: None,
            floor: None,
        };
        ops.set(&DeviceShaping {
            device: "virbr0".into(),
            egress: Some(net),
            ingress: None,
            floor_tree: true,
        })
        .unwrap();
        let mut pool = FloorPool::new("default", "virbr0", Some(net), true);
        let floor = |f| Rate {
            average: 0,
            peak: None,
            burst: None,
            floor: Some(f),
        };
        let a = mac("52:54:00:00:00:0a");
        let b = mac("52:54:00:00:00:0b");
        let ida = pool.plug(&ops, a, Some(&floor(300))).unwrap();
        let idb = pool.plug(&ops, b, Some(&floor(500))).unwrap();
        assert_eq!((ida, idb), (Some(3), Some(4)));
        assert_eq!(pool.floor_sum(), 800);
        assert_eq!(pool.unguaranteed_rate(), 1200);
        assert_eq!(ops.class_rate("virbr0", 2), Some(1200));
        // No floor: nothing to do.
        assert_eq!(pool.plug(&ops, a, Some(&Rate::average(10))).unwrap(), None);
        // Over the peak.
        assert!(pool.plug(&ops, a, Some(&floor(1300))).is_err());
        // The lowest free id is reused.
        pool.unplug(&ops, 3, 300).unwrap();
        assert_eq!(pool.floor_sum(), 500);
        let idc = pool.plug(&ops, a, Some(&floor(100))).unwrap();
        assert_eq!(idc, Some(3));
        // Updating a floor changes the class and class 2.
        let mut id = 4;
        pool.update(&ops, b, &mut id, Some(&floor(500)), Some(&floor(700)))
            .unwrap();
        assert_eq!(id, 4);
        assert_eq!(ops.class_rate("virbr0", 4), Some(700));
        assert_eq!(ops.class_rate("virbr0", 2), Some(1200));
        // Dropping the floor removes the class.
        pool.update(&ops, b, &mut id, Some(&floor(700)), None)
            .unwrap();
        assert_eq!(id, 0);
        assert_eq!(ops.class_rate("virbr0", 4), None);
        assert_eq!(pool.floor_sum(), 100);
        // A failing plug leaves the accounting as it was.
        ops.recorder.fail_on("plug_floor");
        assert!(pool.plug(&ops, b, Some(&floor(10))).is_err());
        assert_eq!(pool.floor_sum(), 100);
        assert_eq!(pool.class_ids().collect::<Vec<_>>(), vec![3]);
        ops.recorder.heal();

        let mut restored = FloorPool::new("default", "virbr0", Some(net), true);
        restored.restore(&[(3, 100), (7, 50)]).unwrap();
        assert_eq!(restored.floor_sum(), 150);
        assert_eq!(restored.next_class_id().unwrap(), 4);
        assert!(restored.restore(&[(2, 1)]).is_err());
    }

    #[test]
    fn absent_objects_are_recognised() {
        assert!(is_absent_message(
            "Error: Cannot find specified qdisc on specified device."
        ));
        assert!(!is_absent_message("Error: HTB class in use."));
    }
}
