//! Command handlers and the helpers they share (option values, network
//! lookups, calls), each behaving as virsh's.

mod bridge_helper;
mod doctor;
pub mod domain;
mod edit;
mod event;
mod lint;
mod metadata;
mod network;
mod port;
mod tunnel;
mod xmldump;

use virtnet_rpc::protocol::{NonnullNetwork, Procedure};
use virtnet_rpc::xdr::{XdrDecode, XdrEncode};

use crate::conn::{ApiError, Connection, strerror};
use crate::registry::{GROUPS, Registry};
use crate::shell::parse::{CommandSet, ParsedCmd};
use crate::shell::{CmdResult, Ctl, Failed, help};

/// Largest XML file virsh reads (`VSH_MAX_XML_FILE`).
pub const MAX_XML_FILE: u64 = 10 * 1024 * 1024;

/// Runs one parsed command.
pub fn dispatch(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    match cmd.name() {
        "help" => cmd_help(ctl, cmd),
        "quit" | "exit" => Ok(()),
        "net-lint" => lint::cmd_lint(ctl, cmd),
        "net-autostart" => network::cmd_autostart(ctl, cmd),
        "net-create" => network::cmd_create(ctl, cmd),
        "net-define" => network::cmd_define(ctl, cmd),
        "net-destroy" => network::cmd_destroy(ctl, cmd),
        "net-dhcp-leases" => network::cmd_dhcp_leases(ctl, cmd),
        "net-dumpxml" => network::cmd_dumpxml(ctl, cmd),
        "net-edit" => edit::cmd_net_edit(ctl, cmd),
        "net-event" => event::cmd_event(ctl, cmd),
        "net-info" => network::cmd_info(ctl, cmd),
        "net-list" => network::cmd_list(ctl, cmd),
        "net-name" => network::cmd_name(ctl, cmd),
        "net-start" => network::cmd_start(ctl, cmd),
        "net-undefine" => network::cmd_undefine(ctl, cmd),
        "net-update" => network::cmd_update(ctl, cmd),
        "net-uuid" => network::cmd_uuid(ctl, cmd),
        "net-desc" => metadata::cmd_desc(ctl, cmd),
        "net-metadata" => metadata::cmd_metadata(ctl, cmd),
        "net-port-list" => port::cmd_port_list(ctl, cmd),
        "net-port-create" => port::cmd_port_create(ctl, cmd),
        "net-port-dumpxml" => port::cmd_port_dumpxml(ctl, cmd),
        "net-port-delete" => port::cmd_port_delete(ctl, cmd),
        "attach-interface" => domain::cmd_attach_interface(ctl, cmd),
        "detach-interface" => domain::cmd_detach_interface(ctl, cmd),
        "domifaddr" => domain::cmd_domifaddr(ctl, cmd),
        "domiflist" => domain::cmd_domiflist(ctl, cmd),
        "qemu-args" => domain::cmd_qemu_args(ctl, cmd),
        "doctor" => doctor::cmd_doctor(ctl, cmd),
        "qemu-bridge-helper" => bridge_helper::cmd_bridge_helper(ctl, cmd),
        "tunnel" => tunnel::cmd_tunnel(ctl, cmd),
        other => {
            ctl.error(&format!("unknown command: '{other}'"));
            Err(Failed)
        }
    }
}

fn cmd_help(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let Some(name) = cmd.value("command") else {
        let text = help::all_help(GROUPS);
        ctl.print(&text);
        return Ok(());
    };
    if let Some(def) = Registry.find(name) {
        let text = help::command_help(def);
        ctl.print(&text);
        return Ok(());
    }
    if let Some(group) = Registry.group(name) {
        let text = help::group_help(group);
        ctl.print(&text);
        return Ok(());
    }
    ctl.error(&format!("command or command group '{name}' doesn't exist"));
    Err(Failed)
}

impl Ctl<'_> {
    /// The connection (commands that need one run only once it is open).
    pub fn connection(&mut self) -> Result<&Connection, Failed> {
        if self.conn.is_none() {
            self.ensure_connected()?;
        }
        self.conn.as_ref().ok_or(Failed)
    }

    /// Calls a procedure; a failure is kept as the library error.
    pub fn call<A, R>(&mut self, procedure: Procedure, args: &A) -> Result<R, Failed>
    where
        A: XdrEncode + ?Sized,
        R: XdrDecode,
    {
        let res = self.connection()?.call(procedure, args);
        self.keep(res)
    }

    /// Keeps the error of a failed call as the library error.
    pub fn keep<T>(&mut self, res: Result<T, ApiError>) -> Result<T, Failed> {
        res.map_err(|e| {
            self.set_error(e.message);
            Failed
        })
    }

    /// Like [`Ctl::call`] but returns the error too (for fallbacks).
    pub fn try_call<A, R>(&mut self, procedure: Procedure, args: &A) -> Result<R, ApiError>
    where
        A: XdrEncode + ?Sized,
        R: XdrDecode,
    {
        match self.connection() {
            Ok(c) => c.call(procedure, args),
            Err(Failed) => Err(ApiError::new(
                virtnet_rpc::ErrorCode::NO_CONNECT,
                "no valid connection",
            )),
        }
    }
}

/// virsh's `vshCommandOptStringReq`: `Ok(None)` when absent, an error
/// when empty (unless the option allows it).
pub fn opt_string<'c>(
    ctl: &mut Ctl<'_>,
    cmd: &'c ParsedCmd,
    name: &str,
) -> Result<Option<&'c str>, Failed> {
    match cmd.value(name) {
        None => Ok(None),
        Some("") if !cmd.empty_ok(name) => {
            ctl.error(&format!(
                "Failed to get option '{name}': Option argument is empty"
            ));
            Err(Failed)
        }
        Some(v) => Ok(Some(v)),
    }
}

/// virsh's `vshCommandOptStringQuiet`: an empty value fails silently.
pub fn opt_string_quiet<'c>(cmd: &'c ParsedCmd, name: &str) -> Result<Option<&'c str>, Failed> {
    match cmd.value(name) {
        Some("") if !cmd.empty_ok(name) => Err(Failed),
        v => Ok(v),
    }
}

/// Which lookups [`opt_network_by`] tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// UUID (if the word is UUID-long) then name.
    Any,
    /// UUID only.
    Uuid,
    /// Name only.
    Name,
}

/// The network named by the `network` option; `failed to get network 'x'`
/// otherwise. Returns the network and the word given.
pub fn opt_network<'c>(
    ctl: &mut Ctl<'_>,
    cmd: &'c ParsedCmd,
) -> Result<(NonnullNetwork, &'c str), Failed> {
    opt_network_by(ctl, cmd, By::Any)
}

/// [`opt_network`] with a choice of lookups.
pub fn opt_network_by<'c>(
    ctl: &mut Ctl<'_>,
    cmd: &'c ParsedCmd,
    by: By,
) -> Result<(NonnullNetwork, &'c str), Failed> {
    let Some(word) = opt_string(ctl, cmd, "network")? else {
        ctl.error("Failed to get option 'network': Mandatory option not present");
        return Err(Failed);
    };
    let mut found = None;
    if by != By::Name && word.len() == 36 {
        let res = ctl.connection()?.lookup_by_uuid_string(word);
        found = ctl.keep(res).ok();
    }
    if found.is_none() && by != By::Uuid {
        let res = ctl.connection()?.lookup_by_name(word);
        found = ctl.keep(res).ok();
    }
    match found {
        Some(net) => Ok((net, word)),
        None => {
            ctl.error(&format!("failed to get network '{word}'"));
            Err(Failed)
        }
    }
}

/// virsh's `VSH_EXCLUSIVE_OPTIONS`.
pub fn exclusive(ctl: &mut Ctl<'_>, cmd: &ParsedCmd, a: &str, b: &str) -> CmdResult {
    if cmd.has(a) && cmd.has(b) {
        ctl.error(&format!("Options --{a} and --{b} are mutually exclusive"));
        return Err(Failed);
    }
    Ok(())
}

/// libvirt's `virFileReadAll`: the file's text, or the library error
/// `Failed to open file '…': …`.
pub fn read_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)
        .map_err(|e| format!("Failed to open file '{path}': {}", strerror(&e)))?;
    let mut buf = Vec::new();
    let n = (&mut f)
        .take(MAX_XML_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("Failed to read file '{path}': {}", strerror(&e)))?;
    if n as u64 > MAX_XML_FILE {
        return Err(format!("Failed to read file '{path}': Invalid argument"));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// [`read_file`] keeping the failure as the library error.
pub fn read_file_kept(ctl: &mut Ctl<'_>, path: &str) -> Result<String, Failed> {
    read_file(path).map_err(|e| {
        ctl.set_error(e);
        Failed
    })
}

/// Parses a `--opt` integer as virsh's `vshCommandOptInt` does.
pub fn opt_int(ctl: &mut Ctl<'_>, cmd: &ParsedCmd, name: &str) -> Result<Option<i32>, Failed> {
    let Some(v) = cmd.value(name) else {
        return Ok(None);
    };
    match crate::shell::global::parse_c_int(v, 10).and_then(|n| i32::try_from(n).ok()) {
        Some(n) => Ok(Some(n)),
        None => {
            ctl.error(&format!(
                "Numeric value '{v}' for <{name}> option is malformed or out of range"
            ));
            Err(Failed)
        }
    }
}

/// Parses a `--opt` unsigned integer as `vshCommandOptUInt` does
/// (negative numbers refused).
pub fn opt_uint(ctl: &mut Ctl<'_>, cmd: &ParsedCmd, name: &str) -> Result<Option<u32>, Failed> {
    let Some(v) = cmd.value(name) else {
        return Ok(None);
    };
    let negative = v.trim_start().starts_with('-');
    match crate::shell::global::parse_c_int(v, 10).and_then(|n| u32::try_from(n).ok()) {
        Some(n) if !negative => Ok(Some(n)),
        _ => {
            ctl.error(&format!(
                "Numeric value '{v}' for <{name}> option is malformed or out of range"
            ));
            Err(Failed)
        }
    }
}

/// `strcasecmp` in the C locale.
pub fn strcasecmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}
