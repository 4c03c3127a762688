//! The pure parts of the kubectl plugin `kubectl-cratedb_restore` (binary in `plugin/`): how a
//! `status.restore` is shown as text, JSON and a progress bar, how a restore request file becomes
//! a dry-run patch, how the API server's `Warning` headers are read, and which exit code a result
//! maps to. Nothing here talks to Kubernetes, so all of it is unit-tested.

pub mod bar;
pub mod dry_run;
pub mod exit;
pub mod render;
pub mod request;
pub mod warning;

/// A duration as kubectl writes them: `90`, `90s`, `5m`, `1h30m`, `1.5s` (a bare number is
/// seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration (write 30s, 5m, 1h30m)");
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds >= 0.0 && seconds.is_finite())
            .then(|| std::time::Duration::from_secs_f64(seconds))
            .ok_or_else(bad);
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                0.001
            }
            ('h', _) => 3600.0,
            ('m', _) => 60.0,
            ('s', _) => 1.0,
            _ => return Err(bad()),
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        total += value * unit;
        number.clear();
        any = true;
    }
    if !number.is_empty() || !any {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_as_kubectl_writes_them() {
        for (text, ms) in [
            ("90", 90_000),
            ("1.5", 1_500),
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("2m3s", 123_000),
        ] {
            assert_eq!(
                super::parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in ["", "m", "5x", "5m3", "-1", "abc"] {
            assert!(super::parse_duration(bad).is_err(), "{bad}");
        }
    }
}
