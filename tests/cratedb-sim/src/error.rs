//! Errors: the SQL errors the simulated CrateDB returns, and start-up errors.

use std::fmt;

/// An SQL error as CrateDB reports it.
///
/// * Over PostgreSQL wire CrateDB sends only [`SqlError::message`] with the
///   SQLSTATE in [`SqlError::sqlstate`] (see `PGError.fromThrowable` in CrateDB).
/// * Over HTTP (and so in `crash` and the crate-control sidecar) the message is
///   `ExceptionName[message]`, see [`SqlError::crate_message`], with the
///   CrateDB HTTP error code in [`SqlError::http_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Simple class name of the Java exception, e.g. `RelationAlreadyExists`.
    pub exception: String,
    /// The exception message, e.g. `Relation 'doc.t1' already exists.`.
    pub message: String,
    /// PostgreSQL SQLSTATE, e.g. `42P07`.
    pub sqlstate: String,
    /// CrateDB HTTP error code, e.g. `4093`.
    pub http_code: i32,
    /// `true` when the simulator refused the statement because it is outside
    /// the modelled grammar or feature set (it is then also listed by
    /// `SimulatorHandle::rejected_statements`).
    pub rejected: bool,
}

impl SqlError {
    /// A new error.
    pub fn new(
        exception: impl Into<String>,
        message: impl Into<String>,
        sqlstate: impl Into<String>,
        http_code: i32,
    ) -> Self {
        SqlError {
            exception: exception.into(),
            message: message.into(),
            sqlstate: sqlstate.into(),
            http_code,
            rejected: false,
        }
    }

    /// `ExceptionName[message]`, the form CrateDB's HTTP endpoint and `crash` show.
    pub fn crate_message(&self) -> String {
        format!("{}[{}]", self.exception, self.message)
    }

    /// CrateDB's parser error (SQLSTATE 42601); marks the statement as rejected.
    pub(crate) fn syntax(message: impl Into<String>) -> Self {
        let mut e = SqlError::new("SQLParseException", message, "42601", 4000);
        e.rejected = true;
        e
    }

    /// A statement CrateDB would understand but the simulator does not model.
    pub(crate) fn not_modelled(what: impl fmt::Display) -> Self {
        let mut e = SqlError::new(
            "UnsupportedFeatureException",
            format!("cratedb-sim does not model {what}"),
            "0A000",
            4004,
        );
        e.rejected = true;
        e
    }

    pub(crate) fn relation_unknown(fqn: &str) -> Self {
        SqlError::new(
            "RelationUnknown",
            format!("Relation '{fqn}' unknown"),
            "42P01",
            4041,
        )
    }

    pub(crate) fn column_unknown(column: &str) -> Self {
        SqlError::new(
            "ColumnUnknownException",
            format!("Column {column} unknown"),
            "42703",
            4043,
        )
    }

    pub(crate) fn relation_already_exists(fqn: &str) -> Self {
        SqlError::new(
            "RelationAlreadyExists",
            format!("Relation '{fqn}' already exists."),
            "42P07",
            4093,
        )
    }

    /// `IllegalArgumentException`: CrateDB maps it to SQLSTATE 0A000.
    pub(crate) fn illegal_argument(message: impl Into<String>) -> Self {
        SqlError::new("IllegalArgumentException", message, "0A000", 4000)
    }

    /// An internal error class (SQLSTATE XX000, HTTP 5000).
    pub(crate) fn internal(exception: &str, message: impl Into<String>) -> Self {
        SqlError::new(exception, message, "XX000", 5000)
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}] (SQLSTATE {})",
            self.exception, self.message, self.sqlstate
        )
    }
}

impl std::error::Error for SqlError {}

/// Errors when building or starting a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A listener could not be bound.
    #[error("cannot bind {what} listener on {addr}: {source}")]
    Bind {
        /// `pg` or `http`.
        what: &'static str,
        /// The requested address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
}
