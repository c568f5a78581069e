//! DHCP leases as `net-dhcp-leases` shows them, against libvirt's own
//! answers: `tests/data/scenarios/live/leases/leases.out` is what Debian's
//! virsh showed with libvirt's network driver for the steps below (written
//! by `generate.sh` there, which describes them); virtnetd must show the same,
//! byte for byte but for the expiry times, and virtnet's CLI must print
//! exactly what virsh prints.
//!
//! Leases come from virtnet's lease helper, which dnsmasq runs as its
//! `--dhcp-script`: a lease appears after a guest's DHCP, disappears when the
//! guest releases it, an expired one is not shown, and the lease file goes
//! with the network's definition.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scenario_common::{Client, Host, data, require_all, wait_until};
use virtnet_tests::process::{SpawnOpts, TempDir};
use virtnet_tests::{Netns, Proc, Veth, connect_to_bridge_in, or_skip};

const NET: &str = "leases";
const BRIDGE: &str = "vnlease0";

/// The udhcpc event script of `generate.sh`: applies the lease, writes the
/// address to `$BOUND`.
const SCRIPT: &str = r#"#!/bin/sh
case "$1" in
bound|renew)
    ip addr replace "$ip/${mask:-24}" dev "$interface"
    echo "$ip" >"$BOUND"
    ;;
esac
exit 0
"#;

struct Guest {
    ns: Netns,
    _link: Veth,
    name: &'static str,
}

impl Guest {
    fn join(host: &Host, name: &'static str, mac: &str) -> Guest {
        let ns = Netns::new("guest").unwrap();
        let link = connect_to_bridge_in(&host.ns, BRIDGE, &ns, "eth0").unwrap();
        ns.ip(&["link", "set", "eth0", "address", mac]).unwrap();
        Guest {
            ns,
            _link: link,
            name,
        }
    }

    /// busybox udhcpc with the generator's arguments (`extra` after
    /// `-i eth0 -f`), its script reporting to `bound`.
    fn udhcpc(&self, dir: &TempDir, bound: &Path, extra: &[&str]) -> Proc {
        let busybox = virtnet_tests::process::busybox().unwrap();
        let script = dir.join("script");
        let mut argv: Vec<String> = vec![
            busybox.display().to_string(),
            "udhcpc".into(),
            "-i".into(),
            "eth0".into(),
            "-f".into(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        argv.extend([
            "-x".into(),
            format!("hostname:{}", self.name),
            "-s".into(),
            script.display().to_string(),
        ]);
        let mut cmd = self.ns.cmd(&argv).unwrap();
        cmd.env("BOUND", bound);
        Proc::spawn(
            cmd,
            SpawnOpts {
                label: Some(format!("udhcpc of {}", self.name)),
                ..Default::default()
            },
        )
        .unwrap()
    }
}

fn wait_file(path: &Path) {
    wait_until(
        &format!("{} to be written", path.display()),
        Duration::from_secs(30),
        || std::fs::metadata(path).is_ok_and(|m| m.len() > 0),
    );
}

/// Replaces every `YYYY-MM-DD hh:mm:ss` time by that placeholder.
fn no_clock(text: &str) -> String {
    let bytes = text.as_bytes();
    let pattern = b"dddd-dd-dd dd:dd:dd";
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let fits = bytes.len() - i >= pattern.len()
            && pattern.iter().zip(&bytes[i..]).all(|(p, b)| match p {
                b'd' => b.is_ascii_digit(),
                _ => p == b,
            });
        if fits {
            out.push_str("YYYY-MM-DD hh:mm:ss");
            i += pattern.len();
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// One `net-dhcp-leases` step: virsh's output (times hidden) for the
/// transcript, after checking that virtnet prints the very same.
fn step(out: &mut String, host: &Host, args: &[&str]) -> String {
    let virsh = Client::Virsh.run(&host.daemon, args);
    let virtnet = Client::Virtnet.run(&host.daemon, args);
    let both = |o: &virtnet_tests::Output| format!("{}{}", o.stdout, o.stderr);
    assert_eq!(
        both(&virtnet),
        both(&virsh),
        "virtnet and virsh differ on `{}`",
        args.join(" ")
    );
    assert!(virsh.success(), "{}: {}", args.join(" "), virsh.stderr);
    let _ = writeln!(out, "$ {}", args.join(" "));
    out.push_str(&no_clock(&both(&virsh)));
    virsh.stdout
}

fn ls(out: &mut String, dir: &Path, when: &str) {
    let _ = writeln!(out, "$ ls STATE/dnsmasq ({when})");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in names {
        let _ = writeln!(out, "{n}");
    }
}

/// The expiry times of a `net-dhcp-leases` table, as seconds since the
/// epoch, read back from the lease file.
fn expiry_times(status: &Path) -> Vec<(String, i64)> {
    let text = std::fs::read_to_string(status).unwrap();
    let doc = scenario_common::Json::parse(&text).unwrap();
    doc.items()
        .iter()
        .map(|l| {
            (
                l.get("mac-address")
                    .and_then(scenario_common::Json::as_str)
                    .unwrap_or("")
                    .to_string(),
                l.get("expiry-time")
                    .and_then(scenario_common::Json::as_u64)
                    .and_then(|t| i64::try_from(t).ok())
                    .unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn leases_as_libvirt_shows_them() {
    or_skip!(require_all(Some(Client::Virsh)));
    or_skip!(require_all(Some(Client::Virtnet)));
    let expected_path = data("live/leases/leases.out");
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    let xml = data("live/leases/leases.xml");
    Client::Virsh.ok(d, &["net-define", xml.to_str().unwrap()]);
    Client::Virsh.ok(d, &["net-start", NET]);
    let status = d.state_dir().join(format!("dnsmasq/{BRIDGE}.status"));

    let dir = TempDir::new("leases").unwrap();
    std::fs::write(dir.join("script"), SCRIPT).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("script"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let a = Guest::join(&host, "guest-a", "52:54:00:91:00:0a");
    let b = Guest::join(&host, "guest-b", "52:54:00:91:00:0b");
    let mut out = String::new();

    // Guest a keeps its udhcpc running (it releases when stopped); guest b's
    // quits once bound, keeping its lease.
    let a_udhcpc = a.udhcpc(&dir, &dir.join("a"), &["-R"]);
    wait_file(&dir.join("a"));
    let b_udhcpc = b.udhcpc(&dir, &dir.join("b"), &["-q", "-n", "-t", "20", "-T", "1"]);
    let b_out = b_udhcpc.wait_output(Duration::from_secs(30)).unwrap();
    assert!(b_out.success(), "udhcpc of guest-b: {b_out:?}");
    wait_file(&dir.join("b"));

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let now = i64::try_from(now).unwrap();
    let table = step(&mut out, &host, &["net-dhcp-leases", NET]);
    assert!(table.contains("10.91.0.10/24"), "{table}");
    // The default lease time is an hour.
    for (mac, t) in expiry_times(&status) {
        assert!(
            (now + 3600 - 60..=now + 3600 + 60).contains(&t),
            "lease of {mac} expires at {t}, now is {now}"
        );
    }
    step(
        &mut out,
        &host,
        &["net-dhcp-leases", NET, "--mac", "52:54:00:91:00:0b"],
    );
    step(
        &mut out,
        &host,
        &["net-dhcp-leases", NET, "--mac", "52:54:00:91:00:0c"],
    );

    // Guest a releases its lease: dnsmasq tells the helper, which drops it.
    let a_out = a_udhcpc
        .stop_with(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(10))
        .unwrap();
    wait_until(
        "the released lease to leave the lease file",
        Duration::from_secs(10),
        || {
            !std::fs::read_to_string(&status)
                .unwrap_or_default()
                .contains("52:54:00:91:00:0a")
        },
    );
    let _ = a_out;
    step(&mut out, &host, &["net-dhcp-leases", NET]);

    // An expired lease in the file is not shown.
    let text = std::fs::read_to_string(&status).unwrap();
    let body = text.trim_end();
    let body = body
        .strip_suffix(']')
        .unwrap_or_else(|| panic!("lease file is not a JSON array: {text}"))
        .trim_end();
    let expired = r#"{
    "ip-address": "10.91.0.12",
    "mac-address": "52:54:00:91:00:0c",
    "hostname": "gone",
    "client-id": "01:52:54:00:91:00:0c",
    "expiry-time": 1000000000
  }"#;
    let sep = if body.ends_with('[') { "" } else { "," };
    std::fs::write(&status, format!("{body}{sep}\n  {expired}\n]\n")).unwrap();
    step(&mut out, &host, &["net-dhcp-leases", NET]);
    step(
        &mut out,
        &host,
        &["net-dhcp-leases", NET, "--mac", "52:54:00:91:00:0c"],
    );

    // The lease file stays with a stopped network and goes with its
    // definition.
    Client::Virsh.ok(d, &["net-destroy", NET]);
    ls(&mut out, &d.state_dir().join("dnsmasq"), "destroyed");
    assert!(status.exists(), "the lease file is kept by net-destroy");
    Client::Virsh.ok(d, &["net-undefine", NET]);
    ls(&mut out, &d.state_dir().join("dnsmasq"), "undefined");
    assert!(
        !status.exists(),
        "net-undefine removes {}",
        status.display()
    );

    if out != expected {
        let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-leases.out");
        let _ = std::fs::write(&keep, &out);
        panic!(
            "net-dhcp-leases differs from libvirt's ({}); virtnetd's transcript is in {}:\n{out}",
            expected_path.display(),
            keep.display()
        );
    }
    drop(b);
    drop(a);
}

#[test]
fn times_are_hidden() {
    assert_eq!(
        no_clock(" 2025-05-02 10:00:59   52:54\n"),
        " YYYY-MM-DD hh:mm:ss   52:54\n"
    );
    assert_eq!(no_clock("2025-05-02 1"), "2025-05-02 1");
}
