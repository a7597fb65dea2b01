//! Architecture invariants that a test can check (ARCHITECTURE.md, "Invariants").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The core is the domain only, and the log crate is pure too: no async runtime, no wire
/// protocol, no storage engine, not even transitively.
#[test]
fn the_core_and_the_log_depend_on_no_runtime_wire_or_storage_crate() {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&lock).unwrap();
    let mut dependencies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in lock["package"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap().to_owned();
        let names: Vec<String> = package
            .get("dependencies")
            .and_then(|value| value.as_array())
            .map(|list| {
                list.iter()
                    .map(|entry| {
                        entry
                            .as_str()
                            .unwrap()
                            .split(' ')
                            .next()
                            .unwrap()
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        dependencies.entry(name).or_default().extend(names);
    }
    for crate_name in ["datatrust-core", "datatrust-tlog"] {
        let mut reachable = BTreeSet::new();
        let mut pending = vec![crate_name.to_owned()];
        while let Some(name) = pending.pop() {
            if reachable.insert(name.clone()) {
                pending.extend(dependencies.get(&name).cloned().unwrap_or_default());
            }
        }
        for forbidden in ["tokio", "tonic", "prost", "sled", "hyper", "axum"] {
            assert!(
                !reachable.contains(forbidden),
                "{crate_name} reaches {forbidden}; it must stay free of runtime, wire and storage crates"
            );
        }
        // The check itself must see the graph: both depend on ed25519-dalek.
        assert!(
            reachable.contains("ed25519-dalek"),
            "{crate_name}: dependency graph not read"
        );
    }
}
/// Only the server crate (and the binary and tests that start it) know gRPC.
#[test]
fn only_the_server_cli_and_proto_crates_depend_on_tonic() {
    for crate_name in ["datatrust-core", "datatrust-store"] {
        let manifest = std::fs::read_to_string(
            workspace_root()
                .join("crates")
                .join(crate_name)
                .join("Cargo.toml"),
        )
        .unwrap();
        let manifest: toml::Value = toml::from_str(&manifest).unwrap();
        let dependencies = manifest["dependencies"].as_table().unwrap();
        for wire in [
            "tonic",
            "prost",
            "axum",
            "datatrust-proto",
            "datatrust-server",
        ] {
            assert!(
                !dependencies.contains_key(wire),
                "{crate_name} depends on {wire}"
            );
        }
    }
}

/// Every Rust file opens with a `//!` line saying what it is for.
#[test]
fn every_rust_file_says_what_it_is_for() {
    let mut missing = Vec::new();
    let mut checked = 0;
    let mut pending = vec![
        workspace_root().join("crates"),
        workspace_root().join("tests"),
    ];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                checked += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                if !text.starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    assert!(checked > 20, "found only {checked} Rust files");
    assert!(
        missing.is_empty(),
        "files without a //! line:\n{}",
        missing.join("\n")
    );
}
