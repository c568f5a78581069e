//! `net-update` end to end, against libvirt's own results: every case of
//! `tests/data/scenarios/live/update/` (NAME.steps) is a sequence of virsh
//! commands (defining, starting and updating networks, dumping their live
//! and persistent XML, reading the files dnsmasq is given). NAME.out is what
//! libvirt's network driver answered to the same steps (written by
//! `generate.sh` there); virtnetd, driven once by Debian's virsh and once by
//! virtnet's CLI, must answer byte for byte the same.
//!
//! Each case runs on a daemon of its own, in a host namespace of its own.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use scenario_common::{Client, Host, data, require_all, words};
use virtnet_tests::or_skip;

fn dir() -> PathBuf {
    data("live/update")
}

/// A stream in the transcript format of `generate.sh`.
fn emit(out: &mut String, prefix: char, text: &str) {
    if text.is_empty() {
        return;
    }
    let (body, newline) = match text.strip_suffix('\n') {
        Some(b) => (b, true),
        None => (text, false),
    };
    for line in body.split('\n') {
        let _ = writeln!(out, "{prefix} {line}");
    }
    if !newline {
        let _ = writeln!(out, "{prefix} \\ no newline");
    }
}

/// Runs the steps of `case` against `host`'s daemon with `client` and
/// returns the transcript.
fn transcript(host: &Host, client: Client, case: &str) -> String {
    let steps = std::fs::read_to_string(dir().join(format!("{case}.steps"))).unwrap();
    let daemon = &host.daemon;
    let state = daemon.state_dir().display().to_string();
    let run = daemon.run_dir().display().to_string();
    let mut out = String::new();
    for line in steps.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let _ = writeln!(out, "$ {line}");
        let (stdout, stderr, code) = if let Some(path) = line.strip_prefix("@file ") {
            match std::fs::read_to_string(daemon.state_dir().join(path)) {
                Ok(text) => (
                    text.replace(&state, "@STATE@").replace(&run, "@RUN@"),
                    String::new(),
                    0,
                ),
                Err(_) => (String::new(), "no such file\n".to_string(), 1),
            }
        } else {
            let args = words(line);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = client.run_at(&daemon.uri(), &args, Some(&dir()));
            let code = o.code().unwrap_or(-1);
            (o.stdout, o.stderr, code)
        };
        emit(&mut out, '|', &stdout);
        emit(&mut out, '!', &stderr);
        let _ = writeln!(out, "= {code}");
    }
    out
}

/// The first step whose block differs, both versions of it.
fn first_difference(expected: &str, actual: &str) -> String {
    let blocks = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for l in t.lines() {
            if l.starts_with("$ ") || v.is_empty() {
                v.push(String::new());
            }
            let last = v.last_mut().unwrap();
            last.push_str(l);
            last.push('\n');
        }
        v
    };
    let (e, a) = (blocks(expected), blocks(actual));
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i), a.get(i));
        if x != y {
            return format!(
                "step {}:\n--- libvirt\n{}--- virtnetd\n{}",
                i + 1,
                x.map_or("(none)\n", String::as_str),
                y.map_or("(none)\n", String::as_str)
            );
        }
    }
    String::new()
}

fn check(case: &str, client: Client) {
    or_skip!(require_all(Some(client)));
    let expected_path = dir().join(format!("{case}.out"));
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    let host = or_skip!(Host::start(&[]));
    let actual = transcript(&host, client, case);
    if actual != expected {
        let keep = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("live-update-{case}-{client:?}.out"));
        let _ = std::fs::write(&keep, &actual);
        panic!(
            "{client:?}: transcript of {case} differs from {} (whole transcript in {}):\n{}",
            expected_path.display(),
            keep.display(),
            first_difference(&expected, &actual)
        );
    }
}

macro_rules! cases {
    ($($test:ident: $case:literal,)*) => {
        mod virsh {
            use super::*;
            $( #[test] fn $test() { check($case, Client::Virsh); } )*
        }
        mod virtnet {
            use super::*;
            $( #[test] fn $test() { check($case, Client::Virtnet); } )*
        }
    };
}

cases! {
    dhcp_host: "dhcp-host",
    dhcp_range: "dhcp-range",
    forward_interface: "forward-interface",
    portgroup: "portgroup",
    dns_host: "dns-host",
    dns_txt: "dns-txt",
    dns_srv: "dns-srv",
    dns_modify: "dns-modify",
    refused: "refused",
}

/// Every case in the data directory is run above, and every case has its
/// expected transcript.
#[test]
fn every_case_is_run() {
    let mut found: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".steps").map(str::to_string)
        })
        .collect();
    found.sort();
    let mut listed = vec![
        "dhcp-host",
        "dhcp-range",
        "forward-interface",
        "portgroup",
        "dns-host",
        "dns-txt",
        "dns-srv",
        "dns-modify",
        "refused",
    ];
    listed.sort();
    assert_eq!(found, listed);
    for case in &found {
        assert!(
            dir().join(format!("{case}.out")).is_file(),
            "{case}.out is missing: run generate.sh"
        );
    }
}

#[test]
fn step_words() {
    assert_eq!(
        words(r#"net-update upd add ip-dhcp-host "<host mac='a' ip='b'/>" --live"#),
        [
            "net-update",
            "upd",
            "add",
            "ip-dhcp-host",
            "<host mac='a' ip='b'/>",
            "--live"
        ]
    );
    assert_eq!(words("a  'b c'd \"\""), ["a", "b cd", ""]);
}
