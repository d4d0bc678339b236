//! The two requests that the parse bench and the `parse_loop` example measure, kept in one
//! place so that the criterion ratios and the callgrind instruction counts are of the same bytes.

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
