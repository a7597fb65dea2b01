//! Runs a parsed command line; turns failures into messages that say what to do next.

mod admin;
mod data;
pub use data::{FetchedRelease, fetch_and_verify};
mod governance;
mod ledger;
mod log;
mod principals;
mod serve;

use anyhow::Context as _;
use tonic::Code;

use crate::client::ClientError;
use crate::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(arguments) => serve::run(*arguments).await,
            Command::Log(command) => log::run(&cli.global, command).await,
            Command::Admin(command) => {
                let json = cli.global.json;
                tokio::task::spawn_blocking(move || admin::run(command, json)).await?
            }
            Command::License(command) => governance::license(&cli.global, command).await,
            Command::Terms(command) => governance::terms(&cli.global, command).await,
            Command::Receipt(command) => log::receipt(&cli.global, command),
            command => principals::run(&cli.global, command).await,
        }
    })
}

/// The whole error chain, with a hint for the gRPC statuses a user can act on.
pub fn describe(error: &anyhow::Error) -> String {
    let status = error.chain().find_map(|cause| {
        cause.downcast_ref::<tonic::Status>().or_else(|| {
            match cause.downcast_ref::<ClientError>() {
                Some(ClientError::Status(status)) => Some(status),
                _ => None,
            }
        })
    });
    let Some(status) = status else {
        return format!("{error:#}");
    };
    let hint = match status.code() {
        Code::Unauthenticated => {
            "\nhint: is --key (or DATATRUST_KEY) a key enrolled on this trust? `datatrust whoami` tells"
        }
        Code::PermissionDenied => {
            "\nhint: this key's role may not do that; `datatrust whoami` shows the role"
        }
        Code::Unavailable => "\nhint: is `datatrust serve` running at --server (DATATRUST_SERVER)?",
        // The message names the field and the reason already; `--help` rarely says more.
        _ => "",
    };
    format!(
        "the trust refused: {} ({:?}){hint}",
        status.message(),
        status.code()
    )
}
