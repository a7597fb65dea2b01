//! Members' data (summary, export, erasure, audit) and releases, from the command line.
//! `member audit --verify` and `company fetch-release` check everything against the log's
//! verifier key: the server is not trusted.

use crate::output;
use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use datatrust_core::log_entry::DecodedEntry;
use datatrust_core::merkle::hash::{Hash, leaf_hash, root_of};
use datatrust_core::merkle::proof::{hash_from_slice, verify_inclusion};
use datatrust_core::release::{contribution_leaf, release_commitment};
use datatrust_core::{NoteVerifier, PublicKey};
use datatrust_proto::v1;
use datatrust_tlog::receipt::Receipt;
use serde_json::json;

use crate::{client, human};

use super::common::key_text;
use crate::client::SignedIn;
use crate::{CompanyDataCommand, GlobalArgs, MemberDataCommand};

pub async fn member(
    global: &GlobalArgs,
    session: &SignedIn,
    command: MemberDataCommand,
) -> anyhow::Result<()> {
    match command {
        MemberDataCommand::Data => {
            let counts = session
                .member_data()
                .get_my_data_summary(v1::GetMyDataSummaryRequest {})
                .await?
                .into_inner()
                .counts;
            for count in &counts {
                output::show(
                    global.json,
                    json!({ "day": count.day, "category": count.category, "count": count.count, "kept_until": count.kept_until }),
                    || {
                        println!(
                            "{}  {:<12} {:>8}  kept until {}",
                            human::date(count.day.saturating_mul(86_400)),
                            count.category,
                            count.count,
                            human::date(count.kept_until)
                        );
                    },
                );
            }
            if counts.is_empty() && !global.json {
                println!("The trust holds no telemetry of yours.");
            }
        }
        MemberDataCommand::Export { out } => {
            let mut stream = session
                .member_data()
                .export_my_data(v1::ExportMyDataRequest {})
                .await?
                .into_inner();
            // Written as it arrives, so the CLI's memory does not grow with the export; a
            // failure part-way leaves `<out>.partial`, never a short file under `out`.
            let partial = {
                let mut name = out.clone().into_os_string();
                name.push(".partial");
                std::path::PathBuf::from(name)
            };
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("writing {}", partial.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            const IMAGE_LINE: &[u8] = b"{\"image\":";
            let (mut lines, mut images) = (0u64, 0u64);
            // The first bytes of the current line: image lines start `{"image":`, event
            // lines never do. Lines may span pieces.
            let mut line_head: Vec<u8> = Vec::with_capacity(IMAGE_LINE.len());
            while let Some(piece) = stream.message().await? {
                for byte in &piece.json_lines {
                    if *byte == b'\n' {
                        lines += 1;
                        if line_head == IMAGE_LINE {
                            images += 1;
                        }
                        line_head.clear();
                    } else if line_head.len() < IMAGE_LINE.len() {
                        line_head.push(*byte);
                    }
                }
                std::io::Write::write_all(&mut writer, &piece.json_lines)
                    .with_context(|| format!("writing {}", partial.display()))?;
            }
            let file = writer
                .into_inner()
                .map_err(|error| anyhow!("writing {}: {}", partial.display(), error.error()))?;
            file.sync_all()
                .with_context(|| format!("writing {}", partial.display()))?;
            std::fs::rename(&partial, &out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{} events and {images} screenshot images written to {} (JSON Lines)",
                lines - images,
                out.display()
            );
        }
        MemberDataCommand::Erase { confirm } => {
            let response = session
                .member_data()
                .erase_my_data(v1::EraseMyDataRequest { confirm })
                .await?
                .into_inner();
            let at = response
                .log_index
                .map(|index| format!(" (logged at index {index})"))
                .unwrap_or_default();
            output::show(
                global.json,
                serde_json::json!({
                    "events_erased": response.events_erased,
                    "chunks_erased": response.chunks_erased,
                    "consents_withdrawn": response.consents_withdrawn,
                    "collectors_withdrawn": response.collectors_withdrawn.iter().map(|key| key_text(key)).collect::<Vec<_>>(),
                    "log_index": response.log_index,
                }),
                || {
                    println!(
                        "Your data is erased{at}: {} events deleted, and the key that encrypted them destroyed, so no copy anywhere can be read.",
                        response.events_erased
                    );
                    if response.consents_withdrawn.is_empty() {
                        println!("You had given no consent; none was withdrawn.");
                    } else {
                        println!(
                            "Consent withdrawn (each logged): {}.",
                            response.consents_withdrawn.join(", ")
                        );
                    }
                    if response.collectors_withdrawn.is_empty() {
                        println!("No collector was authorised to upload for you.");
                    } else {
                        println!("Collectors no longer authorised (each logged):");
                        for collector in &response.collectors_withdrawn {
                            println!("  {}", key_text(collector));
                        }
                    }
                },
            );
        }
        MemberDataCommand::Audit { verify, vkey } => {
            let audit = session.whole_audit().await?;
            let verifier = match (verify, vkey) {
                (true, Some(vkey)) => Some(
                    NoteVerifier::parse(&vkey)
                        .map_err(|error| anyhow!("--vkey: {}", error.reason))?,
                ),
                (true, None) => bail!(
                    "--verify needs --vkey (the log's verifier key from `datatrust trust info`)"
                ),
                (false, _) => None,
            };
            let salt: [u8; 32] = audit
                .commitment_salt
                .as_slice()
                .try_into()
                .map_err(|_| anyhow!("the server sent a bad salt"))?;
            // Her identity: her first key, whatever key she signs in with now.
            let me = PublicKey::from_slice(&session.principal.public_key, "public_key")
                .map_err(|error| anyhow!("the server sent a bad key: {}", error.reason))?;
            let names = client::licensee_names(session.channel()).await;
            for change in &audit.key_changes {
                if let Some(verifier) = &verifier {
                    verify_key_change(verifier, &me, &salt, change).with_context(|| {
                        format!("the key change logged at {}", change.log_index)
                    })?;
                }
                let approvers: Vec<String> =
                    change.approved_by.iter().map(|key| key_text(key)).collect();
                output::show(
                    global.json,
                    json!({
                        "key_change": change.kind, "at": change.at, "log_index": change.log_index,
                        "approved_by": approvers, "verified": verifier.is_some(),
                    }),
                    || {
                        if change.kind == "recovered" {
                            println!(
                                "your key was replaced by trustees on {} (recovery approved by {}; logged at {}){}: if you did not ask for this, tell your union at once",
                                human::date(change.at),
                                approvers.join(", "),
                                change.log_index,
                                if verifier.is_some() {
                                    "  [verified]"
                                } else {
                                    ""
                                }
                            );
                        } else {
                            println!(
                                "you replaced your key on {} (logged at {}){}",
                                human::date(change.at),
                                change.log_index,
                                if verifier.is_some() {
                                    "  [verified]"
                                } else {
                                    ""
                                }
                            );
                        }
                    },
                );
            }
            for entry in &audit.entries {
                let licensee = names
                    .get(&entry.license_id)
                    .cloned()
                    .unwrap_or_else(|| key_text(&entry.licensee));
                if let Some(verifier) = &verifier {
                    verify_audit_entry(verifier, &me, &salt, entry)
                        .with_context(|| format!("release {}", entry.release_id))?;
                }
                output::show(
                    global.json,
                    json!({
                        "release": entry.release_id, "license": entry.license_id,
                        "licensee": base64::engine::general_purpose::STANDARD.encode(&entry.licensee),
                        "licensee_name": names.get(&entry.license_id),
                        "purpose": entry.purpose, "model_family": entry.model_family, "my_records": entry.my_records,
                        "released_at": entry.released_at, "verified": verifier.is_some(),
                        "uses": entry.uses.iter().map(|used| json!({ "run": used.run_id, "model": used.model, "version": used.model_version })).collect::<Vec<_>>(),
                    }),
                    || {
                        println!(
                            "release {} on {}: {} of your records to {} for {} ({} models){}",
                            entry.release_id,
                            human::date(entry.released_at),
                            entry.my_records,
                            licensee,
                            entry.purpose,
                            entry.model_family,
                            if verifier.is_some() {
                                "  [verified]"
                            } else {
                                ""
                            }
                        );
                        for used in &entry.uses {
                            println!(
                                "  used to train {} {} (run {})",
                                used.model, used.model_version, used.run_id
                            );
                        }
                    },
                );
            }
            if audit.entries.is_empty() && !global.json {
                println!("No release has included your data.");
            }
        }
    }
    Ok(())
}

/// Checks that a key change the trust reported is logged, about this member.
fn verify_key_change(
    verifier: &NoteVerifier,
    me: &PublicKey,
    salt: &[u8; 32],
    change: &v1::KeyChange,
) -> anyhow::Result<()> {
    let logged = Receipt::parse(&change.receipt)?
        .verify(verifier, None)
        .context("the key change's receipt")?;
    let entry = DecodedEntry::parse(&logged.entry)
        .ok_or_else(|| anyhow!("the key change's entry is not a datatrust entry"))?;
    use base64::Engine as _;
    let mine = base64::engine::general_purpose::STANDARD
        .encode(datatrust_core::log_entry::commitment(salt, me));
    if entry.kind != format!("key-{}", change.kind) || entry.field("subject") != Some(mine.as_str())
    {
        bail!("the logged key change does not match what the trust reported");
    }
    Ok(())
}

/// Checks one audit entry with nothing but the log's key and the member's own key and salt.
fn verify_audit_entry(
    verifier: &NoteVerifier,
    me: &PublicKey,
    salt: &[u8; 32],
    entry: &v1::AuditEntry,
) -> anyhow::Result<()> {
    let commitment = hex::encode(release_commitment(salt, me, &entry.release_id));
    if commitment != entry.commitment {
        bail!("the contribution is not committed to your key");
    }
    let leaf = leaf_hash(&contribution_leaf(
        &commitment,
        entry.my_records,
        &entry.records_root,
    ));
    let proof: Vec<Hash> = entry
        .proof
        .iter()
        .map(|hash| hash_from_slice(hash))
        .collect::<Result<_, _>>()?;
    let root = hash_from_slice(&hex::decode(&entry.release_root)?)?;
    verify_inclusion(entry.part_index, entry.parts, &leaf, &proof, &root)
        .context("your contribution is not in the release root")?;
    let release = Receipt::parse(&entry.release_receipt)?
        .verify(verifier, None)
        .context("the release's receipt")?;
    let logged = DecodedEntry::parse(&release.entry)
        .ok_or_else(|| anyhow!("the release entry is not a datatrust entry"))?;
    if logged.kind != "release-published"
        || logged.field("release") != Some(entry.release_id.as_str())
        || logged.field("root") != Some(entry.release_root.as_str())
        || logged.field("license") != Some(entry.license_id.as_str())
    {
        bail!("the logged release does not match what the trust reported");
    }
    for used in &entry.uses {
        let receipt = Receipt::parse(&used.receipt)?
            .verify(verifier, None)
            .with_context(|| format!("run {}", used.run_id))?;
        let logged = DecodedEntry::parse(&receipt.entry)
            .ok_or_else(|| anyhow!("a use entry is not a datatrust entry"))?;
        let names_release = logged
            .field("data")
            .is_some_and(|data| data.split(',').any(|id| id == entry.release_id));
        if logged.kind != "training-use"
            || logged.field("license") != Some(entry.license_id.as_str())
            || !names_release
        {
            bail!("the logged use of run {} does not match", used.run_id);
        }
    }
    Ok(())
}

pub async fn company(
    global: &GlobalArgs,
    session: &SignedIn,
    command: CompanyDataCommand,
) -> anyhow::Result<()> {
    match command {
        CompanyDataCommand::Release { license } => {
            // Built in the background, so no request has to outlast a large build.
            let progress =
                crate::progress::bar("building the release (members)", None, global.json);
            let release = session
                .build_release(
                    &license,
                    std::time::Duration::from_millis(250),
                    |building| {
                        progress.set_length(building.members_total);
                        progress.set_position(building.members_done);
                    },
                )
                .await?;
            progress.finish_and_clear();
            output::show(
                global.json,
                json!({ "id": release.id, "records": release.records, "parts": release.parts.len(), "root": release.root, "log_index": release.log_index }),
                || {
                    println!(
                        "release {}: {} records from {} members, root {}, logged at {}",
                        release.id,
                        release.records,
                        release.parts.len(),
                        release.root,
                        release.log_index
                    );
                },
            );
        }
        CompanyDataCommand::FetchRelease { release, out, vkey } => {
            let verifier =
                NoteVerifier::parse(&vkey).map_err(|error| anyhow!("--vkey: {}", error.reason))?;
            let meta = session
                .releases()
                .get_release(v1::GetReleaseRequest {
                    release_id: release.clone(),
                })
                .await?
                .into_inner()
                .release
                .unwrap_or_default();
            let progress = crate::progress::bar(
                "fetching the release (records)",
                Some(meta.records),
                global.json,
            );
            let fetched = fetch_and_verify_showing(session, &verifier, &meta, &progress).await?;
            progress.finish_and_clear();
            let mut bytes = Vec::new();
            for record in &fetched.records {
                bytes.extend_from_slice(record);
                bytes.push(b'\n');
            }
            std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            if fetched.erased_parts.is_empty() {
                println!(
                    "{} records written to {}; every part matches the logged root {}",
                    fetched.records.len(),
                    out.display(),
                    meta.root
                );
            } else {
                let erased_records: u64 = fetched
                    .erased_parts
                    .iter()
                    .filter_map(|index| meta.parts.get(*index as usize))
                    .map(|part| part.count)
                    .sum();
                println!(
                    "{} records written to {}; {} part(s) ({erased_records} records) were erased by their members since the release and are no longer served; every other part matches the logged root {}",
                    fetched.records.len(),
                    out.display(),
                    fetched.erased_parts.len(),
                    meta.root
                );
            }
        }
    }
    Ok(())
}

/// A release as fetched: its records, and the parts erased by their members since.
#[derive(Debug)]
pub struct FetchedRelease {
    pub records: Vec<Vec<u8>>,
    pub erased_parts: Vec<u64>,
}

/// Streams a release and checks it: each part's records hash to the part's root (but for
/// parts the trust says their members erased since), the parts' leaves to the release
/// root, and the release root is the one in the logged entry.
pub async fn fetch_and_verify(
    session: &SignedIn,
    verifier: &NoteVerifier,
    meta: &v1::Release,
) -> anyhow::Result<FetchedRelease> {
    fetch_and_verify_showing(session, verifier, meta, &indicatif::ProgressBar::hidden()).await
}

/// `fetch_and_verify`, advancing `progress` by the records received.
async fn fetch_and_verify_showing(
    session: &SignedIn,
    verifier: &NoteVerifier,
    meta: &v1::Release,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<FetchedRelease> {
    let receipt = Receipt::parse(&meta.receipt)?
        .verify(verifier, None)
        .context("the release's receipt")?;
    let logged = DecodedEntry::parse(&receipt.entry)
        .ok_or_else(|| anyhow!("the release entry is not a datatrust entry"))?;
    if logged.kind != "release-published"
        || logged.field("root") != Some(meta.root.as_str())
        || logged.field("release") != Some(meta.id.as_str())
    {
        bail!("the release's metadata does not match its log entry");
    }
    let mut stream = session
        .releases()
        .stream_release(v1::StreamReleaseRequest {
            release_id: meta.id.clone(),
            from: 0,
        })
        .await?
        .into_inner();
    let mut by_part: Vec<Vec<Vec<u8>>> = vec![Vec::new(); meta.parts.len()];
    let mut erased = vec![false; meta.parts.len()];
    while let Some(batch) = stream.message().await? {
        progress.inc(batch.records.len() as u64);
        for record in batch.records {
            let part = by_part
                .get_mut(record.part as usize)
                .ok_or_else(|| anyhow!("a record names a part that does not exist"))?;
            part.push(record.record);
        }
        for index in batch.erased_parts {
            *erased
                .get_mut(index as usize)
                .ok_or_else(|| anyhow!("an erased part that does not exist"))? = true;
        }
    }
    let mut leaves = Vec::new();
    let mut records = Vec::new();
    let mut erased_parts = Vec::new();
    for (index, (part, received)) in meta.parts.iter().zip(by_part).enumerate() {
        // The part's leaf still counts toward the root: it comes from the logged metadata.
        leaves.push(leaf_hash(&contribution_leaf(
            &part.commitment,
            part.count,
            &part.records_root,
        )));
        if erased[index] {
            erased_parts.push(index as u64);
            continue;
        }
        let leaf_hashes: Vec<Hash> = received.iter().map(|record| leaf_hash(record)).collect();
        if received.len() as u64 != part.count
            || hex::encode(root_of(&leaf_hashes)) != part.records_root
        {
            bail!("part {index}: the records received do not match the committed root");
        }
        records.extend(received);
    }
    if hex::encode(root_of(&leaves)) != meta.root {
        bail!("the parts do not hash to the release root");
    }
    Ok(FetchedRelease {
        records,
        erased_parts,
    })
}

/// Uploads a JSON Lines file of events for a member, in numbered batches, and reports what
/// the trust stored.
pub async fn collector_upload(
    global: &GlobalArgs,
    session: &SignedIn,
    arguments: crate::UploadArgs,
) -> anyhow::Result<()> {
    let crate::UploadArgs {
        member,
        device,
        file,
        batch,
        first_sequence,
        shift_to_now,
    } = arguments;
    if !(1..=10_000).contains(&batch) {
        bail!("--batch: must be 1 to 10000");
    }
    let member = PublicKey::from_base64(&member, "--member")
        .map_err(|error| anyhow!("--member: {}", error.reason))?;
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut events = Vec::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
    {
        let event: datatrust_core::events::Event =
            serde_json::from_str(line).with_context(|| {
                format!(
                    "{}:{}: not an event in the export format",
                    file.display(),
                    number + 1
                )
            })?;
        events.push(event);
    }
    if shift_to_now && let Some(last) = events.iter().map(|event| event.time_ms).max() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_millis();
        let shift = i64::try_from(now_ms).context("the system clock")? - last;
        for event in &mut events {
            event.time_ms = event.time_ms.saturating_add(shift);
        }
    }
    let events: Vec<_> = events
        .iter()
        .map(datatrust_proto::convert::telemetry::event_to_wire)
        .collect();
    let batches: Vec<v1::UploadRequest> = events
        .chunks(batch)
        .enumerate()
        .map(|(index, chunk)| v1::UploadRequest {
            member_public_key: member.as_bytes().to_vec(),
            device_id: device.clone(),
            sequence: first_sequence + index as u64,
            events: chunk.to_vec(),
        })
        .collect();
    let expected = batches.len();
    let progress = crate::progress::bar("uploading (batches)", Some(expected as u64), global.json);
    let mut responses = session
        .ingest()
        .upload(tokio_stream::iter(batches))
        .await?
        .into_inner();
    let (mut stored, mut duplicates, mut redacted, mut answered) = (0u64, 0u64, 0u64, 0usize);
    while let Some(answer) = responses.message().await? {
        progress.inc(1);
        answered += 1;
        stored += u64::from(answer.stored_events);
        redacted += u64::from(answer.redacted_events);
        if answer.outcome == "duplicate" {
            duplicates += 1;
        }
    }
    progress.finish_and_clear();
    if answered != expected {
        bail!(
            "the trust answered {answered} of {expected} batches; re-run with the same --first-sequence to retry safely"
        );
    }
    output::show(
        global.json,
        json!({ "batches": answered, "stored_events": stored, "duplicate_batches": duplicates, "redacted_events": redacted }),
        || {
            println!(
                "{answered} batch(es): {stored} events stored, {redacted} removed by the terms' redactions, {duplicates} batch(es) already stored"
            );
        },
    );
    Ok(())
}
