//! `SignInStore` on sled: sign-ins survive a restart of the embedded store's trust.
//!
//! ```text
//! sign_in_secrets:            name                              -> secret (32)
//! sign_in_used_challenges:    challenge (its first 8 bytes are its expiry, BE) -> ()
//! sign_in_sessions:           SHA-256(token)                    -> key (32) || expires (i64 BE) || role
//! sign_in_sessions_by_key:    key (32) || sequence (u64 BE) || SHA-256(token) -> ()
//! sign_in_sessions_by_expiry: expires (i64 BE, offset) || SHA-256(token) -> ()
//! ```
//!
//! Sessions are not flushed one by one: a crash loses at most the last half second of
//! sign-ins (their callers sign in again), never anything a sign-in grants, since every call
//! re-reads the principal.

use datatrust_core::store::{SignInStore, StoreError, StoredSession};
use datatrust_core::{PublicKey, Role};

use crate::SledStore;
use crate::sled_store::store_error;

/// The sign-in trees of a trust's sled database.
#[derive(Clone)]
pub struct SledSignIns {
    database: sled::Db,
    secrets: sled::Tree,
    used_challenges: sled::Tree,
    sessions: sled::Tree,
    by_key: sled::Tree,
    by_expiry: sled::Tree,
}

/// Times as sortable bytes (negative times sort first).
fn time_key(seconds: i64) -> [u8; 8] {
    ((seconds as u64) ^ (1 << 63)).to_be_bytes()
}

impl SledSignIns {
    pub fn open(store: &SledStore) -> Result<SledSignIns, StoreError> {
        let database = store.database().clone();
        let tree = |name: &str| database.open_tree(name).map_err(store_error);
        Ok(SledSignIns {
            secrets: tree("sign_in_secrets")?,
            used_challenges: tree("sign_in_used_challenges")?,
            sessions: tree("sign_in_sessions")?,
            by_key: tree("sign_in_sessions_by_key")?,
            by_expiry: tree("sign_in_sessions_by_expiry")?,
            database,
        })
    }

    fn end_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        let Some(value) = self.sessions.remove(token_hash).map_err(store_error)? else {
            return Ok(());
        };
        let stored = decode(&value)?;
        self.by_expiry
            .remove([time_key(stored.expires).as_slice(), token_hash].concat())
            .map_err(store_error)?;
        for key in self.by_key.scan_prefix(stored.public_key.as_bytes()).keys() {
            let key = key.map_err(store_error)?;
            if key.ends_with(token_hash) {
                self.by_key.remove(&key).map_err(store_error)?;
            }
        }
        Ok(())
    }
}

fn encode(session: &StoredSession) -> Vec<u8> {
    [
        session.public_key.as_bytes().as_slice(),
        &session.expires.to_be_bytes(),
        session.role.as_str().as_bytes(),
    ]
    .concat()
}

fn decode(value: &[u8]) -> Result<StoredSession, StoreError> {
    let malformed = || StoreError::data_loss("a stored session is malformed");
    if value.len() < 40 {
        return Err(malformed());
    }
    Ok(StoredSession {
        public_key: PublicKey::from_slice(&value[..32], "public_key").map_err(|_| malformed())?,
        expires: i64::from_be_bytes(value[32..40].try_into().map_err(|_| malformed())?),
        role: std::str::from_utf8(&value[40..])
            .ok()
            .and_then(|role| Role::parse(role).ok())
            .ok_or_else(malformed)?,
    })
}

impl SignInStore for SledSignIns {
    fn secret(&self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
        let _ = self
            .secrets
            .compare_and_swap(name, None as Option<&[u8]>, Some(fresh.as_slice()))
            .map_err(store_error)?;
        self.database.flush().map_err(store_error)?;
        let stored = self
            .secrets
            .get(name)
            .map_err(store_error)?
            .ok_or_else(|| StoreError::data_loss(format!("the secret {name} is gone")))?;
        stored
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::data_loss(format!("the secret {name} is not 32 bytes")))
    }

    fn use_challenge(&self, challenge: &[u8], expires: i64, now: i64) -> Result<bool, StoreError> {
        // A challenge starts with its expiry, big-endian: the expired ones are a prefix range.
        let expired: Vec<sled::IVec> = self
            .used_challenges
            .range(..now.max(0).to_be_bytes().to_vec())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        for key in expired {
            self.used_challenges.remove(key).map_err(store_error)?;
        }
        let _ = expires;
        Ok(self
            .used_challenges
            .compare_and_swap(challenge, None as Option<&[u8]>, Some(&[] as &[u8]))
            .map_err(store_error)?
            .is_ok())
    }

    fn start_session(
        &self,
        token_hash: &[u8; 32],
        session: StoredSession,
        keep: usize,
        now: i64,
    ) -> Result<(), StoreError> {
        // Expired sessions go first, found by their expiry.
        let expired: Vec<sled::IVec> = self
            .by_expiry
            .range(..time_key(now.saturating_add(1)).to_vec())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        for key in expired {
            self.end_session(&key[8..])?;
            self.by_expiry.remove(&key).map_err(store_error)?;
        }
        let sequence = self.database.generate_id().map_err(store_error)?;
        self.sessions
            .insert(token_hash, encode(&session))
            .map_err(store_error)?;
        self.by_expiry
            .insert(
                [time_key(session.expires).as_slice(), token_hash].concat(),
                &[] as &[u8],
            )
            .map_err(store_error)?;
        self.by_key
            .insert(
                [
                    session.public_key.as_bytes().as_slice(),
                    &sequence.to_be_bytes(),
                    token_hash,
                ]
                .concat(),
                &[] as &[u8],
            )
            .map_err(store_error)?;
        // The key's oldest beyond `keep`.
        let held: Vec<sled::IVec> = self
            .by_key
            .scan_prefix(session.public_key.as_bytes())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        for key in held.iter().take(held.len().saturating_sub(keep)) {
            self.end_session(&key[40..])?;
        }
        Ok(())
    }

    fn session(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<StoredSession>, StoreError> {
        match self.sessions.get(token_hash).map_err(store_error)? {
            Some(value) => {
                let stored = decode(&value)?;
                Ok((stored.expires > now).then_some(stored))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(key: u8, expires: i64) -> StoredSession {
        StoredSession {
            public_key: datatrust_core::store_contract::test_key(key),
            role: Role::Member,
            expires,
        }
    }

    #[test]
    fn sessions_secrets_and_challenges_are_kept() {
        let store = SledStore::temporary().unwrap();
        let sign_ins = SledSignIns::open(&store).unwrap();
        let secret = sign_ins.secret("challenge", [1; 32]).unwrap();
        assert_eq!(secret, [1; 32]);
        assert_eq!(
            sign_ins.secret("challenge", [2; 32]).unwrap(),
            [1; 32],
            "the first stays"
        );
        let challenge = [&100i64.to_be_bytes()[..], &[7; 24]].concat();
        assert!(sign_ins.use_challenge(&challenge, 100, 50).unwrap());
        assert!(
            !sign_ins.use_challenge(&challenge, 100, 60).unwrap(),
            "used once"
        );
        assert!(
            sign_ins.use_challenge(&challenge, 100, 150).unwrap(),
            "forgotten once expired"
        );

        for index in 0..5u8 {
            sign_ins
                .start_session(&[index; 32], session(9, 1_000), 3, 10)
                .unwrap();
        }
        assert_eq!(
            sign_ins.session(&[0; 32], 10).unwrap(),
            None,
            "the oldest ended"
        );
        assert_eq!(sign_ins.session(&[1; 32], 10).unwrap(), None);
        assert_eq!(
            sign_ins.session(&[4; 32], 10).unwrap(),
            Some(session(9, 1_000))
        );
        assert_eq!(sign_ins.session(&[4; 32], 1_000).unwrap(), None, "expired");
        // A later sign-in forgets the expired ones.
        sign_ins
            .start_session(&[9; 32], session(8, 3_000), 3, 2_000)
            .unwrap();
        assert!(sign_ins.sessions.get([4; 32]).unwrap().is_none());
        assert_eq!(
            sign_ins.session(&[9; 32], 2_000).unwrap(),
            Some(session(8, 3_000))
        );
    }
}
