//! Integration tests of the simulator over its real protocols.

mod common;

mod binary;
mod cancel;
mod crash;
mod crash_real;
mod http_sql;
mod job_sql;
mod pg;
mod repository_s3;
mod restore;
mod restore_options;
mod sidecar;
mod snapshots;
