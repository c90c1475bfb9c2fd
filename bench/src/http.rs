//! A minimal HTTP/1.1 client over one keep-alive connection, cheap enough
//! per request that the load it generates is not the bottleneck (the
//! role wrk plays; wrk cannot send `HEAD`). Bodies are sent from slices
//! and read with `Content-Length` or `chunked` framing.

use std::io;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One response: status, headers (names lowercased) and, when kept, the body.
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_len: u64,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to do with a response body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    Keep,
    Discard,
}

pub struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
    line: Vec<u8>,
    scratch: Vec<u8>,
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl Conn {
    pub async fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::with_capacity(64 * 1024, stream),
            host: addr.to_string(),
            line: Vec::with_capacity(256),
            scratch: vec![0; 256 * 1024],
        })
    }

    /// The request head for `method path`, with `headers` and a body length.
    pub fn head(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body_len: Option<u64>,
    ) -> Vec<u8> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(len) = body_len {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// Sends one request with an in-memory body and reads the response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        mode: BodyMode,
    ) -> io::Result<Response> {
        let with_body = !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH");
        let head = self.head(
            method,
            path,
            headers,
            with_body.then_some(body.len() as u64),
        );
        self.send_raw(&head).await?;
        if !body.is_empty() {
            self.send_raw(body).await?;
        }
        self.read_response(method == "HEAD", mode).await
    }

    /// Writes bytes as they are (a prepared head, or a part of a body).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.get_mut().write_all(bytes).await
    }

    /// Reads one response; `head` when it answers a `HEAD` (no body follows).
    pub async fn read_response(&mut self, head: bool, mode: BodyMode) -> io::Result<Response> {
        let mut response = Response::default();
        let mut length = None;
        let mut chunked = false;
        loop {
            self.line.clear();
            if self.stream.read_until(b'\n', &mut self.line).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            let line = std::str::from_utf8(&self.line)
                .map_err(|_| bad("header is not UTF-8"))?
                .trim_end();
            if response.status == 0 {
                let code = line
                    .split(' ')
                    .nth(1)
                    .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
                response.status = code
                    .parse()
                    .map_err(|_| bad(format!("bad status line {line:?}")))?;
                continue;
            }
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(bad(format!("bad header {line:?}")));
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            if name == "content-length" {
                length = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| bad("bad content-length"))?,
                );
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
            response.headers.push((name, value));
        }
        if head || response.status == 204 || response.status == 304 {
            return Ok(response);
        }
        if chunked {
            loop {
                self.line.clear();
                self.stream.read_until(b'\n', &mut self.line).await?;
                let size = std::str::from_utf8(&self.line).map_err(|_| bad("bad chunk size"))?;
                let size = size.trim().split(';').next().unwrap_or("");
                let size = u64::from_str_radix(size, 16)
                    .map_err(|_| bad(format!("bad chunk size {size:?}")))?;
                if size == 0 {
                    self.line.clear();
                    self.stream.read_until(b'\n', &mut self.line).await?; // the final CRLF
                    break;
                }
                self.body(size, mode, &mut response).await?;
                self.line.clear();
                self.stream.read_until(b'\n', &mut self.line).await?;
            }
        } else if let Some(length) = length {
            self.body(length, mode, &mut response).await?;
        }
        Ok(response)
    }

    async fn body(
        &mut self,
        mut left: u64,
        mode: BodyMode,
        response: &mut Response,
    ) -> io::Result<()> {
        response.body_len += left;
        while left > 0 {
            let want = left.min(self.scratch.len() as u64) as usize;
            let n = self.stream.read(&mut self.scratch[..want]).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "body cut short",
                ));
            }
            if mode == BodyMode::Keep {
                response.body.extend_from_slice(&self.scratch[..n]);
            }
            left -= n as u64;
        }
        Ok(())
    }
}

/// The path (and query) of a response's `Location`.
pub fn location_path(response: &Response) -> io::Result<String> {
    let location = response
        .header("location")
        .ok_or_else(|| bad(format!("no Location in a {} answer", response.status)))?;
    let path = match location.find("://") {
        Some(scheme) => {
            let rest = &location[scheme + 3..];
            rest.find('/').map(|slash| &rest[slash..]).unwrap_or("/")
        }
        None => location,
    };
    Ok(path.to_string())
}

/// `path` with the query parameter `param` (`k=v`) appended.
pub fn with_param(path: &str, param: &str) -> String {
    let joiner = if path.contains('?') { '&' } else { '?' };
    format!("{path}{joiner}{param}")
}
