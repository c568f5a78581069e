//! The network hooks, against libvirt's own calls: `CONFIG/hooks/network`
//! and `CONFIG/hooks/network.d/extra` (from
//! `tests/data/scenarios/live/hooks/`) record their arguments and the
//! `<hookData>` they read; `hooks.out` there is what they recorded under
//! libvirt's network driver (written by `generate.sh`) for define, start,
//! port create, port delete, live update and destroy. virtnetd must call
//! them the same way, with the same XML, byte for byte (but for the TAP
//! virtnet names in the port XML, in its own namespace). A `start` hook that
//! fails makes net-start fail with `Hook script execution failed: …` and
//! leaves nothing behind.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::path::Path;

use scenario_common::{Client, Host, data, require_all};
use virtnet_tests::or_skip;

const PORT: &str = "5d6c3a44-1d2f-4d57-9f5a-1b2c3d4e5f60";

fn install(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The first line where `expected` and `actual` differ, with context.
fn first_difference(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        if e.get(i) != a.get(i) {
            let from = i.saturating_sub(12);
            return format!(
                "line {}:\n--- libvirt\n{}\n--- virtnetd\n{}",
                i + 1,
                e[from..(i + 3).min(e.len())].join("\n"),
                a[from..(i + 3).min(a.len())].join("\n")
            );
        }
    }
    String::new()
}

#[test]
fn hooks_are_called_as_libvirt_calls_them() {
    or_skip!(require_all(Some(Client::Virsh)));
    let dir = data("live/hooks");
    let expected = std::fs::read_to_string(dir.join("hooks.out")).unwrap();
    let (expected_run, rest) = expected
        .split_once("$ net-start hooks (refused)\n")
        .expect("hooks.out has the refused start");
    let (refusal_and_log, _) = rest
        .split_once("$ ip link show vnhook0\n")
        .expect("hooks.out ends with the bridge check");
    let refused_log_at = refusal_and_log
        .find("$ network hooks start begin -\n")
        .expect("the refused start ran the hook");
    let (libvirt_refusal, expected_refused_log) = refusal_and_log.split_at(refused_log_at);

    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    let hooks = d.config_dir().join("hooks");
    install(&dir.join("network"), &hooks.join("network"));
    install(&dir.join("extra"), &hooks.join("network.d/extra"));
    let log = hooks.join("hooks.log");

    // The same steps as generate.sh, run where the data files are.
    let v = |args: &[&str]| {
        let o = Client::Virsh.run_at(&d.uri(), args, Some(&dir));
        assert!(o.success(), "{}: {}{}", args.join(" "), o.stdout, o.stderr);
    };
    v(&["net-define", "hooks.xml"]);
    v(&["net-start", "hooks"]);
    v(&["net-port-create", "hooks", "port.xml"]);
    v(&["net-port-delete", "hooks", PORT]);
    v(&[
        "net-update",
        "hooks",
        "add",
        "ip-dhcp-host",
        "<host mac='52:54:00:94:00:0b' ip='10.94.0.11'/>",
        "--live",
    ]);
    v(&["net-destroy", "hooks"]);
    let run = std::fs::read_to_string(&log).unwrap_or_default();
    // virtnet makes the port's TAP itself and names it in the port XML, in
    // its own namespace; the rest is libvirt's.
    let device = "<virtnet:device xmlns:virtnet='http://virtnet.dev/schemas/networkport/1.0' type='tap' name='vnet0'/>";
    assert_eq!(
        run.matches(device).count(),
        2,
        "the port's TAP in port-created and port-deleted:\n{run}"
    );
    let run: String = run
        .lines()
        .filter(|l| l.trim() != device)
        .map(|l| format!("{l}\n"))
        .collect();
    if run != expected_run {
        let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-hooks.log");
        let _ = std::fs::write(&keep, &run);
        panic!(
            "the hooks were not called as libvirt calls them (virtnetd's log in {}):\n{}",
            keep.display(),
            first_difference(expected_run, &run)
        );
    }

    // A start hook that fails: the start fails with its message, and the
    // host is left as it was.
    std::fs::write(&log, "").unwrap();
    std::fs::write(hooks.join("fail-start"), "").unwrap();
    let before = host.snapshot();
    let o = Client::Virsh.run(d, &["net-start", "hooks"]);
    let after = host.snapshot();
    assert_eq!(o.code(), Some(1), "{o:?}");
    let msg = o.stderr.clone();
    let lines: Vec<&str> = msg.lines().collect();
    let libvirt: Vec<&str> = libvirt_refusal.lines().collect();
    assert_eq!(lines.first(), libvirt.first(), "{msg}");
    assert_eq!(lines.first(), Some(&"error: Failed to start network hooks"));
    let detail = lines.get(1).copied().unwrap_or_default();
    assert!(
        detail.starts_with("error: Hook script execution failed: ")
            && detail.contains(" hooks start begin -")
            && detail.ends_with("unexpected exit status 1: refusing to start hooks"),
        "virtnetd: {msg}\nlibvirt: {libvirt_refusal}"
    );
    let diff = before.diff(&after);
    assert!(diff.is_empty(), "a refused start changed the host:\n{diff}");
    assert!(!host.ns.link_exists("vnhook0"));
    assert!(!d.run_dir().join("network/hooks.xml").exists());
    let refused_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        refused_log,
        expected_refused_log,
        "the refused start's hooks:\n{}",
        first_difference(expected_refused_log, &refused_log)
    );
    let rows = scenario_common::net_list(Client::Virsh, d);
    assert_eq!(scenario_common::row(&rows, "hooks").state, "inactive");

    // Without the failure the network starts again.
    std::fs::remove_file(hooks.join("fail-start")).unwrap();
    Client::Virsh.ok(d, &["net-start", "hooks"]);
    Client::Virsh.ok(d, &["net-destroy", "hooks"]);
}
