//! RFC 6962 section 2.1 hashing: SHA-256, leaves prefixed 0x00, interior nodes 0x01.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// SHA-256 of the empty string: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(entry);
    hasher.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of a complete tree over `hashes`, whose count is a power of two.
pub fn complete_root(hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two());
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

/// MTH over a list of hashes of equal-size complete subtrees, for any count (RFC 6962 2.1).
pub fn root_of(hashes: &[Hash]) -> Hash {
    match hashes.len() {
        0 => empty_root(),
        1 => hashes[0],
        count => {
            let split = largest_power_of_two_below(count as u64) as usize;
            node_hash(&root_of(&hashes[..split]), &root_of(&hashes[split..]))
        }
    }
}

/// The RFC 6962 root of leaves added one at a time, holding only the roots of the perfect
/// subtrees their count decomposes into (at most 64 hashes, whatever the count).
#[derive(Debug, Clone, Default)]
pub struct CompactRoot {
    /// (size, root) of each perfect subtree, largest (leftmost) first.
    peaks: Vec<(u64, Hash)>,
}

impl CompactRoot {
    pub fn new() -> CompactRoot {
        CompactRoot::default()
    }

    pub fn push(&mut self, leaf: Hash) {
        let (mut size, mut hash) = (1u64, leaf);
        while let Some(&(last_size, last_hash)) = self.peaks.last()
            && last_size == size
        {
            self.peaks.pop();
            hash = node_hash(&last_hash, &hash);
            size *= 2;
        }
        self.peaks.push((size, hash));
    }

    /// The root of the leaves pushed so far: the peaks folded from the right.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(&(_, mut root)) = peaks.next() else {
            return empty_root();
        };
        for (_, peak) in peaks {
            root = node_hash(peak, &root);
        }
        root
    }
}

/// The largest power of two strictly less than `n` (n > 1).
pub fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
pub(crate) mod tests {
    #[test]
    fn a_compact_root_is_the_root_of_all_its_leaves() {
        let mut compact = super::CompactRoot::new();
        let mut leaves = Vec::new();
        assert_eq!(compact.root(), super::empty_root());
        for index in 0u32..70 {
            let leaf = super::leaf_hash(&index.to_be_bytes());
            compact.push(leaf);
            leaves.push(leaf);
            assert_eq!(
                compact.root(),
                super::root_of(&leaves),
                "{} leaves",
                leaves.len()
            );
        }
    }

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    use super::*;

    /// The eight test leaves of RFC 6962's reference implementation.
    pub fn rfc_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|text| {
            (0..text.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
                .collect()
        })
        .collect()
    }

    #[test]
    fn known_answers_from_formats_md() {
        let leaves: Vec<Hash> = rfc_leaves().iter().map(|leaf| leaf_hash(leaf)).collect();
        assert_eq!(
            BASE64.encode(root_of(&leaves)),
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="
        );
        assert_eq!(
            BASE64.encode(root_of(&leaves[..6])),
            "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8="
        );
        assert_eq!(root_of(&[]), empty_root());
        assert_eq!(complete_root(&leaves[..4]), root_of(&leaves[..4]));
    }

    #[test]
    fn largest_power_of_two_below_is_strict() {
        assert_eq!(largest_power_of_two_below(2), 1);
        assert_eq!(largest_power_of_two_below(3), 2);
        assert_eq!(largest_power_of_two_below(8), 4);
        assert_eq!(largest_power_of_two_below(9), 8);
        assert_eq!(largest_power_of_two_below(u64::MAX), 1 << 63);
    }
}
