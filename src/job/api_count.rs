//! Counts the Kubernetes API requests of this process, for the run's last log line: a run's API
//! budget (SPEC A28: 40 requests plus one per 30 s of restore) is visible in every Job's log,
//! and the benchmarks read it there.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A client whose every request is counted.
pub async fn counted_client() -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    let layer = tower::util::MapRequestLayer::new(|request: http::Request<kube::client::Body>| {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        request
    });
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build();
    INSTALLED.store(true, Ordering::Relaxed);
    Ok(client)
}

/// The requests counted so far, when this process counts them.
pub fn requests() -> Option<u64> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| REQUESTS.load(Ordering::Relaxed))
}
