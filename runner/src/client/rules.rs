//! What a guest's request may contain. The runner sets the headers that frame the
//! connection and the message itself, so a scenario cannot smuggle a second request,
//! change where a request goes, or make the host allocate without bound.

use super::{Outgoing, SendError};
use crate::host::show_bytes;
use crate::limits::{MAX_REQUEST_BODY, MAX_REQUEST_HEADER_BYTES, MAX_REQUEST_HEADERS, MAX_URL_BYTES};

/// Headers the runner owns: `Host` follows the URL (and the network policy checks the URL),
/// the rest frame the connection or the message (hop-by-hop headers, RFC 9110 7.6.1).
const FORBIDDEN: &[&str] = &[
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

/// Refuses a request past the size limits or setting a header the runner owns.
pub fn check(out: &Outgoing<'_>) -> Result<(), SendError> {
    if out.url.len() > MAX_URL_BYTES {
        return Err(invalid(format!(
            "the URL is {} long, past the limit of {}",
            show_bytes(out.url.len()),
            show_bytes(MAX_URL_BYTES)
        )));
    }
    if out.headers.len() > MAX_REQUEST_HEADERS {
        return Err(invalid(format!("{} headers, past the limit of {MAX_REQUEST_HEADERS}", out.headers.len())));
    }
    let header_bytes: usize = out.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if header_bytes > MAX_REQUEST_HEADER_BYTES {
        return Err(invalid(format!(
            "the headers are {} long, past the limit of {}",
            show_bytes(header_bytes),
            show_bytes(MAX_REQUEST_HEADER_BYTES)
        )));
    }
    if let Some(body) = &out.body
        && body.len() > MAX_REQUEST_BODY
    {
        return Err(invalid(format!(
            "the body is {} long, past the limit of {}",
            show_bytes(body.len()),
            show_bytes(MAX_REQUEST_BODY)
        )));
    }
    for (name, _) in &out.headers {
        if FORBIDDEN.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            return Err(invalid(format!("the header `{name}` is set by the runner, not by the scenario")));
        }
    }
    Ok(())
}

fn invalid(message: String) -> SendError {
    SendError::Invalid(format!("request refused: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(url: &str, headers: &[(&str, &str)], body: usize) -> Outgoing<'static> {
        Outgoing {
            method: "GET",
            url: Box::leak(url.to_owned().into_boxed_str()),
            headers: headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
            body: (body > 0).then(|| vec![0; body]),
            timeout: None,
        }
    }

    fn refused(out: &Outgoing<'_>) -> String {
        check(out).expect_err("refused").to_string()
    }

    #[test]
    fn ordinary_requests_pass() {
        assert!(check(&outgoing("/a?b=c", &[("Accept", "*/*"), ("Cookie", "a=b")], 1000)).is_ok());
    }

    #[test]
    fn headers_the_runner_owns_are_refused_in_any_case() {
        for name in ["Host", "CONNECTION", "transfer-encoding", "Content-Length", "Upgrade", "TE"] {
            let message = refused(&outgoing("/", &[(name, "x")], 0));
            assert!(message.contains("is set by the runner"), "{name}: {message}");
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
}
