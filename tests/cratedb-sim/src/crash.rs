//! What the `crash` shell (0.32, `tabular` format, not a terminal) prints
//! for one statement, reproduced from its source: `crate.crash.command`
//! (`_exec_and_print`, `ColorPrinter`), `crate.crash.outputs` and the
//! `tabulate` package with crash's `cratedb` table format and patches.
//!
//! The tests in `tests/it/crash_real.rs` compare this with the real binary.

use serde_json::Value as Json;

use crate::outcome::ExecOutcome;

/// What `crash -c <sql>` writes and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashOutput {
    /// The result table (queries only), followed by a newline.
    pub stdout: String,
    /// `CONNECT OK`, then the status line (`SELECT 2 rows in set (0.001 sec)`,
    /// `ALTER OK, 1 row affected (0.001 sec)`) or the error
    /// (`ExceptionName[message]`): crash logs both through its `ColorPrinter`,
    /// which writes to stderr.
    pub stderr: String,
    /// 0, or 1 when the statement failed.
    pub exit_code: i32,
}

/// The duration crash prints; the simulator reports no real one.
const DURATION: &str = " (0.001 sec)";

/// What `crash -c <sql>` prints for `outcome`, stream by stream.
///
/// ```
/// use cratedb_sim::{ExecOutcome, crash_output};
/// let out = crash_output(&ExecOutcome::Command { command: "ALTER".into(), rowcount: 1 });
/// assert_eq!(out.stdout, "");
/// assert_eq!(out.stderr, "CONNECT OK\nALTER OK, 1 row affected (0.001 sec)\n");
/// assert_eq!(out.exit_code, 0);
/// ```
pub fn crash_output(outcome: &ExecOutcome) -> CrashOutput {
    let mut stderr = String::from("CONNECT OK\n");
    match outcome {
        ExecOutcome::Error(e) => {
            stderr.push_str(&e.crate_message());
            stderr.push('\n');
            CrashOutput {
                stdout: String::new(),
                stderr,
                exit_code: 1,
            }
        }
        ExecOutcome::Command { command, rowcount } => {
            stderr.push_str(&format!(
                "{command} OK, {rowcount} row{} affected{DURATION}\n",
                plural(*rowcount)
            ));
            CrashOutput {
                stdout: String::new(),
                stderr,
                exit_code: 0,
            }
        }
        ExecOutcome::Rows {
            command,
            columns,
            rows,
            ..
        } => {
            let n = rows.len() as i64;
            stderr.push_str(&format!(
                "{command} {n} row{} in set{DURATION}\n",
                plural(n)
            ));
            CrashOutput {
                stdout: format!("{}\n", table(columns, rows)),
                stderr,
                exit_code: 0,
            }
        }
    }
}

/// `'s'[rowcount == 1:]`.
fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation
/// outside `1e-4 <= |x| < 1e16`.
fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits = mantissa.replace('.', "");
    let n = digits.len() as i32;
    let body = if (-4..16).contains(&exp) {
        if exp < 0 {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else if n <= exp + 1 {
            format!("{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    };
    format!("{sign}{body}")
}

/// `json.dumps(v, sort_keys=True, ensure_ascii=False)`.
fn py_json(v: &Json) -> String {
    match v {
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(py_json).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(m) => {
            let mut entries: Vec<_> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", Json::String((*k).clone()), py_json(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Json::Number(n) if n.is_f64() => py_float(n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    }
}

/// tabulate's type lattice (`_more_generic`): none < bool < int < float < str.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CellType {
    None,
    Bool,
    Int,
    Float,
    Str,
}

fn is_py_int(s: &str) -> bool {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// tabulate's `_isnumber`: `float(s)` works, and infinities/NaN only as
/// `inf`, `-inf`, `nan`.
fn is_py_number(s: &str) -> bool {
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() => true,
        Ok(_) => ["inf", "-inf", "nan"].contains(&s.to_lowercase().as_str()),
        Err(_) => false,
    }
}

/// A cell as crash hands it to tabulate (`_transform_field`), with the type
/// tabulate infers for it (`_type`): strings that look numeric count as numbers.
fn cell(v: &Json) -> (CellType, String) {
    match v {
        Json::Null => (CellType::None, "NULL".into()),
        Json::Bool(b) => (CellType::Str, if *b { "TRUE" } else { "FALSE" }.into()),
        Json::Number(n) if n.is_f64() => (CellType::Float, py_float(n.as_f64().unwrap_or(0.0))),
        Json::Number(n) => (CellType::Int, n.to_string()),
        Json::String(s) => {
            let t = if s == "True" || s == "False" {
                CellType::Bool
            } else if is_py_int(s) {
                CellType::Int
            } else if is_py_number(s) {
                CellType::Float
            } else {
                CellType::Str
            };
            (t, s.clone())
        }
        other => (CellType::Str, py_json(other)),
    }
}

/// tabulate's `_afterpoint`: digits after the decimal point (or exponent
/// marker), -1 for integers and non-numbers.
fn after_point(s: &str) -> i64 {
    if !is_py_number(s) || is_py_int(s) {
        return -1;
    }
    let pos = s.rfind('.').or_else(|| s.to_lowercase().rfind('e'));
    pos.map_or(-1, |p| (s.len() - p - 1) as i64)
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// `tabulate(rows, headers, tablefmt="cratedb", floatfmt="", numalign="decimal",
/// stralign="left", missingval="NULL")` after crash's patches (`MIN_PADDING = 0`,
/// floats printed as `str(value)`).
fn table(headers: &[String], rows: &[Vec<Json>]) -> String {
    let ncols = headers.len();
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); ncols];
    let mut numeric = vec![false; ncols];
    if !rows.is_empty() {
        for (i, col) in columns.iter_mut().enumerate() {
            let cells: Vec<(CellType, String)> = rows
                .iter()
                .map(|r| cell(r.get(i).unwrap_or(&Json::Null)))
                .collect();
            let ty = cells.iter().map(|c| c.0).fold(CellType::Bool, Ord::max);
            numeric[i] = matches!(ty, CellType::Int | CellType::Float);
            let mut strings: Vec<String> = cells.into_iter().map(|c| c.1).collect();
            if numeric[i] {
                // "decimal": pad on the right so the decimal points line up
                let points: Vec<i64> = strings.iter().map(|s| after_point(s)).collect();
                let max = points.iter().copied().max().unwrap_or(-1);
                for (s, p) in strings.iter_mut().zip(points) {
                    s.push_str(&" ".repeat((max - p) as usize));
                }
            } else {
                for s in strings.iter_mut() {
                    *s = s.trim().to_string();
                }
            }
            *col = strings;
        }
    }
    let widths: Vec<usize> = (0..ncols)
        .map(|i| {
            columns[i]
                .iter()
                .map(|s| width(s))
                .chain(std::iter::once(width(&headers[i])))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |s: &str, w: usize, right: bool| {
        let fill = " ".repeat(w.saturating_sub(width(s)));
        if right {
            format!("{fill}{s}")
        } else {
            format!("{s}{fill}")
        }
    };
    let line = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
    let border = format!(
        "+{}+",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let mut out = vec![border.clone()];
    out.push(line(
        (0..ncols)
            .map(|i| pad(&headers[i], widths[i], numeric[i]))
            .collect(),
    ));
    out.push(border.clone());
    out.extend((0..rows.len()).map(|r| {
        line(
            (0..ncols)
                .map(|i| pad(&columns[i][r], widths[i], numeric[i]))
                .collect(),
        )
    }));
    out.push(border);
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SqlError;
    use serde_json::json;

    fn rows(columns: &[&str], rows: Vec<Vec<Json>>) -> ExecOutcome {
        ExecOutcome::Rows {
            command: "SELECT".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            column_types: Vec::new(),
            rows,
        }
    }

    #[test]
    fn python_float_repr() {
        for (f, s) in [
            (25.0, "25.0"),
            (1.25, "1.25"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789.5, "123456789.5"),
            (-2.0, "-2.0"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
        ] {
            assert_eq!(py_float(f), s, "{f}");
        }
    }

    // Expected texts printed by crash 0.32's OutputWriter.tabular for the same rows.
    #[test]
    fn decimal_alignment_nulls_and_numeric_strings() {
        let out = crash_output(&rows(
            &["percent", "name"],
            vec![
                vec![json!(25.0), json!("a")],
                vec![Json::Null, json!("bb")],
                vec![json!(1.25), json!("123")],
            ],
        ));
        assert_eq!(
            out.stdout,
            "\
+---------+------+
| percent | name |
+---------+------+
|   25.0  | a    |
| NULL    | bb   |
|    1.25 | 123  |
+---------+------+
"
        );
        assert_eq!(out.stderr, "CONNECT OK\nSELECT 3 rows in set (0.001 sec)\n");
        let out = crash_output(&rows(&["s"], vec![vec![json!("1.50")], vec![json!("2")]]));
        assert_eq!(
            out.stdout,
            "+------+\n|    s |\n+------+\n| 1.50 |\n| 2    |\n+------+\n"
        );
        let out = crash_output(&rows(
            &["f"],
            vec![vec![json!(1e16)], vec![json!(0.1)], vec![json!(1.0)]],
        ));
        assert_eq!(
            out.stdout,
            "+-------+\n|     f |\n+-------+\n| 1e+16 |\n| 0.1   |\n| 1.0   |\n+-------+\n"
        );
        let out = crash_output(&rows(
            &["n"],
            vec![vec![json!(1)], vec![Json::Null], vec![json!(100)]],
        ));
        assert_eq!(
            out.stdout,
            "+------+\n|    n |\n+------+\n|    1 |\n| NULL |\n|  100 |\n+------+\n"
        );
    }

    #[test]
    fn objects_booleans_and_empty_results() {
        let out = crash_output(&rows(
            &["a", "b"],
            vec![
                vec![json!({"z": 1, "a": [1, "ü"]}), json!(true)],
                vec![Json::Null, json!(false)],
            ],
        ));
        assert_eq!(
            out.stdout,
            "\
+-------------------------+-------+
| a                       | b     |
+-------------------------+-------+
| {\"a\": [1, \"ü\"], \"z\": 1} | TRUE  |
| NULL                    | FALSE |
+-------------------------+-------+
"
        );
        let out = crash_output(&rows(&["x"], Vec::new()));
        assert_eq!(out.stdout, "+---+\n| x |\n+---+\n+---+\n");
        assert_eq!(out.stderr, "CONNECT OK\nSELECT 0 rows in set (0.001 sec)\n");
    }

    #[test]
    fn errors_go_to_stderr_with_exit_status_1() {
        let e = SqlError::syntax("line 1:1: mismatched input 'FOO' expecting {'SELECT'}");
        let out = crash_output(&ExecOutcome::Error(e.clone()));
        assert_eq!(out.exit_code, 1);
        assert!(out.stdout.is_empty());
        assert_eq!(
            out.stderr,
            "CONNECT OK\nSQLParseException[line 1:1: mismatched input 'FOO' expecting {'SELECT'}]\n"
        );
    }
}
