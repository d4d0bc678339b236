//! Tests of the byte classes and of the target and host grammar (`syntax.rs`).

use super::*;

#[test]
fn targets() {
    let ok = |m: &[u8], t: &[u8]| check_target(m, t, false, false);
    assert_eq!(ok(b"GET", b"/a?b"), Ok(TargetForm::Origin));
    assert_eq!(ok(b"GET", b"///x"), Ok(TargetForm::Origin));
    assert_eq!(ok(b"OPTIONS", b"*"), Ok(TargetForm::Asterisk));
    assert!(ok(b"GET", b"*").is_err());
    assert_eq!(
        ok(b"GET", b"http://[::1]:8080/foo"),
        Ok(TargetForm::Absolute)
    );
    assert!(ok(b"GET", b"http://[::1/").is_err());
    assert!(ok(b"GET", b"http:///x").is_err());
    assert!(ok(b"PUT", b"s://]ufd/:").is_err());
    assert!(ok(b"GET", b"example.com:443").is_err());
    assert!(ok(b"GET", b"foo/bar").is_err());
    assert_eq!(
        ok(b"CONNECT", b"example.com:443"),
        Ok(TargetForm::Authority)
    );
    assert_eq!(ok(b"CONNECT", b"[::1]:443"), Ok(TargetForm::Authority));
    assert!(ok(b"CONNECT", b"/x").is_err());
    assert!(ok(b"CONNECT", b"example.com").is_err());
    assert!(ok(b"GET", b"/a#b").is_err());
    assert!(check_target(b"GET", b"/a#b", true, false).is_ok());
    assert!(ok(b"GET", b"http://u:p@h/").is_err());
    assert!(check_target(b"GET", b"http://u:p@h:1/", false, true).is_ok());
}

#[test]
fn hosts() {
    assert!(check_host(b"").is_ok());
    assert!(check_host(b"0.0.0.0=5000").is_ok());
    assert!(check_host(b"example.com:8080").is_ok());
    assert!(check_host(b"[::1]:8080").is_ok());
    assert!(check_host(b"a%41b").is_ok());
    assert!(check_host(b"a%4").is_err());
    assert!(check_host(b"a b").is_err());
    assert!(check_host(b"a:b").is_err());
    assert!(check_host(b"u@h").is_err());
}

#[test]
fn host_fast_check_agrees_with_the_full_grammar() {
    // Every value of up to 5 bytes over an alphabet of each byte class the two checks
    // treat differently: the fast check may only say yes where the full one does, and
    // `check_host` must answer as the full check alone.
    let alphabet = b"a1.:%[]_@v \x80";
    let mut value = Vec::new();
    let mut checked = 0;
    for len in 0..=5u32 {
        for mut code in 0..alphabet.len().pow(len) {
            value.clear();
            for _ in 0..len {
                value.push(alphabet[code % alphabet.len()]);
                code /= alphabet.len();
            }
            let full = split_host_port(&value).is_ok();
            assert!(!is_plain_host(&value) || full, "{value:?}");
            assert_eq!(check_host(&value).is_ok(), full, "{value:?}");
            checked += 1;
        }
    }
    assert!(checked > 200_000, "{checked}");
    // The block test of `check_host_block`: every byte value at the start, middle and end
    // of names of each length it takes, inside a buffer as in a head.
    for len in 1..=16 {
        for at in [0, len / 2, len - 1] {
            for byte in 0..=255u8 {
                let mut buf: Vec<u8> = (0..len).map(|i| b"aZ9.-"[i % 5]).collect();
                buf[at] = byte;
                let full = split_host_port(&buf).is_ok();
                buf.extend_from_slice(b"\r\nX: 0123456789abcdef\r\n\r\n");
                let shown = String::from_utf8_lossy(&buf[..len]);
                assert_eq!(check_host_block(&buf, 0, len).is_ok(), full, "{shown:?}");
            }
        }
    }
    // Names with a port: `:` at each place, then digits or one other byte, up to the
    // block's 16 bytes (`:` and digits are what the block test adds for names).
    for len in 1..=16 {
        for colon in 0..len {
            for tail in [b'8', b'a', b':', b'.', b'%', b' ', b'\t', 0x80] {
                for tail_at in (colon + 1..len).chain([len]) {
                    let mut buf: Vec<u8> = (0..len).map(|i| b"aZ9.-"[i % 5]).collect();
                    buf[colon] = b':';
                    for b in &mut buf[colon + 1..len] {
                        *b = b'0' + (*b % 10);
                    }
                    if tail_at < len {
                        buf[tail_at] = tail;
                    }
                    let full = split_host_port(&buf).is_ok();
                    buf.extend_from_slice(b"\r\nX: 0123456789abcdef\r\n\r\n");
                    let shown = String::from_utf8_lossy(&buf[..len]);
                    assert_eq!(check_host_block(&buf, 0, len).is_ok(), full, "{shown:?}");
                }
            }
        }
    }
    // Longer common shapes.
    for (host, ok) in [
        (&b"www.example.com"[..], true),
        (b"127.0.0.1:8000", true),
        (b"example.com:", true),
        (b"[::1]:8000", true),
        (b"a%41b.example", true),
        (b"example.com:80a", false),
        (b"exa mple.com", false),
    ] {
        assert_eq!(check_host(host).is_ok(), ok, "{host:?}");
        assert_eq!(split_host_port(host).is_ok(), ok, "{host:?}");
    }
}

/// A buffer of `len` bytes, none of them `\r`, `_`, `#` or a stop byte of a target.
fn plain_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| b"aZ9-~"[i % 5]).collect()
}

#[test]
fn block_searches_agree_with_plain_searches() {
    // Every name position and length in buffers around the 16-byte block size, with `_`
    // and CR at, just inside and just outside the name's edges.
    for buf_len in [3, 10, 15, 16, 17, 20, 31, 32, 33, 48, 70] {
        for start in 2..buf_len {
            for len in 1..=buf_len - start {
                for marks in [None, Some(start - 2), Some(start - 1), Some(start)]
                    .into_iter()
                    .chain([Some(start + len - 1), Some(start + len)])
                {
                    for mark in [b'_', b'\r'] {
                        let mut buf = plain_bytes(buf_len);
                        if let Some(at) = marks.filter(|&at| at < buf_len) {
                            buf[at] = mark;
                        }
                        let name = &buf[start..start + len];
                        let has = name.contains(&b'_');
                        let shown = String::from_utf8_lossy(&buf);
                        assert_eq!(
                            contains_byte(b'_', &buf, start, len),
                            has,
                            "{shown:?} {start} {len}"
                        );
                        assert_eq!(
                            name_has_underscore(&buf, start, len),
                            has,
                            "{shown:?} {start} {len}"
                        );
                        assert_eq!(
                            check_line_start(&buf, start, len),
                            (buf[start - 2] == b'\r', has),
                            "{shown:?} {start} {len}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn scan_target_agrees_with_a_plain_scan() {
    let plain = |buf: &[u8], start: usize| {
        let end = start + buf[start..].iter().position(|&b| !is_target_byte(b))?;
        Some((end, buf[start..end].contains(&b'#')))
    };
    for buf_len in 1..70usize {
        for start in 0..buf_len {
            for stop_at in (start..buf_len).step_by(3).chain([buf_len]) {
                for hash_at in [None, Some(start), Some(stop_at.saturating_sub(1))] {
                    for stop in [b' ', b'\r', 0x7f, 0, b'\t'] {
                        let mut buf = plain_bytes(buf_len);
                        buf[start..].iter_mut().step_by(7).for_each(|b| *b = 0x80);
                        if let Some(at) = hash_at.filter(|&at| at < buf_len) {
                            buf[at] = b'#';
                        }
                        if stop_at < buf_len {
                            buf[stop_at] = stop;
                        }
                        assert_eq!(
                            scan_target(&buf, start),
                            plain(&buf, start),
                            "{buf:?} {start}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn find_byte_agrees_with_a_plain_search() {
    // Every length across the word and memchr thresholds, the needle at every position,
    // with neighbours that differ from it by one bit or in the high bit.
    for len in 0..40 {
        for at in 0..=len {
            let mut s: Vec<u8> = (0..len)
                .map(|i| [b'^', 0xdf, b'a', b'\x7f'][i % 4])
                .collect();
            if at < len {
                s[at] = b'_';
                if at + 1 < len {
                    s[at + 1] = b'_';
                }
            }
            let want = s.iter().position(|&b| b == b'_');
            assert_eq!(find_byte(b'_', &s), want, "{len} {at}");
        }
    }
}

#[test]
fn trims() {
    assert_eq!(trim_ows(b" \t a b \t"), b"a b");
    assert_eq!(trim_ows(b"  "), b"");
}
