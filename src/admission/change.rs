//! What an admission request does to `spec.cluster.restoreSnapshot` (SPEC A2, A15).
//!
//! Both webhooks classify the same way, so the mutating webhook stamps a run id exactly when the
//! validating webhook expects one.

use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, Operation},
};
use serde_json::Value;

use crate::resource::RUN_ID_ANNOTATION;

#[derive(Debug, Clone, PartialEq)]
pub enum RestoreChange<'a> {
    /// No restore is asked for: `restoreSnapshot` is absent or its `snapshot` is empty. This is
    /// also the Job's own reset.
    NoRequest,
    /// `restoreSnapshot` is as stored: status writes, unrelated edits and repeated applies.
    Unchanged,
    /// A new restore: a non-empty `snapshot` where the stored object had none, or different
    /// `restoreSnapshot` content.
    NewRequest { restore_snapshot: &'a Value },
}

pub fn restore_snapshot(object: Option<&DynamicObject>) -> Option<&Value> {
    object?.data.pointer("/spec/cluster/restoreSnapshot")
}

pub fn run_id_annotation(object: Option<&DynamicObject>) -> Option<&str> {
    object?
        .metadata
        .annotations
        .as_ref()?
        .get(RUN_ID_ANNOTATION)
        .map(String::as_str)
}

/// Name and namespace of the object under review (the namespace may only be on the request).
pub fn object_identity(request: &AdmissionRequest<DynamicObject>) -> Option<(String, String)> {
    let object = request.object.as_ref()?;
    let name = object.metadata.name.clone().unwrap_or_default();
    let namespace = object
        .metadata
        .namespace
        .clone()
        .or_else(|| request.namespace.clone())
        .unwrap_or_default();
    Some((name, namespace))
}

fn requests_restore(restore_snapshot: &Value) -> bool {
    restore_snapshot
        .get("snapshot")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

pub fn classify(request: &AdmissionRequest<DynamicObject>) -> RestoreChange<'_> {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return RestoreChange::NoRequest;
    }
    let new = match restore_snapshot(request.object.as_ref()) {
        Some(value) if requests_restore(value) => value,
        _ => return RestoreChange::NoRequest,
    };
    match restore_snapshot(request.old_object.as_ref()) {
        Some(old) if requests_restore(old) && old == new => RestoreChange::Unchanged,
        _ => RestoreChange::NewRequest {
            restore_snapshot: new,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(
        op: &str,
        old: Option<Value>,
        new: Option<Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let obj = |rs: Value| {
            json!({"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"cluster": {"restoreSnapshot": rs}}})
        };
        serde_json::from_value(json!({
            "uid": "u", "kind": {"group": "cloud.crate.io", "version": "v1", "kind": "CrateDB"},
            "resource": {"group": "cloud.crate.io", "version": "v1", "resource": "cratedbs"},
            "operation": op, "userInfo": {},
            "object": new.map(obj), "oldObject": old.map(obj)
        }))
        .unwrap()
    }

    #[test]
    fn classifies_changes() {
        let snap = |s: &str| json!({"snapshot": s, "type": "all"});
        let cases = [
            ("CREATE", None, Some(snap("s1")), true),
            ("CREATE", None, Some(snap("")), false),
            ("UPDATE", Some(snap("")), Some(snap("s1")), true),
            (
                "UPDATE",
                Some(snap("s1")),
                Some(json!({"snapshot": "s1", "type": "metadata"})),
                true,
            ),
            ("UPDATE", Some(snap("s1")), Some(snap("s2")), true),
            ("UPDATE", None, Some(snap("s1")), true),
            ("DELETE", Some(snap("s1")), None, false),
        ];
        for (op, old, new, expect_new) in cases {
            let req = request(op, old.clone(), new.clone());
            let change = classify(&req);
            assert_eq!(
                matches!(change, RestoreChange::NewRequest { .. }),
                expect_new,
                "{op} {old:?} -> {new:?}: {change:?}"
            );
        }
        assert_eq!(
            classify(&request("UPDATE", Some(snap("s1")), Some(snap("s1")))),
            RestoreChange::Unchanged
        );
        // The Job's reset: snapshot emptied, type removed.
        assert_eq!(
            classify(&request(
                "UPDATE",
                Some(snap("s1")),
                Some(json!({"snapshot": ""}))
            )),
            RestoreChange::NoRequest
        );
    }
}
