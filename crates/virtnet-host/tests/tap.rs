//! Real TAP and macvtap devices inside the test runner's private network
//! (and mount) namespace.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use virtnet_host::fdpass::{recv_fd, send_fd};
use virtnet_host::netlink::{
    BridgePortOptions, BridgeSpec, MacvlanMode, MacvtapSpec, Netlink, NetlinkOps,
};
use virtnet_host::tap::{
    ChardevDirs, Tap, TapError, TapSpec, create_macvtap_port, delete_macvtap_port,
    macvtap_chardev_in, open_macvtap,
};

/// A directory on the runner's private tmpfs (/run/netns), so mount points
/// made for a test leave nothing behind on the host's file systems.
fn private_scratch() -> PathBuf {
    let run = PathBuf::from("/run/netns");
    if run.is_dir() {
        run
    } else {
        std::env::temp_dir()
    }
}

/// sysfs of the test's network namespace (the system's /sys shows the
/// namespace it was mounted from), mounted privately once per process.
fn sys_class_net() -> PathBuf {
    static MOUNTED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MOUNTED
        .get_or_init(|| {
            let dir = private_scratch().join(format!("virtnet-sys-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            nix::mount::mount(
                Some("sysfs"),
                &dir,
                Some("sysfs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .unwrap();
            dir.join("class/net")
        })
        .clone()
}

fn sys(name: &str, attr: &str) -> String {
    std::fs::read_to_string(sys_class_net().join(name).join(attr))
        .unwrap()
        .trim()
        .to_string()
}

fn ready(test: &str) -> bool {
    if !common::may_touch_kernel(test) {
        return false;
    }
    if !Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: {test}: /dev/net/tun missing");
        return false;
    }
    true
}

#[test]
fn tap_with_owner_vnet_hdr_and_queues() {
    if !ready("tap_with_owner_vnet_hdr_and_queues") {
        return;
    }
    let nl = Netlink::open().unwrap();
    let mut spec = TapSpec::new("vttap%d");
    spec.vnet_hdr = true;
    spec.owner = Some(1000);
    spec.group = Some(1001);
    let tap = Tap::create(&spec).unwrap();
    let name = tap.name().to_string();
    assert!(name.starts_with("vttap") && name != "vttap%d", "{name}");
    let flags = u32::from_str_radix(sys(&name, "tun_flags").trim_start_matches("0x"), 16).unwrap();
    let want = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as u32;
    assert_eq!(flags & want, want, "tun_flags {flags:#x}");
    assert_eq!(sys(&name, "owner"), "1000");
    assert_eq!(sys(&name, "group"), "1001");
    let link = nl.link(&name).unwrap().expect("tap listed");
    assert_eq!(link.kind.as_deref(), Some("tun"));

    // Plug it into a bridge like a guest port.
    nl.create_bridge(&BridgeSpec {
        name: "vttbr0".into(),
        mac: None,
        mtu: None,
        stp: false,
        forward_delay: std::time::Duration::ZERO,
    })
    .unwrap();
    nl.set_master(&name, Some("vttbr0")).unwrap();
    nl.set_up(&name, true).unwrap();
    let bridge = nl.link("vttbr0").unwrap().unwrap();
    assert_eq!(nl.link(&name).unwrap().unwrap().master, Some(bridge.index));

    // Not persistent: closing the descriptor removes the device.
    drop(tap);
    assert!(
        nl.link(&name).unwrap().is_none(),
        "{name} must go with its fd"
    );

    // Two queues, persistent: it stays after close until deleted.
    let mut mq = TapSpec::new("vtmq0");
    mq.queues = 2;
    mq.persist = true;
    let tap = Tap::create(&mq).unwrap();
    assert_eq!(tap.queues().len(), 2);
    let flags =
        u32::from_str_radix(sys("vtmq0", "tun_flags").trim_start_matches("0x"), 16).unwrap();
    assert_ne!(
        flags & libc::IFF_MULTI_QUEUE as u32,
        0,
        "tun_flags {flags:#x}"
    );
    drop(tap);
    assert!(
        nl.link("vtmq0").unwrap().is_some(),
        "persistent tap survives close"
    );
    nl.delete_link("vtmq0").unwrap();
    nl.delete_link("vttbr0").unwrap();

    let err = Tap::create(&TapSpec::new("bad/name")).unwrap_err();
    assert_eq!(err.to_string(), "invalid tap device name 'bad/name'");
}

/// A tmpfs private to this test's mount namespace, standing in for /dev.
fn private_dev_dir(tag: &str) -> Option<PathBuf> {
    let dir = private_scratch().join(format!("virtnet-dev-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    nix::mount::mount(
        Some("tmpfs"),
        &dir,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("mode=0755"),
    )
    .ok()?;
    Some(dir)
}

#[test]
fn macvtap_on_a_veth_with_its_chardev() {
    if !ready("macvtap_on_a_veth_with_its_chardev") {
        return;
    }
    let nl = Netlink::open().unwrap();
    nl.create_veth("vtlow0", "vtlow0p", None).unwrap();
    let spec = MacvtapSpec {
        name: "vtmvt0".into(),
        lower: "vtlow0".into(),
        mode: MacvlanMode::Bridge,
        mac: Some("52:54:00:de:ad:01".parse().unwrap()),
    };
    let index = match nl.create_macvtap(&spec) {
        Ok(i) => i,
        Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => {
            eprintln!("skipped: macvtap_on_a_veth_with_its_chardev: kernel lacks macvtap: {e}");
            nl.delete_link("vtlow0").unwrap();
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let link = nl.link("vtmvt0").unwrap().unwrap();
    assert_eq!(link.index, index);
    assert_eq!(link.kind.as_deref(), Some("macvtap"));
    assert_eq!(link.macvlan_mode, Some(MacvlanMode::Bridge));
    assert_eq!(link.mac, spec.mac);
    let lower = nl.link("vtlow0").unwrap().unwrap();
    assert_eq!(link.lower, Some(lower.index));
    let j = common::ip_json(&["-d", "link", "show", "dev", "vtmvt0"]);
    assert_eq!(j[0]["linkinfo"]["info_data"]["mode"], "bridge");

    let Some(dev) = private_dev_dir("chardev") else {
        eprintln!("skipped: macvtap chardev part: cannot mount a private tmpfs");
        nl.delete_link("vtmvt0").unwrap();
        nl.delete_link("vtlow0").unwrap();
        return;
    };
    let path = macvtap_chardev_in("vtmvt0", index, &dev, &sys_class_net()).unwrap();
    assert_eq!(path, dev.join(format!("tap{index}")));
    let want = sys("vtmvt0", &format!("macvtap/tap{index}/dev"));
    let st = nix::sys::stat::stat(&path).unwrap();
    let got = format!(
        "{}:{}",
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev)
    );
    assert_eq!(got, want);
    // Asking again reuses the node.
    assert_eq!(
        macvtap_chardev_in("vtmvt0", index, &dev, &sys_class_net()).unwrap(),
        path
    );
    let file = open_macvtap(&path, true).unwrap();
    drop(file);

    // Other modes are accepted too.
    let private = MacvtapSpec {
        name: "vtmvt1".into(),
        lower: "vtlow0".into(),
        mode: MacvlanMode::Private,
        mac: None,
    };
    nl.create_macvtap(&private).unwrap();
    assert_eq!(
        nl.link("vtmvt1").unwrap().unwrap().macvlan_mode,
        Some(MacvlanMode::Private)
    );

    nl.delete_link("vtmvt1").unwrap();
    nl.delete_link("vtmvt0").unwrap();
    nl.delete_link("vtlow0").unwrap();
    let _ = nix::mount::umount(&dev);
    let _ = std::fs::remove_dir_all(&dev);
}

#[test]
fn tap_for_a_guest_port() {
    if !ready("tap_for_a_guest_port") {
        return;
    }
    let nl = Netlink::open().unwrap();
    // The kernel gives a template's first free number.
    let held: Vec<Tap> = (0..3)
        .map(|_| Tap::create(&TapSpec::new("vtpn%d")).unwrap())
        .collect();
    let names: Vec<&str> = held.iter().map(|t| t.name()).collect();
    assert_eq!(names, ["vtpn0", "vtpn1", "vtpn2"]);
    let mut held = held.into_iter();
    let first = held.next().unwrap();
    first.delete().unwrap();
    assert!(nl.link("vtpn0").unwrap().is_none());

    let spec = TapSpec {
        name: "vtpn%d".into(),
        vnet_hdr: true,
        queues: 4,
        persist: true,
        owner: Some(107),
        group: Some(108),
    };
    let tap = Tap::create(&spec).unwrap();
    assert_eq!(tap.name(), "vtpn0", "first free name");
    assert_eq!(tap.queues().len(), 4);
    let flags =
        u32::from_str_radix(sys("vtpn0", "tun_flags").trim_start_matches("0x"), 16).unwrap();
    let want =
        (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR | libc::IFF_MULTI_QUEUE) as u32;
    assert_eq!(flags & want, want, "tun_flags {flags:#x}");
    assert_eq!(sys("vtpn0", "owner"), "107");
    assert_eq!(sys("vtpn0", "group"), "108");

    // What a port does with it: host-side MAC, MTU, bridge, isolation, up.
    nl.create_bridge(&BridgeSpec {
        name: "vtpbr0".into(),
        mac: None,
        mtu: None,
        stp: false,
        forward_delay: std::time::Duration::ZERO,
    })
    .unwrap();
    let mac: virtnet_host::MacAddr = "fe:54:00:12:34:56".parse().unwrap();
    nl.set_mac("vtpn0", mac).unwrap();
    nl.set_mtu("vtpn0", 1400).unwrap();
    nl.set_master("vtpn0", Some("vtpbr0")).unwrap();
    nl.set_bridge_port(
        "vtpn0",
        &BridgePortOptions {
            isolated: Some(true),
            ..BridgePortOptions::default()
        },
    )
    .unwrap();
    nl.set_up("vtpn0", true).unwrap();
    let link = nl.link("vtpn0").unwrap().unwrap();
    let bridge = nl.link("vtpbr0").unwrap().unwrap();
    assert_eq!(link.mac, Some(mac));
    assert_eq!(link.mtu, 1400);
    assert_eq!(link.master, Some(bridge.index));
    assert_eq!(link.port.and_then(|p| p.isolated), Some(true));
    let j = common::ip_json(&["-d", "link", "show", "dev", "vtpn0"]);
    assert_eq!(j[0]["linkinfo"]["info_slave_data"]["isolated"], true);

    // Persistent: it outlives its descriptors, and can be deleted.
    drop(tap);
    assert!(nl.link("vtpn0").unwrap().is_some());
    nl.delete_link("vtpn0").unwrap();
    for t in held {
        t.delete().unwrap();
    }
    assert!(nl.link("vtpn1").unwrap().is_none() && nl.link("vtpn2").unwrap().is_none());
    nl.delete_link("vtpbr0").unwrap();
}

#[test]
fn tap_descriptor_passed_over_a_socket() {
    if !ready("tap_descriptor_passed_over_a_socket") {
        return;
    }
    let nl = Netlink::open().unwrap();
    let tap = Tap::create(&TapSpec::new("vtfd%d")).unwrap();
    let name = tap.name().to_string();
    nl.set_up(&name, true).unwrap();
    // The helper's side sends; the guest's side receives, as with
    // qemu-bridge-helper and QEMU.
    let (helper, guest) = std::os::unix::net::UnixStream::pair().unwrap();
    send_fd(&helper, tap.fd()).unwrap();
    let received = recv_fd(&guest).unwrap();
    let before: u64 = sys(&name, "statistics/rx_packets").parse().unwrap();
    // A broadcast frame written by the guest arrives on the TAP.
    let mut frame = vec![0xffu8; 6];
    frame.extend_from_slice(&[0x52, 0x54, 0x00, 0x00, 0x00, 0x01]);
    frame.extend_from_slice(&[0x88, 0xb5]);
    frame.resize(60, 0);
    let mut file = std::fs::File::from(received);
    std::io::Write::write_all(&mut file, &frame).unwrap();
    let after: u64 = sys(&name, "statistics/rx_packets").parse().unwrap();
    assert_eq!(after, before + 1);
    // The device goes only when both sides have closed.
    drop(tap);
    assert!(
        nl.link(&name).unwrap().is_some(),
        "the guest still holds it"
    );
    drop(file);
    assert!(nl.link(&name).unwrap().is_none());
}

#[test]
fn macvtap_port_with_template_and_chardev() {
    if !ready("macvtap_port_with_template_and_chardev") {
        return;
    }
    let nl = Netlink::open().unwrap();
    nl.create_veth("vtplow0", "vtplow0p", None).unwrap();
    let spec = MacvtapSpec {
        name: "vtpmvt%d".into(),
        lower: "vtplow0".into(),
        mode: MacvlanMode::Bridge,
        mac: Some("52:54:00:de:ad:02".parse().unwrap()),
    };
    let Some(dev) = private_dev_dir("port") else {
        eprintln!("skipped: macvtap_port_with_template_and_chardev: cannot mount a private tmpfs");
        nl.delete_link("vtplow0").unwrap();
        return;
    };
    let sys_net = sys_class_net();
    let dirs = ChardevDirs {
        dev_dir: &dev,
        sys_class_net: &sys_net,
    };
    let a = match create_macvtap_port(&nl, &spec, Some(dirs)) {
        Ok(a) => a,
        Err(TapError::Netlink(e)) if e.errno() == Some(libc::EOPNOTSUPP) => {
            eprintln!("skipped: macvtap_port_with_template_and_chardev: kernel lacks macvtap: {e}");
            nl.delete_link("vtplow0").unwrap();
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let b = create_macvtap_port(&nl, &spec, Some(dirs)).unwrap();
    assert_eq!((a.name.as_str(), b.name.as_str()), ("vtpmvt0", "vtpmvt1"));
    let path = a.chardev.clone().unwrap();
    assert_eq!(path, dev.join(format!("tap{}", a.index)));
    let st = nix::sys::stat::stat(&path).unwrap();
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFCHR);
    let link = nl.link("vtpmvt0").unwrap().unwrap();
    assert_eq!(link.index, a.index);
    assert_eq!(link.mac, spec.mac);
    assert_eq!(link.macvlan_mode, Some(MacvlanMode::Bridge));
    drop(open_macvtap(&path, true).unwrap());

    delete_macvtap_port(&nl, "vtpmvt0", Some(&dev)).unwrap();
    assert!(nl.link("vtpmvt0").unwrap().is_none());
    assert!(!path.exists(), "chardev removed");
    delete_macvtap_port(&nl, "vtpmvt0", Some(&dev)).unwrap();
    // The freed name is the first free one again.
    let c = create_macvtap_port(&nl, &spec, None).unwrap();
    assert_eq!(c.name, "vtpmvt0");
    delete_macvtap_port(&nl, "vtpmvt0", None).unwrap();
    delete_macvtap_port(&nl, "vtpmvt1", Some(&dev)).unwrap();
    nl.delete_link("vtplow0").unwrap();
    let _ = nix::mount::umount(&dev);
    let _ = std::fs::remove_dir_all(&dev);
}
