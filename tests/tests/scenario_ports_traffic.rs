//! Traffic through the devices of network ports: Open vSwitch ports with
//! portgroup VLANs, macvtap ports in bridge and private mode, and a port's
//! `<bandwidth>`.
//!
//! A guest is played by a namespace whose `eth0` is a TAP of its own; a
//! [`Wire`] copies frames between that TAP and the port's host-side device
//! (the port's TAP, opened by name, or a macvtap's `/dev/tapN`), as a
//! hypervisor copies frames between a NIC and its back-end. Guests thus
//! send and receive through exactly the device virtnetd made for the
//! port, with its VLAN tag, macvtap mode or traffic shaping.
//!
//! Each test plays the host in a namespace of its own running virtnetd.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use scenario_common::{Client, Host, data, require_all};
use virtnet_host::openvswitch::{PrivateOvs, PrivateOvsConfig};
use virtnet_host::tap::{Tap, TapSpec, open_macvtap};
use virtnet_tests::process::{self, DEFAULT_TIMEOUT, TempDir};
use virtnet_tests::tcp::{ThroughputReport, ThroughputSink, measure_throughput};
use virtnet_tests::{Daemon, DaemonOpts, Netns, Veth, or_skip, ping, require};

// ----- guests on wires ------------------------------------------------------

/// A guest namespace whose `eth0` (a TAP, with the port's MAC) is wired to
/// a port's host-side device: two threads copy every frame one way each.
/// Dropping it stops the copying and closes both ends; the guest's TAP
/// goes, the port's device stays (it is the port's).
struct Wire {
    ns: Netns,
    stop: Arc<AtomicBool>,
    pumps: Vec<JoinHandle<u64>>,
}

impl Wire {
    /// Wires a new guest to the port TAP `tap` in `host_ns` (opened by name
    /// there, without the virtio-net header).
    fn to_tap(host_ns: &Netns, tap: &str, mac: &str) -> Wire {
        let spec = TapSpec::new(tap);
        let device = host_ns
            .enter(|| Tap::create(&spec))
            .unwrap()
            .unwrap_or_else(|e| panic!("open port TAP {tap}: {e}"));
        Wire::new(device.into_queues().remove(0), mac)
    }

    /// Wires a new guest to a macvtap's character device.
    fn to_macvtap(chardev: &Path, mac: &str) -> Wire {
        let device = open_macvtap(chardev, false)
            .unwrap_or_else(|e| panic!("open {}: {e}", chardev.display()));
        Wire::new(device, mac)
    }

    fn new(device: File, mac: &str) -> Wire {
        let ns = Netns::new("guest").unwrap();
        let eth0 = ns
            .enter(|| Tap::create(&TapSpec::new("eth0")))
            .unwrap()
            .unwrap_or_else(|e| panic!("guest TAP: {e}"))
            .into_queues()
            .remove(0);
        ns.ip(&["link", "set", "eth0", "address", mac]).unwrap();
        ns.ip(&["link", "set", "eth0", "up"]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let pumps = vec![
            pump(
                device.try_clone().unwrap(),
                eth0.try_clone().unwrap(),
                &stop,
            ),
            pump(eth0, device, &stop),
        ];
        Wire { ns, stop, pumps }
    }

    /// Gives `eth0` a static address.
    fn addr(self, cidr: &str) -> Wire {
        self.ns.ip(&["addr", "add", cidr, "dev", "eth0"]).unwrap();
        self
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for p in self.pumps.drain(..) {
            let _ = p.join();
        }
    }
}

/// Copies frames from `from` to `to` until `stop` (or `from` fails, as a
/// deleted device does); returns how many.
fn pump(from: File, mut to: File, stop: &Arc<AtomicBool>) -> JoinHandle<u64> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut frames = 0u64;
        let mut from = from;
        while !stop.load(Ordering::Relaxed) {
            let mut fds = [PollFd::new(from.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(_) => break,
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // A full queue drops the frame, as a NIC would.
                    let _ = to.write(&buf[..n]);
                    frames += 1;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => break,
            }
        }
        frames
    })
}

// ----- ports ----------------------------------------------------------------

/// virsh where it is installed, else virtnet.
fn client() -> Client {
    if Client::Virsh.check().is_ok() {
        Client::Virsh
    } else {
        Client::Virtnet
    }
}

/// A port to create.
#[derive(Default)]
struct PortReq<'a> {
    n: u32,
    mac: &'a str,
    group: Option<&'a str>,
    bandwidth: Option<&'a str>,
}

impl PortReq<'_> {
    fn uuid(&self) -> String {
        format!("7c0e5a10-3d2b-4c8e-9a6f-{:012x}", self.n)
    }

    fn owner_uuid(&self) -> String {
        format!("1f6b2c3d-4e5f-4a7b-8c9d-{:012x}", self.n)
    }

    fn xml(&self) -> String {
        let mut x = format!(
            "<networkport>\n  <uuid>{}</uuid>\n  <owner>\n    <name>vm{}</name>\n    <uuid>{}</uuid>\n  </owner>\n",
            self.uuid(),
            self.n,
            self.owner_uuid()
        );
        if let Some(g) = self.group {
            x += &format!("  <group>{g}</group>\n");
        }
        x += &format!("  <mac address='{}'/>\n", self.mac);
        if let Some(b) = self.bandwidth {
            x += &format!("  {b}\n");
        }
        x += "</networkport>\n";
        x
    }
}

/// Creates a port on `net` and returns its `net-port-dumpxml`.
fn create_port(c: Client, d: &Daemon, dir: &TempDir, net: &str, req: &PortReq) -> String {
    let file = dir.join(format!("port{}.xml", req.n));
    std::fs::write(&file, req.xml()).unwrap();
    let out = c.ok(d, &["net-port-create", net, file.to_str().unwrap()]);
    assert!(out.contains(&req.uuid()), "net-port-create said: {out}");
    c.ok(d, &["net-port-dumpxml", net, &req.uuid()])
}

/// Attribute `attr` of the `<virtnet:device>` element of a port's XML.
fn device_attr(port_xml: &str, attr: &str) -> String {
    let start = port_xml
        .find("<virtnet:device ")
        .unwrap_or_else(|| panic!("no <virtnet:device> in {port_xml}"));
    let elem = &port_xml[start..];
    let elem = &elem[..elem.find("/>").unwrap()];
    let pat = format!(" {attr}='");
    let v = &elem[elem
        .find(&pat)
        .unwrap_or_else(|| panic!("no {attr} in {elem}"))
        + pat.len()..];
    v[..v.find('\'').unwrap()].to_string()
}

fn pings(from: &Wire, to: Ipv4Addr, count: u32) -> u32 {
    ping::ping(&from.ns, IpAddr::V4(to), count, Duration::from_secs(20))
        .unwrap()
        .received
}

// ----- Open vSwitch ---------------------------------------------------------

/// Daemon directories share one counter with every temporary directory,
/// and a dropped daemon kills processes naming its directory: keep every
/// daemon directory the same length (three-digit counter) so none is a
/// prefix of another (as `scenario_common::Host` does).
fn same_length_dirs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for _ in 0..200 {
            let Ok(dir) = TempDir::new("counter") else {
                return;
            };
            let n = dir
                .path()
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.rsplit('-').next())
                .and_then(|n| n.parse::<u32>().ok());
            if n.is_none_or(|n| n >= 99) {
                return;
            }
        }
    });
}

/// `ovs-vsctl --db=… ARGS`, which must succeed.
fn vsctl(ovs: &PrivateOvs, args: &[&str]) -> String {
    let mut cmd = Command::new("ovs-vsctl");
    cmd.arg(format!("--db={}", ovs.db()))
        .arg("--timeout=10")
        .args(args);
    process::run(cmd, DEFAULT_TIMEOUT)
        .unwrap()
        .ok()
        .unwrap()
        .stdout
}

#[test]
fn open_vswitch_ports_get_their_portgroup_vlan_and_external_ids() {
    or_skip!(require_all(Some(Client::Virtnet)));
    or_skip!(require(&[
        "ovs-vsctl",
        "ovsdb-tool",
        "ovsdb-server",
        "ovs-vswitchd"
    ]));
    let config = PrivateOvsConfig::default();
    if !config.schema.is_file() {
        eprintln!(
            "skipped: no Open vSwitch schema at {}",
            config.schema.display()
        );
        return;
    }
    let c = client();
    let t0 = Instant::now();
    same_length_dirs();
    let ns = Netns::new("host").unwrap();
    let ovs_dir = TempDir::new("ovs").unwrap();
    // The switch runs in the host namespace, where the ports' TAPs are.
    let ovs = ns
        .enter(|| PrivateOvs::start(ovs_dir.path(), &config))
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    ovs.vsctl()
        .add_bridge("ovsbr0", Some("netdev"))
        .unwrap_or_else(|e| panic!("{e}"));
    // virtnetd's ovs-vsctl finds this database through OVS_RUNDIR.
    let d = Daemon::start(DaemonOpts {
        no_default_network: true,
        netns: Some(ns.clone()),
        env: vec![("OVS_RUNDIR".into(), ovs_dir.path().display().to_string())],
        ..DaemonOpts::default()
    })
    .unwrap();
    let ovs_up = t0.elapsed();
    let net = data("ports/ovs.xml");
    c.ok(&d, &["net-define", net.to_str().unwrap()]);
    c.ok(&d, &["net-start", "ovsnet"]);

    // Two blue ports (one by default), two red ones.
    let dir = TempDir::new("ports").unwrap();
    let reqs = [
        (
            PortReq {
                n: 1,
                mac: "52:54:00:79:00:01",
                group: None,
                ..PortReq::default()
            },
            10,
            "10.79.0.1",
        ),
        (
            PortReq {
                n: 2,
                mac: "52:54:00:79:00:02",
                group: Some("blue"),
                ..PortReq::default()
            },
            10,
            "10.79.0.2",
        ),
        (
            PortReq {
                n: 3,
                mac: "52:54:00:79:00:03",
                group: Some("red"),
                ..PortReq::default()
            },
            20,
            "10.79.0.3",
        ),
        (
            PortReq {
                n: 4,
                mac: "52:54:00:79:00:04",
                group: Some("red"),
                ..PortReq::default()
            },
            20,
            "10.79.0.4",
        ),
    ];
    let mut taps = Vec::new();
    for (req, tag, _) in &reqs {
        let xml = create_port(c, &d, &dir, "ovsnet", req);
        assert!(
            xml.contains("<plug type='bridge' bridge='ovsbr0'/>"),
            "port {} plugged into the OVS bridge: {xml}",
            req.n
        );
        assert!(
            xml.contains(&format!("<tag id='{tag}'/>")),
            "port {} has its portgroup's VLAN: {xml}",
            req.n
        );
        let tap = device_attr(&xml, "name");
        assert!(tap.starts_with("vnet"), "{tap}");
        assert_eq!(device_attr(&xml, "type"), "tap");

        // The OVS database has the port with its tag and external ids.
        assert_eq!(
            vsctl(&ovs, &["get", "Port", &tap, "tag"]).trim(),
            tag.to_string()
        );
        let ids = vsctl(&ovs, &["get", "Interface", &tap, "external_ids"]);
        for want in [
            format!("attached-mac=\"{}\"", req.mac),
            format!("iface-id=\"{}\"", req.uuid()),
            format!("vm-id=\"{}\"", req.owner_uuid()),
            "iface-status=active".to_string(),
        ] {
            assert!(ids.contains(&want), "{tap}: {want} in {ids}");
        }
        taps.push(tap);
    }
    let mut sorted = taps.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "four TAPs: {taps:?}");
    let listed = vsctl(&ovs, &["list-ports", "ovsbr0"]);
    for tap in &taps {
        assert!(listed.lines().any(|l| l == tap), "{tap} in {listed}");
    }
    let ports_made = t0.elapsed();

    // Guests on the TAPs, all in one subnet.
    let guests: Vec<Wire> = reqs
        .iter()
        .zip(&taps)
        .map(|((req, _, ip), tap)| Wire::to_tap(&ns, tap, req.mac).addr(&format!("{ip}/24")))
        .collect();
    let ip = |i: usize| reqs[i].2.parse::<Ipv4Addr>().unwrap();
    // Same VLAN: they reach each other.
    assert!(pings(&guests[0], ip(1), 3) >= 2, "blue to blue");
    assert!(pings(&guests[2], ip(3), 3) >= 2, "red to red");
    // Different VLANs: nothing gets across.
    assert_eq!(pings(&guests[0], ip(2), 3), 0, "blue to red");
    assert_eq!(pings(&guests[3], ip(1), 3), 0, "red to blue");
    let traffic_done = t0.elapsed();
    drop(guests);

    // Deleting the ports takes them off the switch and removes the TAPs.
    for (req, _, _) in &reqs {
        c.ok(&d, &["net-port-delete", "ovsnet", &req.uuid()]);
    }
    let listed = vsctl(&ovs, &["list-ports", "ovsbr0"]);
    assert_eq!(listed.trim(), "", "no ports left on ovsbr0");
    for tap in &taps {
        assert!(
            ns.wait_link_gone(tap, Duration::from_secs(5)),
            "{tap} is gone"
        );
    }
    c.ok(&d, &["net-destroy", "ovsnet"]);
    drop(d);
    drop(ovs);
    eprintln!(
        "timings: private OVS and daemon up {ovs_up:?}; 4 ports {:?}; pings {:?}; total {:?}",
        ports_made - ovs_up,
        traffic_done - ports_made,
        t0.elapsed()
    );
}

// ----- macvtap --------------------------------------------------------------

/// Two macvtap ports on `lower0`, each wired to a guest; returns the
/// guests and the ports' devices.
fn macvtap_pair(
    c: Client,
    host: &Host,
    dir: &TempDir,
    net: &str,
    mode: &str,
    first: u32,
) -> (Vec<Wire>, Vec<String>) {
    let d = &host.daemon;
    let mut guests = Vec::new();
    let mut devs = Vec::new();
    for i in 0..2u32 {
        let n = first + i;
        let mac = format!("52:54:00:80:00:{n:02x}");
        let req = PortReq {
            n,
            mac: &mac,
            ..PortReq::default()
        };
        let xml = create_port(c, d, dir, net, &req);
        assert!(
            xml.contains(&format!("<plug type='direct' dev='lower0' mode='{mode}'/>")),
            "{xml}"
        );
        assert_eq!(device_attr(&xml, "type"), "macvtap");
        let name = device_attr(&xml, "name");
        let path = PathBuf::from(device_attr(&xml, "path"));
        let link = host.ns.ip(&["-d", "-o", "link", "show", &name]).unwrap();
        assert!(link.contains("@lower0:"), "{name} on lower0: {link}");
        assert!(
            link.contains(&format!("macvtap mode {mode} ")),
            "{name} in {mode} mode: {link}"
        );
        assert!(link.contains(&mac), "{name} has the guest's MAC: {link}");
        let index = host
            .ns
            .sh(&format!("cat /sys/class/net/{name}/ifindex"))
            .unwrap();
        assert_eq!(
            path,
            PathBuf::from(format!("/dev/tap{}", index.trim())),
            "{xml}"
        );
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::metadata(&path)
                .unwrap()
                .file_type()
                .is_char_device(),
            "{} is a character device",
            path.display()
        );
        guests.push(Wire::to_macvtap(&path, &mac).addr(&format!("10.80.0.{n}/24")));
        devs.push(name);
    }
    (guests, devs)
}

#[test]
fn macvtap_ports_reach_each_other_in_bridge_mode_and_not_in_private_mode() {
    or_skip!(require_all(Some(Client::Virtnet)));
    let c = client();
    let t0 = Instant::now();
    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    // The lower device: a veth end, its peer in a "lan" namespace.
    let lan = Netns::new("lan").unwrap();
    let _lower = Veth::create(&host.ns, "lower0", &lan, "eth0").unwrap();
    lan.ip(&["addr", "add", "10.80.0.254/24", "dev", "eth0"])
        .unwrap();
    let lan_ip: Ipv4Addr = "10.80.0.254".parse().unwrap();
    let dir = TempDir::new("ports").unwrap();

    // Bridge mode: the two macvtaps talk to each other through lower0.
    c.ok(
        d,
        &[
            "net-define",
            data("ports/macvtap-bridge.xml").to_str().unwrap(),
        ],
    );
    c.ok(d, &["net-start", "mvbridge"]);
    let (guests, devs) = macvtap_pair(c, &host, &dir, "mvbridge", "bridge", 1);
    assert_ne!(devs[0], devs[1]);
    assert!(pings(&guests[0], lan_ip, 2) >= 1, "guest 1 reaches the lan");
    let got = pings(&guests[0], "10.80.0.2".parse().unwrap(), 3);
    assert!(got >= 2, "bridge mode: guest 1 reaches guest 2 ({got}/3)");
    let got = pings(&guests[1], "10.80.0.1".parse().unwrap(), 3);
    assert!(got >= 2, "bridge mode: guest 2 reaches guest 1 ({got}/3)");
    drop(guests);
    for n in 1..=2 {
        let uuid = PortReq {
            n,
            ..PortReq::default()
        }
        .uuid();
        c.ok(d, &["net-port-delete", "mvbridge", &uuid]);
    }
    for dev in &devs {
        assert!(
            host.ns.wait_link_gone(dev, Duration::from_secs(5)),
            "{dev} is gone with its port"
        );
    }
    c.ok(d, &["net-destroy", "mvbridge"]);
    let bridge_done = t0.elapsed();

    // Private mode: each still reaches the lan, never the other.
    c.ok(
        d,
        &[
            "net-define",
            data("ports/macvtap-private.xml").to_str().unwrap(),
        ],
    );
    c.ok(d, &["net-start", "mvprivate"]);
    let (guests, devs) = macvtap_pair(c, &host, &dir, "mvprivate", "private", 3);
    assert!(pings(&guests[0], lan_ip, 2) >= 1, "guest 3 reaches the lan");
    assert!(pings(&guests[1], lan_ip, 2) >= 1, "guest 4 reaches the lan");
    assert_eq!(
        pings(&guests[0], "10.80.0.4".parse().unwrap(), 3),
        0,
        "private mode: guest 3 does not reach guest 4"
    );
    drop(guests);
    c.ok(d, &["net-destroy", "mvprivate"]);
    for dev in &devs {
        assert!(!host.ns.link_exists(dev), "{dev} is gone with its network");
    }
    eprintln!(
        "timings: bridge mode {bridge_done:?}; private mode {:?}",
        t0.elapsed() - bridge_done
    );
}

// ----- bandwidth ------------------------------------------------------------

const MEASURE: Duration = Duration::from_secs(4);

/// Throughput guest → wan and wan → guest.
fn both_ways(
    host: &Host,
    guest: &Wire,
    guest_ip: Ipv4Addr,
) -> (ThroughputReport, ThroughputReport) {
    let wan_sink = ThroughputSink::start(
        &host.wan.ns,
        SocketAddr::new(IpAddr::V4(host.wan.wan_addr), 0),
    )
    .unwrap();
    let up = measure_throughput(&guest.ns, wan_sink.addr(), MEASURE).unwrap();
    let guest_sink =
        ThroughputSink::start(&guest.ns, SocketAddr::new(IpAddr::V4(guest_ip), 0)).unwrap();
    let down = measure_throughput(&host.wan.ns, guest_sink.addr(), MEASURE).unwrap();
    (up, down)
}

/// Sets a port's bandwidth through libvirt-python's
/// `virNetworkPort.setParameters` (0 removes a direction).
fn set_port_bandwidth(d: &Daemon, net: &str, uuid: &str, inbound: u32, outbound: u32) -> bool {
    let script = "import libvirt, sys\n\
        c = libvirt.open(sys.argv[1])\n\
        p = c.networkLookupByName(sys.argv[2]).portLookupByUUIDString(sys.argv[3])\n\
        p.setParameters({'inbound.average': int(sys.argv[4]), 'outbound.average': int(sys.argv[5])}, 0)\n";
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", script, &d.uri(), net, uuid])
        .arg(inbound.to_string())
        .arg(outbound.to_string());
    let out = process::run(cmd, DEFAULT_TIMEOUT).unwrap();
    assert!(out.success(), "setParameters: {}{}", out.stdout, out.stderr);
    true
}

fn has_python_libvirt() -> bool {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", "import libvirt"]);
    process::run(cmd, DEFAULT_TIMEOUT).is_ok_and(|o| o.success())
}

#[test]
fn a_port_bandwidth_limits_both_directions_and_lifting_it_frees_them() {
    or_skip!(require_all(Some(Client::Virtnet)));
    or_skip!(require(&["tc"]));
    if !has_python_libvirt() {
        eprintln!("skipped: /usr/bin/python3 has no libvirt module (python3-libvirt)");
        return;
    }
    let c = client();
    let t0 = Instant::now();
    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    c.ok(
        d,
        &["net-define", data("ports/bandwidth.xml").to_str().unwrap()],
    );
    c.ok(d, &["net-start", "bwnet"]);
    let dir = TempDir::new("ports").unwrap();
    let mac = "52:54:00:81:00:01";
    let req = PortReq {
        n: 1,
        mac,
        bandwidth: Some("<bandwidth><inbound average='125'/><outbound average='125'/></bandwidth>"),
        ..PortReq::default()
    };
    let xml = create_port(c, d, &dir, "bwnet", &req);
    let tap = device_attr(&xml, "name");
    let qdiscs = host
        .ns
        .run_ok(["tc", "qdisc", "show", "dev", &tap])
        .unwrap()
        .stdout;
    assert!(qdiscs.contains("htb"), "{tap} shaped: {qdiscs}");
    assert!(
        qdiscs.contains("ingress"),
        "{tap} redirects what the guest sends: {qdiscs}"
    );

    let ifb = format!("ifb-{tap}");
    assert!(
        host.ns.link_exists(&ifb),
        "{ifb} shapes what the guest sends"
    );

    let guest = Wire::to_tap(&host.ns, &tap, mac);
    let lease = virtnet_tests::dhcp::udhcpc(&guest.ns, "eth0", &Default::default()).unwrap();
    let guest_ip = lease.ip;
    let (up, down) = both_ways(&host, &guest, guest_ip);
    let limited = t0.elapsed();

    // Lifted through the API: both directions run free.
    set_port_bandwidth(d, "bwnet", &req.uuid(), 0, 0);
    let after = c.ok(d, &["net-port-dumpxml", "bwnet", &req.uuid()]);
    assert!(!after.contains("<bandwidth"), "no bandwidth left: {after}");
    let qdiscs = host
        .ns
        .run_ok(["tc", "qdisc", "show", "dev", &tap])
        .unwrap()
        .stdout;
    assert!(!qdiscs.contains("htb"), "{tap} no longer shaped: {qdiscs}");
    assert!(!host.ns.link_exists(&ifb), "{ifb} went with the limit");
    let (free_up, free_down) = both_ways(&host, &guest, guest_ip);

    // And limited again.
    set_port_bandwidth(d, "bwnet", &req.uuid(), 125, 125);
    let (again_up, again_down) = both_ways(&host, &guest, guest_ip);
    drop(guest);
    assert!(host.ns.link_exists(&ifb), "{ifb} is back with the limit");
    c.ok(d, &["net-port-delete", "bwnet", &req.uuid()]);
    assert!(host.ns.wait_link_gone(&tap, Duration::from_secs(5)));
    assert!(!host.ns.link_exists(&ifb), "{ifb} went with the port");

    eprintln!(
        "throughput (Mbit/s): limited guest->wan {:.3} wan->guest {:.3}; \
         lifted guest->wan {:.1} wan->guest {:.1}; limited again {:.3} / {:.3}; \
         limited phase {limited:?}, total {:?}",
        up.mbit_per_sec(),
        down.mbit_per_sec(),
        free_up.mbit_per_sec(),
        free_down.mbit_per_sec(),
        again_up.mbit_per_sec(),
        again_down.mbit_per_sec(),
        t0.elapsed()
    );
    for (what, r) in [
        ("guest->wan limited", &up),
        ("wan->guest limited", &down),
        ("guest->wan limited again", &again_up),
        ("wan->guest limited again", &again_down),
    ] {
        assert!(r.bytes > 0, "{what}: nothing got through");
        assert!(
            r.mbit_per_sec() <= 1.2,
            "{what}: {:.3} Mbit/s",
            r.mbit_per_sec()
        );
    }
    for (what, free, lim) in [
        ("guest->wan", &free_up, &up),
        ("wan->guest", &free_down, &down),
    ] {
        assert!(
            free.mbit_per_sec() >= 10.0 * lim.mbit_per_sec().max(1.0),
            "{what}: {:.2} Mbit/s unlimited vs {:.3} limited",
            free.mbit_per_sec(),
            lim.mbit_per_sec()
        );
    }
}

#[test]
fn port_floors_may_not_overcommit_the_network_inbound_average() {
    or_skip!(require_all(Some(Client::Virtnet)));
    or_skip!(require(&["tc"]));
    let c = client();
    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    c.ok(
        d,
        &["net-define", data("ports/floor.xml").to_str().unwrap()],
    );
    c.ok(d, &["net-start", "floornet"]);
    let dir = TempDir::new("ports").unwrap();
    let floor = Some("<bandwidth><inbound average='800' floor='600'/></bandwidth>");
    let first = PortReq {
        n: 1,
        mac: "52:54:00:82:00:01",
        bandwidth: floor,
        ..PortReq::default()
    };
    let second = PortReq {
        n: 2,
        mac: "52:54:00:82:00:02",
        bandwidth: floor,
        ..PortReq::default()
    };
    let xml = create_port(c, d, &dir, "floornet", &first);
    assert!(xml.contains("classID="), "the floor got a class: {xml}");
    let before = host.snapshot();

    // Refused, in libvirt's words, by both clients alike.
    let file = dir.join("second.xml");
    std::fs::write(&file, second.xml()).unwrap();
    for c in Client::ALL.into_iter().filter(|c| c.check().is_ok()) {
        let out = c.run(d, &["net-port-create", "floornet", file.to_str().unwrap()]);
        assert!(!out.success(), "{c:?}");
        assert_eq!(
            out.stderr.trim_end(),
            format!(
                "error: Failed to create network from {}\n\
                 error: Requested operation is not valid: Cannot plug '52:54:00:82:00:02' interface into 'vnpfl0' \
                 because new combined inbound floor=1200 would overcommit average=1000 on network 'floornet'",
                file.display()
            ),
            "{c:?}"
        );
    }
    let after = host.snapshot();
    assert_eq!(before.diff(&after), "", "a refused port leaves nothing");
    let list = c.ok(d, &["net-port-list", "floornet"]);
    assert!(!list.contains(&second.uuid()), "{list}");

    // With the first one gone, the floor fits.
    c.ok(d, &["net-port-delete", "floornet", &first.uuid()]);
    create_port(c, d, &dir, "floornet", &second);
    c.ok(d, &["net-port-delete", "floornet", &second.uuid()]);
}
