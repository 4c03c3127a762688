use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two different entries for one path, a path that is not a plain relative path, or an
    /// entry below something that is not a directory.
    #[error("layer entry {path}: {reason}")]
    Layer { path: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A host tool (gcc, ldd, dpkg, install-crash.sh) failed or printed something unexpected.
    #[error("{0}")]
    Host(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    pub(crate) fn io_path(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        Error::io(format!("{what} {}", path.display()))
    }
}
