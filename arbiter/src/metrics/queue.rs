//! The accept queue of a listening socket and its limit (`ferrocorn_listen_queue` and
//! `ferrocorn_listen_queue_max`, what unicorn's raindrops and uWSGI show). TCP: `TCP_INFO`
//! on a listening socket gives the queue in `tcpi_unacked` and the backlog in
//! `tcpi_sacked`. Unix: the kernel's `sock_diag` netlink interface, asked for the socket's
//! inode with `UDIAG_SHOW_RQLEN`, gives the same two numbers.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::libc;

/// The connections waiting to be accepted, and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Queue {
    pub waiting: u64,
    pub max: u64,
}

/// The accept queue of the TCP listening socket `fd`.
pub(crate) fn tcp_queue(fd: BorrowedFd<'_>) -> io::Result<Queue> {
    // SAFETY: zeroed memory is a valid `tcp_info` (integers only).
    let mut info: libc::tcp_info = unsafe { zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes; the kernel writes at most that much.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(Queue {
        waiting: u64::from(info.tcpi_unacked),
        max: u64::from(info.tcpi_sacked),
    })
}

// From linux/sock_diag.h and linux/unix_diag.h.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_RQLEN: u16 = 4;
const TCP_LISTEN: u32 = 10;

#[repr(C)]
struct UnixDiagReq {
    family: u8,
    protocol: u8,
    pad: u16,
    states: u32,
    ino: u32,
    show: u32,
    cookie: [u32; 2],
}

#[repr(C)]
struct Request {
    header: libc::nlmsghdr,
    req: UnixDiagReq,
}

/// The accept queue of the Unix listening socket `fd`, asked of `sock_diag`.
pub(crate) fn unix_queue(fd: BorrowedFd<'_>) -> io::Result<Queue> {
    let inode = nix::sys::stat::fstat(fd).map_err(io::Error::from)?.st_ino;
    let inode = u32::try_from(inode).map_err(|_| io::Error::other("inode out of range"))?;
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let netlink = unsafe { OwnedFd::from_raw_fd(raw) };
    let request = Request {
        header: libc::nlmsghdr {
            nlmsg_len: size_of::<Request>() as u32,
            nlmsg_type: SOCK_DIAG_BY_FAMILY,
            nlmsg_flags: libc::NLM_F_REQUEST as u16,
            nlmsg_seq: 1,
            nlmsg_pid: 0,
        },
        req: UnixDiagReq {
            family: libc::AF_UNIX as u8,
            protocol: 0,
            pad: 0,
            states: 1 << TCP_LISTEN,
            ino: inode,
            show: UDIAG_SHOW_RQLEN,
            // INET_DIAG_NOCOOKIE: any socket with this inode.
            cookie: [u32::MAX, u32::MAX],
        },
    };
    // SAFETY: `request` is a plain value of `nlmsg_len` bytes; the kernel's address is the
    // zeroed sockaddr_nl of family AF_NETLINK.
    let sent = unsafe {
        let mut to: libc::sockaddr_nl = zeroed();
        to.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            netlink.as_raw_fd(),
            (&request as *const Request).cast(),
            size_of::<Request>(),
            0,
            (&to as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent == -1 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 1024];
    // SAFETY: `buf` is writable for its length. A bounded wait: the kernel answers at once.
    let received =
        unsafe { libc::recv(netlink.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    parse_answer(&buf[..received as usize])
}

/// Finds `UNIX_DIAG_RQLEN` in the kernel's answer: a `nlmsghdr`, a `unix_diag_msg` (16
/// bytes), then attributes (`rtattr`: u16 length, u16 type, payload, aligned to 4).
fn parse_answer(answer: &[u8]) -> io::Result<Queue> {
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_ne_bytes(answer.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(answer.get(at..at + 4)?.try_into().ok()?))
    };
    let header = size_of::<libc::nlmsghdr>();
    let kind = u16_at(4).ok_or_else(|| io::Error::other("short answer"))?;
    if kind == libc::NLMSG_ERROR as u16 {
        let errno = u32_at(header).map_or(0, |e| -(e as i32));
        return Err(io::Error::from_raw_os_error(errno));
    }
    let total = (u32_at(0).unwrap_or(0) as usize).min(answer.len());
    let mut at = header + 16;
    while at + 4 <= total {
        let (Some(len), Some(kind)) = (u16_at(at), u16_at(at + 2)) else {
            break;
        };
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        if kind == UNIX_DIAG_RQLEN {
            if let (Some(waiting), Some(max)) = (u32_at(at + 4), u32_at(at + 8)) {
                return Ok(Queue {
                    waiting: u64::from(waiting),
                    max: u64::from(max),
                });
            }
        }
        at += len.next_multiple_of(4);
    }
    Err(io::Error::other("no queue length in the kernel's answer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_tcp_listener_shows_its_waiting_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let before = tcp_queue(listener.as_fd()).unwrap();
        assert_eq!(before.waiting, 0);
        assert!(before.max > 0);
        let _a = std::net::TcpStream::connect(addr).unwrap();
        let _b = std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(tcp_queue(listener.as_fd()).unwrap().waiting, 2);
    }

    #[test]
    fn a_unix_listener_shows_its_waiting_connections() {
        let path = std::env::temp_dir().join(format!("ferrocorn-queue-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let before = unix_queue(listener.as_fd()).unwrap();
        assert_eq!(before.waiting, 0);
        assert!(before.max > 0);
        let _a = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let after = unix_queue(listener.as_fd()).unwrap();
        assert_eq!(after.waiting, 1);
        assert_eq!(after.max, before.max);
        let _ = std::fs::remove_file(&path);
    }
}
