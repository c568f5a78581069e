//! Parts shared by networks, portgroups and ports: `<bandwidth>`,
//! `<vlan>` and `<virtualport>` (libvirt's netdev_*_conf.c), plus the
//! three-way virtualport merge the driver applies when plugging a port.

use roxmltree::Node;

use crate::addr::Uuid;
use crate::error::{Error, ErrorDomain, ErrorKind};
use crate::model::{Bandwidth, BandwidthRate, NativeVlanMode, VirtPortProfile, VirtPortType, Vlan};
use crate::xml::{self, Buf};

fn none_err(kind: ErrorKind, msg: impl Into<String>) -> Error {
    Error::new(kind, ErrorDomain::None, msg)
}

/// Parse `<inbound>` or `<outbound>` with libvirt's checks (which look at
/// which attributes are present). The rate is then reduced to what has an
/// effect, which is also all libvirt formats: `peak` and `burst` shape
/// only together with a non-zero `average`, and a rate with neither an
/// `average` nor a `floor` is no rate at all. Without this, `average='0'
/// peak='4000' floor='2000'` would be written back without its `average`,
/// as XML that no longer parses, and the definition would not load again.
fn parse_rate(node: Node, allow_floor: bool) -> Result<Option<BandwidthRate>, Error> {
    let average = xml::prop_ulonglong(node, "average", 10)?;
    let peak = xml::prop_ulonglong(node, "peak", 10)?;
    let burst = xml::prop_ulonglong(node, "burst", 10)?;
    let floor = xml::prop_ulonglong(node, "floor", 10)?;
    if average.is_none() && floor.is_none() {
        return Err(none_err(
            ErrorKind::XmlDetail,
            "Missing mandatory average or floor attributes",
        ));
    }
    if (peak.is_some() || burst.is_some()) && average.is_none() {
        return Err(none_err(
            ErrorKind::ConfigUnsupported,
            "'peak' and 'burst' require 'average' attribute",
        ));
    }
    if floor.is_some() && !allow_floor {
        return Err(none_err(
            ErrorKind::ConfigUnsupported,
            "floor attribute is not supported for this config",
        ));
    }
    let average = average.unwrap_or(0);
    let floor = floor.unwrap_or(0);
    if average == 0 && floor == 0 {
        return Ok(None);
    }
    let shaped = |v: Option<u64>| if average == 0 { 0 } else { v.unwrap_or(0) };
    Ok(Some(BandwidthRate {
        average,
        peak: shaped(peak),
        burst: shaped(burst),
        floor,
    }))
}

/// Parse `<bandwidth>`. `class_id` says whether `classID` is allowed in this
/// context; the returned class id is `None` when absent. The bandwidth is
/// `None` when neither `<inbound>` nor `<outbound>` sets a rate.
pub(crate) fn parse_bandwidth(
    node: Node,
    allow_class_id: bool,
    allow_floor: bool,
) -> Result<(Option<Bandwidth>, Option<u32>), Error> {
    let class_id = xml::prop_uint(node, "classID", 10, false)?;
    if class_id.is_some() && !allow_class_id {
        return Err(none_err(
            ErrorKind::XmlDetail,
            "classID attribute not supported on <bandwidth> in this usage context",
        ));
    }
    let inbound = match xml::subelement(node, "inbound") {
        Some(n) => parse_rate(n, allow_floor)?,
        None => None,
    };
    let outbound = match xml::subelement(node, "outbound") {
        // libvirt allows no floor on <outbound>.
        Some(n) => parse_rate(n, false)?,
        None => None,
    };
    let bw = if inbound.is_some() || outbound.is_some() {
        Some(Bandwidth { inbound, outbound })
    } else {
        None
    };
    Ok((bw, class_id))
}

fn format_rate(buf: &mut Buf, rate: &Option<BandwidthRate>, elem: &str) {
    let Some(r) = rate else { return };
    if r.average == 0 && r.floor == 0 {
        return;
    }
    let mut s = format!("<{elem}");
    if r.average != 0 {
        s.push_str(&format!(" average='{}'", r.average));
    }
    if r.peak != 0 {
        s.push_str(&format!(" peak='{}'", r.peak));
    }
    if r.floor != 0 {
        s.push_str(&format!(" floor='{}'", r.floor));
    }
    if r.burst != 0 {
        s.push_str(&format!(" burst='{}'", r.burst));
    }
    s.push_str("/>\n");
    buf.add(&s);
}

/// Format `<bandwidth>` (with `classID` when non-zero).
pub(crate) fn format_bandwidth(buf: &mut Buf, bw: Option<&Bandwidth>, class_id: u32) {
    let Some(bw) = bw else { return };
    if class_id != 0 {
        buf.add(&format!("<bandwidth classID='{class_id}'>\n"));
    } else {
        buf.add("<bandwidth>\n");
    }
    buf.adjust(2);
    format_rate(buf, &bw.inbound, "inbound");
    format_rate(buf, &bw.outbound, "outbound");
    buf.adjust(-2);
    buf.add("</bandwidth>\n");
}

/// Parse `<vlan>`.
pub(crate) fn parse_vlan(node: Node) -> Result<Vlan, Error> {
    let tag_nodes = xml::children(node, "tag");
    if tag_nodes.is_empty() {
        return Err(none_err(
            ErrorKind::XmlError,
            "missing tag id - each <vlan> must have at least one <tag id='n'/> subelement",
        ));
    }
    let mut vlan = Vlan::default();
    for t in &tag_nodes {
        let id = match xml::prop(*t, "id") {
            None => {
                return Err(Error::new(
                    ErrorKind::XmlError,
                    ErrorDomain::Xml,
                    "Missing required attribute 'id' in element 'tag'",
                ));
            }
            Some(v) => match xml::str_to_uip(v, 10) {
                Some(n) => n,
                None => {
                    return Err(xml::prop_invalid(
                        *t,
                        "id",
                        v,
                        "Expected non-negative integer value",
                    ));
                }
            },
        };
        if id > 4095 {
            return Err(none_err(
                ErrorKind::XmlError,
                format!("vlan tag id {id} too large (maximum 4095)"),
            ));
        }
        let mode = xml::prop_enum(
            *t,
            "nativeMode",
            NativeVlanMode::from_name,
            Some(NativeVlanMode::Default),
        )?;
        if let Some(mode) = mode {
            if vlan.native_mode != NativeVlanMode::Default {
                return Err(none_err(
                    ErrorKind::XmlError,
                    "duplicate native vlan setting",
                ));
            }
            vlan.native_mode = mode;
            vlan.native_tag = id;
        }
        vlan.tags.push(id);
    }
    vlan.trunk = vlan.tags.len() > 1;
    if let Some(trunk) = xml::xattr(node, "trunk") {
        vlan.trunk = trunk.eq_ignore_ascii_case("yes");
        if !vlan.trunk {
            if vlan.tags.len() > 1 {
                return Err(none_err(
                    ErrorKind::XmlError,
                    format!(
                        "invalid \"trunk='{trunk}'\" in <vlan> - trunk='yes' is required for more than one vlan tag"
                    ),
                ));
            }
            if vlan.native_mode != NativeVlanMode::Default {
                return Err(none_err(
                    ErrorKind::XmlError,
                    "invalid configuration in <vlan> - \"trunk='no'\" is not allowed with a native vlan id",
                ));
            }
            if !trunk.eq_ignore_ascii_case("no") {
                return Err(none_err(
                    ErrorKind::XmlError,
                    format!("invalid \"trunk='{trunk}'\" in <vlan> - must be yes or no"),
                ));
            }
        }
    }
    Ok(vlan)
}

/// Format `<vlan>`.
pub(crate) fn format_vlan(buf: &mut Buf, vlan: Option<&Vlan>) {
    let Some(vlan) = vlan else { return };
    if vlan.tags.is_empty() {
        return;
    }
    buf.add(if vlan.trunk {
        "<vlan trunk='yes'>\n"
    } else {
        "<vlan>\n"
    });
    buf.adjust(2);
    // libvirt marks every tag equal to the native one; marking only the
    // first keeps the output parseable when a tag id is repeated.
    let native_at = vlan.tags.iter().position(|t| *t == vlan.native_tag);
    for (i, &tag) in vlan.tags.iter().enumerate() {
        if vlan.native_mode != NativeVlanMode::Default && native_at == Some(i) {
            buf.add(&format!(
                "<tag id='{tag}' nativeMode='{}'/>\n",
                vlan.native_mode.as_str()
            ));
        } else {
            buf.add(&format!("<tag id='{tag}'/>\n"));
        }
    }
    buf.adjust(-2);
    buf.add("</vlan>\n");
}

/// Longest `profileid` libvirt stores (its buffer holds 40 bytes with NUL).
pub const PROFILE_ID_MAX: usize = 39;

/// Parse `<virtualport>`. `require_type` is set at network level.
pub(crate) fn parse_virtualport(node: Node, require_type: bool) -> Result<VirtPortProfile, Error> {
    let mut vp = VirtPortProfile::default();
    if let Some(t) = xml::prop(node, "type") {
        match VirtPortType::from_name(t) {
            Some(ty) if ty != VirtPortType::None => vp.virt_port_type = ty,
            _ => {
                return Err(none_err(
                    ErrorKind::ConfigUnsupported,
                    format!("unknown virtualport type {t}"),
                ));
            }
        }
    }
    if vp.virt_port_type == VirtPortType::None && require_type {
        return Err(none_err(
            ErrorKind::XmlError,
            "missing required virtualport type",
        ));
    }
    if let Some(params) = xml::subelement(node, "parameters") {
        if let Some(v) = xml::prop(params, "managerid") {
            let n = xml::str_to_ui(v, 0).ok_or_else(|| {
                none_err(
                    ErrorKind::XmlError,
                    "cannot parse value of managerid parameter",
                )
            })?;
            vp.manager_id =
                Some(u8::try_from(n).map_err(|_| {
                    none_err(ErrorKind::XmlError, "value of managerid out of range")
                })?);
        }
        if let Some(v) = xml::prop(params, "typeid") {
            let n = xml::str_to_ui(v, 0).ok_or_else(|| {
                none_err(
                    ErrorKind::XmlError,
                    "cannot parse value of typeid parameter",
                )
            })?;
            if n > 0xff_ffff {
                return Err(none_err(
                    ErrorKind::XmlError,
                    "value for typeid out of range",
                ));
            }
            vp.type_id = Some(n);
        }
        if let Some(v) = xml::prop(params, "typeidversion") {
            let n = xml::str_to_ui(v, 0).ok_or_else(|| {
                none_err(
                    ErrorKind::XmlError,
                    "cannot parse value of typeidversion parameter",
                )
            })?;
            vp.type_id_version = Some(u8::try_from(n).map_err(|_| {
                none_err(ErrorKind::XmlError, "value of typeidversion out of range")
            })?);
        }
        if let Some(v) = xml::prop(params, "instanceid") {
            vp.instance_id = Some(Uuid::parse(v).ok_or_else(|| {
                none_err(
                    ErrorKind::XmlError,
                    "cannot parse instanceid parameter as a uuid",
                )
            })?);
        }
        if let Some(v) = xml::prop(params, "profileid") {
            if v.len() > PROFILE_ID_MAX {
                return Err(none_err(
                    ErrorKind::XmlError,
                    "profileid parameter too long",
                ));
            }
            if !v.is_empty() {
                vp.profile_id = Some(v.to_string());
            }
        }
        if let Some(v) = xml::prop(params, "interfaceid") {
            vp.interface_id = Some(Uuid::parse(v).ok_or_else(|| {
                none_err(
                    ErrorKind::XmlError,
                    "cannot parse interfaceid parameter as a uuid",
                )
            })?);
        }
    }
    check_no_extras(&vp)?;
    Ok(vp)
}

impl VirtPortProfile {
    /// True for an untyped profile without parameters, which libvirt never
    /// formats and which adds nothing when merged.
    pub fn is_empty(&self) -> bool {
        *self == VirtPortProfile::default()
    }
}

/// libvirt's `virNetDevVPortProfileCheckNoExtras`: parameters that make no
/// sense for the type are rejected.
pub fn check_no_extras(vp: &VirtPortProfile) -> Result<(), Error> {
    let extra = match vp.virt_port_type {
        VirtPortType::None | VirtPortType::Midonet => None,
        VirtPortType::Ieee8021Qbg => {
            if vp.profile_id.is_some() {
                Some("profileid")
            } else if vp.interface_id.is_some() {
                Some("interfaceid")
            } else {
                None
            }
        }
        VirtPortType::Ieee8021Qbh => {
            if vp.manager_id.is_some() {
                Some("managerid")
            } else if vp.type_id.is_some() {
                Some("typeid")
            } else if vp.type_id_version.is_some() {
                Some("typeidversion")
            } else if vp.instance_id.is_some() {
                Some("instanceid")
            } else if vp.interface_id.is_some() {
                Some("interfaceid")
            } else {
                None
            }
        }
        VirtPortType::Openvswitch => {
            if vp.manager_id.is_some() {
                Some("managerid")
            } else if vp.type_id.is_some() {
                Some("typeid")
            } else if vp.type_id_version.is_some() {
                Some("typeidversion")
            } else if vp.instance_id.is_some() {
                Some("instanceid")
            } else {
                None
            }
        }
    };
    match extra {
        Some(e) => Err(Error::new(
            ErrorKind::XmlError,
            ErrorDomain::Net,
            format!(
                "extra {e} unsupported in <virtualport type='{}'>",
                vp.virt_port_type.as_str()
            ),
        )),
        None => Ok(()),
    }
}

/// libvirt's `virNetDevVPortProfileCheckComplete` (without generating
/// missing ids): every parameter the type needs must be present.
pub fn check_complete(vp: &VirtPortProfile) -> Result<(), Error> {
    let missing = match vp.virt_port_type {
        VirtPortType::None => None,
        VirtPortType::Ieee8021Qbg => {
            if vp.manager_id.is_none() {
                Some("managerid")
            } else if vp.type_id.is_none() {
                Some("typeid")
            } else if vp.type_id_version.is_none() {
                Some("typeidversion")
            } else if vp.instance_id.is_none() {
                Some("instanceid")
            } else {
                None
            }
        }
        VirtPortType::Ieee8021Qbh => vp.profile_id.is_none().then_some("profileid"),
        VirtPortType::Openvswitch | VirtPortType::Midonet => {
            vp.interface_id.is_none().then_some("interfaceid")
        }
    };
    match missing {
        Some(m) => Err(Error::new(
            ErrorKind::XmlError,
            ErrorDomain::Net,
            format!(
                "missing {m} in <virtualport type='{}'>",
                vp.virt_port_type.as_str()
            ),
        )),
        None => Ok(()),
    }
}

/// Format `<virtualport>` (nothing for an untyped profile without parameters).
pub(crate) fn format_virtualport(buf: &mut Buf, vp: Option<&VirtPortProfile>) {
    let Some(vp) = vp else { return };
    let ty = vp.virt_port_type;
    let no_params = vp.manager_id.is_none()
        && vp.type_id.is_none()
        && vp.type_id_version.is_none()
        && vp.instance_id.is_none()
        && vp.profile_id.is_none()
        && vp.interface_id.is_none();
    if ty == VirtPortType::None {
        if no_params {
            return;
        }
        buf.add("<virtualport>\n");
    } else if no_params {
        buf.add(&format!("<virtualport type='{}'/>\n", ty.as_str()));
        return;
    } else {
        buf.add(&format!("<virtualport type='{}'>\n", ty.as_str()));
    }
    buf.adjust(2);
    let qbg = matches!(ty, VirtPortType::Ieee8021Qbg | VirtPortType::None);
    let mut s = String::from("<parameters");
    if qbg {
        if let Some(v) = vp.manager_id {
            s.push_str(&format!(" managerid='{v}'"));
        }
        if let Some(v) = vp.type_id {
            s.push_str(&format!(" typeid='{v}'"));
        }
        if let Some(v) = vp.type_id_version {
            s.push_str(&format!(" typeidversion='{v}'"));
        }
        if let Some(v) = vp.instance_id {
            s.push_str(&format!(" instanceid='{v}'"));
        }
    }
    if matches!(
        ty,
        VirtPortType::Midonet | VirtPortType::Openvswitch | VirtPortType::None
    ) {
        if let Some(v) = vp.interface_id {
            s.push_str(&format!(" interfaceid='{v}'"));
        }
    }
    if matches!(
        ty,
        VirtPortType::Openvswitch | VirtPortType::Ieee8021Qbh | VirtPortType::None
    ) {
        if let Some(v) = &vp.profile_id {
            s.push_str(&format!(" profileid='{}'", xml::escape(v)));
        }
    }
    s.push_str("/>\n");
    buf.add(&s);
    buf.adjust(-2);
    buf.add("</virtualport>\n");
}

fn merge_err(
    what: &str,
    a: impl std::fmt::Display,
    b: impl std::fmt::Display,
    quoted: bool,
) -> Error {
    let detail = if quoted {
        format!("attempt to merge virtualports with mismatched {what} ('{a}' and '{b}')")
    } else {
        format!("attempt to merge virtualports with mismatched {what} ({a} and {b})")
    };
    Error::new(ErrorKind::XmlError, ErrorDomain::Net, detail)
}

fn merge_into(orig: &mut VirtPortProfile, mods: &VirtPortProfile) -> Result<(), Error> {
    let mut otype = orig.virt_port_type;
    if mods.virt_port_type != VirtPortType::None {
        if otype != VirtPortType::None && otype != mods.virt_port_type {
            return Err(merge_err(
                "types",
                otype.as_str(),
                mods.virt_port_type.as_str(),
                false,
            ));
        }
        orig.virt_port_type = mods.virt_port_type;
        otype = mods.virt_port_type;
    }
    let qbg = matches!(otype, VirtPortType::Ieee8021Qbg | VirtPortType::None);
    if let (Some(m), true) = (mods.manager_id, qbg) {
        if orig.manager_id.is_some_and(|o| o != m) {
            return Err(merge_err(
                "managerids",
                orig.manager_id.unwrap_or(0),
                m,
                false,
            ));
        }
        orig.manager_id = Some(m);
    }
    if let (Some(m), true) = (mods.type_id, qbg) {
        if orig.type_id.is_some_and(|o| o != m) {
            return Err(merge_err("typeids", orig.type_id.unwrap_or(0), m, false));
        }
        orig.type_id = Some(m);
    }
    if let (Some(m), true) = (mods.type_id_version, qbg) {
        if orig.type_id_version.is_some_and(|o| o != m) {
            return Err(merge_err(
                "typeidversions",
                orig.type_id_version.unwrap_or(0),
                m,
                false,
            ));
        }
        orig.type_id_version = Some(m);
    }
    if let (Some(m), true) = (mods.instance_id, qbg) {
        if let Some(o) = orig.instance_id.filter(|o| *o != m) {
            return Err(merge_err("instanceids", o, m, true));
        }
        orig.instance_id = Some(m);
    }
    if let Some(m) = mods.interface_id {
        if matches!(
            otype,
            VirtPortType::Openvswitch | VirtPortType::Midonet | VirtPortType::None
        ) {
            if let Some(o) = orig.interface_id.filter(|o| *o != m) {
                return Err(merge_err("interfaceids", o, m, true));
            }
            orig.interface_id = Some(m);
        }
    }
    if let Some(m) = &mods.profile_id {
        if matches!(
            otype,
            VirtPortType::Openvswitch | VirtPortType::Ieee8021Qbh | VirtPortType::None
        ) {
            if let Some(o) = orig.profile_id.as_ref().filter(|o| *o != m) {
                return Err(merge_err("profileids", o, m, true));
            }
            orig.profile_id = Some(m.clone());
        }
    }
    Ok(())
}

impl VirtPortProfile {
    /// Combine the virtualports of an interface (highest priority), its
    /// network and its portgroup (lowest), like libvirt's
    /// `virNetDevVPortProfileMerge3`. A lower-priority source may fill in
    /// what is unset but may not contradict what is set. `Ok(None)` when
    /// none of the three has a type.
    pub fn merge3(
        from_interface: Option<&VirtPortProfile>,
        from_network: Option<&VirtPortProfile>,
        from_portgroup: Option<&VirtPortProfile>,
    ) -> Result<Option<VirtPortProfile>, Error> {
        let untyped =
            |p: Option<&VirtPortProfile>| p.is_none_or(|p| p.virt_port_type == VirtPortType::None);
        if untyped(from_interface) && untyped(from_network) && untyped(from_portgroup) {
            return Ok(None);
        }
        let mut result = from_interface.cloned().unwrap_or_default();
        if let Some(n) = from_network {
            merge_into(&mut result, n)?;
        }
        if let Some(p) = from_portgroup {
            merge_into(&mut result, p)?;
        }
        Ok(Some(result))
    }
}
