//! Machine output. Every `--json` value a command prints goes through [`json`], so that
//! `--get FIELD` can print just one field of it for shell scripts:
//! `LICENSE=$(datatrust trustee approve ... --get id)`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

static FIELD: OnceLock<String> = OnceLock::new();
static PRINTED: AtomicBool = AtomicBool::new(false);

/// Print only `field` of each JSON value from now on (set once, from `--get`).
pub fn select(field: String) {
    let _ = FIELD.set(field);
}

/// Print one JSON value on a line of its own; with `--get`, only its field, once per element
/// of an array (a dotted path reaches inside: `charge.id`; strings without quotes; empty
/// strings and nulls skipped).
pub fn json(value: Value) {
    let Some(field) = FIELD.get() else {
        println!("{value}");
        return;
    };
    let items = match value {
        Value::Array(items) => items,
        value => vec![value],
    };
    for item in items {
        let selected = field
            .split('.')
            .try_fold(&item, |value, name| value.get(name));
        match selected {
            Some(Value::String(text)) if !text.is_empty() => println!("{text}"),
            Some(Value::String(_) | Value::Null) | None => continue,
            Some(other) => println!("{other}"),
        }
        PRINTED.store(true, Ordering::Relaxed);
    }
}

/// Prints a command's result: with `--json`, `value` (or, with `--get`, its field); else the
/// text `text` prints for a person. Every command prints through this (or through `json`
/// alone for what has no text form), so each result has both forms at one place.
pub fn show(json_mode: bool, value: Value, text: impl FnOnce()) {
    if json_mode {
        json(value);
    } else {
        text();
    }
}

/// After a command: `--get` that printed nothing is an error a script must not miss.
pub fn check_selected() -> anyhow::Result<()> {
    match FIELD.get() {
        Some(field) if !PRINTED.load(Ordering::Relaxed) => anyhow::bail!(
            "--get {field}: nothing the command printed has a field `{field}` (run it with --json to see what it prints)"
        ),
        _ => Ok(()),
    }
}
