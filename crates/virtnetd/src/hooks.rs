//! The network hook, as libvirt runs it: `CONFIG/hooks/network` (and every
//! executable in `CONFIG/hooks/network.d/`, in name order) is called as
//! `SCRIPT NETWORK OPERATION SUB-OPERATION -` with the network (and port)
//! XML on standard input, wrapped in `<hookData>`. A failing `start` hook
//! aborts the start (after the other scripts have run, as in libvirt).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use virtnet_conf::{FormatFlags, NetworkDef, PortDef};

use crate::error::{Error, Result};

/// When the hook runs (libvirt's `virHookNetworkOpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookOp {
    /// Before a network starts (a failure aborts the start).
    Start,
    /// After a network started.
    Started,
    /// After a network stopped.
    Stopped,
    /// After a port was created.
    PortCreated,
    /// After a port was deleted.
    PortDeleted,
    /// After a live or persistent update.
    Updated,
}

impl HookOp {
    fn args(self) -> (&'static str, &'static str) {
        match self {
            HookOp::Start => ("start", "begin"),
            HookOp::Started => ("started", "begin"),
            HookOp::Stopped => ("stopped", "end"),
            HookOp::PortCreated => ("port-created", "begin"),
            HookOp::PortDeleted => ("port-deleted", "begin"),
            HookOp::Updated => ("updated", "begin"),
        }
    }
}

/// How long one hook script may run.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// The hook scripts present in `hooks_dir`, in the order they run.
fn scripts(hooks_dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    let mut out = Vec::new();
    let main = hooks_dir.join("network");
    if executable(&main) {
        out.push(main);
    }
    let mut extra: Vec<PathBuf> = std::fs::read_dir(hooks_dir.join("network.d"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| executable(p))
        .collect();
    extra.sort();
    out.extend(extra);
    out
}

fn hook_data(def: &NetworkDef, port: Option<&PortDef>) -> String {
    let mut xml = String::from("<hookData>\n");
    for line in def.to_xml(FormatFlags::ACTIVE).lines() {
        xml.push_str("  ");
        xml.push_str(line);
        xml.push('\n');
    }
    if let Some(p) = port {
        for line in p.to_xml().lines() {
            xml.push_str("  ");
            xml.push_str(line);
            xml.push('\n');
        }
    }
    xml.push_str("</hookData>");
    xml
}

/// Runs the network hooks for `op`. Without hook scripts this is free.
/// As in libvirt, every script runs even when one before it failed; the
/// call fails if any did, with the last failure.
pub fn run(hooks_dir: &Path, op: HookOp, def: &NetworkDef, port: Option<&PortDef>) -> Result<()> {
    let list = scripts(hooks_dir);
    if list.is_empty() {
        return Ok(());
    }
    let (op_name, sub_op) = op.args();
    let input = hook_data(def, port);
    let mut result = Ok(());
    for script in list {
        if let Err(e) = run_one(&script, &def.name, op_name, sub_op, &input) {
            result = Err(e);
        }
    }
    result
}

fn run_one(script: &Path, network: &str, op: &str, sub_op: &str, input: &str) -> Result<()> {
    let cmdline = format!("{} {network} {op} {sub_op} -", script.display());
    let fail = |what: String| Error::Hook(format!("{cmdline}: {what}"));
    let mut child = Command::new(script)
        .args([network, op, sub_op, "-"])
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A script that does not read its input is fine.
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = Instant::now() + HOOK_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("timed out after {HOOK_TIMEOUT:?}")));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(fail(format!(
            "unexpected exit status {}{}",
            out.status.code().unwrap_or(-1),
            if stderr.is_empty() {
                String::new()
            } else {
                format!(": {stderr}")
            }
        )))
    }
}
