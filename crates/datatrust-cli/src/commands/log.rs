//! `datatrust log ...` and `datatrust receipt ...`: check the transparency log and receipts
//! with nothing but the log's verifier key; the server is never trusted.

use crate::output;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use datatrust_core::NoteVerifier;
use datatrust_core::log_entry::DecodedEntry;
use datatrust_proto::v1;
use datatrust_proto::v1::log_service_client::LogServiceClient;
use datatrust_tlog::proof::{
    InMemoryTree, SubtreeSource as _, hash_from_slice, verify_consistency,
};
use datatrust_tlog::receipt::Receipt;
use datatrust_tlog::tile::{TILE_WIDTH, TileKind, TileRequest, bundle_entries, bytes_to_hashes};
use datatrust_tlog::{SignedCheckpoint, leaf_hash};
use serde_json::json;

use crate::http::LogHttp;
use crate::{GlobalArgs, LogCommand, ReceiptCommand, client};

pub async fn run(global: &GlobalArgs, command: LogCommand) -> anyhow::Result<()> {
    let channel = client::connect(&global.server, global.ca_cert.as_deref()).await?;
    let mut log = LogServiceClient::new(channel.clone());
    match command {
        LogCommand::Verify {
            vkey,
            state,
            full,
            log_url,
        } => {
            let verifier =
                NoteVerifier::parse(&vkey).map_err(|error| anyhow!("--vkey: {}", error.reason))?;
            let response = log
                .get_checkpoint(v1::GetCheckpointRequest {})
                .await?
                .into_inner();
            let latest = SignedCheckpoint::open(&response.checkpoint, &verifier)
                .context("the server's checkpoint does not verify with --vkey")?;
            let state_path = state.unwrap_or_else(|| default_state_path(&verifier));
            let previous = read_state(&state_path, &verifier)?;
            let consistency = match &previous {
                None => "first checkpoint seen; nothing to compare with".to_owned(),
                Some(previous) => {
                    check_consistency(&mut log, previous, &latest).await?;
                    format!(
                        "consistent with the checkpoint seen before (size {})",
                        previous.checkpoint.size
                    )
                }
            };
            let recomputed = if full {
                // The server says where it serves the log; --log-url overrides (a proxy).
                let url = match log_url {
                    Some(url) => url,
                    None => {
                        let served = client::trust_info(&channel).await?.log_url;
                        if served.is_empty() {
                            bail!(
                                "--full needs --log-url (the log's HTTP prefix, e.g. http://127.0.0.1:8080/log): this server does not say"
                            )
                        }
                        served
                    }
                };
                let bundles = latest.checkpoint.size.div_ceil(TILE_WIDTH);
                let progress = crate::progress::bar(
                    "recomputing the tree (entry bundles)",
                    Some(bundles),
                    global.json,
                );
                let count = recompute(&LogHttp::new(&url)?, &latest, &progress).await?;
                progress.finish_and_clear();
                Some(count)
            } else {
                None
            };
            write_state(&state_path, &latest)?;
            output::show(
                global.json,
                json!({
                    "origin": latest.checkpoint.origin,
                    "tree_size": latest.checkpoint.size,
                    "consistent_with_previous": previous.map(|previous| previous.checkpoint.size),
                    "entries_recomputed": recomputed,
                }),
                || {
                    println!(
                        "checkpoint: {} at size {}, signature verified",
                        latest.checkpoint.origin, latest.checkpoint.size
                    );
                    println!("consistency: {consistency}");
                    if let Some(count) = recomputed {
                        println!(
                            "full check: recomputed the tree from {count} entries and every tile; the root matches"
                        );
                    }
                    println!("state saved to {}", state_path.display());
                },
            );
            Ok(())
        }
        LogCommand::Receipt { index, out } => {
            let receipt = log
                .get_receipt(v1::GetReceiptRequest { index })
                .await?
                .into_inner()
                .receipt;
            match out {
                Some(path) => {
                    std::fs::write(&path, &receipt)
                        .with_context(|| format!("writing {}", path.display()))?;
                    if !global.json {
                        println!("receipt for entry {index} written to {}", path.display());
                    }
                }
                None => print!("{receipt}"),
            }
            Ok(())
        }
        LogCommand::Consistency { first, second } => {
            let response = log
                .get_consistency_proof(v1::GetConsistencyProofRequest {
                    first_size: first,
                    second_size: second,
                })
                .await?
                .into_inner();
            for hash in &response.proof {
                println!(
                    "{}",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hash)
                );
            }
            Ok(())
        }
        LogCommand::Entries { start, end } => {
            // Past the end of the log is clamped to it; read in pages of the server's limit.
            let size = log
                .get_checkpoint(v1::GetCheckpointRequest {})
                .await?
                .into_inner()
                .tree_size;
            let end = end.min(size);
            if start >= end && !global.json {
                println!("No entries in [{start}, {end}): the log holds {size}.");
            }
            let mut next = start;
            while next < end {
                let page_end = end.min(next + 1000);
                let entries = log
                    .get_entries(v1::GetEntriesRequest {
                        start: next,
                        end: page_end,
                    })
                    .await?
                    .into_inner()
                    .entries;
                if entries.is_empty() {
                    break;
                }
                for (offset, entry) in entries.iter().enumerate() {
                    print_entry(global, next + offset as u64, entry);
                }
                next += entries.len() as u64;
            }
            Ok(())
        }
    }
}

pub fn receipt(global: &GlobalArgs, command: ReceiptCommand) -> anyhow::Result<()> {
    let ReceiptCommand::Verify { file, vkey, entry } = command;
    let verifier =
        NoteVerifier::parse(&vkey).map_err(|error| anyhow!("--vkey: {}", error.reason))?;
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let expected = entry
        .map(|path| std::fs::read(&path).with_context(|| format!("reading {}", path.display())))
        .transpose()?;
    let verified = Receipt::parse(&text)?
        .verify(&verifier, expected.as_deref())
        .with_context(|| format!("{} does not verify", file.display()))?;
    output::show(
        global.json,
        json!({
            "verified": true,
            "index": verified.index,
            "tree_size": verified.checkpoint.checkpoint.size,
            "entry": String::from_utf8_lossy(&verified.entry),
        }),
        || {
            println!(
                "verified: entry {} is in {}'s log at size {}",
                verified.index,
                verified.checkpoint.checkpoint.origin,
                verified.checkpoint.checkpoint.size
            );
            print_entry(global, verified.index, &verified.entry);
        },
    );
    Ok(())
}

fn print_entry(global: &GlobalArgs, index: u64, entry: &[u8]) {
    let Some(decoded) = DecodedEntry::parse(entry) else {
        output::show(
            global.json,
            json!({ "index": index, "type": null, "bytes": entry.len() }),
            || println!("{index}  (not a datatrust entry: {} bytes)", entry.len()),
        );
        return;
    };
    let fields: serde_json::Map<String, serde_json::Value> = decoded
        .fields
        .iter()
        .map(|(key, value)| (key.clone(), json!(value)))
        .collect();
    output::show(
        global.json,
        json!({ "index": index, "type": decoded.kind, "fields": fields }),
        || {
            let fields: Vec<String> = decoded
                .fields
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            println!("{index}  {}  {}", decoded.kind, fields.join(" "));
        },
    );
}

async fn check_consistency(
    log: &mut LogServiceClient<tonic::transport::Channel>,
    previous: &SignedCheckpoint,
    latest: &SignedCheckpoint,
) -> anyhow::Result<()> {
    let (old, new) = (&previous.checkpoint, &latest.checkpoint);
    if new.size < old.size {
        bail!(
            "ALERT: the log shrank from {} to {} entries: it is not append-only",
            old.size,
            new.size
        );
    }
    if new.size == old.size {
        if new.root != old.root {
            bail!(
                "ALERT: two different trees of size {}: the log forked",
                new.size
            );
        }
        return Ok(());
    }
    if old.size == 0 {
        return Ok(()); // every tree extends the empty one
    }
    let proof = log
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            first_size: old.size,
            second_size: new.size,
        })
        .await?
        .into_inner()
        .proof
        .iter()
        .map(|hash| hash_from_slice(hash))
        .collect::<Result<Vec<_>, _>>()?;
    verify_consistency(old.size, new.size, &old.root, &new.root, &proof).map_err(|error| {
        anyhow!(
            "ALERT: the log at size {} is not consistent with the size {} seen before: {error}",
            new.size,
            old.size
        )
    })
}

/// Fetches every entry bundle and tile of the checkpointed tree, checks each entry against
/// its level-0 hash and each higher tile against the recomputed subtrees, and compares the
/// recomputed root with the checkpoint's. Returns the number of entries.
async fn recompute(
    http: &LogHttp,
    latest: &SignedCheckpoint,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<u64> {
    let size = latest.checkpoint.size;
    let mut tree = InMemoryTree::new();
    let mut bundle = 0u64;
    while bundle * TILE_WIDTH < size {
        let width = (size - bundle * TILE_WIDTH).min(TILE_WIDTH);
        let partial = (width < TILE_WIDTH).then_some(width as u8);
        let entries_path = TileRequest {
            kind: TileKind::Entries,
            index: bundle,
            width: partial,
        }
        .path();
        let bytes = http.get(&entries_path).await?;
        let entries = bundle_entries(&bytes)
            .ok_or_else(|| anyhow!("{entries_path}: malformed entry bundle"))?;
        if entries.len() as u64 != width {
            bail!(
                "{entries_path}: {} entries, expected {width}",
                entries.len()
            );
        }
        let tile_path = TileRequest {
            kind: TileKind::Hashes { level: 0 },
            index: bundle,
            width: partial,
        }
        .path();
        let hashes = bytes_to_hashes(&http.get(&tile_path).await?)
            .ok_or_else(|| anyhow!("{tile_path}: bad length"))?;
        for (position, entry) in entries.iter().enumerate() {
            let leaf = leaf_hash(entry);
            if hashes.get(position) != Some(&leaf) {
                bail!(
                    "ALERT: entry {} does not match its hash in {tile_path}",
                    bundle * TILE_WIDTH + position as u64
                );
            }
            tree.push(leaf);
        }
        bundle += 1;
        progress.inc(1);
    }
    // Higher tiles: hash i of tile N at level L is the subtree at height 8L, index N*256+i.
    let mut level: u8 = 1;
    while (size >> (8 * u32::from(level))) > 0 {
        let count = size >> (8 * u32::from(level));
        let mut index = 0u64;
        while index * TILE_WIDTH < count {
            let width = (count - index * TILE_WIDTH).min(TILE_WIDTH);
            let partial = (width < TILE_WIDTH).then_some(width as u8);
            let path = TileRequest {
                kind: TileKind::Hashes { level },
                index,
                width: partial,
            }
            .path();
            let hashes = bytes_to_hashes(&http.get(&path).await?)
                .ok_or_else(|| anyhow!("{path}: bad length"))?;
            for (position, hash) in hashes.iter().enumerate() {
                let expected =
                    tree.subtree(8 * u32::from(level), index * TILE_WIDTH + position as u64)?;
                if *hash != expected {
                    bail!(
                        "ALERT: {path} hash {position} does not match the tree recomputed from the entries"
                    );
                }
            }
            index += 1;
        }
        level += 1;
    }
    if tree.root() != latest.checkpoint.root {
        bail!(
            "ALERT: the tree recomputed from the entries has a different root than the signed checkpoint"
        );
    }
    Ok(size)
}

/// Where the monitor keeps the last checkpoint it saw of a log: per origin *and* log key,
/// so two trusts that share an origin (two test trusts with the default one, say) never
/// read each other's state as a fork.
fn default_state_path(verifier: &NoteVerifier) -> PathBuf {
    let origin = verifier.name();
    let key_tag = {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(verifier.to_text().as_bytes());
        hex::encode(&digest[..6])
    };
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    let file: String = origin
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '.' || character == '-' {
                character
            } else {
                '_'
            }
        })
        .collect();
    base.join("datatrust")
        .join(format!("{file}-{key_tag}.checkpoint"))
}

fn read_state(path: &Path, verifier: &NoteVerifier) -> anyhow::Result<Option<SignedCheckpoint>> {
    match std::fs::read_to_string(path) {
        Ok(note) => Ok(Some(SignedCheckpoint::open(&note, verifier).with_context(
            || {
                format!(
                    "the saved checkpoint in {} does not verify with --vkey",
                    path.display()
                )
            },
        )?)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_state(path: &Path, latest: &SignedCheckpoint) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let temporary = path.with_extension("checkpoint.tmp");
    std::fs::write(&temporary, &latest.note)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
