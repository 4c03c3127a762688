//! Writes OCI image-layout tarballs without a container engine, so that the end-to-end suite can
//! run the product and the CrateDB simulator as Pods on a containerd node
//! (`ctr -n k8s.io images import FILE.tar`, `imagePullPolicy: Never`).
//!
//! Everything is reproducible: the same inputs give byte-identical tarballs and so the same
//! digests. Entries are sorted, owned by root unless an image says otherwise, carry one fixed
//! mtime (0 or `SOURCE_DATE_EPOCH`), and the gzip header has neither timestamp nor file name.
//!
//! * [`layer`]: entries → layer tar → gzip, and the digests of both.
//! * [`layout`]: image config, manifest, `index.json` and `oci-layout` in the outer tar.
//! * [`host`]: taking files from this machine (symlinks kept, `ldd`, `dpkg -L`).
//! * [`images`]: the four images of the suite.

pub mod error;
pub mod host;
pub mod images;
pub mod layer;
pub mod layout;

pub use error::Error;
pub use layer::{Entry, Kind, Layer};
pub use layout::{Built, Image, ImageConfig};
