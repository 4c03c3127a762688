//! Starting the restore (SPEC B§4.3, A6): Grand Central tables moved aside, then
//! `RESTORE SNAPSHOT … WITH (wait_for_completion = false)` sent exactly once per run. The
//! record says "issuing" before the statement goes out; a restarted attempt that finds
//! "issuing" looks at CrateDB before deciding to send it again.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    super::{
        context::RunContext,
        error::StepError,
        step::{StepId, StepReport},
    },
    grand_central, plan, recorded, remember,
    restore_internal_tables::{moved_aside, rename_back},
};
use crate::{
    bounded,
    cratedb::{SqlError, catalog, queries},
    plan::{GC_SCHEMA, GC_TEMP_SUFFIX},
    restore_type::restore_statement,
    sql::TableIdent,
};

const STEP: StepId = StepId::RestoreBackupData;

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    if super::nothing_to_restore(ctx) {
        return Ok(super::nothing_to_restore_report());
    }
    let plan = plan(ctx)?;
    let mut result = recorded(ctx, STEP);
    if result.get("restoreIssued").and_then(Value::as_bool) == Some(true) {
        return Ok(
            StepReport::new("RESTORE was issued by an earlier attempt of this run")
                .with_result(result),
        );
    }
    // A cancelled run never sends its RESTORE (SPEC A29).
    ctx.check_cancel()?;
    super::preflight::ensure_repository(ctx).await?;
    let repository = ctx.run.repository();

    if !plan.gc_tables.is_empty() {
        if result.get("grandCentral").is_none() {
            let record =
                grand_central::suspend(&ctx.client, &ctx.run.namespace, &ctx.cr, &ctx.run.cluster)
                    .await?;
            result["grandCentral"] = record;
            remember(ctx, STEP, &result).await?;
        }
        let gc_keys: Vec<String> = plan.gc_idents().iter().map(queries::relation_key).collect();
        let existing = catalog::relations_named(&ctx.db, &gc_keys).await?;
        let mut done = moved_aside(&result);
        for table in &plan.gc_tables {
            if done.contains(table) {
                continue;
            }
            let ident = TableIdent::new(GC_SCHEMA, table.as_str());
            if !existing.iter().any(|r| r.ident == ident) {
                continue;
            }
            let statement = queries::rename_table(&ident, &format!("{table}{GC_TEMP_SUFFIX}"));
            ctx.db
                .query(&statement, &[])
                .await
                .map_err(|e| StepError::from(e).context("internal tables couldn't be renamed"))?;
            done.push(table.clone());
            result["gcRenamed"] = json!(done);
            remember(ctx, STEP, &result).await?;
        }
    }

    let issued_before = result.get("restoreIssuing").and_then(Value::as_bool) == Some(true);
    if issued_before && restore_visible(ctx, &repository, &plan.relations.clone()).await? {
        tracing::info!("a RESTORE of this run is already under way in CrateDB; adopting it");
        result["restoreIssued"] = json!(true);
        result["adopted"] = json!(true);
        return Ok(
            StepReport::new("adopted the RESTORE an earlier attempt started").with_result(result),
        );
    }

    // The plan's keyword: the request's target for this server version, less what pre-flight
    // found to skip (on-conflict: skip).
    let statement = restore_statement(
        &repository,
        &ctx.snapshot(),
        &plan.keyword,
        ctx.request.options.rename.as_ref(),
    );
    // The statement names every table of a `tables` restore: the status and the log show its
    // beginning, the run's record has the plan it comes from.
    let shown = bounded::text(&statement, 1024);
    ctx.check_cancel()?;
    result["restoreIssuing"] = json!(true);
    result["restoreStatement"] = json!(shown);
    remember(ctx, STEP, &result).await?;
    tracing::info!(statement = %shown, "starting the restore");
    match ctx.db.query(&statement, &[]).await {
        Ok(_) => {
            result["restoreIssued"] = json!(true);
            result["restoreIssuedAt"] = json!(Timestamp::now().to_string());
            Ok(StepReport::new(format!("RESTORE started: {shown}")).with_result(result))
        }
        // Lost connection: CrateDB may or may not have it; the retry looks before re-sending.
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => {
            rollback_renames(ctx, &mut result).await;
            result["restoreIssuing"] = json!(false);
            remember(ctx, STEP, &result).await?;
            Err(StepError::permanent(match &e {
                SqlError::Sql { code, message } if code == "42P07" => {
                    format!("Relation with the same name already exists: {message}")
                }
                other => format!("Snapshot could not be restored: {other}"),
            }))
        }
    }
}

/// Whether CrateDB shows the restore: a running row, or a planned relation that now exists
/// (pre-flight made sure none did before).
async fn restore_visible(
    ctx: &RunContext,
    repository: &str,
    relations: &[TableIdent],
) -> Result<bool, StepError> {
    let running = catalog::running_restores(
        async |sql: &str| ctx.query_after_restore(sql, &[]).await,
        repository,
        &ctx.snapshot(),
    )
    .await?;
    if !running.is_empty() {
        return Ok(true);
    }
    let keys: Vec<String> = relations.iter().map(queries::relation_key).collect();
    Ok(!catalog::relations_named(&ctx.db, &keys).await?.is_empty())
}

/// Puts renamed Grand Central tables back after a failed RESTORE statement (B§4.3 item 7).
async fn rollback_renames(ctx: &mut RunContext, result: &mut Value) {
    let mut still_renamed = moved_aside(result);
    for table in moved_aside(result) {
        match rename_back(ctx, &table).await {
            Ok(()) => still_renamed.retain(|t| t != &table),
            Err(error) => tracing::error!(%error, "internal table couldn't be renamed back"),
        }
    }
    result["gcRenamed"] = json!(still_renamed);
}
