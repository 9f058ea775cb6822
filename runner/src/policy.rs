//! The operator policy (`runner run --policy policy.toml`): ceilings a service that runs
//! other people's plans puts on every run, checked before the run starts. A run asking for
//! more (through its flags or its plan) is refused with the limit it passed.
//!
//! ```toml
//! max_users = 1000
//! max_duration = "10m"          # runs without an end are given this one
//! max_arrival_rate = 5000       # iterations per second
//! max_request_rate = 20000      # requests per second for the whole run (they are spaced)
//! max_vu_memory = "128MiB"
//! max_guest_cpu = "10s"
//! max_timeout = "30s"
//! allowed_hosts = ["*.staging.example.test", "127.0.0.1:8080"]
//! allow_loopback = false        # 127.0.0.0/8, ::1 (other than the --host target)
//! allow_private = false         # RFC 1918, link-local/metadata, CGNAT, ULA, ...
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::client::{HostPattern, NetPolicy, Origin};
use crate::config::RunConfig;

/// The policy file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    max_users: Option<u32>,
    max_duration: Option<String>,
    max_arrival_rate: Option<f64>,
    max_request_rate: Option<f64>,
    max_vu_memory: Option<String>,
    max_guest_cpu: Option<String>,
    max_timeout: Option<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    allow_loopback: Option<bool>,
    allow_private: Option<bool>,
    /// Ceilings on the host limits (`--limit`): name = count or size.
    #[serde(default)]
    limits: std::collections::BTreeMap<String, toml::Value>,
}

/// The operator's ceilings, parsed.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Where it came from, for messages.
    pub source: String,
    pub max_users: Option<u32>,
    pub max_duration: Option<Duration>,
    pub max_arrival_rate: Option<f64>,
    /// Requests a second for the whole run, whatever its load model: requests are spaced
    /// to stay under it (the wait is not counted in their latency).
    pub max_request_rate: Option<f64>,
    pub max_vu_memory: Option<usize>,
    pub max_guest_cpu: Option<Duration>,
    /// Ceiling for every request timeout (connect, first byte, idle, whole request).
    pub max_timeout: Option<Duration>,
    /// Empty: any host.
    pub allowed_hosts: Vec<HostPattern>,
    pub allow_loopback: bool,
    pub allow_private: bool,
    /// Ceilings on the host limits, by `--limit` name.
    pub host_limits: Vec<(String, usize)>,
}

impl Policy {
    /// No ceilings: what a run gets without `--policy`.
    pub fn none() -> Self {
        Self { allow_loopback: true, allow_private: true, ..Self::default() }
    }

    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the policy file `{}`", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, source: &str) -> anyhow::Result<Self> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("the policy file `{source}` is not valid: {e}"))?;
        let bad = |what: &str, why: String| anyhow::anyhow!("the policy file `{source}`: {what}: {why}");
        let duration = |what: &str, v: Option<String>| {
            v.map(|d| crate::cli::parse_duration(&d).map_err(|e| bad(what, e))).transpose()
        };
        Ok(Self {
            source: source.to_owned(),
            max_users: file.max_users,
            max_duration: duration("max_duration", file.max_duration)?,
            max_arrival_rate: file.max_arrival_rate,
            max_request_rate: match file.max_request_rate {
                Some(r) if !(r.is_finite() && r > 0.0) => {
                    return Err(bad("max_request_rate", format!("{r} is not a rate above 0")));
                }
                r => r,
            },
            max_vu_memory: file
                .max_vu_memory
                .map(|m| crate::cli::parse_size(&m).map_err(|e| bad("max_vu_memory", e)))
                .transpose()?,
            max_guest_cpu: duration("max_guest_cpu", file.max_guest_cpu)?,
            max_timeout: duration("max_timeout", file.max_timeout)?,
            allowed_hosts: file
                .allowed_hosts
                .iter()
                .map(|h| h.parse().map_err(|e| bad("allowed_hosts", e)))
                .collect::<Result<_, _>>()?,
            allow_loopback: file.allow_loopback.unwrap_or(true),
            allow_private: file.allow_private.unwrap_or(true),
            host_limits: file
                .limits
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(n) => n.to_string(),
                        _ => return Err(bad("limits", format!("{name}: a count or a size such as \"1MiB\""))),
                    };
                    crate::limits::parse_limit(&format!("{name}={value}")).map_err(|e| bad("limits", e))
                })
                .collect::<Result<_, _>>()?,
        })
    }

    /// Checks `cfg` against the ceilings, and applies the ones that bound what the run left
    /// open (a run without an end gets `max_duration`). `Err` names the limit passed.
    pub fn enforce(&self, cfg: &mut RunConfig) -> Result<(), String> {
        let refuse =
            |what: String, key: &str| Err(format!("{what}, but the policy `{}` allows at most {key}", self.source));
        if let Some(max) = self.max_users
            && cfg.max_users() > max
        {
            return refuse(format!("the run may start {} users", cfg.max_users()), &format!("{max} (max_users)"));
        }
        if let Some(max) = self.max_duration {
            match cfg.run_time {
                Some(t) if t > max => {
                    return refuse(
                        format!("the run lasts {}", crate::config::show_duration(t)),
                        &format!("{} (max_duration)", crate::config::show_duration(max)),
                    );
                }
                Some(_) => {}
                None => cfg.run_time = Some(max),
            }
        }
        if let Some(max) = self.max_arrival_rate {
            for s in &cfg.scenarios {
                if let crate::load::Executor::ArrivalRate(a) = &s.executor {
                    let peak = a.ramp.peak();
                    if peak > max {
                        return refuse(
                            format!("scenario `{}` starts up to {peak} iterations/s", s.name),
                            &format!("{max} (max_arrival_rate)"),
                        );
                    }
                }
            }
        }
        if let Some(max) = self.max_timeout {
            let defaults = crate::client::Timeouts::default();
            let t = &mut cfg.timeouts;
            for (flag, value, default) in [
                ("--connect-timeout", &mut t.connect, defaults.connect),
                ("--first-byte-timeout", &mut t.first_byte, defaults.first_byte),
                ("--idle-timeout", &mut t.idle, defaults.idle),
                ("--request-timeout", &mut t.request, defaults.request),
            ] {
                if *value > max {
                    if *value != default {
                        let show = crate::config::show_duration;
                        return refuse(format!("{flag} is {}", show(*value)), &format!("{} (max_timeout)", show(max)));
                    }
                    // The default is above the operator's ceiling: the run gets the ceiling.
                    *value = max;
                }
            }
            t.ceiling = Some(max);
        }
        let defaults = crate::limits::HostLimits::default();
        for (name, ceiling) in &self.host_limits {
            let asked = cfg.limits.host.get(name).unwrap_or(0);
            if asked > *ceiling {
                if Some(asked) != defaults.get(name) {
                    return refuse(format!("--limit {name}={asked}"), &format!("{ceiling} ([limits] {name})"));
                }
                // The default is above the operator's ceiling: the run gets the ceiling.
                cfg.limits.host.set(name, *ceiling);
            }
        }
        if let Some(max) = self.max_vu_memory
            && cfg.limits.memory > max
        {
            return refuse(
                format!("--max-vu-memory is {}", crate::host::show_bytes(cfg.limits.memory)),
                &format!("{} (max_vu_memory)", crate::host::show_bytes(max)),
            );
        }
        if let Some(max) = self.max_guest_cpu
            && cfg.limits.cpu > max
        {
            return refuse(format!("--max-guest-cpu is {:?}", cfg.limits.cpu), &format!("{max:?} (max_guest_cpu)"));
        }
        if !self.allowed_hosts.is_empty() {
            let allowed = |p: &HostPattern| self.allowed_hosts.iter().any(|outer| p.within(outer));
            if let Some(host) = &cfg.host {
                let target = HostPattern::exact(host.origin());
                if !allowed(&target) {
                    return Err(format!(
                        "the target {} is not among the hosts the policy `{}` allows (allowed_hosts)",
                        host.as_str(),
                        self.source
                    ));
                }
            }
            if let Some(extra) = cfg.allow_hosts.iter().find(|p| !allowed(p)) {
                return Err(format!(
                    "--allow-host {extra} goes beyond the hosts the policy `{}` allows (allowed_hosts)",
                    self.source
                ));
            }
        }
        Ok(())
    }

    /// The network policy of a run to `target` that also allows `extra` hosts.
    pub fn network(&self, target: Option<&Origin>, extra: &[HostPattern]) -> NetPolicy {
        let target = target.map(HostPattern::exact);
        let named: Vec<HostPattern> = target.iter().cloned().chain(extra.iter().cloned()).collect();
        let allowed = match (named.is_empty(), self.allowed_hosts.is_empty()) {
            (false, _) => Some(named),
            // No target and no --allow-host: the policy's hosts, or any.
            (true, false) => Some(self.allowed_hosts.clone()),
            (true, true) => None,
        };
        NetPolicy { allowed, allow_loopback: self.allow_loopback, allow_private: self.allow_private, target }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_file_parses_with_units_and_refuses_typos() {
        let p = Policy::parse(
            "max_users = 10\nmax_duration = \"1m\"\nmax_vu_memory = \"32MiB\"\nallowed_hosts = [\"*.example.test\"]\nallow_loopback = false\n",
            "p.toml",
        )
        .expect("valid");
        assert_eq!(p.max_users, Some(10));
        assert_eq!(p.max_duration, Some(Duration::from_secs(60)));
        assert_eq!(p.max_vu_memory, Some(32 << 20));
        assert!(!p.allow_loopback && p.allow_private);
        let err = Policy::parse("max_user = 10\n", "p.toml").expect_err("unknown key").to_string();
        assert!(err.contains("the policy file `p.toml` is not valid") && err.contains("max_user"), "{err}");
        let err = Policy::parse("max_duration = \"soon\"\n", "p.toml").expect_err("bad duration").to_string();
        assert!(err.contains("max_duration"), "{err}");
        let err = Policy::parse("allowed_hosts = [\"http://x\"]\n", "p.toml").expect_err("bad host").to_string();
        assert!(err.contains("allowed_hosts"), "{err}");
    }

    #[test]
    fn the_network_policy_allows_the_target_and_extra_hosts() {
        let origin = Origin { https: false, host: "127.0.0.1".into(), port: 8080 };
        let strict = Policy { allow_loopback: false, allow_private: false, ..Policy::none() };
        let net = strict.network(Some(&origin), &["api.example.test".parse().expect("valid")]);
        assert!(net.check_host(&origin).is_ok());
        assert!(net.check_host(&Origin { https: true, host: "api.example.test".into(), port: 443 }).is_ok());
        let err = net
            .check_host(&Origin { https: false, host: "169.254.169.254".into(), port: 80 })
            .expect_err("metadata service");
        assert!(err.contains("is not an allowed host"), "{err}");
        assert!(Policy::none().network(None, &[]).allowed.is_none(), "no target: any host");
    }
}
