//! Runs a parsed command line; turns failures into messages that say what to do next.

mod admin;
mod common;
mod data;
pub use data::{FetchedRelease, fetch_and_verify};
mod governance;
mod ledger;
mod log;
mod principals;
mod serve;

use anyhow::Context as _;
use tonic::Code;

use self::common::sign_in;
use crate::client::ClientError;
use crate::{
    Cli, CollectorCommand, Command, CompanyCommand, MemberCommand, TrustCommand, TrusteeCommand,
};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(dispatch(cli))
}

/// Each command to the module of its role and area. The modules import `common`, never
/// each other.
async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Serve(arguments) => serve::run(*arguments).await,
        Command::Admin(crate::AdminCommand::Backup {
            key,
            server,
            ca_cert,
        }) => admin::backup(&key, &server, ca_cert.as_deref(), global.json).await,
        Command::Admin(command) => {
            let json = global.json;
            tokio::task::spawn_blocking(move || admin::run(command, json)).await?
        }
        Command::Key(crate::KeyCommand::Rotate { new_key }) => {
            principals::rotate_key(global, &new_key).await
        }
        Command::Key(command) => principals::key(global, command),
        Command::Trust(TrustCommand::Info { data_dir }) => {
            principals::trust_info(global, data_dir.as_deref()).await
        }
        Command::Whoami => principals::whoami(global).await,
        Command::Login { print_token } => principals::login(global, print_token).await,
        Command::Log(command) => log::run(global, command).await,
        Command::Receipt(command) => log::receipt(global, command),
        Command::License(command) => governance::license(global, command).await,
        Command::Terms(command) => governance::terms(global, command).await,
        Command::Trustee(TrusteeCommand::Principals(command)) => {
            principals::trustee(global, command).await
        }
        Command::Trustee(TrusteeCommand::Governance(command)) => {
            governance::trustee(global, &sign_in(global).await?, command).await
        }
        Command::Trustee(TrusteeCommand::Ledger(command)) => {
            ledger::trustee(global, &sign_in(global).await?, command).await
        }
        Command::Member(MemberCommand::Principals(command)) => {
            principals::member(global, command).await
        }
        Command::Member(MemberCommand::Governance(command)) => {
            governance::member(global, &sign_in(global).await?, command).await
        }
        Command::Member(MemberCommand::Data(command)) => {
            data::member(global, &sign_in(global).await?, command).await
        }
        Command::Member(MemberCommand::Ledger(command)) => {
            ledger::member(global, &sign_in(global).await?, command).await
        }
        Command::Company(CompanyCommand::Principals(command)) => {
            principals::company(global, command).await
        }
        Command::Company(CompanyCommand::Governance(command)) => {
            governance::company(global, &sign_in(global).await?, command).await
        }
        Command::Company(CompanyCommand::Ledger(command)) => {
            ledger::company(global, &sign_in(global).await?, command).await
        }
        Command::Company(CompanyCommand::Data(command)) => {
            data::company(global, &sign_in(global).await?, command).await
        }
        Command::Collector(CollectorCommand::Members) => {
            principals::collector_members(global).await
        }
        Command::Collector(CollectorCommand::Upload(arguments)) => {
            data::collector_upload(global, &sign_in(global).await?, arguments).await
        }
    }
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
