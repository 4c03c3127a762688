//! The notification client (SPEC B§7) against a local HTTP server: exact bodies and headers,
//! retries on 502/503/504 only, a bounded number of attempts, nothing when unconfigured.

mod common;

use std::time::Duration;

use common::notify_sink::NotifySink;
use cratedb_restore::job::{
    config::NotificationSettings,
    notify::{Delivery, Notification, Notifier},
};
use serde_json::json;

fn notifier(sink: &NotifySink, retry: bool) -> Notifier {
    Notifier::new(
        Some(NotificationSettings {
            url: sink.url(),
            username: "operator".into(),
            password: "pa:ss".to_string().into(),
        }),
        "ns",
        "cluster-1",
        retry,
    )
    .with_base_delay(Duration::from_millis(1))
}

#[tokio::test]
async fn sends_the_full_payload_with_basic_auth() {
    let sink = NotifySink::start().await;
    let delivery = notifier(&sink, true)
        .send(&Notification::in_progress(
            "Preparing to restore data from snapshot.",
        ))
        .await;
    assert_eq!(delivery, Delivery::Delivered { attempts: 1 });
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].body,
        json!({
            "event": "feedback", "status": "in_progress", "namespace": "ns", "cluster": "cluster-1",
            "scale_data": null, "upgrade_data": null, "compute_changed_data": null,
            "temporary_failure_data": null, "info_data": null, "health_data": null,
            "feedback_data": {"message": "Preparing to restore data from snapshot.", "operation": "update", "action": "restore_snapshot"},
            "backup_schedule_data": null, "admin_username_changed_data": null
        })
    );
    // base64("operator:pa:ss")
    assert_eq!(
        received[0].authorization.as_deref(),
        Some("Basic b3BlcmF0b3I6cGE6c3M=")
    );
    assert_eq!(
        received[0].content_type.as_deref(),
        Some("application/json")
    );
    assert!(
        received[0]
            .user_agent
            .as_deref()
            .unwrap()
            .starts_with("cratedb-restore/")
    );
}

#[tokio::test]
async fn retries_gateway_errors_until_success() {
    let sink = NotifySink::start().await;
    sink.script(&[502, 503]);
    let delivery = notifier(&sink, true)
        .send(&Notification::failure("x"))
        .await;
    assert_eq!(delivery, Delivery::Delivered { attempts: 3 });
    assert_eq!(sink.received().len(), 3);
}

#[tokio::test]
async fn gives_up_after_five_attempts() {
    let sink = NotifySink::start().await;
    sink.script(&[504; 10]);
    let delivery = notifier(&sink, true)
        .send(&Notification::failure("x"))
        .await;
    assert!(
        matches!(delivery, Delivery::Failed { attempts: 5, .. }),
        "{delivery:?}"
    );
    assert_eq!(sink.received().len(), 5);
}

#[tokio::test]
async fn other_statuses_are_not_retried() {
    let sink = NotifySink::start().await;
    sink.script(&[418]);
    let delivery = notifier(&sink, true)
        .send(&Notification::failure("x"))
        .await;
    assert_eq!(
        delivery,
        Delivery::Rejected {
            status: 418,
            attempts: 1
        }
    );
    sink.script(&[400]);
    assert_eq!(
        notifier(&sink, true)
            .send(&Notification::failure("x"))
            .await,
        Delivery::Rejected {
            status: 400,
            attempts: 1
        }
    );
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test]
async fn testing_mode_sends_once_and_unconfigured_sends_nothing() {
    let sink = NotifySink::start().await;
    sink.script(&[502]);
    let delivery = notifier(&sink, false)
        .send(&Notification::failure("x"))
        .await;
    assert!(matches!(delivery, Delivery::Failed { attempts: 1, .. }));
    let unconfigured = Notifier::new(None, "ns", "c", true);
    assert_eq!(
        unconfigured.send(&Notification::failure("x")).await,
        Delivery::NotConfigured
    );
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn connection_errors_are_retried_and_bounded() {
    // Nothing listens on this port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    drop(listener);
    let notifier = Notifier::new(
        Some(NotificationSettings {
            url,
            username: "u".into(),
            password: "p".to_string().into(),
        }),
        "ns",
        "c",
        true,
    )
    .with_base_delay(Duration::from_millis(1));
    let delivery = notifier.send(&Notification::failure("x")).await;
    assert!(
        matches!(delivery, Delivery::Failed { attempts: 5, .. }),
        "{delivery:?}"
    );
}
