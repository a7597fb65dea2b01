//! The README's tour, run as written: every `sh` block from "## A short tour" up to
//! "## Configuration", taken from README.md when the test runs, executed top to bottom in one
//! bash with `set -euo pipefail` against a fresh `datatrust serve`, from a directory that
//! holds the checkout's `terms/` and `examples/` as a user's checkout would. The only
//! change: the README's default addresses (127.0.0.1:50051, 127.0.0.1:8080) become the
//! ones this test's server listens on (port 0). So README and behaviour cannot drift apart.

use std::path::Path;
use std::process::Command;

use datatrust_tests::ServerProcess;

/// The shell blocks of the tour, in order.
fn tour_blocks(readme: &str) -> Vec<String> {
    let start = readme
        .find("## A short tour")
        .expect("README.md has a section \"## A short tour\"");
    let end = readme[start..]
        .find("\n## Configuration")
        .map(|offset| start + offset)
        .expect("README.md has a section \"## Configuration\" after the tour");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme[start..end].lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block in the tour");
    blocks
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_tour_runs_as_written() {
    if datatrust_tests::skip_in_postgres_run(
        "the_readme_tour_runs_as_written",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = tour_blocks(&readme);
    assert!(
        blocks.len() >= 4,
        "the tour has its shell blocks ({} found)",
        blocks.len()
    );

    let directory = tempfile::tempdir().unwrap();
    let work = directory.path();
    for shipped in ["terms", "examples"] {
        std::os::unix::fs::symlink(root.join(shipped), work.join(shipped)).unwrap();
    }
    let server = ServerProcess::start(&work.join("datatrust-data"), &[]);
    let grpc_address = server.grpc_url.trim_start_matches("http://").to_owned();
    let script = blocks
        .join("\n")
        .replace("127.0.0.1:50051", &grpc_address)
        .replace("127.0.0.1:8080", &server.http_addr.to_string());
    let binary_directory = datatrust_tests::datatrust_binary()
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        binary_directory.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let work_path = work.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-c", &format!("set -euo pipefail\n{script}")])
            .current_dir(&work_path)
            .env("PATH", path)
            .env("HOME", &work_path)
            .env("XDG_STATE_HOME", work_path.join("state"))
            .env_remove("DATATRUST_KEY")
            .env_remove("DATATRUST_SERVER")
            .env_remove("DATATRUST_CA_CERT")
            .env_remove("DATATRUST_LOG_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the README tour failed ({}).\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );

    // What the tour promises along the way, read from what it printed.
    for promise in [
        "Tomás",
        "Cy Okafor",
        "events stored",
        "2 yes, 0 no",
        "computer-use-agent-training",
        "EUR ",
        "Your data is erased",
        "your key was replaced by trustees",
        "erased",
        "verified",
    ] {
        assert!(
            stdout.contains(promise),
            "the tour's output lacks {promise:?}:\n{stdout}"
        );
    }
    // Stopped, the trust's state is what its log says: every change the tour made
    // (members, consents, collectors, a license issued and revoked, a payment, an erasure).
    server.signal("-TERM");
    let _ = server.wait(std::time::Duration::from_secs(20)).await;
    let check = datatrust_tests::admin_check(&work.join("datatrust-data")).await;
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && report.contains("no difference") && report.contains("1 licenses"),
        "{report}{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
