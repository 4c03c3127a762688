//! A small image with a shell and the usual tools: Debian's static busybox with all of its
//! applet links, for smoke tests and helper pods.

use std::path::Path;
use std::process::Command;

use super::{DEFAULT_PATH, base, created_by};
use crate::{Entry, Error, Image, ImageConfig, Layer, host};

pub const BUSYBOX: &str = "/bin/busybox";
pub const PACKAGE: &str = "busybox-static";

pub fn reference() -> String {
    super::reference("busybox")
}

pub fn image(reference: String) -> Result<Image, Error> {
    let mut layer = Layer::new();
    add_busybox(&mut layer)?;
    for applet in applets()? {
        if applet != BUSYBOX {
            layer.insert(Entry::symlink(applet, BUSYBOX))?;
        }
    }
    base::accounts(&mut layer)?;
    Ok(Image {
        reference,
        config: ImageConfig {
            cmd: vec!["/bin/sh".into()],
            env: vec![DEFAULT_PATH.into()],
            ..ImageConfig::default()
        },
        layer,
        created_by: created_by("busybox"),
    })
}

/// `/bin/busybox` from Debian's busybox-static, installed if missing. Debian's other busybox
/// package puts a dynamically linked one at the same path, which would not run alone.
pub fn add_busybox(layer: &mut Layer) -> Result<(), Error> {
    host::ensure_package(PACKAGE, Path::new(BUSYBOX))?;
    if !host::shared_libraries(Path::new(BUSYBOX))?.is_empty() {
        return Err(Error::Host(format!(
            "{BUSYBOX} is dynamically linked (Debian's `busybox` package?): apt-get install {PACKAGE}"
        )));
    }
    host::add_file_as(layer, Path::new(BUSYBOX), BUSYBOX, Some(0o755))
}

/// Where each applet lives (`/bin/sh`, `/usr/bin/wget`, `/sbin/ifconfig`, ...), as busybox
/// itself says.
pub fn applets() -> Result<Vec<String>, Error> {
    let out = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .map_err(Error::io("running busybox --list-full"))?;
    if !out.status.success() {
        return Err(Error::Host("busybox --list-full failed".into()));
    }
    let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("/{}", l.trim().trim_start_matches('/')))
        .collect();
    if !applets.iter().any(|a| a == "/bin/sh") {
        return Err(Error::Host("busybox has no sh applet".into()));
    }
    Ok(applets)
}
