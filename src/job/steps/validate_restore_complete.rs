//! Completion check (SPEC A10): every planned relation exists and every primary shard of it is
//! STARTED; otherwise the run fails with the reason CrateDB gives.

use serde_json::Value;

use super::{
    super::{
        completion::{CompletionInput, verify},
        context::RunContext,
        error::StepError,
        step::{StepId, StepReport},
    },
    plan,
};
use crate::cratedb::{catalog, queries};

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let plan = plan(ctx)?;
    let relations = plan.relations.clone();
    // The partitions as they land: renamed tables, and single partitions a skip restore named.
    let partitions: Vec<_> = plan.partitions.iter().map(|p| p.target()).collect();
    let existing = catalog::relations(&ctx.db).await?;
    let existing_partitions = catalog::partitions(&ctx.db).await?;
    let shards = queries::shards(&ctx.db.query(queries::PRIMARY_SHARDS, &[]).await?);
    let allocations =
        queries::allocations(&ctx.db.query(queries::UNASSIGNED_PRIMARIES, &[]).await?);
    let outcome = verify(&CompletionInput {
        relations: &relations,
        partitions: &partitions,
        existing: &existing,
        existing_partitions: &existing_partitions,
        shards: &shards,
        allocations: &allocations,
    });
    match outcome {
        Ok(summary) => Ok(StepReport::new(summary)),
        Err(problems) => {
            // Shards still starting (not unassigned) may just need a moment after the restore
            // row vanished: let the engine look again, a bounded number of times.
            let settling = shards
                .iter()
                .filter(|s| relations.contains(&s.table))
                .all(|s| s.state != "UNASSIGNED")
                && problems.iter().all(|p| !p.contains("does not exist"));
            let failure_seen = ctx
                .status
                .state
                .step_result(StepId::AwaitRestore.as_str())
                .and_then(|r| r.get("failureSeen"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let message = format!(
                "Snapshot could not be restored completely{}: {}",
                if failure_seen {
                    " (CrateDB reported the restore as FAILURE)"
                } else {
                    ""
                },
                problems.join("; ")
            );
            if settling && !failure_seen {
                Err(StepError::Transient(message))
            } else {
                Err(StepError::Permanent(message))
            }
        }
    }
}
