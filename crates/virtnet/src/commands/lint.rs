//! `net-lint FILE`: parse a network (or network port) definition offline
//! with the checks libvirt's parser makes (and, with `--validate`, those
//! made when a network is defined) and print it canonically, or print what
//! dnsmasq would be given for it.

use virtnet_conf::{FormatFlags, NetworkDef, PortDef};
use virtnet_dnsmasq::{DnsmasqConfig, Options};

use super::{opt_string, read_file};
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};

/// Where virtnetd keeps dnsmasq's files.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/virtnet/dnsmasq";

/// What `net-lint` checks and prints.
#[derive(Debug, Clone, Default)]
pub struct LintOptions<'a> {
    /// The file is a `<networkport>`.
    pub port: bool,
    /// Format as `net-dumpxml --inactive`.
    pub inactive: bool,
    /// Also apply the checks made when a network is defined.
    pub validate: bool,
    /// Print the dnsmasq conf file.
    pub conf: bool,
    /// Print the dnsmasq dhcp hostsfile.
    pub hostsfile: bool,
    /// dnsmasq state directory.
    pub state_dir: &'a str,
}

/// What `net-lint` prints for `text`, or the error message.
pub fn lint(text: &str, o: &LintOptions<'_>) -> Result<String, String> {
    let (inactive, conf, hostsfile, state_dir) = (o.inactive, o.conf, o.hostsfile, o.state_dir);
    if o.port {
        let def = PortDef::parse(text).map_err(|e| e.to_string())?;
        return Ok(def.to_xml());
    }
    let def = NetworkDef::parse(text).map_err(|e| e.to_string())?;
    if o.validate {
        def.validate().map_err(|e| e.to_string())?;
    }
    if conf || hostsfile {
        let files =
            DnsmasqConfig::generate(&def, &Options::new(state_dir)).map_err(|e| e.to_string())?;
        let mut out = String::new();
        if conf {
            out.push_str(&files.conf);
        }
        if hostsfile {
            out.push_str(files.hostsfile.as_deref().unwrap_or(""));
        }
        return Ok(out);
    }
    let flags = if inactive {
        FormatFlags::INACTIVE
    } else {
        FormatFlags::ACTIVE
    };
    Ok(def.to_xml(flags))
}

pub(super) fn cmd_lint(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let Some(file) = opt_string(ctl, cmd, "file")? else {
        return Err(Failed);
    };
    let state_dir = opt_string(ctl, cmd, "state-dir")?.unwrap_or(DEFAULT_STATE_DIR);
    let port = cmd.has("port");
    let (conf, hosts) = (cmd.has("dnsmasq-conf"), cmd.has("dnsmasq-hostsfile"));
    if port && (conf || hosts) {
        ctl.error("Options --port and --dnsmasq-conf/--dnsmasq-hostsfile are mutually exclusive");
        return Err(Failed);
    }
    let text = match read_file(file) {
        Ok(t) => t,
        Err(e) => {
            ctl.set_error(e);
            return Err(Failed);
        }
    };
    let options = LintOptions {
        port,
        inactive: cmd.has("inactive"),
        validate: cmd.has("validate"),
        conf,
        hostsfile: hosts,
        state_dir,
    };
    match lint(&text, &options) {
        Ok(out) => {
            ctl.print(&out);
            Ok(())
        }
        Err(e) => {
            ctl.set_error(e);
            Err(Failed)
        }
    }
}
