//! What every step works with: the clients, the request, the run's identity and its status.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::{
    config::JobConfig, error::StepError, events::EventSink, notify::Notifier, record::RecordStore,
    status_writer::StatusWriter,
};
use crate::{
    cratedb::{SqlError, SqlParam, SqlResult, pg::Pg, superuser::Superuser},
    plan::Plan,
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
    /// The `system` user's password, read once at start (`user-system-<name>`).
    pub system_password: secrecy::SecretString,
    /// The persistent settings before an ALL or METADATA restore (SPEC A22), to report what
    /// the snapshot changed; only this pod's own reading.
    pub settings_before: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    /// The whole plan once pre-flight made it (or read back at start): `status.restore.plan`
    /// shows it capped.
    pub plan: Option<Plan>,
    /// Where the run keeps what must survive it exactly (the request, a large plan).
    pub records: RecordStore,
    /// Whether the run was asked to stop (SPEC A29).
    pub cancel: super::cancel::CancelSignal,
}

impl RunContext {
    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.run.namespace)
    }

    /// Reads one key of a Secret in the resource's namespace as UTF-8 text.
    pub async fn secret_value(&self, name: &str, key: &str) -> Result<Option<String>, StepError> {
        read_secret_value(&self.secrets(), name, key).await
    }

    /// A cleanup statement (settings, repository, internal tables), over the PostgreSQL wire as
    /// `system`, and through the superuser path when that login is refused: a USERS or ALL
    /// restore replaces `system`'s password with the snapshot's until the reset step runs, and
    /// cleanup must work even when that step failed (SPEC A26). Statements here carry no
    /// secrets and no parameters, so both paths can send them.
    pub async fn cleanup_sql(&self, statement: &str) -> Result<SqlResult, SqlError> {
        match self.db.query(statement, &[]).await {
            Err(SqlError::Auth { user, message }) => {
                tracing::warn!(%user, %message, via = %self.superuser.describe(), "login refused (password restored from the snapshot?); running the cleanup statement through the superuser path");
                self.superuser.execute(statement).await
            }
            other => other,
        }
    }

    /// A query once RESTORE has been issued. A restored USERS section (ALL, or `users` among the
    /// sections) replaces `system`'s password with the snapshot's when the RESTORE starts: the
    /// connection open at that moment keeps working, but a new login (a resumed run in another
    /// Pod, a reconnect) is refused until the reset step. Then this cluster's password is put
    /// back at once through the superuser path (what the reset step does anyway; CrateDB
    /// restores the users only at the start, so it stays) and the query is tried once more.
    pub async fn query_after_restore(
        &self,
        statement: &str,
        params: &[&str],
    ) -> Result<SqlResult, SqlError> {
        let params: Vec<SqlParam> = params.iter().map(|p| SqlParam::Text(p)).collect();
        self.query_after_restore_typed(statement, &params).await
    }

    /// [`Self::query_after_restore`] with typed parameters.
    pub async fn query_after_restore_typed(
        &self,
        statement: &str,
        params: &[SqlParam<'_>],
    ) -> Result<SqlResult, SqlError> {
        match self.db.query_typed(statement, params).await {
            Err(SqlError::Auth { user, message }) => {
                tracing::warn!(%user, %message, via = %self.superuser.describe(), "login refused after RESTORE (the snapshot's users replaced the password?); resetting the password through the superuser path now");
                let reset = self
                    .superuser
                    .set_password(&user, self.system_password.expose_secret())
                    .await;
                if let Err(error) = reset {
                    tracing::warn!(%user, %error, "early password reset failed");
                    return Err(SqlError::Auth { user, message });
                }
                self.db.query_typed(statement, params).await
            }
            other => other,
        }
    }

    /// The snapshot the RESTORE reads: the one the plan resolved (`latest`), else the request's.
    pub fn snapshot(&self) -> String {
        self.plan
            .as_ref()
            .and_then(|p| p.snapshot.clone())
            .unwrap_or_else(|| self.request.snapshot.clone())
    }

    /// Sleeps `delay`, or less when the run is cancelled meanwhile.
    pub async fn sleep_unless_cancelled(
        &self,
        delay: std::time::Duration,
    ) -> Result<(), StepError> {
        let mut cancel = self.cancel.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            request = cancel.cancelled() => Err(cancelled_error(&request)),
        }
    }

    /// `Err(Cancelled)` once the run is cancelled.
    pub fn check_cancel(&self) -> Result<(), StepError> {
        match self.cancel.get() {
            Some(request) => Err(cancelled_error(&request)),
            None => Ok(()),
        }
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

fn cancelled_error(request: &super::cancel::CancelRequest) -> StepError {
    StepError::Cancelled(format!(
        "stopped: the run was cancelled{}",
        request
            .by
            .as_deref()
            .map(|by| format!(" by {by}"))
            .unwrap_or_default()
    ))
}
