//! Authentication: stateless, single-use challenges exchanged for short-lived bearer tokens.
//!
//! 1. `CreateChallenge(public_key)`: 32 bytes = expiry (Unix seconds, 8) || random (8) ||
//!    HMAC-SHA-256(process secret, key || expiry || random)[..16]. The server stores
//!    nothing: a flood of challenge requests costs it a hash each and fills no table, so
//!    nobody can lock the others out of signing in by asking for challenges.
//! 2. `Login(public_key, challenge, signature)`: the challenge must carry a valid MAC for
//!    this key and be unexpired; the signature is over the login message of
//!    `datatrust_core::auth` (context, origin, key, challenge), so a signature made for
//!    another trust or another purpose never matches. Only a login that succeeds (a good
//!    signature by an active principal) marks its challenge used, until it expires: a
//!    captured login cannot be replayed, and strangers (who cannot sign for an enrolled key)
//!    cannot grow that table. Each key may sign in `LOGINS_PER_KEY_PER_MINUTE` times a
//!    minute, which bounds it.
//! 3. The token (32 random bytes) is bound to the key and the role it had at login. Every call
//!    re-reads the principal, so deactivating a key or changing its role ends its sessions.
//!    A key holds at most `SESSIONS_PER_KEY` sessions: its next sign-in ends its oldest, so
//!    one key signing in without end churns its own sessions and nobody else's.
//!
//! The challenge secret, used challenges and sessions are kept in the trust's store
//! (`Sessions::shared` over a `SignInStore`): in the embedded store's database, so a restart
//! signs nobody out, or in the PostgreSQL database that several nodes share, so a token from
//! one node works on every node and a challenge is spent on all of them at once. A node
//! remembers a session it read for a second or two (`SHARED_CACHE_SECONDS`); deactivation
//! needs no such care, since every call re-reads the principal.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use datatrust_core::auth::CHALLENGE_LENGTH;
use datatrust_core::{PublicKey, Role, UnixSeconds};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

const CHALLENGE_LIFETIME: Duration = Duration::from_secs(60);
/// Sessions one key may hold at once; a further sign-in ends the oldest.
pub const SESSIONS_PER_KEY: usize = 16;
/// Sign-ins one key may make per minute (a burst of that many, refilled evenly). Scripts
/// that run the CLI once per step sign in once per step, so this is generous; what bounds
/// one key's reach is `SESSIONS_PER_KEY`.
pub const LOGINS_PER_KEY_PER_MINUTE: u32 = 600;
const TOKEN_PREFIX: &str = "dt1_";
const MAC_BYTES: usize = 16;

/// How long a node trusts a session it read from the shared store without reading it again.
const SHARED_CACHE_SECONDS: i64 = 2;
/// Sessions a node remembers from the shared store at most.
const SHARED_CACHE_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub public_key: PublicKey,
    pub role: Role,
    pub expires_at_unix: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("challenge: not issued by this server for this key, or expired; request a new one")]
    BadChallenge,
    #[error("challenge: already used; request a new one")]
    ChallengeUsed,
    #[error("public_key: this key signed in too often in the last minute; wait a moment")]
    TooManyLogins,
    /// The shared store of sign-ins could not be reached; the detail is in the server's log.
    #[error("sign-ins are unavailable for a moment; try again")]
    Unavailable,
}

fn unavailable(error: datatrust_core::store::StoreError) -> AuthError {
    tracing::error!(%error, "the shared sign-in store failed");
    AuthError::Unavailable
}

pub struct Sessions {
    token_lifetime: Duration,
    /// Keys the challenges' MACs; made at start, so a restart voids outstanding challenges.
    challenge_secret: [u8; 32],
    /// Challenges of successful logins, until they expire (Unix seconds).
    used_challenges: Mutex<HashMap<[u8; CHALLENGE_LENGTH], i64>>,
    /// Per key: sign-ins allowed, `LOGINS_PER_KEY_PER_MINUTE` a minute.
    login_allowance: crate::limits::TokenBuckets<PublicKey>,
    tokens: Mutex<SessionTable>,
    /// Where sign-ins are kept (the embedded store, or the database nodes share); `None`:
    /// in this process only (tests).
    shared: Option<std::sync::Arc<dyn datatrust_core::store::SignInStore>>,
    /// Sessions read from `shared`, with when they were read (Unix seconds).
    cache: Mutex<HashMap<[u8; 32], (Session, i64)>>,
}

#[derive(Default)]
struct SessionTable {
    /// Keyed by SHA-256 of the token, so the table itself holds no usable token.
    by_token: HashMap<[u8; 32], Session>,
    /// Each key's sessions, oldest first.
    by_key: HashMap<PublicKey, VecDeque<[u8; 32]>>,
}

impl SessionTable {
    fn remove(&mut self, hash: &[u8; 32]) {
        if let Some(session) = self.by_token.remove(hash)
            && let Some(tokens) = self.by_key.get_mut(&session.public_key)
        {
            tokens.retain(|token| token != hash);
            if tokens.is_empty() {
                self.by_key.remove(&session.public_key);
            }
        }
    }
}

impl Sessions {
    pub fn new(token_lifetime: Duration) -> Sessions {
        let mut challenge_secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut challenge_secret);
        Sessions {
            token_lifetime,
            challenge_secret,
            used_challenges: Mutex::new(HashMap::new()),
            login_allowance: crate::limits::TokenBuckets::new(
                f64::from(LOGINS_PER_KEY_PER_MINUTE) / 60.0,
                f64::from(LOGINS_PER_KEY_PER_MINUTE),
                100_000,
            ),
            tokens: Mutex::new(SessionTable::default()),
            shared: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Sign-ins kept in the database that several nodes share: the challenge secret is the
    /// database's (made by the first node), so any node checks any node's challenges.
    pub fn shared(
        token_lifetime: Duration,
        shared: std::sync::Arc<dyn datatrust_core::store::SignInStore>,
    ) -> Result<Sessions, datatrust_core::store::StoreError> {
        let mut sessions = Sessions::new(token_lifetime);
        sessions.challenge_secret = shared.secret("challenge", sessions.challenge_secret)?;
        sessions.shared = Some(shared);
        Ok(sessions)
    }

    fn challenge_mac(&self, public_key: &PublicKey, body: &[u8]) -> [u8; MAC_BYTES] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.challenge_secret)
            .expect("HMAC takes a key of any length");
        mac.update(b"datatrust challenge v1\n");
        mac.update(public_key.as_bytes());
        mac.update(body);
        let full = mac.finalize().into_bytes();
        full[..MAC_BYTES].try_into().expect("SHA-256 is 32 bytes")
    }

    /// Issues a challenge for `public_key`, valid for a minute from `now`; stores nothing.
    pub fn create_challenge(
        &self,
        public_key: PublicKey,
        now: UnixSeconds,
    ) -> ([u8; CHALLENGE_LENGTH], Duration) {
        let mut challenge = [0u8; CHALLENGE_LENGTH];
        let expires = now.plus_seconds(CHALLENGE_LIFETIME.as_secs() as i64).0;
        challenge[..8].copy_from_slice(&expires.to_be_bytes());
        rand::rngs::OsRng.fill_bytes(&mut challenge[8..16]);
        let mac = self.challenge_mac(&public_key, &challenge[..16]);
        challenge[16..].copy_from_slice(&mac);
        (challenge, CHALLENGE_LIFETIME)
    }

    /// Checks that `challenge` was issued by this server for `public_key` and is unexpired
    /// at `now`; returns it as an array. Consumes nothing: see `consume_challenge`.
    pub fn check_challenge(
        &self,
        public_key: &PublicKey,
        challenge: &[u8],
        now: UnixSeconds,
    ) -> Result<[u8; CHALLENGE_LENGTH], AuthError> {
        let challenge: [u8; CHALLENGE_LENGTH] =
            challenge.try_into().map_err(|_| AuthError::BadChallenge)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.challenge_secret)
            .expect("HMAC takes a key of any length");
        mac.update(b"datatrust challenge v1\n");
        mac.update(public_key.as_bytes());
        mac.update(&challenge[..16]);
        // Constant-time comparison of the truncated MAC.
        mac.verify_truncated_left(&challenge[16..])
            .map_err(|_| AuthError::BadChallenge)?;
        let expires = i64::from_be_bytes(challenge[..8].try_into().expect("8 bytes"));
        if now.0 >= expires {
            return Err(AuthError::BadChallenge);
        }
        Ok(challenge)
    }

    /// Marks the challenge of a successful login used, and counts the key's sign-in; refused
    /// when it was used before or the key signs in too often.
    pub fn consume_challenge(
        &self,
        public_key: &PublicKey,
        challenge: [u8; CHALLENGE_LENGTH],
        now: UnixSeconds,
    ) -> Result<(), AuthError> {
        if !self.login_allowance.take(*public_key) {
            return Err(AuthError::TooManyLogins);
        }
        let expires = i64::from_be_bytes(challenge[..8].try_into().expect("8 bytes"));
        if let Some(shared) = &self.shared {
            return match shared.use_challenge(&challenge, expires, now.0) {
                Ok(true) => Ok(()),
                Ok(false) => Err(AuthError::ChallengeUsed),
                Err(error) => Err(unavailable(error)),
            };
        }
        let mut used = self
            .used_challenges
            .lock()
            .expect("used challenges poisoned");
        if used.len() > 10_000 {
            used.retain(|_, expires| *expires > now.0);
        }
        if used.insert(challenge, expires).is_some() {
            return Err(AuthError::ChallengeUsed);
        }
        Ok(())
    }

    /// Starts a session, ending the key's oldest if it holds `SESSIONS_PER_KEY` already;
    /// returns the bearer token and the session.
    pub fn start_session(
        &self,
        public_key: PublicKey,
        role: Role,
        now_unix: i64,
    ) -> Result<(String, Session), AuthError> {
        let mut token_bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut token_bytes);
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(token_bytes));
        let session = Session {
            public_key,
            role,
            expires_at_unix: now_unix.saturating_add(self.token_lifetime.as_secs() as i64),
        };
        let hash = token_hash(&token);
        if let Some(shared) = &self.shared {
            let stored = datatrust_core::store::StoredSession {
                public_key,
                role,
                expires: session.expires_at_unix,
            };
            shared
                .start_session(&hash, stored, SESSIONS_PER_KEY, now_unix)
                .map_err(unavailable)?;
            return Ok((token, session));
        }
        let mut table = self.tokens.lock().expect("session table poisoned");
        let oldest: Vec<[u8; 32]> = {
            let tokens = table.by_key.entry(public_key).or_default();
            let excess = (tokens.len() + 1).saturating_sub(SESSIONS_PER_KEY);
            tokens.iter().take(excess).copied().collect()
        };
        for old in oldest {
            table.remove(&old);
        }
        table.by_token.insert(hash, session);
        table.by_key.entry(public_key).or_default().push_back(hash);
        Ok((token, session))
    }

    /// The live session behind a bearer token at `now`, if any.
    pub fn session(&self, token: &str, now: UnixSeconds) -> Result<Option<Session>, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = token_hash(token);
        if let Some(shared) = &self.shared {
            return self.shared_session(shared, &hash, now);
        }
        let mut table = self.tokens.lock().expect("session table poisoned");
        Ok(match table.by_token.get(&hash) {
            Some(session) if session.expires_at_unix > now.0 => Some(*session),
            Some(_) => {
                table.remove(&hash);
                None
            }
            None => None,
        })
    }

    fn shared_session(
        &self,
        shared: &std::sync::Arc<dyn datatrust_core::store::SignInStore>,
        hash: &[u8; 32],
        now: UnixSeconds,
    ) -> Result<Option<Session>, AuthError> {
        {
            let cache = self.cache.lock().expect("session cache poisoned");
            if let Some((session, read_at)) = cache.get(hash)
                && now.0 < read_at + SHARED_CACHE_SECONDS
                && session.expires_at_unix > now.0
            {
                return Ok(Some(*session));
            }
        }
        let found = shared
            .session(hash, now.0)
            .map_err(unavailable)?
            .map(|stored| Session {
                public_key: stored.public_key,
                role: stored.role,
                expires_at_unix: stored.expires,
            });
        let mut cache = self.cache.lock().expect("session cache poisoned");
        if cache.len() >= SHARED_CACHE_ENTRIES {
            cache.clear();
        }
        match found {
            Some(session) => cache.insert(*hash, (session, now.0)),
            None => cache.remove(hash),
        };
        Ok(found)
    }

    /// Sessions held now, all keys together (expired ones not yet swept included).
    #[cfg(test)]
    fn session_count(&self) -> usize {
        self.tokens
            .lock()
            .expect("session table poisoned")
            .by_token
            .len()
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use datatrust_core::NoteSigner;

    use super::*;

    fn key(seed: u8) -> PublicKey {
        NoteSigner::new("k", [seed; 32]).unwrap().public_key()
    }

    #[test]
    fn a_challenge_is_bound_to_its_key_its_server_and_its_minute() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let now = UnixSeconds(1_000_000);
        let (challenge, _) = sessions.create_challenge(key(1), now);
        assert!(sessions.check_challenge(&key(1), &challenge, now).is_ok());
        assert_eq!(
            sessions.check_challenge(&key(2), &challenge, now),
            Err(AuthError::BadChallenge)
        );
        assert_eq!(
            sessions.check_challenge(&key(1), &challenge, now.plus_seconds(60)),
            Err(AuthError::BadChallenge),
            "expired"
        );
        let mut tampered = challenge;
        tampered[0] ^= 1;
        assert_eq!(
            sessions.check_challenge(&key(1), &tampered, now),
            Err(AuthError::BadChallenge),
            "a longer life cannot be forged"
        );
        let other_server = Sessions::new(Duration::from_secs(60));
        assert_eq!(
            other_server.check_challenge(&key(1), &challenge, now),
            Err(AuthError::BadChallenge)
        );
        assert_eq!(
            sessions.check_challenge(&key(1), &challenge[..5], now),
            Err(AuthError::BadChallenge)
        );
    }

    #[test]
    fn a_challenge_serves_one_login() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let now = UnixSeconds(1_000_000);
        let (challenge, _) = sessions.create_challenge(key(1), now);
        sessions.consume_challenge(&key(1), challenge, now).unwrap();
        assert_eq!(
            sessions.consume_challenge(&key(1), challenge, now),
            Err(AuthError::ChallengeUsed)
        );
    }

    #[test]
    fn one_key_signing_in_without_end_is_slowed_and_churns_only_its_own_sessions() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let now = UnixSeconds(1_000_000);
        let (other_token, _) = sessions.start_session(key(9), Role::Member, now.0).unwrap();
        let mut tokens = Vec::new();
        for _ in 0..1000 {
            tokens.push(
                sessions
                    .start_session(key(1), Role::Member, now.0)
                    .unwrap()
                    .0,
            );
        }
        assert_eq!(sessions.session_count(), SESSIONS_PER_KEY + 1);
        assert!(
            sessions.session(&other_token, now).unwrap().is_some(),
            "others keep theirs"
        );
        assert!(
            sessions.session(&tokens[0], now).unwrap().is_none(),
            "the oldest ended"
        );
        assert!(
            sessions
                .session(tokens.last().unwrap(), now)
                .unwrap()
                .is_some()
        );
        let mut refused = 0;
        for _ in 0..LOGINS_PER_KEY_PER_MINUTE + 100 {
            let (challenge, _) = sessions.create_challenge(key(1), now);
            if sessions.consume_challenge(&key(1), challenge, now) == Err(AuthError::TooManyLogins)
            {
                refused += 1;
            }
        }
        assert_eq!(refused, 100);
        let (challenge, _) = sessions.create_challenge(key(2), now);
        sessions
            .consume_challenge(&key(2), challenge, now)
            .expect("another key is not slowed");
    }

    #[test]
    fn tokens_resolve_until_they_expire() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (token, session) = sessions.start_session(key(1), Role::Member, 0).unwrap();
        let at = UnixSeconds;
        assert_eq!(sessions.session(&token, at(59)), Ok(Some(session)));
        assert_eq!(sessions.session("dt1_unknown", at(0)), Ok(None));
        assert_eq!(sessions.session(&token[1..], at(0)), Ok(None));
        assert_eq!(sessions.session(&token, at(60)), Ok(None), "expired");
    }
}
