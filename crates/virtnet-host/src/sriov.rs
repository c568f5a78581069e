//! SR-IOV discovery through sysfs: the virtual functions (VFs) of a
//! physical function (PF) network device, their PCI addresses and network
//! devices. Allocation (which VF a port gets) is the daemon's business;
//! this module only reads.
//!
//! The layout read, under a configurable root (`/sys` on a real host):
//!
//! - `ROOT/class/net/PF/device` → the PF's PCI device directory, holding
//!   `virtfnN` links (N = VF index) to each VF's device directory and
//!   `sriov_totalvfs`/`sriov_numvfs`;
//! - `ROOT/bus/pci/devices/ADDR` → a PCI device, with `net/NAME` for each
//!   network device it has and, for a VF, a `physfn` link to its PF.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A PCI address, `DDDD:BB:SS.F` (e.g. `0000:03:10.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    /// PCI domain.
    pub domain: u32,
    /// Bus.
    pub bus: u8,
    /// Slot (device), 0..=31.
    pub slot: u8,
    /// Function, 0..=7.
    pub function: u8,
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.slot, self.function
        )
    }
}

impl FromStr for PciAddress {
    type Err = SriovError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SriovError::BadAddress(s.to_string());
        let (domain, rest) = s.split_once(':').ok_or_else(bad)?;
        let (bus, rest) = rest.split_once(':').ok_or_else(bad)?;
        let (slot, function) = rest.split_once('.').ok_or_else(bad)?;
        let hex = |t: &str, max_len: usize| -> Result<u32, SriovError> {
            if t.is_empty() || t.len() > max_len || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            u32::from_str_radix(t, 16).map_err(|_| bad())
        };
        let addr = PciAddress {
            domain: hex(domain, 8)?,
            bus: u8::try_from(hex(bus, 2)?).map_err(|_| bad())?,
            slot: u8::try_from(hex(slot, 2)?).map_err(|_| bad())?,
            function: u8::try_from(hex(function, 1)?).map_err(|_| bad())?,
        };
        if addr.slot > 31 || addr.function > 7 {
            return Err(bad());
        }
        Ok(addr)
    }
}

/// One virtual function of a physical function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualFunction {
    /// The VF index (N of `virtfnN`).
    pub index: u32,
    /// Its PCI address.
    pub address: PciAddress,
    /// Its network device, when it has one bound to a network driver (none
    /// when bound to vfio-pci, for instance).
    pub netdev: Option<String>,
}

/// Errors reading SR-IOV information; they name the device or file.
#[derive(Debug, thiserror::Error)]
pub enum SriovError {
    /// The network device does not exist.
    #[error("Cannot find device '{0}'")]
    NoSuchDevice(String),
    /// The PCI device does not exist.
    #[error("PCI device {0} not found")]
    NoSuchPciDevice(PciAddress),
    /// The network device is not a PCI device (virtual devices have no
    /// `device` link).
    #[error("'{0}' is not a PCI network device")]
    NotPci(String),
    /// A link or file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A name that is not a PCI address.
    #[error("invalid PCI address '{0}'")]
    BadAddress(String),
}

/// SR-IOV discovery.
pub trait SriovOps {
    /// The VFs of the PF network device `pf`, by index; empty when it has
    /// none (or is not SR-IOV capable).
    fn virtual_functions(&self, pf: &str) -> Result<Vec<VirtualFunction>, SriovError>;
    /// The PCI address of a network device.
    fn pci_address(&self, netdev: &str) -> Result<PciAddress, SriovError>;
    /// The network devices of a PCI device, sorted (usually one).
    fn netdevs(&self, address: PciAddress) -> Result<Vec<String>, SriovError>;
    /// Whether a PCI device is an SR-IOV virtual function (has `physfn`).
    fn is_virtual_function(&self, address: PciAddress) -> Result<bool, SriovError>;
    /// The PF of a VF; `None` for a device that is not a VF.
    fn physical_function(&self, address: PciAddress) -> Result<Option<PciAddress>, SriovError>;
    /// How many VFs the PF device `pf` supports (`sriov_totalvfs`); `None`
    /// when it is not SR-IOV capable.
    fn total_vfs(&self, pf: &str) -> Result<Option<u32>, SriovError>;
}

/// The real [`SriovOps`], reading sysfs under a root directory.
#[derive(Debug, Clone)]
pub struct SysfsSriov {
    root: PathBuf,
}

impl Default for SysfsSriov {
    fn default() -> Self {
        SysfsSriov::new("/sys")
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SriovError + '_ {
    move |source| SriovError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The PCI address a sysfs link points to: its last path component.
fn address_of_link(link: &Path) -> Result<PciAddress, SriovError> {
    let target = std::fs::read_link(link).map_err(io_err(link))?;
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| SriovError::BadAddress(target.display().to_string()))?;
    name.parse()
}

fn check_netdev_name(name: &str) -> Result<(), SriovError> {
    crate::netlink::validate_ifname(name).map_err(|_| SriovError::NoSuchDevice(name.to_string()))
}

impl SysfsSriov {
    /// Reads sysfs mounted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> SysfsSriov {
        SysfsSriov { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn netdev_device_dir(&self, netdev: &str) -> Result<PathBuf, SriovError> {
        check_netdev_name(netdev)?;
        let dir = self.root.join("class/net").join(netdev);
        if std::fs::symlink_metadata(&dir).is_err() {
            return Err(SriovError::NoSuchDevice(netdev.to_string()));
        }
        let device = dir.join("device");
        if std::fs::symlink_metadata(&device).is_err() {
            return Err(SriovError::NotPci(netdev.to_string()));
        }
        Ok(device)
    }

    fn pci_dir(&self, address: PciAddress) -> Result<PathBuf, SriovError> {
        let dir = self.root.join("bus/pci/devices").join(address.to_string());
        if std::fs::symlink_metadata(&dir).is_err() {
            return Err(SriovError::NoSuchPciDevice(address));
        }
        Ok(dir)
    }
}

impl SriovOps for SysfsSriov {
    fn virtual_functions(&self, pf: &str) -> Result<Vec<VirtualFunction>, SriovError> {
        let device = self.netdev_device_dir(pf)?;
        let entries = std::fs::read_dir(&device).map_err(io_err(&device))?;
        let mut vfs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&device))?;
            let name = entry.file_name();
            let Some(index) = name
                .to_str()
                .and_then(|n| n.strip_prefix("virtfn"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let address = address_of_link(&entry.path())?;
            let netdev = match self.netdevs(address) {
                Ok(names) => names.into_iter().next(),
                Err(SriovError::NoSuchPciDevice(_)) => None,
                Err(e) => return Err(e),
            };
            vfs.push(VirtualFunction {
                index,
                address,
                netdev,
            });
        }
        vfs.sort_by_key(|vf| vf.index);
        Ok(vfs)
    }

    fn pci_address(&self, netdev: &str) -> Result<PciAddress, SriovError> {
        let device = self.netdev_device_dir(netdev)?;
        // A virtio NIC's `device` is the virtio device, not its PCI parent.
        address_of_link(&device).map_err(|e| match e {
            SriovError::BadAddress(_) => SriovError::NotPci(netdev.to_string()),
            e => e,
        })
    }

    fn netdevs(&self, address: PciAddress) -> Result<Vec<String>, SriovError> {
        let net = self.pci_dir(address)?.join("net");
        let entries = match std::fs::read_dir(&net) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&net)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&net))?;
            if let Some(n) = entry.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn is_virtual_function(&self, address: PciAddress) -> Result<bool, SriovError> {
        let physfn = self.pci_dir(address)?.join("physfn");
        Ok(std::fs::symlink_metadata(physfn).is_ok())
    }

    fn physical_function(&self, address: PciAddress) -> Result<Option<PciAddress>, SriovError> {
        let physfn = self.pci_dir(address)?.join("physfn");
        if std::fs::symlink_metadata(&physfn).is_err() {
            return Ok(None);
        }
        address_of_link(&physfn).map(Some)
    }

    fn total_vfs(&self, pf: &str) -> Result<Option<u32>, SriovError> {
        let path = self.netdev_device_dir(pf)?.join("sriov_totalvfs");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_parse_and_print() {
        let a: PciAddress = "0000:03:10.1".parse().unwrap();
        assert_eq!(
            a,
            PciAddress {
                domain: 0,
                bus: 3,
                slot: 0x10,
                function: 1
            }
        );
        assert_eq!(a.to_string(), "0000:03:10.1");
        assert_eq!(
            "10000:af:1f.7".parse::<PciAddress>().unwrap().to_string(),
            "10000:af:1f.7"
        );
        for bad in [
            "",
            "03:10.1",
            "0000:03:10",
            "0000:03:20.1",
            "0000:03:10.8",
            "0000:x3:10.1",
        ] {
            assert!(bad.parse::<PciAddress>().is_err(), "{bad}");
        }
    }
}
