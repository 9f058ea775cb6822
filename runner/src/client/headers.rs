//! A response's headers in one allocation. A response head's headers used to be a
//! `String` per name and per value: ten allocations per request against nginx's five
//! headers, for headers most scenarios never read (the Rust SDK fetches them on demand). Here
//! they are kept as `name:value` lines in one `String` until somebody asks.

/// Response headers: names lower-cased, values as received (invalid UTF-8 replaced), in
/// order. Names are tokens (no `:`) and values cannot hold CR or LF (httparse refuses
/// them), so each header is one `name:value\n` line of `text`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    text: String,
    /// Whether there is a `set-cookie` header: the cookie jar asks after every response.
    set_cookie: bool,
}

impl Headers {
    /// Room for `count` headers of `bytes` name and value bytes in all.
    pub fn with_capacity(count: usize, bytes: usize) -> Self {
        Self { text: String::with_capacity(bytes + 2 * count), set_cookie: false }
    }

    /// Adds a header as received: the name is lower-cased, a value that is not UTF-8 gets
    /// U+FFFD in place of its invalid bytes, and a value holding CR or LF (which httparse
    /// never gives) has them replaced by spaces so that the lines stay apart.
    pub fn push(&mut self, name: &str, value: &[u8]) {
        let start = self.text.len();
        self.text.push_str(name);
        self.text[start..].make_ascii_lowercase();
        self.set_cookie |= &self.text[start..] == "set-cookie";
        self.text.push(':');
        match std::str::from_utf8(value) {
            Ok(value) if !value.contains(['\r', '\n']) => self.text.push_str(value),
            _ => self.text.push_str(&String::from_utf8_lossy(value).replace(['\r', '\n'], " ")),
        }
        self.text.push('\n');
    }

    /// Headers kept: one line each.
    pub fn len(&self) -> usize {
        self.text.bytes().filter(|&b| b == b'\n').count()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// `(name, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.text.lines().map(|line| line.split_once(':').unwrap_or((line, "")))
    }

    /// The values of every header called `name` (lower case).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The values of the `set-cookie` headers, without looking when there are none.
    pub fn set_cookies(&self) -> impl Iterator<Item = &str> {
        self.set_cookie.then(|| self.all("set-cookie")).into_iter().flatten()
    }

    /// Owned pairs, as the WIT `response` record carries them.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_order_lower_case_names_and_colons_in_values() {
        let mut headers = Headers::with_capacity(3, 40);
        headers.push("Set-Cookie", b"a=1; Path=/");
        headers.push("X-Time", b"12:30:00");
        headers.push("set-cookie", b"b=2");
        assert_eq!(headers.len(), 3);
        assert_eq!(
            headers.to_pairs(),
            [("set-cookie", "a=1; Path=/"), ("x-time", "12:30:00"), ("set-cookie", "b=2")]
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        assert_eq!(headers.all("set-cookie").collect::<Vec<_>>(), ["a=1; Path=/", "b=2"]);
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
            [("x-empty", ""), ("x-bytes", "caf\u{fffd}"), ("x-broken", "a  x-injected:1")]
        );
        assert_eq!(headers.len(), 3);
    }
}
