//! The network policy: which hosts a plan may reach and which kinds of address it may
//! connect to. Checked when a connection is opened: the host must be allowed by name (the
//! `--host` target, `--allow-host` patterns, within the operator policy's `allowed_hosts`),
//! then the name is resolved once and every address it gives must be of an allowed class
//! (loopback, private, link-local, ...); the connection goes to those vetted addresses
//! only, so a name that resolves differently later (DNS rebinding) or an IP literal in
//! another spelling (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) cannot get around it.
//! Redirects are not followed (the guest sees the 3xx), so they cannot either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Origin;

/// What kind of network an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressClass {
    /// Routable on the internet.
    Global,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// Not reachable from the internet: RFC 1918, link-local (cloud metadata services
    /// such as 169.254.169.254 and fd00:ec2::254), CGNAT, unique local, unspecified,
    /// multicast, broadcast, documentation, benchmarking and reserved ranges.
    Private,
}

/// The class of `ip`; IPv4-mapped and -compatible IPv6 addresses are classified as the
/// IPv4 address they carry.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18.0.0/15
        || a >= 240
    {
        AddressClass::Private
    } else {
        AddressClass::Global
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7 (fd00:ec2::254 among them)
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || ip.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || first == 0x0064 && ip.segments()[1] == 0xff9b
    // NAT64 to any IPv4
    {
        AddressClass::Private
    } else {
        AddressClass::Global
    }
}

/// A host pattern: `example.test`, `*.example.test` (any subdomain), either with `:port`;
/// IP literals as `127.0.0.1:8080` or `[::1]:8080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl std::str::FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a host pattern like example.test, *.example.test or 127.0.0.1:8080");
        let text = s.trim().to_ascii_lowercase();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            (host.to_owned(), after.strip_prefix(':'))
        } else if text.matches(':').count() == 1 {
            let (host, port) = text.split_once(':').ok_or_else(bad)?;
            (host.to_owned(), Some(port))
        } else {
            (text.clone(), None)
        };
        let port = port.map(|p| p.parse::<u16>().map_err(|_| bad())).transpose()?;
        let name = host.strip_prefix("*.").unwrap_or(&host);
        if name.is_empty() || name.contains(['/', '@', '*', ' ']) {
            return Err(bad());
        }
        Ok(Self { host, port })
    }
}

impl HostPattern {
    /// The pattern that allows exactly this origin.
    pub fn exact(origin: &Origin) -> Self {
        Self { host: origin.host.to_ascii_lowercase(), port: Some(origin.port) }
    }

    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        // Compared as bytes, whatever the case, without a lowercase copy: asked at every new
        // connection.
        let host = host.as_bytes();
        match self.host.strip_prefix("*.") {
            Some(domain) => {
                let (name, suffix) = host.split_at(host.len().saturating_sub(domain.len()));
                name.len() > 1 && name.ends_with(b".") && suffix.eq_ignore_ascii_case(domain.as_bytes())
            }
            None => host.eq_ignore_ascii_case(self.host.as_bytes()),
        }
    }

    /// Whether everything this pattern allows is also allowed by `outer`.
    pub fn within(&self, outer: &HostPattern) -> bool {
        let ports = outer.port.is_none() || outer.port == self.port;
        let hosts = match (self.host.strip_prefix("*."), outer.host.strip_prefix("*.")) {
            (None, None) => self.host == outer.host,
            (None, Some(domain)) => self.host.ends_with(&format!(".{domain}")),
            (Some(inner), Some(domain)) => inner == domain || inner.ends_with(&format!(".{domain}")),
            (Some(_), None) => false,
        };
        ports && hosts
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.port, self.host.contains(':')) {
            (Some(port), true) => write!(f, "[{}]:{port}", self.host),
            (Some(port), false) => write!(f, "{}:{port}", self.host),
            (None, _) => f.write_str(&self.host),
        }
    }
}

/// The network policy of a run.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    /// Hosts the plan may reach; `None`: any host.
    pub allowed: Option<Vec<HostPattern>>,
    pub allow_loopback: bool,
    pub allow_private: bool,
    /// The `--host` target, trusted by whoever runs the runner: its addresses are not held
    /// to the class rules (the operator policy bounds what `--host` may be).
    pub target: Option<HostPattern>,
}

impl NetPolicy {
    /// Everything allowed (no `--host`, no `--allow-host`, no operator policy).
    pub fn open() -> Self {
        Self { allowed: None, allow_loopback: true, allow_private: true, target: None }
    }

    /// Nothing allowed: for `describe`, which must not send requests.
    pub fn closed() -> Self {
        Self { allowed: Some(Vec::new()), allow_loopback: false, allow_private: false, target: None }
    }

    /// Whether the plan may connect to `origin` at all (before resolving it).
    pub fn check_host(&self, origin: &Origin) -> Result<(), String> {
        let Some(allowed) = &self.allowed else { return Ok(()) };
        if allowed.iter().any(|p| p.matches(&origin.host, origin.port)) {
            return Ok(());
        }
        let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        let list = if list.is_empty() { "none here".to_owned() } else { list.join(", ") };
        Err(format!("request refused: {origin} is not an allowed host (allowed: {list}; add hosts with --allow-host)"))
    }

    /// The addresses of `origin` it may connect to, out of those its name resolved to.
    pub fn vet(&self, origin: &Origin, resolved: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
        if self.target.as_ref().is_some_and(|t| t.matches(&origin.host, origin.port)) {
            return Ok(resolved);
        }
        let mut refused = None;
        let vetted: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|addr| {
                let ok = match classify(addr.ip()) {
                    AddressClass::Global => true,
                    AddressClass::Loopback => self.allow_loopback,
                    AddressClass::Private => self.allow_private,
                };
                if !ok {
                    refused = Some(*addr);
                }
                ok
            })
            .collect();
        match (vetted.is_empty(), refused) {
            (true, Some(addr)) => Err(format!(
                "request refused: {origin} resolves to {}, a {} address the network policy does not allow",
                addr.ip(),
                format!("{:?}", classify(addr.ip())).to_lowercase()
            )),
            (true, None) => Err(format!("cannot connect to {origin}: the name resolved to no address")),
            (false, _) => Ok(vetted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an IP address")
    }

    #[test]
    fn addresses_are_classified_whatever_their_spelling() {
        for (addr, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("169.254.169.254", AddressClass::Private),
            ("fd00:ec2::254", AddressClass::Private),
            ("fe80::1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Private),
            ("0.0.0.0", AddressClass::Private),
            ("::", AddressClass::Private),
            ("::ffff:10.0.0.1", AddressClass::Private),
            ("::ffff:169.254.169.254", AddressClass::Private),
            ("64:ff9b::a9fe:a9fe", AddressClass::Private),
            ("224.0.0.1", AddressClass::Private),
            ("255.255.255.255", AddressClass::Private),
            ("198.18.0.1", AddressClass::Private),
            ("8.8.8.8", AddressClass::Global),
            ("100.128.0.1", AddressClass::Global),
            ("2606:4700::1111", AddressClass::Global),
        ] {
            assert_eq!(classify(ip(addr)), class, "{addr}");
        }
    }

    #[test]
    fn every_ipv4_address_classifies_the_same_mapped_into_ipv6() {
        // A property over a spread of the whole IPv4 space: mapping never changes the class.
        let mut x: u32 = 1;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v4 = Ipv4Addr::from(x);
            assert_eq!(classify(IpAddr::V4(v4)), classify(IpAddr::V6(v4.to_ipv6_mapped())), "{v4}");
            let loopback = v4.octets()[0] == 127;
            assert_eq!(classify(IpAddr::V4(v4)) == AddressClass::Loopback, loopback, "{v4}");
            if v4.is_private() || v4.is_link_local() {
                assert_eq!(classify(IpAddr::V4(v4)), AddressClass::Private, "{v4}");
            }
        }
    }

    #[test]
    fn host_patterns_match_names_subdomains_and_ports() {
        let p: HostPattern = "*.example.test".parse().expect("valid");
        assert!(p.matches("api.example.test", 443));
        assert!(p.matches("a.b.example.test", 80));
        assert!(!p.matches("example.test", 443));
        assert!(!p.matches("evil-example.test", 443));
        assert!(p.matches("API.Example.TEST", 443), "names match whatever their case");
        assert!(p.matches("ä.example.test", 443));
        assert!(!p.matches(".example.test", 443), "a subdomain has a name");
        assert!(!p.matches("test", 443));
        let p: HostPattern = "Api.Example.test".parse().expect("valid");
        assert!(p.matches("api.example.TEST", 443) && !p.matches("www.example.test", 443));
        let p: HostPattern = "127.0.0.1:8080".parse().expect("valid");
        assert!(p.matches("127.0.0.1", 8080));
        assert!(!p.matches("127.0.0.1", 8081));
        assert!(!p.matches("2130706433", 8080), "other spellings are other names");
        let p: HostPattern = "[::1]:81".parse().expect("valid");
        assert!(p.matches("::1", 81));
        assert!("http://x".parse::<HostPattern>().is_err());
        assert!("a:b:c".parse::<HostPattern>().is_ok(), "a bare IPv6 address");
        assert!("host:notaport".parse::<HostPattern>().is_err());
        let outer: HostPattern = "*.example.test".parse().expect("valid");
        assert!("api.example.test:443".parse::<HostPattern>().expect("valid").within(&outer));
        assert!("*.api.example.test".parse::<HostPattern>().expect("valid").within(&outer));
        assert!(!"example.org".parse::<HostPattern>().expect("valid").within(&outer));
        let exact: HostPattern = "127.0.0.1:8080".parse().expect("valid");
        assert!(!"127.0.0.1".parse::<HostPattern>().expect("valid").within(&exact), "any port is more");
    }

    #[test]
    fn vetting_keeps_allowed_addresses_and_trusts_the_target() {
        let origin = |host: &str, port| Origin { https: false, host: host.into(), port };
        let strict = NetPolicy {
            allowed: None,
            allow_loopback: false,
            allow_private: false,
            target: Some("127.0.0.1:8080".parse().expect("valid")),
        };
        let local = vec![SocketAddr::new(ip("127.0.0.1"), 9000)];
        let err = strict.vet(&origin("localhost", 9000), local.clone()).expect_err("loopback refused");
        assert!(err.contains("resolves to 127.0.0.1, a loopback address"), "{err}");
        assert!(strict.vet(&origin("127.0.0.1", 8080), vec![SocketAddr::new(ip("127.0.0.1"), 8080)]).is_ok());
        let mixed = vec![SocketAddr::new(ip("10.0.0.1"), 80), SocketAddr::new(ip("8.8.8.8"), 80)];
        assert_eq!(strict.vet(&origin("x.test", 80), mixed).expect("one is global").len(), 1);
        assert!(NetPolicy::open().vet(&origin("localhost", 9000), local).is_ok());
    }
}
