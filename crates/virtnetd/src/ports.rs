//! Network ports: what libvirt's network driver allocates for each guest
//! interface (`virNetworkPortCreateXML`), and what virtnet adds — the host
//! device that realises it, so a hypervisor only has to open a device.
//!
//! [`allocate`] and [`release`] follow libvirt's `networkAllocatePort` and
//! `networkReleasePort`: portgroup settings merged in, the plug type chosen
//! by forward mode, a pool device picked for direct and hostdev networks,
//! connection counts kept. [`realise`] and [`unrealise`] create and remove
//! the TAP or macvtap device.

use std::path::PathBuf;

use rand::RngCore;
use virtnet_conf::{
    ForwardDevice, ForwardMode, MacAddr, MacvlanMode, NetworkDef, PortDef, PortDeviceKind,
    PortPlug, TristateBool, Uuid, VirtPortProfile, VirtPortType, defaults,
};
use virtnet_host::MacAddr as HostMac;
use virtnet_host::bandwidth::FloorPool;
use virtnet_host::netlink::{
    BridgePortOptions, LinkConfig, MacvlanMode as HostMacvlan, MacvtapSpec,
};
use virtnet_host::openvswitch::{NativeVlanMode as OvsNativeMode, OvsPortSpec, OvsVlan};
use virtnet_host::tap::{TapSpec, create_macvtap_port};

use crate::error::{Error, Result};
use crate::host::Host;
use crate::reaper::Reaper;
use crate::setup;

/// Default name template of TAP devices (libvirt's).
pub const TAP_TEMPLATE: &str = "vnet%d";
/// Default name template of macvtap devices (libvirt's).
pub const MACVTAP_TEMPLATE: &str = "macvtap%d";

fn vport_name(p: &VirtPortProfile) -> &'static str {
    p.virt_port_type.as_str()
}

/// Fills in a port the way libvirt's `networkAllocatePort` does, against
/// the running network `net` (whose connection counts are updated). Returns
/// the index of the pool device taken, if any.
pub fn allocate(
    net: &mut NetworkDef,
    port: &mut PortDef,
    others: &[PortDef],
    rng: &mut dyn RngCore,
) -> Result<Option<usize>> {
    let name = net.name.clone();
    // A port names its portgroup; an unknown one is refused (libvirt would
    // silently use none).
    let portgroup = match &port.group {
        Some(g) => Some(net.port_group(Some(g)).cloned().ok_or_else(|| {
            Error::Unsupported(format!("network '{name}' has no portgroup named '{g}'"))
        })?),
        None => net.port_group(None).cloned(),
    };

    // A port created without a uuid gets a fresh one (libvirt requires
    // the caller to choose it).
    if port.needs_uuid() {
        port.uuid = loop {
            let u = Uuid::new_v4(rng);
            if !others.iter().any(|o| o.uuid == u) {
                break u;
            }
        };
    }

    match port.mac {
        Some(mac) => {
            if let Some(other) = others.iter().find(|o| o.mac == Some(mac)) {
                return Err(Error::OperationFailed(format!(
                    "MAC address {mac} is already in use by port {} on network '{name}'",
                    other.uuid
                )));
            }
        }
        None => {
            let mac = loop {
                let m = defaults::generate_mac(rng);
                if !others.iter().any(|o| o.mac == Some(m)) {
                    break m;
                }
            };
            port.mac = Some(mac);
        }
    }

    if port.bandwidth.is_none() {
        port.bandwidth = portgroup.as_ref().and_then(|pg| pg.bandwidth);
    }
    if port.vlan.is_none() {
        port.vlan = portgroup
            .as_ref()
            .and_then(|pg| pg.vlan.clone())
            .or_else(|| net.vlan.clone());
    }
    if port.trust_guest_rx_filters == TristateBool::Absent {
        port.trust_guest_rx_filters = match portgroup.as_ref().map(|pg| pg.trust_guest_rx_filters) {
            Some(t) if t != TristateBool::Absent => t,
            _ => net.trust_guest_rx_filters,
        };
    }
    if port.isolated_port == TristateBool::Absent {
        port.isolated_port = net.isolated_port;
    }
    port.virt_port_profile = VirtPortProfile::merge3(
        port.virt_port_profile.as_ref(),
        net.virt_port_profile.as_ref(),
        portgroup
            .as_ref()
            .and_then(|pg| pg.virt_port_profile.as_ref()),
    )?;

    let unsupported = |what: &str| -> Result<()> {
        match &port.virt_port_profile {
            Some(p) => Err(Error::Unsupported(format!(
                "<virtualport type='{}'> not supported for network '{name}' which uses {what}",
                vport_name(p)
            ))),
            None => Ok(()),
        }
    };
    let qbg_qbh_only = |p: &Option<VirtPortProfile>| {
        p.as_ref().is_none_or(|p| {
            matches!(
                p.virt_port_type,
                VirtPortType::Ieee8021Qbg | VirtPortType::Ieee8021Qbh
            )
        })
    };

    let mut dev = None;
    match net.forward.mode {
        ForwardMode::None | ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open => {
            port.plug = PortPlug::Network {
                bridge: net.bridge.clone().unwrap_or_default(),
                mac_table_manager: net.mac_table_manager,
            };
            unsupported("IP forwarding")?;
        }
        ForwardMode::Hostdev => {
            let i = net
                .forward
                .ifs
                .iter()
                .position(|d| d.connections == 0)
                .ok_or_else(|| exclusive_none(&name))?;
            let ForwardDevice::Pci(addr) = net.forward.ifs[i].device.clone() else {
                return Err(Error::Internal(format!(
                    "network '{name}' has a network device in its PCI device pool"
                )));
            };
            port.plug = PortPlug::HostdevPci {
                managed: if net.forward.managed {
                    TristateBool::Yes
                } else {
                    TristateBool::Absent
                },
                driver: net.forward.driver.clone(),
                addr,
            };
            if !qbg_qbh_only(&port.virt_port_profile) {
                unsupported("an SR-IOV Virtual Function via PCI passthrough")?;
            }
            dev = Some(i);
        }
        ForwardMode::Bridge if net.bridge.is_some() => {
            port.plug = PortPlug::Bridge {
                bridge: net.bridge.clone().unwrap_or_default(),
                mac_table_manager: net.mac_table_manager,
            };
            if port
                .virt_port_profile
                .as_ref()
                .is_some_and(|p| p.virt_port_type != VirtPortType::Openvswitch)
            {
                unsupported("a bridge device")?;
            }
        }
        ForwardMode::Bridge
        | ForwardMode::Private
        | ForwardMode::Vepa
        | ForwardMode::Passthrough => {
            let mode = match net.forward.mode {
                ForwardMode::Bridge => MacvlanMode::Bridge,
                ForwardMode::Private => MacvlanMode::Private,
                ForwardMode::Vepa => MacvlanMode::Vepa,
                _ => MacvlanMode::Passthrough,
            };
            if !qbg_qbh_only(&port.virt_port_profile) {
                unsupported("a macvtap device")?;
            }
            if net.forward.ifs.is_empty() {
                return Err(Error::Internal(format!(
                    "network '{name}' uses a direct mode, but has no forward dev and no interface pool"
                )));
            }
            let exclusive = net.forward.mode == ForwardMode::Passthrough
                || (net.forward.mode == ForwardMode::Private
                    && port
                        .virt_port_profile
                        .as_ref()
                        .is_some_and(|p| p.virt_port_type == VirtPortType::Ieee8021Qbh));
            let i = if exclusive {
                net.forward
                    .ifs
                    .iter()
                    .position(|d| d.connections == 0)
                    .ok_or_else(|| exclusive_none(&name))?
            } else {
                let mut best = 0;
                for (i, d) in net.forward.ifs.iter().enumerate() {
                    if d.connections < net.forward.ifs[best].connections {
                        best = i;
                    }
                }
                best
            };
            let linkdev = net.forward.ifs[i].dev().unwrap_or_default().to_string();
            port.plug = PortPlug::Direct { linkdev, mode };
            dev = Some(i);
        }
    }

    net.connections += 1;
    if let Some(i) = dev {
        net.forward.ifs[i].connections += 1;
    }
    Ok(dev)
}

fn exclusive_none(name: &str) -> Error {
    Error::Internal(format!(
        "network '{name}' requires exclusive access to interfaces, but none are available"
    ))
}

/// The pool device a port's plug uses, if any.
fn pool_device(net: &NetworkDef, port: &PortDef) -> Option<usize> {
    match &port.plug {
        PortPlug::Direct { linkdev, .. } => net
            .forward
            .ifs
            .iter()
            .position(|d| d.dev() == Some(linkdev.as_str())),
        PortPlug::HostdevPci { addr, .. } => net
            .forward
            .ifs
            .iter()
            .position(|d| matches!(&d.device, ForwardDevice::Pci(a) if a == addr)),
        _ => None,
    }
}

/// Gives back what [`allocate`] took (libvirt's `networkReleasePort`).
pub fn release(net: &mut NetworkDef, port: &PortDef) {
    net.connections = net.connections.saturating_sub(1);
    if let Some(i) = pool_device(net, port) {
        let c = &mut net.forward.ifs[i].connections;
        *c = c.saturating_sub(1);
    }
}

/// Counts an existing port's connections again (after a restart; libvirt's
/// `networkNotifyPort` without the checks).
pub fn count(net: &mut NetworkDef, port: &PortDef) {
    net.connections += 1;
    if let Some(i) = pool_device(net, port) {
        net.forward.ifs[i].connections += 1;
    }
}

/// The MAC a TAP gets on the host side: the guest's with the first byte
/// 0xFE, so the bridge never adopts the guest's address (as libvirt does).
fn host_side_mac(mac: MacAddr) -> HostMac {
    let mut b = mac.0;
    b[0] = 0xFE;
    HostMac(b)
}

/// Creates the host device of an allocated port: a persistent TAP on the
/// bridge for plug types network and bridge, a macvtap on the pool device
/// for direct; a hostdev needs nothing on the host. Fills in
/// `port.device` with what was made. On failure nothing is left behind.
pub fn realise(
    host: &Host,
    reaper: &Reaper,
    net: &NetworkDef,
    port: &mut PortDef,
    floors: Option<&mut FloorPool>,
) -> Result<()> {
    let name = net.name.clone();
    let herr = |e: &dyn std::fmt::Display| Error::host(&name, e);
    let mut dev = port.device.clone().unwrap_or_default();
    let mac = port
        .mac
        .ok_or_else(|| Error::Internal("port without a MAC address".into()))?;
    // A template (`vnet%d`) is filled in by the kernel (TAP) or by
    // create_macvtap_port; an explicit name must not be taken.
    let pick = |template: &str| -> Result<String> {
        match &dev.name {
            Some(n) if !n.contains("%d") => {
                // A device of that name may still be on its way out.
                if reaper.is_retiring(n) {
                    reaper.flush();
                }
                if host.netlink.link(n).map_err(|e| herr(&e))?.is_some() {
                    return Err(Error::OperationFailed(format!(
                        "target device '{n}' already exists"
                    )));
                }
                Ok(n.clone())
            }
            Some(t) => Ok(t.clone()),
            None => Ok(template.to_string()),
        }
    };
    match port.plug.clone() {
        PortPlug::Network {
            bridge,
            mac_table_manager,
        }
        | PortPlug::Bridge {
            bridge,
            mac_table_manager,
        } => {
            let tap_name = pick(TAP_TEMPLATE)?;
            let spec = TapSpec {
                name: tap_name,
                vnet_hdr: dev.vnet_hdr != TristateBool::No,
                queues: dev.queues.map(|q| q as usize).unwrap_or(1),
                persist: true,
                owner: dev.user,
                group: dev.group,
            };
            let tap = host.taps.create_tap(&spec).map_err(|e| herr(&e))?;
            dev.kind = Some(PortDeviceKind::Tap);
            dev.name = Some(tap.clone());
            port.device = Some(dev);
            let res = plug_tap(host, net, port, &tap, &bridge, mac_table_manager, mac)
                .and_then(|()| shape(host, net, port, &tap, true, floors));
            if let Err(e) = res {
                let _ = host.bandwidth.clear(&tap);
                if setup::is_openvswitch(net) {
                    let _ = host.ovs.remove_port(&tap);
                }
                let _ = host.netlink.delete_link(&tap);
                port.device = None;
                return Err(e);
            }
        }
        PortPlug::Direct { linkdev, mode } => {
            let spec = MacvtapSpec {
                name: pick(MACVTAP_TEMPLATE)?,
                lower: linkdev,
                mode: match mode {
                    MacvlanMode::Bridge => HostMacvlan::Bridge,
                    MacvlanMode::Private => HostMacvlan::Private,
                    MacvlanMode::Vepa => HostMacvlan::Vepa,
                    MacvlanMode::Passthrough => HostMacvlan::Passthru,
                },
                mac: Some(HostMac(mac.0)),
            };
            let made = create_macvtap_port(&*host.netlink, &spec, None).map_err(|e| herr(&e))?;
            let mvt = made.name.clone();
            dev.kind = Some(PortDeviceKind::Macvtap);
            dev.name = Some(mvt.clone());
            port.device = Some(dev);
            let done = (|| -> Result<PathBuf> {
                if let Some(mtu) = net.mtu {
                    host.netlink.set_mtu(&mvt, mtu).map_err(|e| herr(&e))?;
                }
                host.netlink.set_up(&mvt, true).map_err(|e| herr(&e))?;
                shape(host, net, port, &mvt, false, None)?;
                host.taps
                    .macvtap_chardev(&mvt, made.index)
                    .map_err(|e| herr(&e))
            })();
            match done {
                Ok(path) => {
                    if let Some(d) = port.device.as_mut() {
                        d.path = Some(path.display().to_string());
                    }
                }
                Err(e) => {
                    let _ = host.bandwidth.clear(&mvt);
                    let _ = host.netlink.delete_link(&mvt);
                    port.device = None;
                    return Err(e);
                }
            }
        }
        PortPlug::HostdevPci { .. } => {
            dev.kind = Some(PortDeviceKind::Hostdev);
            port.device = Some(dev);
        }
        PortPlug::None => {}
    }
    Ok(())
}

fn plug_tap(
    host: &Host,
    net: &NetworkDef,
    port: &PortDef,
    tap: &str,
    bridge: &str,
    mac_table_manager: virtnet_conf::MacTableManager,
    mac: MacAddr,
) -> Result<()> {
    let name = &net.name;
    let herr = |e: &dyn std::fmt::Display| Error::host(name, e);
    // The TAP takes the network's MTU; on a host bridge, the bridge's (a
    // bridge virtnet made without <mtu> has the kernel's default, which a
    // new TAP has too).
    let mtu = match (net.mtu, &port.plug) {
        (Some(m), _) => Some(m),
        (None, PortPlug::Bridge { .. }) => host
            .netlink
            .link(bridge)
            .map_err(|e| herr(&e))?
            .map(|l| l.mtu)
            .filter(|m| *m > 0),
        (None, _) => None,
    };
    let ovs = port
        .virt_port_profile
        .as_ref()
        .is_some_and(|p| p.virt_port_type == VirtPortType::Openvswitch);
    let mut opts = BridgePortOptions::default();
    if port.isolated_port.is_yes() {
        opts.isolated = Some(true);
    }
    if mac_table_manager == virtnet_conf::MacTableManager::Libvirt {
        opts.learning = Some(false);
        opts.unicast_flood = Some(false);
    }
    let port_options = !ovs && opts != BridgePortOptions::default();
    // One request: MAC, MTU, bridge and, when nothing else is to be set
    // before traffic may flow, up.
    let config = LinkConfig {
        mac: Some(host_side_mac(mac)),
        mtu,
        master: (!ovs).then(|| bridge.to_string()),
        up: !ovs && !port_options,
    };
    host.netlink
        .configure_link(tap, &config)
        .map_err(|e| herr(&e))?;
    if ovs {
        let spec = OvsPortSpec {
            bridge: bridge.to_string(),
            ifname: tap.to_string(),
            mac: HostMac(mac.0),
            interface_id: port
                .virt_port_profile
                .as_ref()
                .and_then(|p| p.interface_id)
                .unwrap_or(port.uuid)
                .to_string(),
            vm_id: port.owner_uuid.to_string(),
            profile_id: port
                .virt_port_profile
                .as_ref()
                .and_then(|p| p.profile_id.clone()),
            vlan: port.vlan.as_ref().map(ovs_vlan),
        };
        host.ovs.add_port(&spec).map_err(|e| herr(&e))?;
    } else if port_options {
        host.netlink
            .set_bridge_port(tap, &opts)
            .map_err(|e| herr(&e))?;
    }
    if !config.up {
        host.netlink.set_up(tap, true).map_err(|e| herr(&e))?;
    }
    Ok(())
}

fn ovs_vlan(v: &virtnet_conf::Vlan) -> OvsVlan {
    let native = |mode| (mode, u16::try_from(v.native_tag).unwrap_or(0));
    OvsVlan {
        tags: v
            .tags
            .iter()
            .filter_map(|t| u16::try_from(*t).ok())
            .collect(),
        trunk: v.trunk,
        native: match v.native_mode {
            virtnet_conf::NativeVlanMode::Default => None,
            virtnet_conf::NativeVlanMode::Tagged => Some(native(OvsNativeMode::Tagged)),
            virtnet_conf::NativeVlanMode::Untagged => Some(native(OvsNativeMode::Untagged)),
        },
    }
}

/// Applies a port's `<bandwidth>` to its device (`swapped` for TAPs, whose
/// egress is what the guest receives) and plugs its floor into the
/// network's floor classes.
fn shape(
    host: &Host,
    net: &NetworkDef,
    port: &mut PortDef,
    device: &str,
    swapped: bool,
    floors: Option<&mut FloorPool>,
) -> Result<()> {
    let Some(bw) = port.bandwidth else {
        return Ok(());
    };
    let hb = setup::host_bandwidth(&bw);
    let shaping = if swapped {
        hb.swapped(device)
    } else {
        hb.unswapped(device)
    };
    if !shaping.is_empty() {
        host.bandwidth
            .set(&shaping)
            .map_err(|e| Error::host(&net.name, e))?;
    }
    if let (Some(pool), Some(mac)) = (floors, port.mac) {
        let class = pool
            .plug(&*host.bandwidth, HostMac(mac.0), hb.inbound.as_ref())
            .map_err(bandwidth_error)?;
        port.class_id = class.unwrap_or(0);
    } else if hb.has_floor() {
        return Err(Error::OperationUnsupported(format!(
            "Invalid use of 'floor' on interface with MAC address {} - 'floor' is only supported for interface type 'network' with forward type 'nat', 'route', 'open' or none",
            port.mac.map(|m| m.to_string()).unwrap_or_default()
        )));
    }
    Ok(())
}

/// A bandwidth error under libvirt's error class.
pub fn bandwidth_error(e: virtnet_host::bandwidth::BandwidthError) -> Error {
    use virtnet_host::bandwidth::ErrorClass;
    let msg = e.to_string();
    match e.class() {
        ErrorClass::OperationInvalid => Error::OperationInvalid(msg),
        ErrorClass::OperationUnsupported => Error::OperationUnsupported(msg),
        ErrorClass::ConfigUnsupported => Error::Unsupported(msg),
        ErrorClass::Internal => Error::Internal(msg),
    }
}

/// Removes the host device of a port, and gives back its floor. A device
/// already gone is fine. A TAP is handed to `reaper` when given (deleted in
/// the background, together with others); otherwise it is deleted now.
pub fn unrealise(
    host: &Host,
    reaper: Option<&Reaper>,
    net: &NetworkDef,
    port: &PortDef,
    floors: Option<&mut FloorPool>,
) -> Result<()> {
    if let (Some(pool), Some(bw)) = (floors, port.bandwidth) {
        let floor = bw.inbound.map(|r| r.floor).unwrap_or(0);
        if let Err(e) = pool.unplug(&*host.bandwidth, port.class_id, floor) {
            log::warn!("network '{}': port {}: {e}", net.name, port.uuid);
        }
    }
    let Some(dev) = &port.device else {
        return Ok(());
    };
    let (Some(kind @ (PortDeviceKind::Tap | PortDeviceKind::Macvtap)), Some(n)) =
        (dev.kind, &dev.name)
    else {
        return Ok(());
    };
    if port.bandwidth.is_some() {
        if let Err(e) = host.bandwidth.clear(n) {
            log::warn!("network '{}': {e}", net.name);
        }
    }
    if kind == PortDeviceKind::Tap && setup::is_openvswitch(net) {
        if let Err(e) = host.ovs.remove_port(n) {
            log::warn!("network '{}': {e}", net.name);
        }
    }
    if let (PortDeviceKind::Tap, Some(reaper)) = (kind, reaper) {
        reaper.retire(n.clone());
        return Ok(());
    }
    match host.netlink.delete_link(n) {
        Err(e) if !e.is_not_found() => Err(Error::host(&net.name, e)),
        _ => Ok(()),
    }
}

/// Changes a realised port's bandwidth (`virNetworkPortSetParameters`):
/// floor accounting first (which may refuse), then the device's shaping.
pub fn reshape(
    host: &Host,
    net: &NetworkDef,
    port: &mut PortDef,
    new: Option<virtnet_conf::Bandwidth>,
    floors: Option<&mut FloorPool>,
) -> Result<()> {
    let old_in = port
        .bandwidth
        .map(|b| setup::host_bandwidth(&b))
        .and_then(|b| b.inbound);
    let new_hb = new.map(|b| setup::host_bandwidth(&b));
    let new_in = new_hb.and_then(|b| b.inbound);
    if let (Some(pool), Some(mac)) = (floors, port.mac) {
        pool.update(
            &*host.bandwidth,
            HostMac(mac.0),
            &mut port.class_id,
            old_in.as_ref(),
            new_in.as_ref(),
        )
        .map_err(bandwidth_error)?;
    }
    let device = port.device.as_ref().and_then(|d| match d.kind {
        Some(k @ (PortDeviceKind::Tap | PortDeviceKind::Macvtap)) => {
            d.name.clone().map(|n| (n, k == PortDeviceKind::Tap))
        }
        _ => None,
    });
    if let Some((name, swapped)) = device {
        let shaping = new_hb.map(|hb| {
            if swapped {
                hb.swapped(&name)
            } else {
                hb.unswapped(&name)
            }
        });
        let res = match shaping {
            Some(s) if !s.is_empty() => host.bandwidth.set(&s),
            _ => host.bandwidth.clear(&name),
        };
        res.map_err(|e| Error::host(&net.name, e))?;
    }
    port.bandwidth = new;
    Ok(())
}

/// Whether the host device of a realised port is still there.
pub fn device_present(host: &Host, port: &PortDef) -> bool {
    match port.device.as_ref().and_then(|d| match d.kind {
        Some(PortDeviceKind::Tap | PortDeviceKind::Macvtap) => d.name.as_deref(),
        _ => None,
    }) {
        Some(n) => matches!(host.netlink.link(n), Ok(Some(_))),
        None => true,
    }
}

/// Re-plugs a port's TAP into its bridge (after the bridge was recreated).
pub fn replug(host: &Host, net: &NetworkDef, port: &PortDef) -> Result<()> {
    let (
        Some(dev),
        PortPlug::Network {
            bridge,
            mac_table_manager,
        },
    ) = (&port.device, &port.plug)
    else {
        return Ok(());
    };
    let Some(tap) = &dev.name else {
        return Ok(());
    };
    let mac = port.mac.unwrap_or(MacAddr([0; 6]));
    plug_tap(host, net, port, tap, bridge, *mac_table_manager, mac)
}
