//! Connection URIs.
//!
//! virtnet's own `virtnet:///system` and libvirt's `network:///system` and
//! `qemu:///system` all name the local virtnetd: the read-write socket
//! `/run/virtnet/virtnetd-sock`, or `virtnetd-sock-ro` for a read-only
//! connection, unless `?socket=PATH` names another. `DRIVER+unix://` is the
//! same. `DRIVER+ssh://[user@]host[:port]/system` reaches a remote host
//! through `ssh … virtnet tunnel` ([`Transport::Ssh`]), with libvirt's
//! parameters for the ssh transport (`keyfile`, `no_verify`, `no_tty`,
//! `command`, `netcat`, `proxy`, `socket`; see [`SshOptions`]).

use std::path::PathBuf;

/// Where virtnetd listens read-write.
pub const DEFAULT_SOCKET: &str = "/run/virtnet/virtnetd-sock";
/// Where virtnetd listens read-only.
pub const DEFAULT_SOCKET_RO: &str = "/run/virtnet/virtnetd-sock-ro";
/// The URI used when none is given.
pub const DEFAULT_URI: &str = "virtnet:///system";
/// The environment variable that overrides [`DEFAULT_URI`].
pub const DEFAULT_URI_ENV: &str = "VIRTNET_DEFAULT_URI";
/// The name virtnet sends in `CONNECT_OPEN`: virtnetd and libvirt's
/// network driver both answer to it.
pub const OPEN_NAME: &str = "network:///system";

/// Drivers whose URIs name the local virtnetd.
const DRIVERS: &[&str] = &["virtnet", "network", "qemu"];

/// How to reach the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A local Unix socket.
    Unix {
        /// The socket path.
        socket: PathBuf,
    },
    /// `ssh [-p port] [-l user] host virtnet tunnel` on the far side.
    Ssh {
        /// Login name.
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// SSH port.
        port: Option<u16>,
        /// The URI's parameters for the ssh transport.
        opts: SshOptions,
    },
}

/// What runs on the far side of an ssh connection to reach virtnetd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Proxy {
    /// `virtnet tunnel` (the default; `proxy=native`).
    #[default]
    Native,
    /// `nc -U SOCKET` (`proxy=netcat`, or when `netcat=` is given): the far
    /// side needs only netcat and a running virtnetd.
    Netcat,
    /// `virtnet tunnel` when the far side has virtnet, netcat otherwise
    /// (`proxy=auto`).
    Auto,
}

/// libvirt's parameters for the ssh transport, as virtnet reads them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SshOptions {
    /// `socket=`: virtnetd's socket on the far side.
    pub socket: Option<String>,
    /// `keyfile=`: the private key (`ssh -i`).
    pub keyfile: Option<String>,
    /// `no_verify=1`: accept any host key and remember none.
    pub no_verify: bool,
    /// `no_tty=1`: never prompt (`ssh -o BatchMode=yes`).
    pub no_tty: bool,
    /// `command=`: the local ssh program (default `ssh`).
    pub command: Option<String>,
    /// `netcat=`: the netcat program on the far side.
    pub netcat: Option<String>,
    /// `proxy=`: what runs on the far side.
    pub proxy: Proxy,
    /// `virtnet=`: the virtnet program on the far side (default `virtnet`,
    /// looked up on the remote `PATH`).
    pub virtnet: Option<String>,
}

/// A parsed connection URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectUri {
    /// The URI as given.
    pub original: String,
    /// The driver part of the scheme (`virtnet`, `network`, `qemu`).
    pub driver: String,
    /// The transport.
    pub transport: Transport,
}

/// Why a URI cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// No `scheme:` at all.
    #[error("no connection driver available for URI '{0}' does not include a driver name")]
    NoDriverName(String),
    /// A scheme or path virtnet does not serve.
    #[error("no connection driver available for {0}")]
    NoDriver(String),
    /// A transport virtnet does not know.
    #[error("unsupported configuration: transport in URL not recognised (should be ssh|unix)")]
    BadTransport(String),
    /// A malformed URI.
    #[error("Unable to parse URI {0}")]
    Malformed(String),
    /// A malformed port.
    #[error("Unable to parse URI {0}")]
    BadPort(String),
    /// A parameter with a value virtnet cannot use.
    #[error("invalid argument: {0}")]
    BadParam(String),
}

fn param_bool(name: &str, v: &str) -> Result<bool, UriError> {
    match v {
        "0" | "" => Ok(false),
        "1" => Ok(true),
        _ => Err(UriError::BadParam(format!(
            "Failed to parse value of URI component {name}"
        ))),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ConnectUri {
    /// Parses a URI, an empty one meaning [`DEFAULT_URI`].
    pub fn parse(uri: &str) -> Result<ConnectUri, UriError> {
        let text = if uri.is_empty() { DEFAULT_URI } else { uri };
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(UriError::NoDriverName(text.to_owned()));
        };
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(UriError::NoDriverName(text.to_owned()));
        }
        let (driver, transport) = match scheme.split_once('+') {
            Some((d, t)) => (d, Some(t)),
            None => (scheme, None),
        };
        if !DRIVERS.contains(&driver) {
            return Err(UriError::NoDriver(text.to_owned()));
        }
        let Some(after) = rest.strip_prefix("//") else {
            return Err(UriError::NoDriver(text.to_owned()));
        };
        let (before_query, query) = match after.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (after, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i..]),
            None => (before_query, ""),
        };
        let mut socket = None;
        let mut ssh = SshOptions::default();
        let mut proxy = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (percent_decode(k), percent_decode(v));
            match k.as_str() {
                "socket" => socket = Some(v),
                "keyfile" => ssh.keyfile = Some(v),
                "no_verify" => ssh.no_verify = param_bool(&k, &v)?,
                "no_tty" => ssh.no_tty = param_bool(&k, &v)?,
                "command" => ssh.command = Some(v),
                "netcat" => ssh.netcat = Some(v),
                "virtnet" => ssh.virtnet = Some(v),
                "proxy" => {
                    proxy = Some(match v.as_str() {
                        "auto" => Proxy::Auto,
                        "netcat" => Proxy::Netcat,
                        "native" => Proxy::Native,
                        _ => {
                            return Err(UriError::BadParam(format!(
                                "Unable to parse proxy mode '{v}'"
                            )));
                        }
                    });
                }
                _ => {}
            }
        }
        ssh.proxy = match proxy {
            Some(p) => p,
            None if ssh.netcat.is_some() => Proxy::Netcat,
            None => Proxy::Native,
        };
        if ssh.proxy == Proxy::Native && ssh.netcat.is_some() {
            return Err(UriError::BadParam(
                "netcat path not valid with native proxy mode".into(),
            ));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(percent_decode(u)), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
            match stripped.split_once(']') {
                Some((h, rest)) => (h.to_owned(), rest.strip_prefix(':')),
                None => return Err(UriError::Malformed(text.to_owned())),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        let port = match port {
            None | Some("") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| UriError::BadPort(text.to_owned()))?,
            ),
        };
        let path = if path.is_empty() { "/" } else { path };
        let local = match transport {
            None => host.is_empty(),
            Some("unix") => true,
            Some("ssh") => false,
            Some(other) => return Err(UriError::BadTransport(other.to_owned())),
        };
        if path != "/system" {
            return Err(UriError::NoDriver(text.to_owned()));
        }
        let transport = if local {
            Transport::Unix {
                socket: socket.map(PathBuf::from).unwrap_or_default(),
            }
        } else {
            if host.is_empty() {
                return Err(UriError::Malformed(text.to_owned()));
            }
            ssh.socket = socket;
            Transport::Ssh {
                user: userinfo,
                host,
                port,
                opts: ssh,
            }
        };
        Ok(ConnectUri {
            original: text.to_owned(),
            driver: driver.to_owned(),
            transport,
        })
    }

    /// The Unix socket to use for a local URI: the `socket=` parameter or
    /// virtnetd's default for the access mode.
    pub fn local_socket(&self, read_only: bool) -> Option<PathBuf> {
        match &self.transport {
            Transport::Unix { socket } if socket.as_os_str().is_empty() => {
                Some(PathBuf::from(if read_only {
                    DEFAULT_SOCKET_RO
                } else {
                    DEFAULT_SOCKET
                }))
            }
            Transport::Unix { socket } => Some(socket.clone()),
            Transport::Ssh { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(uri: &str) -> PathBuf {
        match ConnectUri::parse(uri) {
            Ok(ConnectUri {
                transport: Transport::Unix { socket },
                ..
            }) => socket,
            other => panic!("{uri}: {other:?}"),
        }
    }

    #[test]
    fn local_aliases() {
        for u in [
            "virtnet:///system",
            "network:///system",
            "qemu:///system",
            "network+unix:///system",
            "",
        ] {
            assert_eq!(unix(u), PathBuf::new(), "{u}");
            let parsed = ConnectUri::parse(u).unwrap();
            assert_eq!(
                parsed.local_socket(false).unwrap(),
                PathBuf::from(DEFAULT_SOCKET)
            );
            assert_eq!(
                parsed.local_socket(true).unwrap(),
                PathBuf::from(DEFAULT_SOCKET_RO)
            );
        }
    }

    #[test]
    fn socket_parameter() {
        assert_eq!(
            unix("network:///system?socket=/run/libvirt/libvirt-sock"),
            PathBuf::from("/run/libvirt/libvirt-sock")
        );
        assert_eq!(
            unix("qemu:///system?foo=1&socket=/tmp/a%20b"),
            PathBuf::from("/tmp/a b")
        );
        let u = ConnectUri::parse("virtnet:///system?socket=/x").unwrap();
        assert_eq!(u.local_socket(true).unwrap(), PathBuf::from("/x"));
    }

    #[test]
    fn ssh() {
        let u = ConnectUri::parse("virtnet+ssh://root@host.example:2222/system").unwrap();
        assert_eq!(
            u.transport,
            Transport::Ssh {
                user: Some("root".into()),
                host: "host.example".into(),
                port: Some(2222),
                opts: SshOptions::default(),
            }
        );
        assert!(u.local_socket(false).is_none());
        let u = ConnectUri::parse("qemu+ssh://h/system").unwrap();
        assert!(
            matches!(u.transport, Transport::Ssh { ref host, port: None, user: None, .. } if host == "h")
        );
        let u = ConnectUri::parse("network+ssh://[fe80::1]:22/system").unwrap();
        assert!(
            matches!(u.transport, Transport::Ssh { ref host, port: Some(22), .. } if host == "fe80::1")
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            ConnectUri::parse("bogus").unwrap_err().to_string(),
            "no connection driver available for URI 'bogus' does not include a driver name"
        );
        assert_eq!(
            ConnectUri::parse("test:///default")
                .unwrap_err()
                .to_string(),
            "no connection driver available for test:///default"
        );
        assert_eq!(
            ConnectUri::parse("network:///session")
                .unwrap_err()
                .to_string(),
            "no connection driver available for network:///session"
        );
        assert!(matches!(
            ConnectUri::parse("network+tls://h/system"),
            Err(UriError::BadTransport(_))
        ));
        assert!(matches!(
            ConnectUri::parse("virtnet+ssh://h:x/system"),
            Err(UriError::BadPort(_))
        ));
        assert!(matches!(
            ConnectUri::parse("virtnet+ssh:///system"),
            Err(UriError::Malformed(_))
        ));
    }
}
