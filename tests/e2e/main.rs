//! End-to-end tests: the Helm chart, and the real webhook binary behind a REAL kube-apiserver
//! (v1.20.2 + etcd, started by tests/e2e/scripts/kube-up.sh), driven with the real kubectl
//! (`cluster`, the fast mode); and the chart, the images and restore Jobs as Pods on a REAL
//! single-node Kubernetes 1.20 (`node`, tests/e2e/scripts/node-up.sh; needs root).
//!
//! Needs helm 3 and the cached kube-apiserver: run `tests/e2e/setup.sh` once (it prints
//! HELM=... and KUBE_APISERVER=...). Without them the suite FAILS with a message saying so.
//!
//!   cargo test --test e2e                        # everything (~1 minute once cached)
//!   cargo test --test e2e chart_                 # only the chart tests (no cluster)
//!   CRATEDB_E2E_ONLY=concurrent cargo test --test e2e cluster -- --nocapture
//!   CRATEDB_E2E_KEEP=1 ...                       # keep the state dir (logs, kubeconfig)
//!   cargo test --test e2e node -- --nocapture    # the single-node suite (root)
//!   CRATEDB_E2E_NODE_ONLY=rolling cargo test --test e2e node -- --nocapture
//!
//! Environment: HELM, KUBECTL, KUBE_APISERVER, ETCD (see tests/e2e/setup.sh),
//! CRATEDB_RESTORE_CACHE.

mod chart;
mod harness;
mod node;
mod plugin;
mod scenarios;

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Mutex,
    time::Instant,
};

use scenarios::Env;

/// Every scenario against one API server, in order. A failing scenario prints the logs of the
/// API server and the webhook plus the last kubectl commands, and the others still run.
/// `cluster` and `node` each load the two cores for minutes and run timeouts of a few seconds
/// (webhook calls): they take turns.
static HEAVY: Mutex<()> = Mutex::new(());

#[test]
fn cluster() {
    let _turn = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let env = Env::start();
    eprintln!("cluster up in {:.1}s", started.elapsed().as_secs_f64());
    let only = std::env::var("CRATEDB_E2E_ONLY").ok();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, scenario) in scenarios::ALL {
        if only.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        ran += 1;
        let t = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| scenario(&env))) {
            Ok(()) => eprintln!("scenario {name} ... ok ({:.1}s)", t.elapsed().as_secs_f64()),
            Err(_) => {
                eprintln!(
                    "scenario {name} ... FAILED ({:.1}s)\n{}",
                    t.elapsed().as_secs_f64(),
                    env.diagnostics()
                );
                failed.push(*name);
            }
        }
    }
    eprintln!(
        "cluster scenarios: {} ok, {} failed ({:.1}s in total)",
        ran - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(ran > 0, "CRATEDB_E2E_ONLY={only:?} matches no scenario");
    if !failed.is_empty() {
        env.keep_state();
        panic!("failed scenarios: {failed:?}");
    }
}

/// The chart, the images, the webhook Pods and restore Jobs as Pods on a real single-node
/// Kubernetes (tests/e2e/node/). Needs root; `CRATEDB_E2E_NODE=skip` skips it explicitly.
#[test]
fn node() {
    let _turn = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    node::run();
}
