//! Java's `String.replaceAll(regex, replacement)`, which CrateDB applies to the schema and the
//! table name of every restored relation when `RESTORE SNAPSHOT` gets rename options
//! (`RestoreService.applyRenameToIndices` up to 6.0, `applyRenameToRelation` from 6.1).
//!
//! The pattern is matched with the `regex` crate after a translation that keeps Java's meaning;
//! whatever the translation cannot carry over faithfully is refused with
//! [`ReplaceError::NotModelled`] instead of producing a name CrateDB would not produce:
//!
//! * modelled: literals (escaped metacharacters too), `.`, classes `[a-z_]` / `[^…]` with ranges
//!   and `\d \w \s` inside, `\d \D \w \W \s \S` (ASCII, as in Java without flags), `\t \n \r
//!   \f \e \a \xhh \uhhhh`, capturing groups, `(?:…)`, `|`, greedy and lazy `* + ? {n} {n,}
//!   {n,m}`, `^`, `$`; empty matches advance as in Java's `Matcher.find`;
//! * refused: back references, lookaround, named and atomic groups, inline flags, possessive
//!   quantifiers, `\b \B \A \G \Z \z \R \h \H \v \V \X \p{…} \Q…\E \0… \c… \x{…} \N{…} \k<…>`,
//!   nested classes and `&&`, a class starting with `]`, a repeated group that can match the
//!   empty string, anything Java would reject as a syntax error (`PatternSyntaxException`, whose
//!   texts are not modelled), names containing line terminators (where Java's `.` and `$`
//!   differ) and, for patterns that can match the empty string, names outside the Basic
//!   Multilingual Plane (Java steps over UTF-16 units there).
//!
//! The replacement is read per match exactly as `Matcher.appendReplacement` (JDK 21) reads it,
//! with its `IllegalArgumentException` / `IndexOutOfBoundsException` texts; like Java it is only
//! read when the pattern matches.

/// A translated pattern.
#[derive(Debug, Clone)]
pub struct JavaPattern {
    java: String,
    regex: regex::Regex,
    groups: usize,
    matches_empty: bool,
}

/// Why a replacement produced no name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceError {
    /// Java throws this exception (simple class name) with this message.
    Java {
        exception: &'static str,
        message: String,
    },
    /// Outside what the simulator evaluates faithfully; the text names the construct.
    NotModelled(String),
}

fn refuse<T>(what: impl Into<String>) -> Result<T, String> {
    Err(what.into())
}

/// Java's line terminators (without `UNIX_LINES`): where its `.` stops and before which `$`
/// also matches.
fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

const SPACE_CLASS: &str = r" \t\n\x0B\x0C\r";

/// `\t \n \r \f \e \a \xhh \uhhhh` (Java's literal escapes the simulator models) at `chars[i]`
/// (the character after the backslash): the character and how many characters it used.
fn literal_escape(chars: &[char], i: usize) -> Result<Option<(char, usize)>, String> {
    let hex = |from: usize, n: usize| -> Result<char, String> {
        let digits: String = chars
            .get(from..from + n)
            .unwrap_or_default()
            .iter()
            .collect();
        if digits.len() != n || !digits.chars().all(|d| d.is_ascii_hexdigit()) {
            return refuse(format!("the malformed escape \\{}", chars[i]));
        }
        let code = u32::from_str_radix(&digits, 16).expect("hex digits");
        char::from_u32(code).ok_or_else(|| format!("the surrogate escape \\u{digits}"))
    };
    Ok(Some(match chars[i] {
        't' => ('\t', 1),
        'n' => ('\n', 1),
        'r' => ('\r', 1),
        'f' => ('\u{0C}', 1),
        'e' => ('\u{1B}', 1),
        'a' => ('\u{07}', 1),
        'x' if chars.get(i + 1) == Some(&'{') => return refuse("the escape \\x{…}"),
        'x' => (hex(i + 1, 2)?, 3),
        'u' => (hex(i + 1, 4)?, 5),
        _ => return Ok(None),
    }))
}

fn escaped(c: char) -> String {
    regex::escape(&c.to_string())
}

/// One `[…]` starting at `chars[start]`; returns the Rust class and the index after `]`.
fn class(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut out = String::from("[");
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        return refuse("a character class starting with ]");
    }
    // A single character of the class at `i`: Some((char, next)) or None for a set (`\d`).
    let single = |i: usize| -> Result<(Option<char>, String, usize), String> {
        match chars.get(i) {
            None => refuse("an unclosed character class"),
            Some('[') => refuse("a nested character class"),
            Some('&') if chars.get(i + 1) == Some(&'&') => refuse("a class intersection (&&)"),
            Some('\\') => {
                let Some(&e) = chars.get(i + 1) else {
                    return refuse("a pattern ending in \\");
                };
                match e {
                    'd' => Ok((None, "0-9".into(), i + 2)),
                    'w' => Ok((None, "a-zA-Z_0-9".into(), i + 2)),
                    's' => Ok((None, SPACE_CLASS.into(), i + 2)),
                    e if e.is_ascii_alphanumeric() => match literal_escape(chars, i + 1)? {
                        Some((c, used)) => Ok((Some(c), escaped(c), i + 1 + used)),
                        None => refuse(format!("the escape \\{e} inside a character class")),
                    },
                    e => Ok((Some(e), escaped(e), i + 2)),
                }
            }
            Some(&c) => Ok((Some(c), escaped(c), i + 1)),
        }
    };
    loop {
        if chars.get(i) == Some(&']') {
            out.push(']');
            return Ok((out, i + 1));
        }
        let (first, text, next) = single(i)?;
        let is_range = chars.get(next) == Some(&'-')
            && chars.get(next + 1).is_some_and(|c| *c != ']')
            && first.is_some();
        if is_range {
            let (last, last_text, after) = single(next + 1)?;
            let (Some(a), Some(b)) = (first, last) else {
                return refuse("a character range ending in a class");
            };
            if a > b {
                return refuse(format!("the illegal character range {a}-{b}"));
            }
            out.push_str(&format!("{text}-{last_text}"));
            i = after;
        } else {
            out.push_str(&text);
            i = next;
        }
    }
}

/// What the previous element was, for quantifiers.
#[derive(Clone, Copy, PartialEq)]
enum Prev {
    /// Nothing to repeat (start, `(`, `|`, an anchor).
    Nothing,
    /// A single atom (literal, class, `.`).
    Atom,
    /// A group whose translated body starts at this index of the output.
    Group(usize),
    /// A quantifier was just written (a `?` may make it lazy).
    Quantifier,
    /// A lazy marker was just written.
    Lazy,
}

fn translate(java: &str) -> Result<(String, usize), String> {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::new();
    let mut groups = 0usize;
    // Output positions where each open group's body starts.
    let mut open: Vec<usize> = Vec::new();
    let mut prev = Prev::Nothing;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return refuse("a pattern ending in \\ (a Java syntax error)");
                };
                let piece = match e {
                    'd' => "[0-9]".to_string(),
                    'D' => "[^0-9]".to_string(),
                    'w' => "[a-zA-Z_0-9]".to_string(),
                    'W' => "[^a-zA-Z_0-9]".to_string(),
                    's' => format!("[{SPACE_CLASS}]"),
                    'S' => format!("[^{SPACE_CLASS}]"),
                    '1'..='9' => return refuse("a back reference"),
                    '0' => return refuse("an octal escape"),
                    'Q' | 'E' => return refuse("quoting (\\Q…\\E)"),
                    'p' | 'P' => return refuse("a Unicode property class (\\p{…})"),
                    'b' | 'B' | 'A' | 'G' | 'Z' | 'z' => return refuse("a boundary matcher"),
                    'k' => return refuse("a named back reference"),
                    e if e.is_ascii_alphanumeric() => match literal_escape(&chars, i + 1)? {
                        Some((lit, used)) => {
                            i += used - 1;
                            escaped(lit)
                        }
                        None => return refuse(format!("the escape \\{e}")),
                    },
                    e => escaped(e),
                };
                out.push_str(&piece);
                i += 2;
                prev = Prev::Atom;
            }
            '[' => {
                let (piece, next) = class(&chars, i)?;
                out.push_str(&piece);
                i = next;
                prev = Prev::Atom;
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    match chars.get(i + 2) {
                        Some(':') => i += 3,
                        Some('=' | '!') => return refuse("lookahead"),
                        Some('<') if matches!(chars.get(i + 3), Some('=' | '!')) => {
                            return refuse("lookbehind");
                        }
                        Some('<') => return refuse("a named group"),
                        Some('>') => return refuse("an atomic group"),
                        _ => return refuse("inline flags"),
                    }
                    out.push_str("(?:");
                } else {
                    groups += 1;
                    out.push('(');
                    i += 1;
                }
                open.push(out.len());
                prev = Prev::Nothing;
            }
            ')' => {
                let Some(body) = open.pop() else {
                    return refuse("an unmatched ) (a Java syntax error)");
                };
                out.push(')');
                i += 1;
                prev = Prev::Group(body);
            }
            '*' | '+' | '?' | '{' => {
                if c == '?' && prev == Prev::Quantifier {
                    out.push('?');
                    i += 1;
                    prev = Prev::Lazy;
                    continue;
                }
                if c == '+' && prev == Prev::Quantifier {
                    return refuse("a possessive quantifier");
                }
                let quantifier = if c == '{' {
                    let end = chars[i..]
                        .iter()
                        .position(|x| *x == '}')
                        .map(|p| p + i)
                        .ok_or("a { that is no repetition (a Java syntax error)")?;
                    let body: String = chars[i + 1..end].iter().collect();
                    let (low, high) = match body.split_once(',') {
                        None => (body.as_str(), Some(body.as_str())),
                        Some((low, "")) => (low, None),
                        Some((low, high)) => (low, Some(high)),
                    };
                    let number = |s: &str| {
                        (!s.is_empty() && s.chars().all(|d| d.is_ascii_digit()))
                            .then(|| s.parse::<u32>().ok())
                            .flatten()
                    };
                    let (Some(low), high) = (number(low), high.map(number)) else {
                        return refuse(format!("the repetition {{{body}}} (a Java syntax error)"));
                    };
                    if matches!(high, Some(None)) || high.flatten().is_some_and(|h| h < low) {
                        return refuse(format!("the repetition {{{body}}} (a Java syntax error)"));
                    }
                    i = end + 1;
                    format!("{{{body}}}")
                } else {
                    i += 1;
                    c.to_string()
                };
                match prev {
                    Prev::Atom => {}
                    Prev::Group(body) => {
                        let inner = &out[body..out.len() - 1];
                        let empty = regex::Regex::new(&format!("^(?:{inner})$"))
                            .map_err(|e| format!("a group the simulator cannot compile: {e}"))?;
                        if empty.is_match("") {
                            return refuse("a repeated group that can match the empty string");
                        }
                    }
                    Prev::Quantifier | Prev::Lazy => return refuse("a repeated quantifier"),
                    Prev::Nothing => {
                        return refuse(format!(
                            "a quantifier {c} with nothing to repeat (a Java syntax error)"
                        ));
                    }
                }
                out.push_str(&quantifier);
                prev = Prev::Quantifier;
            }
            '|' | '^' | '$' => {
                out.push(c);
                i += 1;
                prev = Prev::Nothing;
            }
            '.' => {
                out.push('.');
                i += 1;
                prev = Prev::Atom;
            }
            other => {
                out.push_str(&escaped(other));
                i += 1;
                prev = Prev::Atom;
            }
        }
    }
    if !open.is_empty() {
        return refuse("an unclosed group (a Java syntax error)");
    }
    Ok((out, groups))
}

impl JavaPattern {
    /// Translates a Java pattern; `Err` names the construct the simulator does not model.
    pub fn compile(java: &str) -> Result<JavaPattern, String> {
        let (rust, groups) = translate(java)?;
        let regex = regex::Regex::new(&rust)
            .map_err(|e| format!("a pattern the simulator cannot compile: {e}"))?;
        let matches_empty = regex.is_match("");
        Ok(JavaPattern {
            java: java.to_string(),
            regex,
            groups,
            matches_empty,
        })
    }

    /// `input.replaceAll(pattern, replacement)` as Java computes it.
    pub fn replace_all(&self, input: &str, replacement: &str) -> Result<String, ReplaceError> {
        if input.chars().any(is_line_terminator) {
            return Err(ReplaceError::NotModelled(format!(
                "renaming '{}', which contains a line terminator",
                input.escape_debug()
            )));
        }
        if self.matches_empty && input.chars().any(|c| c > '\u{FFFF}') {
            return Err(ReplaceError::NotModelled(format!(
                "the pattern '{}' (it can match the empty string) on '{input}', which has characters outside the Basic Multilingual Plane",
                self.java
            )));
        }
        let mut out = String::new();
        let mut appended = 0usize;
        let mut from = 0usize;
        // Matcher.find: the next search starts at the previous match's end, one character
        // further when that match was empty.
        while from <= input.len() {
            let Some(caps) = self.regex.captures_at(input, from) else {
                break;
            };
            let whole = caps.get(0).expect("group 0");
            out.push_str(&input[appended..whole.start()]);
            self.expand(&caps, replacement, &mut out)?;
            appended = whole.end();
            from = if whole.start() == whole.end() {
                match input[whole.end()..].chars().next() {
                    Some(c) => whole.end() + c.len_utf8(),
                    None => input.len() + 1,
                }
            } else {
                whole.end()
            };
        }
        out.push_str(&input[appended..]);
        Ok(out)
    }

    /// `Matcher.appendReplacement`'s reading of `replacement` for one match.
    fn expand(
        &self,
        caps: &regex::Captures<'_>,
        replacement: &str,
        out: &mut String,
    ) -> Result<(), ReplaceError> {
        let iae = |message: &str| ReplaceError::Java {
            exception: "IllegalArgumentException",
            message: message.to_string(),
        };
        let r: Vec<char> = replacement.chars().collect();
        let mut i = 0;
        while i < r.len() {
            match r[i] {
                '\\' => {
                    let Some(&c) = r.get(i + 1) else {
                        return Err(iae("character to be escaped is missing"));
                    };
                    out.push(c);
                    i += 2;
                }
                '$' => {
                    i += 1;
                    let Some(&next) = r.get(i) else {
                        return Err(iae("Illegal group reference: group index is missing"));
                    };
                    if next == '{' {
                        i += 1;
                        let mut name = String::new();
                        let mut last = next;
                        while let Some(&c) = r.get(i) {
                            last = c;
                            if c.is_ascii_alphanumeric() {
                                name.push(c);
                                i += 1;
                            } else {
                                break;
                            }
                        }
                        if name.is_empty() {
                            return Err(iae("named capturing group has 0 length name"));
                        }
                        if last != '}' {
                            return Err(iae("named capturing group is missing trailing '}'"));
                        }
                        if name.starts_with(|c: char| c.is_ascii_digit()) {
                            return Err(iae(&format!(
                                "capturing group name {{{name}}} starts with digit character"
                            )));
                        }
                        // Named groups are not modelled, so no pattern has one.
                        return Err(iae(&format!("No group with name {{{name}}}")));
                    }
                    let Some(first) = next.to_digit(10) else {
                        return Err(iae("Illegal group reference"));
                    };
                    i += 1;
                    let mut group = first as usize;
                    while let Some(d) = r.get(i).and_then(|c| c.to_digit(10)) {
                        let longer = group * 10 + d as usize;
                        if longer > self.groups {
                            break;
                        }
                        group = longer;
                        i += 1;
                    }
                    if group > self.groups {
                        return Err(ReplaceError::Java {
                            exception: "IndexOutOfBoundsException",
                            message: format!("No group {group}"),
                        });
                    }
                    if let Some(m) = caps.get(group) {
                        out.push_str(m.as_str());
                    }
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(pattern: &str, input: &str, replacement: &str) -> Result<String, ReplaceError> {
        JavaPattern::compile(pattern)
            .map_err(ReplaceError::NotModelled)?
            .replace_all(input, replacement)
    }

    fn ok(pattern: &str, input: &str, replacement: &str) -> String {
        replace(pattern, input, replacement).unwrap()
    }

    #[test]
    fn computes_what_java_computes() {
        // Each expected value is "input".replaceAll(pattern, replacement) on a JDK 21.
        assert_eq!(ok("(.+)", "orders", "$1"), "orders");
        assert_eq!(ok("(.+)", "orders", "restored_$1"), "restored_orders");
        assert_eq!(ok("(.+)", "doc", "archive"), "archive");
        assert_eq!(ok("doc", "mydoc_doc", "x"), "myx_x");
        assert_eq!(ok("^doc$", "mydoc", "x"), "mydoc");
        assert_eq!(ok("(\\w+)_(\\d+)", "events_2024", "$2_$1"), "2024_events");
        assert_eq!(ok("(.+?)s", "orders", "$1"), "order");
        assert_eq!(ok("[a-c]+", "abcdcba", "X"), "XdX");
        assert_eq!(ok("t", "t1", "\\$1"), "$11");
        assert_eq!(ok("(a)|(b)", "ab", "[$1$2]"), "[a][b]");
        // $11 is group 1 followed by "1" when there is no group 11.
        assert_eq!(ok("(a)", "a", "$11"), "a1");
        assert_eq!(
            ok("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)", "abcdefghijk", "$11$10"),
            "kj"
        );
        // Empty matches: Java finds one before every character and at the end, and one right
        // after a non-empty match.
        assert_eq!(ok("x*", "abc", "-"), "-a-b-c-");
        assert_eq!(ok("b*", "abc", "-"), "-a--c-");
        assert_eq!(ok("$", "t", "_copy"), "t_copy");
        assert_eq!(ok("^", "t", "old_"), "old_t");
        // ASCII classes, as Java without UNICODE_CHARACTER_CLASS.
        assert_eq!(ok("\\w+", "täble", "x"), "xäx");
        assert_eq!(ok("[\\d_]+", "t_2024", ""), "t");
        assert_eq!(ok("\\.", "a.b", "\\\\"), "a\\b");
        assert_eq!(ok("a{2,}", "aaaa_a", "b"), "b_a");
        assert_eq!(ok("\\u0074", "t", "u"), "u");
    }

    #[test]
    fn reads_replacements_like_java_and_only_on_a_match() {
        let java = |exception: &'static str, message: &str| {
            Err(ReplaceError::Java {
                exception,
                message: message.into(),
            })
        };
        assert_eq!(
            replace("(a)", "a", "$2"),
            java("IndexOutOfBoundsException", "No group 2")
        );
        assert_eq!(
            replace("a", "a", "$1"),
            java("IndexOutOfBoundsException", "No group 1")
        );
        assert_eq!(
            replace("a", "a", "x$"),
            java(
                "IllegalArgumentException",
                "Illegal group reference: group index is missing"
            )
        );
        assert_eq!(
            replace("a", "a", "$x"),
            java("IllegalArgumentException", "Illegal group reference")
        );
        assert_eq!(
            replace("a", "a", "x\\"),
            java(
                "IllegalArgumentException",
                "character to be escaped is missing"
            )
        );
        assert_eq!(
            replace("a", "a", "${name}"),
            java("IllegalArgumentException", "No group with name {name}")
        );
        assert_eq!(
            replace("a", "a", "${}"),
            java(
                "IllegalArgumentException",
                "named capturing group has 0 length name"
            )
        );
        assert_eq!(
            replace("a", "a", "${ab"),
            java(
                "IllegalArgumentException",
                "named capturing group is missing trailing '}'"
            )
        );
        assert_eq!(
            replace("a", "a", "${1a}"),
            java(
                "IllegalArgumentException",
                "capturing group name {1a} starts with digit character"
            )
        );
        // No match: the replacement is never read.
        assert_eq!(ok("zzz", "orders", "$9"), "orders");
        // A group that did not take part adds nothing.
        assert_eq!(ok("(a)?b", "b", "[$1]"), "[]");
    }

    #[test]
    fn refuses_what_it_cannot_evaluate_faithfully() {
        for (pattern, why) in [
            ("(a)\\1", "back reference"),
            ("a(?=b)", "lookahead"),
            ("(?<=a)b", "lookbehind"),
            ("(?<n>a)", "named group"),
            ("(?>a)", "atomic group"),
            ("(?i)doc", "inline flags"),
            ("a++", "possessive"),
            ("\\bdoc", "boundary"),
            ("\\p{L}", "Unicode property"),
            ("\\Qa\\E", "quoting"),
            ("[[a]]", "nested"),
            ("[a&&b]", "intersection"),
            ("[]a]", "starting with ]"),
            ("(a*)+", "repeated group that can match the empty string"),
            ("(a", "unclosed group"),
            ("a)", "unmatched )"),
            ("*a", "nothing to repeat"),
            ("a{x}", "repetition"),
            ("a{3,2}", "repetition"),
            ("\\h", "escape \\h"),
            ("[\\D]", "inside a character class"),
            ("a**", "repeated quantifier"),
        ] {
            let err = JavaPattern::compile(pattern).unwrap_err();
            assert!(err.contains(why), "{pattern:?}: {err}");
        }
        assert!(matches!(
            replace("(.+)", "a\nb", "$1"),
            Err(ReplaceError::NotModelled(m)) if m.contains("line terminator")
        ));
        assert!(matches!(
            replace("x*", "a😀", "-"),
            Err(ReplaceError::NotModelled(m)) if m.contains("Basic Multilingual Plane")
        ));
        assert_eq!(ok("(.+)", "a😀", "$1_"), "a😀_");
    }
}
