//! The HTTP client behind `http.send`: HTTP/1.1 connections owned by one VU (each VU
//! behaves like an independent user, as in Locust and k6), kept alive between requests,
//! with the VU's own cookie jar. Times every request from before connecting to the last
//! body byte. The wire protocol is in `h1`, driven by the VU's own task.

mod buffers;
mod h1;
mod headers;
mod policy;
mod rules;
mod target;
mod tcp;
mod tls;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::limits::{CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, FIRST_BYTE_TIMEOUT, IDLE_TIMEOUT};
pub use headers::Headers;
pub use policy::{AddressClass, HostPattern, NetPolicy, classify};
pub use target::{BaseUrl, Origin, Target, UrlError};

/// `User-Agent` sent unless the scenario sets one.
const USER_AGENT: &str = concat!("wasmload/", env!("CARGO_PKG_VERSION"));

/// Settings shared by every VU of a run.
pub struct HttpShared {
    pub base: Option<BaseUrl>,
    connector: tokio_rustls::TlsConnector,
    policy: NetPolicy,
    timeouts: Timeouts,
    /// The operator's ceiling on requests per second for the whole run, if any.
    pace: Option<Pace>,
    /// Request sizes and the response body kept for the guest.
    limits: crate::limits::HostLimits,
}

/// How long each step of a request may take (`--connect-timeout`, `--first-byte-timeout`,
/// `--idle-timeout`, `--request-timeout`; a scenario's `timeout-ms` replaces the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub request: Duration,
    /// The operator policy's `max_timeout`: also caps a scenario's own request timeout.
    pub ceiling: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: CONNECT_TIMEOUT,
            first_byte: FIRST_BYTE_TIMEOUT,
            idle: IDLE_TIMEOUT,
            request: DEFAULT_REQUEST_TIMEOUT,
            ceiling: None,
        }
    }
}

/// Spaces the requests of every VU together at most `rate` a second (the operator policy's
/// `max_request_rate`): each request reserves the next free slot, lock-free.
#[derive(Debug)]
pub struct Pace {
    interval_ns: u64,
    start: std::time::Instant,
    next_ns: std::sync::atomic::AtomicU64,
}

impl Pace {
    pub fn new(rate: f64) -> Self {
        let interval_ns = (1e9 / rate.max(1e-6)).round() as u64;
        Self { interval_ns, start: std::time::Instant::now(), next_ns: std::sync::atomic::AtomicU64::new(0) }
    }

    /// How long the caller must wait before its request may go.
    pub fn reserve(&self) -> Duration {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let slot = self
            .next_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| Some(next.max(now) + self.interval_ns))
            .unwrap_or(now);
        Duration::from_nanos(slot.max(now) - now)
    }
}

impl std::fmt::Debug for HttpShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpShared").field("base", &self.base).finish_non_exhaustive()
    }
}

impl HttpShared {
    pub fn new(
        base: Option<BaseUrl>,
        insecure: bool,
        policy: NetPolicy,
        timeouts: Timeouts,
        max_request_rate: Option<f64>,
        limits: crate::limits::HostLimits,
    ) -> anyhow::Result<Self> {
        let tls = tls::client_config(insecure)?;
        let pace = max_request_rate.map(Pace::new);
        Ok(Self { base, connector: tokio_rustls::TlsConnector::from(tls), policy, timeouts, pace, limits })
    }

    /// For instances that only describe their plan: they may not send anything.
    pub fn describe_only() -> anyhow::Result<Self> {
        Self::new(None, false, NetPolicy::closed(), Timeouts::default(), None, crate::limits::HostLimits::default())
    }
}

/// A request as the guest described it.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Option<&'a [u8]>,
    pub timeout: Option<Duration>,
    /// When the guest asked (the request's time counts from here).
    pub started: Instant,
}

/// A complete response.
#[derive(Debug)]
pub struct Incoming {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Headers,
    /// At most `MAX_BODY_KEPT` bytes.
    pub body: Vec<u8>,
    /// Bytes of body received, kept or not.
    pub body_len: u64,
    pub phases: Phases,
    /// When the last byte of the body arrived.
    pub finished: Instant,
}

/// Where a request's time went (k6's `http_req_connecting`, `http_req_waiting` and
/// `http_req_receiving`), in microseconds. Their sum is about the request's total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Opening a new connection (TCP, TLS, HTTP/1 handshake); `None` on a kept-alive one.
    pub connect_us: Option<u64>,
    /// From sending the request to the response's head (time to first byte).
    pub waiting_us: u64,
    /// From the response's head to its last body byte.
    pub receiving_us: u64,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Protocol(String),
}

struct Connection {
    origin: Origin,
    conn: h1::Conn,
}

/// One VU's connections and cookies.
pub struct VuClient {
    shared: Arc<HttpShared>,
    connections: Vec<Connection>,
    /// Created on the first `Set-Cookie`, so VUs without cookies pay nothing.
    cookies: Option<Box<cookie_store::CookieStore>>,
    /// The request head being written, kept between requests.
    head: Vec<u8>,
    /// The last URL sent and where it resolved to: most VUs send the same few URLs, and
    /// resolving one allocates its path and clones its origin. Boxed: a request's future
    /// holds it while the response comes, 8 bytes instead of 160.
    last: Option<Box<Resolved>>,
}

impl std::fmt::Debug for VuClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuClient").field("connections", &self.connections.len()).finish()
    }
}

/// Bodies up to this size go out in the same write as the head.
const BODY_IN_HEAD: usize = 16 * 1024;

impl VuClient {
    pub fn new(shared: Arc<HttpShared>) -> Self {
        Self { shared, connections: Vec::new(), cookies: None, head: Vec::new(), last: None }
    }

    /// Waits for this request's slot under the run's request-rate ceiling, if there is one.
    pub async fn pace(&self) {
        if let Some(pace) = &self.shared.pace {
            let wait = pace.reserve();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Frees the buffers of idle connections (the VU is about to wait a long time).
    pub fn release(&mut self) {
        self.head = Vec::new();
        self.last = None;
        for connection in &mut self.connections {
            connection.conn.release();
        }
    }

    /// Sends `out` and reads the whole response. `Err` carries the failure message.
    pub async fn send(&mut self, out: Outgoing<'_>) -> Result<Incoming, SendError> {
        rules::check(&out, &self.shared.limits)?;
        let started = out.started;
        let last = match self.last.take() {
            Some(last) if last.url == out.url => last,
            spare => {
                let target = target::resolve(self.shared.base.as_ref(), out.url)
                    .map_err(|e| SendError::Invalid(e.to_string()))?;
                Resolved::reusing(spare, out.url, target)
            }
        };
        let target = &last.target;
        let ceiling = self.shared.timeouts.ceiling;
        let timeout = out.timeout.map_or(self.shared.timeouts.request, |t| ceiling.map_or(t, |c| t.min(c)));
        let deadlines = h1::Deadlines {
            request: started + timeout,
            request_timeout: timeout,
            first_byte: self.shared.timeouts.first_byte,
            idle: self.shared.timeouts.idle,
        };
        // Parsed at most once per request, and only when cookies are involved.
        // Boxed, as `last`: 8 bytes of the future instead of 88.
        let mut cookie_url = self.cookies.as_ref().and_then(|_| url::Url::parse(&target.url()).ok().map(Box::new));
        let mut head = std::mem::take(&mut self.head);
        head.clear();
        let exchange = Exchange { method: out.method, started, deadlines };
        let built = self.build(out, target, cookie_url.as_deref(), &mut head);
        let result = match built {
            Ok(body) => self.exchange(target, &head, body.unwrap_or_default(), &exchange).await,
            Err(e) => Err(e),
        };
        // A head grown by an unusual request is not kept.
        if head.capacity() <= BODY_IN_HEAD * 2 {
            self.head = head;
        }
        if let Ok(incoming) = &result {
            self.keep_cookies(target, &mut cookie_url, &incoming.headers);
        }
        self.last = Some(last);
        result
    }

    /// Writes the request head into `head` (with the body when it is small); returns the
    /// body still to send.
    fn build<'a>(
        &self,
        out: Outgoing<'a>,
        target: &Target,
        cookie_url: Option<&url::Url>,
        head: &mut Vec<u8>,
    ) -> Result<Option<&'a [u8]>, SendError> {
        if !rules::is_token(out.method) {
            return Err(SendError::Invalid(format!("`{}` is not a valid HTTP method", out.method)));
        }
        head.extend_from_slice(out.method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(target.path_and_query.as_str().as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        head.extend_from_slice(target.host_header.as_bytes());
        head.extend_from_slice(b"\r\n");
        let (mut user_agent, mut cookie) = (false, false);
        for (name, value) in out.headers {
            if !rules::is_token(name) {
                return Err(SendError::Invalid(format!("`{name}` is not a valid header name")));
            }
            rules::check_header(name)?;
            if !rules::is_header_value(value) {
                return Err(SendError::Invalid(format!(
                    "the value of header `{}` is not valid",
                    name.to_ascii_lowercase()
                )));
            }
            user_agent |= name.eq_ignore_ascii_case("user-agent");
            cookie |= name.eq_ignore_ascii_case("cookie");
            head.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        if !user_agent {
            head.extend_from_slice(b"user-agent: ");
            head.extend_from_slice(USER_AGENT.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        if let (false, Some(cookies), Some(url)) = (cookie, &self.cookies, cookie_url) {
            let mut pairs = cookies.get_request_values(url).peekable();
            if pairs.peek().is_some() {
                head.extend_from_slice(b"cookie: ");
                for (i, (name, value)) in pairs.enumerate() {
                    if i > 0 {
                        head.extend_from_slice(b"; ");
                    }
                    head.extend_from_slice(name.as_bytes());
                    head.push(b'=');
                    head.extend_from_slice(value.as_bytes());
                }
                head.extend_from_slice(b"\r\n");
            }
        }
        let body = out.body.unwrap_or_default();
        // As Python's requests: every method but GET and HEAD says how long its body is,
        // even when empty (servers answer a bodiless POST without it with 411).
        if !body.is_empty() || !(out.method.eq_ignore_ascii_case("GET") || out.method.eq_ignore_ascii_case("HEAD")) {
            // Writing into a Vec cannot fail; no String is made for the number.
            let _ = write!(head, "content-length: {}\r\n", body.len());
        }
        head.extend_from_slice(b"\r\n");
        if body.len() <= BODY_IN_HEAD {
            head.extend_from_slice(body);
            return Ok(None);
        }
        Ok(Some(body))
    }

    async fn exchange(
        &mut self,
        target: &Target,
        head: &[u8],
        body: &[u8],
        how: &Exchange<'_>,
    ) -> Result<Incoming, SendError> {
        let no_body = how.method.eq_ignore_ascii_case("HEAD");
        let (mut conn, reused) = self.connection(&target.origin, &how.deadlines).await?;
        let mut connect_us = (!reused).then(|| micros(how.started.elapsed()));
        let keep = self.shared.limits.body_kept;
        let mut result = conn.exchange(head, body, no_body, keep, &how.deadlines).await;
        // A kept-alive connection the server closed just before this request: send it again
        // on a fresh one, if it was not sent or may safely be sent twice.
        if let (true, Err(h1::Failure::Closed { written, .. })) = (reused, &result)
            && (!*written || idempotent(how.method))
        {
            let opening = Instant::now();
            conn = self.open(&target.origin, &how.deadlines).await?;
            connect_us = Some(micros(opening.elapsed()));
            result = conn.exchange(head, body, no_body, keep, &how.deadlines).await;
        }
        let (sent, response) = result.map_err(|failure| match failure {
            h1::Failure::Closed { cause, .. } | h1::Failure::Protocol(cause) => SendError::Protocol(cause),
            h1::Failure::Timeout(message) => SendError::Timeout(message),
        })?;
        let finished = response.finished;
        let receiving_us = micros(finished.duration_since(response.head_at));
        if conn.reusable() {
            // Most VUs talk to one origin: room for one, not the four a first push makes.
            if self.connections.capacity() == 0 {
                self.connections.reserve_exact(1);
            }
            self.connections.push(Connection { origin: target.origin.clone(), conn });
        }
        let status = response.status;
        Ok(Incoming {
            status,
            reason: http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or(""),
            headers: response.headers,
            body: response.body,
            body_len: response.body_len,
            phases: Phases { connect_us, waiting_us: micros(response.head_at.duration_since(sent)), receiving_us },
            finished,
        })
    }

    /// Takes this VU's idle connection to `origin`, or opens one. `true` when reused.
    async fn connection(&mut self, origin: &Origin, deadlines: &h1::Deadlines) -> Result<(h1::Conn, bool), SendError> {
        while let Some(i) = self.connections.iter().position(|c| &c.origin == origin) {
            let mut connection = self.connections.swap_remove(i);
            if connection.conn.usable() {
                return Ok((connection.conn, true));
            }
        }
        Ok((self.open(origin, deadlines).await?, false))
    }

    /// Opens a connection. An https one is opened in a task of its own: the TLS handshake
    /// goes deep into rustls, and an exchange polled in place on a fiber (the instance that
    /// only describes the plan, see `host::offload`) would push those frames onto a stack
    /// wasmtime keeps for the store's whole life. A plain one is opened here: a task of its
    /// own would hand the connection back only after the tasks queued meanwhile (at the
    /// start, VUs instantiating), and the server, woken by the new connection, would accept
    /// it and go back to sleep before the request came.
    async fn open(&self, origin: &Origin, deadlines: &h1::Deadlines) -> Result<h1::Conn, SendError> {
        // Boxed first: `spawn` passes its future by value through several calls, and each
        // copy of this future would land on the fiber stack (measured: 6 more pages).
        let connect = Box::pin(connect(self.shared.clone(), origin.clone(), *deadlines));
        let io = if origin.https {
            tokio::spawn(connect)
                .await
                .map_err(|_| SendError::Connect(format!("connecting to {origin} was interrupted")))??
        } else {
            connect.await?
        };
        Ok(h1::Conn::new(io))
    }

    fn keep_cookies(&mut self, target: &Target, url: &mut Option<Box<url::Url>>, headers: &Headers) {
        let mut set_cookies = headers.set_cookies().peekable();
        if set_cookies.peek().is_none() {
            return;
        }
        if url.is_none() {
            *url = url::Url::parse(&target.url()).ok().map(Box::new);
        }
        let Some(url) = url.as_deref() else { return };
        let jar = self.cookies.get_or_insert_with(Box::default);
        for value in set_cookies {
            // A malformed cookie is ignored, as browsers do.
            let _ = jar.parse(&value, url);
        }
    }
}

/// A URL and where it resolved to.
struct Resolved {
    url: String,
    target: Target,
}

impl Resolved {
    /// `url` resolved to `target`, in `spare`'s allocations when there is one.
    fn reusing(spare: Option<Box<Self>>, url: &str, target: Target) -> Box<Self> {
        match spare {
            Some(mut spare) => {
                spare.url.clear();
                spare.url.push_str(url);
                spare.target = target;
                spare
            }
            None => Box::new(Self { url: url.to_owned(), target }),
        }
    }
}

/// What one request needs besides its bytes.
struct Exchange<'a> {
    method: &'a str,
    started: Instant,
    deadlines: h1::Deadlines,
}

/// Safe to send again after the server closed a kept-alive connection under it (RFC 9110
/// 9.2.2), as browsers do. Asked only when that happens.
fn idempotent(method: &str) -> bool {
    ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"].iter().any(|m| method.eq_ignore_ascii_case(m))
}

/// Connects to `origin` (TCP, then TLS for https), within `--connect-timeout` and the
/// request's own deadline.
async fn connect(shared: Arc<HttpShared>, origin: Origin, deadlines: h1::Deadlines) -> Result<h1::Io, SendError> {
    shared.policy.check_host(&origin).map_err(SendError::Invalid)?;
    let connect = async {
        // Resolved once; only the addresses the policy vets are connected to.
        let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((&*origin.host, origin.port))
            .await
            .map_err(|e| SendError::Connect(format!("cannot resolve {origin}: {e}")))?
            .collect();
        let addresses = shared.policy.vet(&origin, resolved).map_err(SendError::Invalid)?;
        let tcp = tcp::connect(&addresses).await.map_err(|e| match crate::open_files::explain_connect_error(&e) {
            Some(why) => SendError::Connect(format!("cannot connect to {origin}: {why}")),
            None => SendError::Connect(format!("cannot connect to {origin}: {e}")),
        })?;
        let _ = tcp.set_nodelay(true);
        if !origin.https {
            return Ok(h1::Io::Plain(tcp));
        }
        let name = rustls::pki_types::ServerName::try_from(origin.host.to_string())
            .map_err(|_| SendError::Connect(format!("`{}` is not a valid TLS server name", origin.host)))?;
        let tls = shared
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| SendError::Connect(format!("TLS handshake with {origin} failed: {e}")))?;
        Ok(h1::Io::Tls(Box::new(tls)))
    };
    let limit = shared.timeouts.connect;
    let until = Instant::now() + limit;
    tokio::time::timeout_at(until.min(deadlines.request), connect).await.map_err(|_| {
        if deadlines.request < until {
            SendError::Timeout(format!("timed out after {:?}", deadlines.request_timeout))
        } else {
            SendError::Connect(format!("connecting to {origin} timed out after {limit:?} (--connect-timeout)"))
        }
    })?
}
