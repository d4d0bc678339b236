//! Fuzz target: arbitrary bytes through the PROXY header, head and body parsers, whole and
//! split at a fuzzer-chosen point. Never panics; the verdict does not depend on the split; the
//! fast path and the reference path give the same verdict.
#![no_main]

use ferrocorn_http_parser::{
    parse_proxy_header, HeadParser, Limits, Policy, ProxyProtocol, ProxyStatus, Status,
};
use libfuzzer_sys::fuzz_target;

/// The verdict on a whole input: the error status, or the head's consumed bytes and the body.
fn verdict(parser: &mut HeadParser, input: &[u8]) -> Result<Option<(usize, Vec<u8>)>, u16> {
    let (mut decoder, consumed) = match parser.parse(input) {
        Err(err) => return Err(err.status()),
        Ok(Status::Partial) => return Ok(None),
        Ok(Status::Complete(head, consumed)) => (head.body_decoder(), consumed),
    };
    let mut rest = &input[consumed..];
    let mut body = Vec::new();
    loop {
        let step = decoder.decode(rest).map_err(|e| e.status())?;
        body.extend_from_slice(step.data);
        rest = &rest[step.consumed..];
        if step.complete || step.consumed == 0 {
            return Ok(Some((consumed, body)));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let policy = if first & 1 == 0 {
        Policy::default()
    } else {
        Policy {
            permit_obsolete_folding: true,
            strip_header_spaces: true,
            ..Policy::gunicorn_compatible()
        }
    };
    let mut input = input;
    if let Ok(ProxyStatus::Complete(_, n)) = parse_proxy_header(input, ProxyProtocol::Any) {
        assert!(n <= input.len());
        input = &input[n..];
    }
    let mut parser = HeadParser::new(Limits::default(), policy);
    let whole = verdict(&mut parser, input);
    let mut reference = HeadParser::new(Limits::default(), policy);
    reference.set_fast_path(false);
    assert_eq!(verdict(&mut reference, input), whole, "fast path and reference path differ");
    // Any prefix is Partial or the same error as the whole input.
    let cut = usize::from(first >> 1) * input.len() / 128;
    match (parser.parse(&input[..cut]), &whole) {
        (Ok(Status::Partial), _) => {}
        (Err(err), Err(status)) => assert_eq!(err.status(), *status),
        (Ok(Status::Complete(_, n)), Ok(Some((m, _)))) => assert_eq!(n, *m),
        (other, whole) => panic!("prefix {cut}: {other:?} but whole: {whole:?}"),
    }
});
