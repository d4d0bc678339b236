//! The two requests that the parse bench and the `parse_loop` and `parse_alternate` examples
//! measure, and what each side does per parse, kept in one place so that the criterion ratios,
//! the alternating rounds and the callgrind instruction counts are of the same work.

use ferrocorn_http_parser::{HeadParser, Status};
use std::hint::black_box;

/// A ~700-byte request as a desktop browser sends it.
pub const BROWSER_GET: &[u8] = b"GET /articles/2024/rust-http-parsing?ref=home&utm_source=newsletter HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/\r\n\
Connection: keep-alive\r\n\
Cookie: session=6f1e2d3c4b5a69788796a5b4c3d2e1f0; theme=dark; consent=yes; _ga=GA1.2.123456789.1700000000\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-User: ?1\r\n\
Priority: u=0, i\r\n\
If-None-Match: \"33a64df551425fcc55e4d42a148795d9f25f89d4\"\r\n\
Cache-Control: max-age=0\r\n\r\n";

/// The smallest ordinary HTTP/1.1 request.
pub const MINIMAL_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// One parse with raw httparse, as it is normally used: `headers` is built once by the caller
/// (`[EMPTY_HEADER; 100]`), one `Request` per parse. Whether the head was complete.
#[inline(always)]
pub fn httparse_once<'a>(headers: &mut [httparse::Header<'a>], input: &'a [u8]) -> bool {
    let mut req = httparse::Request::new(headers);
    let done = matches!(
        req.parse(black_box(input)),
        Ok(httparse::Status::Complete(_))
    );
    black_box(req.headers.len());
    done
}

/// One full parse with ours (all validation), the parser reused as a connection reuses it.
/// Whether the head was complete.
#[inline(always)]
pub fn ferrocorn_once(parser: &mut HeadParser, input: &[u8]) -> bool {
    match parser.parse(black_box(input)) {
        Ok(Status::Complete(head, consumed)) => {
            black_box((head.header_count(), head.keep_alive(), consumed));
            true
        }
        _ => false,
    }
}
