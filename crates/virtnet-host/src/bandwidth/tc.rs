//! [`Tc`]: the real [`BandwidthOps`], running `tc -b -` (one run per
//! change) and creating ifb devices through netlink.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::{
    BandwidthError, BandwidthOps, DeviceShaping, FloorClass, TcClass, active, check_class_id,
    floor_filter_del_line, floor_filter_line, ifb_name, is_absent_message, parse_classes,
    plug_batch, quantum, set_batch, unplug_batch,
};
use crate::netlink::{NetlinkError, NetlinkOps, validate_ifname};
use crate::process::run_with_timeout;
use crate::types::MacAddr;

const SFQ_UNKNOWN: u8 = 0;
const SFQ_PRESENT: u8 = 1;
const SFQ_MISSING: u8 = 2;

/// Traffic control through the `tc` program. Each change is one `tc -b -`
/// run fed the whole batch on stdin; tc stops at the first failing line,
/// and the partial state is then cleared.
pub struct Tc {
    program: PathBuf,
    netlink: Arc<dyn NetlinkOps + Send + Sync>,
    timeout: Duration,
    sfq: AtomicU8,
}

impl std::fmt::Debug for Tc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tc")
            .field("program", &self.program)
            .field("timeout", &self.timeout)
            .field("sfq", &self.sfq_available())
            .finish()
    }
}

/// How one tc batch went.
struct BatchResult {
    ok: bool,
    stderr: String,
}

impl BatchResult {
    /// The 0-based index of the line tc reported as failed.
    fn failed_line(&self) -> Option<usize> {
        self.stderr.lines().find_map(|l| {
            l.strip_prefix("Command failed -:")
                .and_then(|n| n.trim().parse::<usize>().ok())
                .and_then(|n| n.checked_sub(1))
        })
    }

    /// The messages of failed commands, leaving out those that failed
    /// because their object was already gone. tc ends each failed
    /// command's messages with `Command failed -:N`.
    fn real_errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut group: Vec<&str> = Vec::new();
        let mut flush = |group: &mut Vec<&str>| {
            if !group.is_empty() && !group.iter().any(|l| is_absent_message(l)) {
                out.push(group.join(" "));
            }
            group.clear();
        };
        for line in self.stderr.lines().map(str::trim) {
            if line.starts_with("Command failed") {
                flush(&mut group);
            } else if !line.is_empty() {
                group.push(line);
            }
        }
        flush(&mut group);
        out
    }
}

impl Tc {
    /// `tc` from `PATH`, ifb devices through `netlink` (which must be bound
    /// to the same network namespace tc runs in).
    pub fn new(netlink: Arc<dyn NetlinkOps + Send + Sync>) -> Tc {
        Tc {
            program: PathBuf::from("tc"),
            netlink,
            timeout: Duration::from_secs(10),
            sfq: AtomicU8::new(SFQ_UNKNOWN),
        }
    }

    /// Uses another `tc` binary.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Tc {
        self.program = program.into();
        self
    }

    /// Changes how long one tc run may take (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Tc {
        self.timeout = timeout;
        self
    }

    /// Whether leaf classes get `sfq`: `None` until a change has found out.
    pub fn sfq_available(&self) -> Option<bool> {
        match self.sfq.load(Ordering::Relaxed) {
            SFQ_PRESENT => Some(true),
            SFQ_MISSING => Some(false),
            _ => None,
        }
    }

    fn batch(&self, lines: &[String], force: bool) -> Result<BatchResult, BandwidthError> {
        let mut cmd = Command::new(&self.program);
        if force {
            cmd.arg("-force");
        }
        cmd.args(["-b", "-"]);
        let mut input = lines.join("\n");
        input.push('\n');
        log::debug!("tc batch:\n{input}");
        let out = run_with_timeout(cmd, Some(input.as_bytes()), self.timeout)?;
        Ok(BatchResult {
            ok: out.status.success(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Runs the batch `build(sfq)`; when the kernel turns out to lack sfq,
    /// runs `undo` and the batch without sfq leaves.
    fn batch_with_leaves(
        &self,
        build: impl Fn(bool) -> Vec<String>,
        undo: impl Fn(),
    ) -> Result<BatchResult, BandwidthError> {
        let try_sfq = self.sfq.load(Ordering::Relaxed) != SFQ_MISSING;
        let lines = build(try_sfq);
        let has_sfq = |lines: &[String]| lines.iter().any(|l| l.contains(" sfq "));
        let result = self.batch(&lines, false)?;
        if result.ok {
            if has_sfq(&lines) {
                self.sfq.store(SFQ_PRESENT, Ordering::Relaxed);
            }
            return Ok(result);
        }
        let sfq_failed = result
            .failed_line()
            .and_then(|i| lines.get(i))
            .is_some_and(|l| l.contains(" sfq "));
        if !sfq_failed {
            return Ok(result);
        }
        log::info!("kernel has no sfq qdisc; leaf classes keep the default FIFO");
        self.sfq.store(SFQ_MISSING, Ordering::Relaxed);
        undo();
        self.batch(&build(false), false)
    }

    fn prepare_ifb(&self, ifb: &str, mtu: u32, device: &str) -> Result<(), BandwidthError> {
        if let Err(e) = self.netlink.create_ifb(ifb) {
            if e.errno() == Some(libc::EOPNOTSUPP) {
                return Err(BandwidthError::Unsupported {
                    device: device.to_string(),
                    detail: format!(
                        "shaping traffic from the guest needs ifb devices, which this kernel lacks ({e})"
                    ),
                });
            }
            return Err(e.into());
        }
        if mtu > 0 {
            self.netlink.set_mtu(ifb, mtu)?;
        }
        self.netlink.set_up(ifb, true)?;
        Ok(())
    }

    /// Deletes root and ingress qdiscs of `device` and of its ifb, ignoring
    /// what is not there.
    fn drop_qdiscs(&self, device: &str, ifb: &str) {
        let lines = vec![
            format!("qdisc del dev {device} root"),
            format!("qdisc del dev {device} ingress"),
            format!("qdisc del dev {ifb} root"),
        ];
        let _ = self.batch(&lines, true);
    }
}

fn tc_error(action: &str, device: &str, detail: String) -> BandwidthError {
    BandwidthError::Tc {
        action: action.to_string(),
        device: device.to_string(),
        detail,
    }
}

fn check_name(name: &str) -> Result<(), BandwidthError> {
    // Names go into a line-based batch: the kernel's rules (no whitespace,
    // no '/') keep them single tokens.
    validate_ifname(name).map_err(BandwidthError::from)
}

impl BandwidthOps for Tc {
    fn set(&self, shaping: &DeviceShaping) -> Result<(), BandwidthError> {
        let dev = &shaping.device;
        check_name(dev)?;
        let link = self
            .netlink
            .link(dev)?
            .ok_or_else(|| BandwidthError::NoSuchDevice(dev.clone()))?;
        self.clear(dev)?;
        if shaping.is_empty() {
            return Ok(());
        }
        let ifb = ifb_name(dev);
        if active(shaping.ingress.as_ref()) {
            self.prepare_ifb(&ifb, link.mtu, dev)?;
        }
        let result = self.batch_with_leaves(
            |sfq| set_batch(shaping, &ifb, sfq),
            || self.drop_qdiscs(dev, &ifb),
        );
        match result {
            Ok(r) if r.ok => Ok(()),
            Ok(r) => {
                let _ = self.clear(dev);
                Err(tc_error("set bandwidth", dev, r.stderr))
            }
            Err(e) => {
                let _ = self.clear(dev);
                Err(e)
            }
        }
    }

    fn clear(&self, device: &str) -> Result<(), BandwidthError> {
        check_name(device)?;
        let mut errors = Vec::new();
        match self.netlink.link(device) {
            Ok(Some(_)) => {
                let lines = vec![
                    format!("qdisc del dev {device} root"),
                    format!("qdisc del dev {device} ingress"),
                ];
                match self.batch(&lines, true) {
                    Ok(r) => {
                        let real = r.real_errors();
                        if !real.is_empty() {
                            errors.push(tc_error("clear bandwidth", device, real.join("; ")));
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(e.into()),
        }
        let ifb = ifb_name(device);
        match self.netlink.delete_link(&ifb) {
            Ok(()) => {}
            Err(NetlinkError::NoSuchDevice(_)) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => errors.push(e.into()),
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(BandwidthError::Several(errors)),
        }
    }

    fn plug_floor(&self, class: &FloorClass) -> Result<(), BandwidthError> {
        check_name(&class.bridge)?;
        check_class_id(class.class_id)?;
        let undo = || {
            let _ = self.batch(&unplug_batch(&class.bridge, class.class_id), true);
        };
        let r = self.batch_with_leaves(|sfq| plug_batch(class, sfq), undo)?;
        if r.ok {
            return Ok(());
        }
        undo();
        if r.stderr.contains("Cannot find device") {
            return Err(BandwidthError::NoSuchDevice(class.bridge.clone()));
        }
        Err(tc_error(
            &format!("add floor class 1:{:x}", class.class_id),
            &class.bridge,
            r.stderr,
        ))
    }

    fn unplug_floor(&self, bridge: &str, class_id: u32) -> Result<(), BandwidthError> {
        check_name(bridge)?;
        check_class_id(class_id)?;
        let r = self.batch(&unplug_batch(bridge, class_id), true)?;
        let real = r.real_errors();
        if real.is_empty() {
            Ok(())
        } else {
            Err(tc_error(
                &format!("remove floor class 1:{class_id:x}"),
                bridge,
                real.join("; "),
            ))
        }
    }

    fn update_class_rate(
        &self,
        bridge: &str,
        class_id: u32,
        rate: u64,
        ceil: u64,
    ) -> Result<(), BandwidthError> {
        check_name(bridge)?;
        let line = format!(
            "class change dev {bridge} classid 1:{class_id:x} htb rate {rate}kbps ceil {ceil}kbps quantum {}",
            quantum(rate)
        );
        let r = self.batch(&[line], false)?;
        if r.ok {
            Ok(())
        } else {
            Err(tc_error(
                &format!("change rate of class 1:{class_id:x}"),
                bridge,
                r.stderr,
            ))
        }
    }

    fn update_floor_filter(
        &self,
        bridge: &str,
        class_id: u32,
        mac: MacAddr,
    ) -> Result<(), BandwidthError> {
        check_name(bridge)?;
        check_class_id(class_id)?;
        let del = self.batch(&[floor_filter_del_line(bridge, class_id)], true)?;
        let real = del.real_errors();
        if !real.is_empty() {
            return Err(tc_error(
                &format!("remove filter of class 1:{class_id:x}"),
                bridge,
                real.join("; "),
            ));
        }
        let r = self.batch(&[floor_filter_line(bridge, class_id, mac)], false)?;
        if r.ok {
            Ok(())
        } else {
            Err(tc_error(
                &format!("add filter of class 1:{class_id:x}"),
                bridge,
                r.stderr,
            ))
        }
    }

    fn classes(&self, device: &str) -> Result<Vec<TcClass>, BandwidthError> {
        check_name(device)?;
        let mut cmd = Command::new(&self.program);
        cmd.args(["class", "show", "dev", device]);
        let out = run_with_timeout(cmd, None, self.timeout)?;
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if !out.status.success() {
            if stderr.contains("Cannot find device") {
                return Err(BandwidthError::NoSuchDevice(device.to_string()));
            }
            return Err(tc_error("list classes", device, stderr));
        }
        Ok(parse_classes(&String::from_utf8_lossy(&out.stdout)))
    }
}
