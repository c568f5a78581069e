//! The host effects the driver uses, bundled: netlink, sysctls, firewall and
//! dnsmasq supervision. [`Host::real`] is the host itself; tests build a
//! [`Host`] from `virtnet_host::fake` recorders.

use std::path::PathBuf;
use std::sync::Arc;

use virtnet_host::bandwidth::{BandwidthOps, Tc};
use virtnet_host::dnsmasq::{DeathHook, Dnsmasq, DnsmasqSupervisor};
use virtnet_host::firewall::{Firewall, Nftables};
use virtnet_host::netlink::{Netlink, NetlinkOps};
use virtnet_host::openvswitch::{OpenvswitchOps, OvsVsctl};
use virtnet_host::sriov::{SriovOps, SysfsSriov};
use virtnet_host::sysctl::{ProcSysctl, Sysctl};
use virtnet_host::tap::{Tap, TapError, TapSpec};

/// Everything the driver may change on the host.
#[derive(Clone)]
pub struct Host {
    /// Links, addresses, routes.
    pub netlink: Arc<dyn NetlinkOps + Send + Sync>,
    /// `/proc/sys/net`.
    pub sysctl: Arc<dyn Sysctl + Send + Sync>,
    /// nftables rules of each network.
    pub firewall: Arc<dyn Firewall + Send + Sync>,
    /// One dnsmasq per network.
    pub dnsmasq: Arc<dyn DnsmasqSupervisor + Send + Sync>,
    /// The dnsmasq binary.
    pub dnsmasq_binary: PathBuf,
    /// TAP devices and macvtap character devices.
    pub taps: Arc<dyn PortDevices + Send + Sync>,
    /// Traffic shaping (`<bandwidth>`).
    pub bandwidth: Arc<dyn BandwidthOps + Send + Sync>,
    /// Open vSwitch bridges.
    pub ovs: Arc<dyn OpenvswitchOps + Send + Sync>,
    /// SR-IOV physical and virtual functions.
    pub sriov: Arc<dyn SriovOps + Send + Sync>,
}

/// Creating the devices guests open: TAPs, and the character devices of
/// macvtaps (made by udev elsewhere; made here when there is no udev).
pub trait PortDevices {
    /// Creates a TAP as `spec` says and returns its name (the kernel fills
    /// in a `%d` template). The TAP is persistent when `spec.persist`.
    fn create_tap(&self, spec: &TapSpec) -> Result<String, TapError>;
    /// The character device (`/dev/tapN`) of macvtap `name` with ifindex
    /// `index`, created when missing.
    fn macvtap_chardev(&self, name: &str, index: u32) -> Result<PathBuf, TapError>;
}

/// The real [`PortDevices`]: `/dev/net/tun` and `/dev`.
pub struct HostPortDevices {
    /// Where character devices live (`/dev`).
    pub dev_dir: PathBuf,
}

impl PortDevices for HostPortDevices {
    fn create_tap(&self, spec: &TapSpec) -> Result<String, TapError> {
        // The descriptors close when `tap` is dropped; a persistent TAP stays.
        let tap = Tap::create(spec)?;
        Ok(tap.name().to_string())
    }

    fn macvtap_chardev(&self, name: &str, index: u32) -> Result<PathBuf, TapError> {
        virtnet_host::tap::macvtap_chardev(name, index, &self.dev_dir)
    }
}

impl Host {
    /// The real host. `on_dnsmasq_death` runs (on a monitor thread) when a
    /// supervised dnsmasq exits without being asked to.
    pub fn real(on_dnsmasq_death: DeathHook) -> std::io::Result<Host> {
        let netlink: Arc<dyn NetlinkOps + Send + Sync> =
            Arc::new(Netlink::open().map_err(std::io::Error::other)?);
        Ok(Host {
            bandwidth: Arc::new(Tc::new(netlink.clone())),
            ovs: Arc::new(OvsVsctl::new()),
            sriov: Arc::new(SysfsSriov::new("/sys")),
            netlink,
            sysctl: Arc::new(ProcSysctl::default()),
            // VIRTNET_NFT=PATH runs that nft binary per transaction instead
            // of libnftables in-process.
            firewall: Arc::new(match std::env::var_os("VIRTNET_NFT") {
                Some(nft) => Nftables::new(nft),
                None => Nftables::default(),
            }),
            dnsmasq: Arc::new(Dnsmasq::new(on_dnsmasq_death)?),
            dnsmasq_binary: find_program("dnsmasq").unwrap_or_else(|| "/usr/sbin/dnsmasq".into()),
            taps: Arc::new(HostPortDevices {
                dev_dir: PathBuf::from("/dev"),
            }),
        })
    }
}

/// Look a program up in `PATH` and the sbin directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/sbin", "/usr/local/sbin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
