//! Errors: the SQL errors the simulated CrateDB returns, and start-up errors.

use std::fmt;

/// An SQL error as CrateDB reports it: one value, two renderings.
///
/// * Over PostgreSQL wire CrateDB sends only [`SqlError::message`] with the
///   SQLSTATE in [`SqlError::sqlstate`] (see `PGError.fromThrowable` in CrateDB).
/// * Over HTTP (`/_sql`, and so in `crash` and the crate-control sidecar) the
///   body is `{"error": {"message": "ExceptionName[message]", "code": 4xxx}}`
///   with an HTTP status, see [`SqlError::http`]; the code comes from
///   [`HTTP_ERROR_CODES`] by exception name, as CrateDB's
///   `HttpError.fromThrowable` picks it by exception class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Simple class name of the Java exception, e.g. `RelationAlreadyExists`.
    pub exception: String,
    /// The exception message, e.g. `Relation 'doc.t1' already exists.`.
    pub message: String,
    /// PostgreSQL SQLSTATE, e.g. `42P07`.
    pub sqlstate: String,
    /// `true` when the simulator refused the statement because it is outside
    /// the modelled grammar or feature set (it is then also listed by
    /// `SimulatorHandle::rejected_statements`).
    pub rejected: bool,
}

/// CrateDB's HTTP error code for each exception class the simulator raises
/// (`HttpErrorStatus` / `HttpError.fromThrowable`, CrateDB 5.x). Classes not
/// listed are `UNHANDLED_SERVER_ERROR` (5000), as in CrateDB; that includes the
/// restore and repository-verification failures, which CrateDB does not
/// classify either.
pub const HTTP_ERROR_CODES: &[(&str, i32)] = &[
    ("SQLParseException", 4000),
    ("InvalidArgumentException", 4003),
    ("UnsupportedFeatureException", 4004),
    ("UnsupportedFunctionException", 4004),
    ("UnauthorizedException", 4010),
    ("MissingPrivilegeException", 4011),
    ("RelationUnknown", 4041),
    ("ColumnUnknownException", 4043),
    ("SchemaUnknownException", 4045),
    ("PartitionUnknownException", 4046),
    ("RepositoryMissingException", 4047),
    ("SnapshotMissingException", 4048),
    ("RoleUnknownException", 40410),
    ("RelationAlreadyExists", 4093),
    ("RepositoryAlreadyExistsException", 4095),
    ("PartitionAlreadyExistsException", 4097),
    ("RoleAlreadyExistsException", 4099),
];

/// Java exceptions CrateDB converts before rendering them over HTTP
/// (`SQLExceptions.esToCrateException`): the HTTP client sees the new class
/// name, the PostgreSQL client only the unchanged message.
const HTTP_CONVERSIONS: &[(&str, &str)] = &[
    ("IllegalArgumentException", "SQLParseException"),
    (
        "UnsupportedOperationException",
        "UnsupportedFeatureException",
    ),
];

/// The HTTP rendering of an [`SqlError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status: the code's class (`4041` → 404, `4093` → 409, `5000` → 500, ...).
    pub status: u16,
    /// CrateDB error code, e.g. `4041`.
    pub code: i32,
    /// `ExceptionName[message]`.
    pub message: String,
}

impl HttpError {
    /// The JSON body; `error_trace` only when the client asked for it (`?error_trace=true`).
    pub fn body(&self, error_trace: bool) -> serde_json::Value {
        let mut body = serde_json::json!({"error": {"message": self.message, "code": self.code}});
        if error_trace {
            // CrateDB sends the Java stack trace; the simulator has none, so
            // the trace is the message and where it was produced.
            body["error_trace"] = serde_json::Value::String(format!(
                "{}\n\tat cratedb-sim (simulated; no Java stack)",
                self.message
            ));
        }
        body
    }
}

/// The HTTP status CrateDB pairs with an error code (`HttpErrorStatus`).
fn http_status(code: i32) -> u16 {
    // Codes are the status's first three digits followed by a sub-code
    // (4041 → 404, 40410 → 404); 4000-4009 and 40010-40099 are 400.
    let digits = code.to_string();
    match digits.get(..3).and_then(|d| d.parse::<u16>().ok()) {
        Some(s @ (401 | 403 | 404 | 409 | 429 | 503)) => s,
        Some(s) if (400..500).contains(&s) => 400,
        _ => 500,
    }
}

impl SqlError {
    /// A new error.
    pub fn new(
        exception: impl Into<String>,
        message: impl Into<String>,
        sqlstate: impl Into<String>,
    ) -> Self {
        SqlError {
            exception: exception.into(),
            message: message.into(),
            sqlstate: sqlstate.into(),
            rejected: false,
        }
    }

    /// `ExceptionName[message]` with the exception CrateDB names over HTTP
    /// (after its `IllegalArgumentException` → `SQLParseException` conversion):
    /// what CrateDB's HTTP endpoint, `crash` and the statement log show.
    pub fn crate_message(&self) -> String {
        format!("{}[{}]", self.http_exception(), self.message)
    }

    fn http_exception(&self) -> &str {
        HTTP_CONVERSIONS
            .iter()
            .find(|(from, _)| *from == self.exception)
            .map_or(self.exception.as_str(), |(_, to)| to)
    }

    /// CrateDB's HTTP error code for this error (see [`HTTP_ERROR_CODES`]).
    pub fn http_code(&self) -> i32 {
        let name = self.http_exception();
        HTTP_ERROR_CODES
            .iter()
            .find(|(e, _)| *e == name)
            .map_or(5000, |(_, code)| *code)
    }

    /// The HTTP rendering: status, code and `ExceptionName[message]`.
    pub fn http(&self) -> HttpError {
        let code = self.http_code();
        HttpError {
            status: http_status(code),
            code,
            message: self.crate_message(),
        }
    }

    /// CrateDB's parser error (SQLSTATE 42601); marks the statement as rejected.
    pub(crate) fn syntax(message: impl Into<String>) -> Self {
        let mut e = SqlError::new("SQLParseException", message, "42601");
        e.rejected = true;
        e
    }

    /// A statement CrateDB would understand but the simulator does not model.
    pub(crate) fn not_modelled(what: impl fmt::Display) -> Self {
        let mut e = SqlError::new(
            "UnsupportedFeatureException",
            format!("cratedb-sim does not model {what}"),
            "0A000",
        );
        e.rejected = true;
        e
    }

    pub(crate) fn relation_unknown(fqn: &str) -> Self {
        SqlError::new(
            "RelationUnknown",
            format!("Relation '{fqn}' unknown"),
            "42P01",
        )
    }

    pub(crate) fn column_unknown(column: &str) -> Self {
        SqlError::new(
            "ColumnUnknownException",
            format!("Column {column} unknown"),
            "42703",
        )
    }

    pub(crate) fn relation_already_exists(fqn: &str) -> Self {
        SqlError::new(
            "RelationAlreadyExists",
            format!("Relation '{fqn}' already exists."),
            "42P07",
        )
    }

    /// `IllegalArgumentException`: CrateDB maps it to SQLSTATE 0A000 over
    /// PostgreSQL and to `SQLParseException` (4000) over HTTP.
    pub(crate) fn illegal_argument(message: impl Into<String>) -> Self {
        SqlError::new("IllegalArgumentException", message, "0A000")
    }

    /// An internal error class (SQLSTATE XX000; HTTP code by class, usually 5000).
    pub(crate) fn internal(exception: &str, message: impl Into<String>) -> Self {
        SqlError::new(exception, message, "XX000")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_error_two_renderings() {
        let e = SqlError::relation_unknown("doc.x");
        assert_eq!(e.sqlstate, "42P01");
        assert_eq!(
            e.http(),
            HttpError {
                status: 404,
                code: 4041,
                message: "RelationUnknown[Relation 'doc.x' unknown]".into()
            }
        );
        let e = SqlError::relation_already_exists("doc.t");
        assert_eq!((e.http().status, e.http().code), (409, 4093));
        let e = SqlError::syntax("line 1:1: mismatched input 'X'");
        assert_eq!((e.http().status, e.http().code), (400, 4000));
        let e = SqlError::internal("RoleUnknownException", "Role 'x' does not exist");
        assert_eq!((e.http().status, e.http().code), (404, 40410));
        let e = SqlError::internal("SnapshotRestoreException", "boom");
        assert_eq!((e.http().status, e.http().code), (500, 5000));
        let e = SqlError::new("UnauthorizedException", "nope", "42501");
        assert_eq!((e.http().status, e.http().code), (401, 4010));
        let e = SqlError::internal("MissingPrivilegeException", "Missing 'AL' privilege");
        assert_eq!((e.http().status, e.http().code), (401, 4011));
    }

    #[test]
    fn illegal_argument_is_a_parse_exception_over_http_only() {
        let e = SqlError::illegal_argument("Setting 'x' is not supported");
        assert_eq!(e.message, "Setting 'x' is not supported");
        assert_eq!(e.sqlstate, "0A000");
        let h = e.http();
        assert_eq!(h.message, "SQLParseException[Setting 'x' is not supported]");
        assert_eq!((h.status, h.code), (400, 4000));
        assert!(h.body(false).get("error_trace").is_none());
        assert!(
            h.body(true)["error_trace"]
                .as_str()
                .unwrap()
                .starts_with("SQLParseException[")
        );
    }
}

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
