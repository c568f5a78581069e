//! [`FakeSriov`]: a recording [`SriovOps`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Recorder, lock};
use crate::sriov::{PciAddress, SriovError, SriovOps, VirtualFunction};

#[derive(Debug, Default)]
struct Model {
    /// Network device → its PCI address.
    netdevs: BTreeMap<String, PciAddress>,
    /// PF address → its VFs by index, and its total VF count.
    pfs: BTreeMap<PciAddress, (Vec<PciAddress>, u32)>,
}

/// Fake [`SriovOps`]: PCI devices and their network devices, declared by
/// the test. Lookups are recorded as `virtual_functions PF`.
#[derive(Debug, Default)]
pub struct FakeSriov {
    /// The call log and fault plan.
    pub recorder: Recorder,
    model: Mutex<Model>,
}

impl FakeSriov {
    /// A host without SR-IOV devices.
    pub fn new() -> FakeSriov {
        FakeSriov::default()
    }

    /// Declares a PF network device at `address` with VFs
    /// `(address, netdev)` in index order.
    pub fn add_pf(&self, pf: &str, address: PciAddress, vfs: &[(PciAddress, Option<&str>)]) {
        let mut m = lock(&self.model);
        m.netdevs.insert(pf.to_string(), address);
        let mut list = Vec::new();
        for (vf, netdev) in vfs {
            list.push(*vf);
            if let Some(n) = netdev {
                m.netdevs.insert(n.to_string(), *vf);
            }
        }
        let total = u32::try_from(list.len()).unwrap_or(u32::MAX);
        m.pfs.insert(address, (list, total));
    }

    fn pf_of(m: &Model, vf: PciAddress) -> Option<PciAddress> {
        m.pfs
            .iter()
            .find(|(_, (vfs, _))| vfs.contains(&vf))
            .map(|(pf, _)| *pf)
    }

    fn known(m: &Model, address: PciAddress) -> bool {
        m.netdevs.values().any(|a| *a == address) || Self::pf_of(m, address).is_some()
    }
}

impl SriovOps for FakeSriov {
    fn virtual_functions(&self, pf: &str) -> Result<Vec<VirtualFunction>, SriovError> {
        self.recorder
            .enter(format!("virtual_functions {pf}"))
            .map_err(|detail| SriovError::Io {
                path: format!("/sys/class/net/{pf}/device").into(),
                source: std::io::Error::other(detail),
            })?;
        let m = lock(&self.model);
        let address = *m
            .netdevs
            .get(pf)
            .ok_or_else(|| SriovError::NoSuchDevice(pf.to_string()))?;
        let Some((vfs, _)) = m.pfs.get(&address) else {
            return Ok(Vec::new());
        };
        Ok(vfs
            .iter()
            .enumerate()
            .map(|(i, vf)| VirtualFunction {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                address: *vf,
                netdev: m
                    .netdevs
                    .iter()
                    .find(|(_, a)| *a == vf)
                    .map(|(n, _)| n.clone()),
            })
            .collect())
    }

    fn pci_address(&self, netdev: &str) -> Result<PciAddress, SriovError> {
        lock(&self.model)
            .netdevs
            .get(netdev)
            .copied()
            .ok_or_else(|| SriovError::NoSuchDevice(netdev.to_string()))
    }

    fn netdevs(&self, address: PciAddress) -> Result<Vec<String>, SriovError> {
        let m = lock(&self.model);
        if !Self::known(&m, address) {
            return Err(SriovError::NoSuchPciDevice(address));
        }
        Ok(m.netdevs
            .iter()
            .filter(|(_, a)| **a == address)
            .map(|(n, _)| n.clone())
            .collect())
    }

    fn is_virtual_function(&self, address: PciAddress) -> Result<bool, SriovError> {
        let m = lock(&self.model);
        if !Self::known(&m, address) {
            return Err(SriovError::NoSuchPciDevice(address));
        }
        Ok(Self::pf_of(&m, address).is_some())
    }

    fn physical_function(&self, address: PciAddress) -> Result<Option<PciAddress>, SriovError> {
        let m = lock(&self.model);
        if !Self::known(&m, address) {
            return Err(SriovError::NoSuchPciDevice(address));
        }
        Ok(Self::pf_of(&m, address))
    }

    fn total_vfs(&self, pf: &str) -> Result<Option<u32>, SriovError> {
        let m = lock(&self.model);
        let address = m
            .netdevs
            .get(pf)
            .ok_or_else(|| SriovError::NoSuchDevice(pf.to_string()))?;
        Ok(m.pfs.get(address).map(|(_, total)| *total))
    }
}
