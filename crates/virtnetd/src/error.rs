//! The driver's errors, each carrying the libvirt error code, domain and
//! message a libvirt client expects for the same failure.

/// libvirt's `virErrorDomain` values the driver reports under.
pub mod domain {
    /// `VIR_FROM_NONE`.
    pub const NONE: i32 = 0;
    /// `VIR_FROM_NETWORK`.
    pub const NETWORK: i32 = 19;
}

/// libvirt's `virErrorNumber` values the driver reports.
pub mod code {
    /// `VIR_ERR_INTERNAL_ERROR`.
    pub const INTERNAL_ERROR: i32 = 1;
    /// `VIR_ERR_NO_SUPPORT`.
    pub const NO_SUPPORT: i32 = 3;
    /// `VIR_ERR_INVALID_ARG`.
    pub const INVALID_ARG: i32 = 8;
    /// `VIR_ERR_OPERATION_FAILED`.
    pub const OPERATION_FAILED: i32 = 9;
    /// `VIR_ERR_OPERATION_UNSUPPORTED`.
    pub const OPERATION_UNSUPPORTED: i32 = 84;
    /// `VIR_ERR_SYSTEM_ERROR`.
    pub const SYSTEM_ERROR: i32 = 38;
    /// `VIR_ERR_NO_NETWORK`.
    pub const NO_NETWORK: i32 = 43;
    /// `VIR_ERR_OPERATION_INVALID`.
    pub const OPERATION_INVALID: i32 = 55;
    /// `VIR_ERR_CONFIG_UNSUPPORTED`.
    pub const CONFIG_UNSUPPORTED: i32 = 67;
    /// `VIR_ERR_NO_NETWORK_PORT`.
    pub const NO_NETWORK_PORT: i32 = 107;
    /// `VIR_ERR_NETWORK_PORT_EXIST`.
    pub const NETWORK_PORT_EXIST: i32 = 106;
    /// `VIR_ERR_NO_NETWORK_METADATA`.
    pub const NO_NETWORK_METADATA: i32 = 111;
    /// `VIR_ERR_INVALID_MAC`.
    pub const INVALID_MAC: i32 = 44;
    /// `VIR_ERR_HOOK_SCRIPT_FAILED`.
    pub const HOOK_SCRIPT_FAILED: i32 = 70;
}

/// A failure of a driver operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No network with that name.
    #[error("Network not found: no network with matching name '{0}'")]
    NoNetworkName(String),
    /// No network with that UUID.
    #[error("Network not found: no network with matching uuid '{0}'")]
    NoNetworkUuid(String),
    /// No network matching a reference a client holds (UUID and name).
    #[error("Network not found: no network with matching uuid '{uuid}' ({name})")]
    NoNetwork {
        /// UUID of the reference.
        uuid: String,
        /// Name of the reference.
        name: String,
    },
    /// The operation does not apply in the object's current state
    /// (`VIR_ERR_OPERATION_INVALID`).
    #[error("Requested operation is not valid: {0}")]
    OperationInvalid(String),
    /// The operation was refused (`VIR_ERR_OPERATION_FAILED`).
    #[error("operation failed: {0}")]
    OperationFailed(String),
    /// The definition asks for something this host or driver cannot do.
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// The operation is not supported in this situation
    /// (`VIR_ERR_OPERATION_UNSUPPORTED`).
    #[error("Operation not supported: {0}")]
    OperationUnsupported(String),
    /// An argument is invalid (`VIR_ERR_INVALID_ARG`).
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// Something failed inside the driver.
    #[error("internal error: {0}")]
    Internal(String),
    /// A host operation failed; the text names the network and the object.
    #[error("{0}")]
    System(String),
    /// A network or port definition was rejected.
    #[error(transparent)]
    Conf(#[from] virtnet_conf::Error),
    /// dnsmasq configuration could not be generated.
    #[error(transparent)]
    Dnsmasq(#[from] virtnet_dnsmasq::Error),
    /// No port with that UUID.
    #[error("network port not found: Network port with UUID {0} does not exist")]
    NoPort(String),
    /// A port with that UUID exists (libvirt's message, doubled wording
    /// and all).
    #[error("network port Network port with UUID {0} already exists exists already")]
    PortExists(String),
    /// A MAC address that does not parse (`VIR_ERR_INVALID_MAC`).
    #[error("invalid MAC address: {0}")]
    InvalidMac(String),
    /// The procedure is not implemented.
    #[error("this function is not supported by the connection driver: {0}")]
    NoSupport(String),
    /// A hook script failed.
    #[error("Hook script execution failed: {0}")]
    Hook(String),
}

/// Result of a driver operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A host operation on network `network` failed.
    pub fn host(network: &str, what: impl std::fmt::Display) -> Error {
        Error::System(format!("network '{network}': {what}"))
    }

    /// libvirt's error code for this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::NoNetworkName(_) | Error::NoNetworkUuid(_) | Error::NoNetwork { .. } => {
                code::NO_NETWORK
            }
            Error::OperationInvalid(_) => code::OPERATION_INVALID,
            Error::OperationFailed(_) => code::OPERATION_FAILED,
            Error::OperationUnsupported(_) => code::OPERATION_UNSUPPORTED,
            Error::Unsupported(_) => code::CONFIG_UNSUPPORTED,
            Error::InvalidArg(_) => code::INVALID_ARG,
            Error::Internal(_) => code::INTERNAL_ERROR,
            Error::System(_) => code::SYSTEM_ERROR,
            Error::Conf(e) => e.kind().code(),
            Error::Dnsmasq(e) => e.kind().code(),
            Error::NoPort(_) => code::NO_NETWORK_PORT,
            Error::PortExists(_) => code::NETWORK_PORT_EXIST,
            Error::Hook(_) => code::HOOK_SCRIPT_FAILED,
            Error::NoSupport(_) => code::NO_SUPPORT,
            Error::InvalidMac(_) => code::INVALID_MAC,
        }
    }

    /// libvirt's error domain for this error.
    pub fn domain(&self) -> i32 {
        match self {
            Error::Conf(e) => e.domain().code(),
            _ => domain::NETWORK,
        }
    }

    /// The text libvirt substitutes into its message template for this code
    /// (what follows `operation failed: ` and the like).
    pub fn detail(&self) -> String {
        match self {
            Error::NoNetworkName(n) => format!("no network with matching name '{n}'"),
            Error::NoNetworkUuid(u) => format!("no network with matching uuid '{u}'"),
            Error::NoNetwork { uuid, name } => {
                format!("no network with matching uuid '{uuid}' ({name})")
            }
            Error::OperationInvalid(s)
            | Error::OperationFailed(s)
            | Error::OperationUnsupported(s)
            | Error::Unsupported(s)
            | Error::InvalidArg(s)
            | Error::Internal(s)
            | Error::System(s)
            | Error::Hook(s)
            | Error::NoSupport(s)
            | Error::InvalidMac(s) => strerror_only(s),
            Error::NoPort(u) => format!("Network port with UUID {u} does not exist"),
            Error::PortExists(u) => format!("Network port with UUID {u} already exists"),
            Error::Conf(e) => e.detail().unwrap_or_default().to_string(),
            Error::Dnsmasq(e) => strerror_only(&e.detail()),
        }
    }
}

/// `s` without the " (os error N)" Rust appends to a system error: clients
/// see the `strerror` text alone, as libvirt reports it.
fn strerror_only(s: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(MARK) {
        let after = &rest[i + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..i]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..i + MARK.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_errors_show_strerror_only() {
        let io = std::io::Error::from_raw_os_error(libc::EEXIST);
        let e = Error::host(
            "b0",
            format!("cannot create macvtap device 'macvtap0': {io}"),
        );
        assert_eq!(
            e.detail(),
            "network 'b0': cannot create macvtap device 'macvtap0': File exists"
        );
        assert_eq!(
            strerror_only("a (os error 1) b (os error x) c (os error 22)"),
            "a b (os error x) c"
        );
    }
}
