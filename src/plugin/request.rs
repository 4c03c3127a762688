//! `plan NAME -f FILE`: what a restore request file asks for and the JSON patch that applies it
//! to the stored CrateDB, for a server-side dry run. Pure.
//!
//! The file is either a whole `CrateDB` manifest (its `spec.cluster.restoreSnapshot` and its
//! `restore.cloud.crate.io/` annotations are the request) or only the request:
//! `restoreSnapshot: {...}` or the bare `{snapshot: ..., type: ..., ...}` object. JSON or YAML.
//!
//! The request's `restoreSnapshot` replaces the stored one as a whole (a field the file leaves out
//! is not taken over from an earlier request); restore options (annotations under
//! `restore.cloud.crate.io/`, except the run id the webhook stamps) are set when the file or
//! `--option` names them and otherwise stay as stored, as `kubectl apply` and `kubectl annotate`
//! leave annotations they do not mention.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{
    resource::{KIND, RUN_ID_ANNOTATION},
    restore_options::PREFIX as OPTION_PREFIX,
};

/// A restore request read from a file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanRequest {
    pub restore_snapshot: Value,
    /// Annotations to set (full keys), `None` to remove.
    pub options: BTreeMap<String, Option<String>>,
    /// `metadata.name` and `metadata.namespace` of a manifest.
    pub manifest_name: Option<String>,
    pub manifest_namespace: Option<String>,
}

impl PlanRequest {
    /// Reads a manifest or a fragment (see the module documentation).
    pub fn parse(text: &str) -> Result<PlanRequest, String> {
        let doc: Value = serde_saphyr::from_str(text)
            .map_err(|e| format!("not one YAML or JSON document: {e}"))?;
        let Value::Object(top) = doc else {
            return Err(
                "expected a CrateDB manifest, `restoreSnapshot: {...}` or the restoreSnapshot object itself"
                    .into(),
            );
        };
        if top.contains_key("spec") || top.contains_key("kind") || top.contains_key("apiVersion") {
            return Self::from_manifest(&top);
        }
        let restore_snapshot = match top.get("restoreSnapshot") {
            Some(rs) if top.len() == 1 => rs.clone(),
            Some(_) => {
                return Err(
                    "a fragment with `restoreSnapshot:` may hold nothing else; pass restore options with --option NAME=VALUE"
                        .into(),
                );
            }
            None => Value::Object(top),
        };
        Self::checked(PlanRequest {
            restore_snapshot,
            ..Default::default()
        })
    }

    fn from_manifest(top: &Map<String, Value>) -> Result<PlanRequest, String> {
        if let Some(kind) = top.get("kind").and_then(Value::as_str)
            && kind != KIND
        {
            return Err(format!("the manifest is a {kind}, not a {KIND}"));
        }
        let restore_snapshot = top
            .get("spec")
            .and_then(|s| s.pointer("/cluster/restoreSnapshot"))
            .cloned()
            .ok_or("the manifest has no spec.cluster.restoreSnapshot")?;
        let metadata = top.get("metadata");
        let text = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let mut options = BTreeMap::new();
        if let Some(Value::Object(annotations)) = metadata.and_then(|m| m.get("annotations")) {
            for (key, value) in annotations {
                if key.starts_with(OPTION_PREFIX) && key != RUN_ID_ANNOTATION {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    options.insert(key.clone(), Some(value));
                }
            }
        }
        Self::checked(PlanRequest {
            restore_snapshot,
            options,
            manifest_name: text("name"),
            manifest_namespace: text("namespace"),
        })
    }

    fn checked(request: PlanRequest) -> Result<PlanRequest, String> {
        let snapshot = request
            .restore_snapshot
            .as_object()
            .ok_or("restoreSnapshot is not an object")?
            .get("snapshot");
        match snapshot {
            Some(Value::String(s)) if !s.is_empty() => Ok(request),
            _ => Err(
                "restoreSnapshot.snapshot is missing or empty: plan previews a restore request, which names a snapshot"
                    .into(),
            ),
        }
    }

    /// Adds `--option` values (they win over the file's annotations).
    pub fn with_options(mut self, options: &[CliOption]) -> PlanRequest {
        for option in options {
            self.options
                .insert(option.key.clone(), option.value.clone());
        }
        self
    }

    /// A manifest names the CrateDB it is for; it must be the one the command names.
    pub fn check_target(&self, name: &str, namespace: &str) -> Result<(), String> {
        if let Some(n) = self.manifest_name.as_deref()
            && n != name
        {
            return Err(format!(
                "the manifest is for CrateDB {n:?}, but the command names {name:?}"
            ));
        }
        if let Some(ns) = self.manifest_namespace.as_deref()
            && ns != namespace
        {
            return Err(format!(
                "the manifest is for namespace {ns:?}, but the command uses {namespace:?} (-n)"
            ));
        }
        Ok(())
    }

    /// The JSON patch (RFC 6902) that turns the stored object into one carrying this request:
    /// only the changed paths, so the patch says nothing about anything else.
    pub fn patch_for(&self, stored: &Value) -> json_patch::Patch {
        let mut desired = stored.clone();
        let cluster = object_at(&mut desired, &["spec", "cluster"]);
        cluster.insert("restoreSnapshot".into(), self.restore_snapshot.clone());
        if !self.options.is_empty() {
            let annotations = object_at(&mut desired, &["metadata", "annotations"]);
            for (key, value) in &self.options {
                match value {
                    Some(v) => annotations.insert(key.clone(), Value::String(v.clone())),
                    None => annotations.remove(key),
                };
            }
            if annotations.is_empty() && stored.pointer("/metadata/annotations").is_none() {
                desired
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                    .map(|m| m.remove("annotations"));
            }
        }
        json_patch::diff(stored, &desired)
    }
}

/// The restore options (annotations under `restore.cloud.crate.io/`, but not the run id) of an
/// object, sorted by name.
pub fn options_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|annotations| {
            annotations
                .iter()
                .filter(|(k, _)| k.starts_with(OPTION_PREFIX) && *k != RUN_ID_ANNOTATION)
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `--option NAME=VALUE` (sets annotation `restore.cloud.crate.io/NAME`) or `--option NAME-`
/// (removes it). NAME may also be written with the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliOption {
    pub key: String,
    pub value: Option<String>,
}

impl std::str::FromStr for CliOption {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = match s.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => match s.strip_suffix('-') {
                Some(name) => (name, None),
                None => {
                    return Err(format!(
                        "{s:?}: write NAME=VALUE to set an option or NAME- to remove it"
                    ));
                }
            },
        };
        let name = name.strip_prefix(OPTION_PREFIX).unwrap_or(name);
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(format!(
                "{name:?} is not an option name (letters, digits, '-', '_', '.')"
            ));
        }
        let key = format!("{OPTION_PREFIX}{name}");
        if key == RUN_ID_ANNOTATION {
            return Err("the run id is stamped by the webhook, not a restore option".into());
        }
        Ok(CliOption { key, value })
    }
}

/// The object at `path` inside `value`, created (replacing a non-object) where missing.
fn object_at<'a>(value: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut here = value;
    for key in path {
        if !here.is_object() {
            *here = Value::Object(Map::new());
        }
        here = here
            .as_object_mut()
            .expect("just made an object")
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !here.is_object() {
        *here = Value::Object(Map::new());
    }
    here.as_object_mut().expect("just made an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FRAGMENT: &str = "
snapshot: snap-1
type: tables
tables: [doc.orders]
bucket: {secretKeyRef: {name: s, key: bucket}}
";

    #[test]
    fn three_forms_of_the_same_request() {
        let bare = PlanRequest::parse(FRAGMENT).unwrap();
        assert_eq!(bare.restore_snapshot["snapshot"], "snap-1");
        assert_eq!(bare.restore_snapshot["tables"], json!(["doc.orders"]));
        let indented: String = FRAGMENT.lines().map(|l| format!("  {l}\n")).collect();
        let wrapped = PlanRequest::parse(&format!("restoreSnapshot:\n{indented}")).unwrap();
        assert_eq!(wrapped, bare);
        let manifest = PlanRequest::parse(&format!(
            "apiVersion: cloud.crate.io/v1
kind: CrateDB
metadata:
  name: my-cluster
  namespace: dbs
  annotations:
    restore.cloud.crate.io/on-conflict: skip
    restore.cloud.crate.io/run-id: 20240101000000-abcdef
    other.example/keep: x
spec:
  cluster:
    version: 5.10.3
    restoreSnapshot:
{}",
            FRAGMENT
                .lines()
                .map(|l| format!("      {l}\n"))
                .collect::<String>()
        ))
        .unwrap();
        assert_eq!(manifest.restore_snapshot, bare.restore_snapshot);
        assert_eq!(
            manifest.options,
            BTreeMap::from([(
                "restore.cloud.crate.io/on-conflict".to_string(),
                Some("skip".to_string())
            )]),
            "options only; the run id is the webhook's"
        );
        assert_eq!(manifest.check_target("my-cluster", "dbs"), Ok(()));
        assert!(
            manifest
                .check_target("other", "dbs")
                .unwrap_err()
                .contains("is for CrateDB \"my-cluster\"")
        );
        assert!(
            manifest
                .check_target("my-cluster", "prod")
                .unwrap_err()
                .contains("namespace \"dbs\"")
        );
        assert_eq!(bare.check_target("anything", "anywhere"), Ok(()));
        let json = PlanRequest::parse(r#"{"snapshot": "snap-1", "type": "all"}"#).unwrap();
        assert_eq!(json.restore_snapshot["type"], "all");
    }

    #[test]
    fn what_is_not_a_request() {
        for (text, says) in [
            (
                "kind: Secret\nmetadata: {name: x}",
                "is a Secret, not a CrateDB",
            ),
            (
                "kind: CrateDB\nspec: {cluster: {}}",
                "no spec.cluster.restoreSnapshot",
            ),
            ("type: all", "restoreSnapshot.snapshot is missing or empty"),
            ("snapshot: ''", "missing or empty"),
            ("- a\n- b", "expected a CrateDB manifest"),
            (
                "restoreSnapshot: {snapshot: s}\nextra: 1",
                "may hold nothing else",
            ),
            ("snapshot: [unclosed", "not one YAML or JSON document"),
        ] {
            let err = PlanRequest::parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_patch_replaces_the_request_and_touches_only_named_options() {
        let stored = json!({
            "metadata": {"name": "c", "annotations": {
                "restore.cloud.crate.io/run-id": "20240101000000-abcdef",
                "restore.cloud.crate.io/on-conflict": "skip",
                "restore.cloud.crate.io/table-rename-pattern": "(.+)"}},
            "spec": {"cluster": {"version": "5.10.3", "restoreSnapshot": {
                "snapshot": "", "type": "all", "backupProvider": "aws",
                "bucket": {"secretKeyRef": {"name": "old", "key": "bucket"}}}}},
            "status": {"restore": {"phase": "Succeeded"}}
        });
        let request = PlanRequest::parse(FRAGMENT).unwrap().with_options(&[
            "table-rename-replacement=restored_$1".parse().unwrap(),
            "restore.cloud.crate.io/on-conflict-".parse().unwrap(),
        ]);
        let patch = request.patch_for(&stored);
        let mut patched = stored.clone();
        json_patch::patch(&mut patched, &patch).unwrap();
        assert_eq!(
            patched["spec"]["cluster"]["restoreSnapshot"], request.restore_snapshot,
            "replaced as a whole: no type or provider left from the earlier request"
        );
        assert_eq!(patched["spec"]["cluster"]["version"], "5.10.3");
        assert_eq!(patched["status"], stored["status"]);
        assert_eq!(
            options_of(&patched),
            BTreeMap::from([
                (
                    "restore.cloud.crate.io/table-rename-pattern".into(),
                    "(.+)".into()
                ),
                (
                    "restore.cloud.crate.io/table-rename-replacement".into(),
                    "restored_$1".into()
                ),
            ])
        );
        assert_eq!(
            patched["metadata"]["annotations"]["restore.cloud.crate.io/run-id"],
            "20240101000000-abcdef"
        );
        let paths: Vec<String> = patch
            .0
            .iter()
            .map(|op| {
                serde_json::to_value(op).unwrap()["path"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(
            paths
                .iter()
                .all(|p| p.starts_with("/spec/cluster/restoreSnapshot")
                    || p.starts_with("/metadata/annotations/restore.cloud.crate.io~1")),
            "{paths:?}"
        );
    }

    #[test]
    fn a_bare_object_gets_what_it_lacks() {
        let stored = json!({"metadata": {"name": "c"}, "spec": {}});
        let request = PlanRequest::parse("snapshot: s")
            .unwrap()
            .with_options(&["on-conflict=skip".parse().unwrap()]);
        let mut patched = stored.clone();
        json_patch::patch(&mut patched, &request.patch_for(&stored)).unwrap();
        assert_eq!(
            patched,
            json!({"metadata": {"name": "c", "annotations": {"restore.cloud.crate.io/on-conflict": "skip"}},
                   "spec": {"cluster": {"restoreSnapshot": {"snapshot": "s"}}}})
        );
        // Removing an option the object does not have changes nothing.
        let request = PlanRequest::parse("snapshot: s")
            .unwrap()
            .with_options(&["on-conflict-".parse().unwrap()]);
        let mut patched = stored.clone();
        json_patch::patch(&mut patched, &request.patch_for(&stored)).unwrap();
        assert!(
            patched["metadata"].get("annotations").is_none(),
            "{patched}"
        );
    }

    #[test]
    fn cli_options() {
        let set: CliOption = "on-conflict=skip".parse().unwrap();
        assert_eq!(set.key, "restore.cloud.crate.io/on-conflict");
        assert_eq!(set.value.as_deref(), Some("skip"));
        let eq_in_value: CliOption = "schema-rename-replacement=a=b".parse().unwrap();
        assert_eq!(eq_in_value.value.as_deref(), Some("a=b"));
        let remove: CliOption = "on-conflict-".parse().unwrap();
        assert_eq!(remove.value, None);
        assert!("on-conflict".parse::<CliOption>().is_err());
        assert!("run-id=x".parse::<CliOption>().is_err());
        assert!("bad name=x".parse::<CliOption>().is_err());
        assert!("=x".parse::<CliOption>().is_err());
    }
}
