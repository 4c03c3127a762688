//! Where a cluster's snapshots are (SPEC A30): the storage provider, the repository settings
//! that come from Secrets, and the ones written in the resource itself. From the cluster's own
//! backup settings (`spec.backups`, what the operator's backup CronJob writes to), or from a
//! restore request's Secret references. Pure.

use crate::{
    repository::StorageProvider,
    resource::{BackupsSpec, RestoreSnapshotSpec, SecretKeySelector, SecretRef},
    restore_request::{self, CredentialRef},
};

#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub provider: StorageProvider,
    /// Settings read from Secrets, in binding order.
    pub credentials: Vec<CredentialRef>,
    /// Settings written in the resource (`spec.backups.aws.basePath`).
    pub literals: Vec<(&'static str, String)>,
    /// Where this came from, for messages (`spec.backups.aws`).
    pub source: String,
}

fn reference(
    field: &Option<SecretRef>,
    setting: &'static str,
    path: String,
    missing: &mut Vec<String>,
) -> Option<CredentialRef> {
    match field {
        Some(SecretRef {
            secret_key_ref:
                Some(SecretKeySelector {
                    name: Some(name),
                    key: Some(key),
                }),
        }) if !name.is_empty() && !key.is_empty() => Some(CredentialRef {
            setting,
            path,
            secret: name.clone(),
            key: key.clone(),
        }),
        _ => {
            missing.push(path);
            None
        }
    }
}

/// The cluster's backup location, `spec.backups`.
pub fn of_backups(backups: Option<&BackupsSpec>) -> Result<Location, String> {
    let mut missing = Vec::new();
    let location = match backups {
        Some(BackupsSpec { aws: Some(aws), .. }) => {
            let path = |f: &str| format!("spec.backups.aws.{f}");
            let mut credentials: Vec<CredentialRef> = [
                (&aws.access_key_id, "access_key", "accessKeyId"),
                (&aws.bucket, "bucket", "bucket"),
                (&aws.secret_access_key, "secret_key", "secretAccessKey"),
            ]
            .into_iter()
            .filter_map(|(field, setting, name)| {
                reference(field, setting, path(name), &mut missing)
            })
            .collect();
            // Optional: S3-compatible stores and regions (as the restore options read them).
            let mut optional = Vec::new();
            credentials.extend(reference(
                &aws.endpoint_url,
                "endpoint",
                path("endpointUrl"),
                &mut optional,
            ));
            credentials.extend(reference(
                &aws.region,
                "region",
                path("region"),
                &mut optional,
            ));
            Location {
                provider: StorageProvider::Aws,
                credentials,
                literals: aws
                    .base_path
                    .iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| ("base_path", p.clone()))
                    .collect(),
                source: "spec.backups.aws".into(),
            }
        }
        Some(BackupsSpec {
            azure_blob: Some(azure),
            ..
        }) => {
            let path = |f: &str| format!("spec.backups.azure_blob.{f}");
            Location {
                provider: StorageProvider::AzureBlob,
                credentials: [
                    (&azure.account_key, "key", "accountKey"),
                    (&azure.account_name, "account", "accountName"),
                    (&azure.container, "container", "container"),
                ]
                .into_iter()
                .filter_map(|(field, setting, name)| {
                    reference(field, setting, path(name), &mut missing)
                })
                .collect(),
                literals: Vec::new(),
                source: "spec.backups.azure_blob".into(),
            }
        }
        _ => {
            return Err(
                "the CrateDB has no spec.backups (aws or azure_blob): name the location with --from-request (the Secret references of spec.cluster.restoreSnapshot) instead".into(),
            );
        }
    };
    if missing.is_empty() {
        Ok(location)
    } else {
        Err(format!(
            "{} lacks {}: each must be a secretKeyRef with a name and a key",
            location.source,
            missing.join(", ")
        ))
    }
}

/// The location a restore request's Secret references name (its snapshot and target do not
/// matter here).
pub fn of_request(
    spec: &RestoreSnapshotSpec,
    annotations: &std::collections::BTreeMap<String, String>,
    backups: Option<&BackupsSpec>,
) -> Result<Location, String> {
    let mut spec = spec.clone();
    // Only the location is read: any snapshot name and target pass.
    spec.snapshot = Some("-".into());
    spec.restore_type = Some("all".into());
    let request = restore_request::validate_with_options(&spec, annotations, backups)
        .map_err(|errors| restore_request::describe(&errors))?;
    Ok(Location {
        provider: request.provider,
        credentials: request.credentials,
        literals: Vec::new(),
        source: restore_request::SPEC_PATH.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backups(v: serde_json::Value) -> BackupsSpec {
        serde_json::from_value(v).unwrap()
    }

    fn r(name: &str, key: &str) -> serde_json::Value {
        json!({"secretKeyRef": {"name": name, "key": key}})
    }

    #[test]
    fn the_operators_s3_backups_with_a_plain_base_path() {
        let b = backups(
            json!({"aws": {"accessKeyId": r("backup", "ak"), "secretAccessKey": r("backup", "sk"),
            "bucket": r("backup", "b"), "basePath": "clusters/prod", "region": r("backup", "region"),
            "cron": "0 * * * *"}}),
        );
        let location = of_backups(Some(&b)).unwrap();
        assert_eq!(location.provider, StorageProvider::Aws);
        let settings: Vec<(&str, &str)> = location
            .credentials
            .iter()
            .map(|c| (c.setting, c.key.as_str()))
            .collect();
        assert_eq!(
            settings,
            [
                ("access_key", "ak"),
                ("bucket", "b"),
                ("secret_key", "sk"),
                ("region", "region")
            ]
        );
        assert_eq!(
            location.literals,
            [("base_path", "clusters/prod".to_string())]
        );
    }

    #[test]
    fn azure_backups_and_what_is_missing() {
        let b = backups(
            json!({"azure_blob": {"accountName": r("az", "n"), "accountKey": r("az", "k"),
            "container": r("az", "c")}}),
        );
        assert_eq!(
            of_backups(Some(&b)).unwrap().provider,
            StorageProvider::AzureBlob
        );
        let incomplete = backups(json!({"aws": {"accessKeyId": r("backup", "ak")}}));
        assert_eq!(
            of_backups(Some(&incomplete)).unwrap_err(),
            "spec.backups.aws lacks spec.backups.aws.bucket, spec.backups.aws.secretAccessKey: each must be a secretKeyRef with a name and a key"
        );
        assert!(of_backups(None).unwrap_err().contains("--from-request"));
    }

    #[test]
    fn a_requests_references_without_a_snapshot() {
        let spec: RestoreSnapshotSpec = serde_json::from_value(json!({"snapshot": "",
            "accessKeyId": r("rs", "a"), "secretAccessKey": r("rs", "s"),
            "bucket": r("rs", "b"), "basePath": r("rs", "p")}))
        .unwrap();
        let location = of_request(&spec, &Default::default(), None).unwrap();
        assert_eq!(location.credentials.len(), 4);
        assert_eq!(location.provider, StorageProvider::Aws);
    }
}
