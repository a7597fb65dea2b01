//! Availability against a real `datatrust serve` process: a stranger who stalls requests,
//! floods sign-in or holds silent connections, and a member who signs in without end, must
//! not close the trust to anyone else. The attacker connects from 127.0.0.2, the legitimate
//! member from 127.0.0.1 (both loopback); every loop is bounded in count and time.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use datatrust_cli::client;
use datatrust_core::NoteSigner;
use datatrust_proto::v1;
use datatrust_tests::{ServerProcess, new_signer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const ATTACKER: &str = "127.0.0.2";

/// A server process on a fresh trust, with the first trustee's key and a member enrolled.
async fn served(extra: &[&str]) -> (tempfile::TempDir, ServerProcess, NoteSigner) {
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    let server = ServerProcess::start(&data_dir, extra);
    let trustee =
        NoteSigner::parse(&std::fs::read_to_string(data_dir.join("initial-trustee.key")).unwrap())
            .unwrap();
    let member = new_signer();
    let channel = client::connect(&server.grpc_url, None).await.unwrap();
    client::sign_in(&channel, &trustee)
        .await
        .unwrap()
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: member.public_key().as_bytes().to_vec(),
            role: v1::Role::Member.into(),
            display_name: "Legitimate member".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    (temporary, server, member)
}

/// A channel whose connections come from `source`.
async fn channel_from(url: &str, source: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .unwrap()
        .local_address(Some(source.parse::<IpAddr>().unwrap()))
        .connect()
        .await
        .unwrap()
}

/// The legitimate member signs in and reads who they are, within `limit`.
async fn member_is_served(url: &str, member: &NoteSigner, limit: Duration) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(limit, async {
        let channel = client::connect(url, None).await?;
        let session = client::sign_in(&channel, member).await?;
        session
            .auth()
            .who_am_i(v1::WhoAmIRequest {})
            .await
            .map_err(client::ClientError::from)?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(client::ClientError::from)?;
        Ok::<_, client::ClientError>(())
    })
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("the member was refused: {error}"),
        Err(_) => panic!("the member was not served within {limit:?}"),
    }
    assert!(started.elapsed() < limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_unauthenticated_requests_hold_nothing_anyone_else_needs() {
    let (_directory, server, member) = served(&["--anonymous-requests-per-second", "2000"]).await;
    // 1,200 unary requests that send their headers and never a body, over 20 connections.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let channel = channel_from(&server.grpc_url, ATTACKER).await;
        for _ in 0..60 {
            let channel = channel.clone();
            stalled.push(tokio::spawn(async move {
                let mut grpc = tonic::client::Grpc::new(channel);
                grpc.ready().await.map_err(|error| error.to_string())?;
                let never = futures_never();
                grpc.client_streaming::<_, v1::CreateChallengeRequest, v1::CreateChallengeResponse, _>(
                    tonic::Request::new(never),
                    tonic::codegen::http::uri::PathAndQuery::from_static(
                        "/datatrust.v1.AuthService/CreateChallenge",
                    ),
                    tonic_prost::ProstCodec::default(),
                )
                .await
                .map(drop)
                .map_err(|status| format!("{:?}", status.code()))
            }));
        }
    }
    // The attack's ramp: the stalled requests' headers go out from their connections' tasks;
    // half a second puts them all in place (the member is then served while they stall,
    // and the test checks below that every one of them reached the server).
    // Sleep: lets the attack's connections reach the server (checked below).
    tokio::time::sleep(Duration::from_millis(500)).await;
    member_is_served(&server.grpc_url, &member, Duration::from_secs(3)).await;
    // The server drops each stalled request once its body is late.
    let mut dropped = 0;
    for request in stalled {
        let outcome = tokio::time::timeout(Duration::from_secs(15), request)
            .await
            .expect("the server dropped the stalled request in time")
            .unwrap();
        if outcome == Err("DeadlineExceeded".into()) {
            dropped += 1;
        }
    }
    assert!(
        dropped >= 1_000,
        "{dropped} of 1200 stalled requests answered DEADLINE_EXCEEDED"
    );
}

/// A request stream that never yields: the request's headers go out, its body never does.
fn futures_never() -> impl tokio_stream::Stream<Item = v1::CreateChallengeRequest> + Send + 'static
{
    tokio_stream::pending()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_flood_from_one_source_closes_sign_in_to_nobody_else() {
    let (_directory, server, member) = served(&["--anonymous-requests-per-second", "50"]).await;
    // A stranger asks for challenges as fast as it can, from one address, for two seconds.
    let flood = channel_from(&server.grpc_url, ATTACKER).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut auth = v1::auth_service_client::AuthServiceClient::new(flood.clone());
        tasks.push(tokio::spawn(async move {
            let (mut served, mut throttled) = (0u32, 0u32);
            let key = new_signer().public_key().as_bytes().to_vec();
            while started.elapsed() < Duration::from_secs(2) {
                match auth
                    .create_challenge(v1::CreateChallengeRequest {
                        public_key: key.clone(),
                    })
                    .await
                {
                    Ok(_) => served += 1,
                    Err(status) if status.code() == Code::ResourceExhausted => throttled += 1,
                    Err(status) => panic!("{status:?}"),
                }
            }
            (served, throttled)
        }));
    }
    member_is_served(&server.grpc_url, &member, Duration::from_secs(3)).await;
    let (mut served, mut throttled) = (0, 0);
    for task in tasks {
        let (task_served, task_throttled) = task.await.unwrap();
        served += task_served;
        throttled += task_throttled;
    }
    assert!(
        throttled > 0,
        "the flood was never slowed ({served} served)"
    );
    // 50 a second with a burst of 100: two seconds allow at most ~200.
    assert!(
        served <= 250,
        "{served} challenges served to one source in 2 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_signing_in_without_end_closes_sign_in_to_nobody_else() {
    // No per-source limit in the way: what is tested is the per-key one.
    let (directory, server, member) = served(&["--anonymous-requests-per-second", "100000"]).await;
    let channel = channel_from(&server.grpc_url, ATTACKER).await;
    let (mut signed_in, mut slowed) = (0, 0);
    let mut sessions = Vec::new();
    for _ in 0..800 {
        match client::sign_in(&channel, &member).await {
            Ok(session) => {
                signed_in += 1;
                sessions.push(session);
            }
            Err(error) if error.to_string().contains("too often") => slowed += 1,
            Err(error) => panic!("{error}"),
        }
    }
    // 600 a minute, saved up to 600: the rest of the 800 are slowed.
    assert!(
        slowed > 0 && signed_in <= 650,
        "{signed_in} sign-ins, {slowed} slowed"
    );
    // Its own oldest sessions ended (at most 16 live); everyone else signs in as usual.
    let mut live = 0;
    for session in &sessions {
        if session.auth().who_am_i(v1::WhoAmIRequest {}).await.is_ok() {
            live += 1;
        }
    }
    assert!(live <= 16, "{live} live sessions for one key");
    let trustee = NoteSigner::parse(
        &std::fs::read_to_string(directory.path().join("data/initial-trustee.key")).unwrap(),
    )
    .unwrap();
    member_is_served(&server.grpc_url, &trustee, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_open_connections_are_capped_and_closed() {
    let (_directory, server, member) = served(&[
        "--max-connections-per-source",
        "40",
        "--connection-idle-seconds",
        "3",
    ])
    .await;
    let grpc: SocketAddr = server
        .grpc_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let attacker = |target: SocketAddr| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(ATTACKER.parse().unwrap(), 0))
            .unwrap();
        socket.connect(target).await.unwrap()
    };
    // Per listener: 60 silent connections, and on HTTP 20 more that send half a request.
    let mut connections = Vec::new();
    for _ in 0..60 {
        connections.push(attacker(grpc).await);
        connections.push(attacker(server.http_addr).await);
    }
    for _ in 0..20 {
        let mut half = attacker(server.http_addr).await;
        let _ = half
            .write_all(b"POST /api/AuthService/CreateChallenge HTTP/1.1\r\nHost: x\r\n")
            .await;
        connections.push(half);
    }
    member_is_served(&server.grpc_url, &member, Duration::from_secs(3)).await;
    let (status, _, _) = datatrust_tests::http_get(server.http_addr, "/healthz").await;
    assert_eq!(status, 200, "HTTP from another source is served");
    // Every attacker connection is closed by the server: at once beyond the per-source cap,
    // the rest once idle (3 s); none is left open after 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    for mut connection in connections {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut byte = [0u8; 64];
        loop {
            match tokio::time::timeout(left, connection.read(&mut byte)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                // A server's HTTP/2 settings or a 408 may come first; then the close.
                Ok(Ok(_)) => continue,
                Err(_) => panic!("a silent connection was still open after 10 s"),
            }
        }
    }
}

#[tokio::test]
async fn refused_reports_are_rate_limited_and_every_list_comes_in_bounded_pages() {
    use datatrust_core::UnixSeconds;
    use datatrust_core::governance::TrainingReport;
    let ratified = datatrust_tests::RatifiedTrust::start(&[(new_signer(), "Ada")]).await;
    let trust = &ratified.trust;
    let (acme_key, acme) = trust
        .new_principal(datatrust_core::Role::Licensee, "Acme")
        .await;
    let license = ratified.license(&acme, &["pointer"], 2).await;
    let now = datatrust_server::now().0;
    let refused_report = |run: u32| {
        let text = TrainingReport {
            trust: "trust.test".into(),
            license_id: license.clone(),
            run_id: format!("run-{run}"),
            model_id: "acme-operator".into(),
            model_version: "1".into(),
            // Not the license's model family: refused, and the attempt logged.
            model_family: "someone-else".into(),
            purpose: "computer-use-agent-training".into(),
            data: vec!["0000000000000000".into()],
            started: UnixSeconds(now),
            ended: UnixSeconds(now),
            accelerator_seconds: 1,
        }
        .to_text();
        v1::ReportTrainingUseRequest {
            signature: acme_key.sign(text.as_bytes()).to_vec(),
            report: text,
        }
    };
    let limit = datatrust_server::REFUSED_REPORTS_PER_HOUR;
    for run in 0..limit {
        let refused = acme
            .training()
            .report_training_use(refused_report(run))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    }
    let log_size = |channel| async move {
        v1::log_service_client::LogServiceClient::new(channel)
            .get_checkpoint(v1::GetCheckpointRequest {})
            .await
            .unwrap()
            .into_inner()
            .tree_size
    };
    let before = log_size(trust.channel.clone()).await;
    let slowed = acme
        .training()
        .report_training_use(refused_report(limit))
        .await
        .unwrap_err();
    assert_eq!(slowed.code(), Code::ResourceExhausted, "{slowed:?}");
    assert_eq!(
        log_size(trust.channel.clone()).await,
        before,
        "a refusal past the limit is not logged"
    );

    // Every attempt is listed, for trustees, members and the licensee, in bounded pages that
    // together hold each exactly once.
    for session in [trust.trustee_session().await, acme.clone()] {
        let mut seen = std::collections::BTreeSet::new();
        let mut page_token = String::new();
        loop {
            let page = session
                .training()
                .list_training_uses(v1::ListTrainingUsesRequest {
                    page_size: 7,
                    page_token,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.uses.len() <= 7);
            for record in page.uses {
                assert!(seen.insert(record.run_id), "listed twice");
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert_eq!(seen.len(), limit as usize);
    }
    let huge = acme
        .training()
        .list_training_uses(v1::ListTrainingUsesRequest {
            page_size: u32::MAX,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        huge.uses.len(),
        limit as usize,
        "capped pages still hold all 60"
    );
    let forged = acme
        .training()
        .list_training_uses(v1::ListTrainingUsesRequest {
            page_size: 1,
            page_token: "not hex".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::InvalidArgument);
    // Another licensee sees none of them.
    let (_, other) = trust
        .new_principal(datatrust_core::Role::Licensee, "Other")
        .await;
    assert!(other.all_training_uses().await.unwrap().is_empty());
}

/// A small tmpfs mounted for one test, unmounted when dropped; `None` where this machine
/// does not let the test mount one (not root, no mount permission).
struct SmallDisk {
    path: std::path::PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(SmallDisk {
            path,
            _parent: parent,
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l"])
            .arg(&self.path)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_recovers_without_a_restart() {
    let Some(disk) = SmallDisk::mount(48) else {
        assert!(
            std::env::var_os("DATATRUST_REQUIRE_MOUNT").is_none(),
            "DATATRUST_REQUIRE_MOUNT is set but a tmpfs could not be mounted"
        );
        eprintln!(
            "SKIPPED a_full_disk_refuses_writes_clearly_and_recovers_without_a_restart: \
             mounting a small tmpfs needs root (CI sets DATATRUST_REQUIRE_MOUNT)"
        );
        return;
    };
    let data_dir = disk.path.join("data");
    let server = ServerProcess::start(&data_dir, &["--min-free-disk-mb", "8"]);
    let trustee =
        NoteSigner::parse(&std::fs::read_to_string(data_dir.join("initial-trustee.key")).unwrap())
            .unwrap();
    let channel = client::connect(&server.grpc_url, None).await.unwrap();
    let session = client::sign_in(&channel, &trustee).await.unwrap();
    let register = || {
        let session = session.clone();
        async move {
            session
                .principals()
                .register_principal(v1::RegisterPrincipalRequest {
                    public_key: new_signer().public_key().as_bytes().to_vec(),
                    role: v1::Role::Member.into(),
                    display_name: "Member".into(),
                    ..Default::default()
                })
                .await
        }
    };
    register().await.expect("a write with room to spare");

    // Fill the disk to the last byte.
    let filler = disk.path.join("filler");
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 1 << 20];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }
    let health = || async {
        tonic_health::pb::health_client::HealthClient::new(channel.clone())
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match register().await {
            Err(status) if status.code() == Code::ResourceExhausted => break status,
            outcome => {
                assert!(
                    Instant::now() < deadline,
                    "still {outcome:?} on a full disk"
                );
                // Sleep: polling until the server sees the full disk, bounded.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(refused.message().contains("disk is full"), "{refused:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while health().await
        != tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    {
        assert!(Instant::now() < deadline, "health never said so");
        // Sleep: polling health, bounded.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, body) = datatrust_tests::http_get(server.http_addr, "/healthz").await;
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("disk"));
    // Reads go on.
    session.auth().who_am_i(v1::WhoAmIRequest {}).await.unwrap();

    // Space returns: writes resume with no restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match register().await {
            Ok(_) => break,
            Err(status) => {
                assert!(
                    Instant::now() < deadline,
                    "writes did not resume: {status:?}"
                );
                // Sleep: polling until writes resume, bounded.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while health().await != tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
        assert!(Instant::now() < deadline, "health did not recover");
        // Sleep: polling health, bounded.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And it still stops cleanly.
    server.signal("-TERM");
    let status = server.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
}

/// Pages through a list: each page at most `size`, every item exactly once.
async fn paged<T, F, Fut>(size: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(u32, String) -> Fut,
    Fut: std::future::Future<Output = (Vec<T>, String)>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    for _ in 0..1000 {
        let (page, next) = fetch(size, token).await;
        assert!(
            page.len() <= size as usize,
            "a page of {} > {size}",
            page.len()
        );
        items.extend(page);
        if next.is_empty() {
            return items;
        }
        token = next;
    }
    panic!("the list never ended");
}

#[tokio::test]
async fn the_other_lists_come_in_bounded_pages_too() {
    let ratified = datatrust_tests::RatifiedTrust::start(&[(new_signer(), "Ada")]).await;
    let trust = &ratified.trust;
    let trustee = trust.trustee_session().await;
    // Collectors of one member: five, in pages of two.
    let (_, member) = trust
        .new_principal(datatrust_core::Role::Member, "Bea")
        .await;
    for index in 0..5 {
        let (collector, _) = trust
            .new_principal(datatrust_core::Role::Collector, &format!("device {index}"))
            .await;
        datatrust_tests::authorize(&member, &collector).await;
    }
    let collectors = paged(2, |page_size, page_token| {
        let member = member.clone();
        async move {
            let page = member
                .members()
                .list_my_collectors(v1::ListMyCollectorsRequest {
                    page_size,
                    page_token,
                })
                .await
                .unwrap()
                .into_inner();
            (page.authorizations, page.next_page_token)
        }
    })
    .await;
    let distinct: std::collections::BTreeSet<_> = collectors
        .iter()
        .map(|authorization| authorization.collector_public_key.clone())
        .collect();
    assert_eq!((collectors.len(), distinct.len()), (5, 5));
    // License requests: three, in pages of one, for the trustee and the licensee alike.
    let (_, acme) = trust
        .new_principal(datatrust_core::Role::Licensee, "Acme")
        .await;
    let now = datatrust_server::now().0;
    for runs in 1..=3 {
        acme.licenses()
            .request_license(v1::RequestLicenseRequest {
                purpose: "computer-use-agent-training".into(),
                categories: vec!["pointer".into()],
                data_from: now - 86_400,
                data_to: now,
                model_family: "acme".into(),
                max_training_runs: runs,
                duration_days: 10,
            })
            .await
            .unwrap();
    }
    for session in [trustee.clone(), acme.clone()] {
        let requests = paged(1, |page_size, page_token| {
            let session = session.clone();
            async move {
                let page = session
                    .licenses()
                    .list_license_requests(v1::ListLicenseRequestsRequest {
                        page_size,
                        page_token,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                (page.requests, page.next_page_token)
            }
        })
        .await;
        assert_eq!(requests.len(), 3);
    }
    // Terms: at most ten versions to a page, whatever is asked.
    let terms = v1::terms_service_client::TermsServiceClient::new(trust.channel.clone())
        .list_terms(v1::ListTermsRequest {
            page_size: u32::MAX,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(terms.terms.len() <= 10 && !terms.terms.is_empty());
    let all_terms = datatrust_cli::client::all_terms(&trust.channel)
        .await
        .unwrap();
    assert!(
        all_terms
            .windows(2)
            .all(|pair| pair[0].version < pair[1].version)
    );
    // Invoices: one license issued makes one invoice; pages of one hold it once.
    ratified.license(&acme, &["pointer"], 1).await;
    let invoices = paged(1, |page_size, page_token| {
        let trustee = trustee.clone();
        async move {
            let page = trustee
                .ledger()
                .list_invoices(v1::ListInvoicesRequest {
                    licensee_public_key: Vec::new(),
                    page_size,
                    page_token,
                })
                .await
                .unwrap()
                .into_inner();
            (page.invoices, page.next_page_token)
        }
    })
    .await;
    assert_eq!(invoices.len(), 1);
}

#[tokio::test]
async fn one_member_cannot_grow_the_log_without_bound() {
    let member_key = new_signer();
    let ratified = datatrust_tests::RatifiedTrust::start(&[(member_key.clone(), "Ada")]).await;
    let member = ratified.trust.sign_in(&member_key).await.unwrap();
    let (mut changed, mut slowed) = (0, 0);
    for attempt in 0..200 {
        match member
            .consents()
            .set_consent(v1::SetConsentRequest {
                purpose: "computer-use-agent-training".into(),
                granted: attempt % 2 == 0,
            })
            .await
        {
            Ok(_) => changed += 1,
            Err(status) if status.code() == Code::ResourceExhausted => slowed += 1,
            Err(status) => panic!("{status:?}"),
        }
    }
    // A burst of 120, then one a second: 200 quick toggles are not all logged.
    assert!(
        slowed > 0 && changed <= 130,
        "{changed} logged, {slowed} slowed"
    );
    // Trustees, acting for the union, are not slowed by it; nor is anyone else.
    let (_, other) = ratified
        .trust
        .new_principal(datatrust_core::Role::Member, "Bea")
        .await;
    other
        .consents()
        .set_consent(v1::SetConsentRequest {
            purpose: "computer-use-agent-training".into(),
            granted: true,
        })
        .await
        .unwrap();
}
