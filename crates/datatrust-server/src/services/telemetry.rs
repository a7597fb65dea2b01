//! `IngestService` and `MemberDataService`.

use base64::Engine as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datatrust_core::events::EventBatch;
use datatrust_core::telemetry::IngestOutcome;
use datatrust_core::{LicenseId, ReleaseId};
use datatrust_proto::convert;
use datatrust_proto::v1;
use datatrust_proto::v1::ingest_service_server::IngestService;
use datatrust_proto::v1::member_data_service_server::MemberDataService;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use crate::{TrustState, status};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Export pieces: a few hundred kilobytes each, well under the message limit.
const EXPORT_PIECE_BYTES: usize = 256 * 1024;

pub struct IngestApi {
    pub state: TrustState,
    /// An upload stream silent this long between batches is ended.
    pub idle_upload: std::time::Duration,
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    type UploadStream = ResponseStream<v1::UploadResponse>;

    async fn upload_screenshot(
        &self,
        request: Request<v1::UploadScreenshotRequest>,
    ) -> Result<Response<v1::UploadScreenshotResponse>, Status> {
        self.screenshot(request).await
    }

    async fn upload(
        &self,
        request: Request<Streaming<v1::UploadRequest>>,
    ) -> Result<Response<Self::UploadStream>, Status> {
        // Authenticate once for the stream; each batch re-checks the principal in the core.
        self.state.session(request.metadata())?;
        let metadata = request.metadata().clone();
        let mut incoming = request.into_inner();
        let state = self.state.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let idle = self.idle_upload;
        tokio::spawn(async move {
            loop {
                let message = match tokio::time::timeout(idle, incoming.next()).await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(_) => {
                        let _ = sender
                            .send(Err(Status::deadline_exceeded(format!(
                                "the upload stream sent nothing for {} s; open a new one",
                                idle.as_secs()
                            ))))
                            .await;
                        break;
                    }
                };
                let outcome = match message {
                    Ok(batch) => store_batch(&state, &metadata, batch).await,
                    Err(status) => Err(status),
                };
                let failed = outcome.is_err();
                if sender.send(outcome).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

impl IngestApi {
    async fn screenshot(
        &self,
        request: Request<v1::UploadScreenshotRequest>,
    ) -> Result<Response<v1::UploadScreenshotResponse>, Status> {
        let member = convert::public_key(&request.get_ref().member_public_key, "member_public_key")
            .map_err(status::invalid)?;
        let metadata = request.metadata().clone();
        let image = request.into_inner().image;
        let now = self.state.clock().now();
        let (sha256, new) = self
            .state
            .as_caller(&metadata, move |registry, caller| {
                registry.ingest_screenshot(caller, &member, &image, now)
            })
            .await?;
        Ok(Response::new(v1::UploadScreenshotResponse {
            sha256,
            outcome: if new { "stored" } else { "duplicate" }.into(),
        }))
    }
}

async fn store_batch(
    state: &TrustState,
    metadata: &tonic::metadata::MetadataMap,
    batch: v1::UploadRequest,
) -> Result<v1::UploadResponse, Status> {
    let now = state.clock().now();
    let bytes = prost::Message::encoded_len(&batch) as u64;
    let member = convert::public_key(&batch.member_public_key, "member_public_key")
        .map_err(status::invalid)?;
    let events = batch
        .events
        .iter()
        .enumerate()
        .map(|(index, event)| convert::telemetry::event(event, &format!("events[{index}]")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(status::invalid)?;
    let sequence = batch.sequence;
    let core_batch = EventBatch {
        device_id: batch.device_id,
        sequence,
        events,
    };
    let outcome = state
        .as_caller(metadata, move |registry, caller| {
            registry.ingest(caller, &member, core_batch, now)
        })
        .await?;
    Ok(match outcome {
        IngestOutcome::Stored {
            stored,
            redacted_away,
        } => {
            state.metrics().ingest_events.inc_by(stored as u64);
            state.metrics().ingest_bytes.inc_by(bytes);
            v1::UploadResponse {
                sequence,
                outcome: "stored".into(),
                stored_events: stored as u32,
                redacted_events: redacted_away as u32,
            }
        }
        IngestOutcome::Duplicate => v1::UploadResponse {
            sequence,
            outcome: "duplicate".into(),
            stored_events: 0,
            redacted_events: 0,
        },
    })
}

pub struct MemberDataApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl MemberDataService for MemberDataApi {
    type ExportMyDataStream = ResponseStream<v1::ExportMyDataResponse>;

    async fn get_my_data_summary(
        &self,
        request: Request<v1::GetMyDataSummaryRequest>,
    ) -> Result<Response<v1::GetMyDataSummaryResponse>, Status> {
        let (counts, retention_days) = self
            .state
            .as_caller(request.metadata(), |registry, caller| {
                Ok((
                    registry.my_data_summary(caller)?,
                    registry.retention_days()?,
                ))
            })
            .await?;
        Ok(Response::new(v1::GetMyDataSummaryResponse {
            counts: counts
                .into_iter()
                .map(|count| v1::DayCount {
                    kept_until: datatrust_core::retention::kept_until(count.day, retention_days).0,
                    day: count.day,
                    category: count.category,
                    count: count.count,
                })
                .collect(),
            retention_days,
        }))
    }

    async fn export_my_data(
        &self,
        request: Request<v1::ExportMyDataRequest>,
    ) -> Result<Response<Self::ExportMyDataStream>, Status> {
        // The first page is read before the stream starts, so a refusal is the call's status.
        let metadata = request.metadata().clone();
        let first = self
            .state
            .as_caller(&metadata, |registry, caller| {
                registry.export_page(caller, None, EXPORT_EVENTS_PER_PAGE)
            })
            .await?;
        let state = self.state.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut out = PieceSender::new(sender);
            if let Err(status) = export(&state, &metadata, first, &mut out).await {
                out.fail(status).await;
            } else {
                out.finish().await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn get_my_audit(
        &self,
        request: Request<v1::GetMyAuditRequest>,
    ) -> Result<Response<v1::GetMyAuditResponse>, Status> {
        self.audit(request).await
    }

    async fn erase_my_data(
        &self,
        request: Request<v1::EraseMyDataRequest>,
    ) -> Result<Response<v1::EraseMyDataResponse>, Status> {
        let now = self.state.clock().now();
        if request.get_ref().confirm != "erase all my data" {
            return Err(Status::invalid_argument(
                "confirm: must be \"erase all my data\"; erasure cannot be undone",
            ));
        }
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                Ok((caller.public_key, registry.erase_my_data(caller, now)?))
            })
            .await?;
        let (member, logged) = logged;
        if let Some(log_index) = logged.log_index {
            self.state.journal_erasure(&member, log_index);
        }
        Ok(Response::new(v1::EraseMyDataResponse {
            chunks_erased: logged.value.chunks,
            log_index: logged.log_index,
            events_erased: logged.value.events,
            consents_withdrawn: logged.value.consents_withdrawn,
            collectors_withdrawn: logged
                .value
                .collectors_withdrawn
                .iter()
                .map(|key| key.as_bytes().to_vec())
                .collect(),
        }))
    }
}

/// Events read per page of an export: a few megabytes of JSON at most.
const EXPORT_EVENTS_PER_PAGE: usize = 4096;
/// Screenshot hashes listed per page of an export.
const EXPORT_SCREENSHOTS_PER_PAGE: usize = 256;

/// Writes the export, events first, then one line per screenshot image, reading one page
/// (or one image) at a time and sending as it reads: the memory it holds is a page, an image
/// and a piece, whatever the member's history.
async fn export(
    state: &TrustState,
    metadata: &tonic::metadata::MetadataMap,
    first: datatrust_core::store::EventPage,
    out: &mut PieceSender,
) -> Result<(), Status> {
    let mut page = first;
    loop {
        let mut text = Vec::new();
        for event in &page.events {
            datatrust_core::events::write_json_line(&mut text, event)
                .map_err(|error| status::internal(&error))?;
        }
        out.write(&text).await?;
        let Some(after) = page.next.take() else {
            break;
        };
        page = state
            .as_caller(metadata, move |registry, caller| {
                registry.export_page(caller, Some(&after), EXPORT_EVENTS_PER_PAGE)
            })
            .await?;
    }
    let mut after = None;
    loop {
        let hashes = state
            .as_caller(metadata, move |registry, caller| {
                registry.my_screenshots(caller, after, EXPORT_SCREENSHOTS_PER_PAGE)
            })
            .await?;
        for sha256 in &hashes {
            let sha256 = *sha256;
            let image = state
                .as_caller(metadata, move |registry, caller| {
                    registry.my_screenshot(caller, &sha256)
                })
                .await?
                .ok_or_else(|| {
                    status::data_loss(&format!(
                        "screenshot {}: listed but no longer readable",
                        hex::encode(sha256)
                    ))
                })?;
            out.write(b"{\"image\":{\"sha256\":\"").await?;
            out.write(hex::encode(sha256).as_bytes()).await?;
            out.write(b"\",\"base64\":\"").await?;
            // Base64 in runs of whole 3-byte groups, so the pieces concatenate to the same
            // text as encoding the image at once.
            for run in image.chunks(3 * 64 * 1024) {
                out.write(
                    base64::engine::general_purpose::STANDARD
                        .encode(run)
                        .as_bytes(),
                )
                .await?;
            }
            out.write(b"\"}}\n").await?;
        }
        match hashes.last() {
            Some(last) if hashes.len() == EXPORT_SCREENSHOTS_PER_PAGE => after = Some(*last),
            _ => return Ok(()),
        }
    }
}

/// Cuts a byte stream into export messages of at most `EXPORT_PIECE_BYTES`, each in a
/// buffer of its own (a piece never carries a larger buffer's capacity along).
struct PieceSender {
    sender: tokio::sync::mpsc::Sender<Result<v1::ExportMyDataResponse, Status>>,
    current: Vec<u8>,
}

impl PieceSender {
    fn new(sender: tokio::sync::mpsc::Sender<Result<v1::ExportMyDataResponse, Status>>) -> Self {
        PieceSender {
            sender,
            current: Vec::with_capacity(EXPORT_PIECE_BYTES),
        }
    }

    /// Appends `bytes`, sending every piece that fills; an error when the client went away.
    async fn write(&mut self, mut bytes: &[u8]) -> Result<(), Status> {
        while !bytes.is_empty() {
            let room = EXPORT_PIECE_BYTES - self.current.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.current.extend_from_slice(now);
            bytes = rest;
            if self.current.len() == EXPORT_PIECE_BYTES {
                self.send().await?;
            }
        }
        Ok(())
    }

    async fn send(&mut self) -> Result<(), Status> {
        let piece = std::mem::replace(&mut self.current, Vec::with_capacity(EXPORT_PIECE_BYTES));
        self.sender
            .send(Ok(v1::ExportMyDataResponse { json_lines: piece }))
            .await
            .map_err(|_| Status::cancelled("the client went away"))
    }

    async fn finish(mut self) {
        if !self.current.is_empty() {
            let _ = self.send().await;
        }
    }

    async fn fail(self, status: Status) {
        let _ = self.sender.send(Err(status)).await;
    }
}

pub struct ReleaseApi {
    pub state: TrustState,
}

fn release_id(text: &str) -> Result<ReleaseId, Status> {
    ReleaseId::parse(text, "release_id").map_err(crate::status::invalid)
}

pub(crate) async fn receipt(state: &TrustState, index: u64) -> Result<String, Status> {
    let reader = std::sync::Arc::clone(state.log_reader());
    tokio::task::spawn_blocking(move || crate::services::log::receipt_for(&reader, index))
        .await
        .map_err(|error| status::internal(&error))?
        .map_err(status::from_read)
}

async fn release_to_wire(
    state: &TrustState,
    meta: &datatrust_core::release::ReleaseRecordMeta,
) -> Result<v1::Release, Status> {
    Ok(v1::Release {
        id: meta.id.clone(),
        license_id: meta.license_id.clone(),
        licensee: meta.licensee.as_bytes().to_vec(),
        parts: meta
            .parts
            .iter()
            .map(|part| v1::ReleasePart {
                commitment: part.commitment.clone(),
                count: part.count,
                records_root: part.records_root.clone(),
                categories: part
                    .categories
                    .iter()
                    .map(|(name, count)| (name.clone(), *count))
                    .collect(),
            })
            .collect(),
        root: meta.root.clone(),
        records: meta.records,
        created_at: meta.created_at.0,
        log_index: meta.log_index,
        receipt: receipt(state, meta.log_index).await?,
        state: "ready".into(),
        members_done: meta.parts.len() as u64,
        members_total: meta.parts.len() as u64,
    })
}

impl ReleaseApi {
    /// Checks at once, then builds on a blocking thread while the caller polls GetRelease.
    async fn create_in_background(
        &self,
        request: Request<v1::CreateReleaseRequest>,
        license_id: LicenseId,
        secret: [u8; 32],
        random: [u8; 8],
    ) -> Result<Response<v1::ReleaseResponse>, Status> {
        let now = self.state.clock().now();
        let session = self.state.session(request.metadata())?;
        let checked = license_id.clone();
        let caller = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.check_releasable(caller, &checked, now)?;
                Ok(caller.clone())
            })
            .await?;
        let id = hex::encode(random);
        let build = Arc::new(crate::state::ReleaseBuild {
            licensee: caller.public_key,
            license_id: license_id.to_string(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            failure: std::sync::Mutex::new(None),
        });
        if let Some(shared) = self.state.shared().cloned() {
            let (id, licensee, license_id) =
                (id.clone(), caller.public_key, license_id.to_string());
            tokio::task::spawn_blocking(move || shared.start_build(&id, &licensee, &license_id))
                .await
                .map_err(|error| status::internal(&error))?
                .map_err(|error| status::from_store(&error))?;
        }
        self.state
            .builds()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), Arc::clone(&build));
        let state = self.state.clone();
        let (building, release) = (Arc::clone(&build), id.clone());
        tokio::spawn(async move {
            let progress = Arc::clone(&building);
            // The release's time is when its build ends, as for a build in the request.
            let clock = state.clock();
            let build = state.blocking(move |registry| {
                let caller = crate::state::current_principal(registry, &session)?;
                registry.create_release_reporting(
                    &caller,
                    &license_id,
                    &secret,
                    random,
                    clock.now(),
                    &|done, total| {
                        progress.total.store(total, Ordering::Relaxed);
                        progress.done.store(done, Ordering::Relaxed);
                    },
                )
            });
            tokio::pin!(build);
            // With several nodes, the build's progress goes to the database every few
            // seconds: what any node reports, and this node's heartbeat.
            let mut beats = tokio::time::interval(BUILD_HEARTBEAT);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut build => break outcome,
                    _ = beats.tick() => {}
                }
                if let Some(shared) = state.shared().cloned() {
                    let (id, done, total) = (
                        release.clone(),
                        building.done.load(Ordering::Relaxed),
                        building.total.load(Ordering::Relaxed),
                    );
                    let beat = tokio::task::spawn_blocking(move || {
                        shared.build_progress(&id, done, total)
                    });
                    if let Ok(Err(error)) = beat.await {
                        tracing::warn!(release = %release, %error, "recording a build's progress failed");
                    }
                }
            };
            let failure = outcome
                .as_ref()
                .err()
                .map(|status| format!("{}:{}", i32::from(status.code()), status.message()));
            if let Some(shared) = state.shared().cloned() {
                let id = release.clone();
                let ended =
                    tokio::task::spawn_blocking(move || shared.end_build(&id, failure.as_deref()));
                if let Ok(Err(error)) = ended.await {
                    tracing::warn!(release = %release, %error, "recording a build's end failed");
                }
            }
            match outcome {
                // Stored: GetRelease reads it from the registry from now on.
                Ok(_) => {
                    state
                        .builds()
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&release);
                }
                Err(status) => {
                    tracing::warn!(release = %release, %status, "a release failed to build");
                    *building
                        .failure
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status);
                }
            }
        });
        Ok(Response::new(v1::ReleaseResponse {
            release: Some(building_to_wire(&id, &build)),
        }))
    }

    /// A release still being built, as its licensee or a trustee sees it; its failure, once.
    async fn building(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        id: &str,
    ) -> Result<Option<v1::Release>, Status> {
        if let Some(shared) = self.state.shared().cloned() {
            return self.building_on_any_node(shared, metadata, id).await;
        }
        let Some(build) = self
            .state
            .builds()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
        else {
            return Ok(None);
        };
        if !self.may_see_build(metadata, build.licensee).await? {
            return Ok(None);
        }
        let failure = build
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(status) = failure {
            self.state
                .builds()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(id);
            return Err(status);
        }
        Ok(Some(building_to_wire(id, &build)))
    }

    /// As for a stored release: only its licensee and trustees know a build exists.
    async fn may_see_build(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        licensee: datatrust_core::PublicKey,
    ) -> Result<bool, Status> {
        let caller = self
            .state
            .as_caller(metadata, |_registry, caller| Ok(caller.clone()))
            .await?;
        Ok(caller.role == datatrust_core::Role::Trustee
            || (caller.role == datatrust_core::Role::Licensee && caller.public_key == licensee))
    }

    /// `building` with several nodes: the build as the database records it, whichever
    /// node runs it; a build whose node died is reported as failed (once), so the licensee
    /// creates it again instead of waiting for ever.
    async fn building_on_any_node(
        &self,
        shared: datatrust_postgres::PgShared,
        metadata: &tonic::metadata::MetadataMap,
        id: &str,
    ) -> Result<Option<v1::Release>, Status> {
        let reading = (shared.clone(), id.to_owned());
        let Some(build) = tokio::task::spawn_blocking(move || reading.0.build(&reading.1))
            .await
            .map_err(|error| status::internal(&error))?
            .map_err(|error| status::from_store(&error))?
        else {
            return Ok(None);
        };
        if !self.may_see_build(metadata, build.licensee).await? {
            return Ok(None);
        }
        if let Some(failure) = build.failure {
            let ended = id.to_owned();
            tokio::task::spawn_blocking(move || shared.end_build(&ended, None))
                .await
                .map_err(|error| status::internal(&error))?
                .map_err(|error| status::from_store(&error))?;
            let (code, message) = failure
                .split_once(':')
                .and_then(|(code, message)| Some((code.parse::<i32>().ok()?, message)))
                .map_or(
                    (tonic::Code::Aborted, failure.as_str()),
                    |(code, message)| (tonic::Code::from(code), message),
                );
            return Err(Status::new(code, message.to_owned()));
        }
        Ok(Some(v1::Release {
            id: id.to_owned(),
            license_id: build.license_id,
            licensee: build.licensee.as_bytes().to_vec(),
            state: "building".into(),
            members_done: build.done,
            members_total: build.total,
            ..v1::Release::default()
        }))
    }
}

/// How often a node records a release build's progress in the shared database (its
/// heartbeat: a build not touched for 30 s is reported as abandoned).
const BUILD_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

fn building_to_wire(id: &str, build: &crate::state::ReleaseBuild) -> v1::Release {
    v1::Release {
        id: id.to_owned(),
        license_id: build.license_id.clone(),
        licensee: build.licensee.as_bytes().to_vec(),
        state: "building".into(),
        members_done: build.done.load(Ordering::Relaxed),
        members_total: build.total.load(Ordering::Relaxed),
        ..v1::Release::default()
    }
}

#[tonic::async_trait]
impl v1::release_service_server::ReleaseService for ReleaseApi {
    type StreamReleaseStream = ResponseStream<v1::ReleaseRecordBatch>;

    async fn create_release(
        &self,
        request: Request<v1::CreateReleaseRequest>,
    ) -> Result<Response<v1::ReleaseResponse>, Status> {
        let now = self.state.clock().now();
        let license_id = LicenseId::parse(&request.get_ref().license_id, "license_id")
            .map_err(crate::status::invalid)?;
        let secret = self.state.pseudonym_secret();
        let mut random = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
        if request.get_ref().in_background {
            return self
                .create_in_background(request, license_id, secret, random)
                .await;
        }
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.create_release(caller, &license_id, &secret, random, now)
            })
            .await?;
        Ok(Response::new(v1::ReleaseResponse {
            release: Some(release_to_wire(&self.state, &logged.value).await?),
        }))
    }

    async fn get_release(
        &self,
        request: Request<v1::GetReleaseRequest>,
    ) -> Result<Response<v1::ReleaseResponse>, Status> {
        let id = release_id(&request.get_ref().release_id)?;
        if let Some(building) = self.building(request.metadata(), &id).await? {
            return Ok(Response::new(v1::ReleaseResponse {
                release: Some(building),
            }));
        }
        let meta = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.release(caller, &id)
            })
            .await?;
        Ok(Response::new(v1::ReleaseResponse {
            release: Some(release_to_wire(&self.state, &meta).await?),
        }))
    }

    async fn stream_release(
        &self,
        request: Request<v1::StreamReleaseRequest>,
    ) -> Result<Response<Self::StreamReleaseStream>, Status> {
        let id = release_id(&request.get_ref().release_id)?;
        if self.building(request.metadata(), &id).await?.is_some() {
            return Err(Status::failed_precondition(
                "release_id: still being built; poll GetRelease until its state is ready",
            ));
        }
        let from = request.get_ref().from;
        let metadata = request.metadata().clone();
        // Access is checked before the stream starts, so refusals are the call's status;
        // each part is re-checked as it is read (a revocation stops the stream).
        let now = self.state.clock().now();
        let meta = {
            let id = id.clone();
            self.state
                .as_caller(&metadata, move |registry, caller| {
                    let meta = registry.release(caller, &id)?;
                    // A licensee's license on hold (a revocation awaiting the quorum)
                    // streams nothing.
                    if caller.role == datatrust_core::Role::Licensee
                        && let Some(hold) = registry.urgent_hold(&meta.license_id, now)?
                    {
                        return Err(datatrust_core::registry::DomainError::FailedPrecondition(
                            hold,
                        ));
                    }
                    Ok(meta)
                })
                .await?
        };
        if !meta.parts.is_empty() {
            let id = id.clone();
            self.state
                .as_caller(&metadata, move |registry, caller| {
                    registry.release_part_records(caller, &id, 0, 0).map(drop)
                })
                .await?;
        }
        let state = self.state.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        // Part by part, chunk by chunk (one message's worth each): the stream holds one
        // chunk at a time, however large a member's part.
        tokio::spawn(async move {
            let mut position = 0u64;
            for (part_index, part) in meta.parts.iter().enumerate() {
                let part_end = position + part.count;
                if part_end <= from {
                    position = part_end;
                    continue;
                }
                for chunk in 0u32.. {
                    let id = id.clone();
                    let records = match state
                        .as_caller(&metadata, move |registry, caller| {
                            registry.release_part_records(caller, &id, part_index, chunk)
                        })
                        .await
                    {
                        Ok(Some(records)) => records,
                        // The part's end; or, before it, its member erased (meanwhile):
                        // said so, so that the licensee verifies the rest.
                        Ok(None) => {
                            if position < part_end
                                && sender
                                    .send(Ok(v1::ReleaseRecordBatch {
                                        records: Vec::new(),
                                        erased_parts: vec![part_index as u64],
                                    }))
                                    .await
                                    .is_err()
                            {
                                return;
                            }
                            break;
                        }
                        Err(status) => {
                            let _ = sender.send(Err(status)).await;
                            return;
                        }
                    };
                    let count = records.len() as u64;
                    let batch: Vec<v1::ReleaseRecord> = records
                        .into_iter()
                        .zip(position..)
                        .filter(|(_, at)| *at >= from)
                        .map(|(record, at)| v1::ReleaseRecord {
                            position: at,
                            part: part_index as u64,
                            record,
                        })
                        .collect();
                    position += count;
                    if batch.is_empty() {
                        continue;
                    }
                    if sender
                        .send(Ok(v1::ReleaseRecordBatch {
                            records: batch,
                            erased_parts: Vec::new(),
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                position = part_end;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

impl MemberDataApi {
    pub(crate) async fn audit(
        &self,
        request: Request<v1::GetMyAuditRequest>,
    ) -> Result<Response<v1::GetMyAuditResponse>, Status> {
        // Each entry carries proofs and receipts: at most a hundred to a page.
        let page = crate::paging::Page::parse_sized(
            request.get_ref().page_size,
            &request.get_ref().page_token,
            20,
            100,
        )?;
        let first_page = page.after.is_none();
        let ((items, next), salt, key_changes) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                Ok((
                    registry.my_audit_page(caller, page.after, page.size)?,
                    registry.my_commitment_salt(caller)?.1,
                    if first_page {
                        registry.key_changes(&caller.public_key)?
                    } else {
                        Vec::new()
                    },
                ))
            })
            .await?;
        let mut entries = Vec::new();
        for item in items {
            let mut uses = Vec::new();
            for record in &item.uses {
                let report = datatrust_core::governance::TrainingReport::parse(&record.report)
                    .map_err(status::invalid)?;
                uses.push(v1::AuditUse {
                    run_id: record.run_id.clone(),
                    model: report.model_id,
                    model_version: report.model_version,
                    log_index: record.log_index,
                    receipt: receipt(&self.state, record.log_index).await?,
                    reported_at: record.reported_at.0,
                });
            }
            entries.push(v1::AuditEntry {
                release_id: item.release.id.clone(),
                license_id: item.license.id.clone(),
                licensee: item.license.licensee.as_bytes().to_vec(),
                purpose: item.license.purpose.clone(),
                model_family: item.license.model_family.clone(),
                categories: item.license.categories.clone(),
                released_at: item.release.created_at.0,
                my_records: item.part.count,
                part_index: item.part_index,
                parts: item.release.parts.len() as u64,
                commitment: item.part.commitment.clone(),
                records_root: item.part.records_root.clone(),
                proof: item.proof.iter().map(|hash| hash.to_vec()).collect(),
                release_root: item.release.root.clone(),
                release_receipt: receipt(&self.state, item.release.log_index).await?,
                uses,
            });
        }
        let mut wire_changes = Vec::new();
        for change in key_changes {
            wire_changes.push(v1::KeyChange {
                receipt: receipt(&self.state, change.log_index).await?,
                kind: change.kind,
                at: change.at.0,
                log_index: change.log_index,
                approved_by: change
                    .approved_by
                    .iter()
                    .map(|trustee| trustee.as_bytes().to_vec())
                    .collect(),
            });
        }
        Ok(Response::new(v1::GetMyAuditResponse {
            entries,
            commitment_salt: salt.to_vec(),
            next_page_token: crate::paging::token(next),
            key_changes: wire_changes,
        }))
    }
}
