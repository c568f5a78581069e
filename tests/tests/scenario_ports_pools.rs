//! Ports that take a device from a network's pool, and ports refused.
//!
//! Hostdev: virtnetd reads a PF's SR-IOV virtual functions from sysfs
//! (here a prepared tree, `virtnetd --sysfs-root`); every port of a
//! `<forward mode='hostdev'>` network gets a VF of its own, until none is
//! left; a deleted port gives its VF back.
//!
//! Bad input (`tests/data/scenarios/ports/bad_input/`, see its README):
//! each case is a client command line and the exact stderr; both clients
//! run every case, and afterwards the host (links, addresses, routes,
//! nftables, the daemon's files, dnsmasqs) and every network's port list
//! are exactly as before.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use scenario_common::{Client, Host, data, require_all};
use virtnet_tests::process::TempDir;
use virtnet_tests::{Netns, Veth, or_skip};

/// virsh where it is installed, else virtnet.
fn client() -> Client {
    if Client::Virsh.check().is_ok() {
        Client::Virsh
    } else {
        Client::Virtnet
    }
}

/// The clients installed.
fn clients() -> Vec<Client> {
    Client::ALL
        .into_iter()
        .filter(|c| c.check().is_ok())
        .collect()
}

// ----- hostdev --------------------------------------------------------------

const PF_ADDR: &str = "0000:03:00.0";

/// A sysfs tree with network device `pf` on PCI function [`PF_ADDR`], an
/// SR-IOV PF with `vfs` VFs at `0000:03:10.N` (no network device: bound
/// to a passthrough driver). Returns the VFs' addresses.
fn fake_sysfs(root: &Path, pf: &str, vfs: u32) -> Vec<String> {
    let mkdir = |p: &Path| std::fs::create_dir_all(p).unwrap();
    let link = |target: &str, at: &Path| symlink(target, at).unwrap();
    let devices = root.join("devices/pci0000:03");
    let bus = root.join("bus/pci/devices");
    let pf_dir = devices.join(PF_ADDR);
    mkdir(&pf_dir.join("net").join(pf));
    mkdir(&bus);
    mkdir(&root.join("class/net"));
    std::fs::write(pf_dir.join("sriov_totalvfs"), format!("{vfs}\n")).unwrap();
    std::fs::write(pf_dir.join("sriov_numvfs"), format!("{vfs}\n")).unwrap();
    link(
        &format!("../../../{PF_ADDR}"),
        &pf_dir.join("net").join(pf).join("device"),
    );
    link(
        &format!("../../devices/pci0000:03/{PF_ADDR}/net/{pf}"),
        &root.join("class/net").join(pf),
    );
    link(
        &format!("../../../devices/pci0000:03/{PF_ADDR}"),
        &bus.join(PF_ADDR),
    );
    (0..vfs)
        .map(|i| {
            let addr = format!("0000:03:10.{i}");
            mkdir(&devices.join(&addr));
            link(
                &format!("../{PF_ADDR}"),
                &devices.join(&addr).join("physfn"),
            );
            link(&format!("../{addr}"), &pf_dir.join(format!("virtfn{i}")));
            link(
                &format!("../../../devices/pci0000:03/{addr}"),
                &bus.join(&addr),
            );
            addr
        })
        .collect()
}

fn port_xml(n: u32) -> String {
    format!(
        "<networkport>\n  <uuid>9a4c7e21-5b3d-4f8a-9c6e-{n:012x}</uuid>\n  <owner>\n    <name>vm{n}</name>\n    \
         <uuid>2b5d8f31-6c4e-4a9b-8d7f-{n:012x}</uuid>\n  </owner>\n  <mac address='52:54:00:85:00:{n:02x}'/>\n</networkport>\n"
    )
}

fn port_uuid(n: u32) -> String {
    format!("9a4c7e21-5b3d-4f8a-9c6e-{n:012x}")
}

/// The PCI address of a hostdev port's plug, as `DDDD:BB:SS.F`.
fn plugged_address(xml: &str) -> String {
    let plug = &xml[xml
        .find("<plug type='hostdev-pci'")
        .unwrap_or_else(|| panic!("no hostdev plug in {xml}"))..];
    let plug = &plug[..plug.find("</plug>").unwrap()];
    let attr = |name: &str| -> u32 {
        let pat = format!(" {name}='0x");
        let v = &plug[plug
            .find(&pat)
            .unwrap_or_else(|| panic!("{name} in {plug}"))
            + pat.len()..];
        u32::from_str_radix(&v[..v.find('\'').unwrap()], 16).unwrap()
    };
    format!(
        "{:04x}:{:02x}:{:02x}.{:x}",
        attr("domain"),
        attr("bus"),
        attr("slot"),
        attr("function")
    )
}

#[test]
fn hostdev_ports_each_get_a_virtual_function_until_none_is_left() {
    or_skip!(require_all(Some(Client::Virtnet)));
    let c = client();
    let sysfs = TempDir::new("sysfs").unwrap();
    let vfs = fake_sysfs(sysfs.path(), "pf0", 4);
    let host = or_skip!(Host::start(&[
        "--sysfs-root",
        sysfs.path().to_str().unwrap()
    ]));
    let d = &host.daemon;
    c.ok(
        d,
        &["net-define", data("ports/hostdev.xml").to_str().unwrap()],
    );
    c.ok(d, &["net-start", "hostdevnet"]);
    // The running network lists the pool it found.
    let live = c.ok(d, &["net-dumpxml", "hostdevnet"]);
    for vf in &vfs {
        let (_, f) = vf.rsplit_once('.').unwrap();
        let line = format!(
            "<address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x{f}'/>"
        );
        assert!(live.contains(&line), "{line} in {live}");
    }
    let inactive = c.ok(d, &["net-dumpxml", "hostdevnet", "--inactive"]);
    assert!(!inactive.contains("<address"), "{inactive}");

    let dir = TempDir::new("ports").unwrap();
    let create = |n: u32| {
        let file = dir.join(format!("port{n}.xml"));
        std::fs::write(&file, port_xml(n)).unwrap();
        let out = c.run(
            d,
            &["net-port-create", "hostdevnet", file.to_str().unwrap()],
        );
        (out, file)
    };
    let mut taken = Vec::new();
    for n in 1..=4 {
        let (out, _) = create(n);
        assert!(out.success(), "port {n}: {}", out.stderr);
        let xml = c.ok(d, &["net-port-dumpxml", "hostdevnet", &port_uuid(n)]);
        assert!(
            xml.contains("<plug type='hostdev-pci' managed='yes'>"),
            "{xml}"
        );
        assert!(xml.contains("type='hostdev'"), "the port's device: {xml}");
        taken.push(plugged_address(&xml));
    }
    let distinct: BTreeSet<&String> = taken.iter().collect();
    assert_eq!(distinct.len(), 4, "distinct VFs: {taken:?}");
    assert_eq!(
        distinct.into_iter().cloned().collect::<Vec<_>>(),
        vfs,
        "all four VFs"
    );

    // The fifth finds none left, and nothing changes.
    let before = host.snapshot();
    let (out, file) = create(5);
    assert!(!out.success());
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "error: Failed to create network from {}\n\
             error: internal error: network 'hostdevnet' requires exclusive access to interfaces, but none are available",
            file.display()
        )
    );
    assert_eq!(before.diff(&host.snapshot()), "");
    let list = c.ok(d, &["net-port-list", "hostdevnet"]);
    assert_eq!(
        list.lines().filter(|l| l.contains("9a4c7e21-")).count(),
        4,
        "{list}"
    );

    // A deleted port gives its VF back, to the next port.
    c.ok(d, &["net-port-delete", "hostdevnet", &port_uuid(2)]);
    let (out, _) = create(5);
    assert!(out.success(), "{}", out.stderr);
    let xml = c.ok(d, &["net-port-dumpxml", "hostdevnet", &port_uuid(5)]);
    assert_eq!(plugged_address(&xml), taken[1], "port 5 gets port 2's VF");
    for n in [1, 3, 4, 5] {
        c.ok(d, &["net-port-delete", "hostdevnet", &port_uuid(n)]);
    }
    c.ok(d, &["net-destroy", "hostdevnet"]);
}

// ----- bad input ------------------------------------------------------------

struct Case {
    name: String,
    args: Vec<String>,
    expected: String,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "args"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| Case {
            name: p.file_stem().unwrap().to_string_lossy().into_owned(),
            args: std::fs::read_to_string(&p)
                .unwrap()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            expected: std::fs::read_to_string(p.with_extension("err"))
                .unwrap_or_else(|e| panic!("{}: {e}", p.with_extension("err").display())),
        })
        .collect()
}

/// Every network's port list.
fn port_lists(c: Client, host: &Host) -> Vec<String> {
    ["badnat", "passnet"]
        .iter()
        .map(|n| c.ok(&host.daemon, &["net-port-list", n]))
        .collect()
}

#[test]
fn bad_port_requests_get_a_clean_error_and_change_nothing() {
    or_skip!(require_all(Some(Client::Virtnet)));
    let dir = data("ports/bad_input");
    let host = or_skip!(Host::start(&[]));
    let lan = Netns::new("lan").unwrap();
    let _lower = Veth::create(&host.ns, "lower0", &lan, "eth0").unwrap();
    let d = &host.daemon;
    let setup = |args: &[&str]| {
        let out = Client::Virtnet.run_at(&d.uri(), args, Some(&dir));
        assert!(out.success(), "{args:?}: {}", out.stderr);
    };
    setup(&["net-define", "idle.xml"]);
    setup(&["net-define", "badnat.xml"]);
    setup(&["net-start", "badnat"]);
    setup(&["net-create", "passnet.xml"]);
    // What the requests collide with: a port whose TAP is vmtap9 and whose
    // MAC is 52:54:00:83:00:01; the only device of passnet taken.
    setup(&["net-port-create", "badnat", "held-tap.xml"]);
    setup(&["net-port-create", "passnet", "held-pass.xml"]);
    assert!(host.ns.link_exists("vmtap9"));

    let cases = cases(&dir);
    assert!(cases.len() >= 7, "cases in {}", dir.display());
    for c in clients() {
        for case in &cases {
            let before = host.snapshot();
            let lists = port_lists(c, &host);
            let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
            let out = c.run_at(&d.uri(), &args, Some(&dir));
            assert!(!out.success(), "{c:?} {}: succeeded", case.name);
            assert_eq!(out.code(), Some(1), "{c:?} {}: exit code", case.name);
            assert_eq!(
                out.stderr, case.expected,
                "{c:?} {}: stderr (stdout: {})",
                case.name, out.stdout
            );
            assert_eq!(
                before.diff(&host.snapshot()),
                "",
                "{c:?} {}: the host changed",
                case.name
            );
            assert_eq!(
                port_lists(c, &host),
                lists,
                "{c:?} {}: the ports changed",
                case.name
            );
        }
    }
    // The refusals left the held ports working.
    assert!(host.ns.link_exists("vmtap9"));
    let out = Client::Virtnet.run_at(
        &d.uri(),
        &["net-port-create", "badnat", "port-new.xml"],
        Some(&dir),
    );
    assert!(
        out.success(),
        "a good port after the bad ones: {}",
        out.stderr
    );
}
