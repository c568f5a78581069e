//! Passing open descriptors over a Unix socket (`SCM_RIGHTS`), the way
//! `qemu-bridge-helper` hands QEMU the TAP it made: one message carrying a
//! single zero byte and the descriptors as ancillary data. [`recv_fd`]
//! reads what QEMU's own `recv_fd` expects, so either side can be QEMU.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// The most descriptors the kernel passes in one message (`SCM_MAX_FD`).
/// The receive buffer has room for this many, so it is never truncated.
pub const MAX_FDS: usize = 253;

/// Sends `fds` over the connected Unix socket `socket`, with one zero byte
/// of payload.
pub fn send_fds(socket: BorrowedFd<'_>, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.is_empty() || fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot pass {} descriptors in one message", fds.len()),
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let payload = [0u8; 1];
    let iov = [IoSlice::new(&payload)];
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(1) => return Ok(()),
            Ok(n) => {
                return Err(io::Error::other(format!(
                    "short write passing descriptors ({n} bytes)"
                )));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends one descriptor (what `qemu-bridge-helper` does with its TAP).
pub fn send_fd(socket: impl AsFd, fd: impl AsFd) -> io::Result<()> {
    send_fds(socket.as_fd(), &[fd.as_fd()])
}

/// Receives one message from `socket` and returns the descriptors it
/// carried (close-on-exec). An orderly shutdown before any message is
/// `UnexpectedEof`.
pub fn recv_fds(socket: BorrowedFd<'_>) -> io::Result<Vec<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => break m,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    // The buffer holds SCM_MAX_FD descriptors, so the kernel never
    // truncates SCM_RIGHTS and every descriptor it installed is seen here.
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            for fd in raw {
                // SAFETY: the kernel installed `fd` in this process's table
                // for this message; nothing else refers to it, so taking
                // ownership (and closing it on drop) is sound.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if msg.bytes == 0 && fds.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "peer closed the socket without passing a descriptor",
        ));
    }
    Ok(fds)
}

/// Receives exactly one descriptor; a message with none or several is an
/// error (extra descriptors are closed).
pub fn recv_fd(socket: impl AsFd) -> io::Result<OwnedFd> {
    let mut fds = recv_fds(socket.as_fd())?;
    if fds.len() != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected one descriptor, received {}", fds.len()),
        ));
    }
    fds.pop()
        .ok_or_else(|| io::Error::other("descriptor vanished"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_crosses_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let path = std::env::temp_dir().join(format!("virtnet-fdpass-{}", std::process::id()));
        let mut file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file.write_all(b"through the socket").unwrap();
        send_fd(&a, &file).unwrap();
        let got = recv_fd(&b).unwrap();
        assert_ne!(got.as_raw_fd(), file.as_raw_fd());
        let mut copy = std::fs::File::from(got);
        copy.seek(SeekFrom::Start(0)).unwrap();
        let mut text = String::new();
        copy.read_to_string(&mut text).unwrap();
        assert_eq!(text, "through the socket");
        // Close-on-exec is set on what arrives.
        let flags = nix::fcntl::fcntl(&copy, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);

        // Several at once; recv_fd refuses a message with two.
        let (c, d) = UnixStream::pair().unwrap();
        send_fds(a.as_fd(), &[c.as_fd(), d.as_fd()]).unwrap();
        assert_eq!(recv_fds(b.as_fd()).unwrap().len(), 2);
        send_fds(a.as_fd(), &[c.as_fd(), d.as_fd()]).unwrap();
        assert_eq!(recv_fd(&b).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(send_fds(a.as_fd(), &[]).is_err());

        // A plain byte without descriptors, then a closed peer.
        (&a).write_all(&[0]).unwrap();
        assert_eq!(recv_fd(&b).unwrap_err().kind(), io::ErrorKind::InvalidData);
        drop(a);
        assert_eq!(
            recv_fd(&b).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
