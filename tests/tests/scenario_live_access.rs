//! Who may change what.
//!
//! - The read-only socket refuses every mutating procedure (define, create,
//!   start, destroy, undefine, autostart, update, port create and delete,
//!   port parameters), whether the client knows it is read-only (`-r`,
//!   `openReadOnly`) or not, and serves the read-only ones: the steps of
//!   `tests/data/scenarios/live/access/access.steps`, through Debian's
//!   virsh and libvirt-python, must answer byte for byte what libvirt's own
//!   daemon answered (`access.out`, written by `generate.sh` there).
//!   Metadata changes (virtnet's CLI; libvirt 9.0 has none) are refused
//!   too.
//! - A user other than root cannot open the read-write socket, and can use
//!   the read-only one.
//! - The daemon's log names the uid and pid of each client that changed
//!   something, and what it changed.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use scenario_common::{Client, Host, data, require_all, words};
use virtnet_tests::process::{self, SpawnOpts, TempDir};
use virtnet_tests::{Proc, or_skip};

fn dir() -> PathBuf {
    data("live/access")
}

/// A stream in the transcript format of `../update/generate.sh`.
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

fn python() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/python3");
    let ok = p.is_file()
        && Command::new(&p)
            .args(["-c", "import libvirt"])
            .status()
            .is_ok_and(|s| s.success());
    ok.then_some(p)
}

fn ro_uri(host: &Host) -> String {
    format!("{}-ro", host.daemon.uri())
}

/// The steps of access.steps against `host`, with `client` in place of
/// virsh; the transcript.
fn transcript(host: &Host, client: Client, python: &Path) -> String {
    let steps = std::fs::read_to_string(dir().join("access.steps")).unwrap();
    let (rw, ro) = (host.daemon.uri(), ro_uri(host));
    let mut out = String::new();
    for line in steps.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let _ = writeln!(out, "$ {line}");
        let args: Vec<String> = words(line)
            .into_iter()
            .map(|w| w.replace("@RO@", &ro).replace("@RW@", &rw))
            .collect();
        let mut cmd = if args[0] == "@python" {
            let mut c = Command::new(python);
            c.args(&args[1..]);
            c
        } else {
            let mut c = Command::new(client.program().unwrap());
            c.args(&args);
            c
        };
        cmd.current_dir(dir());
        let o = process::run(cmd, process::DEFAULT_TIMEOUT).unwrap();
        emit(&mut out, '|', &o.stdout);
        emit(&mut out, '!', &o.stderr);
        let _ = writeln!(out, "= {}", o.code().unwrap_or(-1));
    }
    out
}

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
        if e.get(i) != a.get(i) {
            return format!(
                "--- libvirt\n{}--- virtnetd\n{}",
                e.get(i).map_or("(none)\n", String::as_str),
                a.get(i).map_or("(none)\n", String::as_str)
            );
        }
    }
    String::new()
}

fn read_only_socket_like_libvirt(client: Client) {
    or_skip!(require_all(Some(client)));
    let Some(python) = python() else {
        eprintln!("skipped: /usr/bin/python3 with libvirt-python (python3-libvirt) is needed");
        return;
    };
    let expected = std::fs::read_to_string(dir().join("access.out")).unwrap();
    let host = or_skip!(Host::start(&[]));
    let actual = transcript(&host, client, &python);
    if actual != expected {
        let keep =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("live-access-{client:?}.out"));
        let _ = std::fs::write(&keep, &actual);
        panic!(
            "{client:?} over the read-only socket differs from libvirt (transcript in {}):\n{}",
            keep.display(),
            first_difference(&expected, &actual)
        );
    }
    // The refused calls changed nothing and left no trace in the log.
    let log = host.daemon.log();
    for refused in ["network 'other'", "set autostart of network 'acl' to false"] {
        assert!(!log.contains(refused), "{refused} in the log:\n{log}");
    }
}

#[test]
fn read_only_socket_with_virsh() {
    read_only_socket_like_libvirt(Client::Virsh);
}

#[test]
fn read_only_socket_with_virtnet() {
    read_only_socket_like_libvirt(Client::Virtnet);
}

#[test]
fn metadata_is_refused_read_only() {
    or_skip!(require_all(Some(Client::Virtnet)));
    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    let xml = dir().join("acl.xml");
    Client::Virtnet.ok(d, &["net-define", xml.to_str().unwrap()]);
    let ro = ro_uri(&host);
    let forbidden = "error: operation forbidden: read only access prevents virNetworkSetMetadata";
    for args in [
        vec!["net-desc", "acl", "a description"],
        vec!["net-desc", "acl", "--title", "A title"],
        vec![
            "net-metadata",
            "acl",
            "http://example.org/acl/",
            "--key",
            "acl",
            "--set",
            "<acl/>",
        ],
    ] {
        for readonly in [false, true] {
            let mut full = vec![];
            if readonly {
                full.push("-r");
            }
            full.extend(&args);
            let o = Client::Virtnet.run_at(&ro, &full, None);
            assert_eq!(o.code(), Some(1), "{full:?}: {o:?}");
            assert!(
                o.stderr.lines().any(|l| l == forbidden),
                "{full:?}: {}",
                o.stderr
            );
        }
    }
    // Reading works there; the definition is unchanged.
    let o = Client::Virtnet.run_at(&ro, &["net-desc", "acl"], None);
    assert!(o.success(), "{o:?}");
    let xml = Client::Virtnet.ok(d, &["net-dumpxml", "acl", "--inactive"]);
    assert!(
        !xml.contains("<description>") && !xml.contains("<title>"),
        "{xml}"
    );
    assert!(!xml.contains("metadata"), "{xml}");
}

/// Runs `client` as user and group nobody (65534), without supplementary
/// groups.
fn as_nobody(client: Client, home: &Path, uri: &str, args: &[&str]) -> virtnet_tests::Output {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(client.program().unwrap())
        .arg("-c")
        .arg(uri)
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME");
    process::run(cmd, process::DEFAULT_TIMEOUT).unwrap()
}

#[test]
fn other_users_get_the_read_only_socket_only() {
    or_skip!(require_all(Some(Client::Virsh)));
    or_skip!(require_all(Some(Client::Virtnet)));
    if process::find_tool("setpriv").is_none() {
        eprintln!("skipped: setpriv (util-linux) is needed");
        return;
    }
    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    let xml = dir().join("acl.xml");
    Client::Virsh.ok(d, &["net-define", xml.to_str().unwrap()]);
    // nobody must reach the sockets' directory.
    let mut p = d.socket_path();
    while let Some(parent) = p.parent().map(Path::to_path_buf) {
        let mode = std::fs::metadata(&parent).map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode()
        });
        assert!(
            mode.is_ok_and(|m| m & 0o001 != 0),
            "{} is not searchable by others",
            parent.display()
        );
        if parent == Path::new("/") {
            break;
        }
        p = parent;
    }
    let home = TempDir::new("nobody-home").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let rw = d.uri();
    let ro = ro_uri(&host);
    let socket = d.socket_path().display().to_string();
    for client in Client::ALL {
        // The read-write socket: permission denied.
        let o = as_nobody(client, home.path(), &rw, &["net-list", "--all"]);
        assert_eq!(o.code(), Some(1), "{client:?} as nobody on {rw}: {o:?}");
        let denied = format!("error: Failed to connect socket to '{socket}': Permission denied");
        assert!(
            o.stderr.lines().any(|l| l == denied),
            "{client:?} as nobody: {}",
            o.stderr
        );
        // The read-only one: reading works, changing does not.
        let o = as_nobody(client, home.path(), &ro, &["net-list", "--all"]);
        assert!(o.success(), "{client:?} as nobody on {ro}: {o:?}");
        assert!(o.stdout.contains(" acl "), "{}", o.stdout);
        let o = as_nobody(client, home.path(), &ro, &["net-start", "acl"]);
        assert_eq!(o.code(), Some(1), "{o:?}");
        assert!(
            o.stderr
                .contains("operation forbidden: read only access prevents virNetworkCreate"),
            "{client:?}: {}",
            o.stderr
        );
    }
    let rows = scenario_common::net_list(Client::Virsh, d);
    assert_eq!(scenario_common::row(&rows, "acl").state, "inactive");
}

/// Runs a client to completion and returns its pid and output.
fn run_with_pid(client: Client, uri: &str, args: &[&str]) -> (u32, virtnet_tests::Output) {
    let mut cmd = Command::new(client.program().unwrap());
    cmd.arg("-c").arg(uri).args(args).current_dir(dir());
    let proc = Proc::spawn(
        cmd,
        SpawnOpts {
            label: Some(format!("{client:?} {}", args.join(" "))),
            ..Default::default()
        },
    )
    .unwrap();
    let pid = proc.pid();
    let out = proc.wait_output(Duration::from_secs(30)).unwrap();
    (pid, out)
}

#[test]
fn log_names_who_changed_what() {
    or_skip!(require_all(Some(Client::Virsh)));
    or_skip!(require_all(Some(Client::Virtnet)));
    let host = or_skip!(Host::start(&[]));
    let uri = host.daemon.uri();
    let host_mac = "<host mac='52:54:00:95:00:0c' ip='10.95.0.12'/>";
    let steps: Vec<(Client, Vec<&str>, String)> = vec![
        (
            Client::Virsh,
            vec!["net-define", "acl.xml"],
            "defined network 'acl'".into(),
        ),
        (
            Client::Virtnet,
            vec!["net-start", "acl"],
            "started network 'acl'".into(),
        ),
        (
            Client::Virsh,
            vec![
                "net-update",
                "acl",
                "add",
                "ip-dhcp-host",
                host_mac,
                "--live",
            ],
            "updated network 'acl' (command 3, section 4, flags 1)".into(),
        ),
        (
            Client::Virtnet,
            vec!["net-desc", "acl", "--live", "changed"],
            "set metadata (type 0) of network 'acl'".into(),
        ),
        (
            Client::Virsh,
            vec!["net-port-create", "acl", "port.xml"],
            "created port 3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e01 on network 'acl'".into(),
        ),
        (
            Client::Virsh,
            vec![
                "net-port-delete",
                "acl",
                "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e01",
            ],
            "deleted port 3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e01 of network 'acl'".into(),
        ),
        (
            Client::Virtnet,
            vec!["net-autostart", "acl"],
            "set autostart of network 'acl' to true".into(),
        ),
        (
            Client::Virsh,
            vec!["net-destroy", "acl"],
            "destroyed network 'acl'".into(),
        ),
        (
            Client::Virtnet,
            vec!["net-undefine", "acl"],
            "undefined network 'acl'".into(),
        ),
    ];
    for (client, args, what) in steps {
        let (pid, out) = run_with_pid(client, &uri, &args);
        assert!(out.success(), "{client:?} {args:?}: {out:?}");
        let line = format!("client uid=0 pid={pid}: {what}");
        scenario_common::wait_until(&line, Duration::from_secs(5), || {
            host.daemon.log().lines().any(|l| l.ends_with(&line))
        });
    }
    // A refused change is not logged as a change.
    let (_, out) = run_with_pid(Client::Virsh, &ro_uri(&host), &["net-define", "acl.xml"]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    let defined = host
        .daemon
        .log()
        .lines()
        .filter(|l| l.contains("defined network 'acl'") && !l.contains("undefined"))
        .count();
    assert_eq!(defined, 1, "{}", host.daemon.log());
}
