//! What every step works with: the clients, the request, the run's identity and its status.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tokio::time::Instant;

use super::{
    config::JobConfig, error::StepError, events::EventSink, notify::Notifier,
    status_writer::StatusWriter,
};
use crate::{
    cratedb::{pg::Pg, superuser::Superuser},
    resource::CrateDB,
    restore_request::RestoreRequest,
    run::RunIdentity,
};

pub struct RunContext {
    pub config: JobConfig,
    pub client: Client,
    pub cratedbs: Api<CrateDB>,
    /// The resource as read at start; steps that need fresh data re-read it.
    pub cr: CrateDB,
    pub request: RestoreRequest,
    pub run: RunIdentity,
    pub db: Pg,
    pub superuser: Superuser,
    pub notifier: Notifier,
    pub status: StatusWriter,
    pub events: EventSink,
    /// The restore deadline (SPEC A12), counted from the run's first start.
    pub deadline: Instant,
    /// Cleanup steps may run until here.
    pub cleanup_deadline: Instant,
    /// Set by the engine before each step: whether any earlier step failed.
    pub earlier_failure: bool,
}

impl RunContext {
    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.run.namespace)
    }

    /// Reads one key of a Secret in the resource's namespace as UTF-8 text.
    pub async fn secret_value(&self, name: &str, key: &str) -> Result<Option<String>, StepError> {
        read_secret_value(&self.secrets(), name, key).await
    }

    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }

    pub fn deadline_error(&self) -> StepError {
        StepError::DeadlineExceeded(format!(
            "the restore did not finish within {:?} (CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT)",
            self.config.restore_timeout
        ))
    }
}

/// `Ok(None)` when the Secret or the key does not exist.
pub async fn read_secret_value(
    secrets: &Api<Secret>,
    name: &str,
    key: &str,
) -> Result<Option<String>, StepError> {
    let Some(secret) = secrets.get_opt(name).await? else {
        return Ok(None);
    };
    let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) else {
        return Ok(None);
    };
    String::from_utf8(bytes.0.clone()).map(Some).map_err(|_| {
        StepError::permanent(format!("key {key:?} of Secret {name:?} is not UTF-8 text"))
    })
}
