//! Byte classes and the grammar checks of request targets and hosts (RFC 9110, RFC 3986).

use crate::error::{Error, ErrorKind};

/// A 256-entry lookup table built at compile time from a predicate on a byte `b`.
macro_rules! byte_table {
    (|$b:ident| $pred:expr) => {{
        let mut table = [false; 256];
        let mut i = 0;
        while i < 256 {
            let $b = i as u8;
            table[i] = $pred;
            i += 1;
        }
        table
    }};
}

/// `tchar` (RFC 9110 §5.6.2).
static TCHAR: [bool; 256] = byte_table!(|b| {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
});

/// `field-vchar / SP / HTAB` (RFC 9110 §5.5): VCHAR, obs-text, space and tab; no controls.
static FIELD_VALUE: [bool; 256] = byte_table!(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));

/// Bytes allowed in a request target: visible ASCII and, as httparse allows, bytes >= 0x80.
static TARGET: [bool; 256] = byte_table!(|b| (b >= 0x21 && b < 0x7f) || b >= 0x80);

/// [`TARGET`] without `#`: the target bytes the fast path takes.
static TARGET_NO_HASH: [bool; 256] = {
    let mut table = TARGET;
    table[b'#' as usize] = false;
    table
};

/// `unreserved / sub-delims` (RFC 3986 §2.2, §2.3), the bytes of a reg-name besides `%`.
static REG_NAME: [bool; 256] = byte_table!(|b| {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
});

/// [`name_class`] bit: a tchar.
pub(crate) const NAME_TCHAR: u8 = 1;
/// [`name_class`] bit: `_` (also a tchar).
pub(crate) const NAME_UNDERSCORE: u8 = 2;

/// Field-name byte classes: 0 for bytes that are not tchar, else [`NAME_TCHAR`], plus
/// [`NAME_UNDERSCORE`] for `_`.
static NAME_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        if TCHAR[i] {
            table[i] = NAME_TCHAR;
        }
        i += 1;
    }
    table[b'_' as usize] = NAME_TCHAR | NAME_UNDERSCORE;
    table
};

/// Method byte classes: 0 for bytes that are not tchar, else 1, plus 2 for the tchars
/// gunicorn calls unconventional in a method (lower case and `#`).
static METHOD_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        if TCHAR[i] {
            table[i] = if (i as u8).is_ascii_lowercase() || i == b'#' as usize {
                3
            } else {
                1
            };
        }
        i += 1;
    }
    table
};

/// The length of the method token at the start of `s` and whether it has unconventional
/// bytes; `None` when `s` ends inside it.
#[inline(always)]
pub(crate) fn scan_method(s: &[u8]) -> Option<(usize, bool)> {
    let mut class = 0;
    for (i, &b) in s.iter().enumerate() {
        let c = METHOD_CLASS[b as usize];
        if c == 0 {
            return Some((i, class & 2 != 0));
        }
        class |= c;
    }
    None
}

#[inline]
pub(crate) fn name_class(b: u8) -> u8 {
    NAME_CLASS[b as usize]
}

#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

#[inline]
pub(crate) fn is_field_value_byte(b: u8) -> bool {
    FIELD_VALUE[b as usize]
}

#[inline]
pub(crate) fn is_target_byte(b: u8) -> bool {
    TARGET[b as usize]
}

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
const DELS: u64 = u64::from_le_bytes([0x7f; 8]);
const HASHES: u64 = u64::from_le_bytes([b'#'; 8]);

/// Finds the first byte of `s` that is below `below` or is DEL (or `#` when `hash`), skipping
/// HTAB when `tab_ok`: sixteen bytes at a time with SSE2 on x86_64, then eight at a time with
/// SWAR ("Bit Twiddling Hacks", hasless/haszero), then one at a time with `special`, which must
/// say the same of a byte. In a SWAR word the lowest flagged byte is always a true match (false
/// flags only appear above a true one), so `trailing_zeros` of the little-endian word finds it.
#[inline(always)]
fn find_below_or_del(
    buf: &[u8],
    start: usize,
    below: u8,
    tab_ok: bool,
    hash: bool,
    special: impl Fn(u8) -> bool,
) -> Option<usize> {
    let s = buf.get(start..)?;
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        while let Some(block) = s.get(i..i + 16) {
            let mask = sse2::find_in_block(block, below, tab_ok, hash);
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
        // Fewer than 16 bytes left: look at the buffer's last 16 bytes, ignoring those before
        // the tail (the buffer's earlier bytes may be read, never past its end).
        let tail = s.len() - i;
        if tail > 0 && buf.len() >= 16 {
            let block = &buf[buf.len() - 16..];
            let mask = sse2::find_in_block(block, below, tab_ok, hash) >> (16 - tail);
            return (mask != 0).then(|| i + mask.trailing_zeros() as usize);
        }
    }
    while let Some(word) = s.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_le_bytes(bytes);
        let low = x.wrapping_sub(ONES * u64::from(below)) & !x & HIGHS;
        let del = (x ^ DELS).wrapping_sub(ONES) & !(x ^ DELS) & HIGHS;
        let hashes = if hash {
            (x ^ HASHES).wrapping_sub(ONES) & !(x ^ HASHES) & HIGHS
        } else {
            0
        };
        let mask = low | del | hashes;
        if mask != 0 {
            let k = i + (mask.trailing_zeros() / 8) as usize;
            if special(s[k]) {
                return Some(k);
            }
            // A tab: look at the rest of this word byte by byte, then go on.
            if let Some(j) = s[k + 1..i + 8].iter().position(|&b| special(b)) {
                return Some(k + 1 + j);
            }
        }
        i += 8;
    }
    s[i..].iter().position(|&b| special(b)).map(|j| i + j)
}

/// The same search, sixteen bytes at a time with SSE2 (part of the x86_64 baseline, so no
/// runtime detection is needed).
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        _mm_andnot_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128, _mm_sub_epi8,
    };

    /// A bit mask (bit `i` for byte `i`) of the bytes in `block` (16 bytes) below `below`
    /// (except HTAB when `tab_ok`), DEL, or `#` when `hash`.
    #[inline(always)]
    pub(super) fn find_in_block(block: &[u8], below: u8, tab_ok: bool, hash: bool) -> u32 {
        assert!(block.len() >= 16);
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads 16 bytes from `block`,
        // which holds at least 16 (asserted above), and `loadu` has no alignment requirement.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast());
            // Unsigned x < below  <=>  min(x, below - 1) == x.
            let low = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8((below - 1) as i8)), x);
            let tabs = if tab_ok {
                _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\t' as i8))
            } else {
                _mm_setzero_si128()
            };
            let del = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f));
            let hashes = if hash {
                _mm_cmpeq_epi8(x, _mm_set1_epi8(b'#' as i8))
            } else {
                _mm_setzero_si128()
            };
            let hits = _mm_or_si128(_mm_or_si128(_mm_andnot_si128(tabs, low), del), hashes);
            _mm_movemask_epi8(hits) as u32
        }
    }

    /// For 16 bytes of a field name: a bit mask of the bytes that are not tchar
    /// (RFC 9110 §5.6.2) and one of the `_` bytes, bit `i` for byte `i`.
    #[inline(always)]
    pub(super) fn classify_name_block(block: &[u8]) -> (u32, u32) {
        assert!(block.len() >= 16);
        // SAFETY: as in `find_in_block`: SSE2 is baseline on x86_64, 16 readable bytes.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast());
            // Unsigned lo <= x <= hi  <=>  min(x - lo, hi - lo) == x - lo (wrapping).
            let within = |lo: u8, hi: u8| {
                let d = _mm_sub_epi8(x, _mm_set1_epi8(lo as i8));
                _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8((hi - lo) as i8)), d)
            };
            let is = |b: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(b as i8));
            // tchar = VCHAR except the delimiters "(),/:;<=>?@[\]{}
            let delimiters = _mm_or_si128(
                _mm_or_si128(
                    _mm_or_si128(within(b':', b'@'), within(b'[', b']')),
                    _mm_or_si128(within(b'(', b')'), is(b'"')),
                ),
                _mm_or_si128(
                    _mm_or_si128(is(b','), is(b'/')),
                    _mm_or_si128(is(b'{'), is(b'}')),
                ),
            );
            let tchar = _mm_andnot_si128(delimiters, within(0x21, 0x7e));
            let not_tchar = !(_mm_movemask_epi8(tchar) as u32) & 0xffff;
            let underscores = _mm_movemask_epi8(is(b'_')) as u32;
            (not_tchar, underscores)
        }
    }
}

/// The length of the field name at `buf[start..]` (its bytes are tchar, and the byte after it
/// is not) and whether it holds `_`; `None` when the buffer ends inside the name.
#[inline(always)]
pub(crate) fn scan_name(buf: &[u8], start: usize) -> Option<(usize, bool)> {
    let s = buf.get(start..)?;
    let mut i = 0;
    let mut underscore = false;
    #[cfg(target_arch = "x86_64")]
    {
        while let Some(block) = s.get(i..i + 16) {
            let (not_tchar, underscores) = sse2::classify_name_block(block);
            if not_tchar != 0 {
                let end = not_tchar.trailing_zeros();
                underscore |= underscores & ((1 << end) - 1) != 0;
                return Some((i + end as usize, underscore));
            }
            underscore |= underscores != 0;
            i += 16;
        }
        // The tail, as in `find_below_or_del`.
        let tail = s.len() - i;
        if tail > 0 && buf.len() >= 16 {
            let (not_tchar, underscores) = sse2::classify_name_block(&buf[buf.len() - 16..]);
            let (not_tchar, underscores) = (not_tchar >> (16 - tail), underscores >> (16 - tail));
            if not_tchar == 0 {
                return None;
            }
            let end = not_tchar.trailing_zeros();
            underscore |= underscores & ((1 << end) - 1) != 0;
            return Some((i + end as usize, underscore));
        }
    }
    loop {
        let c = name_class(*s.get(i)?);
        if c == 0 {
            return Some((i, underscore));
        }
        underscore |= c & NAME_UNDERSCORE != 0;
        i += 1;
    }
}

/// The length of the field value at `buf[start..]`: the index (from `start`) of the first byte
/// that is not [`is_field_value_byte`] (in a well-formed line, the CR that ends it).
#[inline(always)]
pub(crate) fn find_value_end(buf: &[u8], start: usize) -> Option<usize> {
    find_below_or_del(buf, start, 0x20, true, false, |b| !is_field_value_byte(b))
}

/// The length of the request target at `buf[start..]` as far as the fast path takes it: the
/// index (from `start`) of the first byte that is not [`is_target_byte`] or is `#` (in a
/// well-formed line without a fragment, the SP before the version).
#[inline]
pub(crate) fn find_target_end(buf: &[u8], start: usize) -> Option<usize> {
    find_below_or_del(buf, start, 0x21, false, true, |b| {
        !TARGET_NO_HASH[b as usize]
    })
}

/// Strips leading and trailing SP and HTAB (OWS, RFC 9110 §5.6.3).
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The form of a request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`.
    Origin,
    /// `scheme://authority/path?query`.
    Absolute,
    /// `host:port`, only with `CONNECT`.
    Authority,
    /// `*`, only with `OPTIONS`.
    Asterisk,
}

/// Checks a request target against the method (RFC 9112 §3.2). `target` holds only
/// [`is_target_byte`] bytes.
pub(crate) fn check_target(
    method: &[u8],
    target: &[u8],
    allow_fragment: bool,
    allow_userinfo: bool,
) -> Result<TargetForm, Error> {
    let bad = || Error::with_value(ErrorKind::InvalidTarget, target);
    if !allow_fragment && target.contains(&b'#') {
        return Err(bad());
    }
    // RFC 9112 §3.2.3: authority-form is only used for CONNECT, and CONNECT only uses it.
    if method == b"CONNECT" {
        return match check_authority(target, false, true) {
            Ok(()) => Ok(TargetForm::Authority),
            Err(()) => Err(bad()),
        };
    }
    match target.first() {
        Some(b'/') => Ok(TargetForm::Origin),
        // RFC 9112 §3.2.4: asterisk-form is only used for a server-wide OPTIONS request.
        Some(b'*') if target.len() == 1 => {
            if method == b"OPTIONS" {
                Ok(TargetForm::Asterisk)
            } else {
                Err(bad())
            }
        }
        _ => {
            // RFC 9112 §3.2.2: absolute-form. We require `scheme "://" authority` (an http(s)
            // URI shape); anything else here (relative paths, authority-form) is an error.
            let Some(colon) = target.iter().position(|&b| b == b':') else {
                return Err(bad());
            };
            let scheme = &target[..colon];
            let scheme_ok = matches!(scheme.first(), Some(b) if b.is_ascii_alphabetic())
                && scheme
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            let rest = &target[colon + 1..];
            if !scheme_ok || !rest.starts_with(b"//") {
                return Err(bad());
            }
            let rest = &rest[2..];
            let end = rest
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(rest.len());
            // RFC 9110 §4.2.1: an http URI with an empty host MUST be rejected.
            check_authority(&rest[..end], allow_userinfo, false).map_err(|()| bad())?;
            Ok(TargetForm::Absolute)
        }
    }
}

/// Checks `[ userinfo "@" ] host [ ":" port ]` (RFC 3986 §3.2) with a non-empty host.
fn check_authority(authority: &[u8], allow_userinfo: bool, require_port: bool) -> Result<(), ()> {
    let host_port = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => {
            // RFC 9110 §4.2.4: userinfo is deprecated in http(s) URIs.
            if !allow_userinfo {
                return Err(());
            }
            let userinfo = &authority[..at];
            if !userinfo
                .iter()
                .all(|&b| REG_NAME[b as usize] || b == b':' || b == b'%')
            {
                return Err(());
            }
            &authority[at + 1..]
        }
        None => authority,
    };
    let (host, port) = split_host_port(host_port)?;
    if host.is_empty() {
        return Err(());
    }
    match port {
        None if require_port => Err(()),
        Some(port) if port.is_empty() && require_port => Err(()),
        _ => Ok(()),
    }
}

/// Splits `host [":" port]`, checking the host (IP-literal, IPv4 or reg-name) and that the
/// port is digits.
fn split_host_port(s: &[u8]) -> Result<(&[u8], Option<&[u8]>), ()> {
    let (host, rest) = if s.first() == Some(&b'[') {
        let close = s.iter().position(|&b| b == b']').ok_or(())?;
        let literal = &s[1..close];
        let text = std::str::from_utf8(literal).map_err(|_| ())?;
        let is_future = matches!(literal.first(), Some(b'v' | b'V'));
        if !is_future && text.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(());
        }
        if is_future && !literal.iter().all(|&b| REG_NAME[b as usize] || b == b':') {
            return Err(());
        }
        (&s[..=close], &s[close + 1..])
    } else {
        let end = s.iter().position(|&b| b == b':').unwrap_or(s.len());
        let host = &s[..end];
        if !is_reg_name(host) {
            return Err(());
        }
        (host, &s[end..])
    };
    match rest {
        [] => Ok((host, None)),
        [b':', port @ ..] if port.iter().all(u8::is_ascii_digit) => Ok((host, Some(port))),
        _ => Err(()),
    }
}

/// `*( unreserved / pct-encoded / sub-delims )` (RFC 3986 §3.2.2).
fn is_reg_name(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'%' {
            match s.get(i + 1..i + 3) {
                Some([hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else if REG_NAME[b as usize] {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Checks a `Host` field value: `uri-host [ ":" port ]`, possibly empty (RFC 9112 §3.2).
pub(crate) fn check_host(value: &[u8]) -> Result<(), Error> {
    // The common case, a plain name: reg-name bytes only (no `%`, `:` or `[`).
    if value.iter().all(|&b| REG_NAME[b as usize]) {
        return Ok(());
    }
    split_host_port(value)
        .map(|_| ())
        .map_err(|()| Error::with_value(ErrorKind::InvalidHost, value))
}

#[cfg(test)]
mod tests {
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
    fn swar_scans_agree_with_the_tables() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..64 {
            for _ in 0..200 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly ordinary bytes, sometimes a tab, CR, DEL or high byte.
                        match state % 16 {
                            0 => b'\t',
                            1 => b'\r',
                            2 => 0x7f,
                            3 => 0x80 | (state >> 8) as u8,
                            4 => b' ',
                            5 => b'#',
                            _ => b'a' + (state >> 8) as u8 % 26,
                        }
                    })
                    .collect();
                // Behind a prefix too: the tail scan may look back into it.
                for prefix in [0, 5, 21] {
                    let mut buf = vec![0u8; prefix];
                    buf.extend_from_slice(&s);
                    assert_eq!(
                        find_value_end(&buf, prefix),
                        s.iter().position(|&b| !is_field_value_byte(b)),
                        "{s:?} after {prefix}"
                    );
                    assert_eq!(
                        find_target_end(&buf, prefix),
                        s.iter().position(|&b| !is_target_byte(b) || b == b'#'),
                        "{s:?} after {prefix}"
                    );
                }
            }
        }
    }

    #[test]
    fn name_scan_agrees_with_the_table() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..48 {
            for _ in 0..300 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        match state % 8 {
                            0 => (state >> 8) as u8,
                            1 => b'_',
                            _ => b"abcXYZ-019!#$%&'*+.^`|~"[(state >> 8) as usize % 23],
                        }
                    })
                    .collect();
                let want = s
                    .iter()
                    .position(|&b| !is_tchar(b))
                    .map(|end| (end, s[..end].contains(&b'_')));
                for prefix in [0, 5, 21] {
                    let mut buf = vec![b'a'; prefix];
                    buf.extend_from_slice(&s);
                    assert_eq!(scan_name(&buf, prefix), want, "{s:?} after {prefix}");
                }
            }
        }
        for b in 0..=255u8 {
            let mut s = [b; 18];
            s[17] = b':';
            let want = if is_tchar(b) { 17 } else { 0 };
            assert_eq!(scan_name(&s, 0), Some((want, want > 0 && b == b'_')), "{b}");
        }
    }

    #[test]
    fn trims() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
    }
}
