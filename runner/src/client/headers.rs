//! A response's headers, kept as received until somebody reads them. Scenarios rarely do
//! (the Rust SDK fetches them on demand), yet every response has some: a `String` per name
//! and value cost ten allocations per request against nginx's five headers, and even one
//! `String` of lower-cased, UTF-8-checked lines cost 5 % of the runner's instructions per
//! request (callgrind). Now a response copies its header lines once, and the work of
//! lower-casing names and checking values is done by whoever reads them.

use std::borrow::Cow;

/// Response headers in order: the head's header lines as the server sent them (already
/// checked by httparse: `Name: value`, one per line). Read through them, names come
/// lower-cased and values trimmed, with U+FFFD in place of bytes that are not UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// `Name: value` lines, each ended by LF or CRLF. No value holds CR or LF (httparse
    /// gives none, and `push` replaces them).
    raw: Vec<u8>,
    count: usize,
    /// Whether there is a `set-cookie` header: the cookie jar asks after every response.
    set_cookie: bool,
}

impl Headers {
    /// Headers from `raw`, the header lines of a head httparse parsed (`count` of them).
    pub fn received(raw: &[u8], count: usize, set_cookie: bool) -> Self {
        Self { raw: raw.to_vec(), count, set_cookie }
    }

    /// Adds a header; CR and LF in the value become spaces, so that the lines stay apart.
    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.raw.extend_from_slice(name.as_bytes());
        self.raw.extend_from_slice(b": ");
        self.raw.extend(value.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
        self.raw.extend_from_slice(b"\r\n");
        self.count += 1;
        self.set_cookie |= name.eq_ignore_ascii_case("set-cookie");
    }

    /// Headers kept.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `(name, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        self.lines().map(|(name, value)| {
            let name = String::from_utf8_lossy(name);
            let name =
                if name.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(name.to_ascii_lowercase()) } else { name };
            (name, String::from_utf8_lossy(value))
        })
    }

    /// The values of every header called `name` (any case).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Cow<'a, str>> {
        self.lines()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(v))
    }

    /// The values of the `set-cookie` headers, without looking when there are none.
    pub fn set_cookies(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.set_cookie.then(|| self.all("set-cookie")).into_iter().flatten()
    }

    /// Owned pairs, as the WIT `response` record carries them.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter().map(|(n, v)| (n.into_owned(), v.into_owned())).collect()
    }

    /// Each line's name and value, the value without the spaces and tabs around it.
    fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.raw.split(|&b| b == b'\n').filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], line[colon + 1..].trim_ascii()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|&(n, v)| (n.to_owned(), v.to_owned())).collect()
    }

    #[test]
    fn headers_keep_order_lower_case_names_and_colons_in_values() {
        let mut headers = Headers::default();
        headers.push("Set-Cookie", b"a=1; Path=/");
        headers.push("X-Time", b"12:30:00");
        headers.push("set-cookie", b"b=2");
        assert_eq!(headers.len(), 3);
        assert_eq!(
            headers.to_pairs(),
            owned(&[("set-cookie", "a=1; Path=/"), ("x-time", "12:30:00"), ("set-cookie", "b=2")])
        );
        assert_eq!(headers.all("Set-Cookie").collect::<Vec<_>>(), ["a=1; Path=/", "b=2"]);
        assert_eq!(headers.set_cookies().collect::<Vec<_>>(), ["a=1; Path=/", "b=2"]);
        assert!(Headers::default().is_empty());
        assert_eq!(Headers::default().set_cookies().count(), 0);
    }

    #[test]
    fn values_that_are_empty_invalid_utf8_or_hold_line_breaks_stay_one_header() {
        let mut headers = Headers::default();
        headers.push("x-empty", b"");
        headers.push("x-bytes", b"caf\xe9");
        headers.push("x-broken", b"a\r\nx-injected:1");
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [
                ("x-empty".into(), "".into()),
                ("x-bytes".into(), "caf\u{fffd}".into()),
                ("x-broken".into(), "a  x-injected:1".into())
            ]
        );
        assert_eq!(headers.len(), 3);
    }

    /// Read lazily, the lines give what httparse gave when it parsed them.
    #[test]
    fn lines_read_later_match_what_httparse_parsed() {
        let heads: [&[u8]; 4] = [
            b"Server: nginx\r\nDate: Sun, 29 Nov 2026 21:00:00 GMT\r\nContent-Length: 2\r\n\r\n",
            b"X-Spaces:   padded \t \r\nX-Empty:\r\nX-Colon: a:b:c\r\n\r\n",
            b"Lf-Only: yes\nX-Obs: caf\xe9\n\n",
            b"X-Tab:\tvalue\twith tab\t\r\nSET-COOKIE: k=v\r\n\r\n",
        ];
        for head in heads {
            let mut parsed = [httparse::EMPTY_HEADER; 8];
            let httparse::Status::Complete((used, list)) = httparse::parse_headers(head, &mut parsed).expect("valid")
            else {
                panic!("complete")
            };
            let expected: Vec<(String, String)> = list
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            let set_cookie = list.iter().any(|h| h.name.eq_ignore_ascii_case("set-cookie"));
            let headers = Headers::received(&head[..used], list.len(), set_cookie);
            assert_eq!(headers.to_pairs(), expected, "{}", String::from_utf8_lossy(head));
            assert_eq!(headers.len(), list.len());
        }
    }
}
