//! SR-IOV discovery over a sysfs tree built in a temporary directory: a PF
//! with four VFs (three with network devices, one bound elsewhere), laid
//! out with the links the kernel makes. The recording fake, given the same
//! devices, must answer the same.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use virtnet_host::fake::FakeSriov;
use virtnet_host::sriov::{PciAddress, SriovError, SriovOps, SysfsSriov};

const PF: &str = "0000:03:00.0";
const VFS: [(&str, Option<&str>); 4] = [
    ("0000:03:10.0", Some("enp3s16")),
    ("0000:03:10.2", Some("enp3s16f2")),
    ("0000:03:10.4", None),
    ("0000:03:10.6", Some("enp3s16f6")),
];

struct Tree {
    root: PathBuf,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn link(target: &str, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    symlink(target, at).unwrap();
}

/// ROOT/devices/pci0000:00/0000:00:02.0/ holds the PF and VF device
/// directories; class/net and bus/pci/devices link into it.
fn build_tree(name: &str) -> Tree {
    let root = std::env::temp_dir().join(format!("virtnet-sysfs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let bridge = "devices/pci0000:00/0000:00:02.0";
    let pf_dir = root.join(bridge).join(PF);
    std::fs::create_dir_all(pf_dir.join("net/enp3s0f0")).unwrap();
    std::fs::write(pf_dir.join("sriov_totalvfs"), "8\n").unwrap();
    std::fs::write(pf_dir.join("sriov_numvfs"), "4\n").unwrap();
    link(
        &format!("../../../{bridge}/{PF}"),
        &root.join("bus/pci/devices").join(PF),
    );
    link(
        &format!("../../{bridge}/{PF}/net/enp3s0f0"),
        &root.join("class/net/enp3s0f0"),
    );
    link(
        &format!("../../../{PF}"),
        &pf_dir.join("net/enp3s0f0/device"),
    );
    // Created in reverse so directory order is not index order.
    for (i, (addr, netdev)) in VFS.iter().enumerate().rev() {
        let vf_dir = root.join(bridge).join(addr);
        std::fs::create_dir_all(&vf_dir).unwrap();
        link(&format!("../{addr}"), &pf_dir.join(format!("virtfn{i}")));
        link(&format!("../{PF}"), &vf_dir.join("physfn"));
        link(
            &format!("../../../{bridge}/{addr}"),
            &root.join("bus/pci/devices").join(addr),
        );
        if let Some(n) = netdev {
            std::fs::create_dir_all(vf_dir.join("net").join(n)).unwrap();
            link(
                &format!("../../{bridge}/{addr}/net/{n}"),
                &root.join("class/net").join(n),
            );
            link(
                &format!("../../../{addr}"),
                &vf_dir.join("net").join(n).join("device"),
            );
        }
    }
    // A virtual device without a PCI device behind it.
    std::fs::create_dir_all(root.join("devices/virtual/net/virbr0")).unwrap();
    link(
        "../../devices/virtual/net/virbr0",
        &root.join("class/net/virbr0"),
    );
    Tree { root }
}

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn fake() -> FakeSriov {
    let f = FakeSriov::new();
    let vfs: Vec<(PciAddress, Option<&str>)> = VFS.iter().map(|(a, n)| (addr(a), *n)).collect();
    f.add_pf("enp3s0f0", addr(PF), &vfs);
    f
}

fn check_discovery(ops: &dyn SriovOps, total: Option<u32>) {
    let vfs = ops.virtual_functions("enp3s0f0").unwrap();
    assert_eq!(vfs.len(), 4);
    for (i, vf) in vfs.iter().enumerate() {
        assert_eq!(vf.index as usize, i);
        assert_eq!(vf.address.to_string(), VFS[i].0);
        assert_eq!(vf.netdev.as_deref(), VFS[i].1);
    }
    assert_eq!(ops.pci_address("enp3s0f0").unwrap(), addr(PF));
    assert_eq!(ops.pci_address("enp3s16f2").unwrap(), addr("0000:03:10.2"));
    assert_eq!(
        ops.netdevs(addr("0000:03:10.6")).unwrap(),
        vec!["enp3s16f6"]
    );
    assert!(ops.netdevs(addr("0000:03:10.4")).unwrap().is_empty());
    assert!(ops.is_virtual_function(addr("0000:03:10.4")).unwrap());
    assert!(!ops.is_virtual_function(addr(PF)).unwrap());
    assert_eq!(
        ops.physical_function(addr("0000:03:10.0")).unwrap(),
        Some(addr(PF))
    );
    assert_eq!(ops.physical_function(addr(PF)).unwrap(), None);
    assert_eq!(ops.total_vfs("enp3s0f0").unwrap(), total);
    // A VF has no VFs of its own.
    assert!(ops.virtual_functions("enp3s16").unwrap().is_empty());
    assert!(matches!(
        ops.virtual_functions("nosuch0"),
        Err(SriovError::NoSuchDevice(_))
    ));
    assert!(matches!(
        ops.is_virtual_function(addr("0000:04:00.0")),
        Err(SriovError::NoSuchPciDevice(_))
    ));
}

#[test]
fn sysfs_discovery_of_a_pf_with_four_vfs() {
    let tree = build_tree("vfs");
    let sysfs = SysfsSriov::new(&tree.root);
    check_discovery(&sysfs, Some(8));
    assert_eq!(sysfs.total_vfs("enp3s16").unwrap(), None);
    let err = sysfs.virtual_functions("virbr0").unwrap_err();
    assert_eq!(err.to_string(), "'virbr0' is not a PCI network device");
    assert!(matches!(
        sysfs.pci_address("../../etc"),
        Err(SriovError::NoSuchDevice(_))
    ));
}

#[test]
fn fake_answers_like_sysfs() {
    let f = fake();
    check_discovery(&f, Some(4));
    assert_eq!(f.recorder.calls()[0], "virtual_functions enp3s0f0");
    f.recorder.fail_on("virtual_functions");
    assert!(f.virtual_functions("enp3s0f0").is_err());
}

#[test]
fn real_sysfs_is_readable() {
    // Whatever this machine has: every VF reported must be a VF of its PF.
    let sysfs = SysfsSriov::default();
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        eprintln!("skipped: real_sysfs_is_readable: no /sys/class/net");
        return;
    };
    let mut seen = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(vfs) = sysfs.virtual_functions(&name) else {
            continue;
        };
        if vfs.is_empty() {
            continue;
        }
        let pf = sysfs.pci_address(&name).unwrap();
        for vf in vfs {
            assert_eq!(sysfs.physical_function(vf.address).unwrap(), Some(pf));
            seen += 1;
        }
    }
    if seen == 0 {
        eprintln!("skipped: real_sysfs_is_readable: no SR-IOV devices on this host");
    }
}
