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
use virtnet_conf::{PortDef, PortDevice, PortDeviceKind, TristateBool};
use virtnet_host::tap::{Tap, TapSpec};
use virtnet_rpc::protocol::{
    NetworkArgs, NetworkIsActiveRet, NetworkPortCreateXmlArgs, NetworkPortFlagsArgs,
    NetworkPortRet, NonnullNetwork, NonnullNetworkPort, Procedure,
};

use super::domain::{bridge_of, domain_uuid, networks, port_def, random_uuid};
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

/// Sends `fd` over the Unix socket `sock` with one byte of data.
fn send_fd(sock: RawFd, fd: RawFd) -> nix::Result<()> {
    let iov = [IoSlice::new(&[0u8])];
    let fds = [fd];
    sendmsg::<()>(
        sock,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
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

    let owner_name = format!("qemu-{}", getppid());
    let uuid = match random_uuid() {
        Ok(u) => u,
        Err(e) => return fail(ctl, &e),
    };
    let request = PortDef {
        uuid,
        owner_uuid: domain_uuid(&owner_name),
        owner_name,
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
    let created: Result<NetworkPortRet, Failed> = ctl.call(
        Procedure::NetworkPortCreateXml,
        &NetworkPortCreateXmlArgs {
            network: net.clone(),
            xml: request.to_xml(),
            flags: 0,
        },
    );
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
