//! `virtnet tunnel`: the far end of a remote connection (see
//! [`crate::remote`]). Nothing but the protocol's bytes may reach standard
//! output, so errors go to standard error only.

use super::opt_string;
use crate::remote::{helper_socket, run_tunnel};
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};

pub(super) fn cmd_tunnel(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let uri = opt_string(ctl, cmd, "uri")?;
    let socket = opt_string(ctl, cmd, "socket")?;
    let read_only = cmd.has("readonly") || ctl.readonly;
    let path = match helper_socket(uri, socket, read_only) {
        Ok(p) => p,
        Err(e) => {
            ctl.error(&e.to_string());
            return Err(Failed);
        }
    };
    match run_tunnel(&path) {
        Ok(()) => Ok(()),
        Err(e) => {
            ctl.error(&e.to_string());
            Err(Failed)
        }
    }
}
