//! Notifications to the CrateDB Cloud backend (SPEC B§7, A13): the 13-key payload, HTTP Basic
//! auth, up to five attempts on 502/503/504 and connection errors with jittered exponential
//! backoff, never on other statuses. A notification that cannot be delivered is logged; it never
//! fails the restore.

use std::time::Duration;

use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::config::NotificationSettings;

pub const ACTION: &str = "restore_snapshot";
pub const MAX_ATTEMPTS: u32 = 5;

/// What the backend is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// `event: feedback` with `feedback_data {message, operation: update, action}`.
    Feedback {
        status: &'static str,
        message: String,
    },
    /// `event: delay`, `status: temporary_failure` with `temporary_failure_data {reason}`.
    Delay { reason: String },
    /// `event: admin_username_changed`, `status: success`.
    AdminUsernameChanged { username: String },
}

/// A message as the backend gets it: bounded whatever the size of the restore.
fn capped(message: String) -> String {
    crate::bounded::text(&message, crate::bounded::NOTIFICATION_BYTES)
}

impl Notification {
    pub fn in_progress(message: impl Into<String>) -> Self {
        Self::Feedback {
            status: "in_progress",
            message: capped(message.into()),
        }
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self::Feedback {
            status: "failure",
            message: capped(message.into()),
        }
    }

    pub fn success(message: impl Into<String>) -> Self {
        Self::Feedback {
            status: "success",
            message: capped(message.into()),
        }
    }

    /// The full body: every key present, unused ones null.
    pub fn payload(&self, namespace: &str, cluster: &str) -> Value {
        let mut body = json!({
            "event": null, "status": null, "namespace": namespace, "cluster": cluster,
            "scale_data": null, "upgrade_data": null, "compute_changed_data": null,
            "temporary_failure_data": null, "info_data": null, "health_data": null,
            "feedback_data": null, "backup_schedule_data": null,
            "admin_username_changed_data": null
        });
        match self {
            Self::Feedback { status, message } => {
                body["event"] = json!("feedback");
                body["status"] = json!(status);
                body["feedback_data"] =
                    json!({"message": message, "operation": "update", "action": ACTION});
            }
            Self::Delay { reason } => {
                body["event"] = json!("delay");
                body["status"] = json!("temporary_failure");
                body["temporary_failure_data"] = json!({ "reason": reason });
            }
            Self::AdminUsernameChanged { username } => {
                body["event"] = json!("admin_username_changed");
                body["status"] = json!("success");
                body["admin_username_changed_data"] = json!({ "admin_username": username });
            }
        }
        body
    }

    /// The form kept in `status.restore.notifications` until the flush step sends it.
    pub fn to_queued(&self) -> crate::status::QueuedNotification {
        let payload = self.payload("", "");
        crate::status::QueuedNotification {
            event: payload["event"].as_str().unwrap_or_default().to_string(),
            status: payload["status"].as_str().unwrap_or_default().to_string(),
            data: match self {
                Self::Feedback { message, .. } => json!({ "message": message }),
                Self::Delay { reason } => json!({ "reason": reason }),
                Self::AdminUsernameChanged { username } => json!({ "admin_username": username }),
            },
        }
    }

    pub fn from_queued(q: &crate::status::QueuedNotification) -> Option<Self> {
        let text = |k: &str| q.data.get(k).and_then(Value::as_str).map(str::to_string);
        match (q.event.as_str(), q.status.as_str()) {
            ("feedback", "success") => Some(Self::success(text("message")?)),
            ("feedback", "failure") => Some(Self::failure(text("message")?)),
            ("feedback", "in_progress") => Some(Self::in_progress(text("message")?)),
            ("delay", _) => Some(Self::Delay {
                reason: text("reason")?,
            }),
            ("admin_username_changed", _) => Some(Self::AdminUsernameChanged {
                username: text("admin_username")?,
            }),
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    NotConfigured,
    Delivered { attempts: u32 },
    Rejected { status: u16, attempts: u32 },
    Failed { attempts: u32, error: String },
}

pub struct Notifier {
    settings: Option<NotificationSettings>,
    http: reqwest::Client,
    namespace: String,
    cluster: String,
    retry: bool,
    base_delay: Duration,
}

impl Notifier {
    /// `retry: false` is the reference's TESTING mode (one attempt).
    pub fn new(
        settings: Option<NotificationSettings>,
        namespace: &str,
        cluster: &str,
        retry: bool,
    ) -> Self {
        Self {
            settings,
            http: reqwest::Client::builder()
                .user_agent(concat!("cratedb-restore/", env!("CARGO_PKG_VERSION")))
                .timeout(Duration::from_secs(30))
                .build()
                .expect("static HTTP client configuration"),
            namespace: namespace.into(),
            cluster: cluster.into(),
            retry,
            base_delay: Duration::from_millis(500),
        }
    }

    /// Shortens the backoff (tests).
    pub fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    pub async fn send(&self, notification: &Notification) -> Delivery {
        let Some(settings) = &self.settings else {
            tracing::debug!(
                "notifications not configured (WEBHOOK_URL, WEBHOOK_USERNAME, WEBHOOK_PASSWORD)"
            );
            return Delivery::NotConfigured;
        };
        let body = notification.payload(&self.namespace, &self.cluster);
        let max = if self.retry { MAX_ATTEMPTS } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .http
                .post(&settings.url)
                .basic_auth(&settings.username, Some(settings.password.expose_secret()))
                .json(&body)
                .send()
                .await;
            let retryable = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if response.status().is_success() {
                        tracing::info!(event = %body["event"], status = %body["status"], attempt, "notification delivered");
                        return Delivery::Delivered { attempts: attempt };
                    }
                    if ![502, 503, 504].contains(&status) {
                        tracing::warn!(http_status = status, event = %body["event"], "notification rejected; not retrying");
                        return Delivery::Rejected {
                            status,
                            attempts: attempt,
                        };
                    }
                    format!("HTTP {status}")
                }
                // The URL is left out: its user-info part could carry credentials.
                Err(error) => error.without_url().to_string(),
            };
            if attempt >= max {
                tracing::warn!(error = %retryable, attempts = attempt, "notification could not be delivered");
                return Delivery::Failed {
                    attempts: attempt,
                    error: retryable,
                };
            }
            // 0.5 s · 2^(n-1) · U(0.8, 1.2)
            let delay = self
                .base_delay
                .mul_f64(2f64.powi(attempt as i32 - 1) * rand::rng().random_range(0.8..1.2));
            tracing::debug!(error = %retryable, attempt, "notification failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_all_13_keys() {
        let body =
            Notification::failure("Snapshot s does not exist in repository r.").payload("ns", "c1");
        assert_eq!(
            body,
            json!({
                "event": "feedback", "status": "failure", "namespace": "ns", "cluster": "c1",
                "scale_data": null, "upgrade_data": null, "compute_changed_data": null,
                "temporary_failure_data": null, "info_data": null, "health_data": null,
                "feedback_data": {"message": "Snapshot s does not exist in repository r.",
                                  "operation": "update", "action": "restore_snapshot"},
                "backup_schedule_data": null, "admin_username_changed_data": null
            })
        );
        assert_eq!(body.as_object().unwrap().len(), 13);
        let delay = Notification::Delay {
            reason: "A snapshot is in progress".into(),
        }
        .payload("ns", "c1");
        assert_eq!(
            delay["temporary_failure_data"],
            json!({"reason": "A snapshot is in progress"})
        );
        assert_eq!(delay["status"], "temporary_failure");
        let admin = Notification::AdminUsernameChanged {
            username: "bob".into(),
        }
        .payload("ns", "c1");
        assert_eq!(
            admin["admin_username_changed_data"],
            json!({"admin_username": "bob"})
        );
    }

    #[test]
    fn queued_notifications_round_trip() {
        for n in [
            Notification::success("ok"),
            Notification::failure("no"),
            Notification::Delay { reason: "r".into() },
            Notification::AdminUsernameChanged {
                username: "u".into(),
            },
        ] {
            assert_eq!(Notification::from_queued(&n.to_queued()), Some(n));
        }
    }
}
