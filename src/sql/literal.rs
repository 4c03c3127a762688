//! SQL literals: the partition values users write, and values we must inline where CrateDB (or
//! `crash -c`) takes no bound parameters.

use std::fmt;

/// One SQL literal as CrateDB's grammar reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlLiteral {
    /// A numeric literal, kept as written (`42`, `-1.5`, `1e3`).
    Number(String),
    /// A string literal's value (quotes removed, `''` collapsed).
    String(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiteralError {
    #[error("the value is empty")]
    Empty,
    #[error("a string literal is not closed with '")]
    UnterminatedString,
    #[error("a single quote inside a string literal must be doubled ('')")]
    UndoubledQuote,
    #[error("{0:?} is not one SQL literal")]
    NotALiteral(String),
}

impl SqlLiteral {
    /// Parses exactly one literal: a number, a single-quoted string with `''` escaping, `true`,
    /// `false` or `null` (any case). Anything else — expressions, identifiers, several values —
    /// is rejected, so a partition value can never carry SQL of its own.
    pub fn parse(input: &str) -> Result<Self, LiteralError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(LiteralError::Empty);
        }
        if let Some(body) = text.strip_prefix('\'') {
            return parse_string_body(body);
        }
        match text.to_ascii_lowercase().as_str() {
            "true" => return Ok(Self::Bool(true)),
            "false" => return Ok(Self::Bool(false)),
            "null" => return Ok(Self::Null),
            _ => {}
        }
        if is_number(text) {
            return Ok(Self::Number(text.to_string()));
        }
        Err(LiteralError::NotALiteral(text.to_string()))
    }

    /// A value as CrateDB lists it (`sys.snapshots.table_partitions`), as a literal.
    pub fn from_json(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(*b),
            serde_json::Value::Number(n) => Self::Number(n.to_string()),
            serde_json::Value::String(s) => Self::String(s.clone()),
            other => Self::String(other.to_string()),
        }
    }

    /// The value as JSON, for comparing with CrateDB's `information_schema.table_partitions.values`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Number(n) => n
                .parse::<i64>()
                .map(serde_json::Value::from)
                .or_else(|_| n.parse::<f64>().map(serde_json::Value::from))
                .unwrap_or_else(|_| serde_json::Value::String(n.clone())),
            Self::String(s) => serde_json::Value::String(s.clone()),
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Null => serde_json::Value::Null,
        }
    }
}

impl fmt::Display for SqlLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => f.write_str(n),
            Self::String(s) => f.write_str(&quote_literal(s)),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Null => f.write_str("NULL"),
        }
    }
}

fn parse_string_body(body: &str) -> Result<SqlLiteral, LiteralError> {
    let mut value = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            value.push(c);
            continue;
        }
        match chars.peek() {
            Some('\'') => {
                chars.next();
                value.push('\'');
            }
            None => return Ok(SqlLiteral::String(value)),
            Some(_) => return Err(LiteralError::UndoubledQuote),
        }
    }
    Err(LiteralError::UnterminatedString)
}

fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match digits.find(['e', 'E']) {
        Some(i) => (&digits[..i], Some(&digits[i + 1..])),
        None => (digits, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = all_digits(int)
        && frac.is_none_or(all_digits)
        && !(int.is_empty() && frac.is_none_or(str::is_empty));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// A single-quoted string literal with `'` doubled. Backslashes are kept as they are: CrateDB's
/// standard strings treat them literally, so doubling them would change the value.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_literal() {
        let cases: &[(&str, &str)] = &[
            ("42", "42"),
            ("-1.5", "-1.5"),
            ("+7", "+7"),
            ("1e3", "1e3"),
            (".5", ".5"),
            ("3.", "3."),
            ("'2024-01-01'", "'2024-01-01'"),
            ("'it''s'", "'it''s'"),
            ("''", "''"),
            (r"'back\slash'", r"'back\slash'"),
            ("'semi; DROP TABLE t'", "'semi; DROP TABLE t'"),
            ("'日本'", "'日本'"),
            ("TRUE", "true"),
            ("false", "false"),
            ("NuLl", "NULL"),
            ("  'padded'  ", "'padded'"),
        ];
        for (input, rendered) in cases {
            let lit = SqlLiteral::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(lit.to_string(), *rendered, "input {input:?}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let cases: &[(&str, LiteralError)] = &[
            ("", LiteralError::Empty),
            ("'open", LiteralError::UnterminatedString),
            ("'a'b'", LiteralError::UndoubledQuote),
            ("'a' OR 1=1", LiteralError::UndoubledQuote),
            ("2024-01-01", LiteralError::NotALiteral("2024-01-01".into())),
            ("now()", LiteralError::NotALiteral("now()".into())),
            (
                "1; DROP TABLE t",
                LiteralError::NotALiteral("1; DROP TABLE t".into()),
            ),
            ("col", LiteralError::NotALiteral("col".into())),
            ("\"x\"", LiteralError::NotALiteral("\"x\"".into())),
            ("1e", LiteralError::NotALiteral("1e".into())),
            ("-", LiteralError::NotALiteral("-".into())),
            (".", LiteralError::NotALiteral(".".into())),
            ("1,2", LiteralError::NotALiteral("1,2".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(
                SqlLiteral::parse(input).as_ref(),
                Err(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn json_values_for_partition_comparison() {
        assert_eq!(
            SqlLiteral::parse("42").unwrap().to_json(),
            serde_json::json!(42)
        );
        assert_eq!(
            SqlLiteral::parse("1.5").unwrap().to_json(),
            serde_json::json!(1.5)
        );
        assert_eq!(
            SqlLiteral::parse("'x'").unwrap().to_json(),
            serde_json::json!("x")
        );
        assert_eq!(
            SqlLiteral::parse("null").unwrap().to_json(),
            serde_json::Value::Null
        );
    }

    #[test]
    fn quote_literal_doubles_single_quotes_only() {
        assert_eq!(quote_literal("p'w\\d\""), "'p''w\\d\"'");
    }
}
