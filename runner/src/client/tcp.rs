//! Opening a TCP connection. tokio's `TcpStream::connect` always waits for the socket to
//! turn writable, a round of the event loop (and, under a timeout, a timer and a wake-up of
//! the driver) even when the handshake is already done. On loopback it always is: the
//! kernel runs the server's side of the handshake inside `connect(2)`, which returns
//! `EINPROGRESS` with the socket already established. So the socket is asked first
//! (`getpeername`), and only a connection still in progress waits.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

/// Connects to the first of `addresses` that accepts, trying them in order; the error is
/// the last address's, as tokio's `TcpStream::connect` does.
pub async fn connect(addresses: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = None;
    for &address in addresses {
        match connect_one(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")))
}

async fn connect_one(address: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    match socket.connect(&address.into()) {
        Err(e) if e.raw_os_error() != Some(libc::EINPROGRESS) => return Err(e),
        _ => {}
    }
    let established = socket.peer_addr().is_ok();
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    if !established {
        // As tokio's own connect: writable once the handshake ends, then the error if any.
        stream.writable().await?;
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_to_a_listener_and_reports_a_refusal() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let open = listener.local_addr().expect("its address");
        let stream = connect(&[open]).await.expect("connects");
        let (accepted, from) = listener.accept().await.expect("accepts");
        assert_eq!(stream.local_addr().expect("bound"), from);
        drop(accepted);

        // A port nobody listens on: bound, then closed.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let refused = connect(&[closed]).await.expect_err("nobody listens");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);

        // The first address refuses, the second accepts.
        connect(&[closed, open]).await.expect("falls back to the next address");
        assert_eq!(connect(&[]).await.expect_err("no address").kind(), io::ErrorKind::InvalidInput);
    }
}
