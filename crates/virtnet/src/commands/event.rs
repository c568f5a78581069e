//! `net-event`: wait for network events and print them.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use virtnet_rpc::Event;
use virtnet_rpc::protocol::{
    ConnectNetworkEventDeregisterAnyArgs, ConnectNetworkEventRegisterAnyArgs,
    ConnectNetworkEventRegisterAnyRet, Procedure, metadata_type, network_event,
};

use super::{opt_network, opt_string, opt_uint};
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};
use crate::term::{SigintGuard, now_timestamp};

/// Event types, indexed by event ID.
const EVENT_NAMES: &[&str] = &["lifecycle", "metadata-change"];

fn lifecycle_name(event: i32) -> &'static str {
    match event {
        network_event::DEFINED => "Defined",
        network_event::UNDEFINED => "Undefined",
        network_event::STARTED => "Started",
        network_event::STOPPED => "Stopped",
        _ => "unknown",
    }
}

fn metadata_name(kind: i32) -> &'static str {
    match kind {
        metadata_type::DESCRIPTION => "description",
        metadata_type::TITLE => "title",
        metadata_type::ELEMENT => "element",
        _ => "unsupported value",
    }
}

enum End {
    Done,
    Timeout,
    Interrupt,
}

pub(super) fn cmd_event(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    if cmd.has("list") {
        for name in EVENT_NAMES {
            ctl.print(&format!("{name}\n"));
        }
        return Ok(());
    }
    let Some(event_name) = opt_string(ctl, cmd, "event")? else {
        ctl.error("either --list or --event <type> is required");
        return Err(Failed);
    };
    let Some(event_id) = EVENT_NAMES.iter().position(|n| *n == event_name) else {
        ctl.error(&format!("unknown event type {event_name}"));
        return Err(Failed);
    };
    let looping = cmd.has("loop");
    let timestamp = cmd.has("timestamp");
    let timeout = match opt_uint(ctl, cmd, "timeout")? {
        None => None,
        Some(t) if t == 0 || t > i32::MAX as u32 / 1000 => {
            ctl.error(&format!(
                "Numeric value '{t}' for <timeout> option is malformed or out of range"
            ));
            return Err(Failed);
        }
        Some(t) => Some(Duration::from_secs(u64::from(t))),
    };
    // A network that cannot be found is reported and the wait covers all
    // networks, as in virsh.
    let net = if cmd.has("network") {
        opt_network(ctl, cmd).ok().map(|(n, _)| n)
    } else {
        None
    };
    let guard = SigintGuard::install();
    let rx = ctl.connection()?.client().subscribe_events();
    let reg: Result<ConnectNetworkEventRegisterAnyRet, Failed> = ctl.call(
        Procedure::ConnectNetworkEventRegisterAny,
        &ConnectNetworkEventRegisterAnyArgs {
            event_id: event_id as i32,
            net,
        },
    );
    let Ok(reg) = reg else {
        return Err(Failed);
    };
    let callback = reg.callback_id;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut count = 0u32;
    let end = loop {
        if guard.as_ref().is_some_and(SigintGuard::interrupted) {
            break End::Interrupt;
        }
        let mut wait = Duration::from_millis(100);
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                break End::Timeout;
            }
            wait = wait.min(d - now);
        }
        let ev = match rx.recv_timeout(wait) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                ctl.error(&format!("Disconnected from {} due to end of file", ctl.uri));
                ctl.disconnected = true;
                break End::Done;
            }
        };
        let line = match &ev {
            Event::NetworkEventLifecycle(m) if m.callback_id == callback => format!(
                "event 'lifecycle' for network {}: {}\n",
                m.net.name,
                lifecycle_name(m.event)
            ),
            Event::NetworkEventCallbackMetadataChange(m) if m.callback_id == callback => format!(
                "event 'metadata-change' for network {}: type {}, uri {}\n",
                m.net.name,
                metadata_name(m.kind),
                m.nsuri.as_deref().unwrap_or("(null)")
            ),
            _ => continue,
        };
        if timestamp {
            ctl.print(&format!("{}: {line}", now_timestamp()));
        } else {
            ctl.print(&line);
        }
        ctl.flush();
        count += 1;
        if !looping {
            break End::Done;
        }
    };
    drop(guard);
    match end {
        End::Interrupt => ctl.print("event loop interrupted\n"),
        End::Timeout => ctl.print("event loop timed out\n"),
        End::Done => {}
    }
    ctl.print(&format!("events received: {count}\n"));
    let dereg: Result<(), Failed> = if ctl.conn.as_ref().is_some_and(|c| c.is_alive()) {
        ctl.call(
            Procedure::ConnectNetworkEventDeregisterAny,
            &ConnectNetworkEventDeregisterAnyArgs {
                callback_id: callback,
            },
        )
    } else {
        Ok(())
    };
    if count > 0 && dereg.is_ok() {
        Ok(())
    } else {
        Err(Failed)
    }
}
