//! The read-only repositories the Job creates (SPEC B§6, A8): their settings, read from the
//! Secrets a location names, and the `CREATE REPOSITORY` that binds every one of them, so no
//! credential appears in statement text, a log line or CrateDB's `sys.jobs_log`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::error::StepError;
use crate::{
    backup_location::Location,
    cratedb::{SqlError, pg::Pg},
    repository::{
        StorageProvider, create_repository_statement, expand_setting, fixed_repository_parameters,
    },
    restore_request::S3_REGION_SINCE,
    version::ServerVersion,
};

/// The repository settings of `location`, its Secrets read once each.
pub async fn settings(
    secrets: &Api<Secret>,
    location: &Location,
    version: Option<ServerVersion>,
) -> Result<Vec<(&'static str, String)>, StepError> {
    let mut settings: Vec<(&'static str, String)> = Vec::new();
    let mut read: BTreeMap<&str, Secret> = BTreeMap::new();
    for credential in &location.credentials {
        if !read.contains_key(credential.secret.as_str()) {
            let secret = secrets.get_opt(&credential.secret).await?.ok_or_else(|| {
                StepError::permanent(format!("Secret {} could not be found.", credential.secret))
            })?;
            read.insert(&credential.secret, secret);
        }
    }
    for credential in &location.credentials {
        // A region taken from the cluster's backup settings is left to the server's inference
        // where it has no region setting (an explicit one was refused before).
        if credential.setting == "region" && version.is_some_and(|v| v < S3_REGION_SINCE) {
            tracing::info!(path = %credential.path, "no s3 region setting on this CrateDB; left out");
            continue;
        }
        let field = credential.path.as_str();
        let secret = &read[credential.secret.as_str()];
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&credential.key))
            .ok_or_else(|| StepError::permanent(format!("Key {field} not found in secret.")))?;
        let value = String::from_utf8(bytes.0.clone())
            .map_err(|_| StepError::permanent(format!("Field `{field}` must be UTF-8 text")))?;
        if value.trim().is_empty() {
            return Err(StepError::permanent(format!(
                "Field `{field}` must be a non-empty string"
            )));
        }
        settings.extend(expand_setting(credential.setting, value));
    }
    settings.extend(location.literals.iter().cloned());
    settings.extend(addressing(&settings, version));
    Ok(settings)
}

/// `CREATE REPOSITORY name TYPE … WITH (readonly = true, …)`, every value bound.
pub async fn create(
    db: &Pg,
    name: &str,
    provider: StorageProvider,
    settings: &[(&'static str, String)],
) -> Result<(), StepError> {
    let names: Vec<&str> = settings.iter().map(|(s, _)| *s).collect();
    let statement = create_repository_statement(name, provider, &names);
    let fixed = fixed_repository_parameters();
    let params: Vec<&str> = fixed
        .iter()
        .copied()
        .chain(settings.iter().map(|(_, v)| v.as_str()))
        .collect();
    // The statement carries only placeholders; the values never reach a log line.
    db.query(&statement, &params).await.map_err(|e| match e {
        SqlError::Sql { message, .. } => {
            StepError::permanent(format!("Backup repository could not be created: {message}"))
        }
        other => StepError::from(other),
    })?;
    tracing::info!(repository = %name, %provider, "read-only repository created");
    Ok(())
}

/// S3-compatible stores (MinIO, Ceph) serve buckets under a path, not as a host name; CrateDB
/// before 6.3.0 addresses `<bucket>.<endpoint>` unless told otherwise, which such a store does
/// not resolve. The setting exists from 5.7.0; Amazon's own endpoints keep CrateDB's default.
pub fn addressing(
    settings: &[(&'static str, String)],
    version: Option<ServerVersion>,
) -> Option<(&'static str, String)> {
    let endpoint = settings.iter().find(|(s, _)| *s == "endpoint")?;
    let amazon = endpoint.1.trim_end_matches('/').ends_with("amazonaws.com");
    let has_setting = version.is_none_or(|v| v >= PATH_STYLE_SINCE);
    if amazon {
        return None;
    }
    if !has_setting {
        tracing::warn!(
            "CrateDB before 5.7.0 addresses an S3 bucket as <bucket>.<endpoint>; the store must answer under that name"
        );
        return None;
    }
    Some(("use_path_style_access", "true".into()))
}

/// CrateDB 5.7.0 added `use_path_style_access` to s3 repositories.
pub const PATH_STYLE_SINCE: ServerVersion = ServerVersion::new(5, 7, 0);
