//! The process's open-file limit (`ulimit -n`): every VU's connection is a socket, so a run
//! needs about one file descriptor per VU. The runner raises its soft limit to the hard one
//! at start (as Go programs do), warns before a run that needs more, and names the limit, or
//! the kernel's range of local ports, when a connection fails because of them.

use std::io;

use crate::output::console;

/// File descriptors kept free beyond those open when the run starts: web UI clients and
/// report files.
const SPARE: u64 = 64;

/// Raises the soft open-file limit to the hard limit; returns the limit now in force.
pub fn raise() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// Warns when `users` connections would not fit under the open-file limit.
pub fn warn_if_short(users: u32) {
    let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else { return };
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count() as u64);
    let room = soft.saturating_sub(open);
    if u64::from(users) + SPARE > room {
        console::line(&format!(
            "Warning: {users} users need a connection each, but this process may open only {soft} files \
             (ulimit -n; hard limit {hard}), which leaves room for about {room} connections; the rest will \
             fail with `too many open files`; raise the hard limit (as root: `ulimit -Hn`, or LimitNOFILE= \
             for a service)"
        ));
    }
}

/// Says which limit a failed connect ran into, when it was the open-file limit or the local
/// port range; `None` for any other failure.
pub fn explain_connect_error(e: &io::Error) -> Option<String> {
    match e.raw_os_error()? {
        libc::ENFILE => Some(
            "the system's table of open files is full (fs.file-max; every VU's connection takes an entry)".to_owned(),
        ),
        libc::EMFILE => {
            let limit =
                rlimit::getrlimit(rlimit::Resource::NOFILE).map_or_else(|_| "?".to_owned(), |(s, _)| s.to_string());
            Some(format!(
                "the runner has no file descriptor left for another connection (its open-file limit, ulimit -n, is \
                 {limit}; each VU's connection takes one)"
            ))
        }
        libc::EADDRNOTAVAIL => {
            let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
            let range = range.split_whitespace().collect::<Vec<_>>().join("-");
            Some(format!(
                "no local port left for another connection to this address and port (the kernel's \
                 net.ipv4.ip_local_port_range is {range}; each open connection to one target address and port \
                 takes one)"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_failures_from_the_two_limits_are_named_and_others_are_not() {
        let emfile = explain_connect_error(&io::Error::from_raw_os_error(libc::EMFILE)).expect("EMFILE is explained");
        assert!(emfile.contains("ulimit -n"), "{emfile}");
        let enfile = explain_connect_error(&io::Error::from_raw_os_error(libc::ENFILE)).expect("ENFILE is explained");
        assert!(enfile.contains("fs.file-max"), "{enfile}");
        let ports = explain_connect_error(&io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)).expect("explained");
        assert!(ports.contains("ip_local_port_range"), "{ports}");
        assert_eq!(explain_connect_error(&io::Error::from_raw_os_error(libc::ECONNREFUSED)), None);
        assert_eq!(explain_connect_error(&io::Error::other("no os error")), None);
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one() {
        let limit = raise().expect("the limit can be read");
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        assert_eq!((limit, soft), (hard, hard));
    }
}
