//! The network object commands: list, info, dumpxml, define, create,
//! start, destroy, undefine, autostart, uuid, name, update, dhcp-leases.

use virtnet_rpc::ErrorCode;
use virtnet_rpc::protocol::{
    ConnectListAllNetworksArgs, ConnectListAllNetworksRet, NetworkArgs, NetworkDhcpLease,
    NetworkGetAutostartRet, NetworkGetBridgeNameRet, NetworkGetDhcpLeasesArgs,
    NetworkGetDhcpLeasesRet, NetworkGetXmlDescArgs, NetworkIsActiveRet, NetworkIsPersistentRet,
    NetworkRet, NetworkSetAutostartArgs, NetworkUpdateArgs, NetworkXmlArgs, NetworkXmlFlagsArgs,
    NonnullNetwork, Procedure, XmlRet, feature, format_uuid, ip_addr_type, list_networks,
    network_flags,
};

use super::{
    By, exclusive, opt_int, opt_network, opt_network_by, opt_string, opt_string_quiet,
    read_file_kept, strcasecmp, xmldump,
};
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};
use crate::table::Table;
use crate::term::local_time;

fn net_args(net: &NonnullNetwork) -> NetworkArgs {
    NetworkArgs { net: net.clone() }
}

pub(super) fn cmd_autostart(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (net, name) = opt_network(ctl, cmd)?;
    let autostart = !cmd.has("disable");
    let res: Result<(), Failed> = ctl.call(
        Procedure::NetworkSetAutostart,
        &NetworkSetAutostartArgs {
            net,
            autostart: i32::from(autostart),
        },
    );
    if res.is_err() {
        ctl.error(&if autostart {
            format!("failed to mark network {name} as autostarted")
        } else {
            format!("failed to unmark network {name} as autostarted")
        });
        return Err(Failed);
    }
    ctl.print_extra(&if autostart {
        format!("Network {name} marked as autostarted\n")
    } else {
        format!("Network {name} unmarked as autostarted\n")
    });
    Ok(())
}

fn create_or_define(ctl: &mut Ctl<'_>, cmd: &ParsedCmd, define: bool) -> CmdResult {
    let Some(from) = opt_string(ctl, cmd, "file")? else {
        return Err(Failed);
    };
    let validate = cmd.has("validate");
    let xml = read_file_kept(ctl, from)?;
    let res: Result<NetworkRet, Failed> = match (define, validate) {
        (true, false) => ctl.call(Procedure::NetworkDefineXml, &NetworkXmlArgs { xml }),
        (true, true) => ctl.call(
            Procedure::NetworkDefineXmlFlags,
            &NetworkXmlFlagsArgs {
                xml,
                flags: network_flags::DEFINE_VALIDATE,
            },
        ),
        (false, false) => ctl.call(Procedure::NetworkCreateXml, &NetworkXmlArgs { xml }),
        (false, true) => ctl.call(
            Procedure::NetworkCreateXmlFlags,
            &NetworkXmlFlagsArgs {
                xml,
                flags: network_flags::CREATE_VALIDATE,
            },
        ),
    };
    match res {
        Ok(r) => {
            let verb = if define { "defined" } else { "created" };
            ctl.print_extra(&format!("Network {} {verb} from {from}\n", r.net.name));
            Ok(())
        }
        Err(Failed) => {
            let verb = if define { "define" } else { "create" };
            ctl.error(&format!("Failed to {verb} network from {from}"));
            Err(Failed)
        }
    }
}

pub(super) fn cmd_create(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    create_or_define(ctl, cmd, false)
}

pub(super) fn cmd_define(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    create_or_define(ctl, cmd, true)
}

fn simple_action(
    ctl: &mut Ctl<'_>,
    cmd: &ParsedCmd,
    procedure: Procedure,
    done: &str,
    failed: &str,
) -> CmdResult {
    let (net, name) = opt_network(ctl, cmd)?;
    let res: Result<(), Failed> = ctl.call(procedure, &net_args(&net));
    match res {
        Ok(()) => {
            ctl.print_extra(&format!("Network {name} {done}\n"));
            Ok(())
        }
        Err(Failed) => {
            ctl.error(&format!("Failed to {failed} network {name}"));
            Err(Failed)
        }
    }
}

pub(super) fn cmd_start(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    simple_action(ctl, cmd, Procedure::NetworkCreate, "started", "start")
}

pub(super) fn cmd_destroy(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    simple_action(ctl, cmd, Procedure::NetworkDestroy, "destroyed", "destroy")
}

pub(super) fn cmd_undefine(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    simple_action(
        ctl,
        cmd,
        Procedure::NetworkUndefine,
        "has been undefined",
        "undefine",
    )
}

/// `virNetworkGetXMLDesc`.
pub(super) fn get_xml(
    ctl: &mut Ctl<'_>,
    net: &NonnullNetwork,
    flags: u32,
) -> Result<String, Failed> {
    let r: XmlRet = ctl.call(
        Procedure::NetworkGetXmlDesc,
        &NetworkGetXmlDescArgs {
            net: net.clone(),
            flags,
        },
    )?;
    Ok(r.xml)
}

pub(super) fn cmd_dumpxml(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (net, _) = opt_network(ctl, cmd)?;
    let flags = if cmd.has("inactive") {
        network_flags::XML_INACTIVE
    } else {
        0
    };
    let xpath = opt_string_quiet(cmd, "xpath")?;
    let xml = get_xml(ctl, &net, flags)?;
    xmldump::dump_xml(ctl, &xml, "network", xpath, cmd.has("wrap"))
}

fn is_active(ctl: &mut Ctl<'_>, net: &NonnullNetwork) -> Result<bool, Failed> {
    let r: NetworkIsActiveRet = ctl.call(Procedure::NetworkIsActive, &net_args(net))?;
    Ok(r.active != 0)
}

fn is_persistent(ctl: &mut Ctl<'_>, net: &NonnullNetwork) -> Result<bool, Failed> {
    let r: NetworkIsPersistentRet = ctl.call(Procedure::NetworkIsPersistent, &net_args(net))?;
    Ok(r.persistent != 0)
}

fn autostart(ctl: &mut Ctl<'_>, net: &NonnullNetwork) -> Result<bool, Failed> {
    let r: NetworkGetAutostartRet = ctl.call(Procedure::NetworkGetAutostart, &net_args(net))?;
    Ok(r.autostart != 0)
}

pub(super) fn cmd_info(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (net, _) = opt_network(ctl, cmd)?;
    let line = |k: &str, v: &str| format!("{k:<15} {v}\n");
    ctl.print(&line("Name:", &net.name));
    ctl.print(&line("UUID:", &format_uuid(&net.uuid)));
    if let Ok(active) = is_active(ctl, &net) {
        ctl.print(&line("Active:", if active { "yes" } else { "no" }));
    }
    let persistent = match is_persistent(ctl, &net) {
        Ok(true) => "yes",
        Ok(false) => "no",
        Err(Failed) => "unknown",
    };
    ctl.print(&line("Persistent:", persistent));
    let autostart = match autostart(ctl, &net) {
        Ok(true) => "yes",
        Ok(false) => "no",
        Err(Failed) => "no autostart",
    };
    ctl.print(&line("Autostart:", autostart));
    let bridge: Result<NetworkGetBridgeNameRet, Failed> =
        ctl.call(Procedure::NetworkGetBridgeName, &net_args(&net));
    if let Ok(b) = bridge {
        ctl.print(&line("Bridge:", &b.name));
    }
    Ok(())
}

pub(super) fn cmd_list(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let mut flags = list_networks::ACTIVE;
    if cmd.has("inactive") {
        flags = list_networks::INACTIVE;
    }
    if cmd.has("all") {
        flags = list_networks::ACTIVE | list_networks::INACTIVE;
    }
    for (opt, bit) in [
        ("persistent", list_networks::PERSISTENT),
        ("transient", list_networks::TRANSIENT),
        ("autostart", list_networks::AUTOSTART),
        ("no-autostart", list_networks::NO_AUTOSTART),
    ] {
        if cmd.has(opt) {
            flags |= bit;
        }
    }
    let (opt_name, opt_uuid) = (cmd.has("name"), cmd.has("uuid"));
    let mut opt_table = cmd.has("table");
    if u8::from(opt_table) + u8::from(opt_name) + u8::from(opt_uuid) > 1 {
        ctl.error("Only one argument from --table, --name and --uuid may be specified.");
        return Err(Failed);
    }
    if !opt_uuid && !opt_name {
        opt_table = true;
    }
    let listed: Result<ConnectListAllNetworksRet, Failed> = ctl.call(
        Procedure::ConnectListAllNetworks,
        &ConnectListAllNetworksArgs {
            need_results: 1,
            flags,
        },
    );
    let Ok(listed) = listed else {
        ctl.error("Failed to list networks");
        return Err(Failed);
    };
    let mut nets = listed.nets;
    nets.sort_by(|a, b| strcasecmp(&a.name, &b.name));
    let mut table = Table::new(&["Name", "State", "Autostart", "Persistent"]);
    for net in &nets {
        if opt_table {
            let autostart = match autostart(ctl, net) {
                Ok(true) => "yes",
                Ok(false) => "no",
                Err(Failed) => "no autostart",
            };
            // virNetworkIsActive/IsPersistent return -1 on error, which
            // virsh takes as true.
            let active = is_active(ctl, net).unwrap_or(true);
            let persistent = is_persistent(ctl, net).unwrap_or(true);
            table.push(vec![
                net.name.clone(),
                if active { "active" } else { "inactive" }.into(),
                autostart.into(),
                if persistent { "yes" } else { "no" }.into(),
            ]);
        } else if opt_uuid {
            ctl.print(&format!("{}\n", format_uuid(&net.uuid)));
        } else if opt_name {
            ctl.print(&format!("{}\n", net.name));
        }
    }
    if opt_table {
        ctl.print_table(&table);
    }
    Ok(())
}

pub(super) fn cmd_name(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (net, _) = opt_network_by(ctl, cmd, By::Uuid)?;
    ctl.print(&format!("{}\n", net.name));
    Ok(())
}

pub(super) fn cmd_uuid(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (net, _) = opt_network_by(ctl, cmd, By::Name)?;
    ctl.print(&format!("{}\n", format_uuid(&net.uuid)));
    Ok(())
}

const UPDATE_COMMANDS: &[&str] = &["none", "modify", "delete", "add-last", "add-first"];
const UPDATE_SECTIONS: &[&str] = &[
    "none",
    "bridge",
    "domain",
    "ip",
    "ip-dhcp-host",
    "ip-dhcp-range",
    "forward",
    "forward-interface",
    "forward-pf",
    "portgroup",
    "dns-host",
    "dns-txt",
    "dns-srv",
];

fn enum_index(list: &[&str], word: &str) -> Option<u32> {
    list.iter()
        .position(|w| *w == word)
        .and_then(|i| u32::try_from(i).ok())
        .filter(|&i| i > 0)
}

pub(super) fn cmd_update(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let res = update(ctl, cmd);
    // net-update reports the library error itself, success or not.
    ctl.report_error();
    res
}

fn update(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (config, live) = (cmd.has("config"), cmd.has("live"));
    exclusive(ctl, cmd, "current", "live")?;
    exclusive(ctl, cmd, "current", "config")?;
    let (net, _) = opt_network(ctl, cmd)?;
    let Some(command_word) = opt_string(ctl, cmd, "command")? else {
        return Err(Failed);
    };
    let command = if command_word == "add" {
        virtnet_rpc::protocol::update_command::ADD_LAST
    } else if let Some(c) = enum_index(UPDATE_COMMANDS, command_word) {
        c
    } else {
        ctl.error(&format!("unrecognized command name '{command_word}'"));
        return Err(Failed);
    };
    let Some(section_word) = opt_string(ctl, cmd, "section")? else {
        return Err(Failed);
    };
    let Some(section) = enum_index(UPDATE_SECTIONS, section_word) else {
        ctl.error(&format!("unrecognized section name '{section_word}'"));
        return Err(Failed);
    };
    let parent_index = opt_int(ctl, cmd, "parent-index")?.unwrap_or(-1);
    let Some(xml_arg) = opt_string(ctl, cmd, "xml")? else {
        return Err(Failed);
    };
    let xml = if xml_arg.starts_with('<') {
        xml_arg.to_owned()
    } else {
        read_file_kept(ctl, xml_arg)?
    };
    let mut flags = network_flags::UPDATE_AFFECT_CURRENT;
    if config {
        flags |= network_flags::UPDATE_AFFECT_CONFIG;
    }
    if live {
        flags |= network_flags::UPDATE_AFFECT_LIVE;
    }
    // Servers that lack the feature expect command and section swapped,
    // as libvirt's client sends them.
    let correct = ctl
        .connection()?
        .supports_feature(feature::NETWORK_UPDATE_HAS_CORRECT_ORDER);
    let correct = ctl.keep(correct);
    let (wire_command, wire_section) = match correct {
        Ok(true) => (command, section),
        Ok(false) => (section, command),
        Err(Failed) => {
            ctl.error(&format!("Failed to update network {}", net.name));
            return Err(Failed);
        }
    };
    let res: Result<(), Failed> = ctl.call(
        Procedure::NetworkUpdate,
        &NetworkUpdateArgs {
            net: net.clone(),
            command: wire_command,
            section: wire_section,
            parent_index,
            xml,
            flags,
        },
    );
    if res.is_err() {
        ctl.error(&format!("Failed to update network {}", net.name));
        return Err(Failed);
    }
    let name = &net.name;
    let msg = if config {
        if live {
            format!("Updated network {name} persistent config and live state")
        } else {
            format!("Updated network {name} persistent config")
        }
    } else if live || is_active(ctl, &net).unwrap_or(true) {
        format!("Updated network {name} live state")
    } else {
        format!("Updated network {name} persistent config")
    };
    ctl.print_extra(&msg);
    Ok(())
}

pub(super) fn cmd_dhcp_leases(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let mac = opt_string(ctl, cmd, "mac")?.map(str::to_owned);
    let (net, name) = opt_network(ctl, cmd)?;
    let res: Result<NetworkGetDhcpLeasesRet, Failed> = ctl.call(
        Procedure::NetworkGetDhcpLeases,
        &NetworkGetDhcpLeasesArgs {
            net,
            mac,
            need_results: 1,
            flags: 0,
        },
    );
    let Ok(res) = res else {
        ctl.error(&format!("Failed to get leases info for {name}"));
        return Err(Failed);
    };
    let mut leases: Vec<NetworkDhcpLease> = res.leases;
    leases.sort_by(|a, b| {
        strcasecmp(
            a.mac.as_deref().unwrap_or(""),
            b.mac.as_deref().unwrap_or(""),
        )
    });
    let mut table = Table::new(&[
        "Expiry Time",
        "MAC address",
        "Protocol",
        "IP address",
        "Hostname",
        "Client ID or DUID",
    ]);
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    for l in &leases {
        let proto = match l.kind {
            ip_addr_type::IPV4 => "ipv4",
            ip_addr_type::IPV6 => "ipv6",
            _ => "-",
        };
        table.push(vec![
            local_time(l.expirytime),
            dash(&l.mac),
            proto.into(),
            format!("{}/{}", l.ipaddr, l.prefix),
            dash(&l.hostname),
            dash(&l.clientid),
        ]);
    }
    ctl.print_table(&table);
    Ok(())
}

/// True when the error means the server lacks the API.
pub(super) fn is_no_support(code: ErrorCode, message: &str) -> bool {
    code == ErrorCode::NO_SUPPORT || message.contains("unknown procedure")
}
