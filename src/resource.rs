//! The `CrateDB` custom resource (`cloud.crate.io/v1`, `cratedbs`), reduced to the fields the
//! restore reads (SPEC B§1.3). Unknown fields are ignored on read; the product never writes a
//! whole object back, only patches, so nothing it does not know is lost.

use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::status::RestoreStatus;

pub const GROUP: &str = "cloud.crate.io";
pub const VERSION: &str = "v1";
pub const KIND: &str = "CrateDB";
pub const PLURAL: &str = "cratedbs";

/// The annotation that carries the run id of the restore the mutating webhook admitted (SPEC A2).
pub const RUN_ID_ANNOTATION: &str = "restore.cloud.crate.io/run-id";
/// Asks to cancel a run (SPEC A29): its value is the run id, or `true` for the active run.
pub const CANCEL_ANNOTATION: &str = "restore.cloud.crate.io/cancel";

/// Whether a value of [`CANCEL_ANNOTATION`] names run `run_id`.
pub fn cancel_names_run(value: &str, run_id: &str) -> bool {
    value == "true" || value == run_id
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cloud.crate.io",
    version = "v1",
    kind = "CrateDB",
    plural = "cratedbs",
    namespaced,
    schema = "disabled",
    status = "CrateDBStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct CrateDBSpec {
    #[serde(default)]
    pub cluster: ClusterSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodesSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<UserSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grand_central: Option<GrandCentralSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<BackupsSpec>,
}

/// `spec.backups`: the cluster's own backup settings. A restore from the same kind of store
/// takes its S3 endpoint and region from here unless its options name others (SPEC A27); the
/// snapshot catalog reads the cluster's backups from here (SPEC A30).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BackupsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsBackupSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_blob: Option<AzureBackupSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AwsBackupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<SecretRef>,
    /// A plain string in the operator's CRD (not a Secret reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<SecretRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AzureBackupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<SecretRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_snapshot: Option<RestoreSnapshotSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl: Option<Value>,
    #[serde(
        default,
        rename = "externalDNS",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<String>,
    #[serde(
        default,
        rename = "allowedCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_cidrs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodesSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<DataNodeSpec>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DataNodeSpec {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrandCentralSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<String>,
}

/// `{secretKeyRef: {name, key}}`. Both parts are optional here so that admission can say which
/// one is missing instead of failing to parse.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretKeySelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `spec.cluster.restoreSnapshot` as written (SPEC B§1.2), before defaults and validation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSnapshotSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub restore_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<PartitionSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_path: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<SecretRef>,
}

impl RestoreSnapshotSpec {
    /// The snapshot name, if a restore is requested at all (non-empty `snapshot`).
    pub fn requested_snapshot(&self) -> Option<&str> {
        self.snapshot.as_deref().filter(|s| !s.is_empty())
    }

    /// The secret reference behind a credential field name of [`crate::repository::CredentialField`].
    pub fn secret_ref(&self, crd_field: &str) -> Option<&SecretRef> {
        match crd_field {
            "accessKeyId" => self.access_key_id.as_ref(),
            "secretAccessKey" => self.secret_access_key.as_ref(),
            "bucket" => self.bucket.as_ref(),
            "basePath" => self.base_path.as_ref(),
            "accountName" => self.account_name.as_ref(),
            "accountKey" => self.account_key.as_ref(),
            "container" => self.container.as_ref(),
            _ => None,
        }
    }
}

/// A partition item; the CRD spells its fields in snake case (`table_ident`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PartitionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_ident: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<PartitionColumnSpec>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PartitionColumnSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `status`: this CRD has no status subresource and keeps unknown fields, so other writers'
/// keys are carried along untouched.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CrateDBStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStatus>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

impl CrateDB {
    pub fn restore_snapshot(&self) -> Option<&RestoreSnapshotSpec> {
        self.spec.cluster.restore_snapshot.as_ref()
    }

    pub fn restore_status(&self) -> Option<&RestoreStatus> {
        self.status.as_ref().and_then(|s| s.restore.as_ref())
    }

    /// `status.restore` when it records run `run_id` (and not an earlier run).
    pub fn restore_status_of_run(&self, run_id: &str) -> Option<&RestoreStatus> {
        self.restore_status()
            .filter(|s| s.run_id.as_deref() == Some(run_id))
    }

    pub fn run_id_annotation(&self) -> Option<&str> {
        use kube::ResourceExt;
        self.annotations()
            .get(RUN_ID_ANNOTATION)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reference_example_and_ignores_unknown_fields() {
        let cr: CrateDB = serde_json::from_value(serde_json::json!({
            "apiVersion": "cloud.crate.io/v1",
            "kind": "CrateDB",
            "metadata": {"name": "my-cluster", "namespace": "ns",
                         "annotations": {RUN_ID_ANNOTATION: "r1"}},
            "spec": {
                "cluster": {
                    "imageRegistry": "crate", "name": "c", "version": "5.10.3",
                    "restoreSnapshot": {
                        "snapshot": "snap-2024", "type": "all",
                        "accessKeyId": {"secretKeyRef": {"name": "s", "key": "access-key-id"}},
                        "basePath": {"secretKeyRef": {"name": "s", "key": "base-path"}}
                    },
                    "somethingElse": 1
                },
                "nodes": {"data": [{"name": "hot", "replicas": 3}]},
                "users": [{"name": "admin", "password": {"secretKeyRef": {"name": "u", "key": "password"}}}]
            },
            "status": {"restore": {"runId": "r0", "phase": "Succeeded"}, "health": "GREEN"}
        }))
        .unwrap();
        let rs = cr.restore_snapshot().unwrap();
        assert_eq!(rs.requested_snapshot(), Some("snap-2024"));
        assert_eq!(rs.restore_type.as_deref(), Some("all"));
        assert_eq!(
            rs.secret_ref("basePath")
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap()
                .key
                .as_deref(),
            Some("base-path")
        );
        assert_eq!(cr.run_id_annotation(), Some("r1"));
        assert_eq!(cr.restore_status().unwrap().run_id.as_deref(), Some("r0"));
        assert_eq!(cr.status.as_ref().unwrap().other["health"], "GREEN");
        assert_eq!(cr.spec.nodes.unwrap().data.unwrap()[0].name, "hot");
    }

    #[test]
    fn empty_snapshot_is_no_request() {
        let spec = RestoreSnapshotSpec {
            snapshot: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(spec.requested_snapshot(), None);
    }
}
