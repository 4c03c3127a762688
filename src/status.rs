//! `status.restore`: what a restore run reports about itself (SPEC A5), the one model of it.
//! The restore Job owns it; the mutating webhook only seeds it with the Pending phase of a newly
//! admitted run, and the validating webhook reads it to guard overlap.
//!
//! Bounded (SPEC A28): every list is capped with a count and the request is not copied here;
//! what a run needs to resume exactly (the admitted request, a plan too large to show) is kept
//! in the run's record ([`StoredRef`]). A status written by the previous release, with the
//! request and the whole plan inline, still reads.

use std::{collections::BTreeMap, fmt};

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    plan::{PlanSummary, StoredRef},
    progress::Progress,
};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Stopped on request, with what the run changed undone (SPEC A29).
    Cancelled,
}

impl Phase {
    /// A run in this phase holds the cluster: no other restore may start (SPEC A3).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
        })
    }
}

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
pub struct RestoreStatus {
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
    /// The admitted `restoreSnapshot` as the previous release kept it here. Read to resume such
    /// a run, never written: the request is kept in the run's record (`requestRecord`).
    #[serde(default, skip_serializing)]
    pub request: Option<Value>,
    /// Where the admitted request and its options are kept, so a restarted pod can finish the
    /// run even after the request was edited or withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_record: Option<StoredRef>,
    /// The admitted `restore.cloud.crate.io/` option annotations (SPEC A27), for people (values
    /// capped; the record holds them exactly). The previous release resumed from these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
    pub progress_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
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
    /// Who asked to cancel the run (`restore.cloud.crate.io/cancel`), as the API server
    /// authenticated them; set by the mutating webhook when it admits the cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<String>,
}

impl RestoreStatus {
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
        let message = &crate::bounded::text(message, crate::bounded::MESSAGE_BYTES);
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
