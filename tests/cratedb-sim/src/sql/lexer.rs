//! Tokenizer for the CrateDB SQL subset.

use crate::error::SqlError;

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier or keyword. Unquoted identifiers are folded to lower case
    /// in `text`; `raw` keeps the original spelling (for keyword checks and
    /// error messages).
    Ident { text: String, quoted: bool },
    /// A single-quoted string literal with `''` unescaped.
    Str(String),
    /// A numeric literal as written.
    Num(String),
    /// `$n` (1-based as written).
    Param(usize),
    /// `?`
    QParam,
    /// Punctuation / operator.
    Sym(&'static str),
    /// End of input.
    Eof,
}

/// A token with its position (1-based line and column) and source text.
#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
    /// Byte offset of the token start in the statement text.
    pub start: usize,
    /// Byte offset one past the token end.
    pub end: usize,
    /// Source text of the token (`<EOF>` for the end).
    pub raw: String,
}

const SYMBOLS: &[&str] = &[
    "<>", "!=", "<=", ">=", "::", "||", "(", ")", ",", ".", ";", "=", "<", ">", "[", "]", "{", "}",
    "*", "+", "-", "/", "%", ":",
];

/// The text of the string literal or quoted identifier whose opening quote is at `*i`, where a
/// doubled quote stands for one; `*i` ends past the closing quote, and newlines inside advance
/// the line count. `None` when the input ends before the closing quote.
fn read_quoted(
    chars: &[(usize, char)],
    i: &mut usize,
    line: &mut usize,
    line_start: &mut usize,
) -> Option<String> {
    let quote = chars[*i].1;
    let mut text = String::new();
    *i += 1;
    loop {
        let ch = chars.get(*i)?.1;
        if ch == quote {
            if chars.get(*i + 1).map(|c| c.1) == Some(quote) {
                text.push(quote);
                *i += 2;
                continue;
            }
            *i += 1;
            return Some(text);
        }
        if ch == '\n' {
            *line += 1;
            *line_start = *i + 1;
        }
        text.push(ch);
        *i += 1;
    }
}

/// Split `sql` into tokens. The last token is always [`Tok::Eof`].
pub fn tokenize(sql: &str) -> Result<Vec<Token>, SqlError> {
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut line = 1usize;
    let mut line_start = 0usize; // char index of the first char of the line

    let byte_at = |idx: usize| -> usize { chars.get(idx).map(|c| c.0).unwrap_or(sql.len()) };

    while i < chars.len() {
        let c = chars[i].1;
        if c == '\n' {
            line += 1;
            i += 1;
            line_start = i;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // comments
        if c == '-' && chars.get(i + 1).map(|c| c.1) == Some('-') {
            while i < chars.len() && chars[i].1 != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1).map(|c| c.1) == Some('*') {
            i += 2;
            while i < chars.len()
                && !(chars[i].1 == '*' && chars.get(i + 1).map(|c| c.1) == Some('/'))
            {
                if chars[i].1 == '\n' {
                    line += 1;
                    line_start = i + 1;
                }
                i += 1;
            }
            i = (i + 2).min(chars.len());
            continue;
        }
        let tok_line = line;
        let tok_col = i - line_start + 1;
        let start = i;
        let tok = if c == '\'' {
            let Some(s) = read_quoted(&chars, &mut i, &mut line, &mut line_start) else {
                return Err(SqlError::syntax(format!(
                    "line {tok_line}:{tok_col}: mismatched input '{}' expecting <EOF>",
                    &sql[byte_at(start)..]
                )));
            };
            Tok::Str(s)
        } else if c == '"' {
            let Some(s) = read_quoted(&chars, &mut i, &mut line, &mut line_start) else {
                return Err(SqlError::syntax(format!(
                    "line {tok_line}:{tok_col}: token recognition error at: '{}'",
                    &sql[byte_at(start)..]
                )));
            };
            if s.is_empty() {
                return Err(SqlError::syntax(format!(
                    "line {tok_line}:{tok_col}: zero-length delimited identifier"
                )));
            }
            Tok::Ident {
                text: s,
                quoted: true,
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|c| c.1.is_ascii_digit()))
        {
            let mut s = String::new();
            while let Some(&(_, ch)) = chars.get(i) {
                if ch.is_ascii_digit() || ch == '.' {
                    s.push(ch);
                    i += 1;
                } else if (ch == 'e' || ch == 'E')
                    && chars
                        .get(i + 1)
                        .is_some_and(|c| c.1.is_ascii_digit() || c.1 == '-' || c.1 == '+')
                {
                    s.push(ch);
                    s.push(chars[i + 1].1);
                    i += 2;
                } else {
                    break;
                }
            }
            Tok::Num(s)
        } else if c == '$' && chars.get(i + 1).is_some_and(|c| c.1.is_ascii_digit()) {
            i += 1;
            let mut s = String::new();
            while let Some(&(_, ch)) = chars.get(i) {
                if ch.is_ascii_digit() {
                    s.push(ch);
                    i += 1;
                } else {
                    break;
                }
            }
            let n: usize = s.parse().unwrap_or(0);
            if n == 0 {
                return Err(SqlError::syntax(format!(
                    "line {tok_line}:{tok_col}: mismatched input '${s}' expecting parameter $1 or higher"
                )));
            }
            Tok::Param(n)
        } else if c == '?' {
            i += 1;
            Tok::QParam
        } else if c.is_alphabetic() || c == '_' {
            let mut s = String::new();
            while let Some(&(_, ch)) = chars.get(i) {
                if ch.is_alphanumeric() || ch == '_' || ch == '@' || ch == '$' {
                    s.push(ch);
                    i += 1;
                } else {
                    break;
                }
            }
            Tok::Ident {
                text: s.to_lowercase(),
                quoted: false,
            }
        } else {
            let rest: String = chars[i..].iter().take(2).map(|c| c.1).collect();
            match SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
                Some(sym) => {
                    i += sym.chars().count();
                    Tok::Sym(sym)
                }
                None => {
                    return Err(SqlError::syntax(format!(
                        "line {tok_line}:{tok_col}: token recognition error at: '{c}'"
                    )));
                }
            }
        };
        let (b0, b1) = (byte_at(start), byte_at(i));
        out.push(Token {
            tok,
            line: tok_line,
            col: tok_col,
            start: b0,
            end: b1,
            raw: sql[b0..b1].to_string(),
        });
    }
    let col = chars.len() - line_start + 1;
    out.push(Token {
        tok: Tok::Eof,
        line,
        col,
        start: sql.len(),
        end: sql.len(),
        raw: "<EOF>".to_string(),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<Tok> {
        tokenize(sql).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn folds_unquoted_and_keeps_quoted_identifiers() {
        let toks = kinds(r#"SeLeCt "Mixed""Case", plain FROM x"#);
        assert_eq!(
            toks[0],
            Tok::Ident {
                text: "select".into(),
                quoted: false
            }
        );
        assert_eq!(
            toks[1],
            Tok::Ident {
                text: "Mixed\"Case".into(),
                quoted: true
            }
        );
        assert_eq!(toks[2], Tok::Sym(","));
    }

    #[test]
    fn strings_params_numbers_and_positions() {
        let toks = tokenize("x = 'it''s' AND\n  y >= $12 -- c\n OR z <> 1.5e3 ?").unwrap();
        assert_eq!(toks[2].tok, Tok::Str("it's".into()));
        assert_eq!(toks[6].tok, Tok::Param(12));
        assert_eq!((toks[4].line, toks[4].col), (2, 3));
        assert_eq!(toks[9].tok, Tok::Sym("<>"));
        assert_eq!(toks[10].tok, Tok::Num("1.5e3".into()));
        assert_eq!(toks[11].tok, Tok::QParam);
        assert_eq!(toks.last().unwrap().tok, Tok::Eof);
    }

    #[test]
    fn unterminated_string_is_a_syntax_error() {
        let err = tokenize("SELECT 'abc").unwrap_err();
        assert_eq!(err.sqlstate, "42601");
        assert!(err.rejected);
    }

    #[test]
    fn unterminated_identifier_is_a_syntax_error_and_newlines_in_quotes_count() {
        let err = tokenize(r#"SELECT "abc"#).unwrap_err();
        assert_eq!(err.sqlstate, "42601");
        assert!(err.message.contains("token recognition error"), "{err:?}");
        let toks = tokenize("SELECT \"a\nb\", 'c\nd' x").unwrap();
        assert_eq!(
            (toks[3].line, toks[3].col),
            (2, 5),
            "the string after the identifier"
        );
        assert_eq!(
            (toks[4].line, toks[4].col),
            (3, 4),
            "the identifier after the string"
        );
    }
}
