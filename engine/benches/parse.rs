//! Request parser benchmarks: the shapes the worker parses most (a plain GET, a
//! browser-sized head, a pipelined batch, a chunked upload). Throughput is reported in
//! bytes of input, except for the pipelined batch, which counts requests.
//!
//! `cargo bench -p engine --bench parse -- --warm-up-time 1 --measurement-time 2`

// Unsafe code is for engine::sys alone, tests included.
#![deny(unsafe_code)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::http::parse::{decode_chunked, parse_head, BodyKind, HeaderSpan, Limits};

const LIMITS: Limits = Limits {
    max_header_bytes: 64 * 1024,
    max_body_bytes: 16 * 1024 * 1024,
    #[cfg(feature = "faults")]
    fault: None,
};

const PLAIN_GET: &[u8] = b"GET /plaintext HTTP/1.1\r\n\
Host: localhost:8080\r\n\
User-Agent: wrk/4.2.0\r\n\
Accept: text/plain,text/html;q=0.9\r\n\
Connection: keep-alive\r\n\r\n";

const BROWSER_GET: &[u8] = b"GET /static/app/main.3f9a1c.js?v=20240611&lang=en HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: script\r\n\
Referer: https://www.example.com/articles/2024/06/parsing-http-fast\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en;q=0.9,de;q=0.8\r\n\
Cache-Control: max-age=0\r\n\
If-None-Match: W/\"5e15153d-120f\"\r\n\
If-Modified-Since: Tue, 11 Jun 2024 08:12:31 GMT\r\n\
Cookie: session=7f3c9a0b1e2d4c5f8a6b; theme=dark; _ga=GA1.2.1234567890.1718093551\r\n\
DNT: 1\r\n\r\n";

const PIPELINE_DEPTH: usize = 16;

const CHUNKED_HEAD: &[u8] = b"POST /upload HTTP/1.1\r\n\
Host: localhost:8080\r\n\
User-Agent: curl/8.5.0\r\n\
Content-Type: application/octet-stream\r\n\
Transfer-Encoding: chunked\r\n\r\n";

/// The chunked POST: the head, then chunks of 1 KiB, 512 B, 100 B (one with an
/// extension), the last chunk and a trailer.
fn chunked_request() -> Vec<u8> {
    let mut req = CHUNKED_HEAD.to_vec();
    for (i, size) in [1024usize, 512, 100, 1024].into_iter().enumerate() {
        req.extend_from_slice(format!("{size:x}").as_bytes());
        if i == 1 {
            req.extend_from_slice(b";name=\"part two\"");
        }
        req.extend_from_slice(b"\r\n");
        req.extend(std::iter::repeat_n(b'a' + i as u8, size));
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\nX-Checksum: 8c3f1a\r\n\r\n");
    req
}

fn single_head(c: &mut Criterion, group: &str, req: &[u8]) {
    let mut headers = Vec::<HeaderSpan>::with_capacity(32);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("parse_head", |b| {
        b.iter(|| {
            let head = parse_head(black_box(req), &mut headers, LIMITS);
            black_box(head.expect("valid").expect("complete"))
        })
    });
    g.finish();
}

fn plain_get(c: &mut Criterion) {
    single_head(c, "plain_get", PLAIN_GET);
}

fn twenty_headers(c: &mut Criterion) {
    let mut headers = Vec::new();
    let n = parse_head(BROWSER_GET, &mut headers, LIMITS)
        .ok()
        .flatten()
        .map(|_| headers.len());
    assert_eq!(n, Some(20), "the browser request has 20 headers");
    single_head(c, "twenty_headers", BROWSER_GET);
}

fn pipelined(c: &mut Criterion) {
    let batch = PLAIN_GET.repeat(PIPELINE_DEPTH);
    let mut headers = Vec::<HeaderSpan>::with_capacity(32);
    let mut g = c.benchmark_group("pipelined_16");
    g.throughput(Throughput::Elements(PIPELINE_DEPTH as u64));
    g.bench_function("parse_head", |b| {
        b.iter(|| {
            // As the worker does: parse, skip the (empty) body, parse the rest.
            let buf = black_box(&batch[..]);
            let mut pos = 0;
            let mut n = 0;
            while pos < buf.len() {
                match parse_head(&buf[pos..], &mut headers, LIMITS) {
                    Ok(Some(head)) => {
                        let BodyKind::Length(body) = head.body else {
                            unreachable!("GETs have no chunked body")
                        };
                        pos += head.len + body as usize;
                        n += 1;
                    }
                    _ => unreachable!("the batch is complete and valid"),
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

fn chunked_post(c: &mut Criterion) {
    let req = chunked_request();
    let mut headers = Vec::<HeaderSpan>::with_capacity(32);
    let mut body = Vec::with_capacity(4096);
    let used = parse_head(&req, &mut headers, LIMITS)
        .ok()
        .flatten()
        .and_then(|h| {
            let used = decode_chunked(&req[h.len..], &mut body, LIMITS);
            used.ok().flatten().map(|u| h.len + u)
        });
    assert_eq!(
        used,
        Some(req.len()),
        "the whole request is one chunked POST"
    );
    assert_eq!(body.len(), 1024 + 512 + 100 + 1024);
    let mut g = c.benchmark_group("chunked_post");
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("parse_head+decode_chunked", |b| {
        b.iter(|| {
            let buf = black_box(&req[..]);
            let head = match parse_head(buf, &mut headers, LIMITS) {
                Ok(Some(head)) if head.body == BodyKind::Chunked => head,
                _ => unreachable!("a complete chunked request"),
            };
            let used = decode_chunked(&buf[head.len..], &mut body, LIMITS);
            black_box((used, body.len()))
        })
    });
    g.finish();
}

criterion_group!(benches, plain_get, twenty_headers, pipelined, chunked_post);
criterion_main!(benches);
