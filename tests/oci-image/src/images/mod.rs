//! The images of the end-to-end suite. Each module has `image(reference)`, which gathers the
//! files (from this machine) into an [`Image`](crate::Image), and `reference()`, its default
//! name.

pub mod base;
pub mod busybox;
pub mod pause;
pub mod product;
pub mod simulator;

use std::path::PathBuf;

/// Not a registry anyone can pull from: `localhost/` makes the kubelet's reference
/// normalisation leave the name alone, and a pull attempt fail fast instead of going to
/// Docker Hub.
pub const REPOSITORY_PREFIX: &str = "localhost/cratedb-restore-e2e";

/// Tag of every image: the project's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a Debian base image sets; binaries are found wherever they are installed.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn reference(name: &str) -> String {
    format!("{REPOSITORY_PREFIX}/{name}:{VERSION}")
}

/// `${CRATEDB_RESTORE_CACHE:-$HOME/.cache/cratedb-restore}`, shared with the project's other
/// tools (`tests/tools/install-crash.sh`, `tests/e2e/setup.sh`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CRATEDB_RESTORE_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/cratedb-restore")
}

fn created_by(what: &str) -> String {
    format!("oci-image {VERSION} {what} (cratedb-restore tests/oci-image)")
}
