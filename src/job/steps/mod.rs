//! One module per step of a restore run (SPEC B§3.1, A19). Each step is idempotent: a restarted
//! pod re-runs an unfinished step, which first looks at what an earlier attempt already did.

pub mod after_cluster_update;
pub mod after_restore_backup;
pub mod await_restore;
pub mod before_cluster_update;
pub mod before_restore_backup;
pub mod cancel_restore;
pub mod flush_notifications;
pub mod grand_central;
pub mod preflight;
pub mod reset_snapshot;
pub mod restore_backup_data;
pub mod restore_internal_tables;
pub mod restore_system_user_password;
pub mod restore_user_jwt_auth;
pub mod send_success_notification;
pub mod validate_restore_complete;

use serde_json::Value;

use super::{context::RunContext, error::StepError, step::StepId};

/// The partial result an earlier attempt of `step` recorded (what it already changed).
pub fn recorded(ctx: &RunContext, step: StepId) -> Value {
    ctx.status
        .state
        .step_result(step.as_str())
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()))
}

/// Records a partial result at once, so a pod that dies right after a change knows about it.
pub async fn remember(ctx: &mut RunContext, step: StepId, result: &Value) -> Result<(), StepError> {
    ctx.status
        .state
        .steps
        .entry(step.as_str().into())
        .or_default()
        .result = Some(result.clone());
    ctx.status.save().await
}

/// The whole plan the pre-flight step made (kept in the run's record when the status shows it
/// capped).
pub fn plan(ctx: &RunContext) -> Result<crate::plan::Plan, StepError> {
    ctx.plan
        .clone()
        .ok_or_else(|| StepError::permanent("the pre-flight plan is missing from status.restore"))
}

/// `true` when a Kubernetes error is a 404.
pub fn not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

/// Whether the RESTORE statement went out in this run.
pub fn restore_issued(ctx: &RunContext) -> bool {
    restore_issued_in(&ctx.status.state)
}

/// Whether the RESTORE statement may have gone out: recorded as about to be sent, whatever
/// CrateDB answered (a lost answer does not mean it was not received).
pub fn restore_maybe_sent(ctx: &RunContext) -> bool {
    ctx.status
        .state
        .step_result(StepId::RestoreBackupData.as_str())
        .and_then(|r| r.get("restoreIssuing"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

pub fn restore_issued_in(state: &crate::status::RestoreStatus) -> bool {
    state
        .step_result(StepId::RestoreBackupData.as_str())
        .and_then(|r| r.get("restoreIssued"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Pre-flight found everything in place (on-conflict: skip): the cluster is left as it is and
/// no RESTORE is sent.
pub fn nothing_to_restore(ctx: &RunContext) -> bool {
    ctx.plan.as_ref().is_some_and(|p| p.nothing_to_restore())
}

/// The report of a step that has nothing to do because nothing is restored.
pub fn nothing_to_restore_report() -> super::step::StepReport {
    super::step::StepReport::new("nothing to restore (everything exists already); skipped")
}
