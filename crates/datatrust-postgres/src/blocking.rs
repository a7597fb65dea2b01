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

/// A connection that is closed off any runtime, and opened again after the server closed it
/// (a database restart or failover): the call that found it closed fails, the next one
/// reconnects.
pub(crate) struct Connection {
    client: Option<postgres::Client>,
    config: postgres::Config,
}

/// How long a connection attempt, a statement, a wait for a lock and a transaction left
/// idle may take: a node that loses the database, or a stuck peer holding the log's head,
/// fails its calls instead of hanging them. Settings given in the connection string win.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const SESSION_LIMITS: &str = "SET statement_timeout = '30s';
     SET lock_timeout = '10s';
     SET idle_in_transaction_session_timeout = '30s';";

impl Connection {
    pub(crate) fn open(config: &str) -> Result<Connection, postgres::Error> {
        let mut config: postgres::Config = config.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives(true);
        config.keepalives_idle(std::time::Duration::from_secs(10));
        let client = Self::connect(&config)?;
        Ok(Connection {
            client: Some(client),
            config,
        })
    }

    fn connect(config: &postgres::Config) -> Result<postgres::Client, postgres::Error> {
        off_runtime(|| {
            let mut client = config.connect(postgres::NoTls)?;
            client.batch_execute(SESSION_LIMITS)?;
            Ok(client)
        })
    }

    /// Reconnects if the server closed this connection; a failure is left for the next
    /// call to meet as its error.
    pub(crate) fn revive(&mut self) {
        if self
            .client
            .as_ref()
            .is_some_and(|client| !client.is_closed())
        {
            return;
        }
        match Self::connect(&self.config) {
            Ok(client) => {
                if let Some(old) = self.client.replace(client) {
                    off_runtime(move || drop(old));
                }
            }
            Err(error) => tracing::warn!(%error, "reconnecting to PostgreSQL failed"),
        }
    }
}

impl std::ops::Deref for Connection {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.client.as_ref().expect("open until dropped")
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.client.as_mut().expect("open until dropped")
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
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
        let mut connection = (0..count)
            .find_map(|offset| self.connections[(start + offset) % count].try_lock().ok())
            .unwrap_or_else(|| {
                self.connections[start % count]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            });
        connection.revive();
        connection
    }
}
