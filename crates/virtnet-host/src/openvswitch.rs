//! Open vSwitch ports through `ovs-vsctl`.
//!
//! [`OpenvswitchOps`] is the narrow surface the daemon uses for networks
//! with `<virtualport type='openvswitch'/>`: plug a guest's device into an
//! existing OVS bridge the way libvirt's `virNetDevOpenvswitchAddPort` does
//! (same `ovs-vsctl` transaction: `--may-exist add-port`, VLAN settings,
//! the `external-ids` OVS controllers read), unplug it with
//! `--if-exists del-port`, check a bridge, list ports. [`OvsVsctl`] is the
//! real implementation; [`crate::fake::FakeOvs`] records calls.
//!
//! [`PrivateOvs`] runs an `ovsdb-server` and `ovs-vswitchd` of its own in a
//! directory (database, sockets, pidfiles, logs), for tests and sandboxes;
//! its bridges should use `datapath_type=netdev`, the userspace datapath,
//! which works without the kernel's openvswitch module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::process::{Pidfd, ProcessError, read_pidfile, run_with_timeout};
use crate::types::MacAddr;

/// Errors from `ovs-vsctl`, in libvirt's words where it has them.
#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    /// Adding a port failed.
    #[error("Unable to add port {ifname} to OVS bridge {bridge}: {detail}")]
    AddPort {
        /// The device.
        ifname: String,
        /// The OVS bridge.
        bridge: String,
        /// ovs-vsctl's message.
        detail: String,
    },
    /// Removing a port failed.
    #[error("Unable to delete port {ifname} from OVS: {detail}")]
    DeletePort {
        /// The device.
        ifname: String,
        /// ovs-vsctl's message.
        detail: String,
    },
    /// A query failed.
    #[error("Unable to run command to get OVS {what}: {detail}")]
    Query {
        /// What was asked, e.g. `ports of bridge br0`.
        what: String,
        /// ovs-vsctl's message.
        detail: String,
    },
    /// ovs-vsctl's output could not be understood.
    #[error("Malformed ovs-vsctl output: {0}")]
    Parse(String),
    /// A name or value cannot be passed to ovs-vsctl safely.
    #[error("invalid OVS {what} '{value}'")]
    Invalid {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A private OVS could not be started.
    #[error("cannot start private Open vSwitch in {dir}: {detail}")]
    Start {
        /// Its directory.
        dir: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// ovs-vsctl could not be run.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// How untagged traffic is treated on a trunk (libvirt's `nativeMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NativeVlanMode {
    /// `vlan_mode=native-tagged`.
    Tagged,
    /// `vlan_mode=native-untagged`.
    Untagged,
}

/// VLAN settings of a port (libvirt's `<vlan>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OvsVlan {
    /// VLAN ids; one without `trunk` makes an access port (`tag=`).
    pub tags: Vec<u16>,
    /// A trunk carrying all of `tags` (`trunks=`).
    pub trunk: bool,
    /// The native VLAN and how it is treated.
    pub native: Option<(NativeVlanMode, u16)>,
}

/// A guest device to plug into an OVS bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsPortSpec {
    /// The OVS bridge.
    pub bridge: String,
    /// The device (TAP) name.
    pub ifname: String,
    /// The guest's MAC address (`external-ids:attached-mac`).
    pub mac: MacAddr,
    /// The port's interface id, a UUID (`external-ids:iface-id`, libvirt's
    /// `<parameters interfaceid=…>`).
    pub interface_id: String,
    /// The guest's UUID (`external-ids:vm-id`).
    pub vm_id: String,
    /// `<parameters profileid=…>` (`external-ids:port-profile`).
    pub profile_id: Option<String>,
    /// VLAN settings.
    pub vlan: Option<OvsVlan>,
}

/// A port as the OVS database has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OvsPort {
    /// Port name.
    pub name: String,
    /// Access VLAN (or native VLAN of a trunk).
    pub tag: Option<u16>,
    /// Trunked VLANs.
    pub trunks: Vec<u16>,
    /// `vlan_mode`, when set.
    pub vlan_mode: Option<String>,
    /// The external ids of the port's interface.
    pub external_ids: BTreeMap<String, String>,
}

/// Open vSwitch operations.
pub trait OpenvswitchOps {
    /// Adds a device to an OVS bridge with libvirt's VLAN settings and
    /// external ids. When the port is on that bridge already (a daemon
    /// re-plugging after a restart), its external ids are set again and its
    /// VLAN columns stay as they were: `--may-exist` leaves an existing port
    /// alone, as it does for libvirt.
    fn add_port(&self, spec: &OvsPortSpec) -> Result<(), OvsError>;
    /// Removes a device from whichever OVS bridge has it; fine if none has.
    fn remove_port(&self, ifname: &str) -> Result<(), OvsError>;
    /// Whether an OVS bridge exists.
    fn bridge_exists(&self, bridge: &str) -> Result<bool, OvsError>;
    /// The ports of an OVS bridge (the bridge's own port left out).
    fn ports(&self, bridge: &str) -> Result<Vec<String>, OvsError>;
    /// A port's VLAN settings and its interface's external ids.
    fn port(&self, ifname: &str) -> Result<Option<OvsPort>, OvsError>;
    /// The OVS bridge a device is a port of (libvirt's
    /// `virNetDevOpenvswitchInterfaceGetMaster`).
    fn interface_bridge(&self, ifname: &str) -> Result<Option<String>, OvsError>;
}

/// Checks a value that goes into an ovs-vsctl argument: non-empty, no
/// quotes, backslashes, whitespace or control characters, so it stays one
/// OVSDB atom.
fn check_token(what: &'static str, value: &str) -> Result<(), OvsError> {
    let ok = !value.is_empty()
        && !value.starts_with('-')
        && !value
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(OvsError::Invalid {
            what,
            value: value.to_string(),
        })
    }
}

/// The ovs-vsctl arguments (after the global options) that plug a port,
/// in libvirt's order: `-- --may-exist add-port BRIDGE IF`, the VLAN
/// columns, then one `-- set Interface IF external-ids:KEY="VALUE"` per
/// id, `iface-status=active` last. libvirt abbreviates the `trunks` column
/// to `trunk=`; the full column name is used here (ovs-vsctl treats both
/// alike).
pub fn add_port_args(spec: &OvsPortSpec) -> Result<Vec<String>, OvsError> {
    check_token("bridge name", &spec.bridge)?;
    check_token("interface name", &spec.ifname)?;
    check_token("interface id", &spec.interface_id)?;
    check_token("vm id", &spec.vm_id)?;
    if let Some(p) = &spec.profile_id {
        check_token("port profile", p)?;
    }
    let ifname = spec.ifname.as_str();
    let mut args: Vec<String> = ["--", "--may-exist", "add-port", &spec.bridge, ifname]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(vlan) = spec.vlan.as_ref().filter(|v| !v.tags.is_empty()) {
        match vlan.native {
            Some((NativeVlanMode::Tagged, tag)) => {
                args.push("vlan_mode=native-tagged".to_string());
                args.push(format!("tag={tag}"));
            }
            Some((NativeVlanMode::Untagged, tag)) => {
                args.push("vlan_mode=native-untagged".to_string());
                args.push(format!("tag={tag}"));
            }
            None => {}
        }
        if vlan.trunk {
            let list: Vec<String> = vlan.tags.iter().map(u16::to_string).collect();
            args.push(format!("trunks={}", list.join(",")));
        } else {
            args.push(format!("tag={}", vlan.tags[0]));
        }
    }
    let mut set = |value: String| {
        args.extend(
            ["--", "set", "Interface", ifname]
                .iter()
                .map(|s| s.to_string()),
        );
        args.push(value);
    };
    set(format!("external-ids:attached-mac=\"{}\"", spec.mac));
    set(format!("external-ids:iface-id=\"{}\"", spec.interface_id));
    set(format!("external-ids:vm-id=\"{}\"", spec.vm_id));
    if let Some(profile) = &spec.profile_id {
        set(format!("external-ids:port-profile=\"{profile}\""));
        set(format!("external-ids:ifname=\"{ifname}\""));
    }
    set("external-ids:iface-status=active".to_string());
    Ok(args)
}

/// The real [`OpenvswitchOps`]: runs `ovs-vsctl --timeout=N [--db=…]`.
#[derive(Debug, Clone)]
pub struct OvsVsctl {
    program: PathBuf,
    db: Option<String>,
    timeout_secs: u32,
}

impl Default for OvsVsctl {
    fn default() -> Self {
        OvsVsctl::new()
    }
}

impl OvsVsctl {
    /// `ovs-vsctl` from `PATH`, the default database, a 5 s timeout (as
    /// libvirt).
    pub fn new() -> OvsVsctl {
        OvsVsctl {
            program: PathBuf::from("ovs-vsctl"),
            db: None,
            timeout_secs: 5,
        }
    }

    /// Uses another `ovs-vsctl` binary.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> OvsVsctl {
        self.program = program.into();
        self
    }

    /// Talks to the database at `db` (`unix:/path/db.sock`).
    pub fn with_db(mut self, db: impl Into<String>) -> OvsVsctl {
        self.db = Some(db.into());
        self
    }

    /// ovs-vsctl's own `--timeout` in seconds.
    pub fn with_timeout(mut self, secs: u32) -> OvsVsctl {
        self.timeout_secs = secs.max(1);
        self
    }

    fn run(&self, args: &[String]) -> Result<Output, OvsError> {
        let mut cmd = Command::new(&self.program);
        if let Some(db) = &self.db {
            cmd.arg(format!("--db={db}"));
        }
        cmd.arg(format!("--timeout={}", self.timeout_secs));
        cmd.args(args);
        log::debug!("ovs-vsctl {}", args.join(" "));
        // ovs-vsctl gives up by itself after its --timeout; the extra
        // seconds only guard against it hanging anyway.
        let limit = Duration::from_secs(u64::from(self.timeout_secs) + 5);
        Ok(run_with_timeout(cmd, None, limit)?)
    }

    /// Creates an OVS bridge (`--may-exist add-br`), optionally with a
    /// datapath type (`netdev` for the userspace datapath).
    pub fn add_bridge(&self, bridge: &str, datapath_type: Option<&str>) -> Result<(), OvsError> {
        check_token("bridge name", bridge)?;
        let mut args = strings(&["--", "--may-exist", "add-br", bridge]);
        if let Some(dp) = datapath_type {
            check_token("datapath type", dp)?;
            args.extend(strings(&["--", "set", "Bridge", bridge]));
            args.push(format!("datapath_type={dp}"));
        }
        let out = self.run(&args)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(OvsError::Query {
                what: format!("bridge {bridge} created"),
                detail: stderr_of(&out),
            })
        }
    }

    /// Deletes an OVS bridge (`--if-exists del-br`).
    pub fn delete_bridge(&self, bridge: &str) -> Result<(), OvsError> {
        check_token("bridge name", bridge)?;
        let out = self.run(&strings(&["--", "--if-exists", "del-br", bridge]))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(OvsError::Query {
                what: format!("bridge {bridge} deleted"),
                detail: stderr_of(&out),
            })
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

impl OpenvswitchOps for OvsVsctl {
    fn add_port(&self, spec: &OvsPortSpec) -> Result<(), OvsError> {
        let args = add_port_args(spec)?;
        let out = self.run(&args)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(OvsError::AddPort {
                ifname: spec.ifname.clone(),
                bridge: spec.bridge.clone(),
                detail: stderr_of(&out),
            })
        }
    }

    fn remove_port(&self, ifname: &str) -> Result<(), OvsError> {
        check_token("interface name", ifname)?;
        let out = self.run(&strings(&["--", "--if-exists", "del-port", ifname]))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(OvsError::DeletePort {
                ifname: ifname.to_string(),
                detail: stderr_of(&out),
            })
        }
    }

    fn bridge_exists(&self, bridge: &str) -> Result<bool, OvsError> {
        check_token("bridge name", bridge)?;
        let out = self.run(&strings(&["br-exists", bridge]))?;
        // ovs-vsctl: exit 0 when it exists, 2 when it does not.
        match out.status.code() {
            Some(0) => Ok(true),
            Some(2) => Ok(false),
            _ => Err(OvsError::Query {
                what: format!("bridge {bridge}"),
                detail: stderr_of(&out),
            }),
        }
    }

    fn ports(&self, bridge: &str) -> Result<Vec<String>, OvsError> {
        check_token("bridge name", bridge)?;
        let out = self.run(&strings(&["list-ports", bridge]))?;
        if !out.status.success() {
            return Err(OvsError::Query {
                what: format!("ports of bridge {bridge}"),
                detail: stderr_of(&out),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    fn port(&self, ifname: &str) -> Result<Option<OvsPort>, OvsError> {
        check_token("interface name", ifname)?;
        let args = strings(&[
            "--format=json",
            "--data=json",
            "--",
            "--if-exists",
            "--columns=name,tag,trunks,vlan_mode",
            "list",
            "Port",
            ifname,
            "--",
            "--if-exists",
            "--columns=external_ids",
            "list",
            "Interface",
            ifname,
        ]);
        let out = self.run(&args)?;
        if !out.status.success() {
            return Err(OvsError::Query {
                what: format!("port {ifname}"),
                detail: stderr_of(&out),
            });
        }
        parse_port(&String::from_utf8_lossy(&out.stdout))
    }

    fn interface_bridge(&self, ifname: &str) -> Result<Option<String>, OvsError> {
        check_token("interface name", ifname)?;
        let out = self.run(&strings(&["iface-to-br", ifname]))?;
        // A non-zero exit only means the device is in no OVS bridge.
        if !out.status.success() {
            return Ok(None);
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty()))
    }
}

/// Parses the two tables `port()` asks for (one JSON document each).
fn parse_port(text: &str) -> Result<Option<OvsPort>, OvsError> {
    let bad = |what: &str| OvsError::Parse(format!("{what}: {}", text.trim()));
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&e.to_string()))?;
    let rows = |doc: Option<&serde_json::Value>| -> Vec<serde_json::Value> {
        doc.and_then(|d| d.get("data"))
            .and_then(|d| d.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let ports = rows(docs.first());
    let Some(row) = ports.first() else {
        return Ok(None);
    };
    let cells = row.as_array().ok_or_else(|| bad("Port row"))?;
    let mut port = OvsPort {
        name: cells
            .first()
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("Port name"))?
            .to_string(),
        ..OvsPort::default()
    };
    port.tag = set_atoms(cells.get(1))
        .first()
        .and_then(|v| v.as_u64())
        .and_then(|v| u16::try_from(v).ok());
    port.trunks = set_atoms(cells.get(2))
        .iter()
        .filter_map(|v| v.as_u64().and_then(|v| u16::try_from(v).ok()))
        .collect();
    port.vlan_mode = set_atoms(cells.get(3))
        .first()
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if let Some(ids) = rows(docs.get(1))
        .first()
        .and_then(|r| r.as_array())
        .and_then(|c| c.first())
    {
        port.external_ids = map_pairs(ids).ok_or_else(|| bad("external_ids"))?;
    }
    Ok(Some(port))
}

/// An OVSDB JSON set: `["set", [a, b]]`, or a single atom standing alone.
fn set_atoms(value: Option<&serde_json::Value>) -> Vec<serde_json::Value> {
    match value {
        Some(serde_json::Value::Array(a))
            if a.len() == 2 && a[0].as_str() == Some("set") && a[1].is_array() =>
        {
            a[1].as_array().cloned().unwrap_or_default()
        }
        Some(v) => vec![v.clone()],
        None => Vec::new(),
    }
}

/// An OVSDB JSON map: `["map", [[k, v], …]]`.
fn map_pairs(value: &serde_json::Value) -> Option<BTreeMap<String, String>> {
    let a = value.as_array()?;
    if a.len() != 2 || a[0].as_str() != Some("map") {
        return None;
    }
    let mut out = BTreeMap::new();
    for pair in a[1].as_array()? {
        let kv = pair.as_array()?;
        out.insert(
            kv.first()?.as_str()?.to_string(),
            kv.get(1)?.as_str()?.to_string(),
        );
    }
    Some(out)
}

/// An `ovsdb-server` and `ovs-vswitchd` of their own, with database,
/// sockets, pidfiles and logs in one directory, started detached in the
/// caller's network namespace. Only the userspace datapath is available
/// (`ovs-vswitchd --disable-system`): create bridges with
/// `datapath_type=netdev`. Both daemons are stopped (SIGTERM, then SIGKILL)
/// when this is dropped.
#[derive(Debug)]
pub struct PrivateOvs {
    dir: PathBuf,
    daemons: Vec<(String, Pidfd)>,
}

/// Programs and schema a [`PrivateOvs`] uses.
#[derive(Debug, Clone)]
pub struct PrivateOvsConfig {
    /// `ovsdb-tool`.
    pub ovsdb_tool: PathBuf,
    /// `ovsdb-server`.
    pub ovsdb_server: PathBuf,
    /// `ovs-vswitchd`.
    pub ovs_vswitchd: PathBuf,
    /// `ovs-vsctl`.
    pub ovs_vsctl: PathBuf,
    /// The `Open_vSwitch` database schema.
    pub schema: PathBuf,
}

impl Default for PrivateOvsConfig {
    fn default() -> Self {
        let find = |name: &str| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain(["/usr/sbin", "/usr/bin", "/sbin"].iter().map(PathBuf::from))
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from(name))
        };
        PrivateOvsConfig {
            ovsdb_tool: find("ovsdb-tool"),
            ovsdb_server: find("ovsdb-server"),
            ovs_vswitchd: find("ovs-vswitchd"),
            ovs_vsctl: find("ovs-vsctl"),
            schema: PathBuf::from("/usr/share/openvswitch/vswitch.ovsschema"),
        }
    }
}

impl PrivateOvs {
    /// Starts the daemons in `dir` (created if missing; an old database
    /// there is replaced). Returns when both are ready.
    pub fn start(dir: &Path, config: &PrivateOvsConfig) -> Result<PrivateOvs, OvsError> {
        let fail = |detail: String| OvsError::Start {
            dir: dir.to_path_buf(),
            detail,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let db = dir.join("conf.db");
        let _ = std::fs::remove_file(&db);
        let limit = Duration::from_secs(20);
        let env = |cmd: &mut Command| {
            for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
                cmd.env(var, dir);
            }
        };
        let run = |mut cmd: Command| -> Result<(), OvsError> {
            env(&mut cmd);
            let what = format!("{cmd:?}");
            let out = run_with_timeout(cmd, None, limit)?;
            if out.status.success() {
                Ok(())
            } else {
                Err(fail(format!("{what}: {}", stderr_of(&out))))
            }
        };
        let mut create = Command::new(&config.ovsdb_tool);
        create.arg("create").arg(&db).arg(&config.schema);
        run(create)?;

        let mut ovs = PrivateOvs {
            dir: dir.to_path_buf(),
            daemons: Vec::new(),
        };
        let socket = ovs.db_socket();
        let daemon_args = |cmd: &mut Command, name: &str| {
            cmd.arg(format!(
                "--pidfile={}",
                dir.join(format!("{name}.pid")).display()
            ))
            .arg(format!(
                "--unixctl={}",
                dir.join(format!("{name}.ctl")).display()
            ))
            .arg(format!(
                "--log-file={}",
                dir.join(format!("{name}.log")).display()
            ))
            .args(["--detach", "--no-chdir"]);
        };
        let mut server = Command::new(&config.ovsdb_server);
        server
            .arg(&db)
            .arg(format!("--remote=punix:{}", socket.display()));
        daemon_args(&mut server, "ovsdb-server");
        run(server)?;
        ovs.adopt("ovsdb-server")?;

        let mut init = Command::new(&config.ovs_vsctl);
        init.arg(format!("--db={}", ovs.db()))
            .args(["--timeout=10", "--no-wait", "init"]);
        run(init)?;

        let mut vswitchd = Command::new(&config.ovs_vswitchd);
        vswitchd.arg(ovs.db()).arg("--disable-system");
        daemon_args(&mut vswitchd, "ovs-vswitchd");
        run(vswitchd)?;
        ovs.adopt("ovs-vswitchd")?;
        Ok(ovs)
    }

    fn adopt(&mut self, name: &str) -> Result<(), OvsError> {
        let pidfile = self.dir.join(format!("{name}.pid"));
        let pid = read_pidfile(&pidfile).ok_or_else(|| OvsError::Start {
            dir: self.dir.clone(),
            detail: format!("{name} wrote no pidfile {}", pidfile.display()),
        })?;
        self.daemons.push((name.to_string(), Pidfd::open(pid)?));
        Ok(())
    }

    /// The directory holding database, sockets, pidfiles and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database socket's path.
    pub fn db_socket(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// The database address for `ovs-vsctl --db=`.
    pub fn db(&self) -> String {
        format!("unix:{}", self.db_socket().display())
    }

    /// An [`OvsVsctl`] talking to this database.
    pub fn vsctl(&self) -> OvsVsctl {
        OvsVsctl::new().with_db(self.db())
    }

    /// Pids of the running daemons (`ovsdb-server`, `ovs-vswitchd`).
    pub fn pids(&self) -> Vec<(String, i32)> {
        self.daemons
            .iter()
            .map(|(n, p)| (n.clone(), p.pid()))
            .collect()
    }

    /// Stops both daemons, the switch first; waits for them to exit.
    pub fn stop(&mut self) {
        while let Some((name, pidfd)) = self.daemons.pop() {
            if pidfd.has_exited() {
                continue;
            }
            let _ = pidfd.signal(Signal::SIGTERM);
            if !pidfd.wait_exit(Duration::from_secs(5)).unwrap_or(false) {
                log::warn!("{name} (pid {}) ignored SIGTERM; killing it", pidfd.pid());
                let _ = pidfd.signal(Signal::SIGKILL);
                let _ = pidfd.wait_exit(Duration::from_secs(5));
            }
        }
    }
}

impl Drop for PrivateOvs {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> OvsPortSpec {
        OvsPortSpec {
            bridge: "ovsbr0".into(),
            ifname: "vnet3".into(),
            mac: "52:54:00:11:22:33".parse().unwrap(),
            interface_id: "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f".into(),
            vm_id: "c7a5fdbd-edaf-9455-926a-d65c16db1809".into(),
            profile_id: None,
            vlan: None,
        }
    }

    #[test]
    fn add_port_arguments_follow_libvirt() {
        let mut s = spec();
        s.vlan = Some(OvsVlan {
            tags: vec![42],
            trunk: false,
            native: None,
        });
        assert_eq!(
            add_port_args(&s).unwrap().join(" "),
            "-- --may-exist add-port ovsbr0 vnet3 tag=42 \
             -- set Interface vnet3 external-ids:attached-mac=\"52:54:00:11:22:33\" \
             -- set Interface vnet3 external-ids:iface-id=\"09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f\" \
             -- set Interface vnet3 external-ids:vm-id=\"c7a5fdbd-edaf-9455-926a-d65c16db1809\" \
             -- set Interface vnet3 external-ids:iface-status=active"
        );
        s.vlan = Some(OvsVlan {
            tags: vec![10, 20, 30],
            trunk: true,
            native: Some((NativeVlanMode::Untagged, 10)),
        });
        s.profile_id = Some("prof1".into());
        let args = add_port_args(&s).unwrap();
        assert_eq!(
            args[..8].join(" "),
            "-- --may-exist add-port ovsbr0 vnet3 vlan_mode=native-untagged tag=10 trunks=10,20,30"
        );
        assert_eq!(
            args[args.len() - 15..].join(" "),
            "-- set Interface vnet3 external-ids:port-profile=\"prof1\" \
             -- set Interface vnet3 external-ids:ifname=\"vnet3\" \
             -- set Interface vnet3 external-ids:iface-status=active"
        );
        s.vlan = Some(OvsVlan::default());
        assert!(
            !add_port_args(&s)
                .unwrap()
                .iter()
                .any(|a| a.starts_with("tag"))
        );
        let mut bad = spec();
        bad.ifname = "vnet3 -- del-br x".into();
        assert!(matches!(add_port_args(&bad), Err(OvsError::Invalid { .. })));
        bad = spec();
        bad.vm_id = "\"".into();
        assert!(add_port_args(&bad).is_err());
    }

    #[test]
    fn port_listing_parses() {
        let text = r#"{"data":[["vnet3",42,["set",[]],["set",[]]]],"headings":["name","tag","trunks","vlan_mode"]}
{"data":[[["map",[["attached-mac","52:54:00:11:22:33"],["iface-status","active"]]]]],"headings":["external_ids"]}
"#;
        let port = parse_port(text).unwrap().unwrap();
        assert_eq!(port.name, "vnet3");
        assert_eq!(port.tag, Some(42));
        assert!(port.trunks.is_empty());
        assert_eq!(port.vlan_mode, None);
        assert_eq!(port.external_ids["attached-mac"], "52:54:00:11:22:33");
        let trunk = r#"{"data":[["vnet4",10,["set",[10,20]],"native-untagged"]],"headings":[]}
{"data":[[["map",[]]]],"headings":[]}"#;
        let port = parse_port(trunk).unwrap().unwrap();
        assert_eq!(port.trunks, vec![10, 20]);
        assert_eq!(port.vlan_mode.as_deref(), Some("native-untagged"));
        assert_eq!(parse_port(r#"{"data":[],"headings":[]}"#).unwrap(), None);
        assert!(parse_port("garbage").is_err());
    }
}
