//! The step interface (SPEC A1, B§3.2): which steps a run has, in which order, when each runs,
//! and what a finished step reports. Steps and the engine both depend on this module; steps
//! never depend on the engine that runs them.

use crate::status::{RestoreStatus, StepState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepId {
    Preflight,
    BeforeClusterUpdate,
    BeforeRestoreBackup,
    RestoreBackupData,
    AwaitRestore,
    CancelRestore,
    RestoreSystemUserPassword,
    RestoreUserJwtAuth,
    ValidateRestoreComplete,
    RestoreInternalTables,
    AfterRestoreBackup,
    AfterClusterUpdate,
    SendSuccessNotification,
    FlushNotifications,
    ResetSnapshot,
}

impl StepId {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preflight => "preflight",
            Self::BeforeClusterUpdate => "before_cluster_update",
            Self::BeforeRestoreBackup => "before_restore_backup",
            Self::RestoreBackupData => "restore_backup_data",
            Self::AwaitRestore => "await_restore",
            Self::CancelRestore => "cancel_restore",
            Self::RestoreSystemUserPassword => "restore_system_user_password",
            Self::RestoreUserJwtAuth => "restore_user_jwt_auth",
            Self::ValidateRestoreComplete => "validate_restore_complete",
            Self::RestoreInternalTables => "restore_internal_tables",
            Self::AfterRestoreBackup => "after_restore_backup",
            Self::AfterClusterUpdate => "after_cluster_update",
            Self::SendSuccessNotification => "send_success_notification",
            Self::FlushNotifications => "flush_notifications",
            Self::ResetSnapshot => "reset_snapshot",
        }
    }

    /// `PascalCase` for event and condition reasons.
    pub fn reason(self) -> String {
        self.as_str()
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// When a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Only while every earlier step succeeded (the reference's dependencies without
    /// `run_on_dep_failures`).
    AllEarlierSucceeded,
    /// Whenever a RESTORE statement was sent, whatever else failed: the cluster may hold
    /// restored users and data that need the follow-up.
    RestoreIssued,
    /// Always (cleanup, notifications, reset); each undoes only what this run did.
    Always,
    /// Only in a cancelled run whose RESTORE was sent: stop the restore (SPEC A29).
    CancelledAfterRestore,
}

#[derive(Debug, Clone, Copy)]
pub struct StepSpec {
    pub id: StepId,
    pub when: When,
    /// Runs on the cleanup budget, after the restore deadline if need be.
    pub cleanup: bool,
    /// Whether the step's start is written before it runs. A quick step that changes nothing
    /// a restarted Pod could not simply do again (a check, an idempotent reset, a notification
    /// queue the step writes itself) starts without its own write; its start goes out with the
    /// next write. Each saves one API request per run (SPEC A28).
    pub announce: bool,
}

const fn step(id: StepId, when: When, cleanup: bool) -> StepSpec {
    StepSpec {
        id,
        when,
        cleanup,
        announce: true,
    }
}

const fn quiet(mut spec: StepSpec) -> StepSpec {
    spec.announce = false;
    spec
}

/// The run order. The pre-flight plan (SPEC A19) comes before the reference's twelve steps; the
/// wait for the asynchronous RESTORE (B§2.3) is its own step between 3 and 4, and so is stopping
/// it when the run is cancelled (A29).
pub const PLAN: [StepSpec; 15] = [
    step(StepId::Preflight, When::AllEarlierSucceeded, false),
    step(
        StepId::BeforeClusterUpdate,
        When::AllEarlierSucceeded,
        false,
    ),
    step(
        StepId::BeforeRestoreBackup,
        When::AllEarlierSucceeded,
        false,
    ),
    step(StepId::RestoreBackupData, When::AllEarlierSucceeded, false),
    step(StepId::AwaitRestore, When::RestoreIssued, false),
    step(StepId::CancelRestore, When::CancelledAfterRestore, true),
    step(StepId::RestoreSystemUserPassword, When::RestoreIssued, true),
    quiet(step(
        StepId::RestoreUserJwtAuth,
        When::AllEarlierSucceeded,
        false,
    )),
    quiet(step(
        StepId::ValidateRestoreComplete,
        When::AllEarlierSucceeded,
        false,
    )),
    step(StepId::RestoreInternalTables, When::Always, true),
    step(StepId::AfterRestoreBackup, When::Always, true),
    step(StepId::AfterClusterUpdate, When::Always, true),
    quiet(step(
        StepId::SendSuccessNotification,
        When::AllEarlierSucceeded,
        true,
    )),
    quiet(step(StepId::FlushNotifications, When::Always, true)),
    step(StepId::ResetSnapshot, When::Always, true),
];

/// What a successful step reports.
#[derive(Debug, Default)]
pub struct StepReport {
    pub message: String,
    pub result: Option<serde_json::Value>,
}

impl StepReport {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            result: None,
        }
    }

    pub fn with_result(mut self, result: serde_json::Value) -> Self {
        self.result = Some(result);
        self
    }
}

/// The step that failed first in plan order, with its message: the run's cause of failure
/// (later cleanup steps may fail too, as a consequence).
pub fn first_failure(state: &RestoreStatus) -> Option<(StepId, String)> {
    PLAN.iter().find_map(|spec| {
        state
            .step(spec.id.as_str())
            .filter(|record| record.state == Some(StepState::Failed))
            .map(|record| (spec.id, record.message.clone().unwrap_or_default()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StepRecord;

    #[test]
    fn the_first_failure_is_the_earliest_in_the_plan_not_by_name() {
        let failed = |message: &str| StepRecord {
            state: Some(StepState::Failed),
            message: Some(message.into()),
            ..Default::default()
        };
        let mut state = RestoreStatus::default();
        assert_eq!(first_failure(&state), None);
        state
            .steps
            .insert("after_cluster_update".into(), failed("scale-up timed out"));
        state
            .steps
            .insert("restore_backup_data".into(), failed("snapshot missing"));
        state.steps.insert(
            "after_restore_backup".into(),
            StepRecord {
                state: Some(StepState::Succeeded),
                ..Default::default()
            },
        );
        assert_eq!(
            first_failure(&state),
            Some((StepId::RestoreBackupData, "snapshot missing".into()))
        );
    }

    #[test]
    fn the_plan_encodes_the_reference_rules() {
        let ids: Vec<&str> = PLAN.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "preflight",
                "before_cluster_update",
                "before_restore_backup",
                "restore_backup_data",
                "await_restore",
                "cancel_restore",
                "restore_system_user_password",
                "restore_user_jwt_auth",
                "validate_restore_complete",
                "restore_internal_tables",
                "after_restore_backup",
                "after_cluster_update",
                "send_success_notification",
                "flush_notifications",
                "reset_snapshot",
            ]
        );
        let always: Vec<&str> = PLAN
            .iter()
            .filter(|s| s.when == When::Always)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(
            always,
            [
                "restore_internal_tables",
                "after_restore_backup",
                "after_cluster_update",
                "flush_notifications",
                "reset_snapshot"
            ]
        );
        assert_eq!(
            PLAN.last().unwrap().id,
            StepId::ResetSnapshot,
            "reset is last"
        );
        let quiet: Vec<&str> = PLAN
            .iter()
            .filter(|s| !s.announce)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(
            quiet,
            [
                "restore_user_jwt_auth",
                "validate_restore_complete",
                "send_success_notification",
                "flush_notifications"
            ]
        );
        assert_eq!(
            StepId::RestoreSystemUserPassword.reason(),
            "RestoreSystemUserPassword"
        );
    }
}
