//! Keeping the run's record ([`crate::run_record`]) in ConfigMaps next to the CrateDB resource.
//! They belong to the run's Job, so Kubernetes removes them with it (`ttlSecondsAfterFinished`).
//! Where there is no Job (the binary run by hand) they belong to the CrateDB resource and go
//! with it; `kubectl delete configmap -l restore.cloud.crate.io/run-id=<run id>` removes them
//! earlier.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::{
    ByteString,
    api::core::v1::ConfigMap,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde::{Serialize, de::DeserializeOwned};

use super::error::StepError;
use crate::{
    plan::StoredRef,
    run::{RunIdentity, labels},
    run_record::{self, DATA_KEY},
};

pub struct RecordStore {
    api: Api<ConfigMap>,
    base: String,
    owner: OwnerReference,
    labels: BTreeMap<String, String>,
}

/// The uid of the run's Job: given (the Pod's `controller-uid` label through the downward API),
/// or looked up by its name with the `list` the Job's Role grants; `None` when there is no Job.
pub async fn job_uid(
    client: &kube::Client,
    run: &RunIdentity,
    given: Option<&str>,
) -> Option<String> {
    if let Some(uid) = given.filter(|u| !u.is_empty()) {
        return Some(uid.to_string());
    }
    let jobs: Api<Job> = Api::namespaced(client.clone(), &run.namespace);
    let selector = format!("metadata.name={}", run.job_name());
    match jobs.list(&ListParams::default().fields(&selector)).await {
        Ok(list) => list.items.into_iter().find_map(|j| j.metadata.uid),
        Err(error) => {
            tracing::debug!(%error, "cannot look up the run's Job");
            None
        }
    }
}

impl RecordStore {
    /// Records owned by the Job `job_uid` or, without one, by the CrateDB resource `cluster_uid`.
    pub fn new(
        api: Api<ConfigMap>,
        run: &RunIdentity,
        job_uid: Option<&str>,
        cluster_uid: Option<&str>,
    ) -> Self {
        let owner = match job_uid.filter(|u| !u.is_empty()) {
            Some(uid) => OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: run.job_name(),
                uid: uid.into(),
                controller: Some(false),
                block_owner_deletion: Some(false),
            },
            None => {
                tracing::info!(
                    "no Job runs this restore: its record ConfigMaps belong to the CrateDB resource"
                );
                OwnerReference {
                    api_version: format!("{}/{}", crate::resource::GROUP, crate::resource::VERSION),
                    kind: crate::resource::KIND.into(),
                    name: run.cluster.clone(),
                    uid: cluster_uid.unwrap_or_default().into(),
                    controller: Some(false),
                    block_owner_deletion: Some(false),
                }
            }
        };
        let mut record_labels = run.job_labels();
        record_labels.insert(labels::COMPONENT.into(), "restore-record".into());
        Self {
            api,
            base: run.job_name(),
            owner,
            labels: record_labels,
        }
    }

    /// Keeps `value` as `kind`; one create per part, and a part that exists already (written by
    /// an earlier Pod of this run) has the same content by its name.
    pub async fn put(&self, kind: &str, value: &impl Serialize) -> Result<StoredRef, StepError> {
        let encoded = run_record::encode(&self.base, kind, value);
        for (name, chunk) in encoded.reference.config_maps.iter().zip(encoded.chunks) {
            let config_map = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(self.labels.clone()),
                    owner_references: (!self.owner.uid.is_empty())
                        .then(|| vec![self.owner.clone()]),
                    ..Default::default()
                },
                binary_data: Some(BTreeMap::from([(DATA_KEY.to_string(), ByteString(chunk))])),
                immutable: Some(true),
                ..Default::default()
            };
            match self.api.create(&PostParams::default(), &config_map).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    tracing::debug!(%name, "record part exists already (an earlier Pod wrote it)");
                }
                Err(error) => {
                    return Err(StepError::from(error)
                        .context(&format!("cannot keep the run's {kind} in ConfigMap {name}")));
                }
            }
        }
        tracing::info!(
            kind,
            parts = encoded.reference.config_maps.len(),
            bytes = encoded.reference.bytes,
            "kept the run's {kind} in its record"
        );
        Ok(encoded.reference)
    }

    /// Reads a kept value back and checks it against its digest.
    pub async fn get<T: DeserializeOwned>(&self, reference: &StoredRef) -> Result<T, StepError> {
        let mut chunks = Vec::with_capacity(reference.config_maps.len());
        for name in &reference.config_maps {
            let Some(config_map) = self.api.get_opt(name).await? else {
                return Err(StepError::permanent(format!(
                    "the run's record ConfigMap {name} is gone; the run cannot resume exactly and stops instead of guessing (was its Job deleted?)"
                )));
            };
            let bytes = config_map
                .binary_data
                .and_then(|mut d| d.remove(DATA_KEY))
                .map(|b| b.0)
                .unwrap_or_default();
            chunks.push(bytes);
        }
        run_record::decode(reference, &chunks).map_err(|e| StepError::permanent(e.to_string()))
    }
}
