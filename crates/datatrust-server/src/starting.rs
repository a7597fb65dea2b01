//! The HTTP listener while the trust opens. Building indexes for an older trust or finishing
//! interrupted erasures can take minutes on a large one, and a liveness probe that gets no
//! answer would restart it in a loop. So the listener is bound first and answered here:
//! `/healthz` is 200 `starting` (alive), every other path 503 `starting` (not ready). One
//! connection at a time, each bounded in time and size; `finish` hands the listener to
//! `serve`.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long one caller may take to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a request read.
const REQUEST_BYTES: usize = 8 * 1024;

pub struct Starting {
    stop: oneshot::Sender<()>,
    task: JoinHandle<TcpListener>,
}

/// Answers `listener` until `finish` (plaintext only: with TLS, leave it unanswered).
pub fn answer_while_starting(listener: TcpListener) -> Starting {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return listener,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream)).await;
                    }
                }
            }
        }
    });
    Starting { stop, task }
}

impl Starting {
    /// Stops answering and gives the listener back, for `serve`.
    pub async fn finish(self) -> std::io::Result<TcpListener> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)
    }
}

async fn answer(mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") && request.len() < REQUEST_BYTES {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let path = std::str::from_utf8(&request)
        .ok()
        .and_then(|text| text.split_whitespace().nth(1))
        .unwrap_or("/");
    let status = if path == "/healthz" {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    let body = "starting\n";
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn alive_but_not_ready_while_starting_then_the_listener_is_handed_on() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let starting = answer_while_starting(listener);
        let health = get(address, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.ends_with("starting\n"));
        let ready = get(address, "/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(
            get(address, "/log/checkpoint")
                .await
                .starts_with("HTTP/1.1 503")
        );
        let listener = starting.finish().await.unwrap();
        assert_eq!(listener.local_addr().unwrap(), address);
        let (accepted, connected) =
            tokio::join!(listener.accept(), tokio::net::TcpStream::connect(address));
        assert!(
            accepted.is_ok() && connected.is_ok(),
            "the same listener accepts for serve"
        );
    }
}
