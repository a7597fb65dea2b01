//! Tiles (c2sp.org/tlog-tiles): paths, widths, and the hashes inside a tile.
//!
//! Tile `N` at level `L` holds hashes `MTH(D[(N·256+i)·256^L, (N·256+i+1)·256^L))` for i in
//! 0..256; level 0 holds leaf hashes. The tree levels between tile levels are recomputed by
//! hashing a tile's contents (`ExpandedTile`).

use crate::hash::{Hash, node_hash};

pub const TILE_WIDTH: u64 = 256;
pub const TILE_HEIGHT: u32 = 8;
pub const HASH_SIZE: usize = 32;
/// Largest entry a bundle can hold: its length prefix is a uint16.
pub const MAXIMUM_ENTRY_BYTES: usize = u16::MAX as usize;

/// What a tile URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    /// Merkle tree hashes at this tile level.
    Hashes { level: u8 },
    /// Entry bundle (level 0 data).
    Entries,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRequest {
    pub kind: TileKind,
    pub index: u64,
    /// `Some(W)` for a partial tile of width W (1 to 255).
    pub width: Option<u8>,
}

/// Encodes a tile index as 3-digit groups, all but the last prefixed with `x`.
pub fn index_path(index: u64) -> String {
    let mut groups = Vec::new();
    let mut rest = index;
    loop {
        groups.push(rest % 1000);
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(position, group)| {
            if position == last {
                format!("{group:03}")
            } else {
                format!("x{group:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl TileRequest {
    /// The path below `<prefix>/`, e.g. `tile/0/x001/234.p/7` or `tile/entries/005`.
    pub fn path(&self) -> String {
        let kind = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".to_owned(),
        };
        let width = self
            .width
            .map(|width| format!(".p/{width}"))
            .unwrap_or_default();
        format!("tile/{kind}/{}{width}", index_path(self.index))
    }

    /// Parses the path below `<prefix>/tile/`, exactly as the spec writes it: no leading
    /// zeros in the level or width, 3-digit groups, `x` on all groups but the last.
    pub fn parse(path: &str) -> Option<TileRequest> {
        let (kind_text, rest) = path.split_once('/')?;
        let kind = if kind_text == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(kind_text)?;
            if level > 63 {
                return None;
            }
            TileKind::Hashes { level: level as u8 }
        };
        let (index_text, width) = match rest.split_once(".p/") {
            Some((index_text, width_text)) => {
                let width = parse_decimal(width_text)?;
                if !(1..=255).contains(&width) {
                    return None;
                }
                (index_text, Some(width as u8))
            }
            None => (rest, None),
        };
        let groups: Vec<&str> = index_text.split('/').collect();
        let mut index: u64 = 0;
        for (position, group) in groups.iter().enumerate() {
            let digits = if position + 1 == groups.len() {
                *group
            } else {
                group.strip_prefix('x')?
            };
            if digits.len() != 3 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            index = index
                .checked_mul(1000)?
                .checked_add(digits.parse::<u64>().ok()?)?;
        }
        Some(TileRequest { kind, index, width })
    }
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|byte| byte.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

/// The hashes of a tile as bytes.
pub fn hashes_to_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes
        .iter()
        .flat_map(|hash| hash.iter().copied())
        .collect()
}

/// Splits tile bytes into hashes; `None` if the length is not a multiple of 32.
pub fn bytes_to_hashes(bytes: &[u8]) -> Option<Vec<Hash>> {
    if !bytes.len().is_multiple_of(HASH_SIZE) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(HASH_SIZE)
            .map(|chunk| chunk.try_into().expect("chunks are 32 bytes"))
            .collect(),
    )
}

/// Appends a uint16-length-prefixed entry to a bundle.
pub fn push_bundle_entry(bundle: &mut Vec<u8>, entry: &[u8]) {
    debug_assert!(entry.len() <= MAXIMUM_ENTRY_BYTES);
    bundle.extend_from_slice(&(entry.len() as u16).to_be_bytes());
    bundle.extend_from_slice(entry);
}

/// Splits an entry bundle into its entries; `None` if it is malformed.
pub fn bundle_entries(bundle: &[u8]) -> Option<Vec<&[u8]>> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return None;
        }
        let length = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + length {
            return None;
        }
        entries.push(&rest[2..2 + length]);
        rest = &rest[2 + length..];
    }
    Some(entries)
}

/// Every tree level inside one tile: `levels[0]` is the tile's own hashes, `levels[h][i]` the
/// root of `levels[0][i·2^h .. (i+1)·2^h]`. Only complete nodes are kept.
#[derive(Debug, Clone)]
pub struct ExpandedTile {
    levels: Vec<Vec<Hash>>,
}

impl ExpandedTile {
    pub fn new(hashes: Vec<Hash>) -> ExpandedTile {
        let mut levels = vec![hashes];
        while levels.last().is_some_and(|level| level.len() > 1) {
            let below = levels.last().expect("checked above");
            let above: Vec<Hash> = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        ExpandedTile { levels }
    }

    pub fn width(&self) -> usize {
        self.levels[0].len()
    }

    /// The node at `height` (0 to 8) and `index` within the tile, if complete.
    pub fn node(&self, height: u32, index: u64) -> Option<Hash> {
        self.levels
            .get(height as usize)?
            .get(index as usize)
            .copied()
    }

    /// The root of a full tile.
    pub fn root(&self) -> Option<Hash> {
        if self.width() as u64 == TILE_WIDTH {
            self.node(TILE_HEIGHT, 0)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_match_the_spec_examples() {
        assert_eq!(index_path(1234067), "x001/x234/067");
        assert_eq!(index_path(5), "005");
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(1000), "x001/000");
    }

    #[test]
    fn tile_paths_round_trip_and_bad_paths_are_refused() {
        for request in [
            TileRequest {
                kind: TileKind::Hashes { level: 0 },
                index: 1234067,
                width: None,
            },
            TileRequest {
                kind: TileKind::Hashes { level: 2 },
                index: 0,
                width: Some(1),
            },
            TileRequest {
                kind: TileKind::Entries,
                index: 17,
                width: Some(255),
            },
        ] {
            let path = request.path();
            let below = path.strip_prefix("tile/").unwrap();
            assert_eq!(TileRequest::parse(below), Some(request), "{path}");
        }
        for bad in [
            "0/5",
            "00/005",
            "0/x005",
            "0/001/002",
            "0/005.p/0",
            "0/005.p/256",
            "0/005.p/07",
            "64/000",
            "entries/05",
            "x/000",
            "0/00a",
        ] {
            assert_eq!(TileRequest::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bundles_round_trip_and_truncation_is_detected() {
        let mut bundle = Vec::new();
        push_bundle_entry(&mut bundle, b"first");
        push_bundle_entry(&mut bundle, b"");
        push_bundle_entry(&mut bundle, &[7; 300]);
        let entries = bundle_entries(&bundle).unwrap();
        assert_eq!(
            entries,
            vec![b"first".as_slice(), b"".as_slice(), [7; 300].as_slice()]
        );
        assert!(bundle_entries(&bundle[..bundle.len() - 1]).is_none());
    }

    #[test]
    fn an_expanded_tile_holds_every_complete_node() {
        let hashes: Vec<Hash> = (0..256u32)
            .map(|index| crate::hash::leaf_hash(&index.to_be_bytes()))
            .collect();
        let tile = ExpandedTile::new(hashes.clone());
        assert_eq!(tile.root(), Some(crate::hash::complete_root(&hashes)));
        assert_eq!(
            tile.node(3, 2),
            Some(crate::hash::complete_root(&hashes[16..24]))
        );
        let partial = ExpandedTile::new(hashes[..5].to_vec());
        assert_eq!(partial.root(), None);
        assert_eq!(
            partial.node(2, 0),
            Some(crate::hash::complete_root(&hashes[..4]))
        );
        assert_eq!(partial.node(2, 1), None);
    }
}
