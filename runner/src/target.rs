//! The built-in demo target: a small HTTP server on 127.0.0.1 with a few routes, some
//! slow and some failing, so the demo (and a new user) has something to load-test without
//! installing a server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The routes, for `runner target` to print.
pub const ROUTES: &str = "  GET  /                 welcome page
  GET  /concert/<id>     a concert as JSON (404 when id > 100), ~2 ms
  GET  /festival         festival programme, ~20 ms
  POST /login            sets a `session` cookie
  GET  /cart             200 with the session cookie, 401 without
  GET  /slow             ~200 ms
  GET  /delay/<ms>       200 after <ms> milliseconds (at most 10 s)
  GET  /flaky            500 about one time in ten";

/// A running target; stops when dropped.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Target {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the target on 127.0.0.1:`port` (0 for any free port).
pub async fn start(port: u16) -> anyhow::Result<Target> {
    let listener =
        TcpListener::bind(("127.0.0.1", port)).await.with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let counter = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, counter.clone()));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(Target { addr, task })
}

async fn handle(req: Request<Incoming>, counter: Arc<AtomicU64>) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    // Read the request body so the connection can be reused.
    let _ = body.collect().await;
    let path = parts.uri.path();
    let has_session =
        parts.headers.get_all(header::COOKIE).iter().any(|v| v.to_str().is_ok_and(|c| c.contains("session=")));
    let response = match (&parts.method, path) {
        (&Method::GET, "/") => text(StatusCode::OK, "Welcome to the wasmload demo target\n"),
        (&Method::GET, p) if p.starts_with("/concert/") => {
            tokio::time::sleep(Duration::from_millis(2)).await;
            match p["/concert/".len()..].parse::<u32>() {
                Ok(id) if id <= 100 => json(&format!(r#"{{"id":{id},"name":"Concert {id}","seats":{}}}"#, 100 + id)),
                _ => text(StatusCode::NOT_FOUND, "no such concert\n"),
            }
        }
        (&Method::GET, "/festival") => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            json(r#"{"festival":"Wasm Fest","days":3}"#)
        }
        (&Method::POST, "/login") => {
            let mut r = json(r#"{"ok":true}"#);
            r.headers_mut().insert(header::SET_COOKIE, header::HeaderValue::from_static("session=demo-user; Path=/"));
            r
        }
        (&Method::GET, "/cart") if has_session => json(r#"{"items":[]}"#),
        (&Method::GET, "/cart") => text(StatusCode::UNAUTHORIZED, "log in first\n"),
        (&Method::GET, "/slow") => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            text(StatusCode::OK, "finally\n")
        }
        (&Method::GET, p) if p.starts_with("/delay/") => match p["/delay/".len()..].parse::<u64>() {
            Ok(ms) if ms <= 10_000 => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, "done\n")
            }
            _ => text(StatusCode::BAD_REQUEST, "the delay is a number of milliseconds up to 10000\n"),
        },
        (&Method::GET, "/flaky") if n % 10 == 9 => text(StatusCode::INTERNAL_SERVER_ERROR, "oops\n"),
        (&Method::GET, "/flaky") => text(StatusCode::OK, "fine\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
    r
}

fn json(body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r
}
