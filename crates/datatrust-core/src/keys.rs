//! ed25519 keys: principals' public keys, and the trust's signing keys in the text forms of
//! c2sp.org/signed-note (verifier key `name+hexid+base64(0x01||key)`, private key
//! `PRIVATE+KEY+name+hexid+base64(0x01||seed)` as Go's golang.org/x/mod/sumdb/note writes it).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::FieldError;

/// The signature type byte of ed25519 keys in signed notes.
const ED25519_SIGNATURE_TYPE: u8 = 0x01;

/// A validated ed25519 public key: 32 bytes that decode to a curve point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Decodes a raw 32-byte key, as carried on the wire; `field` names it in errors.
    pub fn from_slice(bytes: &[u8], field: &str) -> Result<PublicKey, FieldError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| {
            FieldError::new(
                field,
                format!("an ed25519 public key is 32 bytes, got {}", bytes.len()),
            )
        })?;
        let key = VerifyingKey::from_bytes(&array)
            .map_err(|_| FieldError::new(field, "not a valid ed25519 public key"))?;
        // A small-order point (the identity among them) has signatures that verify for many
        // messages; no honest key is one.
        if key.is_weak() {
            return Err(FieldError::new(
                field,
                "a small-order point, not a usable ed25519 public key",
            ));
        }
        Ok(PublicKey(array))
    }

    /// Decodes the standard base64 text form used by the CLI and in records.
    pub fn from_base64(text: &str, field: &str) -> Result<PublicKey, FieldError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| FieldError::new(field, "not valid base64"))?;
        PublicKey::from_slice(&bytes, field)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Checks an ed25519 signature by this key over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        // Strict verification refuses the malleable and small-order cases plain verify allows.
        key.verify_strict(message, &signature).is_ok()
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "PublicKey({})", self.to_base64())
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.to_base64())
    }
}

impl TryFrom<String> for PublicKey {
    type Error = FieldError;
    fn try_from(text: String) -> Result<PublicKey, FieldError> {
        PublicKey::from_base64(&text, "public_key")
    }
}

impl From<PublicKey> for String {
    fn from(key: PublicKey) -> String {
        key.to_base64()
    }
}

/// A signed-note key ID: the first 4 bytes of SHA-256(name || 0x0A || type || public key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    pub fn compute(name: &str, signature_type: u8, public_key: &[u8; 32]) -> KeyId {
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([b'\n', signature_type]);
        hasher.update(public_key);
        let digest = hasher.finalize();
        KeyId([digest[0], digest[1], digest[2], digest[3]])
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

/// Checks a signed-note key name: non-empty, no Unicode spaces, no `+`.
pub fn check_key_name(name: &str) -> Result<(), FieldError> {
    if name.is_empty() {
        return Err(FieldError::new("key_name", "must not be empty"));
    }
    if name
        .chars()
        .any(|character| character.is_whitespace() || character == '+' || character.is_control())
    {
        return Err(FieldError::new(
            "key_name",
            "must not contain spaces, control characters or '+'",
        ));
    }
    Ok(())
}

/// A named ed25519 signing key, as signed notes use it.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    signing_key: SigningKey,
    key_id: KeyId,
}

impl NoteSigner {
    pub fn new(name: &str, seed: [u8; 32]) -> Result<NoteSigner, FieldError> {
        check_key_name(name)?;
        let signing_key = SigningKey::from_bytes(&seed);
        let key_id = KeyId::compute(
            name,
            ED25519_SIGNATURE_TYPE,
            signing_key.verifying_key().as_bytes(),
        );
        Ok(NoteSigner {
            name: name.to_owned(),
            signing_key,
            key_id,
        })
    }

    /// Parses `PRIVATE+KEY+name+hexid+base64(0x01||seed)`, checking the ID matches the key.
    pub fn parse(text: &str) -> Result<NoteSigner, FieldError> {
        let text = text.trim_end_matches(['\n', '\r']);
        // Base64 may itself contain '+', so split as Go does: at most five fields.
        let fields: Vec<&str> = text.splitn(5, '+').collect();
        let [private, key, name, key_id_hex, key_base64] = fields.as_slice() else {
            return Err(FieldError::new(
                "private_key",
                "expected PRIVATE+KEY+name+hexid+base64",
            ));
        };
        if *private != "PRIVATE" || *key != "KEY" {
            return Err(FieldError::new(
                "private_key",
                "expected the text to start with PRIVATE+KEY+",
            ));
        }
        let key_bytes = BASE64
            .decode(key_base64)
            .map_err(|_| FieldError::new("private_key", "key is not valid base64"))?;
        let Some((&ED25519_SIGNATURE_TYPE, seed)) = key_bytes.split_first() else {
            return Err(FieldError::new(
                "private_key",
                "only ed25519 keys (type 0x01) are supported",
            ));
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| FieldError::new("private_key", "an ed25519 seed is 32 bytes"))?;
        let signer = NoteSigner::new(name, seed).map_err(|error| error.in_field("private_key"))?;
        if signer.key_id.to_hex() != key_id_hex.to_ascii_lowercase() {
            return Err(FieldError::new(
                "private_key",
                "key ID does not match the key and name",
            ));
        }
        Ok(signer)
    }

    /// The private key text; whoever holds it can sign as this key.
    pub fn to_private_text(&self) -> String {
        let mut key_bytes = Vec::with_capacity(33);
        key_bytes.push(ED25519_SIGNATURE_TYPE);
        key_bytes.extend_from_slice(self.signing_key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            self.key_id.to_hex(),
            BASE64.encode(key_bytes)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing_key.verifying_key().to_bytes())
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            public_key: self.public_key(),
            key_id: self.key_id,
        }
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing_key.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed.
        formatter
            .debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &self.key_id.to_hex())
            .finish()
    }
}

/// A named ed25519 verifier key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    public_key: PublicKey,
    key_id: KeyId,
}

impl NoteVerifier {
    /// Parses vkey text `name+hexid+base64(0x01||public key)`.
    pub fn parse(text: &str) -> Result<NoteVerifier, FieldError> {
        let text = text.trim();
        let fields: Vec<&str> = text.splitn(3, '+').collect();
        let [name, key_id_hex, key_base64] = fields.as_slice() else {
            return Err(FieldError::new("vkey", "expected name+hexid+base64"));
        };
        check_key_name(name).map_err(|error| error.in_field("vkey"))?;
        let key_bytes = BASE64
            .decode(key_base64)
            .map_err(|_| FieldError::new("vkey", "key is not valid base64"))?;
        let Some((&ED25519_SIGNATURE_TYPE, public_key)) = key_bytes.split_first() else {
            return Err(FieldError::new(
                "vkey",
                "only ed25519 keys (type 0x01) are supported",
            ));
        };
        let public_key = PublicKey::from_slice(public_key, "vkey")?;
        let key_id = KeyId::compute(name, ED25519_SIGNATURE_TYPE, public_key.as_bytes());
        if key_id.to_hex() != key_id_hex.to_ascii_lowercase() {
            return Err(FieldError::new(
                "vkey",
                "key ID does not match the key and name",
            ));
        }
        Ok(NoteVerifier {
            name: (*name).to_owned(),
            public_key,
            key_id,
        })
    }

    pub fn to_text(&self) -> String {
        let mut key_bytes = Vec::with_capacity(33);
        key_bytes.push(ED25519_SIGNATURE_TYPE);
        key_bytes.extend_from_slice(self.public_key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            self.key_id.to_hex(),
            BASE64.encode(key_bytes)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_vkey_from_formats_md_round_trips() {
        let text = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        let verifier = NoteVerifier::parse(text).unwrap();
        assert_eq!(verifier.name(), "example.com/foo");
        assert_eq!(verifier.key_id().to_hex(), "530d903a");
        assert_eq!(verifier.to_text(), text);
    }

    #[test]
    fn private_key_text_round_trips_and_matches_its_verifier() {
        let signer = NoteSigner::new("trust.example", [7; 32]).unwrap();
        let parsed = NoteSigner::parse(&signer.to_private_text()).unwrap();
        assert_eq!(parsed.verifier(), signer.verifier());
        let vkey = NoteVerifier::parse(&signer.verifier().to_text()).unwrap();
        let signature = signer.sign(b"hello");
        assert!(vkey.public_key().verify(b"hello", &signature));
        assert!(!vkey.public_key().verify(b"hellO", &signature));
    }

    #[test]
    fn refuses_a_vkey_whose_id_does_not_match() {
        let text = "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        assert!(NoteVerifier::parse(text).is_err());
        let renamed = "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        assert!(NoteVerifier::parse(renamed).is_err());
    }

    #[test]
    fn public_key_refuses_wrong_lengths_naming_the_field() {
        let error = PublicKey::from_slice(&[1, 2, 3], "member_key").unwrap_err();
        assert_eq!(error.field, "member_key");
        assert!(error.reason.contains("32 bytes"));
    }
}
