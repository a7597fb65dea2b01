//! The client subcommands: keys, trust identity, and each role's operations on principals.

use crate::{human, output};
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use datatrust_core::auth::InvitationCode;
use datatrust_core::{NoteSigner, Role};
use datatrust_proto::{convert, v1};
use datatrust_store::DataDirectory;
use rand::RngCore as _;
use serde_json::json;

use super::common::{connect, key_text, parse_key, read_key, sign_in};
use crate::client::{self, SignedIn};
use crate::{
    CompanyPrincipalsCommand, GlobalArgs, KeyCommand, MemberPrincipalsCommand, RegisterArgs,
    TrusteePrincipalsCommand, key_file,
};

pub async fn whoami(global: &GlobalArgs) -> anyhow::Result<()> {
    let session = sign_in(global).await?;
    let response = session
        .auth()
        .who_am_i(v1::WhoAmIRequest {})
        .await?
        .into_inner();
    print_principal(global, &response.principal.unwrap_or_default());
    Ok(())
}

pub async fn login(global: &GlobalArgs, print_token: bool) -> anyhow::Result<()> {
    let session = sign_in(global).await?;
    if print_token {
        // Only the token on stdout, so `$(datatrust login --print-token)` is it.
        println!("{}", session.token);
    } else {
        print_principal(global, &session.principal);
        eprintln!(
            "Signed in. Each command signs in by itself; --print-token prints a bearer token for other gRPC tools."
        );
    }
    Ok(())
}

pub async fn company(global: &GlobalArgs, command: CompanyPrincipalsCommand) -> anyhow::Result<()> {
    let CompanyPrincipalsCommand::Profile = command;
    let session = sign_in(global).await?;
    print_principal(global, &session.principal);
    Ok(())
}

pub async fn collector_members(global: &GlobalArgs) -> anyhow::Result<()> {
    let session = sign_in(global).await?;
    let authorizations = session.all_my_members().await?;
    print_authorizations(global, &authorizations, "member");
    Ok(())
}

pub fn key(global: &GlobalArgs, command: KeyCommand) -> anyhow::Result<()> {
    let signer = match command {
        KeyCommand::Generate { out, name } => {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let signer = NoteSigner::new(&name, seed).context("--name")?;
            key_file::write_new(&out, &signer)?;
            if !global.json {
                println!(
                    "Wrote a new private key to {} (readable only by you).",
                    out.display()
                );
                println!(
                    "Keep a copy of it somewhere safe (a USB stick, a password manager): if you lose it, only your trustees can give you access again (a recovery), and anyone who has it can act as you."
                );
                println!("Give this public key to a trustee:");
            }
            signer
        }
        KeyCommand::Show => read_key(global)?,
        KeyCommand::Rotate { .. } => anyhow::bail!("key rotate runs on the async runtime"),
    };
    output::show(
        global.json,
        json!({ "public_key": signer.public_key().to_base64() }),
        || {
            println!("{}", signer.public_key());
        },
    );
    Ok(())
}

/// Replaces the key the caller signs in with by the key in `new_key` (both sign).
pub async fn rotate_key(global: &GlobalArgs, new_key: &Path) -> anyhow::Result<()> {
    let old = read_key(global)?;
    let new = crate::key_file::read(new_key)
        .with_context(|| format!("--new-key {}", new_key.display()))?;
    let session = sign_in(global).await?;
    let identity =
        datatrust_core::PublicKey::from_slice(&session.principal.public_key, "public_key")
            .map_err(|error| anyhow::anyhow!("the server sent a bad key: {}", error.reason))?;
    let message = datatrust_core::recovery::rotation_message(
        session.origin.as_str(),
        &identity,
        &old.public_key(),
        &new.public_key(),
    );
    let response = session
        .auth()
        .rotate_key(v1::RotateKeyRequest {
            new_public_key: new.public_key().as_bytes().to_vec(),
            old_signature: old.sign(&message).to_vec(),
            new_signature: new.sign(&message).to_vec(),
        })
        .await?
        .into_inner();
    output::show(
        global.json,
        json!({ "signing_key": new.public_key().to_base64(), "log_index": response.log_index }),
        || {
            println!(
                "Your key is now {} (logged at {}). The old key no longer signs in; use {} from now on, and keep a copy of it somewhere safe.",
                new.public_key(),
                response.log_index,
                new_key.display()
            );
        },
    );
    Ok(())
}

pub async fn trust_info(global: &GlobalArgs, data_dir: Option<&Path>) -> anyhow::Result<()> {
    let info = match data_dir {
        Some(data_dir) => {
            // The lock refuses this while a server runs on the directory; ask the server then.
            let opened = DataDirectory::open_or_create_with_keys(
                data_dir,
                crate::config::keys_dir_from_environment().as_deref(),
                None,
                &datatrust_core::Origin::parse(crate::config::DEFAULT_ORIGIN)?,
                datatrust_server::now(),
            )
            .with_context(|| format!("reading the trust in {}", data_dir.display()))?;
            v1::GetTrustInfoResponse {
                origin: opened.metadata.origin.to_string(),
                log_vkey: opened.log_signer.verifier().to_text(),
                license_vkey: opened.license_signer.verifier().to_text(),
                server_version: env!("CARGO_PKG_VERSION").to_owned(),
                log_url: String::new(),
                // Read from the directory: the first key only (rotations are in its log).
                license_keys: Vec::new(),
            }
        }
        None => client::trust_info(&connect(global).await?).await?,
    };
    output::show(
        global.json,
        json!({
            "origin": info.origin,
            "log_vkey": info.log_vkey,
            "license_vkey": info.license_vkey,
            "server_version": info.server_version,
            "log_url": info.log_url,
            "license_keys": info.license_keys.iter().map(|key| json!({
                "generation": key.generation, "vkey": key.vkey, "valid_from": key.valid_from,
                "valid_until": (key.valid_until != 0).then_some(key.valid_until), "log_index": key.log_index,
            })).collect::<Vec<_>>(),
        }),
        || {
            println!("origin:        {}", info.origin);
            println!("log vkey:      {}", info.log_vkey);
            println!("license vkey:  {}", info.license_vkey);
            if info.license_keys.len() > 1 {
                for key in &info.license_keys {
                    let from = if key.generation == 0 {
                        "the trust's creation".to_owned()
                    } else {
                        human::date(key.valid_from)
                    };
                    let until = if key.valid_until == 0 {
                        "now".to_owned()
                    } else {
                        human::date(key.valid_until)
                    };
                    println!(
                        "  license key {}: {}  (signed licenses from {from} to {until})",
                        key.generation, key.vkey
                    );
                }
            }
            if !info.log_url.is_empty() {
                println!("log url:       {}", info.log_url);
            }
        },
    );
    Ok(())
}

pub async fn trustee(global: &GlobalArgs, command: TrusteePrincipalsCommand) -> anyhow::Result<()> {
    let session = sign_in(global).await?;
    let mut principals = session.principals();
    match command {
        TrusteePrincipalsCommand::EnrolMember(arguments) => {
            register(global, &session, Role::Member, arguments).await
        }
        TrusteePrincipalsCommand::RegisterLicensee(arguments) => {
            register(global, &session, Role::Licensee, arguments).await
        }
        TrusteePrincipalsCommand::RegisterCollector(arguments) => {
            register(global, &session, Role::Collector, arguments).await
        }
        TrusteePrincipalsCommand::AddTrustee(arguments) => {
            register(global, &session, Role::Trustee, arguments).await
        }
        TrusteePrincipalsCommand::InviteMember { name, valid_days } => {
            if !(1..=30).contains(&valid_days) {
                return Err(anyhow!("--valid-days: must be between 1 and 30"));
            }
            let response = principals
                .create_invitation(v1::CreateInvitationRequest {
                    display_name: name.clone(),
                    valid_for_seconds: valid_days * 24 * 3600,
                })
                .await?
                .into_inner();
            output::show(
                global.json,
                json!({ "invitation_code": response.invitation_code, "expires_at": response.expires_at }),
                || {
                    println!("Invitation for {name}: {}", response.invitation_code);
                    println!(
                        "It works once, until {} (Unix time). The member runs:",
                        response.expires_at
                    );
                    println!(
                        "  datatrust key generate --out member.key && datatrust member redeem --key member.key --code {}",
                        response.invitation_code
                    );
                },
            );
            Ok(())
        }
        TrusteePrincipalsCommand::InviteMembers {
            csv,
            letters,
            valid_days,
        } => {
            if !(1..=30).contains(&valid_days) {
                return Err(anyhow!("--valid-days: must be between 1 and 30"));
            }
            let text = std::fs::read_to_string(&csv)
                .with_context(|| format!("--csv: reading {}", csv.display()))?;
            if let Some(directory) = &letters {
                std::fs::create_dir_all(directory)
                    .with_context(|| format!("--letters: creating {}", directory.display()))?;
            }
            let origin = session.origin.to_string();
            println!("line,name,email,invitation_code,expires");
            let mut failures = Vec::new();
            for (index, line) in text.lines().enumerate() {
                let number = index + 1;
                let fields = csv_fields(line);
                let name = fields.first().map(|name| name.trim()).unwrap_or_default();
                let email = fields.get(1).map(|email| email.trim()).unwrap_or_default();
                if name.is_empty() || (number == 1 && name.eq_ignore_ascii_case("name")) {
                    continue;
                }
                let created = principals
                    .create_invitation(v1::CreateInvitationRequest {
                        display_name: name.to_owned(),
                        valid_for_seconds: valid_days * 24 * 3600,
                    })
                    .await;
                let response = match created {
                    Ok(response) => response.into_inner(),
                    Err(status) => {
                        failures.push(format!("line {number} ({name}): {}", status.message()));
                        continue;
                    }
                };
                let expires = crate::human::date(response.expires_at);
                println!(
                    "{number},{},{},{},{expires}",
                    csv_field(name),
                    csv_field(email),
                    response.invitation_code
                );
                if let Some(directory) = &letters {
                    let slug: String = name
                        .chars()
                        .map(|character| {
                            if character.is_alphanumeric() {
                                character
                            } else {
                                '-'
                            }
                        })
                        .collect();
                    let path = directory.join(format!("{number:04}-{slug}.txt"));
                    std::fs::write(
                        &path,
                        invitation_letter(name, &origin, &response.invitation_code, &expires),
                    )
                    .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            if !failures.is_empty() {
                bail!(
                    "{} line(s) were not invited (the others were):\n{}",
                    failures.len(),
                    failures.join("\n")
                );
            }
            Ok(())
        }
        TrusteePrincipalsCommand::List { role } => {
            let role = role
                .map(|text| Role::parse(&text).map_err(|error| anyhow!("--role: {}", error.reason)))
                .transpose()?;
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let response = principals
                    .list_principals(v1::ListPrincipalsRequest {
                        role: role
                            .map(|role| convert::role_to_wire(role).into())
                            .unwrap_or(0),
                        page_size: 1000,
                        page_token,
                    })
                    .await?
                    .into_inner();
                all.extend(response.principals);
                if response.next_page_token.is_empty() {
                    break;
                }
                page_token = response.next_page_token;
            }
            output::show(
                global.json,
                serde_json::Value::Array(all.iter().map(principal_json).collect()),
                || {
                    for principal in &all {
                        println!("{}", principal_line(principal));
                    }
                    println!("{} principal(s)", all.len());
                },
            );
            Ok(())
        }
        TrusteePrincipalsCommand::Invitations => {
            let invitations = session.all_invitations().await?;
            output::show(global.json, serde_json::Value::Array(
                    invitations
                        .iter()
                        .map(|invitation| {
                            json!({
                                "id": invitation.id, "display_name": invitation.display_name,
                                "status": invitation.status, "created_by": key_text(&invitation.created_by),
                                "created_at": invitation.created_at, "expires_at": invitation.expires_at,
                                "redeemed_by": (!invitation.redeemed_by.is_empty()).then(|| key_text(&invitation.redeemed_by)),
                            })
                        })
                        .collect(),
                ), || {
                for invitation in &invitations {
                    let detail = match invitation.status.as_str() {
                        "redeemed" => format!("redeemed by {}", key_text(&invitation.redeemed_by)),
                        "expired" => format!("expired {}", human::date(invitation.expires_at)),
                        _ => format!("open until {}", human::date(invitation.expires_at)),
                    };
                    println!(
                        "{:<30}  invited {}  {detail}",
                        invitation.display_name,
                        human::date(invitation.created_at)
                    );
                }
                println!("{} invitation(s)", invitations.len());
            });
            Ok(())
        }
        TrusteePrincipalsCommand::Show { public_key } => {
            let public_key = parse_key(&public_key, "--public-key")?;
            let response = principals
                .get_principal(v1::GetPrincipalRequest {
                    public_key: public_key.as_bytes().to_vec(),
                })
                .await?
                .into_inner();
            print_principal(global, &response.principal.unwrap_or_default());
            Ok(())
        }
        TrusteePrincipalsCommand::Pending => {
            // A page at a time, each printed as it comes.
            let (mut page_token, mut shown) = (String::new(), 0usize);
            loop {
                let response = principals
                    .list_pending_approvals(v1::ListPendingApprovalsRequest {
                        page_size: 0,
                        page_token: page_token.clone(),
                    })
                    .await?
                    .into_inner();
                for waiting in &response.pending {
                    let approvers: Vec<String> = waiting
                        .approved_by
                        .iter()
                        .map(|key| key_text(key))
                        .collect();
                    output::show(
                        global.json,
                        json!({
                            "kind": waiting.kind, "subject": waiting.subject, "detail": waiting.detail,
                            "approved_by": approvers, "approvals_required": response.required,
                        }),
                        || {
                            println!(
                                "{} {}: {} of {} approvals (by {}){}",
                                waiting.kind,
                                waiting.subject,
                                approvers.len(),
                                response.required,
                                approvers.join(", "),
                                if waiting.detail.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {}", waiting.detail)
                                }
                            );
                        },
                    );
                }
                shown += response.pending.len();
                if response.next_page_token.is_empty() {
                    break;
                }
                page_token = response.next_page_token;
            }
            if shown == 0 && !global.json {
                println!("Nothing waits for approvals.");
            }
            Ok(())
        }
        TrusteePrincipalsCommand::ApproveRecovery {
            member,
            new_public_key,
        } => {
            let member = parse_key(&member, "--member")?;
            let new_key = parse_key(&new_public_key, "--new-public-key")?;
            let trustee = read_key(global)?;
            let message = datatrust_core::recovery::recovery_message(
                session.origin.as_str(),
                &member,
                &new_key,
            );
            let response = principals
                .approve_recovery(v1::ApproveRecoveryRequest {
                    member_public_key: member.as_bytes().to_vec(),
                    new_public_key: new_key.as_bytes().to_vec(),
                    signature: trustee.sign(&message).to_vec(),
                })
                .await?
                .into_inner();
            output::show(
                global.json,
                json!({
                    "approvals": response.approvals, "required": response.required,
                    "recovered": response.recovered, "log_index": response.recovered.then_some(response.log_index),
                }),
                || {
                    if response.recovered {
                        println!(
                            "Recovered: the member signs in with the new key from now on (logged at {}).",
                            response.log_index
                        );
                    } else {
                        println!(
                            "Approved: {} of {} trustees; another trustee must approve it too.",
                            response.approvals, response.required
                        );
                    }
                },
            );
            Ok(())
        }
        TrusteePrincipalsCommand::Deactivate { public_key } => {
            let public_key = parse_key(&public_key, "--public-key")?;
            // Signed in case the key is a trustee's (a safety action); ignored otherwise.
            let signature = super::common::sign_safety_action(
                global,
                &session,
                &datatrust_core::safety::SafetyAction::DeactivateTrustee { public_key },
            )?;
            let response = principals
                .deactivate_principal(v1::DeactivatePrincipalRequest {
                    public_key: public_key.as_bytes().to_vec(),
                    signature,
                })
                .await?
                .into_inner();
            if super::common::report_pending(
                global,
                response.pending,
                response.approvals,
                response.approvals_required,
            ) {
                return Ok(());
            }
            print_principal(global, &response.principal.unwrap_or_default());
            Ok(())
        }
    }
}

async fn register(
    global: &GlobalArgs,
    session: &SignedIn,
    role: Role,
    arguments: RegisterArgs,
) -> anyhow::Result<()> {
    let public_key = parse_key(&arguments.public_key, "--public-key")?;
    let signature = if role == Role::Trustee {
        super::common::sign_safety_action(
            global,
            session,
            &datatrust_core::safety::SafetyAction::RegisterTrustee { public_key },
        )?
    } else {
        Vec::new()
    };
    let response = session
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: public_key.as_bytes().to_vec(),
            role: convert::role_to_wire(role).into(),
            display_name: arguments.name,
            signature,
        })
        .await?
        .into_inner();
    if super::common::report_pending(
        global,
        response.pending,
        response.approvals,
        response.approvals_required,
    ) {
        return Ok(());
    }
    print_principal(global, &response.principal.unwrap_or_default());
    Ok(())
}

pub async fn member(global: &GlobalArgs, command: MemberPrincipalsCommand) -> anyhow::Result<()> {
    // Redeeming comes before the key is enrolled: it signs in with nothing.
    let session = match command {
        MemberPrincipalsCommand::Redeem { code } => {
            let code = InvitationCode::parse(&code)
                .map_err(|error| anyhow!("--code: {}", error.reason))?;
            let signer = read_key(global)?;
            let principal =
                client::redeem_invitation(&connect(global).await?, &signer, &code).await?;
            if !global.json {
                println!("Welcome. You are now enrolled:");
            }
            print_principal(global, &principal);
            return Ok(());
        }
        _ => sign_in(global).await?,
    };
    let mut members = session.members();
    match command {
        MemberPrincipalsCommand::Redeem { .. } => {}
        MemberPrincipalsCommand::AuthorizeCollector { collector_key } => {
            let collector = parse_key(&collector_key, "--collector-key")?;
            let response = members
                .authorize_collector(v1::AuthorizeCollectorRequest {
                    collector_public_key: collector.as_bytes().to_vec(),
                })
                .await?
                .into_inner();
            print_authorizations(
                global,
                &response.authorization.into_iter().collect::<Vec<_>>(),
                "collector",
            );
        }
        MemberPrincipalsCommand::RevokeCollector { collector_key } => {
            let collector = parse_key(&collector_key, "--collector-key")?;
            let response = members
                .revoke_collector(v1::RevokeCollectorRequest {
                    collector_public_key: collector.as_bytes().to_vec(),
                })
                .await?
                .into_inner();
            output::show(global.json, json!({ "revoked": response.revoked }), || {
                if response.revoked {
                    println!("Revoked: {collector} can no longer upload for you.");
                } else {
                    println!("{collector} was not authorised; nothing changed.");
                }
            });
        }
        MemberPrincipalsCommand::Collectors => {
            let authorizations = session.all_my_collectors().await?;
            print_authorizations(global, &authorizations, "collector");
        }
    }
    Ok(())
}

fn role_name(role: i32) -> &'static str {
    match convert::optional_role(role, "role") {
        Ok(Some(role)) => role.as_str(),
        _ => "unknown",
    }
}

fn status_name(status: i32) -> &'static str {
    match v1::PrincipalStatus::try_from(status) {
        Ok(v1::PrincipalStatus::Active) => "active",
        Ok(v1::PrincipalStatus::Deactivated) => "deactivated",
        _ => "unknown",
    }
}

fn principal_json(principal: &v1::Principal) -> serde_json::Value {
    json!({
        "public_key": key_text(&principal.public_key),
        "role": role_name(principal.role),
        "display_name": principal.display_name,
        "created_at": principal.created_at,
        "status": status_name(principal.status),
        "signing_key": key_text(&principal.signing_key),
    })
}

fn principal_line(principal: &v1::Principal) -> String {
    let rotated =
        if !principal.signing_key.is_empty() && principal.signing_key != principal.public_key {
            format!("  (signs with {})", key_text(&principal.signing_key))
        } else {
            String::new()
        };
    format!(
        "{}  {:<9}  {:<11}  since {}  {}{rotated}",
        key_text(&principal.public_key),
        role_name(principal.role),
        status_name(principal.status),
        human::date(principal.created_at),
        principal.display_name
    )
}

fn print_principal(global: &GlobalArgs, principal: &v1::Principal) {
    output::show(global.json, principal_json(principal), || {
        println!("{}", principal_line(principal));
    });
}

fn print_authorizations(
    global: &GlobalArgs,
    authorizations: &[v1::CollectorAuthorization],
    other_side: &str,
) {
    let other_key = |authorization: &v1::CollectorAuthorization| {
        if other_side == "member" {
            key_text(&authorization.member_public_key)
        } else {
            key_text(&authorization.collector_public_key)
        }
    };
    let values: Vec<_> = authorizations
        .iter()
        .map(|authorization| {
            json!({
                "member_public_key": key_text(&authorization.member_public_key),
                "collector_public_key": key_text(&authorization.collector_public_key),
                "authorized_at": authorization.authorized_at,
            })
        })
        .collect();
    output::show(global.json, serde_json::Value::Array(values), || {
        for authorization in authorizations {
            println!(
                "{}  {other_side}, authorised at {}",
                other_key(authorization),
                human::date(authorization.authorized_at)
            );
        }
        if authorizations.is_empty() {
            println!("none");
        }
    });
}

/// The fields of one CSV line: commas separate, double quotes enclose a field that holds
/// commas or quotes ("" is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut characters = line.chars().peekable();
    while let Some(character) = characters.next() {
        match (character, quoted) {
            ('"', true) if characters.peek() == Some(&'"') => {
                characters.next();
                fields.last_mut().expect("one field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (other, _) => fields.last_mut().expect("one field").push(other),
        }
    }
    fields
}

/// One CSV field, quoted when it must be.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A letter a trustee can print or send: the code and how to join.
fn invitation_letter(name: &str, origin: &str, code: &str, expires: &str) -> String {
    format!(
        "Dear {name},\n\n\
         You are invited to join the workers' data trust {origin}. Through it you decide, \
         purpose by purpose, who may use the data recorded at your workplace, you see every \
         use of it with proofs, and you are paid your share.\n\n\
         Your invitation code (it works once, until {expires}):\n\n    {code}\n\n\
         To join from the member portal: open the trust's portal, choose \"Join with an \
         invitation\", and enter the code. Your key is made on your device; save the key file \
         it offers you and keep a copy somewhere safe: it is how you sign in.\n\n\
         To join from a terminal:\n\n    datatrust key generate --out member.key\n    \
         datatrust member redeem --key member.key --code {code}\n\n\
         Keep member.key secret and keep a backup of it.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_handle_quotes_and_commas() {
        assert_eq!(
            csv_fields("Ada,ada@example.org"),
            vec!["Ada", "ada@example.org"]
        );
        assert_eq!(
            csv_fields("\"Lovelace, Ada\",ada@example.org"),
            vec!["Lovelace, Ada", "ada@example.org"]
        );
        assert_eq!(csv_fields("\"Say \"\"hi\"\"\""), vec!["Say \"hi\""]);
        assert_eq!(csv_field("Lovelace, Ada"), "\"Lovelace, Ada\"");
    }
}
