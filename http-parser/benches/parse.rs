//! Head parsing throughput: raw `httparse` against our full parse (all validation included)
//! on the same requests, in one run.
//!
//! `cargo bench -p ferrocorn-http-parser -- --warm-up-time 1 --measurement-time 3`
//! The target is ours >= 0.8x httparse's throughput. On a shared, loaded machine the two
//! measurements of a pair drift apart; compare them within one run, and repeat.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrocorn_http_parser::{HeadParser, Limits, Policy, Status};
use std::hint::black_box;

/// A ~700-byte request as a desktop browser sends it.
const BROWSER_GET: &[u8] = b"GET /articles/2024/rust-http-parsing?ref=home&utm_source=newsletter HTTP/1.1\r\n\
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

const MINIMAL_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn bench_request(c: &mut Criterion, name: &str, input: &'static [u8]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("httparse", |b| {
        let mut headers = [httparse::EMPTY_HEADER; 100];
        b.iter(|| {
            let mut req = httparse::Request::new(&mut headers);
            let status = req.parse(black_box(input)).expect("valid request");
            assert!(status.is_complete());
            black_box(req.headers.len());
        })
    });
    group.bench_function("ferrocorn", |b| {
        let mut parser = HeadParser::new(Limits::default(), Policy::default());
        b.iter(|| {
            let Ok(Status::Complete(head, consumed)) = parser.parse(black_box(input)) else {
                panic!("valid request")
            };
            black_box((head.header_count(), head.keep_alive(), consumed));
        })
    });
    group.finish();
}

fn parse_heads(c: &mut Criterion) {
    assert!(
        (600..=800).contains(&BROWSER_GET.len()),
        "{}",
        BROWSER_GET.len()
    );
    bench_request(c, "browser_get", BROWSER_GET);
    bench_request(c, "minimal_get", MINIMAL_GET);
}

criterion_group!(benches, parse_heads);
criterion_main!(benches);
