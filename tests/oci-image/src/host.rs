//! Taking files from this machine into a layer.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::{Entry, Error, Layer};

/// Adds the host file or directory `path` at the same path in the image, the way the dynamic
/// loader finds it: every symlink met on the way (`/lib` → `usr/lib` on merged-/usr Debian,
/// `libssl.so.3` → ..., `/lib64/ld-linux-x86-64.so.2` → ...) becomes a symlink entry, and the
/// file itself lands at its real path. A directory is added alone, not its content. A symlink
/// whose target does not exist is kept as it is.
pub fn add_path(layer: &mut Layer, path: &Path) -> Result<(), Error> {
    if !path.is_absolute() {
        return Err(Error::Host(format!(
            "{}: not an absolute path",
            path.display()
        )));
    }
    let mut pending = path.to_path_buf();
    let mut links_followed = 0;
    'walk: loop {
        let parts: Vec<Component> = pending.components().collect();
        let mut real = PathBuf::from("/");
        for (i, part) in parts.iter().enumerate() {
            match part {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
                // `real` has no symlinks left, so going up lexically is what the kernel does.
                Component::ParentDir => {
                    real.pop();
                    continue;
                }
                Component::Normal(name) => {
                    let next = real.join(name);
                    let meta = match fs::symlink_metadata(&next) {
                        Err(e)
                            if e.kind() == std::io::ErrorKind::NotFound && links_followed > 0 =>
                        {
                            return Ok(());
                        }
                        other => other.map_err(Error::io_path("reading", &next))?,
                    };
                    if meta.file_type().is_symlink() {
                        let target =
                            fs::read_link(&next).map_err(Error::io_path("reading link", &next))?;
                        layer.insert(Entry::symlink(image_path(&next)?, utf8(&target)?))?;
                        links_followed += 1;
                        if links_followed > 40 {
                            return Err(Error::Host(format!(
                                "{}: too many symlinks",
                                path.display()
                            )));
                        }
                        let rest: PathBuf = parts[i + 1..].iter().collect();
                        pending = real.join(target).join(rest);
                        continue 'walk;
                    }
                    real = next;
                }
            }
        }
        return add_real(layer, &real);
    }
}

/// Adds a path free of symlinks: a directory alone, or a file with its content and mode.
fn add_real(layer: &mut Layer, real: &Path) -> Result<(), Error> {
    if real == Path::new("/") {
        return Ok(());
    }
    let meta = fs::symlink_metadata(real).map_err(Error::io_path("reading", real))?;
    let mode = meta.permissions().mode();
    if meta.is_dir() {
        layer.insert(Entry::dir(image_path(real)?, mode))
    } else if meta.is_file() {
        let content = fs::read(real).map_err(Error::io_path("reading", real))?;
        layer.insert(Entry::file(image_path(real)?, mode, content))
    } else {
        Err(Error::Host(format!(
            "{}: neither file, directory nor symlink",
            real.display()
        )))
    }
}

/// Adds the host file `source` (followed if it is a symlink) at `dest` in the image, keeping
/// its mode unless `mode` says otherwise.
pub fn add_file_as(
    layer: &mut Layer,
    source: &Path,
    dest: &str,
    mode: Option<u32>,
) -> Result<(), Error> {
    let meta = fs::metadata(source).map_err(Error::io_path("reading", source))?;
    if !meta.is_file() {
        return Err(Error::Host(format!(
            "{}: not a regular file",
            source.display()
        )));
    }
    let content = fs::read(source).map_err(Error::io_path("reading", source))?;
    layer.insert(Entry::file(
        dest,
        mode.unwrap_or(meta.permissions().mode()),
        content,
    ))
}

/// Adds the directory tree `source` below `dest` in the image: directories, files and
/// symlinks (not followed) with their modes, owned by root. `skip` is called with each path
/// relative to `source`; a `true` leaves that entry (and what is below it) out.
pub fn add_tree(
    layer: &mut Layer,
    source: &Path,
    dest: &str,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<(), Error> {
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = source.join(&rel);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(Error::io_path("listing", &dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(Error::io_path("listing", &dir))?;
        names.sort();
        for name in names {
            let rel = rel.join(&name);
            if skip(&rel) {
                continue;
            }
            let host = source.join(&rel);
            let image = format!("{}/{}", dest.trim_end_matches('/'), utf8(&rel)?);
            let meta = fs::symlink_metadata(&host).map_err(Error::io_path("reading", &host))?;
            let mode = meta.permissions().mode();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&host).map_err(Error::io_path("reading link", &host))?;
                layer.insert(Entry::symlink(image, utf8(&target)?))?;
            } else if meta.is_dir() {
                layer.insert(Entry::dir(image, mode))?;
                stack.push(rel);
            } else if meta.is_file() {
                let content = fs::read(&host).map_err(Error::io_path("reading", &host))?;
                layer.insert(Entry::file(image, mode, content))?;
            } else {
                return Err(Error::Host(format!(
                    "{}: neither file, directory nor symlink",
                    host.display()
                )));
            }
        }
    }
    Ok(())
}

/// The shared libraries `binary` loads, including the ELF loader, as `ldd` resolves them on
/// this machine. Empty for a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, Error> {
    let out = Command::new("ldd")
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .map_err(Error::io("running ldd"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.contains("not a dynamic executable") || stderr.contains("not a dynamic executable") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        return Err(Error::Host(format!(
            "ldd {}: {}{}",
            binary.display(),
            stdout,
            stderr
        )));
    }
    parse_ldd(&stdout).map_err(|e| Error::Host(format!("ldd {}: {e}", binary.display())))
}

/// Paths from `ldd` output. Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6
/// (0x...)`, `/lib64/ld-linux-x86-64.so.2 (0x...)` (the loader) or `linux-vdso.so.1 (0x...)`
/// (in the kernel, nothing to copy).
pub fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("statically linked") {
            continue;
        }
        let resolved = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(format!("{} not found", name.trim()));
                }
                rest
            }
            None => line,
        };
        let path = resolved.split(" (").next().unwrap_or("").trim();
        if path.starts_with('/') {
            paths.push(PathBuf::from(path));
        } else if !resolved.contains("(0x") {
            return Err(format!("unexpected line {line:?}"));
        }
    }
    Ok(paths)
}

/// Adds each binary's shared libraries (and theirs: `ldd` lists the whole closure) at their
/// real paths, with the symlinks leading there.
pub fn add_libraries_of(layer: &mut Layer, binaries: &[PathBuf]) -> Result<(), Error> {
    let mut libraries = BTreeSet::new();
    for binary in binaries {
        libraries.extend(shared_libraries(binary)?);
    }
    for library in &libraries {
        add_path(layer, library)?;
    }
    Ok(())
}

/// The paths `dpkg -L` lists for an installed package.
pub fn dpkg_files(package: &str) -> Result<Vec<PathBuf>, Error> {
    let out = Command::new("dpkg")
        .args(["-L", package])
        .env("LC_ALL", "C")
        .output()
        .map_err(Error::io("running dpkg"))?;
    if !out.status.success() {
        return Err(Error::Host(format!(
            "dpkg -L {package}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // Other lines are notes such as "diverted by ..." or "package diverts others to: ...".
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('/') && *l != "/.")
        .map(PathBuf::from)
        .collect())
}

/// Makes sure a Debian package is installed (as root, with apt-get), so that the tool works on
/// a fresh CI machine.
pub fn ensure_package(package: &str, probe: &Path) -> Result<(), Error> {
    if probe.exists() {
        return Ok(());
    }
    eprintln!(
        "[oci-image] {} missing: installing Debian package {package}",
        probe.display()
    );
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let ok = install().map(|s| s.success()).unwrap_or(false)
        || (Command::new("apt-get")
            .args(["update", "-q"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
            && install().map(|s| s.success()).unwrap_or(false));
    if ok && probe.exists() {
        Ok(())
    } else {
        Err(Error::Host(format!(
            "{} is missing and installing {package} failed (needs root): apt-get install {package}",
            probe.display()
        )))
    }
}

fn image_path(host: &Path) -> Result<String, Error> {
    Ok(utf8(host)?.trim_start_matches('/').to_owned())
}

fn utf8(path: &Path) -> Result<&str, Error> {
    path.to_str()
        .ok_or_else(|| Error::Host(format!("{}: not UTF-8", path.display())))
}

/// Whether a path has a component named like one of `names`.
pub fn has_component(path: &Path, names: &[&str]) -> bool {
    path.components()
        .any(|c| names.iter().any(|n| c.as_os_str() == OsStr::new(n)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::Kind;

    #[test]
    fn ldd_output_is_parsed() {
        let out = "\tlinux-vdso.so.1 (0x00007ffc4a1f2000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0c1c000000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c1be00000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f0c1c200000)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(
            parse_ldd("\tlibfoo.so.1 => not found\n")
                .unwrap_err()
                .contains("libfoo.so.1")
        );
        assert!(parse_ldd("\tstatically linked\n").unwrap().is_empty());
    }

    /// A miniature merged-/usr tree: `lib` → `usr/lib`, a SONAME link, and an absolute link
    /// through another symlinked directory (as `/lib64/ld-linux-x86-64.so.2` is on Debian).
    #[test]
    fn symlinks_on_the_way_are_kept_and_the_file_lands_at_its_real_path() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("usr/lib/arch")).unwrap();
        fs::create_dir_all(r.join("usr/lib64")).unwrap();
        fs::write(r.join("usr/lib/arch/libz.so.1.2.13"), "z").unwrap();
        fs::set_permissions(
            r.join("usr/lib/arch/libz.so.1.2.13"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        symlink("libz.so.1.2.13", r.join("usr/lib/arch/libz.so.1")).unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("usr/lib64", r.join("lib64")).unwrap();
        fs::write(r.join("usr/lib/arch/ld.so.2"), "ld").unwrap();
        symlink(r.join("lib/arch/ld.so.2"), r.join("usr/lib64/ld.so.2")).unwrap();

        let mut layer = Layer::new();
        add_path(&mut layer, &r.join("lib/arch/libz.so.1")).unwrap();
        add_path(&mut layer, &r.join("lib64/ld.so.2")).unwrap();

        let p = |rel: &str| format!("{}/{rel}", r.to_str().unwrap().trim_start_matches('/'));
        let kind = |rel: &str| layer.get(&p(rel)).map(|e| e.kind.clone());
        assert_eq!(kind("lib"), Some(Kind::Symlink("usr/lib".into())));
        assert_eq!(
            kind("usr/lib/arch/libz.so.1"),
            Some(Kind::Symlink("libz.so.1.2.13".into()))
        );
        assert_eq!(
            kind("usr/lib/arch/libz.so.1.2.13"),
            Some(Kind::File(b"z".to_vec()))
        );
        assert_eq!(
            layer.get(&p("usr/lib/arch/libz.so.1.2.13")).unwrap().mode,
            0o644
        );
        assert_eq!(kind("lib64"), Some(Kind::Symlink("usr/lib64".into())));
        assert!(matches!(kind("usr/lib64/ld.so.2"), Some(Kind::Symlink(_))));
        assert_eq!(
            kind("usr/lib/arch/ld.so.2"),
            Some(Kind::File(b"ld".to_vec()))
        );
        // Nothing was put below a symlink.
        layer.to_tar(0).unwrap();
    }

    #[test]
    fn a_dangling_symlink_is_kept() {
        let root = tempfile::tempdir().unwrap();
        let link = root.path().join("gone");
        symlink("nowhere", &link).unwrap();
        let mut layer = Layer::new();
        add_path(&mut layer, &link).unwrap();
        assert_eq!(
            layer.get(link.to_str().unwrap()).unwrap().kind,
            Kind::Symlink("nowhere".into())
        );
    }

    #[test]
    fn a_tree_keeps_modes_and_links_and_honours_skip() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("pkg/tests")).unwrap();
        fs::write(r.join("pkg/mod.py"), "x = 1").unwrap();
        fs::write(r.join("pkg/tests/t.py"), "").unwrap();
        fs::write(r.join("tool"), "#!").unwrap();
        fs::set_permissions(r.join("tool"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("pkg/mod.py", r.join("alias.py")).unwrap();

        let mut layer = Layer::new();
        add_tree(&mut layer, r, "/opt/site", &|p| {
            has_component(p, &["tests"])
        })
        .unwrap();
        let paths: Vec<&str> = layer.entries().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/site/alias.py",
                "opt/site/pkg",
                "opt/site/pkg/mod.py",
                "opt/site/tool"
            ]
        );
        assert_eq!(layer.get("opt/site/tool").unwrap().mode, 0o755);
        assert_eq!(
            layer.get("opt/site/alias.py").unwrap().kind,
            Kind::Symlink("pkg/mod.py".into())
        );
    }
}
