//! Builds the nftables JSON batches (pure: no I/O). See the module docs of
//! [`crate::firewall`] for the ruleset design.

use serde_json::{Value, json};

use super::{FirewallError, FirewallMode, FirewallPlan, HostServices};
use crate::types::{Family, IpPrefix};

/// The table's family.
pub const TABLE_FAMILY: &str = "inet";
/// The table's name.
pub const TABLE: &str = "virtnet";
/// The shared base chains.
pub const BASE_CHAINS: [&str; 3] = ["forward", "input", "output"];

const SET_CROSS: &str = "guest_cross";
const MAP_GUEST_INPUT: &str = "guest_input";
const MAP_GUEST_OUTPUT: &str = "guest_output";
const MAP_TO_HOST: &str = "guest_to_host";
const MAP_FROM_HOST: &str = "host_to_guest";
const MAPS: [&str; 4] = [
    MAP_GUEST_INPUT,
    MAP_GUEST_OUTPUT,
    MAP_TO_HOST,
    MAP_FROM_HOST,
];

const CHAIN_PREFIX: &str = "net_";
/// Per-network chain suffixes: from guests (FWO), to guests (FWI), guest to
/// host (INP), host to guest (OUT), NAT (PRT).
const FWO: &str = "fwo";
const FWI: &str = "fwi";
const INP: &str = "inp";
const OUT: &str = "out";
const NAT: &str = "nat";
const SUFFIXES: [&str; 5] = [FWO, FWI, INP, OUT, NAT];
/// `NFT_CHAIN_MAXNAMELEN` less the terminating NUL.
const MAX_CHAIN_NAME: usize = 255;

/// Name of one of a network's chains: `net_NAME_SUFFIX`, with bytes other
/// than ASCII letters, digits, `_`, `-` and `.` written as `%XX`.
pub fn chain_name(network: &str, suffix: &str) -> Result<String, FirewallError> {
    let mut name = String::from(CHAIN_PREFIX);
    for b in network.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push('_');
    name.push_str(suffix);
    if network.is_empty() || name.len() > MAX_CHAIN_NAME {
        return Err(FirewallError::Plan {
            bridge: String::new(),
            detail: format!("network name '{network}' cannot name an nftables chain"),
        });
    }
    Ok(name)
}

/// The network a chain belongs to, if it is one of ours.
pub fn network_of_chain(chain: &str) -> Option<String> {
    let rest = chain.strip_prefix(CHAIN_PREFIX)?;
    let (escaped, suffix) = rest.rsplit_once('_')?;
    if !SUFFIXES.contains(&suffix) || escaped.is_empty() {
        return None;
    }
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn cmd(verb: &str, object: &str, body: Value) -> Value {
    json!({ verb: { object: body } })
}

fn table_obj() -> Value {
    json!({"family": TABLE_FAMILY, "name": TABLE})
}

fn chain_obj(name: &str) -> Value {
    json!({"family": TABLE_FAMILY, "table": TABLE, "name": name})
}

fn base_chain_obj(name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({"family": TABLE_FAMILY, "table": TABLE, "name": name,
           "type": kind, "hook": hook, "prio": prio, "policy": "accept"})
}

fn nat_chain_obj(name: &str) -> Value {
    base_chain_obj(name, "nat", "postrouting", 100)
}

fn rule(chain: &str, expr: Vec<Value>) -> Value {
    cmd(
        "add",
        "rule",
        json!({"family": TABLE_FAMILY, "table": TABLE, "chain": chain, "expr": expr}),
    )
}

fn set_obj(name: &str) -> Value {
    json!({"family": TABLE_FAMILY, "table": TABLE, "name": name,
           "type": ["nf_proto", "ifname", "ifname"]})
}

fn map_obj(name: &str) -> Value {
    json!({"family": TABLE_FAMILY, "table": TABLE, "name": name,
           "type": "ifname", "map": "verdict"})
}

fn elements(set: &str, elem: Vec<Value>) -> Value {
    json!({"family": TABLE_FAMILY, "table": TABLE, "name": set, "elem": elem})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn matches(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn proto(f: Family) -> &'static str {
    match f {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

fn nfproto(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

fn addr_match(f: Family, field: &str, op: &str, p: &IpPrefix) -> Value {
    let net = p.network();
    matches(
        op,
        json!({"payload": {"protocol": proto(f), "field": field}}),
        json!({"prefix": {"addr": net.addr().to_string(), "len": net.prefix()}}),
    )
}

fn literal_prefix(f: Family, field: &str, addr: &str, len: u8) -> Value {
    matches(
        "==",
        json!({"payload": {"protocol": proto(f), "field": field}}),
        json!({"prefix": {"addr": addr, "len": len}}),
    )
}

fn counter() -> Value {
    json!({"counter": null})
}

fn verdict(v: &str) -> Value {
    json!({ v: null })
}

fn one_or_set(values: Vec<Value>) -> Value {
    if values.len() == 1 {
        values.into_iter().next().unwrap_or(Value::Null)
    } else {
        json!({"set": values})
    }
}

/// The rules of one network, chain by chain, in evaluation order.
#[derive(Debug, Default)]
struct NetworkRules {
    fwo: Vec<Vec<Value>>,
    fwi: Vec<Vec<Value>>,
    inp: Vec<Vec<Value>>,
    out: Vec<Vec<Value>>,
    nat: Vec<Vec<Value>>,
    cross: Vec<Family>,
}

/// Whether the network gets IPv6 catch-all rules (libvirt: it has IPv6
/// addresses or `ipv6='yes'`).
fn ipv6_enabled(plan: &FirewallPlan) -> bool {
    !plan.ipv6.is_empty() || plan.ipv6_without_gateway
}

fn validate(plan: &FirewallPlan) -> Result<(), FirewallError> {
    let bad = |detail: String| FirewallError::Plan {
        bridge: plan.bridge.clone(),
        detail,
    };
    if crate::netlink::validate_ifname(&plan.bridge).is_err() {
        return Err(bad(format!("invalid bridge name '{}'", plan.bridge)));
    }
    if let Some(dev) = &plan.forward_dev {
        if crate::netlink::validate_ifname(dev).is_err() {
            return Err(bad(format!("invalid forward device '{dev}'")));
        }
    }
    if let Some(p) = plan.ipv4.iter().find(|p| p.family() != Family::V4) {
        return Err(bad(format!("'{p}' listed as an IPv4 address")));
    }
    if let Some(p) = plan.ipv6.iter().find(|p| p.family() != Family::V6) {
        return Err(bad(format!("'{p}' listed as an IPv6 address")));
    }
    Ok(())
}

fn port_range(plan: &FirewallPlan) -> Result<(u16, u16), FirewallError> {
    let (start, end) = (plan.nat.port_start, plan.nat.port_end);
    if start == 0 && end == 0 {
        return Ok((1024, 65535));
    }
    if start < end {
        Ok((start, end))
    } else {
        Err(FirewallError::PortRange { start, end })
    }
}

/// The NAT statement: SNAT to the configured IPv4 address (range), else
/// masquerade; tcp/udp rules carry the source port range.
fn nat_statement(plan: &FirewallPlan, f: Family, ports: Option<(u16, u16)>) -> Value {
    let port = ports.map(|(a, b)| json!({"range": [a, b]}));
    match (f, plan.nat.address_start) {
        (Family::V4, Some(start)) => {
            let addr = match plan.nat.address_end {
                Some(end) if end != start => json!({"range": [start.to_string(), end.to_string()]}),
                _ => json!(start.to_string()),
            };
            let mut body = json!({"family": "ip", "addr": addr});
            if let Some(p) = port {
                body["port"] = p;
            }
            json!({ "snat": body })
        }
        _ => match port {
            Some(p) => json!({"masquerade": {"port": p}}),
            None => json!({"masquerade": null}),
        },
    }
}

fn oifname_dev(plan: &FirewallPlan) -> Option<Value> {
    plan.forward_dev
        .as_ref()
        .map(|d| matches("==", meta("oifname"), json!(d)))
}

fn iifname_dev(plan: &FirewallPlan) -> Option<Value> {
    plan.forward_dev
        .as_ref()
        .map(|d| matches("==", meta("iifname"), json!(d)))
}

fn masquerade_rules(
    plan: &FirewallPlan,
    f: Family,
    p: &IpPrefix,
    rules: &mut NetworkRules,
) -> Result<(), FirewallError> {
    // Forward out of the bridge, and back in for established connections.
    let mut out = vec![addr_match(f, "saddr", "==", p)];
    out.extend(oifname_dev(plan));
    out.extend([counter(), verdict("accept")]);
    rules.fwo.push(out);

    let mut inr: Vec<Value> = iifname_dev(plan).into_iter().collect();
    inr.push(addr_match(f, "daddr", "==", p));
    inr.push(matches(
        "in",
        json!({"ct": {"key": "state"}}),
        json!(["established", "related"]),
    ));
    inr.extend([counter(), verdict("accept")]);
    rules.fwi.push(inr);

    // Masquerading, in libvirt's order: local multicast and broadcast are
    // left alone, tcp/udp get a source port range, then everything else.
    let ports = port_range(plan)?;
    let dont = |dest: Value| -> Vec<Value> {
        let mut r: Vec<Value> = oifname_dev(plan).into_iter().collect();
        r.extend([
            addr_match(f, "saddr", "==", p),
            dest,
            counter(),
            verdict("return"),
        ]);
        r
    };
    match f {
        Family::V4 => {
            rules
                .nat
                .push(dont(literal_prefix(f, "daddr", "224.0.0.0", 24)));
            rules
                .nat
                .push(dont(literal_prefix(f, "daddr", "255.255.255.255", 32)));
        }
        Family::V6 => rules
            .nat
            .push(dont(literal_prefix(f, "daddr", "ff02::", 16))),
    }
    for l4 in [Some("tcp"), Some("udp"), None] {
        let mut r = Vec::new();
        if let Some(l4) = l4 {
            r.push(matches("==", meta("l4proto"), json!(l4)));
        }
        r.push(addr_match(f, "saddr", "==", p));
        r.push(addr_match(f, "daddr", "!=", p));
        r.extend(oifname_dev(plan));
        r.push(counter());
        r.push(nat_statement(plan, f, l4.map(|_| ports)));
        rules.nat.push(r);
    }
    Ok(())
}

fn routing_rules(plan: &FirewallPlan, f: Family, p: &IpPrefix, rules: &mut NetworkRules) {
    let mut out = vec![addr_match(f, "saddr", "==", p)];
    out.extend(oifname_dev(plan));
    out.extend([counter(), verdict("accept")]);
    rules.fwo.push(out);

    let mut inr = vec![addr_match(f, "daddr", "==", p)];
    inr.extend(iifname_dev(plan));
    inr.extend([counter(), verdict("accept")]);
    rules.fwi.push(inr);
}

/// Accept rules for host services: `dports` over tcp and udp, `udp_only`
/// over udp.
fn service_rule(f: Family, both: &[u16], udp_only: &[u16]) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    if !both.is_empty() {
        out.push(vec![
            matches("==", meta("nfproto"), json!(nfproto(f))),
            matches("==", meta("l4proto"), json!({"set": ["tcp", "udp"]})),
            matches(
                "==",
                json!({"payload": {"protocol": "th", "field": "dport"}}),
                one_or_set(both.iter().map(|p| json!(p)).collect()),
            ),
            counter(),
            verdict("accept"),
        ]);
    }
    if !udp_only.is_empty() {
        out.push(vec![
            matches("==", meta("nfproto"), json!(nfproto(f))),
            matches(
                "==",
                json!({"payload": {"protocol": "udp", "field": "dport"}}),
                one_or_set(udp_only.iter().map(|p| json!(p)).collect()),
            ),
            counter(),
            verdict("accept"),
        ]);
    }
    out
}

fn host_service_rules(plan: &FirewallPlan, rules: &mut NetworkRules) {
    let v4: HostServices = plan.services_v4;
    let mut in_both = Vec::new();
    let mut out_both = Vec::new();
    if v4.dhcp {
        in_both.push(67);
        out_both.push(68);
    }
    if v4.dns {
        in_both.push(53);
        out_both.push(53);
    }
    let udp: &[u16] = if v4.tftp { &[69] } else { &[] };
    rules.inp.extend(service_rule(Family::V4, &in_both, udp));
    rules.out.extend(service_rule(Family::V4, &out_both, udp));

    if !plan.ipv6.is_empty() {
        let v6 = plan.services_v6;
        let dns: &[u16] = if v6.dns { &[53] } else { &[] };
        rules.inp.extend(service_rule(
            Family::V6,
            dns,
            if v6.dhcp { &[547] } else { &[] },
        ));
        rules.out.extend(service_rule(
            Family::V6,
            dns,
            if v6.dhcp { &[546] } else { &[] },
        ));
    }
}

fn network_rules(plan: &FirewallPlan) -> Result<NetworkRules, FirewallError> {
    let mut rules = NetworkRules::default();
    if plan.mode == FirewallMode::Open {
        return Ok(rules);
    }
    // libvirt inserts each address's rules above the previous ones, so the
    // last address defined is evaluated first.
    for p in plan.ipv4.iter().rev() {
        match plan.mode {
            FirewallMode::Nat => masquerade_rules(plan, Family::V4, p, &mut rules)?,
            FirewallMode::Route => routing_rules(plan, Family::V4, p, &mut rules),
            FirewallMode::Isolated | FirewallMode::Open => {}
        }
    }
    for p in plan.ipv6.iter().rev() {
        match plan.mode {
            FirewallMode::Nat if plan.nat.ipv6 => {
                masquerade_rules(plan, Family::V6, p, &mut rules)?
            }
            FirewallMode::Nat | FirewallMode::Route => {
                routing_rules(plan, Family::V6, p, &mut rules)
            }
            FirewallMode::Isolated | FirewallMode::Open => {}
        }
    }
    // Catch-alls below the per-address rules: nothing else is forwarded to
    // or from the bridge; guests of the bridge may talk to each other.
    let mut families = vec![Family::V4];
    if ipv6_enabled(plan) {
        families.push(Family::V6);
    }
    for f in &families {
        let catch_all = vec![
            matches("==", meta("nfproto"), json!(nfproto(*f))),
            counter(),
            verdict("reject"),
        ];
        rules.fwo.push(catch_all.clone());
        rules.fwi.push(catch_all);
    }
    rules.cross = families;
    host_service_rules(plan, &mut rules);
    Ok(rules)
}

/// Commands that declare the shared skeleton; all idempotent (`add`), the
/// dispatch rules re-created in the same transaction.
fn skeleton(out: &mut Vec<Value>) {
    out.push(cmd("add", "table", table_obj()));
    out.push(cmd("add", "set", set_obj(SET_CROSS)));
    for m in MAPS {
        out.push(cmd("add", "map", map_obj(m)));
    }
    out.push(cmd(
        "add",
        "chain",
        base_chain_obj("forward", "filter", "forward", 0),
    ));
    out.push(cmd(
        "add",
        "chain",
        base_chain_obj("input", "filter", "input", 0),
    ));
    out.push(cmd(
        "add",
        "chain",
        base_chain_obj("output", "filter", "output", 0),
    ));
    out.push(cmd("flush", "chain", chain_obj("forward")));
    out.push(rule(
        "forward",
        vec![
            matches(
                "==",
                json!({"concat": [meta("nfproto"), meta("iifname"), meta("oifname")]}),
                json!(format!("@{SET_CROSS}")),
            ),
            verdict("accept"),
        ],
    ));
    out.push(rule(
        "forward",
        vec![json!({"vmap": {"key": meta("oifname"), "data": format!("@{MAP_GUEST_INPUT}")}})],
    ));
    out.push(rule(
        "forward",
        vec![json!({"vmap": {"key": meta("iifname"), "data": format!("@{MAP_GUEST_OUTPUT}")}})],
    ));
    out.push(cmd("flush", "chain", chain_obj("input")));
    out.push(rule(
        "input",
        vec![json!({"vmap": {"key": meta("iifname"), "data": format!("@{MAP_TO_HOST}")}})],
    ));
    out.push(cmd("flush", "chain", chain_obj("output")));
    out.push(rule(
        "output",
        vec![json!({"vmap": {"key": meta("oifname"), "data": format!("@{MAP_FROM_HOST}")}})],
    ));
}

fn jump(target: &str) -> Value {
    json!({"jump": {"target": target}})
}

/// The map entries a network's bridge has: map name and chain suffix.
const DISPATCH: [(&str, &str); 4] = [
    (MAP_GUEST_OUTPUT, FWO),
    (MAP_GUEST_INPUT, FWI),
    (MAP_TO_HOST, INP),
    (MAP_FROM_HOST, OUT),
];

fn cross_elem(f: Family, bridge: &str) -> Value {
    json!({"concat": [nfproto(f), bridge, bridge]})
}

/// The batch that installs one network's rules (`{"nftables": [...]}`).
/// Open mode yields an empty batch.
pub fn apply_batch(plan: &FirewallPlan) -> Result<Value, FirewallError> {
    validate(plan)?;
    let rules = network_rules(plan)?;
    if plan.mode == FirewallMode::Open {
        return Ok(json!({"nftables": []}));
    }
    let name = |suffix: &str| {
        chain_name(&plan.network, suffix).map_err(|_| FirewallError::Plan {
            bridge: plan.bridge.clone(),
            detail: format!(
                "network name '{}' cannot name an nftables chain",
                plan.network
            ),
        })
    };
    let mut out = Vec::new();
    skeleton(&mut out);
    for (suffix, chain_rules) in [
        (FWO, &rules.fwo),
        (FWI, &rules.fwi),
        (INP, &rules.inp),
        (OUT, &rules.out),
    ] {
        let chain = name(suffix)?;
        out.push(cmd("add", "chain", chain_obj(&chain)));
        out.push(cmd("flush", "chain", chain_obj(&chain)));
        for r in chain_rules {
            out.push(rule(&chain, r.clone()));
        }
    }
    let nat = name(NAT)?;
    out.push(cmd("add", "chain", nat_chain_obj(&nat)));
    if rules.nat.is_empty() {
        out.push(cmd("delete", "chain", chain_obj(&nat)));
    } else {
        out.push(cmd("flush", "chain", chain_obj(&nat)));
        for r in &rules.nat {
            out.push(rule(&nat, r.clone()));
        }
    }
    // A family no longer crossing (ipv6 switched off) must not stay in the set.
    for f in [Family::V4, Family::V6] {
        let elem = elements(SET_CROSS, vec![cross_elem(f, &plan.bridge)]);
        out.push(cmd("add", "element", elem.clone()));
        if !rules.cross.contains(&f) {
            out.push(cmd("delete", "element", elem));
        }
    }
    for (map, suffix) in DISPATCH {
        let chain = name(suffix)?;
        out.push(cmd(
            "add",
            "element",
            elements(map, vec![json!([plan.bridge, jump(&chain)])]),
        ));
    }
    Ok(json!({ "nftables": out }))
}

/// The batch that removes one network's rules: its elements, then its
/// chains. Each object is `add`ed first so the batch succeeds whether or not
/// it is (still) there.
pub fn removal_batch(network: &str, bridge: &str) -> Result<Value, FirewallError> {
    crate::netlink::validate_ifname(bridge).map_err(|_| FirewallError::Plan {
        bridge: bridge.to_string(),
        detail: format!("invalid bridge name '{bridge}'"),
    })?;
    let mut out = vec![cmd("add", "table", table_obj())];
    out.push(cmd("add", "set", set_obj(SET_CROSS)));
    for m in MAPS {
        out.push(cmd("add", "map", map_obj(m)));
    }
    let mut chains = Vec::new();
    for (_, suffix) in DISPATCH {
        let chain = chain_name(network, suffix)?;
        out.push(cmd("add", "chain", chain_obj(&chain)));
        chains.push(chain);
    }
    let cross = elements(
        SET_CROSS,
        vec![
            cross_elem(Family::V4, bridge),
            cross_elem(Family::V6, bridge),
        ],
    );
    out.push(cmd("add", "element", cross.clone()));
    for ((map, _), chain) in DISPATCH.iter().zip(&chains) {
        out.push(cmd(
            "add",
            "element",
            elements(map, vec![json!([bridge, jump(chain)])]),
        ));
    }
    out.push(cmd("delete", "element", cross));
    for (map, _) in DISPATCH {
        out.push(cmd("delete", "element", elements(map, vec![json!(bridge)])));
    }
    for chain in &chains {
        out.push(cmd("delete", "chain", chain_obj(chain)));
    }
    let nat = chain_name(network, NAT)?;
    out.push(cmd("add", "chain", nat_chain_obj(&nat)));
    out.push(cmd("delete", "chain", chain_obj(&nat)));
    Ok(json!({ "nftables": out }))
}

/// What `nft -j list table inet virtnet` shows, reduced to what removal
/// and re-adoption need.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Listing {
    /// All chain names.
    pub chains: Vec<String>,
    /// (set or map name, element key as nft prints it, jump/goto target).
    pub elements: Vec<(String, Value, Option<String>)>,
}

/// The chain names of `table` in `nft -j list chains …` output.
pub(crate) fn parse_chains(text: &str, table: &str) -> Result<Listing, FirewallError> {
    let v: Value = serde_json::from_str(text).map_err(|e| FirewallError::Parse(e.to_string()))?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| FirewallError::Parse("no \"nftables\" array".to_string()))?;
    let chains = items
        .iter()
        .filter_map(|i| i.get("chain"))
        .filter(|c| c.get("table").and_then(Value::as_str) == Some(table))
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    Ok(Listing {
        chains,
        elements: Vec::new(),
    })
}

/// Parses `nft -j list table …` output.
pub(crate) fn parse_listing(text: &str) -> Result<Listing, FirewallError> {
    let v: Value = serde_json::from_str(text).map_err(|e| FirewallError::Parse(e.to_string()))?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| FirewallError::Parse("no \"nftables\" array".to_string()))?;
    let mut listing = Listing::default();
    for item in items {
        if let Some(chain) = item.get("chain") {
            if let Some(name) = chain.get("name").and_then(Value::as_str) {
                listing.chains.push(name.to_string());
            }
        }
        let set = item.get("set").or_else(|| item.get("map"));
        let Some(set) = set else { continue };
        let Some(name) = set.get("name").and_then(Value::as_str) else {
            continue;
        };
        for elem in set
            .get("elem")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // Map elements are [key, verdict]; set elements are the key.
            let (key, target) = match elem.as_array() {
                Some(pair) if pair.len() == 2 => {
                    let target = ["jump", "goto"].iter().find_map(|k| {
                        pair[1]
                            .get(k)
                            .and_then(|t| t.get("target"))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    });
                    (pair[0].clone(), target)
                }
                _ => (elem.clone(), None),
            };
            listing.elements.push((name.to_string(), key, target));
        }
    }
    Ok(listing)
}

/// The batch that removes exactly what refers to `network`'s chains, as
/// found in a listing, plus cross-set entries of `bridge`.
pub(crate) fn removal_from_listing(
    listing: &Listing,
    network: &str,
    bridge: &str,
) -> Option<Value> {
    let ours = |chain: &str| network_of_chain(chain).as_deref() == Some(network);
    let mut out = Vec::new();
    for (set, key, target) in &listing.elements {
        let doomed = match target {
            Some(t) => ours(t),
            None => {
                set == SET_CROSS
                    && key
                        .get("concat")
                        .and_then(Value::as_array)
                        .is_some_and(|parts| parts.iter().skip(1).all(|p| p == bridge))
            }
        };
        if doomed {
            out.push(cmd("delete", "element", elements(set, vec![key.clone()])));
        }
    }
    for chain in listing.chains.iter().filter(|c| ours(c)) {
        out.push(cmd("delete", "chain", chain_obj(chain)));
    }
    if out.is_empty() {
        None
    } else {
        Some(json!({ "nftables": out }))
    }
}

/// Networks that have chains in a listing, each once, sorted.
pub(crate) fn networks_in(listing: &Listing) -> Vec<String> {
    let mut names: Vec<String> = listing
        .chains
        .iter()
        .filter_map(|c| network_of_chain(c))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_round_trip() {
        for n in ["default", "my net", "a_fwo", "x%y", "naïve", "net-1.2"] {
            let c = chain_name(n, FWI).unwrap();
            assert!(c.is_ascii(), "{c}");
            assert_eq!(network_of_chain(&c).as_deref(), Some(n), "{c}");
        }
        assert_eq!(chain_name("default", FWO).unwrap(), "net_default_fwo");
        assert_eq!(chain_name("my net", NAT).unwrap(), "net_my%20net_nat");
        assert_eq!(network_of_chain("forward"), None);
        assert_eq!(network_of_chain("net_x_bogus"), None);
        assert!(chain_name("", FWO).is_err());
        assert!(chain_name(&"n".repeat(300), FWO).is_err());
    }

    #[test]
    fn port_range_is_checked_like_libvirt() {
        let mut plan = FirewallPlan::new("default", "virbr0", FirewallMode::Nat);
        plan.ipv4.push("192.168.122.1/24".parse().unwrap());
        plan.nat.port_start = 1000;
        plan.nat.port_end = 1000;
        let err = apply_batch(&plan).unwrap_err();
        assert_eq!(err.to_string(), "Invalid port range '1000-1000'.");
        plan.mode = FirewallMode::Route;
        assert!(apply_batch(&plan).is_ok(), "ports only matter for NAT");
    }

    #[test]
    fn wrong_family_is_refused() {
        let mut plan = FirewallPlan::new("default", "virbr0", FirewallMode::Route);
        plan.ipv4.push("2001:db8::1/64".parse().unwrap());
        let err = apply_batch(&plan).unwrap_err().to_string();
        assert!(
            err.contains("virbr0") && err.contains("2001:db8::1/64"),
            "{err}"
        );
    }

    #[test]
    fn open_mode_has_no_rules() {
        let mut plan = FirewallPlan::new("open", "virbr9", FirewallMode::Open);
        plan.ipv4.push("10.0.0.1/24".parse().unwrap());
        assert_eq!(apply_batch(&plan).unwrap(), json!({"nftables": []}));
    }

    #[test]
    fn listing_removal_targets_only_the_network() {
        let text = r#"{"nftables": [{"metainfo": {}},
          {"table": {"family": "inet", "name": "virtnet"}},
          {"set": {"name": "guest_cross", "elem": [{"concat": ["ipv4", "virbr0", "virbr0"]},
                                                   {"concat": ["ipv4", "virbr1", "virbr1"]}]}},
          {"map": {"name": "guest_input", "elem": [["virbr0", {"jump": {"target": "net_default_fwi"}}],
                                                   ["old0", {"jump": {"target": "net_default_fwi"}}],
                                                   ["virbr1", {"jump": {"target": "net_other_fwi"}}]]}},
          {"chain": {"name": "forward"}},
          {"chain": {"name": "net_default_fwi"}},
          {"chain": {"name": "net_default_nat"}},
          {"chain": {"name": "net_other_fwi"}}]}"#;
        let listing = parse_listing(text).unwrap();
        assert_eq!(networks_in(&listing), vec!["default", "other"]);
        let batch = removal_from_listing(&listing, "default", "virbr0").unwrap();
        let s = batch.to_string();
        assert!(s.contains("old0") && s.contains("net_default_nat"), "{s}");
        assert!(!s.contains("virbr1") && !s.contains("net_other"), "{s}");
        assert!(removal_from_listing(&listing, "absent", "virbr7").is_none());
    }
}
