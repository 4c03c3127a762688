//! The public result of a statement, its crate-control JSON form and its
//! `crash` rendering.

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
            ExecOutcome::Error(e) => (
                400,
                json!({"error": {"message": e.crate_message(), "code": e.http_code}}),
            ),
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

/// Python-like rendering of a JSON value inside a crash table cell.
fn cell_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "NULL".into(),
        serde_json::Value::Bool(true) => "TRUE".into(),
        serde_json::Value::Bool(false) => "FALSE".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e16 {
                    format!("{f:.1}")
                } else {
                    f.to_string()
                }
            } else {
                n.to_string()
            }
        }
        other => python_json(other),
    }
}

/// `json.dumps` default formatting (`", "` and `": "` separators).
fn python_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(python_json).collect::<Vec<_>>().join(", ")
            )
        }
        serde_json::Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    serde_json::Value::String(k.clone()),
                    python_json(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Format a result the way the `crash` CLI prints it for `crash -c <sql>`:
/// returns `(stdout, stderr)`.
///
/// * queries: a `+---+` bordered table with a header row, `| cell |` rows
///   (`NULL` for SQL NULL, `TRUE`/`FALSE` for booleans), then
///   `SELECT 2 rows in set (0.001 sec)`;
/// * other statements: `ALTER OK, 1 row affected  (0.001 sec)`;
/// * errors go to stderr as `ExceptionName[message]`, e.g.
///   `SQLParseException[line 1:1: mismatched input ...]`.
///
/// ```
/// use cratedb_sim::{ExecOutcome, render_crash_output};
/// let (out, err) = render_crash_output(&ExecOutcome::Command { command: "ALTER".into(), rowcount: 1 });
/// assert_eq!(out, "ALTER OK, 1 row affected  (0.001 sec)\n");
/// assert!(err.is_empty());
/// ```
pub fn render_crash_output(outcome: &ExecOutcome) -> (String, String) {
    match outcome {
        ExecOutcome::Error(e) => (String::new(), format!("{}\n", e.crate_message())),
        ExecOutcome::Command { command, rowcount } => (
            format!(
                "{command} OK, {rowcount} row{} affected  (0.001 sec)\n",
                if *rowcount == 1 { "" } else { "s" }
            ),
            String::new(),
        ),
        ExecOutcome::Rows {
            command,
            columns,
            column_types,
            rows,
        } => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| r.iter().map(cell_text).collect())
                .collect();
            let numeric: Vec<bool> = (0..columns.len())
                .map(|i| {
                    matches!(
                        column_types.get(i).map(String::as_str),
                        Some("integer" | "bigint" | "real" | "double precision" | "smallint")
                    )
                })
                .collect();
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    cells
                        .iter()
                        .map(|r| r[i].chars().count())
                        .chain(std::iter::once(c.chars().count()))
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let border = format!(
                "+{}+\n",
                widths
                    .iter()
                    .map(|w| "-".repeat(w + 2))
                    .collect::<Vec<_>>()
                    .join("+")
            );
            let line = |vals: &[String], header: bool| {
                let parts: Vec<String> = vals
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let pad = widths[i] - v.chars().count();
                        if numeric[i] && !header {
                            format!(" {}{} ", " ".repeat(pad), v)
                        } else {
                            format!(" {}{} ", v, " ".repeat(pad))
                        }
                    })
                    .collect();
                format!("|{}|\n", parts.join("|"))
            };
            let mut out = String::new();
            out.push_str(&border);
            out.push_str(&line(columns, true));
            out.push_str(&border);
            for r in &cells {
                out.push_str(&line(r, false));
            }
            out.push_str(&border);
            let n = rows.len();
            out.push_str(&format!(
                "{command} {n} row{} in set (0.001 sec)\n",
                if n == 1 { "" } else { "s" }
            ));
            (out, String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tables_with_nulls_and_counts() {
        let o = ExecOutcome::Rows {
            command: "SELECT".into(),
            columns: vec!["name".into(), "percent".into(), "closed".into()],
            column_types: vec!["text".into(), "real".into(), "boolean".into()],
            rows: vec![
                vec![json!("snap1"), json!(25.0), json!(false)],
                vec![json!("s2"), serde_json::Value::Null, json!(true)],
            ],
        };
        let (out, err) = render_crash_output(&o);
        assert!(err.is_empty());
        let expected = "\
+-------+---------+--------+
| name  | percent | closed |
+-------+---------+--------+
| snap1 |    25.0 | FALSE  |
| s2    |    NULL | TRUE   |
+-------+---------+--------+
SELECT 2 rows in set (0.001 sec)
";
        assert_eq!(out, expected);
    }

    #[test]
    fn renders_errors_on_stderr_and_single_row() {
        let e = SqlError::syntax("line 1:1: mismatched input 'FOO' expecting {'SELECT'}");
        let (out, err) = render_crash_output(&ExecOutcome::Error(e));
        assert!(out.is_empty());
        assert_eq!(
            err,
            "SQLParseException[line 1:1: mismatched input 'FOO' expecting {'SELECT'}]\n"
        );
        let o = ExecOutcome::Rows {
            command: "SELECT".into(),
            columns: vec!["settings".into()],
            column_types: vec!["object".into()],
            rows: vec![vec![json!({"a": {"b": 1}})]],
        };
        let (out, _) = render_crash_output(&o);
        assert!(out.contains("| {\"a\": {\"b\": 1}} |"), "{out}");
        assert!(out.ends_with("SELECT 1 row in set (0.001 sec)\n"));
    }

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
