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

/// How often the engine's epoch advances. A guest that computes without calling the host
/// yields its worker thread at each tick, so one busy VU cannot starve the others and a
/// stop request can always interrupt it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of a single guest log line kept; the rest is cut, so a runaway guest cannot fill
/// the terminal with one call.
pub const MAX_LOG_LINE: usize = 4096;

/// `catch-response` requests a guest may leave unsettled within one task; beyond this the
/// oldest is settled with its default outcome so host memory stays bounded.
pub const MAX_PENDING_RESPONSES: usize = 1024;

/// How long a plan's `describe` may take. It only builds a small record, so this is about
/// instantiation; a plan that spins for longer is broken and must not hang the runner.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Plans larger than this are compiled on every core. Small plans compile in tens of
/// milliseconds on one thread, and skipping the compiler's thread pool keeps the runner's
/// base memory down.
pub const PARALLEL_COMPILE_ABOVE: u64 = 2 * 1024 * 1024;

/// A VU about to wait at least this long gives its host stack's pages back first (see
/// `plan::stacks`). Releasing costs a system call now and about ten page faults at the next
/// call, some 10 µs in all, so it is kept for waits long enough that the cost is noise
/// (1 % of a core for every 1,000 VUs waiting this long) and the memory matters: with
/// Locust's usual `between(1, 3)` every VU waits that long.
pub const RELEASE_STACK_BEFORE_WAIT: Duration = Duration::from_secs(1);
