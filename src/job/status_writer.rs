//! The writer that keeps `status.restore` (the model is [`crate::status::RestoreStatus`]) current
//! with merge patches. The CRD has no status subresource, so the patch goes to the resource itself;
//! merge patches carry no resourceVersion, so there is nothing to conflict with, and transient
//! failures are retried.

use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tokio::time::Instant;

use super::{error::StepError, retry::Backoff};
use crate::{resource::CrateDB, status::RestoreStatus};

/// Keeps `status.restore` of one CrateDB resource in step with the run.
pub struct StatusWriter {
    api: Api<CrateDB>,
    name: String,
    pub state: RestoreStatus,
    last_progress_write: Option<Instant>,
    backoff: Backoff,
}

impl StatusWriter {
    pub fn new(api: Api<CrateDB>, name: &str, state: RestoreStatus, backoff: Backoff) -> Self {
        Self {
            api,
            name: name.into(),
            state,
            last_progress_write: None,
            backoff,
        }
    }

    /// Writes the whole state now, retrying transient failures a bounded number of times.
    pub async fn save(&mut self) -> Result<(), StepError> {
        let body = json!({"status": {"restore": &self.state}});
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .api
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(_) => {
                    // Any write carries the latest progress: the next progress write waits a
                    // whole interval from here.
                    self.last_progress_write = Some(Instant::now());
                    return Ok(());
                }
                Err(error) => {
                    let error = StepError::from(error);
                    if error.is_transient() && self.backoff.wait(attempt, deadline).await {
                        tracing::warn!(%error, attempt, "status write failed; retrying");
                        continue;
                    }
                    return Err(StepError::StatusLost(format!(
                        "cannot write status.restore after {attempt} attempt(s): {error}"
                    )));
                }
            }
        }
    }

    /// Writes progress at most every `interval`; other changes go through [`Self::save`].
    pub async fn save_progress(&mut self, interval: std::time::Duration) -> Result<(), StepError> {
        if self
            .last_progress_write
            .is_some_and(|t| t.elapsed() < interval)
        {
            return Ok(());
        }
        self.last_progress_write = Some(Instant::now());
        self.save().await
    }
}
