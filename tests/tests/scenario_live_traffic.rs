//! Live changes to a running network, seen from its guests.
//!
//! - A guest pinging the wan through NAT at 100 Hz loses nothing while the
//!   network takes 100 live `net-update`s (DHCP hosts, DNS hosts, TXT and
//!   SRV records, DHCP ranges — the last restart dnsmasq), and the firewall
//!   is never touched: `nft monitor` sees no change and every rule keeps its
//!   handle.
//! - A DHCP host added live gets its fixed address on its next request,
//!   and a DNS host added live is answered at once, from the same dnsmasq
//!   (re-read on SIGHUP, not restarted); a TXT record added live is
//!   answered by the restarted dnsmasq.
//!
//! The host is a namespace running virtnetd with a wan namespace behind it
//! (host 203.0.113.1, wan 203.0.113.2); guests are namespaces joined to the
//! network's bridge by a veth, leasing with busybox udhcpc.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use scenario_common::{Client, Host, Ruleset, data, dnsmasq_pids, require_all};
use virtnet_tests::dhcp::{DhcpOpts, Lease, udhcpc};
use virtnet_tests::dns::{QType, query};
use virtnet_tests::ping::ContinuousPing;
use virtnet_tests::process::SpawnOpts;
use virtnet_tests::{Netns, Veth, connect_to_bridge_in, or_skip};

const NET: &str = "live";
const BRIDGE: &str = "vnlive0";

/// A guest: a namespace whose `eth0` is a port of the network's bridge.
struct Guest {
    ns: Netns,
    _link: Veth,
}

impl Guest {
    fn join(host: &Host, mac: Option<&str>) -> Guest {
        let ns = Netns::new("guest").unwrap();
        let link = connect_to_bridge_in(&host.ns, BRIDGE, &ns, "eth0").unwrap();
        if let Some(mac) = mac {
            ns.ip(&["link", "set", "eth0", "address", mac]).unwrap();
        }
        Guest { ns, _link: link }
    }

    fn lease(&self) -> Lease {
        udhcpc(
            &self.ns,
            "eth0",
            &DhcpOpts {
                timeout: Duration::from_secs(25),
                ..DhcpOpts::default()
            },
        )
        .unwrap()
    }
}

/// Starts the `live` NAT network on a fresh host.
fn start_network() -> Option<Host> {
    let host = match Host::start(&[]) {
        Ok(h) => h,
        Err(virtnet_tests::Error::Unavailable(r)) => {
            eprintln!("skipped: {r}");
            return None;
        }
        Err(e) => panic!("{e}"),
    };
    let xml = data("live/nat.xml");
    Client::Virtnet.ok(&host.daemon, &["net-define", xml.to_str().unwrap()]);
    Client::Virtnet.ok(&host.daemon, &["net-start", NET]);
    Some(host)
}

/// The network's dnsmasq: the pid in its pid file, a live dnsmasq reading
/// the network's conf. (Right after a restart the old dnsmasq's script
/// helper may still be finishing, orphaned: it does not count.)
fn dnsmasq_pid(host: &Host) -> u32 {
    let file = host.daemon.run_dir().join(format!("network/{NET}.pid"));
    let text = std::fs::read_to_string(&file).unwrap();
    let pid: u32 = text.trim().parse().unwrap();
    assert!(
        dnsmasq_pids(&host.daemon, NET).contains(&pid),
        "pid {pid} of {} is not a dnsmasq of {NET}",
        file.display()
    );
    pid
}

/// One live update: the command, section and XML of `net-update`.
struct Update {
    command: &'static str,
    section: &'static str,
    xml: String,
}

impl Update {
    fn new(command: &'static str, section: &'static str, xml: String) -> Update {
        Update {
            command,
            section,
            xml,
        }
    }

    /// Whether dnsmasq has to be restarted for it: DHCP ranges, TXT and
    /// SRV records are in its conf file, read at start only; DHCP and DNS
    /// hosts are in files it re-reads on SIGHUP.
    fn restarts_dnsmasq(&self) -> bool {
        matches!(self.section, "ip-dhcp-range" | "dns-txt" | "dns-srv")
    }
}

/// 100 updates in 10 rounds: each round adds a DHCP host, a DNS host, a TXT
/// record, an SRV record and a DHCP range, then deletes them again.
fn hundred_updates() -> Vec<Update> {
    let mut out = Vec::new();
    for i in 0..10u32 {
        let mac = format!("52:54:00:10:00:{i:02x}");
        let host_ip = format!("10.90.0.{}", 10 + i);
        let dns_ip = format!("10.90.0.{}", 60 + i);
        let (r0, r1) = (210 + 4 * i, 211 + 4 * i);
        let range = format!("<range start='10.90.0.{r0}' end='10.90.0.{r1}'/>");
        out.push(Update::new(
            "add-last",
            "ip-dhcp-host",
            format!("<host mac='{mac}' name='h{i}' ip='{host_ip}'/>"),
        ));
        out.push(Update::new(
            "add-first",
            "dns-host",
            format!("<host ip='{dns_ip}'><hostname>d{i}</hostname></host>"),
        ));
        out.push(Update::new(
            "add-last",
            "dns-txt",
            format!("<txt name='t{i}' value='round {i}'/>"),
        ));
        out.push(Update::new(
            "add-last",
            "dns-srv",
            format!(
                "<srv service='s{i}' protocol='tcp' target='d{i}.live.example' port='{}'/>",
                1000 + i
            ),
        ));
        out.push(Update::new("add-last", "ip-dhcp-range", range.clone()));
        out.push(Update::new(
            "delete",
            "ip-dhcp-host",
            format!("<host mac='{mac}'/>"),
        ));
        out.push(Update::new(
            "delete",
            "dns-host",
            format!("<host ip='{dns_ip}'/>"),
        ));
        out.push(Update::new(
            "delete",
            "dns-txt",
            format!("<txt name='t{i}'/>"),
        ));
        out.push(Update::new(
            "delete",
            "dns-srv",
            format!("<srv service='s{i}' protocol='tcp'/>"),
        ));
        out.push(Update::new("delete", "ip-dhcp-range", range));
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[test]
fn hundred_live_updates_lose_no_packet() {
    or_skip!(require_all(Some(Client::Virsh)));
    or_skip!(require_all(Some(Client::Virtnet)));
    let Some(host) = start_network() else {
        return;
    };
    let d = &host.daemon;
    let guest = Guest::join(&host, None);
    let lease = guest.lease();
    assert_eq!(lease.router, Some(Ipv4Addr::new(10, 90, 0, 1)), "{lease:?}");

    // Traffic through NAT, 100 packets a second.
    let wan = IpAddr::V4(host.wan.wan_addr);
    let mut ping = ContinuousPing::start(&guest.ns, wan, Duration::from_millis(10)).unwrap();
    ping.wait_replies(50, Duration::from_secs(10)).unwrap();

    // The firewall as it is, and every change made to it from now on.
    let rules_before = Ruleset::read(&host.ns);
    let mut monitor = host
        .ns
        .spawn_with(
            ["nft", "monitor"],
            SpawnOpts {
                label: Some("nft monitor".into()),
                ..Default::default()
            },
        )
        .unwrap();
    // nft monitor prints nothing until it has subscribed: add (and delete)
    // a table of our own until it reports one.
    let mut subscribed = false;
    for n in 0..50 {
        let table = format!("probe{n}");
        host.ns
            .run_ok(["nft", "add", "table", "ip", &table])
            .unwrap();
        host.ns
            .run_ok(["nft", "delete", "table", "ip", &table])
            .unwrap();
        if monitor
            .wait_for(
                &format!("delete table ip {table}"),
                Duration::from_millis(200),
            )
            .is_ok()
        {
            subscribed = true;
            break;
        }
    }
    assert!(
        subscribed,
        "nft monitor reports nothing:\n{}",
        monitor.output()
    );
    let monitor_from = monitor.output_len();

    let updates = hundred_updates();
    let mut pid = dnsmasq_pid(&host);
    let mut restarts = 0;
    let mut durations = Vec::new();
    let began = Instant::now();
    for (n, u) in updates.iter().enumerate() {
        let client = if (n / 10) % 2 == 0 {
            Client::Virsh
        } else {
            Client::Virtnet
        };
        let t = Instant::now();
        client.ok(
            d,
            &[
                "net-update",
                NET,
                u.command,
                u.section,
                &u.xml,
                "--live",
                "--config",
            ],
        );
        durations.push(t.elapsed());
        let now = dnsmasq_pid(&host);
        if u.restarts_dnsmasq() {
            assert_ne!(
                now, pid,
                "update {n} ({} {}) restarts dnsmasq",
                u.command, u.section
            );
            restarts += 1;
        } else {
            assert_eq!(
                now, pid,
                "update {n} ({} {}) must not restart dnsmasq",
                u.command, u.section
            );
        }
        pid = now;
    }
    let elapsed = began.elapsed();
    // Let a few more packets through after the last update.
    std::thread::sleep(Duration::from_millis(300));
    let stats = ping.stop().unwrap();
    let changes = monitor.output_since(monitor_from);
    let rules_after = Ruleset::read(&host.ns);
    drop(monitor);

    eprintln!(
        "100 live updates in {:.2} s (median {:.0} ms, max {:.0} ms), dnsmasq restarted {restarts} times; \
         ping: {} sent, {} received, {} lost, longest gap {}",
        elapsed.as_secs_f64(),
        median(durations.clone()).as_secs_f64() * 1000.0,
        durations.iter().max().unwrap().as_secs_f64() * 1000.0,
        stats.transmitted,
        stats.received,
        stats.lost(),
        stats.longest_gap()
    );
    assert_eq!(restarts, 60);
    assert!(
        stats.transmitted > 200,
        "the ping ran through the updates: {stats:?}"
    );
    assert_eq!(
        stats.lost(),
        0,
        "packets lost during live updates: {stats:?}"
    );

    // The firewall was not touched: no change seen, every rule and chain
    // with the same handle.
    let deletes: Vec<&str> = changes
        .lines()
        .filter(|l| l.starts_with("delete"))
        .collect();
    assert!(
        deletes.is_empty(),
        "firewall deletes during updates:\n{changes}"
    );
    let virtnet_changes: Vec<&str> = changes
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("virtnet"))
        .collect();
    assert!(
        virtnet_changes.is_empty(),
        "firewall changes during updates:\n{changes}"
    );
    assert_eq!(
        rules_before,
        rules_after,
        "ruleset changed:\n{}",
        rules_before.diff(&rules_after)
    );

    // What was added and deleted again left the definitions as they were.
    let live = Client::Virtnet.ok(d, &["net-dumpxml", NET]);
    assert!(!live.contains("10.90.0.210"), "{live}");
    assert!(!live.contains("<txt"), "{live}");
    assert!(!live.contains("<srv"), "{live}");
    let hostsfile =
        std::fs::read_to_string(d.state_dir().join("dnsmasq/live.hostsfile")).unwrap_or_default();
    assert_eq!(hostsfile, "", "hostsfile after the updates");
}

#[test]
fn host_added_live_gets_its_address() {
    or_skip!(require_all(Some(Client::Virsh)));
    let Some(host) = start_network() else {
        return;
    };
    let d = &host.daemon;
    let mac = "52:54:00:90:00:42";
    let fixed = Ipv4Addr::new(10, 90, 0, 42);

    // Before: the guest leases from the range.
    let guest = Guest::join(&host, Some(mac));
    let first = guest.lease();
    assert!(
        (100..=200).contains(&first.ip.octets()[3]),
        "from the range: {first:?}"
    );
    let pid = dnsmasq_pid(&host);

    // The host entry, added to the running network only.
    let xml = format!("<host mac='{mac}' name='fixed' ip='{fixed}'/>");
    let out = Client::Virsh.ok(
        d,
        &["net-update", NET, "add", "ip-dhcp-host", &xml, "--live"],
    );
    assert!(out.contains("Updated network live live state"), "{out}");
    let hostsfile = std::fs::read_to_string(d.state_dir().join("dnsmasq/live.hostsfile")).unwrap();
    assert_eq!(hostsfile, format!("{mac},{fixed},fixed\n"));

    // The guest's next request gets the fixed address, from the same dnsmasq.
    let second = guest.lease();
    assert_eq!(second.ip, fixed, "{second:?}");
    assert_eq!(
        dnsmasq_pid(&host),
        pid,
        "dnsmasq re-read its hosts, not restarted"
    );
    let leases = Client::Virsh.ok(d, &["net-dhcp-leases", NET, "--mac", mac]);
    assert!(leases.contains(&format!("{fixed}/24")), "{leases}");

    // A DNS host added live is answered at once, by the same dnsmasq; a
    // TXT record (in dnsmasq's conf) once dnsmasq has restarted.
    let dns = std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 90, 0, 1)), 53);
    let t = Duration::from_secs(6);
    // (Unknown before; dnsmasq may fail to forward the question at all.)
    if let Ok(before) = query(&guest.ns, dns, "newhost", QType::A, t) {
        assert!(before.ipv4().is_empty(), "{before:?}");
    }
    Client::Virsh.ok(
        d,
        &[
            "net-update",
            NET,
            "add",
            "dns-host",
            "<host ip='10.90.0.77'><hostname>newhost</hostname></host>",
            "--live",
        ],
    );
    let answer = query(&guest.ns, dns, "newhost", QType::A, t).unwrap();
    assert_eq!(
        answer.ipv4(),
        vec![Ipv4Addr::new(10, 90, 0, 77)],
        "{answer:?}"
    );
    assert_eq!(
        dnsmasq_pid(&host),
        pid,
        "dnsmasq re-read its hosts, not restarted"
    );
    Client::Virsh.ok(
        d,
        &[
            "net-update",
            NET,
            "add",
            "dns-txt",
            "<txt name='added.live.example' value='fresh'/>",
            "--live",
        ],
    );
    assert_ne!(dnsmasq_pid(&host), pid, "dnsmasq restarted for its conf");
    let answer = query(&guest.ns, dns, "added.live.example", QType::Txt, t).unwrap();
    let txt: Vec<String> = answer.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(txt, ["fresh"], "{answer:?}");

    // Only the live state changed: the configuration does not know the host.
    let config = Client::Virsh.ok(d, &["net-dumpxml", NET, "--inactive"]);
    assert!(!config.contains(mac), "{config}");
    let live = Client::Virsh.ok(d, &["net-dumpxml", NET]);
    assert!(
        live.contains(&format!("<host mac='{mac}' name='fixed' ip='{fixed}'/>")),
        "{live}"
    );
}
