//! Files that make a rootfs usable by glibc programs and by people debugging a pod, written
//! out rather than copied so that the host's accounts never leak into an image.

use std::path::Path;

use crate::{Entry, Error, Layer, host};

/// As in distroless (`gcr.io/distroless/cc-debian12`), which the product's Dockerfile uses.
pub const NONROOT_UID: u64 = 65532;
pub const NONROOT_HOME: &str = "/home/nonroot";

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
                      nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n";
/// Without it glibc asks DNS before /etc/hosts.
const NSSWITCH: &str = "passwd: files\ngroup: files\nhosts: files dns\n";

pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// `/etc/passwd`, `/etc/group` (root, nobody, nonroot), `/etc/nsswitch.conf`, `/tmp` (1777),
/// `/root` and the nonroot user's home (owned by it, as in distroless).
pub fn accounts(layer: &mut Layer) -> Result<(), Error> {
    layer.insert(Entry::file("etc/passwd", 0o644, PASSWD))?;
    layer.insert(Entry::file("etc/group", 0o644, GROUP))?;
    layer.insert(Entry::file("etc/nsswitch.conf", 0o644, NSSWITCH))?;
    layer.insert(Entry::dir("tmp", 0o1777))?;
    layer.insert(Entry::dir("root", 0o700))?;
    layer.insert(Entry::dir(NONROOT_HOME, 0o700).owner(NONROOT_UID, NONROOT_UID))
}

/// The CA bundle where distroless and Debian have it (`update-ca-certificates` output).
pub fn ca_bundle(layer: &mut Layer) -> Result<(), Error> {
    host::ensure_package("ca-certificates", Path::new(CA_BUNDLE))?;
    host::add_file_as(layer, Path::new(CA_BUNDLE), CA_BUNDLE, Some(0o644))
}
