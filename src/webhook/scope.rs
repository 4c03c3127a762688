//! The namespaces the webhooks leave alone (`--exclude-namespaces`, the chart's
//! `webhook.excludeNamespaces`, `kube-system` by default).
//!
//! The webhook configurations exclude them with a namespaceSelector on the label
//! `kubernetes.io/metadata.name`, which Kubernetes sets on every namespace from 1.21 on. On 1.20
//! nothing sets it, so the selector would let every namespace through. Two things make the
//! exclusion hold there too:
//! * [`label_namespaces`] (`--label-excluded-namespaces`, set by the chart below 1.21) puts that
//!   very label, with the value 1.21 would give it, on the excluded namespaces: from then on the
//!   API server itself no longer calls the webhooks for them (nor fails their writes when the
//!   webhook is down);
//! * [`excluded_answer`] allows a review from an excluded namespace at once, untouched, for the
//!   moments before the label is there.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The label Kubernetes >= 1.21 sets to every namespace's own name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    request: Option<PeekRequest>,
}

#[derive(Deserialize)]
struct PeekRequest {
    uid: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// The answer to a review of an object in one of `excluded` (allowed, nothing changed), or
/// None when the review is not from such a namespace (or not readable: the full decoding then
/// says why). Pure.
pub fn excluded_answer(body: &[u8], excluded: &[String]) -> Option<Value> {
    if excluded.is_empty() {
        return None;
    }
    let peek: Peek = serde_json::from_slice(body).ok()?;
    let request = peek.request?;
    let namespace = request.namespace?;
    excluded.contains(&namespace).then(|| {
        json!({
            "apiVersion": if peek.api_version.is_empty() { "admission.k8s.io/v1".to_string() } else { peek.api_version },
            "kind": "AdmissionReview",
            "response": {"uid": request.uid, "allowed": true}
        })
    })
}

/// Whether `namespace` carries its name label already. Pure.
pub fn labelled(namespace: &Namespace, name: &str) -> bool {
    namespace
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(NAME_LABEL))
        .is_some_and(|v| v == name)
}

/// Puts `kubernetes.io/metadata.name=<name>` on each of `names` that exists and lacks it; the
/// names that are labelled afterwards.
pub async fn label_namespaces(client: &Client, names: &[String]) -> Vec<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut done = Vec::new();
    for name in names {
        match api.get_opt(name).await {
            Ok(Some(ns)) if labelled(&ns, name) => done.push(name.clone()),
            Ok(Some(_)) => {
                let patch = json!({"metadata": {"labels": {NAME_LABEL: name}}});
                match api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        tracing::info!(namespace = %name, "labelled {NAME_LABEL}={name}, as Kubernetes >= 1.21 does itself: the webhooks' namespaceSelector now excludes it");
                        done.push(name.clone());
                    }
                    Err(error) => {
                        tracing::warn!(namespace = %name, %error, "cannot label an excluded namespace; its reviews are still allowed untouched")
                    }
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(namespace = %name, %error, "cannot read an excluded namespace")
            }
        }
    }
    done
}

/// [`label_namespaces`] now and then every `every` until all are labelled (a namespace may be
/// created after the webhook starts).
pub async fn keep_labelled(client: Client, names: Vec<String>, every: Duration) {
    loop {
        let done = label_namespaces(&client, &names).await;
        if done.len() == names.len() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(namespace: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "namespace": namespace, "operation": "UPDATE",
                        "object": {"metadata": {"name": "c", "namespace": namespace},
                                   "spec": {"cluster": {"restoreSnapshot": {"snapshot": "s"}}}}}
        }))
        .unwrap()
    }

    #[test]
    fn reviews_from_excluded_namespaces_are_allowed_untouched() {
        let excluded = vec!["kube-system".to_string()];
        assert_eq!(
            excluded_answer(&body("kube-system"), &excluded),
            Some(
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                        "response": {"uid": "u-1", "allowed": true}})
            )
        );
        assert_eq!(excluded_answer(&body("dbs"), &excluded), None);
        assert_eq!(excluded_answer(&body("kube-system"), &[]), None);
        assert_eq!(excluded_answer(b"not json", &excluded), None);
    }

    #[test]
    fn the_name_label_must_carry_the_name() {
        let ns = |labels: Value| -> Namespace {
            serde_json::from_value(json!({"metadata": {"name": "kube-system", "labels": labels}}))
                .unwrap()
        };
        assert!(labelled(
            &ns(json!({NAME_LABEL: "kube-system"})),
            "kube-system"
        ));
        assert!(!labelled(&ns(json!({NAME_LABEL: "other"})), "kube-system"));
        assert!(!labelled(&ns(json!({})), "kube-system"));
    }
}
