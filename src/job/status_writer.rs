//! The writer that keeps `status.restore` (the model is [`crate::status::RestoreStatus`]) current
//! with merge patches. The CRD has no status subresource, so the patch goes to the resource itself;
//! merge patches carry no resourceVersion, so there is nothing to conflict with, and transient
//! failures are retried. Each write carries only what changed since the last one the API server
//! took (SPEC A28): its size does not grow with the restore, and a write with nothing new is not
//! sent at all.

use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{error::StepError, retry::Backoff};
use crate::{merge_patch, resource::CrateDB, status::RestoreStatus};

/// What the writer sent, for the run's last log line and the benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    pub writes: u64,
    pub bytes: u64,
    pub largest: u64,
}

type Observer = Box<dyn Fn(&CrateDB) + Send + Sync>;

/// Keeps `status.restore` of one CrateDB resource in step with the run.
pub struct StatusWriter {
    api: Api<CrateDB>,
    name: String,
    pub state: RestoreStatus,
    /// `status.restore` as the API server has it, as far as this model sees it: the base of the
    /// next write's difference.
    stored: Value,
    last_progress_write: Option<Instant>,
    backoff: Backoff,
    stats: WriteStats,
    /// Sees the resource each write returns (the run looks for a cancel in it).
    observer: Option<Observer>,
}

impl StatusWriter {
    /// `stored` is `status.restore` as read from the resource (another run's, or none), so the
    /// first write also clears what an earlier run left there.
    pub fn new(
        api: Api<CrateDB>,
        name: &str,
        stored: Option<&RestoreStatus>,
        state: RestoreStatus,
        backoff: Backoff,
    ) -> Self {
        let stored = stored
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null);
        Self {
            api,
            name: name.into(),
            state,
            stored,
            last_progress_write: None,
            backoff,
            stats: WriteStats::default(),
            observer: None,
        }
    }

    /// Calls `observer` with the resource as every successful write returns it.
    pub fn observe(&mut self, observer: impl Fn(&CrateDB) + Send + Sync + 'static) {
        self.observer = Some(Box::new(observer));
    }

    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    /// Writes what changed now, retrying transient failures a bounded number of times.
    pub async fn save(&mut self) -> Result<(), StepError> {
        let current = serde_json::to_value(&self.state)
            .map_err(|e| StepError::StatusLost(format!("status.restore cannot be encoded: {e}")))?;
        let Some(change) = merge_patch::diff(&self.stored, &current) else {
            return Ok(());
        };
        let body = json!({"status": {"restore": change}});
        let bytes = serde_json::to_vec(&body)
            .map(|b| b.len() as u64)
            .unwrap_or(0);
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .api
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(written) => {
                    if let Some(observer) = &self.observer {
                        observer(&written);
                    }
                    self.stored = current;
                    self.stats.writes += 1;
                    self.stats.bytes += bytes;
                    self.stats.largest = self.stats.largest.max(bytes);
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

    /// Writes at most every `interval`; other changes go through [`Self::save`].
    pub async fn save_progress(&mut self, interval: std::time::Duration) -> Result<(), StepError> {
        if !self.progress_write_due(interval) {
            return Ok(());
        }
        self.last_progress_write = Some(Instant::now());
        self.save().await
    }

    /// Whether `interval` has passed since the last write.
    pub fn progress_write_due(&self, interval: std::time::Duration) -> bool {
        self.last_progress_write
            .is_none_or(|t| t.elapsed() >= interval)
    }
}
