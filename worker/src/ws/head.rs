//! The `101 Switching Protocols` head that accepts a WebSocket (RFC 6455 §4.2.2).

use super::Upgrade;
use crate::app::Response;
use crate::response::{fields_valid, write_head, Framing, Plan};
use crate::Version;

/// Appends the `101` head for `res` (its status line, `Server`, `Date` and the application's
/// fields) with the upgrade's fields. Returns false, writing nothing, when a field or the
/// subprotocol cannot be sent (not a token, CR/LF in a value, ...).
pub(super) fn write(out: &mut Vec<u8>, res: &Response, up: &Upgrade, date_line: &[u8]) -> bool {
    let protocol_ok = up
        .protocol
        .as_deref()
        .is_none_or(|p| ferrocorn_http_parser::is_token(p.as_bytes()));
    if !protocol_ok || !fields_valid(res) {
        return false;
    }
    let plan = Plan {
        framing: Framing::NoBody,
        send_body: false,
        keep_alive: true,
    };
    write_head(out, res, &plan, Version::Http11, date_line);
    // The head ends with its empty line: the upgrade's fields go before it.
    out.truncate(out.len() - 2);
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.extend_from_slice(up.accept.as_bytes());
    if let Some(p) = &up.protocol {
        out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    true
}
