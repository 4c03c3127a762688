//! `cratedb-restore-job snapshots` (SPEC A30): the snapshots in a cluster's backup location,
//! read through a read-only repository of its own that is dropped again. Nothing else in the
//! cluster changes: no setting, no CronJob, no status. Credentials are bound parameters.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use rand::Rng;
use secrecy::SecretString;
use tokio::time::Instant;

use super::{
    config::JobConfig, context::read_secret_value, error::StepError, repository, retry::Backoff,
};
use crate::{
    backup_location::{self, Location},
    cratedb::{
        catalog,
        pg::{Pg, PgEndpoint},
        queries::{self, SnapshotInfo},
    },
    resource::CrateDB,
    restore_options::option_annotations,
    version::ServerVersion,
};

/// Why the catalog could not be read, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The request itself is wrong (no such CrateDB, no backup location): exit 2.
    #[error("{0}")]
    Usage(String),
    /// CrateDB or the Kubernetes API refused: exit 3.
    #[error("{0}")]
    Refused(String),
    /// Unreachable for now: exit 1.
    #[error("{0}")]
    Unavailable(String),
}

impl From<StepError> for CatalogError {
    fn from(error: StepError) -> Self {
        match error {
            StepError::Transient(m) => Self::Unavailable(m),
            other => Self::Refused(other.to_string()),
        }
    }
}

/// [`list`], tried again while CrateDB or the API is unreachable, for up to `wait`: a plugin run
/// right after a cluster starts should list, not fail on a Service without endpoints yet.
pub async fn list_waiting(
    config: &JobConfig,
    client: Client,
    from_request: bool,
    wait: Duration,
) -> Result<(String, Vec<SnapshotInfo>), CatalogError> {
    let backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(10),
        max_attempts: 0,
    };
    let deadline = Instant::now() + wait;
    let mut attempt = 1;
    loop {
        match list(config, client.clone(), from_request).await {
            Err(CatalogError::Unavailable(reason)) => match backoff.next_delay(attempt, deadline) {
                Some(delay) => {
                    tracing::warn!(
                        attempt,
                        retry_in_s = delay.as_secs_f64(),
                        "{reason}; trying again"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None => return Err(CatalogError::Unavailable(reason)),
            },
            other => return other,
        }
    }
}

/// The snapshots of the CrateDB's backup location (`spec.backups`), or of the location its
/// restore request references (`from_request`), and where that location comes from.
pub async fn list(
    config: &JobConfig,
    client: Client,
    from_request: bool,
) -> Result<(String, Vec<SnapshotInfo>), CatalogError> {
    let cratedbs: Api<CrateDB> = Api::namespaced(client.clone(), &config.namespace);
    let cr = cratedbs
        .get_opt(&config.name)
        .await
        .map_err(|e| CatalogError::from(StepError::from(e)))?
        .ok_or_else(|| {
            CatalogError::Usage(format!(
                "CrateDB {}/{} does not exist",
                config.namespace, config.name
            ))
        })?;
    let location = if from_request {
        let spec = cr.restore_snapshot().ok_or_else(|| {
            CatalogError::Usage(
                "the CrateDB has no spec.cluster.restoreSnapshot to read the location from".into(),
            )
        })?;
        let annotations = cr.metadata.annotations.clone().unwrap_or_default();
        backup_location::of_request(
            spec,
            &option_annotations(&annotations),
            cr.spec.backups.as_ref(),
        )
    } else {
        backup_location::of_backups(cr.spec.backups.as_ref())
    }
    .map_err(CatalogError::Usage)?;

    let secrets: Api<Secret> = Api::namespaced(client, &config.namespace);
    let password = read_secret_value(
        &secrets,
        &format!("user-system-{}", config.name),
        "password",
    )
    .await?
    .ok_or_else(|| {
        CatalogError::Unavailable(format!(
            "Secret user-system-{} does not exist (yet); is the cluster running?",
            config.name
        ))
    })?;
    let tls = crate::cratedb::tls::client_config(config.crate_ca_file.as_deref())
        .map_err(|e| CatalogError::Usage(format!("TLS to CrateDB cannot be set up: {e}")))?;
    let db = Pg::new(PgEndpoint {
        host: config.crate_host(),
        port: config.crate_port,
        user: "system".into(),
        password: SecretString::from(password),
        schema: "doc".into(),
        connect_timeout: std::time::Duration::from_secs(10),
        statement_timeout: config.sql_timeout,
        ssl_mode: config.crate_ssl_mode,
        tls: Some(std::sync::Arc::new(tls)),
    });
    let version = queries::server_version(
        &db.query(queries::SERVER_VERSIONS, &[])
            .await
            .map_err(|e| CatalogError::from(StepError::from(e)))?,
    );
    let name = format!(
        "cratedb_restore_catalog_{:08x}",
        rand::rng().random::<u32>()
    );
    let snapshots = read_through(&db, &secrets, &location, version, &name, config).await;
    // Dropped whatever happened: the catalog leaves nothing behind.
    if let Err(error) = db.query(&queries::drop_repository(&name), &[]).await
        && !queries::is_unknown_repository(&error, &name)
    {
        tracing::warn!(repository = %name, %error, "cannot drop the catalog's repository; drop it by hand");
    }
    Ok((location.source.clone(), snapshots?))
}

async fn read_through(
    db: &Pg,
    secrets: &Api<Secret>,
    location: &Location,
    version: Option<ServerVersion>,
    name: &str,
    config: &JobConfig,
) -> Result<Vec<SnapshotInfo>, CatalogError> {
    let settings = repository::settings(secrets, location, version).await?;
    repository::create(db, name, location.provider, &settings).await?;
    catalog::snapshots(db, name, true, config.snapshot_query_timeout)
        .await
        .map_err(|e| CatalogError::from(StepError::from(e)))
}
