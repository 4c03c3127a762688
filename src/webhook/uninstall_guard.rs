//! `POST /guard-uninstall`: keeps `helm uninstall` from stranding running restores.
//!
//! Uninstalling the chart deletes what a restore Job needs (its ServiceAccount, Role and
//! RoleBinding in every restore namespace): a running Job's next API call is refused, no
//! replacement Pod can start, and the run never reaches a terminal status. So the chart has a
//! `pre-delete` hook, a ConfigMap labelled [`GUARD_LABEL`] that lists the restore namespaces,
//! and a validating webhook for exactly that ConfigMap which lands here. While a restore Job in
//! one of those namespaces has not finished, its creation is denied with the running restores
//! named; Helm then stops before deleting anything and prints the denial. When none runs, the
//! hook is allowed and the uninstall goes on. `helm uninstall --no-hooks` skips the check.

use k8s_openapi::api::batch::v1::Job;
use kube::{
    Api, Client,
    api::ListParams,
    core::{
        DynamicObject,
        admission::{AdmissionRequest, AdmissionResponse},
    },
};
use serde_json::Value;

use crate::{
    admission::{Outcome, ReviewError, decode, encode_review},
    restore_job::is_finished,
    run::{CLUSTER_ANNOTATION, labels},
};

/// The label of the chart's pre-delete hook ConfigMap; its value is the release's full name.
pub const GUARD_LABEL: &str = "restore.cloud.crate.io/uninstall-guard";
/// The hook ConfigMap's key listing the restore namespaces, comma-separated.
pub const NAMESPACES_KEY: &str = "namespaces";

/// A restore Job that has not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub namespace: String,
    pub cluster: String,
    pub job: String,
    pub run_id: String,
}

fn running(namespace: &str, job: &Job) -> Running {
    let meta = &job.metadata;
    let label = |key: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let cluster = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLUSTER_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| label(labels::CLUSTER));
    Running {
        namespace: namespace.to_string(),
        cluster,
        job: meta.name.clone().unwrap_or_default(),
        run_id: label(labels::RUN_ID),
    }
}

/// The message Helm prints when the uninstall is refused. Pure.
pub fn refusal(running: &[Running]) -> String {
    let listed: Vec<String> = running
        .iter()
        .map(|r| {
            format!(
                "CrateDB {}/{} (run {}, Job {})",
                r.namespace, r.cluster, r.run_id, r.job
            )
        })
        .collect();
    format!(
        "{} restore(s) still running: {}. Uninstalling now would delete the restore Jobs' ServiceAccount and Role and leave them unable to finish or report. Wait until they end (kubectl get jobs -A -l {}={}), then uninstall again; `helm uninstall --no-hooks` skips this check and strands them",
        running.len(),
        listed.join(", "),
        labels::COMPONENT,
        labels::COMPONENT_VALUE
    )
}

/// The restore namespaces the hook lists (its `namespaces` key). Pure.
pub fn namespaces(object: &DynamicObject) -> Vec<String> {
    object
        .data
        .get("data")
        .and_then(|d| d.get(NAMESPACES_KEY))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

fn is_guard(request: &AdmissionRequest<DynamicObject>) -> Option<&DynamicObject> {
    let object = request.object.as_ref()?;
    let labelled = object
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(GUARD_LABEL));
    (request.kind.group.is_empty() && request.kind.kind == "ConfigMap" && labelled)
        .then_some(object)
}

/// The unfinished restore Jobs in `namespaces`.
pub async fn running_restores(
    client: &Client,
    namespaces: &[String],
) -> Result<Vec<Running>, kube::Error> {
    let selector = format!("{}={}", labels::COMPONENT, labels::COMPONENT_VALUE);
    let mut found = Vec::new();
    for namespace in namespaces {
        let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
        let list = jobs.list(&ListParams::default().labels(&selector)).await?;
        found.extend(
            list.items
                .iter()
                .filter(|j| !is_finished(j))
                .map(|j| running(namespace, j)),
        );
    }
    Ok(found)
}

/// Decides one review of the hook ConfigMap. Anything else is allowed untouched.
pub async fn review(client: &Client, body: &[u8]) -> Result<(Value, Outcome), ReviewError> {
    let request = decode(body)?;
    let response = AdmissionResponse::from(&request);
    let Some(object) = is_guard(&request) else {
        return Ok((encode_review(&response.into_review()), Outcome::Allowed));
    };
    let namespaces = namespaces(object);
    let (response, outcome) = match running_restores(client, &namespaces).await {
        Ok(running) if running.is_empty() => {
            tracing::info!(namespaces = ?namespaces, "no restore running: the uninstall may go on");
            (response, Outcome::Allowed)
        }
        Ok(running) => {
            let message = refusal(&running);
            tracing::warn!(%message, "uninstall refused");
            (
                deny(response, 409, "RestoresRunning", message),
                Outcome::Denied("RestoresRunning"),
            )
        }
        Err(error) => {
            let message = format!(
                "cannot check whether restores are running in {} ({error}); the uninstall stops here so that none is stranded. Fix the webhook's access, or uninstall with --no-hooks",
                namespaces.join(", ")
            );
            tracing::warn!(%message, "uninstall refused");
            (
                deny(response, 500, "InternalError", message),
                Outcome::Denied("InternalError"),
            )
        }
    };
    Ok((encode_review(&response.into_review()), outcome))
}

fn deny(
    response: AdmissionResponse,
    code: u16,
    reason: &str,
    message: String,
) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.code = code;
    response.result.reason = reason.to_string();
    response.result.status = Some(kube::core::response::StatusSummary::Failure);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(name: &str, labels: Value, conditions: Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    #[test]
    fn only_unfinished_jobs_count_and_the_refusal_names_them() {
        let labels = json!({"restore.cloud.crate.io/cluster": "orders", "restore.cloud.crate.io/run-id": "r1"});
        let active = job("restore-orders-r1", labels.clone(), json!([]));
        let done = job(
            "restore-orders-r0",
            labels.clone(),
            json!([{"type": "Complete", "status": "True"}]),
        );
        let failed = job(
            "restore-orders-rf",
            labels.clone(),
            json!([{"type": "Failed", "status": "True"}]),
        );
        let suspended = job(
            "restore-orders-rs",
            labels,
            json!([{"type": "Suspended", "status": "True"}]),
        );
        assert!(!is_finished(&active));
        assert!(is_finished(&done));
        assert!(is_finished(&failed));
        assert!(!is_finished(&suspended));
        let message = refusal(&[running("dbs", &active)]);
        assert!(
            message.starts_with(
                "1 restore(s) still running: CrateDB dbs/orders (run r1, Job restore-orders-r1)"
            ),
            "{message}"
        );
        assert!(message.contains("--no-hooks"), "{message}");
    }

    #[test]
    fn the_hook_lists_its_namespaces() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "g", "labels": {GUARD_LABEL: "e2e"}},
            "data": {"namespaces": "dbs, fleet-a,,fleet-b "}
        }))
        .unwrap();
        assert_eq!(namespaces(&object), ["dbs", "fleet-a", "fleet-b"]);
    }
}
