//! Status files: what is live for an active network and how to undo it.
//!
//! `RUN/network/NAME.xml` holds the live definition and the list of setup
//! steps start performed, in order. Stopping a network undoes the steps in
//! reverse; a restarted daemon reads the file to re-adopt the network
//! instead of setting it up again. The file is written last when a network
//! starts and removed last when it stops.
//!
//! ```xml
//! <networkstatus>
//!   <setup>
//!     <bridge name='virbr0'/>
//!     <firewall bridge='virbr0'/>
//!     <dnsmasq pid='4242'/>
//!   </setup>
//! <network>
//!   …
//! </network>
//! </networkstatus>
//! ```

use virtnet_conf::{FormatFlags, NetworkDef};

use crate::error::{Error, Result};

/// One thing start did to the host, with what is needed to undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupStep {
    /// Created the network's bridge (deleting it also drops its addresses
    /// and routes).
    Bridge {
        /// Bridge name.
        name: String,
    },
    /// Installed the network's firewall rules, keyed by this bridge.
    Firewall {
        /// Bridge the rules name.
        bridge: String,
    },
    /// Started dnsmasq.
    Dnsmasq {
        /// Its pid when last seen.
        pid: i32,
    },
    /// Installed traffic shaping on the bridge.
    Bandwidth {
        /// Bridge (or device) the qdiscs are on.
        device: String,
    },
}

/// The content of a status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkStatus {
    /// Setup steps in the order they were performed.
    pub setup: Vec<SetupStep>,
    /// The live definition.
    pub def: NetworkDef,
}

fn attr_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

impl NetworkStatus {
    /// Formats the status file.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<networkstatus>\n  <setup>\n");
        for step in &self.setup {
            let line = match step {
                SetupStep::Bridge { name } => format!("<bridge name='{}'/>", attr_escape(name)),
                SetupStep::Firewall { bridge } => {
                    format!("<firewall bridge='{}'/>", attr_escape(bridge))
                }
                SetupStep::Dnsmasq { pid } => format!("<dnsmasq pid='{pid}'/>"),
                SetupStep::Bandwidth { device } => {
                    format!("<bandwidth device='{}'/>", attr_escape(device))
                }
            };
            out.push_str("    ");
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str("  </setup>\n");
        // The definition is written as formatted, without re-indenting, so
        // text inside <metadata> comes back unchanged.
        out.push_str(&self.def.to_xml(FormatFlags::default()));
        out.push_str("</networkstatus>\n");
        out
    }

    /// Parses a status file written by [`NetworkStatus::to_xml`].
    pub fn parse(text: &str) -> Result<NetworkStatus> {
        let bad = |what: &str| Error::Internal(format!("invalid network status file: {what}"));
        let doc = roxmltree::Document::parse(text).map_err(|e| bad(&e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().name() != "networkstatus" {
            return Err(bad("root element is not <networkstatus>"));
        }
        let mut setup = Vec::new();
        let mut def = None;
        for child in root.children().filter(|n| n.is_element()) {
            match child.tag_name().name() {
                "setup" => {
                    for s in child.children().filter(|n| n.is_element()) {
                        let attr = |name: &str| {
                            s.attribute(name).map(str::to_string).ok_or_else(|| {
                                bad(&format!("<{}> lacks '{name}'", s.tag_name().name()))
                            })
                        };
                        let step = match s.tag_name().name() {
                            "bridge" => SetupStep::Bridge {
                                name: attr("name")?,
                            },
                            "firewall" => SetupStep::Firewall {
                                bridge: attr("bridge")?,
                            },
                            "dnsmasq" => SetupStep::Dnsmasq {
                                pid: attr("pid")?.parse().map_err(|_| bad("dnsmasq pid"))?,
                            },
                            "bandwidth" => SetupStep::Bandwidth {
                                device: attr("device")?,
                            },
                            other => return Err(bad(&format!("unknown setup step <{other}>"))),
                        };
                        setup.push(step);
                    }
                }
                "network" => {
                    let range = child.range();
                    let xml = text.get(range).ok_or_else(|| bad("<network> range"))?;
                    def = Some(NetworkDef::parse_status(xml)?);
                }
                _ => {}
            }
        }
        let def = def.ok_or_else(|| bad("no <network> element"))?;
        Ok(NetworkStatus { setup, def })
    }

    /// The dnsmasq pid recorded, if any.
    pub fn dnsmasq_pid(&self) -> Option<i32> {
        self.setup.iter().find_map(|s| match s {
            SetupStep::Dnsmasq { pid } => Some(*pid),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let def = NetworkDef::parse(
            "<network><name>n1</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>\
             <forward mode='nat'/><bridge name='virbr9'/>\
             <ip address='10.9.0.1' prefix='24'><dhcp><range start='10.9.0.2' end='10.9.0.9'/>\
             </dhcp></ip></network>",
        )
        .unwrap();
        let st = NetworkStatus {
            setup: vec![
                SetupStep::Bridge {
                    name: "virbr9".into(),
                },
                SetupStep::Firewall {
                    bridge: "virbr9".into(),
                },
                SetupStep::Dnsmasq { pid: 4242 },
            ],
            def,
        };
        let text = st.to_xml();
        assert!(text.contains("    <dnsmasq pid='4242'/>\n"), "{text}");
        assert!(
            text.contains("</setup>\n<network>\n  <name>n1</name>\n"),
            "{text}"
        );
        let back = NetworkStatus::parse(&text).unwrap();
        assert_eq!(back, st);
        assert_eq!(back.dnsmasq_pid(), Some(4242));
    }

    #[test]
    fn rejects_garbage() {
        assert!(NetworkStatus::parse("").is_err());
        assert!(NetworkStatus::parse("<networkstatus/>").is_err());
        assert!(
            NetworkStatus::parse("<networkstatus><setup><x/></setup></networkstatus>").is_err()
        );
        assert!(
            NetworkStatus::parse(
                "<networkstatus><setup><dnsmasq pid='x'/></setup><network><name>a</name></network></networkstatus>"
            )
            .is_err()
        );
    }
}
