//! Principal key files: signed-note private key text (`PRIVATE+KEY+name+hexid+base64`), the
//! format Go's golang.org/x/mod/sumdb/note reads, in a file only its owner can read.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{Context as _, bail};
use datatrust_core::NoteSigner;

pub fn read(path: &Path) -> anyhow::Result<NoteSigner> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        // A missing key is not always a new principal: for someone enrolled it is their
        // identity, and a new key would be a stranger to the trust.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "the key file {} does not exist. If this key is enrolled on a trust, it is your \
             identity there: restore the file from your backup (a new key is a new principal, \
             which trustees must enrol again). If you are new, create one with \
             `datatrust key generate --out {}`",
            path.display(),
            path.display()
        ),
        Err(error) => {
            return Err(error).with_context(|| format!("reading the key file {}", path.display()));
        }
    };
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "key file is readable by others; chmod 600 it");
    }
    NoteSigner::parse(&text)
        .with_context(|| format!("{} is not a datatrust key file", path.display()))
}

pub fn write_new(path: &Path, signer: &NoteSigner) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} exists already; choose another --out or remove it first",
            path.display()
        );
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(format!("{}\n", signer.to_private_text()).as_bytes())?;
    file.sync_all()?;
    Ok(())
}
