//! systemd readiness notification (sd_notify(3)): datagrams to `$NOTIFY_SOCKET`.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `READY=1`) to `$NOTIFY_SOCKET` when it is set; a path, or an
/// abstract name when it starts with `@`. Failures are logged, never fatal: the service
/// manager may have gone away.
pub fn sd_notify(state: &str) {
    if let Some(target) = std::env::var_os("NOTIFY_SOCKET") {
        notify_to(&target, state);
    }
}

/// Sends `state` to the socket `target` names (a path, or `@` and an abstract name); logs a
/// failure.
fn notify_to(target: &std::ffi::OsStr, state: &str) {
    let result = (|| -> std::io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        let bytes = target.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            socket.send_to(state.as_bytes(), target)?;
        }
        Ok(())
    })();
    if let Err(error) = result {
        tracing::warn!("cannot notify {}: {error}", target.to_string_lossy());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let path = std::env::temp_dir().join(format!("ferrocorn-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        // The socket is named directly: setting NOTIFY_SOCKET would change the environment
        // of every test running in this process.
        notify_to(path.as_os_str(), "READY=1\nMAINPID=42");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nMAINPID=42");
        std::fs::remove_file(&path).unwrap();
    }
}
