//! Receipts (c2sp.org/tlog-proof): a self-contained, offline-verifiable proof that an entry is
//! in the log. datatrust puts the entry itself in the `extra` line, so the receipt alone lets
//! a verifier recompute the leaf hash and read what was logged.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use datatrust_core::NoteVerifier;

use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::hash::{Hash, leaf_hash};
use crate::proof::{ProofError, verify_inclusion};

const HEADER: &str = "c2sp.org/tlog-proof@v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The logged entry, carried in the `extra` line.
    pub entry: Option<Vec<u8>>,
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint_note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("receipt: {0}")]
    Malformed(String),
    #[error("receipt: no entry to check: the receipt has no extra line and none was given")]
    NoEntry,
    #[error("receipt: the entry given differs from the one in the receipt")]
    EntryMismatch,
    #[error("receipt: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("receipt: inclusion proof: {0}")]
    Proof(#[from] ProofError),
}

/// What a verified receipt establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    pub index: u64,
    pub entry: Vec<u8>,
    pub checkpoint: SignedCheckpoint,
}

impl Receipt {
    pub fn to_text(&self) -> String {
        let mut text = String::from(HEADER);
        text.push('\n');
        if let Some(entry) = &self.entry {
            text.push_str("extra ");
            text.push_str(&BASE64.encode(entry));
            text.push('\n');
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.proof {
            text.push_str(&BASE64.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint_note);
        text
    }

    pub fn parse(text: &str) -> Result<Receipt, ReceiptError> {
        let malformed = |reason: &str| ReceiptError::Malformed(reason.to_owned());
        let (head, checkpoint_note) = text
            .split_once("\n\n")
            .ok_or_else(|| malformed("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(malformed("the first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| malformed("no index line"))?;
        let mut entry = None;
        if let Some(extra) = line.strip_prefix("extra ") {
            entry = Some(
                BASE64
                    .decode(extra)
                    .map_err(|_| malformed("extra is not base64"))?,
            );
            line = lines.next().ok_or_else(|| malformed("no index line"))?;
        }
        let index_text = line
            .strip_prefix("index ")
            .ok_or_else(|| malformed("expected an index line"))?;
        if index_text.is_empty()
            || (index_text.len() > 1 && index_text.starts_with('0'))
            || !index_text.bytes().all(|byte| byte.is_ascii_digit())
        {
            return Err(malformed("index must be decimal without leading zeros"));
        }
        let index = index_text
            .parse()
            .map_err(|_| malformed("index does not fit in 64 bits"))?;
        let proof = lines
            .map(|line| {
                BASE64
                    .decode(line)
                    .ok()
                    .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
                    .ok_or_else(|| malformed("a proof line is not a base64 SHA-256 hash"))
            })
            .collect::<Result<Vec<Hash>, ReceiptError>>()?;
        Ok(Receipt {
            entry,
            index,
            proof,
            checkpoint_note: checkpoint_note.to_owned(),
        })
    }

    /// Verifies offline: the checkpoint's signature by the log key, then the inclusion of the
    /// entry (from `extra`, or `expected_entry`, which must match `extra` when both exist).
    pub fn verify(
        &self,
        log_verifier: &NoteVerifier,
        expected_entry: Option<&[u8]>,
    ) -> Result<VerifiedReceipt, ReceiptError> {
        let entry = match (&self.entry, expected_entry) {
            (Some(carried), Some(expected)) if carried.as_slice() != expected => {
                return Err(ReceiptError::EntryMismatch);
            }
            (Some(carried), _) => carried.clone(),
            (None, Some(expected)) => expected.to_vec(),
            (None, None) => return Err(ReceiptError::NoEntry),
        };
        let checkpoint = SignedCheckpoint::open(&self.checkpoint_note, log_verifier)?;
        verify_inclusion(
            self.index,
            checkpoint.checkpoint.size,
            &leaf_hash(&entry),
            &self.proof,
            &checkpoint.checkpoint.root,
        )?;
        Ok(VerifiedReceipt {
            index: self.index,
            entry,
            checkpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use datatrust_core::NoteSigner;

    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::proof::{InMemoryTree, inclusion_proof};

    #[test]
    fn a_receipt_round_trips_verifies_and_catches_tampering() {
        let signer = NoteSigner::new("trust.test", [2; 32]).unwrap();
        let entries: Vec<Vec<u8>> = (0..13u8).map(|index| vec![index; 10]).collect();
        let mut tree = InMemoryTree::new();
        for entry in &entries {
            tree.push(leaf_hash(entry));
        }
        let checkpoint = Checkpoint {
            origin: "trust.test".into(),
            size: 13,
            root: tree.root(),
        }
        .sign(&signer)
        .unwrap();
        let receipt = Receipt {
            entry: Some(entries[6].clone()),
            index: 6,
            proof: inclusion_proof(&tree, 6, 13).unwrap(),
            checkpoint_note: checkpoint.note.clone(),
        };
        let text = receipt.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
        let parsed = Receipt::parse(&text).unwrap();
        assert_eq!(parsed, receipt);
        let verified = parsed.verify(&signer.verifier(), None).unwrap();
        assert_eq!(verified.entry, entries[6]);

        assert_eq!(
            parsed.verify(&signer.verifier(), Some(&entries[5])),
            Err(ReceiptError::EntryMismatch)
        );
        let moved = Receipt {
            index: 7,
            ..parsed.clone()
        };
        assert!(moved.verify(&signer.verifier(), None).is_err());
        let other_key = NoteSigner::new("trust.test", [3; 32]).unwrap();
        assert!(parsed.verify(&other_key.verifier(), None).is_err());
        let forged = Receipt {
            entry: Some(b"something else".to_vec()),
            ..parsed
        };
        assert!(forged.verify(&signer.verifier(), None).is_err());
        assert!(Receipt::parse("c2sp.org/tlog-proof@v1\nindex 01\n\nx").is_err());
    }
}
