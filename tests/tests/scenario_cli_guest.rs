//! Guests plugged in by virtnet: `attach-interface` makes a port whose TAP
//! a QEMU guest uses, `domiflist` and `domifaddr` show it as virsh would,
//! `detach-interface` removes it; and QEMU's `-netdev bridge` gets its TAP
//! from `virtnet qemu-bridge-helper`.
//!
//! Each test plays the host in a namespace of its own, running virtnetd
//! with its default NAT network (virbr0, 192.168.122.0/24). Where virsh is
//! installed, virtnet's tables are compared byte for byte with what virsh
//! prints for the same interface through libvirt's test driver
//! (`tests/data/cli/guest-vm1.xml`).

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use virtnet_tests::daemon::locate_binary;
use virtnet_tests::process::{self, find_tool};
use virtnet_tests::{
    Bridge, Daemon, DaemonOpts, Guest, GuestNet, GuestOpts, Netns, Output, TempDir, or_skip,
    require,
};

const LEASE_TIMEOUT: Duration = Duration::from_secs(120);

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/cli")
        .join(name)
}

/// A host namespace with virtnetd and its (autostarted) default network.
fn host(prefix: &str) -> virtnet_tests::Result<(Netns, Daemon)> {
    let ns = Netns::new(prefix)?;
    let daemon = Daemon::start(DaemonOpts {
        netns: Some(ns.clone()),
        ..DaemonOpts::default()
    })?;
    Ok((ns, daemon))
}

fn vn(daemon: &Daemon, args: &[&str]) -> Output {
    daemon.virtnet(args).expect("virtnet ran")
}

fn vn_ok(daemon: &Daemon, args: &[&str]) -> String {
    let out = vn(daemon, args);
    assert!(
        out.success(),
        "virtnet {} failed ({:?}):\n{}{}",
        args.join(" "),
        out.code(),
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// What virsh prints for `args` against libvirt's test driver loaded with
/// `tests/data/cli/guest-vm1.xml`, if virsh is installed.
fn virsh_oracle(args: &[&str]) -> Option<String> {
    let virsh = std::env::var_os("VIRSH_BIN")
        .map(PathBuf::from)
        .or_else(|| find_tool("virsh"))?;
    let mut cmd = Command::new(virsh);
    cmd.arg("-c")
        .arg(format!("test://{}", data("guest-vm1.xml").display()))
        .args(args);
    let out = process::run(cmd, process::DEFAULT_TIMEOUT).expect("virsh ran");
    assert!(out.success(), "virsh {args:?}: {}", out.stderr);
    Some(out.stdout)
}

/// `ip -o link show DEV` in `ns`.
fn link(ns: &Netns, dev: &str) -> String {
    ns.ip(&["-o", "link", "show", dev]).unwrap_or_default()
}

fn wait_gone(ns: &Netns, dev: &str, timeout: Duration) {
    let start = Instant::now();
    while ns.link_exists(dev) {
        assert!(
            start.elapsed() < timeout,
            "{dev} still exists after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn attach_interface_plugs_a_qemu_guest_and_detach_interface_unplugs_it() {
    or_skip!(require(&["ip", "dnsmasq", "nft", "qemu-system-x86_64"]));
    let t0 = Instant::now();
    let (ns, daemon) = or_skip!(host("attach"));
    let mac = "52:54:00:aa:bb:01";

    // --print-xml writes the interface as virsh does.
    let print = [
        "attach-interface",
        "--domain",
        "vm1",
        "--type",
        "network",
        "--source",
        "default",
        "--model",
        "virtio",
        "--mac",
        mac,
        "--target",
        "vm1-eth0",
        "--print-xml",
    ];
    let xml = vn_ok(&daemon, &print);
    if let Some(expected) = virsh_oracle(&print) {
        assert_eq!(xml, expected, "attach-interface --print-xml");
    }
    assert!(!ns.link_exists("vm1-eth0"), "--print-xml attached nothing");

    let out = vn_ok(&daemon, &print[..print.len() - 1]);
    assert_eq!(out, "Interface attached successfully\n\n");
    let l = link(&ns, "vm1-eth0");
    assert!(l.contains(" master virbr0 "), "TAP on the bridge: {l}");
    assert!(l.contains("fe:54:00:aa:bb:01"), "host-side MAC: {l}");

    // domiflist, byte for byte as virsh prints the same interface.
    let list = vn_ok(&daemon, &["domiflist", "vm1"]);
    assert_eq!(
        list,
        " Interface   Type      Source    Model    MAC\n\
         -------------------------------------------------------------\n \
         vm1-eth0    network   default   virtio   52:54:00:aa:bb:01\n\n"
    );
    if let Some(expected) = virsh_oracle(&["domiflist", "vm1"]) {
        assert_eq!(list, expected, "domiflist");
    }

    // The QEMU arguments for the port name its TAP and MAC.
    let uuids = vn_ok(&daemon, &["-q", "net-port-list", "default", "--uuid"]);
    let uuid = uuids.lines().find(|l| !l.is_empty()).expect("a port");
    let args = vn_ok(&daemon, &["qemu-args", "default", uuid]);
    assert_eq!(
        args,
        format!(
            "-netdev tap,id=net0,ifname=vm1-eth0,script=no,downscript=no,vnet_hdr=on \
             -device virtio-net-pci,netdev=net0,mac={mac}\n\n"
        )
    );

    // A QEMU guest on that TAP leases an address; domifaddr shows it.
    let t_boot = Instant::now();
    let mut guest = or_skip!(Guest::boot(GuestOpts {
        net: GuestNet::Tap("vm1-eth0".into()),
        netns: Some(ns.clone()),
        mac: Some(mac.into()),
        ..GuestOpts::default()
    }));
    let lease = guest.wait_lease(LEASE_TIMEOUT).unwrap();
    eprintln!(
        "guest on the attached TAP leased {} in {:?}",
        lease.ip,
        t_boot.elapsed()
    );
    let addr = vn_ok(&daemon, &["domifaddr", "vm1", "--source", "lease"]);
    let row = format!(" vm1-eth0   {mac}    ipv4         {}/24\n", lease.ip);
    assert_eq!(
        addr,
        format!(
            " Name       MAC address          Protocol     Address\n\
             -------------------------------------------------------------------------------\n\
             {row}\n"
        )
    );
    if let Some(expected) = virsh_oracle(&["domifaddr", "vm1", "--source", "lease"]) {
        // The test driver makes up 192.168.122.3; the layout must match.
        let expected = expected.replace("192.168.122.3/24", &format!("{}/24", lease.ip));
        assert_eq!(addr, expected, "domifaddr");
    }
    assert_eq!(vn_ok(&daemon, &["domifaddr", "vm1", "--full"]), addr);

    // --source arp: the host's ARP table (the client runs on the host, in
    // its namespace), once the host has talked to the guest.
    let stats =
        virtnet_tests::ping::ping(&ns, lease.ip.into(), 3, Duration::from_secs(10)).unwrap();
    assert!(stats.received > 0, "the guest answers pings: {stats:?}");
    let virtnet = locate_binary("virtnet", "VIRTNET_BIN").unwrap();
    let uri = daemon.uri();
    let out = ns
        .run([
            virtnet.as_os_str(),
            "-c".as_ref(),
            uri.as_ref(),
            "domifaddr".as_ref(),
            "vm1".as_ref(),
            "--source".as_ref(),
            "arp".as_ref(),
        ])
        .unwrap();
    assert!(out.success(), "domifaddr --source arp: {}", out.stderr);
    assert_eq!(
        out.stdout,
        addr.replace(&format!("{}/24", lease.ip), &format!("{}/0", lease.ip))
    );

    // A second interface, named by the network: detaching now needs --mac.
    vn_ok(&daemon, &["attach-interface", "vm1", "network", "default"]);
    let list = vn_ok(&daemon, &["domiflist", "vm1"]);
    assert_eq!(list.lines().count(), 5, "{list}");
    assert!(list.contains("\n vnet0 "), "{list}");
    let out = vn(&daemon, &["detach-interface", "vm1", "network"]);
    assert_eq!(out.code(), Some(1));
    assert_eq!(
        out.stderr,
        "error: Domain has 2 interfaces. Please specify which one to detach using --mac\n\
         error: Failed to detach interface\n"
    );
    let out = vn(
        &daemon,
        &["detach-interface", "vm1", "direct", "--mac", mac],
    );
    assert_eq!(
        out.stderr,
        "error: No interface found whose type is direct\nerror: Failed to detach interface\n"
    );
    let out = vn(
        &daemon,
        &[
            "detach-interface",
            "vm1",
            "network",
            "--mac",
            "52:54:00:00:00:99",
        ],
    );
    assert_eq!(
        out.stderr,
        "error: No interface with MAC address 52:54:00:00:00:99 was found\n\
         error: Failed to detach interface\n"
    );

    // Detaching removes the TAP (QEMU first, so that nothing holds it).
    drop(guest);
    let out = vn_ok(
        &daemon,
        &["detach-interface", "vm1", "network", "--mac", mac],
    );
    assert_eq!(out, "Interface detached successfully\n\n");
    wait_gone(&ns, "vm1-eth0", Duration::from_secs(5));
    vn_ok(&daemon, &["detach-interface", "vm1", "bridge"]);
    wait_gone(&ns, "vnet0", Duration::from_secs(5));
    let list = vn_ok(&daemon, &["domiflist", "vm1"]);
    assert_eq!(
        list,
        " Interface   Type   Source   Model   MAC\n\
         ------------------------------------------\n\n"
    );
    if let Some(expected) = virsh_oracle(&["domiflist", "empty"]) {
        assert_eq!(list, expected, "domiflist without interfaces");
    }
    // A bridge no virtnet network uses is refused.
    let _br = Bridge::create(&ns, "vtforeign0").unwrap();
    let out = vn(
        &daemon,
        &["attach-interface", "vm1", "bridge", "vtforeign0"],
    );
    assert_eq!(out.code(), Some(1));
    assert_eq!(
        out.stderr,
        "error: Failed to attach interface\n\
         error: unsupported configuration: bridge 'vtforeign0' is not managed by virtnet: no virtnet network uses it\n"
    );
    eprintln!("attach/detach scenario took {:?}", t0.elapsed());
}

#[test]
fn qemu_gets_its_tap_from_the_bridge_helper() {
    or_skip!(require(&["ip", "dnsmasq", "nft", "qemu-system-x86_64"]));
    let t0 = Instant::now();
    let (ns, daemon) = or_skip!(host("helper"));
    let virtnet = or_skip!(locate_binary("virtnet", "VIRTNET_BIN"));
    // QEMU runs a helper command with arguments through sh -c, adding
    // --use-vnet --fd=N --br=BR.
    let helper = format!(
        "{} -c {} qemu-bridge-helper",
        virtnet.display(),
        daemon.uri()
    );
    let mut guest = or_skip!(Guest::boot(GuestOpts {
        net: GuestNet::Helper {
            bridge: "virbr0".into(),
            helper,
        },
        netns: Some(ns.clone()),
        ..GuestOpts::default()
    }));
    let lease = guest.wait_lease(LEASE_TIMEOUT).unwrap();
    eprintln!("helper guest leased {} in {:?}", lease.ip, t0.elapsed());

    // The port carries the guest's MAC (read from QEMU's command line) and
    // its TAP is on the bridge.
    let uuids = vn_ok(&daemon, &["-q", "net-port-list", "default", "--uuid"]);
    let uuids: Vec<&str> = uuids.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(uuids.len(), 1, "{uuids:?}");
    let xml = vn_ok(&daemon, &["net-port-dumpxml", "default", uuids[0]]);
    assert!(
        xml.contains(&format!("<mac address='{}'/>", guest.mac())),
        "{xml}"
    );
    assert!(xml.contains("vnetHdr='yes'"), "{xml}");
    let owner = xml
        .split("<name>")
        .nth(1)
        .and_then(|s| s.split("</name>").next())
        .expect("owner name")
        .to_owned();
    assert!(owner.starts_with("qemu-"), "owner {owner}");
    let tap = xml
        .split(" name='")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("TAP name")
        .to_owned();
    assert!(link(&ns, &tap).contains(" master virbr0 "));
    let addr = vn_ok(&daemon, &["domifaddr", &owner]);
    assert!(
        addr.contains(&format!(
            " {tap:<10} {}    ipv4         {}/24\n",
            guest.mac(),
            lease.ip
        )),
        "{addr}"
    );

    // The TAP goes with QEMU, and the port with it.
    drop(guest);
    wait_gone(&ns, &tap, Duration::from_secs(10));
    let left = vn_ok(&daemon, &["-q", "net-port-list", "default", "--uuid"]);
    assert!(left.trim().is_empty(), "ports left: {left}");
    eprintln!("bridge helper scenario took {:?}", t0.elapsed());
}

#[test]
fn bridge_helper_refuses_foreign_bridges_and_users_the_acl_does_not_allow() {
    or_skip!(require(&["ip", "dnsmasq", "nft", "setpriv"]));
    let (ns, daemon) = or_skip!(host("acl"));
    let virtnet = or_skip!(locate_binary("virtnet", "VIRTNET_BIN"));
    let _br = Bridge::create(&ns, "vtforeign1").unwrap();
    let helper = |pre: &[&str], br: &str, acl: Option<&Path>| -> Output {
        let mut argv: Vec<String> = pre.iter().map(|s| s.to_string()).collect();
        argv.push(virtnet.display().to_string());
        for a in ["-c", &daemon.uri(), "qemu-bridge-helper", "--use-vnet"] {
            argv.push(a.to_string());
        }
        argv.push(format!("--br={br}"));
        argv.push("--fd=1".into());
        let mut cmd = ns.cmd(&argv).unwrap();
        match acl {
            Some(p) => cmd.env("VIRTNET_BRIDGE_HELPER_CONF", p),
            None => cmd.env_remove("VIRTNET_BRIDGE_HELPER_CONF"),
        };
        process::run(cmd, process::DEFAULT_TIMEOUT).unwrap()
    };

    // Root: a bridge virtnet does not run is refused.
    let out = helper(&[], "vtforeign1", None);
    assert_eq!(out.code(), Some(1));
    assert_eq!(
        out.stderr,
        "error: bridge 'vtforeign1' is not managed by virtnet: no virtnet network uses it\n"
    );
    assert!(out.stdout.is_empty());

    // nobody: refused unless the access list allows the bridge or network.
    let dir = TempDir::new("acl").unwrap();
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let acl = dir.join("bridge.conf");
    std::fs::write(&acl, "# only another network\nallow isolated\n").unwrap();
    let out = helper(&nobody, "virbr0", Some(&acl));
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert_eq!(out.stderr, "error: access denied by acl file\n");
    std::fs::write(&acl, "allow all\ndeny default\n").unwrap();
    let out = helper(&nobody, "virbr0", Some(&acl));
    assert_eq!(out.stderr, "error: access denied by acl file\n");
    let missing = dir.join("missing.conf");
    let out = helper(&nobody, "virbr0", Some(&missing));
    assert_eq!(
        out.stderr,
        format!(
            "error: failed to parse default acl file `{}': No such file or directory\n",
            missing.display()
        )
    );
    // Allowed by network name: past the list, nobody still cannot change
    // anything (the read-write socket is root's).
    std::fs::write(&acl, "allow default\n").unwrap();
    let out = helper(&nobody, "virbr0", Some(&acl));
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr
            .starts_with("error: cannot reach virtnetd: Failed to connect socket to '")
            && out.stderr.ends_with("virtnetd-sock': Permission denied\n"),
        "{}",
        out.stderr
    );
    let ports = vn_ok(&daemon, &["-q", "net-port-list", "default", "--uuid"]);
    assert!(ports.trim().is_empty(), "no port was made: {ports}");
}

#[test]
fn doctor_checks_the_host_and_each_active_network() {
    or_skip!(require(&["ip", "dnsmasq", "nft"]));
    let (ns, daemon) = or_skip!(host("doctor"));
    let virtnet = or_skip!(locate_binary("virtnet", "VIRTNET_BIN"));
    let doctor = || {
        let argv = [
            virtnet.display().to_string(),
            "-c".into(),
            daemon.uri(),
            "doctor".into(),
        ];
        let start = Instant::now();
        let out = process::run(ns.cmd(argv).unwrap(), process::DEFAULT_TIMEOUT).unwrap();
        eprintln!("doctor took {:?}", start.elapsed());
        out
    };
    let out = doctor();
    for line in [
        format!(
            "[ OK ] daemon: answers on {}, version ",
            daemon.socket_path().display()
        ),
        "[ OK ] daemon: 1 active network(s)\n".into(),
        "[ OK ] /dev/net/tun: present\n".into(),
        "[ OK ] net.ipv4.ip_forward = 1\n".into(),
        "[ OK ] network default: bridge virbr0 is up\n".into(),
        "[ OK ] network default: dnsmasq is running\n".into(),
        "[ OK ] network default: firewall chains present\n".into(),
        "[ OK ] network default: 192.168.122.1/24 collides with no other route\n".into(),
    ] {
        assert!(out.stdout.contains(&line), "{line:?} in:\n{}", out.stdout);
    }
    // Break the network twice over: both are reported, with a fix, and
    // doctor fails.
    ns.ip(&["link", "set", "virbr0", "down"]).unwrap();
    ns.ip(&["route", "add", "192.168.0.0/16", "dev", "lo"])
        .unwrap();
    let out = doctor();
    assert_eq!(out.code(), Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "[FAIL] network default: bridge virbr0 is down\n       \
             fix: ip link set virbr0 up (or: virtnet net-destroy default; virtnet net-start default)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("[FAIL] network default: 192.168.122.1/24 overlaps 192.168.0.0/16 dev lo\n"),
        "{}",
        out.stdout
    );
    // No daemon: said so, with the socket it tried.
    let argv = [
        virtnet.display().to_string(),
        "-c".into(),
        "virtnet:///system?socket=/nonexistent/virtnetd-sock".into(),
        "doctor".into(),
    ];
    let out = process::run(ns.cmd(argv).unwrap(), process::DEFAULT_TIMEOUT).unwrap();
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stdout.starts_with(
            "[FAIL] daemon: not reachable on /nonexistent/virtnetd-sock: \
             Failed to connect socket to '/nonexistent/virtnetd-sock': No such file or directory\n"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn persistent_attachments_and_host_bridges() {
    or_skip!(require(&["ip", "dnsmasq", "nft"]));
    let (ns, daemon) = or_skip!(host("persist"));
    // A network on a host bridge: its ports are plugged as type bridge.
    let _br = Bridge::create(&ns, "vthost0").unwrap();
    let dir = TempDir::new("hostbr").unwrap();
    let xml = dir.join("hostbr.xml");
    std::fs::write(
        &xml,
        "<network>\n  <name>hostbr</name>\n  <forward mode='bridge'/>\n  <bridge name='vthost0'/>\n</network>\n",
    )
    .unwrap();
    vn_ok(&daemon, &["net-create", &xml.display().to_string()]);
    vn_ok(
        &daemon,
        &[
            "attach-interface",
            "vm2",
            "bridge",
            "vthost0",
            "--mac",
            "52:54:00:aa:bb:21",
            "--target",
            "vm2-eth1",
            "--model",
            "e1000",
        ],
    );
    assert!(link(&ns, "vm2-eth1").contains(" master vthost0 "));
    vn_ok(
        &daemon,
        &[
            "attach-interface",
            "vm2",
            "network",
            "default",
            "--config",
            "--mac",
            "52:54:00:aa:bb:20",
            "--target",
            "vm2-eth0",
        ],
    );
    let both = " Interface   Type      Source    Model   MAC\n\
                ------------------------------------------------------------\n \
                vm2-eth0    network   default   -       52:54:00:aa:bb:20\n \
                vm2-eth1    bridge    vthost0   e1000   52:54:00:aa:bb:21\n\n";
    assert_eq!(vn_ok(&daemon, &["domiflist", "vm2"]), both);
    assert!(
        vn_ok(&daemon, &["domiflist", "vm2", "--inactive"])
            .ends_with(" vm2-eth0    network   default   -       52:54:00:aa:bb:20\n\n")
    );
    // Both ports name the same owner UUID.
    let owners: Vec<String> = ["default", "hostbr"]
        .iter()
        .flat_map(|net| {
            let uuids = vn_ok(&daemon, &["-q", "net-port-list", net, "--uuid"]);
            uuids
                .lines()
                .filter(|l| !l.is_empty())
                .map(|u| vn_ok(&daemon, &["net-port-dumpxml", net, u]))
                .collect::<Vec<_>>()
        })
        .map(|x| {
            x.split("<uuid>")
                .nth(2)
                .and_then(|s| s.split("</uuid>").next())
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(owners.len(), 2);
    assert_eq!(owners[0], owners[1]);

    // --config: the attachment comes back whenever the network starts.
    vn_ok(&daemon, &["net-destroy", "default"]);
    assert!(!ns.link_exists("vm2-eth0"));
    vn_ok(&daemon, &["net-start", "default"]);
    assert!(link(&ns, "vm2-eth0").contains(" master virbr0 "));
    assert_eq!(vn_ok(&daemon, &["domiflist", "vm2"]), both);

    // A TAP on virtnet's own bridge also answers to --type bridge.
    assert_eq!(
        vn_ok(
            &daemon,
            &[
                "detach-interface",
                "vm2",
                "bridge",
                "--mac",
                "52:54:00:aa:bb:20"
            ]
        ),
        "Interface detached successfully\n\n"
    );
    vn_ok(&daemon, &["detach-interface", "vm2", "bridge"]);
    wait_gone(&ns, "vm2-eth1", Duration::from_secs(5));
    vn_ok(&daemon, &["net-destroy", "default"]);
    vn_ok(&daemon, &["net-start", "default"]);
    assert!(
        !ns.link_exists("vm2-eth0"),
        "a detached attachment stays away"
    );
}
