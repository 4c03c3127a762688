//! Cluster back to normal (SPEC B§4.9): the backup CronJob re-enabled from this run's own
//! record (never one that was suspended before), shard allocation reset, and the StatefulSet
//! label removed even when the SQL failed.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{
    super::{
        context::RunContext,
        error::StepError,
        step::{StepId, StepReport},
    },
    before_cluster_update::{ROUTING_LABEL, SUSPENDED_BY_ANNOTATION, cronjob_resource},
    not_found,
};
use crate::cratedb::queries;

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let record = ctx
        .status
        .state
        .step_result(StepId::BeforeClusterUpdate.as_str())
        .cloned()
        .unwrap_or_default();
    let mut notes = Vec::new();
    let mut errors: Vec<StepError> = Vec::new();

    match record.get("cronjob") {
        Some(cronjob) if cronjob.get("suspendedByUs").and_then(Value::as_bool) == Some(true) => {
            let name = cronjob
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let api_version = cronjob
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("batch/v1");
            let api: Api<DynamicObject> = Api::namespaced_with(
                ctx.client.clone(),
                &ctx.run.namespace,
                &cronjob_resource(api_version),
            );
            match api
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({
                        "metadata": {"annotations": {SUSPENDED_BY_ANNOTATION: null}},
                        "spec": {"suspend": false}
                    })),
                )
                .await
            {
                Ok(_) => notes.push(format!("CronJob {name} re-enabled")),
                Err(e) if not_found(&e) => notes.push(format!("CronJob {name} is gone")),
                Err(e) => errors.push(e.into()),
            }
        }
        Some(Value::Object(cronjob)) => notes.push(format!(
            "CronJob {} left suspended as it was before the restore",
            cronjob
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        )),
        _ => notes.push("no CronJob was disabled".into()),
    }

    if let Some(routing) = record.get("routing") {
        match ctx
            .cleanup_sql(&queries::reset_global("cluster.routing.allocation.enable"))
            .await
        {
            Ok(_) => notes.push("shard allocation reset".into()),
            Err(e) => errors
                .push(StepError::from(e).context("cannot reset cluster.routing.allocation.enable")),
        }
        // Removed whatever happened to the SQL above.
        let statefulsets: Api<StatefulSet> =
            Api::namespaced(ctx.client.clone(), &ctx.run.namespace);
        for name in routing
            .get("statefulsets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let patch = json!({"metadata": {"labels": {ROUTING_LABEL: null}}});
            match statefulsets
                .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => errors.push(e.into()),
            }
        }
    }

    if let Some(transient) = errors.iter().find(|e| e.is_transient()) {
        return Err(transient.clone());
    }
    if !errors.is_empty() {
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(StepError::permanent(messages.join("; ")));
    }
    Ok(StepReport::new(notes.join("; ")))
}
