//! A start that fails on the real host fails cleanly: the client gets a
//! clear message and the host is left as it was (no bridge, no rules, no
//! dnsmasq, no status file), so a later start can succeed.
//!
//! Faults: dnsmasq that exits at once (`virtnetd --dnsmasq /bin/false`),
//! dnsmasq that cannot bind the DHCP port (a socket already holds it), and
//! a host device that already has the network's bridge name. Also: a dnsmasq
//! killed while the network runs is started again.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scenario_common::{
    Client, Host, Snapshot, alive, data, dnsmasq_pids, net_list, require_all, row, wait_until,
};
use virtnet_tests::dhcp::{DhcpOpts, udhcpc};
use virtnet_tests::{Netns, Veth, connect_to_bridge_in, or_skip};

const NAME: &str = "natnet";
const BRIDGE: &str = "vnnat0";

fn define(host: &Host) {
    Client::Virtnet.ok(
        &host.daemon,
        &["net-define", data("nat.xml").to_str().unwrap()],
    );
}

/// Runs `net-start` with `client`, which must fail; returns its stderr.
fn failed_start(host: &Host, client: Client) -> String {
    let out = client.run(&host.daemon, &["net-start", NAME]);
    assert_eq!(
        out.code(),
        Some(1),
        "{client:?} net-start should fail:\n{}{}",
        out.stdout,
        out.stderr
    );
    let mut lines = out.stderr.lines();
    assert_eq!(
        lines.next(),
        Some("error: Failed to start network natnet"),
        "{}",
        out.stderr
    );
    let reason = lines.next().unwrap_or_default().to_string();
    assert!(reason.starts_with("error: "), "{}", out.stderr);
    eprintln!("{client:?}: {reason}");
    reason
}

/// What a failed start may not change: links, addresses, routes, the
/// daemon's dnsmasqs; and nothing of the network may remain.
fn assert_untouched(host: &Host, before: &Snapshot) {
    let after = host.snapshot();
    assert_eq!(before.links, after.links, "{}", before.diff(&after));
    assert_eq!(before.addrs, after.addrs, "{}", before.diff(&after));
    assert_eq!(before.routes, after.routes, "{}", before.diff(&after));
    assert_eq!(before.dnsmasqs, after.dnsmasqs, "{}", before.diff(&after));
    host.assert_no_trace(NAME, BRIDGE);
    let r = row(&net_list(Client::Virtnet, &host.daemon), NAME);
    assert_eq!(r.state, "inactive");
}

/// Fails the start with every client: the first failure leaves nothing of
/// the network; later ones change nothing at all.
fn fail_with_every_client(host: &Host, want: &str) {
    let before = host.snapshot();
    let mut after_first: Option<Snapshot> = None;
    for client in Client::ALL {
        if let Err(e) = client.check() {
            eprintln!("{client:?} not available: {e}");
            continue;
        }
        let reason = failed_start(host, client);
        assert!(reason.contains(want), "want {want:?} in {reason:?}");
        assert_untouched(host, &before);
        match &after_first {
            None => after_first = Some(host.snapshot().without_handles()),
            Some(first) => {
                let diff = first.diff(&host.snapshot().without_handles());
                assert!(diff.is_empty(), "a repeated failure changed:\n{diff}");
            }
        }
    }
}

#[test]
fn dnsmasq_that_exits_fails_the_start_cleanly() {
    or_skip!(require_all(None));
    let started = Instant::now();
    let host = or_skip!(Host::start(&["--dnsmasq", "/bin/false"]));
    define(&host);
    fail_with_every_client(&host, "cannot start dnsmasq for network 'natnet'");
    eprintln!("dnsmasq exits: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn dnsmasq_that_cannot_bind_fails_the_start_cleanly() {
    or_skip!(require_all(None));
    or_skip!(virtnet_tests::require(&["ss"]));
    let started = Instant::now();
    let host = or_skip!(Host::start(&[]));
    define(&host);
    // Someone else holds the DHCP server port, without SO_REUSEADDR.
    let blocker = host
        .ns
        .enter(|| UdpSocket::bind("0.0.0.0:67"))
        .unwrap()
        .unwrap();
    fail_with_every_client(
        &host,
        "failed to bind DHCP server socket: Address already in use",
    );

    // Once the port is free, the same network starts and serves. (A process
    // the test forks at that moment holds a copy of the socket until it
    // executes its program: wait until no socket has the port.)
    drop(blocker);
    wait_until("UDP port 67 to be free", Duration::from_secs(10), || {
        host.ns
            .run(["ss", "-Hunl", "sport", "=", ":67"])
            .is_ok_and(|o| o.success() && o.stdout.trim().is_empty())
    });
    let out = Client::Virtnet.ok(&host.daemon, &["net-start", NAME]);
    scenario_common::assert_line(&out, "Network natnet started");
    let guest = Netns::new("guest").unwrap();
    let _link: Veth = connect_to_bridge_in(&host.ns, BRIDGE, &guest, "eth0").unwrap();
    let lease = udhcpc(
        &guest,
        "eth0",
        &DhcpOpts {
            timeout: Duration::from_secs(25),
            ..DhcpOpts::default()
        },
    )
    .unwrap();
    assert_eq!(lease.router, Some("10.77.0.1".parse().unwrap()));
    Client::Virtnet.ok(&host.daemon, &["net-destroy", NAME]);
    host.assert_no_trace(NAME, BRIDGE);
    eprintln!(
        "dnsmasq cannot bind: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn bridge_name_held_by_a_host_device_fails_the_start_cleanly() {
    or_skip!(require_all(None));
    let host = or_skip!(Host::start(&[]));
    define(&host);
    // A device that is not a bridge already has the name.
    let squatter = Veth::create(&host.ns, BRIDGE, &host.ns, "vnsquat1").unwrap();
    let before = host.snapshot();
    let reason = failed_start(&host, Client::Virtnet);
    // libvirt's words for the same failure.
    assert_eq!(
        reason,
        format!("error: error creating bridge interface {BRIDGE}: File exists")
    );
    let after = host.snapshot();
    let diff = before.diff(&after);
    // The device is still there, untouched; nothing else appeared.
    assert!(host.ns.link_exists(BRIDGE));
    assert_eq!(before.links, after.links, "{diff}");
    assert_eq!(before.addrs, after.addrs, "{diff}");
    assert_eq!(before.routes, after.routes, "{diff}");
    assert_eq!(before.dnsmasqs, after.dnsmasqs, "{diff}");
    assert!(
        !host
            .daemon
            .run_dir()
            .join(format!("network/{NAME}.xml"))
            .exists()
    );
    let rules = scenario_common::Ruleset::read(&host.ns);
    assert!(
        !rules
            .virtnet_chains()
            .iter()
            .any(|c| c.starts_with("net_natnet_")),
        "{rules:?}"
    );
    // Once the name is free, it starts.
    drop(squatter);
    Client::Virtnet.ok(&host.daemon, &["net-start", NAME]);
    Client::Virtnet.ok(&host.daemon, &["net-destroy", NAME]);
    host.assert_no_trace(NAME, BRIDGE);
}

#[test]
fn dnsmasq_killed_while_running_is_started_again() {
    or_skip!(require_all(None));
    let host = or_skip!(Host::start(&[]));
    define(&host);
    Client::Virtnet.ok(&host.daemon, &["net-start", NAME]);
    let old = dnsmasq_pids(&host.daemon, NAME);
    assert_eq!(old.len(), 1, "{old:?}");
    kill(Pid::from_raw(old[0] as i32), Signal::SIGKILL).unwrap();
    // A new dnsmasq runs and the status file records it (so a restarted
    // daemon adopts it). Until it has forked into the background, the
    // process seen may be its short-lived foreground half: wait for the
    // one the status file names.
    let status = host.daemon.run_dir().join(format!("network/{NAME}.xml"));
    let recorded = || {
        let text = std::fs::read_to_string(&status).ok()?;
        let rest = text.split("<dnsmasq pid='").nth(1)?;
        rest.split('\'').next()?.parse::<u32>().ok()
    };
    let mut new = 0;
    wait_until(
        "a new dnsmasq, named in the status file",
        Duration::from_secs(10),
        || match (dnsmasq_pids(&host.daemon, NAME).as_slice(), recorded()) {
            ([pid], Some(r)) if *pid == r && r != old[0] => {
                new = r;
                true
            }
            _ => false,
        },
    );
    assert!(!alive(old[0]));
    assert!(alive(new));
    let log = host.daemon.log();
    assert!(
        log.contains(&format!(
            "network 'natnet': dnsmasq (pid {}) died; restarting it",
            old[0]
        )),
        "{log}"
    );
    Client::Virtnet.ok(&host.daemon, &["net-destroy", NAME]);
    host.assert_no_trace(NAME, BRIDGE);
}
