//! Kubernetes Events on the CrateDB resource, so `kubectl describe cratedb` tells the story of a
//! restore (SPEC A5). Events are best effort: a failure to record one is logged, never fatal.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

pub struct EventSink {
    recorder: Recorder,
    reference: ObjectReference,
}

impl EventSink {
    pub fn new(client: Client, reference: ObjectReference) -> Self {
        let reporter = Reporter {
            controller: "cratedb-restore-job".into(),
            instance: std::env::var("HOSTNAME").ok(),
        };
        Self {
            recorder: Recorder::new(client, reporter),
            reference,
        }
    }

    pub async fn normal(&self, reason: &str, action: &str, note: impl Into<String>) {
        self.publish(EventType::Normal, reason, action, note.into())
            .await;
    }

    pub async fn warning(&self, reason: &str, action: &str, note: impl Into<String>) {
        self.publish(EventType::Warning, reason, action, note.into())
            .await;
    }

    async fn publish(&self, type_: EventType, reason: &str, action: &str, note: String) {
        // The API limits a note to 1 kB.
        let note = crate::bounded::text(&note, crate::bounded::EVENT_BYTES);
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &self.reference).await {
            tracing::warn!(%error, reason, "could not record a Kubernetes event");
        }
    }
}
