//! `IngestService` and `MemberDataService`.

use std::pin::Pin;

use datatrust_core::events::EventBatch;
use datatrust_core::telemetry::IngestOutcome;
use datatrust_proto::convert;
use datatrust_proto::v1;
use datatrust_proto::v1::ingest_service_server::IngestService;
use datatrust_proto::v1::member_data_service_server::MemberDataService;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use crate::state::now;
use crate::{TrustState, status};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Export pieces: a few hundred kilobytes each, well under the message limit.
const EXPORT_PIECE_BYTES: usize = 256 * 1024;

pub struct IngestApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    type UploadStream = ResponseStream<v1::UploadResponse>;

    async fn upload(
        &self,
        request: Request<Streaming<v1::UploadRequest>>,
    ) -> Result<Response<Self::UploadStream>, Status> {
        // Authenticate once for the stream; each batch re-checks the principal in the core.
        let session = self.state.session(request.metadata())?;
        let metadata = request.metadata().clone();
        let mut incoming = request.into_inner();
        let state = self.state.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let _ = session;
            while let Some(message) = incoming.next().await {
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

async fn store_batch(
    state: &TrustState,
    metadata: &tonic::metadata::MetadataMap,
    batch: v1::UploadRequest,
) -> Result<v1::UploadResponse, Status> {
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
            registry.ingest(caller, &member, core_batch, now())
        })
        .await?;
    Ok(match outcome {
        IngestOutcome::Stored {
            stored,
            redacted_away,
        } => v1::UploadResponse {
            sequence,
            outcome: "stored".into(),
            stored_events: stored as u32,
            redacted_events: redacted_away as u32,
        },
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
        let counts = self
            .state
            .as_caller(request.metadata(), |registry, caller| {
                registry.my_data_summary(caller)
            })
            .await?;
        Ok(Response::new(v1::GetMyDataSummaryResponse {
            counts: counts
                .into_iter()
                .map(|count| v1::DayCount {
                    day: count.day,
                    category: count.category,
                    count: count.count,
                })
                .collect(),
        }))
    }

    async fn export_my_data(
        &self,
        request: Request<v1::ExportMyDataRequest>,
    ) -> Result<Response<Self::ExportMyDataStream>, Status> {
        let events = self
            .state
            .as_caller(request.metadata(), |registry, caller| {
                registry.export_my_data(caller)
            })
            .await?;
        let mut pieces = Vec::new();
        let mut piece = Vec::new();
        for event in &events {
            serde_json_line(&mut piece, event)?;
            if piece.len() >= EXPORT_PIECE_BYTES {
                pieces.push(Ok(v1::ExportMyDataResponse {
                    json_lines: std::mem::take(&mut piece),
                }));
            }
        }
        if !piece.is_empty() {
            pieces.push(Ok(v1::ExportMyDataResponse { json_lines: piece }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(pieces))))
    }

    async fn erase_my_data(
        &self,
        request: Request<v1::EraseMyDataRequest>,
    ) -> Result<Response<v1::EraseMyDataResponse>, Status> {
        if request.get_ref().confirm != "erase all my data" {
            return Err(Status::invalid_argument(
                "confirm: must be \"erase all my data\"; erasure cannot be undone",
            ));
        }
        let logged = self
            .state
            .as_caller(request.metadata(), |registry, caller| {
                registry.erase_my_data(caller, now())
            })
            .await?;
        Ok(Response::new(v1::EraseMyDataResponse {
            chunks_erased: logged.value,
            log_index: logged.log_index,
        }))
    }
}

fn serde_json_line(out: &mut Vec<u8>, event: &datatrust_core::events::Event) -> Result<(), Status> {
    datatrust_core::events::write_json_line(out, event).map_err(|error| status::internal(&error))
}
