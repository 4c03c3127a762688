//! The public result of a statement and its crate-control JSON form (its
//! `crash` rendering is in `crash.rs`).

use serde_json::json;

use crate::engine::Outcome;
use crate::error::SqlError;

/// The result of one statement, in the representation CrateDB's HTTP
/// endpoint uses (JSON values; timestamps as epoch milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub enum ExecOutcome {
    /// A query result.
    Rows {
        /// First keyword of the statement (`SELECT`, `SHOW`).
        command: String,
        columns: Vec<String>,
        /// CrateDB type names of the columns (`text`, `bigint`, `object`, ...).
        column_types: Vec<String>,
        rows: Vec<Vec<serde_json::Value>>,
    },
    /// A statement without a result set (`CREATE`, `RESTORE`, `ALTER`, ...).
    Command { command: String, rowcount: i64 },
    /// An SQL error.
    Error(SqlError),
}

impl ExecOutcome {
    /// Rows returned or rows affected; `None` for an error.
    pub fn rowcount(&self) -> Option<i64> {
        match self {
            ExecOutcome::Rows { rows, .. } => Some(rows.len() as i64),
            ExecOutcome::Command { rowcount, .. } => Some(*rowcount),
            ExecOutcome::Error(_) => None,
        }
    }

    /// The error, if any.
    pub fn error(&self) -> Option<&SqlError> {
        match self {
            ExecOutcome::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The crate-control `/exec` answer: `(HTTP status, JSON body)`.
    pub fn to_sidecar_json(&self) -> (u16, serde_json::Value) {
        match self {
            ExecOutcome::Rows { columns, rows, .. } => (
                200,
                json!({"cols": columns, "rows": rows, "rowcount": rows.len(), "duration": 1.0}),
            ),
            ExecOutcome::Command { rowcount, .. } => (
                200,
                json!({"cols": [], "rows": [], "rowcount": rowcount, "duration": 1.0}),
            ),
            // The sidecar keeps answering every SQL error with 400, as this
            // simulator always has (the product reads a 5xx from the sidecar
            // as "unreachable"); the body is CrateDB's HTTP error rendering.
            ExecOutcome::Error(e) => (400, e.http().body(false)),
        }
    }
}

impl From<Outcome> for ExecOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Rows(q) => ExecOutcome::Rows {
                command: q.command.to_string(),
                columns: q.fields.iter().map(|(n, _)| n.clone()).collect(),
                column_types: q.fields.iter().map(|(_, t)| t.crate_name()).collect(),
                rows: q
                    .rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .zip(q.fields.iter())
                            .map(|(v, (_, t))| v.coerce(t).unwrap_or_else(|_| v.clone()).to_json())
                            .collect()
                    })
                    .collect(),
            },
            Outcome::Command { command, rowcount } => ExecOutcome::Command {
                command: command.to_string(),
                rowcount,
            },
            Outcome::Error(e) => ExecOutcome::Error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_json_shapes() {
        let (status, body) = ExecOutcome::Command {
            command: "ALTER".into(),
            rowcount: 1,
        }
        .to_sidecar_json();
        assert_eq!(status, 200);
        assert_eq!(body["rowcount"], 1);
        let (status, body) =
            ExecOutcome::Error(SqlError::relation_unknown("doc.x")).to_sidecar_json();
        assert_eq!(status, 400);
        assert_eq!(
            body["error"]["message"],
            "RelationUnknown[Relation 'doc.x' unknown]"
        );
        assert_eq!(body["error"]["code"], 4041);
    }
}
