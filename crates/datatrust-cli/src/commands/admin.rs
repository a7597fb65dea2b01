//! `datatrust admin`: an operator's work on a stopped trust's data directory.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use datatrust_store::DataDirectory;
use datatrust_tlog::{LogStore, Sequencer, SequencerOptions};
use serde_json::json;

use crate::AdminCommand;
use crate::output;

/// Entries read from the log at a time.
const PAGE: u64 = datatrust_tlog::reader::MAXIMUM_ENTRIES_PER_READ;

pub fn run(command: AdminCommand, json_output: bool) -> anyhow::Result<()> {
    match command {
        AdminCommand::Init { data_dir, origin } => init(&data_dir, origin.as_deref(), json_output),
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
    }
}

/// Creates the data directory, or leaves the trust already in it as it is.
fn init(data_dir: &Path, origin: Option<&str>, json_output: bool) -> anyhow::Result<()> {
    let requested = origin
        .map(datatrust_core::Origin::parse)
        .transpose()
        .context("--origin")?;
    let opened = DataDirectory::open_or_create(
        data_dir,
        requested.as_ref(),
        &datatrust_core::Origin::parse(crate::config::DEFAULT_ORIGIN)?,
        datatrust_server::now(),
    )
    .with_context(|| format!("creating the trust in {}", data_dir.display()))?;
    let origin = opened.metadata.origin.to_string();
    let created = opened.created_trustee_key.clone();
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
    if !data_dir.join("DATATRUST").exists() {
        bail!(
            "--data-dir: {} holds no trust (no DATATRUST marker file)",
            data_dir.display()
        );
    }
    // The directory's lock refuses this while a server runs on it.
    let opened = DataDirectory::open_or_create(
        data_dir,
        None,
        &datatrust_core::Origin::parse(crate::config::DEFAULT_ORIGIN)?,
        datatrust_server::now(),
    )
    .with_context(|| format!("opening the trust in {}", data_dir.display()))?;
    let (store, log_store): (Arc<dyn datatrust_core::store::Store>, Arc<dyn LogStore>) =
        match database {
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
    let sequencer = Sequencer::open(log_store, opened.log_signer, SequencerOptions::default())
        .context("opening the log")?;
    let reader = Arc::clone(sequencer.reader());
    let size = reader.size();
    // The log a page at a time: memory does not grow with it.
    let entries = (0..size.div_ceil(PAGE)).flat_map(|page| {
        let (start, end) = (page * PAGE, ((page + 1) * PAGE).min(size));
        match reader.entries(start, end) {
            Ok(entries) => entries.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(error) => vec![Err(format!("reading log entries {start}..{end}: {error}"))],
        }
    });
    let report = datatrust_core::replay::check(store.as_ref(), entries)?;
    sequencer.shutdown();
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
