//! Cluster preparation (SPEC B§4.1): suspend the backup CronJob (remembering whether it was
//! already suspended), wait for running snapshots and backup Jobs, and restrict shard allocation
//! to primaries while the restore runs.

use k8s_openapi::{
    api::{
        apps::v1::StatefulSet,
        batch::v1::{CronJob, Job},
    },
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    super::{
        context::RunContext,
        engine::{StepId, StepReport},
        error::StepError,
        notify::Notification,
    },
    recorded, remember,
};
use crate::{cratedb::queries, sql::TableIdent};

const STEP: StepId = StepId::BeforeClusterUpdate;
pub const ROUTING_LABEL: &str = "dc-util-routing-owner";

pub fn backup_selector(name: &str) -> String {
    format!("app.kubernetes.io/component=backup,app.kubernetes.io/name={name}")
}

pub fn statefulset_selector(name: &str) -> String {
    format!(
        "app.kubernetes.io/component=cratedb,app.kubernetes.io/managed-by=crate-operator,app.kubernetes.io/name={name},app.kubernetes.io/part-of=cratedb"
    )
}

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let mut result = recorded(ctx, STEP);
    let mut notes = Vec::new();

    // 1. The first backup CronJob of this cluster.
    if result.get("cronjob").is_none() {
        let cronjobs: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ctx.run.namespace);
        let list = cronjobs
            .list(&ListParams::default().labels(&backup_selector(&ctx.run.cluster)))
            .await?;
        match list.items.first() {
            None => {
                result["cronjob"] = Value::Null;
                notes.push("no backup CronJob".to_string());
            }
            Some(cronjob) => {
                let name = cronjob.name_any();
                let suspended = cronjob
                    .spec
                    .as_ref()
                    .and_then(|s| s.suspend)
                    .unwrap_or(false);
                if suspended {
                    notes.push(format!("CronJob {name} was already suspended and stays so"));
                } else {
                    cronjobs
                        .patch(
                            &name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": {"suspend": true}})),
                        )
                        .await?;
                    notes.push(format!("CronJob {name} suspended"));
                }
                result["cronjob"] = json!({"name": name, "suspendedByUs": !suspended});
            }
        }
        remember(ctx, STEP, &result).await?;
    }

    // 2. and 3. Wait (bounded) for snapshots and backup Jobs in progress.
    let wait_until = (Instant::now() + ctx.config.before_update_timeout).min(ctx.deadline);
    let jobs_table = TableIdent::parse(&ctx.config.jobs_table).map_err(|e| {
        StepError::permanent(format!(
            "CRATEDB_OPERATOR_JOBS_TABLE {:?}: {e}",
            ctx.config.jobs_table
        ))
    })?;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.run.namespace);
    loop {
        let snapshot = match ctx
            .db
            .query(&queries::snapshots_in_progress(&jobs_table), &[])
            .await
        {
            Ok(rows) => rows
                .first_cell()
                .and_then(Value::as_str)
                .map(str::to_string),
            Err(e) if e.is_transient() => return Err(e.into()),
            // The reference treats an unreadable jobs table as "no snapshot running".
            Err(_) => None,
        };
        let backup_job = jobs
            .list(&ListParams::default().labels(&backup_selector(&ctx.run.cluster)))
            .await?
            .items
            .into_iter()
            .find(|j| j.status.as_ref().and_then(|s| s.active).unwrap_or(0) > 0)
            .map(|j| j.name_any());
        let waiting_for = match (&snapshot, &backup_job) {
            (None, None) => break,
            (Some(stmt), _) => {
                format!("A snapshot is currently in progress, waiting for it to finish: {stmt}")
            }
            (None, Some(job)) => {
                if result.get("delayNotified").is_none() {
                    ctx.notifier
                        .send(&Notification::Delay {
                            reason: "A snapshot is in progress".into(),
                        })
                        .await;
                    result["delayNotified"] = json!(true);
                    remember(ctx, STEP, &result).await?;
                }
                format!("A snapshot k8s job is currently running, waiting for it to finish: {job}")
            }
        };
        if Instant::now() + ctx.config.poll_interval >= wait_until {
            return Err(if ctx.past_deadline() {
                ctx.deadline_error()
            } else {
                StepError::permanent(format!(
                    "{waiting_for} (gave up after CRATEDB_OPERATOR_BEFORE_UPDATE_TIMEOUT={} s)",
                    ctx.config.before_update_timeout.as_secs()
                ))
            });
        }
        tracing::info!("{waiting_for}");
        ctx.status.state.message = Some(waiting_for);
        let _ = ctx
            .status
            .save_progress(ctx.config.progress_write_interval)
            .await;
        tokio::time::sleep(ctx.config.poll_interval).await;
    }

    // 4. Primaries only while the restore runs; the StatefulSets say who set it.
    if result.get("routing").is_none() {
        let statefulsets: Api<StatefulSet> =
            Api::namespaced(ctx.client.clone(), &ctx.run.namespace);
        let owner = format!("operator-{}", Timestamp::now().as_second());
        let mut labelled = Vec::new();
        match statefulsets
            .list(&ListParams::default().labels(&statefulset_selector(&ctx.run.cluster)))
            .await
        {
            Ok(list) => {
                for sts in list.items {
                    let name = sts.name_any();
                    let patch = json!({"metadata": {"labels": {ROUTING_LABEL: owner}}});
                    match statefulsets
                        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                        .await
                    {
                        Ok(_) => labelled.push(name),
                        Err(error) => {
                            tracing::warn!(%error, statefulset = %name, "could not label StatefulSet")
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not list the cluster's StatefulSets"),
        }
        for persistence in ["TRANSIENT", "PERSISTENT"] {
            let statement = queries::set_global(persistence, "cluster.routing.allocation.enable");
            if let Err(error) = ctx.db.query(&statement, &["primaries"]).await {
                if error.is_transient() {
                    return Err(error.into());
                }
                tracing::warn!(%error, persistence, "could not restrict allocation to primaries");
            }
        }
        result["routing"] = json!({"statefulsets": labelled, "owner": owner});
        notes.push("shard allocation restricted to primaries".into());
    }
    Ok(StepReport::new(notes.join("; ")).with_result(result))
}
