//! Noticing a cancel (SPEC A29): the resource's `restore.cloud.crate.io/cancel` annotation names
//! this run (or says `true`). The run watches its one CrateDB object for the whole run — one
//! long watch request, renewed only when the API server ends it — so a cancel is seen within
//! moments, whatever step the run is in, at the cost of one API request. Every status write's
//! answer (the whole object) is looked at too, so a watch that cannot be had only delays it.

use std::time::Duration;

use futures::StreamExt;
use kube::{Client, core::WatchEvent};
use tokio::sync::watch;

use crate::{
    resource::{CANCEL_ANNOTATION, CrateDB, GROUP, VERSION, cancel_names_run},
    run::RunIdentity,
};

/// A cancel of this run, as the resource shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    /// Who asked (recorded by the mutating webhook), when known.
    pub by: Option<String>,
}

/// The cancel `cr` asks of run `run_id`, if any: its annotation names the run, or the run's
/// status already records one (a replaced Pod continues a cancel).
pub fn requested(cr: &CrateDB, run_id: &str) -> Option<CancelRequest> {
    let status = cr.restore_status_of_run(run_id);
    let by = status.and_then(|s| s.cancelled_by.clone());
    let annotated = cr
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CANCEL_ANNOTATION))
        .is_some_and(|value| cancel_names_run(value, run_id))
        && cr.run_id_annotation() == Some(run_id);
    (annotated || by.is_some()).then_some(CancelRequest { by })
}

/// The run's view of cancels: set once, never cleared.
#[derive(Clone)]
pub struct CancelSignal {
    tx: std::sync::Arc<watch::Sender<Option<CancelRequest>>>,
    rx: watch::Receiver<Option<CancelRequest>>,
}

impl CancelSignal {
    /// A signal only [`Self::raise`] fires.
    pub fn new(initial: Option<CancelRequest>) -> Self {
        let (tx, rx) = watch::channel(initial);
        Self {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// A cancel seen another way (a status write's answer); the first one counts.
    pub fn raise(&self, request: CancelRequest) {
        self.tx.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(request);
                true
            } else {
                false
            }
        });
    }

    /// Looks at the resource as the API server last returned it.
    pub fn observe(&self, cr: &CrateDB, run_id: &str) {
        if let Some(request) = requested(cr, run_id) {
            self.raise(request);
        }
    }

    pub fn get(&self) -> Option<CancelRequest> {
        self.rx.borrow().clone()
    }

    /// Resolves once a cancel is seen; never when none can come any more.
    pub async fn cancelled(&mut self) -> CancelRequest {
        loop {
            if let Some(request) = self.rx.borrow_and_update().clone() {
                return request;
            }
            if self.rx.changed().await.is_err() {
                // The watch task ended (or there is none): no cancel will come any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// How long one watch request may stay open: longer than any restore, so a run normally makes
/// one. kube-rs's own watch parameters stop at 295 s for clients with a read timeout; this
/// client has none, and the API server honours the requested timeout.
const WATCH_SECONDS: u64 = 7 * 24 * 3600;

/// Starts watching the run's CrateDB object from `resource_version` (as read at start).
pub fn watch_for_cancel(
    client: Client,
    run: &RunIdentity,
    resource_version: Option<String>,
    initial: Option<CancelRequest>,
) -> CancelSignal {
    let signal = CancelSignal::new(initial.clone());
    if initial.is_some() {
        return signal;
    }
    let tx = signal.tx.clone();
    let run = run.clone();
    tokio::spawn(async move {
        let mut version = resource_version.unwrap_or_default();
        let mut failures = 0u32;
        loop {
            match watch_once(&client, &run, &mut version, &tx).await {
                WatchEnd::Cancelled | WatchEnd::Gone => return,
                WatchEnd::Closed => failures = 0,
                WatchEnd::Expired => {
                    // Too old a version to resume from: watch from now on (a cancel written
                    // in between is still on the object and arrives as its first event).
                    version.clear();
                }
                WatchEnd::Failed(error) => {
                    failures += 1;
                    if failures == 1 {
                        // Without the watch a cancel is only seen with the next status write.
                        tracing::warn!(%error, "cannot watch the CrateDB resource for a cancel (does the restore Job's Role allow watch on cratedbs?); trying again");
                    } else {
                        tracing::debug!(%error, failures, "the cancel watch failed; watching again");
                    }
                    tokio::time::sleep(Duration::from_secs(1u64 << failures.min(5))).await;
                }
            }
            if tx.borrow().is_some() {
                return;
            }
        }
    });
    signal
}

enum WatchEnd {
    Cancelled,
    /// The object was deleted: no run is left to cancel.
    Gone,
    /// The API server ended the request; watch again from the last version.
    Closed,
    /// 410: the last version is too old to resume from.
    Expired,
    Failed(String),
}

/// One watch request.
async fn watch_once(
    client: &Client,
    run: &RunIdentity,
    version: &mut String,
    tx: &watch::Sender<Option<CancelRequest>>,
) -> WatchEnd {
    let mut url = format!(
        "/apis/{GROUP}/{VERSION}/namespaces/{}/cratedbs?watch=true&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS}&fieldSelector=metadata.name%3D{}",
        run.namespace, run.cluster
    );
    if !version.is_empty() {
        url.push_str(&format!("&resourceVersion={version}"));
    }
    let request = match http::Request::get(url).body(Vec::new()) {
        Ok(request) => request,
        Err(error) => return WatchEnd::Failed(error.to_string()),
    };
    let stream = match client.request_events::<CrateDB>(request).await {
        Ok(stream) => stream,
        Err(kube::Error::Api(status)) if status.code == 410 => return WatchEnd::Expired,
        Err(error) => return WatchEnd::Failed(error.to_string()),
    };
    tracing::debug!("watching the CrateDB resource for a cancel");
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(WatchEvent::Added(cr) | WatchEvent::Modified(cr)) => {
                if let Some(v) = cr.metadata.resource_version.clone() {
                    *version = v;
                }
                if let Some(request) = requested(&cr, &run.run_id) {
                    tracing::warn!(by = ?request.by, "cancel requested");
                    tx.send_if_modified(|current| {
                        let first = current.is_none();
                        if first {
                            *current = Some(request);
                        }
                        first
                    });
                    return WatchEnd::Cancelled;
                }
            }
            Ok(WatchEvent::Bookmark(b)) => *version = b.metadata.resource_version,
            Ok(WatchEvent::Deleted(_)) => return WatchEnd::Gone,
            Ok(WatchEvent::Error(e)) if e.code == 410 => return WatchEnd::Expired,
            Ok(WatchEvent::Error(e)) => {
                return WatchEnd::Failed(format!("{} {}", e.code, e.message));
            }
            Err(error) => return WatchEnd::Failed(error.to_string()),
        }
    }
    WatchEnd::Closed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cr(cancel: Option<&str>, status: serde_json::Value) -> CrateDB {
        let mut annotations = json!({"restore.cloud.crate.io/run-id": "r1"});
        if let Some(c) = cancel {
            annotations[CANCEL_ANNOTATION] = json!(c);
        }
        serde_json::from_value(json!({"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
            "metadata": {"name": "c1", "namespace": "ns", "annotations": annotations},
            "spec": {"cluster": {}}, "status": {"restore": status}}))
        .unwrap()
    }

    #[test]
    fn a_cancel_names_this_run_or_the_active_one() {
        let status = json!({"runId": "r1", "phase": "Running"});
        assert_eq!(requested(&cr(None, status.clone()), "r1"), None);
        assert_eq!(
            requested(&cr(Some("true"), status.clone()), "r1"),
            Some(CancelRequest { by: None })
        );
        assert!(requested(&cr(Some("r1"), status.clone()), "r1").is_some());
        assert_eq!(requested(&cr(Some("r0"), status.clone()), "r1"), None);
        // A replaced Pod continues a cancel the status recorded.
        let recorded = json!({"runId": "r1", "phase": "Running", "cancelledBy": "alice"});
        assert_eq!(
            requested(&cr(None, recorded), "r1"),
            Some(CancelRequest {
                by: Some("alice".into())
            })
        );
    }
}
