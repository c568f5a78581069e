//! Process helpers with bounded waits: run a command with a time limit,
//! watch any process (child or not) through a pidfd, read pidfiles and
//! `/proc/PID/cmdline`.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

/// Errors from running or watching processes. Each names the program or
/// pid concerned.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The program did not finish in time (it has been killed).
    #[error("{program} did not finish within {timeout:?}")]
    Timeout {
        /// The program.
        program: String,
        /// The limit.
        timeout: Duration,
    },
    /// The program ran but failed.
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A process could not be watched or signalled.
    #[error("{what} (pid {pid}): {source}")]
    Pid {
        /// What was attempted.
        what: &'static str,
        /// The process.
        pid: i32,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A pidfile never appeared or never named a live process.
    #[error("pidfile {path} not written within {timeout:?}")]
    NoPidfile {
        /// The pidfile.
        path: PathBuf,
        /// How long we waited.
        timeout: Duration,
    },
}

/// A pidfd: a handle on one process that cannot be confused with a later
/// process reusing the pid. Works for processes that are not our children.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: i32,
}

impl Pidfd {
    /// Opens a pidfd for `pid` (`pidfd_open(2)`, Linux 5.3+).
    pub fn open(pid: i32) -> Result<Pidfd, ProcessError> {
        if pid <= 0 {
            return Err(ProcessError::Pid {
                what: "cannot watch process",
                pid,
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        // SAFETY: pidfd_open takes a pid and a flags word and returns a new
        // file descriptor or -1; no memory is passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(ProcessError::Pid {
                what: "cannot watch process",
                pid,
                source: io::Error::last_os_error(),
            });
        }
        let fd = i32::try_from(fd).map_err(|_| ProcessError::Pid {
            what: "cannot watch process",
            pid,
            source: io::Error::other("descriptor out of range"),
        })?;
        // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Pidfd { fd, pid })
    }

    /// The pid this handle watches.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends a signal (`pidfd_send_signal(2)`). ESRCH means it already exited.
    pub fn signal(&self, signal: Signal) -> Result<(), ProcessError> {
        // SAFETY: the descriptor is a valid pidfd we own; info is NULL as
        // the call permits, flags are 0.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            return Err(ProcessError::Pid {
                what: "cannot signal process",
                pid: self.pid,
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit; true when it has.
    pub fn wait_exit(&self, timeout: Duration) -> Result<bool, ProcessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) if n > 0 => return Ok(true),
                Ok(_) if left.is_zero() => return Ok(false),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(ProcessError::Pid {
                        what: "cannot wait for process",
                        pid: self.pid,
                        source: e.into(),
                    });
                }
            }
        }
    }

    /// Whether the process has exited (no waiting).
    pub fn has_exited(&self) -> bool {
        self.wait_exit(Duration::ZERO).unwrap_or(true)
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn program_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

/// Runs `cmd` to completion with `stdin` fed to it, killing it after
/// `timeout`. Returns its output whatever its exit status.
pub fn run_with_timeout(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, ProcessError> {
    let program = program_name(&cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        source,
    })?;
    let deadline = Instant::now() + timeout;
    let (tx, rx) = mpsc::channel::<(u8, Vec<u8>)>();
    if let Some(mut out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            let _ = tx.send((1, buf));
        });
    }
    if let Some(mut err) = child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            let _ = tx.send((2, buf));
        });
    }
    drop(tx);
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let exited = match Pidfd::open(pid) {
        Ok(pidfd) => pidfd.wait_exit(timeout)?,
        Err(_) => poll_try_wait(&mut child, deadline),
    };
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(ProcessError::Timeout { program, timeout });
    }
    let status = child.wait().map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        source,
    })?;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    // The pipes close when the program exits, unless it left a descendant
    // holding them; do not wait past the deadline (plus a grace second) for that.
    let read_deadline = deadline.max(Instant::now()) + Duration::from_secs(1);
    for _ in 0..2 {
        let left = read_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((1, b)) => stdout = b,
            Ok((_, b)) => stderr = b,
            Err(_) => break,
        }
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn poll_try_wait(child: &mut std::process::Child, deadline: Instant) -> bool {
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Like [`run_with_timeout`] but a non-zero exit is an error carrying stderr.
pub fn run_checked(
    cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, ProcessError> {
    let program = program_name(&cmd);
    let out = run_with_timeout(cmd, stdin, timeout)?;
    if !out.status.success() {
        return Err(ProcessError::Failed {
            program,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

/// Reads a pidfile: a decimal pid, optionally followed by a newline.
pub fn read_pidfile(path: &Path) -> Option<i32> {
    let text = fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    (pid > 0).then_some(pid)
}

/// Whether a process with this pid exists (it may be a zombie).
pub fn pid_exists(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits up to `timeout` for `path` to name a live process.
pub fn wait_for_pidfile(path: &Path, timeout: Duration) -> Result<i32, ProcessError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(100);
    loop {
        if let Some(pid) = read_pidfile(path) {
            if pid_exists(pid) {
                return Ok(pid);
            }
        }
        if Instant::now() >= deadline {
            return Err(ProcessError::NoPidfile {
                path: path.to_path_buf(),
                timeout,
            });
        }
        // The pid file usually appears within a few milliseconds: poll
        // often at first, then back off.
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// The command line of a process, one entry per argument.
pub fn cmdline(pid: i32) -> io::Result<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline"))?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| OsStr::from_bytes(a).to_string_lossy().into_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_collects_output_and_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; echo err >&2; exit 3"]);
        let out = run_with_timeout(cmd, Some(b"hello"), Duration::from_secs(10)).unwrap();
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn run_times_out_and_kills() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let start = Instant::now();
        let err = run_with_timeout(cmd, None, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn run_checked_reports_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo nope >&2; exit 1"]);
        let err = run_checked(cmd, None, Duration::from_secs(10)).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn pidfd_watches_and_signals() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pidfd = Pidfd::open(child.id() as i32).unwrap();
        assert!(!pidfd.wait_exit(Duration::from_millis(20)).unwrap());
        pidfd.signal(Signal::SIGTERM).unwrap();
        assert!(pidfd.wait_exit(Duration::from_secs(10)).unwrap());
        let _ = child.wait();
        assert!(!cmdline(std::process::id() as i32).unwrap().is_empty());
    }

    #[test]
    fn pidfile_parsing() {
        let dir = std::env::temp_dir().join(format!("virtnet-pidfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.pid");
        fs::write(&p, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(read_pidfile(&p), Some(std::process::id() as i32));
        assert_eq!(
            wait_for_pidfile(&p, Duration::from_secs(1)).unwrap(),
            std::process::id() as i32
        );
        fs::write(&p, "garbage").unwrap();
        assert_eq!(read_pidfile(&p), None);
        assert!(wait_for_pidfile(&p, Duration::from_millis(30)).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
