//! On-disk state: where virtnetd keeps configuration, status and dnsmasq files,
//! and how it writes them (atomically, so a crash never leaves half a file).
//!
//! ```text
//! CONFIG/networks/NAME.xml                persistent definitions (net-define)
//! CONFIG/networks/autostart/NAME.xml      symlink to ../NAME.xml when autostart is on
//! CONFIG/networks/ports/NAME/UUID.xml     persistent port attachments
//! RUN/network/NAME.xml                    status: live definition + how to undo its setup
//! RUN/network/NAME/UUID.xml               port status
//! RUN/virtnetd-sock, RUN/virtnetd-sock-ro sockets
//! STATE/dnsmasq/NAME.conf, .hostsfile, .addnhosts, .pid, BRIDGE.status (leases)
//! ```

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The three directory roots virtnetd works under.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Persistent configuration (default `/etc/virtnet`).
    pub config_dir: PathBuf,
    /// Runtime state that does not survive a reboot (default `/run/virtnet`).
    pub run_dir: PathBuf,
    /// Persistent state (default `/var/lib/virtnet`).
    pub state_dir: PathBuf,
}

impl Paths {
    /// Default locations for the system instance.
    pub fn system() -> Self {
        Paths {
            config_dir: PathBuf::from("/etc/virtnet"),
            run_dir: PathBuf::from("/run/virtnet"),
            state_dir: PathBuf::from("/var/lib/virtnet"),
        }
    }

    /// Directory of persistent network definitions.
    pub fn networks_dir(&self) -> PathBuf {
        self.config_dir.join("networks")
    }

    /// Directory of autostart links.
    pub fn autostart_dir(&self) -> PathBuf {
        self.networks_dir().join("autostart")
    }

    /// Persistent definition of one network.
    pub fn network_config(&self, name: &str) -> PathBuf {
        self.networks_dir().join(format!("{name}.xml"))
    }

    /// Autostart link of one network.
    pub fn autostart_link(&self, name: &str) -> PathBuf {
        self.autostart_dir().join(format!("{name}.xml"))
    }

    /// Directory of status files of active networks.
    pub fn status_dir(&self) -> PathBuf {
        self.run_dir.join("network")
    }

    /// Status file of one active network.
    pub fn network_status(&self, name: &str) -> PathBuf {
        self.status_dir().join(format!("{name}.xml"))
    }

    /// Status files of one network's ports (`RUN/network/NAME/ports`).
    pub fn port_status_dir(&self, network: &str) -> PathBuf {
        self.status_dir().join(network).join("ports")
    }

    /// Persistent port attachments of one network (`CONFIG/ports/NAME`),
    /// recreated whenever the network starts.
    pub fn port_config_dir(&self, network: &str) -> PathBuf {
        self.config_dir.join("ports").join(network)
    }

    /// Hook scripts directory (`CONFIG/hooks`).
    pub fn hooks_dir(&self) -> PathBuf {
        self.config_dir.join("hooks")
    }

    /// Directory for dnsmasq's configuration, host files and pid files.
    pub fn dnsmasq_dir(&self) -> PathBuf {
        self.state_dir.join("dnsmasq")
    }

    /// Read-write socket (root only).
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("virtnetd-sock")
    }

    /// Read-only socket (anyone may connect).
    pub fn socket_ro(&self) -> PathBuf {
        self.run_dir.join("virtnetd-sock-ro")
    }

    /// Create every directory virtnetd writes to. dnsmasq drops its
    /// privileges to `nobody` before it reads the host files, so the
    /// dnsmasq directory and the state directory must be searchable by all.
    pub fn create_all(&self) -> io::Result<()> {
        for dir in [
            self.networks_dir(),
            self.autostart_dir(),
            self.status_dir(),
            self.dnsmasq_dir(),
        ] {
            fs::create_dir_all(&dir)?;
        }
        for dir in [&self.state_dir, &self.dnsmasq_dir()] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        }
        Ok(())
    }

    /// The first directory above the dnsmasq directory that others cannot
    /// search (dnsmasq, running as `nobody`, could not read its host files).
    pub fn dnsmasq_dir_blocked_at(&self) -> Option<PathBuf> {
        let dir = self.dnsmasq_dir();
        dir.ancestors()
            .filter(|d| !d.as_os_str().is_empty())
            .find(|d| {
                fs::metadata(d)
                    .map(|m| m.permissions().mode() & 0o001 == 0)
                    .unwrap_or(false)
            })
            .map(Path::to_path_buf)
    }
}

/// Write `contents` to `path` atomically and durably: a temporary file in
/// the same directory, fsync'd, then renamed over the target. For
/// configuration, which must survive a crash or power loss.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    write_replacing(path, contents, mode, true)
}

/// Write `contents` to `path` atomically, without fsync: for runtime state
/// under the run directory (a tmpfs that does not outlive a reboot), where
/// a reader must never see half a file but durability is moot.
pub fn write_runtime(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    write_replacing(path, contents, mode, false)
}

fn write_replacing(path: &Path, contents: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Remove a file; a file that is already gone is not an error.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = std::env::temp_dir().join(format!("virtnet-store-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.xml");
        write_atomic(&p, b"first version, long", 0o600).unwrap();
        write_atomic(&p, b"second", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        remove_if_exists(&p).unwrap();
        remove_if_exists(&p).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
