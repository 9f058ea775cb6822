//! What a guest's request may contain. The runner sets the headers that frame the
//! connection and the message itself, so a scenario cannot smuggle a second request,
//! change where a request goes, or make the host allocate without bound.

use super::{Outgoing, SendError};
use crate::host::show_bytes;
use crate::limits::HostLimits;

/// Headers the runner owns: `Host` follows the URL (and the network policy checks the URL),
/// the rest frame the connection or the message (hop-by-hop headers, RFC 9110 7.6.1).
const RUNNER_OWNED: [&str; 9] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
];

/// Refuses a header the runner owns (in any case), naming it as the guest wrote it.
pub fn check_header(name: &str) -> Result<(), SendError> {
    if RUNNER_OWNED.iter().any(|owned| owned.eq_ignore_ascii_case(name)) {
        return Err(invalid(format!("the header `{name}` is set by the runner, not by the scenario")));
    }
    Ok(())
}

/// A method or header name: one or more token characters (RFC 9110 5.6.2).
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value the runner will send: visible ASCII, spaces and tabs (no CR or LF, so a
/// value cannot start another header or request).
pub fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// Refuses a request past the size limits.
pub fn check(out: &Outgoing<'_>, limits: &HostLimits) -> Result<(), SendError> {
    if out.url.len() > limits.url_bytes {
        return Err(invalid(format!(
            "the URL is {} long, past the limit of {}",
            show_bytes(out.url.len()),
            show_bytes(limits.url_bytes)
        )));
    }
    if out.headers.len() > limits.request_headers {
        return Err(invalid(format!("{} headers, past the limit of {}", out.headers.len(), limits.request_headers)));
    }
    let header_bytes: usize = out.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if header_bytes > limits.header_bytes {
        return Err(invalid(format!(
            "the headers are {} long, past the limit of {}",
            show_bytes(header_bytes),
            show_bytes(limits.header_bytes)
        )));
    }
    if let Some(body) = &out.body
        && body.len() > limits.request_body
    {
        return Err(invalid(format!(
            "the body is {} long, past the limit of {}",
            show_bytes(body.len()),
            show_bytes(limits.request_body)
        )));
    }
    Ok(())
}

fn invalid(message: String) -> SendError {
    SendError::Invalid(format!("request refused: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{MAX_REQUEST_BODY, MAX_REQUEST_HEADER_BYTES, MAX_REQUEST_HEADERS, MAX_URL_BYTES};

    fn outgoing(url: &str, headers: &[(&str, &str)], body: usize) -> Outgoing<'static> {
        let headers: Vec<(String, String)> = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        Outgoing {
            method: "GET",
            url: Box::leak(url.to_owned().into_boxed_str()),
            headers: Box::leak(headers.into_boxed_slice()),
            body: (body > 0).then(|| &*Box::leak(vec![0; body].into_boxed_slice())),
            timeout: None,
            started: tokio::time::Instant::now(),
        }
    }

    fn refused(out: &Outgoing<'_>) -> String {
        check(out, &HostLimits::default()).expect_err("refused").to_string()
    }

    #[test]
    fn ordinary_requests_pass() {
        assert!(
            check(&outgoing("/a?b=c", &[("Accept", "*/*"), ("Cookie", "a=b")], 1000), &HostLimits::default()).is_ok()
        );
    }

    #[test]
    fn headers_the_runner_owns_are_refused_in_any_case() {
        for name in ["Host", "CONNECTION", "transfer-encoding", "Content-Length", "Upgrade", "TE", "Keep-Alive"] {
            let message = check_header(name).expect_err("refused").to_string();
            assert!(message.contains("is set by the runner"), "{name}: {message}");
            assert!(message.contains(&format!("`{name}`")), "the guest's spelling: {message}");
        }
        assert!(check_header("Cookie").is_ok());
    }

    #[test]
    fn names_and_values_that_could_split_a_request_are_refused() {
        assert!(is_token("X-Custom_1") && is_token("PATCH"));
        for bad in ["", "a b", "a:b", "a\r\nb", "é"] {
            assert!(!is_token(bad), "{bad:?}");
        }
        assert!(is_header_value("text/html; q=0.9\tx"));
        for bad in ["a\r\nx-injected: 1", "a\nb", "nul\0", "é"] {
            assert!(!is_header_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn sizes_past_the_limits_are_refused_with_both_sizes() {
        let url = format!("/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(refused(&outgoing(&url, &[], 0)), "request refused: the URL is 8 KiB long, past the limit of 8 KiB");
        let many: Vec<(String, String)> = (0..=MAX_REQUEST_HEADERS).map(|i| (format!("x-{i}"), "v".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert!(refused(&outgoing("/", &many, 0)).contains("101 headers"));
        let big = "v".repeat(MAX_REQUEST_HEADER_BYTES);
        assert!(refused(&outgoing("/", &[("x-big", &big)], 0)).contains("headers are 64 KiB long"));
        assert!(refused(&outgoing("/", &[], MAX_REQUEST_BODY + 1)).contains("body is 16 MiB long"));
    }

    #[test]
    fn a_run_can_lower_a_limit() {
        let mut limits = HostLimits::default();
        assert!(limits.set("request-body", 1024));
        let message = check(&outgoing("/", &[], 2048), &limits).expect_err("refused").to_string();
        assert!(message.contains("body is 2 KiB long, past the limit of 1 KiB"), "{message}");
        assert!(!limits.set("nonsense", 1));
    }
}
