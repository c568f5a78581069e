//! Names of the files dnsmasq uses for a network.
//!
//! libvirt keeps everything of a network's dnsmasq in one state directory
//! (`/var/lib/libvirt/dnsmasq` for the system instance):
//!
//! | file | name |
//! | --- | --- |
//! | conf file | `NAME.conf` |
//! | dhcp hostsfile | `NAME.hostsfile`, NAME XML-escaped |
//! | addnhosts | `NAME.addnhosts`, NAME XML-escaped |
//! | lease status (written by the `--dhcp-script`) | `BRIDGE.status` |
//!
//! The hostsfile and addnhosts names escape `<>&'"` as XML entities (libvirt
//! builds them with `virBufferEscapeString`): a network named `a"b` has
//! `a&quot;b.hostsfile`, and that escaped path is also what the conf file
//! names. The pid file (`NAME.pid`, NAME escaped the same way) lives in a
//! separate directory.

/// The state directory of libvirt's system network driver.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/libvirt/dnsmasq";

/// The pid directory of libvirt's system network driver.
pub const DEFAULT_PID_DIR: &str = "/run/libvirt/network";

/// `NAME.conf`.
pub fn conf_file_name(network: &str) -> String {
    format!("{network}.conf")
}

/// `NAME.hostsfile` with NAME XML-escaped.
pub fn hostsfile_name(network: &str) -> String {
    format!("{}.hostsfile", escape_name(network))
}

/// `NAME.addnhosts` with NAME XML-escaped.
pub fn addnhosts_name(network: &str) -> String {
    format!("{}.addnhosts", escape_name(network))
}

/// `BRIDGE.status`: the lease records of the network on `bridge`.
pub fn status_file_name(bridge: &str) -> String {
    format!("{bridge}.status")
}

/// `NAME.pid` with NAME XML-escaped (libvirt's `virPidFileBuildPath`).
pub fn pid_file_name(network: &str) -> String {
    format!("{}.pid", escape_name(network))
}

/// `STATE_DIR/NAME.conf`.
pub fn conf_path(state_dir: &str, network: &str) -> String {
    join(state_dir, &conf_file_name(network))
}

/// `STATE_DIR/NAME.hostsfile` (NAME escaped), as the conf file names it.
pub fn hostsfile_path(state_dir: &str, network: &str) -> String {
    join(state_dir, &hostsfile_name(network))
}

/// `STATE_DIR/NAME.addnhosts` (NAME escaped), as the conf file names it.
pub fn addnhosts_path(state_dir: &str, network: &str) -> String {
    join(state_dir, &addnhosts_name(network))
}

/// `STATE_DIR/BRIDGE.status`.
pub fn status_file_path(state_dir: &str, bridge: &str) -> String {
    join(state_dir, &status_file_name(bridge))
}

/// `PID_DIR/NAME.pid`.
pub fn pid_file_path(pid_dir: &str, network: &str) -> String {
    join(pid_dir, &pid_file_name(network))
}

fn join(dir: &str, file: &str) -> String {
    format!("{dir}/{file}")
}

/// Escape a network name the way libvirt's `virBufferEscapeString` does:
/// `<`, `>`, `&`, `"`, `'` become entities; control characters other than
/// tab, line feed and carriage return (0x01–0x19) are dropped.
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{1}'..='\u{19}' => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            conf_path(DEFAULT_STATE_DIR, "default"),
            "/var/lib/libvirt/dnsmasq/default.conf"
        );
        assert_eq!(
            hostsfile_path(DEFAULT_STATE_DIR, "default\"with\"quotes\""),
            "/var/lib/libvirt/dnsmasq/default&quot;with&quot;quotes&quot;.hostsfile"
        );
        assert_eq!(addnhosts_name("a<b>&'"), "a&lt;b&gt;&amp;&apos;.addnhosts");
        assert_eq!(conf_file_name("a\"b"), "a\"b.conf");
        assert_eq!(pid_file_name("R&D 'lab'"), "R&amp;D &apos;lab&apos;.pid");
        assert_eq!(
            status_file_path(DEFAULT_STATE_DIR, "virbr0"),
            "/var/lib/libvirt/dnsmasq/virbr0.status"
        );
        assert_eq!(
            pid_file_path(DEFAULT_PID_DIR, "default"),
            "/run/libvirt/network/default.pid"
        );
        assert_eq!(escape_name("a\u{1}b\u{1a}"), "ab\u{1a}");
    }
}
