//! Waiting for the asynchronous RESTORE (SPEC B§2.3, A20, A26, A28): look at
//! `sys.snapshot_restore` and at the restored relations' primary shards, summed by CrateDB into
//! one row, until this run's row is gone. Looks start a second apart and back off to the poll
//! interval; the status is written when a person would see a difference, at most every progress
//! interval; a progress notification goes out at most every 15 s. A vanished row means "not
//! running", not "succeeded": the validation step decides that (A10). When the deadline passes
//! first, the run fails naming the relations CrateDB is still restoring.

use std::collections::HashMap;

use serde_json::json;
use tokio::time::Instant;

use super::{
    super::{
        context::RunContext,
        error::StepError,
        notify::Notification,
        progress::{measure, with_rate},
        step::{StepId, StepReport},
    },
    plan, remember,
};
use crate::{
    bounded,
    cratedb::{SqlParam, catalog, queries},
    progress::Progress,
    sql::TableIdent,
};

/// The planned relations with a primary shard that is not started yet, from CrateDB's count of
/// primaries and started primaries per relation (a relation CrateDB lists no shard of yet is
/// still restoring). Linear in the relations.
pub fn still_restoring(
    tables: &[TableIdent],
    per_relation: &[(TableIdent, usize, usize)],
) -> Vec<TableIdent> {
    let counts: HashMap<&TableIdent, (usize, usize)> = per_relation
        .iter()
        .map(|(t, all, started)| (t, (*all, *started)))
        .collect();
    tables
        .iter()
        .filter(|t| {
            counts
                .get(t)
                .is_none_or(|(all, started)| *all == 0 || started < all)
        })
        .cloned()
        .collect()
}

/// Consecutive failed polls tolerated before the step hands a transient error to the engine.
const MAX_POLL_FAILURES: u32 = 5;

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let plan = plan(ctx)?;
    let tables: Vec<TableIdent> = plan.restored_tables();
    let keys: Vec<String> = tables.iter().map(queries::relation_key).collect();
    let no_partitions: Vec<String> = Vec::new();
    let totals_statement = queries::shard_totals_statement();
    let repository = ctx.run.repository();
    let schedule = ctx.config.poll_schedule();
    let waiting_since = Instant::now();
    let mut previous: Option<(Progress, Instant)> = None;
    let mut last_notified: Option<Instant> = None;
    let mut written: Option<Progress> = ctx.status.state.progress.clone();
    let mut failures = 0;
    let mut failure_seen = false;
    let mut polls = 0u64;
    loop {
        if ctx.past_deadline() {
            return Err(deadline_failure(ctx, &tables, &keys, polls).await);
        }
        ctx.check_cancel()?;
        polls += 1;
        let poll = async {
            let running = catalog::running_restores(
                async |sql: &str| ctx.query_after_restore(sql, &[]).await,
                &repository,
                &ctx.snapshot(),
            )
            .await?;
            let totals = queries::shard_totals(
                &ctx.query_after_restore_typed(
                    &totals_statement,
                    &[
                        SqlParam::TextArray(&keys),
                        SqlParam::TextArray(&no_partitions),
                    ],
                )
                .await?,
            );
            Ok::<_, crate::cratedb::SqlError>((running, totals))
        };
        let (running, totals) = match poll.await {
            Ok(answer) => {
                failures = 0;
                answer
            }
            Err(error) => {
                failures += 1;
                if !error.is_transient() || failures >= MAX_POLL_FAILURES {
                    return Err(StepError::Transient(format!(
                        "cannot read the restore's progress: {error}"
                    )));
                }
                tracing::warn!(%error, failures, "progress poll failed; trying again");
                ctx.sleep_unless_cancelled(schedule.delay(waiting_since.elapsed()))
                    .await?;
                continue;
            }
        };
        if running.iter().any(|(_, state)| state == "FAILURE") {
            failure_seen = true;
        }
        let now = Instant::now();
        let progress = with_rate(
            measure(&totals),
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
        // A write costs an API request: only for a change a person would see, and at most every
        // progress interval (the step's end writes the last figures anyway).
        let visible = written.as_ref().is_none_or(|w| progress.visibly_differs(w));
        if visible
            && ctx
                .status
                .progress_write_due(ctx.config.progress_write_interval)
        {
            ctx.status.save().await?;
            written = Some(progress.clone());
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
        ctx.sleep_unless_cancelled(schedule.delay(waiting_since.elapsed()))
            .await?;
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

/// The deadline passed with the restore still running: which relations CrateDB is still
/// restoring, read once (per relation, only here), recorded capped.
async fn deadline_failure(
    ctx: &mut RunContext,
    tables: &[TableIdent],
    keys: &[String],
    polls: u64,
) -> StepError {
    let progress = ctx.status.state.progress.clone().unwrap_or_default();
    let per_relation = match ctx
        .query_after_restore_typed(
            &queries::shards_per_relation_statement(),
            &[SqlParam::TextArray(keys)],
        )
        .await
    {
        Ok(rows) => Some(queries::shards_per_relation(&rows)),
        Err(error) => {
            tracing::warn!(%error, "cannot read which relations are still restoring");
            None
        }
    };
    let restoring = per_relation
        .map(|rows| still_restoring(tables, &rows))
        .unwrap_or_else(|| tables.to_vec());
    let recorded = remember(
        ctx,
        StepId::AwaitRestore,
        &json!({
            "polls": polls,
            "stillRestoring": bounded::head(&restoring, bounded::LIST_ITEMS, bounded::LIST_BYTES),
            "stillRestoringCount": restoring.len(),
        }),
    )
    .await;
    if let Err(error) = recorded {
        return error;
    }
    StepError::DeadlineExceeded(format!(
        "the restore did not finish within {} (CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT): CrateDB is still restoring {} ({}% of {} bytes, {} of {} primary shards started); cleanup leaves the repository and the internal tables to that restore",
        crate::duration::human(ctx.config.restore_timeout),
        bounded::short_list(&restoring, "nothing it lists"),
        progress.whole_percent(),
        progress.total_bytes,
        progress.shards_started,
        progress.shards_total
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TableIdent {
        TableIdent::parse(s).unwrap()
    }

    #[test]
    fn relations_with_unstarted_or_no_shards_are_still_restoring() {
        let tables = [
            t("doc.done"),
            t("doc.half"),
            t("doc.unlisted"),
            t("doc.empty"),
        ];
        let per_relation = [
            (t("doc.done"), 4, 4),
            (t("doc.half"), 4, 2),
            (t("doc.empty"), 0, 0),
        ];
        assert_eq!(
            still_restoring(&tables, &per_relation),
            [t("doc.half"), t("doc.unlisted"), t("doc.empty")]
        );
    }
}
