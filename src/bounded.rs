//! Size caps for everything a run writes for people (SPEC A28): status fields, step messages,
//! Events, notifications and log lines stay bounded whatever the size of the restore. A list
//! keeps its first few items and says how many it left out; a text keeps its beginning and says
//! how much it cut. Pure.

use serde::Serialize;

/// Items a list in `status.restore` or a message shows before "and N more".
pub const LIST_ITEMS: usize = 10;
/// Bytes a list in `status.restore` may take, whatever its items' size (names of 255
/// characters, long partition values).
pub const LIST_BYTES: usize = 2 * 1024;
/// A step message, condition message or the run's message in `status.restore`.
pub const MESSAGE_BYTES: usize = 2 * 1024;
/// An Event's note (the API server accepts 1 KiB for `events.k8s.io` notes).
pub const EVENT_BYTES: usize = 1024;
/// A notification's message.
pub const NOTIFICATION_BYTES: usize = 4 * 1024;
/// A value shown in a log line (a statement, a message); the whole line stays under 8 KiB.
pub const LOG_VALUE_BYTES: usize = 4 * 1024;

/// `text` cut to at most `max` bytes (at a character boundary), ending in a note of how much
/// was cut when it was.
pub fn text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    // The note takes at most 32 bytes (" … (" + 20 digits + " more bytes)").
    let keep = floor_char_boundary(text, max.saturating_sub(32));
    format!("{} … ({} more bytes)", &text[..keep], text.len() - keep)
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The first items of a list, as many as fit in `max_items` and `max_bytes` of JSON, and the
/// whole list's length.
pub fn head<T: Serialize + Clone>(items: &[T], max_items: usize, max_bytes: usize) -> Vec<T> {
    let mut kept = Vec::new();
    let mut bytes = 0;
    for item in items.iter().take(max_items) {
        let size = serde_json::to_vec(item)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if bytes + size > max_bytes {
            break;
        }
        bytes += size + 1;
        kept.push(item.clone());
    }
    kept
}

/// `a, b, c and 9,997 more`: at most `max_items` names and `max_bytes` of text; `none` for an
/// empty list.
pub fn names<T: std::fmt::Display>(
    items: &[T],
    max_items: usize,
    max_bytes: usize,
    none: &str,
) -> String {
    join(items, ", ", max_items, max_bytes, none)
}

/// [`names`] with another separator (`; ` between messages that contain commas).
pub fn join<T: std::fmt::Display>(
    items: &[T],
    separator: &str,
    max_items: usize,
    max_bytes: usize,
    none: &str,
) -> String {
    if items.is_empty() {
        return none.to_string();
    }
    let mut out = String::new();
    let mut shown = 0;
    for item in items.iter().take(max_items) {
        let name = text(&item.to_string(), max_bytes / 2);
        if shown > 0 && out.len() + name.len() + separator.len() > max_bytes {
            break;
        }
        if shown > 0 {
            out.push_str(separator);
        }
        out.push_str(&name);
        shown += 1;
    }
    if shown < items.len() {
        out.push_str(&format!(" and {} more", count(items.len() - shown)));
    }
    out
}

/// The usual list in a message: ten names, 1 KiB.
pub fn short_list<T: std::fmt::Display>(items: &[T], none: &str) -> String {
    names(items, LIST_ITEMS, 1024, none)
}

/// `12,345`: counts in messages are read by people.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_stay_and_long_ones_say_what_was_cut() {
        assert_eq!(text("abc", 10), "abc");
        let long = "é".repeat(5000);
        let cut = text(&long, 1000);
        assert!(cut.len() <= 1000, "{}", cut.len());
        assert!(cut.ends_with("more bytes)"), "{cut}");
        assert!(cut.starts_with('é'));
    }

    #[test]
    fn lists_keep_their_head_and_count_the_rest() {
        let items: Vec<String> = (0..10_000).map(|i| format!("doc.t{i}")).collect();
        assert_eq!(
            short_list(&items, "none"),
            "doc.t0, doc.t1, doc.t2, doc.t3, doc.t4, doc.t5, doc.t6, doc.t7, doc.t8, doc.t9 and 9,990 more"
        );
        assert_eq!(short_list::<String>(&[], "no tables"), "no tables");
        assert_eq!(short_list(&items[..2], "none"), "doc.t0, doc.t1");
        // Names of 255 characters: fewer of them, still bounded.
        let long: Vec<String> = (0..100)
            .map(|i| format!("{i}{}", "x".repeat(255)))
            .collect();
        let shown = names(&long, 10, 1024, "none");
        assert!(shown.len() < 1100, "{}", shown.len());
        assert!(shown.ends_with("and 97 more"), "{shown}");
    }

    #[test]
    fn heads_are_bounded_by_items_and_bytes() {
        let items: Vec<String> = (0..100).map(|i| "y".repeat(i * 10)).collect();
        let kept = head(&items, 10, 200);
        let bytes: usize = kept.iter().map(|s| s.len() + 3).sum();
        assert!(bytes <= 200 && !kept.is_empty(), "{kept:?}");
        assert_eq!(head(&items[..3], 10, 10_000).len(), 3);
    }

    #[test]
    fn counts_are_grouped() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(100_000), "100,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
