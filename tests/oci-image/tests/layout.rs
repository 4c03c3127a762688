//! The layout around a layer: what `ctr images import` reads, and that it is reproducible.

mod common;

use oci_image::layout::build;
use oci_image::{Entry, Image, ImageConfig, Layer};

fn sample(reference: &str) -> Image {
    let mut layer = Layer::new();
    layer
        .insert(Entry::file("usr/local/bin/app", 0o755, "#!/bin/false\n"))
        .unwrap();
    layer.insert(Entry::symlink("bin", "usr/bin")).unwrap();
    layer.insert(Entry::dir("tmp", 0o1777)).unwrap();
    Image {
        reference: reference.into(),
        config: ImageConfig {
            entrypoint: vec!["/usr/local/bin/app".into()],
            cmd: vec!["--flag".into()],
            env: vec!["PATH=/usr/bin".into()],
            user: Some("65532:65532".into()),
            working_dir: Some("/tmp".into()),
            exposed_ports: vec![8443, 8080],
            labels: [(
                "org.opencontainers.image.title".to_owned(),
                "app".to_owned(),
            )]
            .into(),
        },
        layer,
        created_by: "test".into(),
    }
}

#[test]
fn the_layout_is_consistent_and_names_the_image() {
    let built = build(&sample("localhost/x/app:1.2.3"), 0).unwrap();
    let got = common::unpack(&built);
    assert_eq!(got.reference, "localhost/x/app:1.2.3");
    let index: serde_json::Value = serde_json::from_slice(&got.files["index.json"]).unwrap();
    assert_eq!(index["manifests"][0]["platform"]["os"], "linux");
    assert_eq!(got.manifest["schemaVersion"], 2);
    assert_eq!(
        got.manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        got.manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );

    let c = &got.config;
    assert_eq!(c["os"], "linux");
    assert_eq!(
        c["architecture"],
        index["manifests"][0]["platform"]["architecture"]
    );
    assert_eq!(c["rootfs"]["type"], "layers");
    let rc = &c["config"];
    assert_eq!(rc["Entrypoint"], serde_json::json!(["/usr/local/bin/app"]));
    assert_eq!(rc["Cmd"], serde_json::json!(["--flag"]));
    assert_eq!(rc["Env"], serde_json::json!(["PATH=/usr/bin"]));
    assert_eq!(rc["User"], "65532:65532");
    assert_eq!(rc["WorkingDir"], "/tmp");
    assert_eq!(
        rc["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "8443/tcp": {}})
    );
    assert_eq!(rc["Labels"]["org.opencontainers.image.title"], "app");

    let entries = common::entries(&got.layer);
    assert_eq!(entries["tmp"].mode, 0o1777);
    assert_eq!(entries["bin"].link.as_deref(), Some("usr/bin"));
    assert_eq!(entries["usr/local/bin/app"].mode, 0o755);
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let a = build(&sample("localhost/x/app:1"), 0).unwrap();
    let b = build(&sample("localhost/x/app:1"), 0).unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.archive, b.archive);
}

#[test]
fn the_mtime_is_the_only_clock() {
    let at_zero = build(&sample("localhost/x/app:1"), 0).unwrap();
    let later = build(&sample("localhost/x/app:1"), 1_700_000_000).unwrap();
    assert_ne!(at_zero.diff_id, later.diff_id);
    let entries = common::entries(&common::unpack(&later).layer);
    let mut archive = tar::Archive::new(later.archive.as_slice());
    for e in archive.entries().unwrap() {
        assert_eq!(e.unwrap().header().mtime().unwrap(), 1_700_000_000);
    }
    assert!(entries.contains_key("usr/local/bin/app"));
}

#[test]
fn the_reference_changes_the_index_but_not_the_image() {
    let a = build(&sample("localhost/x/app:1"), 0).unwrap();
    let b = build(&sample("localhost/x/app:2"), 0).unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_ne!(a.index_json, b.index_json);
}
