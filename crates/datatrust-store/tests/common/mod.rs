//! Helpers shared by the store's integration tests.

use std::path::Path;

/// The files under `root` (recursively) that hold `needle` anywhere.
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|window| window == needle)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// The sled database at `path`, opened directly, once a store that had it open lets go:
/// sled releases its file lock from its flusher thread after the last handle is dropped.
pub fn reopen_sled(path: &Path) -> sled::Db {
    let mut attempts = 0;
    loop {
        match sled::open(path) {
            Ok(database) => return database,
            Err(_) if attempts < 100 => {
                attempts += 1;
                // Sleep: waiting for sled's own file lock, released by its flusher thread (spacejam/sled#1289).
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("reopening sled: {error}"),
        }
    }
}
