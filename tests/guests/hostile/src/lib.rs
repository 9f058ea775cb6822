//! A scenario that misbehaves on purpose, for the sandbox tests. VU 1 does what the
//! `HOSTILE` environment variable names, in every task; every other VU sends `GET /ok` (its
//! id in `x-vu`) and waits 20 ms, so a test can check that each of the others kept its pace.
//!
//! - `loop`: computes forever without calling the host.
//! - `recursion`: recurses without end.
//! - `memory`: allocates 1 MiB blocks and keeps them, without end.
//! - `huge-url`, `huge-header`, `many-headers`, `huge-body`: a request past the host's size limits.
//! - `forbidden-header`: sets `Host`, then `Transfer-Encoding`, then `Connection`.
//! - `crlf-header`: a header value with CR LF, to inject a header.
//! - `ssrf:URL`: a request to `URL` (the metadata service, another loopback port, an IP
//!   literal in another spelling, a name that resolves to a private address).
//! - `log-flood`: 1,000 log lines and 1,000 stdout lines per task, with ANSI escapes that
//!   would clear the screen and recolour it.
//! - `resources`: creates host resources (clock pollables) and never drops them.
//! - `read-file`, `env`, `socket`: reads `/etc/passwd`, lists the environment, opens a TCP
//!   socket to `HOSTILE_SOCKET`; an error says what it got if that worked.
//!
//! A refused request is reported as the task's error, with the runner's message.

use std::hint::black_box;

use wasmload::prelude::*;

#[derive(Default)]
struct Hostile;

impl User for Hostile {
    fn plan() -> Plan<Self> {
        Plan::new().task("attack", |_: &mut Hostile| attack()).wait_time(constant(0.02))
    }
}

fn attack() -> TaskResult {
    if vu::id() != 1 {
        get("/ok").header("x-vu", vu::id().to_string()).send()?;
        return Ok(());
    }
    let mode = std::env::var("HOSTILE").unwrap_or_default();
    match mode.as_str() {
        "loop" => {
            let mut x = 0u64;
            loop {
                x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "recursion" => {
            black_box(recurse(black_box(0)));
        }
        "memory" => {
            let mut kept: Vec<Vec<u8>> = Vec::new();
            loop {
                kept.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        "huge-url" => {
            get(format!("/{}", "a".repeat(100_000))).send()?;
        }
        "huge-header" => {
            get("/attack").header("x-big", "b".repeat(100_000)).send()?;
        }
        "many-headers" => {
            let mut request = get("/attack");
            for i in 0..10_000 {
                request = request.header(format!("x-h{i}"), "v");
            }
            request.send()?;
        }
        "huge-body" => {
            post("/attack").body(vec![b'x'; 20 << 20]).send()?;
        }
        "forbidden-header" => {
            for (name, value) in
                [("Host", "internal.example"), ("Transfer-Encoding", "chunked"), ("Connection", "close")]
            {
                if let Err(e) = get("/attack").header(name, value).send() {
                    vu::log(Level::Warn, &format!("refused: {e}"));
                    continue;
                }
                return Err(Error::msg(format!("the runner sent a request with `{name}` set by the guest")));
            }
            return Err(Error::msg("all forbidden headers refused"));
        }
        "crlf-header" => {
            get("/attack").header("x-a", "1\r\nx-injected: 1").send()?;
        }
        ssrf if ssrf.starts_with("ssrf:") => {
            get(&ssrf["ssrf:".len()..]).send()?;
            return Err(Error::msg(format!("reached {}", &ssrf["ssrf:".len()..])));
        }
        "log-flood" => {
            for i in 0..1000 {
                vu::log(Level::Info, &format!("\x1b[2J\x1b[31mflood {i}\x1b[0m"));
                println!("\x1b[H\x1b[2Jout {i}");
            }
        }
        "resources" => {
            let mut kept = Vec::new();
            loop {
                kept.push(wasip2::clocks::monotonic_clock::subscribe_duration(1_000_000_000));
            }
        }
        "read-file" => {
            return match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => Err(Error::msg(format!("read /etc/passwd: {} bytes", text.len()))),
                Err(e) => Err(Error::msg(format!("no file access: {e}"))),
            };
        }
        "env" => {
            let names: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
            return Err(Error::msg(format!("environment: {}", names.join(","))));
        }
        "socket" => {
            let target = std::env::var("HOSTILE_SOCKET").unwrap_or_default();
            return match std::net::TcpStream::connect(&target) {
                Ok(_) => Err(Error::msg(format!("opened a socket to {target}"))),
                Err(e) => Err(Error::msg(format!("no socket: {e}"))),
            };
        }
        other => return Err(Error::msg(format!("unknown HOSTILE mode `{other}`"))),
    }
    Ok(())
}

fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(black_box(depth))
}

export_user!(Hostile);
