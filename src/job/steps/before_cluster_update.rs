//! Cluster preparation (SPEC B§4.1): suspend the backup CronJob (remembering whether it was
//! already suspended), wait for running snapshots and backup Jobs, and restrict shard allocation
//! to primaries while the restore runs.

use k8s_openapi::{
    api::{apps::v1::StatefulSet, batch::v1::Job},
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    super::{
        context::RunContext,
        error::StepError,
        notify::Notification,
        step::{StepId, StepReport},
    },
    recorded, remember,
};
use crate::{bounded, cratedb::queries, sql::TableIdent};

const STEP: StepId = StepId::BeforeClusterUpdate;
pub const ROUTING_LABEL: &str = "dc-util-routing-owner";
/// Set on a CronJob while a restore run keeps it suspended (value: the run id).
pub const SUSPENDED_BY_ANNOTATION: &str = "restore.cloud.crate.io/suspended-by";

pub fn backup_selector(name: &str) -> String {
    format!("app.kubernetes.io/component=backup,app.kubernetes.io/name={name}")
}

/// CronJobs are `batch/v1` from Kubernetes 1.21 and only `batch/v1beta1` before; an API server
/// that serves neither has no backup CronJob to suspend.
pub fn cronjob_resource(api_version: &str) -> ApiResource {
    let version = api_version.strip_prefix("batch/").unwrap_or("v1");
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("batch", version, "CronJob"),
        "cronjobs",
    )
}

async fn backup_cronjobs(
    client: &kube::Client,
    namespace: &str,
    cluster: &str,
) -> Result<Option<(ApiResource, DynamicObject)>, StepError> {
    for api_version in ["batch/v1", "batch/v1beta1"] {
        let ar = cronjob_resource(api_version);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        match api
            .list(&ListParams::default().labels(&backup_selector(cluster)))
            .await
        {
            Ok(list) => return Ok(list.items.into_iter().next().map(|c| (ar, c))),
            Err(e) if super::not_found(&e) => {
                tracing::debug!(api_version, "CronJobs are not served in this version");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

pub fn statefulset_selector(name: &str) -> String {
    format!(
        "app.kubernetes.io/component=cratedb,app.kubernetes.io/managed-by=crate-operator,app.kubernetes.io/name={name},app.kubernetes.io/part-of=cratedb"
    )
}

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    if super::nothing_to_restore(ctx) {
        return Ok(super::nothing_to_restore_report());
    }
    let mut result = recorded(ctx, STEP);
    let mut notes = Vec::new();

    // 1. The first backup CronJob of this cluster.
    if result.get("cronjob").is_none() {
        let found = backup_cronjobs(&ctx.client, &ctx.run.namespace, &ctx.run.cluster).await?;
        match found {
            None => {
                result["cronjob"] = Value::Null;
                notes.push("no backup CronJob".to_string());
            }
            Some((ar, cronjob)) => {
                let cronjobs: Api<DynamicObject> =
                    Api::namespaced_with(ctx.client.clone(), &ctx.run.namespace, &ar);
                let name = cronjob.name_any();
                let suspended = cronjob
                    .data
                    .pointer("/spec/suspend")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let marker = cronjob.annotations().get(SUSPENDED_BY_ANNOTATION).cloned();
                // A restore run that never finished left it suspended: this run takes the
                // CronJob over and re-enables it at the end, so backups do not stay off.
                let abandoned = suspended && marker.as_deref().is_some_and(|m| m != ctx.run.run_id);
                // An earlier attempt of this run suspended it and died before recording that.
                let by_this_run = suspended && marker.as_deref() == Some(ctx.run.run_id.as_str());
                let ours = !suspended || abandoned || by_this_run;
                if !suspended || abandoned {
                    let patch = json!({
                        "metadata": {"annotations": {SUSPENDED_BY_ANNOTATION: ctx.run.run_id}},
                        "spec": {"suspend": true}
                    });
                    cronjobs
                        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                }
                notes.push(match (suspended, abandoned) {
                    (false, _) => format!("CronJob {name} suspended"),
                    (true, false) if by_this_run => {
                        format!("CronJob {name} suspended (by an earlier attempt of this run)")
                    }
                    (true, true) => format!(
                        "CronJob {name} was left suspended by restore run {}, which never finished; this run re-enables it",
                        marker.unwrap_or_default()
                    ),
                    (true, false) => format!("CronJob {name} was already suspended and stays so"),
                });
                result["cronjob"] =
                    json!({"name": name, "apiVersion": ar.api_version, "suspendedByUs": ours});
            }
        }
        // Written now: if this step fails further on, cleanup must still know what to re-enable.
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
    let schedule = ctx.config.poll_schedule();
    let waiting_since = Instant::now();
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
            // A jobs table that does not exist (a CRATEDB_OPERATOR_JOBS_TABLE naming another
            // table) shows no snapshot; anything else (a refused login, missing privileges) is
            // an error, not "nothing running".
            Err(e) if queries::is_unknown_relation(&e) => {
                if result.get("jobsTableMissing").is_none() {
                    tracing::warn!(table = %jobs_table, error = %e, "the jobs table does not exist; running snapshots cannot be seen");
                    notes.push(format!(
                        "jobs table {jobs_table} does not exist: running CREATE SNAPSHOT statements cannot be seen"
                    ));
                    result["jobsTableMissing"] = json!(true);
                }
                None
            }
            Err(e) => {
                return Err(StepError::from(e).context(&format!(
                    "cannot check {jobs_table} for a running CREATE SNAPSHOT"
                )));
            }
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
        let delay = schedule.delay(waiting_since.elapsed());
        if Instant::now() + delay >= wait_until {
            return Err(if ctx.past_deadline() {
                ctx.deadline_error()
            } else {
                StepError::permanent(format!(
                    "{waiting_for} (gave up after CRATEDB_OPERATOR_BEFORE_UPDATE_TIMEOUT={} s)",
                    ctx.config.before_update_timeout.as_secs()
                ))
            });
        }
        tracing::info!("{}", bounded::text(&waiting_for, bounded::LOG_VALUE_BYTES));
        ctx.status.state.message = Some(bounded::text(&waiting_for, bounded::MESSAGE_BYTES));
        ctx.status
            .save_progress(ctx.config.progress_write_interval)
            .await?;
        ctx.sleep_unless_cancelled(delay).await?;
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
            let statement = queries::set_global(
                persistence,
                "cluster.routing.allocation.enable",
                "primaries",
            );
            if let Err(error) = ctx.db.query(&statement, &[]).await {
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
