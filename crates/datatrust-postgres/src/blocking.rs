//! The sync `postgres` client runs its own small runtime, which cannot be entered from a
//! thread that drives a tokio runtime (the server's workers read some state inline, and
//! the store may be dropped on one). Every database call and the connection's drop go
//! through `off_runtime`: on a multi-thread runtime's worker the thread is handed over for
//! the call (`block_in_place`); on a current-thread runtime the call runs on a thread of
//! its own; elsewhere (the sequencer's thread, blocking threads) it runs as it is.

use tokio::runtime::{Handle, RuntimeFlavor};

pub(crate) fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    match Handle::try_current() {
        Err(_) => work(),
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(work)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

/// A connection that is closed off any runtime.
pub(crate) struct Connection(Option<postgres::Client>);

impl Connection {
    pub(crate) fn open(config: &str) -> Result<Connection, postgres::Error> {
        off_runtime(|| postgres::Client::connect(config, postgres::NoTls))
            .map(|client| Connection(Some(client)))
    }
}

impl std::ops::Deref for Connection {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.0.as_ref().expect("open until dropped")
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0.as_mut().expect("open until dropped")
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            off_runtime(move || drop(client));
        }
    }
}

/// A few connections, each used by one caller at a time: reads on different request
/// threads do not queue behind one another.
pub(crate) struct Pool {
    connections: Vec<std::sync::Mutex<Connection>>,
    next: std::sync::atomic::AtomicUsize,
}

/// Connections each store keeps open.
pub(crate) const POOL_SIZE: usize = 4;

impl Pool {
    pub(crate) fn open(config: &str, size: usize) -> Result<Pool, postgres::Error> {
        let connections = (0..size.max(1))
            .map(|_| Connection::open(config).map(std::sync::Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(Pool {
            connections,
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// A free connection if there is one, else the next in turn once it is free.
    pub(crate) fn get(&self) -> std::sync::MutexGuard<'_, Connection> {
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let count = self.connections.len();
        for offset in 0..count {
            if let Ok(connection) = self.connections[(start + offset) % count].try_lock() {
                return connection;
            }
        }
        self.connections[start % count]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
