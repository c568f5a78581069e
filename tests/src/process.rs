//! Running programs with bounded time, captured output and guaranteed cleanup.
//!
//! Every program the harness starts runs in its own process group, so that
//! killing it also kills whatever it started, and asks the kernel to kill it
//! if the thread that started it goes away (`PR_SET_PDEATHSIG`), so a test
//! that dies hard does not leave daemons behind. Start long-lived programs
//! from the test's own thread, not from a short-lived helper thread.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Default limit for short commands (`ip`, `tc`, `sysctl`, …).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a finished program left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub cmd: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to stderr (lossy UTF-8).
    pub stderr: String,
}

impl Output {
    /// Whether the program exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code, or `None` when it was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Turns a non-zero exit into [`Error::Failed`].
    pub fn ok(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            Err(Error::Failed {
                cmd: self.cmd,
                status: self.status,
                stdout: self.stdout,
                stderr: self.stderr,
            })
        }
    }
}

/// Renders a command line for messages, quoting arguments that need it.
pub fn command_line(cmd: &Command) -> String {
    let mut words = vec![quote(cmd.get_program())];
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs a program to completion, killing it (and its process group) after
/// `timeout`. A non-zero exit is not an error here: inspect
/// [`Output::status`] or call [`Output::ok`].
pub fn run(cmd: Command, timeout: Duration) -> Result<Output> {
    let mut proc = Proc::spawn(cmd, SpawnOpts::default())?;
    match proc.wait_timeout(timeout)? {
        Some(_) => proc.finish(),
        None => {
            proc.kill();
            let out = proc.finish()?;
            Err(Error::Timeout {
                cmd: out.cmd,
                after: timeout,
                stdout: out.stdout,
                stderr: out.stderr,
            })
        }
    }
}

/// Like [`run`] with [`DEFAULT_TIMEOUT`], failing on a non-zero exit.
pub fn run_ok<I, S>(argv: I) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(command(argv)?, DEFAULT_TIMEOUT)?.ok()
}

/// Builds a [`Command`] from an argument vector whose first item is the program.
pub fn command<I, S>(argv: I) -> Result<Command>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut it = argv.into_iter();
    let program = it
        .next()
        .ok_or_else(|| Error::parse("command line", "empty argument vector"))?;
    let mut cmd = Command::new(program);
    cmd.args(it);
    Ok(cmd)
}

/// How [`Proc::spawn`] sets a program up.
#[derive(Debug, Default, Clone)]
pub struct SpawnOpts {
    /// Name used in messages; defaults to the program name.
    pub label: Option<String>,
    /// Also append everything the program prints to this file.
    pub log_file: Option<PathBuf>,
    /// Give the program a pipe on stdin (see [`Proc::write_stdin`]);
    /// otherwise stdin is `/dev/null`.
    pub stdin: bool,
}

#[derive(Default)]
struct CaptureState {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// stdout and stderr interleaved in arrival order.
    combined: Vec<u8>,
    open_streams: u32,
}

#[derive(Default)]
struct Capture {
    state: Mutex<CaptureState>,
    changed: Condvar,
}

impl Capture {
    fn lock(&self) -> MutexGuard<'_, CaptureState> {
        // A reader thread cannot panic while holding the lock, but stay
        // usable even if one did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running program whose output is captured; killed with its process
/// group when dropped.
pub struct Proc {
    child: Child,
    label: String,
    cmd: String,
    capture: Arc<Capture>,
    stdin: Option<ChildStdin>,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc")
            .field("pid", &self.child.id())
            .field("cmd", &self.cmd)
            .finish()
    }
}

impl Proc {
    /// Starts `cmd` in a new process group with stdout and stderr captured.
    pub fn spawn(mut cmd: Command, opts: SpawnOpts) -> Result<Proc> {
        let cmd_line = command_line(&cmd);
        let label = opts
            .label
            .unwrap_or_else(|| cmd.get_program().to_string_lossy().into_owned());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if opts.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only
        // calls prctl(2), which is async-signal-safe and touches no memory
        // shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            cmd: cmd_line.clone(),
            source,
        })?;
        let log = match &opts.log_file {
            Some(path) => Some(Arc::new(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error::io(format!("open log {}", path.display()), e))?,
            ))),
            None => None,
        };
        let capture = Arc::new(Capture::default());
        capture.lock().open_streams = 2;
        if let Some(out) = child.stdout.take() {
            start_reader(out, false, capture.clone(), log.clone());
        }
        if let Some(err) = child.stderr.take() {
            start_reader(err, true, capture.clone(), log);
        }
        let stdin = child.stdin.take();
        Ok(Proc {
            child,
            label,
            cmd: cmd_line,
            capture,
            stdin,
            status: None,
        })
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name used in messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The command line.
    pub fn cmd(&self) -> &str {
        &self.cmd
    }

    /// Everything printed so far on stdout.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.capture.lock().stdout).into_owned()
    }

    /// Everything printed so far on stderr.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.capture.lock().stderr).into_owned()
    }

    /// stdout and stderr so far, interleaved in arrival order.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.capture.lock().combined).into_owned()
    }

    /// Writes to the program's stdin (requires [`SpawnOpts::stdin`]).
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<()> {
        let label = self.label.clone();
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            Error::io(
                format!("write to {label}"),
                std::io::ErrorKind::BrokenPipe.into(),
            )
        })?;
        stdin
            .write_all(data)
            .and_then(|()| stdin.flush())
            .map_err(|e| Error::io(format!("write to {label}"), e))
    }

    /// Waits until a complete line of the combined output satisfies `pred`,
    /// and returns that line. Fails if the program exits first or `timeout`
    /// passes.
    pub fn wait_for_line(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Result<String> {
        self.wait_for_line_from(0, what, timeout, &mut pred)
            .map(|(line, _)| line)
    }

    /// Waits for a line containing `needle`; see [`Proc::wait_for_line`].
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        self.wait_for_line(&format!("{needle:?} from {}", self.label), timeout, |l| {
            l.contains(needle)
        })
    }

    /// Like [`Proc::wait_for_line`], looking only at output after byte
    /// offset `from` of the combined output; also returns the offset just
    /// past the matching line.
    pub fn wait_for_line_from(
        &mut self,
        from: usize,
        what: &str,
        timeout: Duration,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(String, usize)> {
        let deadline = Instant::now() + timeout;
        let mut scanned = from;
        loop {
            {
                let mut state = self.capture.lock();
                while let Some(rel) = state
                    .combined
                    .get(scanned..)
                    .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
                {
                    let end = scanned + rel;
                    let line = String::from_utf8_lossy(&state.combined[scanned..end])
                        .trim_end_matches('\r')
                        .to_string();
                    scanned = end + 1;
                    if pred(&line) {
                        return Ok((line, scanned));
                    }
                }
                let now = Instant::now();
                if now >= deadline {
                    drop(state);
                    return Err(Error::WaitTimeout {
                        what: what.to_string(),
                        after: timeout,
                        context: tail(&self.output(), 60),
                    });
                }
                if state.open_streams == 0 {
                    drop(state);
                    // The program closed its output: it has exited or is about to.
                    let status = self.wait_timeout(Duration::from_secs(2))?;
                    return Err(Error::WaitTimeout {
                        what: what.to_string(),
                        after: timeout,
                        context: format!(
                            "{} closed its output ({})\n{}",
                            self.label,
                            status.map_or("still running".to_string(), |s| s.to_string()),
                            tail(&self.output(), 60)
                        ),
                    });
                }
                let wait = (deadline - now).min(Duration::from_millis(200));
                state = self
                    .capture
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                drop(state);
            }
        }
    }

    /// The combined output after byte offset `from`.
    pub fn output_since(&self, from: usize) -> String {
        let state = self.capture.lock();
        String::from_utf8_lossy(state.combined.get(from..).unwrap_or_default()).into_owned()
    }

    /// Current length of the combined output, for [`Proc::wait_for_line_from`].
    pub fn output_len(&self) -> usize {
        self.capture.lock().combined.len()
    }

    /// Returns the exit status if the program has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|e| Error::io(format!("wait for {}", self.label), e))?;
        }
        Ok(self.status)
    }

    /// Waits up to `timeout` for the program to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig` to the program itself (not its group).
    pub fn signal(&self, sig: Signal) {
        if self.status.is_none() {
            let _ = kill(pid_of(self.child.id()), sig);
        }
    }

    /// Sends `sig` to the program's whole process group.
    pub fn signal_group(&self, sig: Signal) {
        let _ = killpg(pid_of(self.child.id()), sig);
    }

    /// Kills the process group with SIGKILL and reaps the program.
    pub fn kill(&mut self) {
        self.signal_group(Signal::SIGKILL);
        if self.status.is_none() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.status = Some(status);
            }
        }
    }

    /// Asks the program to stop with `sig`, waits up to `grace`, then kills
    /// the group; returns everything it printed.
    pub fn stop_with(mut self, sig: Signal, grace: Duration) -> Result<Output> {
        self.signal(sig);
        if self.wait_timeout(grace)?.is_none() {
            self.kill();
        }
        // Whatever the program started must not outlive it.
        self.signal_group(Signal::SIGKILL);
        self.finish()
    }

    /// [`Proc::stop_with`] SIGTERM and a 5 s grace period.
    pub fn stop(self) -> Result<Output> {
        self.stop_with(Signal::SIGTERM, Duration::from_secs(5))
    }

    /// Waits for the program to exit (killing it after `timeout`) and
    /// returns its output.
    pub fn wait_output(mut self, timeout: Duration) -> Result<Output> {
        if self.wait_timeout(timeout)?.is_none() {
            self.kill();
            let out = self.finish()?;
            return Err(Error::Timeout {
                cmd: out.cmd,
                after: timeout,
                stdout: out.stdout,
                stderr: out.stderr,
            });
        }
        self.finish()
    }

    /// Collects the output of an exited program.
    fn finish(&mut self) -> Result<Output> {
        let status = match self.status {
            Some(s) => s,
            None => {
                let s = self
                    .child
                    .wait()
                    .map_err(|e| Error::io(format!("wait for {}", self.label), e))?;
                self.status = Some(s);
                s
            }
        };
        // Give the readers a moment to drain the pipes; a grandchild that
        // kept them open must not hold us up.
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut state = self.capture.lock();
        while state.open_streams > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .capture
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(Output {
            cmd: self.cmd.clone(),
            status,
            stdout: String::from_utf8_lossy(&state.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&state.stderr).into_owned(),
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pid_of(id: u32) -> Pid {
    Pid::from_raw(i32::try_from(id).unwrap_or(i32::MAX))
}

fn start_reader(
    mut stream: impl Read + Send + 'static,
    is_stderr: bool,
    capture: Arc<Capture>,
    log: Option<Arc<Mutex<File>>>,
) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            if let Some(log) = &log {
                let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
                let _ = f.write_all(chunk);
            }
            let mut state = capture.lock();
            if is_stderr {
                state.stderr.extend_from_slice(chunk);
            } else {
                state.stdout.extend_from_slice(chunk);
            }
            state.combined.extend_from_slice(chunk);
            drop(state);
            capture.changed.notify_all();
        }
        capture.lock().open_streams -= 1;
        capture.changed.notify_all();
    });
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// Describes how a process ended, including the signal if any.
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => status.to_string(),
    }
}

/// A private directory under `$TMPDIR` (or `/tmp`), removed on drop unless
/// `VIRTNET_KEEP_TMP` is set.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `virtnet-<prefix>-<pid>-<n>`, world-readable so that
    /// programs dropping privileges (dnsmasq) can read what is in it.
    pub fn new(prefix: &str) -> Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("virtnet-{prefix}-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
                    return Ok(TempDir { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(format!("create {}", path.display()), e)),
            }
        }
        Err(Error::io(
            format!("create a temporary directory in {}", base.display()),
            std::io::ErrorKind::AlreadyExists.into(),
        ))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("VIRTNET_KEEP_TMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Finds an executable by name in `PATH` and the usual system directories
/// (test runners often have a `PATH` without the `sbin` ones). A name with
/// a `/` is checked as a path.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exe(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_exe(p))
}

/// The busybox binary: `$VIRTNET_BUSYBOX`, `/bin/busybox`, or from `PATH`.
pub fn busybox() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("VIRTNET_BUSYBOX") {
        return Ok(PathBuf::from(p));
    }
    find_tool("/bin/busybox")
        .or_else(|| find_tool("busybox"))
        .ok_or_else(|| Error::Unavailable("busybox not found (install busybox-static)".into()))
}
