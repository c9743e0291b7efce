//! Requests for the parser and engine fuzz tests: a grammar of HTTP/1.1 requests
//! (methods, targets, 1.0/1.1, Host, Content-Length, Transfer-Encoding, Connection,
//! Expect, bodies, chunked bodies with extensions and trailers) and mutations of them.
//! Deterministic: everything comes from one xorshift generator. Included by
//! `engine/tests/parser_props.rs` and `scenarios/tests/engine_fuzz.rs` (by path).

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

/// Longest chunk-size or trailer line the parser accepts (its `MAX_CHUNK_LINE`).
pub const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `pct` %.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// What a generated valid request must parse to.
#[derive(Debug, Clone)]
pub struct Expected {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub minor: u8,
    pub head_len: usize,
    pub body: Vec<u8>,
    pub chunked: bool,
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// Head plus body.
    pub len: usize,
    /// Bytes of the trailer section (they count against the header limit with the
    /// head).
    pub trailer_bytes: usize,
}

/// A generated request: its bytes and, when it is valid, what it must parse to.
#[derive(Debug, Clone)]
pub struct Generated {
    pub bytes: Vec<u8>,
    pub expected: Option<Expected>,
}

const TCHAR: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const PCHAR: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/%";

/// A token of 1 to `max` characters.
fn token(rng: &mut Rng, max: usize) -> Vec<u8> {
    let len = 1 + rng.below(max);
    (0..len).map(|_| TCHAR[rng.below(TCHAR.len())]).collect()
}

/// A line length within 2 bytes of the chunk-line limit.
fn long_line(rng: &mut Rng) -> usize {
    MAX_CHUNK_LINE - 2 + rng.below(5)
}

/// A target as sent, and the origin-form target the parser gives for it.
fn gen_target(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let t = match rng.below(7) {
        0 => b"/".to_vec(),
        1 => b"/plaintext".to_vec(),
        2 => b"*".to_vec(),
        3 => {
            return (
                b"http://example.com:8080/a/b?c=d".to_vec(),
                b"/a/b?c=d".to_vec(),
            )
        }
        4 => return (b"HTTP://x".to_vec(), Vec::new()),
        _ => {
            let len = 1 + rng.below(40);
            let mut t = vec![b'/'];
            t.extend((0..len).map(|_| PCHAR[rng.below(PCHAR.len())]));
            if rng.chance(30) {
                t.push(b'?');
                t.extend((0..rng.below(20)).map(|_| PCHAR[rng.below(PCHAR.len())]));
            }
            t
        }
    };
    (t.clone(), t)
}

fn case_variant(rng: &mut Rng, name: &str) -> Vec<u8> {
    match rng.below(3) {
        0 => name.as_bytes().to_vec(),
        1 => name.to_ascii_lowercase().into_bytes(),
        _ => name
            .bytes()
            .map(|b| {
                if rng.chance(50) {
                    b.to_ascii_uppercase()
                } else {
                    b
                }
            })
            .collect(),
    }
}

/// Optional whitespace around a header value.
fn ows(rng: &mut Rng) -> &'static [u8] {
    rng.pick(&[&b""[..], b" ", b" ", b"\t", b"  \t"])
}

fn header(out: &mut Vec<u8>, rng: &mut Rng, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.push(b':');
    out.extend_from_slice(ows(rng));
    out.extend_from_slice(value);
    out.extend_from_slice(ows(rng));
    out.extend_from_slice(b"\r\n");
}

/// A chunked encoding of `body`: the bytes, whether every chunk line is within the
/// limit, and the trailer section's size.
fn chunked_body(rng: &mut Rng, body: &[u8]) -> (Vec<u8>, bool, usize) {
    let mut out = Vec::new();
    let mut valid = true;
    let mut rest = body;
    loop {
        let size = if rest.is_empty() {
            0
        } else {
            (1 + rng.below(rest.len().min(120))).min(rest.len())
        };
        let mut line = if rng.chance(20) {
            format!("{size:04X}").into_bytes()
        } else {
            format!("{size:x}").into_bytes()
        };
        if rng.chance(25) {
            let ext: &[u8] = rng.pick(&[&b";a=b"[..], b";name=\"quoted; value\"", b";x", b" ;y=1"]);
            line.extend_from_slice(ext);
        }
        if rng.chance(3) {
            let len = long_line(rng);
            line.push(b';');
            while line.len() < len {
                line.push(b'e');
            }
        }
        valid &= line.len() <= MAX_CHUNK_LINE;
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[size..];
    }
    let trailers_at = out.len();
    for _ in 0..rng.below(3) {
        let mut t = b"X-Trailer-".to_vec();
        t.extend(token(rng, 6));
        t.extend_from_slice(b": v");
        if rng.chance(10) {
            let len = long_line(rng);
            while t.len() < len {
                t.push(b'v');
            }
        }
        out.extend_from_slice(&t);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let trailer_bytes = out.len() - trailers_at;
    (out, valid, trailer_bytes)
}

/// A request from the grammar; valid unless a long chunk line makes it too long.
pub fn gen_request(rng: &mut Rng) -> Generated {
    let method: Vec<u8> = match rng.below(9) {
        0 => token(rng, 10),
        i => [
            "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
        ][i - 1]
            .as_bytes()
            .to_vec(),
    };
    let (target, origin_target) = gen_target(rng);
    // `*` is the target of OPTIONS alone.
    let target_ok = target != b"*" || method == b"OPTIONS";
    let minor = if rng.chance(80) { 1 } else { 0 };
    let mut out = Vec::new();
    out.extend_from_slice(&method);
    out.push(b' ');
    out.extend_from_slice(&target);
    out.extend_from_slice(if minor == 1 {
        b" HTTP/1.1\r\n"
    } else {
        b" HTTP/1.0\r\n"
    });

    let with_body = rng.chance(40);
    let chunked = with_body && rng.chance(50);
    let body: Vec<u8> = if with_body {
        let len = rng.below(300);
        (0..len).map(|_| rng.next() as u8).collect()
    } else {
        Vec::new()
    };
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    let mut smuggle = false;
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if minor == 1 || rng.chance(50) {
        let host: &[u8] = rng.pick(&[&b"localhost"[..], b"example.com:8080", b"[::1]:80", b"x"]);
        fields.push((case_variant(rng, "Host"), host.to_vec()));
    }
    for _ in 0..rng.below(6) {
        let name = match rng.below(4) {
            0 => token(rng, 12),
            _ => {
                let n: &str =
                    rng.pick(&["User-Agent", "Accept", "Accept-Encoding", "Cookie", "X-Id"]);
                case_variant(rng, n)
            }
        };
        let value: Vec<u8> = (0..rng.below(40))
            .map(|_| match rng.below(20) {
                0 => b'\t',
                1 => b' ',
                2 => 0x80 + rng.below(0x80) as u8,
                _ => b'!' + rng.below(94) as u8,
            })
            .collect();
        let value = value.trim_ascii().to_vec();
        fields.push((name, value));
    }
    if rng.chance(30) {
        let v: &str = rng.pick(&["close", "keep-alive", "Keep-Alive", "upgrade, close", "foo"]);
        close = v.contains("close");
        keep_alive_token = v.eq_ignore_ascii_case("keep-alive");
        fields.push((case_variant(rng, "Connection"), v.as_bytes().to_vec()));
    }
    if rng.chance(10) {
        expect_continue = true;
        fields.push((case_variant(rng, "Expect"), b"100-continue".to_vec()));
    }
    if chunked {
        let v: &[u8] = rng.pick(&[&b"chunked"[..], b"Chunked", b" , chunked"]);
        fields.push((case_variant(rng, "Transfer-Encoding"), v.to_vec()));
        // Both framings (a smuggling attempt): the parser must refuse it.
        smuggle = rng.chance(5);
        if smuggle {
            fields.push((case_variant(rng, "Content-Length"), b"4".to_vec()));
        }
    } else if with_body || rng.chance(20) {
        fields.push((
            case_variant(rng, "Content-Length"),
            body.len().to_string().into_bytes(),
        ));
        if rng.chance(10) {
            fields.push((
                case_variant(rng, "Content-Length"),
                body.len().to_string().into_bytes(),
            ));
        }
    }
    // Host first or anywhere; order does not matter to the parser.
    let n = fields.len();
    if n > 1 {
        for i in (1..n).rev() {
            fields.swap(i, rng.below(i + 1));
        }
    }
    for (name, value) in &fields {
        header(&mut out, rng, name, value);
    }
    out.extend_from_slice(b"\r\n");
    let head_len = out.len();
    let mut valid = true;
    let mut trailer_bytes = 0;
    if chunked {
        let (encoded, ok, trailers) = chunked_body(rng, &body);
        valid = ok;
        trailer_bytes = trailers;
        out.extend_from_slice(&encoded);
    } else {
        out.extend_from_slice(&body);
    }
    let keep_alive = if minor == 1 {
        !close
    } else {
        keep_alive_token && !close
    };
    let len = out.len();
    Generated {
        bytes: out,
        expected: (valid && !smuggle && target_ok).then_some(Expected {
            method,
            target: origin_target,
            minor,
            head_len,
            body,
            chunked,
            keep_alive,
            expect_continue,
            len,
            trailer_bytes,
        }),
    }
}

const INTERESTING: &[u8] = b"\r\n\0 :\t;\x7f\xff\"0,";
const HUGE: &[&[u8]] = &[
    b"99999999999999999999",
    b"18446744073709551615",
    b"18446744073709551616",
    b"0000000000000000000000001",
    b"fffffffffffffff",
    b"ffffffffffffffff",
    b"-1",
    b"1e3",
];

/// Applies 1 to 4 mutations: byte flips, insertions of CR/LF/NUL/space/colon,
/// deletions, truncations, duplicated header lines, huge numbers, bare LF endings.
pub fn mutate(rng: &mut Rng, buf: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if buf.is_empty() {
            buf.extend_from_slice(b"\r\n");
        }
        let at = rng.below(buf.len());
        match rng.below(9) {
            0 => buf[at] ^= 1 << rng.below(8),
            1 => buf[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => {
                for _ in 0..1 + rng.below(3) {
                    buf.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
                }
            }
            3 => {
                let end = (at + 1 + rng.below(8)).min(buf.len());
                buf.drain(at..end);
            }
            4 => buf.truncate(at),
            5 => {
                // Duplicate a line (a header, a chunk-size line, ...).
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(
                        buf.windows(2)
                            .enumerate()
                            .filter(|(_, w)| w == b"\r\n")
                            .map(|(i, _)| i + 2),
                    )
                    .filter(|&i| i < buf.len())
                    .collect();
                let s = starts[rng.below(starts.len())];
                if let Some(e) = buf[s..].windows(2).position(|w| w == b"\r\n") {
                    let line = buf[s..s + e + 2].to_vec();
                    buf.splice(s..s, line);
                }
            }
            6 => {
                // Replace a run of digits (or hex) with a huge number.
                if let Some(d) = buf[at..].iter().position(u8::is_ascii_hexdigit) {
                    let s = at + d;
                    let e = s + buf[s..]
                        .iter()
                        .take_while(|b| b.is_ascii_hexdigit())
                        .count();
                    buf.splice(s..e, rng.pick(HUGE).iter().copied());
                }
            }
            7 => {
                // A bare LF (or bare CR) where a CRLF was.
                if let Some(p) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                    let p = at + p;
                    if rng.chance(50) {
                        buf.remove(p);
                    } else {
                        buf.remove(p + 1);
                    }
                }
            }
            _ => {
                let extra = gen_request(rng).bytes;
                buf.splice(at..at, extra);
            }
        }
    }
}

/// Printable form of test bytes, long runs of one byte shortened to `[b×n]`.
pub fn show(buf: &[u8]) -> String {
    let mut s = String::new();
    let mut i = 0;
    while i < buf.len() {
        let run = buf[i..].iter().take_while(|&&b| b == buf[i]).count();
        let one = std::ascii::escape_default(buf[i]).to_string();
        if run >= 8 {
            s += &format!("[{one}×{run}]");
            i += run;
        } else {
            s += &one;
            i += 1;
        }
    }
    s
}
