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
    std::env::var_os("WASMLOAD_BENCH_NO_LIMITS").is_some_and(|v| v == "1")
}

/// How often the engine's epoch advances. A guest that computes without calling the host
/// yields its worker thread at each tick, so one busy VU cannot starve the others and a
/// stop request can always interrupt it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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

/// Plans larger than this keep their compilation on disk (`plan::cache`). Rust plans
/// (0.1-0.5 MB) compile in about 0.1 s; Python and JavaScript plans (2-20 MB) take seconds,
/// and load from the cache in tens of milliseconds.
pub const CACHE_PLANS_ABOVE: usize = 1024 * 1024;

/// Compiled plans kept in the cache, most recently used first: a Python plan's entry is
/// about 36 MB, so the cache stays under about 600 MB.
pub const CACHE_ENTRIES: usize = 16;

/// Plans larger than this are compiled on every core. Small plans compile in tens of
/// milliseconds on one thread, and skipping the compiler's thread pool keeps the runner's
/// base memory down.
pub const PARALLEL_COMPILE_ABOVE: u64 = 2 * 1024 * 1024;

/// A VU about to wait at least this long gives its host stack's pages back first (see
/// `plan::stacks`). Measured with 2,000 VUs each sending a request then waiting 1 s, for
/// 11 s (release build, one core): releasing costs about 9 µs of CPU per wait (a system call
/// now, faulting back the 3-4 pages the next call touches) and saves 15 KiB per VU (162
/// against 192 MiB peak RSS). So it is kept for waits long enough that the cost is small
/// (about 1 % of a core per 1,000 VUs waiting this long) and the memory matters: with
/// Locust's usual `between(1, 3)` every VU waits that long.
pub const RELEASE_STACK_BEFORE_WAIT: Duration = Duration::from_secs(1);

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

/// Native stack wasm frames may use. Deep recursion in the guest traps cleanly ("call stack
/// exhausted") well before the 2 MiB host stack its calls run on (see `plan::stacks`).
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// Bytes of a request URL. Servers commonly refuse more than 8 KiB.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// Headers per request, and bytes of all their names and values together. Typical servers
/// refuse above 100 headers or 8-64 KiB of headers.
pub const MAX_REQUEST_HEADERS: usize = 100;
pub const MAX_REQUEST_HEADER_BYTES: usize = 64 * 1024;

/// Bytes of a request body. Load tests send forms and JSON; this bounds what a guest can
/// make the host copy and send per request.
pub const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// Bytes of a request name (or of the URL standing for it) in the statistics. Names are keys
/// shown in every table and report; longer ones are cut and marked with `…`.
pub const MAX_NAME_BYTES: usize = 256;

/// Checks plus custom metric series (a metric name with one set of tags) a scenario may
/// create, per VU worker thread. Each series is a map entry on the hot path and a row in
/// every report; a scenario that puts a request id in a tag would otherwise grow memory
/// and reports without bound. k6 has no limit and warns of the same hazard in its docs.
pub const MAX_METRIC_SERIES: usize = 1000;

/// Host resources (WASI streams, pollables, ...) one VU's instance may hold at once. Each
/// is host memory the guest makes the runner keep; a scenario needs a handful. Past it,
/// the call that would create one traps and the VU starts afresh.
pub const MAX_HOST_RESOURCES: usize = 10_000;
