//! QEMU's view of a network port: the command-line arguments that give a
//! guest a NIC on the host device virtnetd made for the port.
//!
//! * a TAP (plug types network and bridge): `-netdev tap,ifname=…` — QEMU
//!   attaches to the existing persistent TAP;
//! * a macvtap (plug type direct): `-netdev tap,fd=3` with the shell
//!   redirection `3<>/dev/tapN` that opens its character device;
//! * a PCI device (plug type hostdev-pci): `-device vfio-pci,host=…`.

use virtnet_conf::{PortDef, PortDeviceKind, PortPlug, TristateBool};

/// Why no arguments can be made for a port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QemuArgsError {
    /// The port has no host device (not realised, or plug type none).
    #[error("network port {0} has no host device")]
    NoDevice(String),
    /// The port has no MAC address.
    #[error("network port {0} has no MAC address")]
    NoMac(String),
    /// The device record lacks what QEMU needs.
    #[error("network port {port}: {detail}")]
    Incomplete {
        /// The port's UUID.
        port: String,
        /// What is missing.
        detail: String,
    },
}

/// The QEMU device implementing a guest NIC model (`virtio` is
/// `virtio-net-pci`; other models are QEMU's device names already, as in
/// libvirt: `e1000`, `e1000e`, `rtl8139`, `vmxnet3`, …).
pub fn nic_device(model: &str) -> &str {
    match model {
        "virtio" | "virtio-net" => "virtio-net-pci",
        other => other,
    }
}

/// One line of QEMU arguments for `port`, whose netdev is called `id`.
pub fn qemu_args(port: &PortDef, id: &str) -> Result<String, QemuArgsError> {
    let uuid = port.uuid.to_string();
    let incomplete = |detail: &str| QemuArgsError::Incomplete {
        port: uuid.clone(),
        detail: detail.to_owned(),
    };
    if let PortPlug::HostdevPci { addr, .. } = &port.plug {
        return Ok(format!("-device vfio-pci,host={addr}"));
    }
    let dev = port
        .device
        .as_ref()
        .ok_or_else(|| QemuArgsError::NoDevice(uuid.clone()))?;
    let kind = dev
        .kind
        .ok_or_else(|| QemuArgsError::NoDevice(uuid.clone()))?;
    let mac = port.mac.ok_or_else(|| QemuArgsError::NoMac(uuid.clone()))?;
    let model = dev.model.as_deref().unwrap_or("virtio");
    let nic = nic_device(model);
    let vnet_hdr = match dev.vnet_hdr {
        TristateBool::No => ",vnet_hdr=off",
        _ => ",vnet_hdr=on",
    };
    match kind {
        PortDeviceKind::Tap => {
            let name = dev
                .name
                .as_deref()
                .ok_or_else(|| incomplete("the TAP has no name"))?;
            let queues = dev.queues.filter(|q| *q > 1);
            let mut line =
                format!("-netdev tap,id={id},ifname={name},script=no,downscript=no{vnet_hdr}");
            if let Some(q) = queues {
                line.push_str(&format!(",queues={q}"));
            }
            line.push_str(&format!(" -device {nic},netdev={id},mac={mac}"));
            if let (Some(q), "virtio-net-pci") = (queues, nic) {
                // One MSI-X vector per queue pair direction, plus config
                // and control.
                line.push_str(&format!(",mq=on,vectors={}", 2 * q + 2));
            }
            Ok(line)
        }
        PortDeviceKind::Macvtap => {
            let path = dev
                .path
                .as_deref()
                .ok_or_else(|| incomplete("the macvtap has no character device"))?;
            Ok(format!(
                "-netdev tap,id={id},fd=3{vnet_hdr} -device {nic},netdev={id},mac={mac} 3<>{path}"
            ))
        }
        PortDeviceKind::Hostdev => Err(incomplete("the PCI device has no address")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_conf::{MacAddr, PciAddress, PortDevice, Uuid};

    fn port(kind: PortDeviceKind) -> PortDef {
        PortDef {
            uuid: Uuid::parse("5d744f21-ba4a-4d6e-bdb2-30a35ff3207d").unwrap(),
            owner_name: "vm1".into(),
            mac: MacAddr::parse("52:54:00:aa:bb:01"),
            plug: PortPlug::Network {
                bridge: "virbr0".into(),
                mac_table_manager: Default::default(),
            },
            device: Some(PortDevice {
                kind: Some(kind),
                name: Some("vnet3".into()),
                ..PortDevice::default()
            }),
            ..PortDef::default()
        }
    }

    #[test]
    fn tap_line() {
        assert_eq!(
            qemu_args(&port(PortDeviceKind::Tap), "net0").unwrap(),
            "-netdev tap,id=net0,ifname=vnet3,script=no,downscript=no,vnet_hdr=on \
             -device virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:01"
        );
    }

    #[test]
    fn tap_model_queues_and_no_vnet_hdr() {
        let mut p = port(PortDeviceKind::Tap);
        let d = p.device.as_mut().unwrap();
        d.queues = Some(4);
        assert_eq!(
            qemu_args(&p, "nic1").unwrap(),
            "-netdev tap,id=nic1,ifname=vnet3,script=no,downscript=no,vnet_hdr=on,queues=4 \
             -device virtio-net-pci,netdev=nic1,mac=52:54:00:aa:bb:01,mq=on,vectors=10"
        );
        let d = p.device.as_mut().unwrap();
        d.queues = None;
        d.model = Some("e1000".into());
        d.vnet_hdr = TristateBool::No;
        assert_eq!(
            qemu_args(&p, "net0").unwrap(),
            "-netdev tap,id=net0,ifname=vnet3,script=no,downscript=no,vnet_hdr=off \
             -device e1000,netdev=net0,mac=52:54:00:aa:bb:01"
        );
    }

    #[test]
    fn macvtap_line() {
        let mut p = port(PortDeviceKind::Macvtap);
        p.plug = PortPlug::Direct {
            linkdev: "eth0".into(),
            mode: Default::default(),
        };
        let d = p.device.as_mut().unwrap();
        d.name = Some("macvtap0".into());
        d.path = Some("/dev/tap7".into());
        assert_eq!(
            qemu_args(&p, "net0").unwrap(),
            "-netdev tap,id=net0,fd=3,vnet_hdr=on \
             -device virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:01 3<>/dev/tap7"
        );
        p.device.as_mut().unwrap().path = None;
        assert!(matches!(
            qemu_args(&p, "net0"),
            Err(QemuArgsError::Incomplete { .. })
        ));
    }

    #[test]
    fn hostdev_line() {
        let mut p = port(PortDeviceKind::Hostdev);
        p.plug = PortPlug::HostdevPci {
            managed: TristateBool::Yes,
            driver: Default::default(),
            addr: PciAddress {
                domain: 0,
                bus: 3,
                slot: 0x1f,
                function: 1,
            },
        };
        assert_eq!(
            qemu_args(&p, "net0").unwrap(),
            "-device vfio-pci,host=0000:03:1f.1"
        );
    }

    #[test]
    fn ports_without_a_device() {
        let mut p = port(PortDeviceKind::Tap);
        p.device = None;
        assert_eq!(
            qemu_args(&p, "net0").unwrap_err().to_string(),
            "network port 5d744f21-ba4a-4d6e-bdb2-30a35ff3207d has no host device"
        );
        let mut p = port(PortDeviceKind::Tap);
        p.mac = None;
        assert!(matches!(
            qemu_args(&p, "net0"),
            Err(QemuArgsError::NoMac(_))
        ));
    }
}
