//! Completion check (SPEC A10, A28): every planned relation exists and every primary shard of it
//! is STARTED; otherwise the run fails with the reason CrateDB gives. It reads only the planned
//! relations and their partitions, a count of their primaries, and the primaries that are not
//! started (at most a hundred, with CrateDB's explanations), never the whole cluster's shards.

use serde_json::Value;

use super::{
    super::{
        completion::{presence, verify},
        context::RunContext,
        error::StepError,
        step::{StepId, StepReport},
    },
    plan,
};
use crate::{
    bounded,
    cratedb::{SqlParam, catalog, queries},
};

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let plan = plan(ctx)?;
    // The partitions as they land: renamed tables, and single partitions a skip restore named.
    let partitions: Vec<_> = plan.partitions.iter().map(|p| p.target()).collect();
    let tables = plan.restored_tables();
    let table_keys: Vec<String> = tables.iter().map(queries::relation_key).collect();
    let existing = catalog::relations_named(&ctx.db, &table_keys).await?;
    let partition_tables = distinct_keys(partitions.iter().map(|p| &p.table));
    let existing_partitions = if partition_tables.is_empty() {
        Vec::new()
    } else {
        catalog::partitions_of(&ctx.db, &partition_tables).await?
    };
    let found = presence(
        &plan.relations,
        &partitions,
        &existing,
        &existing_partitions,
    );
    let keys = [
        SqlParam::TextArray(&found.relation_keys),
        SqlParam::TextArray(&found.partition_keys),
    ];
    let totals = queries::shard_totals(
        &ctx.db
            .query_typed(&queries::shard_totals_statement(), &keys)
            .await?,
    );
    let not_started = if totals.started < totals.shards {
        queries::shards(
            &ctx.db
                .query_typed(&queries::not_started_primaries_statement(), &keys)
                .await?,
        )
    } else {
        Vec::new()
    };
    let allocations = if not_started.is_empty() {
        Vec::new()
    } else {
        let tables = distinct_keys(not_started.iter().map(|s| &s.table));
        queries::allocations(
            &ctx.db
                .query_typed(
                    &queries::unassigned_primaries_statement(),
                    &[SqlParam::TextArray(&tables)],
                )
                .await?,
        )
    };
    match verify(&found, &totals, &not_started, &allocations) {
        Ok(summary) => Ok(StepReport::new(summary)),
        Err(problems) => {
            // Shards still starting (not unassigned) may just need a moment after the restore
            // row vanished: let the engine look again, a bounded number of times.
            let settling =
                not_started.iter().all(|s| s.state != "UNASSIGNED") && found.missing.is_empty();
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
                bounded::join(&problems, "; ", bounded::LIST_ITEMS, 1536, "")
            );
            if settling && !failure_seen {
                Err(StepError::Transient(message))
            } else {
                Err(StepError::Permanent(message))
            }
        }
    }
}

/// The relation keys of `tables`, each once.
fn distinct_keys<'a>(tables: impl Iterator<Item = &'a crate::sql::TableIdent>) -> Vec<String> {
    let keys: std::collections::BTreeSet<String> = tables.map(queries::relation_key).collect();
    keys.into_iter().collect()
}
