//! Debian's real `virsh` (libvirt-clients 9.0) and libvirt-python against
//! `serve_connection` with an in-memory driver, over a Unix socket in a
//! temp dir.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{FakeDriver, Output, TestServer, run_with_timeout};
use virtnet_rpc::protocol::feature;
use virtnet_rpc::{Procedure, ServeOptions};

const LIMIT: Duration = Duration::from_secs(30);

fn have_virsh() -> bool {
    match Command::new("virsh").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("skipped: virsh (libvirt-clients) is not installed");
            false
        }
    }
}

fn have_python_libvirt() -> bool {
    match Command::new("/usr/bin/python3")
        .args(["-c", "import libvirt"])
        .output()
    {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("skipped: /usr/bin/python3 with the libvirt module is not installed");
            false
        }
    }
}

fn virsh(srv: &TestServer, args: &[&str]) -> Output {
    let out = run_with_timeout(
        Command::new("virsh")
            .arg("-c")
            .arg(srv.uri())
            .args(args)
            .env_remove("LIBVIRT_DEFAULT_URI")
            .env("LC_ALL", "C"),
        LIMIT,
    );
    assert!(out.status.is_some(), "virsh {args:?} timed out: {out:?}");
    out
}

fn take_calls(srv: &TestServer) -> Vec<Procedure> {
    std::mem::take(&mut *srv.driver.calls.lock().expect("calls lock"))
}

/// What virsh 9.0 sends on every connect (the keepalive feature probe is
/// answered by the server itself and not seen by the driver) and close.
const CONNECT: [Procedure; 5] = [
    Procedure::AuthList,
    Procedure::ConnectOpen,
    Procedure::ConnectSupportsFeature,
    Procedure::ConnectSupportsFeature,
    Procedure::ConnectRegisterCloseCallback,
];
const CLOSE: [Procedure; 2] = [
    Procedure::ConnectUnregisterCloseCallback,
    Procedure::ConnectClose,
];

fn expect_calls(srv: &TestServer, command: &[Procedure]) {
    let want: Vec<Procedure> = CONNECT
        .iter()
        .chain(command)
        .chain(CLOSE.iter())
        .copied()
        .collect();
    assert_eq!(take_calls(srv), want);
}

#[test]
fn virsh_net_list_all() {
    if !have_virsh() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let out = virsh(&srv, &["net-list", "--all"]);
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        " Name       State      Autostart   Persistent\n\
         -----------------------------------------------\n \
         default    active     yes         yes\n \
         isolated   inactive   no          yes\n\n"
    );
    use Procedure::*;
    expect_calls(
        &srv,
        &[
            ConnectListAllNetworks,
            NetworkGetAutostart,
            NetworkIsPersistent,
            NetworkIsActive,
            NetworkGetAutostart,
            NetworkIsPersistent,
            NetworkIsActive,
        ],
    );
    // The features virsh probes after CONNECT_OPEN.
    assert_eq!(
        *srv.driver.features.lock().unwrap(),
        [
            feature::REMOTE_EVENT_CALLBACK,
            feature::REMOTE_CLOSE_CALLBACK
        ]
    );
    // Plain `net-list` asks for active networks only.
    let out = virsh(&srv, &["net-list"]);
    assert_eq!(
        out.stdout,
        " Name      State    Autostart   Persistent\n\
         --------------------------------------------\n \
         default   active   yes         yes\n\n"
    );
    assert!(srv.driver.unknown.lock().unwrap().is_empty());
    assert!(srv.wait_disconnected(2, LIMIT));
}

#[test]
fn virsh_net_info_dumpxml_uuid_name() {
    if !have_virsh() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let out = virsh(&srv, &["net-info", "default"]);
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "Name:           default\n\
         UUID:           c7a72b2e-6a35-4e0c-8a3d-2f5e9a1b0001\n\
         Active:         yes\n\
         Persistent:     yes\n\
         Autostart:      yes\n\
         Bridge:         virbr0\n\n"
    );
    use Procedure::*;
    expect_calls(
        &srv,
        &[
            NetworkLookupByName,
            NetworkIsActive,
            NetworkIsPersistent,
            NetworkGetAutostart,
            NetworkGetBridgeName,
        ],
    );

    let out = virsh(&srv, &["net-dumpxml", "default"]);
    assert_eq!(out.status, Some(0), "{out:?}");
    let xml = srv.driver.networks.lock().unwrap()[0].xml();
    assert_eq!(out.stdout, format!("{xml}\n"));
    expect_calls(&srv, &[NetworkLookupByName, NetworkGetXmlDesc]);

    let out = virsh(&srv, &["net-uuid", "default"]);
    assert_eq!(out.stdout, "c7a72b2e-6a35-4e0c-8a3d-2f5e9a1b0001\n\n");
    expect_calls(&srv, &[NetworkLookupByName]);

    // A UUID argument is looked up by UUID first.
    let out = virsh(&srv, &["net-name", "c7a72b2e-6a35-4e0c-8a3d-2f5e9a1b0002"]);
    assert_eq!(out.stdout, "isolated\n\n");
    expect_calls(&srv, &[NetworkLookupByUuid]);

    // net-info by UUID works too.
    let out = virsh(&srv, &["net-info", "c7a72b2e-6a35-4e0c-8a3d-2f5e9a1b0002"]);
    assert!(
        out.stdout.starts_with("Name:           isolated\n"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Active:         no\n"), "{out:?}");
}

#[test]
fn virsh_errors_are_printed_verbatim() {
    if !have_virsh() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let out = virsh(&srv, &["net-info", "nosuch"]);
    assert_eq!(out.status, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "error: failed to get network 'nosuch'\n\
         error: Network not found: no network with matching name 'nosuch'\n"
    );
    // Starting an active network: the driver's error text reaches the user.
    let out = virsh(&srv, &["net-start", "default"]);
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("error: Requested operation is not valid: network is already active\n"),
        "{out:?}"
    );
    // A libvirt procedure the server has no typed form for (nodeinfo on a
    // network-only daemon): libvirt's "not supported" answer, not a hang up.
    let out = virsh(&srv, &["nodeinfo"]);
    assert_eq!(out.status, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "error: failed to get node information\n\
         error: this function is not supported by the connection driver: virNodeGetInfo\n"
    );
    assert_eq!(*srv.driver.unknown.lock().unwrap(), [6]);
    // A procedure the driver does not implement.
    let file = srv.dir.path().join("port.xml");
    std::fs::write(&file, "<networkport/>").unwrap();
    let out = virsh(
        &srv,
        &["net-port-create", "default", file.to_str().unwrap()],
    );
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "error: this function is not supported by the connection driver: virNetworkPortCreateXML"
        ),
        "{out:?}"
    );
}

#[test]
fn virsh_lifecycle_and_autostart() {
    if !have_virsh() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    use Procedure::*;

    let out = virsh(&srv, &["net-autostart", "isolated"]);
    assert_eq!(
        out.stdout, "Network isolated marked as autostarted\n\n",
        "{out:?}"
    );
    expect_calls(&srv, &[NetworkLookupByName, NetworkSetAutostart]);
    assert!(srv.driver.networks.lock().unwrap()[1].autostart);

    let out = virsh(&srv, &["net-autostart", "--disable", "isolated"]);
    assert_eq!(
        out.stdout, "Network isolated unmarked as autostarted\n\n",
        "{out:?}"
    );
    assert!(!srv.driver.networks.lock().unwrap()[1].autostart);
    take_calls(&srv);

    let out = virsh(&srv, &["net-start", "isolated"]);
    assert_eq!(out.stdout, "Network isolated started\n\n", "{out:?}");
    expect_calls(&srv, &[NetworkLookupByName, NetworkCreate]);
    assert!(srv.driver.networks.lock().unwrap()[1].active);

    let out = virsh(&srv, &["net-destroy", "isolated"]);
    assert_eq!(out.stdout, "Network isolated destroyed\n\n", "{out:?}");
    expect_calls(&srv, &[NetworkLookupByName, NetworkDestroy]);

    let out = virsh(&srv, &["net-undefine", "isolated"]);
    assert_eq!(
        out.stdout, "Network isolated has been undefined\n\n",
        "{out:?}"
    );
    expect_calls(&srv, &[NetworkLookupByName, NetworkUndefine]);
    assert_eq!(srv.driver.networks.lock().unwrap().len(), 1);
}

#[test]
fn virsh_net_define() {
    if !have_virsh() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let file = srv.dir.path().join("net.xml");
    std::fs::write(
        &file,
        "<network>\n  <name>newnet</name>\n  <uuid>11111111-2222-3333-4444-555555555555</uuid>\n  <bridge name='virbr9'/>\n</network>\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = virsh(&srv, &["net-define", path]);
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("Network newnet defined from {path}\n\n")
    );
    // Without --validate virsh 9.0 calls virNetworkDefineXML; with it,
    // virNetworkDefineXMLFlags(VIR_NETWORK_DEFINE_VALIDATE).
    expect_calls(&srv, &[Procedure::NetworkDefineXml]);
    let out = virsh(&srv, &["net-define", "--validate", path]);
    assert_eq!(out.status, Some(0), "{out:?}");
    expect_calls(&srv, &[Procedure::NetworkDefineXmlFlags]);
    let out = virsh(&srv, &["net-create", path]);
    assert_eq!(
        out.stdout,
        format!("Network newnet created from {path}\n\n"),
        "{out:?}"
    );
    expect_calls(&srv, &[Procedure::NetworkCreateXml]);
    let out = virsh(&srv, &["net-list", "--all", "--name"]);
    assert_eq!(out.stdout, "default\nisolated\nnewnet\n\n");
    expect_calls(&srv, &[Procedure::ConnectListAllNetworks]);
    let out = virsh(&srv, &["net-info", "newnet"]);
    assert!(out.stdout.contains("Bridge:         virbr9\n"), "{out:?}");

    // Bad XML: the driver's message comes back as virsh prints it.
    let bad = srv.dir.path().join("bad.xml");
    std::fs::write(&bad, "<network/>\n").unwrap();
    let out = virsh(&srv, &["net-define", bad.to_str().unwrap()]);
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("error: XML error: missing network name element\n"),
        "{out:?}"
    );
}

#[test]
fn read_only_socket_refuses_mutations_with_libvirt_message() {
    if !have_virsh() {
        return;
    }
    let srv = TestServer::start(
        FakeDriver::standard(),
        ServeOptions {
            read_only: true,
            ..ServeOptions::default()
        },
    );
    // Reading works.
    let out = virsh(&srv, &["net-list", "--all", "--name"]);
    assert_eq!(out.stdout, "default\nisolated\n\n", "{out:?}");
    // Mutating is refused by the server, with libvirt's words.
    let out = virsh(&srv, &["net-start", "isolated"]);
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("error: operation forbidden: read only access prevents virNetworkCreate\n"),
        "{out:?}"
    );
    let file = srv.dir.path().join("n.xml");
    std::fs::write(&file, "<network><name>x</name></network>").unwrap();
    let out = virsh(&srv, &["net-define", file.to_str().unwrap()]);
    assert!(
        out.stderr
            .contains("error: operation forbidden: read only access prevents virNetworkDefineXML"),
        "{out:?}"
    );
    assert!(!srv.driver.networks.lock().unwrap()[1].active);
    assert_eq!(srv.driver.networks.lock().unwrap().len(), 2);

    // `virsh -r` on a read-write socket: the client opens with VIR_CONNECT_RO.
    let rw = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let out = run_with_timeout(
        Command::new("virsh")
            .args(["-r", "-c"])
            .arg(rw.uri())
            .args(["net-autostart", "isolated"]),
        LIMIT,
    );
    assert!(
        out.stderr.contains(
            "error: operation forbidden: read only access prevents virNetworkSetAutostart"
        ),
        "{out:?}"
    );
}

#[test]
fn virsh_net_event_receives_lifecycle_events() {
    if !have_virsh() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let uri = srv.uri();
    let watcher = std::thread::spawn(move || {
        run_with_timeout(
            Command::new("virsh").arg("-c").arg(uri).args([
                "net-event",
                "--event",
                "lifecycle",
                "--loop",
                "--timeout",
                "5",
            ]),
            LIMIT,
        )
    });
    // Wait until the watcher registered its callback.
    let deadline = std::time::Instant::now() + LIMIT;
    while srv.driver.registration_count() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if srv.driver.registration_count() != 1 {
        let w = watcher.join().unwrap();
        panic!(
            "net-event did not register: {w:?} calls {:?}",
            take_calls(&srv)
        );
    }
    let out = virsh(&srv, &["net-start", "isolated"]);
    assert_eq!(out.status, Some(0), "{out:?}");
    let out = virsh(&srv, &["net-destroy", "isolated"]);
    assert_eq!(out.status, Some(0), "{out:?}");
    let watched = watcher.join().unwrap();
    assert!(
        watched
            .stdout
            .contains("event 'lifecycle' for network isolated: Started\n"),
        "{watched:?}"
    );
    assert!(
        watched
            .stdout
            .contains("event 'lifecycle' for network isolated: Stopped\n"),
        "{watched:?}"
    );
    assert!(srv.wait_disconnected(3, LIMIT));
    assert_eq!(srv.driver.registration_count(), 0);
    assert!(srv.driver.disconnected.load(Ordering::Acquire) >= 3);
}

#[test]
fn python_libvirt_lists_and_reads_networks() {
    if !have_python_libvirt() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let script = "import sys, libvirt\n\
                  c = libvirt.open(sys.argv[1])\n\
                  print(sorted(n.name() for n in c.listAllNetworks()))\n\
                  n = c.networkLookupByName('default')\n\
                  print(n.UUIDString(), n.isActive(), n.autostart(), n.bridgeName())\n\
                  print(c.listNetworks(), c.listDefinedNetworks())\n\
                  print(c.networkLookupByUUIDString(n.UUIDString()).name())\n\
                  try:\n\
                  \x20   c.networkLookupByName('nosuch')\n\
                  except libvirt.libvirtError as e:\n\
                  \x20   print(e.get_error_code(), e.get_error_domain(), e)\n\
                  c.close()\n";
    let out = run_with_timeout(
        Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(srv.uri()),
        LIMIT,
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "['default', 'isolated']\n\
         c7a72b2e-6a35-4e0c-8a3d-2f5e9a1b0001 1 1 virbr0\n\
         ['default'] ['isolated']\n\
         default\n\
         43 19 Network not found: no network with matching name 'nosuch'\n"
    );
    assert!(srv.driver.unknown.lock().unwrap().is_empty());
}

#[test]
fn virsh_net_update_sends_command_and_section_in_order() {
    if !have_virsh() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let out = virsh(
        &srv,
        &[
            "net-update",
            "default",
            "add-last",
            "ip-dhcp-host",
            "<host mac='52:54:00:00:00:09' ip='192.168.122.9'/>",
            "--live",
            "--config",
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "Updated network default persistent config and live state\n"
    );
    // The server reported NETWORK_UPDATE_HAS_CORRECT_ORDER, so the client
    // sends command and section unswapped.
    let u = srv.driver.last_update.lock().unwrap().clone().unwrap();
    assert_eq!(u.command, virtnet_rpc::protocol::update_command::ADD_LAST);
    assert_eq!(
        u.section,
        virtnet_rpc::protocol::update_section::IP_DHCP_HOST
    );
    assert_eq!(u.parent_index, -1);
    assert_eq!(u.flags, 3);
    assert_eq!(u.xml, "<host mac='52:54:00:00:00:09' ip='192.168.122.9'/>");
    expect_calls(
        &srv,
        &[
            Procedure::NetworkLookupByName,
            Procedure::ConnectSupportsFeature,
            Procedure::NetworkUpdate,
        ],
    );
    // virsh asked about the feature (after the two handshake probes).
    assert!(
        srv.driver
            .features
            .lock()
            .unwrap()
            .contains(&feature::NETWORK_UPDATE_HAS_CORRECT_ORDER)
    );
}

#[test]
fn virsh_dhcp_leases_and_ports() {
    if !have_virsh() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let net_uuid = srv.driver.networks.lock().unwrap()[0].uuid;
    let port_uuid =
        virtnet_rpc::protocol::parse_uuid("0c3a2c2b-1111-4222-8333-444455556666").unwrap();
    srv.driver
        .ports
        .lock()
        .unwrap()
        .push((net_uuid, port_uuid, Vec::new()));

    let out = run_with_timeout(
        Command::new("virsh")
            .arg("-c")
            .arg(srv.uri())
            .args(["net-dhcp-leases", "default"])
            .env("TZ", "UTC")
            .env("LC_ALL", "C"),
        LIMIT,
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    eprintln!("{}", out.stdout);
    assert!(out.stdout.contains("2023-11-14 22:13:20"), "{out:?}");
    assert!(out.stdout.contains("52:54:00:00:00:01"), "{out:?}");
    assert!(out.stdout.contains("192.168.122.5/24"), "{out:?}");
    assert!(out.stdout.contains("guest1"), "{out:?}");
    assert!(out.stdout.contains("01:52:54:00:00:00:01"), "{out:?}");

    let out = virsh(&srv, &["net-port-list", "default"]);
    assert_eq!(out.status, Some(0), "{out:?}");
    eprintln!("{}", out.stdout);
    assert!(
        out.stdout.contains("0c3a2c2b-1111-4222-8333-444455556666"),
        "{out:?}"
    );

    let out = virsh(
        &srv,
        &[
            "net-port-dumpxml",
            "default",
            "0c3a2c2b-1111-4222-8333-444455556666",
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(
        out.stdout
            .starts_with("<networkport>\n  <uuid>0c3a2c2b-1111-4222-8333-444455556666</uuid>"),
        "{out:?}"
    );
    assert!(srv.driver.unknown.lock().unwrap().is_empty());
}

#[test]
fn python_libvirt_port_parameters() {
    if !have_python_libvirt() {
        return;
    }
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let net_uuid = srv.driver.networks.lock().unwrap()[0].uuid;
    let port_uuid =
        virtnet_rpc::protocol::parse_uuid("0c3a2c2b-1111-4222-8333-444455556666").unwrap();
    srv.driver
        .ports
        .lock()
        .unwrap()
        .push((net_uuid, port_uuid, Vec::new()));
    let script = "import sys, libvirt\n\
                  c = libvirt.open(sys.argv[1])\n\
                  n = c.networkLookupByName('default')\n\
                  p = n.listAllPorts()[0]\n\
                  print(p.UUIDString())\n\
                  p.setParameters({'inbound.average': 1000, 'outbound.peak': 2000})\n\
                  print(sorted((k, v) for k, v in p.parameters().items() if v))\n\
                  print(n.DHCPLeases()[0]['ipaddr'])\n";
    let out = run_with_timeout(
        Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(srv.uri()),
        LIMIT,
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "0c3a2c2b-1111-4222-8333-444455556666\n\
         [('inbound.average', 1000), ('outbound.peak', 2000)]\n\
         192.168.122.5\n"
    );
}
