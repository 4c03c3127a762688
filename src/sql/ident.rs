//! Table identifiers as users write them in `restoreSnapshot.tables` and `partitions[].table_ident`.
//!
//! Rules (SPEC A8/A21): split at the first unquoted dot; a missing schema means `doc`; parts that
//! are already quoted (`"doc"."t"`) are parsed, not quoted twice; every part is emitted as a quoted
//! identifier with `"` doubled. Unquoted parts keep their case, as the reference operator does.

use std::fmt;

/// The schema CrateDB uses for unqualified names in a session whose default schema is `doc`.
pub const DEFAULT_SCHEMA: &str = "doc";

/// CrateDB limits relation names to 255 bytes.
const MAX_PART_BYTES: usize = 255;

/// A parsed `schema.table` pair. Stored (in `status.restore`) as its two parts: a dotted string
/// would have to be split again, and names may contain dots.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TableIdent {
    pub schema: String,
    pub table: String,
}

/// Why a table name could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("the name is empty")]
    Empty,
    #[error("the schema part before the dot is empty")]
    EmptySchema,
    #[error("the table part after the dot is empty")]
    EmptyTable,
    #[error("a quoted part is not closed with \"")]
    UnterminatedQuote,
    #[error("unexpected text {0:?} after a quoted part")]
    TrailingText(String),
    #[error(
        "a double quote inside an unquoted part; quote the whole part and double the quote (\"a\"\"b\")"
    )]
    StrayQuote,
    #[error("control characters are not allowed in names")]
    ControlCharacter,
    #[error("more than two parts; use schema.table")]
    TooManyParts,
    #[error("a part is longer than {MAX_PART_BYTES} bytes")]
    TooLong,
}

impl TableIdent {
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// Parses a user-written table name such as `doc.t`, `t`, `"my schema"."t"` or `doc."a.b"`.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(IdentError::Empty);
        }
        if input.chars().any(char::is_control) {
            return Err(IdentError::ControlCharacter);
        }
        let (first, rest) = parse_part(input, true)?;
        let ident = match rest {
            None => Self::new(DEFAULT_SCHEMA, first),
            Some(rest) => {
                if first.is_empty() {
                    return Err(IdentError::EmptySchema);
                }
                // After the first dot, an unquoted remainder is the table name as a whole (it may
                // contain further dots); a quoted remainder must be exactly one quoted part.
                let (second, tail) = parse_part(rest, false)?;
                if tail.is_some() {
                    return Err(IdentError::TooManyParts);
                }
                Self::new(first, second)
            }
        };
        if ident.table.is_empty() {
            return Err(IdentError::EmptyTable);
        }
        if ident.schema.len() > MAX_PART_BYTES || ident.table.len() > MAX_PART_BYTES {
            return Err(IdentError::TooLong);
        }
        Ok(ident)
    }

    /// `"schema"."table"` with embedded quotes doubled.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// Like [`Self::quoted`], but a part that is a plain lower-case name stays unquoted
    /// (`sys.jobs`), as people write it; anything else is quoted.
    pub fn sql(&self) -> String {
        format!(
            "{}.{}",
            quote_ident_if_needed(&self.schema),
            quote_ident_if_needed(&self.table)
        )
    }

    /// `schema.table`, the form CrateDB uses in `sys.snapshots.tables` and in messages.
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

impl fmt::Display for TableIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dotted())
    }
}

/// Parses a single identifier such as a column name: `day` or `"Day ""1"""`. Dots are part of
/// an unquoted name; a quoted name must be the whole input.
pub fn parse_single_ident(input: &str) -> Result<String, IdentError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(IdentError::Empty);
    }
    if input.chars().any(char::is_control) {
        return Err(IdentError::ControlCharacter);
    }
    match parse_part(input, false)? {
        (name, None) if !name.is_empty() => Ok(name),
        (_, None) => Err(IdentError::Empty),
        (_, Some(_)) => Err(IdentError::TooManyParts),
    }
}

/// Parses one part. Returns the part and, if a dot follows, the text after the dot.
/// `split_unquoted` decides whether an unquoted part ends at the first dot.
fn parse_part(input: &str, split_unquoted: bool) -> Result<(String, Option<&str>), IdentError> {
    let input = input.trim_start();
    if let Some(quoted) = input.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                value.push(c);
                continue;
            }
            if matches!(chars.peek(), Some((_, '"'))) {
                chars.next();
                value.push('"');
                continue;
            }
            let after = quoted[i + 1..].trim_start();
            return match after.strip_prefix('.') {
                Some(rest) => Ok((value, Some(rest))),
                None if after.is_empty() => Ok((value, None)),
                None => Err(IdentError::TrailingText(after.to_string())),
            };
        }
        Err(IdentError::UnterminatedQuote)
    } else {
        let (part, rest) = match input.find('.') {
            Some(dot) if split_unquoted => (&input[..dot], Some(&input[dot + 1..])),
            _ => (input, None),
        };
        if part.contains('"') {
            return Err(IdentError::StrayQuote);
        }
        Ok((part.trim().to_string(), rest))
    }
}

/// Leaves `[a-z_][a-z0-9_]*` as it is and quotes everything else.
pub fn quote_ident_if_needed(name: &str) -> String {
    let plain = name
        .bytes()
        .enumerate()
        .all(|(i, b)| b.is_ascii_lowercase() || b == b'_' || (i > 0 && b.is_ascii_digit()))
        && !name.is_empty();
    if plain {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

/// Quotes one identifier: `"` + text with `"` doubled + `"`.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_quotes_table_names() {
        let cases: &[(&str, &str)] = &[
            ("doc.table1", r#""doc"."table1""#),
            ("table1", r#""doc"."table1""#),
            (r#""doc"."table1""#, r#""doc"."table1""#),
            ("doc.my-table", r#""doc"."my-table""#),
            ("doc.my-table-name_!@^", r#""doc"."my-table-name_!@^""#),
            ("  doc.t  ", r#""doc"."t""#),
            ("s.t.with.dots", r#""s"."t.with.dots""#),
            (r#""we.ird"."x""#, r#""we.ird"."x""#),
            (r#""a""b".c"#, r#""a""b"."c""#),
            (r#"doc."quoted.table""#, r#""doc"."quoted.table""#),
            (r#"doc."x""y""#, r#""doc"."x""y""#),
            ("doc.t; DROP TABLE x", r#""doc"."t; DROP TABLE x""#),
            (r"doc.back\slash", r#""doc"."back\slash""#),
            ("doc.täbelle_日本", r#""doc"."täbelle_日本""#),
            ("MySchema.MyTable", r#""MySchema"."MyTable""#),
            (r#""doc" . "t""#, r#""doc"."t""#),
        ];
        for (input, expected) in cases {
            let parsed = TableIdent::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(parsed.quoted(), *expected, "input {input:?}");
        }
    }

    #[test]
    fn rejects_malformed_names() {
        let cases: &[(&str, IdentError)] = &[
            ("", IdentError::Empty),
            ("   ", IdentError::Empty),
            (".t", IdentError::EmptySchema),
            ("doc.", IdentError::EmptyTable),
            (r#""doc"."#, IdentError::EmptyTable),
            (r#""unterminated"#, IdentError::UnterminatedQuote),
            (r#""a"x.b"#, IdentError::TrailingText("x.b".into())),
            (r#"doc."a"."b""#, IdentError::TooManyParts),
            ("do\"c.t", IdentError::StrayQuote),
            ("doc.t\u{0}x", IdentError::ControlCharacter),
            ("doc.t\nx", IdentError::ControlCharacter),
        ];
        for (input, expected) in cases {
            assert_eq!(
                TableIdent::parse(input).as_ref(),
                Err(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn edge_cases_that_parse() {
        // A single quoted part is a table in the default schema.
        assert_eq!(
            TableIdent::parse(r#""doc""#).unwrap().quoted(),
            r#""doc"."doc""#
        );
        // Surrounding whitespace, newlines included, is trimmed before parsing.
        assert_eq!(
            TableIdent::parse("doc.t\n").unwrap().quoted(),
            r#""doc"."t""#
        );
    }

    #[test]
    fn single_identifiers() {
        assert_eq!(parse_single_ident("day").unwrap(), "day");
        assert_eq!(parse_single_ident(r#""Day ""1""""#).unwrap(), r#"Day "1""#);
        assert_eq!(
            parse_single_ident(r#""a"."b""#),
            Err(IdentError::TooManyParts)
        );
        assert_eq!(parse_single_ident(r#""""#), Err(IdentError::Empty));
        assert_eq!(
            parse_single_ident("x\u{7}"),
            Err(IdentError::ControlCharacter)
        );
    }

    #[test]
    fn plain_names_stay_unquoted_only_when_safe() {
        assert_eq!(TableIdent::new("sys", "jobs").sql(), "sys.jobs");
        assert_eq!(
            TableIdent::new("test", "test_sys_jobs").sql(),
            "test.test_sys_jobs"
        );
        assert_eq!(TableIdent::new("Sys", "jobs 2").sql(), r#""Sys"."jobs 2""#);
        assert_eq!(quote_ident_if_needed("1abc"), r#""1abc""#);
        assert_eq!(quote_ident_if_needed(""), r#""""#);
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_ident(""), r#""""#);
        assert_eq!(quote_ident("restore_backup_1"), r#""restore_backup_1""#);
    }

    #[test]
    fn too_long_parts_are_rejected() {
        let long = "x".repeat(256);
        assert_eq!(
            TableIdent::parse(&format!("doc.{long}")),
            Err(IdentError::TooLong)
        );
        assert!(TableIdent::parse(&format!("doc.{}", "x".repeat(255))).is_ok());
    }
}
