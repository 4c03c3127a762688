//! Waiting for the asynchronous RESTORE (SPEC B§2.3, A20): poll `sys.snapshot_restore` through
//! the superuser path until this run's row is gone, with byte-weighted progress in the status
//! and a progress notification at most every 15 s. A vanished row means "not running", not
//! "succeeded": the validation step decides that (A10).

use serde_json::json;
use tokio::time::Instant;

use super::{
    super::{
        context::RunContext,
        error::StepError,
        notify::Notification,
        progress::{Progress, measure, with_rate},
        step::StepReport,
    },
    plan,
};
use crate::{
    cratedb::{catalog, queries},
    sql::TableIdent,
};

/// Consecutive failed polls tolerated before the step hands a transient error to the engine.
const MAX_POLL_FAILURES: u32 = 5;

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let plan = plan(ctx)?;
    let mut tables: Vec<TableIdent> = plan.relation_idents();
    for p in &plan.partitions {
        let ident = queries::snapshot_table(p);
        if !tables.contains(&ident) {
            tables.push(ident);
        }
    }
    let repository = ctx.run.repository();
    let mut previous: Option<(Progress, Instant)> = None;
    let mut last_notified: Option<Instant> = None;
    let mut failures = 0;
    let mut failure_seen = false;
    let mut polls = 0u64;
    loop {
        if ctx.past_deadline() {
            let progress = ctx.status.state.progress.clone().unwrap_or_default();
            return Err(StepError::DeadlineExceeded(format!(
                "the restore did not finish within {:?} (CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT): {}% of {} bytes restored, {} of {} primary shards started; CrateDB may still be restoring",
                ctx.config.restore_timeout,
                progress.whole_percent(),
                progress.total_bytes,
                progress.shards_started,
                progress.shards_total
            )));
        }
        polls += 1;
        let poll = async {
            let running =
                catalog::running_restores(&ctx.superuser, &repository, &ctx.request.snapshot)
                    .await?;
            let shards = queries::shards(&ctx.superuser.execute(queries::PRIMARY_SHARDS).await?);
            Ok::<_, crate::cratedb::SqlError>((running, shards))
        };
        let (running, shards) = match poll.await {
            Ok(answer) => {
                failures = 0;
                answer
            }
            Err(error) => {
                failures += 1;
                if !error.is_transient() || failures >= MAX_POLL_FAILURES {
                    return Err(StepError::Transient(format!(
                        "cannot read the restore's progress through {}: {error}",
                        ctx.superuser.describe()
                    )));
                }
                tracing::warn!(%error, failures, "progress poll failed; trying again");
                tokio::time::sleep(ctx.config.poll_interval).await;
                continue;
            }
        };
        if running.iter().any(|(_, state)| state == "FAILURE") {
            failure_seen = true;
        }
        let now = Instant::now();
        let progress = with_rate(
            measure(&shards, &tables),
            previous.as_ref().map(|(p, _)| p),
            previous
                .as_ref()
                .map(|(_, t)| now.duration_since(*t).as_secs_f64())
                .unwrap_or(0.0),
        );
        previous = Some((progress.clone(), now));
        ctx.status.state.progress_percent = Some(progress.whole_percent() as f64);
        ctx.status.state.progress = Some(progress.clone());
        if running.is_empty() {
            break;
        }
        let message = format!(
            "Please wait while cluster data is being restored... ({}%)",
            progress.whole_percent()
        );
        ctx.status.state.message = Some(message.clone());
        if let Err(error) = ctx
            .status
            .save_progress(ctx.config.progress_write_interval)
            .await
        {
            tracing::warn!(%error, "could not write progress");
        }
        if last_notified.is_none_or(|t| t.elapsed() >= ctx.config.progress_notification_interval) {
            tracing::info!(
                percent = progress.whole_percent(),
                recovered_bytes = progress.recovered_bytes,
                total_bytes = progress.total_bytes,
                shards_started = progress.shards_started,
                shards_total = progress.shards_total,
                "restore in progress"
            );
            ctx.notifier.send(&Notification::in_progress(message)).await;
            last_notified = Some(Instant::now());
        }
        tokio::time::sleep(ctx.config.poll_interval).await;
    }
    let progress = ctx.status.state.progress.clone().unwrap_or_default();
    Ok(StepReport::new(format!(
        "CrateDB no longer lists the restore as running after {polls} poll(s); {} of {} bytes recovered, {} of {} primary shards started{}",
        progress.recovered_bytes,
        progress.total_bytes,
        progress.shards_started,
        progress.shards_total,
        if failure_seen { "; CrateDB reported it as FAILURE" } else { "" }
    ))
    .with_result(json!({"polls": polls, "failureSeen": failure_seen})))
}
