//! [`FakeBandwidth`]: a recording [`BandwidthOps`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Recorder, lock};
use crate::bandwidth::{
    BandwidthError, BandwidthOps, DeviceShaping, FIRST_FLOOR_CLASS_ID, FloorClass, TcClass,
};
use crate::types::MacAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
struct FakeClass {
    rate: u64,
    ceil: u64,
    mac: Option<MacAddr>,
}

#[derive(Debug, Default)]
struct Model {
    shaping: BTreeMap<String, DeviceShaping>,
    classes: BTreeMap<String, BTreeMap<u32, FakeClass>>,
}

/// Fake [`BandwidthOps`]: keeps each device's shaping and classes. Calls are
/// recorded as `set DEV`, `clear DEV`, `plug_floor BRIDGE ID MAC FLOOR`,
/// `unplug_floor BRIDGE ID`, `update_class_rate BRIDGE ID RATE`,
/// `update_floor_filter BRIDGE ID MAC`.
#[derive(Debug, Default)]
pub struct FakeBandwidth {
    /// The call log and fault plan.
    pub recorder: Recorder,
    model: Mutex<Model>,
}

impl FakeBandwidth {
    /// A fake with no shaping anywhere.
    pub fn new() -> FakeBandwidth {
        FakeBandwidth::default()
    }

    /// The shaping last set on a device.
    pub fn shaping(&self, device: &str) -> Option<DeviceShaping> {
        lock(&self.model).shaping.get(device).cloned()
    }

    /// The rate (kilobytes per second) of class `1:ID` on a device.
    pub fn class_rate(&self, device: &str, class_id: u32) -> Option<u64> {
        lock(&self.model)
            .classes
            .get(device)
            .and_then(|c| c.get(&class_id))
            .map(|c| c.rate)
    }

    /// The MAC address class `1:ID`'s filter matches.
    pub fn class_mac(&self, device: &str, class_id: u32) -> Option<MacAddr> {
        lock(&self.model)
            .classes
            .get(device)
            .and_then(|c| c.get(&class_id))
            .and_then(|c| c.mac)
    }

    fn call(&self, line: String, device: &str) -> Result<(), BandwidthError> {
        self.recorder
            .enter(line)
            .map_err(|detail| BandwidthError::Tc {
                action: "injected failure".to_string(),
                device: device.to_string(),
                detail,
            })
    }
}

fn missing_class(device: &str, id: u32) -> BandwidthError {
    BandwidthError::Tc {
        action: format!("change class 1:{id:x}"),
        device: device.to_string(),
        detail: "Error: Specified class not found.".to_string(),
    }
}

impl BandwidthOps for FakeBandwidth {
    fn set(&self, shaping: &DeviceShaping) -> Result<(), BandwidthError> {
        self.call(format!("set {}", shaping.device), &shaping.device)?;
        let mut m = lock(&self.model);
        m.classes.remove(&shaping.device);
        m.shaping.remove(&shaping.device);
        if shaping.is_empty() {
            return Ok(());
        }
        let mut classes = BTreeMap::new();
        if let Some(tx) = shaping.egress.filter(|r| r.average > 0) {
            let ceil = tx.ceiling();
            classes.insert(
                1,
                FakeClass {
                    rate: tx.average,
                    ceil,
                    mac: None,
                },
            );
            if shaping.floor_tree {
                classes.insert(
                    2,
                    FakeClass {
                        rate: tx.average,
                        ceil,
                        mac: None,
                    },
                );
            }
        }
        m.classes.insert(shaping.device.clone(), classes);
        m.shaping.insert(shaping.device.clone(), shaping.clone());
        Ok(())
    }

    fn clear(&self, device: &str) -> Result<(), BandwidthError> {
        self.call(format!("clear {device}"), device)?;
        let mut m = lock(&self.model);
        m.shaping.remove(device);
        m.classes.remove(device);
        Ok(())
    }

    fn plug_floor(&self, class: &FloorClass) -> Result<(), BandwidthError> {
        self.call(
            format!(
                "plug_floor {} {} {} {}",
                class.bridge, class.class_id, class.mac, class.floor
            ),
            &class.bridge,
        )?;
        if class.class_id < FIRST_FLOOR_CLASS_ID {
            return Err(BandwidthError::InvalidClassId(class.class_id));
        }
        let mut m = lock(&self.model);
        let tree = m
            .shaping
            .get(&class.bridge)
            .is_some_and(|s| s.floor_tree && s.egress.is_some());
        let classes = m.classes.entry(class.bridge.clone()).or_default();
        if !tree || !classes.contains_key(&1) {
            return Err(BandwidthError::NoBridgeQos {
                bridge: class.bridge.clone(),
                mac: class.mac,
            });
        }
        if classes.contains_key(&class.class_id) {
            return Err(BandwidthError::Tc {
                action: format!("add floor class 1:{:x}", class.class_id),
                device: class.bridge.clone(),
                detail: "Error: Class already exists.".to_string(),
            });
        }
        classes.insert(
            class.class_id,
            FakeClass {
                rate: class.floor,
                ceil: class.ceil,
                mac: Some(class.mac),
            },
        );
        Ok(())
    }

    fn unplug_floor(&self, bridge: &str, class_id: u32) -> Result<(), BandwidthError> {
        self.call(format!("unplug_floor {bridge} {class_id}"), bridge)?;
        if let Some(c) = lock(&self.model).classes.get_mut(bridge) {
            c.remove(&class_id);
        }
        Ok(())
    }

    fn update_class_rate(
        &self,
        bridge: &str,
        class_id: u32,
        rate: u64,
        ceil: u64,
    ) -> Result<(), BandwidthError> {
        self.call(
            format!("update_class_rate {bridge} {class_id} {rate}"),
            bridge,
        )?;
        let mut m = lock(&self.model);
        let class = m
            .classes
            .get_mut(bridge)
            .and_then(|c| c.get_mut(&class_id))
            .ok_or_else(|| missing_class(bridge, class_id))?;
        class.rate = rate;
        class.ceil = ceil;
        Ok(())
    }

    fn update_floor_filter(
        &self,
        bridge: &str,
        class_id: u32,
        mac: MacAddr,
    ) -> Result<(), BandwidthError> {
        self.call(
            format!("update_floor_filter {bridge} {class_id} {mac}"),
            bridge,
        )?;
        let mut m = lock(&self.model);
        let class = m
            .classes
            .get_mut(bridge)
            .and_then(|c| c.get_mut(&class_id))
            .ok_or_else(|| missing_class(bridge, class_id))?;
        class.mac = Some(mac);
        Ok(())
    }

    fn classes(&self, device: &str) -> Result<Vec<TcClass>, BandwidthError> {
        let m = lock(&self.model);
        let Some(classes) = m.classes.get(device) else {
            return Ok(Vec::new());
        };
        Ok(classes
            .iter()
            .map(|(id, c)| TcClass {
                kind: "htb".to_string(),
                id: format!("1:{id:x}"),
                parent: match id {
                    1 => None,
                    _ => Some("1:1".to_string()),
                },
                rate_bits: c.rate * 8000,
                ceil_bits: c.ceil * 8000,
            })
            .collect())
    }
}
