//! The nftables batches per forward mode, data-driven:
//!
//! - each case's batch must equal `tests/data/firewall/CASE.json`
//!   (regenerate with `VIRTNET_BLESS=1`);
//! - each case mirrors a case of libvirt's `networkxml2firewalldata`, and
//!   its rules must be the same rules, in the same evaluation order, as
//!   libvirt's nftables backend programs (`CASE-linux.nftables`), and its
//!   host-service accepts the same as libvirt 9.0's iptables INP/OUT rules
//!   (`CASE-linux.iptables`). Skipped with a message without the corpus.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde_json::Value;
use virtnet_host::firewall::{FirewallMode, FirewallPlan, HostServices, apply_batch};

fn plan(mode: FirewallMode, v4: &[&str], v6: &[&str]) -> FirewallPlan {
    let mut p = FirewallPlan::new("default", "virbr0", mode);
    p.ipv4 = v4.iter().map(|s| s.parse().unwrap()).collect();
    p.ipv6 = v6.iter().map(|s| s.parse().unwrap()).collect();
    p
}

/// The plans for libvirt's cases, as the daemon would derive them from
/// `networkxml2firewalldata/CASE.xml`.
fn cases() -> Vec<(&'static str, FirewallPlan)> {
    use FirewallMode::*;
    let v6 = "2001:db8:ca2:2::1/64";
    let mut out = vec![
        ("nat-default", plan(Nat, &["192.168.122.1/24"], &[])),
        (
            "nat-many-ips",
            plan(
                Nat,
                &["192.168.122.1/24", "192.168.128.1/24", "192.168.150.1/24"],
                &[],
            ),
        ),
        ("nat-no-dhcp", plan(Nat, &["192.168.122.1/24"], &[v6])),
        ("nat-ipv6", plan(Nat, &["192.168.122.1/24"], &[v6])),
        ("route-default", plan(Route, &["192.168.122.1/24"], &[])),
        (
            "isolated",
            plan(Isolated, &["192.168.122.1/24", "192.168.128.1/24"], &[v6]),
        ),
    ];
    let mut p = plan(Nat, &["192.168.122.1/24"], &[]);
    p.services_v4 = HostServices::libvirt(true);
    out.push(("nat-tftp", p));
    let mut p = plan(Nat, &["192.168.122.1/24"], &[v6]);
    p.nat.ipv6 = true;
    out.push(("nat-ipv6-masquerade", p));
    let mut p = plan(Nat, &["192.168.122.1/24", "192.168.128.1/24"], &[v6]);
    p.nat.port_start = 500;
    p.nat.port_end = 1000;
    out.push(("nat-port-range", p));
    let mut p = plan(Nat, &["192.168.122.1/24", "192.168.128.1/24"], &[v6]);
    p.nat.port_start = 500;
    p.nat.port_end = 1000;
    p.nat.ipv6 = true;
    out.push(("nat-port-range-ipv6", p));
    let mut p = plan(Nat, &["192.168.122.1/24"], &[]);
    p.forward_dev = Some("enp0s7".into());
    out.push(("forward-dev", p));
    out
}

/// Our own cases beyond libvirt's corpus.
fn extra_cases() -> Vec<(&'static str, FirewallPlan)> {
    use FirewallMode::*;
    let mut p = plan(Nat, &["192.168.122.1/24"], &[]);
    p.nat.address_start = Some(Ipv4Addr::new(10, 0, 0, 1));
    p.nat.address_end = Some(Ipv4Addr::new(10, 0, 0, 5));
    let mut q = plan(Isolated, &[], &[]);
    q.ipv6_without_gateway = true;
    q.services_v4 = HostServices::none();
    let mut name = plan(Route, &["10.20.0.1/16"], &["fd00:1::1/64"]);
    name.network = "my net".into();
    name.bridge = "virbr7".into();
    vec![
        ("nat-address-range", p),
        ("isolated-ipv6-no-gateway", q),
        ("route-odd-name", name),
        ("open", plan(Open, &["192.168.122.1/24"], &[])),
    ]
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/firewall")
}

#[test]
fn batches_match_golden_files() {
    let bless = std::env::var_os("VIRTNET_BLESS").is_some();
    let mut failures = Vec::new();
    for (name, plan) in cases().into_iter().chain(extra_cases()) {
        let batch = apply_batch(&plan).unwrap();
        let text = serde_json::to_string_pretty(&batch).unwrap() + "\n";
        let path = data_dir().join(format!("{name}.json"));
        if bless {
            std::fs::create_dir_all(data_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == text => {}
            Ok(_) => failures.push(format!("{name}: differs from {}", path.display())),
            Err(e) => failures.push(format!("{name}: {}: {e}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:#?} (VIRTNET_BLESS=1 regenerates)"
    );
}

/// One rule in a comparable form: its table family, libvirt chain, match
/// terms (sorted) and statement.
type Canon = (String, Vec<String>, String);

/// Splits libvirt's expected-commands file into commands (arguments are
/// one per line, continued with a backslash).
fn libvirt_commands(text: &str) -> Vec<Vec<String>> {
    let mut cmds = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for line in text.lines() {
        let (arg, more) = match line.strip_suffix(" \\") {
            Some(a) => (a, true),
            None => (line, false),
        };
        cur.extend(
            arg.split_whitespace()
                .map(|w| w.trim_matches('\'').to_string()),
        );
        if !more {
            cmds.push(std::mem::take(&mut cur));
        }
    }
    cmds
}

/// libvirt's nft rules per (family, chain), in final evaluation order
/// (`insert` puts each rule first).
fn libvirt_rules(text: &str) -> BTreeMap<(String, String), Vec<Canon>> {
    let mut out: BTreeMap<(String, String), Vec<Canon>> = BTreeMap::new();
    for c in libvirt_commands(text) {
        let Some(pos) = c.iter().position(|w| w == "libvirt_network") else {
            continue;
        };
        if !c.iter().any(|w| w == "insert") {
            continue;
        }
        let family = c[pos - 1].clone();
        let chain = c[pos + 1].clone();
        let words = &c[pos + 2..];
        let mut terms = Vec::new();
        let mut i = 0;
        let mut statement = String::new();
        while i < words.len() {
            let w = words[i].as_str();
            match w {
                "ip" | "ip6" => {
                    let field = &words[i + 1];
                    if words[i + 2] == "!=" {
                        terms.push(format!("{field}!={}", words[i + 3]));
                        i += 4;
                    } else {
                        terms.push(format!("{field}=={}", words[i + 2]));
                        i += 3;
                    }
                }
                "iif" | "oif" | "iifname" | "oifname" => {
                    let key = w.trim_end_matches("name");
                    terms.push(format!("{key}=={}", words[i + 1]));
                    i += 2;
                }
                "meta" => {
                    terms.push(format!("{}=={}", words[i + 1], words[i + 2]));
                    i += 3;
                }
                "ct" => {
                    let mut states: Vec<&str> = words[i + 2].split(',').collect();
                    states.sort();
                    terms.push(format!("ct{}=={}", words[i + 1], states.join(",")));
                    i += 3;
                }
                "counter" => i += 1,
                _ => {
                    statement = words[i..].join(" ");
                    break;
                }
            }
        }
        terms.sort();
        out.entry((family.clone(), chain.clone()))
            .or_default()
            .insert(0, (family, terms, statement));
    }
    out
}

fn expr_terms(expr: &[Value], family: &mut String, terms: &mut Vec<String>) -> String {
    for e in expr {
        if let Some(m) = e.get("match") {
            let op = m["op"].as_str().unwrap();
            let left = &m["left"];
            let right = &m["right"];
            let rtext = match right {
                Value::String(s) => s.clone(),
                Value::Object(o) if o.contains_key("prefix") => {
                    format!(
                        "{}/{}",
                        o["prefix"]["addr"].as_str().unwrap(),
                        o["prefix"]["len"]
                    )
                }
                Value::Array(a) => {
                    let mut v: Vec<String> =
                        a.iter().map(|x| x.as_str().unwrap().to_string()).collect();
                    v.sort();
                    v.join(",")
                }
                other => other.to_string(),
            };
            let op = if op == "in" { "==" } else { op };
            if let Some(meta) = left.get("meta") {
                let key = meta["key"].as_str().unwrap();
                match key {
                    "nfproto" => *family = if rtext == "ipv4" { "ip" } else { "ip6" }.into(),
                    "iifname" => terms.push(format!("iif{op}{rtext}")),
                    "oifname" => terms.push(format!("oif{op}{rtext}")),
                    _ => terms.push(format!("{key}{op}{rtext}")),
                }
            } else if let Some(p) = left.get("payload") {
                *family = p["protocol"].as_str().unwrap().to_string();
                terms.push(format!("{}{op}{rtext}", p["field"].as_str().unwrap()));
            } else if let Some(ct) = left.get("ct") {
                terms.push(format!("ct{}{op}{rtext}", ct["key"].as_str().unwrap()));
            }
        } else if e.get("counter").is_some() {
        } else if e.get("accept").is_some() {
            return "accept".into();
        } else if e.get("reject").is_some() {
            return "reject".into();
        } else if e.get("return").is_some() {
            return "return".into();
        } else if let Some(m) = e.get("masquerade") {
            return match m.get("port").and_then(|p| p.get("range")) {
                Some(r) => format!("masquerade to :{}-{}", r[0], r[1]),
                None => "masquerade".into(),
            };
        }
    }
    String::new()
}

/// Our rules per (family, libvirt chain) in evaluation order, with the
/// dispatch key (bridge as input/output device) made explicit.
fn our_rules(batch: &Value, bridge: &str) -> BTreeMap<(String, String), Vec<Canon>> {
    let mut out: BTreeMap<(String, String), Vec<Canon>> = BTreeMap::new();
    for item in batch["nftables"].as_array().unwrap() {
        if let Some(rule) = item.get("add").and_then(|a| a.get("rule")) {
            let chain = rule["chain"].as_str().unwrap();
            let (lv_chain, dispatch) = if chain.ends_with("_fwo") {
                ("guest_output", format!("iif=={bridge}"))
            } else if chain.ends_with("_fwi") {
                ("guest_input", format!("oif=={bridge}"))
            } else if chain.ends_with("_nat") {
                ("guest_nat", String::new())
            } else {
                continue;
            };
            let mut family = String::new();
            let mut terms = Vec::new();
            if !dispatch.is_empty() {
                terms.push(dispatch);
            }
            let statement = expr_terms(rule["expr"].as_array().unwrap(), &mut family, &mut terms);
            terms.sort();
            out.entry((family.clone(), lv_chain.to_string()))
                .or_default()
                .push((family, terms, statement));
        }
        if let Some(el) = item.get("add").and_then(|a| a.get("element")) {
            if el["name"] == "guest_cross" {
                for e in el["elem"].as_array().unwrap() {
                    let parts = e["concat"].as_array().unwrap();
                    let family = if parts[0] == "ipv4" { "ip" } else { "ip6" };
                    let mut terms = vec![
                        format!("iif=={}", parts[1].as_str().unwrap()),
                        format!("oif=={}", parts[2].as_str().unwrap()),
                    ];
                    terms.sort();
                    out.entry((family.to_string(), "guest_cross".to_string()))
                        .or_default()
                        .push((family.to_string(), terms, "accept".into()));
                }
            }
        }
        if let Some(el) = item.get("delete").and_then(|a| a.get("element")) {
            if el["name"] == "guest_cross" {
                for e in el["elem"].as_array().unwrap() {
                    let parts = e["concat"].as_array().unwrap();
                    let family = if parts[0] == "ipv4" { "ip" } else { "ip6" };
                    if let Some(v) = out.get_mut(&(family.to_string(), "guest_cross".to_string())) {
                        v.clear();
                    }
                }
            }
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}

#[test]
fn rules_match_libvirt_nftables_backend() {
    let Some(dir) = virtnet_corpus::subdir("networkxml2firewalldata") else {
        eprintln!(
            "skipped: rules_match_libvirt_nftables_backend: libvirt corpus not found (set VIRTNET_CONFORMANCE_DIR)"
        );
        return;
    };
    let mut failures = Vec::new();
    for (name, plan) in cases() {
        let text = std::fs::read_to_string(dir.join(format!("{name}-linux.nftables"))).unwrap();
        let want = libvirt_rules(&text);
        assert!(
            want.len() >= 3,
            "{name}: too few libvirt chains parsed: {want:?}"
        );
        let got = our_rules(&apply_batch(&plan).unwrap(), &plan.bridge);
        if want != got {
            failures.push(format!("{name}:\n libvirt: {want:#?}\n virtnet: {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The comparison sees order and content: nat-default's NAT chain.
    let text = std::fs::read_to_string(dir.join("nat-default-linux.nftables")).unwrap();
    let nat = &libvirt_rules(&text)[&("ip".to_string(), "guest_nat".to_string())];
    assert_eq!(nat.len(), 5);
    assert_eq!(
        nat[0].1,
        vec!["daddr==224.0.0.0/24", "saddr==192.168.122.0/24"]
    );
    assert_eq!(nat[4].2, "masquerade");
}

/// libvirt 9.0's iptables INP/OUT accepts as (family, direction, proto, port).
fn libvirt_host_services(text: &str) -> Vec<(String, String, String, u16)> {
    let mut out = Vec::new();
    for c in libvirt_commands(text) {
        let family = if c[0] == "ip6tables" { "ip6" } else { "ip" };
        let Some(pos) = c.iter().position(|w| w == "--insert") else {
            continue;
        };
        let dir = match c[pos + 1].as_str() {
            "LIBVIRT_INP" => "inp",
            "LIBVIRT_OUT" => "out",
            _ => continue,
        };
        let arg = |k: &str| c.iter().position(|w| w == k).map(|i| c[i + 1].clone());
        out.push((
            family.to_string(),
            dir.to_string(),
            arg("--protocol").unwrap(),
            arg("--destination-port").unwrap().parse().unwrap(),
        ));
    }
    out.sort();
    out
}

fn our_host_services(batch: &Value) -> Vec<(String, String, String, u16)> {
    let mut out = Vec::new();
    for item in batch["nftables"].as_array().unwrap() {
        let Some(rule) = item.get("add").and_then(|a| a.get("rule")) else {
            continue;
        };
        let chain = rule["chain"].as_str().unwrap();
        let dir = if chain.ends_with("_inp") {
            "inp"
        } else if chain.ends_with("_out") {
            "out"
        } else {
            continue;
        };
        let mut family = "";
        let mut protos: Vec<String> = Vec::new();
        let mut ports: Vec<u16> = Vec::new();
        let list = |v: &Value| -> Vec<Value> {
            match v.get("set") {
                Some(s) => s.as_array().unwrap().clone(),
                None => vec![v.clone()],
            }
        };
        for e in rule["expr"].as_array().unwrap() {
            let Some(m) = e.get("match") else { continue };
            if m["left"]["meta"]["key"] == "nfproto" {
                family = if m["right"] == "ipv4" { "ip" } else { "ip6" };
            } else if m["left"]["meta"]["key"] == "l4proto" {
                protos = list(&m["right"])
                    .iter()
                    .map(|p| p.as_str().unwrap().into())
                    .collect();
            } else if let Some(p) = m["left"].get("payload") {
                if p["protocol"] != "th" {
                    protos = vec![p["protocol"].as_str().unwrap().into()];
                }
                ports = list(&m["right"])
                    .iter()
                    .map(|p| p.as_u64().unwrap() as u16)
                    .collect();
            }
        }
        for proto in &protos {
            for port in &ports {
                out.push((family.into(), dir.into(), proto.clone(), *port));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn host_services_match_libvirt_iptables_backend() {
    let Some(dir) = virtnet_corpus::subdir("networkxml2firewalldata") else {
        eprintln!(
            "skipped: host_services_match_libvirt_iptables_backend: libvirt corpus not found (set VIRTNET_CONFORMANCE_DIR)"
        );
        return;
    };
    let mut failures = Vec::new();
    for (name, plan) in cases() {
        let text = std::fs::read_to_string(dir.join(format!("{name}-linux.iptables"))).unwrap();
        let want = libvirt_host_services(&text);
        assert!(
            want.len() >= 8,
            "{name}: too few libvirt INP/OUT rules parsed: {want:?}"
        );
        let got = our_host_services(&apply_batch(&plan).unwrap());
        if want != got {
            failures.push(format!("{name}:\n libvirt: {want:?}\n virtnet: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
