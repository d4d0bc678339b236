//! The reference path: the head parsed line by line in byte order (field lines by
//! `fields.rs`), so that a prefix of the input is `Partial` or fails exactly as the whole
//! input would. It decides every verdict and every error status, and the [`Head`] of every
//! head the fast path declines.

use super::parsed::{FieldStore, Head, HeadState, MethodLoc, Version};
use super::request_line::{check_line_prefix, parse_request_line, LinePrefix, RequestLine};
use super::semantics::analyze_fields;
use super::{HeadParser, Pending, Progress, Status};
use crate::body::Framing;
use crate::error::{Error, ErrorKind};
use crate::fields::{line_size, parse_fields, Resume, Rules};
use crate::syntax::TargetForm;

/// At most this many empty lines may precede a request line (RFC 9112 §2.2 asks servers to
/// ignore "at least one"; a few cover clients that add CRLF after a body).
pub const MAX_LEADING_EMPTY_LINES: usize = 8;

impl HeadParser {
    /// The head by the reference path, for [`HeadParser::parse_resuming`] once the fast path
    /// declined.
    #[inline(never)]
    pub(super) fn parse_reference_head<'a>(
        &'a mut self,
        buf: &'a [u8],
        progress: &mut Progress,
    ) -> Result<Status<Head<'a>>, Error> {
        self.pending = None;
        self.fields.clear();
        self.scratch.clear();
        match self.parse_reference(buf)? {
            Some(parts) => self.finish(buf, parts),
            None => {
                progress.pending = self.pending.take();
                Ok(Status::Partial)
            }
        }
    }

    /// The reference path: parses the head line by line, judging each line in byte order
    /// (see `fields.rs`), so that a prefix of the input is `Partial` or fails exactly as the
    /// whole would. Returns `None` for `Partial`.
    #[inline(never)]
    fn parse_reference(&mut self, buf: &[u8]) -> Result<Option<HeadParts>, Error> {
        // RFC 9112 §2.2: ignore empty lines before the request line.
        let mut pos = 0;
        let mut empty_lines = 0;
        loop {
            match buf.get(pos..pos + 2) {
                Some(b"\r\n") => {
                    empty_lines += 1;
                    if empty_lines > MAX_LEADING_EMPTY_LINES {
                        return Err(Error::new(ErrorKind::InvalidRequestLine));
                    }
                    pos += 2;
                }
                None if buf.get(pos) == Some(&b'\r') || pos == buf.len() => return Ok(None),
                _ => break,
            }
        }

        // The request line.
        let line_start = pos;
        let rest = &buf[pos..];
        let newline = memchr::memchr(b'\n', rest);
        let line = &rest[..newline.unwrap_or(rest.len())];
        // The method and target first, decided from the bytes so far (see `check_line_prefix`):
        // garbage that has no LF for a while (a TLS ClientHello, binary noise) is answered at
        // once instead of when the header timeout runs out.
        let prefix = check_line_prefix(line, self.limits.request_line_limit(), &self.policy)?;
        let line_len = line_size(line) - 2;
        if let Some(limit) = self.limits.request_line_limit() {
            if line_len > limit {
                return Err(Error::with_limit(
                    ErrorKind::RequestLineTooLong,
                    line_len as u64,
                    limit as u64,
                ));
            }
        }
        let Some(newline) = newline else {
            // A CR just after the method or target waits for the next byte, which decides it.
            if !line.is_empty() && prefix != LinePrefix::AwaitingCr {
                self.pending = Some(Pending {
                    seen: buf.len(),
                    request_line: Some(prefix),
                    resume: Resume {
                        line_start,
                        base: 0,
                    },
                    limit: self
                        .limits
                        .request_line_limit()
                        .map_or(usize::MAX, |limit| limit.saturating_add(2)),
                });
            }
            return Ok(None);
        };
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err(Error::with_value(ErrorKind::InvalidLineEnding, line));
        };
        let line_end = line_start + line.len();
        let request_line = parse_request_line(line, &self.policy)?;

        // The field lines.
        let mut resume = None;
        let Some(end) = parse_fields(
            buf,
            line_start + newline + 1,
            Rules {
                limits: &self.limits,
                policy: &self.policy,
                forbid: None,
            },
            &mut self.fields,
            &mut self.scratch,
            &mut resume,
        )?
        else {
            self.pending = resume.map(|resume| Pending {
                seen: buf.len(),
                request_line: None,
                resume,
                limit: self.limits.field_size_limit(),
            });
            return Ok(None);
        };
        Ok(Some(self.line_parts(
            buf,
            line_start,
            line_end,
            request_line,
            end,
        )))
    }

    /// Locates the request line's pieces; upper-cases the method into the scratch buffer if
    /// the policy says so.
    #[inline(always)]
    fn line_parts(
        &mut self,
        buf: &[u8],
        line_start: usize,
        line_end: usize,
        line: RequestLine,
        end: usize,
    ) -> HeadParts {
        let method = &buf[line_start..line_start + line.method_len];
        let method_loc =
            if self.policy.casefold_http_method && method.iter().any(u8::is_ascii_lowercase) {
                let start = self.scratch.len();
                self.scratch
                    .extend(method.iter().map(u8::to_ascii_uppercase));
                MethodLoc::Scratch(start, self.scratch.len())
            } else {
                MethodLoc::Buf(line_start, line_start + method.len())
            };
        let target_start = line_start + line.method_len + 1;
        HeadParts {
            method: method_loc,
            target: (target_start, target_start + line.target_len),
            target_form: line.target_form,
            version: line.version,
            version_at: line_end - 8,
            end,
        }
    }

    /// The checks on the whole head (after its fields: the version, the body limit, Expect),
    /// then the state of this head and the [`Head`].
    #[inline(never)]
    fn finish<'a>(
        &'a mut self,
        buf: &'a [u8],
        parts: HeadParts,
    ) -> Result<Status<Head<'a>>, Error> {
        let version = match parts.version {
            (1, 0) => Version::Http10,
            _ => Version::Http11,
        };
        let meta = analyze_fields(buf, &self.scratch, &self.fields, version, &self.policy)?;
        // RFC 9110 §15.6.6: 505 for a major version we do not support, once the head has
        // proved well-formed as HTTP/1.x (a malformed one is 400).
        if parts.version.0 != 1 {
            return Err(Error::with_value(
                ErrorKind::UnsupportedVersion,
                &buf[parts.version_at..parts.version_at + 8],
            ));
        }
        if let Framing::Length(n) = meta.framing {
            if let Some(limit) = self.limits.body_limit() {
                if n > limit {
                    return Err(Error::with_limit(ErrorKind::BodyTooLarge, n, limit));
                }
            }
        }
        if meta.unsupported_expectation {
            return Err(Error::new(ErrorKind::UnsupportedExpectation));
        }

        self.head = HeadState {
            fields: FieldStore::Spans,
            method: parts.method,
            target: parts.target,
            target_form: parts.target_form,
            version,
            framing: meta.framing,
            keep_alive: meta.keep_alive,
            expects_continue: meta.expects_continue,
            host: meta.host,
            forwarded_secure: meta.forwarded_secure,
        };
        // The state just stored is this head's (see `Head::slots`).
        let head = Head { buf, parser: self };
        Ok(Status::Complete(head, parts.end))
    }
}

/// The request line's pieces as offsets into the buffer, and the end of the head.
struct HeadParts {
    method: MethodLoc,
    target: (usize, usize),
    target_form: TargetForm,
    version: (u8, u8),
    /// Where the 8-byte version starts.
    version_at: usize,
    end: usize,
}
