//! The binary's offline behaviour: key files, and errors that say what to do next.
//! (Its presence also makes cargo build the `datatrust` binary the end-to-end tests run.)

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

fn datatrust() -> Command {
    Command::new(env!("CARGO_BIN_EXE_datatrust"))
}

#[test]
fn key_generate_writes_a_private_file_and_refuses_to_overwrite() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("me.key");
    let output = datatrust()
        .args(["key", "generate", "--json", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let shown = datatrust()
        .args(["key", "show", "--json", "--key"])
        .arg(&path)
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(printed["public_key"], shown["public_key"]);

    let again = datatrust()
        .args(["key", "generate", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}

#[test]
fn client_errors_say_what_to_do_and_exit_non_zero() {
    let no_key = datatrust()
        .args(["whoami"])
        .env_remove("DATATRUST_KEY")
        .output()
        .unwrap();
    assert_eq!(no_key.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&no_key.stderr).contains("pass --key FILE or set DATATRUST_KEY")
    );

    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("me.key");
    assert!(
        datatrust()
            .args(["key", "generate", "--out"])
            .arg(&path)
            .output()
            .unwrap()
            .status
            .success()
    );
    // Port 9 on loopback: nothing listens there.
    let unreachable = datatrust()
        .args(["whoami", "--server", "http://127.0.0.1:9", "--key"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        stderr.contains("is `datatrust serve` running there"),
        "{stderr}"
    );

    let bad_role = datatrust()
        .args([
            "trustee",
            "list",
            "--role",
            "boss",
            "--server",
            "http://127.0.0.1:9",
            "--key",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!bad_role.status.success());
}

#[test]
fn a_ballot_must_say_yes_or_no() {
    for arguments in [
        &["member", "vote", "--terms", "00"][..],
        &["member", "vote", "--terms", "00", "--yes", "--no"][..],
    ] {
        let output = datatrust()
            .args(arguments)
            .env("DATATRUST_KEY", "/nonexistent")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{arguments:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--yes") && stderr.contains("--no"),
            "{arguments:?}: {stderr}"
        );
    }
}

#[test]
fn times_take_dates_and_say_what_they_take() {
    let output = datatrust()
        .args([
            "company",
            "request-license",
            "--purpose",
            "p",
            "--categories",
            "pointer",
            "--data-from",
            "yesterday",
            "--data-to",
            "2026-09-01",
            "--model-family",
            "m",
            "--runs",
            "1",
            "--days",
            "1",
        ])
        .env("DATATRUST_KEY", "/nonexistent")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--data-from") && stderr.contains("a date (2026-09-01)"),
        "{stderr}"
    );
}

#[test]
fn a_missing_key_file_is_not_answered_with_make_a_new_one_alone() {
    let output = datatrust()
        .args([
            "whoami",
            "--key",
            "/nonexistent/trustee.key",
            "--server",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("restore the file from your backup")
            && stderr.contains("a new key is a new principal"),
        "{stderr}"
    );
}

/// `--get FIELD` prints just that field of the `--json` output, for scripts; a field the
/// output does not have is an error (exit 1), so a script stops there instead of going on
/// with an empty variable.
#[test]
fn get_prints_one_field_and_refuses_an_absent_one() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("me.key");
    let generated = datatrust()
        .args(["key", "generate", "--get", "public_key", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(generated.status.success());
    let key = String::from_utf8(generated.stdout).unwrap();
    assert_eq!(key.trim().len(), 44, "just the base64 key: {key:?}");
    let shown = datatrust()
        .args(["key", "show", "--json", "--key"])
        .arg(&path)
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["public_key"], key.trim());

    let absent = datatrust()
        .args(["key", "show", "--get", "no_such_field", "--key"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!absent.status.success());
    assert!(
        String::from_utf8_lossy(&absent.stderr)
            .contains("--get no_such_field: nothing the command printed has a field"),
        "{}",
        String::from_utf8_lossy(&absent.stderr)
    );
}
