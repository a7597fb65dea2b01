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

/// Every `.rs` file under `directory`, recursively.
fn rust_files(directory: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("node_modules") {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The core decides from what it is given: it reads no clock, draws no randomness and
/// touches no file or network (its tests may).
#[test]
fn the_core_reads_no_clock_randomness_or_files() {
    let forbidden = [
        "SystemTime::now",
        "Instant::now",
        "thread_rng",
        "OsRng",
        "rand::random",
        "std::fs",
        "std::net",
        "std::env::var",
        "tokio::",
    ];
    let mut found = Vec::new();
    for path in rust_files(&workspace_root().join("crates/datatrust-core/src")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let production = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in production.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for pattern in forbidden {
                if line.contains(pattern) {
                    found.push(format!("{}:{}: {pattern}", path.display(), number + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the core reaches outside:\n{}",
        found.join("\n")
    );
}

/// Tests move the trust's clock; they do not sleep for time to pass. A sleep that is not
/// waiting for time (a poll of another process, the moment of a kill) says so in a
/// `// Sleep:` comment just above it.
#[test]
fn tests_do_not_sleep_for_time() {
    let root = workspace_root();
    let mut files = rust_files(&root.join("tests"));
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let tests = entry.unwrap().path().join("tests");
        if tests.is_dir() {
            files.extend(rust_files(&tests));
        }
    }
    let mut unexplained = Vec::new();
    for path in files.into_iter().filter(|path| !path.ends_with("tidy.rs")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (number, line) in lines.iter().enumerate() {
            if !line.contains("sleep(") || line.trim_start().starts_with("//") {
                continue;
            }
            let explained = lines[number.saturating_sub(4)..number]
                .iter()
                .any(|above| above.trim_start().starts_with("// Sleep:"));
            if !explained {
                unexplained.push(format!("{}:{}", path.display(), number + 1));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "sleeps without a `// Sleep:` reason just above:\n{}",
        unexplained.join("\n")
    );
}

/// Every lint exception says why, on its line or the line above.
#[test]
fn every_lint_exception_is_commented() {
    let root = workspace_root();
    let mut files = rust_files(&root.join("crates"));
    files.extend(rust_files(&root.join("tests")));
    let mut bare = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (number, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if !(trimmed.starts_with("#[allow(")
                || trimmed.starts_with("#![allow(")
                || trimmed.starts_with("#[expect("))
            {
                continue;
            }
            let commented = line.contains("//")
                || number
                    .checked_sub(1)
                    .is_some_and(|above| lines[above].trim_start().starts_with("//"));
            if !commented {
                bare.push(format!("{}:{}", path.display(), number + 1));
            }
        }
    }
    assert!(
        bare.is_empty(),
        "lint exceptions without a reason:\n{}",
        bare.join("\n")
    );
}

/// The CLI's command modules import `common` and nothing of each other's: `mod.rs`
/// dispatches each role's commands to them.
#[test]
fn the_cli_command_modules_do_not_import_each_other() {
    let directory = workspace_root().join("crates/datatrust-cli/src/commands");
    let mut crossings = Vec::new();
    for path in rust_files(&directory) {
        if path.ends_with("mod.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("super::") {
                rest = &rest[at + "super::".len()..];
                if !(rest.starts_with("common") || rest.starts_with('*')) {
                    crossings.push(format!(
                        "{}:{}: {}",
                        path.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        crossings.is_empty(),
        "command modules importing each other:\n{}",
        crossings.join("\n")
    );
}

/// Every result a CLI command prints goes through `output::show`, which prints the JSON
/// value with `--json` and the text otherwise: no command picks between its own two forms.
#[test]
fn cli_commands_print_their_results_through_one_helper() {
    let directory = workspace_root().join("crates/datatrust-cli/src/commands");
    let mut bypasses = Vec::new();
    for path in rust_files(&directory) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            if line.contains("output::json(") || line.contains("if global.json {") {
                bypasses.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        bypasses.is_empty(),
        "results printed around output::show:\n{}",
        bypasses.join("\n")
    );
}
