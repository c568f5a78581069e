//! The bridge helper's access list, in the syntax of QEMU's `bridge.conf`.
//!
//! ```text
//! # comment
//! allow virbr0        # a bridge …
//! allow default       # … or a virtnet network, by name
//! deny  isolated
//! allow all
//! include /etc/virtnet/qemu-bridge-helper.d/users.conf
//! ```
//!
//! As in QEMU, access is granted when some `allow` rule matches and no
//! `deny` rule does (deny wins, whatever the order); an empty list denies
//! everything. A rule names a bridge or the virtnet network using it. An
//! `include` that cannot be read is skipped; a relative path is taken from
//! the including file's directory. Includes nest at most
//! [`MAX_INCLUDE_DEPTH`] deep, which also stops loops.

use std::path::{Path, PathBuf};

/// Default location of the access list.
pub const DEFAULT_ACL_FILE: &str = "/etc/virtnet/qemu-bridge-helper.conf";
/// Environment variable naming another access list (ignored when the
/// helper runs with raised privileges).
pub const ACL_FILE_ENV: &str = "VIRTNET_BRIDGE_HELPER_CONF";
/// How deep `include` may nest.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `allow NAME`.
    Allow(String),
    /// `allow all`.
    AllowAll,
    /// `deny NAME`.
    Deny(String),
    /// `deny all`.
    DenyAll,
}

/// A malformed access list; the messages are QEMU's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// The file cannot be read.
    #[error("failed to parse default acl file `{path}': {reason}")]
    Read {
        /// The file.
        path: String,
        /// `strerror` text.
        reason: String,
    },
    /// A line with a command and no argument.
    #[error("Invalid config line:\n  {0}")]
    InvalidLine(String),
    /// A command other than allow, deny and include.
    #[error("Unknown command `{0}'")]
    UnknownCommand(String),
}

/// The rules of an access list, includes expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    /// In file order.
    pub rules: Vec<Rule>,
}

impl Acl {
    /// Reads `path` (which must exist) and what it includes.
    pub fn load(path: &Path) -> Result<Acl, AclError> {
        let text = std::fs::read_to_string(path).map_err(|e| AclError::Read {
            path: path.display().to_string(),
            reason: crate::conn::strerror(&e),
        })?;
        let mut acl = Acl::default();
        acl.add_text(&text, path.parent().unwrap_or(Path::new("/")), 0)?;
        Ok(acl)
    }

    /// Parses access-list text whose relative includes are found in `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Acl, AclError> {
        let mut acl = Acl::default();
        acl.add_text(text, dir, 0)?;
        Ok(acl)
    }

    fn add_text(&mut self, text: &str, dir: &Path, depth: usize) -> Result<(), AclError> {
        for line in text.lines() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let Some(i) = t.find([' ', '\t']) else {
                return Err(AclError::InvalidLine(line.to_owned()));
            };
            let (cmd, arg) = (&t[..i], t[i..].trim());
            match cmd {
                "allow" if arg == "all" => self.rules.push(Rule::AllowAll),
                "allow" => self.rules.push(Rule::Allow(arg.to_owned())),
                "deny" if arg == "all" => self.rules.push(Rule::DenyAll),
                "deny" => self.rules.push(Rule::Deny(arg.to_owned())),
                "include" => {
                    if depth + 1 >= MAX_INCLUDE_DEPTH {
                        continue;
                    }
                    let path = if Path::new(arg).is_absolute() {
                        PathBuf::from(arg)
                    } else {
                        dir.join(arg)
                    };
                    // As in QEMU, an include that cannot be read is skipped;
                    // one that is malformed fails the whole list.
                    if let Ok(inner) = std::fs::read_to_string(&path) {
                        let inner_dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
                        self.add_text(&inner, &inner_dir, depth + 1)?;
                    }
                }
                other => return Err(AclError::UnknownCommand(other.to_owned())),
            }
        }
        Ok(())
    }

    /// Whether something known by any of `names` (a bridge and the network
    /// using it) may be joined.
    pub fn allows(&self, names: &[&str]) -> bool {
        let matches = |n: &String| names.iter().any(|x| x == n);
        let mut allowed = false;
        let mut denied = false;
        for r in &self.rules {
            match r {
                Rule::AllowAll => allowed = true,
                Rule::Allow(n) if matches(n) => allowed = true,
                Rule::DenyAll => denied = true,
                Rule::Deny(n) if matches(n) => denied = true,
                _ => {}
            }
        }
        allowed && !denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(text: &str) -> Acl {
        Acl::parse(text, Path::new("/nonexistent")).unwrap()
    }

    #[test]
    fn rules_and_comments() {
        let a = acl("# comment\n\n  allow virbr0\nallow\tdefault  \ndeny isolated\n");
        assert_eq!(
            a.rules,
            [
                Rule::Allow("virbr0".into()),
                Rule::Allow("default".into()),
                Rule::Deny("isolated".into())
            ]
        );
        assert!(a.allows(&["virbr0", "default"]));
        assert!(a.allows(&["virbr9", "default"]));
        assert!(!a.allows(&["virbr1", "isolated"]));
        assert!(!a.allows(&["br0", "other"]));
    }

    #[test]
    fn deny_wins_and_empty_denies() {
        assert!(!acl("").allows(&["virbr0"]));
        assert!(!acl("# nothing\n").allows(&["virbr0"]));
        assert!(acl("allow all\n").allows(&["anything"]));
        assert!(!acl("deny virbr0\nallow all\n").allows(&["virbr0", "default"]));
        assert!(!acl("allow all\ndeny default\n").allows(&["virbr0", "default"]));
        assert!(!acl("allow virbr0\ndeny all\n").allows(&["virbr0"]));
    }

    #[test]
    fn errors_in_qemus_words() {
        let e = |t: &str| Acl::parse(t, Path::new("/")).unwrap_err().to_string();
        assert_eq!(e("allow\n"), "Invalid config line:\n  allow");
        assert_eq!(e("permit virbr0\n"), "Unknown command `permit'");
        assert_eq!(
            Acl::load(Path::new("/nonexistent/acl.conf"))
                .unwrap_err()
                .to_string(),
            "failed to parse default acl file `/nonexistent/acl.conf': No such file or directory"
        );
    }

    #[test]
    fn includes_nest_relative_to_the_file_and_stop_at_loops() {
        let dir = std::env::temp_dir().join(format!("virtnet-acl-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("d")).unwrap();
        std::fs::write(dir.join("main.conf"), "include d/users.conf\ndeny br9\n").unwrap();
        std::fs::write(
            dir.join("d/users.conf"),
            "allow br9\nallow br1\ninclude ../main.conf\n",
        )
        .unwrap();
        let a = Acl::load(&dir.join("main.conf")).unwrap();
        assert!(a.allows(&["br1"]));
        assert!(!a.allows(&["br9"]));
        // main includes users includes main …: cut at the depth limit.
        assert!(a.rules.len() < 4 * MAX_INCLUDE_DEPTH);
        // A missing include is skipped.
        let b = Acl::parse("include missing.conf\nallow br0\n", &dir).unwrap();
        assert!(b.allows(&["br0"]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
