//! Upgrades: a data directory written by an earlier release of datatrust, committed as a
//! fixture (`tests/fixtures/upgrade/format-N/`), is opened by this build, migrated to the
//! current format, and everything in it still verifies: the log in full, the state against
//! the log, each member's export, statement and audit (proofs checked offline), the license
//! and the training-use receipt, and the release streamed again against its logged root.
//!
//! `write_the_upgrade_fixture` (ignored) wrote the fixture with the release that had that
//! format; run it again with a new release only to add a fixture of a new format:
//! `DATATRUST_WRITE_FIXTURE=tests/fixtures/upgrade/format-N cargo test -p datatrust-tests
//! --test end_to_end upgrade::write_the_upgrade_fixture -- --ignored`.

use std::path::{Path, PathBuf};

use datatrust_core::{NoteSigner, Role};
use datatrust_proto::v1;
use datatrust_server::ServeOptions;
use datatrust_tests::{RatifiedTrust, TestTrust, copy_data_directory, succeeded};
use sha2::Digest as _;

/// The members of the fixture's trust, by the names of their key files.
const MEMBERS: [&str; 2] = ["ada", "bea"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/upgrade")
}

fn key(directory: &Path, name: &str) -> NoteSigner {
    let text = std::fs::read_to_string(directory.join("keys").join(format!("{name}.key")))
        .unwrap_or_else(|error| panic!("the fixture's {name}.key: {error}"));
    NoteSigner::parse(&text).unwrap()
}

fn events(now_ms: i64, screenshot: &[u8]) -> Vec<v1::Event> {
    vec![
        v1::Event {
            time_ms: now_ms - 3_000,
            application: "editor".into(),
            kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 12, y: 34 })),
        },
        v1::Event {
            time_ms: now_ms - 2_000,
            application: "editor".into(),
            kind: Some(v1::event::Kind::Screenshot(v1::ScreenshotRef {
                sha256: hex::encode(sha2::Sha256::digest(screenshot)),
                size_bytes: screenshot.len() as u32,
            })),
        },
        v1::Event {
            time_ms: now_ms - 1_000,
            application: "editor".into(),
            kind: Some(v1::event::Kind::Focus(v1::FocusChange {
                window_title: "Quarterly plan".into(),
            })),
        },
    ]
}

/// What a member sees of herself, as the CLI prints it: the export (events and
/// screenshots), and the JSON of her counts per day, statement and audit (each verified
/// offline) and consents.
async fn member_view(
    trust: &TestTrust,
    member: &NoteSigner,
    vkey: &str,
    out: &Path,
) -> serde_json::Value {
    let export = out.join("export.jsonl");
    succeeded(
        "member export",
        &trust
            .cli(
                member,
                &["member", "export", "--out", export.to_str().unwrap()],
            )
            .await,
    );
    let mut view = serde_json::Map::new();
    view.insert(
        "export".into(),
        std::fs::read_to_string(&export).unwrap().into(),
    );
    for arguments in [
        vec!["member", "data", "--json"],
        vec!["member", "statement", "--verify", "--vkey", vkey, "--json"],
        vec!["member", "audit", "--verify", "--vkey", vkey, "--json"],
        vec!["member", "consents", "--json"],
    ] {
        let printed = succeeded(&arguments.join(" "), &trust.cli(member, &arguments).await);
        // Lists print a JSON value a line.
        let values: Vec<serde_json::Value> = printed
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|error| {
                    panic!("{arguments:?} printed no JSON ({error}): {printed}")
                })
            })
            .collect();
        view.insert(arguments[1].into(), values.into());
    }
    view.into()
}

/// Whether `now` holds everything `was` held: a later release may add fields, never drop or
/// change one.
fn holds(was: &serde_json::Value, now: &serde_json::Value, path: &str) -> Result<(), String> {
    use serde_json::Value;
    match (was, now) {
        (Value::Object(was), Value::Object(now)) => was.iter().try_for_each(|(field, value)| {
            let path = format!("{path}.{field}");
            holds(
                value,
                now.get(field).ok_or(format!("{path} is gone"))?,
                &path,
            )
        }),
        (Value::Array(was), Value::Array(now)) if was.len() == now.len() => was
            .iter()
            .zip(now)
            .enumerate()
            .try_for_each(|(index, (was, now))| holds(was, now, &format!("{path}[{index}]"))),
        (was, now) if was == now => Ok(()),
        (was, now) => Err(format!("{path} was {was}, is {now}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a fixture for the upgrade test; see the module's documentation"]
async fn write_the_upgrade_fixture() {
    let target = PathBuf::from(
        std::env::var("DATATRUST_WRITE_FIXTURE")
            .expect("DATATRUST_WRITE_FIXTURE names the fixture directory to write"),
    );
    assert!(!target.exists(), "{} exists already", target.display());
    let keys = target.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let signers: Vec<(NoteSigner, &str)> = MEMBERS
        .iter()
        .map(|name| (datatrust_tests::new_signer(), *name))
        .collect();
    let mut ratified = RatifiedTrust::start(&signers).await;
    let trust = &ratified.trust;
    let vkey = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap()
        .log_vkey;
    let (laptop, collector) = trust.new_principal(Role::Collector, "Laptop").await;
    let (acme, company) = trust.new_principal(Role::Licensee, "Acme Robotics").await;
    let now_ms = trust.clock.now().0 * 1000;
    for (index, (member, _)) in signers.iter().enumerate() {
        let session = trust.sign_in(member).await.unwrap();
        datatrust_tests::authorize(&session, &laptop).await;
        datatrust_tests::consent(&session, "computer-use-agent-training").await;
        let screenshot = format!("a screenshot of member {index}").into_bytes();
        collector
            .ingest()
            .upload_screenshot(v1::UploadScreenshotRequest {
                member_public_key: member.public_key().as_bytes().to_vec(),
                image: screenshot.clone(),
            })
            .await
            .unwrap();
        datatrust_tests::upload_events(&collector, member, events(now_ms, &screenshot)).await;
    }
    let license = ratified
        .license(&company, &["pointer", "focus", "screenshots"], 5)
        .await;
    let work = target.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let license_file = target.join("acme.license");
    succeeded(
        "company license",
        &trust
            .cli(
                &acme,
                &[
                    "company",
                    "license",
                    "--id",
                    &license,
                    "--out",
                    license_file.to_str().unwrap(),
                ],
            )
            .await,
    );
    let release = succeeded(
        "company release",
        &trust
            .cli(
                &acme,
                &["company", "release", "--license", &license, "--get", "id"],
            )
            .await,
    )
    .trim()
    .to_owned();
    let records = target.join("release.jsonl");
    succeeded(
        "company fetch-release",
        &trust
            .cli(
                &acme,
                &[
                    "company",
                    "fetch-release",
                    "--release",
                    &release,
                    "--out",
                    records.to_str().unwrap(),
                    "--vkey",
                    &vkey,
                ],
            )
            .await,
    );
    let stamp = trust.clock.now().0.to_string();
    let receipt = target.join("run-1.tlog-proof");
    succeeded(
        "company report-use",
        &trust
            .cli(
                &acme,
                &[
                    "company",
                    "report-use",
                    "--license",
                    &license,
                    "--run",
                    "run-1",
                    "--model",
                    "acme-operator",
                    "--model-version",
                    "0.3",
                    "--model-family",
                    "acme-agent",
                    "--purpose",
                    "computer-use-agent-training",
                    "--data",
                    &release,
                    "--started",
                    &stamp,
                    "--ended",
                    &stamp,
                    "--accelerator-seconds",
                    "3600",
                    "--receipt-out",
                    receipt.to_str().unwrap(),
                ],
            )
            .await,
    );
    let mut expected = serde_json::Map::new();
    for (member, name) in &signers {
        let view = member_view(trust, member, &vkey, &work).await;
        expected.insert(format!("{name}_view"), view);
        std::fs::write(keys.join(format!("{name}.key")), member.to_private_text()).unwrap();
    }
    std::fs::write(keys.join("acme.key"), acme.to_private_text()).unwrap();
    std::fs::write(keys.join("trustee.key"), trust.trustee.to_private_text()).unwrap();
    expected.insert("now".into(), trust.clock.now().0.into());
    expected.insert("release".into(), release.into());
    expected.insert("log_vkey".into(), vkey.into());
    std::fs::remove_dir_all(&work).unwrap();
    ratified.trust.stop().await;
    copy_data_directory(&ratified.trust.data_dir, &target.join("data"));
    std::fs::write(
        target.join("expected.json"),
        serde_json::to_string_pretty(&expected).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_an_earlier_format_is_migrated_and_still_verifies() {
    if datatrust_tests::skip_in_postgres_run(
        "a_data_directory_of_an_earlier_format_is_migrated_and_still_verifies",
        "the fixtures are data directories of the embedded store",
    ) {
        return;
    }
    let mut formats: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/upgrade holds the fixtures")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("expected.json").exists())
        .collect();
    formats.sort();
    assert!(!formats.is_empty(), "no upgrade fixture");
    for fixture in formats {
        check_fixture(&fixture).await;
    }
}

async fn check_fixture(fixture: &Path) {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap())
            .unwrap();
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    copy_data_directory(&fixture.join("data"), &data_dir);
    // A checkout does not keep modes: the keys are made private again, as an operator
    // restoring a copy would.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(data_dir.join("keys")).unwrap() {
        std::fs::set_permissions(
            entry.unwrap().path(),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let trust = TestTrust::open(&data_dir, ServeOptions::default()).await;
    let marker = std::fs::read_to_string(data_dir.join("DATATRUST")).unwrap();
    assert!(
        marker.contains(&format!("format {}", datatrust_store::FORMAT_VERSION)),
        "the directory was not migrated to this build's format: {marker}"
    );
    // The fixture's own moment, so that deadlines and retention are as they were.
    trust
        .clock
        .advance(expected["now"].as_i64().unwrap() - trust.clock.now().0);
    let vkey = expected["log_vkey"].as_str().unwrap();
    let work = temporary.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    for name in MEMBERS {
        let view = member_view(&trust, &key(fixture, name), vkey, &work).await;
        if let Err(change) = holds(&expected[format!("{name}_view")], &view, name) {
            panic!(
                "{name}'s export, counts, statement, audit or consents changed in {}: {change}",
                fixture.display()
            );
        }
    }
    let acme = key(fixture, "acme");
    let info = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap();
    let license = fixture.join("acme.license");
    succeeded(
        "license verify",
        &trust
            .cli(
                &acme,
                &[
                    "license",
                    "verify",
                    license.to_str().unwrap(),
                    "--license-vkey",
                    &info.license_vkey,
                    "--log-vkey",
                    vkey,
                ],
            )
            .await,
    );
    let receipt = fixture.join("run-1.tlog-proof");
    succeeded(
        "receipt verify",
        &trust
            .cli(
                &acme,
                &[
                    "receipt",
                    "verify",
                    receipt.to_str().unwrap(),
                    "--vkey",
                    vkey,
                ],
            )
            .await,
    );
    let records = work.join("release.jsonl");
    succeeded(
        "company fetch-release",
        &trust
            .cli(
                &acme,
                &[
                    "company",
                    "fetch-release",
                    "--release",
                    expected["release"].as_str().unwrap(),
                    "--out",
                    records.to_str().unwrap(),
                    "--vkey",
                    vkey,
                ],
            )
            .await,
    );
    assert_eq!(
        std::fs::read(&records).unwrap(),
        std::fs::read(fixture.join("release.jsonl")).unwrap(),
        "the release streams other records"
    );
    let trustee = key(fixture, "trustee");
    let state = work.join("monitor");
    let log_url = format!("http://{}/log", trust.http_addr);
    succeeded(
        "log verify --full",
        &trust
            .cli(
                &trustee,
                &[
                    "log",
                    "verify",
                    "--full",
                    "--vkey",
                    vkey,
                    "--state",
                    state.to_str().unwrap(),
                    "--log-url",
                    &log_url,
                ],
            )
            .await,
    );
    let mut trust = trust;
    trust.stop().await;
    let check = datatrust_tests::admin_check(&data_dir).await;
    let report = succeeded("admin check", &check);
    assert!(report.contains("no difference"), "{report}");
}
