//! A small HTTP GET client for the log's static resources (checkpoint, tiles, bundles).

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub struct LogHttp {
    client: Client<HttpConnector, Empty<Bytes>>,
    prefix: String,
}

impl LogHttp {
    /// `prefix` is the log's URL prefix, e.g. `http://127.0.0.1:8080/log`.
    pub fn new(prefix: &str) -> anyhow::Result<LogHttp> {
        if !prefix.starts_with("http://") {
            bail!("--log-url: only http:// is supported, got {prefix}");
        }
        Ok(LogHttp {
            client: Client::builder(TokioExecutor::new()).build_http(),
            prefix: prefix.trim_end_matches('/').to_owned(),
        })
    }

    /// GETs `<prefix>/<path>`; any status but 200 is an error naming the URL.
    pub async fn get(&self, path: &str) -> anyhow::Result<Bytes> {
        let url = format!("{}/{path}", self.prefix);
        let response = self
            .client
            .get(
                url.parse()
                    .with_context(|| format!("{url} is not a valid URL"))?,
            )
            .await
            .with_context(|| format!("fetching {url}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading {url}"))?
            .to_bytes();
        if !status.is_success() {
            bail!(
                "{url}: HTTP {status}: {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        Ok(body)
    }
}
