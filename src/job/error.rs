//! Why a step did not succeed, and the one place where that becomes a retry, a terminal status
//! or an exit code.

use crate::cratedb::SqlError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// Will not get better by retrying: the step fails with this message for a person.
    #[error("{0}")]
    Permanent(String),
    /// A connection, a 5xx, a conflict, a 401/403 (permissions can come back): the step is
    /// retried with backoff inside the deadline.
    #[error("{0}")]
    Transient(String),
    /// The restore deadline passed (SPEC A12).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// `status.restore` could not be written, even after retries: the run's memory (SPEC A6) is
    /// at stake, so the run stops and the next pod resumes from what was stored.
    #[error("{0}")]
    StatusLost(String),
    /// The run was cancelled while the step waited (SPEC A29): not a failure; the step stops
    /// and the run turns to undoing what it changed.
    #[error("{0}")]
    Cancelled(String),
}

impl StepError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }

    /// Prefixes the message with what was being done.
    pub fn context(self, what: &str) -> Self {
        match self {
            Self::Permanent(m) => Self::Permanent(format!("{what}: {m}")),
            Self::Transient(m) => Self::Transient(format!("{what}: {m}")),
            Self::DeadlineExceeded(m) => Self::DeadlineExceeded(format!("{what}: {m}")),
            Self::StatusLost(m) => Self::StatusLost(format!("{what}: {m}")),
            Self::Cancelled(m) => Self::Cancelled(m),
        }
    }
}

impl From<kube::Error> for StepError {
    fn from(error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) => {
                let text = format!(
                    "Kubernetes API answered {} {}: {}",
                    status.code, status.reason, status.message
                );
                match status.code {
                    409 | 429 | 500.. => Self::Transient(text),
                    // Lost permissions are no verdict on the restore: an uninstall, a rotated
                    // token or a Role edited by hand may be undone, and the run goes on then.
                    401 => Self::Transient(format!(
                        "the Kubernetes API no longer accepts this Job's ServiceAccount token ({text}); was the ServiceAccount deleted or its token rotated? Waiting for access to return"
                    )),
                    403 => Self::Transient(format!(
                        "permission missing: {}; waiting until the restore Job's Role grants it again (Kubernetes API answered 403 Forbidden)",
                        status.message
                    )),
                    _ => Self::Permanent(text),
                }
            }
            // Connection, TLS, timeouts and the like.
            other => Self::Transient(format!("Kubernetes API unreachable: {other}")),
        }
    }
}

impl From<SqlError> for StepError {
    fn from(error: SqlError) -> Self {
        if error.is_transient() {
            Self::Transient(error.to_string())
        } else {
            Self::Permanent(error.to_string())
        }
    }
}

/// How the Job process ends. Documented in `cratedb-restore-job --help`; the Job's
/// `podFailurePolicy` fails the Job at once on the permanent ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The restore succeeded, or there was nothing to do (a superseded or finished run).
    Done = 0,
    /// An unexpected problem before a terminal status could be written; a retry may help.
    Retry = 1,
    /// Wrong arguments or configuration; a retry will not help.
    Usage = 2,
    /// The restore failed; the status says why and cleanup ran. A retry will not help.
    Failed = 3,
    /// Interrupted (SIGTERM); the run is left for the next pod to adopt.
    Interrupted = 4,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        let mut status = kube::core::Status::failure(message, reason);
        status.code = code;
        kube::Error::Api(status.boxed())
    }

    #[test]
    fn lost_permissions_are_waited_for_and_named() {
        let forbidden = StepError::from(api(
            403,
            "Forbidden",
            r#"secrets "user-system-c1" is forbidden: User "system:serviceaccount:dbs:cratedb-restore-job" cannot get resource "secrets" in API group "" in the namespace "dbs""#,
        ));
        assert!(forbidden.is_transient(), "{forbidden:?}");
        let text = forbidden.to_string();
        assert!(
            text.starts_with("permission missing: secrets \"user-system-c1\" is forbidden")
                && text.contains(r#"cannot get resource "secrets""#)
                && text.contains("403 Forbidden"),
            "{text}"
        );
        let unauthorized = StepError::from(api(401, "Unauthorized", "Unauthorized"));
        assert!(unauthorized.is_transient(), "{unauthorized:?}");
        assert!(
            unauthorized.to_string().contains("ServiceAccount token"),
            "{unauthorized}"
        );
    }

    #[test]
    fn other_answers_keep_their_meaning() {
        for code in [409, 429, 500, 503] {
            assert!(
                StepError::from(api(code, "x", "y")).is_transient(),
                "{code}"
            );
        }
        for code in [400, 404, 422] {
            assert!(
                matches!(
                    StepError::from(api(code, "x", "y")),
                    StepError::Permanent(_)
                ),
                "{code}"
            );
        }
    }
}
