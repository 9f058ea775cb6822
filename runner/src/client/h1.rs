//! HTTP/1.1 on one kept-alive connection, driven inside the VU's own future: the request is
//! written and the response read by the task that asked for it. hyper's client connection
//! needs a task of its own per connection, a channel to reach it and a wake-up across the two
//! for every request, and about 25 KiB per idle connection; here an idle connection is its
//! socket and a read buffer the VU frees before long waits. Parsing is httparse's (hyper's
//! parser); this module owns the framing (RFC 9112 section 6: no body, `Content-Length`,
//! chunked, or until close), keep-alive, and the per-phase deadlines.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::Headers;
use crate::limits::{MAX_RESPONSE_HEAD, MAX_RESPONSE_HEADERS};

/// First size of a connection's read buffer; it grows for long heads and large bodies.
pub(super) const READ_BUFFER: usize = 4096;
/// The most read at once while receiving a large body.
const BODY_READ: usize = 64 * 1024;

/// The byte stream under a connection.
pub enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, data),
            Self::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, data),
        }
    }

    /// Sends `data` on a plain connection at once, without asking the runtime whether the
    /// socket is writable: `None` for TLS, whose bytes go through rustls. tokio's
    /// `poll_write` tries the socket only once its event loop has reported it writable, and
    /// it has not for a connection just opened (`tcp::connect` does not wait for it), so a
    /// new connection's first request would wait a turn of the event loop, while the
    /// server, woken by the new connection, accepts it, finds nothing to read and goes back
    /// to sleep, to be woken again by the request. Sent here, the request is already there
    /// when the server accepts. `MSG_NOSIGNAL` as tokio's own writes: a closed peer is an
    /// error, not a signal.
    fn send_now(&self, data: &[u8]) -> Option<io::Result<usize>> {
        match self {
            Self::Plain(tcp) => Some(socket2::SockRef::from(tcp).send_with_flags(data, libc::MSG_NOSIGNAL)),
            Self::Tls(_) => None,
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Plain(_) => Poll::Ready(Ok(())),
            Self::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }
}

/// A connection's one timer for the deadlines of its exchanges, left armed between them.
/// A wait needs the timer to fire no later than its deadline; one that fires earlier is
/// re-armed, so the timer moves only when a deadline comes closer or the timer fires. With
/// the usual timeouts, each exchange sets a deadline a little later than the last, and the
/// timer is re-armed about once per timeout instead of being registered with the runtime
/// and removed again for every read (2 % of the CPU per request).
#[derive(Default)]
struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// Polls `ready` until it returns a value, or `None` once `deadline` has passed.
    fn within<T>(
        &mut self,
        deadline: Instant,
        mut ready: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> impl Future<Output = Option<T>> {
        poll_fn(move |cx| {
            if let Poll::Ready(value) = ready(cx) {
                return Poll::Ready(Some(value));
            }
            let sleep = self.0.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() > deadline {
                sleep.as_mut().reset(deadline);
            }
            while sleep.as_mut().poll(cx).is_ready() {
                if sleep.deadline() >= deadline || Instant::now() >= deadline {
                    return Poll::Ready(None);
                }
                // Fired for an earlier deadline: wait for this one.
                sleep.as_mut().reset(deadline);
            }
            Poll::Pending
        })
    }

    /// Unregisters the timer (the connection is about to be idle a long time).
    fn disarm(&mut self) {
        self.0 = None;
    }
}

/// How long each part of one exchange may take.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// The whole request (`--request-timeout` or the scenario's own), and its length for
    /// the message.
    pub request: Instant,
    pub request_timeout: Duration,
    /// From the request sent to the response's head (`--first-byte-timeout`).
    pub first_byte: Duration,
    /// Between two reads of the response (`--idle-timeout`).
    pub idle: Duration,
}

/// Why an exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Writing failed, or the connection closed before any byte of the response: on a
    /// kept-alive connection this is the server having closed it meanwhile. `written`: some
    /// of the request went out (it may have reached the server).
    Closed {
        written: bool,
        cause: String,
    },
    Timeout(String),
    Protocol(String),
}

/// A response read to its end.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Names in lower case, values as received (invalid UTF-8 replaced).
    pub headers: Headers,
    /// At most the `keep` bytes asked for.
    pub body: Vec<u8>,
    /// Bytes of body received, kept or not.
    pub body_len: u64,
    /// When the head arrived.
    pub head_at: Instant,
    /// When the last byte arrived: `head_at` when the body came with the head.
    pub finished: Instant,
}

/// How the response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
struct Head {
    status: u16,
    headers: Headers,
    framing: Framing,
    keep_alive: bool,
}

/// One HTTP/1.1 connection, idle between exchanges.
pub struct Conn {
    io: Io,
    /// Received bytes: `buf[start..end]` are not consumed yet. Always initialised (zeroed
    /// when it grows), so reads need no unsafe code.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The last response allows another request on this connection.
    reusable: bool,
    timer: Timer,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("buffered", &(self.end - self.start)).field("reusable", &self.reusable).finish()
    }
}

impl Conn {
    pub fn new(io: Io) -> Self {
        Self { io, buf: Vec::new(), start: 0, end: 0, reusable: true, timer: Timer::default() }
    }

    /// Whether another request may go on this connection: the last response allowed it and,
    /// while idle, the server neither closed it nor sent anything. Costs no system call
    /// unless the socket became readable (the runtime tracks readiness).
    pub fn usable(&mut self) -> bool {
        if !self.reusable || self.start != self.end {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.tcp().poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable: end of stream, stray bytes, or (TLS) session tickets that yield no data.
            Poll::Ready(Ok(())) => {
                self.make_room(1);
                let mut read = ReadBuf::new(&mut self.buf[self.end..]);
                matches!(self.io.poll_read(&mut cx, &mut read), Poll::Pending)
            }
        }
    }

    /// Whether the last response allows another request (checked again by `usable`).
    pub fn reusable(&self) -> bool {
        self.reusable
    }

    /// Gives the read buffer up (a VU about to wait a long time) to the thread's spares; the
    /// next exchange takes one back.
    pub fn release(&mut self) {
        self.timer.disarm();
        if self.start == self.end {
            super::buffers::put(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }

    /// Writes `head` then `body`, and reads the whole response, keeping at most `keep` bytes
    /// of its body. `no_body`: the request was `HEAD`, so the response has none. Returns when
    /// the request was sent, and the response.
    pub async fn exchange(
        &mut self,
        head: &[u8],
        body: &[u8],
        no_body: bool,
        keep: usize,
        deadlines: &Deadlines,
    ) -> Result<(Instant, Response), Failure> {
        // Until the response is read to its end, the connection is in an unknown state.
        self.reusable = false;
        self.write_all(head, false, deadlines).await?;
        if !body.is_empty() {
            self.write_all(body, true, deadlines).await?;
        }
        poll_fn(|cx| self.io.poll_flush(cx)).await.map_err(|e| send_failed(true, &e))?;
        let sent = Instant::now();
        let first_byte = sent + deadlines.first_byte;
        let head = loop {
            match parse_head(&self.buf[self.start..self.end], no_body).map_err(Failure::Protocol)? {
                Some((used, head)) => {
                    self.start += used;
                    // 1xx informational responses precede the real one (101 ends the exchange).
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    break head;
                }
                None if self.end - self.start >= MAX_RESPONSE_HEAD => {
                    return Err(Failure::Protocol(format!(
                        "the response head is longer than {}",
                        crate::host::show_bytes(MAX_RESPONSE_HEAD)
                    )));
                }
                None => {
                    let had = self.end - self.start;
                    if self.fill(READ_BUFFER, first_byte, Wait::FirstByte, deadlines).await? == 0 {
                        return Err(if had == 0 {
                            Failure::Closed { written: true, cause: "the server closed the connection".into() }
                        } else {
                            Failure::Protocol(
                                "the server closed the connection in the middle of the response head".into(),
                            )
                        });
                    }
                }
            }
        };
        let head_at = Instant::now();
        // A small body usually arrives with the head: then no clock is read for its end.
        let with_head = match head.framing {
            Framing::Empty => true,
            Framing::Length(n) => n <= (self.end - self.start) as u64,
            Framing::Chunked | Framing::UntilClose => false,
        };
        let mut body = Body { kept: Vec::new(), len: 0, keep };
        match head.framing {
            Framing::Empty => {}
            Framing::Length(n) => self.read_exact_body(n, &mut body, deadlines).await?,
            Framing::Chunked => self.read_chunked(&mut body, deadlines).await?,
            Framing::UntilClose => loop {
                body.take(&self.buf[self.start..self.end]);
                self.start = self.end;
                if self.fill(BODY_READ, Instant::now() + deadlines.idle, Wait::Idle, deadlines).await? == 0 {
                    break;
                }
            },
        }
        self.reusable = head.keep_alive && head.framing != Framing::UntilClose && self.start == self.end;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let finished = if with_head { head_at } else { Instant::now() };
        let response = Response {
            status: head.status,
            headers: head.headers,
            body: body.kept,
            body_len: body.len,
            head_at,
            finished,
        };
        Ok((sent, response))
    }

    /// Writes `data`; `sent_before`: part of the request already went out, so a failure
    /// here does not make the request safe to send again.
    async fn write_all(&mut self, mut data: &[u8], sent_before: bool, deadlines: &Deadlines) -> Result<(), Failure> {
        let mut sent_any = sent_before;
        // The first try goes straight to the socket (`Io::send_now`); what a full send buffer
        // (or a handshake still going on) leaves waits for the event loop.
        let mut direct = true;
        while !data.is_empty() {
            let Self { io, timer, .. } = self;
            let result = match std::mem::take(&mut direct).then(|| io.send_now(data)).flatten() {
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Some(result) => Some(result),
                None => timer.within(deadlines.request, |cx| io.poll_write(cx, data)).await,
            };
            let written = match result {
                Some(Ok(0)) => return Err(send_failed(sent_any, &io::ErrorKind::WriteZero.into())),
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(send_failed(sent_any, &e)),
                None => return Err(Failure::Timeout(request_timed_out(deadlines))),
            };
            sent_any = true;
            data = &data[written..];
        }
        Ok(())
    }

    /// Makes at least `want` bytes of room after `end` (compacting or growing the buffer).
    fn make_room(&mut self, want: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end >= want {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.is_empty() && want <= READ_BUFFER {
            self.buf = super::buffers::take();
        }
        if self.buf.len() - self.end < want {
            let size = (self.end + want).max(READ_BUFFER).next_power_of_two();
            self.buf.resize(size, 0);
        }
    }

    /// Reads once into the buffer (making room for up to `want` bytes), waiting at most until
    /// `until` or the request's deadline. Returns the bytes read; 0 is the end of the stream.
    async fn fill(&mut self, want: usize, until: Instant, wait: Wait, deadlines: &Deadlines) -> Result<usize, Failure> {
        self.make_room(want.clamp(1, BODY_READ));
        let Self { io, buf, end, timer, .. } = self;
        let read = |cx: &mut Context<'_>| {
            let mut read = ReadBuf::new(&mut buf[*end..]);
            ready!(io.poll_read(cx, &mut read))?;
            Poll::Ready(Ok::<_, io::Error>(read.filled().len()))
        };
        match timer.within(until.min(deadlines.request), read).await {
            Some(Ok(n)) => {
                *end += n;
                Ok(n)
            }
            Some(Err(e)) if self.start == self.end && wait == Wait::FirstByte => {
                Err(Failure::Closed { written: true, cause: format!("reading the response failed: {e}") })
            }
            Some(Err(e)) => Err(Failure::Protocol(format!("reading the response failed: {e}"))),
            None if deadlines.request <= until => Err(Failure::Timeout(request_timed_out(deadlines))),
            None => Err(Failure::Timeout(match wait {
                Wait::FirstByte => {
                    format!("no response within {:?} of sending (--first-byte-timeout)", deadlines.first_byte)
                }
                Wait::Idle => format!("the response stalled for more than {:?} (--idle-timeout)", deadlines.idle),
            })),
        }
    }

    /// Consumes `n` body bytes, from the buffer first.
    async fn read_exact_body(&mut self, mut n: u64, body: &mut Body, deadlines: &Deadlines) -> Result<(), Failure> {
        loop {
            let available = self.end - self.start;
            let take = usize::try_from(n).map_or(available, |n| n.min(available));
            body.take(&self.buf[self.start..self.start + take]);
            self.start += take;
            n -= take as u64;
            if n == 0 {
                return Ok(());
            }
            let want = usize::try_from(n).unwrap_or(BODY_READ);
            if self.fill(want, Instant::now() + deadlines.idle, Wait::Idle, deadlines).await? == 0 {
                return Err(early_close());
            }
        }
    }

    /// Reads a chunked body and its trailers.
    async fn read_chunked(&mut self, body: &mut Body, deadlines: &Deadlines) -> Result<(), Failure> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.start += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.end - self.start < 1024 => {
                        self.more(deadlines).await?;
                    }
                    _ => return Err(Failure::Protocol("the response has an invalid chunk size".into())),
                }
            };
            if size == 0 {
                return self.skip_trailers(deadlines).await;
            }
            self.read_exact_body(size, body, deadlines).await?;
            while self.end - self.start < 2 {
                self.more(deadlines).await?;
            }
            if &self.buf[self.start..self.start + 2] != b"\r\n" {
                return Err(Failure::Protocol("a chunk of the response does not end with CRLF".into()));
            }
            self.start += 2;
        }
    }

    /// Skips the trailer section after the last chunk, up to its empty line.
    async fn skip_trailers(&mut self, deadlines: &Deadlines) -> Result<(), Failure> {
        let mut skipped = 0;
        loop {
            match self.buf[self.start..self.end].windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.start += 2;
                    return Ok(());
                }
                Some(line) => {
                    self.start += line + 2;
                    skipped += line + 2;
                }
                None => self.more(deadlines).await?,
            }
            if skipped > MAX_RESPONSE_HEAD {
                return Err(Failure::Protocol("the response's trailers are too long".into()));
            }
        }
    }

    /// Reads more of the body, failing if the stream ends.
    async fn more(&mut self, deadlines: &Deadlines) -> Result<(), Failure> {
        if self.fill(READ_BUFFER, Instant::now() + deadlines.idle, Wait::Idle, deadlines).await? == 0 {
            return Err(early_close());
        }
        Ok(())
    }
}

/// What a read waits for, for its timeout message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    FirstByte,
    Idle,
}

/// The body being received.
struct Body {
    kept: Vec<u8>,
    len: u64,
    keep: usize,
}

impl Body {
    fn take(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        let room = self.keep.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// Sending failed; `written`: some of the request had gone out.
fn send_failed(written: bool, e: &io::Error) -> Failure {
    let cause = match e.kind() {
        io::ErrorKind::WriteZero => "the connection closed while sending".to_owned(),
        _ => format!("sending the request failed: {e}"),
    };
    Failure::Closed { written, cause }
}

fn early_close() -> Failure {
    Failure::Protocol("the server closed the connection before the response was complete".into())
}

fn request_timed_out(deadlines: &Deadlines) -> String {
    format!("timed out after {:?}", deadlines.request_timeout)
}

/// Parses a response head at the start of `buf`: `None` until it is complete, then the
/// bytes it took and the head.
fn parse_head(buf: &[u8], no_body: bool) -> Result<Option<(usize, Head)>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Left uninitialised: zeroing 100 headers cost more than parsing a short head.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let used =
        match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut headers) {
            Ok(httparse::Status::Complete(used)) => used,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(format!("the response has more than {MAX_RESPONSE_HEADERS} headers"));
            }
            Err(e) => return Err(format!("the response is not valid HTTP/1.1: {e}")),
        };
    let status = response.code.unwrap_or(0);
    if !(100..1000).contains(&status) {
        return Err(format!("the response has an invalid status {status}"));
    }
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut close = false;
    let mut keep_alive = false;
    let mut set_cookie = false;
    for header in response.headers.iter() {
        let value = header.value;
        if header.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| "the response has an invalid Content-Length".to_owned())?;
            if length.is_some_and(|l| l != n) {
                return Err("the response has two different Content-Lengths".into());
            }
            length = Some(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding tells whether the body is chunked.
            chunked = Some(tokens(value).last().is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")));
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"close"));
            keep_alive |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"keep-alive"));
        } else if header.name.eq_ignore_ascii_case("set-cookie") {
            set_cookie = true;
        }
    }
    // The header lines as received, from the first name to the head's end.
    let lines = response.headers.first().map_or(&buf[..0], |first| {
        let offset = first.name.as_ptr() as usize - buf.as_ptr() as usize;
        &buf[offset..used]
    });
    let list = Headers::received(lines, response.headers.len(), set_cookie);
    let http11 = response.version == Some(1);
    let framing = if no_body || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    // Both framings at once is how requests get smuggled: read it, then close (RFC 9112 6.3).
    let keep_alive = (if http11 { !close } else { keep_alive && !close })
        && !(chunked.is_some() && length.is_some())
        && status != 101;
    Ok(Some((used, Head { status, headers: list, framing, keep_alive })))
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn head(raw: &str) -> Head {
        parse_head(raw.as_bytes(), false).expect("valid").expect("complete").1
    }

    #[test]
    fn heads_give_status_lower_case_headers_and_framing() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: A b\r\n\r\n");
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive);
        assert_eq!(h.headers.iter().nth(1), Some(("x-thing".into(), "A b".into())));
        assert_eq!(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").framing, Framing::Chunked);
        assert_eq!(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").framing, Framing::UntilClose);
        assert_eq!(head("HTTP/1.1 200 OK\r\n\r\n").framing, Framing::UntilClose);
        assert_eq!(head("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n").framing, Framing::Empty);
        assert_eq!(head("HTTP/1.1 304 Not Modified\r\n\r\n").framing, Framing::Empty);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).expect("valid").expect("complete");
        assert_eq!(h.1.framing, Framing::Empty, "a response to HEAD has no body");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false).expect("valid").is_none());
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        assert!(!head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keep_alive);
        let both = head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(both.framing, Framing::Chunked);
        assert!(!both.keep_alive, "a response with both framings is not trusted with another request");
    }

    #[test]
    fn malformed_heads_are_refused_with_a_reason() {
        let refused = |raw: &str| parse_head(raw.as_bytes(), false).expect_err("refused");
        assert!(refused("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n").contains("invalid Content-Length"));
        assert!(refused("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").contains("two different"));
        assert!(refused("HTTP/1.1 099 Odd\r\n\r\n").contains("invalid status"));
        assert!(refused("SMTP ready\r\n\r\n").contains("not valid HTTP/1.1"));
        let many: String = (0..=MAX_RESPONSE_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        assert!(refused(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).contains("more than 100 headers"));
    }

    fn deadlines() -> Deadlines {
        Deadlines {
            request: Instant::now() + Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            first_byte: Duration::from_secs(5),
            idle: Duration::from_secs(5),
        }
    }

    /// A server that answers each request read with the next of `replies` (written in
    /// pieces split at `|`, 20 ms apart), then closes (after 2 s if `linger`).
    async fn serve_then(replies: Vec<&'static str>, linger: bool) -> Conn {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            for reply in replies {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                for piece in reply.split('|') {
                    let _ = socket.write_all(piece.as_bytes()).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            if linger {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        Conn::new(Io::Plain(TcpStream::connect(address).await.expect("connect")))
    }

    async fn serve(replies: Vec<&'static str>) -> Conn {
        serve_then(replies, false).await
    }

    async fn get(conn: &mut Conn, keep: usize) -> Result<Response, Failure> {
        conn.exchange(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", b"", false, keep, &deadlines()).await.map(|(_, r)| r)
    }

    /// A new connection's request is in the server's socket after the exchange's first poll,
    /// before the event loop has reported the socket writable and before the server
    /// accepted it (tokio's `poll_write` alone would have waited for the event loop).
    #[tokio::test]
    async fn a_new_connections_request_is_sent_in_the_exchanges_first_poll() {
        use std::io::Read as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let tcp = super::super::tcp::connect(&[listener.local_addr().expect("address")]).await.expect("connects");
        let mut conn = Conn::new(Io::Plain(tcp));
        let (head, deadlines) = (b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", deadlines());
        {
            let mut exchange = std::pin::pin!(conn.exchange(head, b"", false, 0, &deadlines));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(exchange.as_mut().poll(&mut cx).is_pending(), "waits for the response");
        }
        let (mut accepted, _) = listener.accept().expect("accepts");
        accepted.set_nonblocking(true).expect("non-blocking");
        let mut got = [0u8; 64];
        let n = accepted.read(&mut got).expect("the request is already there");
        assert_eq!(&got[..n], head);
    }

    /// The connection's timer fires at each wait's own deadline: re-armed when it fired for
    /// an earlier one, moved when a later wait's deadline is closer, never in the way of a
    /// wait that completes.
    #[tokio::test]
    async fn the_lazy_timer_keeps_each_waits_deadline() {
        let mut timer = Timer::default();
        let never = |_: &mut Context<'_>| Poll::<()>::Pending;
        let start = Instant::now();
        assert_eq!(timer.within(start + Duration::from_millis(40), never).await, None);
        assert!(start.elapsed() >= Duration::from_millis(40));
        // Armed for 40 ms and fired: a later deadline is waited for in full.
        let start = Instant::now();
        assert_eq!(timer.within(start + Duration::from_millis(150), never).await, None);
        assert!(start.elapsed() >= Duration::from_millis(150), "fired early: {:?}", start.elapsed());
        // Arm it far ahead, then a closer deadline must move it.
        let far = Instant::now() + Duration::from_secs(30);
        assert_eq!(timer.within(far, |_| Poll::Ready(7)).await, Some(7), "a ready wait returns its value");
        let mut polled = false;
        let first = |_: &mut Context<'_>| {
            if std::mem::replace(&mut polled, true) { Poll::Ready(()) } else { Poll::Pending }
        };
        let _ = tokio::time::timeout(Duration::from_millis(1), timer.within(far, first)).await;
        let start = Instant::now();
        assert_eq!(timer.within(start + Duration::from_millis(30), never).await, None);
        assert!(start.elapsed() < Duration::from_secs(5), "the closer deadline moved the timer");
    }

    #[tokio::test]
    async fn bodies_of_every_framing_arrive_whole_and_the_connection_is_reused() {
        let mut conn = serve(vec![
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234|56789",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki|\r\n5;x=y\r\npedia\r\n0\r\nT: 1\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil|close",
        ])
        .await;
        let r = get(&mut conn, 1 << 20).await.expect("length");
        assert_eq!((r.status, &r.body[..], r.body_len), (200, &b"0123456789"[..], 10));
        assert!(conn.usable());
        let r = get(&mut conn, 1 << 20).await.expect("chunked");
        assert_eq!(&r.body[..], b"Wikipedia");
        assert!(conn.usable());
        let r = get(&mut conn, 1).await.expect("kept to 1 byte");
        assert_eq!((r.status, &r.body[..], r.body_len), (404, &b"n"[..], 2));
        let r = get(&mut conn, 1 << 20).await.expect("until close");
        assert_eq!(&r.body[..], b"untilclose");
        assert!(!conn.usable(), "a body read until close leaves no connection");
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_not_used() {
        let mut conn = serve(vec!["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]).await;
        get(&mut conn, 10).await.expect("first");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!conn.usable(), "the server closed it after one reply");
        let failure = get(&mut conn, 10).await.expect_err("closed");
        assert!(matches!(failure, Failure::Closed { .. }), "{failure:?}");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_a_protocol_error() {
        let mut conn = serve(vec!["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]).await;
        let failure = get(&mut conn, 10).await.expect_err("cut short");
        assert_eq!(failure, early_close());
        let mut conn = serve(vec!["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]).await;
        assert!(matches!(get(&mut conn, 10).await, Err(Failure::Protocol(m)) if m.contains("chunk size")));
    }

    #[tokio::test]
    async fn a_stalled_response_times_out_with_the_phase_in_the_message() {
        let mut conn = serve_then(vec!["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], true).await;
        let mut d = deadlines();
        d.idle = Duration::from_millis(100);
        let failure = conn.exchange(b"GET / HTTP/1.1\r\n\r\n", b"", false, 10, &d).await.expect_err("stalled");
        assert_eq!(failure, Failure::Timeout("the response stalled for more than 100ms (--idle-timeout)".into()));
        let mut conn = serve_then(vec![], true).await;
        d.first_byte = Duration::from_millis(100);
        let failure = conn.exchange(b"GET / HTTP/1.1\r\n\r\n", b"", false, 10, &d).await.expect_err("silent");
        assert_eq!(failure, Failure::Timeout("no response within 100ms of sending (--first-byte-timeout)".into()));
    }
}
