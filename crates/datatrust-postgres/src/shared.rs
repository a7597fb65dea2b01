//! What the nodes of one trust share beyond the log and the state: sign-ins (the challenge
//! secret, used challenges, sessions), release builds in progress, and leases (which node
//! runs the periodic duties). A node keeps nothing that another node would need.
//!
//! Leases and build heartbeats use the database's clock (`now()`), so nodes whose clocks
//! disagree still agree on who holds a lease and which build was abandoned.

use std::sync::Arc;

use datatrust_core::store::StoreError;
use datatrust_core::{PublicKey, Role};

use crate::{OpenError, check_schema_name, migrate};

fn shared_error(error: postgres::Error) -> StoreError {
    StoreError::new(format!("postgresql: {error}"))
}

pub use datatrust_core::store::StoredSession;

impl datatrust_core::store::SignInStore for PgShared {
    fn secret(&self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
        PgShared::secret(self, name, fresh)
    }
    fn use_challenge(&self, challenge: &[u8], expires: i64, now: i64) -> Result<bool, StoreError> {
        PgShared::use_challenge(self, challenge, expires, now)
    }
    fn start_session(
        &self,
        token_hash: &[u8; 32],
        session: StoredSession,
        keep: usize,
        now: i64,
    ) -> Result<(), StoreError> {
        PgShared::start_session(self, token_hash, session, keep, now)
    }
    fn session(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<StoredSession>, StoreError> {
        PgShared::session(self, token_hash, now)
    }
}

/// A release being built, as any node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub licensee: PublicKey,
    pub license_id: String,
    pub done: u64,
    pub total: u64,
    /// Why it failed; also set when the node building it stopped (no heartbeat).
    pub failure: Option<String>,
}

/// A build whose node has not touched it for this long is reported as abandoned.
const BUILD_ABANDONED_AFTER_SECONDS: i64 = 30;

#[derive(Clone)]
pub struct PgShared {
    pool: Arc<crate::blocking::Pool>,
    schema: Arc<str>,
}

impl std::fmt::Debug for PgShared {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PgShared")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PgShared {
    pub fn open(config: &str, schema: &str) -> Result<PgShared, OpenError> {
        check_schema_name(schema)?;
        let pool = crate::blocking::Pool::open(config, 2)?;
        migrate(&mut pool.get(), schema)?;
        Ok(PgShared {
            pool: Arc::new(pool),
            schema: schema.into(),
        })
    }

    fn run<T: Send>(
        &self,
        work: impl FnOnce(&mut postgres::Client, &str) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StoreError> {
        crate::blocking::off_runtime(|| {
            let mut client = self.pool.get();
            work(&mut client, &self.schema).map_err(shared_error)
        })
    }

    /// The secret `name`, made from `fresh` by the first node to ask and the same for all.
    pub fn secret(&self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
        let stored: Vec<u8> = self.run(|client, s| {
            client.execute(
                &format!(
                    "INSERT INTO {s}.secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                ),
                &[&name, &fresh.as_slice()],
            )?;
            Ok(client
                .query_one(
                    &format!("SELECT value FROM {s}.secrets WHERE name = $1"),
                    &[&name],
                )?
                .get(0))
        })?;
        stored
            .try_into()
            .map_err(|_| StoreError::new(format!("secret {name} is not 32 bytes")))
    }

    /// Marks a challenge used until `expires` (Unix seconds); false when some node used it
    /// before. Forgets challenges expired by `now`.
    pub fn use_challenge(
        &self,
        challenge: &[u8],
        expires: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.run(|client, s| {
            client.execute(
                &format!("DELETE FROM {s}.used_challenges WHERE expires <= $1"),
                &[&now],
            )?;
            let inserted = client.execute(
                &format!(
                    "INSERT INTO {s}.used_challenges (challenge, expires) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING"
                ),
                &[&challenge, &expires],
            )?;
            Ok(inserted == 1)
        })
    }

    /// Stores a session under its token's hash and ends the key's oldest beyond `keep`,
    /// and every session expired by `now`, in one transaction.
    pub fn start_session(
        &self,
        token_hash: &[u8; 32],
        session: StoredSession,
        keep: usize,
        now: i64,
    ) -> Result<(), StoreError> {
        self.run(|client, s| {
            let mut transaction = client.transaction()?;
            transaction.execute(
                &format!("DELETE FROM {s}.sessions WHERE expires <= $1"),
                &[&now],
            )?;
            transaction.execute(
                &format!(
                    "INSERT INTO {s}.sessions (token_hash, public_key, role, expires)
                     VALUES ($1, $2, $3, $4)"
                ),
                &[
                    &token_hash.as_slice(),
                    &session.public_key.as_bytes().as_slice(),
                    &session.role.as_str(),
                    &session.expires,
                ],
            )?;
            transaction.execute(
                &format!(
                    "DELETE FROM {s}.sessions WHERE public_key = $1 AND token_hash NOT IN
                     (SELECT token_hash FROM {s}.sessions WHERE public_key = $1
                      ORDER BY started DESC LIMIT $2)"
                ),
                &[&session.public_key.as_bytes().as_slice(), &(keep as i64)],
            )?;
            transaction.commit()
        })
    }

    /// The unexpired session stored under a token's hash.
    pub fn session(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<StoredSession>, StoreError> {
        let row = self.run(|client, s| {
            client.query_opt(
                &format!(
                    "SELECT public_key, role, expires FROM {s}.sessions
                     WHERE token_hash = $1 AND expires > $2"
                ),
                &[&token_hash.as_slice(), &now],
            )
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let key: Vec<u8> = row.get(0);
        let role: String = row.get(1);
        Ok(Some(StoredSession {
            public_key: PublicKey::from_slice(&key, "public_key")
                .map_err(|error| StoreError::new(format!("a stored session: {error}")))?,
            role: Role::parse(&role)
                .map_err(|error| StoreError::new(format!("a stored session: {error}")))?,
            expires: row.get(2),
        }))
    }

    /// Records a build that starts now on this node, and forgets builds untouched for a day
    /// (failed or abandoned ones nobody asked about), so the table does not grow for ever.
    pub fn start_build(
        &self,
        id: &str,
        licensee: &PublicKey,
        license_id: &str,
    ) -> Result<(), StoreError> {
        self.run(|client, s| {
            client.execute(
                &format!(
                    "DELETE FROM {s}.release_builds WHERE heartbeat < now() - interval '1 day'"
                ),
                &[],
            )?;
            client.execute(
                &format!(
                    "INSERT INTO {s}.release_builds (id, licensee, license_id) VALUES ($1, $2, $3)"
                ),
                &[&id, &licensee.as_bytes().as_slice(), &license_id],
            )?;
            Ok(())
        })
    }

    /// A build's progress; also its node's heartbeat.
    pub fn build_progress(&self, id: &str, done: u64, total: u64) -> Result<(), StoreError> {
        self.run(|client, s| {
            client.execute(
                &format!(
                    "UPDATE {s}.release_builds SET done = $2, total = $3, heartbeat = now()
                     WHERE id = $1"
                ),
                &[&id, &(done as i64), &(total as i64)],
            )?;
            Ok(())
        })
    }

    /// Ends a build: gone once stored (`failure` None), or kept with its failure until its
    /// licensee has been told.
    pub fn end_build(&self, id: &str, failure: Option<&str>) -> Result<(), StoreError> {
        self.run(|client, s| {
            match failure {
                None => client.execute(
                    &format!("DELETE FROM {s}.release_builds WHERE id = $1"),
                    &[&id],
                )?,
                Some(failure) => client.execute(
                    &format!("UPDATE {s}.release_builds SET failure = $2 WHERE id = $1"),
                    &[&id, &failure],
                )?,
            };
            Ok(())
        })
    }

    /// A build in progress or failed; one whose node stopped sending heartbeats is reported
    /// as failed.
    pub fn build(&self, id: &str) -> Result<Option<Build>, StoreError> {
        let row = self.run(|client, s| {
            client.query_opt(
                &format!(
                    "SELECT licensee, license_id, done, total, failure,
                            heartbeat < now() - make_interval(secs => $2)
                     FROM {s}.release_builds WHERE id = $1"
                ),
                &[&id, &(BUILD_ABANDONED_AFTER_SECONDS as f64)],
            )
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let licensee: Vec<u8> = row.get(0);
        let abandoned: bool = row.get(5);
        let failure: Option<String> = row.get(4);
        Ok(Some(Build {
            licensee: PublicKey::from_slice(&licensee, "licensee")
                .map_err(|error| StoreError::new(format!("a stored build: {error}")))?,
            license_id: row.get(1),
            done: row.get::<_, i64>(2) as u64,
            total: row.get::<_, i64>(3) as u64,
            failure: failure.or_else(|| {
                abandoned.then(|| {
                    "the node building this release stopped before it finished; create the release again".to_owned()
                })
            }),
        }))
    }

    /// Takes or renews the lease `name` for `holder` for `seconds` (the database's clock);
    /// true while `holder` holds it. A holder that stops renewing loses it when it expires.
    pub fn lease(&self, name: &str, holder: &str, seconds: f64) -> Result<bool, StoreError> {
        self.run(|client, s| {
            let row = client.query_opt(
                &format!(
                    "INSERT INTO {s}.leases (name, holder, expires)
                     VALUES ($1, $2, now() + make_interval(secs => $3))
                     ON CONFLICT (name) DO UPDATE
                       SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
                       WHERE {s}.leases.holder = EXCLUDED.holder OR {s}.leases.expires < now()
                     RETURNING holder"
                ),
                &[&name, &holder, &seconds],
            )?;
            Ok(row.is_some())
        })
    }

    /// Gives the lease up (a node shutting down), so another takes over at once.
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.run(|client, s| {
            client.execute(
                &format!("DELETE FROM {s}.leases WHERE name = $1 AND holder = $2"),
                &[&name, &holder],
            )?;
            Ok(())
        })
    }
}
