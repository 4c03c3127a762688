//! The OCI image layout around one layer: config, manifest, `index.json`, `oci-layout`, all in
//! one tar that `ctr images import` reads.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::layer::{gzip, sha256_digest};
use crate::{Entry, Error, Layer};

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// containerd's importer names the image after this annotation of the index's manifest entry.
/// `ctr images import` (1.6) keeps a name with `/`, `:` or `@` verbatim and turns a bare tag
/// `T` into `import-YYYY-MM-DD:T`; hence always a full, normalised reference.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The parts of the runtime configuration these images use.
#[derive(Clone, Debug, Default)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// `uid:gid` (numeric, so that `runAsNonRoot` can check it without a passwd lookup).
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// TCP ports, documentation only (as `EXPOSE`).
    pub exposed_ports: Vec<u16>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct Image {
    /// e.g. `localhost/cratedb-restore-e2e/pause:0.1.0`; stored [normalised](normalize_reference).
    pub reference: String,
    pub config: ImageConfig,
    pub layer: Layer,
    /// What built it, for the config's history (`docker history`, `crictl inspecti`).
    pub created_by: String,
}

/// One written image: the layout tar and what identifies it.
#[derive(Clone, Debug)]
pub struct Built {
    pub reference: String,
    /// What `ctr images ls` and the kubelet show as the image's digest.
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digest: String,
    /// sha256 of the uncompressed layer (`rootfs.diff_ids`).
    pub diff_id: String,
    pub layer_tar_size: u64,
    pub layer_gzip_size: u64,
    pub config_json: Vec<u8>,
    pub manifest_json: Vec<u8>,
    pub index_json: Vec<u8>,
    /// The OCI image layout as a tar: the file to import.
    pub archive: Vec<u8>,
}

/// Builds the image with every timestamp set to `mtime` (seconds since the epoch).
pub fn build(image: &Image, mtime: u64) -> Result<Built, Error> {
    let layer_tar = image.layer.to_tar(mtime)?;
    let diff_id = sha256_digest(&layer_tar);
    let layer_gz = gzip(&layer_tar)?;
    let layer_digest = sha256_digest(&layer_gz);

    let platform = Platform::host();
    let config_json = to_json(&ConfigJson {
        architecture: platform.architecture,
        os: platform.os,
        config: RuntimeConfig::from(&image.config),
        rootfs: RootFs {
            kind: "layers",
            diff_ids: vec![diff_id.clone()],
        },
        history: vec![History {
            created_by: &image.created_by,
        }],
    })?;
    let config_digest = sha256_digest(&config_json);

    let manifest_json = to_json(&Manifest {
        schema_version: 2,
        media_type: MEDIA_TYPE_MANIFEST,
        config: Descriptor::of(MEDIA_TYPE_CONFIG, &config_digest, config_json.len()),
        layers: vec![Descriptor::of(
            MEDIA_TYPE_LAYER,
            &layer_digest,
            layer_gz.len(),
        )],
    })?;
    let manifest_digest = sha256_digest(&manifest_json);

    let mut manifest_descriptor =
        Descriptor::of(MEDIA_TYPE_MANIFEST, &manifest_digest, manifest_json.len());
    manifest_descriptor.platform = Some(platform);
    manifest_descriptor
        .annotations
        .insert(ANNOTATION_REF_NAME, normalize_reference(&image.reference));
    let index_json = to_json(&Index {
        schema_version: 2,
        media_type: MEDIA_TYPE_INDEX,
        manifests: vec![manifest_descriptor],
    })?;

    let mut outer = Layer::new();
    outer.insert(Entry::file(
        "oci-layout",
        0o644,
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    ))?;
    outer.insert(Entry::file("index.json", 0o644, index_json.clone()))?;
    for (digest, bytes) in [
        (&layer_digest, &layer_gz),
        (&config_digest, &config_json),
        (&manifest_digest, &manifest_json),
    ] {
        outer.insert(Entry::file(blob_path(digest), 0o644, bytes.clone()))?;
    }
    let archive = outer.to_tar(mtime)?;

    Ok(Built {
        reference: normalize_reference(&image.reference),
        manifest_digest,
        config_digest,
        layer_digest,
        diff_id,
        layer_tar_size: layer_tar.len() as u64,
        layer_gzip_size: layer_gz.len() as u64,
        config_json,
        manifest_json,
        index_json,
        archive,
    })
}

/// The reference as the kubelet asks containerd for it: `ctr images import` stores the
/// annotation's name verbatim, while the kubelet normalises the Pod's `image` the Docker way
/// (`busybox` → `docker.io/library/busybox:latest`), so an image stored under a short name is
/// never found. Normalising here makes both spellings of a name find the image.
pub fn normalize_reference(reference: &str) -> String {
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let is_domain = first.contains('.') || first.contains(':') || first == "localhost";
    let mut full = match (is_domain, first.is_empty()) {
        (true, _) => name.to_owned(),
        (false, true) => format!("docker.io/library/{rest}"),
        (false, false) => format!("docker.io/{name}"),
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && digest.is_none() {
        full.push_str(":latest");
    }
    match digest {
        Some(digest) => format!("{full}@{digest}"),
        None => full,
    }
}

/// Where a blob lives inside the layout (`blobs/sha256/<hex>`).
pub fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Host(format!("serializing JSON: {e}")))
}

#[derive(Serialize, Clone, Debug)]
struct Platform {
    architecture: &'static str,
    os: &'static str,
}

impl Platform {
    /// The images hold this machine's binaries, so they are for this machine's platform.
    fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            architecture,
            os: "linux",
        }
    }
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    architecture: &'static str,
    os: &'static str,
    config: RuntimeConfig<'a>,
    rootfs: RootFs,
    history: Vec<History<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RuntimeConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exposed_ports: BTreeMap<String, Empty>,
    env: &'a [String],
    entrypoint: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    cmd: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

impl<'a> From<&'a ImageConfig> for RuntimeConfig<'a> {
    fn from(c: &'a ImageConfig) -> Self {
        RuntimeConfig {
            user: c.user.as_deref(),
            exposed_ports: c
                .exposed_ports
                .iter()
                .map(|p| (format!("{p}/tcp"), Empty {}))
                .collect(),
            env: &c.env,
            entrypoint: &c.entrypoint,
            cmd: &c.cmd,
            working_dir: c.working_dir.as_deref(),
            labels: &c.labels,
        }
    }
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct History<'a> {
    created_by: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

impl Descriptor {
    fn of(media_type: &'static str, digest: &str, size: usize) -> Descriptor {
        Descriptor {
            media_type,
            digest: digest.to_owned(),
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_reference;

    #[test]
    fn references_are_normalised_like_the_kubelet_does() {
        for (given, stored) in [
            (
                "localhost/cratedb-restore-e2e/pause:0.1.0",
                "localhost/cratedb-restore-e2e/pause:0.1.0",
            ),
            ("localhost/x", "localhost/x:latest"),
            ("busybox", "docker.io/library/busybox:latest"),
            (
                "cratedb-restore:0.1.0",
                "docker.io/library/cratedb-restore:0.1.0",
            ),
            ("crate/crate:5.10", "docker.io/crate/crate:5.10"),
            ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
            ("localhost:5000/a/b", "localhost:5000/a/b:latest"),
            ("a/b@sha256:00", "docker.io/a/b@sha256:00"),
        ] {
            assert_eq!(normalize_reference(given), stored, "{given}");
        }
    }
}
