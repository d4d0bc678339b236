//! The listening sockets: bound from the `bind` addresses, or taken over from an inherited
//! descriptor (`fd://N`), from systemd socket activation (`LISTEN_FDS`) or from the parent
//! arbiter during an upgrade (`FERROCORN_FD`).

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use ferrocorn_config::{BindAddress, Settings};
use ferrocorn_worker::Listener as WorkerListener;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    self, getsockname, getsockopt, setsockopt, sockopt, AddressFamily, SockFlag, SockType,
    SockaddrLike, SockaddrStorage, UnixAddr,
};
use nix::sys::stat::{umask, Mode};

use crate::error::ArbiterError;

/// The environment variable that carries the listening descriptors from an arbiter to the
/// binary it re-executes on SIGUSR2: a comma-separated list of descriptor numbers.
pub const FERROCORN_FD_ENV: &str = "FERROCORN_FD";

/// The environment variable that carries the metrics endpoint's listening descriptor
/// (`metrics_bind`) to the binary re-executed on SIGUSR2.
pub const FERROCORN_METRICS_FD_ENV: &str = "FERROCORN_METRICS_FD";

/// systemd passes activated sockets from this descriptor on (sd_listen_fds(3)).
const SD_LISTEN_FDS_START: RawFd = 3;

/// One listening socket owned by the arbiter.
#[derive(Debug)]
pub struct Listener {
    socket: Socket,
    /// The `bind` entry this socket came from, when it came from one.
    pub(crate) configured: Option<BindAddress>,
}

#[derive(Debug)]
enum Socket {
    Tcp(TcpListener),
    /// `path` is set when this process created the socket file, which it then removes.
    Unix {
        listener: UnixListener,
        path: Option<PathBuf>,
    },
}

impl Listener {
    /// A duplicate of the socket for a worker (the worker owns and closes its copy).
    pub(crate) fn for_worker(&self) -> io::Result<WorkerListener> {
        Ok(match &self.socket {
            Socket::Tcp(listener) => WorkerListener::Tcp(listener.try_clone()?),
            Socket::Unix { listener, .. } => WorkerListener::Unix(listener.try_clone()?),
        })
    }

    /// The raw descriptor, to hand over on re-exec.
    pub(crate) fn raw_fd(&self) -> RawFd {
        match &self.socket {
            Socket::Tcp(listener) => listener.as_raw_fd(),
            Socket::Unix { listener, .. } => listener.as_raw_fd(),
        }
    }

    /// Whether it is a Unix-domain socket.
    pub(crate) fn is_unix(&self) -> bool {
        matches!(self.socket, Socket::Unix { .. })
    }

    /// The Unix socket file this process created, if any.
    pub(crate) fn unix_path(&self) -> Option<&Path> {
        match &self.socket {
            Socket::Unix { path, .. } => path.as_deref(),
            Socket::Tcp(_) => None,
        }
    }

    /// After an upgrade: an inherited Unix socket whose path is one of the `bind` entries
    /// becomes ours to remove on exit, as if this process had bound it.
    fn claim_socket_file(&mut self, settings: &Settings) {
        let Socket::Unix { listener, path } = &mut self.socket else {
            return;
        };
        let Ok(local) = listener.local_addr() else {
            return;
        };
        let Some(bound) = local.as_pathname() else {
            return;
        };
        let configured = BindAddress::Unix(bound.to_path_buf());
        if settings.bind.contains(&configured) {
            *path = Some(bound.to_path_buf());
            self.configured = Some(configured);
        }
    }

    /// After an upgrade: the inherited metrics socket is `address`'s file, ours to remove.
    fn claim_metrics_socket_file(&mut self, address: &BindAddress) {
        if let (Socket::Unix { path, .. }, BindAddress::Unix(configured)) =
            (&mut self.socket, address)
        {
            *path = Some(configured.clone());
        }
    }

    /// Forgets the socket file so that dropping the listener leaves it in place (it was
    /// handed to another process that still listens on it).
    pub(crate) fn keep_socket_file(&mut self) {
        if let Socket::Unix { path, .. } = &mut self.socket {
            *path = None;
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match &self.socket {
            Socket::Tcp(listener) => listener.as_fd(),
            Socket::Unix { listener, .. } => listener.as_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(path) = self.unix_path() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Listener {
    /// As it is shown in `Listening at:`: `https://` for a TCP listener speaking TLS (as
    /// gunicorn shows it), else as `Display`.
    pub fn url(&self, tls: bool) -> String {
        let shown = self.to_string();
        match shown.strip_prefix("http://") {
            Some(rest) if tls => format!("https://{rest}"),
            _ => shown,
        }
    }
}

impl fmt::Display for Listener {
    /// gunicorn's wording: `http://127.0.0.1:8000`, `http://[::1]:8000`, `unix:/run/x.sock`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.socket {
            Socket::Tcp(listener) => match listener.local_addr() {
                Ok(addr) => write!(f, "http://{addr}"),
                Err(_) => write!(f, "http://?"),
            },
            Socket::Unix { listener, .. } => match listener.local_addr() {
                Ok(addr) => match addr.as_pathname() {
                    Some(path) => write!(f, "unix:{}", path.display()),
                    None => write!(f, "unix:(unnamed)"),
                },
                Err(_) => write!(f, "unix:?"),
            },
        }
    }
}

/// Where the listeners came from; the arbiter logs it and re-exec needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerOrigin {
    /// Bound here from the `bind` addresses.
    Bound,
    /// Taken over from systemd socket activation.
    Systemd,
    /// Inherited from the parent arbiter on upgrade (`FERROCORN_FD`).
    Upgrade,
}

/// Creates the listeners for `settings`: the upgrade descriptors when `FERROCORN_FD` is set,
/// else systemd's when `LISTEN_PID` names this process, else every `bind` address.
/// Clears the environment variables it consumed so that children do not see them.
///
/// Fails on the first address that cannot be bound, naming it; sockets already bound are
/// closed again (and their socket files removed).
pub fn open(settings: &Settings) -> Result<(Vec<Listener>, ListenerOrigin), ArbiterError> {
    if let Some(fds) = std::env::var_os(FERROCORN_FD_ENV) {
        std::env::remove_var(FERROCORN_FD_ENV);
        let fds = fds.to_string_lossy().into_owned();
        let mut inherited = Vec::new();
        for part in fds.split(',').filter(|part| !part.is_empty()) {
            let fd: RawFd = part.trim().parse().map_err(|_| ArbiterError::InheritedFd {
                fd: -1,
                reason: format!("{FERROCORN_FD_ENV}={fds:?} is not a list of descriptors"),
            })?;
            inherited.push(BindAddress::Fd(fd));
        }
        let mut vetted = vet_descriptors(&inherited, &[])?;
        let mut listeners = Vec::new();
        for address in &inherited {
            let mut listener = adopt(address, None, &mut vetted)?;
            listener.claim_socket_file(settings);
            listeners.push(listener);
        }
        return Ok((listeners, ListenerOrigin::Upgrade));
    }
    if let Some(count) = systemd_fds() {
        let activated: Vec<BindAddress> = (SD_LISTEN_FDS_START..SD_LISTEN_FDS_START + count)
            .map(BindAddress::Fd)
            .collect();
        let mut vetted = vet_descriptors(&activated, &[])?;
        let mut listeners = Vec::new();
        for address in &activated {
            listeners.push(adopt(address, None, &mut vetted)?);
        }
        return Ok((listeners, ListenerOrigin::Systemd));
    }
    let mut vetted = vet_descriptors(&settings.bind, &[])?;
    let mut listeners = Vec::new();
    for address in &settings.bind {
        listeners.push(bind(address, settings, &mut vetted)?);
    }
    Ok((listeners, ListenerOrigin::Bound))
}

/// The metrics endpoint's listener (`metrics_bind`): inherited from the previous arbiter
/// through `FERROCORN_METRICS_FD` on upgrade, else bound (or adopted, for `fd://N`) like a
/// `bind` entry. `None` when `metrics_bind` is not set. Clears the variable it consumed.
pub(crate) fn open_metrics(
    settings: &Settings,
    listeners: &[Listener],
) -> Result<Option<Listener>, ArbiterError> {
    let inherited = std::env::var_os(FERROCORN_METRICS_FD_ENV);
    std::env::remove_var(FERROCORN_METRICS_FD_ENV);
    let Some(address) = &settings.metrics_bind else {
        return Ok(None);
    };
    if let Some(fd) = inherited.and_then(|fd| fd.to_str()?.trim().parse::<RawFd>().ok()) {
        let inherited = BindAddress::Fd(fd);
        let mut vetted = vet_descriptors(std::slice::from_ref(&inherited), listeners)?;
        let mut listener = adopt(&inherited, Some(address.clone()), &mut vetted)?;
        listener.claim_metrics_socket_file(address);
        return Ok(Some(listener));
    }
    let mut vetted = vet_descriptors(std::slice::from_ref(address), listeners)?;
    bind(address, settings, &mut vetted).map(Some)
}

/// Descriptors [`vet_descriptors`] checked: each an open listening stream socket, owned by
/// no listener of this process, listed once. [`bind`] takes each out as it adopts it, so
/// none can be adopted twice: the invariant `OwnedFd::from_raw_fd` needs.
#[derive(Debug, Default)]
pub(crate) struct Vetted {
    fds: Vec<RawFd>,
}

/// Checks the `fd://N` entries of `fresh` (addresses about to be bound) before anything is
/// bound or adopted: each names an open listening stream socket, and none names a
/// descriptor named before it or held by one of `owned` (this process's listeners), so
/// that no descriptor gets two owners and a bad entry leaves every other descriptor as it
/// was.
pub(crate) fn vet_descriptors(
    fresh: &[BindAddress],
    owned: &[Listener],
) -> Result<Vetted, ArbiterError> {
    let mut vetted = Vetted::default();
    for (i, address) in fresh.iter().enumerate() {
        let BindAddress::Fd(fd) = address else {
            continue;
        };
        if let Some(listener) = owned.iter().find(|l| l.raw_fd() == *fd) {
            return Err(ArbiterError::SameSocket {
                address: address.to_string(),
                listener: listener.to_string(),
            });
        }
        if fresh[..i].contains(address) {
            return Err(ArbiterError::SameSocket {
                address: address.to_string(),
                listener: address.to_string(),
            });
        }
        probe_fd(*fd)?;
        vetted.fds.push(*fd);
    }
    Ok(vetted)
}

/// Binds one `bind` entry. Used at start and when a reload adds an address; an `fd://N`
/// entry is adopted only if `vetted` holds it (see [`vet_descriptors`]).
pub(crate) fn bind(
    address: &BindAddress,
    settings: &Settings,
    vetted: &mut Vetted,
) -> Result<Listener, ArbiterError> {
    let socket = match address {
        BindAddress::Tcp { host, port } => Socket::Tcp(bind_tcp(host, *port, settings)?),
        BindAddress::Unix(path) => bind_unix(path, settings)?,
        BindAddress::Fd(_) => return adopt(address, Some(address.clone()), vetted),
    };
    Ok(Listener {
        socket,
        configured: Some(address.clone()),
    })
}

/// `LISTEN_FDS` when `LISTEN_PID` is this process (sd_listen_fds(3)); the variables are
/// removed either way so workers and re-executed binaries do not take them for theirs.
fn systemd_fds() -> Option<RawFd> {
    let pid = std::env::var("LISTEN_PID").ok()?;
    let count = std::env::var("LISTEN_FDS").ok();
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    if pid.trim().parse::<u32>().ok()? != std::process::id() {
        return None;
    }
    count?.trim().parse::<RawFd>().ok().filter(|&n| n > 0)
}

fn bind_tcp(host: &str, port: u16, settings: &Settings) -> Result<TcpListener, ArbiterError> {
    let shown = BindAddress::Tcp {
        host: host.to_string(),
        port,
    }
    .to_string();
    let bind_error = |source: io::Error| ArbiterError::Bind {
        address: shown.clone(),
        source,
    };
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()
        .map_err(bind_error)?
        .next()
        .ok_or_else(|| bind_error(io::Error::other("the name resolves to no address")))?;
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| bind_error(e.into()))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| bind_error(e.into()))?;
    if settings.reuse_port {
        setsockopt(&fd, sockopt::ReusePort, &true).map_err(|e| bind_error(e.into()))?;
    }
    let sockaddr = SockaddrStorage::from(addr);
    socket::bind(fd.as_raw_fd(), &sockaddr).map_err(|e| bind_error(e.into()))?;
    listen(&fd, settings.backlog).map_err(bind_error)?;
    Ok(TcpListener::from(fd))
}

fn bind_unix(path: &Path, settings: &Settings) -> Result<Socket, ArbiterError> {
    let in_use = |reason: String| ArbiterError::UnixSocketInUse {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(in_use("another process is listening on it".to_string())),
            // Nobody listens: a socket file left behind by a process that died. Replace it.
            Err(_) => std::fs::remove_file(path).map_err(|e| in_use(e.to_string()))?,
        },
        Ok(_) => return Err(in_use("the path exists and is not a socket".to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(in_use(e.to_string())),
    }
    let bind_error = |source: io::Error| ArbiterError::Bind {
        address: format!("unix:{}", path.display()),
        source,
    };
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| bind_error(e.into()))?;
    let addr = UnixAddr::new(path).map_err(|e| bind_error(e.into()))?;
    // gunicorn applies `umask` while the socket file is created, so it sets the socket's
    // mode; the process keeps its own umask otherwise.
    let old_mask = umask(Mode::from_bits_truncate(settings.umask as _));
    let bound = socket::bind(fd.as_raw_fd(), &addr);
    umask(old_mask);
    bound.map_err(|e| bind_error(e.into()))?;
    listen(&fd, settings.backlog).map_err(bind_error)?;
    Ok(Socket::Unix {
        listener: UnixListener::from(fd),
        path: Some(path.to_path_buf()),
    })
}

/// `listen(2)` with the configured backlog; nix's `Backlog` refuses values above the C
/// library's SOMAXCONN, while the kernel clamps to `net.core.somaxconn` itself.
fn listen(fd: &impl AsFd, backlog: u32) -> io::Result<()> {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    // SAFETY: `fd` is a valid open socket borrowed for the duration of the call.
    let rc = unsafe { nix::libc::listen(fd.as_fd().as_raw_fd(), backlog) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The address family of `fd` after checking, without taking it, that it is an open
/// listening stream socket of a family ferrocorn serves (TCP or Unix).
fn probe_fd(fd: RawFd) -> Result<AddressFamily, ArbiterError> {
    let unusable = |reason: String| ArbiterError::InheritedFd { fd, reason };
    if fd < 0 {
        return Err(unusable("negative descriptor".to_string()));
    }
    // SAFETY: fcntl(F_GETFD) on an arbitrary number only reads the descriptor table; EBADF
    // tells us it is not open. The borrow ends with this function.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_GETFD).map_err(|e| unusable(e.to_string()))?;
    let accepting =
        getsockopt(&borrowed, sockopt::AcceptConn).map_err(|e| unusable(e.to_string()))?;
    if !accepting {
        return Err(unusable("the socket is not listening".to_string()));
    }
    let kind = getsockopt(&borrowed, sockopt::SockType).map_err(|e| unusable(e.to_string()))?;
    if kind != SockType::Stream {
        return Err(unusable("not a stream socket".to_string()));
    }
    let local: SockaddrStorage = getsockname(fd).map_err(|e| unusable(e.to_string()))?;
    match local.family() {
        Some(family @ (AddressFamily::Inet | AddressFamily::Inet6 | AddressFamily::Unix)) => {
            Ok(family)
        }
        other => Err(unusable(format!("unsupported address family {other:?}"))),
    }
}

/// Takes ownership of the inherited descriptor `address` names (`fd://N`), taking it out
/// of `vetted`, and marks it close-on-exec (re-exec clears the flag again on purpose).
/// Fails for a descriptor `vetted` does not hold.
fn adopt(
    address: &BindAddress,
    configured: Option<BindAddress>,
    vetted: &mut Vetted,
) -> Result<Listener, ArbiterError> {
    let BindAddress::Fd(fd) = *address else {
        return Err(ArbiterError::InheritedFd {
            fd: -1,
            reason: format!("{address} is not a descriptor"),
        });
    };
    let Some(index) = vetted.fds.iter().position(|&v| v == fd) else {
        return Err(ArbiterError::InheritedFd {
            fd,
            reason: "not checked, or already taken over".to_string(),
        });
    };
    vetted.fds.swap_remove(index);
    let family = probe_fd(fd)?;
    // SAFETY: `probe_fd` found the descriptor open; the borrow ends with this statement.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| {
        ArbiterError::InheritedFd {
            fd,
            reason: e.to_string(),
        }
    })?;
    // SAFETY: the descriptor is open (checked above) and handed to this process to own by
    // the contract of `fd://N`, LISTEN_FDS and FERROCORN_FD; `vetted` held it, so no
    // listener of this process owns it and it is taken over only this once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let socket = match family {
        AddressFamily::Unix => Socket::Unix {
            listener: UnixListener::from(owned),
            path: None,
        },
        _ => Socket::Tcp(TcpListener::from(owned)),
    };
    Ok(Listener { socket, configured })
}

/// Clears close-on-exec on every listener so a re-executed binary inherits them, and
/// returns the `FERROCORN_FD` value naming them.
pub(crate) fn prepare_inheritance(listeners: &[Listener]) -> io::Result<String> {
    let mut fds = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let fd = listener.raw_fd();
        // SAFETY: `fd` belongs to a listener owned by the caller for this call.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty()))?;
        fds.push(fd.to_string());
    }
    Ok(fds.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::default()
    }

    #[test]
    fn tcp_port_zero_gets_a_real_port() {
        let address = BindAddress::Tcp {
            host: "127.0.0.1".to_string(),
            port: 0,
        };
        let listener = bind(&address, &settings(), &mut Vetted::default()).expect("bind");
        let shown = listener.to_string();
        assert!(shown.starts_with("http://127.0.0.1:"), "{shown}");
        assert!(!shown.ends_with(":0"), "{shown}");
    }

    #[test]
    fn port_in_use_names_the_address() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let address = BindAddress::Tcp {
            host: "127.0.0.1".to_string(),
            port,
        };
        let error = bind(&address, &settings(), &mut Vetted::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!("cannot bind 127.0.0.1:{port}: address already in use")
        );
    }

    #[test]
    fn stale_unix_socket_is_replaced_live_one_refused() {
        // Binding a Unix socket sets the process's umask for a moment: in a child.
        ferrocorn_tests::in_child_process!(
            stale_unix_socket_is_replaced_live_one_refused,
            stale_socket_replaced_live_one_refused
        );
    }

    fn stale_socket_replaced_live_one_refused() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-arbiter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stale.sock");
        let _ = std::fs::remove_file(&path);
        // A socket file nobody listens on any more.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let address = BindAddress::Unix(path.clone());
        let live =
            bind(&address, &settings(), &mut Vetted::default()).expect("stale socket replaced");
        let error = bind(&address, &settings(), &mut Vetted::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("another process is listening"), "{error}");
        drop(live);
        assert!(
            !path.exists(),
            "the socket file is removed with its listener"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_regular_file_is_not_replaced() {
        // Binding a Unix socket may set the process's umask for a moment: in a child.
        ferrocorn_tests::in_child_process!(
            a_regular_file_is_not_replaced,
            regular_file_not_replaced
        );
    }

    fn regular_file_not_replaced() {
        let path = std::env::temp_dir().join(format!("ferrocorn-notsock-{}", std::process::id()));
        std::fs::write(&path, b"keep me").unwrap();
        let error = bind(
            &BindAddress::Unix(path.clone()),
            &settings(),
            &mut Vetted::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("not a socket"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
        std::fs::remove_file(&path).unwrap();
    }

    /// Bug: `open` adopted the `fd://N` entries one by one, so a bad entry after a good
    /// one closed the good one's descriptor on the way out; and the same descriptor named
    /// twice got two owners.
    #[test]
    fn bug_fd_entries_are_all_checked_before_any_is_adopted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.as_raw_fd();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let settings = Settings {
            bind: vec![BindAddress::Fd(good), BindAddress::Fd(file.as_raw_fd())],
            ..Settings::default()
        };
        let error = open(&settings).unwrap_err();
        assert!(
            matches!(error, ArbiterError::InheritedFd { fd, .. } if fd == file.as_raw_fd()),
            "{error}"
        );
        // SAFETY: only reads the descriptor table.
        let still_open = unsafe { nix::libc::fcntl(good, nix::libc::F_GETFD) } != -1;
        assert!(still_open, "the good descriptor was adopted and closed");

        let twice = Settings {
            bind: vec![BindAddress::Fd(good), BindAddress::Fd(good)],
            ..Settings::default()
        };
        let error = open(&twice).unwrap_err();
        assert!(error.is_config(), "{error}");
        assert_eq!(
            error.to_string(),
            format!("bind fd://{good} is given twice")
        );
        drop(listener);
    }

    /// A reload that adds `fd://N` where N is the descriptor of a listener the server
    /// already has is refused before anything is adopted.
    #[test]
    fn an_fd_entry_naming_an_owned_listener_is_refused() {
        let address = BindAddress::Tcp {
            host: "127.0.0.1".to_string(),
            port: 0,
        };
        let owned = bind(&address, &settings(), &mut Vetted::default()).unwrap();
        let fd = owned.raw_fd();
        let owned = [owned];
        let error = vet_descriptors(&[BindAddress::Fd(fd)], &owned).unwrap_err();
        assert!(error.is_config(), "{error}");
        assert_eq!(
            error.to_string(),
            format!(
                "bind fd://{fd} names the socket of listener {}, which is already bound",
                owned[0]
            )
        );
    }

    #[test]
    fn fd_address_adopts_a_listening_socket_once_and_refuses_others() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let expected = listener.local_addr().unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(listener);
        let address = BindAddress::Fd(fd);
        let mut vetted = vet_descriptors(std::slice::from_ref(&address), &[]).unwrap();
        let adopted = bind(&address, &settings(), &mut vetted).expect("adopt");
        assert_eq!(adopted.to_string(), format!("http://{expected}"));
        let again = bind(&address, &settings(), &mut vetted).unwrap_err();
        assert!(matches!(again, ArbiterError::InheritedFd { .. }), "{again}");

        let file = std::fs::File::open("/proc/self/status").unwrap();
        let error = vet_descriptors(&[BindAddress::Fd(file.as_raw_fd())], &[]).unwrap_err();
        assert!(matches!(error, ArbiterError::InheritedFd { .. }), "{error}");
    }
}
