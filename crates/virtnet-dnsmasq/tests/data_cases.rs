//! virtnet's own cases in `tests/data/dnsmasq`: for each `CASE.xml`,
//! either `CASE.err` holds the expected error message, or `CASE.conf` the
//! conf file, `CASE.hostsfile` the dhcp hostsfile (absent: no hostsfile
//! content) and `CASE.addnhosts` the addnhosts file (absent: empty).
//! State directory `/var/lib/libvirt/dnsmasq`, no pid-file line.

use std::path::{Path, PathBuf};

use virtnet_conf::NetworkDef;
use virtnet_dnsmasq::{DnsmasqConfig, Options};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dnsmasq")
}

fn read_opt(dir: &Path, name: &str, ext: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).ok()
}

fn run_case(dir: &Path, name: &str) -> Result<(), String> {
    let xml = read_opt(dir, name, "xml").ok_or("cannot read the xml")?;
    let def = NetworkDef::parse(&xml).map_err(|e| format!("parse failure: {e}"))?;
    let result = DnsmasqConfig::generate(&def, &Options::new("/var/lib/libvirt/dnsmasq"));
    if let Some(want_err) = read_opt(dir, name, "err") {
        return match result {
            Ok(_) => Err(format!(
                "expected error `{}`, got files",
                want_err.trim_end()
            )),
            Err(e) if e.to_string() == want_err.trim_end() => Ok(()),
            Err(e) => Err(format!(
                "error differs\n--- expected\n{}\n--- generated\n{e}",
                want_err.trim_end()
            )),
        };
    }
    let files = result.map_err(|e| format!("generation failed: {e}"))?;
    let mut problems = Vec::new();
    let want_conf = read_opt(dir, name, "conf").ok_or("no .conf and no .err")?;
    if files.conf != want_conf {
        problems.push(format!(
            "conf differs\n--- expected\n{want_conf}--- generated\n{}",
            files.conf
        ));
    }
    let want_hosts = read_opt(dir, name, "hostsfile");
    if want_hosts != files.hostsfile {
        problems.push(format!(
            "hostsfile differs\n--- expected\n{}--- generated\n{}",
            want_hosts.as_deref().unwrap_or("(no file)\n"),
            files.hostsfile.as_deref().unwrap_or("(no content)\n")
        ));
    }
    let want_addn = read_opt(dir, name, "addnhosts").unwrap_or_default();
    if want_addn != files.addnhosts {
        problems.push(format!(
            "addnhosts differs\n--- expected\n{want_addn}--- generated\n{}",
            files.addnhosts
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn dnsmasq_data_cases() {
    let dir = data_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/data/dnsmasq exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "xml").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no cases in {}", dir.display());
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| run_case(&dir, n).err().map(|why| format!("== {n}: {why}")))
        .collect();
    eprintln!(
        "dnsmasq data cases: {} of {} match",
        names.len() - failures.len(),
        names.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
