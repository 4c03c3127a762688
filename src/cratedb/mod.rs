//! Talking to CrateDB: the PostgreSQL wire protocol as user `system`, and the superuser path
//! (`crash` in the CrateDB pod, or the crate-control sidecar on OpenShift) for the statements
//! `system` may not run or cannot run while its password is being restored (SPEC A9, B§4.0).

pub mod catalog;
pub mod crash;
pub mod pg;
pub mod queries;
pub mod superuser;
pub mod tls;

use serde_json::Value;

/// A bound parameter over the PostgreSQL wire: text, or a text array (`= ANY($1)` over a list
/// of names, so the statement stays the same size however many names it filters on).
#[derive(Debug, Clone, Copy)]
pub enum SqlParam<'a> {
    Text(&'a str),
    TextArray(&'a [String]),
}

/// A statement's result in one shape for every path: column names and JSON cell values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// Rows affected, where the path reports it.
    pub rowcount: Option<u64>,
}

impl SqlResult {
    pub fn first_cell(&self) -> Option<&Value> {
        self.rows.first().and_then(|r| r.first())
    }
}

/// Why a statement did not run. Secrets never appear here: statements that carry them are
/// described, not quoted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SqlError {
    /// The connection could not be made or broke; retrying may help.
    #[error("cannot reach CrateDB ({target}): {detail}")]
    Connection { target: String, detail: String },
    /// The statement did not answer in time.
    #[error("CrateDB did not answer within {seconds} s")]
    Timeout { seconds: u64 },
    /// CrateDB refused the statement.
    #[error("{message}")]
    Sql { code: String, message: String },
    /// Login was refused (a wrong or restored password).
    #[error("CrateDB refused the login of user {user:?}: {message}")]
    Auth { user: String, message: String },
    /// The answer could not be understood.
    #[error("unexpected answer from CrateDB: {0}")]
    Decode(String),
}

impl SqlError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Connection { .. } | Self::Timeout { .. })
    }

    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Sql { code, .. } => Some(code),
            _ => None,
        }
    }
}
