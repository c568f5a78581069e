//! A QEMU guest on the TAP of a network port.
//!
//! A hypervisor asks the network for a port (`net-port-create`) naming the
//! guest's MAC and the TAP it wants (`<virtnet:device name='vmtap0'/>`);
//! virtnetd makes a persistent TAP of that name on the network's bridge.
//! The guest boots on that TAP (TCG) with the same MAC, gets exactly the
//! address the network promises to that MAC, reaches a server in the wan
//! namespace through NAT and shows in `net-dhcp-leases`. The TAP outlives
//! the guest (it is the port's), and deleting the port removes it.
//!
//! The host is a namespace of its own running virtnetd, with a wan
//! namespace behind it (host 203.0.113.1, wan 203.0.113.2).

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use scenario_common::{Client, Host, data, require_all, wait_until};
use virtnet_tests::guest::Action;
use virtnet_tests::tcp::{WhoamiServer, parse_whoami};
use virtnet_tests::{Guest, GuestNet, GuestOpts, or_skip};

const MAC: &str = "52:54:00:78:00:42";
const PROMISED: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 42);
const PORT_UUID: &str = "6b1a4d4e-9c1f-4b8e-8f0a-7a3c2e5d0042";

/// virsh where it is installed (the client a hypervisor host has), else
/// virtnet.
fn client() -> Client {
    if Client::Virsh.check().is_ok() {
        Client::Virsh
    } else {
        Client::Virtnet
    }
}

#[test]
fn a_qemu_guest_on_a_port_tap_gets_the_promised_address_and_reaches_the_wan() {
    or_skip!(require_all(Some(Client::Virtnet)));
    or_skip!(virtnet_tests::require(&["qemu-system-x86_64"]));
    let image = or_skip!(virtnet_tests::GuestImage::get());
    let c = client();
    let t0 = Instant::now();
    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    let net_xml = data("ports/nat.xml");
    c.ok(d, &["net-define", net_xml.to_str().unwrap()]);
    c.ok(d, &["net-start", "portnat"]);

    // The port: the daemon makes the TAP the hypervisor asked for.
    let port_xml = data("ports/vm1-port.xml");
    let out = c.ok(
        d,
        &["net-port-create", "portnat", port_xml.to_str().unwrap()],
    );
    assert!(out.contains(PORT_UUID), "net-port-create said: {out}");
    let link = host.ns.ip(&["-o", "link", "show", "vmtap0"]).unwrap();
    assert!(
        link.contains(" master vnpnat0 "),
        "TAP on the bridge: {link}"
    );
    assert!(link.contains("fe:54:00:78:00:42"), "host-side MAC: {link}");
    let dump = c.ok(d, &["net-port-dumpxml", "portnat", PORT_UUID]);
    assert!(
        dump.contains("<plug type='network' bridge='vnpnat0'/>"),
        "{dump}"
    );
    assert!(
        dump.contains("type='tap'") && dump.contains("name='vmtap0'"),
        "the port reports its TAP: {dump}"
    );
    let port_made = t0.elapsed();

    // The guest, on that TAP with that MAC.
    let whoami = WhoamiServer::start(&host.wan.ns, "203.0.113.2:0".parse().unwrap()).unwrap();
    let boot = Instant::now();
    let mut guest = or_skip!(Guest::boot(GuestOpts {
        net: GuestNet::Tap("vmtap0".into()),
        netns: Some(host.ns.clone()),
        mac: Some(MAC.into()),
        hostname: Some("vm1".into()),
        image: Some(image),
        ..GuestOpts::default().action(Action::Tcp(whoami.addr()))
    }));
    let lease = guest.wait_lease(Duration::from_secs(120)).unwrap();
    let leased_after = boot.elapsed();
    assert_eq!(lease.ip, PROMISED, "the address promised to {MAC}");
    assert_eq!(lease.router, Some(Ipv4Addr::new(10, 78, 0, 1)));
    let seen = guest
        .wait_tcp(whoami.addr(), Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        parse_whoami(&seen).unwrap(),
        host.wan.host_addr,
        "the wan sees the host's address (NAT)"
    );

    // The lease is listed.
    let mut leases = String::new();
    wait_until(
        "the lease in net-dhcp-leases",
        Duration::from_secs(10),
        || {
            leases = c.ok(d, &["net-dhcp-leases", "portnat"]);
            leases.contains(MAC)
        },
    );
    let row = leases.lines().find(|l| l.contains(MAC)).unwrap();
    assert!(row.contains("10.78.0.42/24"), "lease row: {row}");
    assert!(row.contains("vm1"), "lease row names the guest: {row}");
    let list = c.ok(d, &["net-port-list", "portnat"]);
    assert!(list.contains(PORT_UUID), "{list}");

    // The TAP is the port's: it stays when the guest goes.
    drop(guest);
    std::thread::sleep(Duration::from_millis(200));
    assert!(host.ns.link_exists("vmtap0"), "the TAP outlives QEMU");
    let list = c.ok(d, &["net-port-list", "portnat"]);
    assert!(list.contains(PORT_UUID), "the port outlives QEMU: {list}");

    // Deleting the port removes the TAP.
    c.ok(d, &["net-port-delete", "portnat", PORT_UUID]);
    assert!(
        host.ns.wait_link_gone("vmtap0", Duration::from_secs(5)),
        "the TAP is gone with the port"
    );
    let list = c.ok(d, &["net-port-list", "portnat"]);
    assert!(!list.contains(PORT_UUID), "{list}");
    c.ok(d, &["net-destroy", "portnat"]);
    eprintln!(
        "timings: port created {port_made:?} after start; guest leased {leased_after:?} after boot; total {:?}",
        t0.elapsed()
    );
}
