//! Safety actions on the wire (`datatrust_core::safety`): each call is one trustee's signed
//! approval; the action is taken by the call that reaches the trustee quorum.

use datatrust_core::registry::DomainError;
use datatrust_core::safety::{ActionStatus, PendingAction, SafetyAction};
use datatrust_core::{FieldError, Principal, UnixSeconds};

use crate::state::TrustRegistry;

/// Records the caller's approval; the pending action when it reached the quorum.
pub(crate) fn approve(
    registry: &TrustRegistry,
    caller: &Principal,
    action: &SafetyAction,
    detail: &str,
    signature: &[u8],
    now: UnixSeconds,
) -> Result<(ActionStatus, Option<PendingAction>), DomainError> {
    datatrust_core::registry::require_role(
        caller,
        datatrust_core::Role::Trustee,
        "approve safety actions",
    )?;
    if signature.is_empty() {
        return Err(FieldError::new(
            "signature",
            format!(
                "is required: {} needs the trustee quorum's approvals, each signed over the safety action message",
                action.kind()
            ),
        )
        .into());
    }
    let (status, pending) = registry.approve_action(caller, action, detail, signature, now)?;
    tracing::warn!(
        action = action.kind(),
        subject = %action.subject(),
        approvals = status.approvals,
        required = status.required,
        "safety action approved"
    );
    Ok((status, pending))
}

/// A safety action's reason: required, as every such action is logged with it.
pub(crate) fn reason(text: &str) -> Result<String, tonic::Status> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 500 || text.chars().any(char::is_control) {
        return Err(tonic::Status::invalid_argument(
            "reason: give a reason: 1 to 500 characters, no control characters",
        ));
    }
    Ok(text.to_owned())
}

/// The response fields: approvals, approvals required, still pending.
pub(crate) fn wire(status: &Option<ActionStatus>) -> (u32, u32, bool) {
    match status {
        Some(status) => (status.approvals, status.required, !status.done),
        None => (0, 0, false),
    }
}
