//! One deadline for every Kubernetes API call of one review (SPEC A25).
//!
//! The API server gives a webhook `timeoutSeconds` and then applies the failure policy, which
//! leaves the user with "context deadline exceeded" and possibly a Lease or Job that belong to a
//! request that was never stored. Every call of a review therefore draws on one budget below
//! that timeout, and running out is a clean denial of our own.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

use super::error::AdmissionError;

#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Instant,
    total: Duration,
}

impl Budget {
    pub fn starting_now(total: Duration) -> Self {
        Self {
            deadline: Instant::now() + total,
            total,
        }
    }

    /// Runs one call within what is left of the budget and hands back its own result, so a
    /// caller can still tell a 409 from a 404.
    pub async fn limit<T>(
        &self,
        action: &str,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, AdmissionError> {
        tokio::time::timeout_at(self.deadline, call)
            .await
            .map_err(|_| AdmissionError::OutOfTime {
                action: action.to_string(),
                budget: self.total,
            })
    }

    /// [`Self::limit`] for calls whose every error denies the review.
    pub async fn call<T>(
        &self,
        action: &str,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, AdmissionError> {
        self.limit(action, call)
            .await?
            .map_err(AdmissionError::kubernetes(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_share_one_deadline() {
        let budget = Budget::starting_now(Duration::from_millis(1000));
        let slow = |ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, kube::Error>(ms)
        };
        assert_eq!(budget.call("first", slow(600)).await.unwrap(), 600);
        // 600 ms are spent: a second call of 600 ms no longer fits although it alone would.
        let err = budget.call("read the Lease", slow(600)).await.unwrap_err();
        assert!(matches!(err, AdmissionError::OutOfTime { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "the webhook ran out of its 1s budget for this review while trying to read the Lease; nothing was admitted and anything created for this request is being removed: apply again, and if it persists check the API server's latency and the webhook's logs"
        );
        assert_eq!((err.code(), err.reason()), (504, "Timeout"));
    }
}
