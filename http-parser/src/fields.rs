//! The field-section parser shared by the request head and the chunked trailer section
//! (RFC 9112 §5, §7.1.2): field lines up to the empty line, with limits checked in byte order.
//!
//! Verdicts do not depend on how the input arrives: each line is judged in order, its count and
//! size first (which can be decided from a prefix of the line), its content once it is complete.
//! So a prefix of the input is either `Partial` or fails exactly as the whole input would.

use crate::error::{Error, ErrorKind};
use crate::limits::{Limits, Policy, UnderscoreHeaders};
use crate::syntax::{is_field_value_byte, is_tchar, trim_ows};

/// Where a field value lives: in the parsed buffer, or (when obs-fold joined several lines)
/// in the parser's scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueLoc {
    Buf(usize, usize),
    Scratch(usize, usize),
}

/// One kept field: the name's range in the buffer and the value's location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldSpan {
    pub name: (usize, usize),
    pub value: ValueLoc,
}

impl FieldSpan {
    pub fn name<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.name.0..self.name.1]
    }

    pub fn value<'a>(&self, buf: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
        match self.value {
            ValueLoc::Buf(s, e) => &buf[s..e],
            ValueLoc::Scratch(s, e) => &scratch[s..e],
        }
    }
}

/// A field whose continuation lines (obs-fold) may still follow.
struct Pending {
    name: (usize, usize),
    value: ValueLoc,
    /// Bytes of the field so far, CRLFs included.
    size: usize,
    /// Dropped by [`UnderscoreHeaders::Drop`]: parsed and counted, not kept.
    dropped: bool,
}

/// What a field section is checked against.
#[derive(Clone, Copy)]
pub(crate) struct Rules<'r> {
    pub limits: &'r Limits,
    pub policy: &'r Policy,
    /// Rejects a field name (trailers use it for RFC 9110 §6.5.1).
    pub forbid: Option<fn(&[u8]) -> bool>,
}

/// Where a partial field section stopped: inside a field line starting at `line_start`, whose
/// field already holds `base` bytes from earlier (obs-fold) lines. Until a LF arrives, more
/// bytes can only make that line longer, so only its size needs checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resume {
    pub line_start: usize,
    pub base: usize,
}

/// The size a line will have with its CRLF, from what has arrived (`line` may lack the end).
/// A trailing CR is not counted, so the measure does not depend on the line terminator.
#[inline]
pub(crate) fn line_size(line: &[u8]) -> usize {
    match line {
        [rest @ .., b'\r'] => rest.len() + 2,
        _ => line.len() + 2,
    }
}

/// Parses field lines from `buf[pos..]` up to and including the empty line.
///
/// Returns `Ok(Some(end))` with `end` just past the empty line's CRLF, or `Ok(None)` when more
/// input is needed. Kept fields are appended to `out`; folded values are written to `scratch`.
/// When more input is needed inside a field line, `resume` says where that line starts.
pub(crate) fn parse_fields(
    buf: &[u8],
    mut pos: usize,
    rules: Rules<'_>,
    out: &mut Vec<FieldSpan>,
    scratch: &mut Vec<u8>,
    resume: &mut Option<Resume>,
) -> Result<Option<usize>, Error> {
    let Rules {
        limits,
        policy,
        forbid,
    } = rules;
    let max_fields = limits.fields_limit();
    let max_size = limits.field_size_limit();
    let mut count = 0usize;
    let mut pending: Option<Pending> = None;
    loop {
        let rest = &buf[pos..];
        let (line, complete) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        match line.first() {
            None if complete => {
                return Err(Error::with_value(ErrorKind::InvalidLineEnding, b"\n"));
            }
            None => return Ok(None),
            Some(b'\r') if line.len() == 1 => {
                if !complete {
                    return Ok(None);
                }
                if let Some(p) = pending.take() {
                    finish(p, out);
                }
                return Ok(Some(pos + 2));
            }
            Some(b' ' | b'\t') => {
                // A continuation line (obs-fold, RFC 9112 §5.2), or whitespace before the first
                // field line, which RFC 9112 §2.2 lets us reject.
                let Some(p) = pending.as_mut() else {
                    check_size(line_size(line), max_size)?;
                    return Err(Error::with_value(ErrorKind::ObsoleteFolding, line));
                };
                p.size += line_size(line);
                check_size(p.size, max_size)?;
                if !policy.permit_obsolete_folding {
                    return Err(Error::with_value(ErrorKind::ObsoleteFolding, line));
                }
                if !complete {
                    *resume = Some(Resume {
                        line_start: pos,
                        base: p.size - line_size(line),
                    });
                    return Ok(None);
                }
                let content = strip_cr(line)?;
                let part = trim_ows(content);
                check_value(part)?;
                if !p.dropped && !part.is_empty() {
                    p.value = append_fold(p.value, buf, part, scratch);
                }
            }
            Some(_) => {
                if let Some(p) = pending.take() {
                    finish(p, out);
                }
                count += 1;
                if count > max_fields {
                    return Err(Error::with_limit(
                        ErrorKind::TooManyFields,
                        count as u64,
                        max_fields as u64,
                    ));
                }
                let size = line_size(line);
                check_size(size, max_size)?;
                if !complete {
                    *resume = Some(Resume {
                        line_start: pos,
                        base: 0,
                    });
                    return Ok(None);
                }
                let content = strip_cr(line)?;
                pending = Some(field_line(content, pos, size, policy, forbid)?);
            }
        }
        pos += line.len() + 1;
    }
}

/// The field line `content` (without its CRLF) starting at `buf[pos]`, `size` bytes with its
/// CRLF: its name and value checked, as the field it starts (obs-fold lines may extend it).
fn field_line(
    content: &[u8],
    pos: usize,
    size: usize,
    policy: &Policy,
    forbid: Option<fn(&[u8]) -> bool>,
) -> Result<Pending, Error> {
    let (name_end, value_start) = split_name(content, policy.strip_header_spaces)?;
    let name = &content[..name_end];
    if let Some(forbid) = forbid {
        if forbid(name) {
            return Err(Error::with_value(ErrorKind::ForbiddenTrailer, name));
        }
    }
    let dropped = if name.contains(&b'_') {
        match policy.header_map {
            UnderscoreHeaders::Drop => true,
            UnderscoreHeaders::Refuse => {
                return Err(Error::with_value(ErrorKind::InvalidHeaderName, name));
            }
            UnderscoreHeaders::Keep => false,
        }
    } else {
        false
    };
    let raw_value = &content[value_start..];
    let value = trim_ows(raw_value);
    check_value(value)?;
    let value_pos = pos + value_start + offset_in(raw_value, value);
    Ok(Pending {
        name: (pos, pos + name_end),
        value: ValueLoc::Buf(value_pos, value_pos + value.len()),
        size,
        dropped,
    })
}

fn finish(p: Pending, out: &mut Vec<FieldSpan>) {
    if !p.dropped {
        out.push(FieldSpan {
            name: p.name,
            value: p.value,
        });
    }
}

#[inline]
fn check_size(size: usize, max: usize) -> Result<(), Error> {
    if size > max {
        return Err(Error::with_limit(
            ErrorKind::FieldTooLarge,
            size as u64,
            max as u64,
        ));
    }
    Ok(())
}

/// The content of a complete line, which must end in CR (RFC 9112 §2.2: no bare LF).
#[inline]
fn strip_cr(line: &[u8]) -> Result<&[u8], Error> {
    match line {
        [content @ .., b'\r'] => Ok(content),
        _ => Err(Error::with_value(ErrorKind::InvalidLineEnding, line)),
    }
}

/// Finds the end of the field name and the start of the value in a field line.
#[inline]
fn split_name(content: &[u8], strip_spaces: bool) -> Result<(usize, usize), Error> {
    let bad = || Error::with_value(ErrorKind::InvalidHeaderName, content);
    let name_end = content.iter().position(|&b| !is_tchar(b)).ok_or_else(bad)?;
    if name_end == 0 {
        return Err(bad());
    }
    let mut i = name_end;
    // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon; a server
    // MUST reject it with 400. gunicorn's `strip_header_spaces` strips it instead.
    if strip_spaces {
        while matches!(content.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
    }
    match content.get(i) {
        Some(b':') => Ok((name_end, i + 1)),
        _ => Err(bad()),
    }
}

/// Checks that a (trimmed) field value holds no control bytes (RFC 9110 §5.5).
#[inline]
fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.iter().all(|&b| is_field_value_byte(b)) {
        Ok(())
    } else {
        Err(Error::with_value(ErrorKind::InvalidHeaderValue, value))
    }
}

/// The offset of `inner` within `outer`, where `inner` is a subslice of `outer`.
#[inline]
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

/// Joins a continuation line's content to a value with one space (RFC 9112 §5.2: a recipient
/// may replace each obs-fold with SP; runs of whitespace around the fold collapse to one, as in
/// gunicorn).
fn append_fold(value: ValueLoc, buf: &[u8], part: &[u8], scratch: &mut Vec<u8>) -> ValueLoc {
    let start = match value {
        ValueLoc::Scratch(s, e) if e == scratch.len() => s,
        ValueLoc::Scratch(s, e) => {
            let start = scratch.len();
            scratch.extend_from_within(s..e);
            start
        }
        ValueLoc::Buf(s, e) => {
            let start = scratch.len();
            scratch.extend_from_slice(&buf[s..e]);
            start
        }
    };
    if scratch.len() > start {
        scratch.push(b' ');
    }
    scratch.extend_from_slice(part);
    ValueLoc::Scratch(start, scratch.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8], policy: &Policy) -> Result<Option<Vec<(String, String)>>, Error> {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        let rules = Rules {
            limits: &Limits::default(),
            policy,
            forbid: None,
        };
        let end = parse_fields(input, 0, rules, &mut out, &mut scratch, &mut None)?;
        Ok(end.map(|end| {
            assert_eq!(end, input.len());
            out.iter()
                .map(|f| {
                    (
                        String::from_utf8_lossy(f.name(input)).into_owned(),
                        String::from_utf8_lossy(f.value(input, &scratch)).into_owned(),
                    )
                })
                .collect()
        }))
    }

    #[test]
    fn plain_fields() {
        let got = parse(b"A: 1\r\nB:\t two \t\r\nC:\r\n\r\n", &Policy::default()).unwrap();
        let want = [("A", "1"), ("B", "two"), ("C", "")];
        let want: Vec<_> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, Some(want));
    }

    #[test]
    fn folding_joins_with_one_space() {
        let lenient = Policy {
            permit_obsolete_folding: true,
            ..Policy::default()
        };
        let got = parse(
            b"Long: one  \r\n   two\r\n\t three\r\nX: y\r\n\r\n",
            &lenient,
        )
        .unwrap();
        assert_eq!(
            got.unwrap(),
            vec![
                ("Long".to_string(), "one two three".to_string()),
                ("X".to_string(), "y".to_string())
            ]
        );
        let err = parse(b"Long: one\r\n two\r\n\r\n", &Policy::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ObsoleteFolding);
    }

    #[test]
    fn rejects() {
        let strict = Policy::default();
        let kind = |input: &[u8]| parse(input, &strict).unwrap_err().kind();
        assert_eq!(kind(b"A : 1\r\n\r\n"), ErrorKind::InvalidHeaderName);
        assert_eq!(kind(b"A: 1\n\r\n"), ErrorKind::InvalidLineEnding);
        assert_eq!(kind(b"A: 1\r\n\n"), ErrorKind::InvalidLineEnding);
        assert_eq!(kind(b": 1\r\n\r\n"), ErrorKind::InvalidHeaderName);
        assert_eq!(kind(b"A\r\n\r\n"), ErrorKind::InvalidHeaderName);
        assert_eq!(kind(b"A: a\x00b\r\n\r\n"), ErrorKind::InvalidHeaderValue);
        assert_eq!(kind(b"A: a\rb\r\n\r\n"), ErrorKind::InvalidHeaderValue);
        assert_eq!(kind(b" A: 1\r\n\r\n"), ErrorKind::ObsoleteFolding);
        assert_eq!(parse(b"A: 1\r\n", &strict).unwrap(), None);
        assert_eq!(parse(b"A: 1\r\n\r", &strict).unwrap(), None);
    }
}
