//! Cleanup after the restore (SPEC B§4.8, A22): recovery settings back to the saved values
//! (and a report of what else the snapshot changed), the repository dropped, the fixed restore
//! Secret deleted, backup-metrics and Grand Central back. Each part undoes only what this run
//! did, and every part runs even if another fails.

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{
    super::{
        context::RunContext,
        error::StepError,
        step::{StepId, StepReport},
    },
    before_restore_backup::{CONCURRENT_REBALANCE, MAX_BYTES_PER_SEC, backup_metrics},
    grand_central, not_found, restore_issued,
};
use crate::cratedb::{catalog, queries};

/// Settings this product sets and resets itself; a difference there is not the snapshot's doing.
const OWNED_SETTINGS: [&str; 3] = [
    MAX_BYTES_PER_SEC,
    CONCURRENT_REBALANCE,
    "cluster.routing.allocation.enable",
];

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether CrateDB still lists this run's restore as running (read live: after a deadline the
/// restore may go on, or may have just ended).
pub async fn restore_running(ctx: &RunContext) -> Result<bool, StepError> {
    if !restore_issued(ctx) {
        return Ok(false);
    }
    let running = catalog::running_restores(
        async |sql: &str| ctx.cleanup_sql(sql).await,
        &ctx.run.repository(),
        &ctx.snapshot(),
    )
    .await?;
    Ok(!running.is_empty())
}

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let mut notes = Vec::new();
    let mut errors: Vec<StepError> = Vec::new();
    let prepared = ctx
        .status
        .state
        .step_result(StepId::BeforeRestoreBackup.as_str())
        .cloned()
        .unwrap_or_default();

    // 1. Recovery settings.
    if let Some(saved) = ctx.status.state.saved_settings.clone() {
        let rebalance = value_text(&saved.cluster_concurrent_rebalance);
        let mut ok = true;
        for (setting, value) in [
            (CONCURRENT_REBALANCE, rebalance.as_str()),
            (MAX_BYTES_PER_SEC, saved.max_bytes_per_sec.as_str()),
        ] {
            if let Err(e) = ctx
                .cleanup_sql(&queries::set_global("PERSISTENT", setting, value))
                .await
            {
                ok = false;
                errors.push(StepError::from(e).context(&format!("cannot reset {setting}")));
            }
        }
        if ok {
            notes.push(format!(
                "recovery settings reset ({MAX_BYTES_PER_SEC}={}, {CONCURRENT_REBALANCE}={rebalance})",
                saved.max_bytes_per_sec
            ));
        }
        if let Some(before) = ctx.settings_before.clone() {
            match ctx.cleanup_sql(queries::CLUSTER_SETTINGS).await {
                Ok(now) => {
                    let after = queries::flatten_settings(now.first_cell().unwrap_or(&Value::Null));
                    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
                    keys.sort();
                    keys.dedup();
                    let changed: Vec<String> = keys
                        .into_iter()
                        .filter(|k| !OWNED_SETTINGS.contains(&k.as_str()))
                        .filter(|k| before.get(*k) != after.get(*k))
                        .map(|k| {
                            let show = |v: Option<&Value>| {
                                v.map(value_text).unwrap_or_else(|| "(unset)".into())
                            };
                            format!("{k}: {} → {}", show(before.get(k)), show(after.get(k)))
                        })
                        .collect();
                    if !changed.is_empty() {
                        tracing::warn!(
                            count = changed.len(),
                            "the snapshot changed persistent cluster settings: {}",
                            changed.join("; ")
                        );
                        notes.push(format!("{} persistent setting(s) changed by the snapshot (see status.restore.settingsChangedBySnapshot)", changed.len()));
                    }
                    ctx.status.state.settings_changed_by_snapshot = Some(changed);
                }
                Err(e) => {
                    errors.push(StepError::from(e).context("cannot compare cluster settings"))
                }
            }
        }
    }

    // 2. The repository, and the one a run that never finished left behind. Never under a
    // running restore: CrateDB reads the snapshot through it until the restore ends (A26).
    let abandoned = ctx.status.state.abandoned_run.clone().unwrap_or_default();
    let mut repositories = Vec::new();
    match restore_running(ctx).await {
        Ok(false) => repositories.push(ctx.run.repository()),
        Ok(true) => notes.push(format!(
            "repository {repo} left in place: CrateDB is still restoring from it; once SELECT * FROM sys.snapshot_restore no longer lists it, run DROP REPOSITORY \"{repo}\"",
            repo = ctx.run.repository()
        )),
        Err(e) => errors.push(e.context(&format!(
            "cannot tell whether CrateDB still restores from repository {}; left in place",
            ctx.run.repository()
        ))),
    }
    if let Some(previous) = abandoned
        .get("repository")
        .and_then(Value::as_str)
        .filter(|r| r.starts_with("restore_backup_") && *r != ctx.run.repository())
    {
        repositories.push(previous.to_string());
    }
    for repository in repositories {
        match ctx
            .cleanup_sql(&queries::drop_repository(&repository))
            .await
        {
            Ok(_) => notes.push(format!("repository {repository} dropped")),
            Err(e) if queries::is_unknown_repository(&e, &repository) => {
                notes.push(format!("repository {repository} already gone"))
            }
            Err(e) => errors.push(StepError::from(e).context("Drop repository operation failed")),
        }
    }

    // 3. The fixed restore Secret (never one named by the request's references), once a
    // RESTORE used it. A run that never sent one changed no data: the user fixes the request and
    // applies it again with the same credentials (A26).
    let secret = ctx.config.restore_secret();
    if restore_issued(ctx) {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.run.namespace);
        match secrets.delete(&secret, &DeleteParams::default()).await {
            Ok(_) => notes.push(format!("Secret {secret} deleted")),
            Err(e) if not_found(&e) => notes.push(format!("no Secret {secret} to delete")),
            Err(e) => errors.push(
                StepError::from(e).context(&format!("cannot delete the restore Secret {secret}")),
            ),
        }
    } else {
        notes.push(format!(
            "Secret {secret} kept: no RESTORE was sent, so it can be used again"
        ));
    }

    // 4. backup-metrics, if this run stopped it.
    if prepared.get("backupMetrics").and_then(Value::as_str) == Some("scaledDown") {
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.run.namespace);
        let name = backup_metrics(&ctx.run.cluster);
        match deployments
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 1}})),
            )
            .await
        {
            Ok(_) => notes.push(format!("{name} scaled back to 1")),
            Err(e) if not_found(&e) => notes.push(format!("{name} is gone")),
            Err(e) => errors.push(e.into()),
        }
    }

    // 5. Grand Central, if this run suspended it.
    // Also one suspended by a run that never finished, when this run did not suspend it itself.
    let gc_record = ctx
        .status
        .state
        .step_result(StepId::RestoreBackupData.as_str())
        .and_then(|r| r.get("grandCentral"))
        .cloned()
        .or_else(|| {
            abandoned
                .get("grandCentral")
                .filter(|g| g.is_object())
                .cloned()
        });
    if let Some(record) = gc_record {
        match grand_central::resume(&ctx.client, &ctx.run.namespace, &ctx.run.cluster, &record)
            .await
        {
            Ok(note) => notes.push(note),
            Err(e) => errors.push(e),
        }
    }

    if let Some(transient) = errors.iter().find(|e| e.is_transient()) {
        return Err(transient.clone());
    }
    if !errors.is_empty() {
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(StepError::permanent(format!(
            "cleanup incomplete: {}",
            messages.join("; ")
        )));
    }
    Ok(StepReport::new(notes.join("; ")))
}
