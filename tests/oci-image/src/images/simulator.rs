//! The CrateDB simulator's image: `cratedb-sim`, and the real `crash` shell on Debian's Python
//! 3.11 (the restore Job runs `crash` inside CrateDB pods, so the simulator's pod needs it too),
//! plus busybox as `/bin/sh` for `kubectl exec` debugging.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{DEFAULT_PATH, base, busybox, created_by};
use crate::{Entry, Error, Image, ImageConfig, Layer, host};

pub const SIM: &str = "/usr/local/bin/cratedb-sim";
pub const PYTHON: &str = "/usr/bin/python3.11";
/// The interpreter, its minimal library and the standard library; nothing of `python3` (the
/// default-version wrapper) is needed.
pub const PYTHON_PACKAGES: &[&str] = &[
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
];
/// On Debian's `sys.path` (the place of locally pip-installed packages).
pub const CRASH_SITE: &str = "/usr/local/lib/python3.11/dist-packages";
pub const CRASH: &str = "/usr/local/bin/crash";
/// Below /tmp, writable by any user the pod runs as.
pub const PYCACHE: &str = "/tmp/pycache";
/// The project's one way of getting crash (pinned version, cached).
pub const INSTALL_CRASH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/install-crash.sh");

pub fn reference() -> String {
    super::reference("cratedb-sim")
}

/// `sim` is the built simulator; `crash_dir` the output of `tests/tools/install-crash.sh`
/// (run when `None`).
pub fn image(reference: String, sim: &Path, crash_dir: Option<&Path>) -> Result<Image, Error> {
    let crash_dir = match crash_dir {
        Some(dir) => dir.to_path_buf(),
        None => install_crash()?,
    };
    let mut layer = Layer::new();
    let mut elf = vec![PathBuf::from(sim)];

    host::add_file_as(&mut layer, sim, SIM, Some(0o755))?;
    for package in PYTHON_PACKAGES {
        for path in host::dpkg_files(package)? {
            if !wanted(&path) {
                continue;
            }
            if !path.exists() && fs::symlink_metadata(&path).is_err() {
                // Removed by hand after installation; the interpreter did not need it then.
                eprintln!(
                    "[oci-image] {package}: {} listed but missing, skipped",
                    path.display()
                );
                continue;
            }
            if is_shared_object(&path) {
                elf.push(path.clone());
            }
            host::add_path(&mut layer, &path)?;
        }
    }
    elf.push(PathBuf::from(PYTHON));
    add_crash(&mut layer, &crash_dir, &mut elf)?;
    host::add_libraries_of(&mut layer, &elf)?;

    busybox::add_busybox(&mut layer)?;
    layer.insert(Entry::symlink("bin/sh", "busybox"))?;
    base::accounts(&mut layer)?;
    base::ca_bundle(&mut layer)?;
    Ok(Image {
        reference,
        config: ImageConfig {
            entrypoint: vec![SIM.into()],
            env: vec![
                DEFAULT_PATH.into(),
                "LANG=C.UTF-8".into(),
                // The image ships no .pyc files (they would not be reproducible) and nonroot
                // cannot write next to the sources; without a writable cache every crash call
                // would compile its ~200 modules again (0.6 s of CPU instead of 0.15 s).
                format!("PYTHONPYCACHEPREFIX={PYCACHE}"),
            ],
            user: Some(format!("{0}:{0}", base::NONROOT_UID)),
            working_dir: Some(base::NONROOT_HOME.into()),
            ..ImageConfig::default()
        },
        layer,
        created_by: created_by("simulator"),
    })
}

/// crash's packages at [`CRASH_SITE`], and its pip entry script as [`CRASH`], run directly by
/// the interpreter named in its first line (no shell in the way).
fn add_crash(layer: &mut Layer, crash_dir: &Path, elf: &mut Vec<PathBuf>) -> Result<(), Error> {
    let site = crash_dir.join("site");
    // `bin/` holds pip's entry scripts, with the host's paths in them.
    host::add_tree(layer, &site, CRASH_SITE, &|rel| {
        rel == Path::new("bin") || host::has_component(rel, &["__pycache__"])
    })?;
    elf.extend(shared_objects_below(&site)?);

    let entry_script = site.join("bin/crash");
    let script =
        fs::read_to_string(&entry_script).map_err(Error::io_path("reading", &entry_script))?;
    let body = script.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
    layer.insert(Entry::file(CRASH, 0o755, format!("#!{PYTHON}\n{body}")))
}

/// Runs `tests/tools/install-crash.sh`, which prints its cache directory on the last line.
pub fn install_crash() -> Result<PathBuf, Error> {
    let out = Command::new("bash")
        .arg(INSTALL_CRASH)
        .output()
        .map_err(Error::io(format!("running {INSTALL_CRASH}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout.lines().last().unwrap_or("").trim();
    if !out.status.success() || dir.is_empty() {
        return Err(Error::Host(format!(
            "{INSTALL_CRASH} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(PathBuf::from(dir))
}

/// Docs, manuals and the standard library's own test suites are not needed to run anything.
fn wanted(path: &Path) -> bool {
    const SKIPPED: &[&str] = &[
        "/usr/share/doc",
        "/usr/share/man",
        "/usr/share/lintian",
        "/usr/share/binfmts",
        "/usr/lib/binfmt.d",
    ];
    if SKIPPED.iter().any(|s| path.starts_with(s)) {
        return false;
    }
    !(path.starts_with("/usr/lib/python3.11")
        && host::has_component(path, &["test", "tests", "idle_test"]))
}

fn is_shared_object(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".so") || name.contains(".so."))
        && fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

fn shared_objects_below(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(Error::io_path("listing", &dir))? {
            let path = entry.map_err(Error::io_path("listing", &dir))?.path();
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                stack.push(path);
            } else if is_shared_object(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
