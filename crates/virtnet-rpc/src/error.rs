//! libvirt errors on the wire (`remote_error`) and the numbering and message
//! texts of `virErrorNumber` / `virErrorDomain`.
//!
//! virsh prints `error: <message>` with the `message` field exactly as sent,
//! so the server must send the full text libvirt would build: the generic
//! text for the code with the detail substituted, e.g.
//! `Network not found: no network with matching name 'x'`. [`RemoteError::new`]
//! builds it the way libvirt's `virReportError` does.

use std::fmt;
use std::io;

use thiserror::Error;

use crate::message::FrameError;
use crate::protocol::{NonnullDomain, NonnullNetwork};
use crate::xdr::{Decoder, Encoder, XdrDecode, XdrEncode, XdrError};

/// `virErrorNumber`: what kind of error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub i32);

/// `virErrorDomain`: which part of libvirt raised the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorDomain(pub i32);

/// `virErrorLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorLevel(pub i32);

impl ErrorLevel {
    /// `VIR_ERR_NONE`.
    pub const NONE: Self = Self(0);
    /// `VIR_ERR_WARNING`.
    pub const WARNING: Self = Self(1);
    /// `VIR_ERR_ERROR`.
    pub const ERROR: Self = Self(2);
}

macro_rules! error_codes {
    ($( $(#[$m:meta])* $name:ident = $num:expr, $msg:expr, $info:expr; )*) => {
        impl ErrorCode {
            $( $(#[$m])* pub const $name: Self = Self($num); )*

            /// The libvirt constant name without its `VIR_ERR_`/`VIR_WAR_` prefix.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $num => Some(stringify!($name)), )*
                    _ => None,
                }
            }

            /// libvirt's message templates for this code: the text used
            /// without detail, and the format (one `%s`) used with detail.
            pub fn templates(self) -> Option<(&'static str, &'static str)> {
                match self.0 {
                    $( $num => Some(($msg, $info)), )*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// `VIR_ERR_OK`.
    OK = 0, "", "%s";
    /// `VIR_ERR_INTERNAL_ERROR`.
    INTERNAL_ERROR = 1, "internal error", "internal error: %s";
    /// `VIR_ERR_NO_MEMORY`.
    NO_MEMORY = 2, "out of memory", "out of memory: %s";
    /// `VIR_ERR_NO_SUPPORT`.
    NO_SUPPORT = 3, "this function is not supported by the connection driver",
        "this function is not supported by the connection driver: %s";
    /// `VIR_ERR_UNKNOWN_HOST`.
    UNKNOWN_HOST = 4, "unknown host", "unknown host %s";
    /// `VIR_ERR_NO_CONNECT`.
    NO_CONNECT = 5, "no connection driver available", "no connection driver available for %s";
    /// `VIR_ERR_INVALID_CONN`.
    INVALID_CONN = 6, "invalid connection pointer in", "invalid connection pointer in %s";
    /// `VIR_ERR_INVALID_DOMAIN`.
    INVALID_DOMAIN = 7, "invalid domain pointer in", "invalid domain pointer in %s";
    /// `VIR_ERR_INVALID_ARG`.
    INVALID_ARG = 8, "invalid argument", "invalid argument: %s";
    /// `VIR_ERR_OPERATION_FAILED`.
    OPERATION_FAILED = 9, "operation failed", "operation failed: %s";
    /// `VIR_ERR_GET_FAILED`.
    GET_FAILED = 10, "GET operation failed", "GET operation failed: %s";
    /// `VIR_ERR_POST_FAILED`.
    POST_FAILED = 11, "POST operation failed", "POST operation failed: %s";
    /// `VIR_ERR_HTTP_ERROR`.
    HTTP_ERROR = 12, "got unknown HTTP error code", "got unknown HTTP error code %s";
    /// `VIR_ERR_SEXPR_SERIAL`.
    SEXPR_SERIAL = 13, "failed to serialize S-Expr", "failed to serialize S-Expr: %s";
    /// `VIR_ERR_NO_XEN`.
    NO_XEN = 14, "could not use Xen hypervisor entry", "could not use Xen hypervisor entry %s";
    /// `VIR_ERR_XEN_CALL`.
    XEN_CALL = 15, "failed Xen syscall", "failed Xen syscall %s";
    /// `VIR_ERR_OS_TYPE`.
    OS_TYPE = 16, "unknown OS type", "unknown OS type %s";
    /// `VIR_ERR_NO_KERNEL`.
    NO_KERNEL = 17, "missing kernel information", "missing kernel information: %s";
    /// `VIR_ERR_NO_ROOT`.
    NO_ROOT = 18, "missing root device information", "missing root device information in %s";
    /// `VIR_ERR_NO_SOURCE`.
    NO_SOURCE = 19, "missing source information for device",
        "missing source information for device %s";
    /// `VIR_ERR_NO_TARGET`.
    NO_TARGET = 20, "missing target information for device",
        "missing target information for device %s";
    /// `VIR_ERR_NO_NAME`.
    NO_NAME = 21, "missing name information", "missing name information in %s";
    /// `VIR_ERR_NO_OS`.
    NO_OS = 22, "missing operating system information",
        "missing operating system information for %s";
    /// `VIR_ERR_NO_DEVICE`.
    NO_DEVICE = 23, "missing devices information", "missing devices information for %s";
    /// `VIR_ERR_NO_XENSTORE`.
    NO_XENSTORE = 24, "could not connect to Xen Store", "could not connect to Xen Store %s";
    /// `VIR_ERR_DRIVER_FULL`.
    DRIVER_FULL = 25, "too many drivers registered", "too many drivers registered in %s";
    /// `VIR_ERR_CALL_FAILED`.
    CALL_FAILED = 26, "library call failed", "library call failed: %s";
    /// `VIR_ERR_XML_ERROR`.
    XML_ERROR = 27, "XML description is invalid or not well formed", "XML error: %s";
    /// `VIR_ERR_DOM_EXIST`.
    DOM_EXIST = 28, "this domain exists already", "domain %s exists already";
    /// `VIR_ERR_OPERATION_DENIED`.
    OPERATION_DENIED = 29, "operation forbidden for read only access", "operation forbidden: %s";
    /// `VIR_ERR_OPEN_FAILED`.
    OPEN_FAILED = 30, "failed to open configuration file", "failed to open configuration file %s";
    /// `VIR_ERR_READ_FAILED`.
    READ_FAILED = 31, "failed to read configuration file", "failed to read configuration file %s";
    /// `VIR_ERR_PARSE_FAILED`.
    PARSE_FAILED = 32, "failed to parse configuration file",
        "failed to parse configuration file %s";
    /// `VIR_ERR_CONF_SYNTAX`.
    CONF_SYNTAX = 33, "configuration file syntax error", "configuration file syntax error: %s";
    /// `VIR_ERR_WRITE_FAILED`.
    WRITE_FAILED = 34, "failed to write configuration file",
        "failed to write configuration file: %s";
    /// `VIR_ERR_XML_DETAIL`.
    XML_DETAIL = 35, "parser error", "%s";
    /// `VIR_ERR_INVALID_NETWORK`.
    INVALID_NETWORK = 36, "invalid network pointer in", "invalid network pointer in %s";
    /// `VIR_ERR_NETWORK_EXIST`.
    NETWORK_EXIST = 37, "this network exists already", "network %s exists already";
    /// `VIR_ERR_SYSTEM_ERROR`.
    SYSTEM_ERROR = 38, "system call error", "%s";
    /// `VIR_ERR_RPC`.
    RPC = 39, "RPC error", "%s";
    /// `VIR_ERR_GNUTLS_ERROR`.
    GNUTLS_ERROR = 40, "GNUTLS call error", "%s";
    /// `VIR_WAR_NO_NETWORK`.
    WAR_NO_NETWORK = 41, "Failed to find the network", "Failed to find the network: %s";
    /// `VIR_ERR_NO_DOMAIN`.
    NO_DOMAIN = 42, "Domain not found", "Domain not found: %s";
    /// `VIR_ERR_NO_NETWORK`.
    NO_NETWORK = 43, "Network not found", "Network not found: %s";
    /// `VIR_ERR_INVALID_MAC`.
    INVALID_MAC = 44, "invalid MAC address", "invalid MAC address: %s";
    /// `VIR_ERR_AUTH_FAILED`.
    AUTH_FAILED = 45, "authentication failed", "authentication failed: %s";
    /// `VIR_ERR_INVALID_STORAGE_POOL`.
    INVALID_STORAGE_POOL = 46, "invalid storage pool pointer in",
        "invalid storage pool pointer in %s";
    /// `VIR_ERR_INVALID_STORAGE_VOL`.
    INVALID_STORAGE_VOL = 47, "invalid storage volume pointer in",
        "invalid storage volume pointer in %s";
    /// `VIR_WAR_NO_STORAGE`.
    WAR_NO_STORAGE = 48, "Failed to find a storage driver", "Failed to find a storage driver: %s";
    /// `VIR_ERR_NO_STORAGE_POOL`.
    NO_STORAGE_POOL = 49, "Storage pool not found", "Storage pool not found: %s";
    /// `VIR_ERR_NO_STORAGE_VOL`.
    NO_STORAGE_VOL = 50, "Storage volume not found", "Storage volume not found: %s";
    /// `VIR_WAR_NO_NODE`.
    WAR_NO_NODE = 51, "Failed to find a node driver", "Failed to find a node driver: %s";
    /// `VIR_ERR_INVALID_NODE_DEVICE`.
    INVALID_NODE_DEVICE = 52, "invalid node device pointer", "invalid node device pointer in %s";
    /// `VIR_ERR_NO_NODE_DEVICE`.
    NO_NODE_DEVICE = 53, "Node device not found", "Node device not found: %s";
    /// `VIR_ERR_NO_SECURITY_MODEL`.
    NO_SECURITY_MODEL = 54, "Security model not found", "Security model not found: %s";
    /// `VIR_ERR_OPERATION_INVALID`.
    OPERATION_INVALID = 55, "Requested operation is not valid",
        "Requested operation is not valid: %s";
    /// `VIR_WAR_NO_INTERFACE`.
    WAR_NO_INTERFACE = 56, "Failed to find the interface", "Failed to find the interface: %s";
    /// `VIR_ERR_NO_INTERFACE`.
    NO_INTERFACE = 57, "Interface not found", "Interface not found: %s";
    /// `VIR_ERR_INVALID_INTERFACE`.
    INVALID_INTERFACE = 58, "invalid interface pointer in", "invalid interface pointer in %s";
    /// `VIR_ERR_MULTIPLE_INTERFACES`.
    MULTIPLE_INTERFACES = 59, "multiple matching interfaces found",
        "multiple matching interfaces found: %s";
    /// `VIR_WAR_NO_NWFILTER`.
    WAR_NO_NWFILTER = 60, "Failed to start the nwfilter driver",
        "Failed to start the nwfilter driver: %s";
    /// `VIR_ERR_INVALID_NWFILTER`.
    INVALID_NWFILTER = 61, "Invalid network filter", "Invalid network filter: %s";
    /// `VIR_ERR_NO_NWFILTER`.
    NO_NWFILTER = 62, "Network filter not found", "Network filter not found: %s";
    /// `VIR_ERR_BUILD_FIREWALL`.
    BUILD_FIREWALL = 63, "Error while building firewall", "Error while building firewall: %s";
    /// `VIR_WAR_NO_SECRET`.
    WAR_NO_SECRET = 64, "Failed to find a secret storage driver",
        "Failed to find a secret storage driver: %s";
    /// `VIR_ERR_INVALID_SECRET`.
    INVALID_SECRET = 65, "Invalid secret", "Invalid secret: %s";
    /// `VIR_ERR_NO_SECRET`.
    NO_SECRET = 66, "Secret not found", "Secret not found: %s";
    /// `VIR_ERR_CONFIG_UNSUPPORTED`.
    CONFIG_UNSUPPORTED = 67, "unsupported configuration", "unsupported configuration: %s";
    /// `VIR_ERR_OPERATION_TIMEOUT`.
    OPERATION_TIMEOUT = 68, "Timed out during operation", "Timed out during operation: %s";
    /// `VIR_ERR_MIGRATE_PERSIST_FAILED`.
    MIGRATE_PERSIST_FAILED = 69, "Failed to make domain persistent after migration",
        "Failed to make domain persistent after migration: %s";
    /// `VIR_ERR_HOOK_SCRIPT_FAILED`.
    HOOK_SCRIPT_FAILED = 70, "Hook script execution failed", "Hook script execution failed: %s";
    /// `VIR_ERR_INVALID_DOMAIN_SNAPSHOT`.
    INVALID_DOMAIN_SNAPSHOT = 71, "Invalid domain snapshot", "Invalid domain snapshot: %s";
    /// `VIR_ERR_NO_DOMAIN_SNAPSHOT`.
    NO_DOMAIN_SNAPSHOT = 72, "Domain snapshot not found", "Domain snapshot not found: %s";
    /// `VIR_ERR_INVALID_STREAM`.
    INVALID_STREAM = 73, "invalid stream pointer", "invalid stream pointer in %s";
    /// `VIR_ERR_ARGUMENT_UNSUPPORTED`.
    ARGUMENT_UNSUPPORTED = 74, "argument unsupported", "argument unsupported: %s";
    /// `VIR_ERR_STORAGE_PROBE_FAILED`.
    STORAGE_PROBE_FAILED = 75, "Storage pool probe failed", "Storage pool probe failed: %s";
    /// `VIR_ERR_STORAGE_POOL_BUILT`.
    STORAGE_POOL_BUILT = 76, "Storage pool already built", "Storage pool already built: %s";
    /// `VIR_ERR_SNAPSHOT_REVERT_RISKY`.
    SNAPSHOT_REVERT_RISKY = 77, "revert requires force", "revert requires force: %s";
    /// `VIR_ERR_OPERATION_ABORTED`.
    OPERATION_ABORTED = 78, "operation aborted", "operation aborted: %s";
    /// `VIR_ERR_AUTH_CANCELLED`.
    AUTH_CANCELLED = 79, "authentication cancelled", "authentication cancelled: %s";
    /// `VIR_ERR_NO_DOMAIN_METADATA`.
    NO_DOMAIN_METADATA = 80, "metadata not found", "metadata not found: %s";
    /// `VIR_ERR_MIGRATE_UNSAFE`.
    MIGRATE_UNSAFE = 81, "Unsafe migration", "Unsafe migration: %s";
    /// `VIR_ERR_OVERFLOW`.
    OVERFLOW = 82, "numerical overflow", "numerical overflow: %s";
    /// `VIR_ERR_BLOCK_COPY_ACTIVE`.
    BLOCK_COPY_ACTIVE = 83, "block copy still active", "block copy still active: %s";
    /// `VIR_ERR_OPERATION_UNSUPPORTED`.
    OPERATION_UNSUPPORTED = 84, "Operation not supported", "Operation not supported: %s";
    /// `VIR_ERR_SSH`.
    SSH = 85, "SSH transport error", "SSH transport error: %s";
    /// `VIR_ERR_AGENT_UNRESPONSIVE`.
    AGENT_UNRESPONSIVE = 86, "Guest agent is not responding",
        "Guest agent is not responding: %s";
    /// `VIR_ERR_RESOURCE_BUSY`.
    RESOURCE_BUSY = 87, "resource busy", "resource busy: %s";
    /// `VIR_ERR_ACCESS_DENIED`.
    ACCESS_DENIED = 88, "access denied", "access denied: %s";
    /// `VIR_ERR_DBUS_SERVICE`.
    DBUS_SERVICE = 89, "error from service", "error from service: %s";
    /// `VIR_ERR_STORAGE_VOL_EXIST`.
    STORAGE_VOL_EXIST = 90, "this storage volume exists already",
        "storage volume %s exists already";
    /// `VIR_ERR_CPU_INCOMPATIBLE`.
    CPU_INCOMPATIBLE = 91, "the CPU is incompatible with host CPU",
        "the CPU is incompatible with host CPU: %s";
    /// `VIR_ERR_XML_INVALID_SCHEMA`.
    XML_INVALID_SCHEMA = 92, "XML document failed to validate against schema",
        "XML document failed to validate against schema: %s";
    /// `VIR_ERR_MIGRATE_FINISH_OK`.
    MIGRATE_FINISH_OK = 93, "migration successfully aborted",
        "migration successfully aborted: %s";
    /// `VIR_ERR_AUTH_UNAVAILABLE`.
    AUTH_UNAVAILABLE = 94, "authentication unavailable", "authentication unavailable: %s";
    /// `VIR_ERR_NO_SERVER`.
    NO_SERVER = 95, "Server not found", "Server not found: %s";
    /// `VIR_ERR_NO_CLIENT`.
    NO_CLIENT = 96, "Client not found", "Client not found: %s";
    /// `VIR_ERR_AGENT_UNSYNCED`.
    AGENT_UNSYNCED = 97, "guest agent replied with wrong id to guest-sync command",
        "guest agent replied with wrong id to guest-sync command: %s";
    /// `VIR_ERR_LIBSSH`.
    LIBSSH = 98, "libssh transport error", "libssh transport error: %s";
    /// `VIR_ERR_DEVICE_MISSING`.
    DEVICE_MISSING = 99, "device not found", "device not found: %s";
    /// `VIR_ERR_INVALID_NWFILTER_BINDING`.
    INVALID_NWFILTER_BINDING = 100, "Invalid network filter binding",
        "Invalid network filter binding: %s";
    /// `VIR_ERR_NO_NWFILTER_BINDING`.
    NO_NWFILTER_BINDING = 101, "Network filter binding not found",
        "Network filter binding not found: %s";
    /// `VIR_ERR_INVALID_DOMAIN_CHECKPOINT`.
    INVALID_DOMAIN_CHECKPOINT = 102, "Invalid domain checkpoint", "Invalid domain checkpoint: %s";
    /// `VIR_ERR_NO_DOMAIN_CHECKPOINT`.
    NO_DOMAIN_CHECKPOINT = 103, "Domain checkpoint not found", "Domain checkpoint not found: %s";
    /// `VIR_ERR_NO_DOMAIN_BACKUP`.
    NO_DOMAIN_BACKUP = 104, "Domain backup job id not found",
        "Domain backup job id not found: %s";
    /// `VIR_ERR_INVALID_NETWORK_PORT`.
    INVALID_NETWORK_PORT = 105, "Invalid network port pointer",
        "Invalid network port pointer: %s";
    /// `VIR_ERR_NETWORK_PORT_EXIST`.
    NETWORK_PORT_EXIST = 106, "this network port exists already", "network port %s exists already";
    /// `VIR_ERR_NO_NETWORK_PORT`.
    NO_NETWORK_PORT = 107, "network port not found", "network port not found: %s";
    /// `VIR_ERR_NO_HOSTNAME`.
    NO_HOSTNAME = 108, "no hostname found", "no hostname found: %s";
    /// `VIR_ERR_CHECKPOINT_INCONSISTENT`.
    CHECKPOINT_INCONSISTENT = 109, "checkpoint inconsistent", "checkpoint inconsistent: %s";
    /// `VIR_ERR_MULTIPLE_DOMAINS`.
    MULTIPLE_DOMAINS = 110, "multiple matching domains found",
        "multiple matching domains found: %s";
    /// `VIR_ERR_NO_NETWORK_METADATA` (libvirt 9.7 and later).
    NO_NETWORK_METADATA = 111, "metadata not found", "metadata not found: %s";
}

macro_rules! error_domains {
    ($( $(#[$m:meta])* $name:ident = $num:expr, $text:expr; )*) => {
        impl ErrorDomain {
            $( $(#[$m])* pub const $name: Self = Self($num); )*

            /// libvirt's human-readable name for the domain ("Network Driver").
            pub fn description(self) -> Option<&'static str> {
                match self.0 {
                    $( $num => Some($text), )*
                    _ => None,
                }
            }
        }
    };
}

error_domains! {
    /// `VIR_FROM_NONE`.
    NONE = 0, "";
    /// `VIR_FROM_XEN`.
    XEN = 1, "Xen Driver";
    /// `VIR_FROM_XEND`.
    XEND = 2, "Xen Daemon";
    /// `VIR_FROM_XENSTORE`.
    XENSTORE = 3, "Xen Store";
    /// `VIR_FROM_SEXPR`.
    SEXPR = 4, "S-Expression";
    /// `VIR_FROM_XML`.
    XML = 5, "XML Util";
    /// `VIR_FROM_DOM`.
    DOM = 6, "Domain";
    /// `VIR_FROM_RPC`.
    RPC = 7, "XML-RPC";
    /// `VIR_FROM_PROXY`.
    PROXY = 8, "Proxy Daemon";
    /// `VIR_FROM_CONF`.
    CONF = 9, "Config File";
    /// `VIR_FROM_QEMU`.
    QEMU = 10, "QEMU Driver";
    /// `VIR_FROM_NET`.
    NET = 11, "Network";
    /// `VIR_FROM_TEST`.
    TEST = 12, "Test Driver";
    /// `VIR_FROM_REMOTE`.
    REMOTE = 13, "Remote Driver";
    /// `VIR_FROM_OPENVZ`.
    OPENVZ = 14, "OpenVZ Driver";
    /// `VIR_FROM_XENXM`.
    XENXM = 15, "Xen XM Driver";
    /// `VIR_FROM_STATS_LINUX`.
    STATS_LINUX = 16, "Linux Statistics";
    /// `VIR_FROM_LXC`.
    LXC = 17, "LXC Driver";
    /// `VIR_FROM_STORAGE`.
    STORAGE = 18, "Storage Driver";
    /// `VIR_FROM_NETWORK`.
    NETWORK = 19, "Network Driver";
    /// `VIR_FROM_DOMAIN`.
    DOMAIN = 20, "Domain Config";
    /// `VIR_FROM_UML`.
    UML = 21, "User Mode Linux Driver";
    /// `VIR_FROM_NODEDEV`.
    NODEDEV = 22, "Node Device Driver";
    /// `VIR_FROM_XEN_INOTIFY`.
    XEN_INOTIFY = 23, "Xen Inotify Driver";
    /// `VIR_FROM_SECURITY`.
    SECURITY = 24, "Security Driver";
    /// `VIR_FROM_VBOX`.
    VBOX = 25, "VirtualBox Driver";
    /// `VIR_FROM_INTERFACE`.
    INTERFACE = 26, "Network Interface Driver";
    /// `VIR_FROM_ONE`.
    ONE = 27, "Open Nebula Driver";
    /// `VIR_FROM_ESX`.
    ESX = 28, "ESX Driver";
    /// `VIR_FROM_PHYP`.
    PHYP = 29, "Power Hypervisor Driver";
    /// `VIR_FROM_SECRET`.
    SECRET = 30, "Secrets Driver";
    /// `VIR_FROM_CPU`.
    CPU = 31, "CPU Driver";
    /// `VIR_FROM_XENAPI`.
    XENAPI = 32, "XenAPI Driver";
    /// `VIR_FROM_NWFILTER`.
    NWFILTER = 33, "Network Filter Driver";
    /// `VIR_FROM_HOOK`.
    HOOK = 34, "Lifecycle Hook";
    /// `VIR_FROM_DOMAIN_SNAPSHOT`.
    DOMAIN_SNAPSHOT = 35, "Domain Snapshot";
    /// `VIR_FROM_AUDIT`.
    AUDIT = 36, "Audit Utils";
    /// `VIR_FROM_SYSINFO`.
    SYSINFO = 37, "Sysinfo Utils";
    /// `VIR_FROM_STREAMS`.
    STREAMS = 38, "I/O Stream Utils";
    /// `VIR_FROM_VMWARE`.
    VMWARE = 39, "VMware Driver";
    /// `VIR_FROM_EVENT`.
    EVENT = 40, "Event Loop";
    /// `VIR_FROM_LIBXL`.
    LIBXL = 41, "Xen Light Driver";
    /// `VIR_FROM_LOCKING`.
    LOCKING = 42, "Lock Driver";
    /// `VIR_FROM_HYPERV`.
    HYPERV = 43, "Hyper-V Driver";
    /// `VIR_FROM_CAPABILITIES`.
    CAPABILITIES = 44, "Capabilities Utils";
    /// `VIR_FROM_URI`.
    URI = 45, "URI Utils";
    /// `VIR_FROM_AUTH`.
    AUTH = 46, "Authentication Utils";
    /// `VIR_FROM_DBUS`.
    DBUS = 47, "DBus Utils";
    /// `VIR_FROM_PARALLELS`.
    PARALLELS = 48, "Parallels Cloud Server";
    /// `VIR_FROM_DEVICE`.
    DEVICE = 49, "Device Config";
    /// `VIR_FROM_SSH`.
    SSH = 50, "SSH transport layer";
    /// `VIR_FROM_LOCKSPACE`.
    LOCKSPACE = 51, "Lock Space";
    /// `VIR_FROM_INITCTL`.
    INITCTL = 52, "Init control";
    /// `VIR_FROM_IDENTITY`.
    IDENTITY = 53, "Identity";
    /// `VIR_FROM_CGROUP`.
    CGROUP = 54, "Cgroup";
    /// `VIR_FROM_ACCESS`.
    ACCESS = 55, "Access Manager";
    /// `VIR_FROM_SYSTEMD`.
    SYSTEMD = 56, "Systemd";
    /// `VIR_FROM_BHYVE`.
    BHYVE = 57, "Bhyve";
    /// `VIR_FROM_CRYPTO`.
    CRYPTO = 58, "Crypto";
    /// `VIR_FROM_FIREWALL`.
    FIREWALL = 59, "Firewall";
    /// `VIR_FROM_POLKIT`.
    POLKIT = 60, "Polkit";
    /// `VIR_FROM_THREAD`.
    THREAD = 61, "Thread jobs";
    /// `VIR_FROM_ADMIN`.
    ADMIN = 62, "Admin Interface";
    /// `VIR_FROM_LOGGING`.
    LOGGING = 63, "Log Manager";
    /// `VIR_FROM_XENXL`.
    XENXL = 64, "Xen XL Config";
    /// `VIR_FROM_PERF`.
    PERF = 65, "Perf";
    /// `VIR_FROM_LIBSSH`.
    LIBSSH = 66, "Libssh transport layer";
    /// `VIR_FROM_RESCTRL`.
    RESCTRL = 67, "Resource control";
    /// `VIR_FROM_FIREWALLD`.
    FIREWALLD = 68, "FirewallD";
    /// `VIR_FROM_DOMAIN_CHECKPOINT`.
    DOMAIN_CHECKPOINT = 69, "Domain Checkpoint";
    /// `VIR_FROM_TPM`.
    TPM = 70, "TPM";
    /// `VIR_FROM_BPF`.
    BPF = 71, "BPF";
    /// `VIR_FROM_CH`.
    CH = 72, "Cloud-Hypervisor Driver";
}

impl ErrorCode {
    /// Builds the message text the way libvirt's `virErrorMsg` +
    /// `virReportError` do: the code's template with `detail` substituted,
    /// or the bare text when there is no detail.
    pub fn message(self, detail: Option<&str>) -> String {
        match (self.templates(), detail) {
            (Some((plain, _)), None) => plain.to_owned(),
            (Some((_, fmt)), Some(d)) => fmt.replacen("%s", d, 1),
            (None, Some(d)) => d.to_owned(),
            (None, None) => "unknown error".to_owned(),
        }
    }
}

/// The fields of `remote_error`, an error as it travels in a REPLY with
/// status ERROR. [`RemoteError`] boxes them and dereferences to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteErrorData {
    /// `virErrorNumber`.
    pub code: ErrorCode,
    /// `virErrorDomain`.
    pub domain: ErrorDomain,
    /// The full, human-readable message (what virsh prints after `error: `).
    pub message: Option<String>,
    /// `virErrorLevel`.
    pub level: ErrorLevel,
    /// Unused by libvirt; kept for wire compatibility.
    pub dom: Option<NonnullDomain>,
    /// Extra information: libvirt puts the message template here.
    pub str1: Option<String>,
    /// Extra information: libvirt puts the detail text here.
    pub str2: Option<String>,
    /// Extra information.
    pub str3: Option<String>,
    /// Extra information (errno for system errors, else -1).
    pub int1: i32,
    /// Extra information.
    pub int2: i32,
    /// Unused by libvirt; kept for wire compatibility.
    pub net: Option<NonnullNetwork>,
}

/// `remote_error`: an error as it travels in a REPLY with status ERROR.
///
/// A thin box around [`RemoteErrorData`] (so `Result`s stay small);
/// fields are reached through `Deref`: `err.code`, `err.message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError(Box<RemoteErrorData>);

impl std::ops::Deref for RemoteError {
    type Target = RemoteErrorData;
    fn deref(&self) -> &RemoteErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for RemoteError {
    fn deref_mut(&mut self) -> &mut RemoteErrorData {
        &mut self.0
    }
}

impl From<RemoteErrorData> for RemoteError {
    fn from(d: RemoteErrorData) -> Self {
        Self(Box::new(d))
    }
}

impl RemoteError {
    /// The error's fields.
    pub fn data(&self) -> &RemoteErrorData {
        &self.0
    }

    /// An error with libvirt's message for `code` and `detail`, at level
    /// ERROR, filled in as `virReportError` does (template in `str1`,
    /// detail in `str2`, `int1`/`int2` = -1).
    pub fn new(code: ErrorCode, domain: ErrorDomain, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let detail = (!detail.is_empty()).then_some(detail);
        let template = code.templates().map(|(plain, fmt)| {
            if detail.is_some() {
                fmt.to_owned()
            } else {
                plain.to_owned()
            }
        });
        RemoteErrorData {
            code,
            domain,
            message: Some(code.message(detail.as_deref())),
            level: ErrorLevel::ERROR,
            dom: None,
            str1: template,
            str2: detail,
            str3: None,
            int1: -1,
            int2: -1,
            net: None,
        }
        .into()
    }

    /// The message text ("" when absent).
    pub fn text(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }

    /// `Network not found: no network with matching name '<name>'`.
    pub fn no_network_name(name: &str) -> Self {
        Self::new(
            ErrorCode::NO_NETWORK,
            ErrorDomain::NETWORK,
            format!("no network with matching name '{name}'"),
        )
    }

    /// `Network not found: no network with matching uuid '<uuid>'`.
    pub fn no_network_uuid(uuid: &[u8; 16]) -> Self {
        Self::new(
            ErrorCode::NO_NETWORK,
            ErrorDomain::NETWORK,
            format!(
                "no network with matching uuid '{}'",
                crate::protocol::format_uuid(uuid)
            ),
        )
    }

    /// Network lookup failure for a network reference: libvirt reports the
    /// UUID and, since it has it, the name too.
    pub fn no_network(net: &NonnullNetwork) -> Self {
        Self::new(
            ErrorCode::NO_NETWORK,
            ErrorDomain::NETWORK,
            format!(
                "no network with matching uuid '{}' ({})",
                crate::protocol::format_uuid(&net.uuid),
                net.name
            ),
        )
    }

    /// `operation forbidden: read only access prevents <api>` — what libvirt
    /// reports when a read-only connection calls a mutating API.
    pub fn read_only(api: &str, domain: ErrorDomain) -> Self {
        Self::new(
            ErrorCode::OPERATION_DENIED,
            domain,
            format!("read only access prevents {api}"),
        )
    }

    /// `this function is not supported by the connection driver: <api>`.
    pub fn no_support(api: &str) -> Self {
        Self::new(ErrorCode::NO_SUPPORT, ErrorDomain::NONE, api)
    }

    /// `unknown procedure: <n>`, what libvirt's RPC layer answers for a
    /// procedure number it has no dispatcher for.
    pub fn unknown_procedure(procedure: i32) -> Self {
        Self::new(
            ErrorCode::RPC,
            ErrorDomain::RPC,
            format!("unknown procedure: {procedure}"),
        )
    }

    /// `internal error: <detail>`.
    pub fn internal(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::INTERNAL_ERROR, domain, detail)
    }

    /// `Requested operation is not valid: <detail>`.
    pub fn operation_invalid(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::OPERATION_INVALID, domain, detail)
    }

    /// `operation failed: <detail>`.
    pub fn operation_failed(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::OPERATION_FAILED, domain, detail)
    }

    /// `XML error: <detail>`.
    pub fn xml_error(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::XML_ERROR, domain, detail)
    }

    /// `unsupported configuration: <detail>`.
    pub fn config_unsupported(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::CONFIG_UNSUPPORTED, domain, detail)
    }

    /// `invalid argument: <detail>`.
    pub fn invalid_arg(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::INVALID_ARG, domain, detail)
    }

    /// `argument unsupported: <detail>`.
    pub fn argument_unsupported(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::ARGUMENT_UNSUPPORTED, domain, detail)
    }

    /// An RPC-layer error with a plain message (`VIR_ERR_RPC`, `VIR_FROM_RPC`).
    pub fn rpc(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::RPC, ErrorDomain::RPC, detail)
    }

    /// `unsupported flags (0x..) in function <api>`, libvirt's
    /// `virCheckFlags` message.
    pub fn unsupported_flags(api: &str, flags: u32, domain: ErrorDomain) -> Self {
        Self::new(
            ErrorCode::INVALID_ARG,
            domain,
            format!("unsupported flags (0x{flags:x}) in function {api}"),
        )
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "{}", self.code.message(None)),
        }
    }
}

impl std::error::Error for RemoteError {}

impl XdrEncode for RemoteError {
    fn encode(&self, enc: &mut Encoder) -> Result<(), XdrError> {
        enc.put_i32(self.code.0);
        enc.put_i32(self.domain.0);
        self.message.encode(enc)?;
        enc.put_i32(self.level.0);
        self.dom.encode(enc)?;
        self.str1.encode(enc)?;
        self.str2.encode(enc)?;
        self.str3.encode(enc)?;
        enc.put_i32(self.int1);
        enc.put_i32(self.int2);
        self.net.encode(enc)
    }
}

impl XdrDecode for RemoteError {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(RemoteErrorData {
            code: ErrorCode(dec.get_i32()?),
            domain: ErrorDomain(dec.get_i32()?),
            message: Option::decode(dec)?,
            level: ErrorLevel(dec.get_i32()?),
            dom: Option::decode(dec)?,
            str1: Option::decode(dec)?,
            str2: Option::decode(dec)?,
            str3: Option::decode(dec)?,
            int1: dec.get_i32()?,
            int2: dec.get_i32()?,
            net: Option::decode(dec)?,
        }
        .into())
    }
}

/// Everything that can go wrong talking to a peer.
#[derive(Debug, Error)]
pub enum RpcError {
    /// The peer answered with an error.
    #[error("{0}")]
    Remote(#[from] RemoteError),
    /// Encoding or decoding a payload failed.
    #[error("XDR: {0}")]
    Xdr(#[from] XdrError),
    /// The byte stream broke framing.
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// No reply arrived in time.
    #[error("timed out waiting for a reply to procedure {0}")]
    Timeout(i32),
    /// The keepalive limit was reached without an answer from the peer.
    #[error("connection closed due to keepalive timeout")]
    KeepaliveTimeout,
    /// The peer sent something the protocol does not allow here.
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl RpcError {
    /// The remote error, if the peer answered with one.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            RpcError::Remote(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_libvirt() {
        assert_eq!(
            RemoteError::no_network_name("x").text(),
            "Network not found: no network with matching name 'x'"
        );
        assert_eq!(
            RemoteError::read_only("virNetworkDefineXML", ErrorDomain::NETWORK).text(),
            "operation forbidden: read only access prevents virNetworkDefineXML"
        );
        assert_eq!(
            RemoteError::no_support("virNetworkPortCreateXML").text(),
            "this function is not supported by the connection driver: virNetworkPortCreateXML"
        );
        assert_eq!(
            RemoteError::unknown_procedure(999).text(),
            "unknown procedure: 999"
        );
        assert_eq!(
            ErrorCode::NETWORK_EXIST.message(Some("default")),
            "network default exists already"
        );
        assert_eq!(ErrorCode::NO_NETWORK.message(None), "Network not found");
        assert_eq!(
            RemoteError::xml_error(ErrorDomain::NETWORK, "missing name").text(),
            "XML error: missing name"
        );
    }

    #[test]
    fn remote_error_round_trip_and_layout() {
        let e = RemoteError::no_network_name("x");
        let bytes = e.to_xdr().unwrap();
        // code, domain, then message pointer flag.
        assert_eq!(&bytes[..12], &[0, 0, 0, 43, 0, 0, 0, 19, 0, 0, 0, 1]);
        assert_eq!(RemoteError::from_xdr(&bytes).unwrap(), e);
        assert_eq!(e.str1.as_deref(), Some("Network not found: %s"));
        assert_eq!(e.str2.as_deref(), Some("no network with matching name 'x'"));
        assert_eq!((e.int1, e.int2), (-1, -1));
    }

    #[test]
    fn codes_have_names() {
        assert_eq!(ErrorCode::NO_NETWORK.name(), Some("NO_NETWORK"));
        assert_eq!(ErrorDomain::NETWORK.description(), Some("Network Driver"));
        assert_eq!(ErrorCode(10_000).name(), None);
    }
}
