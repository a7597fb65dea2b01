//! Checkpoints (c2sp.org/tlog-checkpoint): origin, tree size, base64 root hash, each on its
//! own line, signed as a note by the log key whose name is the origin.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use datatrust_core::note::{self, NoteError};
use datatrust_core::{NoteSigner, NoteVerifier};

use crate::hash::Hash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// A checkpoint with the signed note it came from, as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint: {0}")]
    Malformed(String),
    #[error("checkpoint: origin is {found}, expected {expected}")]
    WrongOrigin { found: String, expected: String },
    #[error(transparent)]
    Note(#[from] NoteError),
}

impl Checkpoint {
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Parses checkpoint text. Extension lines are refused: this log writes none.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let malformed = |reason: &str| CheckpointError::Malformed(reason.to_owned());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("text must end in a newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root] = lines.as_slice() else {
            return Err(malformed(
                "expected exactly three lines: origin, size, root",
            ));
        };
        if origin.is_empty() {
            return Err(malformed("empty origin"));
        }
        if size.is_empty()
            || (size.len() > 1 && size.starts_with('0'))
            || !size.bytes().all(|byte| byte.is_ascii_digit())
        {
            return Err(malformed("size must be decimal without leading zeros"));
        }
        let size = size
            .parse()
            .map_err(|_| malformed("size does not fit in 64 bits"))?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| malformed("root must be 32 bytes of base64"))?;
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
        })
    }

    /// Signs the checkpoint with the log key; the key's name must be the origin.
    pub fn sign(&self, signer: &NoteSigner) -> Result<SignedCheckpoint, CheckpointError> {
        if signer.name() != self.origin {
            return Err(CheckpointError::WrongOrigin {
                found: signer.name().to_owned(),
                expected: self.origin.clone(),
            });
        }
        let note = note::sign(&self.to_text(), &[signer])?;
        Ok(SignedCheckpoint {
            checkpoint: self.clone(),
            note,
        })
    }
}

impl SignedCheckpoint {
    /// Verifies a signed checkpoint against the log's verifier key, whose name is the origin.
    pub fn open(
        note_text: &str,
        verifier: &NoteVerifier,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let note = note::open(note_text, &[verifier])?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        if checkpoint.origin != verifier.name() {
            return Err(CheckpointError::WrongOrigin {
                found: checkpoint.origin,
                expected: verifier.name().to_owned(),
            });
        }
        Ok(SignedCheckpoint {
            checkpoint,
            note: note_text.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_opens_and_refuses_other_origins_and_shapes() {
        let signer = NoteSigner::new("trust.test", [9; 32]).unwrap();
        let checkpoint = Checkpoint {
            origin: "trust.test".into(),
            size: 42,
            root: [7; 32],
        };
        let signed = checkpoint.sign(&signer).unwrap();
        assert!(signed.note.starts_with("trust.test\n42\nBwcH"));
        let opened = SignedCheckpoint::open(&signed.note, &signer.verifier()).unwrap();
        assert_eq!(opened.checkpoint, checkpoint);

        let other = NoteSigner::new("other.test", [9; 32]).unwrap();
        assert!(checkpoint.sign(&other).is_err());
        for bad in [
            "trust.test\n042\nAAAA\n",
            "trust.test\n1\n",
            "trust.test\n1\nAAAA\n",
            "trust.test\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\nextension\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
