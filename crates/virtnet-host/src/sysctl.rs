//! Kernel parameters under `/proc/sys`, e.g. forwarding and per-device IPv6
//! settings. Keys are paths relative to the proc root, with slashes
//! (`net/ipv4/ip_forward`): device names may contain dots, so the dotted
//! form would be ambiguous.

use std::fs;
use std::io;
use std::path::PathBuf;

/// Errors reading or writing a kernel parameter; they name the file.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// The key is not a plain relative path.
    #[error("invalid sysctl key '{0}'")]
    InvalidKey(String),
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing failed.
    #[error("cannot write '{value}' to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The value.
        value: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Reads and writes kernel parameters.
pub trait Sysctl {
    /// The value of `key` (trailing newline removed).
    fn read(&self, key: &str) -> Result<String, SysctlError>;
    /// Sets `key` to `value`.
    fn write(&self, key: &str, value: &str) -> Result<(), SysctlError>;
}

/// `net/ipv4/ip_forward` — set to 1 when a NAT or routed network starts.
pub const IPV4_FORWARD: &str = "net/ipv4/ip_forward";
/// `net/ipv6/conf/all/forwarding` — set to 1 for networks with IPv6.
pub const IPV6_FORWARD: &str = "net/ipv6/conf/all/forwarding";

/// `net/ipv6/conf/DEV/disable_ipv6` — 1 on bridges of networks without IPv6.
pub fn disable_ipv6_key(dev: &str) -> String {
    format!("net/ipv6/conf/{dev}/disable_ipv6")
}

/// `net/ipv6/conf/DEV/accept_ra` — 0 on network bridges (they route, they
/// do not take router advertisements).
pub fn accept_ra_key(dev: &str) -> String {
    format!("net/ipv6/conf/{dev}/accept_ra")
}

/// `net/ipv6/conf/DEV/autoconf` — 0 on network bridges.
pub fn autoconf_key(dev: &str) -> String {
    format!("net/ipv6/conf/{dev}/autoconf")
}

/// The real [`Sysctl`]: files under a proc root (`/proc/sys`, or a
/// directory tree in tests).
#[derive(Debug, Clone)]
pub struct ProcSysctl {
    root: PathBuf,
}

impl Default for ProcSysctl {
    fn default() -> Self {
        ProcSysctl::new("/proc/sys")
    }
}

impl ProcSysctl {
    /// Uses `root` in place of `/proc/sys`.
    pub fn new(root: impl Into<PathBuf>) -> ProcSysctl {
        ProcSysctl { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, SysctlError> {
        let ok = !key.is_empty()
            && !key.starts_with('/')
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
            && !key.contains('\0');
        if !ok {
            return Err(SysctlError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join(key))
    }
}

impl Sysctl for ProcSysctl {
    fn read(&self, key: &str) -> Result<String, SysctlError> {
        let path = self.path(key)?;
        match fs::read_to_string(&path) {
            Ok(s) => Ok(s.trim_end_matches('\n').to_string()),
            Err(source) => Err(SysctlError::Read { path, source }),
        }
    }

    fn write(&self, key: &str, value: &str) -> Result<(), SysctlError> {
        let path = self.path(key)?;
        // /proc/sys files must be written in one write(2) without O_CREAT
        // surprises; opening for write only (no create) keeps a typo from
        // creating files in a test root either.
        let res = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| io::Write::write_all(&mut f, format!("{value}\n").as_bytes()));
        res.map_err(|source| SysctlError::Write {
            path,
            value: value.to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_under_a_test_root() {
        let root = std::env::temp_dir().join(format!("virtnet-sysctl-{}", std::process::id()));
        let conf = root.join("net/ipv6/conf/vir.br0");
        fs::create_dir_all(&conf).unwrap();
        fs::write(conf.join("disable_ipv6"), "0\n").unwrap();
        let s = ProcSysctl::new(&root);
        assert_eq!(s.read(&disable_ipv6_key("vir.br0")).unwrap(), "0");
        s.write(&disable_ipv6_key("vir.br0"), "1").unwrap();
        assert_eq!(s.read(&disable_ipv6_key("vir.br0")).unwrap(), "1");
        let err = s.write(IPV4_FORWARD, "1").unwrap_err().to_string();
        assert!(err.contains("net/ipv4/ip_forward"), "{err}");
        assert!(s.read("../etc/passwd").is_err());
        assert!(s.read("/etc/passwd").is_err());
        assert!(s.read("net//x").is_err());
        let _ = fs::remove_dir_all(&root);
    }
}
