//! What an admission request does to `spec.cluster.restoreSnapshot` (SPEC A2, A15, A23).
//!
//! Both webhooks classify the same way, so the mutating webhook stamps a run id exactly when the
//! validating webhook expects one. The request is compared with its defaults filled in: a
//! server-side apply whose manager gives up the defaulted fields, a `kubectl replace` of the
//! manifest as written and a client-side apply all describe the same request.

use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, Operation},
};
use serde_json::Value;

use crate::{
    repository::StorageProvider, resource::RUN_ID_ANNOTATION, restore_options::option_annotations,
    restore_type::RestoreType,
};

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

/// The fields the mutating webhook fills in when they are absent, with their values (SPEC A7).
pub fn defaults() -> [(&'static str, &'static str); 2] {
    [
        ("type", RestoreType::default().as_str()),
        ("backupProvider", StorageProvider::default().as_str()),
    ]
}

/// `restoreSnapshot` as the product reads it: defaults filled in and `null` fields dropped (a
/// field set to `null` and an absent one mean the same). The one definition of "the same
/// request" both webhooks use.
pub fn requested(restore_snapshot: &Value) -> Value {
    let Value::Object(fields) = restore_snapshot else {
        return restore_snapshot.clone();
    };
    let mut fields: serde_json::Map<String, Value> = fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (field, value) in defaults() {
        fields
            .entry(field)
            .or_insert_with(|| Value::String(value.into()));
    }
    Value::Object(fields)
}

/// The restore an object asks for, as one value: `restoreSnapshot` with its defaults and the
/// option annotations (SPEC A27); `None` when it asks for none. Two writes ask for the same
/// restore exactly when these are equal.
pub fn request_of(object: Option<&DynamicObject>) -> Option<Value> {
    let restore_snapshot = restore_snapshot(object).filter(|v| requests_restore(v))?;
    let options = object
        .and_then(|o| o.metadata.annotations.as_ref())
        .map(option_annotations)
        .unwrap_or_default();
    Some(serde_json::json!({
        "restoreSnapshot": requested(restore_snapshot),
        "options": options,
    }))
}

pub fn classify(request: &AdmissionRequest<DynamicObject>) -> RestoreChange<'_> {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return RestoreChange::NoRequest;
    }
    let (Some(new), Some(restore_snapshot)) = (
        request_of(request.object.as_ref()),
        restore_snapshot(request.object.as_ref()),
    ) else {
        return RestoreChange::NoRequest;
    };
    if request_of(request.old_object.as_ref()).as_ref() == Some(&new) {
        RestoreChange::Unchanged
    } else {
        RestoreChange::NewRequest { restore_snapshot }
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
        // The same request written with or without the defaults the mutating webhook filled in
        // (kubectl replace of the manifest, a server-side apply that gave the fields up) or with
        // explicit nulls: unchanged.
        let stored = json!({"snapshot": "s1", "type": "tables", "backupProvider": "aws",
            "tables": ["t1"]});
        for written in [
            json!({"snapshot": "s1", "tables": ["t1"]}),
            json!({"snapshot": "s1", "tables": ["t1"], "type": "tables"}),
            json!({"snapshot": "s1", "tables": ["t1"], "backupProvider": null}),
        ] {
            assert_eq!(
                classify(&request(
                    "UPDATE",
                    Some(stored.clone()),
                    Some(written.clone())
                )),
                RestoreChange::Unchanged,
                "{written}"
            );
            assert_eq!(
                classify(&request(
                    "UPDATE",
                    Some(written.clone()),
                    Some(stored.clone())
                )),
                RestoreChange::Unchanged,
                "{written}"
            );
        }
        // A default written differently is a different request.
        assert!(matches!(
            classify(&request(
                "UPDATE",
                Some(stored.clone()),
                Some(json!({"snapshot": "s1", "tables": ["t1"], "type": "all"}))
            )),
            RestoreChange::NewRequest { .. }
        ));
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

    #[test]
    fn options_are_part_of_the_request() {
        let obj = |annotations: Value| -> Value {
            json!({"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
                "metadata": {"name": "c", "namespace": "ns", "annotations": annotations},
                "spec": {"cluster": {"restoreSnapshot": {"snapshot": "s1"}}}})
        };
        let review = |old: Value, new: Value| -> AdmissionRequest<DynamicObject> {
            serde_json::from_value(json!({
                "uid": "u", "kind": {"group": "cloud.crate.io", "version": "v1", "kind": "CrateDB"},
                "resource": {"group": "cloud.crate.io", "version": "v1", "resource": "cratedbs"},
                "operation": "UPDATE", "userInfo": {}, "object": new, "oldObject": old
            }))
            .unwrap()
        };
        let skip = json!({"restore.cloud.crate.io/on-conflict": "skip",
            RUN_ID_ANNOTATION: "r1", "unrelated": "a"});
        // The run id and other annotations are not part of the request...
        let same = json!({"restore.cloud.crate.io/on-conflict": "skip",
            RUN_ID_ANNOTATION: "r2", "unrelated": "b"});
        assert_eq!(
            classify(&review(obj(skip.clone()), obj(same))),
            RestoreChange::Unchanged
        );
        // ...an option is: changing it during a run is a new request (and so an overlap).
        let fail = json!({"restore.cloud.crate.io/on-conflict": "fail", RUN_ID_ANNOTATION: "r1"});
        assert!(matches!(
            classify(&review(obj(skip.clone()), obj(fail))),
            RestoreChange::NewRequest { .. }
        ));
        assert!(matches!(
            classify(&review(obj(skip), obj(json!({RUN_ID_ANNOTATION: "r1"})))),
            RestoreChange::NewRequest { .. }
        ));
    }
}
