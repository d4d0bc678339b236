//! Head parsing throughput: raw `httparse` against our full parse (all validation included)
//! on the same requests, in one run.
//!
//! `cargo bench -p ferrocorn-http-parser -- --warm-up-time 1 --measurement-time 3`
//! The target is ours >= 0.8x httparse's throughput. On a shared, loaded machine the two
//! measurements of a pair drift apart; compare them within one run, and repeat, or count
//! instructions instead with `examples/parse_loop.rs` (same requests, same work per parse).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrocorn_http_parser::{HeadParser, Limits, Policy};

#[path = "common/requests.rs"]
mod requests;
use requests::{ferrocorn_once, httparse_once, BROWSER_GET, MINIMAL_GET};

fn bench_request(c: &mut Criterion, name: &str, input: &'static [u8]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("httparse", |b| {
        let mut headers = [httparse::EMPTY_HEADER; 100];
        b.iter(|| assert!(httparse_once(&mut headers, input), "valid request"))
    });
    group.bench_function("ferrocorn", |b| {
        let mut parser = HeadParser::new(Limits::default(), Policy::default());
        b.iter(|| assert!(ferrocorn_once(&mut parser, input), "valid request"))
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
