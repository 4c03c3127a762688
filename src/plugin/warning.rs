//! The HTTP `Warning` header (RFC 7234 §5.5), which is how the API server hands admission
//! webhook warnings to a client: one header per warning, `299 - "text"`, the text a
//! quoted-string with `\"` and `\\` escapes. kube's `Api` drops response headers, so the plugin
//! reads them itself and parses them here, as client-go does (only code 299 is a Kubernetes
//! warning).

/// One warn-value: `code agent "text" ["date"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub code: u16,
    pub agent: String,
    pub text: String,
}

/// Every warn-value of one header value (a sender may join several with commas).
pub fn parse(header: &str) -> Result<Vec<Warning>, String> {
    let mut rest = header;
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Ok(out);
        }
        let (code, after) = rest
            .split_at_checked(3)
            .filter(|(c, _)| c.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("no 3-digit warn-code at {rest:?}"))?;
        let after = after
            .strip_prefix(' ')
            .ok_or_else(|| format!("no space after warn-code {code}"))?;
        let (agent, after) = after
            .split_once(' ')
            .ok_or_else(|| format!("no warn-text after warn-agent {after:?}"))?;
        let (text, after) = quoted_string(after)?;
        rest = after;
        // An optional warn-date (a quoted HTTP-date) follows after one space.
        if let Some(date) = rest.strip_prefix(" \"") {
            rest = quoted_string(&rest[1..])
                .map(|(_, after)| after)
                .map_err(|e| format!("bad warn-date {date:?}: {e}"))?;
        }
        out.push(Warning {
            code: code.parse().expect("three digits"),
            agent: agent.to_string(),
            text,
        });
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if !trimmed.is_empty() && !trimmed.starts_with(',') {
            return Err(format!("unexpected {trimmed:?} after a warn-value"));
        }
        rest = trimmed;
    }
}

/// `"…"` at the start of `input`: the unescaped text and what follows the closing quote.
fn quoted_string(input: &str) -> Result<(String, &str), String> {
    let body = input
        .strip_prefix('"')
        .ok_or_else(|| format!("expected a quoted string at {input:?}"))?;
    let mut text = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((text, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) => text.push(escaped),
                None => break,
            },
            c => text.push(c),
        }
    }
    Err(format!("unterminated quoted string {input:?}"))
}

/// The texts of the Kubernetes warnings (code 299) in `headers`, the raw values of every
/// `Warning` header in order. A header that cannot be parsed is kept whole, so nothing the
/// server said is lost.
pub fn kubernetes_warnings<'a>(headers: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    let mut texts = Vec::new();
    for raw in headers {
        let value = String::from_utf8_lossy(raw);
        match parse(&value) {
            Ok(warnings) => texts.extend(
                warnings
                    .into_iter()
                    .filter(|w| w.code == 299)
                    .map(|w| w.text),
            ),
            Err(_) => texts.push(value.into_owned()),
        }
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_servers_form_with_escapes() {
        let header = r#"299 - "planned: RESTORE SNAPSHOT \"restore_backup_x\".\"snap\" ALL WITH (wait_for_completion = false)""#;
        assert_eq!(
            parse(header).unwrap(),
            [Warning {
                code: 299,
                agent: "-".into(),
                text: r#"planned: RESTORE SNAPSHOT "restore_backup_x"."snap" ALL WITH (wait_for_completion = false)"#.into()
            }]
        );
        assert_eq!(parse(r#"299 - "a \\ b""#).unwrap()[0].text, r"a \ b");
    }

    #[test]
    fn several_values_dates_and_commas_inside_texts() {
        let header = r#"299 - "one, two", 110 proxy:8080 "stale" "Wed, 21 Oct 2015 07:28:00 GMT" ,299 - "three""#;
        let parsed = parse(header).unwrap();
        let texts: Vec<_> = parsed.iter().map(|w| (w.code, w.text.as_str())).collect();
        assert_eq!(texts, [(299, "one, two"), (110, "stale"), (299, "three")]);
        assert_eq!(parsed[1].agent, "proxy:8080");
        assert_eq!(parse("").unwrap(), []);
    }

    #[test]
    fn malformed_values_are_errors() {
        for bad in [
            "29 - \"x\"",
            "299 -",
            "299 - x",
            "299 - \"unterminated",
            "299 - \"x\" junk",
            "abc - \"x\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_kubernetes_warnings_and_nothing_lost() {
        let headers: [&[u8]; 4] = [
            br#"299 - "first""#,
            br#"199 - "not kubernetes""#,
            b"garbage",
            "299 - \"caf\u{e9}\"".as_bytes(),
        ];
        assert_eq!(
            kubernetes_warnings(headers),
            ["first", "garbage", "caf\u{e9}"]
        );
    }
}
