//! Grand Central's internal tables after the restore (SPEC B§4.7): the originals moved aside
//! as `<t>_temp` are dropped after a clean run and renamed back after a failure.

use serde_json::Value;

use super::super::{
    context::RunContext,
    error::StepError,
    plan::{GC_SCHEMA, GC_TEMP_SUFFIX},
    step::{StepId, StepReport},
};
use crate::{cratedb::queries, sql::TableIdent};

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let renamed: Vec<String> = ctx
        .status
        .state
        .step_result(StepId::RestoreBackupData.as_str())
        .and_then(|r| r.get("gcRenamed"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if renamed.is_empty() {
        return Ok(StepReport::new("no Grand Central tables were moved aside"));
    }
    let existing = crate::cratedb::catalog::relations(&ctx.db).await?;
    let exists = |t: &TableIdent| existing.iter().any(|r| &r.ident == t);
    let mut notes = Vec::new();
    for table in &renamed {
        let original = TableIdent::new(GC_SCHEMA, table.as_str());
        let temp = TableIdent::new(GC_SCHEMA, format!("{table}{GC_TEMP_SUFFIX}"));
        if !exists(&temp) {
            continue;
        }
        if ctx.earlier_failure {
            if exists(&original) {
                notes.push(format!(
                    "{temp} kept: {original} exists (restored) — compare them and keep one"
                ));
                continue;
            }
            ctx.db
                .query(&queries::rename_table(&temp, table), &[])
                .await
                .map_err(|e| StepError::from(e).context("internal table couldn't be renamed"))?;
            notes.push(format!("{temp} renamed back"));
        } else {
            ctx.db
                .query(&queries::drop_table_if_exists(&temp), &[])
                .await
                .map_err(|e| {
                    StepError::from(e).context("internal temporary table couldn't be dropped")
                })?;
            notes.push(format!("{temp} dropped"));
        }
    }
    Ok(StepReport::new(if notes.is_empty() {
        "nothing left to do".into()
    } else {
        notes.join("; ")
    }))
}
