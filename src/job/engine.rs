//! The run order of a restore and its rules (SPEC A1, B§3.2), as data: which steps always run,
//! which are skipped after a failure, and which need a RESTORE to have been issued. One loop
//! executes the table, retries transient failures until the deadline, records every step in
//! the status, and emits an event and a log line per step.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;
use tracing::Instrument;

use super::{
    context::RunContext,
    error::StepError,
    notify::Notification,
    retry::Backoff,
    step::{PLAN, StepId, StepReport, StepSpec, When, first_failure},
    steps::{self, restore_issued},
};
use crate::{
    bounded,
    status::{Phase, StepRecord, StepState},
};

async fn dispatch(id: StepId, ctx: &mut RunContext) -> Result<StepReport, StepError> {
    match id {
        StepId::Preflight => steps::preflight::run(ctx).await,
        StepId::BeforeClusterUpdate => steps::before_cluster_update::run(ctx).await,
        StepId::BeforeRestoreBackup => steps::before_restore_backup::run(ctx).await,
        StepId::RestoreBackupData => steps::restore_backup_data::run(ctx).await,
        StepId::AwaitRestore => steps::await_restore::run(ctx).await,
        StepId::CancelRestore => steps::cancel_restore::run(ctx).await,
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

/// Runs the plan to its end and returns the run's final phase. An error means the status could
/// not be written (SPEC A6 needs it): the run stops here and the next pod resumes it.
pub async fn execute(ctx: &mut RunContext) -> Result<Phase, StepError> {
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
        let cancelled = ctx.cancel.get();
        if let Some(request) = &cancelled {
            acknowledge_cancel(ctx, request);
        }
        // Stopping a restore is no step of a run that was not cancelled: nothing is recorded.
        if spec.when == When::CancelledAfterRestore && cancelled.is_none() {
            continue;
        }
        let skip_reason = match spec.when {
            // A cancelled run stops going forward and undoes what it changed (SPEC A29).
            When::AllEarlierSucceeded | When::RestoreIssued
                if cancelled.is_some() && !spec.cleanup =>
            {
                Some("the run was cancelled")
            }
            When::AllEarlierSucceeded if failed => Some("an earlier step failed"),
            When::AllEarlierSucceeded if cancelled.is_some() => Some("the run was cancelled"),
            When::RestoreIssued if !restore_issued(ctx) => Some("no RESTORE was issued"),
            When::CancelledAfterRestore if !steps::restore_maybe_sent(ctx) => {
                Some("no RESTORE was sent, so there is nothing to stop")
            }
            _ => None,
        };
        if let Some(reason) = skip_reason {
            skip(ctx, spec.id, reason);
            continue;
        }
        // Cleanup after a cancel undoes like cleanup after a failure.
        ctx.earlier_failure = failed || cancelled.is_some();
        if !run_step(ctx, spec).await? {
            failed = true;
        }
    }
    Ok(if failed {
        Phase::Failed
    } else if ctx.cancel.get().is_some() {
        Phase::Cancelled
    } else {
        Phase::Succeeded
    })
}

/// The first time the run acts on a cancel: the status says so and the backend is told (once;
/// a replaced Pod finds the condition and does not tell again).
fn acknowledge_cancel(ctx: &mut RunContext, request: &super::cancel::CancelRequest) {
    let state = &mut ctx.status.state;
    if state.conditions.iter().any(|c| c.type_ == "Cancelled") {
        return;
    }
    let by = request
        .by
        .clone()
        .or_else(|| state.cancelled_by.clone())
        .unwrap_or_else(|| "an unknown user".into());
    state.cancelled_by.get_or_insert_with(|| by.clone());
    let message = format!("Cancel requested by {by}: the run stops and undoes what it changed");
    tracing::warn!(run_id = %ctx.run.run_id, %by, "cancel requested; undoing what the run changed");
    state.message = Some(message.clone());
    state.set_condition("Cancelled", "True", "CancelRequested", &message);
    state.notifications.push(
        Notification::failure(format!("Restore run {} cancelled by {by}.", ctx.run.run_id))
            .to_queued(),
    );
}

/// Records a skipped step; it is written with the next step's start (or the final status).
fn skip(ctx: &mut RunContext, id: StepId, reason: &str) {
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
}

/// Runs one step, retrying transient failures until its deadline, and records its outcome;
/// whether it succeeded. The step's start is written before it runs, together with whatever
/// the previous steps recorded, so every completion is stored before the next step starts
/// (SPEC A6) with one API request per step.
async fn run_step(ctx: &mut RunContext, spec: StepSpec) -> Result<bool, StepError> {
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
        let backoff = match id {
            // The reference retries password and JWT resets after a fixed
            // CRATEDB_OPERATOR_BOOTSTRAP_RETRY_DELAY.
            StepId::RestoreSystemUserPassword | StepId::RestoreUserJwtAuth => Backoff {
                initial: ctx.config.bootstrap_retry_delay,
                max: ctx.config.bootstrap_retry_delay,
                max_attempts: ctx.config.step_attempts,
            },
            _ => ctx.config.backoff(),
        };
        let mut record = ctx.status.state.steps.remove(id.as_str()).unwrap_or_default();
        record.state = Some(StepState::Running);
        record.started_at.get_or_insert_with(now);
        record.finished_at = None;
        ctx.status.state.steps.insert(id.as_str().into(), record);
        let running = format!("Running step {}", id.as_str());
        ctx.status.state.message = Some(running.clone());
        ctx.status.state.set_condition("Progressing", "True", &id.reason(), &running);
        if spec.announce {
            ctx.status.save().await?;
        }
        tracing::info!("step started");

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
                Err(error @ StepError::StatusLost(_)) => return Err(error),
                Err(error @ StepError::Cancelled(_)) => break Err(error),
                Err(error) if error.is_transient() => {
                    let Some(delay) = backoff.next_delay(attempt, deadline) else {
                        break Err(if !spec.cleanup && Instant::now() + backoff.delay(attempt) >= ctx.deadline {
                            StepError::DeadlineExceeded(format!("{}; still failing: {error}", ctx.deadline_error()))
                        } else {
                            StepError::Permanent(format!("{error} (gave up after {attempt} attempt(s))"))
                        });
                    };
                    // Say what the run waits for: a cluster that is still starting looks like
                    // this for minutes.
                    let waiting = format!(
                        "Step {} waiting: {}; attempt {} in {}",
                        id.as_str(),
                        bounded::text(&error.to_string(), bounded::MESSAGE_BYTES - 100),
                        attempt + 1,
                        crate::duration::human(Duration::from_secs(delay.as_secs().max(1)))
                    );
                    tracing::warn!(error = %bounded::text(&error.to_string(), bounded::LOG_VALUE_BYTES), attempt, delay_ms = delay.as_millis() as u64, "step failed transiently; retrying");
                    ctx.status.state.message = Some(waiting.clone());
                    ctx.status.state.set_condition("Progressing", "True", "Waiting", &waiting);
                    ctx.status.save_progress(ctx.config.progress_write_interval).await?;
                    if !spec.cleanup && let Err(cancelled) = ctx.sleep_unless_cancelled(delay).await {
                        break Err(cancelled);
                    }
                    if spec.cleanup {
                        tokio::time::sleep(delay).await;
                    }
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
                let message = bounded::text(&report.message, bounded::MESSAGE_BYTES);
                record.message = Some(message.clone());
                if report.result.is_some() {
                    record.result = report.result;
                }
                tracing::info!(duration_ms = elapsed_ms, outcome = "succeeded", "{message}");
                // Events cost an API request each: the run's start and end, every failure, and
                // the moment CrateDB starts restoring tell the story in `kubectl describe`; every
                // step's result is in status.restore.steps and the log.
                if id == StepId::RestoreBackupData {
                    ctx.events.normal("RestoreSent", &id.reason(), format!("Restore run {}: {message}", ctx.run.run_id)).await;
                }
                true
            }
            Err(StepError::Cancelled(message)) => {
                record.state = Some(StepState::Skipped);
                record.message = Some(message.clone());
                tracing::warn!(duration_ms = elapsed_ms, outcome = "cancelled", "{message}");
                true
            }
            Err(error) => {
                let message = bounded::text(&error.to_string(), bounded::MESSAGE_BYTES);
                record.state = Some(StepState::Failed);
                record.message = Some(message.clone());
                tracing::error!(duration_ms = elapsed_ms, outcome = "failed", error = %message, "step failed");
                ctx.events.warning("StepFailed", &id.reason(), format!("Step {} failed: {message}", id.as_str())).await;
                // The failing step tells the backend at once (SPEC B§3.3, A13).
                ctx.notifier.send(&Notification::failure(message)).await;
                false
            }
        };
        Ok(succeeded)
    }
    .instrument(span)
    .await
}
