//! The `datatrust` command line: `serve` runs the trust; the other subcommands are clients,
//! one group per role, each signing in with the principal's own key.

pub mod client;
mod commands;
mod config;
pub mod http;
mod human;
mod output;
mod progress;

/// Client-side checks the end-to-end tests reuse, so they verify exactly as the CLI does.
pub mod commands_for_tests {
    pub use crate::commands::{FetchedRelease, fetch_and_verify};
}
mod key_file;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use config::{LogFormat, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "datatrust",
    version,
    about = "A data trust for workers' telemetry, administered by their union"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every client subcommand understands.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The principal's private key file (from `datatrust key generate`).
    #[arg(long, global = true, env = "DATATRUST_KEY")]
    pub key: Option<PathBuf>,
    /// The trust's gRPC address.
    #[arg(
        long,
        global = true,
        env = "DATATRUST_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// A PEM CA certificate to trust for an https:// server (a private CA).
    #[arg(long, global = true, env = "DATATRUST_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only this field of the --json output (implies --json), for scripts:
    /// `LICENSE=$(datatrust trustee approve --request R --get id)`.
    #[arg(long, global = true, value_name = "FIELD")]
    pub get: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the trust: gRPC on --grpc-addr, HTTP on --http-addr, data in --data-dir.
    #[command(args = hidden_client_flags(&[("key", "key"), ("server", "server"), ("ca_cert", "ca-cert"), ("json", "json"), ("get", "get")]))]
    Serve(Box<ServeArgs>),
    /// Create and inspect principal keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The trust's public identity.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Show who the key in --key is on this trust.
    Whoami,
    /// Sign in with --key; with --print-token, print only the bearer token, for generic gRPC
    /// tools: grpcurl -H "authorization: Bearer $(datatrust login --print-token)" ...
    Login {
        /// Print the bearer token (valid 15 minutes) and nothing else.
        #[arg(long)]
        print_token: bool,
    },
    /// Administer the trust (trustee keys).
    #[command(subcommand)]
    Trustee(TrusteeCommand),
    /// A member's own settings (member keys).
    #[command(subcommand)]
    Member(MemberCommand),
    /// A licensee's view (company keys).
    #[command(subcommand)]
    Company(CompanyCommand),
    /// A telemetry collector's view (collector keys).
    #[command(subcommand)]
    Collector(CollectorCommand),
    /// Operate a trust's data directory (the server stopped).
    #[command(subcommand)]
    #[command(args = hidden_client_flags(&[("key", "key"), ("server", "server"), ("ca_cert", "ca-cert"), ("get", "get")]))]
    Admin(AdminCommand),
    /// Check the transparency log without trusting the server.
    #[command(subcommand)]
    Log(LogCommand),
    /// Check receipts (c2sp.org/tlog-proof files) offline.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Check licenses offline, and against the log.
    #[command(subcommand)]
    License(LicenseCommand),
    /// The collective agreement: the terms in force and their history (no key needed).
    #[command(subcommand)]
    Terms(TermsCommand),
}

/// `serve` takes no client flags: arguments of theirs under the global flags' ids,
/// hidden, keep clap from copying the global flags into their `--help` (and ignore them).
fn hidden_client_flags(flags: &'static [(&'static str, &'static str)]) -> Vec<clap::Arg> {
    flags
        .iter()
        .map(|(id, long)| clap::Arg::new(*id).long(*long).hide(true).num_args(0..=1))
        .collect()
}

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Verify a license note: its signature and validity window offline; with --log-vkey,
    /// also that its issuance is in the log and no revocation is, from entries checked
    /// against a signed checkpoint.
    Verify {
        /// The license file (a signed note).
        file: PathBuf,
        /// The trust's license verifier key; repeat it with each key `trust info` lists, and
        /// the license verifies under the one that signed it (with --log-vkey, only if that
        /// key signed licenses when it was issued).
        #[arg(long, required = true)]
        license_vkey: Vec<String>,
        /// The trust's log verifier key: check the log too (needs --server).
        #[arg(long)]
        log_vkey: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TermsCommand {
    /// Print the terms in force.
    Show,
    /// List every version with its status and tally.
    History,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a trust's data directory (its keys, its identity and the first trustee's key)
    /// without serving it: the seed that every node of a trust on PostgreSQL starts from a
    /// copy of (README, "Running on several machines"). Does nothing to a directory that
    /// already holds a trust.
    Init {
        /// Where to create it.
        #[arg(long, default_value = "./datatrust-data")]
        data_dir: PathBuf,
        /// The trust's public name (its log key's name); it cannot change afterwards.
        #[arg(long, env = "DATATRUST_ORIGIN")]
        origin: Option<String>,
        /// For a trust succeeding a log whose key was compromised: that log's final
        /// checkpoint (the last one independent monitors saw, a `log verify --state` file),
        /// which the new log's first entry records. Needs --predecessor-vkey.
        #[arg(long, requires = "predecessor_vkey")]
        predecessor_checkpoint: Option<PathBuf>,
        /// The compromised log's verifier key: the checkpoint must verify under it.
        #[arg(long)]
        predecessor_vkey: Option<String>,
    },
    /// Move a stopped trust between the data directory's embedded store and PostgreSQL
    /// (every node stopped): the log (same checkpoint), the state and members' telemetry
    /// (copied sealed), into an empty store; then check the copy (the log replayed against
    /// it without a difference, the same counts on both sides). The source is left as it
    /// was.
    Migrate {
        /// The trust's data directory: its keys, and its embedded store.
        #[arg(long, default_value = "./datatrust-data")]
        data_dir: PathBuf,
        /// Copy the embedded store's trust into this PostgreSQL (an empty schema).
        #[arg(long)]
        to_database: Option<String>,
        /// Copy this PostgreSQL's trust into the embedded store (which must hold no log).
        #[arg(long)]
        from_database: Option<String>,
        /// The PostgreSQL schema.
        #[arg(long, env = "DATATRUST_DATABASE_SCHEMA", default_value = "datatrust")]
        database_schema: String,
    },
    /// Have the running trust write a consistent copy of itself (the embedded store; every
    /// write waits meanwhile) under its `serve --backup-dir`: the data, and the trust's key
    /// files in a directory apart. Keep the keys away from the data (another medium, another
    /// place): whoever holds both reads every member's data and signs as the trust. A
    /// trustee's key. On PostgreSQL use the database's own tools (README, "Backups").
    Backup {
        /// A trustee's private key file.
        #[arg(long, env = "DATATRUST_KEY")]
        key: PathBuf,
        /// The trust's gRPC address.
        #[arg(
            long,
            env = "DATATRUST_SERVER",
            default_value = "http://127.0.0.1:50051"
        )]
        server: String,
        /// A PEM CA certificate to trust for an https:// server (a private CA).
        #[arg(long, env = "DATATRUST_CA_CERT")]
        ca_cert: Option<PathBuf>,
    },
    /// Rebuild a trust from a backup into a new data directory, then check it: the log
    /// recomputed in full against its signed checkpoint, refused if it is older than (or
    /// forks) a checkpoint you have seen; erasures journaled after the backup point are done
    /// again, so an erased member stays erased. Serve the directory afterwards.
    Restore {
        /// The backup's data directory (`<origin>-<time>` under the backup directory).
        #[arg(long)]
        from: PathBuf,
        /// The backup's key directory [default: the data directory's path with `-keys`]
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Where to rebuild the trust: a new or empty directory.
        #[arg(long, default_value = "./datatrust-data")]
        data_dir: PathBuf,
        /// A checkpoint seen before (a `log verify --state` file; repeatable): a backup whose
        /// log is older or differs is refused, and the directory left unservable.
        #[arg(long)]
        seen_checkpoint: Vec<PathBuf>,
        /// The journal of erasures [default: `erasures` beside the backup].
        #[arg(long)]
        erasures: Option<PathBuf>,
    },
    /// Replay the log against the stored state and report every difference: each logged
    /// change applied, each applied change logged (principals, consents, collector
    /// authorisations, payments, licenses, terms). Exits 1 when there is one. The server must
    /// be stopped (on PostgreSQL: every node).
    Check {
        /// The trust's data directory.
        #[arg(long, default_value = "./datatrust-data")]
        data_dir: PathBuf,
        /// The trust's PostgreSQL database, when it is served with `serve --database`.
        #[arg(long, env = "DATATRUST_DATABASE")]
        database: Option<String>,
        /// The PostgreSQL schema that holds the trust.
        #[arg(long, env = "DATATRUST_DATABASE_SCHEMA", default_value = "datatrust")]
        database_schema: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Monitor the log: check the latest checkpoint's signature and its consistency with the
    /// last checkpoint seen (kept in --state); with --full, recompute the whole tree.
    Verify {
        /// The log's verifier key (from `datatrust trust info`).
        #[arg(long)]
        vkey: String,
        /// Where the last checkpoint seen is kept [default: ~/.local/state/datatrust/<origin>.checkpoint]
        #[arg(long)]
        state: Option<PathBuf>,
        /// Also fetch every tile and entry bundle and recompute the tree.
        #[arg(long)]
        full: bool,
        /// The log's HTTP prefix, for --full (e.g. http://127.0.0.1:8080/log).
        #[arg(long, env = "DATATRUST_LOG_URL")]
        log_url: Option<String>,
    },
    /// Fetch a receipt (.tlog-proof) for one entry, against the latest checkpoint.
    Receipt {
        #[arg(long)]
        index: u64,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the consistency proof between two tree sizes, one base64 hash a line.
    Consistency {
        #[arg(long)]
        first: u64,
        /// Defaults to the latest size.
        #[arg(long, default_value_t = 0)]
        second: u64,
    },
    /// Print entries [start, end) as text.
    Entries {
        #[arg(long)]
        start: u64,
        #[arg(long)]
        end: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Verify a receipt offline: the checkpoint's signature and the entry's inclusion.
    Verify {
        /// The .tlog-proof file.
        file: PathBuf,
        /// The log's verifier key.
        #[arg(long)]
        vkey: String,
        /// The entry the receipt should prove, if not only the one inside it.
        #[arg(long)]
        entry: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a new ed25519 key and write it to a file readable only by you.
    Generate {
        /// Where to write the private key; refused if the file exists.
        #[arg(long, default_value = "datatrust.key")]
        out: PathBuf,
        /// The key's name inside the file (no spaces or '+').
        #[arg(long, default_value = "datatrust")]
        name: String,
    },
    /// Print the public key of the key file in --key.
    Show,
    /// Replace the key you sign in with (--key) by another (--new-key, from `key generate`):
    /// both sign the request, the change is logged, and the old key stops working at once.
    /// Everything you hold stays yours. Keep a copy of the new key file somewhere safe: it is
    /// the only way in without asking trustees for a recovery.
    Rotate {
        /// The new key file.
        #[arg(long)]
        new_key: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Print the origin and the verifier keys (vkeys) to pin.
    Info {
        /// Read them from a local data directory instead of asking the server.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrusteeCommand {
    #[command(flatten)]
    Principals(TrusteePrincipalsCommand),
    #[command(flatten)]
    Governance(TrusteeGovernanceCommand),
    #[command(flatten)]
    Ledger(TrusteeLedgerCommand),
}

/// A trustee's work on who belongs to the trust.
#[derive(Debug, Subcommand)]
pub enum TrusteePrincipalsCommand {
    /// Enrol a member directly by their public key.
    EnrolMember(RegisterArgs),
    /// Create a one-time invitation code a member redeems with their own key.
    InviteMember {
        /// The name the member will appear under.
        #[arg(long)]
        name: String,
        /// Days the code stays valid (1 to 30).
        #[arg(long, default_value_t = 7)]
        valid_days: i64,
    },
    /// Invite many members at once from a CSV file (`name[,email]` per line; a first line
    /// `name,email` is a header): prints one invitation per line as CSV, and with
    /// --letters writes a printable letter per member with their code and how to sign in.
    InviteMembers {
        /// The CSV file.
        #[arg(long)]
        csv: PathBuf,
        /// A directory to write one letter per member into.
        #[arg(long)]
        letters: Option<PathBuf>,
        /// Days the codes stay valid (1 to 30).
        #[arg(long, default_value_t = 14)]
        valid_days: i64,
    },
    /// Invitations, open and used: names, dates, status (never the codes).
    Invitations,
    /// Register a licensee (a company that may request licenses).
    RegisterLicensee(RegisterArgs),
    /// Register a telemetry collector.
    RegisterCollector(RegisterArgs),
    /// Add another trustee.
    AddTrustee(RegisterArgs),
    /// List principals.
    List {
        /// Only this role: trustee, member, licensee or collector.
        #[arg(long)]
        role: Option<String>,
    },
    /// Show one principal.
    Show {
        #[arg(long)]
        public_key: String,
    },
    /// Deactivate a principal (a lost or retired key).
    Deactivate {
        #[arg(long)]
        public_key: String,
    },
    /// What waits for more trustees' approvals: safety actions (trustees registered or
    /// deactivated, requests denied, licenses revoked, suspensions lifted) and recoveries.
    /// Approve one by running its command with your own key.
    Pending,
    /// Approve giving a member who lost her key a new one, once she has proved who she is
    /// out of band (in person, with her union card). At the terms' trustee quorum her
    /// membership (consents, earnings, history) continues under the new key and the old one
    /// stops; the recovery is logged and shows in her audit.
    ApproveRecovery {
        /// The member's identity: her first public key (`trustee list`).
        #[arg(long)]
        member: String,
        /// The public key of the key file she made anew (`key generate`, `key show`).
        #[arg(long)]
        new_public_key: String,
    },
}

/// A trustee's work on terms and licenses.
#[derive(Debug, Subcommand)]
pub enum TrusteeGovernanceCommand {
    /// Propose a terms document (TOML); opens the members' vote.
    ProposeTerms {
        /// The agreement TOML (see terms/example-agreement.toml).
        file: PathBuf,
    },
    /// Close the vote on proposed terms and publish the tally.
    CloseVote {
        /// The terms' SHA-256 (hex).
        #[arg(long)]
        terms: String,
    },
    /// Countersign terms whose vote passed, with your key.
    Countersign {
        #[arg(long)]
        terms: String,
    },
    /// License requests awaiting decision (and decided ones).
    Requests,
    /// Approve a license request with your key.
    Approve {
        #[arg(long)]
        request: String,
    },
    /// Deny a license request.
    Deny {
        #[arg(long)]
        request: String,
        #[arg(long)]
        reason: String,
    },
    /// Revoke a license.
    Revoke {
        #[arg(long)]
        license: String,
        #[arg(long)]
        reason: String,
    },
    /// Replace the license-signing key (e.g. after a suspected leak): the server makes a new
    /// key, keeps it beside the others and logs it; licenses signed before still verify under
    /// the key valid when they were issued (`trust info` lists every key). On PostgreSQL,
    /// copy the new keys/license-<generation>.key to every node.
    RotateLicenseKey,
}

/// A trustee's work on money and duties.
#[derive(Debug, Subcommand)]
pub enum TrusteeLedgerCommand {
    /// Invoices: every licensee's, or one's.
    Invoices {
        /// Only this licensee (base64 public key).
        #[arg(long)]
        licensee: Option<String>,
        /// Print CSV instead of text.
        #[arg(long)]
        csv: bool,
    },
    /// Record money received from a licensee against an invoice.
    RecordPayment {
        /// The invoice (charge id).
        #[arg(long)]
        charge: String,
        /// In minor units (cents).
        #[arg(long)]
        amount: u64,
        #[arg(long)]
        currency: String,
        /// The bank's reference; each is recorded once.
        #[arg(long)]
        reference: String,
    },
    /// Record money paid out to a member.
    RecordPayout {
        /// The member's base64 public key.
        #[arg(long)]
        member: String,
        /// In minor units (cents).
        #[arg(long)]
        amount: u64,
        #[arg(long)]
        currency: String,
        #[arg(long)]
        reference: String,
    },
    /// The union's ledger: charged, received, outstanding, fund, owed to members.
    Ledger {
        /// Print CSV instead of text.
        #[arg(long)]
        csv: bool,
    },
    /// Suspend licensees with overdue invoices now (the server also does it periodically).
    EnforceDuties,
    /// Lift a licensee's suspension (once nothing is overdue).
    LiftSuspension {
        #[arg(long)]
        licensee: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The principal's public key, base64 (from `datatrust key generate` or `key show`).
    #[arg(long)]
    pub public_key: String,
    /// A human-readable name.
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    #[command(flatten)]
    Principals(MemberPrincipalsCommand),
    #[command(flatten)]
    Governance(MemberGovernanceCommand),
    #[command(flatten)]
    Data(MemberDataCommand),
    #[command(flatten)]
    Ledger(MemberLedgerCommand),
}

/// A member's enrolment and collectors.
#[derive(Debug, Subcommand)]
pub enum MemberPrincipalsCommand {
    /// Redeem an invitation code with the key in --key.
    Redeem {
        #[arg(long)]
        code: String,
    },
    /// Allow a collector to upload telemetry for you.
    AuthorizeCollector {
        #[arg(long)]
        collector_key: String,
    },
    /// Withdraw a collector's permission.
    RevokeCollector {
        #[arg(long)]
        collector_key: String,
    },
    /// The collectors you have authorised.
    Collectors,
}

/// A member's votes, consents, and the uses of the data.
#[derive(Debug, Subcommand)]
pub enum MemberGovernanceCommand {
    /// Vote on proposed terms (your ballot is secret; you may change it until the vote closes).
    #[command(group(clap::ArgGroup::new("ballot").required(true).args(["yes", "no"])))]
    Vote {
        #[arg(long)]
        terms: String,
        /// Vote yes: approve the terms. One of --yes or --no is required.
        #[arg(long)]
        yes: bool,
        /// Vote no: reject the terms.
        #[arg(long)]
        no: bool,
    },
    /// Grant or withdraw consent to one purpose of the terms in force.
    Consent {
        #[arg(long)]
        purpose: String,
        /// Withdraw instead of grant.
        #[arg(long)]
        withdraw: bool,
    },
    /// Your consents.
    Consents,
    /// Licenses granted under the terms, and every training use reported under them.
    Uses,
}

/// What the trust holds about a member.
#[derive(Debug, Subcommand)]
pub enum MemberDataCommand {
    /// What the trust holds about you: counts per day and category.
    Data,
    /// Export everything the trust holds about you as JSON Lines.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// Erase everything the trust holds about you (cannot be undone).
    Erase {
        /// Must be exactly: erase all my data
        #[arg(long)]
        confirm: String,
    },
    /// Where your data went: every release holding your records and the training uses of it.
    Audit {
        /// Check every proof offline with the log's vkey.
        #[arg(long)]
        verify: bool,
        /// The log's verifier key (for --verify).
        #[arg(long)]
        vkey: Option<String>,
    },
}

/// A member's earnings.
#[derive(Debug, Subcommand)]
pub enum MemberLedgerCommand {
    /// What you have earned from the use of your data, per charge, and what was paid out.
    Statement {
        /// Check every share offline: its proof, the totals, the log's receipt.
        #[arg(long)]
        verify: bool,
        /// The log's verifier key (for --verify).
        #[arg(long)]
        vkey: Option<String>,
        /// Print CSV instead of text.
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CompanyCommand {
    #[command(flatten)]
    Principals(CompanyPrincipalsCommand),
    #[command(flatten)]
    Governance(CompanyGovernanceCommand),
    #[command(flatten)]
    Ledger(CompanyLedgerCommand),
    #[command(flatten)]
    Data(CompanyDataCommand),
}

/// A licensee's own record.
#[derive(Debug, Subcommand)]
pub enum CompanyPrincipalsCommand {
    /// The company's own record on this trust.
    Profile,
}

/// A licensee's licenses and training uses.
#[derive(Debug, Subcommand)]
pub enum CompanyGovernanceCommand {
    /// Request a license under the terms in force.
    RequestLicense {
        #[arg(long)]
        purpose: String,
        /// Comma-separated data categories.
        #[arg(long, value_delimiter = ',')]
        categories: Vec<String>,
        /// Start of the window of data: Unix seconds, or an RFC 3339 date or date-time.
        #[arg(long, value_parser = human::time_argument)]
        data_from: i64,
        /// End of the window of data: Unix seconds, or an RFC 3339 date or date-time.
        #[arg(long, value_parser = human::time_argument)]
        data_to: i64,
        #[arg(long)]
        model_family: String,
        #[arg(long)]
        runs: u32,
        #[arg(long)]
        days: u32,
    },
    /// Your license requests and their status.
    Requests,
    /// Your licenses.
    Licenses,
    /// Fetch one of your licenses (the signed note).
    License {
        #[arg(long)]
        id: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Report one training run, signed with your key; prints or saves the receipt.
    ReportUse {
        #[arg(long)]
        license: String,
        #[arg(long)]
        run: String,
        #[arg(long)]
        model: String,
        #[arg(long)]
        model_version: String,
        #[arg(long)]
        model_family: String,
        #[arg(long)]
        purpose: String,
        /// The releases this run used, comma-separated (ids from `company release`): what
        /// the run is charged for. Required.
        #[arg(long, value_delimiter = ',', required = true)]
        data: Vec<String>,
        /// When the run started: Unix seconds, or an RFC 3339 date or date-time.
        #[arg(long, value_parser = human::time_argument)]
        started: i64,
        /// When the run ended, likewise.
        #[arg(long, value_parser = human::time_argument)]
        ended: i64,
        #[arg(long)]
        accelerator_seconds: u64,
        /// Write the receipt (.tlog-proof) here.
        #[arg(long)]
        receipt_out: Option<PathBuf>,
    },
    /// Your training uses.
    Uses,
}

/// A licensee's invoices and duties.
#[derive(Debug, Subcommand)]
pub enum CompanyLedgerCommand {
    /// Your invoices: charged, paid, due; and whether your licenses are suspended.
    Invoices {
        /// Print CSV instead of text.
        #[arg(long)]
        csv: bool,
    },
    /// Declare, signed, that no training ran under a license up to a time (default now):
    /// the terms may require each license to be accounted for every N days.
    DeclareNoUse {
        #[arg(long)]
        license: String,
        /// Unix seconds, or an RFC 3339 date or date-time [default: now].
        #[arg(long, value_parser = human::time_argument)]
        until: Option<i64>,
    },
}

/// A licensee's releases.
#[derive(Debug, Subcommand)]
pub enum CompanyDataCommand {
    /// Build a release under one of your licenses.
    Release {
        #[arg(long)]
        license: String,
    },
    /// Download a release's records (JSON Lines), checking them against its logged root.
    FetchRelease {
        #[arg(long)]
        release: String,
        #[arg(long)]
        out: PathBuf,
        /// The log's verifier key, to check the release's receipt.
        #[arg(long)]
        vkey: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CollectorCommand {
    /// The members who have authorised this collector.
    Members,
    /// Upload a member's events from a JSON Lines file (the export format), in batches.
    Upload(UploadArgs),
}

/// `collector upload`'s arguments.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The member's public key (base64).
    #[arg(long)]
    pub member: String,
    /// This device's id; with the sequence numbers it makes retries idempotent.
    #[arg(long)]
    pub device: String,
    /// Events, one JSON object a line, as `member export` writes them.
    #[arg(long)]
    pub file: PathBuf,
    /// Events per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Sequence number of the first batch; the rest follow. Re-running with the same
    /// numbers re-sends the same batches, which the trust stores once.
    #[arg(long, default_value_t = 1)]
    pub first_sequence: u64,
    /// Move every event by the same amount so that the last one is now: a recorded
    /// session (or the README's sample) replayed as if it had just happened.
    #[arg(long)]
    pub shift_to_now: bool,
}

/// Parses the command line, runs it, and turns errors into a message and exit status 1.
pub fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let mut cli = Cli::parse();
    if let Some(field) = cli.global.get.clone() {
        cli.global.json = true;
        output::select(field);
    }
    let server = cli.global.server.clone();
    match commands::run(cli).and_then(|()| output::check_selected()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut message = commands::describe(&error);
            if let Some(hint) = client::diagnose_connection(&server, &message) {
                message.push_str("\nhint: ");
                message.push_str(&hint);
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `datatrust ... | head` closes the pipe early; Rust's `println!` then panics. Exit quietly
/// with the status a shell gives a process killed by SIGPIPE, as command-line tools do.
fn quiet_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
}
