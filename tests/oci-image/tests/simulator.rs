//! The simulator image: the real crash on Debian's Python runs inside its rootfs, as the
//! image's user, with nothing from the host.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use oci_image::images::{base, simulator};
use oci_image::layout::build;
use oci_image::{Built, Image};

/// A dynamically linked stand-in for `cratedb-sim` (a release build, which `cargo test` does
/// not make); the image treats it like any binary.
const SIM_STAND_IN: &str = "/usr/bin/true";

fn image() -> Image {
    simulator::image(simulator::reference(), Path::new(SIM_STAND_IN), None).unwrap()
}

/// Built once per test binary: it takes seconds (50 MB through gzip and sha256).
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| build(&image(), 0).unwrap())
}

/// Extracted once per test binary into the target's scratch space: a static is never dropped,
/// so a temporary directory here would be left in /tmp by every run.
fn rootfs() -> &'static Path {
    static ROOT: OnceLock<std::path::PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("simulator-image-rootfs");
        if root.exists() {
            std::fs::remove_dir_all(&root).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        common::extract(&common::unpack(built()).layer, &root);
        root
    })
}

/// Runs as the image's user with the environment a runtime gives it (HOME from /etc/passwd,
/// Env from the config).
fn run(args: &[&str]) -> String {
    let config = &common::unpack(built()).config["config"];
    let env: Vec<(String, String)> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (k, v) = e.as_str().unwrap().split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .chain([("HOME".to_owned(), base::NONROOT_HOME.to_owned())])
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let user = config["User"].as_str().unwrap();
    common::stdout(&common::chroot_as(rootfs(), Some(user), &env, args))
}

#[test]
fn crash_runs_inside_the_rootfs() {
    let host_crash = simulator::install_crash().unwrap().join("bin/crash");
    let expected = common::stdout(
        &std::process::Command::new(host_crash)
            .arg("--version")
            .output()
            .unwrap(),
    );
    assert_eq!(run(&["crash", "--version"]), expected);
    // Twice: the second run uses the byte-code cache below /tmp.
    assert_eq!(run(&["crash", "--version"]), expected);
    assert!(
        rootfs()
            .join("tmp/pycache/usr/local/lib/python3.11/dist-packages/crate")
            .is_dir()
    );
}

#[test]
fn python_has_the_modules_crash_and_its_dependencies_load() {
    let script = "import ssl, json, orjson, urllib3, sqlite3, ctypes, decimal, lzma, bz2, zlib, \
                  hashlib, uuid, readline, socket, select\n\
                  ssl.create_default_context()\n\
                  print('ok', orjson.dumps({'a': 1}).decode())";
    assert_eq!(run(&["python3.11", "-c", script]), "ok {\"a\":1}\n");
}

#[test]
fn the_shell_is_busybox() {
    assert_eq!(
        run(&["/bin/sh", "-c", "echo $((6 * 7)); ls /usr/local/bin"]),
        "42\ncrash\ncratedb-sim\n"
    );
}

#[test]
fn config_and_layout() {
    let got = common::unpack(built());
    assert_eq!(
        got.reference,
        format!(
            "localhost/cratedb-restore-e2e/cratedb-sim:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    let config = &got.config["config"];
    assert_eq!(config["Entrypoint"], serde_json::json!([simulator::SIM]));
    assert_eq!(config["User"], "65532:65532");

    let entries = common::entries(&got.layer);
    let sim = &entries[simulator::SIM.trim_start_matches('/')];
    assert_eq!((sim.kind, sim.mode), (tar::EntryType::Regular, 0o755));
    assert_eq!(sim.size, std::fs::metadata(SIM_STAND_IN).unwrap().len());
    assert_eq!(entries["bin/sh"].link.as_deref(), Some("busybox"));
    assert_eq!(entries["usr/bin/python3.11"].mode, 0o755);

    let root = rootfs();
    let launcher = std::fs::read_to_string(root.join("usr/local/bin/crash")).unwrap();
    assert!(
        launcher.starts_with("#!/usr/bin/python3.11\n"),
        "{launcher}"
    );
    for left_out in [
        "usr/share/doc",
        "usr/share/man",
        "usr/lib/python3.11/test",
        "usr/lib/python3.11/unittest/test",
    ] {
        assert!(
            !root.join(left_out).exists(),
            "{left_out} should be left out"
        );
    }
    let uncompressed_mb = built().layer_tar_size / 1_000_000;
    assert!(
        uncompressed_mb < 80,
        "the layer grew to {uncompressed_mb} MB"
    );
}

#[test]
fn building_twice_gives_the_same_digest() {
    let again = build(&image(), 0).unwrap();
    assert_eq!(again.manifest_digest, built().manifest_digest);
    assert_eq!(again.archive, built().archive);
}
