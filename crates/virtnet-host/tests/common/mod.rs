//! Shared helpers for the tests that touch a real kernel. They only run
//! inside the private network namespace `scripts/netns-runner` provides.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Whether real host effects may be exercised: only as root inside the
/// test runner's private network namespace. Prints why not otherwise.
pub fn may_touch_kernel(test: &str) -> bool {
    if std::env::var("VIRTNET_TEST_IN_NETNS").as_deref() != Ok("1") {
        eprintln!("skipped: {test}: not inside scripts/netns-runner's private network namespace");
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: {test}: needs root (inside the test namespace)");
        return false;
    }
    true
}

/// Whether a program can be found on PATH or at an absolute path.
pub fn have_program(test: &str, prog: &str) -> bool {
    let found = if prog.starts_with('/') {
        Path::new(prog).exists()
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).exists()))
            .unwrap_or(false)
    };
    if !found {
        eprintln!("skipped: {test}: {prog} not installed");
    }
    found
}

/// Runs a command with a time limit and returns its stdout; panics with
/// its stderr when it fails.
pub fn run(cmd: &[&str]) -> String {
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..]);
    let out = virtnet_host::process::run_with_timeout(c, None, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip -j ARGS…` parsed as JSON.
pub fn ip_json(args: &[&str]) -> serde_json::Value {
    let mut cmd = vec!["ip", "-j"];
    cmd.extend_from_slice(args);
    let out = run(&cmd);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {out}"))
}

/// Runs a command with a time limit; whether it succeeded.
pub fn run_status(cmd: &[&str]) -> bool {
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..]);
    virtnet_host::process::run_with_timeout(c, None, Duration::from_secs(20))
        .map(|o| o.status.success())
        .unwrap_or(false)
}
