//! The pod sandbox image: one static binary, `/pause`, compiled here from `pause.c`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{DEFAULT_PATH, VERSION, cache_dir, created_by};
use crate::layer::sha256_digest;
use crate::{Error, Image, ImageConfig, Layer, host};

pub const SOURCE: &str = include_str!("pause.c");
pub const ENTRYPOINT: &str = "/pause";
/// As Kubernetes' pause image: not root, and numeric, so no /etc/passwd is needed.
pub const USER: &str = "65535:65535";

pub fn reference() -> String {
    super::reference("pause")
}

pub fn image(reference: String) -> Result<Image, Error> {
    let binary = binary()?;
    let mut layer = Layer::new();
    host::add_file_as(&mut layer, &binary, ENTRYPOINT, Some(0o755))?;
    Ok(Image {
        reference,
        config: ImageConfig {
            entrypoint: vec![ENTRYPOINT.into()],
            env: vec![DEFAULT_PATH.into()],
            user: Some(USER.into()),
            ..ImageConfig::default()
        },
        layer,
        created_by: created_by("pause"),
    })
}

/// The compiled pause binary, cached per version and source (compiling takes a second, but
/// `all` and the tests ask for it repeatedly).
pub fn binary() -> Result<PathBuf, Error> {
    let key = &sha256_digest(SOURCE.as_bytes())["sha256:".len()..][..12];
    let dir = cache_dir().join(format!("pause-{VERSION}-{key}"));
    let binary = dir.join("pause");
    if binary.is_file() {
        return Ok(binary);
    }
    fs::create_dir_all(&dir).map_err(Error::io_path("creating", &dir))?;
    // Unique per process and call: test threads compile concurrently.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let partial = dir.join(format!(".pause.{}.{call}", std::process::id()));
    compile(&partial)?;
    fs::rename(&partial, &binary).map_err(Error::io_path("renaming into", &binary))?;
    Ok(binary)
}

/// `gcc -static -Os -s`: glibc's static libc from libc6-dev; stripped, so that neither the
/// build path nor symbols make two builds differ.
pub fn compile(out: &Path) -> Result<(), Error> {
    let mut gcc = Command::new("gcc")
        .args(["-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-DVERSION=\"{VERSION}\""))
        .args(["-x", "c", "-", "-o"])
        .arg(out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io("running gcc (apt-get install gcc libc6-dev)"))?;
    let mut stdin = gcc.stdin.take().expect("stdin is piped");
    stdin
        .write_all(SOURCE.as_bytes())
        .map_err(Error::io("writing to gcc"))?;
    drop(stdin);
    let result = gcc.wait_with_output().map_err(Error::io("running gcc"))?;
    if !result.status.success() {
        return Err(Error::Host(format!(
            "gcc -static failed (needs gcc and libc6-dev): {}",
            String::from_utf8_lossy(&result.stderr)
        )));
    }
    Ok(())
}
