//! Reading what `crash` prints (SPEC B§4.0). crash writes the result table to stdout and
//! `CONNECT OK`, the status line (`SELECT 2 rows in set (…)`, `ALTER OK, 1 row affected (…)`) or
//! the error (`ExceptionName[message]`) to stderr, and exits 1 when a statement failed. The exit
//! status decides: CrateDB's error names do not all contain "Exception" (`RelationUnknown`), and
//! a table cell may. crash prints SQL NULL as `NULL`; it becomes JSON null.

use serde_json::Value;

use super::{SqlError, SqlResult};

/// What crash printing `text` on stderr with a non-zero exit means when it is not CrateDB's
/// answer: crash could not reach CrateDB at all (still starting, pod restarting).
fn unreachable(text: &str) -> bool {
    [
        "Server not available",
        "Connection refused",
        "Max retries exceeded",
        "Failed to establish a new connection",
        "timed out",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// stderr without crash's own chatter: what is left is the error.
fn error_text(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "CONNECT OK" && !is_status_line(l))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `SELECT 2 rows in set (0.004 sec)`, `ALTER OK, 1 row affected (0.052 sec)`.
fn is_status_line(line: &str) -> bool {
    line.ends_with(" sec)") && (line.contains(" in set (") || line.contains(" OK, "))
}

/// One crash run: its streams and exit status.
pub fn interpret(
    target: &str,
    stdout: &str,
    stderr: &str,
    exit_code: i32,
) -> Result<SqlResult, SqlError> {
    if exit_code != 0 {
        let error = error_text(stderr);
        return Err(if error.is_empty() || unreachable(&error) {
            SqlError::Connection {
                target: target.to_string(),
                detail: if error.is_empty() {
                    format!("crash exited with status {exit_code} and printed no error")
                } else {
                    error
                },
            }
        } else {
            SqlError::Sql {
                code: "XX000".into(),
                message: error,
            }
        });
    }
    Ok(parse_success(stdout, stderr))
}

/// The output of a statement that succeeded.
pub fn parse_success(stdout: &str, stderr: &str) -> SqlResult {
    let affected = stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .find(|l| is_status_line(l) && l.contains(" OK, "))
        .and_then(|l| l.split(" OK, ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    let mut lines = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 2 && l.starts_with('|') && l.ends_with('|'));
    let Some(header) = lines.next() else {
        return SqlResult {
            rowcount: affected,
            ..Default::default()
        };
    };
    let columns = cells(header).map(str::to_string).collect();
    let rows: Vec<Vec<Value>> = lines.map(|l| cells(l).map(cell_value).collect()).collect();
    SqlResult {
        columns,
        rowcount: Some(rows.len() as u64),
        rows,
    }
}

fn cells(line: &str) -> impl Iterator<Item = &str> {
    line[1..line.len() - 1].split('|').map(str::trim)
}

fn cell_value(cell: &str) -> Value {
    match cell {
        "" | "NULL" => Value::Null,
        "TRUE" | "true" => Value::Bool(true),
        "FALSE" | "false" => Value::Bool(false),
        _ => {
            if let Ok(i) = cell.parse::<i64>() {
                Value::from(i)
            } else if let Ok(f) = cell.parse::<f64>()
                && f.is_finite()
            {
                Value::from(f)
            } else {
                Value::String(cell.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn alter_ok_reports_the_rows_affected() {
        let out = interpret(
            "pod",
            "",
            "CONNECT OK\nALTER OK, 1 row affected (0.052 sec)\n",
            0,
        )
        .unwrap();
        assert_eq!(out.rowcount, Some(1));
        let none = interpret(
            "pod",
            "",
            "CONNECT OK\nALTER OK, 0 rows affected (0.1 sec)\n",
            0,
        );
        assert_eq!(none.unwrap().rowcount, Some(0));
    }

    #[test]
    fn the_exit_status_decides_not_the_word_exception() {
        let err = interpret(
            "pod",
            "",
            "CONNECT OK\nRelationUnknown[Relation 'doc.nope' unknown]\n",
            1,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "RelationUnknown[Relation 'doc.nope' unknown]"
        );
        assert!(!err.is_transient());
        // A cell that mentions an exception is data.
        let stdout = "+---------------------+\n| stmt                |\n+---------------------+\n| NullPointerException |\n+---------------------+\n";
        let ok = interpret(
            "pod",
            stdout,
            "CONNECT OK\nSELECT 1 row in set (0.001 sec)\n",
            0,
        )
        .unwrap();
        assert_eq!(ok.rows, vec![vec![json!("NullPointerException")]]);
    }

    #[test]
    fn an_unreachable_cratedb_is_a_connection_error() {
        let err = interpret(
            "crash in pod ns/crate-data-hot-c1-0",
            "",
            "Server not available, exception: HTTPConnectionPool(host='localhost', port=4200): Max retries exceeded\n",
            1,
        )
        .unwrap_err();
        assert!(err.is_transient(), "{err}");
        let silent = interpret("pod", "", "", 127).unwrap_err();
        assert!(silent.is_transient());
        assert!(
            silent.to_string().contains("exited with status 127"),
            "{silent}"
        );
    }

    #[test]
    fn tables_are_parsed_with_types_and_nulls() {
        let stdout = "\
+-------------+------------+---------+------+------+
| schema_name | table_name | primary | size | pct  |
+-------------+------------+---------+------+------+
| doc         | orders     | TRUE    | 1024 | 12.5 |
| doc         | empty      | FALSE   | NULL |      |
+-------------+------------+---------+------+------+
";
        let out = interpret(
            "pod",
            stdout,
            "CONNECT OK\nSELECT 2 rows in set (0.004 sec)\n",
            0,
        )
        .unwrap();
        assert_eq!(
            out.columns,
            ["schema_name", "table_name", "primary", "size", "pct"]
        );
        assert_eq!(
            out.rows,
            vec![
                vec![
                    json!("doc"),
                    json!("orders"),
                    json!(true),
                    json!(1024),
                    json!(12.5)
                ],
                vec![
                    json!("doc"),
                    json!("empty"),
                    json!(false),
                    Value::Null,
                    Value::Null
                ],
            ]
        );
        assert_eq!(out.rowcount, Some(2));
    }

    #[test]
    fn an_empty_result_has_a_header_and_no_rows() {
        let stdout = "+---+\n| 1 |\n+---+\n+---+\n";
        let out = parse_success(stdout, "SELECT 0 rows in set (0.001 sec)\n");
        assert_eq!(out.columns, ["1"]);
        assert!(out.rows.is_empty());
        assert_eq!(parse_success("", ""), SqlResult::default());
    }
}
