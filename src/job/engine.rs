//! The run order of a restore and its rules (SPEC A1, B§3.2), as data: which steps always run,
//! which are skipped after a failure, and which need a RESTORE to have been issued. One loop
//! executes the table, retries transient failures, records every step in the status, and
//! emits an event and a log line per step.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;
use tracing::Instrument;

use super::{
    context::RunContext,
    error::StepError,
    notify::Notification,
    retry::Backoff,
    state::{RestoreState, StepRecord, StepState},
    steps,
};
use crate::status::Phase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepId {
    Preflight,
    BeforeClusterUpdate,
    BeforeRestoreBackup,
    RestoreBackupData,
    AwaitRestore,
    RestoreSystemUserPassword,
    RestoreUserJwtAuth,
    ValidateRestoreComplete,
    RestoreInternalTables,
    AfterRestoreBackup,
    AfterClusterUpdate,
    SendSuccessNotification,
    FlushNotifications,
    ResetSnapshot,
}

impl StepId {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preflight => "preflight",
            Self::BeforeClusterUpdate => "before_cluster_update",
            Self::BeforeRestoreBackup => "before_restore_backup",
            Self::RestoreBackupData => "restore_backup_data",
            Self::AwaitRestore => "await_restore",
            Self::RestoreSystemUserPassword => "restore_system_user_password",
            Self::RestoreUserJwtAuth => "restore_user_jwt_auth",
            Self::ValidateRestoreComplete => "validate_restore_complete",
            Self::RestoreInternalTables => "restore_internal_tables",
            Self::AfterRestoreBackup => "after_restore_backup",
            Self::AfterClusterUpdate => "after_cluster_update",
            Self::SendSuccessNotification => "send_success_notification",
            Self::FlushNotifications => "flush_notifications",
            Self::ResetSnapshot => "reset_snapshot",
        }
    }

    /// `PascalCase` for event and condition reasons.
    pub fn reason(self) -> String {
        self.as_str()
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// When a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Only while every earlier step succeeded (the reference's dependencies without
    /// `run_on_dep_failures`).
    AllEarlierSucceeded,
    /// Whenever a RESTORE statement was sent, whatever else failed: the cluster may hold
    /// restored users and data that need the follow-up.
    RestoreIssued,
    /// Always (cleanup, notifications, reset); each undoes only what this run did.
    Always,
}

#[derive(Debug, Clone, Copy)]
pub struct StepSpec {
    pub id: StepId,
    pub when: When,
    /// Runs on the cleanup budget, after the restore deadline if need be.
    pub cleanup: bool,
}

const fn step(id: StepId, when: When, cleanup: bool) -> StepSpec {
    StepSpec { id, when, cleanup }
}

/// The run order. The pre-flight plan (SPEC A19) comes before the reference's twelve steps; the
/// wait for the asynchronous RESTORE (B§2.3) is its own step between 3 and 4.
pub const PLAN: [StepSpec; 14] = [
    step(StepId::Preflight, When::AllEarlierSucceeded, false),
    step(
        StepId::BeforeClusterUpdate,
        When::AllEarlierSucceeded,
        false,
    ),
    step(
        StepId::BeforeRestoreBackup,
        When::AllEarlierSucceeded,
        false,
    ),
    step(StepId::RestoreBackupData, When::AllEarlierSucceeded, false),
    step(StepId::AwaitRestore, When::RestoreIssued, false),
    step(StepId::RestoreSystemUserPassword, When::RestoreIssued, true),
    step(StepId::RestoreUserJwtAuth, When::AllEarlierSucceeded, false),
    step(
        StepId::ValidateRestoreComplete,
        When::AllEarlierSucceeded,
        false,
    ),
    step(StepId::RestoreInternalTables, When::Always, true),
    step(StepId::AfterRestoreBackup, When::Always, true),
    step(StepId::AfterClusterUpdate, When::Always, true),
    step(
        StepId::SendSuccessNotification,
        When::AllEarlierSucceeded,
        true,
    ),
    step(StepId::FlushNotifications, When::Always, true),
    step(StepId::ResetSnapshot, When::Always, true),
];

/// What a successful step reports.
#[derive(Debug, Default)]
pub struct StepReport {
    pub message: String,
    pub result: Option<serde_json::Value>,
}

impl StepReport {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            result: None,
        }
    }

    pub fn with_result(mut self, result: serde_json::Value) -> Self {
        self.result = Some(result);
        self
    }
}

async fn dispatch(id: StepId, ctx: &mut RunContext) -> Result<StepReport, StepError> {
    match id {
        StepId::Preflight => steps::preflight::run(ctx).await,
        StepId::BeforeClusterUpdate => steps::before_cluster_update::run(ctx).await,
        StepId::BeforeRestoreBackup => steps::before_restore_backup::run(ctx).await,
        StepId::RestoreBackupData => steps::restore_backup_data::run(ctx).await,
        StepId::AwaitRestore => steps::await_restore::run(ctx).await,
        StepId::RestoreSystemUserPassword => steps::restore_system_user_password::run(ctx).await,
        StepId::RestoreUserJwtAuth => steps::restore_user_jwt_auth::run(ctx).await,
        StepId::ValidateRestoreComplete => steps::validate_restore_complete::run(ctx).await,
        StepId::RestoreInternalTables => steps::restore_internal_tables::run(ctx).await,
        StepId::AfterRestoreBackup => steps::after_restore_backup::run(ctx).await,
        StepId::AfterClusterUpdate => steps::after_cluster_update::run(ctx).await,
        StepId::SendSuccessNotification => steps::send_success_notification::run(ctx).await,
        StepId::FlushNotifications => steps::flush_notifications::run(ctx).await,
        StepId::ResetSnapshot => steps::reset_snapshot::run(ctx).await,
    }
}

fn now() -> String {
    Timestamp::now().to_string()
}

/// Whether the RESTORE statement went out in this run (recorded before it is sent).
pub fn restore_issued(ctx: &RunContext) -> bool {
    ctx.status
        .state
        .step_result(StepId::RestoreBackupData.as_str())
        .and_then(|r| r.get("restoreIssued"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// The step that failed first in plan order, with its message: the run's cause of failure
/// (later cleanup steps may fail too, as a consequence).
pub fn first_failure(state: &RestoreState) -> Option<(StepId, String)> {
    PLAN.iter().find_map(|spec| {
        state
            .step(spec.id.as_str())
            .filter(|record| record.state == Some(StepState::Failed))
            .map(|record| (spec.id, record.message.clone().unwrap_or_default()))
    })
}

/// Runs the plan to its end and returns the run's final phase.
pub async fn execute(ctx: &mut RunContext) -> Phase {
    let mut failed = first_failure(&ctx.status.state).is_some();

    for spec in PLAN {
        let id = spec.id.as_str();
        match ctx.status.state.step(id).and_then(|r| r.state) {
            // A restarted pod: completed steps stay done (SPEC A6).
            Some(StepState::Succeeded | StepState::Skipped | StepState::Failed) => {
                tracing::info!(step = id, "already done in an earlier attempt of this run");
                continue;
            }
            Some(StepState::Running) | None => {}
        }
        let skip_reason = match spec.when {
            When::AllEarlierSucceeded if failed => Some("an earlier step failed"),
            When::RestoreIssued if !restore_issued(ctx) => Some("no RESTORE was issued"),
            _ => None,
        };
        if let Some(reason) = skip_reason {
            skip(ctx, spec.id, reason).await;
            continue;
        }
        ctx.earlier_failure = failed;
        if !run_step(ctx, spec).await {
            failed = true;
        }
    }
    if failed {
        Phase::Failed
    } else {
        Phase::Succeeded
    }
}

async fn skip(ctx: &mut RunContext, id: StepId, reason: &str) {
    tracing::info!(step = id.as_str(), reason, "step skipped");
    let stamp = now();
    ctx.status.state.steps.insert(
        id.as_str().into(),
        StepRecord {
            state: Some(StepState::Skipped),
            started_at: Some(stamp.clone()),
            finished_at: Some(stamp),
            message: Some(format!("skipped: {reason}")),
            result: None,
            attempts: 0,
        },
    );
    if let Err(error) = ctx.status.save().await {
        tracing::warn!(%error, "could not record a skipped step");
    }
}

/// Runs one step with retries and records its outcome; whether it succeeded.
async fn run_step(ctx: &mut RunContext, spec: StepSpec) -> bool {
    let id = spec.id;
    let span = tracing::info_span!(
        "step",
        run_id = %ctx.run.run_id,
        cluster = %ctx.run.cluster,
        step = id.as_str()
    );
    async {
        let started = Instant::now();
        let mut deadline = if spec.cleanup { ctx.cleanup_deadline } else { ctx.deadline };
        if id == StepId::AfterClusterUpdate {
            deadline = deadline.min(started + ctx.config.after_update_timeout);
        }
        // Password and JWT resets wait longer between tries (CRATEDB_OPERATOR_BOOTSTRAP_RETRY_DELAY).
        let initial = match id {
            StepId::RestoreSystemUserPassword | StepId::RestoreUserJwtAuth => ctx.config.bootstrap_retry_delay,
            _ => ctx.config.retry_initial_delay,
        };
        let backoff = Backoff {
            initial,
            max: Duration::from_secs(30),
            max_attempts: ctx.config.step_attempts,
        };
        let mut record = ctx.status.state.steps.remove(id.as_str()).unwrap_or_default();
        record.state = Some(StepState::Running);
        record.started_at.get_or_insert_with(now);
        record.finished_at = None;
        ctx.status.state.steps.insert(id.as_str().into(), record);
        ctx.status.state.message = Some(format!("Running step {}", id.as_str()));
        ctx.status.state.set_condition("Progressing", "True", &id.reason(), &format!("Running step {}", id.as_str()));
        if let Err(error) = ctx.status.save().await {
            tracing::warn!(%error, "could not record the step start");
        }
        tracing::info!("step started");
        ctx.events.normal("StepStarted", &id.reason(), format!("Restore run {}: step {} started", ctx.run.run_id, id.as_str())).await;

        let mut attempt = 0u32;
        let outcome = loop {
            attempt += 1;
            if !spec.cleanup && ctx.past_deadline() {
                break Err(ctx.deadline_error());
            }
            if let Some(r) = ctx.status.state.steps.get_mut(id.as_str()) {
                r.attempts += 1;
            }
            match dispatch(id, ctx).await {
                Ok(report) => break Ok(report),
                Err(error) if error.is_transient() => {
                    if backoff.wait(attempt, deadline).await {
                        tracing::warn!(%error, attempt, "step failed transiently; retrying");
                        continue;
                    }
                    break Err(StepError::Permanent(format!(
                        "{error} (gave up after {attempt} attempt(s))"
                    )));
                }
                Err(error) => break Err(error),
            }
        };

        let elapsed_ms = started.elapsed().as_millis() as u64;
        let record = ctx.status.state.steps.entry(id.as_str().into()).or_default();
        record.finished_at = Some(now());
        let succeeded = match outcome {
            Ok(report) => {
                record.state = Some(StepState::Succeeded);
                record.message = Some(report.message.clone());
                if report.result.is_some() {
                    record.result = report.result;
                }
                tracing::info!(duration_ms = elapsed_ms, outcome = "succeeded", "{}", report.message);
                ctx.events.normal("StepSucceeded", &id.reason(), format!("Step {} succeeded: {}", id.as_str(), report.message)).await;
                true
            }
            Err(error) => {
                let message = error.to_string();
                record.state = Some(StepState::Failed);
                record.message = Some(message.clone());
                tracing::error!(duration_ms = elapsed_ms, outcome = "failed", error = %message, "step failed");
                ctx.events.warning("StepFailed", &id.reason(), format!("Step {} failed: {message}", id.as_str())).await;
                // The failing step tells the backend at once (SPEC B§3.3, A13).
                ctx.notifier.send(&Notification::failure(message)).await;
                false
            }
        };
        if let Err(error) = ctx.status.save().await {
            tracing::warn!(%error, "could not record the step result");
        }
        succeeded
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_the_earliest_in_the_plan_not_by_name() {
        let failed = |message: &str| StepRecord {
            state: Some(StepState::Failed),
            message: Some(message.into()),
            ..Default::default()
        };
        let mut state = RestoreState::default();
        assert_eq!(first_failure(&state), None);
        state
            .steps
            .insert("after_cluster_update".into(), failed("scale-up timed out"));
        state
            .steps
            .insert("restore_backup_data".into(), failed("snapshot missing"));
        state.steps.insert(
            "after_restore_backup".into(),
            StepRecord {
                state: Some(StepState::Succeeded),
                ..Default::default()
            },
        );
        assert_eq!(
            first_failure(&state),
            Some((StepId::RestoreBackupData, "snapshot missing".into()))
        );
    }

    #[test]
    fn the_plan_encodes_the_reference_rules() {
        let ids: Vec<&str> = PLAN.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "preflight",
                "before_cluster_update",
                "before_restore_backup",
                "restore_backup_data",
                "await_restore",
                "restore_system_user_password",
                "restore_user_jwt_auth",
                "validate_restore_complete",
                "restore_internal_tables",
                "after_restore_backup",
                "after_cluster_update",
                "send_success_notification",
                "flush_notifications",
                "reset_snapshot",
            ]
        );
        let always: Vec<&str> = PLAN
            .iter()
            .filter(|s| s.when == When::Always)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(
            always,
            [
                "restore_internal_tables",
                "after_restore_backup",
                "after_cluster_update",
                "flush_notifications",
                "reset_snapshot"
            ]
        );
        assert_eq!(
            PLAN.last().unwrap().id,
            StepId::ResetSnapshot,
            "reset is last"
        );
        assert_eq!(
            StepId::RestoreSystemUserPassword.reason(),
            "RestoreSystemUserPassword"
        );
    }
}
