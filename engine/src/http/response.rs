//! Serialising a response head and body into an output buffer.

use super::handler::Response;

/// The reason phrase for a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// The `connection` header a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// None: HTTP/1.1 keep-alive is the default.
    None,
    /// `connection: keep-alive`: an HTTP/1.0 request that asked to keep the connection.
    KeepAlive,
    /// `connection: close`: the connection closes after this response.
    Close,
}

/// Appends the whole response to `out`. `head_only` (HEAD requests) writes the
/// headers a GET would get and no body.
pub fn write_response(
    out: &mut Vec<u8>,
    res: &Response,
    date: &[u8],
    connection: ConnectionHeader,
    head_only: bool,
) {
    let body = if head_only { 0 } else { res.body.len() };
    // One reservation for the whole response: each piece below is then a plain copy.
    out.reserve(96 + date.len() + res.headers.len() + body);
    if res.status == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_u64(out, u64::from(res.status));
        out.push(b' ');
        out.extend_from_slice(reason(res.status).as_bytes());
    }
    if !date.is_empty() {
        out.extend_from_slice(b"\r\ndate: ");
        out.extend_from_slice(date);
    }
    out.extend_from_slice(b"\r\ncontent-length: ");
    push_u64(out, res.body_len());
    match connection {
        ConnectionHeader::None => {}
        ConnectionHeader::KeepAlive => out.extend_from_slice(b"\r\nconnection: keep-alive"),
        ConnectionHeader::Close => out.extend_from_slice(b"\r\nconnection: close"),
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&res.headers);
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&res.body);
    }
}

/// Appends an error response (status, short text body, `connection: close`).
pub fn write_error(out: &mut Vec<u8>, status: u16, date: &[u8]) {
    let text = reason(status);
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\ndate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\ncontent-type: text/plain\r\ncontent-length: ");
    push_u64(out, text.len() as u64 + 1);
    out.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_framed_response() {
        let mut res = Response::default();
        res.status(200)
            .header("content-type", b"text/plain")
            .body(b"Hello, World!");
        let mut out = Vec::new();
        write_response(&mut out, &res, b"D", ConnectionHeader::None, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ndate: D\r\ncontent-length: 13\r\ncontent-type: text/plain\r\n\r\nHello, World!"
        );
        out.clear();
        write_response(&mut out, &res, b"D", ConnectionHeader::Close, true);
        assert!(out.ends_with(b"connection: close\r\ncontent-type: text/plain\r\n\r\n"));
    }
}
