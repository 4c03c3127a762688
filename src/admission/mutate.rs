//! The mutating webhook (SPEC A2, A7): for a newly requested restore, stamp the run id, write the
//! defaults, and seed `status.restore` with the Pending phase. A minimal JSON patch that adds only
//! what is missing, so running it twice changes nothing (reinvocation-safe).

use json_patch::{AddOperation, Patch, PatchOperation, jsonptr::PointerBuf};
use k8s_openapi::jiff::Timestamp;
use kube::core::{DynamicObject, admission::AdmissionRequest};
use serde_json::{Value, json};

use super::{
    cancel::{self, CancelReview, cancel_annotation},
    change::{
        RestoreChange, classify, defaults, object_identity, restore_snapshot, run_id_annotation,
    },
};
use crate::{
    resource::{CANCEL_ANNOTATION, RUN_ID_ANNOTATION},
    restore_type::RestoreType,
    run::RunIdentity,
    status::Phase,
};

fn add(tokens: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(tokens.iter().copied()),
        value,
    })
}

/// The patch for one review; empty when nothing needs to change. `fresh_run_id` is the id a new
/// request gets.
pub fn patch_for(
    request: &AdmissionRequest<DynamicObject>,
    fresh_run_id: &str,
    now: Timestamp,
) -> Patch {
    match classify(request) {
        RestoreChange::NoRequest => Patch(Vec::new()),
        RestoreChange::Unchanged => {
            let mut patch = keep_run(request);
            patch.0.extend(cancel_record(request, now));
            patch
        }
        RestoreChange::NewRequest { restore_snapshot } => {
            new_run(request, restore_snapshot, fresh_run_id, now)
        }
    }
}

/// An admitted cancel records who asked and when (SPEC A29); a refused one is left to the
/// validating webhook to deny.
fn cancel_record(request: &AdmissionRequest<DynamicObject>, now: Timestamp) -> Vec<PatchOperation> {
    let CancelReview::Admit { .. } = cancel::review(request) else {
        return Vec::new();
    };
    if request
        .object
        .as_ref()
        .and_then(|o| o.data.pointer("/status/restore"))
        .is_none()
    {
        return Vec::new();
    }
    let who = request
        .user_info
        .username
        .clone()
        .unwrap_or_else(|| "(unknown user)".into());
    vec![
        add(&["status", "restore", "cancelledBy"], json!(who)),
        add(
            &["status", "restore", "cancelRequestedAt"],
            json!(now.to_string()),
        ),
    ]
}

/// For the operator runner: the defaults of a request that asks for a restore, nothing else.
pub fn defaults_patch(request: &AdmissionRequest<DynamicObject>) -> Patch {
    match classify(request) {
        RestoreChange::NoRequest => Patch(Vec::new()),
        RestoreChange::Unchanged | RestoreChange::NewRequest { .. } => Patch(
            restore_snapshot(request.object.as_ref())
                .map(default_ops)
                .unwrap_or_default(),
        ),
    }
}

/// The defaults a request does not spell out (SPEC A7).
fn default_ops(restore_snapshot: &Value) -> Vec<PatchOperation> {
    defaults()
        .into_iter()
        .filter(|(field, _)| restore_snapshot.get(*field).is_none_or(Value::is_null))
        .map(|(field, value)| add(&["spec", "cluster", "restoreSnapshot", field], json!(value)))
        .collect()
}

/// Sets the run-id annotation to `run_id` unless it already is.
fn annotation_op(object: &DynamicObject, run_id: &str) -> Option<PatchOperation> {
    match object.metadata.annotations.as_ref() {
        None => Some(add(
            &["metadata", "annotations"],
            json!({RUN_ID_ANNOTATION: run_id}),
        )),
        Some(a) if a.get(RUN_ID_ANNOTATION).map(String::as_str) != Some(run_id) => Some(add(
            &["metadata", "annotations", RUN_ID_ANNOTATION],
            json!(run_id),
        )),
        Some(_) => None,
    }
}

/// The same request written again (SPEC A23): whatever tool wrote it, the run it started keeps
/// its id and its status. `kubectl replace` of the manifest as written drops the annotation and
/// `status` (this CRD has no status subresource); a server-side apply may give up the defaulted
/// fields. All of that is put back, and a run id edited by hand is put back too.
fn keep_run(request: &AdmissionRequest<DynamicObject>) -> Patch {
    let (Some(object), Some(old)) = (request.object.as_ref(), request.old_object.as_ref()) else {
        return Patch(Vec::new());
    };
    let mut ops = restore_snapshot(Some(object))
        .map(default_ops)
        .unwrap_or_default();
    if let Some(run_id) = run_id_annotation(Some(old))
        && let Some(op) = annotation_op(object, run_id)
    {
        ops.push(op);
    }
    if object.data.pointer("/status/restore").is_none()
        && let Some(stored) = old.data.pointer("/status/restore")
    {
        match object.data.get("status") {
            Some(Value::Object(_)) => ops.push(add(&["status", "restore"], stored.clone())),
            _ => ops.push(add(&["status"], json!({"restore": stored}))),
        }
    }
    Patch(ops)
}

/// The run id this request keeps: one this webhook stamped in an earlier invocation of the same
/// review (the object's seeded `status.restore` names it, moments ago). A run id a user wrote is
/// never taken over: it could name another run's Job, Lease or leftovers.
fn stamped_earlier<'a>(
    request: &'a AdmissionRequest<DynamicObject>,
    object: &'a DynamicObject,
    now: Timestamp,
) -> Option<&'a str> {
    let id = run_id_annotation(Some(object)).filter(|id| crate::run::is_valid_run_id(id))?;
    if Some(id) == run_id_annotation(request.old_object.as_ref()) {
        return None;
    }
    let seeded = object.data.pointer("/status/restore")?;
    let requested_at: Timestamp = seeded.get("requestedAt")?.as_str()?.parse().ok()?;
    let fresh = now.duration_since(requested_at).unsigned_abs() <= super::lock::ADMISSION_GRACE;
    (seeded.get("runId").and_then(Value::as_str) == Some(id) && fresh).then_some(id)
}

fn new_run(
    request: &AdmissionRequest<DynamicObject>,
    restore_snapshot: &Value,
    fresh_run_id: &str,
    now: Timestamp,
) -> Patch {
    let (Some(object), Some((name, namespace))) =
        (request.object.as_ref(), object_identity(request))
    else {
        return Patch(Vec::new());
    };
    if name.is_empty() {
        // Validation denies restores on unnamed (generateName) objects; nothing to stamp.
        return Patch(Vec::new());
    }

    let run_id = stamped_earlier(request, object, now)
        .unwrap_or(fresh_run_id)
        .to_string();
    let mut ops: Vec<PatchOperation> = annotation_op(object, &run_id).into_iter().collect();
    // A cancel left from an earlier run must never cancel this one.
    if cancel_annotation(Some(object)).is_some() {
        ops.push(PatchOperation::Remove(json_patch::RemoveOperation {
            path: PointerBuf::from_tokens(["metadata", "annotations", CANCEL_ANNOTATION]),
        }));
    }
    ops.extend(default_ops(restore_snapshot));

    let restore_type = restore_snapshot
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_string);

    let seeded = object
        .data
        .pointer("/status/restore/runId")
        .and_then(Value::as_str)
        == Some(run_id.as_str());
    if !seeded {
        let run = RunIdentity::new(&namespace, &name, &run_id);
        let snapshot = restore_snapshot
            .get("snapshot")
            .cloned()
            .unwrap_or(Value::Null);
        let mut restore = json!({
            "runId": run_id,
            "snapshot": snapshot,
            "type": restore_type.unwrap_or_else(|| RestoreType::default().as_str().to_string()),
            "phase": Phase::Pending,
            "jobName": run.job_name(),
            "repository": run.repository(),
            "requestedAt": now.to_string(),
            "message": format!("Restore admitted; waiting for Job {} to start.", run.job_name()),
        });
        // A run that never finished may have left raised recovery settings behind; its saved
        // originals are what the new run must put back, not the values it finds.
        if let Some(previous) = request
            .old_object
            .as_ref()
            .and_then(|o| o.data.pointer("/status/restore"))
            .filter(|p| {
                matches!(
                    p.get("phase").and_then(Value::as_str),
                    Some("Pending" | "Running")
                )
            })
            .filter(|p| p.get("runId").and_then(Value::as_str) != Some(run_id.as_str()))
        {
            if let Some(saved) = previous.get("savedSettings").filter(|v| v.is_object()) {
                restore["savedSettings"] = saved.clone();
            }
            // What the new run's cleanup must also undo for the unfinished one.
            restore["abandonedRun"] = json!({
                "runId": previous.get("runId").cloned().unwrap_or(Value::Null),
                "repository": previous.get("repository").cloned().unwrap_or(Value::Null),
                "grandCentral": previous
                    .pointer("/steps/restore_backup_data/result/grandCentral")
                    .cloned()
                    .unwrap_or(Value::Null),
            });
        }
        match object.data.get("status") {
            Some(Value::Object(_)) => ops.push(add(&["status", "restore"], restore)),
            _ => ops.push(add(&["status"], json!({"restore": restore}))),
        }
    }
    Patch(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(old: Option<Value>, new: Value) -> AdmissionRequest<DynamicObject> {
        serde_json::from_value(json!({
            "uid": "u", "kind": {"group": "cloud.crate.io", "version": "v1", "kind": "CrateDB"},
            "resource": {"group": "cloud.crate.io", "version": "v1", "resource": "cratedbs"},
            "operation": if old.is_some() { "UPDATE" } else { "CREATE" },
            "namespace": "ns", "userInfo": {},
            "object": new, "oldObject": old
        }))
        .unwrap()
    }

    fn cr(annotations: Option<Value>, rs: Value, status: Option<Value>) -> Value {
        let mut v = json!({"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
            "metadata": {"name": "c1", "namespace": "ns"},
            "spec": {"cluster": {"restoreSnapshot": rs}}});
        if let Some(a) = annotations {
            v["metadata"]["annotations"] = a;
        }
        if let Some(s) = status {
            v["status"] = s;
        }
        v
    }

    fn now() -> Timestamp {
        "2026-11-25T08:25:42Z".parse().unwrap()
    }

    fn apply(doc: &Value, patch: &Patch) -> Value {
        let mut doc = doc.clone();
        json_patch::patch(&mut doc, patch).unwrap();
        doc
    }

    #[test]
    fn a_new_run_drops_a_cancel_left_from_an_earlier_one() {
        let old = cr(
            Some(
                json!({"restore.cloud.crate.io/run-id": "r0", "restore.cloud.crate.io/cancel": "true"}),
            ),
            json!({"snapshot": ""}),
            Some(json!({"restore": {"runId": "r0", "phase": "Cancelled"}})),
        );
        let mut new = old.clone();
        new["spec"]["cluster"]["restoreSnapshot"]["snapshot"] = json!("s2");
        let patched = apply(
            &new,
            &patch_for(&request(Some(old), new.clone()), "r1", now()),
        );
        assert_eq!(
            patched["metadata"]["annotations"],
            json!({"restore.cloud.crate.io/run-id": "r1"})
        );
    }

    #[test]
    fn an_admitted_cancel_records_who_asked() {
        let running = json!({"restore": {"runId": "r1", "phase": "Running", "steps": {}}});
        let old = cr(
            Some(json!({"restore.cloud.crate.io/run-id": "r1"})),
            json!({"snapshot": "s1", "type": "tables", "backupProvider": "aws"}),
            Some(running),
        );
        let mut new = old.clone();
        new["metadata"]["annotations"]["restore.cloud.crate.io/cancel"] = json!("r1");
        let mut review = request(Some(old), new.clone());
        review.user_info.username = Some("alice".into());
        let patched = apply(&new, &patch_for(&review, "r9", now()));
        assert_eq!(patched["status"]["restore"]["cancelledBy"], "alice");
        assert_eq!(
            patched["status"]["restore"]["cancelRequestedAt"],
            "2026-11-25T08:25:42Z"
        );
        assert_eq!(
            patched["metadata"]["annotations"]["restore.cloud.crate.io/run-id"],
            "r1"
        );
    }

    #[test]
    fn new_request_gets_run_id_defaults_and_pending_status() {
        let new = cr(None, json!({"snapshot": "s1"}), None);
        let patch = patch_for(&request(None, new.clone()), "r1", now());
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!([
                {"op": "add", "path": "/metadata/annotations", "value": {"restore.cloud.crate.io/run-id": "r1"}},
                {"op": "add", "path": "/spec/cluster/restoreSnapshot/type", "value": "tables"},
                {"op": "add", "path": "/spec/cluster/restoreSnapshot/backupProvider", "value": "aws"},
                {"op": "add", "path": "/status", "value": {"restore": {
                    "runId": "r1", "snapshot": "s1", "type": "tables", "phase": "Pending",
                    "jobName": "restore-c1-r1", "repository": "restore_backup_r1",
                    "requestedAt": "2026-11-25T08:25:42Z",
                    "message": "Restore admitted; waiting for Job restore-c1-r1 to start."}}}
            ])
        );
        // Idempotent: the patched object needs no further patch, whatever id is offered.
        let patched = apply(&new, &patch);
        assert!(patch_for(&request(None, patched), "r2", now()).0.is_empty());
    }

    #[test]
    fn existing_annotations_and_status_are_extended_not_replaced() {
        let old = cr(
            Some(json!({"keep": "me", RUN_ID_ANNOTATION: "r0"})),
            json!({"snapshot": ""}),
            Some(json!({"health": "GREEN", "restore": {"runId": "r0", "phase": "Succeeded"}})),
        );
        let new = cr(
            Some(json!({"keep": "me", RUN_ID_ANNOTATION: "r0"})),
            json!({"snapshot": "s2", "type": "all", "backupProvider": "azure_blob"}),
            Some(json!({"health": "GREEN", "restore": {"runId": "r0", "phase": "Succeeded"}})),
        );
        let patch = patch_for(&request(Some(old.clone()), new.clone()), "r1", now());
        let patched = apply(&new, &patch);
        assert_eq!(patched["metadata"]["annotations"]["keep"], "me");
        assert_eq!(patched["metadata"]["annotations"][RUN_ID_ANNOTATION], "r1");
        assert_eq!(patched["status"]["health"], "GREEN");
        assert_eq!(patched["status"]["restore"]["runId"], "r1");
        assert_eq!(patched["status"]["restore"]["type"], "all");
        assert_eq!(
            patched["spec"]["cluster"]["restoreSnapshot"]["backupProvider"],
            "azure_blob"
        );
        assert_eq!(patch.0.len(), 2, "{patch:?}");
        // Reinvoked on its own output: nothing more to do.
        assert!(
            patch_for(&request(Some(old), patched), "r9", now())
                .0
                .is_empty()
        );
    }

    #[test]
    fn settings_saved_by_an_unfinished_run_are_carried_over() {
        let abandoned = json!({"restore": {"runId": "r0", "phase": "Running", "repository": "restore_backup_r0",
            "savedSettings": {"maxBytesPerSec": "40mb", "clusterConcurrentRebalance": 2},
            "steps": {"restore_backup_data": {"result": {"grandCentral": {"deployment": true, "routing": []}}}}}});
        let old = cr(
            Some(json!({RUN_ID_ANNOTATION: "r0"})),
            json!({"snapshot": ""}),
            Some(abandoned.clone()),
        );
        let new = cr(
            Some(json!({RUN_ID_ANNOTATION: "r0"})),
            json!({"snapshot": "s2"}),
            Some(abandoned),
        );
        let patched = apply(
            &new,
            &patch_for(&request(Some(old.clone()), new.clone()), "r1", now()),
        );
        let restore = &patched["status"]["restore"];
        assert_eq!(restore["runId"], "r1");
        assert_eq!(
            restore["savedSettings"],
            json!({"maxBytesPerSec": "40mb", "clusterConcurrentRebalance": 2})
        );
        assert_eq!(restore["abandonedRun"]["runId"], "r0");
        assert_eq!(restore["abandonedRun"]["repository"], "restore_backup_r0");
        assert_eq!(
            restore["abandonedRun"]["grandCentral"],
            json!({"deployment": true, "routing": []})
        );
        // A finished run's settings were put back already: nothing to inherit.
        let finished = json!({"restore": {"runId": "r0", "phase": "Succeeded", "savedSettings": {"maxBytesPerSec": "40mb"}}});
        let old = cr(None, json!({"snapshot": ""}), Some(finished.clone()));
        let new = cr(None, json!({"snapshot": "s2"}), Some(finished));
        let patched = apply(
            &new,
            &patch_for(&request(Some(old), new.clone()), "r1", now()),
        );
        assert!(patched["status"]["restore"].get("savedSettings").is_none());
        assert!(patched["status"]["restore"].get("abandonedRun").is_none());
    }

    #[test]
    fn a_run_id_written_by_the_user_is_replaced() {
        // A new request carrying a run id (and even a matching status) the webhook did not stamp
        // in this review: the id could name another run's Job or leftovers.
        let new = cr(
            Some(json!({RUN_ID_ANNOTATION: "20240101000000-abcdef"})),
            json!({"snapshot": "s1"}),
            Some(json!({"restore": {"runId": "20240101000000-abcdef",
                "requestedAt": "2024-01-01T00:00:00Z"}})),
        );
        let patched = apply(&new, &patch_for(&request(None, new.clone()), "r1", now()));
        assert_eq!(patched["metadata"]["annotations"][RUN_ID_ANNOTATION], "r1");
        assert_eq!(patched["status"]["restore"]["runId"], "r1");
        assert_eq!(
            patched["status"]["restore"]["requestedAt"],
            "2026-11-25T08:25:42Z"
        );
    }

    #[test]
    fn the_same_request_written_again_keeps_its_run_and_status() {
        let stored_status =
            json!({"restore": {"runId": "r0", "phase": "Running", "jobName": "restore-c1-r0"}});
        let stored = cr(
            Some(json!({RUN_ID_ANNOTATION: "r0", "other": "x"})),
            json!({"snapshot": "s1", "type": "tables", "backupProvider": "aws"}),
            Some(stored_status.clone()),
        );
        // kubectl replace of the manifest as written: no defaults, no annotation, no status.
        let replaced = cr(None, json!({"snapshot": "s1"}), None);
        let patched = apply(
            &replaced,
            &patch_for(
                &request(Some(stored.clone()), replaced.clone()),
                "r1",
                now(),
            ),
        );
        assert_eq!(patched["metadata"]["annotations"][RUN_ID_ANNOTATION], "r0");
        assert_eq!(patched["status"], stored_status);
        assert_eq!(
            patched["spec"]["cluster"]["restoreSnapshot"],
            json!({"snapshot": "s1", "type": "tables", "backupProvider": "aws"})
        );
        // A run id edited by hand on an unchanged request is put back; the Job's own status
        // writes are left alone.
        let edited = cr(
            Some(json!({RUN_ID_ANNOTATION: "mine", "other": "x"})),
            json!({"snapshot": "s1", "type": "tables", "backupProvider": "aws"}),
            Some(json!({"restore": {"runId": "r0", "phase": "Succeeded"}})),
        );
        let patch = patch_for(&request(Some(stored.clone()), edited.clone()), "r1", now());
        let patched = apply(&edited, &patch);
        assert_eq!(patched["metadata"]["annotations"][RUN_ID_ANNOTATION], "r0");
        assert_eq!(patched["metadata"]["annotations"]["other"], "x");
        assert_eq!(patched["status"]["restore"]["phase"], "Succeeded");
        assert_eq!(patch.0.len(), 1, "{patch:?}");
    }

    #[test]
    fn no_patch_without_a_new_request() {
        let stored = cr(
            Some(json!({RUN_ID_ANNOTATION: "r0"})),
            json!({"snapshot": "s1", "type": "tables", "backupProvider": "aws"}),
            None,
        );
        assert!(
            patch_for(&request(Some(stored.clone()), stored.clone()), "r1", now())
                .0
                .is_empty()
        );
        let reset = cr(
            Some(json!({RUN_ID_ANNOTATION: "r0"})),
            json!({"snapshot": ""}),
            None,
        );
        assert!(
            patch_for(&request(Some(stored), reset), "r1", now())
                .0
                .is_empty()
        );
    }
}
