//! The guest's stdout and stderr: each complete line goes to the runner's console prefixed
//! with the VU id (within the VU's log budget), so output of many VUs stays readable and
//! never tears the status line.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::logs::GuestLog;
use super::vu::truncate;

/// A VU's stdout or stderr.
#[derive(Debug, Clone)]
pub struct GuestOutput {
    log: GuestLog,
}

impl GuestOutput {
    pub fn new(log: GuestLog) -> Self {
        Self { log }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter { log: self.log.clone(), line: Vec::new() })
    }
}

/// Buffers a partial line until its newline arrives (or the buffer reaches the log limit).
struct LineWriter {
    log: GuestLog,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = truncate(text.trim_end_matches(['\r', '\n']), self.log.max_line());
        self.log.line(text);
        self.line.clear();
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        for &byte in buf {
            self.line.push(byte);
            if byte == b'\n' || self.line.len() >= self.log.max_line() {
                self.emit();
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.line.is_empty() {
            self.emit();
        }
        Poll::Ready(Ok(()))
    }
}
