//! virtnet against the real thing: the same command sequence runs once
//! with Debian's `virsh` and once with `virtnet`, each beside a private
//! libvirt 9.0 network driver (`bench/libvirt-sandbox`), and every step's
//! stdout, stderr and exit status must be identical byte for byte.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One step: words after `CLI -c URI`. Prefixes on the first words:
/// `env:K=V` sets a variable, `uri:U` connects to `U` instead, `bg:CMD`
/// runs a virsh command one second later in the background (to cause an
/// event), `differs:` marks a step whose output virtnet changes on
/// purpose (checked by [`deliberate_differences`] instead). `{data}` is
/// the test data directory.
const STEPS: &[&[&str]] = &[
    &["net-list"],
    &["net-list", "--all"],
    &["net-define", "{data}/alpha.xml"],
    &["net-define", "--file", "{data}/beta.xml"],
    &["net-define", "{data}/bad-forward.xml"],
    &["net-define", "{data}/malformed.xml"],
    &["net-define", "{data}/no-name.xml"],
    &["net-define", "{data}/nonexistent.xml"],
    &["net-define", "{data}"],
    &["net-define", "--validate", "{data}/alpha.xml"],
    &["net-define"],
    &["net-create", "{data}/gamma.xml"],
    &["net-create", "{data}/gamma.xml"],
    &["net-create", "--validate", "{data}/bad-forward.xml"],
    &["net-list"],
    &["net-list", "--all"],
    &["net-list", "--inactive"],
    &["net-list", "--all", "--uuid"],
    &["net-list", "--all", "--name"],
    &["net-list", "--all", "--table"],
    &["net-list", "--all", "--title"],
    &["net-list", "--persistent", "--all"],
    &["net-list", "--transient"],
    &["net-list", "--autostart", "--all"],
    &["net-list", "--no-autostart", "--all"],
    &["net-list", "--all", "--name", "--uuid"],
    &["net-list", "--all", "--name", "--table"],
    &["net-list", "--bogus"],
    &["net-list", "--all=yes"],
    &["net-list", "--all", "--all"],
    &["net-list", "extra"],
    &["-q", "net-list", "--all"],
    &["net-start", "alpha"],
    &["net-start", "alpha"],
    &["net-start", "nosuch"],
    &["net-start"],
    &["net-autostart", "alpha"],
    &["net-autostart", "alpha", "--disable"],
    &["net-autostart", "--network", "alpha"],
    &["net-autostart", "gamma"],
    &["net-autostart", "nosuch"],
    &["net-list", "--all"],
    &["net-list", "--autostart"],
    &["net-info", "alpha"],
    &["net-info", "beta"],
    &["net-info", "gamma"],
    &["net-info", "11111111-2222-3333-4444-555555555555"],
    &["net-info", "nosuch"],
    &["net-info"],
    &["net-info", "--network="],
    &["net-uuid", "alpha"],
    &["net-uuid", "nosuch"],
    &["net-uuid", "11111111-2222-3333-4444-555555555555"],
    &["net-name", "11111111-2222-3333-4444-555555555555"],
    &["net-name", "nosuch"],
    &["net-name", "11111111-2222-3333-4444-55555555555x"],
    &["net-name", "11111111-2222-3333-4444-000000000000"],
    &["net-dumpxml", "alpha"],
    &["net-dumpxml", "--inactive", "alpha"],
    &["net-dumpxml", "11111111-2222-3333-4444-555555555555"],
    &["net-dumpxml", "beta"],
    &["net-dumpxml", "gamma"],
    &["net-dumpxml", "nosuch"],
    &["net-dumpxml", "alpha", "beta"],
    &["net-dumpxml", "--network"],
    &["net-dumpxml", "alpha", "--xpath", "//ip"],
    &["net-dumpxml", "alpha", "--xpath", "//ip/@address"],
    &["net-dumpxml", "alpha", "--xpath", "//ip/@address", "--wrap"],
    &["net-dumpxml", "alpha", "--xpath", "//host", "--wrap"],
    &[
        "net-dumpxml",
        "alpha",
        "--xpath",
        "/network/name | /network/uuid",
    ],
    &["net-dumpxml", "alpha", "--xpath", "count(//ip)"],
    &["net-dumpxml", "alpha", "--xpath", "//nosuch"],
    &["net-dumpxml", "alpha", "--xpath", "//nosuch", "--wrap"],
    &["net-dumpxml", "alpha", "--xpath", "//name/text()"],
    &["net-dumpxml", "alpha", "--xpath", "//host[@name='g1']/@ip"],
    &["net-dumpxml", "alpha", "--xpath="],
    &["net-dumpxml", "alpha", "--xpath", "//["],
    &[
        "net-dumpxml",
        "alpha",
        "--xpath",
        "//host[2]/@mac | //range/@end",
        "--wrap",
    ],
    &[
        "net-dumpxml",
        "alpha",
        "--xpath",
        "/network/*[position() > 3]",
    ],
    &["net-dumpxml", "alpha", "--xpath", "//dhcp/..", "--inactive"],
    &["-q", "net-info", "alpha"],
    &["-q", "net-dhcp-leases", "alpha"],
    &["-q", "net-dumpxml", "beta"],
    &["-q", "net-list", "--all", "--name"],
    &["net-dumpxml", "alpha", "--wrap"],
    &["net-destroy", "beta"],
    &["net-destroy", "nosuch"],
    &["net-undefine", "nosuch"],
    &["net-dhcp-leases", "alpha"],
    &["net-dhcp-leases", "alpha", "--mac", "52:54:00:00:00:01"],
    &["net-dhcp-leases", "alpha", "--mac="],
    &["net-dhcp-leases", "beta"],
    &["net-dhcp-leases", "nosuch"],
    &[
        "net-update",
        "alpha",
        "add",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:02' ip='192.168.51.11'/>",
    ],
    &[
        "net-update",
        "alpha",
        "add",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:03' ip='192.168.51.12'/>",
        "--config",
    ],
    &[
        "net-update",
        "alpha",
        "add-last",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:04' ip='192.168.51.13'/>",
        "--live",
        "--config",
    ],
    &[
        "net-update",
        "alpha",
        "add-first",
        "ip-dhcp-host",
        "{data}/host.xml",
        "--live",
    ],
    &[
        "net-update",
        "alpha",
        "add",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:05' ip='192.168.51.14'/>",
        "--current",
        "--live",
    ],
    &[
        "net-update",
        "alpha",
        "add",
        "ip-dhcp-host",
        "<host/>",
        "--current",
        "--config",
    ],
    &["net-update", "alpha", "bogus", "ip-dhcp-host", "<host/>"],
    &["net-update", "alpha", "add", "bogus", "<host/>"],
    &["net-update", "alpha", "add", "ip-dhcp-host", "/nonexistent"],
    &[
        "net-update",
        "alpha",
        "add",
        "ip-dhcp-host",
        "<host/>",
        "--parent-index",
        "x",
    ],
    &[
        "net-update",
        "alpha",
        "add",
        "ip-dhcp-host",
        "<host/>",
        "--parent-index",
        "5",
    ],
    &[
        "net-update",
        "alpha",
        "delete",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:09' ip='192.168.51.99'/>",
    ],
    &[
        "net-update",
        "alpha",
        "modify",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:02' ip='192.168.51.21'/>",
    ],
    &[
        "net-update",
        "beta",
        "add",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:06' ip='192.168.52.11'/>",
    ],
    &[
        "net-update",
        "nosuch",
        "add",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:02' ip='192.168.51.11'/>",
    ],
    &["net-update", "alpha", "add"],
    &["net-update", "alpha", "add", "ip-dhcp-host"],
    &["net-dumpxml", "alpha"],
    &["net-dumpxml", "alpha", "--inactive"],
    &["net-port-list", "alpha"],
    &["net-port-list", "alpha", "--uuid"],
    &["net-port-list", "alpha", "--uuid", "--table"],
    &["net-port-create", "alpha", "{data}/port.xml"],
    &["net-port-create", "alpha", "{data}/port.xml"],
    &["net-port-create", "alpha", "{data}/nonexistent.xml"],
    &["net-port-create", "nosuch", "{data}/port.xml"],
    &["net-port-list", "alpha"],
    &["net-port-list", "alpha", "--uuid"],
    &["-q", "net-port-list", "alpha"],
    &[
        "net-port-dumpxml",
        "alpha",
        "5c0e9e3b-3f8a-4c55-8d5e-2f4c8b1a0001",
    ],
    &[
        "net-port-dumpxml",
        "alpha",
        "5c0e9e3b-3f8a-4c55-8d5e-2f4c8b1a0001",
        "--xpath",
        "//mac",
    ],
    &[
        "net-port-dumpxml",
        "alpha",
        "11111111-2222-3333-4444-555555555555",
    ],
    &["net-port-dumpxml", "alpha", "nope"],
    &["net-port-dumpxml", "alpha"],
    &[
        "net-port-delete",
        "alpha",
        "5c0e9e3b-3f8a-4c55-8d5e-2f4c8b1a0001",
    ],
    &[
        "net-port-delete",
        "alpha",
        "5c0e9e3b-3f8a-4c55-8d5e-2f4c8b1a0001",
    ],
    &["net-port-list", "alpha"],
    &["env:EDITOR={data}/editor-same.sh", "net-edit", "alpha"],
    &[
        "env:EDITOR={data}/editor-rename-bridge.sh",
        "net-edit",
        "alpha",
    ],
    &["env:EDITOR={data}/editor-fail.sh", "net-edit", "alpha"],
    &["env:VISUAL={data}/editor-same.sh", "net-edit", "beta"],
    &["net-edit", "nosuch"],
    // virsh 9.0 without a terminal prints "error: Failed." and then claims
    // "Network (null) XML configuration edited." with status 0; virtnet
    // reports why the definition failed and exits 1.
    &[
        "differs:",
        "env:EDITOR={data}/editor-bogus-forward.sh",
        "net-edit",
        "alpha",
    ],
    &["net-dumpxml", "alpha", "--inactive"],
    // Newer virsh lists metadata-change too; virtnet has its events.
    &["differs:", "net-event", "--list"],
    &["net-event", "--timeout", "1"],
    &["net-event", "--event", "bogus"],
    &["net-event", "--event", "lifecycle", "--timeout", "0"],
    &["net-event", "--event", "lifecycle", "--timeout", "-1"],
    &["net-event", "--event", "lifecycle", "--timeout", "x"],
    &["net-event", "--event", "lifecycle", "--timeout", "1"],
    &[
        "net-event",
        "--event",
        "lifecycle",
        "--timeout",
        "1",
        "--network",
        "nosuch",
    ],
    &[
        "bg:net-destroy gamma",
        "net-event",
        "--event",
        "lifecycle",
        "--timeout",
        "10",
    ],
    &[
        "bg:net-start beta",
        "net-event",
        "--event",
        "lifecycle",
        "--network",
        "beta",
        "--timeout",
        "10",
    ],
    &[
        "bg:net-destroy beta",
        "net-event",
        "beta",
        "lifecycle",
        "--loop",
        "--timeout",
        "3",
    ],
    &["net-list", "--all"],
    &["-r", "net-list", "--all"],
    &["-r", "net-define", "{data}/alpha.xml"],
    &["-r", "net-start", "beta"],
    &["-r", "net-destroy", "alpha"],
    &["-r", "net-autostart", "alpha"],
    &[
        "-r",
        "net-update",
        "alpha",
        "add",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:08' ip='192.168.51.18'/>",
    ],
    &["-r", "net-info", "alpha"],
    &["-r", "net-dumpxml", "alpha", "--inactive"],
    &["-r", "net-port-create", "alpha", "{data}/port.xml"],
    &[
        "-q",
        "net-update",
        "alpha",
        "add",
        "ip-dhcp-host",
        "<host mac='52:54:00:00:00:0a' ip='192.168.51.30'/>",
        "--config",
    ],
    &["-q", "net-autostart", "alpha"],
    &["-q", "net-destroy", "nosuch"],
    &["net-destroy", "alpha"],
    &["net-undefine", "alpha"],
    &["net-undefine", "alpha"],
    &["net-undefine", "beta"],
    &["net-list", "--all"],
    &["bogus-cmd"],
    &["help", "net-list"],
    &["help", "net-update"],
    &["help", "net-event"],
    &["net-dumpxml", "--help"],
    &["help", "bogus"],
    &["net-info \"a b\" c"],
    &["net-list --all; net-info nosuch"],
    &["net-info 'x"],
    &["net-info x\\"],
    &[
        "uri:network:///system?socket=/run/nonexistent-sock",
        "net-list",
    ],
    &[
        "uri:network:///system?socket=/run/nonexistent-sock",
        "net-list",
        "--bogus",
    ],
];

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|f| f.is_file())
    })
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A shell script that runs every step with the CLI given as `$1`
/// (`virsh` or the virtnet binary) and stores `N.out`, `N.err`, `N.rc`
/// in `$2`.
fn script(data: &Path) -> String {
    let data = data.display().to_string();
    let mut s = String::from(
        "#!/bin/sh\nCLI=\"$1\"; OUT=\"$2\"; mkdir -p \"$OUT\"\n\
         URI='network:///system'\n\
         [ \"$3\" = virtnet ] && URI='network:///system?socket=/run/libvirt/libvirt-sock'\n",
    );
    for (i, step) in STEPS.iter().enumerate() {
        let mut env = Vec::new();
        let mut uri = "\"$URI\"".to_owned();
        let mut bg = None;
        let mut words = Vec::new();
        for w in step.iter() {
            let w = w.replace("{data}", &data);
            if let Some(e) = w.strip_prefix("env:") {
                env.push(e.to_owned());
            } else if let Some(u) = w.strip_prefix("uri:") {
                uri = quote(u);
            } else if w == "differs:" {
                continue;
            } else if let Some(b) = w.strip_prefix("bg:") {
                bg = Some(b.to_owned());
            } else {
                words.push(w);
            }
        }
        // Global options (-q, -r) go before -c as the step lists them.
        let split = words.iter().take_while(|w| w.starts_with('-')).count();
        let (globals, rest) = words.split_at(split);
        if let Some(b) = &bg {
            let _ = writeln!(
                s,
                "(sleep 1; virsh -c network:///system {b} >/dev/null 2>&1) &"
            );
        }
        let _ = writeln!(
            s,
            "env {} \"$CLI\" {} -c {uri} {} >\"$OUT/{i}.out\" 2>\"$OUT/{i}.err\" </dev/null; echo $? >\"$OUT/{i}.rc\"",
            env.iter().map(|e| quote(e)).collect::<Vec<_>>().join(" "),
            globals
                .iter()
                .map(|g| quote(g))
                .collect::<Vec<_>>()
                .join(" "),
            rest.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "),
        );
        if bg.is_some() {
            s.push_str("wait\n");
        }
    }
    s
}

/// Replaces the editor's temporary file name (random in both tools).
fn normalize(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("/tmp/virs").or_else(|| rest.find("/tmp/virtnet")) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        match tail.find(".xml") {
            Some(j) if j <= "/tmp/virtnet".len() + 6 => {
                out.push_str("/tmp/EDITFILE.xml");
                rest = &tail[j + 4..];
            }
            _ => {
                out.push_str(&tail[..5]);
                rest = &tail[5..];
            }
        }
    }
    out.push_str(rest);
    out.into_bytes()
}

/// Checks the steps where virtnet differs from virsh 9.0 on purpose.
fn deliberate_differences(step: &[&str], dir: &Path, i: usize) {
    let out = std::fs::read_to_string(dir.join(format!("{i}.out"))).unwrap_or_default();
    let rc = std::fs::read_to_string(dir.join(format!("{i}.rc"))).unwrap_or_default();
    match step {
        ["differs:", "net-event", "--list"] => {
            assert_eq!(out, "lifecycle\nmetadata-change\n\n");
            assert_eq!(rc.trim(), "0");
        }
        ["differs:", _, "net-edit", "alpha"] => {
            let err = std::fs::read_to_string(dir.join(format!("{i}.err"))).unwrap_or_default();
            assert_eq!(
                err,
                "error: Failed.\nerror: unsupported configuration: unknown forwarding type 'bogus'\n"
            );
            assert_eq!(out, "\n");
            assert_eq!(rc.trim(), "1");
        }
        other => panic!("no expectation for {other:?}"),
    }
}

fn skip(why: &str) {
    eprintln!("skipped: {why}");
}

#[test]
fn every_step_matches_virsh_byte_for_byte() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("needs root for the libvirt sandbox");
    }
    let sandbox = workspace_root().join("bench/libvirt-sandbox");
    if !sandbox.is_file() {
        return skip("bench/libvirt-sandbox is missing");
    }
    if which("virsh").is_none()
        || which("libvirtd").is_none() && !Path::new("/usr/sbin/libvirtd").exists()
    {
        return skip(
            "virsh or libvirtd is not installed (apt install libvirt-clients libvirt-daemon)",
        );
    }
    let has_driver = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .any(|d| {
            d.path()
                .join("libvirt/connection-driver/libvirt_driver_network.so")
                .exists()
        });
    if !has_driver {
        return skip("libvirt's network driver is not installed (apt install libvirt-daemon)");
    }
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/cli");
    let data = data.canonicalize().expect("tests/data/cli");
    let work = std::env::temp_dir().join(format!("virtnet-oracle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let script_path = work.join("steps.sh");
    std::fs::write(&script_path, script(&data)).expect("script");
    let virtnet = env!("CARGO_BIN_EXE_virtnet");
    for (mode, cli) in [("virsh", "virsh"), ("virtnet", virtnet)] {
        let status = Command::new("timeout")
            .arg("900")
            .arg(&sandbox)
            .arg("sh")
            .arg(&script_path)
            .arg(cli)
            .arg(work.join(mode))
            .arg(mode)
            .status()
            .expect("run libvirt-sandbox");
        assert!(status.success(), "{mode} run failed: {status}");
    }
    let mut mismatches = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        if step.first() == Some(&"differs:") {
            deliberate_differences(step, &work.join("virtnet"), i);
            continue;
        }
        for ext in ["out", "err", "rc"] {
            let read = |mode: &str| {
                normalize(
                    &std::fs::read(work.join(mode).join(format!("{i}.{ext}"))).unwrap_or_default(),
                )
            };
            let (a, b) = (read("virsh"), read("virtnet"));
            if a != b {
                mismatches.push(format!(
                    "step {i} {step:?} {ext}:\n--- virsh\n{}\n--- virtnet\n{}",
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b)
                ));
            }
        }
    }
    if mismatches.is_empty() {
        let _ = std::fs::remove_dir_all(&work);
    }
    assert!(
        mismatches.is_empty(),
        "{} differences (outputs kept in {}):\n{}",
        mismatches.len(),
        work.display(),
        mismatches.join("\n")
    );
    eprintln!("{} steps identical to virsh", STEPS.len());
}

/// `net-edit` on a terminal: the definition fails, the user asks for help
/// (`?`), forces a retry (`f`), then gives up (`n`). Runs both tools under
/// `script` (a pseudo-terminal) and compares what the terminal shows.
#[test]
fn net_edit_retry_prompt_matches_virsh_on_a_terminal() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("needs root for the libvirt sandbox");
    }
    let sandbox = workspace_root().join("bench/libvirt-sandbox");
    if !sandbox.is_file() || which("virsh").is_none() || which("script").is_none() {
        return skip("needs bench/libvirt-sandbox, virsh and script(1)");
    }
    if !Path::new("/usr/sbin/libvirtd").exists() && which("libvirtd").is_none() {
        return skip("libvirtd is not installed");
    }
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/cli")
        .canonicalize()
        .expect("tests/data/cli");
    let work = std::env::temp_dir().join(format!("virtnet-oracle-tty-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let virtnet = env!("CARGO_BIN_EXE_virtnet");
    let mut s = format!(
        "virsh -c network:///system net-define {}/alpha.xml >/dev/null\n",
        quote(&data.display().to_string())
    );
    for (mode, cli) in [
        ("virsh", "virsh -c network:///system".to_owned()),
        (
            "virtnet",
            format!("{virtnet} -c network:///system?socket=/run/libvirt/libvirt-sock"),
        ),
    ] {
        let _ = writeln!(
            s,
            "(sleep 1; printf '?'; sleep 0.5; printf 'f'; sleep 0.5; printf 'n') | \
             EDITOR={} script -qec {} /dev/null >{}; echo $? >{}",
            quote(&format!("{}/editor-bogus-forward.sh", data.display())),
            quote(&format!("{cli} net-edit alpha")),
            quote(&work.join(format!("{mode}.tty")).display().to_string()),
            quote(&work.join(format!("{mode}.rc")).display().to_string()),
        );
    }
    let script_path = work.join("tty.sh");
    std::fs::write(&script_path, s).expect("script");
    let status = Command::new("timeout")
        .arg("120")
        .arg(&sandbox)
        .arg("sh")
        .arg(&script_path)
        .status()
        .expect("run libvirt-sandbox");
    assert!(status.success(), "{status}");
    let read = |name: &str| std::fs::read_to_string(work.join(name)).unwrap_or_default();
    // virsh (the library) also tries to start a polkit agent on a
    // terminal; that line is libvirt's, not the command's.
    let virsh_tty: String = read("virsh.tty")
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("Authorization not available"))
        .collect();
    let virtnet_tty = read("virtnet.tty");
    assert!(
        virtnet_tty.contains("Failed. Try again? [y,n,f,?]: "),
        "{virtnet_tty:?}"
    );
    assert_eq!(virtnet_tty, virsh_tty);
    assert_eq!(read("virtnet.rc"), read("virsh.rc"));
    let _ = std::fs::remove_dir_all(&work);
}
