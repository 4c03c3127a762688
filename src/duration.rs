//! Durations as people read them in messages: `1d`, `2h30m`, `45s`, `1.5s`.

use std::time::Duration;

pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 60_000 {
        return if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{}s", d.as_secs_f64())
        };
    }
    let secs = d.as_secs();
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_person_writes_it() {
        for (ms, text) in [
            (4_000, "4s"),
            (1_500, "1.5s"),
            (90_000, "1m30s"),
            (86_400_000, "1d"),
            (9_000_000, "2h30m"),
        ] {
            assert_eq!(human(Duration::from_millis(ms)), text);
        }
    }
}
