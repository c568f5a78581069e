//! The remote program's types and procedures for networks, network ports
//! and the connection handshake (`remote_protocol.x`).
//!
//! Each `*Args` / `*Ret` / `*Msg` struct mirrors the `.x` struct of the same
//! name field by field; [`Procedure`] numbers procedures, [`Call`] and
//! [`Reply`] carry typed arguments and return values per procedure, and
//! [`Event`] carries server-to-client event messages.

use crate::xdr::{Decoder, Encoder, XdrDecode, XdrEncode, XdrError};
use crate::xdr_struct;

/// Upper limit on lists of networks (`REMOTE_NETWORK_LIST_MAX`).
pub const NETWORK_LIST_MAX: u32 = 16_384;
/// Upper limit on lists of network ports (`REMOTE_NETWORK_PORT_LIST_MAX`).
pub const NETWORK_PORT_LIST_MAX: u32 = 16_384;
/// Upper limit on DHCP leases returned at once (`REMOTE_NETWORK_DHCP_LEASES_MAX`).
pub const NETWORK_DHCP_LEASES_MAX: u32 = 65_536;
/// Upper limit on network port typed parameters (`REMOTE_NETWORK_PORT_PARAMETERS_MAX`).
pub const NETWORK_PORT_PARAMETERS_MAX: u32 = 16;
/// Maximum number of auth types (`REMOTE_AUTH_TYPE_LIST_MAX`).
pub const AUTH_TYPE_LIST_MAX: u32 = 20;
/// Upper limit on identity parameters (`REMOTE_CONNECT_IDENTITY_PARAMS_MAX`).
pub const CONNECT_IDENTITY_PARAMS_MAX: u32 = 20;
/// Longest typed parameter field name, including the NUL libvirt stores
/// (`VIR_TYPED_PARAM_FIELD_LENGTH`).
pub const TYPED_PARAM_FIELD_LENGTH: usize = 80;

/// A 16-byte UUID (`remote_uuid`).
pub type Uuid = [u8; 16];

/// Formats a UUID the way libvirt prints it (lowercase, hyphenated).
pub fn format_uuid(uuid: &Uuid) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses a UUID as libvirt's `virUUIDParse` does: 32 hex digits,
/// optionally separated by hyphens, surrounding whitespace ignored.
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    let mut out = [0u8; 16];
    let mut nibbles = 0usize;
    for c in s.trim().chars() {
        if c == '-' {
            continue;
        }
        let v = c.to_digit(16)? as u8;
        if nibbles >= 32 {
            return None;
        }
        out[nibbles / 2] |= if nibbles % 2 == 0 { v << 4 } else { v };
        nibbles += 1;
    }
    (nibbles == 32).then_some(out)
}

/// Authentication types (`remote_auth_type`).
pub mod auth {
    /// No authentication.
    pub const NONE: i32 = 0;
    /// SASL.
    pub const SASL: i32 = 1;
    /// polkit.
    pub const POLKIT: i32 = 2;
}

/// `virConnectFlags` that travel in `CONNECT_OPEN`.
pub mod connect_flags {
    /// `VIR_CONNECT_RO`: a read-only connection.
    pub const RO: u32 = 1;
    /// `VIR_CONNECT_NO_ALIASES`.
    pub const NO_ALIASES: u32 = 2;
}

/// Features a client asks about with `CONNECT_SUPPORTS_FEATURE`
/// (libvirt's internal `virDrvFeature`).
pub mod feature {
    /// V1-style migration.
    pub const MIGRATION_V1: i32 = 1;
    /// The driver is remote.
    pub const REMOTE: i32 = 2;
    /// V2-style migration.
    pub const MIGRATION_V2: i32 = 3;
    /// Peer-to-peer migration.
    pub const MIGRATION_P2P: i32 = 4;
    /// Direct migration.
    pub const MIGRATION_DIRECT: i32 = 5;
    /// V3-style migration.
    pub const MIGRATION_V3: i32 = 6;
    /// Migration change protection.
    pub const MIGRATE_CHANGE_PROTECTION: i32 = 7;
    /// File descriptor passing.
    pub const FD_PASSING: i32 = 8;
    /// `VIR_TYPED_PARAM_STRING`.
    pub const TYPED_PARAM_STRING: i32 = 9;
    /// The peer speaks the keepalive program.
    pub const PROGRAM_KEEPALIVE: i32 = 10;
    /// `VIR_DOMAIN_XML_MIGRATABLE`.
    pub const XML_MIGRATABLE: i32 = 11;
    /// Offline migration.
    pub const MIGRATION_OFFLINE: i32 = 12;
    /// Migration parameters.
    pub const MIGRATION_PARAMS: i32 = 13;
    /// Server-side event filtering via callback IDs.
    pub const REMOTE_EVENT_CALLBACK: i32 = 14;
    /// Close callback RPCs.
    pub const REMOTE_CLOSE_CALLBACK: i32 = 15;
    /// `NETWORK_UPDATE` arguments carry command and section in the
    /// documented order (otherwise clients swap them).
    pub const NETWORK_UPDATE_HAS_CORRECT_ORDER: i32 = 16;

    /// What libvirt's network daemon answers to `CONNECT_SUPPORTS_FEATURE`:
    /// yes to remote event callbacks, close callbacks and the corrected
    /// `NETWORK_UPDATE` argument order (and keepalive, which the server
    /// answers itself), no to everything else. Clients depend on the first
    /// two: without them they fall back to legacy event RPCs networks never
    /// had.
    pub fn network_daemon_supports(feature: i32) -> bool {
        matches!(
            feature,
            PROGRAM_KEEPALIVE
                | REMOTE_EVENT_CALLBACK
                | REMOTE_CLOSE_CALLBACK
                | NETWORK_UPDATE_HAS_CORRECT_ORDER
        )
    }
}

/// `virConnectListAllNetworksFlags`.
pub mod list_networks {
    /// Inactive networks.
    pub const INACTIVE: u32 = 1;
    /// Active networks.
    pub const ACTIVE: u32 = 2;
    /// Persistent networks.
    pub const PERSISTENT: u32 = 4;
    /// Transient networks.
    pub const TRANSIENT: u32 = 8;
    /// Networks with autostart set.
    pub const AUTOSTART: u32 = 16;
    /// Networks without autostart.
    pub const NO_AUTOSTART: u32 = 32;
}

/// Network flag values (`libvirt-network.h`).
pub mod network_flags {
    /// `VIR_NETWORK_XML_INACTIVE`: dump the persistent definition.
    pub const XML_INACTIVE: u32 = 1;
    /// `VIR_NETWORK_CREATE_VALIDATE`.
    pub const CREATE_VALIDATE: u32 = 1;
    /// `VIR_NETWORK_DEFINE_VALIDATE`.
    pub const DEFINE_VALIDATE: u32 = 1;
    /// `VIR_NETWORK_UPDATE_AFFECT_CURRENT`.
    pub const UPDATE_AFFECT_CURRENT: u32 = 0;
    /// `VIR_NETWORK_UPDATE_AFFECT_LIVE`.
    pub const UPDATE_AFFECT_LIVE: u32 = 1;
    /// `VIR_NETWORK_UPDATE_AFFECT_CONFIG`.
    pub const UPDATE_AFFECT_CONFIG: u32 = 2;
    /// `VIR_NETWORK_PORT_CREATE_RECLAIM`.
    pub const PORT_CREATE_RECLAIM: u32 = 1;
    /// `VIR_NETWORK_PORT_CREATE_VALIDATE`.
    pub const PORT_CREATE_VALIDATE: u32 = 2;
}

/// `virNetworkUpdateCommand`.
pub mod update_command {
    /// Invalid.
    pub const NONE: u32 = 0;
    /// Modify an existing element.
    pub const MODIFY: u32 = 1;
    /// Delete an existing element.
    pub const DELETE: u32 = 2;
    /// Add an element at the end.
    pub const ADD_LAST: u32 = 3;
    /// Add an element at the beginning.
    pub const ADD_FIRST: u32 = 4;
}

/// `virNetworkUpdateSection`.
pub mod update_section {
    /// Invalid.
    pub const NONE: u32 = 0;
    /// `<bridge>`.
    pub const BRIDGE: u32 = 1;
    /// `<domain>`.
    pub const DOMAIN: u32 = 2;
    /// `<ip>`.
    pub const IP: u32 = 3;
    /// `<ip>/<dhcp>/<host>`.
    pub const IP_DHCP_HOST: u32 = 4;
    /// `<ip>/<dhcp>/<range>`.
    pub const IP_DHCP_RANGE: u32 = 5;
    /// `<forward>`.
    pub const FORWARD: u32 = 6;
    /// `<forward>/<interface>`.
    pub const FORWARD_INTERFACE: u32 = 7;
    /// `<forward>/<pf>`.
    pub const FORWARD_PF: u32 = 8;
    /// `<portgroup>`.
    pub const PORTGROUP: u32 = 9;
    /// `<dns>/<host>`.
    pub const DNS_HOST: u32 = 10;
    /// `<dns>/<txt>`.
    pub const DNS_TXT: u32 = 11;
    /// `<dns>/<srv>`.
    pub const DNS_SRV: u32 = 12;
}

/// Network event IDs and lifecycle event types (`libvirt-network.h`).
pub mod network_event {
    /// `VIR_NETWORK_EVENT_ID_LIFECYCLE`.
    pub const ID_LIFECYCLE: i32 = 0;
    /// `VIR_NETWORK_EVENT_ID_METADATA_CHANGE`.
    pub const ID_METADATA_CHANGE: i32 = 1;
    /// `VIR_NETWORK_EVENT_DEFINED`.
    pub const DEFINED: i32 = 0;
    /// `VIR_NETWORK_EVENT_UNDEFINED`.
    pub const UNDEFINED: i32 = 1;
    /// `VIR_NETWORK_EVENT_STARTED`.
    pub const STARTED: i32 = 2;
    /// `VIR_NETWORK_EVENT_STOPPED`.
    pub const STOPPED: i32 = 3;
}

/// `virNetworkMetadataType`.
pub mod metadata_type {
    /// `<description>`.
    pub const DESCRIPTION: i32 = 0;
    /// `<title>`.
    pub const TITLE: i32 = 1;
    /// An element in `<metadata>` keyed by namespace URI.
    pub const ELEMENT: i32 = 2;
}

/// `virIPAddrType` as used in DHCP leases.
pub mod ip_addr_type {
    /// IPv4.
    pub const IPV4: i32 = 0;
    /// IPv6.
    pub const IPV6: i32 = 1;
}

/// Network port bandwidth parameter names (`VIR_NETWORK_PORT_BANDWIDTH_*`).
pub mod port_bandwidth {
    /// Inbound average (kB/s).
    pub const IN_AVERAGE: &str = "inbound.average";
    /// Inbound peak (kB/s).
    pub const IN_PEAK: &str = "inbound.peak";
    /// Inbound burst (kB).
    pub const IN_BURST: &str = "inbound.burst";
    /// Inbound floor (kB/s).
    pub const IN_FLOOR: &str = "inbound.floor";
    /// Outbound average (kB/s).
    pub const OUT_AVERAGE: &str = "outbound.average";
    /// Outbound peak (kB/s).
    pub const OUT_PEAK: &str = "outbound.peak";
    /// Outbound burst (kB).
    pub const OUT_BURST: &str = "outbound.burst";
}

xdr_struct! {
    /// `remote_nonnull_network`: a network reference.
    pub struct NonnullNetwork {
        /// Network name.
        pub name: String,
        /// Network UUID.
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_nonnull_domain`: only used inside `remote_error`.
    pub struct NonnullDomain {
        /// Domain name.
        pub name: String,
        /// Domain UUID.
        pub uuid: Uuid,
        /// Domain ID (-1 when inactive).
        pub id: i32,
    }
}

xdr_struct! {
    /// `remote_nonnull_network_port`: a port reference.
    pub struct NonnullNetworkPort {
        /// The network the port belongs to.
        pub net: NonnullNetwork,
        /// Port UUID.
        pub uuid: Uuid,
    }
}

impl Eq for NonnullNetwork {}
impl Eq for NonnullDomain {}
impl Eq for NonnullNetworkPort {}

/// `remote_typed_param_value`: a typed parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedParamValue {
    /// `VIR_TYPED_PARAM_INT`.
    Int(i32),
    /// `VIR_TYPED_PARAM_UINT`.
    UInt(u32),
    /// `VIR_TYPED_PARAM_LLONG`.
    LLong(i64),
    /// `VIR_TYPED_PARAM_ULLONG`.
    ULLong(u64),
    /// `VIR_TYPED_PARAM_DOUBLE`.
    Double(f64),
    /// `VIR_TYPED_PARAM_BOOLEAN` (an `int` on the wire).
    Boolean(bool),
    /// `VIR_TYPED_PARAM_STRING`.
    String(String),
}

impl TypedParamValue {
    /// The `virTypedParameterType` discriminant.
    pub fn type_id(&self) -> i32 {
        match self {
            Self::Int(_) => 1,
            Self::UInt(_) => 2,
            Self::LLong(_) => 3,
            Self::ULLong(_) => 4,
            Self::Double(_) => 5,
            Self::Boolean(_) => 6,
            Self::String(_) => 7,
        }
    }

    /// The value as an unsigned 64-bit integer, for any non-negative
    /// integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::Int(v) => u64::try_from(v).ok(),
            Self::UInt(v) => Some(u64::from(v)),
            Self::LLong(v) => u64::try_from(v).ok(),
            Self::ULLong(v) => Some(v),
            _ => None,
        }
    }
}

impl XdrEncode for TypedParamValue {
    fn encode(&self, enc: &mut Encoder) -> Result<(), XdrError> {
        enc.put_i32(self.type_id());
        match self {
            Self::Int(v) => enc.put_i32(*v),
            Self::UInt(v) => enc.put_u32(*v),
            Self::LLong(v) => enc.put_i64(*v),
            Self::ULLong(v) => enc.put_u64(*v),
            Self::Double(v) => enc.put_f64(*v),
            Self::Boolean(v) => enc.put_i32(i32::from(*v)),
            Self::String(s) => s.encode(enc)?,
        }
        Ok(())
    }
}

impl XdrDecode for TypedParamValue {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(match dec.get_i32()? {
            1 => Self::Int(dec.get_i32()?),
            2 => Self::UInt(dec.get_u32()?),
            3 => Self::LLong(dec.get_i64()?),
            4 => Self::ULLong(dec.get_u64()?),
            5 => Self::Double(dec.get_f64()?),
            6 => Self::Boolean(dec.get_i32()? != 0),
            7 => Self::String(String::decode(dec)?),
            v => {
                return Err(XdrError::InvalidDiscriminant {
                    what: "typed parameter type",
                    value: i64::from(v),
                });
            }
        })
    }
}

xdr_struct! {
    /// `remote_typed_param`: a named, typed value.
    pub struct TypedParam {
        /// Parameter name.
        pub field: String,
        /// Parameter value.
        pub value: TypedParamValue,
    }
}

impl TypedParam {
    /// A parameter.
    pub fn new(field: impl Into<String>, value: TypedParamValue) -> Self {
        Self {
            field: field.into(),
            value,
        }
    }
}

/// Checks a typed parameter list the way libvirt's deserializer does:
/// field names must fit `VIR_TYPED_PARAM_FIELD_LENGTH` and not repeat.
pub fn validate_typed_params(params: &[TypedParam]) -> Result<(), String> {
    for (i, p) in params.iter().enumerate() {
        if p.field.len() >= TYPED_PARAM_FIELD_LENGTH {
            return Err(format!(
                "Parameter name '{}' too big for destination",
                p.field
            ));
        }
        if params[..i].iter().any(|q| q.field == p.field) {
            return Err(format!("parameter '{}' occurs multiple times", p.field));
        }
    }
    Ok(())
}

// ----- Connection handshake -----

xdr_struct! {
    /// `remote_connect_open_args`.
    pub struct ConnectOpenArgs {
        /// The URI the client opened (e.g. `network:///system`), may be absent.
        pub name: Option<String>,
        /// `virConnectFlags` (`VIR_CONNECT_RO`...).
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_supports_feature_args`.
    pub struct ConnectSupportsFeatureArgs {
        /// One of [`feature`].
        pub feature: i32,
    }
}

xdr_struct! {
    /// `remote_connect_supports_feature_ret`.
    pub struct ConnectSupportsFeatureRet {
        /// 1 when supported.
        pub supported: i32,
    }
}

xdr_struct! {
    /// `remote_connect_get_type_ret`.
    pub struct ConnectGetTypeRet {
        /// Driver type name.
        pub r#type: String,
    }
}

xdr_struct! {
    /// `remote_connect_get_version_ret`.
    pub struct ConnectGetVersionRet {
        /// Hypervisor version (major * 1000000 + minor * 1000 + micro).
        pub hv_ver: u64,
    }
}

xdr_struct! {
    /// `remote_connect_get_lib_version_ret`.
    pub struct ConnectGetLibVersionRet {
        /// Library version (major * 1000000 + minor * 1000 + micro).
        pub lib_ver: u64,
    }
}

xdr_struct! {
    /// `remote_connect_get_hostname_ret`.
    pub struct ConnectGetHostnameRet {
        /// Host name.
        pub hostname: String,
    }
}

xdr_struct! {
    /// `remote_connect_get_uri_ret`.
    pub struct ConnectGetUriRet {
        /// Canonical URI of the connection.
        pub uri: String,
    }
}

xdr_struct! {
    /// `remote_connect_is_secure_ret`.
    pub struct ConnectIsSecureRet {
        /// 1 when the channel is secure (local socket, TLS...).
        pub secure: i32,
    }
}

xdr_struct! {
    /// `remote_auth_list_ret`.
    pub struct AuthListRet {
        /// Accepted authentication types ([`auth`]).
        pub types: Vec<i32> [max AUTH_TYPE_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_auth_polkit_ret`.
    pub struct AuthPolkitRet {
        /// 1 when authentication completed.
        pub complete: i32,
    }
}

xdr_struct! {
    /// `remote_connect_set_identity_args`.
    pub struct ConnectSetIdentityArgs {
        /// Identity parameters.
        pub params: Vec<TypedParam> [max CONNECT_IDENTITY_PARAMS_MAX],
        /// Unused flags.
        pub flags: u32,
    }
}

// ----- Network listing -----

xdr_struct! {
    /// `remote_connect_num_of_networks_ret` and
    /// `remote_connect_num_of_defined_networks_ret`.
    pub struct ConnectNumOfNetworksRet {
        /// Count.
        pub num: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_networks_args` and
    /// `remote_connect_list_defined_networks_args`.
    pub struct ConnectListNetworksArgs {
        /// Most names the caller wants.
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_networks_ret` and
    /// `remote_connect_list_defined_networks_ret`.
    pub struct ConnectListNetworksRet {
        /// Network names.
        pub names: Vec<String> [max NETWORK_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_connect_list_all_networks_args`.
    pub struct ConnectListAllNetworksArgs {
        /// Nonzero when the caller wants the list, zero for just the count.
        pub need_results: i32,
        /// [`list_networks`] filter flags.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_networks_ret`.
    pub struct ConnectListAllNetworksRet {
        /// Networks (empty when `need_results` was 0).
        pub nets: Vec<NonnullNetwork> [max NETWORK_LIST_MAX],
        /// Number of matching networks.
        pub ret: u32,
    }
}

// ----- Network objects -----

xdr_struct! {
    /// Arguments naming just a network: `remote_network_{create,destroy,
    /// undefine,get_autostart,get_bridge_name,is_active,is_persistent}_args`.
    pub struct NetworkArgs {
        /// The network.
        pub net: NonnullNetwork,
    }
}

xdr_struct! {
    /// Return values carrying a network: `remote_network_{lookup_by_name,
    /// lookup_by_uuid,create_xml,define_xml,create_xml_flags,
    /// define_xml_flags}_ret`.
    pub struct NetworkRet {
        /// The network.
        pub net: NonnullNetwork,
    }
}

xdr_struct! {
    /// `remote_network_lookup_by_name_args`.
    pub struct NetworkLookupByNameArgs {
        /// Name to look up.
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_network_lookup_by_uuid_args`.
    pub struct NetworkLookupByUuidArgs {
        /// UUID to look up.
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_network_create_xml_args` and `remote_network_define_xml_args`.
    pub struct NetworkXmlArgs {
        /// Network XML.
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_network_create_xml_flags_args` and
    /// `remote_network_define_xml_flags_args`.
    pub struct NetworkXmlFlagsArgs {
        /// Network XML.
        pub xml: String,
        /// `VIR_NETWORK_{CREATE,DEFINE}_VALIDATE`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_get_xml_desc_args`.
    pub struct NetworkGetXmlDescArgs {
        /// The network.
        pub net: NonnullNetwork,
        /// `VIR_NETWORK_XML_INACTIVE`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// Return values carrying an XML document: `remote_network_get_xml_desc_ret`,
    /// `remote_network_port_get_xml_desc_ret`.
    pub struct XmlRet {
        /// The XML.
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_network_get_bridge_name_ret`.
    pub struct NetworkGetBridgeNameRet {
        /// Bridge device name.
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_network_get_autostart_ret`.
    pub struct NetworkGetAutostartRet {
        /// 1 when autostart is set.
        pub autostart: i32,
    }
}

xdr_struct! {
    /// `remote_network_set_autostart_args`.
    pub struct NetworkSetAutostartArgs {
        /// The network.
        pub net: NonnullNetwork,
        /// Nonzero to enable.
        pub autostart: i32,
    }
}

xdr_struct! {
    /// `remote_network_is_active_ret`.
    pub struct NetworkIsActiveRet {
        /// 1 when running.
        pub active: i32,
    }
}

xdr_struct! {
    /// `remote_network_is_persistent_ret`.
    pub struct NetworkIsPersistentRet {
        /// 1 when persistent.
        pub persistent: i32,
    }
}

xdr_struct! {
    /// `remote_network_update_args`. The client sends command and section in
    /// this order when the server reports
    /// [`feature::NETWORK_UPDATE_HAS_CORRECT_ORDER`].
    pub struct NetworkUpdateArgs {
        /// The network.
        pub net: NonnullNetwork,
        /// [`update_command`].
        pub command: u32,
        /// [`update_section`].
        pub section: u32,
        /// Index of the parent element, or -1.
        pub parent_index: i32,
        /// XML of the element.
        pub xml: String,
        /// `VIR_NETWORK_UPDATE_AFFECT_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_dhcp_lease`.
    pub struct NetworkDhcpLease {
        /// Bridge interface.
        pub iface: String,
        /// Expiry time, seconds since the epoch.
        pub expirytime: i64,
        /// [`ip_addr_type`].
        pub kind: i32,
        /// MAC address.
        pub mac: Option<String>,
        /// IAID (IPv6).
        pub iaid: Option<String>,
        /// Leased address.
        pub ipaddr: String,
        /// Prefix length.
        pub prefix: u32,
        /// Client host name.
        pub hostname: Option<String>,
        /// Client ID (DUID for IPv6).
        pub clientid: Option<String>,
    }
}

xdr_struct! {
    /// `remote_network_get_dhcp_leases_args`.
    pub struct NetworkGetDhcpLeasesArgs {
        /// The network.
        pub net: NonnullNetwork,
        /// Only leases for this MAC address.
        pub mac: Option<String>,
        /// Nonzero when the caller wants the list.
        pub need_results: i32,
        /// Unused flags.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_get_dhcp_leases_ret`.
    pub struct NetworkGetDhcpLeasesRet {
        /// Leases.
        pub leases: Vec<NetworkDhcpLease> [max NETWORK_DHCP_LEASES_MAX],
        /// Number of leases.
        pub ret: u32,
    }
}

xdr_struct! {
    /// `remote_network_set_metadata_args`.
    pub struct NetworkSetMetadataArgs {
        /// The network.
        pub network: NonnullNetwork,
        /// [`metadata_type`].
        pub kind: i32,
        /// New value; absent to remove.
        pub metadata: Option<String>,
        /// Namespace prefix for [`metadata_type::ELEMENT`].
        pub key: Option<String>,
        /// Namespace URI for [`metadata_type::ELEMENT`].
        pub uri: Option<String>,
        /// `VIR_NETWORK_UPDATE_AFFECT_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_get_metadata_args`.
    pub struct NetworkGetMetadataArgs {
        /// The network.
        pub network: NonnullNetwork,
        /// [`metadata_type`].
        pub kind: i32,
        /// Namespace URI for [`metadata_type::ELEMENT`].
        pub uri: Option<String>,
        /// `VIR_NETWORK_UPDATE_AFFECT_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_get_metadata_ret`.
    pub struct NetworkGetMetadataRet {
        /// The metadata.
        pub metadata: String,
    }
}

// ----- Events -----

xdr_struct! {
    /// `remote_connect_network_event_register_any_args`.
    pub struct ConnectNetworkEventRegisterAnyArgs {
        /// [`network_event`] `ID_*`.
        pub event_id: i32,
        /// Only events for this network, or all when absent.
        pub net: Option<NonnullNetwork>,
    }
}

xdr_struct! {
    /// `remote_connect_network_event_register_any_ret`.
    pub struct ConnectNetworkEventRegisterAnyRet {
        /// Server-assigned callback ID, echoed in every event.
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_network_event_deregister_any_args`.
    pub struct ConnectNetworkEventDeregisterAnyArgs {
        /// Callback ID from registration.
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_network_event_lifecycle_msg`.
    pub struct NetworkEventLifecycleMsg {
        /// Callback ID from registration.
        pub callback_id: i32,
        /// The network.
        pub net: NonnullNetwork,
        /// [`network_event`] `DEFINED`/`UNDEFINED`/`STARTED`/`STOPPED`.
        pub event: i32,
        /// Event detail (always 0 for networks).
        pub detail: i32,
    }
}

xdr_struct! {
    /// `remote_network_event_callback_metadata_change_msg`.
    pub struct NetworkEventCallbackMetadataChangeMsg {
        /// Callback ID from registration.
        pub callback_id: i32,
        /// The network.
        pub net: NonnullNetwork,
        /// [`metadata_type`].
        pub kind: i32,
        /// Namespace URI for [`metadata_type::ELEMENT`].
        pub nsuri: Option<String>,
    }
}

// ----- Network ports -----

xdr_struct! {
    /// `remote_network_list_all_ports_args`.
    pub struct NetworkListAllPortsArgs {
        /// The network.
        pub network: NonnullNetwork,
        /// Nonzero when the caller wants the list.
        pub need_results: i32,
        /// Unused flags.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_list_all_ports_ret`.
    pub struct NetworkListAllPortsRet {
        /// Ports.
        pub ports: Vec<NonnullNetworkPort> [max NETWORK_PORT_LIST_MAX],
        /// Number of ports.
        pub ret: u32,
    }
}

xdr_struct! {
    /// `remote_network_port_lookup_by_uuid_args`.
    pub struct NetworkPortLookupByUuidArgs {
        /// The network.
        pub network: NonnullNetwork,
        /// Port UUID.
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_network_port_create_xml_args`.
    pub struct NetworkPortCreateXmlArgs {
        /// The network.
        pub network: NonnullNetwork,
        /// Port XML.
        pub xml: String,
        /// `VIR_NETWORK_PORT_CREATE_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// Return values carrying a port: `remote_network_port_lookup_by_uuid_ret`,
    /// `remote_network_port_create_xml_ret`.
    pub struct NetworkPortRet {
        /// The port.
        pub port: NonnullNetworkPort,
    }
}

xdr_struct! {
    /// `remote_network_port_get_xml_desc_args` and
    /// `remote_network_port_delete_args`.
    pub struct NetworkPortFlagsArgs {
        /// The port.
        pub port: NonnullNetworkPort,
        /// Flags.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_port_set_parameters_args`.
    pub struct NetworkPortSetParametersArgs {
        /// The port.
        pub port: NonnullNetworkPort,
        /// Parameters ([`port_bandwidth`] names).
        pub params: Vec<TypedParam> [max NETWORK_PORT_PARAMETERS_MAX],
        /// Flags.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_port_get_parameters_args`.
    pub struct NetworkPortGetParametersArgs {
        /// The port.
        pub port: NonnullNetworkPort,
        /// Parameters the caller has room for.
        pub nparams: i32,
        /// Flags.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_port_get_parameters_ret`.
    pub struct NetworkPortGetParametersRet {
        /// Parameters.
        pub params: Vec<TypedParam> [max NETWORK_PORT_PARAMETERS_MAX],
        /// Number of parameters available.
        pub nparams: i32,
    }
}

/// Declares the procedure table: numbers, names, read-only policy, libvirt
/// API names, and the typed [`Call`] / [`Reply`] / [`Event`] enums.
macro_rules! procedures {
    (
        calls {
            $(
                $(#[$cm:meta])*
                $call:ident = $cnum:literal, $cargs:ty => $cret:ty, $cro:ident, $capi:literal;
            )*
        }
        events {
            $(
                $(#[$em:meta])*
                $event:ident = $enum_:literal, $emsg:ty;
            )*
        }
    ) => {
        /// Remote program procedures this crate knows (`remote_procedure`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i32)]
        pub enum Procedure {
            $( $(#[$cm])* $call = $cnum, )*
            $( $(#[$em])* $event = $enum_, )*
        }

        impl Procedure {
            /// Every known procedure.
            pub const ALL: &'static [Procedure] = &[ $( Procedure::$call, )* $( Procedure::$event, )* ];

            /// The procedure for a wire number.
            pub fn from_i32(n: i32) -> Option<Self> {
                match n {
                    $( $cnum => Some(Self::$call), )*
                    $( $enum_ => Some(Self::$event), )*
                    _ => None,
                }
            }

            /// The wire number.
            pub fn number(self) -> i32 {
                self as i32
            }

            /// The variant name (`NetworkLookupByName`).
            pub fn name(self) -> &'static str {
                match self {
                    $( Self::$call => stringify!($call), )*
                    $( Self::$event => stringify!($event), )*
                }
            }

            /// True for server-to-client event messages.
            pub fn is_event(self) -> bool {
                match self {
                    $( Self::$event => true, )*
                    _ => false,
                }
            }

            /// Whether libvirt allows the call on a read-only connection.
            /// Mutating network APIs check `VIR_CONNECT_RO` and fail with
            /// `operation forbidden: read only access prevents <api>`.
            pub fn allowed_read_only(self) -> bool {
                match self {
                    $( Self::$call => procedures!(@ro $cro), )*
                    $( Self::$event => true, )*
                }
            }

            /// The public libvirt API behind the procedure
            /// (`virNetworkDefineXML`), as libvirt names it in messages.
            pub fn api_name(self) -> &'static str {
                match self {
                    $( Self::$call => $capi, )*
                    $( Self::$event => stringify!($event), )*
                }
            }
        }

        /// A decoded call: the procedure's typed arguments.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Call {
            $( $(#[$cm])* $call($cargs), )*
        }

        impl Call {
            /// The procedure of this call.
            pub fn procedure(&self) -> Procedure {
                match self {
                    $( Self::$call(_) => Procedure::$call, )*
                }
            }

            /// Decodes the arguments of call `procedure` from `body`.
            /// Returns `Ok(None)` for procedures that are events, not calls.
            pub fn decode(procedure: Procedure, body: &[u8]) -> Result<Option<Self>, XdrError> {
                Ok(Some(match procedure {
                    $( Procedure::$call => Self::$call(<$cargs>::from_xdr(body)?), )*
                    _ => return Ok(None),
                }))
            }

            /// Encodes the arguments.
            pub fn encode_body(&self) -> Result<Vec<u8>, XdrError> {
                match self {
                    $( Self::$call(a) => a.to_xdr(), )*
                }
            }
        }

        /// A typed return value for one procedure.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Reply {
            $( $(#[$cm])* $call($cret), )*
        }

        impl Reply {
            /// The procedure this reply answers.
            pub fn procedure(&self) -> Procedure {
                match self {
                    $( Self::$call(_) => Procedure::$call, )*
                }
            }

            /// Decodes the return value of call `procedure` from `body`.
            pub fn decode(procedure: Procedure, body: &[u8]) -> Result<Option<Self>, XdrError> {
                Ok(Some(match procedure {
                    $( Procedure::$call => Self::$call(<$cret>::from_xdr(body)?), )*
                    _ => return Ok(None),
                }))
            }

            /// Encodes the return value.
            pub fn encode_body(&self) -> Result<Vec<u8>, XdrError> {
                match self {
                    $( Self::$call(r) => r.to_xdr(), )*
                }
            }
        }

        /// A server-to-client event message.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $( $(#[$em])* $event($emsg), )*
        }

        impl Event {
            /// The procedure number the event travels under.
            pub fn procedure(&self) -> Procedure {
                match self {
                    $( Self::$event(_) => Procedure::$event, )*
                }
            }

            /// Decodes an event message body.
            pub fn decode(procedure: Procedure, body: &[u8]) -> Result<Option<Self>, XdrError> {
                Ok(Some(match procedure {
                    $( Procedure::$event => Self::$event(<$emsg>::from_xdr(body)?), )*
                    _ => return Ok(None),
                }))
            }

            /// Encodes the event message body.
            pub fn encode_body(&self) -> Result<Vec<u8>, XdrError> {
                match self {
                    $( Self::$event(m) => m.to_xdr(), )*
                }
            }
        }
    };
    (@ro ro) => { true };
    (@ro rw) => { false };
}

procedures! {
    calls {
        /// `REMOTE_PROC_CONNECT_OPEN`.
        ConnectOpen = 1, ConnectOpenArgs => (), ro, "virConnectOpen";
        /// `REMOTE_PROC_CONNECT_CLOSE`.
        ConnectClose = 2, () => (), ro, "virConnectClose";
        /// `REMOTE_PROC_CONNECT_GET_TYPE`.
        ConnectGetType = 3, () => ConnectGetTypeRet, ro, "virConnectGetType";
        /// `REMOTE_PROC_CONNECT_GET_VERSION`.
        ConnectGetVersion = 4, () => ConnectGetVersionRet, ro, "virConnectGetVersion";
        /// `REMOTE_PROC_CONNECT_LIST_DEFINED_NETWORKS`.
        ConnectListDefinedNetworks = 36, ConnectListNetworksArgs => ConnectListNetworksRet, ro,
            "virConnectListDefinedNetworks";
        /// `REMOTE_PROC_CONNECT_LIST_NETWORKS`.
        ConnectListNetworks = 38, ConnectListNetworksArgs => ConnectListNetworksRet, ro,
            "virConnectListNetworks";
        /// `REMOTE_PROC_NETWORK_CREATE`.
        NetworkCreate = 39, NetworkArgs => (), rw, "virNetworkCreate";
        /// `REMOTE_PROC_NETWORK_CREATE_XML`.
        NetworkCreateXml = 40, NetworkXmlArgs => NetworkRet, rw, "virNetworkCreateXML";
        /// `REMOTE_PROC_NETWORK_DEFINE_XML`.
        NetworkDefineXml = 41, NetworkXmlArgs => NetworkRet, rw, "virNetworkDefineXML";
        /// `REMOTE_PROC_NETWORK_DESTROY`.
        NetworkDestroy = 42, NetworkArgs => (), rw, "virNetworkDestroy";
        /// `REMOTE_PROC_NETWORK_GET_XML_DESC`.
        NetworkGetXmlDesc = 43, NetworkGetXmlDescArgs => XmlRet, ro, "virNetworkGetXMLDesc";
        /// `REMOTE_PROC_NETWORK_GET_AUTOSTART`.
        NetworkGetAutostart = 44, NetworkArgs => NetworkGetAutostartRet, ro,
            "virNetworkGetAutostart";
        /// `REMOTE_PROC_NETWORK_GET_BRIDGE_NAME`.
        NetworkGetBridgeName = 45, NetworkArgs => NetworkGetBridgeNameRet, ro,
            "virNetworkGetBridgeName";
        /// `REMOTE_PROC_NETWORK_LOOKUP_BY_NAME`.
        NetworkLookupByName = 46, NetworkLookupByNameArgs => NetworkRet, ro,
            "virNetworkLookupByName";
        /// `REMOTE_PROC_NETWORK_LOOKUP_BY_UUID`.
        NetworkLookupByUuid = 47, NetworkLookupByUuidArgs => NetworkRet, ro,
            "virNetworkLookupByUUID";
        /// `REMOTE_PROC_NETWORK_SET_AUTOSTART`.
        NetworkSetAutostart = 48, NetworkSetAutostartArgs => (), rw, "virNetworkSetAutostart";
        /// `REMOTE_PROC_NETWORK_UNDEFINE`.
        NetworkUndefine = 49, NetworkArgs => (), rw, "virNetworkUndefine";
        /// `REMOTE_PROC_CONNECT_NUM_OF_DEFINED_NETWORKS`.
        ConnectNumOfDefinedNetworks = 50, () => ConnectNumOfNetworksRet, ro,
            "virConnectNumOfDefinedNetworks";
        /// `REMOTE_PROC_CONNECT_NUM_OF_NETWORKS`.
        ConnectNumOfNetworks = 52, () => ConnectNumOfNetworksRet, ro, "virConnectNumOfNetworks";
        /// `REMOTE_PROC_CONNECT_GET_HOSTNAME`.
        ConnectGetHostname = 59, () => ConnectGetHostnameRet, ro, "virConnectGetHostname";
        /// `REMOTE_PROC_CONNECT_SUPPORTS_FEATURE`.
        ConnectSupportsFeature = 60, ConnectSupportsFeatureArgs => ConnectSupportsFeatureRet, ro,
            "virConnectSupportsFeature";
        /// `REMOTE_PROC_AUTH_LIST`.
        AuthList = 66, () => AuthListRet, ro, "virConnectAuthList";
        /// `REMOTE_PROC_AUTH_POLKIT`.
        AuthPolkit = 70, () => AuthPolkitRet, ro, "virConnectAuthPolkit";
        /// `REMOTE_PROC_CONNECT_GET_URI`.
        ConnectGetUri = 110, () => ConnectGetUriRet, ro, "virConnectGetURI";
        /// `REMOTE_PROC_CONNECT_IS_SECURE`.
        ConnectIsSecure = 149, () => ConnectIsSecureRet, ro, "virConnectIsSecure";
        /// `REMOTE_PROC_NETWORK_IS_ACTIVE`.
        NetworkIsActive = 152, NetworkArgs => NetworkIsActiveRet, ro, "virNetworkIsActive";
        /// `REMOTE_PROC_NETWORK_IS_PERSISTENT`.
        NetworkIsPersistent = 153, NetworkArgs => NetworkIsPersistentRet, ro,
            "virNetworkIsPersistent";
        /// `REMOTE_PROC_CONNECT_GET_LIB_VERSION`.
        ConnectGetLibVersion = 157, () => ConnectGetLibVersionRet, ro, "virConnectGetLibVersion";
        /// `REMOTE_PROC_CONNECT_LIST_ALL_NETWORKS`.
        ConnectListAllNetworks = 283, ConnectListAllNetworksArgs => ConnectListAllNetworksRet, ro,
            "virConnectListAllNetworks";
        /// `REMOTE_PROC_NETWORK_UPDATE`.
        NetworkUpdate = 291, NetworkUpdateArgs => (), rw, "virNetworkUpdate";
        /// `REMOTE_PROC_CONNECT_NETWORK_EVENT_REGISTER_ANY`.
        ConnectNetworkEventRegisterAny = 313, ConnectNetworkEventRegisterAnyArgs
            => ConnectNetworkEventRegisterAnyRet, ro, "virConnectNetworkEventRegisterAny";
        /// `REMOTE_PROC_CONNECT_NETWORK_EVENT_DEREGISTER_ANY`.
        ConnectNetworkEventDeregisterAny = 314, ConnectNetworkEventDeregisterAnyArgs => (), ro,
            "virConnectNetworkEventDeregisterAny";
        /// `REMOTE_PROC_NETWORK_GET_DHCP_LEASES`.
        NetworkGetDhcpLeases = 341, NetworkGetDhcpLeasesArgs => NetworkGetDhcpLeasesRet, ro,
            "virNetworkGetDHCPLeases";
        /// `REMOTE_PROC_CONNECT_REGISTER_CLOSE_CALLBACK`.
        ConnectRegisterCloseCallback = 360, () => (), ro, "virConnectRegisterCloseCallback";
        /// `REMOTE_PROC_CONNECT_UNREGISTER_CLOSE_CALLBACK`.
        ConnectUnregisterCloseCallback = 361, () => (), ro, "virConnectUnregisterCloseCallback";
        /// `REMOTE_PROC_NETWORK_LIST_ALL_PORTS`.
        NetworkListAllPorts = 404, NetworkListAllPortsArgs => NetworkListAllPortsRet, ro,
            "virNetworkListAllPorts";
        /// `REMOTE_PROC_NETWORK_PORT_LOOKUP_BY_UUID`.
        NetworkPortLookupByUuid = 405, NetworkPortLookupByUuidArgs => NetworkPortRet, ro,
            "virNetworkPortLookupByUUID";
        /// `REMOTE_PROC_NETWORK_PORT_CREATE_XML`.
        NetworkPortCreateXml = 406, NetworkPortCreateXmlArgs => NetworkPortRet, rw,
            "virNetworkPortCreateXML";
        /// `REMOTE_PROC_NETWORK_PORT_GET_PARAMETERS`.
        NetworkPortGetParameters = 407, NetworkPortGetParametersArgs
            => NetworkPortGetParametersRet, ro, "virNetworkPortGetParameters";
        /// `REMOTE_PROC_NETWORK_PORT_SET_PARAMETERS`.
        NetworkPortSetParameters = 408, NetworkPortSetParametersArgs => (), rw,
            "virNetworkPortSetParameters";
        /// `REMOTE_PROC_NETWORK_PORT_GET_XML_DESC`.
        NetworkPortGetXmlDesc = 409, NetworkPortFlagsArgs => XmlRet, ro,
            "virNetworkPortGetXMLDesc";
        /// `REMOTE_PROC_NETWORK_PORT_DELETE`.
        NetworkPortDelete = 410, NetworkPortFlagsArgs => (), rw, "virNetworkPortDelete";
        /// `REMOTE_PROC_CONNECT_SET_IDENTITY`.
        ConnectSetIdentity = 419, ConnectSetIdentityArgs => (), ro, "virConnectSetIdentity";
        /// `REMOTE_PROC_NETWORK_DEFINE_XML_FLAGS`.
        NetworkDefineXmlFlags = 432, NetworkXmlFlagsArgs => NetworkRet, rw,
            "virNetworkDefineXMLFlags";
        /// `REMOTE_PROC_NETWORK_CREATE_XML_FLAGS`.
        NetworkCreateXmlFlags = 437, NetworkXmlFlagsArgs => NetworkRet, rw,
            "virNetworkCreateXMLFlags";
        /// `REMOTE_PROC_NETWORK_SET_METADATA`.
        NetworkSetMetadata = 444, NetworkSetMetadataArgs => (), rw, "virNetworkSetMetadata";
        /// `REMOTE_PROC_NETWORK_GET_METADATA`.
        NetworkGetMetadata = 445, NetworkGetMetadataArgs => NetworkGetMetadataRet, ro,
            "virNetworkGetMetadata";
    }
    events {
        /// `REMOTE_PROC_NETWORK_EVENT_LIFECYCLE`.
        NetworkEventLifecycle = 315, NetworkEventLifecycleMsg;
        /// `REMOTE_PROC_NETWORK_EVENT_CALLBACK_METADATA_CHANGE`.
        NetworkEventCallbackMetadataChange = 446, NetworkEventCallbackMetadataChangeMsg;
    }
}

impl Procedure {
    /// True for procedures that may run before `CONNECT_OPEN` succeeded:
    /// authentication, identity, open and close. (libvirt also answers
    /// `CONNECT_SUPPORTS_FEATURE` for `PROGRAM_KEEPALIVE` before open; the
    /// server handles that probe itself.)
    pub fn allowed_before_open(self) -> bool {
        matches!(
            self,
            Procedure::ConnectOpen
                | Procedure::AuthList
                | Procedure::AuthPolkit
                | Procedure::ConnectClose
                | Procedure::ConnectSetIdentity
        )
    }
}

/// libvirt's name for remote procedure `n` without the `REMOTE_PROC_`
/// prefix (`NODE_GET_INFO`), for any procedure libvirt defines, including
/// those this crate has no typed form for.
pub fn libvirt_procedure_name(n: i32) -> Option<&'static str> {
    let i = usize::try_from(n).ok()?;
    crate::proctable::NAMES
        .get(i)
        .copied()
        .filter(|s| !s.is_empty())
}

/// True when libvirt procedure `n` is a server-to-client event message.
pub fn libvirt_procedure_is_event(n: i32) -> bool {
    libvirt_procedure_name(n).is_some_and(|s| s.contains("_EVENT_") && !s.contains("REGISTER"))
}

/// The public libvirt API behind a libvirt procedure, as libvirt's
/// `virReportUnsupportedError` names it (`NODE_GET_INFO` -> `virNodeGetInfo`).
/// `None` for events and the authentication procedures, which have no API
/// of their own.
pub fn libvirt_api_name(n: i32) -> Option<String> {
    if let Some(p) = Procedure::from_i32(n) {
        if !p.is_event() {
            return Some(p.api_name().to_owned());
        }
    }
    let name = libvirt_procedure_name(n)?;
    if libvirt_procedure_is_event(n) || name.starts_with("AUTH_") {
        return None;
    }
    let mut api = String::from("vir");
    for word in name.split('_') {
        match word {
            "XML" | "UUID" | "URI" | "ID" | "CPU" | "MAC" | "DHCP" | "PM" | "FD" | "SEV"
            | "SCSI" | "WWN" | "NMI" | "OS" | "SSH" => api.push_str(word),
            "NWFILTER" => api.push_str("NWFilter"),
            "NWFILTERS" => api.push_str("NWFilters"),
            "FSTRIM" => api.push_str("FSTrim"),
            "FSFREEZE" => api.push_str("FSFreeze"),
            "FSTHAW" => api.push_str("FSThaw"),
            "FSINFO" => api.push_str("FSInfo"),
            "IOTHREAD" => api.push_str("IOThread"),
            _ => {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    api.push(first);
                    api.extend(chars.map(|c| c.to_ascii_lowercase()));
                }
            }
        }
    }
    Some(api)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_format_and_parse() {
        let u: Uuid = [
            0xc7, 0xa7, 0x2b, 0x2e, 0x6a, 0x35, 0x4e, 0x0c, 0x8a, 0x3d, 0x2f, 0x5e, 0x9a, 0x1b,
            0x00, 0xff,
        ];
        let s = format_uuid(&u);
        assert_eq!(s, "c7a72b2e-6a35-4e0c-8a3d-2f5e9a1b00ff");
        assert_eq!(parse_uuid(&s), Some(u));
        assert_eq!(parse_uuid("c7a72b2e6a354e0c8a3d2f5e9a1b00ff"), Some(u));
        assert_eq!(parse_uuid("c7a72b2e"), None);
        assert_eq!(parse_uuid("zz"), None);
        assert_eq!(parse_uuid(&format!("{s}00")), None);
    }

    #[test]
    fn procedure_numbers() {
        assert_eq!(Procedure::ConnectOpen.number(), 1);
        assert_eq!(Procedure::NetworkLookupByName.number(), 46);
        assert_eq!(Procedure::ConnectListAllNetworks.number(), 283);
        assert_eq!(Procedure::NetworkEventLifecycle.number(), 315);
        assert_eq!(Procedure::NetworkPortDelete.number(), 410);
        assert_eq!(Procedure::NetworkDefineXmlFlags.number(), 432);
        assert_eq!(Procedure::NetworkCreateXmlFlags.number(), 437);
        assert_eq!(Procedure::NetworkEventCallbackMetadataChange.number(), 446);
        for p in Procedure::ALL {
            assert_eq!(Procedure::from_i32(p.number()), Some(*p));
        }
        assert_eq!(Procedure::from_i32(0), None);
        assert_eq!(Procedure::from_i32(9999), None);
    }

    #[test]
    fn libvirt_procedure_table() {
        assert_eq!(libvirt_procedure_name(6), Some("NODE_GET_INFO"));
        assert_eq!(libvirt_procedure_name(0), None);
        assert_eq!(libvirt_procedure_name(-1), None);
        assert_eq!(libvirt_procedure_name(100_000), None);
        for p in Procedure::ALL {
            let name = libvirt_procedure_name(p.number()).unwrap();
            let ours: String = p
                .name()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            assert_eq!(
                name.replace('_', "").to_lowercase(),
                ours.to_lowercase(),
                "{p:?}"
            );
            assert_eq!(
                p.is_event(),
                libvirt_procedure_is_event(p.number()),
                "{p:?}"
            );
        }
        assert_eq!(libvirt_api_name(6).as_deref(), Some("virNodeGetInfo"));
        assert_eq!(libvirt_api_name(14).as_deref(), Some("virDomainGetXMLDesc"));
        assert_eq!(libvirt_api_name(19).as_deref(), Some("virDomainGetOSType"));
        assert_eq!(
            libvirt_api_name(129).as_deref(),
            Some("virInterfaceLookupByMACString")
        );
        assert_eq!(
            libvirt_api_name(252).as_deref(),
            Some("virDomainSetBlockIoTune")
        );
        assert_eq!(
            libvirt_api_name(286).as_deref(),
            Some("virConnectListAllNWFilters")
        );
        assert_eq!(
            libvirt_api_name(297).as_deref(),
            Some("virNodeDeviceLookupSCSIHostByWWN")
        );
        assert_eq!(libvirt_api_name(349).as_deref(), Some("virDomainGetFSInfo"));
        assert_eq!(
            libvirt_api_name(273).as_deref(),
            Some("virConnectListAllDomains")
        );
        assert_eq!(
            libvirt_api_name(43).as_deref(),
            Some("virNetworkGetXMLDesc")
        );
        assert_eq!(libvirt_api_name(107), None); // DOMAIN_EVENT_LIFECYCLE
        assert_eq!(libvirt_api_name(362), None); // CONNECT_EVENT_CONNECTION_CLOSED
        assert_eq!(libvirt_api_name(67), None); // AUTH_SASL_INIT
        assert_eq!(
            libvirt_api_name(167).as_deref(),
            Some("virConnectDomainEventRegisterAny")
        );
    }

    #[test]
    fn read_only_policy() {
        for p in [
            Procedure::NetworkDefineXml,
            Procedure::NetworkDefineXmlFlags,
            Procedure::NetworkCreate,
            Procedure::NetworkCreateXml,
            Procedure::NetworkDestroy,
            Procedure::NetworkUndefine,
            Procedure::NetworkUpdate,
            Procedure::NetworkSetAutostart,
            Procedure::NetworkSetMetadata,
            Procedure::NetworkPortCreateXml,
            Procedure::NetworkPortDelete,
            Procedure::NetworkPortSetParameters,
        ] {
            assert!(!p.allowed_read_only(), "{p:?}");
        }
        for p in [
            Procedure::ConnectListAllNetworks,
            Procedure::NetworkGetXmlDesc,
            Procedure::NetworkGetDhcpLeases,
            Procedure::ConnectNetworkEventRegisterAny,
            Procedure::NetworkLookupByName,
        ] {
            assert!(p.allowed_read_only(), "{p:?}");
        }
        assert_eq!(
            Procedure::NetworkDefineXml.api_name(),
            "virNetworkDefineXML"
        );
    }

    #[test]
    fn typed_param_layout() {
        let p = TypedParam::new(port_bandwidth::IN_AVERAGE, TypedParamValue::UInt(1000));
        let bytes = p.to_xdr().unwrap();
        // "inbound.average" is 15 bytes -> 16 with padding.
        assert_eq!(&bytes[..4], &[0, 0, 0, 15]);
        assert_eq!(&bytes[20..], &[0, 0, 0, 2, 0, 0, 0x03, 0xe8]);
        assert_eq!(TypedParam::from_xdr(&bytes).unwrap(), p);
        assert!(TypedParamValue::from_xdr(&[0, 0, 0, 9, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn typed_param_validation() {
        let ok = vec![
            TypedParam::new("a", TypedParamValue::Int(1)),
            TypedParam::new("b", TypedParamValue::Int(1)),
        ];
        assert!(validate_typed_params(&ok).is_ok());
        let dup = vec![
            TypedParam::new("a", TypedParamValue::Int(1)),
            TypedParam::new("a", TypedParamValue::Int(2)),
        ];
        assert!(validate_typed_params(&dup).is_err());
        let long = vec![TypedParam::new("x".repeat(80), TypedParamValue::Int(1))];
        assert!(validate_typed_params(&long).is_err());
    }

    #[test]
    fn lookup_by_name_ret_bytes() {
        let ret = NetworkRet {
            net: NonnullNetwork {
                name: "default".into(),
                uuid: [0x11; 16],
            },
        };
        let bytes = ret.to_xdr().unwrap();
        let mut want = vec![0, 0, 0, 7];
        want.extend_from_slice(b"default\0");
        want.extend_from_slice(&[0x11; 16]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn call_and_reply_dispatch_by_procedure() {
        let call = Call::NetworkLookupByName(NetworkLookupByNameArgs {
            name: "default".into(),
        });
        let body = call.encode_body().unwrap();
        assert_eq!(
            Call::decode(Procedure::NetworkLookupByName, &body).unwrap(),
            Some(call)
        );
        assert_eq!(
            Call::decode(Procedure::NetworkEventLifecycle, &body).unwrap(),
            None
        );
        let reply = Reply::ConnectSupportsFeature(ConnectSupportsFeatureRet { supported: 1 });
        assert_eq!(reply.encode_body().unwrap(), [0, 0, 0, 1]);
        let ev = Event::NetworkEventLifecycle(NetworkEventLifecycleMsg {
            callback_id: 3,
            net: NonnullNetwork {
                name: "n".into(),
                uuid: [0; 16],
            },
            event: network_event::STARTED,
            detail: 0,
        });
        let body = ev.encode_body().unwrap();
        assert_eq!(
            Event::decode(Procedure::NetworkEventLifecycle, &body).unwrap(),
            Some(ev)
        );
    }
}
