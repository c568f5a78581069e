//! Open vSwitch inside the test runner's private network namespace: a
//! private ovsdb-server and ovs-vswitchd (userspace datapath), TAP ports in
//! two VLANs with libvirt's external ids, and traffic between namespaces
//! that only flows within a VLAN.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use virtnet_host::netlink::{AddressOptions, Netlink, NetlinkOps, NetnsTarget};
use virtnet_host::netns::Netns;
use virtnet_host::openvswitch::{
    NativeVlanMode, OpenvswitchOps, OvsPortSpec, OvsVlan, PrivateOvs, PrivateOvsConfig,
};
use virtnet_host::process::pid_exists;
use virtnet_host::tap::{Tap, TapSpec};

/// The userspace datapath makes a device named `ovs-netdev` per
/// namespace, so the tests take turns.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn ready(test: &str) -> Option<PrivateOvsConfig> {
    if !common::may_touch_kernel(test) {
        return None;
    }
    let config = PrivateOvsConfig::default();
    for prog in [
        &config.ovsdb_tool,
        &config.ovsdb_server,
        &config.ovs_vswitchd,
        &config.ovs_vsctl,
    ] {
        if !prog.is_absolute() || !prog.exists() {
            eprintln!("skipped: {test}: {} not installed", prog.display());
            return None;
        }
    }
    if !config.schema.exists() {
        eprintln!(
            "skipped: {test}: no OVS schema at {}",
            config.schema.display()
        );
        return None;
    }
    Some(config)
}

/// A fresh directory on the runner's private tmpfs.
fn scratch(name: &str) -> PathBuf {
    let base = if Path::new("/run/netns").is_dir() {
        PathBuf::from("/run/netns")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("virtnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_ovs(test: &str, config: &PrivateOvsConfig, dir: &Path) -> Option<PrivateOvs> {
    match PrivateOvs::start(dir, config) {
        Ok(ovs) => Some(ovs),
        Err(e) => {
            let log = std::fs::read_to_string(dir.join("ovs-vswitchd.log")).unwrap_or_default();
            panic!("{test}: {e}\n{log}");
        }
    }
}

fn spec(bridge: &str, ifname: &str, mac: &str, vlan: OvsVlan) -> OvsPortSpec {
    OvsPortSpec {
        bridge: bridge.into(),
        ifname: ifname.into(),
        mac: mac.parse().unwrap(),
        interface_id: format!(
            "4c1e6b3a-0000-4000-8000-0000000000{}",
            &mac[mac.len() - 2..]
        ),
        vm_id: "c7a5fdbd-edaf-9455-926a-d65c16db1809".into(),
        profile_id: None,
        vlan: Some(vlan),
    }
}

fn access(tag: u16) -> OvsVlan {
    OvsVlan {
        tags: vec![tag],
        trunk: false,
        native: None,
    }
}

fn daemons_gone(pids: &[(String, i32)]) {
    for (name, pid) in pids {
        let mut alive = true;
        for _ in 0..100 {
            alive = pid_exists(*pid)
                && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| !s.contains(") Z "))
                    .unwrap_or(false);
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive, "{name} (pid {pid}) survived");
    }
}

#[test]
fn ovs_tap_ports_with_vlans_and_external_ids() {
    let test = "ovs_tap_ports_with_vlans_and_external_ids";
    let Some(config) = ready(test) else { return };
    if !Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: {test}: /dev/net/tun missing");
        return;
    }
    let _turn = one_at_a_time();
    let dir = scratch("ovs-ports");
    let Some(ovs) = start_ovs(test, &config, &dir) else {
        return;
    };
    let pids = ovs.pids();
    assert_eq!(pids.len(), 2);
    let vsctl = ovs.vsctl();
    vsctl.add_bridge("vtovs0", Some("netdev")).unwrap();
    assert!(vsctl.bridge_exists("vtovs0").unwrap());
    assert!(!vsctl.bridge_exists("vtnobr0").unwrap());

    let taps: Vec<Tap> = (0..3)
        .map(|_| Tap::create(&TapSpec::new("vtovt%d")).unwrap())
        .collect();
    let names: Vec<String> = taps.iter().map(|t| t.name().to_string()).collect();
    vsctl
        .add_port(&spec("vtovs0", &names[0], "52:54:00:0a:00:01", access(10)))
        .unwrap();
    vsctl
        .add_port(&spec("vtovs0", &names[1], "52:54:00:0a:00:02", access(20)))
        .unwrap();
    let mut trunk = spec(
        "vtovs0",
        &names[2],
        "52:54:00:0a:00:03",
        OvsVlan {
            tags: vec![10, 20],
            trunk: true,
            native: Some((NativeVlanMode::Untagged, 10)),
        },
    );
    trunk.profile_id = Some("trunk-profile".into());
    vsctl.add_port(&trunk).unwrap();

    let mut listed = vsctl.ports("vtovs0").unwrap();
    listed.sort();
    let mut want = names.clone();
    want.sort();
    assert_eq!(listed, want);

    let p0 = vsctl.port(&names[0]).unwrap().expect("port 0");
    assert_eq!(p0.tag, Some(10));
    assert!(p0.trunks.is_empty());
    let ids = &p0.external_ids;
    assert_eq!(ids["attached-mac"], "52:54:00:0a:00:01");
    assert_eq!(ids["iface-id"], "4c1e6b3a-0000-4000-8000-000000000001");
    assert_eq!(ids["vm-id"], "c7a5fdbd-edaf-9455-926a-d65c16db1809");
    assert_eq!(ids["iface-status"], "active");
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(vsctl.port(&names[1]).unwrap().unwrap().tag, Some(20));
    let p2 = vsctl.port(&names[2]).unwrap().unwrap();
    assert_eq!(p2.trunks, vec![10, 20]);
    assert_eq!(p2.tag, Some(10));
    assert_eq!(p2.vlan_mode.as_deref(), Some("native-untagged"));
    assert_eq!(p2.external_ids["port-profile"], "trunk-profile");
    assert_eq!(p2.external_ids["ifname"], names[2]);

    // The same through ovs-vsctl itself.
    let db = format!("--db={}", ovs.db());
    let out = common::run(&[
        "ovs-vsctl",
        &db,
        "get",
        "Interface",
        &names[0],
        "external_ids:attached-mac",
    ]);
    assert_eq!(out.trim(), "\"52:54:00:0a:00:01\"");
    let out = common::run(&["ovs-vsctl", &db, "get", "Port", &names[1], "tag"]);
    assert_eq!(out.trim(), "20");
    assert_eq!(
        vsctl.interface_bridge(&names[1]).unwrap().as_deref(),
        Some("vtovs0")
    );
    assert_eq!(vsctl.interface_bridge("vtnotaport").unwrap(), None);

    // Plugging again (libvirt's reconnect) keeps the port, refreshes ids.
    let mut again = spec("vtovs0", &names[0], "52:54:00:0a:00:01", access(10));
    again.vm_id = "11111111-2222-3333-4444-555555555555".into();
    vsctl.add_port(&again).unwrap();
    assert_eq!(
        vsctl.port(&names[0]).unwrap().unwrap().external_ids["vm-id"],
        "11111111-2222-3333-4444-555555555555"
    );

    // Errors name the port and bridge.
    let err = vsctl
        .add_port(&spec("vtnobr0", "vtovx0", "52:54:00:0a:00:09", access(1)))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Unable to add port vtovx0 to OVS bridge vtnobr0: ")
            && err.contains("no bridge named vtnobr0"),
        "{err}"
    );

    for name in &names {
        vsctl.remove_port(name).unwrap();
    }
    vsctl.remove_port(&names[0]).unwrap();
    assert!(vsctl.ports("vtovs0").unwrap().is_empty());
    assert_eq!(vsctl.port(&names[0]).unwrap(), None);
    vsctl.delete_bridge("vtovs0").unwrap();
    assert!(!vsctl.bridge_exists("vtovs0").unwrap());

    drop(taps);
    drop(ovs);
    daemons_gone(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Pings `addr` from inside `ns`; whether any reply came.
fn ping(ns: &Netns, addr: &str, count: u32) -> bool {
    let mut cmd = Command::new("ping");
    cmd.args(["-n", "-q", "-c", &count.to_string(), "-W", "1", addr]);
    let out = ns
        .run(move || virtnet_host::process::run_with_timeout(cmd, None, Duration::from_secs(15)))
        .unwrap()
        .unwrap();
    out.status.success()
}

#[test]
fn ovs_vlans_separate_traffic() {
    let test = "ovs_vlans_separate_traffic";
    let Some(config) = ready(test) else { return };
    if !common::have_program(test, "ping") {
        return;
    }
    let _turn = one_at_a_time();
    let dir = scratch("ovs-traffic");
    let Some(ovs) = start_ovs(test, &config, &dir) else {
        return;
    };
    let pids = ovs.pids();
    let vsctl = ovs.vsctl();
    vsctl.add_bridge("vtovs1", Some("netdev")).unwrap();

    // Three guests, each behind a veth pair whose host end is an OVS port:
    // two in VLAN 10, one in VLAN 20, all in one IP subnet.
    let nl = Netlink::open().unwrap();
    let mut guests = Vec::new();
    for (i, tag) in [(1u8, 10u16), (2, 10), (3, 20)] {
        let ns = Netns::new().unwrap();
        let host_dev = format!("vtovp{i}");
        nl.create_veth(&host_dev, "eth0", Some(NetnsTarget::Fd(ns.raw_fd())))
            .unwrap();
        nl.set_up(&host_dev, true).unwrap();
        let gnl = Netlink::open_in(ns.file()).unwrap();
        gnl.add_address(
            "eth0",
            format!("10.79.0.{i}/24").parse().unwrap(),
            AddressOptions::default(),
        )
        .unwrap();
        gnl.set_up("eth0", true).unwrap();
        gnl.set_up("lo", true).unwrap();
        let mac = gnl.link("eth0").unwrap().unwrap().mac.unwrap().to_string();
        vsctl
            .add_port(&spec("vtovs1", &host_dev, &mac, access(tag)))
            .unwrap();
        guests.push(ns);
    }

    let same_vlan = ping(&guests[0], "10.79.0.2", 3);
    let other_vlan = ping(&guests[0], "10.79.0.3", 2);
    let other_to_same = ping(&guests[2], "10.79.0.2", 2);
    if !same_vlan {
        let log = std::fs::read_to_string(dir.join("ovs-vswitchd.log")).unwrap_or_default();
        panic!("no traffic within VLAN 10 through the userspace datapath\n{log}");
    }
    assert!(!other_vlan, "VLAN 10 reached VLAN 20");
    assert!(!other_to_same, "VLAN 20 reached VLAN 10");

    // Moving guest 3 into VLAN 10 (unplug, plug) joins it.
    vsctl.remove_port("vtovp3").unwrap();
    let mac3 = Netlink::open_in(guests[2].file())
        .unwrap()
        .link("eth0")
        .unwrap()
        .unwrap()
        .mac
        .unwrap()
        .to_string();
    vsctl
        .add_port(&spec("vtovs1", "vtovp3", &mac3, access(10)))
        .unwrap();
    assert!(ping(&guests[2], "10.79.0.1", 3), "VLAN 10 after moving");

    for i in 1..=3 {
        vsctl.remove_port(&format!("vtovp{i}")).unwrap();
        nl.delete_link(&format!("vtovp{i}")).unwrap();
    }
    vsctl.delete_bridge("vtovs1").unwrap();
    drop(ovs);
    daemons_gone(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}
