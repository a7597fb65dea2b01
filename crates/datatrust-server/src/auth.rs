//! Authentication: single-use challenges exchanged for short-lived bearer tokens.
//!
//! 1. `CreateChallenge(public_key)`: 32 random bytes, valid 60 seconds, bound to that key.
//! 2. `Login(public_key, challenge, signature)`: the signature is over the login message of
//!    `datatrust_core::auth` (context, origin, key, challenge). The challenge is consumed by
//!    the first attempt, right or wrong, so a captured login cannot be replayed, and a
//!    signature made for another trust or another purpose never matches.
//! 3. The token (32 random bytes) is bound to the key and the role it had at login. Every call
//!    re-reads the principal, so deactivating a key or changing its role ends its sessions.
//!
//! Both tables live in memory, bounded in size: a restart signs everyone out, which costs a
//! client one round trip. Several server nodes would need a shared table or signed tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use datatrust_core::auth::CHALLENGE_LENGTH;
use datatrust_core::{PublicKey, Role};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

const CHALLENGE_LIFETIME: Duration = Duration::from_secs(60);
/// Upper bounds on the tables, so unauthenticated callers cannot exhaust memory.
const MAXIMUM_CHALLENGES: usize = 100_000;
const MAXIMUM_SESSIONS: usize = 200_000;
const TOKEN_PREFIX: &str = "dt1_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub public_key: PublicKey,
    pub role: Role,
    pub expires_at: Instant,
    pub expires_at_unix: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("too many sign-ins in progress; try again shortly")]
    Busy,
}

pub struct Sessions {
    token_lifetime: Duration,
    challenges: Mutex<HashMap<[u8; CHALLENGE_LENGTH], (PublicKey, Instant)>>,
    /// Keyed by SHA-256 of the token, so the table itself holds no usable token.
    tokens: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    pub fn new(token_lifetime: Duration) -> Sessions {
        Sessions {
            token_lifetime,
            challenges: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Issues a challenge for `public_key`; returns it and its lifetime.
    pub fn create_challenge(
        &self,
        public_key: PublicKey,
    ) -> Result<([u8; CHALLENGE_LENGTH], Duration), AuthError> {
        let mut challenge = [0u8; CHALLENGE_LENGTH];
        rand::rngs::OsRng.fill_bytes(&mut challenge);
        let now = Instant::now();
        let mut challenges = self.challenges.lock().expect("challenge table poisoned");
        if challenges.len() >= MAXIMUM_CHALLENGES {
            challenges.retain(|_, (_, expires_at)| *expires_at > now);
            if challenges.len() >= MAXIMUM_CHALLENGES {
                return Err(AuthError::Busy);
            }
        }
        challenges.insert(challenge, (public_key, now + CHALLENGE_LIFETIME));
        Ok((challenge, CHALLENGE_LIFETIME))
    }

    /// Consumes the challenge whatever happens next; true when it was issued for this key and
    /// has not expired.
    pub fn take_challenge(&self, public_key: &PublicKey, challenge: &[u8]) -> bool {
        let Ok(challenge) = <[u8; CHALLENGE_LENGTH]>::try_from(challenge) else {
            return false;
        };
        let taken = self
            .challenges
            .lock()
            .expect("challenge table poisoned")
            .remove(&challenge);
        matches!(taken, Some((key, expires_at)) if key == *public_key && expires_at > Instant::now())
    }

    /// Starts a session; returns the bearer token and the session.
    pub fn start_session(
        &self,
        public_key: PublicKey,
        role: Role,
        now_unix: i64,
    ) -> Result<(String, Session), AuthError> {
        let mut token_bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut token_bytes);
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(token_bytes));
        let now = Instant::now();
        let session = Session {
            public_key,
            role,
            expires_at: now + self.token_lifetime,
            expires_at_unix: now_unix.saturating_add(self.token_lifetime.as_secs() as i64),
        };
        let mut tokens = self.tokens.lock().expect("session table poisoned");
        if tokens.len() >= MAXIMUM_SESSIONS {
            tokens.retain(|_, session| session.expires_at > now);
            if tokens.len() >= MAXIMUM_SESSIONS {
                return Err(AuthError::Busy);
            }
        }
        tokens.insert(token_hash(&token), session);
        Ok((token, session))
    }

    /// The live session behind a bearer token, if any.
    pub fn session(&self, token: &str) -> Option<Session> {
        if !token.starts_with(TOKEN_PREFIX) {
            return None;
        }
        let hash = token_hash(token);
        let mut tokens = self.tokens.lock().expect("session table poisoned");
        match tokens.get(&hash) {
            Some(session) if session.expires_at > Instant::now() => Some(*session),
            Some(_) => {
                tokens.remove(&hash);
                None
            }
            None => None,
        }
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
    fn a_challenge_is_single_use_and_bound_to_its_key() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (challenge, _) = sessions.create_challenge(key(1)).unwrap();
        assert!(!sessions.take_challenge(&key(2), &challenge));
        // The wrong-key attempt consumed it.
        assert!(!sessions.take_challenge(&key(1), &challenge));
        let (challenge, _) = sessions.create_challenge(key(1)).unwrap();
        assert!(sessions.take_challenge(&key(1), &challenge));
        assert!(!sessions.take_challenge(&key(1), &challenge));
        assert!(!sessions.take_challenge(&key(1), &challenge[..5]));
    }

    #[test]
    fn tokens_resolve_until_they_expire() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (token, session) = sessions.start_session(key(1), Role::Member, 0).unwrap();
        assert_eq!(sessions.session(&token), Some(session));
        assert_eq!(sessions.session("dt1_unknown"), None);
        assert_eq!(sessions.session(&token[1..]), None);
        let expired = Sessions::new(Duration::ZERO);
        let (token, _) = expired.start_session(key(1), Role::Member, 0).unwrap();
        assert_eq!(expired.session(&token), None);
    }
}
