//! Remote connections over ssh, and their far end.
//!
//! The near end runs `ssh [-p PORT] [-l USER] [-i KEYFILE] -T -e none …
//! -- HOST virtnet tunnel` ([`ssh_argv`]) and speaks libvirt's protocol over
//! the child's standard input and output. The far end, `virtnet tunnel`
//! ([`run_tunnel`]), copies bytes between its standard input and output
//! and virtnetd's Unix socket until either side closes.
//!
//! libvirt's own clients (`virsh -c qemu+ssh://host/system`) run
//! `virt-ssh-helper [-r] URI` on the far side when it is on the `PATH`, and
//! `nc -U SOCKET` otherwise. virtnet installed as `virt-ssh-helper` (a
//! symbolic link) is such a helper: it picks virtnetd's socket from the URI
//! ([`helper_socket`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::conn::strerror;
use crate::uri::{ConnectUri, DEFAULT_SOCKET, DEFAULT_SOCKET_RO, Proxy, SshOptions, Transport};

/// Quotes `s` for a POSIX shell (the far side's login shell reads the
/// command ssh sends).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The socket the far side connects to when it must name one (netcat).
fn far_socket(opts: &SshOptions, read_only: bool) -> String {
    match &opts.socket {
        Some(s) => s.clone(),
        None if read_only => DEFAULT_SOCKET_RO.to_owned(),
        None => DEFAULT_SOCKET.to_owned(),
    }
}

/// The command line run on the far side.
pub fn remote_command(opts: &SshOptions, read_only: bool) -> String {
    let virtnet = opts.virtnet.as_deref().unwrap_or("virtnet");
    let mut native = format!("{} tunnel", shell_quote(virtnet));
    if let Some(s) = &opts.socket {
        native.push_str(" --socket ");
        native.push_str(&shell_quote(s));
    }
    if read_only {
        native.push_str(" --readonly");
    }
    let netcat = format!(
        "{} -U {}",
        shell_quote(opts.netcat.as_deref().unwrap_or("nc")),
        shell_quote(&far_socket(opts, read_only))
    );
    match opts.proxy {
        Proxy::Native => native,
        Proxy::Netcat => netcat,
        Proxy::Auto => {
            let script = format!(
                "if command -v {} >/dev/null 2>&1; then exec {native}; else exec {netcat}; fi",
                shell_quote(virtnet)
            );
            format!("sh -c {}", shell_quote(&script))
        }
    }
}

/// The ssh command line for a remote URI: libvirt's options (`-p`, `-l`,
/// `-i`, `-T -e none`, `BatchMode` for `no_tty`), and for `no_verify` no
/// host key check and no known-hosts file written.
pub fn ssh_argv(
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
    opts: &SshOptions,
    read_only: bool,
) -> Vec<String> {
    ssh_argv_running(user, host, port, opts, remote_command(opts, read_only))
}

/// The ssh command line that runs `command` on the host of a remote URI,
/// with the same options as the connection itself.
pub fn ssh_argv_running(
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
    opts: &SshOptions,
    command: String,
) -> Vec<String> {
    let mut argv = vec![opts.command.clone().unwrap_or_else(|| "ssh".to_owned())];
    if let Some(p) = port {
        argv.extend(["-p".to_owned(), p.to_string()]);
    }
    if let Some(u) = user {
        argv.extend(["-l".to_owned(), u.to_owned()]);
    }
    if let Some(k) = &opts.keyfile {
        argv.extend(["-i".to_owned(), k.clone()]);
    }
    argv.extend(["-T", "-e", "none"].map(str::to_owned));
    if opts.no_tty {
        argv.extend(["-o", "BatchMode=yes"].map(str::to_owned));
    }
    if opts.no_verify {
        argv.extend(
            [
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
            ]
            .map(str::to_owned),
        );
    }
    argv.extend(["--".to_owned(), host.to_owned(), command]);
    argv
}

/// Why the far end cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    /// The URI names no local virtnetd.
    #[error("{0}")]
    Uri(String),
    /// The socket could not be connected.
    #[error("Failed to connect socket to '{path}': {reason}")]
    Connect {
        /// Socket path.
        path: String,
        /// `strerror` text.
        reason: String,
    },
    /// Copying failed before either side closed.
    #[error("{0}")]
    Io(String),
}

/// The socket a tunnel connects to: `--socket`, else the one a local URI
/// names (libvirt's `qemu:///system`, `network:///system`,
/// `virtnet:///system`, with `?socket=` honoured), else virtnetd's default
/// for the access mode.
pub fn helper_socket(
    uri: Option<&str>,
    socket: Option<&str>,
    read_only: bool,
) -> Result<PathBuf, TunnelError> {
    if let Some(s) = socket {
        return Ok(PathBuf::from(s));
    }
    let Some(uri) = uri else {
        return Ok(PathBuf::from(if read_only {
            DEFAULT_SOCKET_RO
        } else {
            DEFAULT_SOCKET
        }));
    };
    let parsed = ConnectUri::parse(uri).map_err(|e| TunnelError::Uri(e.to_string()))?;
    match parsed.transport {
        Transport::Unix { .. } => Ok(parsed
            .local_socket(read_only)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))),
        Transport::Ssh { .. } => Err(TunnelError::Uri(format!(
            "unsupported configuration: the tunnel's URI '{uri}' must name the local host"
        ))),
    }
}

/// Connects to `socket` and copies standard input to it and its output
/// to standard output, until either side closes.
pub fn run_tunnel(socket: &Path) -> Result<(), TunnelError> {
    let stream = UnixStream::connect(socket).map_err(|e| TunnelError::Connect {
        path: socket.display().to_string(),
        reason: strerror(&e),
    })?;
    let io_err = |e: io::Error| TunnelError::Io(strerror(&e));
    // Own descriptors for fds 0 and 1, so that nothing here goes through
    // (or waits for) the standard library's locked handles.
    let stdin = File::from(io::stdin().as_fd().try_clone_to_owned().map_err(io_err)?);
    let stdout = File::from(io::stdout().as_fd().try_clone_to_owned().map_err(io_err)?);
    let upstream = stream.try_clone().map_err(io_err)?;
    bridge(stdin, stdout, stream, upstream)
}

/// Copies `input` to `sock_w` and `sock_r` to `output` on two threads;
/// returns when the first direction ends.
fn bridge(
    input: File,
    output: File,
    sock_w: UnixStream,
    sock_r: UnixStream,
) -> Result<(), TunnelError> {
    let (tx, rx) = mpsc::channel::<io::Result<()>>();
    let tx2 = tx.clone();
    std::thread::Builder::new()
        .name("tunnel-up".into())
        .spawn(move || {
            let res = copy(input, &sock_w);
            let _ = sock_w.shutdown(std::net::Shutdown::Write);
            let _ = tx.send(res);
        })
        .map_err(|e| TunnelError::Io(strerror(&e)))?;
    std::thread::Builder::new()
        .name("tunnel-down".into())
        .spawn(move || {
            let res = copy(&sock_r, output);
            let _ = tx2.send(res);
        })
        .map_err(|e| TunnelError::Io(strerror(&e)))?;
    match rx.recv() {
        Ok(Ok(())) | Err(_) => Ok(()),
        Ok(Err(e)) => Err(TunnelError::Io(strerror(&e))),
    }
}

/// `io::copy` that flushes every chunk (the peer waits for whole frames).
fn copy(mut from: impl Read, mut to: impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        match to.write_all(&buf[..n]).and_then(|()| to.flush()) {
            Ok(()) => {}
            // The reader went away: the tunnel ends normally.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Turns `virt-ssh-helper [-r|--readonly] URI` (libvirt's remote helper
/// command line) into virtnet's words: `[-r] tunnel URI`.
pub fn virt_ssh_helper_args(args: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut uri = None;
    for a in args {
        match a.as_str() {
            "-r" | "--readonly" => out.push("-r".to_owned()),
            "-h" | "--help" => return Ok(vec!["help".into(), "tunnel".into()]),
            "-V" | "--version" => return Ok(vec!["-V".into()]),
            s if s.starts_with('-') => return Err(format!("unknown option '{s}'")),
            s if uri.is_none() => uri = Some(s.to_owned()),
            s => return Err(format!("unexpected argument '{s}'")),
        }
    }
    let Some(uri) = uri else {
        return Err("usage: virt-ssh-helper [-r|--readonly] URI".into());
    };
    out.extend(["tunnel".to_owned(), "--".to_owned(), uri]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh_of(uri: &str, ro: bool) -> Vec<String> {
        let u = ConnectUri::parse(uri).unwrap();
        let Transport::Ssh {
            user,
            host,
            port,
            opts,
        } = u.transport
        else {
            panic!("{uri} is not ssh");
        };
        ssh_argv(user.as_deref(), &host, port, &opts, ro)
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote("/run/virtnet/virtnetd-sock"),
            "/run/virtnet/virtnetd-sock"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(x)"), "'$(x)'");
    }

    #[test]
    fn plain_ssh_uri() {
        assert_eq!(
            ssh_of("virtnet+ssh://host.example/system", false),
            [
                "ssh",
                "-T",
                "-e",
                "none",
                "--",
                "host.example",
                "virtnet tunnel"
            ]
        );
    }

    #[test]
    fn every_option() {
        assert_eq!(
            ssh_of(
                "qemu+ssh://root@10.0.0.2:2222/system?keyfile=/k/id%20key&no_verify=1&no_tty=1\
                 &socket=/srv/vn/virtnetd-sock&command=/opt/ssh&virtnet=/opt/bin/virtnet",
                true
            ),
            [
                "/opt/ssh",
                "-p",
                "2222",
                "-l",
                "root",
                "-i",
                "/k/id key",
                "-T",
                "-e",
                "none",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "--",
                "10.0.0.2",
                "/opt/bin/virtnet tunnel --socket /srv/vn/virtnetd-sock --readonly"
            ]
        );
    }

    #[test]
    fn netcat_and_auto_proxies() {
        let last = |uri: &str, ro| ssh_of(uri, ro).pop().unwrap();
        assert_eq!(
            last("network+ssh://h/system?netcat=/bin/nc", false),
            "/bin/nc -U /run/virtnet/virtnetd-sock"
        );
        assert_eq!(
            last("network+ssh://h/system?proxy=netcat", true),
            "nc -U /run/virtnet/virtnetd-sock-ro"
        );
        assert_eq!(
            last("network+ssh://h/system?proxy=auto&socket=/s", false),
            "sh -c 'if command -v virtnet >/dev/null 2>&1; then exec virtnet tunnel --socket /s; \
             else exec nc -U /s; fi'"
        );
        assert!(matches!(
            ConnectUri::parse("network+ssh://h/system?proxy=native&netcat=nc"),
            Err(crate::uri::UriError::BadParam(_))
        ));
        assert!(matches!(
            ConnectUri::parse("network+ssh://h/system?proxy=telepathy"),
            Err(crate::uri::UriError::BadParam(_))
        ));
        assert!(matches!(
            ConnectUri::parse("network+ssh://h/system?no_verify=yes"),
            Err(crate::uri::UriError::BadParam(_))
        ));
    }

    #[test]
    fn helper_sockets() {
        let s = |uri: Option<&str>, sock: Option<&str>, ro| {
            helper_socket(uri, sock, ro).map(|p| p.display().to_string())
        };
        assert_eq!(s(None, None, false).unwrap(), DEFAULT_SOCKET);
        assert_eq!(s(None, None, true).unwrap(), DEFAULT_SOCKET_RO);
        assert_eq!(
            s(Some("qemu:///system"), None, false).unwrap(),
            DEFAULT_SOCKET
        );
        assert_eq!(
            s(Some("network:///system"), None, true).unwrap(),
            DEFAULT_SOCKET_RO
        );
        assert_eq!(
            s(Some("virtnet:///system?socket=/x/sock"), None, false).unwrap(),
            "/x/sock"
        );
        assert_eq!(s(Some("qemu:///system"), Some("/y"), true).unwrap(), "/y");
        assert!(s(Some("qemu:///session"), None, false).is_err());
        assert!(s(Some("qemu+ssh://h/system"), None, false).is_err());
    }

    #[test]
    fn virt_ssh_helper_command_lines() {
        let a = |v: &[&str]| {
            virt_ssh_helper_args(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            a(&["qemu:///system"]).unwrap(),
            ["tunnel", "--", "qemu:///system"]
        );
        assert_eq!(
            a(&["-r", "qemu:///system"]).unwrap(),
            ["-r", "tunnel", "--", "qemu:///system"]
        );
        assert!(a(&[]).is_err());
        assert!(a(&["--bogus", "x"]).is_err());
        assert!(a(&["a", "b"]).is_err());
    }
}
