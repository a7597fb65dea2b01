//! `datatrust admin`: an operator's work on a stopped trust's data directory.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use datatrust_core::store::Store;
use datatrust_store::DataDirectory;
use datatrust_tlog::{LogStore, Sequencer, SequencerOptions};
use serde_json::json;

use crate::AdminCommand;
use crate::output;

/// Entries read from the log at a time.
const PAGE: u64 = datatrust_tlog::reader::MAXIMUM_ENTRIES_PER_READ;

pub fn run(command: AdminCommand, json_output: bool) -> anyhow::Result<()> {
    match command {
        AdminCommand::Init {
            data_dir,
            origin,
            predecessor_checkpoint,
            predecessor_vkey,
        } => init(
            &data_dir,
            origin.as_deref(),
            predecessor_checkpoint
                .as_deref()
                .zip(predecessor_vkey.as_deref()),
            json_output,
        ),
        AdminCommand::Check {
            data_dir,
            database,
            database_schema,
        } => check(
            &data_dir,
            database.as_deref(),
            &database_schema,
            json_output,
        ),
        AdminCommand::Backup { .. } => bail!("admin backup runs on the async runtime"),
        AdminCommand::Restore {
            from,
            keys,
            data_dir,
            seen_checkpoint,
            erasures,
        } => restore(
            &from,
            keys.as_deref(),
            &data_dir,
            &seen_checkpoint,
            erasures.as_deref(),
            json_output,
        ),
        AdminCommand::Migrate {
            data_dir,
            to_database,
            from_database,
            database_schema,
        } => match (to_database, from_database) {
            (Some(database), None) => {
                migrate(&data_dir, &database, &database_schema, true, json_output)
            }
            (None, Some(database)) => {
                migrate(&data_dir, &database, &database_schema, false, json_output)
            }
            _ => bail!("give exactly one of --to-database and --from-database"),
        },
    }
}

/// Creates the data directory, or leaves the trust already in it as it is.
fn init(
    data_dir: &Path,
    origin: Option<&str>,
    predecessor: Option<(&Path, &str)>,
    json_output: bool,
) -> anyhow::Result<()> {
    let requested = origin
        .map(datatrust_core::Origin::parse)
        .transpose()
        .context("--origin")?;
    // The compromised log's final checkpoint, checked before anything is created.
    let predecessor = match predecessor {
        Some((file, vkey)) => {
            let verifier = datatrust_core::NoteVerifier::parse(vkey)
                .map_err(|error| anyhow::anyhow!("--predecessor-vkey: {}", error.reason))?;
            let note = std::fs::read_to_string(file)
                .with_context(|| format!("--predecessor-checkpoint {}", file.display()))?;
            let checkpoint = datatrust_tlog::SignedCheckpoint::open(&note, &verifier)
                .with_context(|| {
                    format!(
                        "--predecessor-checkpoint {}: not a checkpoint signed by --predecessor-vkey",
                        file.display()
                    )
                })?;
            if requested
                .as_ref()
                .is_none_or(|origin| origin.as_str() == checkpoint.checkpoint.origin)
            {
                bail!(
                    "--origin: a successor needs a new origin, not {}",
                    checkpoint.checkpoint.origin
                );
            }
            Some(note)
        }
        None => None,
    };
    let opened = DataDirectory::open_or_create_with_keys(
        data_dir,
        crate::config::keys_dir_from_environment().as_deref(),
        requested.as_ref(),
        &datatrust_core::Origin::parse(crate::config::DEFAULT_ORIGIN)?,
        datatrust_server::now(),
    )
    .with_context(|| format!("creating the trust in {}", data_dir.display()))?;
    let origin = opened.metadata.origin.to_string();
    let created = opened.created_trustee_key.clone();
    if let Some(note) = &predecessor {
        if created.is_none() {
            bail!(
                "{} already holds a trust: a successor starts in a new, empty directory",
                data_dir.display()
            );
        }
        datatrust_store::record_predecessor(&opened.store, note)?;
    }
    datatrust_core::store::TrustStore::flush(&opened.store)?;
    let value = json!({
        "data_dir": data_dir.display().to_string(), "origin": origin,
        "created": created.is_some(),
        "initial_trustee_key": created.as_ref().map(|path| path.display().to_string()),
    });
    output::show(json_output, value, || match &created {
        Some(key) => {
            println!("Created the trust {origin} in {}.", data_dir.display());
            println!(
                "The first trustee's key is {} (keep it secret; move it off this machine).",
                key.display()
            );
        }
        None => println!(
            "{} already holds the trust {origin}; nothing to do.",
            data_dir.display()
        ),
    });
    Ok(())
}

fn check(
    data_dir: &Path,
    database: Option<&str>,
    database_schema: &str,
    json_output: bool,
) -> anyhow::Result<()> {
    let opened = open_existing(data_dir)?;
    let (store, log_store): (Arc<dyn Store>, Arc<dyn LogStore>) = match database {
        None => {
            let log_store = Arc::new(opened.store.log_store()?);
            (Arc::new(opened.store), log_store)
        }
        Some(database) => {
            let storage = datatrust_server::postgres_storage(
                &opened.store,
                database,
                database_schema,
                &datatrust_server::published_file(data_dir, database_schema),
            )
            .context("--database: opening the trust in PostgreSQL")?;
            (storage.store, storage.log)
        }
    };
    let report = replay(store.as_ref(), log_store, opened.log_signer)?;
    let value = json!({
        "entries": report.entries, "principals": report.principals,
        "consents": report.consents, "authorizations": report.authorizations,
        "payments": report.payments, "licenses": report.licenses, "terms": report.terms,
        "indexed_records": report.indexed, "differences": report.differences,
    });
    output::show(json_output, value, || {
        println!(
            "replayed {} log entries against {} principals, {} consents, {} collector authorisations, {} payments, {} licenses, {} terms, {} training uses, charges, releases, payouts and suspensions",
            report.entries,
            report.principals,
            report.consents,
            report.authorizations,
            report.payments,
            report.licenses,
            report.terms,
            report.indexed
        );
        for difference in &report.differences {
            println!("DIFFERENCE: {difference}");
        }
        if report.differences.is_empty() {
            println!(
                "no difference: every logged change is applied and every applied change logged"
            );
        }
    });
    if !report.differences.is_empty() {
        bail!(
            "{} difference(s) between the log and the stored state",
            report.differences.len()
        );
    }
    Ok(())
}

/// Opens the trust in `data_dir`, which must exist; the directory's lock refuses this while
/// a server runs on it.
fn open_existing(data_dir: &Path) -> anyhow::Result<datatrust_store::OpenedTrust> {
    if !data_dir.join("DATATRUST").exists() {
        bail!(
            "--data-dir: {} holds no trust (no DATATRUST marker file)",
            data_dir.display()
        );
    }
    DataDirectory::open_or_create_with_keys(
        data_dir,
        crate::config::keys_dir_from_environment().as_deref(),
        None,
        &datatrust_core::Origin::parse(crate::config::DEFAULT_ORIGIN)?,
        datatrust_server::now(),
    )
    .with_context(|| format!("opening the trust in {}", data_dir.display()))
}

/// Opens the log (which verifies its tree against its checkpoint) and replays it against
/// `store`, reading it a page at a time: memory does not grow with it.
fn replay(
    store: &dyn Store,
    log: Arc<dyn LogStore>,
    signer: datatrust_core::NoteSigner,
) -> anyhow::Result<datatrust_core::replay::Report> {
    let sequencer =
        Sequencer::open(log, signer, SequencerOptions::default()).context("opening the log")?;
    let reader = Arc::clone(sequencer.reader());
    let size = reader.size();
    let entries = (0..size.div_ceil(PAGE)).flat_map(|page| {
        let (start, end) = (page * PAGE, ((page + 1) * PAGE).min(size));
        match reader.entries(start, end) {
            Ok(entries) => entries.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(error) => vec![Err(format!("reading log entries {start}..{end}: {error}"))],
        }
    });
    let report = datatrust_core::replay::check(store, entries)?;
    sequencer.shutdown();
    Ok(report)
}

/// Rows copied in one commit of the target.
const COPY_BATCH: usize = 1000;
/// Entry bundles (of 256 entries each) copied in one commit of the target.
const BUNDLES_PER_COMMIT: u64 = 64;

/// Where a trust is moved from and to.
struct Side {
    store: Arc<dyn Store>,
    log: Arc<dyn LogStore>,
    name: String,
}

/// Copies the trust between the data directory's embedded store and PostgreSQL (into
/// PostgreSQL, or out of it), then checks the copy: the same signed checkpoint over the same
/// tree, the log replayed against the copied state without a difference, and as many
/// principals and sealed telemetry rows on both sides. Members' telemetry is copied sealed,
/// never decrypted: both sides use the data directory's data key.
fn migrate(
    data_dir: &Path,
    database: &str,
    schema: &str,
    into_postgres: bool,
    json_output: bool,
) -> anyhow::Result<()> {
    let opened = open_existing(data_dir)?;
    let signer = opened.log_signer.clone();
    let postgres = datatrust_server::postgres_storage(
        &opened.store,
        database,
        schema,
        &datatrust_server::published_file(data_dir, schema),
    )
    .context("opening the trust's schema in PostgreSQL")?;
    let postgres = Side {
        store: postgres.store,
        log: postgres.log,
        name: format!("PostgreSQL schema {schema}"),
    };
    let embedded = Side {
        log: Arc::new(opened.store.log_store()?),
        store: Arc::new(opened.store),
        name: format!("the embedded store in {}", data_dir.display()),
    };
    let (from, to) = if into_postgres {
        (embedded, postgres)
    } else {
        (postgres, embedded)
    };
    let verifier = signer.verifier();
    if let Some(note) = to.log.checkpoint()? {
        match datatrust_tlog::SignedCheckpoint::open(&note, &verifier) {
            Ok(signed) if signed.checkpoint.size == 0 => {}
            Ok(signed) => bail!(
                "{} already holds a log of {} entries: a trust moves only into an empty store",
                to.name,
                signed.checkpoint.size
            ),
            Err(error) => bail!("{} holds a log of another trust ({error})", to.name),
        }
    }
    let note = from
        .log
        .checkpoint()?
        .context("the trust to move has no log")?;
    let size = datatrust_tlog::SignedCheckpoint::open(&note, &verifier)
        .context("the log's checkpoint does not verify with keys/log.key")?
        .checkpoint
        .size;
    eprintln!("copying a log of {size} entries into {}", to.name);
    let commit = |tiles, bundles, leaf_indices, state| {
        to.log
            .commit(datatrust_tlog::LogBatch {
                tiles,
                bundles,
                leaf_indices,
                checkpoint: note.clone(),
                size,
                state,
            })
            .with_context(|| format!("writing {}", to.name))
    };

    // The tiles, level by level (right-edge tiles as stored, partial).
    let width = datatrust_tlog::tile::TILE_WIDTH;
    let mut tiles = Vec::new();
    let mut level = 0u8;
    loop {
        let hashes = datatrust_tlog::reader::hashes_at_level(size, level);
        if hashes == 0 {
            break;
        }
        for index in 0..hashes.div_ceil(width) {
            let tile = from
                .log
                .tile(level, index)?
                .with_context(|| format!("tile {level}/{index} is missing from the source"))?;
            tiles.push(((level, index), tile));
            if tiles.len() == COPY_BATCH {
                commit(
                    std::mem::take(&mut tiles),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                )?;
            }
        }
        level += 1;
    }
    // The entry bundles, with the leaf index rebuilt from their entries. The first commit
    // carries the remaining tiles, and the checkpoint even for an empty log.
    let bundle_count = size.div_ceil(width);
    let mut first = 0;
    loop {
        let (mut bundles, mut leaves) = (Vec::new(), Vec::new());
        for index in first..(first + BUNDLES_PER_COMMIT).min(bundle_count) {
            let bundle = from
                .log
                .bundle(index)?
                .with_context(|| format!("entry bundle {index} is missing from the source"))?;
            let entries = datatrust_tlog::tile::bundle_entries(&bundle)
                .with_context(|| format!("entry bundle {index} is malformed"))?;
            for (position, entry) in entries.iter().enumerate() {
                let leaf = index * width + position as u64;
                if leaf < size {
                    leaves.push((datatrust_tlog::leaf_hash(entry), leaf));
                }
            }
            bundles.push((index, bundle));
        }
        commit(std::mem::take(&mut tiles), bundles, leaves, Vec::new())?;
        first += BUNDLES_PER_COMMIT;
        if first >= bundle_count {
            break;
        }
    }

    // The state, each value written as the target encodes it (principals and ballots
    // sealed where it seals them).
    let mut pending: Vec<datatrust_tlog::StateWrite> = Vec::new();
    let mut values = 0u64;
    let mut write = |value: datatrust_core::commit::Write| -> anyhow::Result<()> {
        for table_write in to.store.encode(&value, 0)? {
            pending.push(datatrust_tlog::StateWrite {
                table: table_write.table,
                key: table_write.key,
                value: table_write.value,
            });
        }
        values += 1;
        if pending.len() >= COPY_BATCH {
            commit(
                Vec::new(),
                Vec::new(),
                Vec::new(),
                std::mem::take(&mut pending),
            )?;
        }
        Ok(())
    };
    let mut principals = 0u64;
    let mut after: Option<datatrust_core::PublicKey> = None;
    loop {
        let page = from
            .store
            .list_principals(None, after.as_ref(), COPY_BATCH)?;
        let Some(last) = page.last() else { break };
        after = Some(last.public_key);
        for principal in page {
            if principal.role == datatrust_core::Role::Member {
                for authorization in from.store.collectors_of_member(&principal.public_key)? {
                    write(datatrust_core::commit::Write::CollectorAuthorized(
                        authorization,
                    ))?;
                }
            }
            write(datatrust_core::commit::Write::Principal(principal))?;
            principals += 1;
        }
    }
    let mut invitations_after: Option<[u8; 32]> = None;
    loop {
        let page = from
            .store
            .list_invitations(invitations_after.as_ref(), COPY_BATCH)?;
        let Some(last) = page.last() else { break };
        invitations_after = Some(last.code_hash);
        for invitation in page {
            write(datatrust_core::commit::Write::Invitation(invitation))?;
        }
    }
    let mut records = std::collections::BTreeMap::new();
    for kind in datatrust_core::store::RecordKind::ALL {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = from
                .store
                .scan_records_page(kind, b"", after.as_deref(), COPY_BATCH)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, value) in page {
                write(datatrust_core::commit::Write::Record {
                    kind,
                    key,
                    value: Some(value),
                })?;
                *records.entry(kind.name()).or_insert(0u64) += 1;
            }
        }
    }
    if !pending.is_empty() {
        commit(Vec::new(), Vec::new(), Vec::new(), pending)?;
    }

    // Members' telemetry, sealed as it is.
    let mut sealed = std::collections::BTreeMap::new();
    for table in datatrust_core::store::SealedTable::ALL {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = from
                .store
                .sealed_rows(table, after.as_deref(), COPY_BATCH)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            to.store.put_sealed_rows(table, &page)?;
            *sealed.entry(table.name()).or_insert(0u64) += page.len() as u64;
        }
    }
    to.store.flush()?;

    // The copy, checked.
    if to.log.checkpoint()?.as_deref() != Some(note.as_str()) {
        bail!("the copy's checkpoint differs from the source's");
    }
    let report = replay(to.store.as_ref(), Arc::clone(&to.log), signer)?;
    if !report.differences.is_empty() {
        bail!(
            "the copy's log and state differ ({}): {}",
            report.differences.len(),
            report.differences.join("; ")
        );
    }
    for table in datatrust_core::store::SealedTable::ALL {
        let (mut copied, mut after): (u64, Option<Vec<u8>>) = (0, None);
        loop {
            let page = to.store.sealed_rows(table, after.as_deref(), COPY_BATCH)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            copied += page.len() as u64;
        }
        let source = sealed.get(table.name()).copied().unwrap_or(0);
        if source != copied {
            bail!(
                "{}: {source} in the source, {copied} in the copy",
                table.name()
            );
        }
    }
    let (mut copied_principals, mut after) = (0u64, None);
    loop {
        let page = to.store.list_principals(None, after.as_ref(), COPY_BATCH)?;
        let Some(last) = page.last() else { break };
        after = Some(last.public_key);
        copied_principals += page.len() as u64;
    }
    if copied_principals != principals {
        bail!("principals: {principals} in the source, {copied_principals} in the copy");
    }
    let rows: u64 = sealed.values().sum();
    let value = json!({
        "into": to.name, "entries": size, "checkpoint": note, "principals": principals,
        "state_values": values, "records": records, "sealed_rows": sealed,
        "replayed_entries": report.entries,
    });
    output::show(json_output, value, || {
        println!(
            "moved the trust into {}: {size} log entries under the same checkpoint, {principals} principals, {values} state values, {rows} sealed telemetry rows",
            to.name
        );
        println!("checked: the copy's log replays against its state without a difference");
        println!(
            "serve it from there from now on; keep the old store until the trust has run on the new one"
        );
    });
    Ok(())
}

/// Asks the running trust for a backup (`TrustService/Backup`).
pub async fn backup(
    key: &Path,
    server: &str,
    ca_cert: Option<&Path>,
    json_output: bool,
) -> anyhow::Result<()> {
    let signer = crate::key_file::read(key)?;
    let channel = crate::client::connect(server, ca_cert).await?;
    let session = crate::client::sign_in(&channel, &signer).await?;
    let response = session
        .trust()
        .backup(datatrust_proto::v1::BackupRequest {})
        .await?
        .into_inner();
    output::show(
        json_output,
        json!({
            "data_path": response.data_path, "keys_path": response.keys_path,
            "log_size": response.log_size, "checkpoint": response.checkpoint,
        }),
        || {
            println!(
                "Backed up the trust at log size {} (on the server's machine):",
                response.log_size
            );
            println!("  data: {}", response.data_path);
            println!("  keys: {}", response.keys_path);
            println!(
                "Move the keys somewhere else than the data (another medium, another place): \
                 whoever holds both reads every member's data and can sign as the trust."
            );
        },
    );
    Ok(())
}

/// Rebuilds a trust from a backup, then checks it (see `AdminCommand::Restore`).
fn restore(
    from: &Path,
    keys: Option<&Path>,
    data_dir: &Path,
    seen: &[std::path::PathBuf],
    erasures: Option<&Path>,
    json_output: bool,
) -> anyhow::Result<()> {
    let keys = keys.map_or_else(
        || {
            let mut name = from.as_os_str().to_owned();
            name.push("-keys");
            std::path::PathBuf::from(name)
        },
        Path::to_path_buf,
    );
    datatrust_store::restore_data_directory(from, &keys, data_dir)
        .with_context(|| format!("restoring {} into {}", from.display(), data_dir.display()))?;
    let opened = datatrust_server::open_trust(
        data_dir,
        None,
        &datatrust_core::Origin::parse(crate::config::DEFAULT_ORIGIN)?,
        std::time::Duration::from_secs(900),
        SequencerOptions::default(),
        None,
    )
    .with_context(|| format!("opening the restored trust in {}", data_dir.display()))?;
    let state = opened.state;
    let reader = std::sync::Arc::clone(state.log_reader());
    let latest = reader.refresh()?;
    let size = latest.checkpoint.size;
    // The whole log recomputed from its entries against the signed checkpoint.
    let mut root = datatrust_core::merkle::hash::CompactRoot::new();
    let mut prefix_roots = std::collections::BTreeMap::new();
    let mut seen_checkpoints = Vec::new();
    for path in seen {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--seen-checkpoint {}", path.display()))?;
        let body = text.split("\n\n").next().unwrap_or_default();
        let checkpoint = datatrust_tlog::Checkpoint::parse(&format!("{body}\n"))
            .with_context(|| format!("--seen-checkpoint {}", path.display()))?;
        prefix_roots.insert(checkpoint.size, None);
        seen_checkpoints.push((path.clone(), text, checkpoint));
    }
    let mut index = 0;
    if prefix_roots.contains_key(&0) {
        prefix_roots.insert(0, Some(root.root()));
    }
    while index < size {
        let end = (index + PAGE).min(size);
        for entry in reader.entries(index, end)? {
            root.push(datatrust_tlog::leaf_hash(&entry));
            index += 1;
            if let Some(slot) = prefix_roots.get_mut(&index) {
                *slot = Some(root.root());
            }
        }
    }
    if root.root() != latest.checkpoint.root {
        bail!(
            "the restored log's entries do not hash to its signed checkpoint (size {size}): the backup is damaged"
        );
    }
    for (path, text, checkpoint) in &seen_checkpoints {
        let matches = prefix_roots
            .get(&checkpoint.size)
            .copied()
            .flatten()
            .is_some_and(|root| root == checkpoint.root);
        if !matches {
            // Left unservable: the checkpoint seen becomes the one the trust must not go
            // behind, so `serve` refuses this directory too.
            drop(state);
            let published =
                datatrust_store::PublishedCheckpointFile::open(&data_dir.join("log-checkpoint"))
                    .map_err(|error| anyhow::anyhow!("{error}"))?;
            published
                .record(checkpoint.size, text)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            bail!(
                "the backup's log (size {size}) is {} the checkpoint in {} (size {}): serving it \
                 would roll the log back or fork it. Restore a later backup; {} is left unservable",
                if checkpoint.size > size {
                    "older than"
                } else {
                    "not a prefix of"
                },
                path.display(),
                checkpoint.size,
                data_dir.display()
            );
        }
    }
    // Erasures after the backup point, done again.
    let journal = erasures.map_or_else(
        || from.with_file_name(datatrust_server::ERASURE_JOURNAL),
        Path::to_path_buf,
    );
    let mut replayed = 0u64;
    // Read a line at a time: the journal grows with every erasure.
    if let Ok(file) = std::fs::File::open(&journal) {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.with_context(|| format!("reading {}", journal.display()))?;
            let mut fields = line.split_whitespace();
            let (Some(hash), Some(logged_at)) = (fields.next(), fields.next()) else {
                continue;
            };
            let logged_at: u64 = logged_at.parse().unwrap_or(0);
            if logged_at < size {
                continue; // in the backup already
            }
            if state
                .erase_member_by_key_hash(hash, datatrust_server::now())
                .with_context(|| {
                    format!("erasing again the member of {journal:?}, line {line:?}")
                })?
            {
                replayed += 1;
            }
        }
    }
    state.close_log();
    state.flush()?;
    drop(state);
    drop(opened.directory);
    output::show(
        json_output,
        json!({ "data_dir": data_dir.display().to_string(), "log_size": size, "erasures_replayed": replayed, "log_verified": true }),
        || {
            println!(
                "Restored {} at log size {size}: the log recomputed in full and matches its signed checkpoint; {} checkpoint(s) seen are prefixes of it; {replayed} erasure(s) after the backup done again.",
                data_dir.display(),
                seen_checkpoints.len()
            );
        },
    );
    Ok(())
}
