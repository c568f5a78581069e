//! libvirt's own networkxml2confdata cases: network XML → dnsmasq conf file
//! and dhcp hostsfile, compared byte for byte.

use std::path::Path;

use virtnet_conf::NetworkDef;
use virtnet_dnsmasq::{DnsmasqConfig, Options};

use virtnet_corpus::NETWORKXML2CONF as CASES;

fn run_case(dir: &Path, name: &str) -> Result<(), String> {
    let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{name}.{ext}")));
    let xml = read("xml").map_err(|e| format!("cannot read {name}.xml: {e}"))?;
    let want_conf = read("conf").map_err(|e| format!("cannot read {name}.conf: {e}"))?;
    let want_hosts = read("hostsfile").ok();
    let def = NetworkDef::parse(&xml).map_err(|e| format!("parse failure: {e}"))?;
    let files = DnsmasqConfig::generate(&def, &Options::new("/var/lib/libvirt/dnsmasq"))
        .map_err(|e| format!("generation failed: {e}"))?;
    let mut problems = Vec::new();
    if files.conf != want_conf {
        problems.push(format!(
            "conf differs\n--- expected\n{want_conf}--- generated\n{}",
            files.conf
        ));
    }
    match (&want_hosts, &files.hostsfile) {
        (Some(w), Some(g)) if w == g => {}
        (None, None) => {}
        (w, g) => problems.push(format!(
            "hostsfile differs\n--- expected\n{}--- generated\n{}",
            w.as_deref().unwrap_or("(no file)\n"),
            g.as_deref().unwrap_or("(no content)\n")
        )),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn networkxml2confdata() {
    let Some(dir) = virtnet_corpus::subdir("networkxml2confdata") else {
        eprintln!("{}", virtnet_corpus::MISSING);
        return;
    };
    let mut failures = Vec::new();
    for name in CASES {
        if let Err(why) = run_case(&dir, name) {
            failures.push(format!("== {name}: {why}"));
        }
    }
    eprintln!(
        "networkxml2confdata: {} of {} cases match",
        CASES.len() - failures.len(),
        CASES.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
