//! `LogService`: the transparency log over gRPC, for anyone. Reads run on blocking threads:
//! they touch storage and may hash a tile.

use datatrust_proto::v1::log_service_server::LogService;
use datatrust_proto::v1::{
    GetCheckpointRequest, GetCheckpointResponse, GetConsistencyProofRequest,
    GetConsistencyProofResponse, GetEntriesRequest, GetEntriesResponse, GetInclusionProofRequest,
    GetInclusionProofResponse, GetReceiptRequest, GetReceiptResponse, get_inclusion_proof_request,
};
use datatrust_tlog::receipt::Receipt;
use datatrust_tlog::{LogReader, ReadError, leaf_hash};
use std::sync::Arc;
use tonic::{Request, Response, Status};

use crate::{TrustState, status};

pub struct LogApi {
    pub state: TrustState,
}

impl LogApi {
    async fn read<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&LogReader) -> Result<T, ReadError> + Send + 'static,
    ) -> Result<T, Status> {
        let reader = Arc::clone(self.state.log_reader());
        tokio::task::spawn_blocking(move || operation(&reader))
            .await
            .map_err(|error| status::internal(&error))?
            .map_err(status::from_read)
    }
}

#[tonic::async_trait]
impl LogService for LogApi {
    async fn get_checkpoint(
        &self,
        _request: Request<GetCheckpointRequest>,
    ) -> Result<Response<GetCheckpointResponse>, Status> {
        let latest = self.state.log_reader().latest();
        Ok(Response::new(GetCheckpointResponse {
            checkpoint: latest.note.clone(),
            tree_size: latest.checkpoint.size,
            root_hash: latest.checkpoint.root.to_vec(),
        }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<GetInclusionProofRequest>,
    ) -> Result<Response<GetInclusionProofResponse>, Status> {
        let request = request.into_inner();
        let leaf = request
            .leaf
            .ok_or_else(|| Status::invalid_argument("leaf: give an index or a leaf_hash"))?;
        let leaf_hash = match &leaf {
            get_inclusion_proof_request::Leaf::LeafHash(bytes) => Some(
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| Status::invalid_argument("leaf_hash: must be 32 bytes"))?,
            ),
            get_inclusion_proof_request::Leaf::Index(_) => None,
        };
        let requested_size = request.tree_size;
        let (index, size, proof, checkpoint) = self
            .read(move |reader| {
                let latest = reader.latest();
                let size = if requested_size == 0 {
                    latest.checkpoint.size
                } else {
                    requested_size
                };
                let index = match (leaf, leaf_hash) {
                    (get_inclusion_proof_request::Leaf::Index(index), _) => index,
                    (_, Some(hash)) => reader.leaf_index(&hash)?.ok_or_else(|| {
                        ReadError::OutOfRange("leaf_hash: no entry with this leaf hash".into())
                    })?,
                    _ => unreachable!("a leaf hash was decoded above"),
                };
                let proof = reader.inclusion_proof(index, size)?;
                let checkpoint = if size == latest.checkpoint.size {
                    latest.note.clone()
                } else {
                    String::new()
                };
                Ok((index, size, proof, checkpoint))
            })
            .await?;
        Ok(Response::new(GetInclusionProofResponse {
            index,
            tree_size: size,
            proof: proof.iter().map(|hash| hash.to_vec()).collect(),
            checkpoint,
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        let request = request.into_inner();
        if request.first_size == 0 {
            return Err(Status::invalid_argument(
                "first_size: must be at least 1; every tree is consistent with the empty one",
            ));
        }
        let (first, second, proof, checkpoint) = self
            .read(move |reader| {
                let latest = reader.latest();
                let second = if request.second_size == 0 {
                    latest.checkpoint.size
                } else {
                    request.second_size
                };
                let proof = reader.consistency_proof(request.first_size, second)?;
                let checkpoint = if second == latest.checkpoint.size {
                    latest.note.clone()
                } else {
                    String::new()
                };
                Ok((request.first_size, second, proof, checkpoint))
            })
            .await?;
        Ok(Response::new(GetConsistencyProofResponse {
            first_size: first,
            second_size: second,
            proof: proof.iter().map(|hash| hash.to_vec()).collect(),
            checkpoint,
        }))
    }

    async fn get_entries(
        &self,
        request: Request<GetEntriesRequest>,
    ) -> Result<Response<GetEntriesResponse>, Status> {
        let request = request.into_inner();
        let entries = self
            .read(move |reader| reader.entries(request.start, request.end))
            .await?;
        Ok(Response::new(GetEntriesResponse { entries }))
    }

    async fn get_receipt(
        &self,
        request: Request<GetReceiptRequest>,
    ) -> Result<Response<GetReceiptResponse>, Status> {
        let index = request.into_inner().index;
        let receipt = self.read(move |reader| receipt_for(reader, index)).await?;
        Ok(Response::new(GetReceiptResponse { receipt }))
    }
}

/// The .tlog-proof receipt for entry `index` against the latest checkpoint.
pub(crate) fn receipt_for(reader: &LogReader, index: u64) -> Result<String, ReadError> {
    let latest = reader.latest_covering(index + 1)?;
    let size = latest.checkpoint.size;
    if index >= size {
        return Err(ReadError::OutOfRange(format!(
            "index {index} is beyond the log ({size} entries)"
        )));
    }
    let entry = reader.entries(index, index + 1)?.remove(0);
    let proof = reader.inclusion_proof(index, size)?;
    debug_assert!(
        datatrust_tlog::proof::verify_inclusion(
            index,
            size,
            &leaf_hash(&entry),
            &proof,
            &latest.checkpoint.root
        )
        .is_ok()
    );
    Ok(Receipt {
        entry: Some(entry),
        index,
        proof,
        checkpoint_note: latest.note.clone(),
    }
    .to_text())
}
