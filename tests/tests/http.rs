//! The HTTP client as users see it: cookies kept per VU, keep-alive, HTTPS with and
//! without `--insecure`, and absolute URLs.

use std::time::Duration;

use e2e::{Behaviour, Runner, Server, guests};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn each_user_keeps_its_own_cookies() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_LOGIN", "1")
        .env("PROBE_TASKS", "cart:1:/cart")
        .args(&["-u", "5", "-r", "100", "--iterations", "4"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let carts: Vec<_> = server.hits().into_iter().filter(|h| h.path == "/cart").collect();
    assert_eq!(carts.len(), 20);
    for hit in carts {
        let vu = hit.vu.expect("x-vu header");
        assert_eq!(
            hit.cookie.as_deref(),
            Some(format!("session=vu-{vu}").as_str()),
            "VU {vu} sent another user's cookie"
        );
    }
    assert_eq!(server.count("/login"), 5);
}

#[test]
fn https_works_with_insecure_and_is_refused_without_it() {
    let server = Server::with(Behaviour { tls: true, ..Behaviour::default() });
    let run =
        Runner::run(guests::PROBE).host(&server).args(&["-u", "2", "--iterations", "5", "--insecure"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(server.count("/"), 10);
    assert_eq!(run.requests(), 10);
    assert_eq!(run.failures(), 0);

    let refused = Runner::run(guests::PROBE).host(&server).args(&["-u", "1", "--iterations", "2"]).finish(LIMIT);
    assert_eq!(refused.failures(), 2);
    assert_eq!(server.count("/"), 10, "no request got through an unverified handshake");
    let error = refused.report()["errors"][0]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("TLS handshake") && error.contains("certificate"), "{error}");
}

#[test]
fn absolute_urls_go_where_they_say_without_a_host() {
    let server = Server::start();
    let url = format!("{}/absolute", server.url());
    let tasks = format!("abs:1:{url}");
    let run = Runner::run(guests::PROBE).env("PROBE_TASKS", &tasks).args(&["--iterations", "3"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(server.count("/absolute"), 3);
    assert_eq!(run.row("GET", &url)["requests"], 3);
}

#[test]
fn relative_urls_without_a_host_fail_with_a_reason() {
    let run = Runner::run(guests::PROBE).args(&["--iterations", "2"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.failures(), 2);
    let error = run.report()["errors"][0]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("no --host"), "{error}");
}

#[test]
fn methods_headers_and_user_agent_reach_the_server() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_METHOD", "DELETE")
        .args(&["--iterations", "2"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.method == "DELETE"));
    assert!(hits.iter().all(|h| h.headers.get("user-agent").is_some_and(|ua| ua.starts_with("wasmload/"))));
    assert!(hits.iter().all(|h| h.headers.get("host") == Some(&server.addr.to_string())));
    assert_eq!(run.row("DELETE", "/")["requests"], 2);
}

#[test]
fn connections_the_server_closed_while_idle_are_replaced_without_failures() {
    // The server drops each connection 150 ms after accepting it; users wait 300 ms between
    // requests, so every request after the first finds its kept-alive connection closed.
    let server = Server::with(Behaviour { close_after: Some(Duration::from_millis(150)), ..Behaviour::default() });
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "constant:300")
        .args(&["-u", "3", "-r", "100", "--iterations", "4"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(server.total(), 12);
    assert_eq!(run.requests(), 12);
    assert_eq!(run.failures(), 0, "{:#}", run.report()["errors"]);
}

#[test]
fn a_request_over_its_timeout_fails_and_the_user_carries_on() {
    let server = Server::start();
    let started = std::time::Instant::now();
    // Each request asks for a 1 s response but allows 200 ms.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "slow:1:/delay/1000")
        .env("PROBE_TIMEOUT_MS", "200")
        .args(&["-u", "1", "--iterations", "3"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(server.count("/delay/1000"), 3, "each iteration sent its request");
    assert_eq!(run.requests(), 3);
    assert_eq!(run.failures(), 3);
    let error = &run.report()["errors"][0];
    assert_eq!(error["error"], "timed out after 200ms");
    assert_eq!(error["occurrences"], 3);
    let slowest = run.row("GET", "/delay/1000")["max_ms"].as_f64().unwrap_or_default();
    assert!((190.0..600.0).contains(&slowest), "a timed-out request counts its time until the timeout: {slowest} ms");
}

/// A bare HTTP/1.1 server that answers `ok` framed as the path says, and counts requests:
/// `/length` (Content-Length), `/chunked` (one chunk, with an extension and a trailer),
/// `/pieces` (chunked, written a few bytes at a time), `/close` (no length: the body ends
/// when the server closes), `/old` (HTTP/1.0 without keep-alive).
fn framing_server() -> (String, std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let seen = counts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    // The rest of the head (the probe sends no body on GET).
                    while reader.read_line(&mut line).unwrap_or(0) > 2 {
                        line.clear();
                    }
                    *seen.lock().expect("counts").entry(path.clone()).or_insert(0) += 1;
                    let pieces: Vec<&[u8]> = match path.as_str() {
                        "/length" => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
                        "/chunked" => vec![
                            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;e=1\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
                        ],
                        "/pieces" => vec![
                            b"HTTP/1.1 200 OK\r\nTransfer-",
                            b"Encoding: chunked\r\n\r\n1\r",
                            b"\no\r\n1\r\nk",
                            b"\r\n0\r\n",
                            b"\r\n",
                        ],
                        "/close" => vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\no", b"k"],
                        _ => vec![b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"],
                    };
                    for piece in pieces {
                        if writer.write_all(piece).is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    if path == "/close" || path == "/old" {
                        return;
                    }
                }
            });
        }
    });
    (url, counts)
}

#[test]
fn every_body_framing_is_read_whole_and_connections_are_kept_only_when_allowed() {
    let (url, counts) = framing_server();
    let run = Runner::run(guests::PROBE)
        .env("PROBE_METRICS", "1")
        .env("PROBE_TASKS", "a:1:/length,b:1:/chunked,c:1:/pieces,d:1:/close,e:1:/old")
        .args(&["--host", &url, "-u", "4", "--shared-iterations", "200"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let counts = counts.lock().expect("counts").clone();
    assert_eq!(counts.values().sum::<u64>(), 200, "{counts:?}");
    assert_eq!(counts.len(), 5, "{counts:?}");
    assert_eq!(run.requests(), 200);
    assert_eq!(run.failures(), 0, "{:#}", run.report()["errors"]);
    for (path, n) in &counts {
        assert_eq!(run.row("GET", path)["requests"].as_u64(), Some(*n), "{path}");
    }
    // The probe checks every body is exactly `ok`.
    assert_eq!(run.check("body is ok"), (200, 0));
}

#[test]
fn a_rust_scenario_reads_response_headers_fetched_on_demand() {
    let server = Server::start();
    let header_check = |expected: &str| {
        let run = Runner::run(guests::PROBE)
            .host(&server)
            .env("PROBE_HEADER", &format!("content-length:{expected}"))
            .args(&["-u", "2", "--shared-iterations", "10"])
            .finish(LIMIT);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        run.check(&format!("header content-length is {expected}"))
    };
    // The server answers `ok`: two bytes.
    assert_eq!(header_check("2"), (10, 0));
    assert_eq!(header_check("3"), (0, 10));
    assert_eq!(server.total(), 20);
}

#[test]
fn connections_past_the_open_file_limit_fail_naming_the_limit_and_the_rest_are_counted() {
    let server = Server::start();
    // 100 VUs each keep a connection open (one request, then a long wait), in a process
    // that may open only 60 files.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "constant:600000")
        .args(&["-u", "100", "-r", "1000", "-t", "2s", "--stop-timeout", "1s"])
        .open_files(60)
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("100 users need a connection each") && run.stderr.contains("ulimit -n"),
        "{}",
        run.stderr
    );
    let served = server.total();
    assert!(served > 10 && served < 60, "the server saw {served} requests");
    assert_eq!(run.requests(), 100, "every VU's one request is counted, sent or not");
    assert_eq!(run.requests() - run.failures(), served, "successes are what the server served");
    let error = run.report()["errors"][0]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("no file descriptor left") && error.contains("ulimit -n, is 60"), "{error}");
}

#[test]
fn a_rust_scenario_reads_bodies_and_headers_whenever_it_likes() {
    let server = Server::start();
    // Each task keeps 70 responses, more than the 64 the host keeps during a call, and reads
    // them after the last; each also reads on_start's response, which the host forgot when
    // on_start returned. The SDK must have fetched what those responses still needed.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_KEEP", "70")
        .args(&["-u", "2", "--shared-iterations", "4"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.check("bodies read late are right"), (4, 0));
    assert_eq!(run.check("start response read later is right"), (4, 0));
    let echoed: Vec<Vec<u8>> = server.hits().into_iter().filter(|h| h.path == "/echo").map(|h| h.body).collect();
    assert_eq!(echoed.len(), 2 + 4 * 70, "on_start's two and the tasks' requests reached the server");
    assert_eq!(echoed.iter().filter(|b| b.starts_with(b"start-")).count(), 2);
    assert_eq!(server.count("/"), 4);
    assert_eq!(run.requests(), 2 + 4 * 71);
}
