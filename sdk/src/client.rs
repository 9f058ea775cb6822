//! HTTP requests, performed and timed by the host (Locust `self.client`).

use std::cell::RefCell;
use std::time::Duration;

use crate::__private::bindings::wasmload::scenario::http as wit;
use crate::response::Response;

pub use wit::HttpError;

/// Header strings kept for reuse, at most.
const SPARE_STRINGS: usize = 32;

/// The buffers of the last request sent, cleared, for the next one to fill (a plan's
/// instance is one thread). Every request copies its method, URL and headers into strings;
/// reusing their memory spares the guest's allocator most of its work per request.
#[derive(Default)]
struct Spare {
    request: Option<wit::Request>,
    strings: Vec<String>,
}

thread_local! {
    static SPARE: RefCell<Spare> = RefCell::default();
}

/// An empty string, with memory a sent request's header left behind when there is one.
fn spare_string() -> String {
    SPARE.with(|spare| spare.borrow_mut().strings.pop()).unwrap_or_default()
}

/// Clears a sent request and keeps it, and its header strings, for the next request.
fn recycle(mut request: wit::Request) {
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        for (mut name, mut value) in request.headers.drain(..) {
            if spare.strings.len() + 2 <= SPARE_STRINGS {
                name.clear();
                value.clear();
                spare.strings.push(name);
                spare.strings.push(value);
            }
        }
        request.method.clear();
        request.url.clear();
        request.body = None;
        request.name = None;
        request.timeout_ms = None;
        request.tags.clear();
        request.catch_response = false;
        spare.request = Some(request);
    });
}

/// Starts a request with any method.
pub fn request(method: &str, url: impl AsRef<str>) -> RequestBuilder {
    let mut inner = SPARE.with(|spare| spare.borrow_mut().request.take()).unwrap_or_else(|| wit::Request {
        method: String::new(),
        url: String::new(),
        headers: Vec::new(),
        body: None,
        name: None,
        timeout_ms: None,
        tags: Vec::new(),
        catch_response: false,
    });
    inner.method.push_str(method);
    inner.url.push_str(url.as_ref());
    RequestBuilder { inner }
}

/// `GET url`; `url` is absolute or a path joined to the run's `--host`.
pub fn get(url: impl AsRef<str>) -> RequestBuilder {
    request("GET", url)
}

pub fn post(url: impl AsRef<str>) -> RequestBuilder {
    request("POST", url)
}

pub fn put(url: impl AsRef<str>) -> RequestBuilder {
    request("PUT", url)
}

pub fn patch(url: impl AsRef<str>) -> RequestBuilder {
    request("PATCH", url)
}

pub fn delete(url: impl AsRef<str>) -> RequestBuilder {
    request("DELETE", url)
}

pub fn head(url: impl AsRef<str>) -> RequestBuilder {
    request("HEAD", url)
}

/// A request being described; [`RequestBuilder::send`] performs it.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    inner: wit::Request,
}

impl RequestBuilder {
    /// Groups statistics under `name` instead of the URL (Locust `name=`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.inner.name = Some(name.into());
        self
    }

    /// Tags the request's statistics (k6 `params.tags`); thresholds select tagged requests
    /// with `http_req_duration{tag:value}`.
    pub fn tag(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner.tags.push((name.into(), value.into()));
        self
    }

    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        let (mut n, mut v) = (spare_string(), spare_string());
        n.push_str(name.as_ref());
        v.push_str(value.as_ref());
        self.inner.headers.push((n, v));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.inner.body = Some(body.into());
        self
    }

    /// A JSON body (already encoded) with its content type.
    pub fn json(self, json: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/json").body(json)
    }

    /// A form body (`a=1&b=2`, values percent-encoded) with its content type.
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        let encoded: Vec<String> =
            fields.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
        self.header("content-type", "application/x-www-form-urlencoded").body(encoded.join("&"))
    }

    /// Fails the request if the whole exchange takes longer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner.timeout_ms = Some(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        self
    }

    /// Lets the task decide success or failure with [`Response::success`] and
    /// [`Response::failure`] (Locust `catch_response=True`). Until it does, the request
    /// counts as failed when its status is 400 or more.
    pub fn catch_response(mut self) -> Self {
        self.inner.catch_response = true;
        self
    }

    /// Sends the request and waits for the whole response. Transport errors (refused,
    /// timed out, ...) are recorded as failures by the host and returned here.
    pub fn send(self) -> Result<Response, HttpError> {
        // The headers and body stay on the host until the response reads them (`response`).
        crate::response::make_room();
        let sent = wit::send_bare(&self.inner);
        recycle(self.inner);
        sent.map(Response::received)
    }
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{form_encode, recycle, request};

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn a_recycled_request_leaves_nothing_in_the_next_one() {
        let first = request("POST", "/a")
            .header("x-a", "1")
            .name("n")
            .tag("k", "v")
            .body("b")
            .timeout(Duration::from_secs(1))
            .catch_response();
        recycle(first.inner);
        let next = request("GET", String::from("/b")).header("x-b", 2.to_string()).inner;
        assert_eq!((next.method.as_str(), next.url.as_str()), ("GET", "/b"));
        assert_eq!(next.headers, [("x-b".to_owned(), "2".to_owned())]);
        assert_eq!((next.body, next.name, next.timeout_ms, next.catch_response), (None, None, None, false));
        assert!(next.tags.is_empty());
    }
}
