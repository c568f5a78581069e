//! Our own data-driven cases under `tests/data/conf`:
//!
//! - `invalid/NAME.xml` + `NAME.err`: parsing or defining must fail with
//!   exactly that message;
//! - `roundtrip/NAME.xml` + `NAME.out` (live view) and optionally
//!   `NAME.inactive.out`: the formatted output, which must also be stable
//!   when parsed again;
//! - `define/NAME.xml` + `NAME.out`, optionally `NAME.inuse` (bridge names
//!   in use, one per line): what net-define stores (inactive view) with a
//!   deterministic random source;
//! - `port/NAME.xml` + `NAME.out`, `port-invalid/NAME.xml` + `NAME.err`.
//!
//! Set `VIRTNET_REGENERATE_OUTPUT=1` to rewrite the expected files.

mod common;

use std::path::{Path, PathBuf};

use rand::RngCore;
use virtnet_conf::{FormatFlags, NetworkDef, PortDef, defaults};

/// A fixed, simple random source so defaults are reproducible.
struct TestRng(u64);

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u64() as u8;
        }
    }
}

fn regenerate() -> bool {
    std::env::var_os("VIRTNET_REGENERATE_OUTPUT").is_some()
}

fn cases(sub: &str) -> Vec<(String, PathBuf)> {
    let dir = common::own_data_dir().join(sub);
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("xml"))
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            (name, p)
        })
        .collect();
    out.sort();
    out
}

fn sibling(path: &Path, ext: &str) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    path.with_file_name(format!("{stem}.{ext}"))
}

/// Compare with (or, when regenerating, write) an expected file.
fn check(failures: &mut Vec<String>, name: &str, path: &Path, got: &str) {
    if regenerate() {
        std::fs::write(path, got).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(want) if want == got => {}
        Ok(want) => failures.push(format!(
            "{name}: {} differs\n{}",
            path.display(),
            common::diff(&want, got)
        )),
        Err(e) => failures.push(format!("{name}: cannot read {}: {e}", path.display())),
    }
}

fn check_err(failures: &mut Vec<String>, name: &str, path: &Path, got: &str) {
    if regenerate() {
        std::fs::write(path, got).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(want) if want == got || want.strip_suffix('\n') == Some(got) => {}
        Ok(want) => failures.push(format!(
            "{name}: wrong error\n    want: {want}\n    got:  {got}"
        )),
        Err(e) => failures.push(format!("{name}: cannot read {}: {e}", path.display())),
    }
}

fn define(xml: &str, inuse: &[String]) -> Result<NetworkDef, virtnet_conf::Error> {
    let mut def = NetworkDef::parse(xml)?;
    let mut rng = TestRng(0x9e37_79b9_7f4a_7c15);
    defaults::prepare_define(&mut def, &|n| inuse.iter().any(|u| u == n), &mut rng)?;
    Ok(def)
}

fn finish(failures: Vec<String>, count: usize) {
    assert!(count > 0, "no cases found");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_definitions_are_rejected() {
    let cases = cases("invalid");
    let mut failures = Vec::new();
    for (name, path) in &cases {
        let xml = std::fs::read_to_string(path).unwrap_or_default();
        match define(&xml, &[]) {
            Ok(_) => failures.push(format!("{name}: accepted but must fail")),
            Err(e) => check_err(&mut failures, name, &sibling(path, "err"), &e.to_string()),
        }
    }
    finish(failures, cases.len());
}

#[test]
fn round_trips_format_as_expected() {
    let cases = cases("roundtrip");
    let mut failures = Vec::new();
    for (name, path) in &cases {
        let xml = std::fs::read_to_string(path).unwrap_or_default();
        let def = match NetworkDef::parse(&xml) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: parse failed: {e}"));
                continue;
            }
        };
        let active = def.to_xml(FormatFlags::ACTIVE);
        check(&mut failures, name, &sibling(path, "out"), &active);
        let inactive_path = path.with_file_name(format!("{name}.inactive.out"));
        if inactive_path.exists() {
            check(
                &mut failures,
                name,
                &inactive_path,
                &def.to_xml(FormatFlags::INACTIVE),
            );
        }
        match NetworkDef::parse(&active) {
            Ok(again) if again.to_xml(FormatFlags::ACTIVE) == active => {}
            Ok(again) => failures.push(format!(
                "{name}: not stable when parsed again\n{}",
                common::diff(&active, &again.to_xml(FormatFlags::ACTIVE))
            )),
            Err(e) => failures.push(format!("{name}: output does not parse: {e}")),
        }
    }
    finish(failures, cases.len());
}

#[test]
fn define_fills_defaults() {
    let cases = cases("define");
    let mut failures = Vec::new();
    for (name, path) in &cases {
        let xml = std::fs::read_to_string(path).unwrap_or_default();
        let inuse: Vec<String> = std::fs::read_to_string(sibling(path, "inuse"))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        match define(&xml, &inuse) {
            Ok(def) => check(
                &mut failures,
                name,
                &sibling(path, "out"),
                &def.to_xml(FormatFlags::INACTIVE),
            ),
            Err(e) => failures.push(format!("{name}: define failed: {e}")),
        }
    }
    finish(failures, cases.len());
}

#[test]
fn ports_round_trip() {
    let cases = cases("port");
    let mut failures = Vec::new();
    for (name, path) in &cases {
        let xml = std::fs::read_to_string(path).unwrap_or_default();
        match PortDef::parse(&xml) {
            Ok(p) => {
                let got = p.to_xml();
                check(&mut failures, name, &sibling(path, "out"), &got);
                match PortDef::parse(&got) {
                    Ok(again) if again == p => {}
                    Ok(_) => failures.push(format!("{name}: not stable when parsed again")),
                    Err(e) => failures.push(format!("{name}: output does not parse: {e}")),
                }
            }
            Err(e) => failures.push(format!("{name}: parse failed: {e}")),
        }
    }
    finish(failures, cases.len());
}

#[test]
fn invalid_ports_are_rejected() {
    let cases = cases("port-invalid");
    let mut failures = Vec::new();
    for (name, path) in &cases {
        let xml = std::fs::read_to_string(path).unwrap_or_default();
        match PortDef::parse(&xml) {
            Ok(_) => failures.push(format!("{name}: accepted but must fail")),
            Err(e) => check_err(&mut failures, name, &sibling(path, "err"), &e.to_string()),
        }
    }
    finish(failures, cases.len());
}
