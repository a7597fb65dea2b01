//! Progress on long work (uploading a file, waiting for a release build, fetching a
//! release, `log verify --full`): a bar on stderr when stderr is a terminal, nothing
//! otherwise or with `--json`, so scripts and their logs see only the results.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar for `what`, of `total` steps (`None`: not known yet), hidden unless stderr is a
/// terminal and the output is not JSON.
pub fn bar(what: &str, total: Option<u64>, json: bool) -> ProgressBar {
    let visible = !json && std::io::stderr().is_terminal();
    bar_to(what, total, visible)
}

fn bar_to(what: &str, total: Option<u64>, visible: bool) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(total, target);
    let style = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({eta})",
    )
    .expect("a valid template");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_with_json_even_on_a_terminal() {
        assert!(bar("uploading", Some(10), true).is_hidden());
        assert!(bar_to("uploading", Some(10), false).is_hidden());
    }
}
