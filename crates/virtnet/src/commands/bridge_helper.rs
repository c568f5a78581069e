//! `virtnet qemu-bridge-helper`: QEMU's bridge helper protocol
//! (`-netdev bridge,br=BR,helper=…`) for virtnet's networks.
//!
//! QEMU runs `HELPER --use-vnet --br=BR --fd=N` with `N` one end of a Unix
//! socket pair, waits for one byte carrying a TAP descriptor
//! (`SCM_RIGHTS`) and for the helper to exit 0. Here:
//!
//! 1. the active virtnet network whose bridge is `BR` is looked up (a
//!    bridge virtnet does not run is refused);
//! 2. users other than root must be allowed by the access list
//!    ([`crate::acl`]), by bridge or network name;
//! 3. a port is created on the network (owner `qemu-PID`, the TAP owned
//!    by the caller's real uid), so the TAP is plugged, addressed and
//!    filtered as any of the network's ports;
//! 4. the TAP is opened by name and made non-persistent, so it goes away
//!    with QEMU, and its descriptor is sent over fd `N`.
//!
//! When the helper runs with raised privileges (set-user-ID), it uses
//! virtnetd's standard sockets and access list whatever the caller's
//! options and environment say.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::unistd::{geteuid, getppid, getuid};
use virtnet_conf::MacAddr;
use virtnet_conf::{PortDef, PortDevice, PortDeviceKind, TristateBool};
use virtnet_host::tap::{Tap, TapSpec};
use virtnet_rpc::protocol::{
    NetworkArgs, NetworkIsActiveRet, NetworkPortCreateXmlArgs, NetworkPortFlagsArgs,
    NetworkPortRet, NonnullNetwork, NonnullNetworkPort, Procedure,
};

use super::domain::{all_ifaces, bridge_of, domain_uuid, networks, port_def, random_uuid};
use super::opt_string;
use crate::acl::{ACL_FILE_ENV, Acl, DEFAULT_ACL_FILE};
use crate::conn::Connection;
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};
use crate::uri::{ConnectUri, DEFAULT_SOCKET, DEFAULT_SOCKET_RO};

const USAGE: &str = "Usage: qemu-bridge-helper [--use-vnet] --br=bridge --fd=unixfd\n";

/// virtnetd's read-write and read-only sockets for this run.
fn sockets(ctl: &Ctl<'_>, overrides: bool) -> Result<(PathBuf, PathBuf), String> {
    let defaults = || {
        (
            PathBuf::from(DEFAULT_SOCKET),
            PathBuf::from(DEFAULT_SOCKET_RO),
        )
    };
    if !overrides {
        return Ok(defaults());
    }
    let uri = ConnectUri::parse(&ctl.uri).map_err(|e| e.to_string())?;
    match uri.transport {
        crate::uri::Transport::Unix { socket } if socket.as_os_str().is_empty() => Ok(defaults()),
        crate::uri::Transport::Unix { socket } => {
            let mut ro = socket.clone().into_os_string();
            ro.push("-ro");
            Ok((socket, PathBuf::from(ro)))
        }
        crate::uri::Transport::Ssh { .. } => {
            Err("the bridge helper works with the local virtnetd only".into())
        }
    }
}

/// Sends `fd` over the Unix socket `sock` with one zero byte of data, as
/// QEMU's helper does. (`sock` is a bare number from the command line, so
/// this stays with raw descriptors rather than borrowing one.)
fn send_fd(sock: RawFd, fd: RawFd) -> nix::Result<()> {
    let iov = [IoSlice::new(&[0u8])];
    let fds = [fd];
    loop {
        match sendmsg::<()>(
            sock,
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// Splits a QEMU option string (`a,b=c,,d`) at single commas.
fn qemu_opts(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                if let Some(last) = out.last_mut() {
                    last.push(',');
                }
            } else {
                out.push(String::new());
            }
        } else if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

fn opt_value<'a>(opts: &'a [String], key: &str) -> Option<&'a str> {
    opts.iter()
        .find_map(|o| o.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// What QEMU's command line says about the guest joining `bridge`: its
/// name (`-name`) and the MAC of the NIC on that bridge (`-netdev
/// bridge,id=X,br=BR` with `-device …,netdev=X,mac=M`, or `-nic
/// bridge,br=BR,mac=M`). The MAC is left out when several NICs use the
/// bridge.
pub fn qemu_identity(argv: &[String], bridge: &str) -> (Option<String>, Option<MacAddr>) {
    let mut name = None;
    let mut ids = Vec::new();
    let mut macs = Vec::new();
    let mut devices = Vec::new();
    let mut i = 0;
    while i + 1 < argv.len() {
        let opt = argv[i]
            .strip_prefix('-')
            .map(|o| o.strip_prefix('-').unwrap_or(o));
        let val = &argv[i + 1];
        match opt {
            Some("name") => {
                let o = qemu_opts(val);
                name = opt_value(&o, "guest")
                    .map(str::to_owned)
                    .or_else(|| o.first().filter(|f| !f.contains('=')).cloned());
            }
            Some("netdev" | "nic") => {
                let o = qemu_opts(val);
                let ty = opt_value(&o, "type").or(o.first().map(String::as_str));
                let br = opt_value(&o, "br").unwrap_or("br0");
                if ty == Some("bridge") && br == bridge {
                    if opt == Some("nic") {
                        macs.push(opt_value(&o, "mac").and_then(MacAddr::parse));
                    } else if let Some(id) = opt_value(&o, "id") {
                        ids.push(id.to_owned());
                    }
                }
            }
            Some("device") => devices.push(qemu_opts(val)),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    for id in &ids {
        let mac = devices
            .iter()
            .find(|d| opt_value(d, "netdev") == Some(id.as_str()))
            .and_then(|d| opt_value(d, "mac"))
            .and_then(MacAddr::parse);
        macs.push(mac);
    }
    let mac = match macs.as_slice() {
        [one] => *one,
        _ => None,
    };
    (name.filter(|n| !n.is_empty()), mac)
}

/// The QEMU that runs this helper: the parent, or the grandparent when
/// QEMU went through a shell (a helper command with arguments).
fn qemu_process() -> (u32, Vec<String>) {
    let read = |pid: u32| -> (String, Vec<String>, Option<u32>) {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // The parent pid is the first field after the parenthesised comm.
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned))
            })
            .and_then(|p| p.parse().ok());
        (comm.trim_end().to_owned(), argv, ppid)
    };
    let ppid = u32::try_from(getppid().as_raw()).unwrap_or(0);
    let (comm, argv, grand) = read(ppid);
    if matches!(comm.as_str(), "sh" | "dash" | "bash") {
        if let Some(g) = grand.filter(|g| *g > 1) {
            let (_, gargv, _) = read(g);
            return (g, gargv);
        }
    }
    (ppid, argv)
}

fn fail(ctl: &mut Ctl<'_>, msg: &str) -> CmdResult {
    ctl.error(msg);
    Err(Failed)
}

pub(super) fn cmd_bridge_helper(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let use_vnet = cmd.has("use-vnet");
    let bridge = opt_string(ctl, cmd, "br")?.map(str::to_owned);
    let fd = opt_string(ctl, cmd, "fd")?.and_then(|v| v.trim().parse::<RawFd>().ok());
    let (Some(bridge), Some(unix_fd)) = (bridge, fd.filter(|f| *f >= 0)) else {
        ctl.eprint(USAGE);
        return Err(Failed);
    };
    let ruid = getuid();
    let euid = geteuid();
    // Set-user-ID: the caller's options and environment are not trusted.
    let overrides = ruid == euid;
    let (rw_socket, ro_socket) = match sockets(ctl, overrides) {
        Ok(s) => s,
        Err(e) => return fail(ctl, &e),
    };

    // Read-only first unless privileged: finding the network needs no
    // more, and the access list is checked before anything changes.
    let privileged = euid.is_root();
    let first = if privileged { &rw_socket } else { &ro_socket };
    match Connection::open_unix(first, !privileged) {
        Ok(c) => ctl.conn = Some(c),
        Err(e) => return fail(ctl, &format!("cannot reach virtnetd: {e}")),
    }
    let mut found: Option<NonnullNetwork> = None;
    for net in networks(ctl, 0)? {
        if bridge_of(ctl, &net).as_deref() == Some(bridge.as_str()) {
            found = Some(net);
            break;
        }
    }
    let Some(net) = found else {
        return fail(
            ctl,
            &format!("bridge '{bridge}' is not managed by virtnet: no virtnet network uses it"),
        );
    };
    let active: NetworkIsActiveRet = ctl.call(
        Procedure::NetworkIsActive,
        &NetworkArgs { net: net.clone() },
    )?;
    if active.active == 0 {
        return fail(
            ctl,
            &format!("network '{}' (bridge '{bridge}') is not active", net.name),
        );
    }

    if !ruid.is_root() {
        let path = match std::env::var_os(ACL_FILE_ENV) {
            Some(p) if overrides && !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_ACL_FILE),
        };
        let acl = match Acl::load(&path) {
            Ok(a) => a,
            Err(e) => return fail(ctl, &e.to_string()),
        };
        if !acl.allows(&[bridge.as_str(), net.name.as_str()]) {
            return fail(ctl, "access denied by acl file");
        }
    }
    if !privileged {
        if let Some(c) = ctl.conn.take() {
            c.close();
        }
        match Connection::open_unix(&rw_socket, false) {
            Ok(c) => ctl.conn = Some(c),
            Err(e) => return fail(ctl, &format!("cannot reach virtnetd: {e}")),
        }
    }

    // The port's owner is the guest (its -name, else qemu-PID) and its MAC
    // the NIC's, so leases, domiflist and domifaddr know the guest.
    let (qemu_pid, qemu_argv) = qemu_process();
    let (guest, mac) = qemu_identity(&qemu_argv, &bridge);
    // Other users name their ports by process only: a guest name would let
    // them slip ports into another domain's interfaces.
    let guest = guest.filter(|_| ruid.is_root());
    let owner_name = guest.unwrap_or_else(|| format!("qemu-{qemu_pid}"));
    let owner_uuid = all_ifaces(ctl)?
        .into_iter()
        .find(|i| i.port.owner_name == owner_name)
        .map(|i| i.port.owner_uuid)
        .unwrap_or_else(|| domain_uuid(&owner_name));
    let uuid = match random_uuid() {
        Ok(u) => u,
        Err(e) => return fail(ctl, &e),
    };
    let mut request = PortDef {
        uuid,
        owner_uuid,
        owner_name,
        mac,
        device: Some(PortDevice {
            user: (!ruid.is_root()).then(|| ruid.as_raw()),
            vnet_hdr: if use_vnet {
                TristateBool::Yes
            } else {
                TristateBool::No
            },
            ..PortDevice::default()
        }),
        ..PortDef::default()
    };
    let mut created: Result<NetworkPortRet, Failed> = ctl.call(
        Procedure::NetworkPortCreateXml,
        &NetworkPortCreateXmlArgs {
            network: net.clone(),
            xml: request.to_xml(),
            flags: 0,
        },
    );
    if created.is_err() && request.mac.is_some() {
        // The NIC's MAC may be taken (a port the guest had before); the
        // guest works with a port of any MAC.
        request.mac = None;
        created = ctl.call(
            Procedure::NetworkPortCreateXml,
            &NetworkPortCreateXmlArgs {
                network: net.clone(),
                xml: request.to_xml(),
                flags: 0,
            },
        );
    }
    let Ok(created) = created else {
        return fail(
            ctl,
            &format!("failed to create a port on network '{}'", net.name),
        );
    };
    let port = created.port;
    let res = hand_over(ctl, &port, use_vnet, unix_fd);
    if let Err(msg) = res {
        let _: Result<(), Failed> = ctl.call(
            Procedure::NetworkPortDelete,
            &NetworkPortFlagsArgs { port, flags: 0 },
        );
        ctl.last_error = None;
        return fail(ctl, &msg);
    }
    Ok(())
}

/// Opens the port's TAP, lets it vanish with its last descriptor, and
/// sends the descriptor to QEMU.
fn hand_over(
    ctl: &mut Ctl<'_>,
    port: &NonnullNetworkPort,
    use_vnet: bool,
    unix_fd: RawFd,
) -> Result<(), String> {
    let def = port_def(ctl, port).map_err(|Failed| {
        ctl.last_error
            .take()
            .unwrap_or_else(|| "cannot read the new port".into())
    })?;
    let dev = def.device.unwrap_or_default();
    let (Some(PortDeviceKind::Tap), Some(name)) = (dev.kind, dev.name) else {
        return Err(format!(
            "network '{}' gives its ports no TAP device",
            port.net.name
        ));
    };
    let tap = Tap::create(&TapSpec {
        vnet_hdr: use_vnet,
        ..TapSpec::new(&name)
    })
    .map_err(|e| format!("failed to open tap device `{name}': {e}"))?;
    tap.set_persist(false)
        .map_err(|e| format!("failed to open tap device `{name}': {e}"))?;
    send_fd(unix_fd, tap.fd().as_raw_fd())
        .map_err(|e| format!("failed to write fd to unix socket: {}", e.desc()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options_split_like_qemu() {
        assert_eq!(qemu_opts("a,b=c,,d,e"), ["a", "b=c,d", "e"]);
        assert_eq!(qemu_opts(""), [""]);
    }

    #[test]
    fn guest_name_and_mac_from_the_command_line() {
        let mac = MacAddr::parse("52:54:00:aa:bb:02");
        let a = argv(
            "qemu-system-x86_64 -name guest=vm2,debug-threads=on -m 256 \
             -netdev bridge,id=n1,br=virbr0,helper=/usr/bin/virtnet \
             -device virtio-net-pci,netdev=n1,mac=52:54:00:aa:bb:02",
        );
        assert_eq!(qemu_identity(&a, "virbr0"), (Some("vm2".into()), mac));
        assert_eq!(qemu_identity(&a, "virbr1"), (Some("vm2".into()), None));
        let b = argv("qemu --name vm3 -nic bridge,br=virbr0,mac=52:54:00:aa:bb:02,model=e1000");
        assert_eq!(qemu_identity(&b, "virbr0"), (Some("vm3".into()), mac));
        // Two NICs on the bridge: which one asks is unknown.
        let c = argv(
            "qemu -netdev bridge,id=a,br=virbr0 -device e1000,netdev=a,mac=52:54:00:00:00:01 \
             -netdev bridge,id=b,br=virbr0 -device e1000,netdev=b,mac=52:54:00:00:00:02",
        );
        assert_eq!(qemu_identity(&c, "virbr0"), (None, None));
        // No br= means QEMU's default bridge, br0.
        let d =
            argv("qemu -netdev bridge,id=x -device virtio-net-pci,netdev=x,mac=52:54:00:aa:bb:02");
        assert_eq!(qemu_identity(&d, "br0"), (None, mac));
        assert_eq!(qemu_identity(&argv("qemu -name"), "br0"), (None, None));
    }
}
