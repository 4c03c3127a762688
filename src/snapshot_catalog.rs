//! What can be restored (SPEC A30): a repository's snapshots, newest first, as people and
//! scripts read them, and which one `snapshot: latest` means — the newest `SUCCESS` snapshot
//! that holds everything the request names. Pure.

use serde_json::{Value, json};

use crate::{
    bounded,
    cratedb::queries::SnapshotInfo,
    plan::same_value,
    restore_type::{PartitionTarget, RestoreTarget},
    sql::TableIdent,
};

/// The snapshot name that asks for the newest fitting snapshot.
pub const LATEST: &str = "latest";

/// Newest first (by `started`; snapshots without a start time last, by name).
pub fn newest_first(mut snapshots: Vec<SnapshotInfo>) -> Vec<SnapshotInfo> {
    snapshots.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| a.name.cmp(&b.name)));
    snapshots
}

/// What of `target` a snapshot lacks (empty when it holds all of it).
pub fn lacks(snapshot: &SnapshotInfo, target: &RestoreTarget) -> Vec<String> {
    let tables: std::collections::HashSet<&TableIdent> = snapshot.tables.iter().collect();
    match target {
        RestoreTarget::Tables(wanted) => wanted
            .iter()
            .filter(|t| !tables.contains(t))
            .map(TableIdent::dotted)
            .collect(),
        RestoreTarget::Partitions(wanted) => wanted
            .iter()
            .filter(|p| !holds_partition(snapshot, p))
            .map(PartitionTarget::render)
            .collect(),
        // `all`, `metadata` and sections: any successful snapshot.
        _ => Vec::new(),
    }
}

fn holds_partition(snapshot: &SnapshotInfo, wanted: &PartitionTarget) -> bool {
    snapshot.tables.contains(&wanted.table)
        && (snapshot.partitions.is_empty()
            || snapshot
                .partitions
                .iter()
                .filter(|p| p.table == wanted.table)
                .any(|p| {
                    wanted
                        .columns
                        .iter()
                        .all(|(_, lit)| p.values.iter().any(|v| same_value(lit, v)))
                }))
}

/// `latest`: the newest `SUCCESS` snapshot that holds all of `target`; otherwise why none does,
/// for the newest few.
pub fn latest<'a>(
    snapshots: &'a [SnapshotInfo],
    target: &RestoreTarget,
) -> Result<&'a SnapshotInfo, String> {
    let ordered = newest_first(snapshots.to_vec());
    if let Some(found) = ordered
        .iter()
        .find(|s| s.state.as_deref() == Some("SUCCESS") && lacks(s, target).is_empty())
    {
        return Ok(snapshots
            .iter()
            .find(|s| s.name == found.name)
            .expect("found among them"));
    }
    if ordered.is_empty() {
        return Err("the repository holds no snapshots".into());
    }
    let reasons: Vec<String> = ordered
        .iter()
        .take(5)
        .map(|s| {
            let state = s.state.as_deref().unwrap_or("unknown");
            let missing = lacks(s, target);
            if state != "SUCCESS" {
                format!("{} is {state}", s.name)
            } else {
                format!(
                    "{} lacks {}",
                    s.name,
                    bounded::names(&missing, 5, 400, "nothing")
                )
            }
        })
        .collect();
    Err(format!(
        "no snapshot in state SUCCESS holds everything requested; the newest: {}{}",
        reasons.join("; "),
        if ordered.len() > 5 {
            format!(" (and {} older)", ordered.len() - 5)
        } else {
            String::new()
        }
    ))
}

fn timestamp(millis: Option<i64>) -> String {
    millis
        .filter(|m| *m > 0)
        .and_then(|m| k8s_openapi::jiff::Timestamp::from_millisecond(m).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

/// One JSON document: the snapshots, newest first, with their tables and partitions.
pub fn to_json(source: &str, snapshots: &[SnapshotInfo]) -> Value {
    let list: Vec<Value> = newest_first(snapshots.to_vec())
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "state": s.state,
                "started": s.started.filter(|m| *m > 0).map(|m| timestamp(Some(m))),
                "finished": s.finished.filter(|m| *m > 0).map(|m| timestamp(Some(m))),
                "version": s.version,
                "tables": s.tables.iter().map(TableIdent::dotted).collect::<Vec<_>>(),
                "partitions": s.partitions.iter().map(|p| json!({"table": p.table.dotted(), "values": p.values})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"source": source, "snapshots": list})
}

/// One line of the table for people.
struct Row {
    name: String,
    state: String,
    started: String,
    finished: String,
    version: String,
    tables: Vec<String>,
    partitions: usize,
}

/// A table for people: name, state, times, version, and the number of tables and partitions
/// (with `tables`, each snapshot's table list below it).
pub fn render_text(source: &str, snapshots: &[SnapshotInfo], tables: bool) -> String {
    let rows: Vec<Row> = newest_first(snapshots.to_vec())
        .into_iter()
        .map(|s| Row {
            state: s.state.unwrap_or_else(|| "-".into()),
            started: timestamp(s.started),
            finished: timestamp(s.finished),
            version: s.version.unwrap_or_else(|| "-".into()),
            tables: s.tables.iter().map(TableIdent::dotted).collect(),
            partitions: s.partitions.len(),
            name: s.name,
        })
        .collect();
    render_rows(source, &rows, tables)
}

/// The same table from the JSON document [`to_json`] wrote (the kubectl plugin reads it from a
/// catalog Job's log).
pub fn render_document(document: &Value, tables: bool) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let rows: Vec<Row> = document["snapshots"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| Row {
            name: text(&s["name"]),
            state: text(&s["state"]),
            started: text(&s["started"]),
            finished: text(&s["finished"]),
            version: text(&s["version"]),
            tables: s["tables"]
                .as_array()
                .map(|t| t.iter().map(text).collect())
                .unwrap_or_default(),
            partitions: s["partitions"].as_array().map_or(0, Vec::len),
        })
        .collect();
    render_rows(document["source"].as_str().unwrap_or("-"), &rows, tables)
}

fn render_rows(source: &str, rows: &[Row], tables: bool) -> String {
    use std::fmt::Write;
    let mut out = format!("Snapshots in {source}, newest first:\n");
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return out;
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        out,
        "{:<width$}  {:<11}  {:<20}  {:<20}  {:<8}  {:>6}  {:>10}",
        "NAME", "STATE", "STARTED", "FINISHED", "VERSION", "TABLES", "PARTITIONS"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<width$}  {:<11}  {:<20}  {:<20}  {:<8}  {:>6}  {:>10}",
            r.name,
            r.state,
            r.started,
            r.finished,
            r.version,
            r.tables.len(),
            r.partitions
        );
        if tables && !r.tables.is_empty() {
            let _ = writeln!(out, "  tables: {}", r.tables.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cratedb::queries::SnapshotPartition, sql::SqlLiteral};

    fn t(s: &str) -> TableIdent {
        TableIdent::parse(s).unwrap()
    }

    fn snap(name: &str, state: &str, started: i64, tables: &[&str]) -> SnapshotInfo {
        SnapshotInfo {
            name: name.into(),
            state: Some(state.into()),
            started: Some(started),
            finished: Some(started + 60_000),
            version: Some("5.10.3".into()),
            tables: tables.iter().map(|s| t(s)).collect(),
            ..Default::default()
        }
    }

    fn catalog() -> Vec<SnapshotInfo> {
        vec![
            snap("nightly-1", "SUCCESS", 1_000, &["doc.a", "doc.b"]),
            snap("nightly-3", "FAILED", 3_000, &["doc.a", "doc.b"]),
            snap("nightly-2", "SUCCESS", 2_000, &["doc.a"]),
        ]
    }

    #[test]
    fn latest_is_the_newest_success_that_holds_everything() {
        let all = catalog();
        assert_eq!(latest(&all, &RestoreTarget::All).unwrap().name, "nightly-2");
        let both = RestoreTarget::Tables(vec![t("doc.a"), t("doc.b")]);
        assert_eq!(latest(&all, &both).unwrap().name, "nightly-1");
        let missing = RestoreTarget::Tables(vec![t("doc.zz")]);
        assert_eq!(
            latest(&all, &missing).unwrap_err(),
            "no snapshot in state SUCCESS holds everything requested; the newest: nightly-3 is FAILED; nightly-2 lacks doc.zz; nightly-1 lacks doc.zz"
        );
        assert_eq!(
            latest(&[], &RestoreTarget::All).unwrap_err(),
            "the repository holds no snapshots"
        );
    }

    #[test]
    fn partitions_are_looked_for_by_value() {
        let mut s = snap("p", "SUCCESS", 1, &["doc.parted"]);
        s.partitions = vec![SnapshotPartition {
            table: t("doc.parted"),
            values: vec![serde_json::json!("1704067200000")],
        }];
        let wanted = |day: &str| {
            RestoreTarget::Partitions(vec![PartitionTarget {
                table: t("doc.parted"),
                columns: vec![("day".into(), SqlLiteral::String(day.into()))],
            }])
        };
        assert!(lacks(&s, &wanted("2024-01-01")).is_empty());
        assert_eq!(
            lacks(&s, &wanted("2024-01-02")),
            [r#""doc"."parted" PARTITION ("day" = '2024-01-02')"#]
        );
    }

    #[test]
    fn text_and_json_are_newest_first() {
        let text = render_text("spec.backups.aws", &catalog(), true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Snapshots in spec.backups.aws, newest first:");
        assert!(
            lines[2].starts_with("nightly-3  FAILED       1970-01-01T00:00:03Z"),
            "{text}"
        );
        assert!(lines[3].starts_with("  tables: doc.a, doc.b"), "{text}");
        let json = to_json("spec.backups.aws", &catalog());
        assert_eq!(json["snapshots"][0]["name"], "nightly-3");
        assert_eq!(
            render_document(&json, true),
            text,
            "the same table from the JSON"
        );
        assert_eq!(
            json["snapshots"][2]["tables"],
            serde_json::json!(["doc.a", "doc.b"])
        );
    }
}
