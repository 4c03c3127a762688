//! Waiting for the asynchronous RESTORE (SPEC B§2.3, A20, A26): poll `sys.snapshot_restore` and
//! `sys.shards` over the PostgreSQL wire until this run's row is gone, with byte-weighted
//! progress in the status and a progress notification at most every 15 s. A vanished row means
//! "not running", not "succeeded": the validation step decides that (A10). When the deadline
//! passes first, the run fails naming the relations CrateDB is still restoring.

use serde_json::json;
use tokio::time::Instant;

use super::{
    super::{
        context::RunContext,
        error::StepError,
        notify::Notification,
        progress::{Progress, measure, with_rate},
        step::{StepId, StepReport},
    },
    plan, remember,
};
use crate::{
    cratedb::{
        catalog,
        queries::{self, ShardRow},
    },
    sql::TableIdent,
};

/// The planned relations with a primary shard that is not started yet (all of them before
/// CrateDB lists any shard).
pub fn still_restoring(tables: &[TableIdent], shards: &[ShardRow]) -> Vec<TableIdent> {
    tables
        .iter()
        .filter(|t| {
            let mine: Vec<&ShardRow> = shards.iter().filter(|s| &s.table == *t).collect();
            mine.is_empty() || mine.iter().any(|s| s.state != "STARTED")
        })
        .cloned()
        .collect()
}

fn names(tables: &[TableIdent]) -> String {
    let mut shown: Vec<String> = tables.iter().take(10).map(TableIdent::dotted).collect();
    if tables.len() > 10 {
        shown.push(format!("and {} more", tables.len() - 10));
    }
    shown.join(", ")
}

/// Consecutive failed polls tolerated before the step hands a transient error to the engine.
const MAX_POLL_FAILURES: u32 = 5;

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let plan = plan(ctx)?;
    let tables: Vec<TableIdent> = plan.restored_tables();
    let repository = ctx.run.repository();
    let mut previous: Option<(Progress, Instant)> = None;
    let mut last_notified: Option<Instant> = None;
    let mut failures = 0;
    let mut failure_seen = false;
    let mut polls = 0u64;
    let mut last_shards: Vec<ShardRow> = Vec::new();
    loop {
        if ctx.past_deadline() {
            let progress = ctx.status.state.progress.clone().unwrap_or_default();
            let restoring = still_restoring(&tables, &last_shards);
            remember(
                ctx,
                StepId::AwaitRestore,
                &json!({"polls": polls, "stillRestoring": restoring}),
            )
            .await?;
            return Err(StepError::DeadlineExceeded(format!(
                "the restore did not finish within {} (CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT): CrateDB is still restoring {} ({}% of {} bytes, {} of {} primary shards started); cleanup leaves the repository and the internal tables to that restore",
                crate::duration::human(ctx.config.restore_timeout),
                names(&restoring),
                progress.whole_percent(),
                progress.total_bytes,
                progress.shards_started,
                progress.shards_total
            )));
        }
        polls += 1;
        let poll = async {
            let running = catalog::running_restores(
                async |sql: &str| ctx.query_after_restore(sql, &[]).await,
                &repository,
                &ctx.request.snapshot,
            )
            .await?;
            let shards = queries::shards(
                &ctx.query_after_restore(queries::PRIMARY_SHARDS, &[])
                    .await?,
            );
            Ok::<_, crate::cratedb::SqlError>((running, shards))
        };
        let (running, shards) = match poll.await {
            Ok(answer) => {
                failures = 0;
                last_shards = answer.1.clone();
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
        ctx.status
            .save_progress(ctx.config.progress_write_interval)
            .await?;
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
