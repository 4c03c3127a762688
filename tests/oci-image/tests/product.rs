//! The product image against the project's Dockerfile (the one source of truth for what the
//! image users build looks like), and against a run inside its rootfs.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_image::images::product;
use oci_image::layout::build;

/// The final stage of the project's Dockerfile: what the shipped image is.
#[derive(Debug, Default)]
struct FinalStage {
    entrypoint: Vec<String>,
    user: String,
    exposed: Vec<u16>,
    labels: BTreeMap<String, String>,
    /// Destination paths of the files COPY'd in.
    copied: Vec<String>,
}

fn dockerfile() -> FinalStage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Dockerfile");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut instructions: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|i| i.to_uppercase().starts_with("FROM "))
        .expect("a FROM");
    let mut stage = FinalStage::default();
    for instruction in &instructions[last_from + 1..] {
        let (keyword, args) = instruction.split_once(char::is_whitespace).unwrap();
        let args = args.trim();
        match keyword.to_uppercase().as_str() {
            "ENTRYPOINT" => {
                stage.entrypoint = serde_json::from_str(args).expect("ENTRYPOINT in exec form")
            }
            "USER" => stage.user = args.to_owned(),
            "EXPOSE" => {
                stage.exposed = args
                    .split_whitespace()
                    .map(|p| p.parse().unwrap())
                    .collect()
            }
            "LABEL" => stage.labels.extend(labels(args)),
            "COPY" => {
                let words: Vec<&str> = args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let (dest, sources) = words.split_last().unwrap();
                for source in sources {
                    stage.copied.push(if dest.ends_with('/') {
                        format!("{dest}{}", source.rsplit('/').next().unwrap())
                    } else {
                        dest.to_string()
                    });
                }
            }
            _ => {}
        }
    }
    stage
}

/// `key="value with spaces" key2=value2`
fn labels(args: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = args.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').expect("LABEL key=value");
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').expect("closing quote");
                (quoted[..end].to_owned(), &quoted[end + 1..])
            }
            None => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (after[..end].to_owned(), &after[end..])
            }
        };
        pairs.push((key.trim().to_owned(), value));
        rest = after.trim();
    }
    pairs
}

#[test]
fn the_constants_are_the_dockerfiles() {
    let stage = dockerfile();
    assert_eq!(stage.entrypoint, product::ENTRYPOINT);
    assert_eq!(stage.user, product::USER);
    assert_eq!(stage.exposed, product::EXPOSED_PORTS);
    let labels: BTreeMap<String, String> = product::LABELS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(stage.labels, labels);
    assert_eq!(stage.copied, [product::WEBHOOK, product::JOB]);
}

/// Dynamically linked stand-ins for the two binaries (the real ones are release builds, which
/// `cargo test` does not make): `id` needs more libraries than libc, and prints the user.
fn stand_ins() -> (PathBuf, PathBuf) {
    (PathBuf::from("/usr/bin/id"), PathBuf::from("/usr/bin/true"))
}

#[test]
fn the_image_is_what_the_dockerfile_describes() {
    let (webhook, job) = stand_ins();
    let built = build(
        &product::image(product::reference(), &webhook, &job).unwrap(),
        0,
    )
    .unwrap();
    let got = common::unpack(&built);
    let stage = dockerfile();
    assert_eq!(
        got.reference,
        format!(
            "localhost/cratedb-restore-e2e/cratedb-restore:{}",
            env!("CARGO_PKG_VERSION")
        )
    );

    let config = &got.config["config"];
    assert_eq!(config["Entrypoint"], serde_json::json!(stage.entrypoint));
    assert_eq!(config["User"], stage.user.as_str());
    let ports: Vec<String> = stage.exposed.iter().map(|p| format!("{p}/tcp")).collect();
    assert_eq!(
        config["ExposedPorts"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        {
            let mut p: Vec<&String> = ports.iter().collect();
            p.sort();
            p
        }
    );
    assert_eq!(config["Labels"], serde_json::json!(stage.labels));
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("PATH="))
    );

    let entries = common::entries(&got.layer);
    for (copied, source) in stage.copied.iter().zip([&webhook, &job]) {
        let e = &entries[copied.trim_start_matches('/')];
        assert_eq!(e.kind, tar::EntryType::Regular, "{copied}");
        assert_eq!(e.mode, 0o755, "{copied}");
        assert_eq!(e.size, std::fs::metadata(source).unwrap().len(), "{copied}");
    }
    assert_eq!(entries["tmp"].mode, 0o1777);
    assert_eq!(
        entries["etc/ssl/certs/ca-certificates.crt"].kind,
        tar::EntryType::Regular
    );
    assert_eq!(
        (entries["home/nonroot"].uid, entries["home/nonroot"].mode),
        (65532, 0o700)
    );
    // The loader at the path written into every binary, reached through symlinks as on Debian.
    assert_eq!(entries["lib64"].kind, tar::EntryType::Symlink);
    assert_eq!(entries["lib"].link.as_deref(), Some("usr/lib"));
}

#[test]
fn the_binaries_run_as_nonroot_with_only_the_image_files() {
    let (webhook, job) = stand_ins();
    let built = build(
        &product::image(product::reference(), &webhook, &job).unwrap(),
        0,
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    common::extract(&common::unpack(&built).layer, root.path());
    let out = common::chroot_as(
        root.path(),
        Some(product::USER),
        &[],
        &[product::WEBHOOK, "-un"],
    );
    assert_eq!(common::stdout(&out), "nonroot\n");
    assert!(
        common::chroot(root.path(), &[product::JOB])
            .status
            .success()
    );
}

#[test]
fn building_twice_gives_the_same_digest() {
    let (webhook, job) = stand_ins();
    let a = build(
        &product::image(product::reference(), &webhook, &job).unwrap(),
        0,
    )
    .unwrap();
    let b = build(
        &product::image(product::reference(), &webhook, &job).unwrap(),
        0,
    )
    .unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.archive, b.archive);
}
