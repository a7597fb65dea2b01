//! Helpers for the end-to-end tests: a real trust on 127.0.0.1:0 with a temporary data
//! directory, started through the same `serve` the binary uses, and the `datatrust` binary
//! itself for tests that need a separate process.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use datatrust_cli::client::{self, SignedIn};
use datatrust_core::{NoteSigner, Origin, Role};
use datatrust_proto::{convert, v1};
use datatrust_server::ServeOptions;
use datatrust_tlog::SequencerOptions;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The PostgreSQL the trusts of this test binary keep their state in, when this is the
/// suite's PostgreSQL run (the `end_to_end_postgres` target: the same tests, the other
/// backend). `None` on sled; also `None`, after saying SKIPPED once, when no PostgreSQL is
/// set (`DATATRUST_TEST_POSTGRES`), unless `DATATRUST_REQUIRE_POSTGRES=1` makes that fatal.
pub fn postgres_backend() -> Option<&'static str> {
    static BACKEND: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| {
            if !postgres_run() {
                return None;
            }
            test_postgres("the end-to-end suite on PostgreSQL (its tests ran on sled again)")
        })
        .as_deref()
}

/// The PostgreSQL the tests may create schemas in (`DATATRUST_TEST_POSTGRES`, a libpq
/// connection string), or `None` after saying that `what` is SKIPPED; with
/// `DATATRUST_REQUIRE_POSTGRES=1` (CI) a missing one fails instead.
pub fn test_postgres(what: &str) -> Option<String> {
    match std::env::var("DATATRUST_TEST_POSTGRES") {
        Ok(config) => Some(config),
        Err(_) if std::env::var("DATATRUST_REQUIRE_POSTGRES").is_ok_and(|value| value == "1") => {
            panic!("{what}: DATATRUST_TEST_POSTGRES is not set, and DATATRUST_REQUIRE_POSTGRES=1")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED {what}: no PostgreSQL (set DATATRUST_TEST_POSTGRES; `eval \"$(bash .ci/postgres.sh)\"` starts one)"
            );
            None
        }
    }
}

/// True (after saying SKIPPED and why) when this is the suite's PostgreSQL run and `test`
/// does not belong in it: it is about the embedded store's files, or it starts `datatrust
/// serve` processes of its own (on sled, or on PostgreSQL already), so it ran in full in the
/// `end_to_end` binary.
pub fn skip_in_postgres_run(test: &str, why: &str) -> bool {
    let skip = postgres_run();
    if skip {
        eprintln!("SKIPPED {test} in the PostgreSQL run: {why}");
    }
    skip
}

/// True in the suite's PostgreSQL run: the binary's name says which run it is.
fn postgres_run() -> bool {
    std::env::current_exe()
        .ok()
        .as_ref()
        .and_then(|binary| binary.file_name())
        .is_some_and(|name| name.to_string_lossy().starts_with("end_to_end_postgres"))
}

/// The PostgreSQL schema of the trust in `data_dir` (in the suite's PostgreSQL run): the
/// same on every reopening.
pub fn schema_for(data_dir: &Path) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut hasher);
    format!("e2e_{:016x}", hasher.finish())
}

/// A trust served in this process.
pub struct TestTrust {
    pub data_dir: PathBuf,
    pub grpc_url: String,
    pub http_addr: std::net::SocketAddr,
    pub channel: Channel,
    /// The first trustee, from the key file bootstrap wrote.
    pub trustee: NoteSigner,
    /// The server's clock: tests move it (`advance`) instead of sleeping.
    pub clock: datatrust_server::Clock,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _temporary: Option<tempfile::TempDir>,
}

impl TestTrust {
    /// A new trust in a new temporary directory.
    pub async fn start() -> TestTrust {
        TestTrust::start_with(ServeOptions::default()).await
    }

    pub async fn start_with(options: ServeOptions) -> TestTrust {
        let temporary = tempfile::tempdir().expect("temporary directory");
        let data_dir = temporary.path().join("data");
        let mut trust = TestTrust::open(&data_dir, options).await;
        trust._temporary = Some(temporary);
        trust
    }

    /// A new trust serving gRPC over TLS; `channel` is not connected (the caller pins the CA).
    pub async fn start_tls(options: ServeOptions) -> TestTrust {
        let temporary = tempfile::tempdir().expect("temporary directory");
        let data_dir = temporary.path().join("data");
        let mut trust = TestTrust::open_with(&data_dir, options, false).await;
        trust._temporary = Some(temporary);
        trust
    }

    /// Opens (or creates) the trust in `data_dir` and serves it.
    pub async fn open(data_dir: &Path, options: ServeOptions) -> TestTrust {
        TestTrust::open_with(data_dir, options, true).await
    }

    async fn open_with(data_dir: &Path, options: ServeOptions, connect: bool) -> TestTrust {
        TestTrust::try_open_with(data_dir, options, connect)
            .await
            .unwrap_or_else(|error| panic!("open the trust: {error}"))
    }

    /// Opens the trust in `data_dir` as `serve` would, or says why the start was refused.
    pub async fn try_open(data_dir: &Path) -> Result<TestTrust, String> {
        TestTrust::try_open_with(data_dir, ServeOptions::default(), true).await
    }

    async fn try_open_with(
        data_dir: &Path,
        options: ServeOptions,
        connect: bool,
    ) -> Result<TestTrust, String> {
        let origin = Origin::parse("trust.test").unwrap();
        let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_url = format!("http://{}", grpc_listener.local_addr().unwrap());
        let http_addr = http_listener.local_addr().unwrap();
        let token_lifetime = options.token_lifetime;
        let path = data_dir.to_path_buf();
        let schema = schema_for(data_dir);
        let opened = tokio::task::spawn_blocking(move || {
            let open = || {
                datatrust_server::open_trust(
                    &path,
                    None,
                    &origin,
                    token_lifetime,
                    SequencerOptions {
                        max_delay: std::time::Duration::from_millis(1),
                        ..SequencerOptions::default()
                    },
                    postgres_backend().map(|database| (database, schema.as_str())),
                )
            };
            // The directory's lock is a flock: a process another test is starting at that
            // instant holds a copy of it between its fork and its exec. Try again, bounded.
            let mut attempts = 0;
            loop {
                match open() {
                    Err(datatrust_server::OpenTrustError::DataDirectory(
                        datatrust_store::DataDirectoryError::Locked { .. },
                    )) if attempts < 100 => {
                        attempts += 1;
                        // Sleep: waiting for another process to exec, not for time to pass.
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    other => return other,
                }
            }
        })
        .await
        .unwrap()
        .map_err(|error| error.to_string())?;
        let trustee_key = data_dir.join("initial-trustee.key");
        let trustee = NoteSigner::parse(&std::fs::read_to_string(&trustee_key).unwrap()).unwrap();
        let (state, directory) = (opened.state, opened.directory);
        let clock = state.clock();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            datatrust_server::serve(state, options, grpc_listener, http_listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
            drop(directory);
        });
        let channel = if connect {
            client::connect(&grpc_url, None).await.expect("connect")
        } else {
            // A lazy channel to nowhere in particular: TLS tests build their own.
            tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy()
        };
        Ok(TestTrust {
            data_dir: data_dir.to_path_buf(),
            grpc_url,
            http_addr,
            channel,
            trustee,
            clock,
            stop: Some(stop),
            task: Some(task),
            _temporary: None,
        })
    }

    /// Stops serving (graceful: in-flight calls finish, storage is flushed, the lock released).
    /// Asks the server to stop (it starts draining) without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn stop(&mut self) {
        self.begin_stop();
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }

    /// Stops, then serves the same data directory again, as a restarted process would.
    pub async fn restart(mut self) -> TestTrust {
        self.stop().await;
        let temporary = self._temporary.take();
        let mut restarted = TestTrust::open(&self.data_dir, ServeOptions::default()).await;
        restarted._temporary = temporary;
        restarted
    }

    /// Runs the `datatrust` binary as `signer` against this trust (`--server` and `--key`
    /// added), on a blocking thread so that this process's server keeps answering it.
    pub async fn cli(&self, signer: &NoteSigner, arguments: &[&str]) -> std::process::Output {
        let keys = tempfile::tempdir().expect("temporary directory");
        let key_file = keys.path().join("principal.key");
        std::fs::write(&key_file, signer.to_private_text()).expect("write the key file");
        let mut command = Command::new(datatrust_binary());
        command
            .args(arguments)
            .args(["--server", &self.grpc_url, "--key"])
            .arg(&key_file);
        tokio::task::spawn_blocking(move || {
            let output = command.output().expect("run datatrust");
            drop(keys);
            output
        })
        .await
        .expect("the CLI's thread")
    }

    pub async fn sign_in(&self, signer: &NoteSigner) -> Result<SignedIn, client::ClientError> {
        client::sign_in(&self.channel, signer).await
    }

    pub async fn trustee_session(&self) -> SignedIn {
        self.sign_in(&self.trustee).await.expect("trustee signs in")
    }

    /// Registers a new principal with a fresh key and signs it in. A trustee is registered
    /// with the first trustee's signed approval: enough while the trust has one trustee and
    /// no terms (the bootstrap rule); the response must not be pending.
    pub async fn new_principal(&self, role: Role, name: &str) -> (NoteSigner, SignedIn) {
        let signer = new_signer();
        let signature = if role == Role::Trustee {
            self.trustee
                .sign(&datatrust_core::safety::action_message(
                    "trust.test",
                    &datatrust_core::safety::SafetyAction::RegisterTrustee {
                        public_key: signer.public_key(),
                    },
                ))
                .to_vec()
        } else {
            Vec::new()
        };
        let registered = self
            .trustee_session()
            .await
            .principals()
            .register_principal(v1::RegisterPrincipalRequest {
                public_key: signer.public_key().as_bytes().to_vec(),
                role: convert::role_to_wire(role).into(),
                display_name: name.to_owned(),
                signature,
            })
            .await
            .expect("register principal")
            .into_inner();
        assert!(
            !registered.pending,
            "registering {name} waits for more trustees"
        );
        let session = self.sign_in(&signer).await.expect("new principal signs in");
        (signer, session)
    }
}

impl TestTrust {
    /// Registers `count` principals of `role` with fresh keys, as the first trustee: a quick
    /// way to grow the log.
    pub async fn register_many(&self, role: Role, count: usize) {
        let trustee = self.trustee_session().await;
        for index in 0..count {
            trustee
                .principals()
                .register_principal(v1::RegisterPrincipalRequest {
                    public_key: new_signer().public_key().as_bytes().to_vec(),
                    role: convert::role_to_wire(role).into(),
                    display_name: format!("{role} {index}"),
                    ..Default::default()
                })
                .await
                .expect("register principal");
        }
    }
}

impl Drop for TestTrust {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `datatrust admin check` on a stopped trust's data directory: its output (the test reads
/// the report and the exit status).
pub async fn admin_check(data_dir: &Path) -> std::process::Output {
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        Command::new(datatrust_binary())
            .args(["admin", "check", "--data-dir"])
            .arg(&data_dir)
            .output()
            .expect("run datatrust admin check")
    })
    .await
    .expect("the admin check's thread")
}

/// A fresh principal key.
pub fn new_signer() -> NoteSigner {
    NoteSigner::new("test", rand::random()).unwrap()
}

/// The `datatrust` binary cargo built beside this test binary (target/<profile>/datatrust).
/// Cargo builds it because the CLI crate has an integration test of its own.
pub fn datatrust_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("current test binary");
    let profile_directory = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let binary = profile_directory.join("datatrust");
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or nextest), which builds it",
        binary.display()
    );
    binary
}

/// A plain HTTP/1.1 GET on loopback: status, lower-cased headers, body. Enough to check what
/// the log serves, headers included, without trusting any client library's defaults.
pub async fn http_get(
    address: std::net::SocketAddr,
    path: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    http_request(address, "GET", path, &[], b"").await
}

/// One HTTP/1.1 request over a new connection: (status, lowercased headers, body).
pub async fn http_request(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    let mut body = response[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value == "chunked")
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|window| window == b"\r\n")
            .unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
        body = &body[line_end + 2 + size + 2..];
    }
}

/// A `datatrust serve` process and the gRPC address it printed.
pub struct ServerProcess {
    pub child: Child,
    pub grpc_url: String,
    pub http_addr: std::net::SocketAddr,
}

impl ServerProcess {
    pub fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        ServerProcess::start_logging_to(data_dir, extra, Stdio::null())
    }

    pub fn start_logging_to(
        data_dir: &Path,
        extra: &[&str],
        stderr: impl Into<Stdio>,
    ) -> ServerProcess {
        ServerProcess::start_with_env(data_dir, extra, stderr, &[])
    }

    /// As `start_logging_to`, with these environment variables set for the server.
    pub fn start_with_env(
        data_dir: &Path,
        extra: &[&str],
        stderr: impl Into<Stdio>,
        environment: &[(&str, &str)],
    ) -> ServerProcess {
        let mut child = Command::new(datatrust_binary())
            .envs(environment.iter().copied())
            .args([
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn datatrust serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut grpc_url, mut http_addr) = (None, None);
        // The server prints its bound address once it is listening; read until then.
        for line in lines.by_ref() {
            let line = line.expect("read server output");
            if let Some(url) = line.strip_prefix("grpc listening on ") {
                grpc_url = Some(url.to_owned());
            }
            if let Some(url) = line.strip_prefix("http listening on ") {
                http_addr = url
                    .rsplit("//")
                    .next()
                    .and_then(|address| address.parse().ok());
                break;
            }
        }
        // Keep reading, so the server never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ServerProcess {
            child,
            grpc_url: grpc_url.expect("the server printed its gRPC address"),
            http_addr: http_addr.expect("the server printed its HTTP address"),
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its status. Async, so that this
    /// test's own client connections keep answering the server's shutdown handshake.
    pub async fn wait(mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "server did not exit within {limit:?}"
            );
            // Sleep: polling another process until it exits, bounded.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example agreement shipped in `terms/`.
pub const EXAMPLE_TERMS: &str = include_str!("../terms/example-agreement.toml");

/// A trust whose example terms are in force: proposed, approved by one member, countersigned
/// by two trustees. Returns the second trustee's key and session, and the members.
pub struct RatifiedTrust {
    pub trust: TestTrust,
    pub second_trustee: (NoteSigner, SignedIn),
    pub terms_hash: String,
}

impl RatifiedTrust {
    pub async fn start(members: &[(NoteSigner, &str)]) -> RatifiedTrust {
        RatifiedTrust::start_with_terms(members, EXAMPLE_TERMS).await
    }

    /// As `start`, with another terms document.
    pub async fn start_with_terms(members: &[(NoteSigner, &str)], terms: &str) -> RatifiedTrust {
        let trust = TestTrust::start().await;
        let first = trust.trustee_session().await;
        let second = trust.new_principal(Role::Trustee, "Second trustee").await;
        for (key, name) in members {
            first
                .principals()
                .register_principal(v1::RegisterPrincipalRequest {
                    public_key: key.public_key().as_bytes().to_vec(),
                    role: v1::Role::Member.into(),
                    display_name: (*name).to_owned(),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        let mut voters = Vec::new();
        for (key, _) in members {
            voters.push((key, trust.sign_in(key).await.unwrap()));
        }
        let voters: Vec<_> = voters
            .iter()
            .map(|(key, session)| (*key, session))
            .collect();
        let hash = client::ratify(
            &first,
            terms,
            &voters,
            &[(&trust.trustee, &first), (&second.0, &second.1)],
        )
        .await
        .unwrap();
        RatifiedTrust {
            trust,
            second_trustee: second,
            terms_hash: hash,
        }
    }

    /// Revokes a license with both trustees' signed approvals (a safety action): the first
    /// holds it, the second revokes it.
    pub async fn revoke(&self, license_id: &str, reason: &str) {
        let action = datatrust_core::safety::SafetyAction::RevokeLicense {
            license_id: license_id.to_owned(),
        };
        let first = self.trust.trustee_session().await;
        let mut pending = Vec::new();
        for (key, session) in [
            (&self.trust.trustee, &first),
            (&self.second_trustee.0, &self.second_trustee.1),
        ] {
            pending.push(
                session
                    .licenses()
                    .revoke_license(v1::RevokeLicenseRequest {
                        license_id: license_id.to_owned(),
                        reason: reason.to_owned(),
                        signature: safety_signature(key, &action),
                    })
                    .await
                    .expect("revoke")
                    .into_inner()
                    .pending,
            );
        }
        assert_eq!(pending, [true, false], "revoked at the second approval");
    }

    /// Requests a license for `licensee` and approves it by both trustees; returns its id.
    pub async fn license(&self, licensee: &SignedIn, categories: &[&str], runs: u32) -> String {
        use datatrust_core::governance::approval_message;
        let now = datatrust_server::now().0;
        let request = licensee
            .licenses()
            .request_license(v1::RequestLicenseRequest {
                purpose: "computer-use-agent-training".into(),
                categories: categories
                    .iter()
                    .map(|category| (*category).to_owned())
                    .collect(),
                data_from: now - 30 * 86_400,
                data_to: now + 86_400,
                model_family: "acme-agent".into(),
                max_training_runs: runs,
                duration_days: 30,
            })
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let origin = licensee.origin.to_string();
        let first = self.trust.trustee_session().await;
        let mut license = None;
        for (key, session) in [
            (&self.trust.trustee, &first),
            (&self.second_trustee.0, &self.second_trustee.1),
        ] {
            license = session
                .licenses()
                .approve_license_request(v1::ApproveLicenseRequestRequest {
                    request_id: request.id.clone(),
                    signature: key
                        .sign(&approval_message(&origin, &request.id, &self.terms_hash))
                        .to_vec(),
                })
                .await
                .unwrap()
                .into_inner()
                .license;
        }
        license.expect("two approvals issue the license").id
    }
}

/// `signer`'s approval of a safety action on the test trust (origin trust.test).
pub fn safety_signature(
    signer: &NoteSigner,
    action: &datatrust_core::safety::SafetyAction,
) -> Vec<u8> {
    signer
        .sign(&datatrust_core::safety::action_message(
            "trust.test",
            action,
        ))
        .to_vec()
}

/// Uploads one batch (device "laptop", sequence 1) for `member` and checks it was stored.
pub async fn upload_events(collector: &SignedIn, member: &NoteSigner, events: Vec<v1::Event>) {
    let mut answers = collector
        .ingest()
        .upload(tokio_stream::iter(vec![v1::UploadRequest {
            member_public_key: member.public_key().as_bytes().to_vec(),
            device_id: "laptop".into(),
            sequence: 1,
            events,
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answers.message().await.unwrap().unwrap().outcome, "stored");
}

/// The member lets `collector` upload telemetry for them.
pub async fn authorize(member: &SignedIn, collector: &NoteSigner) {
    member
        .members()
        .authorize_collector(v1::AuthorizeCollectorRequest {
            collector_public_key: collector.public_key().as_bytes().to_vec(),
        })
        .await
        .unwrap();
}

/// The member consents to `purpose`.
pub async fn consent(member: &SignedIn, purpose: &str) {
    member
        .consents()
        .set_consent(v1::SetConsentRequest {
            purpose: purpose.into(),
            granted: true,
        })
        .await
        .unwrap();
}

/// Every entry of the trust's log, decoded (up to the server's per-call limit of 1,000).
pub async fn decoded_log_entries(
    channel: &Channel,
) -> Vec<datatrust_core::log_entry::DecodedEntry> {
    let mut log = v1::log_service_client::LogServiceClient::new(channel.clone());
    let size = log
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .tree_size;
    log.get_entries(v1::GetEntriesRequest {
        start: 0,
        end: size.min(1000),
    })
    .await
    .unwrap()
    .into_inner()
    .entries
    .iter()
    .filter_map(|entry| datatrust_core::log_entry::DecodedEntry::parse(entry))
    .collect()
}

/// The stored trust's database as it is now (sled's `db/`, or the PostgreSQL schema's
/// tables), kept under `name` so that `restore_database` can put it back: an older copy,
/// as a bad restore would leave it. The trust must be stopped.
pub fn snapshot_database(data_dir: &Path, name: &str) {
    match postgres_backend() {
        None => copy_data_directory(&data_dir.join("db"), &data_dir.with_file_name(name)),
        Some(config) => off_runtime(|| {
            let schema = schema_for(data_dir);
            let mut client = postgres::Client::connect(config, postgres::NoTls).unwrap();
            let tables = data_tables(&mut client, &schema);
            let mut sql = format!("CREATE SCHEMA {schema}_{name};");
            for table in tables {
                sql.push_str(&format!(
                    "CREATE TABLE {schema}_{name}.{table} AS TABLE {schema}.{table};"
                ));
            }
            client.batch_execute(&sql).unwrap();
        }),
    }
}

/// Runs `work` on a thread of its own: the sync PostgreSQL client cannot run on a thread
/// that drives a tokio runtime.
fn off_runtime(work: impl FnOnce() + Send) {
    std::thread::scope(|scope| scope.spawn(work).join().unwrap());
}

/// Puts back the copy `snapshot_database` kept under `name`.
pub fn restore_database(data_dir: &Path, name: &str) {
    match postgres_backend() {
        None => {
            std::fs::remove_dir_all(data_dir.join("db")).unwrap();
            copy_data_directory(&data_dir.with_file_name(name), &data_dir.join("db"));
        }
        Some(config) => off_runtime(|| {
            let schema = schema_for(data_dir);
            let mut client = postgres::Client::connect(config, postgres::NoTls).unwrap();
            let tables = data_tables(&mut client, &schema);
            let mut sql = String::new();
            for table in tables {
                sql.push_str(&format!(
                    "TRUNCATE {schema}.{table}; INSERT INTO {schema}.{table} SELECT * FROM {schema}_{name}.{table};"
                ));
            }
            client.batch_execute(&sql).unwrap();
        }),
    }
}

/// The schema's tables that hold the trust's data (all but the schema's version).
fn data_tables(client: &mut postgres::Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_name <> 'schema_version'",
            &[&schema],
        )
        .unwrap()
        .into_iter()
        .map(|row| row.get(0))
        .collect()
}

/// A copy of a stopped trust's data directory (or part of it), modes kept and the lock file
/// left out: a node provisioned from a seed, or a database kept aside.
pub fn copy_data_directory(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::metadata(from).unwrap().permissions()).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_data_directory(&entry.path(), &target);
        } else if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A CLI run's stdout, once it succeeded; else the test fails with both streams.
pub fn succeeded(what: &str, output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A signed-in member's whole export (`MemberDataService.ExportMyData`), as text.
pub async fn export_text(member: &SignedIn) -> String {
    let mut stream = member
        .member_data()
        .export_my_data(v1::ExportMyDataRequest {})
        .await
        .expect("export")
        .into_inner();
    let mut text = Vec::new();
    while let Some(piece) = stream.message().await.expect("an export piece") {
        text.extend(piece.json_lines);
    }
    String::from_utf8(text).expect("the export is UTF-8")
}
