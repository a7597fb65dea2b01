//! RFC 6962 Merkle trees: hashing, proofs and their verification. Pure arithmetic, used by
//! the transparency log and by releases (whose roots commit to members' contributions).

pub mod hash;
pub mod proof;
pub mod sum;
