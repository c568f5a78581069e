//! Errors in libvirt's vocabulary.
//!
//! Every [`Error`] carries an [`ErrorKind`] whose discriminant is libvirt's
//! `virErrorNumber` (so the RPC layer can send the very code libvirt sends),
//! an [`ErrorDomain`] (`virErrorDomain`), and the detail message. `Display`
//! renders the full message exactly as libvirt does, prefix included, e.g.
//! `XML error: …`, `unsupported configuration: …`, `internal error: …`.

use std::fmt;

macro_rules! error_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $bare:literal, $fmt:literal; )*) => {
        /// libvirt's `virErrorNumber`: the discriminant is the wire value.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(i32)]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant = $code, )*
        }

        impl ErrorKind {
            /// The numeric `virErrorNumber` libvirt uses for this kind.
            pub fn code(self) -> i32 {
                self as i32
            }

            /// The kind for a numeric `virErrorNumber`, if it is known.
            pub fn from_code(code: i32) -> Option<ErrorKind> {
                match code {
                    $( $code => Some(ErrorKind::$variant), )*
                    _ => None,
                }
            }

            /// libvirt's message for this kind when there is no detail.
            pub fn bare_message(self) -> &'static str {
                match self {
                    $( ErrorKind::$variant => $bare, )*
                }
            }

            /// libvirt's message template for this kind with a detail
            /// (`%s` marks where the detail goes).
            pub fn template(self) -> &'static str {
                match self {
                    $( ErrorKind::$variant => $fmt, )*
                }
            }
        }
    };
}

error_kinds! {
    /// `VIR_ERR_OK`
    Ok = 0, "", "%s";
    /// `VIR_ERR_INTERNAL_ERROR`
    InternalError = 1, "internal error", "internal error: %s";
    /// `VIR_ERR_NO_MEMORY`
    NoMemory = 2, "out of memory", "out of memory: %s";
    /// `VIR_ERR_NO_SUPPORT`
    NoSupport = 3, "this function is not supported by the connection driver", "this function is not supported by the connection driver: %s";
    /// `VIR_ERR_UNKNOWN_HOST`
    UnknownHost = 4, "unknown host", "unknown host %s";
    /// `VIR_ERR_NO_CONNECT`
    NoConnect = 5, "no connection driver available", "no connection driver available for %s";
    /// `VIR_ERR_INVALID_CONN`
    InvalidConn = 6, "invalid connection pointer in", "invalid connection pointer in %s";
    /// `VIR_ERR_INVALID_DOMAIN`
    InvalidDomain = 7, "invalid domain pointer in", "invalid domain pointer in %s";
    /// `VIR_ERR_INVALID_ARG`
    InvalidArg = 8, "invalid argument", "invalid argument: %s";
    /// `VIR_ERR_OPERATION_FAILED`
    OperationFailed = 9, "operation failed", "operation failed: %s";
    /// `VIR_ERR_GET_FAILED`
    GetFailed = 10, "GET operation failed", "GET operation failed: %s";
    /// `VIR_ERR_POST_FAILED`
    PostFailed = 11, "POST operation failed", "POST operation failed: %s";
    /// `VIR_ERR_HTTP_ERROR`
    HttpError = 12, "got unknown HTTP error code", "got unknown HTTP error code %s";
    /// `VIR_ERR_SEXPR_SERIAL`
    SexprSerial = 13, "failed to serialize S-Expr", "failed to serialize S-Expr: %s";
    /// `VIR_ERR_NO_XEN`
    NoXen = 14, "could not use Xen hypervisor entry", "could not use Xen hypervisor entry %s";
    /// `VIR_ERR_XEN_CALL`
    XenCall = 15, "failed Xen syscall", "failed Xen syscall %s";
    /// `VIR_ERR_OS_TYPE`
    OsType = 16, "unknown OS type", "unknown OS type %s";
    /// `VIR_ERR_NO_KERNEL`
    NoKernel = 17, "missing kernel information", "missing kernel information: %s";
    /// `VIR_ERR_NO_ROOT`
    NoRoot = 18, "missing root device information", "missing root device information in %s";
    /// `VIR_ERR_NO_SOURCE`
    NoSource = 19, "missing source information for device", "missing source information for device %s";
    /// `VIR_ERR_NO_TARGET`
    NoTarget = 20, "missing target information for device", "missing target information for device %s";
    /// `VIR_ERR_NO_NAME`
    NoName = 21, "missing name information", "missing name information in %s";
    /// `VIR_ERR_NO_OS`
    NoOs = 22, "missing operating system information", "missing operating system information for %s";
    /// `VIR_ERR_NO_DEVICE`
    NoDevice = 23, "missing devices information", "missing devices information for %s";
    /// `VIR_ERR_NO_XENSTORE`
    NoXenstore = 24, "could not connect to Xen Store", "could not connect to Xen Store %s";
    /// `VIR_ERR_DRIVER_FULL`
    DriverFull = 25, "too many drivers registered", "too many drivers registered in %s";
    /// `VIR_ERR_CALL_FAILED`
    CallFailed = 26, "library call failed", "library call failed: %s";
    /// `VIR_ERR_XML_ERROR`
    XmlError = 27, "XML description is invalid or not well formed", "XML error: %s";
    /// `VIR_ERR_DOM_EXIST`
    DomExist = 28, "this domain exists already", "domain %s exists already";
    /// `VIR_ERR_OPERATION_DENIED`
    OperationDenied = 29, "operation forbidden for read only access", "operation forbidden: %s";
    /// `VIR_ERR_OPEN_FAILED`
    OpenFailed = 30, "failed to open configuration file", "failed to open configuration file %s";
    /// `VIR_ERR_READ_FAILED`
    ReadFailed = 31, "failed to read configuration file", "failed to read configuration file %s";
    /// `VIR_ERR_PARSE_FAILED`
    ParseFailed = 32, "failed to parse configuration file", "failed to parse configuration file %s";
    /// `VIR_ERR_CONF_SYNTAX`
    ConfSyntax = 33, "configuration file syntax error", "configuration file syntax error: %s";
    /// `VIR_ERR_WRITE_FAILED`
    WriteFailed = 34, "failed to write configuration file", "failed to write configuration file: %s";
    /// `VIR_ERR_XML_DETAIL`
    XmlDetail = 35, "parser error", "%s";
    /// `VIR_ERR_INVALID_NETWORK`
    InvalidNetwork = 36, "invalid network pointer in", "invalid network pointer in %s";
    /// `VIR_ERR_NETWORK_EXIST`
    NetworkExist = 37, "this network exists already", "network %s exists already";
    /// `VIR_ERR_SYSTEM_ERROR`
    SystemError = 38, "system call error", "%s";
    /// `VIR_ERR_RPC`
    Rpc = 39, "RPC error", "%s";
    /// `VIR_ERR_GNUTLS_ERROR`
    GnutlsError = 40, "GNUTLS call error", "%s";
    /// `VIR_WAR_NO_NETWORK`
    WarNoNetwork = 41, "Failed to find the network", "Failed to find the network: %s";
    /// `VIR_ERR_NO_DOMAIN`
    NoDomain = 42, "Domain not found", "Domain not found: %s";
    /// `VIR_ERR_NO_NETWORK`
    NoNetwork = 43, "Network not found", "Network not found: %s";
    /// `VIR_ERR_INVALID_MAC`
    InvalidMac = 44, "invalid MAC address", "invalid MAC address: %s";
    /// `VIR_ERR_AUTH_FAILED`
    AuthFailed = 45, "authentication failed", "authentication failed: %s";
    /// `VIR_ERR_INVALID_STORAGE_POOL`
    InvalidStoragePool = 46, "invalid storage pool pointer in", "invalid storage pool pointer in %s";
    /// `VIR_ERR_INVALID_STORAGE_VOL`
    InvalidStorageVol = 47, "invalid storage volume pointer in", "invalid storage volume pointer in %s";
    /// `VIR_WAR_NO_STORAGE`
    WarNoStorage = 48, "Failed to find a storage driver", "Failed to find a storage driver: %s";
    /// `VIR_ERR_NO_STORAGE_POOL`
    NoStoragePool = 49, "Storage pool not found", "Storage pool not found: %s";
    /// `VIR_ERR_NO_STORAGE_VOL`
    NoStorageVol = 50, "Storage volume not found", "Storage volume not found: %s";
    /// `VIR_WAR_NO_NODE`
    WarNoNode = 51, "Failed to find a node driver", "Failed to find a node driver: %s";
    /// `VIR_ERR_INVALID_NODE_DEVICE`
    InvalidNodeDevice = 52, "invalid node device pointer", "invalid node device pointer in %s";
    /// `VIR_ERR_NO_NODE_DEVICE`
    NoNodeDevice = 53, "Node device not found", "Node device not found: %s";
    /// `VIR_ERR_NO_SECURITY_MODEL`
    NoSecurityModel = 54, "Security model not found", "Security model not found: %s";
    /// `VIR_ERR_OPERATION_INVALID`
    OperationInvalid = 55, "Requested operation is not valid", "Requested operation is not valid: %s";
    /// `VIR_WAR_NO_INTERFACE`
    WarNoInterface = 56, "Failed to find the interface", "Failed to find the interface: %s";
    /// `VIR_ERR_NO_INTERFACE`
    NoInterface = 57, "Interface not found", "Interface not found: %s";
    /// `VIR_ERR_INVALID_INTERFACE`
    InvalidInterface = 58, "invalid interface pointer in", "invalid interface pointer in %s";
    /// `VIR_ERR_MULTIPLE_INTERFACES`
    MultipleInterfaces = 59, "multiple matching interfaces found", "multiple matching interfaces found: %s";
    /// `VIR_WAR_NO_NWFILTER`
    WarNoNwfilter = 60, "Failed to start the nwfilter driver", "Failed to start the nwfilter driver: %s";
    /// `VIR_ERR_INVALID_NWFILTER`
    InvalidNwfilter = 61, "Invalid network filter", "Invalid network filter: %s";
    /// `VIR_ERR_NO_NWFILTER`
    NoNwfilter = 62, "Network filter not found", "Network filter not found: %s";
    /// `VIR_ERR_BUILD_FIREWALL`
    BuildFirewall = 63, "Error while building firewall", "Error while building firewall: %s";
    /// `VIR_WAR_NO_SECRET`
    WarNoSecret = 64, "Failed to find a secret storage driver", "Failed to find a secret storage driver: %s";
    /// `VIR_ERR_INVALID_SECRET`
    InvalidSecret = 65, "Invalid secret", "Invalid secret: %s";
    /// `VIR_ERR_NO_SECRET`
    NoSecret = 66, "Secret not found", "Secret not found: %s";
    /// `VIR_ERR_CONFIG_UNSUPPORTED`
    ConfigUnsupported = 67, "unsupported configuration", "unsupported configuration: %s";
    /// `VIR_ERR_OPERATION_TIMEOUT`
    OperationTimeout = 68, "Timed out during operation", "Timed out during operation: %s";
    /// `VIR_ERR_MIGRATE_PERSIST_FAILED`
    MigratePersistFailed = 69, "Failed to make domain persistent after migration", "Failed to make domain persistent after migration: %s";
    /// `VIR_ERR_HOOK_SCRIPT_FAILED`
    HookScriptFailed = 70, "Hook script execution failed", "Hook script execution failed: %s";
    /// `VIR_ERR_INVALID_DOMAIN_SNAPSHOT`
    InvalidDomainSnapshot = 71, "Invalid domain snapshot", "Invalid domain snapshot: %s";
    /// `VIR_ERR_NO_DOMAIN_SNAPSHOT`
    NoDomainSnapshot = 72, "Domain snapshot not found", "Domain snapshot not found: %s";
    /// `VIR_ERR_INVALID_STREAM`
    InvalidStream = 73, "invalid stream pointer", "invalid stream pointer in %s";
    /// `VIR_ERR_ARGUMENT_UNSUPPORTED`
    ArgumentUnsupported = 74, "argument unsupported", "argument unsupported: %s";
    /// `VIR_ERR_STORAGE_PROBE_FAILED`
    StorageProbeFailed = 75, "Storage pool probe failed", "Storage pool probe failed: %s";
    /// `VIR_ERR_STORAGE_POOL_BUILT`
    StoragePoolBuilt = 76, "Storage pool already built", "Storage pool already built: %s";
    /// `VIR_ERR_SNAPSHOT_REVERT_RISKY`
    SnapshotRevertRisky = 77, "revert requires force", "revert requires force: %s";
    /// `VIR_ERR_OPERATION_ABORTED`
    OperationAborted = 78, "operation aborted", "operation aborted: %s";
    /// `VIR_ERR_AUTH_CANCELLED`
    AuthCancelled = 79, "authentication cancelled", "authentication cancelled: %s";
    /// `VIR_ERR_NO_DOMAIN_METADATA`
    NoDomainMetadata = 80, "metadata not found", "metadata not found: %s";
    /// `VIR_ERR_MIGRATE_UNSAFE`
    MigrateUnsafe = 81, "Unsafe migration", "Unsafe migration: %s";
    /// `VIR_ERR_OVERFLOW`
    Overflow = 82, "numerical overflow", "numerical overflow: %s";
    /// `VIR_ERR_BLOCK_COPY_ACTIVE`
    BlockCopyActive = 83, "block copy still active", "block copy still active: %s";
    /// `VIR_ERR_OPERATION_UNSUPPORTED`
    OperationUnsupported = 84, "Operation not supported", "Operation not supported: %s";
    /// `VIR_ERR_SSH`
    Ssh = 85, "SSH transport error", "SSH transport error: %s";
    /// `VIR_ERR_AGENT_UNRESPONSIVE`
    AgentUnresponsive = 86, "Guest agent is not responding", "Guest agent is not responding: %s";
    /// `VIR_ERR_RESOURCE_BUSY`
    ResourceBusy = 87, "resource busy", "resource busy: %s";
    /// `VIR_ERR_ACCESS_DENIED`
    AccessDenied = 88, "access denied", "access denied: %s";
    /// `VIR_ERR_DBUS_SERVICE`
    DbusService = 89, "error from service", "error from service: %s";
    /// `VIR_ERR_STORAGE_VOL_EXIST`
    StorageVolExist = 90, "this storage volume exists already", "storage volume %s exists already";
    /// `VIR_ERR_CPU_INCOMPATIBLE`
    CpuIncompatible = 91, "the CPU is incompatible with host CPU", "the CPU is incompatible with host CPU: %s";
    /// `VIR_ERR_XML_INVALID_SCHEMA`
    XmlInvalidSchema = 92, "XML document failed to validate against schema", "XML document failed to validate against schema: %s";
    /// `VIR_ERR_MIGRATE_FINISH_OK`
    MigrateFinishOk = 93, "migration successfully aborted", "migration successfully aborted: %s";
    /// `VIR_ERR_AUTH_UNAVAILABLE`
    AuthUnavailable = 94, "authentication unavailable", "authentication unavailable: %s";
    /// `VIR_ERR_NO_SERVER`
    NoServer = 95, "Server not found", "Server not found: %s";
    /// `VIR_ERR_NO_CLIENT`
    NoClient = 96, "Client not found", "Client not found: %s";
    /// `VIR_ERR_AGENT_UNSYNCED`
    AgentUnsynced = 97, "guest agent replied with wrong id to guest-sync command", "guest agent replied with wrong id to guest-sync command: %s";
    /// `VIR_ERR_LIBSSH`
    Libssh = 98, "libssh transport error", "libssh transport error: %s";
    /// `VIR_ERR_DEVICE_MISSING`
    DeviceMissing = 99, "device not found", "device not found: %s";
    /// `VIR_ERR_INVALID_NWFILTER_BINDING`
    InvalidNwfilterBinding = 100, "Invalid network filter binding", "Invalid network filter binding: %s";
    /// `VIR_ERR_NO_NWFILTER_BINDING`
    NoNwfilterBinding = 101, "Network filter binding not found", "Network filter binding not found: %s";
    /// `VIR_ERR_INVALID_DOMAIN_CHECKPOINT`
    InvalidDomainCheckpoint = 102, "Invalid domain checkpoint", "Invalid domain checkpoint: %s";
    /// `VIR_ERR_NO_DOMAIN_CHECKPOINT`
    NoDomainCheckpoint = 103, "Domain checkpoint not found", "Domain checkpoint not found: %s";
    /// `VIR_ERR_NO_DOMAIN_BACKUP`
    NoDomainBackup = 104, "Domain backup job id not found", "Domain backup job id not found: %s";
    /// `VIR_ERR_INVALID_NETWORK_PORT`
    InvalidNetworkPort = 105, "Invalid network port pointer", "Invalid network port pointer: %s";
    /// `VIR_ERR_NETWORK_PORT_EXIST`
    NetworkPortExist = 106, "this network port exists already", "network port %s exists already";
    /// `VIR_ERR_NO_NETWORK_PORT`
    NoNetworkPort = 107, "network port not found", "network port not found: %s";
    /// `VIR_ERR_NO_HOSTNAME`
    NoHostname = 108, "no hostname found", "no hostname found: %s";
    /// `VIR_ERR_CHECKPOINT_INCONSISTENT`
    CheckpointInconsistent = 109, "checkpoint inconsistent", "checkpoint inconsistent: %s";
    /// `VIR_ERR_MULTIPLE_DOMAINS`
    MultipleDomains = 110, "multiple matching domains found", "multiple matching domains found: %s";
    /// `VIR_ERR_NO_NETWORK_METADATA`
    NoNetworkMetadata = 111, "metadata not found", "metadata not found: %s";
}

/// libvirt's `virErrorDomain`: which part of libvirt raised the error.
/// The discriminant is the wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(i32)]
pub enum ErrorDomain {
    /// `VIR_FROM_NONE`: generic helpers (bandwidth, vlan, virtualport).
    None = 0,
    /// `VIR_FROM_XML`: the XML layer (attribute parsing, well-formedness).
    Xml = 5,
    /// `VIR_FROM_NET`: host network device helpers.
    Net = 11,
    /// `VIR_FROM_NETWORK`: the network configuration and driver.
    Network = 19,
    /// `VIR_FROM_DEVICE`: device addresses (PCI).
    Device = 49,
}

impl ErrorDomain {
    /// The numeric `virErrorDomain` value.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error raised while parsing, validating or preparing a definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    domain: ErrorDomain,
    detail: Option<String>,
}

impl Error {
    /// An error of `kind` from `domain` with the given detail message.
    pub fn new(kind: ErrorKind, domain: ErrorDomain, detail: impl Into<String>) -> Error {
        Error {
            kind,
            domain,
            detail: Some(detail.into()),
        }
    }

    /// An error without detail (libvirt then prints only the kind's message).
    pub fn bare(kind: ErrorKind, domain: ErrorDomain) -> Error {
        Error {
            kind,
            domain,
            detail: None,
        }
    }

    /// The libvirt error number.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The libvirt error domain.
    pub fn domain(&self) -> ErrorDomain {
        self.domain
    }

    /// The detail without libvirt's kind prefix, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The full message as libvirt reports it (same as `to_string()`).
    pub fn message(&self) -> String {
        self.to_string()
    }

    pub(crate) fn xml(detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::XmlError, ErrorDomain::Network, detail)
    }

    pub(crate) fn xml_detail(detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::XmlDetail, ErrorDomain::Network, detail)
    }

    pub(crate) fn unsupported(detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::ConfigUnsupported, ErrorDomain::Network, detail)
    }

    pub(crate) fn internal(detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::InternalError, ErrorDomain::Network, detail)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            None => f.write_str(self.kind.bare_message()),
            Some(detail) => {
                let template = self.kind.template();
                match template.split_once("%s") {
                    Some((before, after)) => write!(f, "{before}{detail}{after}"),
                    None => f.write_str(template),
                }
            }
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_libvirt() {
        assert_eq!(ErrorKind::InternalError.code(), 1);
        assert_eq!(ErrorKind::InvalidArg.code(), 8);
        assert_eq!(ErrorKind::XmlError.code(), 27);
        assert_eq!(ErrorKind::XmlDetail.code(), 35);
        assert_eq!(ErrorKind::SystemError.code(), 38);
        assert_eq!(ErrorKind::ConfigUnsupported.code(), 67);
        assert_eq!(ErrorKind::MultipleDomains.code(), 110);
        assert_eq!(ErrorKind::from_code(67), Some(ErrorKind::ConfigUnsupported));
        assert_eq!(ErrorKind::from_code(1000), None);
    }

    #[test]
    fn display_has_libvirt_prefix() {
        let e = Error::xml("bad");
        assert_eq!(e.to_string(), "XML error: bad");
        let e = Error::xml_detail("plain");
        assert_eq!(e.to_string(), "plain");
        let e = Error::bare(ErrorKind::NoName, ErrorDomain::Network);
        assert_eq!(e.to_string(), "missing name information");
        let e = Error::unsupported("x");
        assert_eq!(e.to_string(), "unsupported configuration: x");
    }
}
