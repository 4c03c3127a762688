//! `status.restore` as the Job writes it (SPEC A5), and the writer that keeps it current with
//! merge patches. The CRD has no status subresource, so the patch goes to the resource itself;
//! merge patches carry no resourceVersion, so there is nothing to conflict with, and transient
//! failures are retried.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{error::StepError, plan::Plan, progress::Progress, retry::Backoff};
use crate::{resource::CrateDB, status::Phase};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepState {
    Running,
    Succeeded,
    Failed,
    Skipped,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub state: Option<StepState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the step did, for later steps and restarts (never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default)]
    pub attempts: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SavedSettings {
    pub max_bytes_per_sec: String,
    pub cluster_concurrent_rebalance: Value,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct QueuedNotification {
    pub event: String,
    pub status: String,
    pub data: Value,
}

/// Everything under `status.restore`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreState {
    pub run_id: Option<String>,
    pub snapshot: Option<String>,
    #[serde(rename = "type")]
    pub restore_type: Option<String>,
    pub phase: Option<Phase>,
    pub job_name: Option<String>,
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// The admitted `restoreSnapshot` (secret references only, never values), so a restarted
    /// pod can finish the run even after the request was edited or withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    pub progress_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    #[serde(default)]
    pub steps: BTreeMap<String, StepRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_settings: Option<SavedSettings>,
    /// Persistent settings the snapshot changed that this product does not own (SPEC A22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_changed_by_snapshot: Option<Vec<String>>,
    /// What an earlier run of this resource left behind when it never finished (recorded by the
    /// mutating webhook): its repository and its Grand Central suspension, undone by this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandoned_run: Option<Value>,
    /// Notifications waiting for the flush step (SPEC B§4.10, B§4.11).
    #[serde(default)]
    pub notifications: Vec<QueuedNotification>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl RestoreState {
    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.get(id)
    }

    pub fn step_succeeded(&self, id: &str) -> bool {
        self.step(id).and_then(|s| s.state) == Some(StepState::Succeeded)
    }

    pub fn step_result(&self, id: &str) -> Option<&Value> {
        self.step(id).and_then(|s| s.result.as_ref())
    }

    pub fn set_condition(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        let now = Timestamp::now().to_string();
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = now;
                }
                c.status = status.into();
                c.reason = reason.into();
                c.message = message.into();
            }
            None => self.conditions.push(Condition {
                type_: type_.into(),
                status: status.into(),
                reason: reason.into(),
                message: message.into(),
                last_transition_time: now,
            }),
        }
    }
}

/// Keeps `status.restore` of one CrateDB resource in step with the run.
pub struct StatusWriter {
    api: Api<CrateDB>,
    name: String,
    pub state: RestoreState,
    last_progress_write: Option<Instant>,
    backoff: Backoff,
}

impl StatusWriter {
    pub fn new(api: Api<CrateDB>, name: &str, state: RestoreState, backoff: Backoff) -> Self {
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
                Ok(_) => return Ok(()),
                Err(error) => {
                    let error = StepError::from(error);
                    if error.is_transient() && self.backoff.wait(attempt, deadline).await {
                        tracing::warn!(%error, attempt, "status write failed; retrying");
                        continue;
                    }
                    return Err(error.context("cannot write status.restore"));
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
