//! TAP devices through `/dev/net/tun`, and macvtap character devices.
//!
//! A [`Tap`] owns the queue descriptors of one TAP device; it disappears
//! with them unless made persistent. Link attributes (MAC, MTU, up, bridge)
//! are set by name through [`crate::netlink::NetlinkOps`].

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Errors creating or configuring TAP and macvtap devices; they name the
/// device or file.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// A device or file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An ioctl on the tun device failed.
    #[error("{op} on tap '{name}': {source}")]
    Ioctl {
        /// What was attempted.
        op: &'static str,
        /// The device (or name template).
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The device name is not usable.
    #[error("invalid tap device name '{0}'")]
    InvalidName(String),
    /// Netlink refused a change to the device.
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    /// Every name a template allows is taken (libvirt's words).
    #[error("no unused {prefix} names available")]
    NoFreeName {
        /// The template's fixed part, e.g. `macvtap`.
        prefix: String,
    },
    /// The macvtap character device could not be found or created.
    #[error("cannot set up character device of macvtap '{name}' ({path}): {detail}")]
    Chardev {
        /// The macvtap device.
        name: String,
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// A TAP device to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapSpec {
    /// Device name, or a template such as `vnet%d` for the kernel to fill in.
    pub name: String,
    /// `IFF_VNET_HDR`: frames carry a virtio-net header (offloads).
    pub vnet_hdr: bool,
    /// Number of queues; more than one sets `IFF_MULTI_QUEUE`.
    pub queues: usize,
    /// Keep the device when the descriptors close (`TUNSETPERSIST`).
    pub persist: bool,
    /// Owner uid (`TUNSETOWNER`).
    pub owner: Option<u32>,
    /// Owner gid (`TUNSETGROUP`).
    pub group: Option<u32>,
}

impl TapSpec {
    /// One queue, no vnet header, not persistent, owned by root.
    pub fn new(name: &str) -> TapSpec {
        TapSpec {
            name: name.to_string(),
            vnet_hdr: false,
            queues: 1,
            persist: false,
            owner: None,
            group: None,
        }
    }
}

/// An open TAP device: its name and one descriptor per queue.
#[derive(Debug)]
pub struct Tap {
    name: String,
    queues: Vec<File>,
    vnet_hdr: bool,
}

const TUN_PATH: &str = "/dev/net/tun";

fn ifreq_for(name: &str, flags: libc::c_int) -> Result<libc::ifreq, TapError> {
    let bytes = name.as_bytes();
    if bytes.is_empty()
        || bytes.len() >= libc::IFNAMSIZ
        || bytes.contains(&0)
        || bytes.contains(&b'/')
    {
        return Err(TapError::InvalidName(name.to_string()));
    }
    // SAFETY: ifreq is plain old data (a name array and a union of integers
    // and byte arrays); all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // The flags field is a short; every IFF_* value used here fits.
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    Ok(req)
}

fn ioctl_value(file: &File, request: libc::Ioctl, value: libc::c_ulong) -> io::Result<()> {
    // SAFETY: these TUN requests (TUNSETPERSIST/OWNER/GROUP) take their
    // argument by value, not as a pointer; the descriptor is open.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request, value) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Tap {
    /// Creates (or attaches to) a TAP device: opens `/dev/net/tun` once per
    /// queue and binds each descriptor with `TUNSETIFF`
    /// (`IFF_TAP|IFF_NO_PI`, plus the requested flags), then applies owner,
    /// group and persistence.
    pub fn create(spec: &TapSpec) -> Result<Tap, TapError> {
        let queues = spec.queues.max(1);
        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
        if spec.vnet_hdr {
            flags |= libc::IFF_VNET_HDR;
        }
        if queues > 1 {
            flags |= libc::IFF_MULTI_QUEUE;
        }
        let mut name = spec.name.clone();
        let mut files = Vec::with_capacity(queues);
        for _ in 0..queues {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(TUN_PATH)
                .map_err(|source| TapError::Open {
                    path: PathBuf::from(TUN_PATH),
                    source,
                })?;
            let mut req = ifreq_for(&name, flags)?;
            // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `req`
            // is; it lives across the call.
            let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
            if rc < 0 {
                return Err(TapError::Ioctl {
                    op: "TUNSETIFF",
                    name,
                    source: io::Error::last_os_error(),
                });
            }
            // The kernel wrote back the actual name (templates like vnet%d).
            // SAFETY: the kernel NUL-terminates ifr_name within IFNAMSIZ.
            let actual = unsafe { CStr::from_ptr(req.ifr_name.as_ptr()) };
            name = actual.to_string_lossy().into_owned();
            files.push(file);
        }
        let tap = Tap {
            name,
            queues: files,
            vnet_hdr: spec.vnet_hdr,
        };
        let first = &tap.queues[0];
        if let Some(uid) = spec.owner {
            ioctl_value(first, libc::TUNSETOWNER, libc::c_ulong::from(uid))
                .map_err(|source| tap.ioctl_error("TUNSETOWNER", source))?;
        }
        if let Some(gid) = spec.group {
            ioctl_value(first, libc::TUNSETGROUP, libc::c_ulong::from(gid))
                .map_err(|source| tap.ioctl_error("TUNSETGROUP", source))?;
        }
        if spec.persist {
            tap.set_persist(true)?;
        }
        Ok(tap)
    }

    fn ioctl_error(&self, op: &'static str, source: io::Error) -> TapError {
        TapError::Ioctl {
            op,
            name: self.name.clone(),
            source,
        }
    }

    /// The device name the kernel gave it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether frames carry a virtio-net header.
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// The first queue's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.queues[0].as_fd()
    }

    /// All queue descriptors.
    pub fn queues(&self) -> &[File] {
        &self.queues
    }

    /// Gives up the descriptors, e.g. to pass them to QEMU.
    pub fn into_queues(self) -> Vec<File> {
        self.queues
    }

    /// Deletes the device: clears persistence and closes this side's
    /// descriptors. The kernel removes the device once no descriptor is
    /// open any more (a guest given a copy keeps it until it closes its own).
    pub fn delete(self) -> Result<(), TapError> {
        self.set_persist(false)?;
        drop(self);
        Ok(())
    }

    /// Makes the device outlive (or not) its descriptors.
    pub fn set_persist(&self, persist: bool) -> Result<(), TapError> {
        ioctl_value(
            &self.queues[0],
            libc::TUNSETPERSIST,
            libc::c_ulong::from(persist),
        )
        .map_err(|source| self.ioctl_error("TUNSETPERSIST", source))
    }
}

/// The first name a template such as `macvtap%d` gives that is not in
/// `taken`, trying numbers `0..limit`; a name without `%d` is its own only
/// candidate.
pub fn first_free_name(template: &str, taken: &[String], limit: u32) -> Option<String> {
    if !template.contains("%d") {
        return (!taken.iter().any(|t| t == template)).then(|| template.to_string());
    }
    (0..limit)
        .map(|n| template.replacen("%d", &n.to_string(), 1))
        .find(|name| !taken.iter().any(|t| t == name))
}

/// How many numbers a macvtap name template may try (libvirt's
/// `MACVTAP_MAX`).
pub const MACVTAP_NAME_LIMIT: u32 = 8192;

/// A macvtap device made for a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacvtapPort {
    /// Its name.
    pub name: String,
    /// Its interface index (the `N` of `/dev/tapN`).
    pub index: u32,
    /// Its character device, when one was asked for.
    pub chardev: Option<PathBuf>,
}

/// Where a macvtap's character device lives and where sysfs tells its
/// major:minor (see [`macvtap_chardev_in`]).
#[derive(Debug, Clone, Copy)]
pub struct ChardevDirs<'a> {
    /// `/dev`, or a private directory standing in for it.
    pub dev_dir: &'a Path,
    /// `/sys/class/net` of the device's network namespace.
    pub sys_class_net: &'a Path,
}

/// Creates a macvtap for a port: on `spec.lower` in `spec.mode` with
/// `spec.mac`, named `spec.name` or, when that is a template like
/// `macvtap%d`, the first free name (retrying when another creator wins a
/// race for it). With `chardev`, also makes sure `/dev/tapN` exists
/// (created from sysfs when there is no udev). On failure nothing is left
/// behind.
pub fn create_macvtap_port(
    netlink: &dyn crate::netlink::NetlinkOps,
    spec: &crate::netlink::MacvtapSpec,
    chardev: Option<ChardevDirs<'_>>,
) -> Result<MacvtapPort, TapError> {
    let (name, index) = if spec.name.contains("%d") {
        let prefix = spec.name.split("%d").next().unwrap_or("").to_string();
        let mut taken: Vec<String> = netlink.links()?.into_iter().map(|l| l.name).collect();
        loop {
            let Some(name) = first_free_name(&spec.name, &taken, MACVTAP_NAME_LIMIT) else {
                return Err(TapError::NoFreeName { prefix });
            };
            let mut attempt = spec.clone();
            attempt.name = name.clone();
            match netlink.create_macvtap(&attempt) {
                Ok(index) => break (name, index),
                Err(e) if e.is_exists() => taken.push(name),
                Err(e) => return Err(e.into()),
            }
        }
    } else {
        (spec.name.clone(), netlink.create_macvtap(spec)?)
    };
    let chardev = match chardev {
        None => None,
        Some(dirs) => match macvtap_chardev_in(&name, index, dirs.dev_dir, dirs.sys_class_net) {
            Ok(path) => Some(path),
            Err(e) => {
                let _ = netlink.delete_link(&name);
                return Err(e);
            }
        },
    };
    Ok(MacvtapPort {
        name,
        index,
        chardev,
    })
}

/// Deletes a port's macvtap and, with `dev_dir`, the `/dev/tapN` node made
/// for it. A device already gone is fine.
pub fn delete_macvtap_port(
    netlink: &dyn crate::netlink::NetlinkOps,
    name: &str,
    dev_dir: Option<&Path>,
) -> Result<(), TapError> {
    let Some(link) = netlink.link(name)? else {
        return Ok(());
    };
    match netlink.delete_link(name) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(dir) = dev_dir {
        let node = dir.join(format!("tap{}", link.index));
        if let Ok(st) = nix::sys::stat::stat(&node) {
            if st.st_mode & libc::S_IFMT == libc::S_IFCHR {
                std::fs::remove_file(&node).map_err(|e| TapError::Chardev {
                    name: name.to_string(),
                    path: node.clone(),
                    detail: e.to_string(),
                })?;
            }
        }
    }
    Ok(())
}

/// The character device of a macvtap device: `DEV_DIR/tapINDEX`. Without
/// udev nobody creates it, so it is made here from the major:minor in
/// `/sys/class/net/NAME/macvtap/tapINDEX/dev` when missing.
pub fn macvtap_chardev(name: &str, index: u32, dev_dir: &Path) -> Result<PathBuf, TapError> {
    macvtap_chardev_in(name, index, dev_dir, Path::new("/sys/class/net"))
}

/// [`macvtap_chardev`] reading another sysfs `class/net` directory. sysfs
/// shows the devices of the network namespace it was mounted from, so a
/// process working in another namespace mounts its own.
pub fn macvtap_chardev_in(
    name: &str,
    index: u32,
    dev_dir: &Path,
    sys_class_net: &Path,
) -> Result<PathBuf, TapError> {
    let path = dev_dir.join(format!("tap{index}"));
    let sys = sys_class_net
        .join(name)
        .join(format!("macvtap/tap{index}/dev"));
    let err = |path: &Path, detail: String| TapError::Chardev {
        name: name.to_string(),
        path: path.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(&sys).map_err(|e| err(&sys, e.to_string()))?;
    let (major, minor) = text
        .trim()
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .ok_or_else(|| err(&sys, format!("unexpected contents '{}'", text.trim())))?;
    let want = nix::sys::stat::makedev(major, minor);
    match nix::sys::stat::stat(&path) {
        Ok(st) if st.st_rdev == want && (st.st_mode & libc::S_IFMT) == libc::S_IFCHR => {
            return Ok(path);
        }
        Ok(_) => {
            // A stale node from an earlier device with the same index.
            std::fs::remove_file(&path).map_err(|e| err(&path, e.to_string()))?;
        }
        Err(_) => {}
    }
    nix::sys::stat::mknod(
        &path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        want,
    )
    .map_err(|e| err(&path, e.to_string()))?;
    Ok(path)
}

/// Opens a macvtap character device for I/O: with `vnet_hdr`, frames carry
/// a virtio-net header; without, they are plain Ethernet frames. (The
/// kernel opens a macvtap with the header on, so it is set either way.)
pub fn open_macvtap(path: &Path, vnet_hdr: bool) -> Result<File, TapError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| TapError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let name = path.display().to_string();
    // SAFETY: ifreq is plain old data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    // SAFETY: TUNGETIFF fills a `struct ifreq`, which `req` is.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNGETIFF, &mut req) };
    if rc < 0 {
        return Err(TapError::Ioctl {
            op: "TUNGETIFF",
            name,
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: TUNGETIFF wrote the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let vnet = libc::IFF_VNET_HDR as libc::c_short;
    req.ifr_ifru.ifru_flags = if vnet_hdr {
        flags | vnet
    } else {
        flags & !vnet
    };
    // SAFETY: TUNSETIFF reads a `struct ifreq`, which `req` is.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if rc < 0 {
        return Err(TapError::Ioctl {
            op: "TUNSETIFF",
            name,
            source: io::Error::last_os_error(),
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_ioctl() {
        assert!(matches!(ifreq_for("", 0), Err(TapError::InvalidName(_))));
        assert!(matches!(ifreq_for("a/b", 0), Err(TapError::InvalidName(_))));
        assert!(matches!(
            ifreq_for(&"x".repeat(16), 0),
            Err(TapError::InvalidName(_))
        ));
        assert!(ifreq_for("vnet%d", libc::IFF_TAP).is_ok());
    }

    #[test]
    fn first_free_names() {
        let taken = vec!["macvtap0".to_string(), "macvtap2".to_string()];
        assert_eq!(
            first_free_name("macvtap%d", &taken, 10).as_deref(),
            Some("macvtap1")
        );
        assert_eq!(first_free_name("macvtap%d", &taken, 1), None);
        assert_eq!(first_free_name("macvtap0", &taken, 10), None);
        assert_eq!(first_free_name("mvt7", &taken, 10).as_deref(), Some("mvt7"));
    }

    #[test]
    fn macvtap_ports_take_the_first_free_name() {
        use crate::fake::FakeNetlink;
        use crate::netlink::{MacvlanMode, MacvtapSpec, NetlinkOps};
        let nl = FakeNetlink::new();
        nl.add_existing("eth0", None);
        nl.add_existing("macvtap0", Some("macvtap"));
        let spec = MacvtapSpec {
            name: "macvtap%d".into(),
            lower: "eth0".into(),
            mode: MacvlanMode::Vepa,
            mac: Some("52:54:00:01:02:03".parse().unwrap()),
        };
        let a = create_macvtap_port(&nl, &spec, None).unwrap();
        assert_eq!(a.name, "macvtap1");
        assert_eq!(a.chardev, None);
        let b = create_macvtap_port(&nl, &spec, None).unwrap();
        assert_eq!(b.name, "macvtap2");
        assert_eq!(nl.link("macvtap2").unwrap().unwrap().index, b.index);
        delete_macvtap_port(&nl, "macvtap1", None).unwrap();
        delete_macvtap_port(&nl, "macvtap1", None).unwrap();
        assert_eq!(
            create_macvtap_port(&nl, &spec, None).unwrap().name,
            "macvtap1"
        );
        // A lower device that does not exist fails without leftovers.
        let mut bad = spec.clone();
        bad.lower = "nope0".into();
        assert!(create_macvtap_port(&nl, &bad, None).is_err());
        // A fixed name that is taken is an error, not a search.
        let mut fixed = spec.clone();
        fixed.name = "macvtap0".into();
        let err = create_macvtap_port(&nl, &fixed, None).unwrap_err();
        assert!(
            matches!(&err, TapError::Netlink(e) if e.is_exists()),
            "{err}"
        );
    }

    #[test]
    fn chardev_sysfs_errors_name_the_device() {
        let dir = std::env::temp_dir().join(format!("virtnet-mvt-{}", std::process::id()));
        let sys = dir.join("sys");
        std::fs::create_dir_all(sys.join("mvt0/macvtap/tap9")).unwrap();
        std::fs::write(sys.join("mvt0/macvtap/tap9/dev"), "garbage\n").unwrap();
        let err = macvtap_chardev_in("mvt0", 9, &dir, &sys)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mvt0") && err.contains("garbage"), "{err}");
        let err = macvtap_chardev_in("nope0", 3, &dir, &sys)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope0"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
