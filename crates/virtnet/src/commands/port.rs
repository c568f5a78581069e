//! The network port commands.

use virtnet_rpc::protocol::{
    NetworkListAllPortsArgs, NetworkListAllPortsRet, NetworkPortCreateXmlArgs,
    NetworkPortFlagsArgs, NetworkPortLookupByUuidArgs, NetworkPortRet, NonnullNetwork,
    NonnullNetworkPort, Procedure, XmlRet, format_uuid, network_flags, parse_uuid,
};

use super::{opt_network, opt_string, opt_string_quiet, read_file_kept, xmldump};
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};
use crate::table::Table;

/// The port named by the `port` option in `net`.
pub(super) fn opt_port(
    ctl: &mut Ctl<'_>,
    cmd: &ParsedCmd,
    net: &NonnullNetwork,
) -> Result<NonnullNetworkPort, Failed> {
    let Some(word) = opt_string(ctl, cmd, "port")? else {
        return Err(Failed);
    };
    let found = match parse_uuid(word) {
        None => {
            ctl.set_error("uuidstr in virNetworkPortLookupByUUIDString must be a valid UUID");
            None
        }
        Some(uuid) => {
            let r: Result<NetworkPortRet, Failed> = ctl.call(
                Procedure::NetworkPortLookupByUuid,
                &NetworkPortLookupByUuidArgs {
                    network: net.clone(),
                    uuid,
                },
            );
            r.ok().map(|r| r.port)
        }
    };
    found.ok_or_else(|| {
        ctl.error(&format!("failed to get network port '{word}'"));
        Failed
    })
}

pub(super) fn cmd_port_list(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let opt_uuid = cmd.has("uuid");
    let mut opt_table = cmd.has("table");
    if opt_table && opt_uuid {
        ctl.error("Only one argument from --table and --uuid may be specified.");
        return Err(Failed);
    }
    if !opt_uuid {
        opt_table = true;
    }
    let (net, _) = opt_network(ctl, cmd)?;
    let r: NetworkListAllPortsRet = ctl.call(
        Procedure::NetworkListAllPorts,
        &NetworkListAllPortsArgs {
            network: net,
            need_results: 1,
            flags: 0,
        },
    )?;
    let mut ports = r.ports;
    ports.sort_by_key(|p| p.uuid);
    let mut table = Table::new(&["UUID"]);
    for p in &ports {
        let uuid = format_uuid(&p.uuid);
        if opt_table {
            table.push(vec![uuid]);
        } else {
            ctl.print(&format!("{uuid}\n"));
        }
    }
    if opt_table {
        ctl.print_table(&table);
    }
    Ok(())
}

pub(super) fn cmd_port_create(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (net, _) = opt_network(ctl, cmd)?;
    let Some(from) = opt_string(ctl, cmd, "file")? else {
        return Err(Failed);
    };
    let flags = if cmd.has("validate") {
        network_flags::PORT_CREATE_VALIDATE
    } else {
        0
    };
    let xml = read_file_kept(ctl, from)?;
    let r: Result<NetworkPortRet, Failed> = ctl.call(
        Procedure::NetworkPortCreateXml,
        &NetworkPortCreateXmlArgs {
            network: net,
            xml,
            flags,
        },
    );
    match r {
        Ok(r) => {
            ctl.print_extra(&format!(
                "Network port {} created from {from}\n",
                format_uuid(&r.port.uuid)
            ));
            if cmd.has("qemu-args") {
                super::domain::print_qemu_args(ctl, &r.port, "net0")?;
            }
            Ok(())
        }
        Err(Failed) => {
            ctl.error(&format!("Failed to create network from {from}"));
            Err(Failed)
        }
    }
}

pub(super) fn cmd_port_dumpxml(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    // virsh 9.0 reports lookup and fetch failures here but still succeeds,
    // without printing the library error; so does virtnet.
    let Ok((net, _)) = opt_network(ctl, cmd) else {
        return succeed_quietly(ctl);
    };
    let Ok(port) = opt_port(ctl, cmd, &net) else {
        return succeed_quietly(ctl);
    };
    let xpath = opt_string_quiet(cmd, "xpath")?;
    let r: Result<XmlRet, Failed> = ctl.call(
        Procedure::NetworkPortGetXmlDesc,
        &NetworkPortFlagsArgs { port, flags: 0 },
    );
    let Ok(r) = r else {
        return succeed_quietly(ctl);
    };
    xmldump::dump_xml(ctl, &r.xml, "network-port", xpath, cmd.has("wrap"))
}

/// Forgets the library error and reports success, where virsh 9.0 does.
fn succeed_quietly(ctl: &mut Ctl<'_>) -> CmdResult {
    ctl.last_error = None;
    Ok(())
}

pub(super) fn cmd_port_delete(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    // As in virsh 9.0, net-port-delete reports failures but exits 0.
    let Ok((net, _)) = opt_network(ctl, cmd) else {
        return succeed_quietly(ctl);
    };
    let Ok(port) = opt_port(ctl, cmd, &net) else {
        return succeed_quietly(ctl);
    };
    let uuid = format_uuid(&port.uuid);
    let r: Result<(), Failed> = ctl.call(
        Procedure::NetworkPortDelete,
        &NetworkPortFlagsArgs { port, flags: 0 },
    );
    if r.is_err() {
        ctl.error(&format!("Failed to delete network port {uuid}"));
        return succeed_quietly(ctl);
    }
    ctl.print_extra(&format!("Network port {uuid} deleted\n"));
    Ok(())
}
