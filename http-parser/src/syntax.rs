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

/// Bytes allowed in a request target: visible ASCII (RFC 3986 §2: anything else is
/// percent-encoded). Bytes >= 0x80 only under [`crate::Policy::allow_non_ascii_target`], see
/// [`is_target_byte_under`].
static TARGET: [bool; 256] = byte_table!(|b| b >= 0x21 && b < 0x7f);

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

#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// Whether `s` is a `token` (RFC 9110 §5.6.2): one or more `tchar`, the syntax of a method and
/// of a field name. Useful to check the field names a server is about to send.
///
/// ```
/// assert!(ferrocorn_http_parser::is_token(b"Content-Type"));
/// assert!(!ferrocorn_http_parser::is_token(b"Bad Name"));
/// assert!(!ferrocorn_http_parser::is_token(b""));
/// ```
pub fn is_token(s: &[u8]) -> bool {
    // No early exit: the loop stays branch-free and short names cost a few instructions.
    !s.is_empty() && s.iter().fold(true, |ok, &b| ok & TCHAR[usize::from(b)])
}

#[inline]
pub(crate) fn is_field_value_byte(b: u8) -> bool {
    FIELD_VALUE[b as usize]
}

#[inline]
pub(crate) fn is_target_byte(b: u8) -> bool {
    TARGET[b as usize]
}

/// [`is_target_byte`], or a byte >= 0x80 when `allow_non_ascii` (the policy's
/// `allow_non_ascii_target`).
#[inline]
pub(crate) fn is_target_byte_under(b: u8, allow_non_ascii: bool) -> bool {
    TARGET[b as usize] || (allow_non_ascii && b >= 0x80)
}

/// The index of the first `needle` in `haystack`: eight bytes at a time for short input,
/// where memchr's SIMD setup costs more than it saves, else memchr.
#[inline]
pub(crate) fn find_byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    if haystack.len() >= 32 {
        return memchr::memchr(needle, haystack);
    }
    const LOW7: u64 = u64::from_le_bytes([0x7f; 8]);
    let pattern = u64::from_le_bytes([needle; 8]);
    let mut words = haystack.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        // Exact zero-byte test ("Bit Twiddling Hacks"): the high bit of each byte equal to
        // `needle`, with no carry between bytes.
        let x = u64::from_le_bytes(bytes) ^ pattern;
        let hits = !(((x & LOW7) + LOW7) | x | LOW7);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| at + i)
}

/// Whether `buf[start..start + len]` holds `needle`. Made for the short ranges of one head
/// (a field name, a target): 16 bytes at a time, each block read from `buf` whole, past the
/// range's end when `buf` has the bytes, else ending at `buf`'s end (the bits of bytes outside
/// the range are masked off), so a name costs one block test: fewer instructions than a
/// 128-bit SWAR test or one memchr over the whole field section, which also restarts at each
/// `_` in a value (`docs/BENCHMARKS.md`).
#[inline(always)]
pub(crate) fn contains_byte(needle: u8, buf: &[u8], start: usize, len: usize) -> bool {
    let end = start + len;
    let Some(last_block) = buf.len().checked_sub(16) else {
        return buf[start..end].contains(&needle);
    };
    let mut at = start;
    while at < end {
        let block_start = at.min(last_block);
        let Some(block) = buf[block_start..].first_chunk::<16>() else {
            return buf[at..end].contains(&needle);
        };
        let in_range = match end - at {
            lanes @ 0..16 => (1u32 << lanes) - 1,
            _ => 0xffff,
        };
        // Bit 0 for the byte at `at`.
        if (byte_mask16(block, needle) >> (at - block_start)) & in_range != 0 {
            return true;
        }
        at += 16;
    }
    false
}

/// Whether the field name `buf[start..start + len]` holds a `_`: [`contains_byte`], with one
/// block test and no loop for the usual name of at most 16 bytes followed by 16 bytes of `buf`.
#[inline(always)]
pub(crate) fn name_has_underscore(buf: &[u8], start: usize, len: usize) -> bool {
    if len <= 16 {
        if let Some(block) = buf.get(start..).and_then(|rest| rest.first_chunk::<16>()) {
            return byte_mask16(block, b'_') & ((1 << len) - 1) != 0;
        }
        // Near the end of `buf`: the last 16 bytes, which hold the name.
        if let Some(last) = buf.len().checked_sub(16) {
            let block = buf[last..].first_chunk::<16>().unwrap_or(&[0; 16]);
            return (byte_mask16(block, b'_') >> (start - last)) & ((1 << len) - 1) != 0;
        }
    }
    contains_byte(b'_', buf, start, len)
}

/// Checks the start of a field line whose name is `buf[start..start + len]`, `start >= 2` (the
/// line starts after the previous line's LF at `start - 1`): whether the byte before that LF
/// is CR (RFC 9112 §2.2: no bare LF), and whether the name holds a `_`. For a name of up to 14
/// bytes one 16-byte block from `start - 2` answers both.
#[inline(always)]
pub(crate) fn check_line_start(buf: &[u8], start: usize, len: usize) -> (bool, bool) {
    let block_start = start - 2;
    if len <= 14 {
        if let Some(block) = block16(buf, block_start) {
            let (crs, underscores) = byte_masks16(block, b'\r', b'_');
            return (crs & 1 != 0, underscores & NAME_BITS[len] != 0);
        }
        // Near the end of `buf` (a short last field line): its last 16 bytes hold them.
        if let Some(last) = buf.len().checked_sub(16) {
            if let Some(block) = block16(buf, last) {
                let (crs, underscores) = byte_masks16(block, b'\r', b'_');
                let shift = block_start - last;
                return (
                    (crs >> shift) & 1 != 0,
                    (underscores >> shift) & NAME_BITS[len] != 0,
                );
            }
        }
    } else if len <= 30 {
        // Two blocks: CR and the first 14 bytes of the name, then up to 16 more.
        if let (Some(first), Some(second)) = (block16(buf, block_start), block16(buf, start + 14)) {
            let (crs, underscores) = byte_masks16(first, b'\r', b'_');
            let rest = byte_mask16(second, b'_') & ((1 << (len - 14)) - 1);
            return (crs & 1 != 0, underscores & NAME_BITS[14] != 0 || rest != 0);
        }
    }
    (
        buf[block_start] == b'\r',
        name_has_underscore(buf, start, len),
    )
}

/// The 16 bytes of `buf` from `at`, if it has them.
#[inline(always)]
fn block16(buf: &[u8], at: usize) -> Option<&[u8; 16]> {
    buf.get(at..at.checked_add(16)?)?.try_into().ok()
}

/// For [`check_line_start`]: the bits of a name of `len` bytes in a block that starts two bytes
/// before it.
const NAME_BITS: [u32; 15] = {
    let mut bits = [0; 15];
    let mut len = 0;
    while len < 15 {
        bits[len] = ((1 << len) - 1) << 2;
        len += 1;
    }
    bits
};

/// Scans a request target from `buf[start]`: returns the index of the first byte that cannot
/// be in a target (not [`is_target_byte`]: a control byte, SP, DEL or a byte >= 0x80), and
/// whether a `#` comes before it; `None` when `buf` ends first. 16 bytes at a time.
#[inline]
pub(crate) fn scan_target(buf: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut at = start;
    let mut hash = false;
    while let Some(block) = buf.get(at..).and_then(|rest| rest.first_chunk::<16>()) {
        let (stops, hashes) = target_masks16(block);
        if stops != 0 {
            let stop = stops.trailing_zeros();
            hash |= hashes & ((1 << stop) - 1) != 0;
            return Some((at + stop as usize, hash));
        }
        hash |= hashes != 0;
        at += 16;
    }
    for (i, &b) in buf.get(at..)?.iter().enumerate() {
        if !is_target_byte(b) {
            return Some((at + i, hash));
        }
        hash |= b == b'#';
    }
    None
}

/// For [`scan_target`]: bit `i` of the first mask set where `block[i]` is not a target byte,
/// of the second where it is `#`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn target_masks16(block: &[u8; 16]) -> (u32, u32) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so these instructions always exist; the
    // unaligned load reads exactly the 16 bytes `block` borrows.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast());
        // `min(b, 0x20) == b` is `b <= 0x20` (unsigned): the controls and SP; then DEL.
        let low = _mm_cmpeq_epi8(_mm_min_epu8(bytes, _mm_set1_epi8(0x20)), bytes);
        let del = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(0x7f));
        let hash = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'#' as i8));
        // The bytes >= 0x80 are those whose sign bit is set: the movemask of the bytes.
        (
            (_mm_movemask_epi8(_mm_or_si128(low, del)) | _mm_movemask_epi8(bytes)) as u32,
            _mm_movemask_epi8(hash) as u32,
        )
    }
}

/// For [`scan_target`] (portable form).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn target_masks16(block: &[u8; 16]) -> (u32, u32) {
    block
        .iter()
        .enumerate()
        .fold((0, 0), |(stops, hashes), (i, &b)| {
            (
                stops | (u32::from(!is_target_byte(b)) << i),
                hashes | (u32::from(b == b'#') << i),
            )
        })
}

/// Bit `i` set where `block[i] == needle`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn byte_mask16(block: &[u8; 16], needle: u8) -> u32 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    // SAFETY: SSE2 is part of the x86_64 baseline, so these instructions always exist; the
    // unaligned load reads exactly the 16 bytes `block` borrows.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast());
        let equal = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(needle as i8));
        _mm_movemask_epi8(equal) as u32
    }
}

/// Bits `i` set where `block[i] == a`, and where `block[i] == b`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn byte_masks16(block: &[u8; 16], a: u8, b: u8) -> (u32, u32) {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    // SAFETY: as in `byte_mask16`.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast());
        (
            _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(a as i8))) as u32,
            _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b as i8))) as u32,
        )
    }
}

/// Bits `i` set where `block[i] == a`, and where `block[i] == b` (portable form).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn byte_masks16(block: &[u8; 16], a: u8, b: u8) -> (u32, u32) {
    (byte_mask16(block, a), byte_mask16(block, b))
}

/// Bit `i` set where `block[i] == needle` (portable form).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn byte_mask16(block: &[u8; 16], needle: u8) -> u32 {
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (i, &b)| mask | (u32::from(b == needle) << i))
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
/// [`is_target_byte_under`] the policy's bytes.
pub(crate) fn check_target(
    method: &[u8],
    target: &[u8],
    allow_fragment: bool,
    allow_userinfo: bool,
) -> Result<TargetForm, Error> {
    let bad = || Error::with_value(ErrorKind::InvalidTarget, target);
    if !allow_fragment && find_byte(b'#', target).is_some() {
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
#[inline(always)]
pub(crate) fn check_host(value: &[u8]) -> Result<(), Error> {
    if is_plain_host(value) {
        return Ok(());
    }
    check_host_fully(value)
}

/// [`check_host`] for the value at `buf[start..start + len]`, `len` of 1 to 16 with 16 bytes
/// of `buf` from `start`: a name of letters, digits, dots and hyphens, optionally followed by
/// `:` and a port of digits (most `Host` values, `127.0.0.1:8000` as much as
/// `www.example.com`), is recognized with one block test, a fraction of the cost of a check a
/// byte at a time (`docs/BENCHMARKS.md`). Anything else goes to [`check_host`].
#[inline(always)]
pub(crate) fn check_host_block(buf: &[u8], start: usize, len: usize) -> Result<(), Error> {
    if let Some(block) = block16(buf, start) {
        let in_value = 0xffff >> (16 - len.clamp(1, 16));
        let (name, colon, digit) = host_masks16(block);
        // The bytes that are not name bytes: none, or one `:` with only digits after it.
        let other = in_value & !name;
        let after = in_value & !(other | other.wrapping_sub(1));
        if other == 0 || (other & colon == other && other.is_power_of_two() && after & !digit == 0)
        {
            return Ok(());
        }
    }
    check_host_slowly(&buf[start..start + len])
}

/// [`check_host`], out of line: the shapes that [`check_host_block`] does not recognize.
#[inline(never)]
fn check_host_slowly(value: &[u8]) -> Result<(), Error> {
    check_host(value)
}

/// For [`check_host_block`]: bit `i` of the first mask set where `block[i]` is an ASCII
/// letter, digit, `.` or `-` (all reg-name bytes), of the second where it is `:`, of the third
/// where it is a digit.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn host_masks16(block: &[u8; 16]) -> (u32, u32, u32) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_min_epu8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: as in `byte_mask16`.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast());
        // `lo <= b <= hi` (unsigned): clamping `b` into the range leaves it unchanged.
        let within = |b: __m128i, lo: u8, hi: u8| {
            let low = _mm_set1_epi8(lo as i8);
            let high = _mm_set1_epi8(hi as i8);
            _mm_cmpeq_epi8(_mm_min_epu8(_mm_max_epu8(b, low), high), b)
        };
        // Setting the 0x20 bit maps exactly the upper-case letters onto the lower-case ones.
        let lower = _mm_or_si128(bytes, _mm_set1_epi8(0x20));
        let letter = within(lower, b'a', b'z');
        let digit = within(bytes, b'0', b'9');
        let dot = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'.' as i8));
        let hyphen = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'-' as i8));
        let colon = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b':' as i8));
        let any = _mm_or_si128(_mm_or_si128(letter, digit), _mm_or_si128(dot, hyphen));
        (
            _mm_movemask_epi8(any) as u32,
            _mm_movemask_epi8(colon) as u32,
            _mm_movemask_epi8(digit) as u32,
        )
    }
}

/// For [`check_host_block`] (portable form).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn host_masks16(block: &[u8; 16]) -> (u32, u32, u32) {
    block
        .iter()
        .enumerate()
        .fold((0, 0, 0), |(name, colon, digit), (i, &b)| {
            (
                name | (u32::from(b.is_ascii_alphanumeric() || b == b'.' || b == b'-') << i),
                colon | (u32::from(b == b':') << i),
                digit | (u32::from(b.is_ascii_digit()) << i),
            )
        })
}

/// The common `Host` shapes, one table lookup a byte: reg-name bytes other than `%` (so names
/// and IPv4 addresses), then optionally `:` and digits. Whatever this accepts the full check
/// ([`split_host_port`]) accepts; what it refuses (an IP literal, `%`, anything unusual) goes
/// to the full check, so the verdict is the full check's (a test compares the two).
#[inline(always)]
fn is_plain_host(value: &[u8]) -> bool {
    if value.iter().all(|&b| REG_NAME[b as usize]) {
        return true;
    }
    let Some(colon) = value.iter().position(|&b| !REG_NAME[b as usize]) else {
        return true;
    };
    value[colon] == b':' && value[colon + 1..].iter().all(u8::is_ascii_digit)
}

/// [`check_host`] for the shapes [`is_plain_host`] leaves: the whole RFC 3986 grammar.
#[inline(never)]
fn check_host_fully(value: &[u8]) -> Result<(), Error> {
    split_host_port(value)
        .map(|_| ())
        .map_err(|()| Error::with_value(ErrorKind::InvalidHost, value))
}

#[cfg(test)]
mod tests;
