//! Inclusion and consistency proofs: generation as RFC 6962 section 2.1.1 and 2.1.2 define
//! them, verification as RFC 9162 sections 2.1.3.2 and 2.1.4.2.
//!
//! Generation reads hashes of complete, aligned subtrees through `SubtreeSource`, so the same
//! code runs over tiles on disk and over a plain list in tests.

use crate::merkle::hash::{Hash, empty_root, largest_power_of_two_below, node_hash};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is out of range for tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {requested} is larger than the tree ({available})")]
    SizeOutOfRange { requested: u64, available: u64 },
    #[error("first size {first} is larger than second size {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyFirstTree,
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength { got: usize, expected: usize },
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    #[error("a hash is not 32 bytes")]
    BadHash,
    #[error("storage: {0}")]
    Source(String),
}

/// Hashes of complete subtrees: `subtree(level, index)` is MTH(D[index·2^level, (index+1)·2^level)).
pub trait SubtreeSource {
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, ProofError>;
}

/// MTH(D[start:end]) where [start, end) is a left-aligned range as RFC 6962's recursion
/// produces them: decomposed into complete subtrees, largest first, folded from the right.
pub fn range_root(source: &impl SubtreeSource, start: u64, end: u64) -> Result<Hash, ProofError> {
    if start == end {
        return Ok(empty_root());
    }
    let mut subtrees = Vec::with_capacity(64);
    let mut position = start;
    while position < end {
        let remaining = end - position;
        let alignment = if position == 0 {
            63
        } else {
            position.trailing_zeros()
        };
        let level = alignment.min(63 - remaining.leading_zeros());
        subtrees.push(source.subtree(level, position >> level)?);
        position += 1 << level;
    }
    let mut root = subtrees.pop().expect("a non-empty range has a subtree");
    while let Some(left) = subtrees.pop() {
        root = node_hash(&left, &root);
    }
    Ok(root)
}

/// The inclusion proof for leaf `index` in the tree of `size` leaves (RFC 6962 PATH).
pub fn inclusion_proof(
    source: &impl SubtreeSource,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::with_capacity(64);
    let (mut start, mut end) = (0u64, size);
    // Walk down from the root, remembering siblings; the proof lists them bottom-up.
    while end - start > 1 {
        let split = largest_power_of_two_below(end - start);
        if index - start < split {
            proof.push(range_root(source, start + split, end)?);
            end = start + split;
        } else {
            proof.push(range_root(source, start, start + split)?);
            start += split;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof between the trees of `first` and `second` leaves (RFC 6962 SUBPROOF).
pub fn consistency_proof(
    source: &impl SubtreeSource,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    let mut proof = Vec::with_capacity(64);
    let (mut m, mut start, mut end, mut complete) = (first, 0u64, second, true);
    while m != end - start {
        let split = largest_power_of_two_below(end - start);
        if m <= split {
            proof.push(range_root(source, start + split, end)?);
            end = start + split;
        } else {
            proof.push(range_root(source, start, start + split)?);
            m -= split;
            start += split;
            complete = false;
        }
    }
    if !complete {
        proof.push(range_root(source, start, end)?);
    }
    proof.reverse();
    Ok(proof)
}

/// The number of hashes in an inclusion proof for `index` in a tree of `size`.
pub fn inclusion_proof_length(index: u64, size: u64) -> usize {
    let last = size - 1;
    let inner = 64 - (index ^ last).leading_zeros();
    (inner + (index >> inner).count_ones()) as usize
}

/// RFC 9162 2.1.3.2. The length is checked first, as FORMATS.md asks.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_length(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    let (mut node_index, mut last_index) = (index, size - 1);
    let mut computed = *leaf;
    for sibling in proof {
        if last_index == 0 {
            return Err(ProofError::RootMismatch);
        }
        if node_index & 1 == 1 || node_index == last_index {
            computed = node_hash(sibling, &computed);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            computed = node_hash(&computed, sibling);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    if last_index == 0 && computed == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// RFC 9162 2.1.4.2.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: 0,
            });
        }
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength {
            got: 0,
            expected: 1,
        });
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut node_index, mut last_index) = (first - 1, second - 1);
    while node_index & 1 == 1 {
        node_index >>= 1;
        last_index >>= 1;
    }
    let (mut first_computed, mut second_computed) = (path[0], path[0]);
    for hash in &path[1..] {
        if last_index == 0 {
            return Err(ProofError::RootMismatch);
        }
        if node_index & 1 == 1 || node_index == last_index {
            first_computed = node_hash(hash, &first_computed);
            second_computed = node_hash(hash, &second_computed);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            second_computed = node_hash(&second_computed, hash);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    if first_computed == *first_root && second_computed == *second_root && last_index == 0 {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Decodes a hash from bytes of any length, refusing anything but 32.
pub fn hash_from_slice(bytes: &[u8]) -> Result<Hash, ProofError> {
    bytes.try_into().map_err(|_| ProofError::BadHash)
}

/// All subtree hashes of a list of leaf hashes held in memory; for tests and small trees.
#[derive(Debug, Clone, Default)]
pub struct InMemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl InMemoryTree {
    pub fn new() -> InMemoryTree {
        InMemoryTree {
            levels: vec![Vec::new()],
        }
    }

    pub fn push(&mut self, leaf: Hash) {
        self.levels[0].push(leaf);
        let mut level = 0;
        while self.levels[level].len().is_multiple_of(2) {
            let hashes = &self.levels[level];
            let parent = node_hash(&hashes[hashes.len() - 2], &hashes[hashes.len() - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    pub fn root(&self) -> Hash {
        range_root(self, 0, self.size()).expect("in-memory hashes are all present")
    }
}

impl SubtreeSource for InMemoryTree {
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(level as usize)
            .and_then(|hashes| hashes.get(index as usize))
            .copied()
            .ok_or_else(|| ProofError::Source(format!("no subtree at level {level} index {index}")))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use proptest::prelude::*;

    use super::*;
    use crate::merkle::hash::{leaf_hash, root_of};

    fn tree_of(count: u64) -> (InMemoryTree, Vec<Hash>) {
        let mut tree = InMemoryTree::new();
        let leaves: Vec<Hash> = (0..count)
            .map(|index| leaf_hash(&index.to_be_bytes()))
            .collect();
        for leaf in &leaves {
            tree.push(*leaf);
        }
        (tree, leaves)
    }

    proptest! {
        #[test]
        fn inclusion_proofs_verify_and_fail_when_tampered(size in 1u64..300, index_seed in any::<u64>(), flip in any::<u8>()) {
            let (tree, leaves) = tree_of(size);
            let index = index_seed % size;
            let root = root_of(&leaves);
            prop_assert_eq!(tree.root(), root);
            let proof = inclusion_proof(&tree, index, size).unwrap();
            prop_assert_eq!(proof.len(), inclusion_proof_length(index, size));
            prop_assert!(verify_inclusion(index, size, &leaves[index as usize], &proof, &root).is_ok());
            if !proof.is_empty() {
                let mut tampered = proof.clone();
                let at = flip as usize % tampered.len();
                tampered[at][0] ^= 1;
                prop_assert!(verify_inclusion(index, size, &leaves[index as usize], &tampered, &root).is_err());
            }
            let wrong_leaf = leaf_hash(b"not in the tree");
            prop_assert!(verify_inclusion(index, size, &wrong_leaf, &proof, &root).is_err());
        }

        #[test]
        fn consistency_proofs_verify_between_any_two_sizes(second in 1u64..300, first_seed in any::<u64>()) {
            let (tree, leaves) = tree_of(second);
            let first = 1 + first_seed % second;
            let proof = consistency_proof(&tree, first, second).unwrap();
            let first_root = root_of(&leaves[..first as usize]);
            let second_root = root_of(&leaves);
            prop_assert!(verify_consistency(first, second, &first_root, &second_root, &proof).is_ok());
            let other_root = root_of(&leaves[1..]);
            prop_assert!(verify_consistency(first, second, &first_root, &other_root, &proof).is_err());
        }
    }

    /// Vectors use short "don't care" strings where a root cannot matter; map them to a
    /// 32-byte value that keeps equality and can never equal a computed root.
    fn root_from_vector(value: &serde_json::Value) -> Hash {
        let bytes = decode(value).unwrap_or_default();
        hash_from_slice(&bytes).unwrap_or_else(|_| {
            use sha2::Digest as _;
            sha2::Sha256::digest([b"vector placeholder:".as_slice(), &bytes].concat()).into()
        })
    }

    fn decode(value: &serde_json::Value) -> Option<Vec<u8>> {
        value.as_str().map(|text| BASE64.decode(text).unwrap())
    }

    fn decode_proof(value: &serde_json::Value) -> Option<Vec<Hash>> {
        match value.as_array() {
            None => Some(Vec::new()),
            Some(list) => list
                .iter()
                .map(|item| hash_from_slice(&decode(item).unwrap()).ok())
                .collect(),
        }
    }

    fn vector_files(kind: &str) -> Vec<std::path::PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/rfc6962")
            .join(kind);
        let mut files = Vec::new();
        let mut pending = vec![root];
        while let Some(directory) = pending.pop() {
            for entry in std::fs::read_dir(directory).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path
                    .extension()
                    .is_some_and(|extension| extension == "json")
                {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    /// Every transparency-dev/merkle inclusion vector: accepted exactly when wantErr is false.
    #[test]
    fn inclusion_vectors() {
        let files = vector_files("inclusion");
        assert!(files.len() > 50, "vectors missing: {}", files.len());
        for file in files {
            let vector: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let want_error = vector["wantErr"].as_bool().unwrap();
            let outcome = (|| {
                let root = root_from_vector(&vector["root"]);
                // A leaf hash of the wrong length is an error, as in the reference verifier.
                let leaf = hash_from_slice(&decode(&vector["leafHash"]).unwrap_or_default())?;
                let proof = decode_proof(&vector["proof"]).ok_or(ProofError::BadHash)?;
                verify_inclusion(
                    vector["leafIdx"].as_u64().unwrap(),
                    vector["treeSize"].as_u64().unwrap(),
                    &leaf,
                    &proof,
                    &root,
                )
            })();
            assert_eq!(
                outcome.is_err(),
                want_error,
                "{}: {outcome:?}",
                file.display()
            );
        }
    }

    #[test]
    fn consistency_vectors() {
        let files = vector_files("consistency");
        assert!(files.len() > 50, "vectors missing: {}", files.len());
        for file in files {
            let vector: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let want_error = vector["wantErr"].as_bool().unwrap();
            let outcome = (|| {
                let first_root = root_from_vector(&vector["root1"]);
                let second_root = root_from_vector(&vector["root2"]);
                let proof = decode_proof(&vector["proof"]).ok_or(ProofError::BadHash)?;
                verify_consistency(
                    vector["size1"].as_u64().unwrap(),
                    vector["size2"].as_u64().unwrap(),
                    &first_root,
                    &second_root,
                    &proof,
                )
            })();
            assert_eq!(
                outcome.is_err(),
                want_error,
                "{}: {outcome:?}",
                file.display()
            );
        }
    }

    #[test]
    fn out_of_range_requests_are_errors_not_panics() {
        let (tree, _) = tree_of(10);
        assert!(matches!(
            inclusion_proof(&tree, 10, 10),
            Err(ProofError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            consistency_proof(&tree, 5, 4),
            Err(ProofError::SizesOutOfOrder { .. })
        ));
        assert!(matches!(
            consistency_proof(&tree, 0, 4),
            Err(ProofError::EmptyFirstTree)
        ));
        assert!(
            inclusion_proof(&tree, 3, 11).is_err(),
            "size beyond the tree"
        );
    }
}
