//! virtnetd: the virtnet daemon.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use log::LevelFilter;
use virtnetd::driver::{Driver, DriverConfig};
use virtnetd::host::Host;
use virtnetd::rpcserver::Server;
use virtnetd::store::Paths;

const USAGE: &str = "\
Usage: virtnetd [OPTIONS]

Runs libvirt-compatible virtual networks and serves them over libvirt's
remote protocol (virsh -c 'network:///system?socket=RUN/virtnetd-sock').

Options:
  --config-dir DIR        persistent configuration (default /etc/virtnet)
  --run-dir DIR           runtime state and sockets (default /run/virtnet)
  --state-dir DIR         persistent state, dnsmasq files (default /var/lib/virtnet)
  --no-default-network    do not create the 'default' network on first start
  --dnsmasq PATH          dnsmasq binary (default: found on PATH)
  --busy-poll-us N        how long a client's connection polls for its next call
                          before sleeping, in microseconds (default 200; 0: never)
  -v, --verbose           log debug messages (VIRTNET_LOG=LEVEL also works)
  -h, --help              show this help
  -V, --version           show the version
";

struct Options {
    paths: Paths,
    default_network: bool,
    dnsmasq: Option<PathBuf>,
    sysfs_root: Option<PathBuf>,
    busy_poll: Duration,
    verbose: bool,
}

fn parse_args() -> anyhow::Result<Option<Options>> {
    let mut o = Options {
        paths: Paths::system(),
        default_network: true,
        dnsmasq: None,
        sysfs_root: None,
        busy_poll: virtnetd::rpcserver::DEFAULT_BUSY_POLL,
        verbose: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<PathBuf> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
                _ => bail!("option {name} needs a value"),
            }
        };
        match flag.as_str() {
            "--config-dir" => o.paths.config_dir = value("--config-dir")?,
            "--run-dir" => o.paths.run_dir = value("--run-dir")?,
            "--state-dir" => o.paths.state_dir = value("--state-dir")?,
            "--dnsmasq" => o.dnsmasq = Some(value("--dnsmasq")?),
            // Not in the usage: where SR-IOV functions are read (default
            // /sys), so a prepared tree can stand in for real hardware.
            "--sysfs-root" => o.sysfs_root = Some(value("--sysfs-root")?),
            "--busy-poll-us" => {
                let v = value("--busy-poll-us")?;
                let us: u64 = v
                    .to_str()
                    .and_then(|s| s.parse().ok())
                    .filter(|us| *us <= 1_000_000)
                    .with_context(|| {
                        format!(
                            "invalid value '{}' for --busy-poll-us: \
                             expected microseconds from 0 to 1000000",
                            v.display()
                        )
                    })?;
                o.busy_poll = Duration::from_micros(us);
            }
            "--no-default-network" => o.default_network = false,
            "-v" | "--verbose" => o.verbose = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("virtnetd {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            other => bail!("unknown option '{other}'\n\n{USAGE}"),
        }
    }
    Ok(Some(o))
}

/// Tells systemd (Type=notify) that the daemon serves requests.
fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let path = path.to_string_lossy().into_owned();
    let res = if let Some(abstract_name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
            .and_then(|addr| sock.send_to_addr(b"READY=1", &addr))
    } else {
        sock.send_to(b"READY=1", &path)
    };
    if let Err(e) = res {
        log::warn!("cannot notify systemd: {e}");
    }
}

/// The lease helper installed next to this binary, if any.
fn lease_helper() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let helper = exe.parent()?.join("virtnet-leaseshelper");
    helper.is_file().then_some(helper)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain on one line; no backtrace, whatever
            // RUST_BACKTRACE says.
            eprintln!("virtnetd: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    // Every client connection is a thread; glibc would give each its own
    // malloc arena (tens of MiB of address space, a few hundred KiB of
    // resident memory each). One arena serves a daemon this size: its
    // threads mostly wait for the kernel, not for each other.
    // SAFETY: mallopt only tunes the allocator; it runs before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let Some(opts) = parse_args()? else {
        return Ok(());
    };
    virtnetd::logger::init(if opts.verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    });
    let paths = opts.paths;
    std::fs::create_dir_all(&paths.run_dir)
        .with_context(|| format!("cannot create {}", paths.run_dir.display()))?;
    // One daemon per run directory: a second one stops here; one that is
    // still exiting gets a moment to let go.
    let _instance = virtnetd::rpcserver::lock_instance(&paths.run_dir, Duration::from_secs(5))?;
    // Bind before loading: clients that connect while networks are
    // re-adopted wait in the backlog.
    let (rw, ro) = Server::bind(&paths.socket(), &paths.socket_ro())?;

    let (death_tx, death_rx) = std::sync::mpsc::channel();
    let hook = Arc::new(move |d| {
        let _ = death_tx.send(d);
    });
    let mut host = Host::real(hook).context("cannot open netlink")?;
    if let Some(d) = opts.dnsmasq {
        host.dnsmasq_binary = d;
    }
    if let Some(root) = opts.sysfs_root {
        host.sriov = Arc::new(virtnet_host::sriov::SysfsSriov::new(root));
    }
    let dhcp_script = lease_helper();
    if dhcp_script.is_none() {
        log::warn!("virtnet-leaseshelper not found next to virtnetd: DHCP leases are not recorded");
    }
    let driver = Arc::new(Driver::new(
        DriverConfig {
            paths: paths.clone(),
            dhcp_script,
            default_network: opts.default_network,
        },
        host,
    ));
    driver.load()?;

    let d = driver.clone();
    std::thread::Builder::new()
        .name("dnsmasq-deaths".into())
        .spawn(move || {
            while let Ok(death) = death_rx.recv() {
                d.on_dnsmasq_death(death);
            }
        })?;

    let server = Server::new(driver, opts.busy_poll);
    let s = server.clone();
    std::thread::Builder::new()
        .name("accept-ro".into())
        .spawn(move || s.serve(ro, true))?;
    log::info!(
        "virtnetd {} serving on {}",
        env!("CARGO_PKG_VERSION"),
        paths.socket().display()
    );
    notify_ready();
    server.serve(rw, false);
    Ok(())
}
