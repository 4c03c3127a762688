//! The product image: what the `Dockerfile` builds (distroless cc, both binaries, nonroot),
//! assembled from this machine's files instead. The constants here are the Dockerfile's
//! values; `tests/product.rs` reads the Dockerfile and fails when the two drift apart.

use std::path::{Path, PathBuf};

use super::{DEFAULT_PATH, base, created_by};
use crate::{Error, Image, ImageConfig, Layer, host};

pub const WEBHOOK: &str = "/usr/local/bin/cratedb-restore-webhook";
pub const JOB: &str = "/usr/local/bin/cratedb-restore-job";
/// `USER` of the Dockerfile: distroless' nonroot, numeric so `runAsNonRoot` can verify it.
pub const USER: &str = "65532:65532";
pub const ENTRYPOINT: &[&str] = &[WEBHOOK];
/// `EXPOSE`: HTTPS (admission) and HTTP (health, metrics).
pub const EXPOSED_PORTS: &[u16] = &[8443, 8080];
pub const LABELS: &[(&str, &str)] = &[
    ("org.opencontainers.image.title", "cratedb-restore"),
    (
        "org.opencontainers.image.description",
        "Admission webhook and restore Job for CrateDB snapshot restores on Kubernetes",
    ),
    ("org.opencontainers.image.licenses", "Apache-2.0"),
];
/// Inherited from distroless' nonroot variant (the Dockerfile sets neither).
pub const WORKING_DIR: &str = base::NONROOT_HOME;

pub fn reference() -> String {
    super::reference("cratedb-restore")
}

/// `webhook` and `job` are the built binaries (`target/release/...`); they land at
/// [`WEBHOOK`] and [`JOB`] whatever their names on this machine.
pub fn image(reference: String, webhook: &Path, job: &Path) -> Result<Image, Error> {
    let mut layer = Layer::new();
    host::add_file_as(&mut layer, webhook, WEBHOOK, Some(0o755))?;
    host::add_file_as(&mut layer, job, JOB, Some(0o755))?;
    host::add_libraries_of(&mut layer, &[PathBuf::from(webhook), PathBuf::from(job)])?;
    base::accounts(&mut layer)?;
    base::ca_bundle(&mut layer)?;
    Ok(Image {
        reference,
        config: ImageConfig {
            entrypoint: ENTRYPOINT.iter().map(|s| s.to_string()).collect(),
            env: vec![
                DEFAULT_PATH.into(),
                format!("SSL_CERT_FILE={}", base::CA_BUNDLE),
            ],
            user: Some(USER.into()),
            working_dir: Some(WORKING_DIR.into()),
            exposed_ports: EXPOSED_PORTS.to_vec(),
            labels: LABELS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ImageConfig::default()
        },
        layer,
        created_by: created_by("product"),
    })
}
