//! Why a review is denied, and the one place where that becomes an admission answer.

use kube::core::admission::AdmissionResponse;

use crate::restore_request::{FieldError, describe};

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The request breaks one or more rules; every problem is listed.
    #[error("{}", describe(.0))]
    InvalidSpec(Vec<FieldError>),
    /// Another restore of this cluster is still running (SPEC A3).
    #[error("{0}")]
    RestoreInProgress(String),
    /// Another request for this cluster won the lock an instant earlier.
    #[error("{0}")]
    ConcurrentRequest(String),
    /// The object reached validation without the run id the mutating webhook stamps.
    #[error(
        "metadata.annotations[\"{annotation}\"] was not set by the cratedb-restore mutating webhook; check that its MutatingWebhookConfiguration is installed and matches this resource, then apply again"
    )]
    MissingRunId { annotation: &'static str },
    /// The requesting user may not read a Secret the request references (SPEC A24). Only the
    /// Secret's name is given: its keys are not the user's to see.
    #[error("{}", forbidden(.0))]
    Forbidden(Vec<FieldError>),
    /// A cancel that cannot go through (SPEC A29): no run, another run, or too late.
    #[error("{0}")]
    CancelRefused(String),
    /// The restore Job could not start in this namespace (SPEC A25).
    #[error("{0}")]
    CannotRun(String),
    /// The review's API calls did not fit into its budget (SPEC A25).
    #[error(
        "the webhook ran out of its {} budget for this review while trying to {action}; nothing was admitted and anything created for this request is being removed: apply again, and if it persists check the API server's latency and the webhook's logs",
        crate::duration::human(*.budget)
    )]
    OutOfTime {
        action: String,
        budget: std::time::Duration,
    },
    /// A Kubernetes call the decision depends on failed; deny rather than guess.
    #[error(
        "could not {action}: {source}; try again, and check the webhook's RBAC and logs if it persists"
    )]
    Kubernetes {
        action: String,
        #[source]
        source: kube::Error,
    },
}

fn forbidden(errors: &[FieldError]) -> String {
    let items: Vec<String> = errors.iter().map(FieldError::to_string).collect();
    format!(
        "a restore may only use Secrets its requester can read: {}",
        items.join("; ")
    )
}

impl AdmissionError {
    pub fn kubernetes(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |source| Self::Kubernetes { action, source }
    }

    /// The HTTP-style code in the denial's status (the API server shows it to the client).
    pub fn code(&self) -> u16 {
        match self {
            Self::InvalidSpec(_) | Self::CannotRun(_) => 422,
            Self::Forbidden(_) => 403,
            Self::RestoreInProgress(_) | Self::ConcurrentRequest(_) | Self::CancelRefused(_) => 409,
            Self::OutOfTime { .. } => 504,
            Self::MissingRunId { .. } | Self::Kubernetes { .. } => 500,
        }
    }

    /// A stable reason: the status reason, the metric label, and the log field.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "Invalid",
            Self::Forbidden(_) => "Forbidden",
            Self::CannotRun(_) => "JobCannotRun",
            Self::OutOfTime { .. } => "Timeout",
            Self::RestoreInProgress(_) => "RestoreInProgress",
            Self::ConcurrentRequest(_) => "Conflict",
            Self::CancelRefused(_) => "CancelRefused",
            Self::MissingRunId { .. } => "MissingRunId",
            Self::Kubernetes { .. } => "InternalError",
        }
    }

    pub fn deny(&self, response: AdmissionResponse) -> AdmissionResponse {
        let mut response = response.deny(self);
        response.result.code = self.code();
        response.result.reason = self.reason().to_string();
        response.result.status = Some(kube::core::response::StatusSummary::Failure);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::{DynamicObject, admission::AdmissionRequest};

    #[test]
    fn denials_carry_code_reason_and_message() {
        let req: AdmissionRequest<DynamicObject> = serde_json::from_value(serde_json::json!({
            "uid": "abc", "kind": {"group": "", "version": "v1", "kind": "X"},
            "resource": {"group": "", "version": "v1", "resource": "xs"},
            "operation": "CREATE", "userInfo": {}, "object": null, "oldObject": null
        }))
        .unwrap();
        let err = AdmissionError::InvalidSpec(vec![FieldError::new("spec.x", "is bad; fix it")]);
        let v = serde_json::to_value(err.deny(AdmissionResponse::from(&req))).unwrap();
        assert_eq!(v["uid"], "abc");
        assert_eq!(v["allowed"], false);
        assert_eq!(v["status"]["code"], 422);
        assert_eq!(v["status"]["reason"], "Invalid");
        assert_eq!(
            v["status"]["message"],
            "invalid restore request: spec.x: is bad; fix it"
        );
        let busy = AdmissionError::RestoreInProgress("busy".into());
        assert_eq!((busy.code(), busy.reason()), (409, "RestoreInProgress"));
    }
}
