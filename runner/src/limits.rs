//! Every limit the runner applies, in one place, each with the reason for its value.

use std::time::Duration;

/// Response body bytes handed back to the guest. Larger bodies are still read to the end
/// (and counted in the statistics) but truncated, so a huge download cannot blow up guest
/// memory or the host's copy of it.
pub const MAX_BODY_KEPT: usize = 16 * 1024 * 1024;

/// Timeout of a request whose scenario sets none. Long enough for slow endpoints, short
/// enough that a hung server cannot freeze a VU for the whole run (Locust has none; k6 60 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request may wait to open a connection (DNS + TCP + TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a sent request may wait for the first byte of its response. Shorter than the
/// whole request's limit, so a server that accepts and never answers frees the VU (and the
/// connection's memory) sooner, while a slow but streaming download still has the full time.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a response body may go without a byte before the request fails: a trickling
/// server cannot hold a VU and its buffers for the whole request timeout one byte at a time.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// `WASMLOAD_BENCH_NO_LIMITS=1` turns off epoch interruption (CPU limits, yielding) and the
/// guest memory limiter, for one purpose: measuring what they cost, side by side with a
/// normal run (`tests/bench/limits.sh`). Never for running plans one does not trust; the
/// runner refuses it together with `--policy`, and warns whenever it is on.
pub fn limits_off_for_benchmark() -> bool {
    // Read once: every VU's store asks.
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("WASMLOAD_BENCH_NO_LIMITS").is_some_and(|v| v == "1"))
}

/// How often the engine's epoch advances. A guest that computes without calling the host
/// yields its worker thread at each tick, so one busy VU cannot starve the others and a
/// stop request can always interrupt it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How often the epoch advances while some guest has computed for longer than `EPOCH_TICK`
/// without calling the host: the longest a VU that shares a thread with it waits for its turn.
pub const BUSY_EPOCH_TICK: Duration = Duration::from_millis(1);

/// Bytes of a single guest log line kept; the rest is cut, so a runaway guest cannot fill
/// the terminal with one call.
pub const MAX_LOG_LINE: usize = 4096;

/// Lines a VU may print a second (`vu.log`, stdout, stderr), in bursts of twice as many. A
/// scenario logging every request at 1,000 requests/s would otherwise bury the status line
/// and the runner's own messages, and serialise every VU on the terminal's lock.
pub const GUEST_LOG_LINES_PER_SEC: u32 = 10;

/// Lines all VUs together may print a second: what a person (or a CI log) can still read.
pub const ALL_GUESTS_LOG_LINES_PER_SEC: u32 = 100;

/// `catch-response` requests a guest may leave unsettled within one task; beyond this the
/// oldest is settled with its default outcome so host memory stays bounded.
pub const MAX_PENDING_RESPONSES: usize = 1024;

/// How long a plan's `describe` may take. It only builds a small record, so this is about
/// instantiation; a plan that spins for longer is broken and must not hang the runner.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Plans larger than this show a progress line while they compile. Rust plans (0.1-0.5 MB)
/// compile in about 0.1 s; Python and JavaScript plans (2-20 MB) take seconds.
pub const COMPILE_PROGRESS_ABOVE: usize = 1024 * 1024;

/// Compiled plans kept (`plan::cache`): the most recently used, at most this many and this
/// many bytes together (a Python plan's entry is about 36 MB, a Rust plan's under 1 MB).
pub const CACHE_ENTRIES: usize = 32;
pub const CACHE_BYTES: u64 = 1 << 30;

/// Plans larger than this are compiled on every core. Small plans compile in tens of
/// milliseconds on one thread, and skipping the compiler's thread pool keeps the runner's
/// base memory down.
pub const PARALLEL_COMPILE_ABOVE: u64 = 2 * 1024 * 1024;

/// A VU about to wait at least this long gives its connection's read buffer back first (to
/// its worker's spares, `client::buffers`), with its request head and the response parts it
/// kept, and the first time also shares back the memory-image pages it wrote but left equal
/// (`plan::memories`). Measured with 2,000 VUs each waiting 1 s between requests for 8 s
/// (`release` build, one core, AMD machine): 5 KiB less per VU (151 against 161 MB of peak
/// RSS) for no CPU that the noise shows (1.75-1.80 against 1.78-1.95 CPU-s).
pub const RELEASE_BUFFERS_BEFORE_WAIT: Duration = Duration::from_secs(1);

/// A VU about to wait at least this long also gives its host stack's pages back (see
/// `plan::stacks`); the next call faults the 3-4 it touches back in. That saves 11.5 KiB per
/// VU and costs about 25 µs of CPU per wait on the AMD machine (measured as above: releasing
/// the stack before 1 s waits, 128-138 against 151 MB and 2.13-2.45 against 1.75-1.80 CPU-s;
/// 9 µs on the Intel machine before it). From 1 s, as it was, that was 2.5 % of a core per
/// 1,000 VUs and half again the CPU of a paced request (the benchmark's paced part, 1,000
/// against 990 ms waits: 82-107 against 39-71 µs per request in six runs). From 3 s it is
/// about 1 % of a core per 1,000 VUs waiting this long, while VUs paced at a second or two
/// (k6's `sleep(1)`, Locust's `between(1, 3)`) keep their stack and run without the faults.
pub const RELEASE_STACK_BEFORE_WAIT: Duration = Duration::from_secs(3);

/// A VU about to wait at least this long also hibernates its linear memory
/// (`plan::memories`): about 35 KiB less per idle VU of a Rust plan, for about 30 µs of CPU
/// per wait (measured: 500 VUs waiting 1 s between requests, hibernating from 1 s, `release`
/// build: 79-80 against 49 µs of CPU per request). From 5 s that is at most 0.7 % of a
/// core per 1,000 VUs, while VUs that wait a second or two, and so run often, keep their
/// memory resident. (On the AMD machine, 500 VUs waiting 4990 against 5000 ms, `dist`: 35-65
/// µs per wait, about 1 % of a core per 1,000 VUs waiting 5 s.)
pub const HIBERNATE_BEFORE_WAIT: Duration = Duration::from_secs(5);

/// Plans whose data segments total at most this get memories the runner makes, which map
/// the image themselves and which idle VUs can hibernate (`plan::layout`,
/// `plan::memories`; the probe plan's segments fill 6 pages). Where the memfd cannot be
/// made, or the segments cannot be emptied, wasmtime writes them into each memory, so 64 KiB
/// then costs a VU about 16 page faults as it starts. Python and JavaScript plans
/// (megabytes) keep wasmtime's copy-on-write memories.
pub const HIBERNATE_IMAGES_UP_TO: u64 = 64 * 1024;

/// A memory with more resident pages than this stays resident while its VU waits: packing
/// and unpacking cost a few microseconds per page, so a wait of `HIBERNATE_BEFORE_WAIT`
/// spends at most about 0.02 % of it on hibernating 1 MiB.
pub const HIBERNATE_MAX_PAGES: usize = 256;

/// Linear memory one VU's guest may have (`--max-vu-memory`). A Rust scenario uses one or
/// two MiB; an interpreter (Python, JavaScript) tens. Growing past it traps that VU only,
/// so one scenario bug cannot take the machine's memory from thousands of VUs.
pub const MAX_VU_MEMORY: usize = 64 * 1024 * 1024;

/// Guest compute allowed between two waits on the host (a request or a sleep;
/// `--max-guest-cpu`). A scenario that computes this long without doing either is stuck
/// (`loop {}`) or hostile; it is stopped and its VU starts afresh, and other VUs on the same
/// thread keep running meanwhile because guests yield at every epoch tick.
pub const MAX_GUEST_CPU: Duration = Duration::from_secs(10);

/// Elements of a guest's function table. Compilers emit a few thousand at most; the limit
/// bounds the host memory a guest can make the runner allocate through `table.grow`.
pub const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Address space each VU's linear memory reserves when the run's users would not fit in the
/// process's address space with wasmtime's default 4 GiB (see `plan::layout`): 256 MiB and
/// the 32 MiB guard leave room for over 400,000 VUs, and it is four times the default
/// `--max-vu-memory`, so a memory within that limit never has to move as it grows.
pub const COMPACT_RESERVATION: u64 = 256 << 20;

/// Native stack wasm frames may use. Deep recursion in the guest traps cleanly ("call stack
/// exhausted") well before the 2 MiB host stack its calls run on (see `plan::stacks`).
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// The host stack a VU's calls run on (wasmtime's default, set so that the room kept for it
/// below the VU's memory, `plan::memories`, is known to fit it). Only the pages a call
/// touches are memory.
pub const ASYNC_STACK: usize = 2 << 20;

/// Bytes of a request URL. Servers commonly refuse more than 8 KiB.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// Headers per request, and bytes of all their names and values together. Typical servers
/// refuse above 100 headers or 8-64 KiB of headers.
pub const MAX_REQUEST_HEADERS: usize = 100;
pub const MAX_REQUEST_HEADER_BYTES: usize = 64 * 1024;

/// Bytes of a request body. Load tests send forms and JSON; this bounds what a guest can
/// make the host copy and send per request.
pub const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// A response's status line and headers: at most this many headers (hyper's default) and
/// bytes. A server sending more is refused (a protocol error), so a hostile target cannot
/// make the host buffer without bound.
pub const MAX_RESPONSE_HEADERS: usize = 100;
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Responses whose headers a VU keeps for `response-headers` during one guest call.
pub const KEPT_RESPONSE_HEADERS: usize = 64;

/// Bytes of a request name (or of the URL standing for it) in the statistics. Names are keys
/// shown in every table and report; longer ones are cut and marked with `…`.
pub const MAX_NAME_BYTES: usize = 256;

/// Checks plus custom metric series (a metric name with one set of tags) a scenario may
/// create, per VU worker thread. Each series is a map entry on the hot path and a row in
/// every report; a scenario that puts a request id in a tag would otherwise grow memory
/// and reports without bound. k6 has no limit and warns of the same hazard in its docs.
pub const MAX_METRIC_SERIES: usize = 1000;

/// What a guest can make the host allocate, for one run: the constants above by default,
/// each changeable with `--limit NAME=VALUE` and capped by an operator policy's `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    pub url_bytes: usize,
    pub request_headers: usize,
    pub header_bytes: usize,
    pub request_body: usize,
    pub body_kept: usize,
    pub log_line: usize,
    pub log_lines_per_sec: usize,
    pub metric_series: usize,
    pub host_resources: usize,
}

impl Default for HostLimits {
    fn default() -> Self {
        Self {
            url_bytes: MAX_URL_BYTES,
            request_headers: MAX_REQUEST_HEADERS,
            header_bytes: MAX_REQUEST_HEADER_BYTES,
            request_body: MAX_REQUEST_BODY,
            body_kept: MAX_BODY_KEPT,
            log_line: MAX_LOG_LINE,
            log_lines_per_sec: GUEST_LOG_LINES_PER_SEC as usize,
            metric_series: MAX_METRIC_SERIES,
            host_resources: MAX_HOST_RESOURCES,
        }
    }
}

/// The names `--limit` and the policy's `[limits]` take, with what each bounds.
pub const LIMIT_NAMES: [(&str, &str); 9] = [
    ("url", "bytes of a request URL"),
    ("headers", "headers per request"),
    ("header-bytes", "bytes of a request's headers"),
    ("request-body", "bytes of a request body"),
    ("response-body", "bytes of a response body handed to the guest"),
    ("log-line", "bytes of a log line"),
    ("log-rate", "log lines per second per VU"),
    ("metric-series", "checks and custom metric series per worker thread"),
    ("resources", "host resources a VU holds at once"),
];

impl HostLimits {
    fn slot(&mut self, name: &str) -> Option<&mut usize> {
        Some(match name {
            "url" => &mut self.url_bytes,
            "headers" => &mut self.request_headers,
            "header-bytes" => &mut self.header_bytes,
            "request-body" => &mut self.request_body,
            "response-body" => &mut self.body_kept,
            "log-line" => &mut self.log_line,
            "log-rate" => &mut self.log_lines_per_sec,
            "metric-series" => &mut self.metric_series,
            "resources" => &mut self.host_resources,
            _ => return None,
        })
    }

    /// The limit called `name`.
    pub fn get(&self, name: &str) -> Option<usize> {
        let mut copy = *self;
        copy.slot(name).map(|v| *v)
    }

    /// Sets the limit called `name`; false for an unknown name.
    pub fn set(&mut self, name: &str, value: usize) -> bool {
        self.slot(name).map(|slot| *slot = value).is_some()
    }
}

/// The run's metric-series and host-resource limits, for the places that meet them far from
/// the run's settings (the statistics shards, the error message of a full resource table).
/// A process runs one test, so they are set once, when it starts.
static METRIC_SERIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(MAX_METRIC_SERIES);
static HOST_RESOURCES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(MAX_HOST_RESOURCES);

impl HostLimits {
    /// Makes these the limits [`metric_series`] and [`host_resources`] return.
    pub fn apply_to_process(&self) {
        METRIC_SERIES.store(self.metric_series, std::sync::atomic::Ordering::Relaxed);
        HOST_RESOURCES.store(self.host_resources, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Checks and custom metric series a worker thread records (`--limit metric-series`).
pub fn metric_series() -> usize {
    METRIC_SERIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Host resources a VU may hold (`--limit resources`).
pub fn host_resources() -> usize {
    HOST_RESOURCES.load(std::sync::atomic::Ordering::Relaxed)
}

/// `NAME=VALUE` for `--limit` and the policy: a known name, and a count or a size
/// (`64KiB`, `1MiB`) of at least 1.
pub fn parse_limit(s: &str) -> Result<(String, usize), String> {
    let known = || LIMIT_NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let (name, value) = s.split_once('=').ok_or_else(|| format!("`{s}` is not NAME=VALUE (names: {})", known()))?;
    let name = name.trim();
    if !LIMIT_NAMES.iter().any(|(n, _)| *n == name) {
        return Err(format!("`{name}` is not a limit; the limits are {}", known()));
    }
    let value = crate::cli::parse_size(value)?;
    if value == 0 {
        return Err(format!("the {name} limit must be at least 1"));
    }
    Ok((name.to_owned(), value))
}

/// Host resources (WASI streams, pollables, ...) one VU's instance may hold at once. Each
/// is host memory the guest makes the runner keep; a scenario needs a handful. Past it,
/// the call that would create one traps and the VU starts afresh.
pub const MAX_HOST_RESOURCES: usize = 10_000;
