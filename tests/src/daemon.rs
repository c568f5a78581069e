//! The daemon under test, `virtnetd`, on private directories, and its
//! clients (`virtnet`, Debian's `virsh`) pointed at its socket.
//!
//! The binaries are looked up in `VIRTNETD_BIN` / `VIRTNET_BIN`, else in
//! the cargo target directory this test executable was built into (build
//! them first: `cargo build -p virtnetd -p virtnet` with the same
//! `CARGO_TARGET_DIR`). When missing, [`Daemon::start`] returns
//! [`Error::Unavailable`].

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::process::{self, DEFAULT_TIMEOUT, Output, Proc, SpawnOpts, TempDir};

/// Name of the daemon's socket inside its run directory.
pub const SOCKET_NAME: &str = "virtnetd-sock";

/// How [`Daemon::start`] runs the daemon.
#[derive(Debug, Clone, Default)]
pub struct DaemonOpts {
    /// Pass `--no-default-network`.
    pub no_default_network: bool,
    /// Run it in this namespace (default: the test's own).
    pub netns: Option<Netns>,
    /// Extra arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Use this program instead of the located `virtnetd`.
    pub binary: Option<PathBuf>,
    /// How long to wait for the socket to accept connections
    /// (default 30 s).
    pub ready_timeout: Option<Duration>,
}

/// A running `virtnetd` with its own `--config-dir`, `--run-dir` and
/// `--state-dir` under a temporary directory. Stopped on drop, along with
/// any process still referring to those directories (its dnsmasqs); when the
/// test is panicking its log is printed.
pub struct Daemon {
    opts: DaemonOpts,
    binary: PathBuf,
    dir: TempDir,
    proc: Option<Proc>,
    starts: u32,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("binary", &self.binary)
            .field("dir", &self.dir.path())
            .field("pid", &self.pid())
            .finish()
    }
}

/// Finds one of our binaries: `$env`, else next to this test executable's
/// directory in the cargo target directory.
pub fn locate_binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Unavailable(format!(
                "{env}={} does not exist",
                p.display()
            )))
        };
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("locate the test executable", e))?;
    // target/<profile>/deps/<test>  ->  target/<profile>/<name>
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        Error::Unavailable(format!(
            "{name} not built (looked in {}; set {env} or run `cargo build -p {name}` with the same target directory)",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
    })
}

impl Daemon {
    /// Starts the daemon on fresh directories and waits until its socket
    /// accepts connections.
    pub fn start(opts: DaemonOpts) -> Result<Daemon> {
        let binary = match &opts.binary {
            Some(b) => b.clone(),
            None => locate_binary("virtnetd", "VIRTNETD_BIN")?,
        };
        let dir = TempDir::new("daemon")?;
        for sub in ["config", "run", "state"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p)
                .map_err(|e| Error::io(format!("create {}", p.display()), e))?;
        }
        let mut daemon = Daemon {
            opts,
            binary,
            dir,
            proc: None,
            starts: 0,
        };
        daemon.start_again()?;
        Ok(daemon)
    }

    /// `--config-dir`.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// `--run-dir`.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// `--state-dir`.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The daemon's socket.
    pub fn socket_path(&self) -> PathBuf {
        self.run_dir().join(SOCKET_NAME)
    }

    /// The libvirt URI clients use: `network:///system?socket=…`.
    pub fn uri(&self) -> String {
        format!("network:///system?socket={}", self.socket_path().display())
    }

    /// Where everything the daemon printed goes (all starts, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("virtnetd.log")
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The running daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// Whether the daemon process is alive.
    pub fn is_running(&mut self) -> bool {
        match self.proc.as_mut() {
            Some(p) => matches!(p.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The running daemon process, e.g. to wait for a log line.
    pub fn proc(&mut self) -> Option<&mut Proc> {
        self.proc.as_mut()
    }

    /// Starts the daemon again on the same directories (after
    /// [`Daemon::kill9`] or [`Daemon::stop`]) and waits until it is ready.
    pub fn start_again(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        self.proc = None;
        self.starts += 1;
        let ns = self.opts.netns.clone().unwrap_or_else(Netns::current);
        let mut cmd = ns.command(&self.binary);
        cmd.arg("--config-dir").arg(self.config_dir());
        cmd.arg("--run-dir").arg(self.run_dir());
        cmd.arg("--state-dir").arg(self.state_dir());
        if self.opts.no_default_network {
            cmd.arg("--no-default-network");
        }
        cmd.args(&self.opts.args);
        cmd.envs(self.opts.env.iter().map(|(k, v)| (k, v)));
        let log_path = self.log_path();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("open {}", log_path.display()), e))?;
        let _ = writeln!(
            log,
            "==== start #{} in {}: {}",
            self.starts,
            ns.label(),
            process::command_line(&cmd)
        );
        drop(log);
        let proc = Proc::spawn(
            cmd,
            SpawnOpts {
                label: Some("virtnetd".into()),
                log_file: Some(log_path),
                stdin: false,
            },
        )?;
        self.proc = Some(proc);
        self.wait_ready(self.opts.ready_timeout.unwrap_or(Duration::from_secs(30)))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let socket = self.socket_path();
        loop {
            if let Some(p) = self.proc.as_mut() {
                if let Some(status) = p.try_wait()? {
                    return Err(self.exited(status));
                }
            }
            if socket.exists() && UnixStream::connect(&socket).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::WaitTimeout {
                    what: format!("virtnetd to accept connections on {}", socket.display()),
                    after: timeout,
                    context: format!(
                        "log {}:\n{}",
                        self.log_path().display(),
                        process::tail(&self.log(), 40)
                    ),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn exited(&self, status: ExitStatus) -> Error {
        Error::Exited {
            what: "virtnetd".into(),
            status,
            log_path: self.log_path(),
            log: process::tail(&self.log(), 40),
        }
    }

    /// Kills the daemon with SIGKILL (as a crash would) and reaps it;
    /// whatever it started keeps running.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut p) = self.proc.take() {
            p.signal(Signal::SIGKILL);
            if p.wait_timeout(Duration::from_secs(10))?.is_none() {
                return Err(Error::WaitTimeout {
                    what: "virtnetd to die after SIGKILL".into(),
                    after: Duration::from_secs(10),
                    context: String::new(),
                });
            }
            // Dropping the Proc would kill its process group, which holds
            // the dnsmasqs the daemon started: leave them be.
            std::mem::forget(p);
        }
        Ok(())
    }

    /// Stops the daemon with SIGTERM (SIGKILL after 10 s) and returns how
    /// it ended; whatever it started keeps running.
    pub fn stop(&mut self) -> Result<Option<ExitStatus>> {
        let Some(mut p) = self.proc.take() else {
            return Ok(None);
        };
        p.signal(Signal::SIGTERM);
        let status = match p.wait_timeout(Duration::from_secs(10))? {
            Some(s) => s,
            None => {
                p.signal(Signal::SIGKILL);
                p.wait_timeout(Duration::from_secs(10))?
                    .ok_or_else(|| Error::WaitTimeout {
                        what: "virtnetd to die after SIGKILL".into(),
                        after: Duration::from_secs(10),
                        context: String::new(),
                    })?
            }
        };
        std::mem::forget(p);
        Ok(Some(status))
    }

    /// Graceful restart: [`Daemon::stop`] then [`Daemon::start_again`].
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// Runs `virsh -c <uri> <args>` (`$VIRSH_BIN` or `virsh`).
    pub fn virsh<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let virsh =
            std::env::var_os("VIRSH_BIN").map_or_else(|| PathBuf::from("virsh"), PathBuf::from);
        self.client(&virsh, args)
    }

    /// Runs `virtnet -c <uri> <args>` (`$VIRTNET_BIN`, or the built one).
    pub fn virtnet<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let bin = locate_binary("virtnet", "VIRTNET_BIN")?;
        self.client(&bin, args)
    }

    /// Runs a libvirt client `program -c <uri> <args>` with
    /// `LIBVIRT_DEFAULT_URI` set to the same URI, with [`DEFAULT_TIMEOUT`].
    pub fn client<I, S>(&self, program: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = std::process::Command::new(program);
        cmd.arg("-c").arg(self.uri()).args(args);
        cmd.env("LIBVIRT_DEFAULT_URI", self.uri());
        process::run(cmd, DEFAULT_TIMEOUT)
    }

    /// Prints the log to stderr (used on failure).
    pub fn dump_log(&self) {
        eprintln!(
            "---- virtnetd log {} ----\n{}\n---- end of virtnetd log ----",
            self.log_path().display(),
            process::tail(&self.log(), 200)
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if thread::panicking() {
            self.dump_log();
        }
        let _ = self.stop();
        kill_referring_to(self.dir.path());
    }
}

/// Kills (SIGKILL) every process whose command line mentions `dir`.
pub fn kill_referring_to(dir: &Path) {
    // The directory as a whole path component: followed by '/', or ending
    // an argument, so that `…/daemon-1` does not match `…/daemon-10`.
    let needle = dir.as_os_str().as_encoded_bytes();
    let mentions = |cmdline: &[u8]| {
        cmdline.windows(needle.len()).enumerate().any(|(i, w)| {
            w == needle && matches!(cmdline.get(i + needle.len()), None | Some(b'/' | 0))
        })
    };
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if mentions(&cmdline) {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}
