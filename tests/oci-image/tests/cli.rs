//! The command line: what the e2e harness and the cluster scripts call.

use std::process::Command;

fn oci_image(args: &[&str], epoch: Option<&str>) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oci-image"));
    cmd.args(args).env_remove("SOURCE_DATE_EPOCH");
    if let Some(epoch) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", epoch);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn pause_prints_reference_digest_and_file_and_honours_source_date_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.tar");
    let out = out.to_str().unwrap();
    let (first, _) = oci_image(&["pause", "--out", out], None);
    let fields: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{first}");
    assert_eq!(
        fields[0],
        format!(
            "localhost/cratedb-restore-e2e/pause:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(
        fields[1].starts_with("sha256:") && fields[1].len() == 71,
        "{first}"
    );
    assert_eq!(fields[2], out);
    assert!(std::fs::metadata(out).unwrap().len() > 1000);

    let (again, _) = oci_image(&["pause", "--out", out], Some("0"));
    assert_eq!(again, first, "SOURCE_DATE_EPOCH=0 is the default");
    let (dated, _) = oci_image(
        &["pause", "--out", out, "--ref", "localhost/other/pause:x"],
        Some("1700000000"),
    );
    assert!(
        dated.starts_with("localhost/other/pause:x sha256:"),
        "{dated}"
    );
    assert_ne!(
        dated.split_whitespace().nth(1),
        first.split_whitespace().nth(1)
    );
    let mut archive = tar::Archive::new(std::fs::File::open(out).unwrap());
    for entry in archive.entries().unwrap() {
        assert_eq!(entry.unwrap().header().mtime().unwrap(), 1_700_000_000);
    }
}

#[test]
fn a_bad_source_date_epoch_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oci-image"))
        .args(["pause", "--out"])
        .arg(dir.path().join("p.tar"))
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH"));
    assert!(!dir.path().join("p.tar").exists());
}

#[test]
fn all_writes_the_four_images_under_stable_names() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = oci_image(
        &[
            "all",
            "--out-dir",
            dir.path().to_str().unwrap(),
            "--webhook",
            "/usr/bin/id",
            "--job",
            "/usr/bin/true",
            "--sim",
            "/usr/bin/true",
        ],
        None,
    );
    let version = env!("CARGO_PKG_VERSION");
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(' ').collect()).collect();
    let expected = [
        ("pause", "pause.tar"),
        ("busybox", "busybox.tar"),
        ("cratedb-restore", "product.tar"),
        ("cratedb-sim", "simulator.tar"),
    ];
    assert_eq!(lines.len(), expected.len(), "{stdout}");
    for (line, (name, file)) in lines.iter().zip(expected) {
        assert_eq!(
            line[0],
            format!("localhost/cratedb-restore-e2e/{name}:{version}")
        );
        assert!(line[1].starts_with("sha256:"));
        let path = dir.path().join(file);
        assert_eq!(line[2], path.to_str().unwrap());
        assert!(path.is_file());
    }
    // Nothing half-written left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
}

#[test]
fn a_missing_binary_is_an_error_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oci-image"))
        .args(["all", "--webhook", "/nonexistent/webhook", "--out-dir"])
        .arg(dir.path().join("images"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/webhook does not exist"));
    assert!(!dir.path().join("images").exists());
}
