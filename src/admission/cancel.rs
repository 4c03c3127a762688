//! Cancelling a run (SPEC A29): `restore.cloud.crate.io/cancel: <run id>` (or `true`, the
//! active run) is the one change the overlap guard lets through while a run is active, and only
//! until the data is restored. Admission decides and previews what the cancel would do in the
//! run's current step; the restore Job does it. Pure.

use kube::core::{DynamicObject, admission::AdmissionRequest};
use serde_json::Value;

use super::change::{restore_snapshot, run_id_annotation};
use crate::{
    bounded,
    resource::{CANCEL_ANNOTATION, cancel_names_run},
    status::{RestoreStatus, StepState},
};

/// What a write does about cancelling.
#[derive(Debug, PartialEq)]
pub enum CancelReview {
    /// The write sets no new cancel (none, the same one again, or one removed).
    NotACancel,
    /// A cancel of `run_id` that may go through, and what it will do.
    Admit { run_id: String, preview: String },
    /// A cancel that cannot go through, and why.
    Refuse(String),
}

pub fn cancel_annotation(object: Option<&DynamicObject>) -> Option<&str> {
    object?
        .metadata
        .annotations
        .as_ref()?
        .get(CANCEL_ANNOTATION)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Steps after which the data is restored: a cancel would drop restored data, not stop a
/// restore.
const RESTORED: [&str; 2] = ["await_restore", "validate_restore_complete"];

pub fn review(request: &AdmissionRequest<DynamicObject>) -> CancelReview {
    let Some(value) = cancel_annotation(request.object.as_ref()) else {
        return CancelReview::NotACancel;
    };
    if cancel_annotation(request.old_object.as_ref()) == Some(value) {
        return CancelReview::NotACancel;
    }
    let refuse = |why: String| {
        CancelReview::Refuse(format!(
            "metadata.annotations[\"{CANCEL_ANNOTATION}\"]: {why}"
        ))
    };
    let old = request.old_object.as_ref();
    let status: Option<RestoreStatus> = old
        .and_then(|o| o.data.pointer("/status/restore"))
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let active = status
        .as_ref()
        .filter(|s| s.phase.is_some_and(|p| p.is_active()))
        .filter(|s| s.run_id.is_some() && s.run_id.as_deref() == run_id_annotation(old));
    let Some(status) = active else {
        return refuse(
            "no restore is running for this CrateDB, so there is nothing to cancel; remove the annotation".into(),
        );
    };
    let run_id = status.run_id.clone().unwrap_or_default();
    if !cancel_names_run(value, &run_id) {
        return refuse(format!(
            "{value:?} is not the active run; the active run is {run_id} (use that id, or true)"
        ));
    }
    if restore_snapshot(request.object.as_ref()) != restore_snapshot(old) {
        return refuse(
            "a cancel cannot change spec.cluster.restoreSnapshot in the same write; set only the annotation".into(),
        );
    }
    if let Some((step, message)) = failed_step(status) {
        return refuse(format!(
            "run {run_id} already failed in step {step} ({}) and is cleaning up; there is nothing left to cancel",
            bounded::text(&message, 300)
        ));
    }
    if let Some(step) = RESTORED
        .iter()
        .find(|s| status.step(s).and_then(|r| r.state) == Some(StepState::Succeeded))
    {
        return refuse(format!(
            "the data is already restored (step {step} finished) and run {run_id} is finishing; a cancel would not undo it — drop what you do not want once the run has ended"
        ));
    }
    CancelReview::Admit {
        preview: preview(status),
        run_id,
    }
}

fn failed_step(status: &RestoreStatus) -> Option<(String, String)> {
    status
        .steps
        .iter()
        .find(|(_, r)| r.state == Some(StepState::Failed))
        .map(|(id, r)| (id.clone(), r.message.clone().unwrap_or_default()))
}

/// Whether the run has sent its RESTORE (recorded before the statement goes out).
pub fn restore_sent(status: &RestoreStatus) -> bool {
    status
        .step_result("restore_backup_data")
        .and_then(|r| r.get("restoreIssuing"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// What cancelling does now, in the run's current step.
fn preview(status: &RestoreStatus) -> String {
    let run_id = status.run_id.as_deref().unwrap_or_default();
    if !restore_sent(status) {
        let current = status
            .steps
            .iter()
            .find(|(_, r)| r.state == Some(StepState::Running))
            .map(|(id, _)| format!(" (now in step {id})"))
            .unwrap_or_default();
        return format!(
            "cancel: run {run_id} has not sent its RESTORE{current}; it sends none and undoes what it changed so far (repository, settings, backup CronJob), then ends Cancelled"
        );
    }
    let (relations, partitions) = status
        .plan
        .as_ref()
        .map(|p| (p.relations_total(), p.partitions_total()))
        .unwrap_or_default();
    let shown = status
        .plan
        .as_ref()
        .map(|p| bounded::names(&p.relations, 5, 400, ""))
        .unwrap_or_default();
    let mut text = format!(
        "cancel: CrateDB is restoring run {run_id}'s snapshot; the run drops exactly what it creates ({} relation(s){}, {} partition(s)), waits until CrateDB no longer lists the restore, undoes its other changes and ends Cancelled",
        bounded::count(relations),
        if shown.is_empty() {
            String::new()
        } else {
            format!(": {shown}")
        },
        bounded::count(partitions)
    );
    if let Some(kind) = status
        .restore_type
        .as_deref()
        .filter(|t| matches!(*t, "all" | "metadata" | "sections"))
    {
        text.push_str(&format!(
            "; a {kind} restore may already have applied the snapshot's users, privileges, settings or views, which a cancel cannot undo"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RUN: &str = "20261207100000-abcdef";

    fn cr(cancel: Option<&str>, status: Value) -> Value {
        let mut annotations = json!({"restore.cloud.crate.io/run-id": RUN});
        if let Some(c) = cancel {
            annotations[CANCEL_ANNOTATION] = json!(c);
        }
        json!({"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
            "metadata": {"name": "c1", "namespace": "ns", "annotations": annotations},
            "spec": {"cluster": {"restoreSnapshot": {"snapshot": "s1", "type": "tables"}}},
            "status": {"restore": status}})
    }

    fn request(old: Value, new: Value) -> AdmissionRequest<DynamicObject> {
        serde_json::from_value(json!({
            "uid": "u1", "kind": {"group": "cloud.crate.io", "version": "v1", "kind": "CrateDB"},
            "resource": {"group": "cloud.crate.io", "version": "v1", "resource": "cratedbs"},
            "operation": "UPDATE", "userInfo": {"username": "alice"},
            "object": new, "oldObject": old
        }))
        .unwrap()
    }

    fn running(steps: Value) -> Value {
        json!({"runId": RUN, "phase": "Running", "type": "tables", "steps": steps,
            "plan": {"keyword": "TABLE \"doc\".\"a\"", "relations": [{"schema": "doc", "table": "a"}],
                     "relationsCount": 1, "partitions": [], "partitionsCount": 0}})
    }

    fn denial(old: Value, new: Value) -> String {
        match review(&request(old, new)) {
            CancelReview::Refuse(why) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_cancel_before_the_restore_is_sent_previews_a_clean_stop() {
        let status = running(
            json!({"preflight": {"state": "Succeeded"}, "before_cluster_update": {"state": "Running"}}),
        );
        let outcome = review(&request(cr(None, status.clone()), cr(Some("true"), status)));
        let CancelReview::Admit { run_id, preview } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(run_id, RUN);
        assert!(
            preview.contains("has not sent its RESTORE (now in step before_cluster_update)"),
            "{preview}"
        );
    }

    #[test]
    fn a_cancel_while_crate_restores_says_what_is_dropped() {
        let status = running(json!({"restore_backup_data": {"state": "Succeeded",
            "result": {"restoreIssuing": true, "restoreIssued": true}}, "await_restore": {"state": "Running"}}));
        let outcome = review(&request(cr(None, status.clone()), cr(Some(RUN), status)));
        let CancelReview::Admit { preview, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            preview
                .contains("drops exactly what it creates (1 relation(s): doc.a, 0 partition(s))"),
            "{preview}"
        );
    }

    #[test]
    fn refusals_name_the_reason() {
        let idle = json!({"runId": RUN, "phase": "Succeeded"});
        assert!(
            denial(cr(None, idle.clone()), cr(Some("true"), idle))
                .contains("no restore is running")
        );
        let status = running(json!({}));
        assert!(
            denial(
                cr(None, status.clone()),
                cr(Some("20990101000000-000000"), status)
            )
            .contains("is not the active run; the active run is 20261207100000-abcdef")
        );
        let restored = running(json!({"await_restore": {"state": "Succeeded"}}));
        assert!(
            denial(cr(None, restored.clone()), cr(Some("true"), restored))
                .contains("the data is already restored (step await_restore finished)")
        );
        let failed = running(json!({"preflight": {"state": "Failed", "message": "conflict"}}));
        assert!(
            denial(cr(None, failed.clone()), cr(Some("true"), failed))
                .contains("already failed in step preflight")
        );
    }

    #[test]
    fn the_same_cancel_again_or_none_is_not_a_cancel() {
        let status = running(json!({}));
        assert_eq!(
            review(&request(
                cr(Some("true"), status.clone()),
                cr(Some("true"), status.clone())
            )),
            CancelReview::NotACancel
        );
        assert_eq!(
            review(&request(cr(Some("true"), status.clone()), cr(None, status))),
            CancelReview::NotACancel
        );
    }
}
