//! A response, whose headers and body stay on the host until the scenario reads them.
//!
//! `send-bare` returns only a response's status, sizes and timings. Lowering the body into
//! this instance's memory was a call into its allocator and a copy for every response, read
//! or not, and grew the guest's heap to the largest body it ever received: a VU idle after
//! fetching a 64 KiB page held 118.6 KiB, now 56.3 (the same as after two bytes). Lowering
//! the headers was 12 % of the runner's CPU per request.
//!
//! The host keeps the headers and body of the last [`HOST_KEEPS`] responses of the current
//! call into the scenario only. So that a response reads the same whenever it is read, the
//! SDK lists the responses the host kept parts of, held weakly, and fetches the parts of
//! those still alive before the host would forget them: when one more response would push
//! the oldest out ([`make_room`]), and when the call ends ([`call_ends`]). The Python SDK
//! does the same for headers (`sdk/python/wasmload/http.py`).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::__private::bindings::wasmload::scenario::http as wit;

/// Responses the host keeps the headers and body of during one call (the WIT's
/// `response-headers`; the runner's `limits::KEPT_RESPONSE_HEADERS`, which a runner test
/// holds this to).
const HOST_KEEPS: usize = 64;

/// The parts of a response fetched on demand.
#[derive(Debug, Default)]
struct Parts {
    headers: OnceCell<Vec<(String, String)>>,
    body: OnceCell<Vec<u8>>,
}

/// A response the host kept parts of during this call, in the order they were received.
struct Kept {
    id: u64,
    header_count: u32,
    body_len: u64,
    /// Gone when nothing refers to the response any more: then nothing is fetched for it.
    parts: Weak<Parts>,
}

impl Kept {
    /// Copies what the response has not read yet from the host, if it is still alive.
    fn fetch(self) {
        let Some(parts) = self.parts.upgrade() else { return };
        if self.header_count > 0 {
            parts.headers.get_or_init(|| wit::response_headers(self.id));
        }
        if self.body_len > 0 {
            parts.body.get_or_init(|| wit::response_body(self.id));
        }
    }
}

thread_local! {
    /// Every response of the current call the host kept parts of and that has not been dealt
    /// with yet, oldest first: the newest of those the host keeps, so at most `HOST_KEEPS`.
    static KEPT: RefCell<VecDeque<Kept>> = RefCell::default();
    /// The parts of the last response dropped with nothing else referring to them, emptied:
    /// the next response takes them instead of allocating its own (one allocation and one
    /// free fewer per request).
    static SPARE: Cell<Option<Rc<Parts>>> = const { Cell::new(None) };
}

/// Deals with the oldest listed responses until at most `keep` are listed.
fn fetch_until(keep: usize) {
    while let Some(oldest) = KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() > keep { kept.pop_front() } else { None }
    }) {
        oldest.fetch();
    }
}

/// Before a request is sent: fetches the parts of the oldest response the host would push
/// out to keep one more.
pub(crate) fn make_room() {
    fetch_until(HOST_KEEPS - 1);
}

/// At the end of every call into the scenario: fetches the parts of the responses that
/// outlive it (a response kept in the user's state) before the host forgets them.
pub(crate) fn call_ends() {
    fetch_until(0);
}

/// A complete response. Its headers and body are fetched from the host the first time they
/// are read.
#[derive(Debug)]
pub struct Response {
    inner: wit::BareResponse,
    parts: Rc<Parts>,
}

impl Response {
    /// The response `send-bare` returned, tracked while the host holds parts of it.
    pub(crate) fn received(inner: wit::BareResponse) -> Self {
        let parts = SPARE.take().unwrap_or_default();
        // The host keeps a response's parts when it has any (`response-headers` in the WIT).
        if inner.header_count > 0 || inner.body_len > 0 {
            let kept = Kept {
                id: inner.id,
                header_count: inner.header_count,
                body_len: inner.body_len,
                parts: Rc::downgrade(&parts),
            };
            KEPT.with(|list| list.borrow_mut().push_back(kept));
        }
        Self { inner, parts }
    }

    pub fn status(&self) -> u16 {
        self.inner.status
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header, names in lower case, in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        self.parts.headers.get_or_init(|| match self.inner.header_count {
            0 => Vec::new(),
            _ => wit::response_headers(self.inner.id),
        })
    }

    /// The body, at most the runner's `response-body` limit of it (16 MiB by default).
    pub fn body(&self) -> &[u8] {
        self.parts.body.get_or_init(|| match self.inner.body_len {
            0 => Vec::new(),
            _ => wit::response_body(self.inner.id),
        })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }

    /// Time from the start of the request to the last body byte, measured by the host.
    pub fn elapsed(&self) -> Duration {
        Duration::from_micros(self.inner.elapsed_us)
    }

    /// Time spent opening a new connection for this request (TCP, TLS); `None` when a
    /// kept-alive connection was used (k6 `timings.connecting`).
    pub fn connecting(&self) -> Option<Duration> {
        self.inner.timings.connect_us.map(Duration::from_micros)
    }

    /// Time from sending the request to the first byte of the response: time to first byte
    /// (k6 `timings.waiting`).
    pub fn waiting(&self) -> Duration {
        Duration::from_micros(self.inner.timings.waiting_us)
    }

    /// Time from the first to the last byte of the response (k6 `timings.receiving`).
    pub fn receiving(&self) -> Duration {
        Duration::from_micros(self.inner.timings.receiving_us)
    }

    /// Marks a `catch_response` request successful whatever its status.
    pub fn success(self) {
        wit::report(self.inner.id, Ok(()));
    }

    /// Marks a `catch_response` request failed; `message` appears in the error report.
    pub fn failure(self, message: impl Into<String>) {
        let message: String = message.into();
        wit::report(self.inner.id, Err(&message));
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        // Still the newest listed response (nothing was sent since): nothing needs its parts
        // fetched any more, so it is unlisted and its parts can serve the next response.
        KEPT.with(|kept| {
            let mut kept = kept.borrow_mut();
            if kept.back().is_some_and(|k| k.id == self.inner.id) {
                kept.pop_back();
            }
        });
        if let Some(parts) = Rc::get_mut(&mut self.parts) {
            parts.headers.take();
            parts.body.take();
            SPARE.set(Some(Rc::clone(&self.parts)));
        }
    }
}
