//! The inherited listening sockets, as `mio` sources.

use std::io;

use crate::app::Peer;
use crate::http1::Stream;
use crate::Listener;

pub(crate) enum MioListener {
    /// The listener and the address it is bound to, given to each request it accepts.
    Tcp(mio::net::TcpListener, Option<std::net::SocketAddr>),
    Unix(mio::net::UnixListener),
}

impl MioListener {
    pub(crate) fn from_std(l: Listener) -> io::Result<MioListener> {
        Ok(match l {
            Listener::Tcp(l) => {
                l.set_nonblocking(true)?;
                let local = l.local_addr().ok();
                MioListener::Tcp(mio::net::TcpListener::from_std(l), local)
            }
            Listener::Unix(l) => {
                l.set_nonblocking(true)?;
                MioListener::Unix(mio::net::UnixListener::from_std(l))
            }
        })
    }

    /// A new connection, its peer and the listener's own address (`None` for Unix sockets).
    pub(crate) fn accept(&self) -> io::Result<(Stream, Peer, Option<std::net::SocketAddr>)> {
        match self {
            MioListener::Tcp(l, local) => {
                let (s, addr) = l.accept()?;
                Ok((Stream::Tcp(s), Peer::Tcp(addr), *local))
            }
            MioListener::Unix(l) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), Peer::Unix, None))
            }
        }
    }

    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            MioListener::Tcp(l, _) => l,
            MioListener::Unix(l) => l,
        }
    }
}
