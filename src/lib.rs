//! cratedb-restore: restore-from-snapshot for CrateDB clusters on Kubernetes.
//!
//! The library holds everything the two binaries share: the resource types, the pure core
//! (validation, SQL rendering, planning) and the thin shells that talk to Kubernetes and CrateDB.

pub mod admission;
pub mod backup_location;
pub mod bounded;
pub mod cratedb;
pub mod duration;
pub mod job;
pub mod merge_patch;
pub mod plan;
pub mod plugin;
pub mod progress;
pub mod rename;
pub mod repository;
pub mod resource;
pub mod restore_job;
pub mod restore_options;
pub mod restore_request;
pub mod restore_type;
pub mod run;
pub mod run_record;
pub mod snapshot_catalog;
pub mod sql;
pub mod status;
pub mod telemetry;
pub mod version;
pub mod webhook;

/// Selects ring as the process-wide TLS crypto provider (kube's client, our server, reqwest).
/// Needed once per process whenever more than one provider is compiled in; later calls are
/// no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
