//! libvirt's own network XML test corpus (11.3.0): every round trip must be
//! byte-identical and every must-fail case must be rejected.

mod common;

use virtnet_conf::{FormatFlags, NetworkDef, PortDef};

use virtnet_corpus::{
    NETWORKPORT as PORTS, NETWORKXML2XML as SUCCESS, NETWORKXML2XML_INACTIVE as INACTIVE,
    NETWORKXML2XML_MUST_FAIL as MUST_FAIL,
};

#[test]
fn networkxml2xml_round_trips() {
    let Some(dir) = virtnet_corpus::dir() else {
        eprintln!("{}", virtnet_corpus::MISSING);
        return;
    };
    assert_eq!(SUCCESS.len(), 43);
    let mut failures = Vec::new();
    for name in SUCCESS {
        let input =
            virtnet_corpus::read_linked(&dir.join("networkxml2xmlin").join(format!("{name}.xml")));
        let expected =
            virtnet_corpus::read_linked(&dir.join("networkxml2xmlout").join(format!("{name}.xml")));
        let (input, expected) = match (input, expected) {
            (Ok(i), Ok(e)) => (i, e),
            (i, e) => {
                failures.push(format!(
                    "{name}: cannot read case: {:?} {:?}",
                    i.err(),
                    e.err()
                ));
                continue;
            }
        };
        let flags = FormatFlags {
            inactive: INACTIVE.contains(name),
        };
        match NetworkDef::parse(&input) {
            Ok(def) => {
                let got = def.to_xml(flags);
                if got != expected {
                    failures.push(format!(
                        "{name}: output differs\n{}",
                        common::diff(&expected, &got)
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: parse failed: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn networkxml2xml_must_fail() {
    let Some(dir) = virtnet_corpus::dir() else {
        eprintln!("{}", virtnet_corpus::MISSING);
        return;
    };
    let mut failures = Vec::new();
    for (name, message) in MUST_FAIL {
        let input = match virtnet_corpus::read_linked(
            &dir.join("networkxml2xmlin").join(format!("{name}.xml")),
        ) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{name}: cannot read case: {e}"));
                continue;
            }
        };
        match NetworkDef::parse(&input) {
            Ok(_) => failures.push(format!("{name}: parsed but must fail")),
            Err(e) if e.to_string() == *message => {}
            Err(e) => failures.push(format!(
                "{name}: wrong error\n    want: {message}\n    got:  {e}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn networkport_round_trips() {
    let Some(dir) = virtnet_corpus::dir() else {
        eprintln!("{}", virtnet_corpus::MISSING);
        return;
    };
    let mut failures = Vec::new();
    for name in PORTS {
        let input = match virtnet_corpus::read_linked(
            &dir.join("virnetworkportxml2xmldata")
                .join(format!("{name}.xml")),
        ) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{name}: cannot read case: {e}"));
                continue;
            }
        };
        match PortDef::parse(&input) {
            Ok(def) => {
                let got = def.to_xml();
                if got != input {
                    failures.push(format!(
                        "{name}: output differs\n{}",
                        common::diff(&input, &got)
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: parse failed: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The dnsmasq corpus inputs are network definitions too: they must parse,
/// and formatting must be stable.
#[test]
fn networkxml2conf_inputs_parse() {
    let Some(dir) = virtnet_corpus::dir() else {
        eprintln!("{}", virtnet_corpus::MISSING);
        return;
    };
    let mut failures = Vec::new();
    let mut count = 0;
    for sub in ["networkxml2confdata", "networkxml2firewalldata"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("xml") {
                continue;
            }
            count += 1;
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_string();
            let input = match virtnet_corpus::read_linked(&p) {
                Ok(i) => i,
                Err(e) => {
                    failures.push(format!("{sub}/{name}: {e}"));
                    continue;
                }
            };
            match NetworkDef::parse(&input) {
                Ok(def) => {
                    let once = def.to_xml(FormatFlags::ACTIVE);
                    match NetworkDef::parse(&once) {
                        Ok(d2) => {
                            let twice = d2.to_xml(FormatFlags::ACTIVE);
                            if once != twice {
                                failures.push(format!(
                                    "{sub}/{name}: unstable\n{}",
                                    common::diff(&once, &twice)
                                ));
                            }
                        }
                        Err(e) => failures.push(format!("{sub}/{name}: reparse failed: {e}")),
                    }
                }
                Err(e) => failures.push(format!("{sub}/{name}: parse failed: {e}")),
            }
        }
    }
    eprintln!("checked {count} corpus inputs");
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
