//! Retention, with the trust's clock moved (never slept for): telemetry past the terms'
//! `retention_days` is left out of releases built after it expired, and deleted by the sweep
//! (events, a batch in part, day counts, the screenshots only deleted events referred to, an
//! image no event refers to once it is older than the retention), counted in `/metrics`;
//! release parts go 30 days after their license ended; a member's summary says how long
//! each day is kept; and nothing of what was deleted is left in the data directory's files.

use datatrust_core::governance::approval_message;
use datatrust_core::{NoteSigner, Role};
use datatrust_proto::v1;
use datatrust_tests::{RatifiedTrust, authorize, consent, http_get, new_signer};
use sha2::Digest as _;

const DAY: i64 = 86_400;
const RETENTION_DAYS: i64 = 40;

/// A focus change in `application` (the terms drop window titles at ingest; application
/// names are kept, so they mark the events here).
fn focus(time_ms: i64, application: &str) -> v1::Event {
    v1::Event {
        time_ms,
        application: application.into(),
        kind: Some(v1::event::Kind::Focus(v1::FocusChange {
            window_title: "a window".into(),
        })),
    }
}

fn pointer(time_ms: i64) -> v1::Event {
    v1::Event {
        time_ms,
        application: "editor".into(),
        kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 1, y: 2 })),
    }
}

fn screenshot(time_ms: i64, image: &[u8]) -> v1::Event {
    v1::Event {
        time_ms,
        application: "editor".into(),
        kind: Some(v1::event::Kind::Screenshot(v1::ScreenshotRef {
            sha256: hex::encode(sha2::Sha256::digest(image)),
            size_bytes: image.len() as u32,
        })),
    }
}

async fn upload(
    collector: &datatrust_cli::client::SignedIn,
    member: &NoteSigner,
    sequence: u64,
    events: Vec<v1::Event>,
) {
    let mut answers = collector
        .ingest()
        .upload(tokio_stream::iter(vec![v1::UploadRequest {
            member_public_key: member.public_key().as_bytes().to_vec(),
            device_id: "laptop".into(),
            sequence,
            events,
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answers.message().await.unwrap().unwrap().outcome, "stored");
}

/// A trust whose ratified terms keep data `RETENTION_DAYS`, with Ada and Bea as members.
async fn start_with_retention(ada: &NoteSigner, bea: &NoteSigner) -> RatifiedTrust {
    let terms = datatrust_tests::EXAMPLE_TERMS.replace(
        "retention_days = 730",
        &format!("retention_days = {RETENTION_DAYS}"),
    );
    RatifiedTrust::start_with_terms(&[(ada.clone(), "Ada"), (bea.clone(), "Bea")], &terms).await
}

async fn sweep(trustee: &datatrust_cli::client::SignedIn) -> v1::RetentionSweep {
    trustee
        .ledger()
        .enforce_duties(v1::EnforceDutiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .retention
        .expect("the sweep's counts")
}

async fn stream_count(session: &datatrust_cli::client::SignedIn, release: &str) -> Vec<String> {
    let mut stream = session
        .releases()
        .stream_release(v1::StreamReleaseRequest {
            release_id: release.into(),
            from: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut records = Vec::new();
    while let Some(batch) = stream.message().await.unwrap() {
        records.extend(
            batch
                .records
                .into_iter()
                .map(|record| String::from_utf8(record.record).unwrap()),
        );
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_past_its_retention_is_never_released_and_is_swept_away() {
    let (ada, bea) = (new_signer(), new_signer());
    let ratified = start_with_retention(&ada, &bea).await;
    let trust = &ratified.trust;
    let mut trustee = trust.trustee_session().await;
    let (laptop, collector) = trust.new_principal(Role::Collector, "Laptop").await;
    let (acme, company) = trust.new_principal(Role::Licensee, "Acme").await;
    let (mut ada_session, bea_session) = (
        trust.sign_in(&ada).await.unwrap(),
        trust.sign_in(&bea).await.unwrap(),
    );
    for session in [&ada_session, &bea_session] {
        authorize(session, &laptop).await;
        consent(session, "computer-use-agent-training").await;
    }

    // Day 0. Ada: one batch mixing events 38 days old with recent ones, one all 39 days
    // old; an image the old screenshot event refers to, and one no event refers to.
    let start = trust.clock.now().0;
    let ms = |seconds: i64| seconds * 1000;
    let (old_image, orphan_image) = (b"old screen".to_vec(), b"orphan screen".to_vec());
    for image in [&old_image, &orphan_image] {
        collector
            .ingest()
            .upload_screenshot(v1::UploadScreenshotRequest {
                member_public_key: ada.public_key().as_bytes().to_vec(),
                image: image.clone(),
            })
            .await
            .unwrap();
    }
    upload(
        &collector,
        &ada,
        1,
        vec![
            focus(ms(start - 38 * DAY), "ANCIENT-TITLE"),
            screenshot(ms(start - 38 * DAY) + 1, &old_image),
            pointer(ms(start - 38 * DAY) + 2),
            focus(ms(start - 3600), "RECENT-TITLE"),
            pointer(ms(start - 3600) + 1),
        ],
    )
    .await;
    upload(
        &collector,
        &ada,
        2,
        vec![
            pointer(ms(start - 39 * DAY)),
            focus(ms(start - 39 * DAY) + 1, "ANCIENT-TOO"),
        ],
    )
    .await;
    upload(&collector, &bea, 1, vec![pointer(ms(start - 60))]).await;

    // A license whose data window reaches back 39 days, valid 30 days.
    let request = company
        .licenses()
        .request_license(v1::RequestLicenseRequest {
            purpose: "computer-use-agent-training".into(),
            categories: vec!["pointer".into(), "focus".into(), "screenshots".into()],
            data_from: start - 39 * DAY,
            data_to: start + DAY,
            model_family: "acme-agent".into(),
            max_training_runs: 5,
            duration_days: 30,
        })
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    let origin = company.origin.to_string();
    let mut license = None;
    for (key, session) in [
        (&trust.trustee, &trustee),
        (&ratified.second_trustee.0, &ratified.second_trustee.1),
    ] {
        license = session
            .licenses()
            .approve_license_request(v1::ApproveLicenseRequestRequest {
                request_id: request.id.clone(),
                signature: key
                    .sign(&approval_message(
                        &origin,
                        &request.id,
                        &ratified.terms_hash,
                    ))
                    .to_vec(),
            })
            .await
            .unwrap()
            .into_inner()
            .license;
    }
    let license = license.expect("two approvals issue the license").id;

    // Day 5: the 38- and 39-day-old events are past retention. A release built now leaves
    // them out, even before any sweep.
    // Sessions end by the same clock: each step signs in again.
    trust.clock.advance(5 * DAY);
    let company = trust.sign_in(&acme).await.unwrap();
    trustee = trust.trustee_session().await;
    ada_session = trust.sign_in(&ada).await.unwrap();
    let built = trust
        .cli(
            &acme,
            &["company", "release", "--license", &license, "--get", "id"],
        )
        .await;
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let release = String::from_utf8(built.stdout).unwrap().trim().to_owned();
    let records = stream_count(&company, &release).await;
    assert_eq!(
        records.len(),
        3,
        "Ada's 2 recent events and Bea's 1: {records:?}"
    );
    assert!(
        records.iter().all(|record| !record.contains("ANCIENT")),
        "{records:?}"
    );

    // The sweep deletes them: 5 events, the all-old batch whole, the mixed one in part, the
    // old days' counts, and the image only a deleted event referred to.
    let swept = sweep(&trustee).await;
    assert_eq!(
        (
            swept.events,
            swept.chunks,
            swept.chunks_rewritten,
            swept.screenshots
        ),
        (5, 1, 1, 1),
        "{swept:?}"
    );
    assert_eq!(
        swept.day_counts, 5,
        "3 categories on day -38, 2 on day -39: {swept:?}"
    );
    assert_eq!(swept.release_parts, 0);
    let again = sweep(&trustee).await;
    assert_eq!(
        (again.events, again.screenshots, again.day_counts),
        (0, 0, 0),
        "a second sweep finds nothing: {again:?}"
    );
    let exported = datatrust_tests::export_text(&ada_session).await;
    assert!(exported.contains("RECENT-TITLE"), "{exported}");
    assert!(!exported.contains("ANCIENT"), "{exported}");
    use base64::Engine as _;
    let encode = |image: &[u8]| base64::engine::general_purpose::STANDARD.encode(image);
    assert!(!exported.contains(&encode(&old_image)), "{exported}");
    assert!(exported.contains(&encode(&orphan_image)), "{exported}");

    // The summary says how long each day is kept: retention_days after the day.
    let summary = ada_session
        .member_data()
        .get_my_data_summary(v1::GetMyDataSummaryRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.retention_days, RETENTION_DAYS as u32);
    let first_kept_day = trust.clock.now().0.div_euclid(DAY) - RETENTION_DAYS;
    assert!(!summary.counts.is_empty());
    for count in &summary.counts {
        assert!(count.day >= first_kept_day, "{count:?}");
        assert_eq!(count.kept_until, (count.day + RETENTION_DAYS + 1) * DAY);
    }

    // /metrics counts what was deleted.
    let (_, _, body) = http_get(trust.http_addr, "/metrics").await;
    let text = String::from_utf8(body).unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
    let deleted = |kind: &str| {
        scrape
            .samples
            .iter()
            .find(|sample| {
                sample.metric == "datatrust_retention_deleted_total"
                    && sample.labels.get("kind") == Some(kind)
            })
            .map(|sample| match sample.value {
                prometheus_parse::Value::Counter(value)
                | prometheus_parse::Value::Untyped(value) => value,
                ref other => panic!("{other:?}"),
            })
    };
    assert_eq!(deleted("events"), Some(5.0), "{text}");
    assert_eq!(deleted("screenshots"), Some(1.0), "{text}");

    // Day 41: everything of day 0 is past retention, the unreferenced image with it. The
    // license ended on day 30; its release's parts are kept for the 30 days' grace.
    trust.clock.advance(36 * DAY);
    trustee = trust.trustee_session().await;
    ada_session = trust.sign_in(&ada).await.unwrap();
    let swept = sweep(&trustee).await;
    assert_eq!(
        (swept.events, swept.screenshots, swept.release_parts),
        (3, 1, 0),
        "{swept:?}"
    );
    assert!(datatrust_tests::export_text(&ada_session).await.is_empty());
    assert_eq!(stream_count(&trustee, &release).await.len(), 3);

    // Day 61: the grace is over; the release's parts go, its logged root stays.
    trust.clock.advance(20 * DAY);
    trustee = trust.trustee_session().await;
    let swept = sweep(&trustee).await;
    assert_eq!(swept.release_parts, 2, "Ada's and Bea's parts: {swept:?}");
    assert!(stream_count(&trustee, &release).await.is_empty());

    // On the embedded store a deleted value's sealed bytes stay in their segment file until
    // it is compacted, and the one taking writes never is: after a restart, the sweep the
    // duties run on start removes the first run's, wholly dead by now.
    let offset = trust.clock.now().0 - datatrust_server::now().0;
    let mut trust = ratified.trust.restart().await;
    trust.clock.advance(offset);
    let swept = sweep(&trust.trustee_session().await).await;
    assert_eq!((swept.events, swept.release_parts), (0, 0), "{swept:?}");
    if datatrust_tests::postgres_backend().is_none() {
        let (_, _, body) = http_get(trust.http_addr, "/metrics").await;
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains("datatrust_retention_deleted_total{kind=\"segments\"} 1"),
            "the first run's segment compacted away: {text}"
        );
        let listing: Vec<_> = std::fs::read_dir(trust.data_dir.join("segments"))
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                (entry.file_name(), entry.metadata().unwrap().len())
            })
            .collect();
        assert!(
            listing.iter().all(|(_, length)| *length == 8),
            "only this run's segment is left, empty but for its header: {listing:?}"
        );
    }

    // Nothing of the deleted events is left in the files, in the clear.
    trust.stop().await;
    let mut files = vec![trust.data_dir.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for secret in [&b"ANCIENT"[..], b"RECENT-TITLE", &old_image, &orphan_image] {
            assert!(
                !bytes.windows(secret.len()).any(|window| window == secret),
                "{} holds {:?}",
                path.display(),
                String::from_utf8_lossy(secret)
            );
        }
    }
}

/// One damaged byte in a member's stored data passes her over; retention goes on for the
/// others, and the sweep says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_data_of_one_member_does_not_stop_retention_for_the_others() {
    if datatrust_tests::postgres_backend().is_some() {
        return; // segment files are the embedded store's
    }
    let (ada, bea) = (new_signer(), new_signer());
    let ratified = start_with_retention(&ada, &bea).await;
    let trust = &ratified.trust;
    let (laptop, collector) = trust.new_principal(Role::Collector, "Laptop").await;
    for member in [&ada, &bea] {
        authorize(&trust.sign_in(member).await.unwrap(), &laptop).await;
    }
    // Ada's batch first: the first record of the first segment file.
    let ms = (trust.clock.now().0 - DAY) * 1000;
    upload(&collector, &ada, 1, vec![pointer(ms)]).await;
    upload(&collector, &bea, 1, vec![pointer(ms)]).await;
    let offset = trust.clock.now().0 - datatrust_server::now().0;
    let mut trust = ratified.trust;
    trust.stop().await;
    // A byte inside Ada's sealed batch: after the file's header (8), the record's table
    // (1), key length (2), key (48) and value length (4).
    let path = trust.data_dir.join("segments").join("0000000000000001");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8 + 1 + 2 + 48 + 4 + 30] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();

    let trust = trust.restart().await;
    trust.clock.advance(offset + (RETENTION_DAYS + 3) * DAY);
    let swept = sweep(&trust.trustee_session().await).await;
    assert_eq!(swept.members_damaged, 1, "{swept:?}");
    let bea_session = trust.sign_in(&bea).await.unwrap();
    assert!(
        datatrust_tests::export_text(&bea_session).await.is_empty(),
        "Bea's batch is past retention and gone (by this sweep or the one at start)"
    );
}
