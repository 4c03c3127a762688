//! One image layer: entries → a reproducible tar → gzip, with the digests of both.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use crate::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    /// The link target exactly as it should read inside the image (relative or absolute).
    Symlink(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Inside the image: relative, `/`-separated, without `.` or `..` (a leading `/` is dropped).
    pub path: String,
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl Entry {
    pub fn dir(path: impl Into<String>, mode: u32) -> Entry {
        Entry::new(path, Kind::Dir, mode)
    }

    pub fn file(path: impl Into<String>, mode: u32, content: impl Into<Vec<u8>>) -> Entry {
        Entry::new(path, Kind::File(content.into()), mode)
    }

    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry::new(path, Kind::Symlink(target.into()), 0o777)
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    fn new(path: impl Into<String>, kind: Kind, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
        }
    }
}

/// The entries of one layer, keyed by path, so that the tar comes out sorted whatever the
/// order of insertion.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    entries: BTreeMap<String, Entry>,
}

impl Layer {
    pub fn new() -> Layer {
        Layer::default()
    }

    /// Adds an entry. Adding an identical entry again is fine (two libraries can share a
    /// dependency); a different entry for the same path is an error, because one of the two
    /// callers would silently lose.
    pub fn insert(&mut self, mut entry: Entry) -> Result<(), Error> {
        entry.path = normalize(&entry.path)?;
        match self.entries.get(&entry.path) {
            None => {
                self.entries.insert(entry.path.clone(), entry);
                Ok(())
            }
            Some(existing) if *existing == entry => Ok(()),
            Some(existing) => Err(Error::Layer {
                path: entry.path.clone(),
                reason: format!(
                    "added twice, differently ({} and {})",
                    describe(existing),
                    describe(&entry)
                ),
            }),
        }
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path.trim_start_matches('/'))
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The uncompressed layer: every entry plus the parent directories nobody added
    /// (0755, root), in path order, all with `mtime`.
    pub fn to_tar(&self, mtime: u64) -> Result<Vec<u8>, Error> {
        let all = self.with_parents()?;
        let mut tar = tar::Builder::new(Vec::new());
        for entry in all.values() {
            append(&mut tar, entry, mtime)
                .map_err(Error::io(format!("tar entry {}", entry.path)))?;
        }
        tar.into_inner().map_err(Error::io("finishing tar"))
    }

    fn with_parents(&self) -> Result<BTreeMap<String, Entry>, Error> {
        let mut all = self.entries.clone();
        for path in self.entries.keys() {
            let mut parent = path.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                parent = up;
                match all.get(parent) {
                    Some(Entry {
                        kind: Kind::Dir, ..
                    }) => {}
                    Some(other) => {
                        // A runtime would resolve the symlink (or fail on the file) and put this
                        // entry somewhere else than the caller meant.
                        return Err(Error::Layer {
                            path: path.clone(),
                            reason: format!("parent {parent} is a {}", describe(other)),
                        });
                    }
                    None => {
                        all.insert(parent.to_owned(), Entry::dir(parent, 0o755));
                    }
                }
            }
        }
        Ok(all)
    }
}

fn append(tar: &mut tar::Builder<Vec<u8>>, entry: &Entry, mtime: u64) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_mtime(mtime);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mode(entry.mode);
    match &entry.kind {
        Kind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, format!("{}/", entry.path), std::io::empty())
        }
        Kind::File(content) => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(content.len() as u64);
            tar.append_data(&mut header, &entry.path, content.as_slice())
        }
        Kind::Symlink(target) => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            tar.append_link(&mut header, &entry.path, target)
        }
    }
}

fn normalize(path: &str) -> Result<String, Error> {
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    let bad = trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(Error::Layer {
            path: path.to_owned(),
            reason: "not a plain path (empty, `.`, `..` or `//`)".into(),
        });
    }
    Ok(trimmed.to_owned())
}

fn describe(entry: &Entry) -> String {
    let kind = match &entry.kind {
        Kind::Dir => "directory".to_owned(),
        Kind::File(content) => format!("file of {} bytes", content.len()),
        Kind::Symlink(target) => format!("symlink to {target}"),
    };
    format!(
        "{kind}, mode {:o}, owner {}:{}",
        entry.mode, entry.uid, entry.gid
    )
}

/// `sha256:<hex>`, the form of every digest in OCI descriptors and `diff_ids`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Gzip without timestamp or file name in the header, so that equal input gives equal output.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut encoder =
        GzBuilder::new().write(Vec::with_capacity(bytes.len() / 2), Compression::default());
    encoder.write_all(bytes).map_err(Error::io("gzip"))?;
    encoder.finish().map_err(Error::io("gzip"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    struct Listed {
        path: String,
        kind: tar::EntryType,
        mode: u32,
        owner: (u64, u64),
        mtime: u64,
        link: Option<String>,
    }

    fn listing(tar_bytes: &[u8]) -> Vec<Listed> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                Listed {
                    path: e.path().unwrap().to_string_lossy().into_owned(),
                    kind: h.entry_type(),
                    mode: h.mode().unwrap(),
                    owner: (h.uid().unwrap(), h.gid().unwrap()),
                    mtime: h.mtime().unwrap(),
                    link: e
                        .link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                }
            })
            .collect()
    }

    #[test]
    fn entries_come_out_sorted_with_parents_and_fixed_metadata() {
        let mut layer = Layer::new();
        layer
            .insert(Entry::file("/usr/bin/zz", 0o755, "z"))
            .unwrap();
        layer.insert(Entry::symlink("lib", "usr/lib")).unwrap();
        layer.insert(Entry::dir("tmp", 0o1777)).unwrap();
        layer
            .insert(Entry::file("usr/lib/a.so.1.2", 0o644, "a"))
            .unwrap();
        layer
            .insert(Entry::symlink("usr/lib/a.so.1", "a.so.1.2"))
            .unwrap();
        layer
            .insert(Entry::dir("home/nonroot", 0o700).owner(65532, 65532))
            .unwrap();

        let tar_bytes = layer.to_tar(1_700_000_000).unwrap();
        let got = listing(&tar_bytes);
        let paths: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "home/",
                "home/nonroot/",
                "lib",
                "tmp/",
                "usr/",
                "usr/bin/",
                "usr/bin/zz",
                "usr/lib/",
                "usr/lib/a.so.1",
                "usr/lib/a.so.1.2",
            ]
        );
        let by_path = |p: &str| got.iter().find(|e| e.path == p).unwrap().clone();
        assert_eq!(by_path("tmp/").mode, 0o1777);
        assert_eq!(by_path("usr/").mode, 0o755, "implicit parents are 0755");
        assert_eq!(by_path("usr/bin/zz").mode, 0o755);
        assert_eq!(by_path("home/nonroot/").owner, (65532, 65532));
        assert_eq!(by_path("usr/bin/zz").owner, (0, 0));
        assert_eq!(by_path("lib").kind, tar::EntryType::Symlink);
        assert_eq!(by_path("lib").link.as_deref(), Some("usr/lib"));
        assert_eq!(by_path("usr/lib/a.so.1").link.as_deref(), Some("a.so.1.2"));
        assert!(got.iter().all(|e| e.mtime == 1_700_000_000));
    }

    #[test]
    fn long_paths_and_link_targets_survive() {
        let deep = format!("usr/lib/{}/file.py", "d".repeat(120));
        let target = format!("/opt/{}", "t".repeat(150));
        let mut layer = Layer::new();
        layer.insert(Entry::file(&deep, 0o644, "x")).unwrap();
        layer
            .insert(Entry::symlink("usr/lib/link", &target))
            .unwrap();
        let got = listing(&layer.to_tar(0).unwrap());
        assert!(got.iter().any(|e| e.path == deep));
        assert!(
            got.iter()
                .any(|e| e.link.as_deref() == Some(target.as_str()))
        );
    }

    #[test]
    fn same_entry_twice_is_fine_a_different_one_is_not() {
        let mut layer = Layer::new();
        layer.insert(Entry::file("etc/passwd", 0o644, "a")).unwrap();
        layer
            .insert(Entry::file("/etc/passwd", 0o644, "a"))
            .unwrap();
        let err = layer
            .insert(Entry::file("etc/passwd", 0o600, "a"))
            .unwrap_err();
        assert!(err.to_string().contains("added twice"), "{err}");
    }

    #[test]
    fn entries_below_a_symlink_or_file_are_refused() {
        let mut layer = Layer::new();
        layer.insert(Entry::symlink("lib", "usr/lib")).unwrap();
        layer
            .insert(Entry::file("lib/libc.so.6", 0o755, "c"))
            .unwrap();
        let err = layer.to_tar(0).unwrap_err();
        assert!(err.to_string().contains("parent lib is a symlink"), "{err}");
    }

    #[test]
    fn odd_paths_are_refused() {
        for bad in ["", "/", "a/../b", "a//b", "./a"] {
            assert!(
                Layer::new().insert(Entry::dir(bad, 0o755)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn gzip_is_deterministic_and_has_no_timestamp_or_name() {
        let data = b"hello hello hello".repeat(1000);
        let a = gzip(&data).unwrap();
        assert_eq!(a, gzip(&data).unwrap());
        // RFC 1952: MTIME is bytes 4..8, FLG (bit 3 = FNAME) is byte 3.
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        assert_eq!(a[3] & 0x08, 0);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(a.as_slice()), &mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn digest_format() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
