//! The HTTP client behind `http.send`: hyper HTTP/1.1 connections owned by one VU (each VU
//! behaves like an independent user, as in Locust and k6), kept alive between requests,
//! with the VU's own cookie jar. Times every request from before connecting to the last
//! body byte.

mod policy;
mod rules;
mod target;
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::limits::{CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, FIRST_BYTE_TIMEOUT, IDLE_TIMEOUT};
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
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

/// A complete response.
#[derive(Debug)]
pub struct Incoming {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<(String, String)>,
    /// At most `MAX_BODY_KEPT` bytes.
    pub body: Vec<u8>,
    /// Bytes of body received, kept or not.
    pub body_len: u64,
    pub phases: Phases,
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
    sender: SendRequest<Full<Bytes>>,
}

/// One VU's connections and cookies.
pub struct VuClient {
    shared: Arc<HttpShared>,
    connections: Vec<Connection>,
    /// Created on the first `Set-Cookie`, so VUs without cookies pay nothing.
    cookies: Option<Box<cookie_store::CookieStore>>,
}

impl std::fmt::Debug for VuClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuClient").field("connections", &self.connections.len()).finish()
    }
}

impl VuClient {
    pub fn new(shared: Arc<HttpShared>) -> Self {
        Self { shared, connections: Vec::new(), cookies: None }
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

    /// Sends `out` and reads the whole response. `Err` carries the failure message.
    pub async fn send(&mut self, out: Outgoing<'_>) -> Result<Incoming, SendError> {
        rules::check(&out, &self.shared.limits)?;
        let target =
            target::resolve(self.shared.base.as_ref(), out.url).map_err(|e| SendError::Invalid(e.to_string()))?;
        let ceiling = self.shared.timeouts.ceiling;
        let timeout = out.timeout.map_or(self.shared.timeouts.request, |t| ceiling.map_or(t, |c| t.min(c)));
        // Parsed at most once per request, and only when cookies are involved.
        let mut cookie_url = self.cookies.as_ref().and_then(|_| url::Url::parse(&target.url()).ok());
        let request = self.build(out, &target, cookie_url.as_ref())?;
        match tokio::time::timeout(timeout, self.exchange(&target, request)).await {
            Ok(result) => {
                let incoming = result?;
                self.keep_cookies(&target, &mut cookie_url, &incoming.headers);
                Ok(incoming)
            }
            // The connection was taken out of `connections` for the exchange and is dropped
            // with it (closed): mid-exchange it could not carry another request.
            Err(_) => Err(SendError::Timeout(format!("timed out after {timeout:?}"))),
        }
    }

    fn build(
        &self,
        out: Outgoing<'_>,
        target: &Target,
        cookie_url: Option<&url::Url>,
    ) -> Result<Request<Full<Bytes>>, SendError> {
        let method = Method::from_bytes(out.method.as_bytes())
            .map_err(|_| SendError::Invalid(format!("`{}` is not a valid HTTP method", out.method)))?;
        let body = out.body.map(Bytes::from).unwrap_or_default();
        // Set fields in place: `Request::builder()` moves its whole state at every step.
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = target.path_and_query.clone().into();
        let headers = request.headers_mut();
        for (written, value) in &out.headers {
            let name = HeaderName::from_bytes(written.as_bytes())
                .map_err(|_| SendError::Invalid(format!("`{written}` is not a valid header name")))?;
            rules::check_header(&name, written)?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| SendError::Invalid(format!("the value of header `{name}` is not valid")))?;
            headers.append(name, value);
        }
        headers.insert(header::HOST, target.host_header.clone());
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        }
        if let (Some(cookies), Some(url)) = (&self.cookies, cookie_url) {
            let cookie = cookies
                .get_request_values(url)
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            if !cookie.is_empty()
                && !headers.contains_key(header::COOKIE)
                && let Ok(value) = HeaderValue::from_str(&cookie)
            {
                headers.insert(header::COOKIE, value);
            }
        }
        Ok(request)
    }

    async fn exchange(&mut self, target: &Target, request: Request<Full<Bytes>>) -> Result<Incoming, SendError> {
        let started = Instant::now();
        let (mut sender, reused) = self.connection(&target.origin).await?;
        // A kept-alive connection is handed over at once: its request is sent when the
        // exchange started, which saves a clock read per request on the hot path.
        let mut sent = if reused { started } else { Instant::now() };
        let mut connect_us = (!reused).then(|| micros(sent.duration_since(started)));
        let first_byte = self.shared.timeouts.first_byte;
        let no_first_byte =
            || SendError::Timeout(format!("no response within {first_byte:?} of sending (--first-byte-timeout)"));
        let response = match tokio::time::timeout(first_byte, sender.try_send_request(request))
            .await
            .map_err(|_| no_first_byte())?
        {
            Ok(response) => response,
            // A kept-alive connection the server has just closed gives the request back
            // unsent; every client retries that once on a fresh connection.
            Err(mut e) => match (reused, e.take_message()) {
                (true, Some(request)) => {
                    let opening = Instant::now();
                    sender = self.open(&target.origin).await?.0;
                    connect_us = Some(micros(opening.elapsed()));
                    sent = Instant::now();
                    tokio::time::timeout(first_byte, sender.send_request(request))
                        .await
                        .map_err(|_| no_first_byte())?
                        .map_err(|e| SendError::Protocol(describe(&e)))?
                }
                _ => return Err(SendError::Protocol(describe(e.error()))),
            },
        };
        let head = Instant::now();
        let (parts, mut body) = response.into_parts();
        let mut kept = Vec::new();
        let mut body_len = 0u64;
        let idle = self.shared.timeouts.idle;
        while let Some(frame) = tokio::time::timeout(idle, body.frame())
            .await
            .map_err(|_| SendError::Timeout(format!("the response stalled for more than {idle:?} (--idle-timeout)")))?
        {
            let frame = frame.map_err(|e| SendError::Protocol(describe(&e)))?;
            if let Ok(data) = frame.into_data() {
                body_len += data.len() as u64;
                let room = self.shared.limits.body_kept.saturating_sub(kept.len());
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        let receiving_us = micros(head.elapsed());
        // Hand the connection back for the next request (unless the server closes it).
        if !sender.is_closed() {
            self.connections.push(Connection { origin: target.origin.clone(), sender });
        }
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        Ok(Incoming {
            status: parts.status.as_u16(),
            reason: parts.status.canonical_reason().unwrap_or(""),
            headers,
            body: kept,
            body_len,
            phases: Phases { connect_us, waiting_us: micros(head.duration_since(sent)), receiving_us },
        })
    }

    /// Takes this VU's idle connection to `origin`, or opens one. `true` when reused.
    async fn connection(&mut self, origin: &Origin) -> Result<(SendRequest<Full<Bytes>>, bool), SendError> {
        while let Some(i) = self.connections.iter().position(|c| &c.origin == origin) {
            let mut conn = self.connections.swap_remove(i);
            if !conn.sender.is_closed() && conn.sender.ready().await.is_ok() {
                return Ok((conn.sender, true));
            }
        }
        self.open(origin).await
    }

    /// Opens a connection in a task of its own: connecting and the TLS handshake go deep
    /// into tokio and rustls, and run on the worker's stack instead of touching pages of the
    /// VU's fiber stack, which wasmtime keeps for the VU's whole life.
    async fn open(&mut self, origin: &Origin) -> Result<(SendRequest<Full<Bytes>>, bool), SendError> {
        // Boxed first: `spawn` passes its future by value through several calls, and each
        // copy of this 3.7 KB future would land on the fiber stack (measured: 6 more pages).
        let connect = tokio::spawn(Box::pin(connect(self.shared.clone(), origin.clone())));
        let sender =
            connect.await.map_err(|_| SendError::Connect(format!("connecting to {origin} was interrupted")))??;
        Ok((sender, false))
    }

    fn keep_cookies(&mut self, target: &Target, url: &mut Option<url::Url>, headers: &[(String, String)]) {
        let mut set_cookies = headers.iter().filter(|(n, _)| n == "set-cookie").peekable();
        if set_cookies.peek().is_none() {
            return;
        }
        if url.is_none() {
            *url = url::Url::parse(&target.url()).ok();
        }
        let Some(url) = url.as_ref() else { return };
        let jar = self.cookies.get_or_insert_with(Box::default);
        for (_, value) in set_cookies {
            // A malformed cookie is ignored, as browsers do.
            let _ = jar.parse(value, url);
        }
    }
}

/// Connects to `origin` (TCP, then TLS for https) and starts HTTP/1.1 on the connection.
async fn connect(shared: Arc<HttpShared>, origin: Origin) -> Result<SendRequest<Full<Bytes>>, SendError> {
    shared.policy.check_host(&origin).map_err(SendError::Invalid)?;
    let connect = async {
        // Resolved once; only the addresses the policy vets are connected to.
        let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((&*origin.host, origin.port))
            .await
            .map_err(|e| SendError::Connect(format!("cannot resolve {origin}: {e}")))?
            .collect();
        let addresses = shared.policy.vet(&origin, resolved).map_err(SendError::Invalid)?;
        let tcp = TcpStream::connect(&addresses[..])
            .await
            .map_err(|e| SendError::Connect(format!("cannot connect to {origin}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        if origin.https {
            let name = rustls::pki_types::ServerName::try_from(origin.host.to_string())
                .map_err(|_| SendError::Connect(format!("`{}` is not a valid TLS server name", origin.host)))?;
            let tls = shared
                .connector
                .connect(name, tcp)
                .await
                .map_err(|e| SendError::Connect(format!("TLS handshake with {origin} failed: {e}")))?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    };
    let limit = shared.timeouts.connect;
    tokio::time::timeout(limit, connect).await.map_err(|_| {
        SendError::Connect(format!("connecting to {origin} timed out after {limit:?} (--connect-timeout)"))
    })?
}

async fn handshake<T>(io: TokioIo<T>) -> Result<SendRequest<Full<Bytes>>, SendError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| SendError::Connect(describe(&e)))?;
    // The connection runs until the VU drops its sender or the server closes it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// hyper's error with its cause, in one line.
fn describe(e: &hyper::Error) -> String {
    use std::error::Error;
    match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
