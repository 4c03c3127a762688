//! The busybox image: static busybox and its applet links, a shell that runs on its own.

mod common;

use oci_image::images::busybox;
use oci_image::layout::build;

#[test]
fn the_image_has_busybox_and_the_usual_applets_as_links() {
    let built = build(&busybox::image(busybox::reference()).unwrap(), 0).unwrap();
    let got = common::unpack(&built);
    assert_eq!(
        got.reference,
        format!(
            "localhost/cratedb-restore-e2e/busybox:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(got.config["config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    let entries = common::entries(&got.layer);
    assert_eq!(entries["bin/busybox"].kind, tar::EntryType::Regular);
    assert_eq!(entries["bin/busybox"].mode, 0o755);
    for applet in [
        "bin/sh",
        "bin/cat",
        "bin/echo",
        "bin/sleep",
        "bin/ls",
        "usr/bin/wget",
        "usr/bin/nslookup",
        "usr/bin/env",
    ] {
        let e = entries
            .get(applet)
            .unwrap_or_else(|| panic!("{applet} missing"));
        assert_eq!(e.kind, tar::EntryType::Symlink, "{applet}");
        assert_eq!(e.link.as_deref(), Some("/bin/busybox"), "{applet}");
    }
    assert_eq!(entries["tmp"].mode, 0o1777);
    assert!(entries.contains_key("etc/passwd"));
}

#[test]
fn the_shell_runs_inside_the_rootfs() {
    let built = build(&busybox::image(busybox::reference()).unwrap(), 0).unwrap();
    let root = tempfile::tempdir().unwrap();
    common::extract(&common::unpack(&built).layer, root.path());
    let out = common::chroot(
        root.path(),
        &[
            "/bin/sh",
            "-c",
            "echo hello | cat; sleep 0; wget --help 2>&1 | head -1; id -un",
        ],
    );
    let stdout = common::stdout(&out);
    assert!(stdout.starts_with("hello\n"), "{stdout}");
    assert!(stdout.contains("BusyBox"), "{stdout}");
    assert!(stdout.ends_with("root\n"), "{stdout}");
}

#[test]
fn building_twice_gives_the_same_digest() {
    let a = build(&busybox::image(busybox::reference()).unwrap(), 0).unwrap();
    let b = build(&busybox::image(busybox::reference()).unwrap(), 0).unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.archive, b.archive);
}
