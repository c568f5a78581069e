//! The command line without a daemon: option errors, connection failures,
//! help and version, through the built binary.

use std::process::{Command, Output};

fn virtnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtnet"))
        .args(args)
        .env_remove("VIRTNET_DEFAULT_URI")
        .output()
        .expect("run virtnet")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn parse_errors_print_virsh_messages_and_exit_1() {
    for (args, msg) in [
        (
            &["net-list", "--bogus"][..],
            "error: command 'net-list' doesn't support option --bogus\n",
        ),
        (
            &["net-info"][..],
            "error: command 'net-info' requires <network> option\n",
        ),
        (
            &["net-dumpxml", "alpha", "beta"][..],
            "error: unexpected data 'beta'\n",
        ),
        (&["bogus-cmd"][..], "error: unknown command: 'bogus-cmd'\n"),
        (
            &["--bogus"][..],
            "error: unsupported option '--bogus'. See --help.\n",
        ),
        (
            &["-c"][..],
            "error: option '-c'/'--connect' requires an argument\n",
        ),
    ] {
        let out = virtnet(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), msg, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn connection_failures() {
    // Named connection: opened first, no trailing empty line.
    let out = virtnet(&[
        "-c",
        "virtnet:///system?socket=/nonexistent/sock",
        "net-list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: failed to connect to the hypervisor\n\
         error: Failed to connect socket to '/nonexistent/sock': No such file or directory\n"
    );
    assert!(out.stdout.is_empty());
    // Default connection: opened when the command runs, then the empty line.
    let out = Command::new(env!("CARGO_BIN_EXE_virtnet"))
        .args(["net-list"])
        .env(
            "VIRTNET_DEFAULT_URI",
            "network:///system?socket=/nonexistent/sock",
        )
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "\n");
    let out = virtnet(&[
        "-c",
        "qemu+ssh://root@far/system?command=/nonexistent/ssh",
        "net-list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: failed to connect to the hypervisor\n\
         error: Cannot run '/nonexistent/ssh': No such file or directory\n"
    );
    // An ssh that exits at once (refused login, say).
    let out = virtnet(&[
        "-c",
        "virtnet+ssh://far/system?command=/bin/false",
        "net-list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: failed to connect to the hypervisor\n\
         error: End of file while reading data: Input/output error\n"
    );
    let out = virtnet(&["-c", "bogus", "net-list"]);
    assert_eq!(
        text(&out.stderr),
        "error: failed to connect to the hypervisor\n\
         error: no connection driver available for URI 'bogus' does not include a driver name\n"
    );
}

#[test]
fn help_and_version_need_no_daemon() {
    let out = virtnet(&["help", "net-info"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "  NAME\n    net-info - network information\n\n  SYNOPSIS\n    net-info <network>\n\n  \
         DESCRIPTION\n    Returns basic information about the network\n\n  OPTIONS\n    \
         [--network] <string>  network name or uuid\n\n\n"
    );
    let out = virtnet(&["help", "bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: command or command group 'bogus' doesn't exist\n"
    );
    let out = virtnet(&["-v"]);
    assert_eq!(
        text(&out.stdout),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = virtnet(&["help", "network"]);
    assert!(
        text(&out.stdout).starts_with(" Networking (help keyword 'network'):\n    net-autostart ")
    );
    let out = virtnet(&["-h"]);
    assert!(text(&out.stdout).contains("net-lint"));
}

/// A scratch directory, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("virtnet-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts a one-connection server on `path` that answers each chunk with
/// its upper-case copy, and returns what it received in all.
fn upcase_server(path: &std::path::Path) -> std::thread::JoinHandle<Vec<u8>> {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind");
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut all = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let up: Vec<u8> = buf[..n].to_ascii_uppercase();
            if s.write_all(&up).is_err() {
                break;
            }
        }
        all
    })
}

/// Runs `cmd` as a tunnel: writes a line, expects it back upper-cased,
/// closes standard input and expects a clean exit.
fn check_tunnel(mut cmd: Command, server: std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tunnel");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    stdin.write_all(b"hello tunnel\n").expect("write");
    let mut got = [0u8; 13];
    stdout.read_exact(&mut got).expect("read back");
    assert_eq!(&got, b"HELLO TUNNEL\n");
    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).expect("read to end");
    assert!(rest.is_empty(), "nothing but the peer's bytes: {rest:?}");
    let status = child.wait().expect("wait");
    assert!(status.success(), "tunnel exit status {status:?}");
    assert_eq!(server.join().expect("server"), b"hello tunnel\n");
}

#[test]
fn tunnel_copies_between_stdio_and_the_socket() {
    let dir = Scratch::new("tunnel");
    let sock = dir.0.join("virtnetd-sock");
    let server = upcase_server(&sock);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_virtnet"));
    cmd.args(["tunnel", "--socket"]).arg(&sock);
    check_tunnel(cmd, server);
}

#[test]
fn virt_ssh_helper_picks_the_socket_from_the_uri() {
    let dir = Scratch::new("helper");
    let sock = dir.0.join("virtnetd-sock-ro");
    let server = upcase_server(&sock);
    let helper = dir.0.join("virt-ssh-helper");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_virtnet"), &helper).expect("symlink");
    let mut cmd = Command::new(&helper);
    cmd.arg("-r")
        .arg(format!("qemu:///system?socket={}", sock.display()));
    check_tunnel(cmd, server);
    // A URI naming another host is refused.
    let out = Command::new(&helper)
        .arg("qemu+ssh://far/system")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "error: unsupported configuration: the tunnel's URI 'qemu+ssh://far/system' must name the local host\n"
    );
}

#[test]
fn tunnel_without_a_daemon() {
    let out = virtnet(&["tunnel", "--socket", "/nonexistent/virtnetd-sock"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "error: Failed to connect socket to '/nonexistent/virtnetd-sock': No such file or directory\n"
    );
}

#[test]
fn bridge_helper_usage_and_missing_daemon() {
    let out = virtnet(&["qemu-bridge-helper", "--use-vnet"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Usage: qemu-bridge-helper [--use-vnet] --br=bridge --fd=unixfd\n"
    );
    let out = virtnet(&[
        "-c",
        "virtnet:///system?socket=/nonexistent/virtnetd-sock",
        "qemu-bridge-helper",
        "--use-vnet",
        "--br=virbr0",
        "--fd=3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "error: cannot reach virtnetd: Failed to connect socket to '/nonexistent/virtnetd-sock"
        ),
        "{err}"
    );
}

#[test]
fn attach_interface_print_xml_as_virsh_writes_it() {
    // --print-xml still connects first, as virsh does; the XML itself is
    // checked against virsh in the scenarios. Here: the option checks that
    // come before anything is sent.
    let out = virtnet(&[
        "-c",
        "virtnet:///system?socket=/nonexistent/sock",
        "attach-interface",
        "vm1",
        "network",
        "default",
        "--current",
        "--live",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("failed to connect to the hypervisor"));
}
