//! `help` output in virsh's layout.

use std::fmt::Write as _;

use super::opts::{CmdDef, CmdGroup, OptKind};

/// `help <command>`: NAME, SYNOPSIS, DESCRIPTION, OPTIONS.
pub fn command_help(def: &CmdDef) -> String {
    let mut out = String::new();
    out.push_str("  NAME\n");
    let _ = writeln!(out, "    {} - {}", def.name, def.help);
    out.push_str("\n  SYNOPSIS\n");
    let _ = write!(out, "    {}", def.name);
    let mut shortopt = false;
    for opt in def.opts {
        let piece = match opt.kind {
            OptKind::Bool => format!("[--{}]", opt.name),
            OptKind::Int => {
                if !opt.named_only {
                    shortopt = true;
                }
                if opt.required {
                    format!("<{}>", opt.name)
                } else {
                    format!("[--{} <number>]", opt.name)
                }
            }
            OptKind::String => {
                if !opt.named_only {
                    shortopt = true;
                }
                format!("[--{} <string>]", opt.name)
            }
            OptKind::Data => {
                if !opt.named_only {
                    shortopt = true;
                }
                if opt.required {
                    format!("<{}>", opt.name)
                } else {
                    format!("[<{}>]", opt.name)
                }
            }
            OptKind::Argv => match (shortopt, opt.required) {
                (true, true) => format!("{{[--{}] <string>}}...", opt.name),
                (true, false) => format!("[[--{}] <string>]...", opt.name),
                (false, true) => format!("<{}>...", opt.name),
                (false, false) => format!("[<{}>]...", opt.name),
            },
            OptKind::Alias(_) => continue,
        };
        out.push(' ');
        out.push_str(&piece);
    }
    out.push('\n');
    if !def.desc.is_empty() {
        out.push_str("\n  DESCRIPTION\n");
        let _ = writeln!(out, "    {}", def.desc);
    }
    if !def.opts.is_empty() {
        out.push_str("\n  OPTIONS\n");
        for opt in def.opts {
            let label = match opt.kind {
                OptKind::Bool => format!("--{}", opt.name),
                OptKind::Int if opt.required => format!("[--{}] <number>", opt.name),
                OptKind::Int => format!("--{} <number>", opt.name),
                OptKind::String => format!("--{} <string>", opt.name),
                OptKind::Data => format!("[--{}] <string>", opt.name),
                OptKind::Argv if shortopt => format!("[--{}] <string>", opt.name),
                OptKind::Argv => format!("<{}>", opt.name),
                OptKind::Alias(_) => continue,
            };
            let _ = writeln!(out, "    {label:<15}  {}", opt.help);
        }
    }
    out.push('\n');
    out
}

/// `help <group keyword>`.
pub fn group_help(group: &CmdGroup) -> String {
    let mut out = String::new();
    let _ = writeln!(out, " {} (help keyword '{}'):", group.name, group.keyword);
    for cmd in group.commands.iter().filter(|c| !c.hidden) {
        let _ = writeln!(out, "    {:<30} {}", cmd.name, cmd.help);
    }
    out
}

/// `help` with no argument: every group.
pub fn all_help(groups: &[CmdGroup]) -> String {
    let mut out = String::from("Grouped commands:\n\n");
    for g in groups {
        out.push_str(&group_help(g));
        out.push('\n');
    }
    out
}

/// `virtnet --help`.
pub fn usage(progname: &str, groups: &[CmdGroup]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\n{progname} [options]... [<command_string>]\n\
         {progname} [options]... <command> [args...]\n\n\
         \x20 options:\n\
         \x20   -c | --connect=URI      connection URI (default virtnet:///system)\n\
         \x20   -h | --help             this help\n\
         \x20   -q | --quiet            quiet mode\n\
         \x20   -r | --readonly         connect readonly\n\
         \x20   -v                      short version\n\
         \x20   -V                      long version\n\
         \x20        --version[=TYPE]   version, TYPE is short or long (default short)\n\
         \x20 commands (non interactive mode):\n\n"
    );
    for g in groups {
        let _ = writeln!(out, " {} (help keyword '{}')", g.name, g.keyword);
        for cmd in g.commands.iter().filter(|c| !c.hidden) {
            let _ = writeln!(out, "    {:<30} {}", cmd.name, cmd.help);
        }
        out.push('\n');
    }
    out.push_str("\n  (specify help <group> for details about the commands in the group)\n");
    out.push_str("\n  (specify help <command> for details about the command)\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::parse::CommandSet;

    #[test]
    fn net_dumpxml_help_as_virsh_prints_it() {
        let def = crate::registry::Registry
            .find("net-dumpxml")
            .expect("net-dumpxml");
        assert_eq!(
            command_help(def),
            "  NAME\n    net-dumpxml - network information in XML\n\n  SYNOPSIS\n    \
             net-dumpxml <network> [--inactive] [--xpath <string>] [--wrap]\n\n  DESCRIPTION\n    \
             Output the network information as an XML dump to stdout.\n\n  OPTIONS\n    \
             [--network] <string>  network name or uuid\n    --inactive       show inactive defined XML\n    \
             --xpath <string>  xpath expression to filter the XML document\n    \
             --wrap           wrap xpath results in an common root element\n\n"
        );
    }

    #[test]
    fn argv_synopsis() {
        let def = crate::registry::Registry
            .find("net-desc")
            .expect("net-desc");
        assert!(command_help(def).contains(
            "net-desc <network> [--live] [--config] [--current] [--title] [--edit] [[--new-desc] <string>]...\n"
        ));
    }
}
