//! Grand Central suspend and resume (SPEC B§4.13). Suspend scales `grand-central-{name}` to 0
//! and deletes its routing (Ingress, or HTTPRoute plus Traefik Middlewares); the deleted objects
//! are kept in the step result, so resume recreates exactly what was there, then scales to 1.
//! Without the Deployment there is nothing to do (A11).

use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api, Client,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
    },
};
use serde_json::{Value, json};

use super::not_found;
use crate::{job::error::StepError, resource::CrateDB};

pub const MIDDLEWARES: [&str; 4] = [
    "grand-central-cors",
    "grand-central-compress-js",
    "grand-central-buffering",
    "grand-central-ip-allowlist",
];

pub fn deployment_name(cluster: &str) -> String {
    format!("grand-central-{cluster}")
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn ingress() -> ApiResource {
    resource("networking.k8s.io", "v1", "Ingress", "ingresses")
}

fn httproute() -> ApiResource {
    resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
}

fn middleware() -> ApiResource {
    resource("traefik.io", "v1alpha1", "Middleware", "middlewares")
}

/// Whether the routing is Traefik's (HTTPRoute) rather than an Ingress.
pub fn uses_traefik(cr: &CrateDB) -> bool {
    let exposure = cr
        .spec
        .grand_central
        .as_ref()
        .and_then(|g| g.exposure.clone())
        .or_else(|| cr.spec.cluster.exposure.clone())
        .unwrap_or_else(|| "loadbalancer".into());
    exposure == "traefik"
}

/// The objects that route to Grand Central, as (resource, name).
fn routing_objects(cr: &CrateDB, cluster: &str) -> Vec<(ApiResource, String)> {
    if uses_traefik(cr) {
        let mut objects = vec![(httproute(), deployment_name(cluster))];
        objects.extend(MIDDLEWARES.iter().map(|m| (middleware(), m.to_string())));
        objects
    } else {
        vec![(ingress(), deployment_name(cluster))]
    }
}

/// The object as it can be created again: server-set fields removed.
fn recreatable(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            meta.remove(field);
        }
    }
    if let Some(obj) = object.as_object_mut() {
        obj.remove("status");
    }
    object
}

/// Suspends Grand Central. Returns the record to keep (`{"deployment": false}` when absent).
pub async fn suspend(
    client: &Client,
    namespace: &str,
    cr: &CrateDB,
    cluster: &str,
) -> Result<Value, StepError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let name = deployment_name(cluster);
    if deployments.get_opt(&name).await?.is_none() {
        return Ok(json!({"deployment": false}));
    }
    let mut saved = Vec::new();
    for (ar, object_name) in routing_objects(cr, cluster) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        match api.get_opt(&object_name).await {
            Ok(Some(object)) => saved.push(recreatable(
                serde_json::to_value(&object).unwrap_or_default(),
            )),
            Ok(None) => {}
            // A CRD that is not installed (no Gateway API, no Traefik) means nothing to route.
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    deployments
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await?;
    for (ar, object_name) in routing_objects(cr, cluster) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        match api.delete(&object_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json!({"deployment": true, "routing": saved}))
}

/// Resumes what [`suspend`] recorded: routing objects that are missing are created again
/// (409 ignored), then the Deployment goes back to one replica.
pub async fn resume(
    client: &Client,
    namespace: &str,
    cluster: &str,
    record: &Value,
) -> Result<String, StepError> {
    if record.get("deployment").and_then(Value::as_bool) != Some(true) {
        return Ok("Grand Central was not suspended".into());
    }
    let mut recreated = 0;
    for object in record
        .get("routing")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ar = match kind {
            "Ingress" => ingress(),
            "HTTPRoute" => httproute(),
            "Middleware" => middleware(),
            other => {
                tracing::warn!(
                    kind = other,
                    api_version,
                    "unknown routing object kind; not recreated"
                );
                continue;
            }
        };
        // Server-set fields must not go into a create, whoever recorded the object.
        let dynamic: DynamicObject =
            serde_json::from_value(recreatable(object.clone())).map_err(|e| {
                StepError::permanent(format!("recorded {kind} cannot be read back: {e}"))
            })?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        match api.create(&PostParams::default(), &dynamic).await {
            Ok(_) => recreated += 1,
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    match deployments
        .patch(
            &deployment_name(cluster),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
    {
        Ok(_) => Ok(format!(
            "Grand Central resumed ({recreated} routing object(s) recreated)"
        )),
        Err(e) if not_found(&e) => Ok("Grand Central Deployment is gone; nothing to resume".into()),
        Err(e) => Err(e.into()),
    }
}
