//! `TrustService`: the trust's public identity, for anyone to pin.

use datatrust_proto::v1::trust_service_server::TrustService;
use datatrust_proto::v1::{GetTrustInfoRequest, GetTrustInfoResponse};
use tonic::{Request, Response, Status};

use crate::TrustState;

pub struct TrustApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl TrustService for TrustApi {
    async fn get_trust_info(
        &self,
        _request: Request<GetTrustInfoRequest>,
    ) -> Result<Response<GetTrustInfoResponse>, Status> {
        let first = self.state.license_signer().verifier().to_text();
        let rotations = self
            .state
            .blocking(|registry| registry.license_keys())
            .await?;
        let mut license_keys = vec![datatrust_proto::v1::LicenseKey {
            generation: 0,
            vkey: first,
            valid_from: 0,
            valid_until: 0,
            log_index: 0,
        }];
        for rotation in rotations {
            if let Some(previous) = license_keys.last_mut() {
                previous.valid_until = rotation.valid_from.0;
            }
            license_keys.push(datatrust_proto::v1::LicenseKey {
                generation: rotation.generation,
                vkey: rotation.vkey,
                valid_from: rotation.valid_from.0,
                valid_until: 0,
                log_index: rotation.log_index,
            });
        }
        Ok(Response::new(GetTrustInfoResponse {
            origin: self.state.origin().to_string(),
            log_vkey: self.state.log_signer().verifier().to_text(),
            license_vkey: license_keys
                .last()
                .map(|key| key.vkey.clone())
                .unwrap_or_default(),
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            log_url: self.state.log_url().unwrap_or_default().to_owned(),
            license_keys,
        }))
    }

    async fn rotate_license_key(
        &self,
        request: Request<datatrust_proto::v1::RotateLicenseKeyRequest>,
    ) -> Result<Response<datatrust_proto::v1::RotateLicenseKeyResponse>, Status> {
        let now = self.state.clock().now();
        let state = self.state.clone();
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                state.rotate_license_key(registry, caller, now)
            })
            .await?;
        let record = logged.value;
        tracing::warn!(generation = record.generation, vkey = %record.vkey, "license key rotated");
        Ok(Response::new(
            datatrust_proto::v1::RotateLicenseKeyResponse {
                license_key: Some(datatrust_proto::v1::LicenseKey {
                    generation: record.generation,
                    vkey: record.vkey,
                    valid_from: record.valid_from.0,
                    valid_until: 0,
                    log_index: record.log_index,
                }),
            },
        ))
    }

    async fn backup(
        &self,
        request: Request<datatrust_proto::v1::BackupRequest>,
    ) -> Result<Response<datatrust_proto::v1::BackupResponse>, Status> {
        self.state
            .as_caller(request.metadata(), |_, caller| {
                datatrust_core::registry::require_role(
                    caller,
                    datatrust_core::Role::Trustee,
                    "back up the trust",
                )
            })
            .await?;
        let (data, keys, latest) = self.state.backup().await?;
        Ok(Response::new(datatrust_proto::v1::BackupResponse {
            data_path: data.display().to_string(),
            keys_path: keys.display().to_string(),
            checkpoint: latest.note.clone(),
            log_size: latest.checkpoint.size,
        }))
    }

    async fn get_transparency_report(
        &self,
        _request: Request<datatrust_proto::v1::GetTransparencyReportRequest>,
    ) -> Result<Response<datatrust_proto::v1::GetTransparencyReportResponse>, Status> {
        let now = self.state.clock().now();
        use datatrust_proto::v1;
        // Public and read by anyone: computed at most once every REPORT_CACHE while the log
        // does not grow (every change the report shows is logged), so a stranger asking for
        // it in a loop costs the trust a copy, not a scan of its records.
        let log_size = self.state.log_reader().size();
        if let Some((at, size, cached)) = self
            .state
            .transparency_report_cache()
            .lock()
            .expect("report cache poisoned")
            .as_ref()
            && *size == log_size
            && at.elapsed() < REPORT_CACHE
        {
            return Ok(Response::new(cached.clone()));
        }
        let report = self
            .state
            .blocking(move |registry| registry.transparency_report(now))
            .await?;
        let latest = self.state.log_reader().latest();
        let terms = report.active_terms.as_ref();
        let response = v1::GetTransparencyReportResponse {
            terms_title: terms.map(|record| record.terms().title),
            terms_sha256: terms.map(|record| record.hash.clone()),
            terms_version: terms.map(|record| record.version),
            terms_ratified_at: terms.and_then(|record| record.ratified_at.map(|at| at.0)),
            licenses: report
                .licenses
                .iter()
                .map(|license| v1::PublicLicense {
                    id: license.id.clone(),
                    licensee: license.licensee.as_bytes().to_vec(),
                    licensee_name: license.licensee_name.clone(),
                    purpose: license.purpose.clone(),
                    categories: license.categories.clone(),
                    model_family: license.model_family.clone(),
                    not_before: license.not_before.0,
                    expires: license.expires.0,
                    status: license.status.to_owned(),
                })
                .collect(),
            training_uses_per_month: report
                .uses_per_month
                .iter()
                .map(|(month, count)| v1::MonthCount {
                    month: month.clone(),
                    count: *count,
                })
                .collect(),
            money: report
                .money
                .iter()
                .map(|(currency, money)| v1::PublicMoney {
                    currency: currency.clone(),
                    charged: money.charged,
                    members_earned: money.members_earned,
                    paid_to_members: money.paid_to_members,
                })
                .collect(),
            log_size: latest.checkpoint.size,
            checkpoint: latest.note.clone(),
        };
        *self
            .state
            .transparency_report_cache()
            .lock()
            .expect("report cache poisoned") =
            Some((std::time::Instant::now(), log_size, response.clone()));
        Ok(Response::new(response))
    }
}

/// How long a computed transparency report is served before it is computed again.
const REPORT_CACHE: std::time::Duration = std::time::Duration::from_secs(10);
