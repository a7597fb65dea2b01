//! Free space on the database's disk, asked of the filesystem (statvfs, about a
//! microsecond) before every write: below the reserve, writes are refused before they start (`StoreError::disk_full`, RESOURCE_EXHAUSTED to callers) instead of
//! failing inside sled, which after a failed write keeps failing until a restart. Erasures
//! are let through (they free space, and a member's erasure must not wait). Once space
//! returns, writes resume with no restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use datatrust_core::store::StoreError;

/// The reserve `serve` keeps when the operator sets none: room for sled to flush what it
/// holds.
pub const DEFAULT_MINIMUM_FREE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug)]
pub(crate) struct DiskSpace {
    path: PathBuf,
    minimum_free: AtomicU64,
    low: AtomicBool,
}

impl DiskSpace {
    /// Free space of the filesystem holding `path`, asked of it on each check.
    pub(crate) fn new(path: PathBuf) -> Arc<DiskSpace> {
        Arc::new(DiskSpace {
            path,
            // No reserve until the server sets one (`set_minimum_free`): opening and
            // creating a trust write little, and must not fail on a small disk.
            minimum_free: AtomicU64::new(0),
            low: AtomicBool::new(false),
        })
    }

    /// Asks the filesystem; true when less than the reserve is free. Logs each change.
    fn check(&self) -> bool {
        let Ok(stats) = rustix::fs::statvfs(&self.path) else {
            return self.low.load(Ordering::Relaxed);
        };
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        let low = free < self.minimum_free.load(Ordering::Relaxed);
        if self.low.swap(low, Ordering::Relaxed) != low {
            if low {
                tracing::error!(free_bytes = free, path = %self.path.display(), "the disk is nearly full: writes are refused until space is freed");
            } else {
                tracing::info!(free_bytes = free, "disk space is back: writes resume");
            }
        }
        low
    }

    pub(crate) fn set_minimum_free(&self, bytes: u64) {
        self.minimum_free.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn is_low(&self) -> bool {
        self.check()
    }

    /// Refuses a write while the disk is nearly full.
    pub(crate) fn check_write(&self) -> Result<(), StoreError> {
        if self.is_low() {
            return Err(StoreError::disk_full(format!(
                "less than {} MiB free on the disk of {}",
                self.minimum_free.load(Ordering::Relaxed) / (1024 * 1024),
                self.path.display()
            )));
        }
        Ok(())
    }
}
