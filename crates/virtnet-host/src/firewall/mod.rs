//! Per-network firewall rules in nftables, through `nft -j -f -`.
//!
//! # Ruleset design
//!
//! Everything lives in one table, `inet virtnet`, which sees IPv4 and IPv6
//! and can hold NAT chains for both. It has a shared skeleton:
//!
//! - base chain `forward` (filter, hook forward, priority 0, accept) with
//!   three dispatch rules, in libvirt's order:
//!   1. `meta nfproto . iifname . oifname @guest_cross accept` — traffic
//!      between guests of the same bridge (libvirt's `guest_cross`);
//!   2. `oifname vmap @guest_input` — traffic towards a network's guests
//!      jumps to that network's `…_fwi` chain (libvirt's `guest_input`, FWI);
//!   3. `iifname vmap @guest_output` — traffic from a network's guests jumps
//!      to its `…_fwo` chain (libvirt's `guest_output`, FWO).
//! - base chains `input` and `output` (filter) with `iifname vmap
//!   @guest_to_host` and `oifname vmap @host_to_guest`, dispatching to a
//!   network's `…_inp`/`…_out` chains: the DHCP/DNS/TFTP accepts of
//!   libvirt's iptables INP/OUT chains.
//!
//! Each network owns the regular chains `net_NAME_fwo`, `net_NAME_fwi`,
//! `net_NAME_inp`, `net_NAME_out`, the map elements keyed by its bridge
//! that jump to them, and, in NAT mode, its own base chain `net_NAME_nat`
//! (nat, hook postrouting, priority 100) with libvirt's masquerade rules
//! (the returns for 224.0.0.0/24, 255.255.255.255 and ff02::/16, then
//! tcp/udp with a source port range, then everything else).
//!
//! Because every rule of libvirt's `guest_input` chain names the bridge as
//! output device, and every rule of `guest_output` names it as input device,
//! dispatching by bridge keeps libvirt's first-match order exactly: all
//! networks' "cross" rules, then the destination network's "input" rules,
//! then the source network's "output" rules.
//!
//! # Transactions
//!
//! [`Firewall::apply`] sends one batch: it (re)declares the skeleton with
//! `add` (a no-op when present), re-creates the three dispatch rules (flush
//! and add in the same transaction, so traffic never sees them missing), then
//! for the network `add chain` + `flush chain` + its rules for each chain and
//! `add element` for its map entries. Applying the same plan twice leaves
//! the same ruleset, so re-adopting a running network after a daemon restart
//! never duplicates rules. A NAT chain a plan does not need is
//! removed in the same batch (`add` then `delete`, which succeeds whether or
//! not it existed).
//!
//! [`Firewall::remove`] sends one batch that deletes only what the network
//! owns: its map elements first (an element referencing a chain keeps the
//! chain busy), then its chains. Each object is first `add`ed so that the
//! `delete` cannot fail on something already gone; nothing another network
//! owns is flushed or deleted. If that batch is refused (for instance a map
//! entry of the bridge points elsewhere), the table is listed and exactly the
//! objects referring to the network's chains are deleted.
//!
//! Open mode has no rules at all.

mod libnft;
mod nft;
mod nftables;

use std::net::Ipv4Addr;

pub use nft::{
    BASE_CHAINS, TABLE, TABLE_FAMILY, apply_batch, chain_name, network_of_chain, removal_batch,
};
pub use nftables::Nftables;

use crate::process::ProcessError;
use crate::types::IpPrefix;

/// Errors from building or applying firewall rules.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The plan cannot be expressed (wrong family, bad name).
    #[error("invalid firewall plan for bridge '{bridge}': {detail}")]
    Plan {
        /// The network's bridge.
        bridge: String,
        /// What is wrong.
        detail: String,
    },
    /// NAT port range not accepted (libvirt's wording).
    #[error("Invalid port range '{start}-{end}'.")]
    PortRange {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// nft refused a transaction.
    #[error("nftables: cannot {action} in table inet virtnet: {detail}")]
    Nft {
        /// What the transaction was for, e.g. `add rules of network 'default'`.
        action: String,
        /// nft's own message.
        detail: String,
    },
    /// nft's JSON output could not be understood.
    #[error("nftables: cannot parse 'nft -j list table inet virtnet' output: {0}")]
    Parse(String),
    /// nft could not be run.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// The forward mode, as far as the firewall is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirewallMode {
    /// No `<forward>`: guests reach the host and each other only.
    Isolated,
    /// `<forward mode='nat'>`: IPv4 masqueraded (IPv6 routed unless
    /// `nat ipv6='yes'`).
    Nat,
    /// `<forward mode='route'>`: routed without NAT.
    Route,
    /// `<forward mode='open'>`: no rules at all.
    Open,
}

/// NAT parameters (`<forward><nat>…</nat></forward>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatOptions {
    /// `<address start=…>`: SNAT to this address (or range) instead of
    /// masquerading.
    pub address_start: Option<Ipv4Addr>,
    /// `<address end=…>`.
    pub address_end: Option<Ipv4Addr>,
    /// `<port start=… end=…>`; `(0, 0)` means libvirt's default 1024-65535.
    pub port_start: u16,
    /// See `port_start`.
    pub port_end: u16,
    /// `<nat ipv6='yes'>`: masquerade IPv6 as well.
    pub ipv6: bool,
}

/// Host services guests may reach on the bridge (libvirt's INP/OUT rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostServices {
    /// DHCP (v4: 67/68 tcp+udp; v6: 547/546 udp).
    pub dhcp: bool,
    /// DNS (53 tcp+udp).
    pub dns: bool,
    /// TFTP (69 udp, IPv4 only).
    pub tftp: bool,
}

impl HostServices {
    /// What libvirt opens: DHCP and DNS always, TFTP when `<tftp>` is set.
    pub fn libvirt(tftp: bool) -> HostServices {
        HostServices {
            dhcp: true,
            dns: true,
            tftp,
        }
    }

    /// Nothing.
    pub fn none() -> HostServices {
        HostServices {
            dhcp: false,
            dns: false,
            tftp: false,
        }
    }
}

/// Everything the firewall needs to know about one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallPlan {
    /// Network name; chains are named after it.
    pub network: String,
    /// The network's bridge.
    pub bridge: String,
    /// Forward mode.
    pub mode: FirewallMode,
    /// IPv4 addresses of the network (`<ip>` elements) in definition order;
    /// host bits are ignored.
    pub ipv4: Vec<IpPrefix>,
    /// IPv6 addresses of the network in definition order.
    pub ipv6: Vec<IpPrefix>,
    /// `<network ipv6='yes'>` without IPv6 addresses: guests may still talk
    /// IPv6 among themselves, so the IPv6 catch-all rules are added.
    pub ipv6_without_gateway: bool,
    /// NAT parameters (mode Nat only).
    pub nat: NatOptions,
    /// `<forward dev=…>`: restrict forwarding and NAT to this device.
    pub forward_dev: Option<String>,
    /// Host services over IPv4 (always considered for non-open networks).
    pub services_v4: HostServices,
    /// Host services over IPv6 (only when the network has IPv6 addresses).
    pub services_v6: HostServices,
}

impl FirewallPlan {
    /// A plan with no addresses, no NAT options and libvirt's host services.
    pub fn new(network: &str, bridge: &str, mode: FirewallMode) -> FirewallPlan {
        FirewallPlan {
            network: network.to_string(),
            bridge: bridge.to_string(),
            mode,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            ipv6_without_gateway: false,
            nat: NatOptions::default(),
            forward_dev: None,
            services_v4: HostServices::libvirt(false),
            services_v6: HostServices::libvirt(false),
        }
    }
}

/// Firewall rules of virtual networks, one network at a time.
pub trait Firewall {
    /// Installs (or re-installs, idempotently) all rules of one network in a
    /// single transaction. Open mode installs nothing.
    fn apply(&self, plan: &FirewallPlan) -> Result<(), FirewallError>;
    /// Removes everything one network installed, in a single transaction,
    /// leaving other networks' rules alone. Removing what is not there
    /// succeeds.
    fn remove(&self, network: &str, bridge: &str) -> Result<(), FirewallError>;
    /// Whether the network's chains are present (to re-adopt a running
    /// network after a restart instead of installing its rules again).
    fn exists(&self, network: &str) -> Result<bool, FirewallError>;
    /// Names of the networks that have chains in the table.
    fn networks(&self) -> Result<Vec<String>, FirewallError>;
}
