//! What libvirt's network driver fills in when a network is defined or
//! created: a UUID, a `52:54:00:xx:xx:xx` bridge MAC address and the first
//! free `virbrN` bridge name (or the first free name from a `%d`
//! template). STP on with delay 0 are the model's own defaults
//! ([`NetworkDef::stp`] is true unless `stp='off'`, [`NetworkDef::delay`]
//! is 0), so they appear in every formatted bridge element.
//!
//! Nothing here touches the host: the caller says which bridge names are
//! in use (other networks' bridges and existing host devices), and passes
//! the random source, so tests can be deterministic.

use rand::RngCore;

use crate::addr::{MacAddr, Uuid};
use crate::error::Error;
use crate::model::NetworkDef;
use crate::validate::{MAX_IFNAME_LEN, check_bridge_name_len, check_name, validate_rest};

/// Highest `N` tried for `virbrN` (libvirt's `MAX_BRIDGE_ID`).
pub const MAX_BRIDGE_ID: u32 = 256;

/// The OUI libvirt uses for generated MAC addresses (QEMU's).
pub const MAC_PREFIX: [u8; 3] = [0x52, 0x54, 0x00];

/// The default bridge name template.
pub const DEFAULT_BRIDGE_TEMPLATE: &str = "virbr%d";

/// A random MAC address `52:54:00:xx:xx:xx` (libvirt's `virMacAddrGenerate`).
pub fn generate_mac(rng: &mut dyn RngCore) -> MacAddr {
    let mut tail = [0u8; 3];
    rng.fill_bytes(&mut tail);
    MacAddr([
        MAC_PREFIX[0],
        MAC_PREFIX[1],
        MAC_PREFIX[2],
        tail[0],
        tail[1],
        tail[2],
    ])
}

/// Give the definition a random UUID if it has none.
pub fn assign_uuid(def: &mut NetworkDef, rng: &mut dyn RngCore) -> Uuid {
    *def.uuid.get_or_insert_with(|| Uuid::new_v4(rng))
}

/// Give the bridge a random MAC address if it has none
/// (libvirt's `virNetworkSetBridgeMacAddr`).
pub fn assign_mac(def: &mut NetworkDef, rng: &mut dyn RngCore) -> MacAddr {
    *def.mac.get_or_insert_with(|| generate_mac(rng))
}

/// The template to expand: the definition's bridge name when it holds
/// exactly one `%` and that is `%d`, else `virbr%d`.
fn template(def: &NetworkDef) -> &str {
    match &def.bridge {
        Some(b) if b.matches('%').count() == 1 && b.contains("%d") => b,
        _ => DEFAULT_BRIDGE_TEMPLATE,
    }
}

/// Choose the bridge name like libvirt's `networkBridgeNameValidate`: an
/// explicit name (without `%d`) must not be in use; otherwise the first
/// name from the template (`virbr%d` by default) that is not in use is
/// taken, trying 0 to [`MAX_BRIDGE_ID`]. `in_use` answers for one name:
/// true when another network has that bridge or a host device has that
/// name.
pub fn assign_bridge_name(
    def: &mut NetworkDef,
    in_use: &dyn Fn(&str) -> bool,
) -> Result<(), Error> {
    if let Some(b) = &def.bridge {
        if !b.contains("%d") {
            if in_use(b) {
                return Err(Error::internal(format!(
                    "bridge name '{b}' already in use."
                )));
            }
            return Ok(());
        }
    }
    let templ = template(def).to_string();
    for id in 0..=MAX_BRIDGE_ID {
        let name = templ.replacen("%d", &id.to_string(), 1);
        if name.len() > MAX_IFNAME_LEN {
            return Err(Error::unsupported(format!(
                "bridge name '{name}' generated from '{templ}' in network '{}' is too long (at most {MAX_IFNAME_LEN} bytes)",
                def.name
            )));
        }
        if !in_use(&name) {
            def.bridge = Some(name);
            return Ok(());
        }
    }
    Err(Error::internal(format!(
        "Bridge generation exceeded max id {MAX_BRIDGE_ID}"
    )))
}

/// Everything net-define / net-create does to a freshly parsed definition,
/// in libvirt's order: a UUID if none was given, the name check, for the
/// modes where libvirt owns the bridge (isolated, nat, route, open) the
/// bridge name and MAC address, then [`NetworkDef::validate`]'s checks.
pub fn prepare_define(
    def: &mut NetworkDef,
    bridge_in_use: &dyn Fn(&str) -> bool,
    rng: &mut dyn RngCore,
) -> Result<(), Error> {
    assign_uuid(def, rng);
    check_name(def)?;
    if def.forward.mode.is_virtual() {
        check_bridge_name_len(def)?;
        assign_bridge_name(def, bridge_in_use)?;
        assign_mac(def, rng);
    }
    validate_rest(def)
}

/// [`prepare_define`] with the bridge names in use given as a list.
pub fn prepare_define_with(
    def: &mut NetworkDef,
    bridges_in_use: &[&str],
    rng: &mut dyn RngCore,
) -> Result<(), Error> {
    prepare_define(def, &|n| bridges_in_use.contains(&n), rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn net(xml: &str) -> NetworkDef {
        NetworkDef::parse(xml).unwrap()
    }

    #[test]
    fn fills_uuid_mac_and_first_free_bridge() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut d = net("<network><name>n</name><ip address='10.0.0.1' prefix='24'/></network>");
        prepare_define_with(&mut d, &["virbr0", "virbr1"], &mut rng).unwrap();
        assert_eq!(d.bridge.as_deref(), Some("virbr2"));
        let mac = d.mac.unwrap();
        assert_eq!(&mac.0[..3], &MAC_PREFIX);
        assert!(d.uuid.is_some());
        let xml = d.to_xml(crate::FormatFlags::INACTIVE);
        assert!(
            xml.contains("<bridge name='virbr2' stp='on' delay='0'/>"),
            "{xml}"
        );
    }

    #[test]
    fn expands_template_and_keeps_given_values() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut d = net(
            "<network><name>n</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>\
             <bridge name='lab%d'/><mac address='52:54:00:00:00:01'/></network>",
        );
        prepare_define(&mut d, &|n| n == "lab0", &mut rng).unwrap();
        assert_eq!(d.bridge.as_deref(), Some("lab1"));
        assert_eq!(d.mac.unwrap().to_string(), "52:54:00:00:00:01");
        assert_eq!(
            d.uuid.unwrap().to_string(),
            "81ff0d90-c91e-6742-64da-4a736edb9a9b"
        );
    }

    #[test]
    fn explicit_bridge_in_use_is_refused() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut d = net("<network><name>n</name><bridge name='br9'/></network>");
        let e = prepare_define_with(&mut d, &["br9"], &mut rng).unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error: bridge name 'br9' already in use."
        );
    }

    #[test]
    fn bridge_generation_gives_up() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut d = net("<network><name>n</name></network>");
        let e = prepare_define(&mut d, &|_| true, &mut rng).unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error: Bridge generation exceeded max id 256"
        );
    }

    #[test]
    fn non_virtual_modes_get_no_bridge_or_mac() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut d = net(
            "<network><name>n</name><forward mode='bridge'><interface dev='eth0'/></forward></network>",
        );
        prepare_define_with(&mut d, &[], &mut rng).unwrap();
        assert!(d.bridge.is_none());
        assert!(d.mac.is_none());
        assert!(d.uuid.is_some());
    }
}
