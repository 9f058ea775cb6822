//! Where a request goes: the guest's URL (absolute, or a path joined to `--host`) split
//! into the connection origin and the request target.

use std::sync::Arc;

use http::HeaderValue;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};

/// Scheme, host and port: one keep-alive connection per origin and VU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    /// Shared, so resolving a URL against `--host` does not copy it.
    pub host: Arc<str>,
    pub port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A resolved request URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub origin: Origin,
    pub authority: Authority,
    /// The `Host` header (cheap to clone: it shares its bytes).
    pub host_header: HeaderValue,
    pub path_and_query: PathAndQuery,
}

impl Target {
    /// The absolute URL, for cookies.
    pub fn url(&self) -> String {
        let scheme = if self.origin.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path_and_query)
    }
}

/// Why a URL cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("`{0}` is a relative URL but the run has no --host to join it to")]
    NoHost(String),
    #[error("`{0}` is not a valid URL")]
    Invalid(String),
    #[error("`{0}` uses an unsupported scheme (use http:// or https://)")]
    Scheme(String),
}

/// The run's `--host`: the base that relative URLs are appended to (as Locust does).
#[derive(Debug, Clone)]
pub struct BaseUrl {
    /// Without a trailing slash.
    prefix: String,
    /// The base parsed once; relative URLs only add their path to it.
    base: Box<Target>,
    /// The base's path without a trailing slash (often empty).
    path: String,
}

impl BaseUrl {
    /// Parses and checks a `--host` value such as `http://127.0.0.1:8080` or
    /// `https://example.test/api`.
    pub fn parse(host: &str) -> Result<Self, UrlError> {
        let trimmed = host.trim_end_matches('/');
        let base = parse_absolute(trimmed)?;
        if base.path_and_query.query().is_some() {
            return Err(UrlError::Invalid(host.to_owned()));
        }
        let path = base.path_and_query.path().trim_end_matches('/').to_owned();
        Ok(Self { prefix: trimmed.to_owned(), base: Box::new(base), path })
    }

    pub fn as_str(&self) -> &str {
        &self.prefix
    }

    /// Where the base's requests go.
    pub fn origin(&self) -> &Origin {
        &self.base.origin
    }
}

/// Resolves a guest URL against the optional base.
pub fn resolve(base: Option<&BaseUrl>, url: &str) -> Result<Target, UrlError> {
    if url.starts_with("http://") || url.starts_with("https://") || url.contains("://") {
        return parse_absolute(url);
    }
    let Some(base) = base else {
        return Err(UrlError::NoHost(url.to_owned()));
    };
    // The hot path: only the path changes, the origin and `Host` header are the base's.
    let parsed = if base.path.is_empty() && url.starts_with('/') {
        PathAndQuery::try_from(url)
    } else if url.starts_with('/') || url.is_empty() {
        PathAndQuery::try_from(format!("{}{url}", base.path))
    } else {
        PathAndQuery::try_from(format!("{}/{url}", base.path))
    };
    let path_and_query = match parsed {
        Ok(pq) if pq.as_str().starts_with('/') => pq,
        _ => return Err(UrlError::Invalid(url.to_owned())),
    };
    let base = &base.base;
    Ok(Target {
        origin: base.origin.clone(),
        authority: base.authority.clone(),
        host_header: base.host_header.clone(),
        path_and_query,
    })
}

fn parse_absolute(url: &str) -> Result<Target, UrlError> {
    let uri: Uri = url.parse().map_err(|_| UrlError::Invalid(url.to_owned()))?;
    let https = match uri.scheme() {
        Some(s) if *s == Scheme::HTTP => false,
        Some(s) if *s == Scheme::HTTPS => true,
        Some(_) => return Err(UrlError::Scheme(url.to_owned())),
        None => return Err(UrlError::Invalid(url.to_owned())),
    };
    let authority = uri.authority().cloned().ok_or_else(|| UrlError::Invalid(url.to_owned()))?;
    if authority.as_str().contains('@') {
        return Err(UrlError::Invalid(url.to_owned()));
    }
    let host: Arc<str> = authority.host().trim_start_matches('[').trim_end_matches(']').into();
    if host.is_empty() {
        return Err(UrlError::Invalid(url.to_owned()));
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path_and_query = match uri.path_and_query() {
        Some(pq) if !pq.as_str().is_empty() => pq.clone(),
        _ => PathAndQuery::from_static("/"),
    };
    let host_header = HeaderValue::from_str(authority.as_str()).map_err(|_| UrlError::Invalid(url.to_owned()))?;
    Ok(Target { origin: Origin { https, host, port }, authority, host_header, path_and_query })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> BaseUrl {
        BaseUrl::parse(s).expect("valid base")
    }

    #[test]
    fn relative_paths_join_the_host_like_locust() {
        let b = base("http://127.0.0.1:8080/api/");
        let t = resolve(Some(&b), "/users?id=3").expect("resolves");
        assert_eq!(t.origin, Origin { https: false, host: "127.0.0.1".into(), port: 8080 });
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.path_and_query.as_str(), "/api/users?id=3");
        assert_eq!(t.url(), "http://127.0.0.1:8080/api/users?id=3");
        assert_eq!(resolve(Some(&b), "items").expect("resolves").path_and_query.as_str(), "/api/items");
    }

    #[test]
    fn absolute_urls_ignore_the_host_and_default_ports() {
        let b = base("http://127.0.0.1:8080");
        let t = resolve(Some(&b), "https://localhost/x").expect("resolves");
        assert_eq!(t.origin, Origin { https: true, host: "localhost".into(), port: 443 });
        let t = resolve(None, "http://[::1]:81").expect("resolves");
        assert_eq!(&*t.origin.host, "::1");
        assert_eq!(t.path_and_query.as_str(), "/");
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        assert!(matches!(resolve(None, "/x"), Err(UrlError::NoHost(_))));
        assert!(matches!(resolve(None, "ftp://a/b"), Err(UrlError::Scheme(_))));
        assert!(matches!(resolve(None, "http://"), Err(UrlError::Invalid(_))));
        let b = base("http://127.0.0.1:8080");
        assert!(matches!(resolve(Some(&b), "/a b"), Err(UrlError::Invalid(_))), "spaces are not valid in a path");
        assert!(BaseUrl::parse("127.0.0.1:8080").is_err());
        assert!(BaseUrl::parse("not a url").is_err());
        assert!(matches!(BaseUrl::parse("http://user@host"), Err(UrlError::Invalid(_))));
    }
}
