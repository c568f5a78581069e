//! The installed dnsmasq accepts what virtnet generates:
//! `dnsmasq --test --conf-file=FILE` for every corpus case, every own case
//! and a network with 200 static hosts, with a pid-file line and a private
//! state directory. dnsmasq's syntax check reads the conf file only, so the
//! hostsfile lines are also checked as `dhcp-host=` options (the hostsfile
//! holds exactly dhcp-host values).
//!
//! This checks syntax only: nothing is started and no socket is opened.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use virtnet_conf::NetworkDef;
use virtnet_dnsmasq::{DnsmasqConfig, Options};

fn find_dnsmasq() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VIRTNET_DNSMASQ") {
        return Some(PathBuf::from(p));
    }
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn scratch_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("virtnet-dnsmasq-syntax-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// Run `dnsmasq --test --conf-file=conf` with a 20 s limit.
fn syntax_check(dnsmasq: &Path, conf: &Path) -> Result<(), String> {
    let mut child = Command::new(dnsmasq)
        .arg("--test")
        .arg(format!("--conf-file={}", conf.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", dnsmasq.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("dnsmasq --test timed out".into());
            }
            Err(e) => return Err(format!("waiting for dnsmasq: {e}")),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains("syntax check OK") {
        Ok(())
    } else {
        Err(format!("dnsmasq --test said: {}", text.trim()))
    }
}

fn check_def(dnsmasq: &Path, dir: &Path, label: &str, def: &NetworkDef) -> Result<(), String> {
    let state = dir.join(label);
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    let state_s = state.to_str().ok_or("non-UTF-8 scratch path")?;
    let opts = Options::new(state_s).with_pid_file(format!("{state_s}/{label}.pid"));
    let files = DnsmasqConfig::generate(def, &opts).map_err(|e| format!("generation: {e}"))?;
    std::fs::write(&files.conf_path, &files.conf).map_err(|e| e.to_string())?;
    std::fs::write(&files.hostsfile_path, files.hostsfile_contents()).map_err(|e| e.to_string())?;
    std::fs::write(&files.addnhosts_path, &files.addnhosts).map_err(|e| e.to_string())?;
    syntax_check(dnsmasq, Path::new(&files.conf_path)).map_err(|e| format!("conf: {e}"))?;
    if let Some(hosts) = &files.hostsfile {
        let as_opts: String = hosts.lines().map(|l| format!("dhcp-host={l}\n")).collect();
        let p = state.join("hostsfile-as-options.conf");
        std::fs::write(&p, as_opts).map_err(|e| e.to_string())?;
        syntax_check(dnsmasq, &p).map_err(|e| format!("hostsfile: {e}"))?;
    }
    Ok(())
}

fn corpus_cases() -> Vec<(String, String)> {
    let Some(dir) = virtnet_corpus::subdir("networkxml2confdata") else {
        return Vec::new();
    };
    xml_files(&dir, "corpus")
}

fn own_cases() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dnsmasq");
    xml_files(&dir, "own")
        .into_iter()
        .filter(|(label, _)| {
            let name = label.trim_start_matches("own-");
            !dir.join(format!("{name}.err")).exists()
        })
        .collect()
}

fn xml_files(dir: &Path, prefix: &str) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, String)> = rd
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "xml" {
                return None;
            }
            let stem = p.file_stem()?.to_str()?.to_string();
            Some((
                format!("{prefix}-{stem}"),
                std::fs::read_to_string(&p).ok()?,
            ))
        })
        .collect();
    v.sort();
    v
}

/// A NAT network with `n` static hosts.
fn many_hosts_xml(n: usize) -> String {
    let mut x = String::from(
        "<network><name>many</name><forward mode='nat'/><bridge name='virbr50'/>\
         <ip address='10.50.0.1' prefix='16'><dhcp>\
         <range start='10.50.1.1' end='10.50.1.254'/>",
    );
    for i in 0..n {
        x.push_str(&format!(
            "<host mac='52:54:00:50:{:02x}:{:02x}' name='vm{i}' ip='10.50.{}.{}'/>",
            i / 256,
            i % 256,
            2 + i / 250,
            1 + i % 250
        ));
    }
    x.push_str("</dhcp></ip></network>");
    x
}

#[test]
fn installed_dnsmasq_accepts_generated_files() {
    let Some(dnsmasq) = find_dnsmasq() else {
        eprintln!("skipped: dnsmasq not installed (set VIRTNET_DNSMASQ)");
        return;
    };
    let mut cases = corpus_cases();
    if cases.is_empty() {
        eprintln!("note: conformance corpus absent; checking own cases only");
    }
    cases.extend(own_cases());
    cases.push(("many-hosts".into(), many_hosts_xml(200)));
    let dir = scratch_dir();
    let mut failures = Vec::new();
    for (label, xml) in &cases {
        let mut def = match NetworkDef::parse(xml) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{label}: parse failure: {e}"));
                continue;
            }
        };
        // libvirt's own test data passes a made-up option through.
        def.dnsmasq_options.retain(|o| o != "foo=bar");
        if let Err(why) = check_def(&dnsmasq, &dir, label, &def) {
            failures.push(format!("{label}: {why}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "dnsmasq --test: {} of {} generated configurations accepted",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
