//! TLS on the listeners, with rustls (ring provider): [`TlsConfig`], built in the arbiter
//! from the settings (`config.rs`), and the per-connection session the worker's loop drives
//! without blocking (`stream.rs`), which `http1::Transport` puts under the protocol.

mod config;
mod stream;

pub use config::{TlsConfig, TlsError};
pub(crate) use stream::{is_plain_http, TlsStream};
