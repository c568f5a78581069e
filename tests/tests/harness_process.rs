//! Self-tests of the harness's process plumbing: timeouts, captured output,
//! process-group cleanup, and the daemon helper driven by a stand-in daemon.

// Test code: a failing setup step should panic right there.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use virtnet_tests::daemon::kill_referring_to;
use virtnet_tests::process::{self, find_tool};
use virtnet_tests::{Daemon, DaemonOpts, Error, Proc, SpawnOpts, TempDir, or_skip};

fn alive(pid: u32) -> bool {
    // A zombie counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn run_captures_output_and_status() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
    let out = process::run(cmd, Duration::from_secs(10)).unwrap();
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert_eq!(out.code(), Some(3));
    match out.ok() {
        Err(Error::Failed { stderr, .. }) => assert_eq!(stderr, "err\n"),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn run_kills_on_timeout() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo started; sleep 30"]);
    let t = Instant::now();
    match process::run(cmd, Duration::from_millis(300)) {
        Err(Error::Timeout { stdout, .. }) => assert_eq!(stdout, "started\n"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn spawn_failure_names_the_program() {
    let err = process::run(
        Command::new("/nonexistent/virtnet-x"),
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/virtnet-x"), "{err}");
}

#[test]
fn wait_for_line_and_stdin() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo ready; read x; echo got-$x; sleep 30"]);
    let mut p = Proc::spawn(
        cmd,
        SpawnOpts {
            stdin: true,
            ..Default::default()
        },
    )
    .unwrap();
    p.wait_for("ready", Duration::from_secs(5)).unwrap();
    p.write_stdin(b"hello\n").unwrap();
    assert_eq!(
        p.wait_for("got-", Duration::from_secs(5)).unwrap(),
        "got-hello"
    );
    let err = p.wait_for("never", Duration::from_millis(200)).unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
    let out = p.stop().unwrap();
    assert!(out.stdout.contains("got-hello"));
}

#[test]
fn wait_for_reports_early_exit() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo bye; exit 1"]);
    let mut p = Proc::spawn(cmd, SpawnOpts::default()).unwrap();
    let t = Instant::now();
    let err = p.wait_for("never", Duration::from_secs(20)).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("bye"), "{err}");
}

#[test]
fn drop_kills_the_process_group() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 60 & echo $!; wait"]);
    let mut p = Proc::spawn(cmd, SpawnOpts::default()).unwrap();
    let line = p
        .wait_for_line("pid", Duration::from_secs(5), |l| !l.is_empty())
        .unwrap();
    let child: u32 = line.trim().parse().unwrap();
    assert!(alive(child));
    drop(p);
    assert!(wait_gone(child), "background child {child} survived");
}

#[test]
fn log_file_gets_everything() {
    let dir = TempDir::new("selftest").unwrap();
    let log = dir.join("log");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo one; echo two >&2"]);
    let p = Proc::spawn(
        cmd,
        SpawnOpts {
            log_file: Some(log.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    p.wait_output(Duration::from_secs(5)).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("one") && text.contains("two"), "{text}");
    let path = dir.path().to_path_buf();
    drop(dir);
    assert!(!path.exists());
}

/// A stand-in for virtnetd honouring the same command line: binds
/// RUN/virtnetd-sock, logs, and starts a detached child that names the
/// config directory (as dnsmasq would). STANDIN_MODE=exit fails at once,
/// STANDIN_MODE=hang never listens.
const STANDIN: &str = r#"#!/usr/bin/python3
import os, socket, subprocess, sys, time
args = sys.argv[1:]
run = args[args.index('--run-dir') + 1]
config = args[args.index('--config-dir') + 1]
print('stand-in starting:', ' '.join(args), flush=True)
mode = os.environ.get('STANDIN_MODE', 'serve')
if mode == 'exit':
    print('fatal: cannot start', file=sys.stderr, flush=True)
    sys.exit(2)
if mode == 'hang':
    time.sleep(3600)
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)', config],
                 start_new_session=True)
path = os.path.join(run, 'virtnetd-sock')
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
print('listening on', path, flush=True)
while True:
    c, _ = s.accept()
    c.close()
"#;

fn standin(dir: &TempDir) -> Option<PathBuf> {
    find_tool("/usr/bin/python3")?;
    let path = dir.join("virtnetd-standin");
    std::fs::write(&path, STANDIN).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(path)
}

fn processes_naming(dir: &Path) -> usize {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.parse().ok())
                .is_some_and(alive)
        })
        .count()
}

#[test]
fn daemon_start_kill9_restart_and_cleanup() {
    let bin_dir = TempDir::new("standin").unwrap();
    let Some(bin) = standin(&bin_dir) else {
        eprintln!("skipped: /usr/bin/python3 missing (needed for the stand-in daemon)");
        return;
    };
    let mut d = or_skip!(Daemon::start(DaemonOpts {
        no_default_network: true,
        binary: Some(bin),
        ..Default::default()
    }));
    assert!(d.socket_path().exists());
    assert!(d.is_running());
    let first = d.pid().unwrap();
    let log = d.log();
    assert!(log.contains("--no-default-network"), "{log}");
    assert!(
        log.contains(&format!("--run-dir {}", d.run_dir().display())),
        "{log}"
    );
    assert_eq!(processes_naming(&d.config_dir()), 2, "daemon and its child");

    d.kill9().unwrap();
    assert!(!d.is_running());
    assert!(wait_gone(first));
    // The "dnsmasq" it started outlives it, as after a crash.
    assert_eq!(processes_naming(&d.config_dir()), 1);

    d.start_again().unwrap();
    assert_ne!(d.pid().unwrap(), first);
    // The socket can accept before the log line has been copied.
    d.proc()
        .unwrap()
        .wait_for("listening on", Duration::from_secs(5))
        .unwrap();
    assert_eq!(d.log().matches("listening on").count(), 2);
    assert!(d.log().contains("==== start #2"));

    let out = d.client(Path::new("echo"), ["net-list", "--all"]).unwrap();
    assert_eq!(out.stdout.trim(), format!("-c {} net-list --all", d.uri()));
    assert!(d.uri().starts_with("network:///system?socket=/"));

    d.restart().unwrap();
    assert!(d.is_running());

    let config = d.config_dir();
    drop(d);
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_naming(&config) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(processes_naming(&config), 0, "processes left behind");
    drop(bin_dir);
}

#[test]
fn daemon_that_exits_reports_its_log() {
    let bin_dir = TempDir::new("standin").unwrap();
    let Some(bin) = standin(&bin_dir) else {
        eprintln!("skipped: /usr/bin/python3 missing (needed for the stand-in daemon)");
        return;
    };
    let err = Daemon::start(DaemonOpts {
        binary: Some(bin),
        env: vec![("STANDIN_MODE".into(), "exit".into())],
        ..Default::default()
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Exited { .. }), "{msg}");
    assert!(msg.contains("fatal: cannot start"), "{msg}");
}

#[test]
fn daemon_that_never_listens_times_out() {
    let bin_dir = TempDir::new("standin").unwrap();
    let Some(bin) = standin(&bin_dir) else {
        eprintln!("skipped: /usr/bin/python3 missing (needed for the stand-in daemon)");
        return;
    };
    let t = Instant::now();
    let err = Daemon::start(DaemonOpts {
        binary: Some(bin),
        env: vec![("STANDIN_MODE".into(), "hang".into())],
        ready_timeout: Some(Duration::from_millis(500)),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
    assert!(err.to_string().contains("stand-in starting"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn kill_referring_to_spares_others() {
    let dir = TempDir::new("selftest").unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("sleep 60; : \"$0\"").arg(dir.path());
    let mut mine = Proc::spawn(cmd, SpawnOpts::default()).unwrap();
    let mut other = Proc::spawn(
        {
            let mut c = Command::new("sh");
            c.args(["-c", "sleep 60; : unrelated"]);
            c
        },
        SpawnOpts::default(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    kill_referring_to(dir.path());
    assert!(mine.wait_timeout(Duration::from_secs(5)).unwrap().is_some());
    assert!(other.try_wait().unwrap().is_none());
}
