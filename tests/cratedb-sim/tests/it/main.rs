//! Integration tests of the simulator over its real protocols.

mod common;

mod binary;
mod crash;
mod pg;
mod restore;
mod sidecar;
