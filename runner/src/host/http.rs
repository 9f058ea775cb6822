//! `wasmload:scenario/http`: sends the guest's request through the VU's client, records
//! the timing, and returns the response. `catch-response` requests wait in
//! `PendingResponses` until the guest settles them with `report` or its task ends.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, Linker, WasmList, WasmStr};

use super::{GuestClock, VuState};
use crate::bindings::http::{BareResponse, Host, HttpError, LeanResponse, Request, Response, Timings};
use crate::client::{Headers, Outgoing, Phases, SendError, VuClient};
use crate::limits::{KEPT_RESPONSE_HEADERS, MAX_NAME_BYTES, MAX_PENDING_RESPONSES};
use crate::stats::{Outcome, Recorder, Sample};

/// A finished request and what its record needs. A `catch-response` one waits, owned, until
/// the guest decides its outcome; any other is recorded at once with its strings borrowed
/// from the request.
#[derive(Debug)]
struct Pending<'a> {
    id: u64,
    method: Cow<'a, str>,
    name: Cow<'a, str>,
    elapsed_us: u64,
    corrected_us: Option<u64>,
    phases: Option<Phases>,
    scenario: Option<Arc<str>>,
    tags: String,
    bytes: u64,
    status: u16,
    /// The outcome if the guest says nothing: the status-based failure message, if any.
    default_failure: Option<String>,
}

impl Pending<'_> {
    fn record(&self, recorder: &Recorder, outcome: Result<(), &str>) {
        recorder.request(&Sample {
            method: &self.method,
            name: &self.name,
            elapsed_us: self.elapsed_us,
            corrected_us: self.corrected_us,
            phases: self.phases,
            scenario: self.scenario.as_deref(),
            tags: &self.tags,
            bytes: self.bytes,
            status: self.status,
            outcome: match outcome {
                Ok(()) => Outcome::Success,
                Err(message) => Outcome::Failure(message),
            },
        });
    }

    fn record_default(&self, recorder: &Recorder) {
        self.record(recorder, self.default_failure.as_deref().map_or(Ok(()), Err));
    }

    /// The same, holding its own strings, to wait for the guest.
    fn into_owned(self) -> Pending<'static> {
        Pending { method: Cow::Owned(self.method.into_owned()), name: Cow::Owned(self.name.into_owned()), ..self }
    }
}

/// One VU's unsettled `catch-response` requests, oldest first.
#[derive(Debug, Default)]
pub struct PendingResponses {
    queue: VecDeque<Pending<'static>>,
    next_id: u64,
}

impl PendingResponses {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn push(&mut self, pending: Pending<'static>, recorder: &Recorder) {
        if self.queue.len() >= MAX_PENDING_RESPONSES
            && let Some(oldest) = self.queue.pop_front()
        {
            oldest.record_default(recorder);
        }
        self.queue.push_back(pending);
    }

    fn settle(&mut self, id: u64, outcome: Result<(), &str>, recorder: &Recorder) {
        if let Some(i) = self.queue.iter().position(|p| p.id == id)
            && let Some(pending) = self.queue.remove(i)
        {
            pending.record(recorder, outcome);
        }
    }

    pub(super) fn settle_all(&mut self, recorder: &Recorder) {
        for pending in self.queue.drain(..) {
            pending.record_default(recorder);
        }
    }
}

/// The parts of the responses returned during the current guest call that the guest has not
/// been given yet, newest last: headers (`send-lean`, `send-bare`) for `response-headers`, and
/// bodies (`send-bare`) for `response-body`. Emptied after every call.
#[derive(Debug, Default)]
pub struct ResponseStash(VecDeque<Kept>);

#[derive(Debug)]
struct Kept {
    id: u64,
    headers: Headers,
    body: Vec<u8>,
}

impl ResponseStash {
    /// Keeps a response's parts, unless it has none (the guest then asks for nothing).
    fn keep(&mut self, id: u64, headers: Headers, body: Vec<u8>) {
        if headers.is_empty() && body.is_empty() {
            return;
        }
        if self.0.len() >= KEPT_RESPONSE_HEADERS {
            self.0.pop_front();
        }
        self.0.push_back(Kept { id, headers, body });
    }

    fn find(&self, id: u64) -> Option<&Kept> {
        self.0.iter().rev().find(|kept| kept.id == id)
    }

    fn headers(&self, id: u64) -> Vec<(String, String)> {
        self.find(id).map(|kept| kept.headers.to_pairs()).unwrap_or_default()
    }

    fn body(&self, id: u64) -> Vec<u8> {
        self.find(id).map(|kept| kept.body.clone()).unwrap_or_default()
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

/// What sending a request needs, owned so that the exchange can run off the VU's fiber
/// (`offload`): the VU's client, and its request, whose strings every request reuses.
pub struct Sender {
    client: VuClient,
    request: Request,
    recorder: Recorder,
    clock: GuestClock,
    /// What the last exchange got, until the host function takes it (carried here so that
    /// the exchange's output, moved a few times on its way back, is one pointer).
    outcome: Option<Result<Sent, HttpError>>,
}

/// A response, and what the guest must settle about it: a `catch-response` request waits
/// for the guest's verdict in the VU's `PendingResponses`; any other was recorded already.
pub struct Sent {
    response: LeanResponse,
    headers: Headers,
    /// Boxed: the exchange's output is moved a few times on its way to the guest, and the
    /// record inline would triple its size for the few requests that have one.
    pending: Option<Box<Pending<'static>>>,
}

impl Sender {
    pub fn new(client: VuClient, recorder: Recorder, clock: GuestClock) -> Self {
        Self { client, request: empty_request(), recorder, clock, outcome: None }
    }

    /// Frees the client's buffers and the request's strings before a long wait.
    pub fn release(&mut self) {
        self.client.release();
        self.request = empty_request();
    }

    /// Sends `self.request` and records it (unless the guest will settle it), as request
    /// `id` of its VU.
    async fn send(&mut self, id: u64, late_by_us: Option<u64>, scenario: Option<Arc<str>>) -> Result<Sent, HttpError> {
        // Waiting for the run's request-rate ceiling is not part of the request's time.
        self.client.pace().await;
        let started = Instant::now();
        let Request { method, url, headers, body, name, timeout_ms, tags, catch_response } = &self.request;
        let outgoing = Outgoing {
            method,
            url,
            headers,
            body: body.as_deref(),
            timeout: timeout_ms.map(|ms| Duration::from_millis(u64::from(ms))),
            started,
        };
        let result = self.client.send(outgoing).await;
        self.clock.reset();
        // A response carries when it ended: one clock read fewer per request.
        let finished = result.as_ref().map_or_else(|_| Instant::now(), |incoming| incoming.finished);
        let elapsed_us = u64::try_from(finished.duration_since(started).as_micros()).unwrap_or(u64::MAX);
        // Under an open model the request also counts from its iteration's scheduled start.
        let corrected_us = late_by_us.map(|late| elapsed_us.saturating_add(late));
        // Statistics group by upper-case method and by name, or the URL when unnamed.
        let method: Cow<'_, str> = if method.bytes().any(|b| b.is_ascii_lowercase()) {
            method.to_ascii_uppercase().into()
        } else {
            method.into()
        };
        // A name (or URL) is a statistics key shown in every report: keep it short.
        let name: Cow<'_, str> = match name.as_deref().unwrap_or(url) {
            name if name.len() > MAX_NAME_BYTES => format!("{}…", super::vu::truncate(name, MAX_NAME_BYTES)).into(),
            name => name.into(),
        };
        let tags = tag_set(tags);
        let incoming = match result {
            Ok(incoming) => incoming,
            Err(error) => {
                let message = error.to_string();
                self.recorder.request(&Sample {
                    method: &method,
                    name: &name,
                    elapsed_us,
                    corrected_us,
                    phases: None,
                    scenario: scenario.as_deref(),
                    tags: &tags,
                    bytes: 0,
                    status: 0,
                    outcome: Outcome::Failure(&message),
                });
                return Err(match error {
                    SendError::Invalid(m) => HttpError::InvalidRequest(m),
                    SendError::Connect(m) => HttpError::Connect(m),
                    SendError::Timeout(_) => HttpError::Timeout,
                    SendError::Protocol(m) => HttpError::Protocol(m),
                });
            }
        };
        let default_failure = (incoming.status >= 400).then(|| format!("HTTP {} {}", incoming.status, incoming.reason));
        let phases = incoming.phases;
        let pending = Pending {
            id,
            method,
            name,
            elapsed_us,
            corrected_us,
            phases: Some(phases),
            scenario,
            tags,
            bytes: incoming.body_len,
            status: incoming.status,
            default_failure,
        };
        let pending = if *catch_response {
            Some(Box::new(pending.into_owned()))
        } else {
            pending.record_default(&self.recorder);
            None
        };
        let response = LeanResponse {
            id,
            status: incoming.status,
            body: incoming.body,
            elapsed_us,
            timings: Timings {
                connect_us: phases.connect_us,
                waiting_us: phases.waiting_us,
                receiving_us: phases.receiving_us,
            },
            header_count: u32::try_from(incoming.headers.len()).unwrap_or(u32::MAX),
        };
        Ok(Sent { response, headers: incoming.headers, pending })
    }
}

impl VuState {
    /// The VU's sender, taken for one request; a trap if a request is already out (the
    /// guest waits for each, so only a dropped call could leave one out, and its VU is gone).
    fn take_sender(&mut self) -> wasmtime::Result<Box<Sender>> {
        self.sender.take().ok_or_else(|| wasmtime::Error::msg("the VU's HTTP client is busy with another request"))
    }

    /// Launches `sender`'s request on the VU's offload, to run off the fiber.
    fn launch(&mut self, mut sender: Box<Sender>) {
        let id = self.pending.next_id();
        let (late_by_us, scenario) = (self.late_by_us, self.scenario.clone());
        // Written straight into its heap block: built on the fiber stack and copied there,
        // the future (1.5 KiB) cost as many cache lines read as written on every request.
        let work = Box::write(Box::new_uninit(), async move {
            sender.outcome = Some(sender.send(id, late_by_us, scenario).await);
            sender
        });
        self.offload.launch(Box::into_pin(work));
    }

    /// The launched request's outcome once its exchange is done (driven by the VU's task, or
    /// polled here when no task drives the call), with the sender back in its place.
    async fn landed(&mut self) -> wasmtime::Result<Result<Sent, HttpError>> {
        let mut sender = self.offload.finish().await;
        let outcome = sender.as_mut().and_then(|sender| sender.outcome.take());
        self.sender = sender;
        outcome.ok_or_else(|| wasmtime::Error::msg("the VU's request was not launched"))
    }

    /// Sends `request` (the generated bindings' path): launched and waited for as
    /// `add_sends`' functions do.
    async fn send_here(&mut self, request: Request) -> Result<Sent, HttpError> {
        let mut sender = self.take_sender().map_err(|busy| HttpError::Protocol(busy.to_string()))?;
        sender.request = request;
        self.launch(sender);
        self.landed().await.unwrap_or_else(|lost| Err(HttpError::Protocol(lost.to_string())))
    }

    /// Takes a response in: its `catch-response` record waits for the guest.
    fn settle(&mut self, sent: Sent) -> (LeanResponse, Headers) {
        if let Some(pending) = sent.pending {
            self.pending.push(*pending, &self.recorder);
        }
        (sent.response, sent.headers)
    }

    fn full(&mut self, sent: Sent) -> Response {
        let (response, headers) = self.settle(sent);
        let LeanResponse { id, status, body, elapsed_us, timings, header_count: _ } = response;
        Response { id, status, headers: headers.to_pairs(), body, elapsed_us, timings }
    }

    fn without_headers(&mut self, sent: Sent) -> LeanResponse {
        let (response, headers) = self.settle(sent);
        self.kept.keep(response.id, headers, Vec::new());
        response
    }

    fn without_parts(&mut self, sent: Sent) -> BareResponse {
        let (response, headers) = self.settle(sent);
        let LeanResponse { id, status, body, elapsed_us, timings, header_count } = response;
        let body_len = body.len() as u64;
        self.kept.keep(id, headers, body);
        BareResponse { id, status, body_len, elapsed_us, timings, header_count }
    }
}

/// The generated bindings, which lift every request into fresh strings. At run time the
/// guest reaches the same code through [`add_sends`]' functions instead.
impl Host for VuState {
    async fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        self.send_here(request).await.map(|sent| self.full(sent))
    }

    async fn send_lean(&mut self, request: Request) -> Result<LeanResponse, HttpError> {
        self.send_here(request).await.map(|sent| self.without_headers(sent))
    }

    async fn send_bare(&mut self, request: Request) -> Result<BareResponse, HttpError> {
        self.send_here(request).await.map(|sent| self.without_parts(sent))
    }

    fn response_body(&mut self, id: u64) -> Vec<u8> {
        self.kept.body(id)
    }

    fn response_headers(&mut self, id: u64) -> Vec<(String, String)> {
        self.kept.headers(id)
    }

    fn report(&mut self, id: u64, outcome: Result<(), String>) {
        self.pending.settle(id, outcome.as_ref().map(|_| ()).map_err(String::as_str), &self.recorder);
    }
}

/// The WIT `request` record as the guest passed it, its strings and lists still in the
/// guest's memory. [`add_sends`] copies them into the VU's own request, whose strings every
/// request reuses: lifted by the generated bindings, each request was five allocations (the
/// method, the URL, each header's name and value, the header list) and as many frees.
#[derive(ComponentType, Lift)]
#[component(record)]
struct GuestRequest {
    method: WasmStr,
    url: WasmStr,
    headers: WasmList<(WasmStr, WasmStr)>,
    body: Option<WasmList<u8>>,
    name: Option<WasmStr>,
    #[component(name = "timeout-ms")]
    timeout_ms: Option<u32>,
    tags: WasmList<(WasmStr, WasmStr)>,
    #[component(name = "catch-response")]
    catch_response: bool,
}

impl GuestRequest {
    /// Copies the request into `into`, reusing its strings and lists.
    fn copy_into(&self, store: &mut StoreContextMut<'_, VuState>, into: &mut Request) -> wasmtime::Result<()> {
        copy_str(&self.method, store, &mut into.method)?;
        copy_str(&self.url, store, &mut into.url)?;
        copy_pairs(&self.headers, store, &mut into.headers)?;
        into.body = self.body.as_ref().map(|list| {
            let mut body = into.body.take().unwrap_or_default();
            body.clear();
            body.extend_from_slice(list.as_le_slice(&*store));
            body
        });
        into.name = match &self.name {
            Some(name) => {
                let mut text = into.name.take().unwrap_or_default();
                copy_str(name, store, &mut text)?;
                Some(text)
            }
            None => None,
        };
        into.timeout_ms = self.timeout_ms;
        copy_pairs(&self.tags, store, &mut into.tags)?;
        into.catch_response = self.catch_response;
        Ok(())
    }
}

fn copy_str(from: &WasmStr, store: &StoreContextMut<'_, VuState>, into: &mut String) -> wasmtime::Result<()> {
    into.clear();
    into.push_str(&from.to_str(store)?);
    Ok(())
}

fn copy_pairs(
    from: &WasmList<(WasmStr, WasmStr)>,
    store: &mut StoreContextMut<'_, VuState>,
    into: &mut Vec<(String, String)>,
) -> wasmtime::Result<()> {
    into.truncate(from.len());
    for i in 0..from.len() {
        let Some(pair) = from.get(&mut *store, i) else { break };
        let (name, value) = pair?;
        if i == into.len() {
            into.push(Default::default());
        }
        copy_str(&name, store, &mut into[i].0)?;
        copy_str(&value, store, &mut into[i].1)?;
    }
    Ok(())
}

/// A request with nothing in it, whose strings the next request fills.
fn empty_request() -> Request {
    Request {
        method: String::new(),
        url: String::new(),
        headers: Vec::new(),
        body: None,
        name: None,
        timeout_ms: None,
        tags: Vec::new(),
        catch_response: false,
    }
}

/// Defines `send`, `send-lean` and `send-bare` over the generated bindings' own: the same
/// sending and recording, but the guest's request is copied into buffers the VU reuses
/// instead of lifted into new strings (`GuestRequest`), and the exchange runs off the VU's
/// fiber (`offload`). `linker` must already hold the generated `http` functions.
pub fn add_sends(linker: &mut Linker<VuState>) -> wasmtime::Result<()> {
    /// Copies the guest's request into the VU's sender and launches the exchange; the future
    /// the guest's call waits on only takes the exchange's output in.
    macro_rules! send_with {
        ($http:ident, $name:literal, $finish:ident) => {
            $http.func_wrap_async($name, |mut store: StoreContextMut<'_, VuState>, (request,): (GuestRequest,)| {
                let launched = store.data_mut().take_sender().and_then(|mut sender| {
                    let copied = request.copy_into(&mut store, &mut sender.request);
                    let state = store.data_mut();
                    match copied {
                        Ok(()) => state.launch(sender),
                        Err(_) => state.sender = Some(sender),
                    }
                    copied
                });
                Box::new(async move {
                    launched?;
                    let state = store.data_mut();
                    let result = state.landed().await?;
                    Ok((result.map(|sent| state.$finish(sent)),))
                })
            })?;
        };
    }
    linker.allow_shadowing(true);
    let mut http = linker.instance(HTTP_INSTANCE)?;
    send_with!(http, "send", full);
    send_with!(http, "send-lean", without_headers);
    send_with!(http, "send-bare", without_parts);
    linker.allow_shadowing(false);
    Ok(())
}

/// The name the generated bindings give the `http` interface's instance in the linker.
const HTTP_INSTANCE: &str = "wasmload:scenario/http@0.1.0";

/// The guest's request tags as one series key: `k:v` pairs, each cut to `MAX_NAME_BYTES`,
/// sorted, joined by commas (empty when there are none).
fn tag_set(tags: &[(String, String)]) -> String {
    if tags.is_empty() {
        return String::new();
    }
    let cut = |s: &str| super::vu::truncate(s, MAX_NAME_BYTES).to_owned();
    crate::stats::SeriesKey::new("", &tags.iter().map(|(k, v)| (cut(k), cut(v))).collect::<Vec<_>>()).tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stash_keeps_the_newest_responses_parts_until_cleared() {
        let mut stash = ResponseStash::default();
        let headers = |i: u64| {
            let mut headers = Headers::default();
            headers.push("x-i", i.to_string().as_bytes());
            headers
        };
        let pairs = |i: u64| vec![("x-i".to_owned(), i.to_string())];
        let body = |i: u64| format!("body {i}").into_bytes();
        for i in 0..=KEPT_RESPONSE_HEADERS as u64 {
            stash.keep(i, headers(i), body(i));
        }
        assert!(stash.headers(0).is_empty() && stash.body(0).is_empty(), "the oldest is dropped past the limit");
        assert_eq!((stash.headers(1), stash.body(1)), (pairs(1), body(1)));
        let last = KEPT_RESPONSE_HEADERS as u64;
        assert_eq!((stash.headers(last), stash.body(last)), (pairs(last), body(last)));
        assert_eq!((stash.headers(1), stash.body(1)), (pairs(1), body(1)), "reading does not consume");
        stash.clear();
        assert!(stash.headers(1).is_empty() && stash.body(1).is_empty());
    }

    /// The Rust SDK fetches a response's parts before the host forgets them, so it must
    /// count as many responses as the host keeps (the Python SDK's twin: `build::sdk`).
    #[test]
    fn the_rust_sdk_knows_how_many_responses_the_host_keeps() {
        let sdk = include_str!("../../../sdk/src/response.rs");
        let line = format!("\nconst HOST_KEEPS: usize = {KEPT_RESPONSE_HEADERS};\n");
        assert!(sdk.contains(&line), "sdk/src/response.rs must say{line}");
    }

    #[test]
    fn responses_with_nothing_to_fetch_take_no_place() {
        let mut stash = ResponseStash::default();
        stash.keep(1, Headers::default(), b"kept".to_vec());
        for i in 2..=KEPT_RESPONSE_HEADERS as u64 + 1 {
            stash.keep(i, Headers::default(), Vec::new());
        }
        assert_eq!(stash.body(1), b"kept", "empty responses pushed nothing out");
    }
}
