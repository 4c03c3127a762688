//! Restore preparation (SPEC B§4.2, A22): tell the backend, save and raise the recovery
//! settings, and stop backup-metrics (absent → skipped, A11).

use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{
    super::{
        context::RunContext,
        error::StepError,
        notify::Notification,
        step::{StepId, StepReport},
    },
    not_found, recorded, remember,
};
use crate::{cratedb::queries, status::SavedSettings};

const STEP: StepId = StepId::BeforeRestoreBackup;

pub const MAX_BYTES_PER_SEC: &str = "indices.recovery.max_bytes_per_sec";
pub const CONCURRENT_REBALANCE: &str = "cluster.routing.allocation.cluster_concurrent_rebalance";
pub const RESTORE_MAX_BYTES_PER_SEC: &str = "200mb";
pub const RESTORE_CONCURRENT_REBALANCE: &str = "6";
pub const DEFAULT_MAX_BYTES_PER_SEC: &str = "40mb";
pub const DEFAULT_CONCURRENT_REBALANCE: i64 = 2;

pub fn backup_metrics(name: &str) -> String {
    format!("backup-metrics-{name}")
}

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    if super::nothing_to_restore(ctx) {
        return Ok(super::nothing_to_restore_report());
    }
    let mut result = recorded(ctx, STEP);
    let mut notes = Vec::new();

    // Recorded with the saved settings below: a pod that dies in between sends it once more.
    if result.get("preparingNotified").is_none() {
        ctx.notifier
            .send(&Notification::in_progress(
                "Preparing to restore data from snapshot.",
            ))
            .await;
        result["preparingNotified"] = json!(true);
    }

    // Saved once per run: a retry must not save our own raised values as the originals.
    if ctx.status.state.saved_settings.is_none() {
        let settings = ctx
            .db
            .query(queries::CLUSTER_SETTINGS, &[])
            .await
            .map_err(|e| {
                if e.is_transient() {
                    StepError::from(e)
                } else {
                    StepError::Transient(format!("Could not read settings: {e}"))
                }
            })?;
        let flat = queries::flatten_settings(settings.first_cell().unwrap_or(&Value::Null));
        let max_bytes = flat
            .get(MAX_BYTES_PER_SEC)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| DEFAULT_MAX_BYTES_PER_SEC.into());
        let rebalance = flat
            .get(CONCURRENT_REBALANCE)
            .cloned()
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| json!(DEFAULT_CONCURRENT_REBALANCE));
        ctx.status.state.saved_settings = Some(SavedSettings {
            max_bytes_per_sec: max_bytes,
            cluster_concurrent_rebalance: rebalance,
        });
        if ctx.request.target.overwrites_cluster_settings() {
            // Kept in memory, not in status.restore: the whole settings tree is what CrateDB
            // measured, not what this product changed (a restarted pod skips the comparison).
            ctx.settings_before = Some(flat);
        }
        remember(ctx, STEP, &result).await?;
    }
    for (setting, value) in [
        (CONCURRENT_REBALANCE, RESTORE_CONCURRENT_REBALANCE),
        (MAX_BYTES_PER_SEC, RESTORE_MAX_BYTES_PER_SEC),
    ] {
        ctx.db
            .query(&queries::set_global("PERSISTENT", setting, value), &[])
            .await
            .map_err(|e| StepError::from(e).context(&format!("cannot set {setting}")))?;
    }
    notes.push(format!(
        "recovery settings raised ({MAX_BYTES_PER_SEC}={RESTORE_MAX_BYTES_PER_SEC}, {CONCURRENT_REBALANCE}={RESTORE_CONCURRENT_REBALANCE})"
    ));

    if result.get("backupMetrics").is_none() {
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.run.namespace);
        let name = backup_metrics(&ctx.run.cluster);
        let state = match deployments
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 0}})),
            )
            .await
        {
            Ok(_) => "scaledDown",
            Err(e) if not_found(&e) => "absent",
            Err(e) => return Err(e.into()),
        };
        // Scaling to 0 again is harmless: recorded with the step's result, not before.
        result["backupMetrics"] = json!(state);
    }
    notes.push(match result["backupMetrics"].as_str() {
        Some("absent") => format!(
            "no Deployment {}; skipped",
            backup_metrics(&ctx.run.cluster)
        ),
        _ => format!("{} scaled to 0", backup_metrics(&ctx.run.cluster)),
    });
    Ok(StepReport::new(notes.join("; ")).with_result(result))
}
