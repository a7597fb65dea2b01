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

/// This trustee's signature (the key in --key) over a safety action's message.
pub fn sign_safety_action(
    global: &GlobalArgs,
    session: &SignedIn,
    action: &datatrust_core::safety::SafetyAction,
) -> anyhow::Result<Vec<u8>> {
    let signer = read_key(global)?;
    Ok(signer
        .sign(&datatrust_core::safety::action_message(
            session.origin.as_str(),
            action,
        ))
        .to_vec())
}

/// Says that a safety action waits for more trustees' approvals; false when it was taken.
pub fn report_pending(global: &GlobalArgs, pending: bool, approvals: u32, required: u32) -> bool {
    if pending {
        crate::output::show(
            global.json,
            serde_json::json!({ "pending": true, "approvals": approvals, "approvals_required": required }),
            || {
                println!(
                    "Approved: {approvals} of {required} trustees; another trustee must approve it too (the same command, with their key)."
                );
            },
        );
    }
    pending
}
