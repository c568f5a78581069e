//! A real dnsmasq on a bridge inside a private network namespace: start,
//! reload with SIGHUP, adoption by a second supervisor (as after a daemon
//! restart), death reporting after `kill -9`, stop.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use virtnet_host::dnsmasq::{Dnsmasq, DnsmasqError, DnsmasqSpec, DnsmasqSupervisor};
use virtnet_host::netlink::{AddressOptions, BridgeSpec, Netlink, NetlinkOps};
use virtnet_host::netns::Netns;
use virtnet_host::process::{Pidfd, pid_exists};

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("virtnet-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_conf(dir: &Path, bridge: &str) -> DnsmasqSpec {
    let conf = dir.join("net.conf");
    let pid = dir.join("net.pid");
    std::fs::write(dir.join("addnhosts"), "192.168.230.10 guest1\n").unwrap();
    std::fs::write(
        &conf,
        format!(
            "strict-order\n\
             user=root\n\
             pid-file={pid}\n\
             except-interface=lo\n\
             bind-dynamic\n\
             interface={bridge}\n\
             dhcp-range=192.168.230.2,192.168.230.254,255.255.255.0\n\
             dhcp-no-override\n\
             dhcp-authoritative\n\
             addn-hosts={dir}/addnhosts\n\
             log-facility={dir}/dnsmasq.log\n",
            pid = pid.display(),
            dir = dir.display(),
        ),
    )
    .unwrap();
    let script = dir.join("leases.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    DnsmasqSpec {
        network: "dnsnet".into(),
        binary: DNSMASQ.into(),
        conf_file: conf,
        pid_file: pid,
        dhcp_script: Some(script),
        env: Vec::new(),
    }
}

/// How many times dnsmasq has (re)read the extra hosts file so far.
fn hosts_reads(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("dnsmasq.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("addnhosts"))
        .count()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn dnsmasq_lifecycle() {
    if !common::may_touch_kernel("dnsmasq_lifecycle")
        || !common::have_program("dnsmasq_lifecycle", DNSMASQ)
    {
        return;
    }
    // Its own namespace, so the DNS/DHCP ports are free and nothing leaks.
    Netns::new().unwrap().run(lifecycle).unwrap();
}

fn lifecycle() {
    let nl = Netlink::open().unwrap();
    nl.create_bridge(&BridgeSpec {
        name: "vdbr0".into(),
        mac: None,
        mtu: None,
        stp: false,
        forward_delay: Duration::ZERO,
    })
    .unwrap();
    nl.add_address(
        "vdbr0",
        "192.168.230.1/24".parse().unwrap(),
        AddressOptions::default(),
    )
    .unwrap();
    nl.set_up("vdbr0", true).unwrap();
    let dir = scratch("dnsmasq");
    let spec = write_conf(&dir, "vdbr0");

    // Start: the pid comes from the pidfile and names our conf file.
    let (first, first_deaths) = Dnsmasq::with_channel().unwrap();
    let pid = first.start(&spec).unwrap();
    assert_eq!(first.pid("dnsnet"), Some(pid));
    assert_eq!(Dnsmasq::running_pid(&spec), Some(pid));
    let cmdline = virtnet_host::process::cmdline(pid).unwrap();
    assert!(cmdline.iter().any(|a| a == "--leasefile-ro"), "{cmdline:?}");
    assert!(
        cmdline.iter().any(|a| a.starts_with("--dhcp-script=")),
        "{cmdline:?}"
    );
    assert!(matches!(
        first.start(&spec),
        Err(DnsmasqError::AlreadyRunning { .. })
    ));

    // SIGHUP re-reads the hosts files; the process stays.
    wait_until("initial hosts read", || hosts_reads(&dir) >= 1);
    let before = hosts_reads(&dir);
    first.reload("dnsnet").unwrap();
    wait_until("hosts re-read after SIGHUP", || hosts_reads(&dir) > before);
    assert_eq!(first.pid("dnsnet"), Some(pid));

    // A restarted daemon: the old supervisor goes away (dnsmasq keeps
    // running, no death is reported), a new one adopts the pid.
    drop(first);
    assert!(matches!(
        first_deaths.recv_timeout(Duration::from_millis(200)),
        Err(RecvTimeoutError::Disconnected) | Err(RecvTimeoutError::Timeout)
    ));
    assert!(pid_exists(pid));
    let (second, deaths) = Dnsmasq::with_channel().unwrap();
    let mut other = spec.clone();
    other.conf_file = dir.join("other.conf");
    assert!(matches!(
        second.adopt(&other, pid),
        Err(DnsmasqError::NotOurs { .. })
    ));
    second.adopt(&spec, pid).unwrap();
    assert_eq!(second.pid("dnsnet"), Some(pid));

    // kill -9: the monitor reports the death.
    let pidfd = Pidfd::open(pid).unwrap();
    pidfd.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    let death = deaths
        .recv_timeout(Duration::from_secs(10))
        .expect("death reported");
    assert_eq!(death.network, "dnsnet");
    assert_eq!(death.pid, pid);
    assert_eq!(second.pid("dnsnet"), None);

    // Respawn (what the daemon's hook would do), then stop: no death
    // report for a stop, the process is gone and so is its pidfile.
    let pid2 = second.start(&spec).unwrap();
    assert_ne!(pid2, pid);
    let pidfd2 = Pidfd::open(pid2).unwrap();
    second.stop("dnsnet").unwrap();
    assert!(pidfd2.wait_exit(Duration::from_secs(5)).unwrap());
    assert!(!spec.pid_file.exists());
    assert!(deaths.recv_timeout(Duration::from_millis(300)).is_err());
    second.stop("dnsnet").unwrap();

    // A configuration dnsmasq rejects is reported with dnsmasq's words.
    let mut bad = spec.clone();
    bad.conf_file = dir.join("bad.conf");
    std::fs::write(&bad.conf_file, "no-such-option=1\n").unwrap();
    let err = second.start(&bad).unwrap_err().to_string();
    assert!(
        err.contains("dnsnet") && err.contains("bad option"),
        "{err}"
    );

    nl.delete_link("vdbr0").unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
