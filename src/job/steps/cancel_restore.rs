//! Stopping a RESTORE on request (SPEC A29). CrateDB has no KILL for a restore; its documented
//! way is to drop what is being restored. This drops exactly what this run creates — the plan's
//! relations, which pre-flight proved did not exist, and its partitions of tables that did
//! (`DELETE` on the partition columns drops a partition) — never anything that existed before,
//! then waits until `sys.snapshot_restore` no longer lists the restore. Every statement is safe
//! to repeat, so a Pod replaced midway simply does it again.

use std::collections::HashSet;

use serde_json::json;
use tokio::time::Instant;

use super::{
    super::{
        context::RunContext,
        error::StepError,
        step::{StepId, StepReport},
    },
    plan, remember,
};
use crate::{
    bounded,
    cratedb::{catalog, queries},
    sql::TableIdent,
};

const STEP: StepId = StepId::CancelRestore;

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let plan = plan(ctx)?;
    let created: HashSet<&TableIdent> = plan.relations.iter().collect();
    for table in &plan.relations {
        ctx.cleanup_sql(&queries::drop_table_if_exists(table))
            .await
            .map_err(|e| StepError::from(e).context(&format!("cannot drop {table}")))?;
    }
    // Partitions of tables that existed before: the tables stay, the partitions go.
    let partitions: Vec<_> = plan
        .partitions
        .iter()
        .filter(|p| !created.contains(&p.table))
        .map(|p| p.target())
        .collect();
    for partition in &partitions {
        ctx.cleanup_sql(&queries::delete_partition(partition))
            .await
            .map_err(|e| {
                StepError::from(e).context(&format!("cannot drop partition {}", partition.render()))
            })?;
    }
    tracing::info!(
        relations = plan.relations.len(),
        partitions = partitions.len(),
        "dropped what the cancelled restore created"
    );
    remember(
        ctx,
        STEP,
        &json!({"droppedRelations": plan.relations.len(), "droppedPartitions": partitions.len()}),
    )
    .await?;

    // The restore ends once nothing of it is left restoring.
    let repository = ctx.run.repository();
    let snapshot = ctx.snapshot();
    let schedule = ctx.config.poll_schedule();
    let since = Instant::now();
    loop {
        let running = catalog::running_restores(
            async |sql: &str| ctx.cleanup_sql(sql).await,
            &repository,
            &snapshot,
        )
        .await?;
        if running.is_empty() {
            break;
        }
        if Instant::now() >= ctx.cleanup_deadline {
            return Err(StepError::DeadlineExceeded(format!(
                "CrateDB still lists the cancelled restore after its relations were dropped; the repository {repository} is left to it"
            )));
        }
        tokio::time::sleep(schedule.delay(since.elapsed())).await;
    }
    let mut report = format!(
        "dropped the {} relation(s) and {} partition(s) this run created{}; CrateDB no longer lists the restore",
        bounded::count(plan.relations.len()),
        bounded::count(partitions.len()),
        if plan.relations.is_empty() {
            String::new()
        } else {
            format!(" ({})", bounded::short_list(&plan.relations, ""))
        }
    );
    if let Some(note) = irreversible(ctx) {
        report.push_str("; ");
        report.push_str(&note);
    }
    Ok(StepReport::new(report))
}

/// What a cancelled restore may already have applied that no drop undoes: the metadata an
/// `ALL`, `METADATA` or sections restore brings (CrateDB applies it when the restore starts).
pub fn irreversible(ctx: &RunContext) -> Option<String> {
    use crate::restore_type::{RestoreTarget, Section};
    let what = match &ctx.request.target {
        RestoreTarget::All | RestoreTarget::Metadata => {
            "the snapshot's users, privileges, settings, views, analyzers and functions".to_string()
        }
        RestoreTarget::Sections(sections) => {
            let applied: Vec<&str> = sections
                .iter()
                .filter(|s| **s != Section::Tables)
                .map(|s| s.as_str())
                .collect();
            if applied.is_empty() {
                return None;
            }
            format!("the snapshot's {}", applied.join(", "))
        }
        _ => return None,
    };
    Some(format!(
        "RESTORE … {} applies {what} when it starts; the cancel cannot undo them (status.restore.settingsChangedBySnapshot lists changed settings)",
        ctx.request.target.keyword(None)
    ))
}
