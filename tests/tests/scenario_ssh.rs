//! Remote virtnetd over ssh, with a real OpenSSH server.
//!
//! A "remote host" namespace, joined to the test's namespace by a veth
//! (10.99.0.1 here, 10.99.0.2 there), runs virtnetd and `sshd` (Debian's
//! openssh-server, key authentication, keys made here). sshd runs in a
//! mount namespace of its own that looks like a host with virtnet
//! installed: `/usr/local/bin` holds `virtnet` and a `virt-ssh-helper`
//! link to it, and `/run/virtnet` is the daemon's run directory.
//!
//! Then, from the test's namespace:
//! * `virtnet -c 'virtnet+ssh://root@10.99.0.2:2222/system?keyfile=…&no_verify=1&socket=…'`
//!   (`ssh … virtnet tunnel --socket …` on the far side) lists, defines
//!   and starts networks there;
//! * `virtnet --connect 'qemu+ssh://…'` does the same through the default
//!   socket;
//! * Debian's `virsh -c 'qemu+ssh://root@10.99.0.2:2222/system'` reaches
//!   the same daemon through virtnet's `virt-ssh-helper`, and with
//!   `?proxy=netcat&socket=…` through the far side's netcat.
//!
//! The ssh client never reads the user's configuration or known hosts:
//! `command=` names a wrapper that runs ssh with `-F` and a file here.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use virtnet_tests::daemon::locate_binary;
use virtnet_tests::process::{self, find_tool};
use virtnet_tests::{
    Daemon, DaemonOpts, Netns, Output, Proc, SpawnOpts, TempDir, Veth, or_skip, require,
};

const PORT: u16 = 2222;
const LOCAL: &str = "10.99.0.1";
const REMOTE: &str = "10.99.0.2";

/// The remote host: its namespace, daemon and sshd, and the client side's
/// files.
struct Remote {
    sshd: Proc,
    daemon: Daemon,
    _veth: Veth,
    ns: Netns,
    dir: TempDir,
}

impl Remote {
    fn start(virtnet: &Path) -> virtnet_tests::Result<Remote> {
        let ns = Netns::new("remote")?;
        let here = Netns::current();
        let veth = Veth::create(&here, "vtssh0", &ns, "eth0")?;
        here.ip(&["addr", "add", &format!("{LOCAL}/24"), "dev", "vtssh0"])?;
        ns.ip(&["addr", "add", &format!("{REMOTE}/24"), "dev", "eth0"])?;
        let daemon = Daemon::start(DaemonOpts {
            netns: Some(ns.clone()),
            ..DaemonOpts::default()
        })?;
        let dir = TempDir::new("ssh")?;
        let t = dir.join("");
        let t = t.display().to_string();
        let t = t.trim_end_matches('/');
        for key in ["host_key", "id_ed25519"] {
            let mut cmd = Command::new("ssh-keygen");
            cmd.args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key));
            process::run(cmd, process::DEFAULT_TIMEOUT)?.ok()?;
        }
        let io = |what: &str, e| virtnet_tests::Error::io(what.to_string(), e);
        std::fs::copy(dir.join("id_ed25519.pub"), dir.join("authorized_keys"))
            .map_err(|e| io("authorized_keys", e))?;
        // What "installing virtnet" put on the remote PATH.
        let bin = dir.join("bin");
        std::fs::create_dir(&bin).map_err(|e| io("bin", e))?;
        for name in ["virtnet", "virt-ssh-helper"] {
            std::os::unix::fs::symlink(virtnet, bin.join(name)).map_err(|e| io(name, e))?;
        }
        let write = |name: &str, text: String| {
            std::fs::write(dir.join(name), text).map_err(|e| io(name, e))
        };
        write(
            "sshd_config",
            format!(
                "Port {PORT}\nListenAddress {REMOTE}\nHostKey {t}/host_key\nPidFile {t}/sshd.pid\n\
                 AuthorizedKeysFile {t}/authorized_keys\nPermitRootLogin yes\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\n\
                 AllowUsers root\nLogLevel VERBOSE\n"
            ),
        )?;
        // For virsh, whose ssh options cannot avoid the user's files.
        write(
            "ssh_config",
            format!(
                "Host *\n  IdentityFile {t}/id_ed25519\n  IdentitiesOnly yes\n\
                 UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  LogLevel ERROR\n\
                 BatchMode yes\n"
            ),
        )?;
        write(
            "ssh-own-config",
            format!("#!/bin/sh\nexec ssh -F {t}/ssh_config \"$@\"\n"),
        )?;
        // For virtnet, whose URI options carry the key and the host-key policy.
        write(
            "ssh-no-config",
            "#!/bin/sh\nexec ssh -F /dev/null \"$@\"\n".to_string(),
        )?;
        for w in ["ssh-own-config", "ssh-no-config"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join(w), std::fs::Permissions::from_mode(0o755))
                .map_err(|e| io(w, e))?;
        }
        let run = daemon.run_dir();
        let script = format!(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/sshd /run/virtnet \
             && mount --bind {run} /run/virtnet && mount --bind {t}/bin /usr/local/bin \
             && exec /usr/sbin/sshd -D -e -f {t}/sshd_config",
            run = run.display()
        );
        let mut sshd = ns.spawn_with(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ],
            SpawnOpts {
                label: Some("sshd".into()),
                log_file: Some(dir.join("sshd.log")),
                stdin: false,
            },
        )?;
        sshd.wait_for("Server listening on", Duration::from_secs(15))?;
        Ok(Remote {
            sshd,
            daemon,
            _veth: veth,
            ns,
            dir,
        })
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A client's environment: nothing of the user's home.
    fn client(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        let home = self.dir.join("home");
        let _ = std::fs::create_dir_all(&home);
        cmd.env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env_remove("LIBVIRT_DEFAULT_URI")
            .env_remove("VIRTNET_DEFAULT_URI")
            .env_remove("SSH_AUTH_SOCK");
        cmd
    }
}

/// Runs `program -c uri args`, timing it.
fn run(remote: &Remote, program: &Path, ro: bool, uri: &str, args: &[&str]) -> Output {
    let mut cmd = remote.client(program);
    if ro {
        cmd.arg("-r");
    }
    cmd.arg("-c").arg(uri).args(args);
    let start = Instant::now();
    let out = process::run(cmd, Duration::from_secs(60)).expect("client finished in time");
    eprintln!(
        "{:>6.0} ms  {} {}",
        start.elapsed().as_secs_f64() * 1000.0,
        program.file_name().unwrap_or_default().to_string_lossy(),
        args.join(" ")
    );
    out
}

fn ok(remote: &Remote, program: &Path, uri: &str, args: &[&str]) -> String {
    let out = run(remote, program, false, uri, args);
    assert!(
        out.success(),
        "{} -c {uri} {} failed ({:?}):\n{}{}\n---- sshd ----\n{}",
        program.display(),
        args.join(" "),
        out.code(),
        out.stdout,
        out.stderr,
        remote.sshd.output()
    );
    out.stdout
}

fn virsh() -> Option<PathBuf> {
    std::env::var_os("VIRSH_BIN")
        .map(PathBuf::from)
        .or_else(|| find_tool("virsh"))
}

#[test]
fn virtnet_and_virsh_reach_a_remote_virtnetd_over_ssh() {
    or_skip!(require(&[
        "ip",
        "dnsmasq",
        "nft",
        "ssh",
        "sshd",
        "ssh-keygen",
        "unshare"
    ]));
    let t0 = Instant::now();
    let virtnet = or_skip!(locate_binary("virtnet", "VIRTNET_BIN"));
    let remote = or_skip!(Remote::start(&virtnet));
    eprintln!(
        "remote host with sshd and virtnetd ready in {:?}",
        t0.elapsed()
    );
    let sock = remote.daemon.socket_path().display().to_string();

    // virtnet's own scheme, the socket named: ssh … virtnet tunnel --socket ….
    let own = format!(
        "virtnet+ssh://root@{REMOTE}:{PORT}/system?keyfile={}&no_verify=1&no_tty=1&socket={sock}&command={}",
        remote.path("id_ed25519"),
        remote.path("ssh-no-config")
    );
    let list = ok(&remote, &virtnet, &own, &["net-list", "--all"]);
    assert_eq!(
        list,
        " Name      State    Autostart   Persistent\n\
         --------------------------------------------\n \
         default   active   yes         yes\n\n"
    );
    let xml = remote.dir.join("remnet.xml");
    std::fs::write(
        &xml,
        "<network>\n  <name>remnet</name>\n  <bridge name='vnrem0'/>\n  <forward mode='nat'/>\n  \
         <ip address='10.98.0.1' prefix='24'/>\n</network>\n",
    )
    .unwrap();
    let xml = xml.display().to_string();
    assert_eq!(
        ok(&remote, &virtnet, &own, &["net-define", &xml]),
        format!("Network remnet defined from {xml}\n\n")
    );
    assert_eq!(
        ok(&remote, &virtnet, &own, &["net-start", "remnet"]),
        "Network remnet started\n\n"
    );
    assert!(
        remote.ns.link_exists("vnrem0"),
        "bridge made on the remote host"
    );
    assert!(!Netns::current().link_exists("vnrem0"), "and not here");

    // domifaddr --source arp reads the daemon's host's ARP table (through
    // the same ssh), not the client's.
    let mac = "52:54:00:aa:bb:99";
    ok(
        &remote,
        &virtnet,
        &own,
        &[
            "attach-interface",
            "--domain",
            "vm1",
            "--type",
            "network",
            "--source",
            "remnet",
            "--mac",
            mac,
        ],
    );
    remote
        .ns
        .ip(&[
            "neigh",
            "replace",
            "10.98.0.77",
            "lladdr",
            mac,
            "dev",
            "vnrem0",
            "nud",
            "permanent",
        ])
        .unwrap();
    let addrs = ok(
        &remote,
        &virtnet,
        &own,
        &["domifaddr", "vm1", "--source", "arp"],
    );
    assert!(
        addrs.contains(&format!(" {mac}    ipv4         10.98.0.77/0\n")),
        "{addrs}"
    );
    assert_eq!(
        ok(
            &remote,
            &virtnet,
            &own,
            &["detach-interface", "vm1", "network"]
        ),
        "Interface detached successfully\n\n"
    );

    // libvirt's scheme, the default socket (/run/virtnet/virtnetd-sock there).
    let qemu = format!(
        "qemu+ssh://root@{REMOTE}:{PORT}/system?keyfile={}&no_verify=1&no_tty=1&command={}",
        remote.path("id_ed25519"),
        remote.path("ssh-no-config")
    );
    let list = ok(&remote, &virtnet, &qemu, &["net-list", "--all"]);
    assert!(
        list.contains("\n remnet    active   no          yes\n"),
        "{list}"
    );
    let out = run(&remote, &virtnet, true, &qemu, &["net-info", "remnet"]);
    assert!(out.success(), "read-only: {}", out.stderr);
    assert!(
        out.stdout.contains("Bridge:         vnrem0\n"),
        "{}",
        out.stdout
    );
    // A refused login is an error, not a hang.
    let bad = format!(
        "virtnet+ssh://nobody@{REMOTE}:{PORT}/system?keyfile={}&no_verify=1&no_tty=1&command={}",
        remote.path("id_ed25519"),
        remote.path("ssh-no-config")
    );
    let out = run(&remote, &virtnet, false, &bad, &["net-list"]);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr
            .ends_with("error: End of file while reading data: Input/output error\n"),
        "{}",
        out.stderr
    );

    // Debian's virsh: `virt-ssh-helper 'qemu:///system'` on the far side is
    // virtnet.
    match virsh() {
        None => eprintln!("skipped: virsh over ssh: virsh not installed (libvirt-clients)"),
        Some(virsh) => {
            let plain = format!(
                "qemu+ssh://root@{REMOTE}:{PORT}/system?command={}",
                remote.path("ssh-own-config")
            );
            let by_virsh = ok(&remote, &virsh, &plain, &["net-list", "--all"]);
            assert_eq!(by_virsh, list, "virsh and virtnet list the same");
            let dump = ok(&remote, &virsh, &plain, &["net-dumpxml", "remnet"]);
            assert_eq!(
                dump,
                ok(&remote, &virtnet, &own, &["net-dumpxml", "remnet"])
            );
            let out = run(&remote, &virsh, true, &plain, &["net-list", "--all"]);
            assert!(out.success(), "virsh -r: {}", out.stderr);
            assert_eq!(out.stdout, list);
            assert_eq!(
                ok(&remote, &virsh, &plain, &["net-destroy", "remnet"]),
                "Network remnet destroyed\n\n"
            );
            assert!(!remote.ns.link_exists("vnrem0"));
            // Without virtnet on the far side: its netcat and the socket.
            let nc = format!(
                "qemu+ssh://root@{REMOTE}:{PORT}/system?command={}&proxy=netcat&socket={sock}",
                remote.path("ssh-own-config")
            );
            assert_eq!(
                ok(&remote, &virsh, &nc, &["net-start", "remnet"]),
                "Network remnet started\n\n"
            );
            assert!(remote.ns.link_exists("vnrem0"));
        }
    }

    assert_eq!(
        ok(&remote, &virtnet, &own, &["net-destroy", "remnet"]),
        "Network remnet destroyed\n\n"
    );
    assert_eq!(
        ok(&remote, &virtnet, &own, &["net-undefine", "remnet"]),
        "Network remnet has been undefined\n\n"
    );
    eprintln!("ssh scenario took {:?}", t0.elapsed());
}
