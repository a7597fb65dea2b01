//! The messages a principal signs to prove it holds its key, and invitation codes.
//!
//! Every signed message starts with a distinct context line and names the trust's origin, so
//! a signature made for one purpose or one trust is worthless for any other (ARCHITECTURE.md,
//! "Authentication").

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::{FieldError, Origin, PublicKey};

/// Length of a login challenge, in bytes.
pub const CHALLENGE_LENGTH: usize = 32;

/// The message signed to log in: context, origin, key, challenge, one per line.
pub fn login_message(origin: &Origin, public_key: &PublicKey, challenge: &[u8]) -> Vec<u8> {
    format!(
        "datatrust login v1\n{}\n{}\n{}\n",
        origin,
        public_key.to_base64(),
        BASE64.encode(challenge)
    )
    .into_bytes()
}

/// The message signed to redeem an invitation: context, origin, key, code, one per line.
pub fn redeem_message(origin: &Origin, public_key: &PublicKey, code: &InvitationCode) -> Vec<u8> {
    format!(
        "datatrust redeem invitation v1\n{}\n{}\n{}\n",
        origin,
        public_key.to_base64(),
        code.as_str()
    )
    .into_bytes()
}

/// A one-time invitation code: 20 characters of Crockford base32 (100 bits), shown in groups
/// of five separated by dashes so that a person can read it out. The trust stores only its
/// SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct InvitationCode(String);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_CHARACTERS: usize = 20;

impl InvitationCode {
    /// Builds a code from 13 random bytes (the first 100 bits are used).
    pub fn from_random(random: [u8; 13]) -> InvitationCode {
        let mut bits: u128 = 0;
        for byte in random {
            bits = (bits << 8) | u128::from(byte);
        }
        bits >>= 4; // 104 bits read, 100 kept
        let mut characters = Vec::with_capacity(CODE_CHARACTERS);
        for position in (0..CODE_CHARACTERS).rev() {
            let index = ((bits >> (position * 5)) & 0x1f) as usize;
            characters.push(CROCKFORD[index]);
        }
        let text = characters
            .chunks(5)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        InvitationCode(text)
    }

    /// Accepts what a person types: any case, with or without dashes and spaces; Crockford's
    /// look-alikes (O for 0, I and L for 1) are read as the digits they resemble.
    pub fn parse(text: &str) -> Result<InvitationCode, FieldError> {
        let mut normalised = Vec::with_capacity(CODE_CHARACTERS);
        for character in text.chars() {
            let character = match character.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                other => other,
            };
            if !character.is_ascii() || !CROCKFORD.contains(&(character as u8)) {
                return Err(FieldError::new(
                    "invitation_code",
                    format!("{character:?} is not a character of an invitation code"),
                ));
            }
            normalised.push(character as u8);
        }
        if normalised.len() != CODE_CHARACTERS {
            return Err(FieldError::new(
                "invitation_code",
                format!(
                    "an invitation code has {CODE_CHARACTERS} characters, got {}",
                    normalised.len()
                ),
            ));
        }
        let text = normalised
            .chunks(5)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        Ok(InvitationCode(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store keeps: a leaked store does not leak usable codes.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for InvitationCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("InvitationCode(..)")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn generated_codes_parse_back_to_themselves(random in any::<[u8; 13]>()) {
            let code = InvitationCode::from_random(random);
            prop_assert_eq!(code.as_str().len(), 23);
            let typed = code.as_str().to_lowercase().replace('-', " ");
            prop_assert_eq!(InvitationCode::parse(&typed).unwrap(), code);
        }
    }

    #[test]
    fn look_alikes_read_as_digits_and_bad_codes_name_the_field() {
        let code = InvitationCode::parse("OOOOO-IIIII-LLLLL-00000").unwrap();
        assert_eq!(code.as_str(), "00000-11111-11111-00000");
        assert_eq!(
            InvitationCode::parse("ABC").unwrap_err().field,
            "invitation_code"
        );
        assert!(InvitationCode::parse("UUUUU-00000-00000-00000").is_err());
    }

    #[test]
    fn signed_messages_bind_origin_and_purpose() {
        let origin = Origin::parse("trust.example").unwrap();
        let other = Origin::parse("other.example").unwrap();
        let key = crate::NoteSigner::new("k", [1; 32]).unwrap().public_key();
        let code = InvitationCode::from_random([9; 13]);
        assert_ne!(
            login_message(&origin, &key, b"c"),
            login_message(&other, &key, b"c")
        );
        assert_ne!(
            login_message(&origin, &key, code.as_str().as_bytes()),
            redeem_message(&origin, &key, &code)
        );
    }
}
