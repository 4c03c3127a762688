//! cratedb-restore: restore-from-snapshot for CrateDB clusters on Kubernetes.
//!
//! The library holds everything the two binaries share: the resource types, the pure core
//! (validation, SQL rendering, planning) and the thin shells that talk to Kubernetes and CrateDB.

pub mod admission;
pub mod cratedb;
pub mod job;
pub mod repository;
pub mod resource;
pub mod restore_job;
pub mod restore_request;
pub mod restore_type;
pub mod run;
pub mod sql;
pub mod status;
pub mod telemetry;
pub mod version;
pub mod webhook;
