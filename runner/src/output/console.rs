//! The runner's terminal: one live status line (redrawn in place on a terminal, printed as
//! plain lines in CI logs) and log lines from the runner and guests printed above it.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

struct Console {
    tty: bool,
    /// The status line currently drawn (terminal only).
    status: Option<String>,
}

fn console() -> &'static Mutex<Console> {
    static CONSOLE: OnceLock<Mutex<Console>> = OnceLock::new();
    CONSOLE.get_or_init(|| Mutex::new(Console { tty: std::io::stderr().is_terminal(), status: None }))
}

fn with<R>(f: impl FnOnce(&mut Console, &mut std::io::StderrLock<'_>) -> R) -> R {
    let mut console = console().lock().unwrap_or_else(|p| p.into_inner());
    let mut err = std::io::stderr().lock();
    f(&mut console, &mut err)
}

/// Prints one line of text from a guest or the runner above the status line. Terminal
/// control characters are replaced so a guest cannot rewrite the screen.
pub fn line(text: &str) {
    let clean = sanitize(text);
    with(|c, err| {
        if c.tty && c.status.is_some() {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{clean}");
        if c.tty
            && let Some(status) = &c.status
        {
            let _ = write!(err, "{status}");
        }
        let _ = err.flush();
    });
}

/// Shows the live status: redrawn in place on a terminal (cut to its width, so a narrow
/// terminal never wraps it: a wrapped line could not be redrawn), a new line otherwise.
pub fn status(text: &str) {
    with(|c, err| {
        if c.tty {
            let text = match terminal_width() {
                Some(width) if text.chars().count() >= width => text.chars().take(width.saturating_sub(1)).collect(),
                _ => text.to_owned(),
            };
            let _ = write!(err, "\r\x1b[2K{text}");
            c.status = Some(text);
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    });
}

/// The width of the terminal on stderr, if it is one.
fn terminal_width() -> Option<usize> {
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    #[allow(unsafe_code)]
    // SAFETY: TIOCGWINSZ writes a `winsize` into the pointer, which is valid for it; on a
    // descriptor that is not a terminal the call fails and `size` stays zeroed.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Whether the runner's messages go to a terminal (where lines can be redrawn).
pub fn is_terminal() -> bool {
    with(|c, _| c.tty)
}

/// Removes the status line before the summary is printed.
pub fn clear_status() {
    with(|c, err| {
        if c.tty && c.status.take().is_some() {
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    });
}

/// `text` with control characters (escape sequences, carriage returns, ...) replaced by `�`.
pub fn sanitize(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(|c| c.is_control() && c != '\t') {
        text.chars().map(|c| if c.is_control() && c != '\t' { '\u{FFFD}' } else { c }).collect::<String>().into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        assert_eq!(sanitize("ok\tfine"), "ok\tfine");
        assert_eq!(sanitize("\x1b[2Jgone\r"), "\u{FFFD}[2Jgone\u{FFFD}");
    }
}
