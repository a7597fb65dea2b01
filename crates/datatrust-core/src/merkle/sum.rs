//! A Merkle sum tree: every node carries, besides its hash, the sums of the records and
//! amounts below it, and its parent's hash covers those sums. A member holding one leaf and
//! its proof can check that their amount is in the tree and that the root's totals are what
//! the log says, without seeing anyone else's amount.
//!
//! Shape: the RFC 6962 split (the left subtree holds the largest power of two of leaves
//! below the count), so proofs have the familiar length.
//! - leaf data: `datatrust share v1\n<commitment hex>\n<records>\n<amount>\n`
//! - leaf node: hash = SHA-256(0x00 || leaf data), sums = (records, amount)
//! - interior: hash = SHA-256(0x01 || left hash || left records || left amount || right hash
//!   || right records || right amount), sums added; the numbers are 8-byte big-endian.
//!
//! Sums use checked arithmetic: a tree whose totals would overflow `u64` is refused.

use sha2::{Digest, Sha256};

use super::hash::{Hash, largest_power_of_two_below};

/// One node's hash and the sums below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SumNode {
    pub hash: Hash,
    pub records: u64,
    pub amount: u64,
}

/// A leaf: whose share (a commitment only its owner recognises), how many records it
/// counted, what it received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLeaf {
    pub commitment: String,
    pub records: u64,
    pub amount: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SumTreeError {
    #[error("the totals overflow 64 bits")]
    Overflow,
    #[error("a tree needs at least one leaf")]
    Empty,
    #[error("leaf index {index} is outside a tree of {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the proof has {found} steps; a tree of {size} needs {expected} for leaf {index}")]
    WrongLength {
        found: usize,
        expected: usize,
        index: u64,
        size: u64,
    },
    #[error("the proof does not lead to the root")]
    RootMismatch,
}

impl ShareLeaf {
    pub fn data(&self) -> Vec<u8> {
        format!(
            "datatrust share v1\n{}\n{}\n{}\n",
            self.commitment, self.records, self.amount
        )
        .into_bytes()
    }

    pub fn node(&self) -> SumNode {
        let mut hasher = Sha256::new();
        hasher.update([0u8]);
        hasher.update(self.data());
        SumNode {
            hash: hasher.finalize().into(),
            records: self.records,
            amount: self.amount,
        }
    }
}

/// The parent of two nodes, or `Overflow` if its sums do not fit.
pub fn parent(left: &SumNode, right: &SumNode) -> Result<SumNode, SumTreeError> {
    let records = left
        .records
        .checked_add(right.records)
        .ok_or(SumTreeError::Overflow)?;
    let amount = left
        .amount
        .checked_add(right.amount)
        .ok_or(SumTreeError::Overflow)?;
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    for node in [left, right] {
        hasher.update(node.hash);
        hasher.update(node.records.to_be_bytes());
        hasher.update(node.amount.to_be_bytes());
    }
    Ok(SumNode {
        hash: hasher.finalize().into(),
        records,
        amount,
    })
}

/// The root over `leaves`, in order.
pub fn root(leaves: &[ShareLeaf]) -> Result<SumNode, SumTreeError> {
    let nodes: Vec<SumNode> = leaves.iter().map(ShareLeaf::node).collect();
    root_of_nodes(&nodes)
}

fn root_of_nodes(nodes: &[SumNode]) -> Result<SumNode, SumTreeError> {
    match nodes.len() {
        0 => Err(SumTreeError::Empty),
        1 => Ok(nodes[0]),
        count => {
            let split = largest_power_of_two_below(count as u64) as usize;
            parent(
                &root_of_nodes(&nodes[..split])?,
                &root_of_nodes(&nodes[split..])?,
            )
        }
    }
}

/// The siblings on the path from leaf `index` to the root, nearest first.
pub fn proof(leaves: &[ShareLeaf], index: u64) -> Result<Vec<SumNode>, SumTreeError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(SumTreeError::IndexOutOfRange { index, size });
    }
    let nodes: Vec<SumNode> = leaves.iter().map(ShareLeaf::node).collect();
    let mut path = Vec::new();
    collect_path(&nodes, index as usize, &mut path)?;
    Ok(path)
}

fn collect_path(
    nodes: &[SumNode],
    index: usize,
    path: &mut Vec<SumNode>,
) -> Result<(), SumTreeError> {
    if nodes.len() <= 1 {
        return Ok(());
    }
    let split = largest_power_of_two_below(nodes.len() as u64) as usize;
    if index < split {
        collect_path(&nodes[..split], index, path)?;
        path.push(root_of_nodes(&nodes[split..])?);
    } else {
        collect_path(&nodes[split..], index - split, path)?;
        path.push(root_of_nodes(&nodes[..split])?);
    }
    Ok(())
}

/// Which side each sibling sits on, nearest first (`true`: the sibling is on the right).
fn sides(index: u64, size: u64) -> Vec<bool> {
    let mut sides = Vec::new();
    let (mut index, mut size) = (index, size);
    while size > 1 {
        let split = largest_power_of_two_below(size);
        if index < split {
            sides.push(true);
            size = split;
        } else {
            sides.push(false);
            index -= split;
            size -= split;
        }
    }
    sides.reverse();
    sides
}

/// Recomputes the root from a leaf and its proof and compares hash and sums with `root`.
pub fn verify(
    leaf: &ShareLeaf,
    index: u64,
    size: u64,
    proof: &[SumNode],
    root: &SumNode,
) -> Result<(), SumTreeError> {
    if index >= size {
        return Err(SumTreeError::IndexOutOfRange { index, size });
    }
    let sides = sides(index, size);
    if sides.len() != proof.len() {
        return Err(SumTreeError::WrongLength {
            found: proof.len(),
            expected: sides.len(),
            index,
            size,
        });
    }
    let mut node = leaf.node();
    for (sibling, sibling_on_right) in proof.iter().zip(sides) {
        node = if sibling_on_right {
            parent(&node, sibling)?
        } else {
            parent(sibling, &node)?
        };
    }
    if node != *root {
        return Err(SumTreeError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn leaves(amounts: &[(u64, u64)]) -> Vec<ShareLeaf> {
        amounts
            .iter()
            .enumerate()
            .map(|(index, (records, amount))| ShareLeaf {
                commitment: format!("{index:064x}"),
                records: *records,
                amount: *amount,
            })
            .collect()
    }

    #[test]
    fn a_single_leaf_is_its_own_root() {
        let tree = leaves(&[(3, 70)]);
        let root = root(&tree).unwrap();
        assert_eq!((root.records, root.amount), (3, 70));
        assert_eq!(proof(&tree, 0).unwrap(), vec![]);
        verify(&tree[0], 0, 1, &[], &root).unwrap();
    }

    #[test]
    fn overflowing_totals_are_refused() {
        let tree = leaves(&[(1, u64::MAX), (1, 1)]);
        assert_eq!(root(&tree), Err(SumTreeError::Overflow));
        assert_eq!(root(&[]), Err(SumTreeError::Empty));
    }

    #[test]
    fn a_lie_about_a_siblings_sum_is_caught() {
        // A trust that hides money by understating a sibling's amount: the parent's hash
        // covers the sums, so the root no longer matches.
        let tree = leaves(&[(1, 10), (2, 20), (3, 30)]);
        let root = root(&tree).unwrap();
        let mut path = proof(&tree, 0).unwrap();
        path[0].amount -= 1;
        assert_eq!(
            verify(&tree[0], 0, 3, &path, &root),
            Err(SumTreeError::RootMismatch)
        );
    }

    proptest! {
        #[test]
        fn every_leaf_verifies_and_totals_add_up(
            amounts in proptest::collection::vec((0u64..1_000_000, 0u64..1_000_000_000), 1..70)
        ) {
            let tree = leaves(&amounts);
            let root = root(&tree).unwrap();
            prop_assert_eq!(root.records, amounts.iter().map(|(records, _)| records).sum::<u64>());
            prop_assert_eq!(root.amount, amounts.iter().map(|(_, amount)| amount).sum::<u64>());
            for (index, leaf) in tree.iter().enumerate() {
                let path = proof(&tree, index as u64).unwrap();
                prop_assert!(verify(leaf, index as u64, tree.len() as u64, &path, &root).is_ok());
            }
        }

        #[test]
        fn a_tampered_amount_fails(
            amounts in proptest::collection::vec((0u64..1_000, 1u64..1_000_000), 1..40),
            pick in any::<prop::sample::Index>(),
            delta in 1u64..1000,
        ) {
            let tree = leaves(&amounts);
            let root = root(&tree).unwrap();
            let index = pick.index(tree.len());
            let path = proof(&tree, index as u64).unwrap();
            let mut forged = tree[index].clone();
            forged.amount += delta;
            prop_assert!(verify(&forged, index as u64, tree.len() as u64, &path, &root).is_err());
            // Nor may the leaf claim another position.
            if tree.len() > 1 {
                let other = (index + 1) % tree.len();
                prop_assert!(verify(&tree[index], other as u64, tree.len() as u64, &path, &root).is_err()
                    || tree[index] == tree[other]);
            }
        }
    }
}
