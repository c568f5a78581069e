//! Real nftables inside the test runner's private network namespace: every
//! mode's batch is accepted, applying is idempotent, removing one network
//! leaves the other's rules intact, removal copes with leftovers, and NAT
//! really masquerades guest traffic while new inbound connections are
//! rejected.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use virtnet_host::firewall::{Firewall, FirewallMode, FirewallPlan, Nftables};
use virtnet_host::netlink::{AddressOptions, BridgeSpec, Netlink, NetlinkOps, NetnsTarget};
use virtnet_host::netns::Netns;
use virtnet_host::sysctl::{ProcSysctl, Sysctl};

/// Each test gets its own namespace, so tests running in parallel never
/// see each other's tables.
fn in_own_namespace(body: fn()) {
    Netns::new()
        .unwrap()
        .run(body)
        .expect("test body failed (see panic above)");
}

fn ready(test: &str) -> bool {
    common::may_touch_kernel(test) && common::have_program(test, "nft")
}

fn table_text() -> String {
    common::run(&["nft", "list", "table", "inet", "virtnet"])
}

fn ruleset_json() -> Value {
    serde_json::from_str(&common::run(&["nft", "-j", "list", "ruleset"])).unwrap()
}

fn chains(v: &Value) -> Vec<String> {
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("chain"))
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn rules_of(v: &Value, chain: &str) -> usize {
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter(|r| r["chain"] == chain)
        .count()
}

fn map_keys(v: &Value, map: &str) -> Vec<String> {
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("map").or_else(|| i.get("set")))
        .filter(|m| m["name"] == map)
        .flat_map(|m| m["elem"].as_array().cloned().unwrap_or_default())
        .map(|e| e.to_string())
        .collect()
}

fn nat(network: &str, bridge: &str, subnet: &str) -> FirewallPlan {
    let mut p = FirewallPlan::new(network, bridge, FirewallMode::Nat);
    p.ipv4.push(subnet.parse().unwrap());
    p.ipv6.push("2001:db8:1::1/64".parse().unwrap());
    p
}

fn route(network: &str, bridge: &str, subnet: &str) -> FirewallPlan {
    let mut p = FirewallPlan::new(network, bridge, FirewallMode::Route);
    p.ipv4.push(subnet.parse().unwrap());
    p
}

#[test]
fn two_networks_apply_and_remove_independently() {
    in_own_namespace(two_networks_apply_and_remove_independently_body);
}

fn two_networks_apply_and_remove_independently_body() {
    if !ready("two_networks_apply_and_remove_independently") {
        return;
    }
    let fw = Nftables::default();
    let a = nat("alpha", "vnbr-a", "192.168.210.1/24");
    let b = route("beta", "vnbr-b", "192.168.211.1/24");

    let started = Instant::now();
    fw.apply(&a).unwrap();
    eprintln!(
        "one nft transaction (apply NAT network): {:?}",
        started.elapsed()
    );
    fw.apply(&b).unwrap();
    let after_both = table_text();

    // Re-applying (re-adoption after a restart) changes nothing.
    fw.apply(&a).unwrap();
    fw.apply(&b).unwrap();
    assert_eq!(table_text(), after_both, "apply must be idempotent");

    assert!(fw.exists("alpha").unwrap());
    assert!(fw.exists("beta").unwrap());
    assert!(!fw.exists("gamma").unwrap());
    assert_eq!(fw.networks().unwrap(), vec!["alpha", "beta"]);

    let v = ruleset_json();
    assert_eq!(
        rules_of(&v, "net_alpha_nat"),
        5,
        "IPv4 only: IPv6 is routed"
    );
    assert_eq!(rules_of(&v, "forward"), 3);
    assert!(
        map_keys(&v, "guest_input")
            .iter()
            .any(|k| k.contains("net_alpha_fwi"))
    );
    assert!(
        map_keys(&v, "guest_input")
            .iter()
            .any(|k| k.contains("net_beta_fwi"))
    );

    let started = Instant::now();
    fw.remove("alpha", "vnbr-a").unwrap();
    eprintln!(
        "one nft transaction (remove network): {:?}",
        started.elapsed()
    );
    let v = ruleset_json();
    let names = chains(&v);
    assert!(
        !names.iter().any(|c| c.starts_with("net_alpha_")),
        "{names:?}"
    );
    for c in [
        "net_beta_fwo",
        "net_beta_fwi",
        "net_beta_inp",
        "net_beta_out",
        "forward",
    ] {
        assert!(names.iter().any(|n| n == c), "{c} must survive: {names:?}");
    }
    assert_eq!(rules_of(&v, "net_beta_fwo"), 2);
    assert_eq!(rules_of(&v, "net_beta_fwi"), 2);
    assert_eq!(rules_of(&v, "forward"), 3);
    let keys = map_keys(&v, "guest_input");
    assert!(!keys.iter().any(|k| k.contains("vnbr-a")), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains("vnbr-b")), "{keys:?}");
    assert!(
        !map_keys(&v, "guest_cross")
            .iter()
            .any(|k| k.contains("vnbr-a"))
    );
    assert_eq!(fw.networks().unwrap(), vec!["beta"]);

    // Removing again, or removing what never existed, succeeds.
    fw.remove("alpha", "vnbr-a").unwrap();
    fw.remove("never", "vnbr-n").unwrap();
    assert_eq!(fw.networks().unwrap(), vec!["beta"]);

    // Switching beta to NAT and back to route leaves no NAT chain behind.
    fw.apply(&nat("beta", "vnbr-b", "192.168.211.1/24"))
        .unwrap();
    assert!(chains(&ruleset_json()).iter().any(|c| c == "net_beta_nat"));
    fw.apply(&b).unwrap();
    assert!(!chains(&ruleset_json()).iter().any(|c| c == "net_beta_nat"));

    // A leftover entry (the bridge was renamed between runs) makes the
    // quick removal fail; removal falls back to what the listing shows.
    fw.apply(&route("beta", "vnbr-old", "192.168.211.1/24"))
        .unwrap();
    fw.remove("beta", "vnbr-b").unwrap();
    let v = ruleset_json();
    assert!(
        !chains(&v).iter().any(|c| c.starts_with("net_beta_")),
        "{:?}",
        chains(&v)
    );
    assert!(map_keys(&v, "guest_output").is_empty());
    assert!(fw.networks().unwrap().is_empty());
}

#[test]
fn every_mode_is_accepted_by_nft() {
    in_own_namespace(every_mode_is_accepted_by_nft_body);
}

fn every_mode_is_accepted_by_nft_body() {
    if !ready("every_mode_is_accepted_by_nft") {
        return;
    }
    let fw = Nftables::default();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/firewall");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let batch: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if batch["nftables"].as_array().unwrap().is_empty() {
            continue;
        }
        fw.run_batch(&batch, &path.display().to_string()).unwrap();
        n += 1;
    }
    assert!(n >= 10, "only {n} batches found in {}", dir.display());
    for net in fw.networks().unwrap() {
        // The golden plans use bridges virbr0 and virbr7.
        for br in ["virbr0", "virbr7"] {
            fw.remove(&net, br).unwrap();
        }
    }
    assert!(fw.networks().unwrap().is_empty());
}

/// Runs a command inside a namespace with a time limit.
fn ns_run(ns: &Netns, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    ns.run(|| virtnet_host::process::run_with_timeout(c, None, Duration::from_secs(20)))
        .unwrap()
        .unwrap()
}

#[test]
fn nat_masquerades_and_rejects_inbound() {
    in_own_namespace(nat_masquerades_and_rejects_inbound_body);
}

fn nat_masquerades_and_rejects_inbound_body() {
    if !ready("nat_masquerades_and_rejects_inbound")
        || !common::have_program("nat_masquerades_and_rejects_inbound", "ping")
    {
        return;
    }
    // host (the test namespace) ── vnbr-n ── guest namespace (192.168.212.2)
    //      └─ vnup0 (10.212.0.1) ── outside namespace (10.212.0.2)
    let nl = Netlink::open().unwrap();
    let guest = Netns::new().unwrap();
    let outside = Netns::new().unwrap();
    nl.create_bridge(&BridgeSpec {
        name: "vnbr-n".into(),
        mac: None,
        mtu: None,
        stp: false,
        forward_delay: Duration::ZERO,
    })
    .unwrap();
    nl.add_address(
        "vnbr-n",
        "192.168.212.1/24".parse().unwrap(),
        AddressOptions::default(),
    )
    .unwrap();
    nl.set_up("vnbr-n", true).unwrap();
    nl.create_veth("vnguest0", "eth0", Some(NetnsTarget::Fd(guest.raw_fd())))
        .unwrap();
    nl.set_master("vnguest0", Some("vnbr-n")).unwrap();
    nl.set_up("vnguest0", true).unwrap();
    let g = Netlink::open_in(guest.file()).unwrap();
    g.add_address(
        "eth0",
        "192.168.212.2/24".parse().unwrap(),
        AddressOptions::default(),
    )
    .unwrap();
    g.set_up("eth0", true).unwrap();
    g.add_route(&virtnet_host::netlink::RouteSpec {
        destination: "0.0.0.0/0".parse().unwrap(),
        gateway: Some("192.168.212.1".parse().unwrap()),
        device: Some("eth0".into()),
        metric: None,
    })
    .unwrap();
    nl.create_veth("vnup0", "eth0", Some(NetnsTarget::Fd(outside.raw_fd())))
        .unwrap();
    nl.add_address(
        "vnup0",
        "10.212.0.1/24".parse().unwrap(),
        AddressOptions::default(),
    )
    .unwrap();
    nl.set_up("vnup0", true).unwrap();
    let o = Netlink::open_in(outside.file()).unwrap();
    o.add_address(
        "eth0",
        "10.212.0.2/24".parse().unwrap(),
        AddressOptions::default(),
    )
    .unwrap();
    o.set_up("eth0", true).unwrap();
    // Forwarding in the test namespace only (sysctls are per namespace).
    ProcSysctl::default()
        .write("net/ipv4/ip_forward", "1")
        .unwrap();

    let fw = Nftables::default();
    let mut plan = FirewallPlan::new("natnet", "vnbr-n", FirewallMode::Nat);
    plan.ipv4.push("192.168.212.1/24".parse().unwrap());
    fw.apply(&plan).unwrap();

    // Out: the outside namespace has no route back to 192.168.212.0/24, so
    // a reply only arrives if the source was masqueraded to 10.212.0.1.
    let ping = ns_run(&guest, &["ping", "-c", "1", "-W", "5", "10.212.0.2"]);
    assert!(
        ping.status.success(),
        "guest → outside: {}",
        String::from_utf8_lossy(&ping.stdout)
    );

    // In: a new connection from outside towards the guest is rejected.
    o.add_route(&virtnet_host::netlink::RouteSpec {
        destination: "192.168.212.0/24".parse().unwrap(),
        gateway: Some("10.212.0.1".parse().unwrap()),
        device: Some("eth0".into()),
        metric: None,
    })
    .unwrap();
    let ping = ns_run(&outside, &["ping", "-c", "1", "-W", "2", "192.168.212.2"]);
    assert!(!ping.status.success(), "outside → guest must be rejected");

    // Without the rules the same packet goes through: the rejection was ours.
    fw.remove("natnet", "vnbr-n").unwrap();
    let ping = ns_run(&outside, &["ping", "-c", "1", "-W", "5", "192.168.212.2"]);
    assert!(ping.status.success(), "outside → guest without firewall");

    nl.delete_link("vnguest0").unwrap();
    nl.delete_link("vnup0").unwrap();
    nl.delete_link("vnbr-n").unwrap();
}

#[test]
fn libnftables_and_the_nft_binary_build_the_same_ruleset() {
    in_own_namespace(libnftables_and_the_nft_binary_build_the_same_ruleset_body);
}

fn libnftables_and_the_nft_binary_build_the_same_ruleset_body() {
    if !ready("libnftables_and_the_nft_binary_build_the_same_ruleset") {
        return;
    }
    let Some(lib) = Nftables::in_process() else {
        eprintln!("skipped: libnftables.so.1 is not installed");
        return;
    };
    let bin = Nftables::new("nft");
    let a = nat("alpha", "vnbr-a", "192.168.210.1/24");
    let b = route("beta", "vnbr-b", "192.168.211.1/24");

    let t = Instant::now();
    lib.apply(&a).unwrap();
    let in_process = t.elapsed();
    lib.apply(&b).unwrap();
    let by_lib = table_text();
    assert_eq!(lib.networks().unwrap(), ["alpha", "beta"]);
    lib.remove("alpha", "vnbr-a").unwrap();
    lib.remove("beta", "vnbr-b").unwrap();
    assert!(lib.networks().unwrap().is_empty());

    let t = Instant::now();
    bin.apply(&a).unwrap();
    let spawned = t.elapsed();
    bin.apply(&b).unwrap();
    assert_eq!(table_text(), by_lib);
    // Each reads what the other wrote.
    assert_eq!(lib.networks().unwrap(), ["alpha", "beta"]);
    lib.remove("alpha", "vnbr-a").unwrap();
    assert_eq!(bin.networks().unwrap(), ["beta"]);
    bin.remove("beta", "vnbr-b").unwrap();
    eprintln!("apply NAT network: in-process {in_process:?}, nft binary {spawned:?}");
    // An error comes back with nft's message.
    let bad = FirewallPlan::new("bad name!", "", FirewallMode::Nat);
    assert!(lib.apply(&bad).is_err());
}
