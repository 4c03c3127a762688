//! Grand Central's internal tables after the restore (SPEC B§4.7): the originals moved aside
//! as `<t>_temp` are dropped after a clean run and renamed back after a failure. The rename back
//! lives here once; `restore_backup_data` uses it when its RESTORE statement is refused.

use serde_json::Value;

use super::super::{
    context::RunContext,
    error::StepError,
    step::{StepId, StepReport},
};
use crate::{
    cratedb::queries,
    plan::{GC_SCHEMA, GC_TEMP_SUFFIX},
    sql::TableIdent,
};

/// The Grand Central tables this run moved aside, from `restore_backup_data`'s record.
pub fn moved_aside(result: &Value) -> Vec<String> {
    result
        .get("gcRenamed")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `gc.<table>_temp` back to `gc.<table>`.
pub async fn rename_back(ctx: &RunContext, table: &str) -> Result<(), StepError> {
    let temp = TableIdent::new(GC_SCHEMA, format!("{table}{GC_TEMP_SUFFIX}"));
    ctx.cleanup_sql(&queries::rename_table(&temp, table))
        .await
        .map(|_| ())
        .map_err(|e| StepError::from(e).context(&format!("{temp} couldn't be renamed back")))
}

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let renamed = ctx
        .status
        .state
        .step_result(StepId::RestoreBackupData.as_str())
        .map(moved_aside)
        .unwrap_or_default();
    if renamed.is_empty() {
        return Ok(StepReport::new("no Grand Central tables were moved aside"));
    }
    if ctx.earlier_failure && super::after_restore_backup::restore_running(ctx).await? {
        // Renaming the originals back now would race the restore that is still creating the
        // snapshot's copies under the same names (A26).
        let left: Vec<String> = renamed
            .iter()
            .map(|t| format!("{GC_SCHEMA}.{t}{GC_TEMP_SUFFIX}"))
            .collect();
        return Ok(StepReport::new(format!(
            "{} left as they are: CrateDB is still restoring; once the restore has ended, drop the restored {GC_SCHEMA} tables you do not want and rename these back",
            left.join(", ")
        )));
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
            rename_back(ctx, table).await?;
            notes.push(format!("{temp} renamed back"));
        } else {
            ctx.cleanup_sql(&queries::drop_table_if_exists(&temp))
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
