//! `net-desc` and `net-metadata` (from newer virsh), through
//! `NETWORK_GET_METADATA` / `NETWORK_SET_METADATA`.

use virtnet_rpc::ErrorCode;
use virtnet_rpc::protocol::{
    NetworkGetMetadataArgs, NetworkGetMetadataRet, NetworkSetMetadataArgs, NonnullNetwork,
    Procedure, metadata_type, network_flags,
};

use super::edit::{edit_file, read_back, write_temp};
use super::network::{get_xml, is_no_support};
use super::{edit, exclusive, opt_network, opt_string};
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};

fn update_flags(cmd: &ParsedCmd) -> u32 {
    let mut flags = network_flags::UPDATE_AFFECT_CURRENT;
    if cmd.has("config") {
        flags |= network_flags::UPDATE_AFFECT_CONFIG;
    }
    if cmd.has("live") {
        flags |= network_flags::UPDATE_AFFECT_LIVE;
    }
    flags
}

/// The text of the first `<name>` child of the root element.
fn child_text(xml: &str, name: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let el = doc
        .root_element()
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == name)?;
    Some(
        el.descendants()
            .filter(|d| d.is_text())
            .filter_map(|d| d.text())
            .collect(),
    )
}

/// virsh's `virshGetNetworkDescription`: the title or description, `""`
/// when there is none; older servers are read through the XML.
fn get_description(
    ctl: &mut Ctl<'_>,
    net: &NonnullNetwork,
    title: bool,
    flags: u32,
    query_flags: u32,
) -> Result<String, Failed> {
    let kind = if title {
        metadata_type::TITLE
    } else {
        metadata_type::DESCRIPTION
    };
    let r: Result<NetworkGetMetadataRet, _> = ctl.try_call(
        Procedure::NetworkGetMetadata,
        &NetworkGetMetadataArgs {
            network: net.clone(),
            kind,
            uri: None,
            flags,
        },
    );
    match r {
        Ok(r) => return Ok(r.metadata),
        Err(e) if e.code == ErrorCode::NO_NETWORK_METADATA => return Ok(String::new()),
        Err(e) if is_no_support(e.code, &e.message) => {}
        Err(e) => {
            ctl.set_error(e.message);
            return Err(Failed);
        }
    }
    let Ok(xml) = get_xml(ctl, net, query_flags) else {
        ctl.error("Failed to get network description xml");
        return Err(Failed);
    };
    Ok(child_text(&xml, if title { "title" } else { "description" }).unwrap_or_default())
}

fn set_metadata(
    ctl: &mut Ctl<'_>,
    net: &NonnullNetwork,
    kind: i32,
    metadata: Option<String>,
    key: Option<String>,
    uri: Option<String>,
    flags: u32,
) -> CmdResult {
    ctl.call(
        Procedure::NetworkSetMetadata,
        &NetworkSetMetadataArgs {
            network: net.clone(),
            kind,
            metadata,
            key,
            uri,
            flags,
        },
    )
}

pub(super) fn cmd_desc(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (title, edit) = (cmd.has("title"), cmd.has("edit"));
    exclusive(ctl, cmd, "current", "live")?;
    exclusive(ctl, cmd, "current", "config")?;
    let flags = update_flags(cmd);
    let query_flags = if cmd.has("config") {
        network_flags::XML_INACTIVE
    } else {
        0
    };
    let (net, _) = opt_network(ctl, cmd)?;
    let kind = if title {
        metadata_type::TITLE
    } else {
        metadata_type::DESCRIPTION
    };
    let words = cmd.values("new-desc");
    let desc_arg = (!words.is_empty()).then(|| words.join(" "));
    let what = if title { "title" } else { "description" };
    if edit || desc_arg.is_some() {
        let current = get_description(ctl, &net, title, flags, query_flags)?;
        let desc_arg = desc_arg.unwrap_or_else(|| current.clone());
        let new = if edit {
            let tmp = write_temp(ctl, &desc_arg)?;
            edit_file(ctl, tmp.path())?;
            let mut edited = read_back(ctl, tmp.path())?;
            if title && edited.ends_with('\n') {
                edited.pop();
            }
            if edited == current {
                ctl.print_extra(&format!("Network {what} not changed\n"));
                return Ok(());
            }
            edited
        } else {
            desc_arg
        };
        if set_metadata(ctl, &net, kind, Some(new), None, None, flags).is_err() {
            ctl.error(&format!("Failed to set new network {what}"));
            return Err(Failed);
        }
        ctl.print_extra(&format!("Network {what} updated successfully"));
    } else {
        let desc = get_description(ctl, &net, title, flags, query_flags)?;
        if !desc.is_empty() {
            ctl.print(&desc);
        } else {
            ctl.print_extra(&format!("No {what} for network: {}", net.name));
        }
    }
    Ok(())
}

pub(super) fn cmd_metadata(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (edit, remove) = (cmd.has("edit"), cmd.has("remove"));
    exclusive(ctl, cmd, "current", "live")?;
    exclusive(ctl, cmd, "current", "config")?;
    exclusive(ctl, cmd, "edit", "set")?;
    exclusive(ctl, cmd, "remove", "set")?;
    exclusive(ctl, cmd, "remove", "edit")?;
    let flags = update_flags(cmd);
    let (net, _) = opt_network(ctl, cmd)?;
    let uri = opt_string(ctl, cmd, "uri")?.map(str::to_owned);
    let key = opt_string(ctl, cmd, "key")?.map(str::to_owned);
    let set = opt_string(ctl, cmd, "set")?.map(str::to_owned);
    if (set.is_some() || edit) && key.is_none() {
        ctl.error("namespace key is required when modifying metadata");
        return Err(Failed);
    }
    if set.is_some() || remove {
        set_metadata(
            ctl,
            &net,
            metadata_type::ELEMENT,
            set.clone(),
            key,
            uri,
            flags,
        )?;
        ctl.print_extra(if remove {
            "Metadata removed\n"
        } else {
            "Metadata modified\n"
        });
    } else if edit {
        let get_uri = uri.clone();
        let changed = edit::edit_loop(
            ctl,
            &mut |ctl| {
                let r: Result<NetworkGetMetadataRet, _> = ctl.try_call(
                    Procedure::NetworkGetMetadata,
                    &NetworkGetMetadataArgs {
                        network: net.clone(),
                        kind: metadata_type::ELEMENT,
                        uri: get_uri.clone(),
                        flags,
                    },
                );
                Ok(r.map(|r| r.metadata).unwrap_or_else(|_| "\n".into()))
            },
            &mut |ctl, doc| {
                set_metadata(
                    ctl,
                    &net,
                    metadata_type::ELEMENT,
                    Some(doc.to_owned()),
                    key.clone(),
                    uri.clone(),
                    flags,
                )
            },
            &mut |ctl| ctl.print_extra("Metadata not changed"),
        )?;
        if changed {
            ctl.print_extra("Metadata modified\n");
        }
    } else {
        let r: NetworkGetMetadataRet = ctl.call(
            Procedure::NetworkGetMetadata,
            &NetworkGetMetadataArgs {
                network: net,
                kind: metadata_type::ELEMENT,
                uri,
                flags,
            },
        )?;
        ctl.print(&format!("{}\n", r.metadata));
    }
    Ok(())
}
