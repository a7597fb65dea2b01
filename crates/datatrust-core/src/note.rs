//! Signed notes (c2sp.org/signed-note): text, a blank line, and signature lines
//! `— <key name> <base64(key ID || signature)>`. Checkpoints and licenses are signed notes, so
//! any implementation of the spec (Go's golang.org/x/mod/sumdb/note among them) verifies them.
//!
//! This lives in the core, not the log crate, because licenses (domain objects) are signed
//! notes too and the core must not depend on the log crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::{NoteSigner, NoteVerifier};

/// The longest note we sign or accept, in bytes: far above any checkpoint or license.
pub const MAXIMUM_NOTE_BYTES: usize = 1 << 20;
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note: {0}")]
    Malformed(String),
    #[error("note: no signature from a known key")]
    UnverifiedNote,
    #[error("note: the signature by {0} does not verify")]
    InvalidSignature(String),
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    /// The signature bytes after the key ID (64 for ed25519; 72 for timestamped cosignatures).
    pub signature: Vec<u8>,
}

/// A parsed note: its text (ending in a newline) and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// Checks note text: valid UTF-8 (by type), non-empty, ends in a newline, no control
/// characters other than newline, no blank line inside (that would end the text early).
pub fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Malformed(
            "text must be non-empty and end in a newline".into(),
        ));
    }
    if text.len() > MAXIMUM_NOTE_BYTES {
        return Err(NoteError::Malformed("text is too long".into()));
    }
    if text
        .chars()
        .any(|character| character.is_control() && character != '\n')
    {
        return Err(NoteError::Malformed(
            "text holds a control character".into(),
        ));
    }
    if text.contains("\n\n") || text.starts_with('\n') {
        return Err(NoteError::Malformed(
            "text must not contain a blank line".into(),
        ));
    }
    Ok(())
}

/// Signs `text` with each signer and returns the whole note.
pub fn sign(text: &str, signers: &[&NoteSigner]) -> Result<String, NoteError> {
    check_text(text)?;
    let mut note = String::with_capacity(text.len() + 1 + signers.len() * 128);
    note.push_str(text);
    note.push('\n');
    for signer in signers {
        let mut bytes = Vec::with_capacity(68);
        bytes.extend_from_slice(&signer.key_id().0);
        bytes.extend_from_slice(&signer.sign(text.as_bytes()));
        note.push_str(SIGNATURE_PREFIX);
        note.push_str(signer.name());
        note.push(' ');
        note.push_str(&BASE64.encode(bytes));
        note.push('\n');
    }
    Ok(note)
}

impl Note {
    /// Splits a note into text and signature lines, checking their syntax only.
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        if note.len() > MAXIMUM_NOTE_BYTES {
            return Err(NoteError::Malformed("note is too long".into()));
        }
        // The text ends at the last blank line: signatures never contain one.
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let text = &note[..split + 1];
        check_text(text)?;
        let signature_block = &note[split + 2..];
        if signature_block.is_empty() || !signature_block.ends_with('\n') {
            return Err(NoteError::Malformed(
                "signature lines must end in a newline".into(),
            ));
        }
        let mut signatures = Vec::new();
        for line in signature_block.lines() {
            let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
                NoteError::Malformed(format!(
                    "not a signature line: {}",
                    crate::validation::quoted(line)
                ))
            })?;
            let (name, encoded) = rest
                .split_once(' ')
                .ok_or_else(|| NoteError::Malformed("signature line without a signature".into()))?;
            crate::keys::check_key_name(name)
                .map_err(|error| NoteError::Malformed(error.to_string()))?;
            let bytes = BASE64
                .decode(encoded)
                .map_err(|_| NoteError::Malformed("signature is not base64".into()))?;
            if bytes.len() < 5 {
                return Err(NoteError::Malformed("signature too short".into()));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: [bytes[0], bytes[1], bytes[2], bytes[3]],
                signature: bytes[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature lines".into()));
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Verifies the note against known keys, as the spec says: signatures from unknown keys
    /// are ignored, a known key's bad signature fails the note, and at least one known key
    /// must have signed. Returns the names of the keys that verified.
    pub fn verify(&self, verifiers: &[&NoteVerifier]) -> Result<Vec<String>, NoteError> {
        let mut verified = Vec::new();
        for signature in &self.signatures {
            let known = verifiers.iter().find(|verifier| {
                verifier.name() == signature.name && verifier.key_id().0 == signature.key_id
            });
            let Some(verifier) = known else {
                continue;
            };
            if !verifier
                .public_key()
                .verify(self.text.as_bytes(), &signature.signature)
            {
                return Err(NoteError::InvalidSignature(signature.name.clone()));
            }
            verified.push(signature.name.clone());
        }
        if verified.is_empty() {
            return Err(NoteError::UnverifiedNote);
        }
        Ok(verified)
    }
}

/// Parses and verifies in one step; returns the verified text.
pub fn open(note: &str, verifiers: &[&NoteVerifier]) -> Result<Note, NoteError> {
    let parsed = Note::parse(note)?;
    parsed.verify(verifiers)?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE_VKEY: &str =
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const EXAMPLE_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    #[test]
    fn verifies_the_known_answer_from_formats_md() {
        let verifier = NoteVerifier::parse(EXAMPLE_VKEY).unwrap();
        let note = open(EXAMPLE_NOTE, &[&verifier]).unwrap();
        assert_eq!(note.text, "This is an example message.\n");
        let tampered = EXAMPLE_NOTE.replace("example message", "exemplary message");
        assert_eq!(
            open(&tampered, &[&verifier]).unwrap_err(),
            NoteError::InvalidSignature("example.com/foo".into())
        );
    }

    #[test]
    fn sign_then_verify_and_unknown_keys_are_ignored_but_not_enough() {
        let signer = NoteSigner::new("trust.test", [3; 32]).unwrap();
        let other = NoteSigner::new("witness.test", [4; 32]).unwrap();
        let note = sign("trust.test\n5\nAAAA\n", &[&signer, &other]).unwrap();
        let verified = open(&note, &[&signer.verifier()]).unwrap();
        assert_eq!(verified.signatures.len(), 2);
        assert_eq!(
            open(
                &note,
                &[&NoteSigner::new("nobody", [5; 32]).unwrap().verifier()]
            )
            .unwrap_err(),
            NoteError::UnverifiedNote
        );
    }

    #[test]
    fn malformed_notes_are_refused() {
        let signer = NoteSigner::new("k", [3; 32]).unwrap();
        assert!(sign("no newline", &[&signer]).is_err());
        assert!(sign("two\n\nparagraphs\n", &[&signer]).is_err());
        assert!(sign("bell\u{7}\n", &[&signer]).is_err());
        for bad in [
            "text\n",
            "text\n\n",
            "text\n\nnot a signature\n",
            "text\n\n\u{2014} k !!!\n",
        ] {
            assert!(Note::parse(bad).is_err(), "{bad:?}");
        }
    }
}
