//! Shared by the driver tests: a host made of recording fakes, private
//! directories, and a driver over them.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use virtnet_host::dnsmasq::DnsmasqSupervisor;
use virtnet_host::fake::{
    FakeBandwidth, FakeDnsmasq, FakeFirewall, FakeNetlink, FakeOvs, FakeSriov, FakeSysctl,
};
use virtnet_host::firewall::Firewall;
use virtnet_host::netlink::NetlinkOps;
use virtnet_host::tap::{TapError, TapSpec};
use virtnetd::driver::{Driver, DriverConfig};
use virtnetd::host::{Host, PortDevices};
use virtnetd::store::Paths;

/// TAPs made in the fake netlink model; macvtap devices get a made-up path.
pub struct FakeTaps {
    pub netlink: Arc<FakeNetlink>,
}

impl PortDevices for FakeTaps {
    fn create_tap(&self, spec: &TapSpec) -> Result<String, TapError> {
        let names: Vec<String> = self
            .netlink
            .links()
            .map_err(|e| TapError::InvalidName(e.to_string()))?
            .into_iter()
            .map(|l| l.name)
            .collect();
        let name = (0..1000)
            .map(|n| spec.name.replacen("%d", &n.to_string(), 1))
            .find(|n| !names.contains(n))
            .ok_or_else(|| TapError::InvalidName(spec.name.clone()))?;
        self.netlink.add_existing(&name, Some("tun"));
        Ok(name)
    }

    fn macvtap_chardev(&self, _name: &str, index: u32) -> Result<PathBuf, TapError> {
        Ok(PathBuf::from(format!("/dev/tap{index}")))
    }
}

pub struct Fakes {
    pub bandwidth: Arc<FakeBandwidth>,
    pub ovs: Arc<FakeOvs>,
    pub sriov: Arc<FakeSriov>,
    pub netlink: Arc<FakeNetlink>,
    pub sysctl: Arc<FakeSysctl>,
    pub firewall: Arc<FakeFirewall>,
    pub dnsmasq: Arc<FakeDnsmasq>,
}

impl Fakes {
    pub fn new() -> Fakes {
        let sysctl = FakeSysctl::new();
        sysctl.preset("net/ipv6/conf/all/forwarding", "0");
        Fakes {
            bandwidth: Arc::new(FakeBandwidth::new()),
            ovs: Arc::new(FakeOvs::new()),
            sriov: Arc::new(FakeSriov::new()),
            netlink: Arc::new(FakeNetlink::new()),
            sysctl: Arc::new(sysctl),
            firewall: Arc::new(FakeFirewall::new()),
            dnsmasq: Arc::new(FakeDnsmasq::new(None)),
        }
    }

    pub fn host(&self) -> Host {
        Host {
            taps: Arc::new(FakeTaps {
                netlink: self.netlink.clone(),
            }),
            netlink: self.netlink.clone(),
            sysctl: self.sysctl.clone(),
            firewall: self.firewall.clone(),
            dnsmasq: self.dnsmasq.clone(),
            dnsmasq_binary: PathBuf::from("/usr/sbin/dnsmasq"),
            bandwidth: self.bandwidth.clone(),
            ovs: self.ovs.clone(),
            sriov: self.sriov.clone(),
        }
    }

    /// Nothing of network `name` is left on the (fake) host.
    pub fn assert_clean(&self, name: &str, bridge: &str) {
        assert!(
            self.netlink.link(bridge).unwrap().is_none(),
            "bridge {bridge} left behind"
        );
        assert!(
            !self.firewall.exists(name).unwrap(),
            "firewall rules of {name} left behind"
        );
        assert!(
            self.dnsmasq.pid(name).is_none(),
            "dnsmasq of {name} left running"
        );
    }
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "virtnetd-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn paths(&self) -> Paths {
        Paths {
            config_dir: self.0.join("etc"),
            run_dir: self.0.join("run"),
            state_dir: self.0.join("lib"),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn driver(dir: &TempDir, fakes: &Fakes, default_network: bool) -> Driver {
    let d = Driver::new(
        DriverConfig {
            paths: dir.paths(),
            dhcp_script: None,
            default_network,
        },
        fakes.host(),
    );
    d.load().unwrap();
    d
}
