//! One dnsmasq per network: start it, find its pid through its pidfile,
//! watch it through a pidfd (which also works for a dnsmasq started by an
//! earlier run of the daemon and re-adopted), reload it with SIGHUP, stop it
//! with SIGTERM then SIGKILL, and report unexpected deaths to a hook so the
//! daemon can respawn it.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::Signal;

use crate::process::{self, Pidfd, ProcessError};

/// Errors from dnsmasq supervision; they name the network or pid.
#[derive(Debug, thiserror::Error)]
pub enum DnsmasqError {
    /// dnsmasq refused to start (its own message follows).
    #[error("cannot start dnsmasq for network '{network}': {detail}")]
    Start {
        /// The network.
        network: String,
        /// dnsmasq's message or exit status.
        detail: String,
    },
    /// A dnsmasq for this network is already supervised.
    #[error("dnsmasq for network '{network}' is already running (pid {pid})")]
    AlreadyRunning {
        /// The network.
        network: String,
        /// Its pid.
        pid: i32,
    },
    /// The pid is not a dnsmasq using this network's configuration file.
    #[error("process {pid} is not dnsmasq with --conf-file={conf}")]
    NotOurs {
        /// The pid offered.
        pid: i32,
        /// The expected configuration file.
        conf: PathBuf,
    },
    /// No dnsmasq is supervised for this network.
    #[error("no dnsmasq running for network '{0}'")]
    NotRunning(String),
    /// Running, watching or signalling the process failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// How to run one network's dnsmasq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqSpec {
    /// The network it serves.
    pub network: String,
    /// The dnsmasq binary.
    pub binary: PathBuf,
    /// Its configuration file (`--conf-file=`); must set `pid-file=` to
    /// [`DnsmasqSpec::pid_file`].
    pub conf_file: PathBuf,
    /// Where dnsmasq writes its pid.
    pub pid_file: PathBuf,
    /// The lease helper (`--dhcp-script=`), if any.
    pub dhcp_script: Option<PathBuf>,
    /// Extra environment for dnsmasq, which it passes on to the lease
    /// helper (e.g. `VIR_BRIDGE_NAME`).
    pub env: Vec<(String, String)>,
}

impl DnsmasqSpec {
    /// The command line: `BINARY --conf-file=CONF --leasefile-ro
    /// [--dhcp-script=SCRIPT]`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--conf-file={}", self.conf_file.display()),
            "--leasefile-ro".to_string(),
        ];
        if let Some(script) = &self.dhcp_script {
            args.push(format!("--dhcp-script={}", script.display()));
        }
        args
    }
}

/// An unexpected exit of a supervised dnsmasq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqDeath {
    /// The network it served.
    pub network: String,
    /// The pid it had.
    pub pid: i32,
}

/// Supervises one dnsmasq per network.
pub trait DnsmasqSupervisor {
    /// Starts dnsmasq for a network and returns its pid once its pidfile
    /// names a live process.
    fn start(&self, spec: &DnsmasqSpec) -> Result<i32, DnsmasqError>;
    /// Takes over a dnsmasq started earlier (e.g. before a daemon restart)
    /// after checking that `/proc/PID/cmdline` names the same conf file.
    fn adopt(&self, spec: &DnsmasqSpec, pid: i32) -> Result<(), DnsmasqError>;
    /// Asks dnsmasq to re-read its hosts files (SIGHUP).
    fn reload(&self, network: &str) -> Result<(), DnsmasqError>;
    /// Stops a network's dnsmasq: SIGTERM, SIGKILL after a timeout; removes
    /// the pidfile. Stopping what is not running succeeds.
    fn stop(&self, network: &str) -> Result<(), DnsmasqError>;
    /// The pid of a network's dnsmasq, if supervised and alive.
    fn pid(&self, network: &str) -> Option<i32>;
}

/// Called, from a monitor thread, when a supervised dnsmasq exits without
/// being stopped.
pub type DeathHook = Arc<dyn Fn(DnsmasqDeath) + Send + Sync>;

struct Instance {
    pidfd: Arc<Pidfd>,
    spec: DnsmasqSpec,
    /// Identifies this watch in the epoll set (a network may be watched
    /// again with a new process).
    generation: u64,
}

struct Inner {
    instances: Mutex<HashMap<String, Instance>>,
    generation: Mutex<u64>,
    /// Every watched pidfd, readable when its process exits; one monitor
    /// thread waits on all of them.
    epoll: Epoll,
    monitor: std::sync::Once,
    hook: DeathHook,
    start_timeout: Duration,
    stop_timeout: Duration,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instance>> {
        self.instances.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops watching a process (its exit is then not reported).
    fn unwatch(&self, instance: &Instance) {
        let _ = self.epoll.delete(instance.pidfd.as_fd());
    }
}

/// The real supervisor. Dropping it leaves the dnsmasq processes running
/// (a restarted daemon re-adopts them) and ends the monitor threads.
pub struct Dnsmasq {
    inner: Arc<Inner>,
}

impl Dnsmasq {
    /// A supervisor reporting unexpected deaths to `hook`; fails only when
    /// the kernel refuses an epoll instance.
    pub fn new(hook: DeathHook) -> std::io::Result<Dnsmasq> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        Ok(Dnsmasq {
            inner: Arc::new(Inner {
                instances: Mutex::new(HashMap::new()),
                generation: Mutex::new(0),
                epoll,
                monitor: std::sync::Once::new(),
                hook,
                start_timeout: Duration::from_secs(10),
                stop_timeout: Duration::from_secs(5),
            }),
        })
    }

    /// A supervisor reporting unexpected deaths on a channel.
    pub fn with_channel() -> std::io::Result<(Dnsmasq, mpsc::Receiver<DnsmasqDeath>)> {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let hook: DeathHook = Arc::new(move |d| {
            if let Ok(tx) = tx.lock() {
                let _ = tx.send(d);
            }
        });
        Ok((Dnsmasq::new(hook)?, rx))
    }

    /// The pid in the spec's pidfile if it is a live dnsmasq using the
    /// spec's conf file (what [`DnsmasqSupervisor::adopt`] would accept).
    pub fn running_pid(spec: &DnsmasqSpec) -> Option<i32> {
        let pid = process::read_pidfile(&spec.pid_file)?;
        is_ours(spec, pid).then_some(pid)
    }

    fn watch(&self, spec: &DnsmasqSpec, pid: i32) -> Result<(), DnsmasqError> {
        let pidfd = Arc::new(Pidfd::open(pid)?);
        let generation = {
            let mut g = self
                .inner
                .generation
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *g += 1;
            *g
        };
        let weak = Arc::downgrade(&self.inner);
        let mut spawn_error = None;
        self.inner.monitor.call_once(|| {
            if let Err(e) = std::thread::Builder::new()
                .name("dnsmasq-monitor".into())
                .spawn(move || monitor(weak))
            {
                spawn_error = Some(e);
            }
        });
        if let Some(e) = spawn_error {
            return Err(ProcessError::Pid {
                what: "cannot start the dnsmasq monitor thread",
                pid,
                source: e,
            }
            .into());
        }
        self.inner
            .epoll
            .add(
                pidfd.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, generation),
            )
            .map_err(|e| ProcessError::Pid {
                what: "cannot watch the process",
                pid,
                source: e.into(),
            })?;
        let previous = self.inner.lock().insert(
            spec.network.clone(),
            Instance {
                pidfd,
                spec: spec.clone(),
                generation,
            },
        );
        if let Some(old) = previous {
            self.inner.unwatch(&old);
        }
        Ok(())
    }
}

/// One thread watches every supervised dnsmasq: a pidfd becomes readable
/// when its process exits, and the death is reported unless the watch was
/// removed (stopped on purpose) first. Ends when the supervisor is dropped.
fn monitor(inner: Weak<Inner>) {
    let mut events = [EpollEvent::empty(); 16];
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        // Wake now and then to notice that the supervisor is gone.
        let n = match strong.epoll.wait(&mut events, EpollTimeout::from(500u16)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                log::warn!("cannot watch dnsmasq processes: {e}");
                return;
            }
        };
        for ev in &events[..n] {
            let generation = ev.data();
            let dead = {
                let mut map = strong.lock();
                let network = map
                    .iter()
                    .find(|(_, i)| i.generation == generation)
                    .map(|(n, _)| n.clone());
                network.and_then(|n| map.remove(&n).map(|i| (n, i)))
            };
            let Some((network, instance)) = dead else {
                continue;
            };
            strong.unwatch(&instance);
            let death = DnsmasqDeath {
                network: network.clone(),
                pid: instance.pidfd.pid(),
            };
            log::warn!("dnsmasq of network '{network}' (pid {}) died", death.pid);
            (strong.hook)(death);
        }
    }
}

/// Whether `pid` runs dnsmasq with exactly this spec's conf file.
fn is_ours(spec: &DnsmasqSpec, pid: i32) -> bool {
    let Ok(args) = process::cmdline(pid) else {
        return false;
    };
    let want = format!("--conf-file={}", spec.conf_file.display());
    let is_dnsmasq = args.first().is_some_and(|a| {
        Path::new(a)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("dnsmasq"))
    });
    is_dnsmasq && args.contains(&want)
}

impl DnsmasqSupervisor for Dnsmasq {
    fn start(&self, spec: &DnsmasqSpec) -> Result<i32, DnsmasqError> {
        if let Some(pid) = self.pid(&spec.network) {
            return Err(DnsmasqError::AlreadyRunning {
                network: spec.network.clone(),
                pid,
            });
        }
        let _ = std::fs::remove_file(&spec.pid_file);
        let mut cmd = Command::new(&spec.binary);
        cmd.args(spec.args());
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        log::debug!(
            "starting {} {}",
            spec.binary.display(),
            spec.args().join(" ")
        );
        // dnsmasq forks into the background; the foreground process exits
        // once the daemon is set up (non-zero, with a message, if not).
        let out = process::run_with_timeout(cmd, None, self.inner.start_timeout)?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(DnsmasqError::Start {
                network: spec.network.clone(),
                detail: if msg.is_empty() {
                    out.status.to_string()
                } else {
                    msg
                },
            });
        }
        let pid = process::wait_for_pidfile(&spec.pid_file, self.inner.start_timeout)?;
        if !is_ours(spec, pid) {
            return Err(DnsmasqError::NotOurs {
                pid,
                conf: spec.conf_file.clone(),
            });
        }
        self.watch(spec, pid)?;
        Ok(pid)
    }

    fn adopt(&self, spec: &DnsmasqSpec, pid: i32) -> Result<(), DnsmasqError> {
        if !is_ours(spec, pid) {
            return Err(DnsmasqError::NotOurs {
                pid,
                conf: spec.conf_file.clone(),
            });
        }
        if let Some(existing) = self.pid(&spec.network) {
            if existing == pid {
                return Ok(());
            }
            return Err(DnsmasqError::AlreadyRunning {
                network: spec.network.clone(),
                pid: existing,
            });
        }
        self.watch(spec, pid)
    }

    fn reload(&self, network: &str) -> Result<(), DnsmasqError> {
        let pidfd = match self.inner.lock().get(network) {
            Some(i) => Arc::clone(&i.pidfd),
            None => return Err(DnsmasqError::NotRunning(network.to_string())),
        };
        pidfd.signal(Signal::SIGHUP)?;
        Ok(())
    }

    fn stop(&self, network: &str) -> Result<(), DnsmasqError> {
        // Taking the instance out first cancels its monitor, so the exit
        // below is not reported as a death.
        let Some(instance) = self.inner.lock().remove(network) else {
            return Ok(());
        };
        self.inner.unwatch(&instance);
        let pidfd = &instance.pidfd;
        let timeout = self.inner.stop_timeout;
        if pidfd.signal(Signal::SIGTERM).is_ok() && !pidfd.wait_exit(timeout)? {
            log::warn!(
                "dnsmasq of network '{network}' (pid {}) ignored SIGTERM, killing it",
                pidfd.pid()
            );
            let _ = pidfd.signal(Signal::SIGKILL);
            if !pidfd.wait_exit(timeout)? {
                return Err(ProcessError::Timeout {
                    program: format!("dnsmasq (pid {}) after SIGKILL", pidfd.pid()),
                    timeout,
                }
                .into());
            }
        }
        let _ = std::fs::remove_file(&instance.spec.pid_file);
        Ok(())
    }

    fn pid(&self, network: &str) -> Option<i32> {
        let map = self.inner.lock();
        let i = map.get(network)?;
        (!i.pidfd.has_exited()).then(|| i.pidfd.pid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DnsmasqSpec {
        DnsmasqSpec {
            network: "default".into(),
            binary: "/usr/sbin/dnsmasq".into(),
            conf_file: "/var/lib/virtnet/dnsmasq/default.conf".into(),
            pid_file: "/run/virtnet/network/default.pid".into(),
            dhcp_script: Some("/usr/libexec/virtnet-leaseshelper".into()),
            env: Vec::new(),
        }
    }

    #[test]
    fn command_line_is_libvirts() {
        assert_eq!(
            spec().args(),
            vec![
                "--conf-file=/var/lib/virtnet/dnsmasq/default.conf",
                "--leasefile-ro",
                "--dhcp-script=/usr/libexec/virtnet-leaseshelper",
            ]
        );
    }

    #[test]
    fn adopt_refuses_other_processes() {
        let (sup, _rx) = Dnsmasq::with_channel().unwrap();
        let me = std::process::id() as i32;
        let err = sup.adopt(&spec(), me).unwrap_err();
        assert!(matches!(err, DnsmasqError::NotOurs { .. }), "{err}");
        assert!(err.to_string().contains("default.conf"), "{err}");
        assert!(sup.stop("default").is_ok(), "stopping nothing succeeds");
        assert!(matches!(
            sup.reload("default"),
            Err(DnsmasqError::NotRunning(_))
        ));
        assert_eq!(sup.pid("default"), None);
    }
}
