//! Shared builders for the integration tests: AdmissionReviews, Secrets and an in-memory API.
#![allow(dead_code)]

pub mod exec_endpoint;
pub mod harness;
pub mod https;
pub mod notify_sink;

use std::collections::BTreeMap;

use k8s_openapi::{ByteString, api::core::v1::Secret};
use serde_json::{Value, json};

pub const NS: &str = "dbs";
pub const CLUSTER: &str = "my-cluster";
pub const CLUSTER_UID: &str = "4f1c2a7e-6b1d-4a8e-9c7e-2d3b5f6a7c80";
pub const SECRET: &str = "restore-from-backup-my-cluster";
pub const RUN_ANNOTATION: &str = "restore.cloud.crate.io/run-id";

pub fn aws_refs(secret: &str) -> Value {
    json!({
        "accessKeyId": {"secretKeyRef": {"name": secret, "key": "access-key-id"}},
        "secretAccessKey": {"secretKeyRef": {"name": secret, "key": "secret-access-key"}},
        "bucket": {"secretKeyRef": {"name": secret, "key": "bucket"}},
        "basePath": {"secretKeyRef": {"name": secret, "key": "base-path"}}
    })
}

/// `restoreSnapshot` of snapshot `snap-2024` with the AWS references and the given extra fields.
pub fn restore_snapshot(extra: Value) -> Value {
    let mut rs = aws_refs(SECRET);
    rs["snapshot"] = json!("snap-2024");
    for (k, v) in extra.as_object().unwrap() {
        rs[k] = v.clone();
    }
    rs
}

pub fn cratedb(rs: Option<Value>, run_id: Option<&str>, status: Option<Value>) -> Value {
    let mut obj = json!({
        "apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
        "metadata": {"name": CLUSTER, "namespace": NS, "uid": CLUSTER_UID},
        "spec": {"cluster": {"imageRegistry": "crate", "name": "c", "version": "5.10.3"},
                 "nodes": {"data": [{"name": "hot"}]}}
    });
    if let Some(rs) = rs {
        obj["spec"]["cluster"]["restoreSnapshot"] = rs;
    }
    if let Some(id) = run_id {
        obj["metadata"]["annotations"] = json!({RUN_ANNOTATION: id});
    }
    if let Some(status) = status {
        obj["status"] = status;
    }
    obj
}

pub fn review(
    uid: &str,
    operation: &str,
    object: Option<Value>,
    old: Option<Value>,
    dry_run: bool,
) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "cloud.crate.io", "version": "v1", "kind": "CrateDB"},
            "resource": {"group": "cloud.crate.io", "version": "v1", "resource": "cratedbs"},
            "name": CLUSTER, "namespace": NS, "operation": operation,
            "userInfo": {"username": "alice"},
            "object": object, "oldObject": old, "dryRun": dry_run
        }
    })
}

/// A new restore as the validating webhook sees it: after mutation (run id stamped).
pub fn new_restore_review(uid: &str, run_id: &str, extra: Value, dry_run: bool) -> Value {
    let stored = cratedb(Some(json!({"snapshot": ""})), None, None);
    let new = cratedb(Some(restore_snapshot(extra)), Some(run_id), None);
    review(uid, "UPDATE", Some(new), Some(stored), dry_run)
}

pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    let mut s = Secret::default();
    s.metadata.name = Some(name.into());
    s.metadata.namespace = Some(NS.into());
    s.data = Some(
        data.iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect::<BTreeMap<_, _>>(),
    );
    s
}

pub fn restore_secret() -> Secret {
    secret(
        SECRET,
        &[
            ("access-key-id", "AKIAEXAMPLEEXAMPLE"),
            ("secret-access-key", "s3cr3t/K3y+with'quote"),
            ("bucket", "backups"),
            ("base-path", "clusters/prod"),
        ],
    )
}

/// The ServiceAccount restore Jobs run as, which the chart creates in each restore namespace.
pub fn job_service_account() -> k8s_openapi::api::core::v1::ServiceAccount {
    let mut account = k8s_openapi::api::core::v1::ServiceAccount::default();
    account.metadata.name = Some(cratedb_restore::restore_job::DEFAULT_SERVICE_ACCOUNT.into());
    account.metadata.namespace = Some(NS.into());
    account
}

/// An in-memory API holding `secrets` and the restore Jobs' ServiceAccount, where the requester
/// may read every Secret.
pub async fn fake_api(secrets: Vec<Secret>) -> kube::Client {
    fake_api_denying(secrets, &[]).await
}

/// [`fake_api`] where SubjectAccessReviews deny reading the Secrets named in `forbidden`.
pub async fn fake_api_denying(secrets: Vec<Secret>, forbidden: &[&str]) -> kube::Client {
    let forbidden: Vec<String> = forbidden.iter().map(|s| s.to_string()).collect();
    let access = kube_fake_client::interceptor::Funcs::new().create(move |ctx| {
        if ctx.object["kind"] != "SubjectAccessReview" {
            return Ok(None);
        }
        let secret = ctx.object["spec"]["resourceAttributes"]["name"]
            .as_str()
            .unwrap_or_default();
        let mut answer = ctx.object.clone();
        answer["status"] = json!({"allowed": !forbidden.iter().any(|f| f == secret)});
        Ok(Some(answer))
    });
    kube_fake_client::ClientBuilder::new()
        .with_objects(secrets)
        .with_object(job_service_account())
        .with_interceptor_funcs(access)
        .build()
        .await
        .expect("in-memory API")
}

pub fn admission(client: kube::Client) -> cratedb_restore::admission::Admission {
    cratedb_restore::admission::Admission {
        client,
        jobs: Default::default(),
        default_deadline_seconds: 88_200,
        review_budget: cratedb_restore::admission::DEFAULT_REVIEW_BUDGET,
        runner: Default::default(),
    }
}

/// Decodes the base64 patch of a review response into JSON.
pub fn patch_of(response: &Value) -> Value {
    use base64::Engine;
    let encoded = response["response"]["patch"]
        .as_str()
        .expect("patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
