//! Network namespaces as open files. A [`Netns`] keeps its namespace alive
//! for as long as it is open, without a holder process. Work inside it runs
//! on a short-lived helper thread that enters the namespace, so the calling
//! thread's namespace never changes.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::process::{Command, Output};

use nix::sched::{CloneFlags, setns, unshare};

/// An open network namespace.
#[derive(Debug)]
pub struct Netns {
    file: File,
}

impl Netns {
    /// Creates a new, empty network namespace (only `lo`, down). Needs
    /// CAP_SYS_ADMIN.
    pub fn new() -> io::Result<Netns> {
        std::thread::scope(|s| {
            s.spawn(|| -> io::Result<Netns> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                Ok(Netns {
                    file: File::open("/proc/thread-self/ns/net")?,
                })
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace helper thread panicked")))
        })
    }

    /// The namespace the calling thread is in.
    pub fn current() -> io::Result<Netns> {
        Ok(Netns {
            file: File::open("/proc/thread-self/ns/net")?,
        })
    }

    /// Opens a namespace file such as `/run/netns/NAME` or `/proc/PID/ns/net`.
    pub fn open(path: &Path) -> io::Result<Netns> {
        Ok(Netns {
            file: File::open(path)?,
        })
    }

    /// The namespace file, e.g. for [`crate::netlink::Netlink::open_in`].
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The raw descriptor, e.g. for [`crate::netlink::NetnsTarget::Fd`].
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Runs `f` on a helper thread inside this namespace and returns its
    /// result. Processes spawned by `f` start in this namespace too.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let fd = self.file.as_fd();
        std::thread::scope(|s| {
            s.spawn(|| -> io::Result<T> {
                setns(fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace helper thread panicked")))
        })
    }

    /// Runs a command to completion inside this namespace.
    pub fn output(&self, mut cmd: Command) -> io::Result<Output> {
        self.run(move || cmd.output())?
    }
}
