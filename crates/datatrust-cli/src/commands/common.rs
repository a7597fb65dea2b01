//! What every role's commands share: the key, the connection, signing in, and keys as text.
//! It imports no command module, so the command modules import none of each other.

use anyhow::anyhow;
use datatrust_core::{NoteSigner, PublicKey};
use tonic::transport::Channel;

use crate::client::{self, SignedIn};
use crate::{GlobalArgs, key_file};

/// The principal's key from --key (or DATATRUST_KEY).
pub fn read_key(global: &GlobalArgs) -> anyhow::Result<NoteSigner> {
    let path = global.key.as_deref().ok_or_else(|| {
        anyhow!("no key given: pass --key FILE or set DATATRUST_KEY (create one with `datatrust key generate`)")
    })?;
    key_file::read(path)
}

pub async fn connect(global: &GlobalArgs) -> anyhow::Result<Channel> {
    Ok(client::connect(&global.server, global.ca_cert.as_deref()).await?)
}

pub async fn sign_in(global: &GlobalArgs) -> anyhow::Result<SignedIn> {
    let signer = read_key(global)?;
    let channel = connect(global).await?;
    Ok(client::sign_in(&channel, &signer).await?)
}

/// A base64 public key from a flag, or an error naming the flag.
pub fn parse_key(text: &str, flag: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_base64(text, flag).map_err(|error| anyhow!("{flag}: {}", error.reason))
}

/// A key from the wire as base64 text.
pub fn key_text(bytes: &[u8]) -> String {
    PublicKey::from_slice(bytes, "key")
        .map(|key| key.to_base64())
        .unwrap_or_else(|_| "(invalid key)".into())
}
