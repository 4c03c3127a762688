//! Reading back what the tool wrote: the layout, checked blob by blob, and the layer unpacked
//! for running things inside it.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use oci_image::Built;
use oci_image::layer::sha256_digest;
use oci_image::layout::{ANNOTATION_REF_NAME, blob_path};
use serde_json::Value;

pub struct Unpacked {
    pub files: BTreeMap<String, Vec<u8>>,
    pub reference: String,
    pub manifest: Value,
    pub config: Value,
    /// The uncompressed layer tar.
    pub layer: Vec<u8>,
}

/// Reads the layout tar and checks that it is internally consistent: every blob named by its
/// sha256, the sizes in the descriptors, `diff_ids` = sha256 of the uncompressed layer.
pub fn unpack(built: &Built) -> Unpacked {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(built.archive.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            files.insert(path, bytes);
        }
    }
    let json = |p: &str| -> Value { serde_json::from_slice(&files[p]).unwrap() };
    assert_eq!(
        json("oci-layout"),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );
    for (path, bytes) in &files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            assert_eq!(sha256_digest(bytes), format!("sha256:{hex}"), "blob {path}");
        }
    }
    let index = json("index.json");
    let descriptor = &index["manifests"][0];
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let blob = |d: &Value| -> Vec<u8> {
        let bytes = files[&blob_path(d["digest"].as_str().unwrap())].clone();
        assert_eq!(
            d["size"].as_u64().unwrap(),
            bytes.len() as u64,
            "size of {d}"
        );
        bytes
    };
    assert_eq!(
        descriptor["digest"].as_str().unwrap(),
        built.manifest_digest
    );
    let manifest: Value = serde_json::from_slice(&blob(descriptor)).unwrap();
    let config: Value = serde_json::from_slice(&blob(&manifest["config"])).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let mut layer = Vec::new();
    flate2::read::GzDecoder::new(blob(&layers[0]).as_slice())
        .read_to_end(&mut layer)
        .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str().unwrap(),
        sha256_digest(&layer)
    );
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str().unwrap(),
        built.diff_id
    );
    let reference = descriptor["annotations"][ANNOTATION_REF_NAME]
        .as_str()
        .unwrap()
        .to_owned();
    Unpacked {
        files,
        reference,
        manifest,
        config,
        layer,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: Option<String>,
    pub size: u64,
}

/// The layer's entries, keyed by path without a trailing `/`.
pub fn entries(layer: &[u8]) -> BTreeMap<String, LayerEntry> {
    let mut archive = tar::Archive::new(layer);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let path = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned();
            let entry = LayerEntry {
                path: path.clone(),
                kind: h.entry_type(),
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                link: e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned()),
                size: h.size().unwrap(),
            };
            (path, entry)
        })
        .collect()
}

/// Unpacks the layer as a container runtime would (modes, owners, symlinks as they are).
pub fn extract(layer: &[u8], dir: &Path) {
    let mut archive = tar::Archive::new(layer);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.unpack(dir).unwrap();
}

/// Runs a command inside an unpacked rootfs (`chroot`, so the host's files are out of reach:
/// a missing library or file shows up as a failure). Needs root, as CI has.
pub fn chroot(root: &Path, args: &[&str]) -> Output {
    chroot_as(root, None, &[], args)
}

/// As [`chroot`], as `user` (`uid:gid`) and with `env` besides PATH: the environment a
/// container runtime would give.
pub fn chroot_as(root: &Path, user: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Output {
    assert!(
        is_root(),
        "running inside the image's rootfs needs root (chroot)"
    );
    let mut cmd = Command::new("/usr/sbin/chroot");
    if let Some(user) = user {
        cmd.arg(format!("--userspec={user}"));
    }
    cmd.arg(root)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
