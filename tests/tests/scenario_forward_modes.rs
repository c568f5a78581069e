//! One network per forward mode (nat, route, isolated, open) through its
//! whole life: define, start, guests on its bridge, destroy, undefine.
//! Each runs once with virtnet's CLI and once with Debian's virsh.
//!
//! The host is a namespace running virtnetd, with a wan namespace behind
//! it (host 203.0.113.1, wan 203.0.113.2) where a whoami server reports
//! the source address it sees. Guests are namespaces joined to the
//! network's bridge by a veth, leasing addresses with busybox udhcpc.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use scenario_common::{Client, Host, Ruleset, assert_line, data, net_list, require_all, row};
use virtnet_tests::dhcp::{DhcpOpts, Lease, udhcpc};
use virtnet_tests::dns::{QType, query};
use virtnet_tests::ping::ping;
use virtnet_tests::tcp::{WhoamiServer, whoami};
use virtnet_tests::{Netns, Veth, connect_to_bridge_in, or_skip};

/// A forward mode and the network the data directory defines for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Nat,
    Route,
    Isolated,
    Open,
}

/// What a scenario needs to know about its network.
struct Net {
    name: &'static str,
    file: &'static str,
    bridge: &'static str,
    /// The bridge's address (gateway, DNS server).
    gateway: Ipv4Addr,
    /// `/24` subnet, e.g. "10.77.0.0/24".
    subnet: &'static str,
    /// MAC and address of the static DHCP host.
    fixed_mac: &'static str,
    fixed_ip: Ipv4Addr,
    /// Address of the `printer.example` DNS host.
    dns_host: Ipv4Addr,
}

impl Mode {
    fn net(self) -> Net {
        let (name, file, bridge, n, mac) = match self {
            Mode::Nat => ("natnet", "nat.xml", "vnnat0", 77, "52:54:00:aa:bb:01"),
            Mode::Route => ("routenet", "route.xml", "vnroute0", 78, "52:54:00:aa:bb:02"),
            Mode::Isolated => ("isonet", "isolated.xml", "vniso0", 79, "52:54:00:aa:bb:03"),
            Mode::Open => ("opennet", "open.xml", "vnopen0", 80, "52:54:00:aa:bb:04"),
        };
        let subnet = match n {
            77 => "10.77.0.0/24",
            78 => "10.78.0.0/24",
            79 => "10.79.0.0/24",
            _ => "10.80.0.0/24",
        };
        Net {
            name,
            file,
            bridge,
            gateway: Ipv4Addr::new(10, n, 0, 1),
            subnet,
            fixed_mac: mac,
            fixed_ip: Ipv4Addr::new(10, n, 0, 42),
            dns_host: Ipv4Addr::new(10, n, 0, 50),
        }
    }
}

/// A guest: a namespace whose `eth0` is a port of the network's bridge.
struct Guest {
    ns: Netns,
    _link: Veth,
}

impl Guest {
    fn join(host: &Host, bridge: &str, mac: Option<&str>) -> Guest {
        let ns = Netns::new("guest").unwrap();
        let link = connect_to_bridge_in(&host.ns, bridge, &ns, "eth0").unwrap();
        if let Some(mac) = mac {
            ns.ip(&["link", "set", "eth0", "address", mac]).unwrap();
        }
        Guest { ns, _link: link }
    }

    fn lease(&self, host: &Host) -> Lease {
        let res = udhcpc(
            &self.ns,
            "eth0",
            &DhcpOpts {
                timeout: Duration::from_secs(25),
                ..DhcpOpts::default()
            },
        );
        match res {
            Ok(l) => l,
            Err(e) => {
                let sh = |ns: &Netns, cmd: &str| {
                    ns.run(["sh", "-c", cmd])
                        .map(|o| format!("$ {cmd}\n{}{}", o.stdout, o.stderr))
                        .unwrap_or_default()
                };
                let mut diag = String::new();
                for cmd in [
                    "ip -br link; ip -br addr; bridge link",
                    "ss -uapn",
                    "nft list ruleset",
                ] {
                    diag.push_str(&sh(&host.ns, cmd));
                }
                diag.push_str(&sh(&self.ns, "ip -br link; ip -br addr"));
                panic!("no lease: {e}\n{diag}");
            }
        }
    }
}

/// Leases addresses for guests already on the bridge, one after the other.
/// (Their ports pass STP's listening and learning states together. In
/// parallel, one guest's REQUEST can go unanswered while dnsmasq probes the
/// address it offers another with ping, and busybox udhcpc -n gives up
/// after three unanswered REQUESTs.)
fn leases(host: &Host, guests: &[&Guest]) -> Vec<Lease> {
    guests.iter().map(|g| g.lease(host)).collect()
}

fn in_range(ip: Ipv4Addr, net: &Net) -> bool {
    let o = ip.octets();
    let g = net.gateway.octets();
    o[..3] == g[..3] && (100..=200).contains(&o[3])
}

fn lifecycle(client: Client, mode: Mode) {
    or_skip!(require_all(Some(client)));
    let started = Instant::now();
    let net = mode.net();
    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    let xml = data(net.file);
    let xml_arg = xml.to_str().unwrap();

    // Define: listed inactive, persistent.
    let out = client.ok(d, &["net-define", xml_arg]);
    assert_line(
        &out,
        &format!("Network {} defined from {xml_arg}", net.name),
    );
    let r = row(&net_list(client, d), net.name);
    assert_eq!(
        (
            r.state.as_str(),
            r.autostart.as_str(),
            r.persistent.as_str()
        ),
        ("inactive", "no", "yes")
    );
    assert!(!host.ns.link_exists(net.bridge));

    // Start: listed active; bridge up with the gateway address.
    let out = client.ok(d, &["net-start", net.name]);
    assert_line(&out, &format!("Network {} started", net.name));
    let rows = net_list(client, d);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].state, "active", "{rows:?}");
    let active = client.ok(d, &["net-list"]);
    assert!(
        scenario_common::parse_net_list(&active)
            .iter()
            .any(|r| r.name == net.name),
        "{active}"
    );
    let info = client.ok(d, &["net-info", net.name]);
    let info_words: Vec<Vec<&str>> = info
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(info_words.contains(&vec!["Active:", "yes"]), "{info}");
    assert!(info_words.contains(&vec!["Bridge:", net.bridge]), "{info}");
    assert_eq!(
        host.ns.ipv4_addrs(net.bridge).unwrap(),
        vec![(net.gateway, 24)]
    );
    assert_eq!(
        scenario_common::dnsmasq_pids(d, net.name).len(),
        1,
        "one dnsmasq for {}",
        net.name
    );

    // Guests: one from the range, one with the static host's MAC.
    let g1 = Guest::join(&host, net.bridge, None);
    let g2 = Guest::join(&host, net.bridge, Some(net.fixed_mac));
    let l = leases(&host, &[&g1, &g2]);
    let (l1, l2) = (&l[0], &l[1]);
    assert!(in_range(l1.ip, &net), "{l1:?}");
    assert_eq!(l1.prefix, 24, "{l1:?}");
    assert_eq!(l2.ip, net.fixed_ip, "the static host's address: {l2:?}");
    assert_eq!(l1.dns, vec![net.gateway], "{l1:?}");
    if mode == Mode::Isolated {
        assert_eq!(
            l1.router, None,
            "an isolated network offers no router: {l1:?}"
        );
    } else {
        assert_eq!(l1.router, Some(net.gateway), "{l1:?}");
    }

    // DNS: the network's own host entry, through the bridge address.
    let dns = SocketAddr::new(IpAddr::V4(net.gateway), 53);
    let answer = query(
        &g1.ns,
        dns,
        "printer.example",
        QType::A,
        Duration::from_secs(6),
    )
    .unwrap();
    assert_eq!(answer.ipv4(), vec![net.dns_host], "{answer:?}");

    // Guests on one network reach each other.
    let p = ping(&g1.ns, IpAddr::V4(l2.ip), 2, Duration::from_secs(10)).unwrap();
    assert_eq!(p.received, 2, "guest to guest: {p:?}");

    // The wan.
    let wan = &host.wan;
    let server =
        WhoamiServer::start(&wan.ns, SocketAddr::new(IpAddr::V4(wan.wan_addr), 0)).unwrap();
    if matches!(mode, Mode::Route | Mode::Open) {
        // Routed without NAT: the wan routes the guests' subnet back
        // through the host.
        wan.ns
            .ip(&[
                "route",
                "replace",
                net.subnet,
                "via",
                &wan.host_addr.to_string(),
            ])
            .unwrap();
    }
    let t = Duration::from_secs(5);
    match mode {
        Mode::Nat => {
            let seen = whoami(&g1.ns, server.addr(), t).unwrap();
            assert_eq!(seen.ip(), IpAddr::V4(wan.host_addr), "masqueraded");
        }
        Mode::Route | Mode::Open => {
            let seen = whoami(&g1.ns, server.addr(), t).unwrap();
            assert_eq!(seen.ip(), IpAddr::V4(l1.ip), "routed, not masqueraded");
        }
        Mode::Isolated => {
            // No route out at all...
            let err = whoami(&g1.ns, server.addr(), t).unwrap_err();
            eprintln!("isolated guest without a route: {err}");
            assert!(err.to_string().contains("unreachable"), "{err}");
            // ...and with a default route through the bridge and forwarding
            // on, the host's firewall rejects it.
            g1.ns
                .ip(&[
                    "route",
                    "replace",
                    "default",
                    "via",
                    &net.gateway.to_string(),
                ])
                .unwrap();
            host.ns.sysctl("net.ipv4.ip_forward", "1").unwrap();
            let begun = Instant::now();
            let err = whoami(&g1.ns, server.addr(), t).unwrap_err();
            eprintln!("isolated guest through the host: {err}");
            // The whoami server listens: a refusal can only be the host's.
            let e = err.to_string();
            assert!(e.contains("refused") || e.contains("unreachable"), "{e}");
            assert!(
                begun.elapsed() < Duration::from_secs(4),
                "rejected at once, not dropped"
            );
            let p = ping(&g1.ns, IpAddr::V4(wan.wan_addr), 2, Duration::from_secs(6)).unwrap();
            assert_eq!(p.received, 0, "{p:?}");
        }
    }

    // Firewall: open networks have no rules of their own.
    let rules = Ruleset::read(&host.ns);
    let own: Vec<String> = rules
        .virtnet_chains()
        .into_iter()
        .filter(|c| c.starts_with(&format!("net_{}_", net.name)))
        .collect();
    if mode == Mode::Open {
        assert!(own.is_empty(), "open network has chains {own:?}");
        let elems: Vec<&String> = rules
            .sets
            .values()
            .flatten()
            .filter(|e| e.contains(net.bridge))
            .collect();
        assert!(elems.is_empty(), "open network has elements {elems:?}");
    } else {
        assert!(!own.is_empty(), "no chains for {}: {rules:?}", net.name);
    }

    // Destroy: nothing left behind.
    let out = client.ok(d, &["net-destroy", net.name]);
    assert_line(&out, &format!("Network {} destroyed", net.name));
    host.assert_no_trace(net.name, net.bridge);
    let r = row(&net_list(client, d), net.name);
    assert_eq!(r.state, "inactive");

    // Undefine: gone from the list.
    let out = client.ok(d, &["net-undefine", net.name]);
    assert_line(&out, &format!("Network {} has been undefined", net.name));
    assert!(net_list(client, d).is_empty());
    assert!(
        !d.config_dir()
            .join(format!("networks/{}.xml", net.name))
            .exists()
    );
    eprintln!(
        "{mode:?} with {client:?}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn nat_with_virtnet() {
    lifecycle(Client::Virtnet, Mode::Nat);
}

#[test]
fn nat_with_virsh() {
    lifecycle(Client::Virsh, Mode::Nat);
}

#[test]
fn route_with_virtnet() {
    lifecycle(Client::Virtnet, Mode::Route);
}

#[test]
fn route_with_virsh() {
    lifecycle(Client::Virsh, Mode::Route);
}

#[test]
fn isolated_with_virtnet() {
    lifecycle(Client::Virtnet, Mode::Isolated);
}

#[test]
fn isolated_with_virsh() {
    lifecycle(Client::Virsh, Mode::Isolated);
}

#[test]
fn open_with_virtnet() {
    lifecycle(Client::Virtnet, Mode::Open);
}

#[test]
fn open_with_virsh() {
    lifecycle(Client::Virsh, Mode::Open);
}
