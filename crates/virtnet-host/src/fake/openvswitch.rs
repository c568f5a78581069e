//! [`FakeOvs`]: a recording [`OpenvswitchOps`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Recorder, lock};
use crate::openvswitch::{
    NativeVlanMode, OpenvswitchOps, OvsError, OvsPort, OvsPortSpec, add_port_args,
};

#[derive(Debug, Default)]
struct Model {
    /// Bridge name → its ports, in the order they were added.
    bridges: BTreeMap<String, Vec<String>>,
    /// Port name → (bridge, settings).
    ports: BTreeMap<String, (String, OvsPort)>,
}

/// Fake [`OpenvswitchOps`]: an OVS database of bridges and ports. Calls are
/// recorded as `add_port BRIDGE IF`, `remove_port IF`, `bridge_exists BR`,
/// `ports BR`.
#[derive(Debug, Default)]
pub struct FakeOvs {
    /// The call log and fault plan.
    pub recorder: Recorder,
    model: Mutex<Model>,
}

impl FakeOvs {
    /// A fake with no bridges.
    pub fn new() -> FakeOvs {
        FakeOvs::default()
    }

    /// Adds an OVS bridge as if an administrator had made it.
    pub fn add_bridge(&self, bridge: &str) {
        lock(&self.model)
            .bridges
            .entry(bridge.to_string())
            .or_default();
    }

    fn call(&self, line: String) -> Result<(), String> {
        self.recorder.enter(line)
    }
}

impl OpenvswitchOps for FakeOvs {
    fn add_port(&self, spec: &OvsPortSpec) -> Result<(), OvsError> {
        let add_err = |detail: String| OvsError::AddPort {
            ifname: spec.ifname.clone(),
            bridge: spec.bridge.clone(),
            detail,
        };
        self.call(format!("add_port {} {}", spec.bridge, spec.ifname))
            .map_err(add_err)?;
        // The real argument builder checks names the same way.
        add_port_args(spec)?;
        let mut m = lock(&self.model);
        if !m.bridges.contains_key(&spec.bridge) {
            return Err(add_err(format!(
                "ovs-vsctl: no bridge named {}",
                spec.bridge
            )));
        }
        if let Some((other, _)) = m.ports.get(&spec.ifname) {
            if *other != spec.bridge {
                return Err(add_err(format!(
                    "ovs-vsctl: \"--may-exist add-port {} {}\" but {} is actually attached to bridge {other}",
                    spec.bridge, spec.ifname, spec.ifname
                )));
            }
        }
        let mut port = OvsPort {
            name: spec.ifname.clone(),
            ..OvsPort::default()
        };
        if let Some(vlan) = spec.vlan.as_ref().filter(|v| !v.tags.is_empty()) {
            if let Some((mode, tag)) = vlan.native {
                port.vlan_mode = Some(
                    match mode {
                        NativeVlanMode::Tagged => "native-tagged",
                        NativeVlanMode::Untagged => "native-untagged",
                    }
                    .to_string(),
                );
                port.tag = Some(tag);
            }
            if vlan.trunk {
                port.trunks = vlan.tags.clone();
            } else {
                port.tag = vlan.tags.first().copied();
            }
        }
        let ids = &mut port.external_ids;
        ids.insert("attached-mac".into(), spec.mac.to_string());
        ids.insert("iface-id".into(), spec.interface_id.clone());
        ids.insert("vm-id".into(), spec.vm_id.clone());
        if let Some(p) = &spec.profile_id {
            ids.insert("port-profile".into(), p.clone());
            ids.insert("ifname".into(), spec.ifname.clone());
        }
        ids.insert("iface-status".into(), "active".into());
        let ports = m.bridges.entry(spec.bridge.clone()).or_default();
        if !ports.contains(&spec.ifname) {
            ports.push(spec.ifname.clone());
        }
        m.ports
            .insert(spec.ifname.clone(), (spec.bridge.clone(), port));
        Ok(())
    }

    fn remove_port(&self, ifname: &str) -> Result<(), OvsError> {
        self.call(format!("remove_port {ifname}"))
            .map_err(|detail| OvsError::DeletePort {
                ifname: ifname.to_string(),
                detail,
            })?;
        let mut m = lock(&self.model);
        if let Some((bridge, _)) = m.ports.remove(ifname) {
            if let Some(ports) = m.bridges.get_mut(&bridge) {
                ports.retain(|p| p != ifname);
            }
        }
        Ok(())
    }

    fn bridge_exists(&self, bridge: &str) -> Result<bool, OvsError> {
        self.call(format!("bridge_exists {bridge}"))
            .map_err(|detail| OvsError::Query {
                what: format!("bridge {bridge}"),
                detail,
            })?;
        Ok(lock(&self.model).bridges.contains_key(bridge))
    }

    fn ports(&self, bridge: &str) -> Result<Vec<String>, OvsError> {
        self.call(format!("ports {bridge}"))
            .map_err(|detail| OvsError::Query {
                what: format!("ports of bridge {bridge}"),
                detail,
            })?;
        let m = lock(&self.model);
        match m.bridges.get(bridge) {
            Some(ports) => {
                let mut ports = ports.clone();
                ports.sort();
                Ok(ports)
            }
            None => Err(OvsError::Query {
                what: format!("ports of bridge {bridge}"),
                detail: format!("ovs-vsctl: no bridge named {bridge}"),
            }),
        }
    }

    fn port(&self, ifname: &str) -> Result<Option<OvsPort>, OvsError> {
        Ok(lock(&self.model).ports.get(ifname).map(|(_, p)| p.clone()))
    }

    fn interface_bridge(&self, ifname: &str) -> Result<Option<String>, OvsError> {
        Ok(lock(&self.model).ports.get(ifname).map(|(b, _)| b.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openvswitch::OvsVlan;

    #[test]
    fn fake_ovs_models_ports() {
        let ovs = FakeOvs::new();
        ovs.add_bridge("ovsbr0");
        let mut spec = OvsPortSpec {
            bridge: "ovsbr0".into(),
            ifname: "vnet0".into(),
            mac: "52:54:00:00:00:01".parse().unwrap(),
            interface_id: "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f".into(),
            vm_id: "c7a5fdbd-edaf-9455-926a-d65c16db1809".into(),
            profile_id: None,
            vlan: Some(OvsVlan {
                tags: vec![7],
                trunk: false,
                native: None,
            }),
        };
        ovs.add_port(&spec).unwrap();
        let port = ovs.port("vnet0").unwrap().unwrap();
        assert_eq!(port.tag, Some(7));
        assert_eq!(port.external_ids["iface-status"], "active");
        assert_eq!(ovs.ports("ovsbr0").unwrap(), vec!["vnet0"]);
        assert_eq!(
            ovs.interface_bridge("vnet0").unwrap().as_deref(),
            Some("ovsbr0")
        );
        spec.bridge = "nobr".into();
        let err = ovs.add_port(&spec).unwrap_err().to_string();
        assert!(
            err.starts_with("Unable to add port vnet0 to OVS bridge nobr"),
            "{err}"
        );
        ovs.remove_port("vnet0").unwrap();
        ovs.remove_port("vnet0").unwrap();
        assert!(ovs.ports("ovsbr0").unwrap().is_empty());
        assert!(!ovs.bridge_exists("nobr").unwrap());
        ovs.recorder.fail_on("remove_port");
        assert!(ovs.remove_port("vnet0").is_err());
    }
}
