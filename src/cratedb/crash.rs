//! Reading what `crash -c <sql>` prints (SPEC B§4.0): `Exception` anywhere is an error,
//! `ALTER OK` / `CREATE OK` / `GRANT OK` is one affected row, otherwise the bordered table is
//! parsed. `crash` prints SQL NULL as `NULL`; we turn it into JSON null.

use serde_json::Value;

use super::{SqlError, SqlResult};

pub fn parse_output(stdout: &str, stderr: &str) -> Result<SqlResult, SqlError> {
    let combined = format!("{stdout}\n{stderr}");
    if combined.contains("Exception") {
        let message = combined
            .lines()
            .map(str::trim)
            .find(|l| l.contains("Exception"))
            .unwrap_or("Exception")
            .to_string();
        return Err(SqlError::Sql {
            code: "XX000".into(),
            message,
        });
    }
    if [
        "ALTER OK",
        "CREATE OK",
        "GRANT OK",
        "DROP OK",
        "SET OK",
        "RESET OK",
    ]
    .iter()
    .any(|ok| combined.contains(ok))
    {
        return Ok(SqlResult {
            rowcount: Some(1),
            ..Default::default()
        });
    }
    let mut lines = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 2 && l.starts_with('|') && l.ends_with('|'));
    let Some(header) = lines.next() else {
        return Ok(SqlResult::default());
    };
    let columns = cells(header).map(str::to_string).collect();
    let rows: Vec<Vec<Value>> = lines.map(|l| cells(l).map(cell_value).collect()).collect();
    Ok(SqlResult {
        columns,
        rowcount: Some(rows.len() as u64),
        rows,
    })
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
    fn alter_ok_is_one_row() {
        let out = parse_output("ALTER OK, 1 row affected  (0.052 sec)\n", "").unwrap();
        assert_eq!(out.rowcount, Some(1));
    }

    #[test]
    fn exceptions_are_errors_wherever_they_appear() {
        let err = parse_output(
            "",
            "SQLParseException[line 1:1: mismatched input 'SELEC' expecting {...}]\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SQLParseException[line 1:1: mismatched input 'SELEC' expecting {...}]"
        );
        assert!(parse_output("UserUnknownException[User 'x' does not exist]", "").is_err());
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
SELECT 2 rows in set (0.004 sec)
";
        let out = parse_output(stdout, "").unwrap();
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
        let stdout = "+---+\n| 1 |\n+---+\n+---+\nSELECT 0 rows in set (0.001 sec)\n";
        let out = parse_output(stdout, "").unwrap();
        assert_eq!(out.columns, ["1"]);
        assert!(out.rows.is_empty());
        assert_eq!(parse_output("", "").unwrap(), SqlResult::default());
    }
}
