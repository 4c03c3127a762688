//! The JSON merge patch (RFC 7396) that turns one document into another, so a status write
//! carries what changed and not the whole status (SPEC A28). Pure.

use serde_json::{Map, Value};

/// The merge patch that, applied to `old`, gives `new`; `None` when they are equal. Objects are
/// compared key by key (a key that is gone becomes `null`); anything else that differs is
/// replaced whole, arrays included, as RFC 7396 has it. A `null` in `new` means "absent".
pub fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(before) => {
                        if let Some(change) = diff(before, value) {
                            patch.insert(key.clone(), change);
                        }
                    }
                    None if value.is_null() => {}
                    None => {
                        patch.insert(key.clone(), strip_nulls(value));
                    }
                }
            }
            for (key, before) in old {
                if !new.contains_key(key) && !before.is_null() {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        (_, Value::Object(_)) => Some(strip_nulls(new)),
        _ => Some(new.clone()),
    }
}

/// An object as a merge patch sets it: keys with `null` would delete, so they are left out.
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// RFC 7396 applied to `target`, as the API server does; for tests and for keeping the last
/// written document in step with what was sent.
pub fn apply(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(changes) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let map = target.as_object_mut().expect("made an object above");
            for (key, change) in changes {
                if change.is_null() {
                    map.remove(key);
                } else {
                    apply(map.entry(key.clone()).or_insert(Value::Null), change);
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn only_what_changed_is_sent() {
        let old = json!({"phase": "Running", "steps": {"a": {"state": "Succeeded"}, "b": {"state": "Running"}},
            "plan": {"relations": [1, 2]}, "message": "x"});
        let new = json!({"phase": "Running", "steps": {"a": {"state": "Succeeded"}, "b": {"state": "Succeeded", "message": "ok"}},
            "plan": {"relations": [1, 2]}, "message": null});
        assert_eq!(
            diff(&old, &new),
            Some(json!({"steps": {"b": {"state": "Succeeded", "message": "ok"}}, "message": null}))
        );
        assert_eq!(diff(&new, &new), None);
        // Arrays are replaced whole; keys that are gone are removed.
        assert_eq!(
            diff(&json!({"c": [1], "gone": 1}), &json!({"c": [1, 2]})),
            Some(json!({"c": [1, 2], "gone": null}))
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0i64..5).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// What a merge patch cannot express: `null` values inside objects (they mean "absent").
    fn without_nulls(v: &Value) -> Value {
        strip_nulls(v)
    }

    proptest! {
        #[test]
        fn applying_the_diff_gives_the_new_document(
            old in prop::collection::btree_map("[a-d]", json_value(), 0..4),
            new in prop::collection::btree_map("[a-d]", json_value(), 0..4),
        ) {
            let old = without_nulls(&Value::Object(old.into_iter().collect()));
            let new = without_nulls(&Value::Object(new.into_iter().collect()));
            let mut patched = old.clone();
            if let Some(patch) = diff(&old, &new) {
                apply(&mut patched, &patch);
            }
            prop_assert_eq!(patched, new);
        }
    }
}
