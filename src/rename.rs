//! Restoring under other names (SPEC A27): CrateDB's `schema_rename_pattern` /
//! `schema_rename_replacement` and `table_rename_pattern` / `table_rename_replacement`.
//!
//! CrateDB applies them with Java's `String.replaceAll(pattern, replacement)` to the schema and
//! the table name of every restored relation. To know the target names before the restore (for
//! conflicts, the plan and the completion check) the product evaluates them itself, so it only
//! accepts the part of Java's regex dialect whose meaning is the same here: literals, `.`,
//! character classes, groups, alternation, greedy and lazy quantifiers, `^` and `$`, and the
//! ASCII classes `\d \w \s` (and their negations). Everything else — back references,
//! lookaround, possessive quantifiers, inline flags, named groups, `\p{…}`, `\Q…\E`, POSIX or
//! nested classes, boundaries — and any pattern that can match the empty string (Java and Rust
//! disagree on where empty matches repeat) is refused with the construct named. Pure.

use std::fmt;

/// CrateDB's defaults: the whole name, unchanged.
pub const DEFAULT_PATTERN: &str = "(.+)";
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// A validated pattern: the text CrateDB receives and an equivalent matcher.
#[derive(Clone)]
pub struct Pattern {
    java: String,
    matcher: regex::Regex,
    groups: usize,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.java).finish()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.java == other.java
    }
}

/// One piece of a replacement, as Java's `Matcher.appendReplacement` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Group(usize),
}

/// A validated replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    java: String,
    pieces: Vec<Piece>,
}

/// One rename rule (schema or table): pattern and replacement, both validated together.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub pattern: Pattern,
    pub replacement: Replacement,
}

/// Both rules of a restore; CrateDB applies neither when all four values are its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Rename {
    pub schema: Rule,
    pub table: Rule,
}

impl Pattern {
    pub fn parse(java: &str) -> Result<Self, String> {
        let (translated, groups) = translate(java)?;
        let matcher = regex::Regex::new(&translated)
            .map_err(|e| format!("is not a valid regular expression: {e}"))?;
        if matcher.is_match("") {
            return Err(
                "can match an empty name; make it match at least one character (for example (.+) instead of (.*))"
                    .into(),
            );
        }
        Ok(Self {
            java: java.to_string(),
            matcher,
            groups,
        })
    }

    /// The pattern as CrateDB receives it.
    pub fn as_java(&self) -> &str {
        &self.java
    }

    pub fn groups(&self) -> usize {
        self.groups
    }
}

impl Replacement {
    /// Reads a replacement the way Java does for a pattern with `groups` capture groups: `$n`
    /// takes as many digits as still name a group, `\x` is a literal `x`.
    pub fn parse(java: &str, groups: usize) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = java.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped) => text.push(escaped),
                    None => return Err("ends with a lone \\; write \\\\ for a backslash".into()),
                },
                '$' => {
                    let Some(first) = chars.peek().and_then(|d| d.to_digit(10)) else {
                        return Err(match chars.peek() {
                            Some('{') => "uses a named group (${name}); only numbered groups ($1) are supported".into(),
                            _ => "has a $ without a group number; write \\$ for a dollar sign".into(),
                        });
                    };
                    chars.next();
                    let mut group = first as usize;
                    if group > groups {
                        return Err(format!(
                            "refers to group ${group}, but the pattern has {}",
                            plural_groups(groups)
                        ));
                    }
                    while let Some(next) = chars.peek().and_then(|d| d.to_digit(10)) {
                        let longer = group * 10 + next as usize;
                        if longer > groups {
                            break;
                        }
                        group = longer;
                        chars.next();
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Group(group));
                }
                other => text.push(other),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self {
            java: java.to_string(),
            pieces,
        })
    }

    /// The replacement as CrateDB receives it.
    pub fn as_java(&self) -> &str {
        &self.java
    }
}

fn plural_groups(n: usize) -> String {
    match n {
        0 => "no groups".into(),
        1 => "1 group".into(),
        n => format!("{n} groups"),
    }
}

impl Rule {
    /// Validates a pair; a missing half takes CrateDB's default.
    pub fn parse(pattern: Option<&str>, replacement: Option<&str>) -> Result<Self, RuleError> {
        let pattern =
            Pattern::parse(pattern.unwrap_or(DEFAULT_PATTERN)).map_err(RuleError::Pattern)?;
        let replacement =
            Replacement::parse(replacement.unwrap_or(DEFAULT_REPLACEMENT), pattern.groups())
                .map_err(RuleError::Replacement)?;
        Ok(Self {
            pattern,
            replacement,
        })
    }

    fn is_default(&self) -> bool {
        self.pattern.java == DEFAULT_PATTERN && self.replacement.java == DEFAULT_REPLACEMENT
    }

    /// Java's `name.replaceAll(pattern, replacement)`.
    pub fn apply(&self, name: &str) -> String {
        self.pattern
            .matcher
            .replace_all(name, |caps: &regex::Captures<'_>| {
                self.replacement
                    .pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Text(t) => t.as_str(),
                        Piece::Group(g) => caps.get(*g).map_or("", |m| m.as_str()),
                    })
                    .collect::<String>()
            })
            .into_owned()
    }
}

/// Which half of a rule is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    Pattern(String),
    Replacement(String),
}

impl Rename {
    /// Whether CrateDB renames at all (it skips renaming when all four values are defaults).
    pub fn renames(&self) -> bool {
        !(self.schema.is_default() && self.table.is_default())
    }

    /// The name a relation gets.
    pub fn target(&self, schema: &str, table: &str) -> (String, String) {
        if !self.renames() {
            return (schema.to_string(), table.to_string());
        }
        (self.schema.apply(schema), self.table.apply(table))
    }

    /// `schema_rename_pattern = '…', …` for the RESTORE's `WITH`, only the non-default values
    /// (CrateDB fills the others with the same defaults).
    pub fn parameters(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        for (name, value, default) in [
            (
                "schema_rename_pattern",
                self.schema.pattern.as_java(),
                DEFAULT_PATTERN,
            ),
            (
                "schema_rename_replacement",
                self.schema.replacement.as_java(),
                DEFAULT_REPLACEMENT,
            ),
            (
                "table_rename_pattern",
                self.table.pattern.as_java(),
                DEFAULT_PATTERN,
            ),
            (
                "table_rename_replacement",
                self.table.replacement.as_java(),
                DEFAULT_REPLACEMENT,
            ),
        ] {
            if value != default {
                out.push((name, value));
            }
        }
        out
    }
}

/// Checks `java` against the accepted subset and writes the equivalent Rust pattern; returns it
/// with the number of capture groups.
fn translate(java: &str) -> Result<(String, usize), String> {
    if java.is_empty() {
        return Err("is empty".into());
    }
    let refuse = |what: &str| Err(format!("uses {what}, which is not supported"));
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::new();
    let mut groups = 0usize;
    let mut depth = 0usize;
    let mut i = 0;
    // Whether the previous token can take a quantifier (and a quantifier was just written).
    let mut quantifiable = false;
    let mut after_quantifier = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("ends with a lone \\".into());
                };
                i += 2;
                out.push_str(&match e {
                    'd' => "[0-9]".to_string(),
                    'D' => "[^0-9]".to_string(),
                    'w' => "[a-zA-Z_0-9]".to_string(),
                    'W' => "[^a-zA-Z_0-9]".to_string(),
                    's' => "[ \\t\\n\\x0B\\f\\r]".to_string(),
                    'S' => "[^ \\t\\n\\x0B\\f\\r]".to_string(),
                    't' => "\\t".to_string(),
                    'n' => "\\n".to_string(),
                    '1'..='9' => return refuse("a back reference"),
                    'Q' | 'E' => return refuse("quoting (\\Q…\\E)"),
                    'p' | 'P' => return refuse("a Unicode property class (\\p{…})"),
                    'b' | 'B' | 'A' | 'z' | 'Z' | 'G' => return refuse("a boundary matcher"),
                    e if e.is_ascii_alphanumeric() => {
                        return Err(format!("uses the escape \\{e}, which is not supported"));
                    }
                    e => regex::escape(&e.to_string()),
                });
                quantifiable = true;
                after_quantifier = false;
            }
            '[' => {
                let (class, next) = class(&chars, i)?;
                out.push_str(&class);
                i = next;
                quantifiable = true;
                after_quantifier = false;
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    match chars.get(i + 2) {
                        Some(':') => {
                            out.push_str("(?:");
                            i += 3;
                        }
                        Some('=' | '!') => return refuse("lookahead"),
                        Some('<') if matches!(chars.get(i + 3), Some('=' | '!')) => {
                            return refuse("lookbehind");
                        }
                        Some('<') => return refuse("a named group"),
                        Some('>') => return refuse("an atomic group"),
                        _ => return refuse("inline flags"),
                    }
                } else {
                    groups += 1;
                    out.push('(');
                    i += 1;
                }
                depth += 1;
                quantifiable = false;
                after_quantifier = false;
            }
            ')' => {
                if depth == 0 {
                    return Err("has a ) without its (".into());
                }
                depth -= 1;
                out.push(')');
                i += 1;
                quantifiable = true;
                after_quantifier = false;
            }
            '*' | '+' | '?' | '{' => {
                if c == '?' && after_quantifier {
                    // Lazy quantifier: the same in both dialects.
                    out.push('?');
                    i += 1;
                    after_quantifier = false;
                    quantifiable = false;
                    continue;
                }
                if c == '+' && after_quantifier {
                    return refuse("a possessive quantifier");
                }
                if !quantifiable {
                    return Err(format!("has a quantifier {c} with nothing to repeat"));
                }
                if c == '{' {
                    let end = chars[i..]
                        .iter()
                        .position(|&x| x == '}')
                        .map(|p| p + i)
                        .ok_or("has a { without its }")?;
                    let body: String = chars[i + 1..end].iter().collect();
                    let valid = !body.is_empty()
                        && body.split(',').count() <= 2
                        && body.split(',').enumerate().all(|(n, part)| {
                            part.chars().all(|d| d.is_ascii_digit()) && (n == 1 || !part.is_empty())
                        });
                    if !valid {
                        return Err(format!("has a malformed repetition {{{body}}}"));
                    }
                    out.push_str(&format!("{{{body}}}"));
                    i = end + 1;
                } else {
                    out.push(c);
                    i += 1;
                }
                quantifiable = false;
                after_quantifier = true;
            }
            '|' | '^' | '$' => {
                out.push(c);
                i += 1;
                quantifiable = false;
                after_quantifier = false;
            }
            '.' => {
                out.push('.');
                i += 1;
                quantifiable = true;
                after_quantifier = false;
            }
            other => {
                out.push_str(&regex::escape(&other.to_string()));
                i += 1;
                quantifiable = true;
                after_quantifier = false;
            }
        }
    }
    if depth != 0 {
        return Err("has a ( without its )".into());
    }
    Ok((out, groups))
}

/// A character class `[…]` starting at `start`: plain members, ranges and the escapes `\d \w
/// \s`; returns it in Rust syntax and the index after its `]`.
fn class(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut out = String::from("[");
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("has a [ without its ]".into());
        };
        match c {
            ']' if !first => return Ok((out + "]", i + 1)),
            '[' => {
                return Err(
                    "uses a nested or POSIX character class, which is not supported".into(),
                );
            }
            '&' if chars.get(i + 1) == Some(&'&') => {
                return Err("uses a class intersection (&&), which is not supported".into());
            }
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("ends with a lone \\".into());
                };
                out.push_str(match e {
                    'd' => "0-9",
                    'w' => "a-zA-Z_0-9",
                    's' => " \\t\\n\\x0B\\f\\r",
                    'D' | 'W' | 'S' | 'p' | 'P' | 'Q' | 'E' => {
                        return Err(format!(
                            "uses \\{e} inside a character class, which is not supported"
                        ));
                    }
                    _ => "",
                });
                if !matches!(e, 'd' | 'w' | 's') {
                    if e.is_ascii_alphanumeric() {
                        return Err(format!("uses the escape \\{e}, which is not supported"));
                    }
                    out.push_str(&regex::escape(&e.to_string()));
                }
                i += 2;
            }
            '-' => {
                out.push('-');
                i += 1;
            }
            other => {
                out.push_str(&regex::escape(&other.to_string()));
                i += 1;
            }
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, replacement: &str) -> Rule {
        Rule::parse(Some(pattern), Some(replacement)).unwrap()
    }

    #[test]
    fn applies_like_java_replace_all() {
        // Expected values are what Java's "name".replaceAll(pattern, replacement) gives.
        let cases = [
            ("(.+)", "restored_$1", "orders", "restored_orders"),
            ("doc", "archive", "doc", "archive"),
            ("doc", "archive", "mydoc_doc", "myarchive_archive"),
            ("^doc$", "archive", "mydoc", "mydoc"),
            ("(\\w+)_(\\d+)", "$2_$1", "events_2024", "2024_events"),
            ("o", "0", "foo", "f00"),
            ("(.+?)s", "$1", "orders", "order"),
            ("[a-c]+", "X", "abcdcba", "XdX"),
            ("e.ents", "x\\$1", "events", "x$1"),
            (
                "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)",
                "$10-$11",
                "abcdefghij",
                "j-a1",
            ),
        ];
        for (pattern, replacement, name, expected) in cases {
            assert_eq!(
                rule(pattern, replacement).apply(name),
                expected,
                "{name}.replaceAll({pattern:?}, {replacement:?})"
            );
        }
        // \w is ASCII in Java: a letter outside it is not a word character.
        assert_eq!(rule("\\w+", "x").apply("täble"), "xäx");
    }

    #[test]
    fn refuses_what_java_and_this_evaluator_would_read_differently() {
        for (pattern, why) in [
            ("(a)\\1", "a back reference"),
            ("a(?=b)", "lookahead"),
            ("(?<=a)b", "lookbehind"),
            ("(?<name>a)", "a named group"),
            ("(?i)doc", "inline flags"),
            ("a++", "a possessive quantifier"),
            ("\\bdoc", "a boundary matcher"),
            ("\\p{L}+", "a Unicode property class"),
            ("[[:alpha:]]", "nested or POSIX character class"),
            ("[a-z&&[^x]]", "class intersection"),
            ("\\Qa.b\\E", "quoting"),
            (".*", "can match an empty name"),
            ("x*", "can match an empty name"),
            ("(a", "( without its )"),
            ("a)", ") without its ("),
            ("*a", "nothing to repeat"),
            ("a{2,x}", "malformed repetition"),
            ("", "is empty"),
        ] {
            let err = Pattern::parse(pattern).unwrap_err();
            assert!(err.contains(why), "{pattern:?}: {err}");
        }
    }

    #[test]
    fn replacements_only_name_existing_groups() {
        let err = Rule::parse(Some("(a)"), Some("$2")).unwrap_err();
        assert_eq!(
            err,
            RuleError::Replacement("refers to group $2, but the pattern has 1 group".into())
        );
        let err = Rule::parse(Some("doc"), None).unwrap_err();
        assert_eq!(
            err,
            RuleError::Replacement("refers to group $1, but the pattern has no groups".into())
        );
        assert!(matches!(
            Rule::parse(None, Some("${x}")),
            Err(RuleError::Replacement(m)) if m.contains("named group")
        ));
        assert!(matches!(
            Rule::parse(None, Some("a$")),
            Err(RuleError::Replacement(m)) if m.contains("\\$")
        ));
        assert!(matches!(
            Rule::parse(None, Some("a\\")),
            Err(RuleError::Replacement(m)) if m.contains("lone")
        ));
    }

    #[test]
    fn defaults_rename_nothing_and_send_nothing() {
        let rename = Rename {
            schema: Rule::parse(None, None).unwrap(),
            table: Rule::parse(None, None).unwrap(),
        };
        assert!(!rename.renames());
        assert!(rename.parameters().is_empty());
        let rename = Rename {
            schema: Rule::parse(None, Some("restored")).unwrap(),
            table: Rule::parse(None, None).unwrap(),
        };
        assert_eq!(
            rename.target("doc", "orders"),
            ("restored".to_string(), "orders".to_string())
        );
        assert_eq!(
            rename.parameters(),
            [("schema_rename_replacement", "restored")]
        );
    }
}
