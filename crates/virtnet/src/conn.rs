//! The connection to virtnetd (or libvirt's network driver).
//!
//! [`Connection::open`] parses the URI, picks the transport and performs
//! virsh's handshake through [`virtnet_rpc::Client`]. Calls check what the
//! libvirt library checks on the client side before anything is sent (a
//! read-only connection refuses mutating APIs with `operation forbidden:
//! read only access prevents virNetworkDefineXML`), and every failure
//! becomes the message virsh would print.

use std::time::Duration;

use virtnet_rpc::client::ClientKeepalive;
use virtnet_rpc::protocol::{
    ConnectSupportsFeatureArgs, ConnectSupportsFeatureRet, NetworkLookupByNameArgs,
    NetworkLookupByUuidArgs, NetworkRet, NonnullNetwork, Procedure, parse_uuid,
};
use virtnet_rpc::xdr::{XdrDecode, XdrEncode};
use virtnet_rpc::{Client, ConnectOptions, ErrorCode, RpcError};

use crate::uri::{ConnectUri, OPEN_NAME, Transport, UriError};

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URI is not usable.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The socket could not be connected.
    #[error("Failed to connect socket to '{path}': {reason}")]
    Socket {
        /// Socket path.
        path: String,
        /// `strerror` text.
        reason: String,
    },
    /// The ssh program could not be run.
    #[error("Cannot run '{program}': {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// `strerror` text.
        reason: String,
    },
    /// The handshake failed.
    #[error("{0}")]
    Handshake(String),
}

/// A failed call: the message virsh prints and the libvirt error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The full message.
    pub message: String,
    /// `virErrorNumber`.
    pub code: ErrorCode,
}

impl ApiError {
    /// An error raised on the client side.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }
}

/// `strerror` text of an I/O error (without Rust's "(os error N)").
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn rpc_message(e: &RpcError) -> ApiError {
    match e {
        RpcError::Remote(r) => ApiError::new(r.code, r.text()),
        RpcError::Io(io) => ApiError::new(
            ErrorCode::SYSTEM_ERROR,
            format!("Cannot write data: {}", strerror(io)),
        ),
        RpcError::Closed => ApiError::new(
            ErrorCode::INTERNAL_ERROR,
            "internal error: client socket is closed",
        ),
        RpcError::KeepaliveTimeout => ApiError::new(
            ErrorCode::INTERNAL_ERROR,
            "internal error: connection closed due to keepalive timeout",
        ),
        other => ApiError::new(ErrorCode::RPC, other.to_string()),
    }
}

/// An open connection.
pub struct Connection {
    client: Client,
    read_only: bool,
    uri: ConnectUri,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("uri", &self.uri.original)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Connection {
    /// Opens `uri`.
    pub fn open(
        uri: &str,
        read_only: bool,
        keepalive: (Option<u32>, Option<u32>),
    ) -> Result<Connection, ConnectError> {
        let parsed = ConnectUri::parse(uri)?;
        let interval = keepalive.0.unwrap_or(5);
        let count = keepalive.1.unwrap_or(6);
        let options = ConnectOptions {
            name: Some(OPEN_NAME.to_owned()),
            read_only,
            call_timeout: None,
            keepalive: (interval > 0).then(|| ClientKeepalive {
                interval: Duration::from_secs(u64::from(interval)),
                count,
            }),
            handshake: true,
        };
        let client = match &parsed.transport {
            Transport::Unix { .. } => {
                let path = parsed
                    .local_socket(read_only)
                    .unwrap_or_else(|| crate::uri::DEFAULT_SOCKET.into());
                let stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
                    ConnectError::Socket {
                        path: path.display().to_string(),
                        reason: strerror(&e),
                    }
                })?;
                let reader = stream
                    .try_clone()
                    .map_err(|e| ConnectError::Handshake(strerror(&e)))?;
                Client::from_io(reader, stream, &options)
                    .map_err(|e| ConnectError::Handshake(rpc_message(&e).message))?
            }
            Transport::Ssh {
                user,
                host,
                port,
                opts,
            } => {
                let argv = crate::remote::ssh_argv(user.as_deref(), host, *port, opts, read_only);
                let mut cmd = std::process::Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                Client::connect_command(cmd, &options).map_err(|e| match e {
                    RpcError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                        ConnectError::Spawn {
                            program: argv[0].clone(),
                            reason: strerror(&io),
                        }
                    }
                    RpcError::Closed | RpcError::Io(_) => ConnectError::Handshake(
                        "End of file while reading data: Input/output error".into(),
                    ),
                    other => ConnectError::Handshake(rpc_message(&other).message),
                })?
            }
        };
        Ok(Connection {
            client,
            read_only,
            uri: parsed,
        })
    }

    /// For a connection over ssh, the daemon's host and the ssh command
    /// line that runs `command` there (same user, port, key and host-key
    /// policy); `None` for a local connection.
    pub fn ssh_command(&self, command: &str) -> Option<(&str, Vec<String>)> {
        match &self.uri.transport {
            Transport::Ssh {
                user,
                host,
                port,
                opts,
            } => Some((
                host.as_str(),
                crate::remote::ssh_argv_running(
                    user.as_deref(),
                    host,
                    *port,
                    opts,
                    command.to_owned(),
                ),
            )),
            Transport::Unix { .. } => None,
        }
    }

    /// Opens virtnetd's socket at `path` (no keepalive).
    pub fn open_unix(path: &std::path::Path, read_only: bool) -> Result<Connection, ConnectError> {
        let mut enc = String::new();
        for b in path.display().to_string().bytes() {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                enc.push(char::from(b));
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        Self::open(
            &format!("virtnet:///system?socket={enc}"),
            read_only,
            (Some(0), None),
        )
    }

    /// The URI this connection was opened with.
    pub fn uri(&self) -> &ConnectUri {
        &self.uri
    }

    /// True while the peer is there.
    pub fn is_alive(&self) -> bool {
        self.client.is_alive()
    }

    /// The underlying client (events).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Calls a procedure, refusing mutating ones on a read-only connection
    /// as the library does.
    pub fn call<A, R>(&self, procedure: Procedure, args: &A) -> Result<R, ApiError>
    where
        A: XdrEncode + ?Sized,
        R: XdrDecode,
    {
        if self.read_only && !procedure.allowed_read_only() {
            return Err(ApiError::new(
                ErrorCode::OPERATION_DENIED,
                format!(
                    "operation forbidden: read only access prevents {}",
                    procedure.api_name()
                ),
            ));
        }
        self.client
            .call(procedure, args)
            .map_err(|e| rpc_message(&e))
    }

    /// `virConnectSupportsFeature`.
    pub fn supports_feature(&self, feature: i32) -> Result<bool, ApiError> {
        let r: ConnectSupportsFeatureRet = self.call(
            Procedure::ConnectSupportsFeature,
            &ConnectSupportsFeatureArgs { feature },
        )?;
        Ok(r.supported != 0)
    }

    /// `virNetworkLookupByName`.
    pub fn lookup_by_name(&self, name: &str) -> Result<NonnullNetwork, ApiError> {
        let r: NetworkRet = self.call(
            Procedure::NetworkLookupByName,
            &NetworkLookupByNameArgs { name: name.into() },
        )?;
        Ok(r.net)
    }

    /// `virNetworkLookupByUUIDString`: the UUID is checked here first.
    pub fn lookup_by_uuid_string(&self, uuid: &str) -> Result<NonnullNetwork, ApiError> {
        let Some(uuid) = parse_uuid(uuid) else {
            return Err(ApiError::new(
                ErrorCode::INVALID_ARG,
                "uuidstr in virNetworkLookupByUUIDString must be a valid UUID",
            ));
        };
        let r: NetworkRet = self.call(
            Procedure::NetworkLookupByUuid,
            &NetworkLookupByUuidArgs { uuid },
        )?;
        Ok(r.net)
    }

    /// Closes the connection (`CONNECT_CLOSE`).
    pub fn close(self) {
        let _ = self.client.close();
    }
}
