//! Restarting virtnetd does not disturb running networks: after a crash
//! (`kill -9`) or a stop, the daemon started again on the same directories
//! re-adopts every network without touching what is still in place (no
//! packet lost, same rules with the same handles, same dnsmasq), and
//! repairs what vanished while it was down (a deleted bridge, a killed
//! dnsmasq, a flushed firewall), saying so in its log. A second daemon
//! started on the same directories is refused and disturbs nothing.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scenario_common::{
    Client, Host, Ruleset, alive, all_dnsmasqs, data, dnsmasq_pids, net_list, require_all, v4,
    wait_until,
};
use virtnet_tests::dhcp::{DhcpOpts, Lease, udhcpc};
use virtnet_tests::dns::{QType, query};
use virtnet_tests::ping::ContinuousPing;
use virtnet_tests::{Netns, Veth, connect_to_bridge_in, or_skip};

const NAT: (&str, &str) = ("natnet", "vnnat0");
const ROUTE: (&str, &str) = ("routenet", "vnroute0");

/// A host with the nat and route networks of `tests/data/scenarios`
/// defined and started.
fn host_with_two_networks() -> Option<Host> {
    let host = match Host::start(&[]) {
        Ok(h) => h,
        Err(virtnet_tests::Error::Unavailable(why)) => {
            eprintln!("skipped: {why}");
            return None;
        }
        Err(e) => panic!("{e}"),
    };
    let c = Client::Virtnet;
    for file in ["nat.xml", "route.xml"] {
        c.ok(&host.daemon, &["net-define", data(file).to_str().unwrap()]);
    }
    for (name, _) in [NAT, ROUTE] {
        c.ok(&host.daemon, &["net-start", name]);
    }
    Some(host)
}

/// A namespace on `bridge` with a DHCP lease.
fn guest(host: &Host, bridge: &str) -> (Netns, Veth, Lease) {
    let ns = Netns::new("guest").unwrap();
    let link = connect_to_bridge_in(&host.ns, bridge, &ns, "eth0").unwrap();
    let lease = udhcpc(
        &ns,
        "eth0",
        &DhcpOpts {
            timeout: Duration::from_secs(25),
            ..DhcpOpts::default()
        },
    )
    .unwrap();
    (ns, link, lease)
}

/// Both networks listed active.
fn assert_both_active(host: &Host) {
    let rows = net_list(Client::Virtnet, &host.daemon);
    for (name, _) in [NAT, ROUTE] {
        let r = scenario_common::row(&rows, name);
        assert_eq!(r.state, "active", "{rows:?}");
    }
}

/// The network's one dnsmasq.
fn the_dnsmasq(host: &Host, name: &str) -> u32 {
    let pids = dnsmasq_pids(&host.daemon, name);
    assert_eq!(pids.len(), 1, "one dnsmasq for {name}: {pids:?}");
    pids[0]
}

/// The network answers DHCP and DNS on `bridge` (a fresh guest leases).
fn assert_serves(host: &Host, bridge: &str, gateway: &str) {
    let (ns, _link, lease) = guest(host, bridge);
    assert_eq!(lease.router, Some(v4(gateway)), "{lease:?}");
    let dns = SocketAddr::new(IpAddr::V4(v4(gateway)), 53);
    let answer = query(
        &ns,
        dns,
        "printer.example",
        QType::A,
        Duration::from_secs(6),
    )
    .unwrap();
    assert_eq!(answer.ipv4().len(), 1, "{answer:?}");
}

#[test]
fn restart_keeps_traffic_rules_and_dnsmasq() {
    or_skip!(require_all(None));
    let started = Instant::now();
    let Some(mut host) = host_with_two_networks() else {
        return;
    };
    let (g, _link, _lease) = guest(&host, NAT.1);
    let wan = IpAddr::V4(host.wan.wan_addr);
    let mut pinger = ContinuousPing::start(&g, wan, Duration::from_millis(50)).unwrap();
    pinger.wait_replies(10, Duration::from_secs(10)).unwrap();

    let rules = Ruleset::read(&host.ns);
    let dnsmasqs = all_dnsmasqs(&host.daemon);
    assert_eq!(dnsmasqs.len(), 2, "{dnsmasqs:?}");
    assert!(dnsmasqs.values().all(|p| p.len() == 1), "{dnsmasqs:?}");
    let bridges: Vec<_> = [NAT.1, ROUTE.1]
        .iter()
        .map(|b| host.ns.ip(&["-o", "link", "show", b]).unwrap())
        .collect();

    // A crash, then a stop, each followed by a start on the same directories.
    for (round, how) in ["kill -9", "SIGTERM"].into_iter().enumerate() {
        let t = Instant::now();
        if how == "kill -9" {
            host.daemon.kill9().unwrap();
        } else {
            host.daemon.stop().unwrap();
        }
        // The networks keep working while no daemon runs.
        std::thread::sleep(Duration::from_millis(500));
        for pids in dnsmasqs.values() {
            assert!(alive(pids[0]), "dnsmasq {} died with the daemon", pids[0]);
        }
        host.daemon.start_again().unwrap();
        assert_both_active(&host);
        eprintln!(
            "{how}: down and re-adopted in {:.2} s",
            t.elapsed().as_secs_f64()
        );

        assert_eq!(
            Ruleset::read(&host.ns),
            rules,
            "the ruleset changed across the restart ({how}):\n{}",
            rules.diff(&Ruleset::read(&host.ns))
        );
        assert_eq!(all_dnsmasqs(&host.daemon), dnsmasqs, "after {how}");
        let now: Vec<_> = [NAT.1, ROUTE.1]
            .iter()
            .map(|b| host.ns.ip(&["-o", "link", "show", b]).unwrap())
            .collect();
        assert_eq!(now, bridges, "bridges changed across the restart ({how})");
        let log = host.daemon.log();
        for (name, _) in [NAT, ROUTE] {
            let line = format!("network '{name}': re-adopted");
            assert_eq!(log.matches(&line).count(), round + 1, "{log}");
        }
        assert!(
            !log.contains("vanished") && !log.contains("missing"),
            "{log}"
        );
    }

    std::thread::sleep(Duration::from_millis(500));
    let stats = pinger.stop().unwrap();
    eprintln!(
        "ping across two restarts: {} sent, {} received",
        stats.transmitted, stats.received
    );
    assert!(stats.received >= 20, "{stats:?}");
    assert_eq!(stats.lost(), 0, "{stats:?}");

    // The adopted networks are fully the daemon's: it can stop them, dnsmasq
    // included.
    for (name, bridge) in [NAT, ROUTE] {
        Client::Virtnet.ok(&host.daemon, &["net-destroy", name]);
        host.assert_no_trace(name, bridge);
    }
    eprintln!("restart scenario: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn restart_repairs_what_vanished_while_down() {
    or_skip!(require_all(None));
    let started = Instant::now();
    let Some(mut host) = host_with_two_networks() else {
        return;
    };
    let counts = Ruleset::read(&host.ns).counts();
    let shape = Ruleset::read(&host.ns).without_handles();
    let route_dnsmasq = the_dnsmasq(&host, ROUTE.0);
    let mut log_from = host.daemon.log().len();
    let mut new_log = |host: &Host| {
        let log = host.daemon.log();
        let new = log[log_from..].to_string();
        log_from = log.len();
        new
    };

    // 1. The nat network's bridge deleted by hand.
    let old = the_dnsmasq(&host, NAT.0);
    host.daemon.kill9().unwrap();
    host.ns.ip(&["link", "del", NAT.1]).unwrap();
    host.daemon.start_again().unwrap();
    assert_both_active(&host);
    let log = new_log(&host);
    assert!(
        log.contains("network 'natnet': bridge 'vnnat0' vanished; setting it up again"),
        "{log}"
    );
    assert!(host.ns.link_exists(NAT.1));
    assert_eq!(
        host.ns.ipv4_addrs(NAT.1).unwrap(),
        vec![(v4("10.77.0.1"), 24)]
    );
    let new = the_dnsmasq(&host, NAT.0);
    assert_ne!(new, old, "a new dnsmasq serves the new bridge");
    wait_until("the old dnsmasq to exit", Duration::from_secs(5), || {
        !alive(old)
    });
    assert_eq!(
        the_dnsmasq(&host, ROUTE.0),
        route_dnsmasq,
        "route untouched"
    );
    assert_eq!(
        Ruleset::read(&host.ns).counts(),
        counts,
        "no duplicate rules"
    );
    assert_serves(&host, NAT.1, "10.77.0.1");

    // 2. The nat network's dnsmasq killed.
    let old = the_dnsmasq(&host, NAT.0);
    host.daemon.kill9().unwrap();
    kill(Pid::from_raw(old as i32), Signal::SIGTERM).unwrap();
    wait_until("dnsmasq to exit", Duration::from_secs(5), || !alive(old));
    host.daemon.start_again().unwrap();
    assert_both_active(&host);
    let log = new_log(&host);
    assert!(
        log.contains("network 'natnet': dnsmasq not adopted") && log.contains("; starting it"),
        "{log}"
    );
    let new = the_dnsmasq(&host, NAT.0);
    assert_ne!(new, old);
    assert_eq!(
        the_dnsmasq(&host, ROUTE.0),
        route_dnsmasq,
        "route untouched"
    );
    assert_eq!(
        Ruleset::read(&host.ns).counts(),
        counts,
        "no duplicate rules"
    );
    assert_serves(&host, NAT.1, "10.77.0.1");

    // 3. The whole firewall table deleted.
    host.daemon.kill9().unwrap();
    host.ns
        .run_ok(["nft", "delete", "table", "inet", "virtnet"])
        .unwrap();
    host.daemon.start_again().unwrap();
    assert_both_active(&host);
    let log = new_log(&host);
    for (name, _) in [NAT, ROUTE] {
        assert!(
            log.contains(&format!(
                "network '{name}': firewall rules missing; installing them"
            )),
            "{log}"
        );
    }
    assert_eq!(
        Ruleset::read(&host.ns).without_handles(),
        shape,
        "the same rules as before, once each"
    );
    assert_eq!(
        the_dnsmasq(&host, ROUTE.0),
        route_dnsmasq,
        "route untouched"
    );

    // 4. After all that, one more restart changes nothing.
    let rules = Ruleset::read(&host.ns);
    let dnsmasqs = all_dnsmasqs(&host.daemon);
    host.daemon.kill9().unwrap();
    host.daemon.start_again().unwrap();
    assert_both_active(&host);
    assert_eq!(Ruleset::read(&host.ns), rules);
    assert_eq!(all_dnsmasqs(&host.daemon), dnsmasqs);
    let log = new_log(&host);
    assert!(!log.contains("WARN") && !log.contains("ERROR"), "{log}");

    for (name, bridge) in [NAT, ROUTE] {
        Client::Virtnet.ok(&host.daemon, &["net-destroy", name]);
        host.assert_no_trace(name, bridge);
    }
    eprintln!("repair scenario: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_second_daemon_on_the_same_directories_is_refused() {
    or_skip!(require_all(None));
    let Some(host) = host_with_two_networks() else {
        return;
    };
    let rules = Ruleset::read(&host.ns);
    let dnsmasqs = all_dnsmasqs(&host.daemon);
    let binary = virtnet_tests::daemon::locate_binary("virtnetd", "VIRTNETD_BIN").unwrap();
    let second = host
        .ns
        .command(&binary)
        .arg("--config-dir")
        .arg(host.daemon.config_dir())
        .arg("--run-dir")
        .arg(host.daemon.run_dir())
        .arg("--state-dir")
        .arg(host.daemon.state_dir())
        .arg("--no-default-network")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("virtnetd: error: another virtnetd is running with run directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");
    // The first daemon still owns its socket, networks, rules and dnsmasqs.
    assert_both_active(&host);
    assert_eq!(Ruleset::read(&host.ns), rules);
    assert_eq!(all_dnsmasqs(&host.daemon), dnsmasqs);
    for (name, bridge) in [NAT, ROUTE] {
        Client::Virtnet.ok(&host.daemon, &["net-destroy", name]);
        host.assert_no_trace(name, bridge);
    }
}
