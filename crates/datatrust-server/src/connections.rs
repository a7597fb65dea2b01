//! Connections on both listeners: how many at once (in total and from one source address),
//! and how long one may stay silent. A stranger who opens connections and sends nothing,
//! or half a request, holds one of their own few slots until the idle limit closes it; they
//! cannot exhaust the process's file descriptors or the slots of anyone else.
//!
//! Live gRPC clients are never idle that long: the server pings every HTTP/2 connection
//! more often than the limit (`serve.rs`), and a client's ping acknowledgement is a read.

use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// Limits for one listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once, all sources together.
    pub total: usize,
    /// Connections open at once from one source address.
    pub per_source: usize,
    /// A connection from which nothing was read for this long is closed.
    pub idle: Duration,
}

/// Counts a listener's open connections; shared by its accept loop and its connections.
#[derive(Debug)]
pub struct ConnectionGuard {
    limits: ConnectionLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl ConnectionGuard {
    pub fn new(limits: ConnectionLimits) -> Arc<ConnectionGuard> {
        Arc::new(ConnectionGuard {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// Admits a connection from `source`, or says which limit it is over.
    fn admit(self: &Arc<Self>, source: IpAddr) -> Result<ConnectionSlot, &'static str> {
        let mut open = self.open.lock().expect("connection table poisoned");
        if open.0 >= self.limits.total {
            return Err("the listener's connection limit");
        }
        let from_source = open.1.entry(source).or_default();
        if *from_source >= self.limits.per_source {
            return Err("the per-source connection limit");
        }
        *from_source += 1;
        open.0 += 1;
        Ok(ConnectionSlot {
            guard: Arc::clone(self),
            source,
        })
    }

    /// The next admitted connection, wrapped with the idle limit. Connections over a limit
    /// are closed at once (and logged at debug level: a flood must not flood the log).
    pub async fn accept(
        self: &Arc<Self>,
        listener: &TcpListener,
    ) -> io::Result<(GuardedStream, SocketAddr)> {
        loop {
            let (stream, address) = listener.accept().await?;
            match self.admit(address.ip()) {
                Ok(slot) => {
                    // Small request-response calls should not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    return Ok((GuardedStream::new(stream, slot, self.limits.idle), address));
                }
                Err(limit) => {
                    tracing::debug!(%address, limit, "connection refused");
                    drop(stream);
                }
            }
        }
    }
}

/// An admitted connection's place in the count; given back when the connection closes.
#[derive(Debug)]
struct ConnectionSlot {
    guard: Arc<ConnectionGuard>,
    source: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.guard.open.lock().expect("connection table poisoned");
        open.0 = open.0.saturating_sub(1);
        if let Some(count) = open.1.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                open.1.remove(&self.source);
            }
        }
    }
}

/// A TCP connection whose reads fail with `TimedOut` once nothing has been read for the idle
/// limit, and which holds its slot in the guard's count while it lives.
#[derive(Debug)]
pub struct GuardedStream {
    inner: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    _slot: ConnectionSlot,
}

impl GuardedStream {
    fn new(inner: TcpStream, slot: ConnectionSlot, idle: Duration) -> GuardedStream {
        GuardedStream {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            _slot: slot,
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        match Pin::new(&mut self.inner).poll_read(context, buffer) {
            Poll::Ready(Ok(())) => {
                if buffer.filled().len() > before {
                    let next = Instant::now() + self.idle;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match self.deadline.as_mut().poll(context) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection was idle too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, buffer)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for GuardedStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    #[tokio::test]
    async fn sources_are_capped_and_silent_connections_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let guard = ConnectionGuard::new(ConnectionLimits {
            total: 10,
            per_source: 2,
            idle: Duration::from_millis(200),
        });
        let _first = TcpStream::connect(address).await.unwrap();
        let _second = TcpStream::connect(address).await.unwrap();
        let mut third = TcpStream::connect(address).await.unwrap();
        let (mut accepted, _) = guard.accept(&listener).await.unwrap();
        let _ = guard.accept(&listener).await.unwrap();
        // The third is over the per-source limit: closed by the server.
        let accepting = tokio::spawn({
            let guard = Arc::clone(&guard);
            async move { guard.accept(&listener).await.map(|_| ()) }
        });
        let mut byte = [0u8; 1];
        assert_eq!(third.read(&mut byte).await.unwrap(), 0, "closed at once");
        accepting.abort();
        // A silent connection's reads time out.
        let error = accepted.read(&mut byte).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
