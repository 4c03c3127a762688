//! The restore plan (SPEC A19): what a run brings back, under which names, what it moves aside
//! or leaves out, and why it cannot start. The Job's pre-flight computes it; the run keeps it
//! whole in its record and shows it capped in `status.restore.plan` ([`PlanSummary`]). Pure.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    bounded,
    cratedb::queries::Partition,
    restore_type::PartitionTarget,
    sql::{SqlLiteral, TableIdent},
};

/// The schema of Grand Central's internal tables (SPEC B§4.7).
pub const GC_SCHEMA: &str = "gc";
pub const GC_TEMP_SUFFIX: &str = "_temp";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The snapshot the RESTORE reads: the requested one, or the one `latest` resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The RESTORE keyword for this server version.
    pub keyword: String,
    /// Relations the restore creates, under the names they get.
    pub relations: Vec<TableIdent>,
    /// Partitions the restore creates, in the tables they land in.
    pub partitions: Vec<PlannedPartition>,
    /// Relations restored under another name (rename options): source → target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<Renamed>,
    /// What `on-conflict: skip` left out because it exists already.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Grand Central tables renamed aside before the restore (SPEC B§4.7).
    pub gc_tables: Vec<String>,
    pub conflicts: Vec<String>,
    pub warnings: Vec<String>,
}

/// One partition the restore creates: the table it lands in, its values as the statement names
/// them (`("day" = '2024-01-02')`), and the same values per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedPartition {
    #[serde(flatten)]
    pub table: TableIdent,
    pub values: String,
    #[serde(default)]
    pub columns: Vec<PartitionValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionValue {
    pub column: String,
    pub value: Value,
}

impl PlannedPartition {
    pub fn new(table: TableIdent, columns: &[(String, SqlLiteral)]) -> Self {
        let target = PartitionTarget {
            table: table.clone(),
            columns: columns.to_vec(),
        };
        Self {
            values: target.render_values(),
            columns: columns
                .iter()
                .map(|(column, literal)| PartitionValue {
                    column: column.clone(),
                    value: literal.to_json(),
                })
                .collect(),
            table,
        }
    }

    /// The partition as a target the completion check can look for.
    pub fn target(&self) -> PartitionTarget {
        PartitionTarget {
            table: self.table.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| (c.column.clone(), SqlLiteral::from_json(&c.value)))
                .collect(),
        }
    }
}

/// A relation restored under another name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Renamed {
    pub from: TableIdent,
    pub to: TableIdent,
}

/// A relation (or one partition of it, `values` set) left out because it exists already.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    #[serde(flatten)]
    pub table: TableIdent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

impl std::fmt::Display for Renamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} → {}", self.from, self.to)
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Skipped {
    pub fn describe(&self) -> String {
        match &self.partition {
            Some(values) => format!("{} PARTITION {values}", self.table),
            None => self.table.dotted(),
        }
    }
}

impl Plan {
    /// With `on-conflict: skip`, everything may exist already: then no RESTORE is sent.
    pub fn nothing_to_restore(&self) -> bool {
        self.keyword.is_empty()
    }

    /// Every relation whose shards the restore creates: the planned relations and the tables of
    /// the planned partitions.
    pub fn restored_tables(&self) -> Vec<TableIdent> {
        let mut seen: HashSet<&TableIdent> = self.relations.iter().collect();
        let mut tables = self.relations.clone();
        for p in &self.partitions {
            if seen.insert(&p.table) {
                tables.push(p.table.clone());
            }
        }
        tables
    }

    pub fn gc_idents(&self) -> Vec<TableIdent> {
        self.gc_tables
            .iter()
            .map(|t| TableIdent::new(GC_SCHEMA, t.as_str()))
            .collect()
    }
}

/// Whether a partition literal names the same value CrateDB reports. CrateDB stores partition
/// values typed: a timestamp column's value is epoch milliseconds, so a date or timestamp string
/// is also compared as such. Anything else must render the same; a miss is never a conflict by
/// itself (CrateDB still refuses an existing partition).
pub fn same_value(literal: &SqlLiteral, value: &Value) -> bool {
    let rendered = match value {
        Value::String(s) => s.clone(),
        Value::Null => return matches!(literal, SqlLiteral::Null),
        other => other.to_string(),
    };
    match literal {
        SqlLiteral::String(s) => {
            // Snapshots list partition values as text, the catalog as typed JSON.
            let millis = value
                .as_i64()
                .or_else(|| value.as_str().and_then(|v| v.parse().ok()));
            *s == rendered || millis.is_some_and(|m| epoch_millis(s) == Some(m))
        }
        SqlLiteral::Number(s) => *s == rendered,
        SqlLiteral::Bool(b) => b.to_string() == rendered,
        SqlLiteral::Null => false,
    }
}

/// Whether a partition of the cluster's catalog is the one `target` names (every column equal).
pub fn names_partition(target: &PartitionTarget, partition: &Partition) -> bool {
    partition.table == target.table
        && target.columns.iter().all(|(column, literal)| {
            partition
                .values
                .get(column)
                .is_some_and(|v| same_value(literal, v))
        })
}

/// `2024-01-01`, `2024-01-01T10:00:00` (both UTC, as CrateDB reads them without a zone) or an
/// RFC 3339 timestamp, as epoch milliseconds.
fn epoch_millis(text: &str) -> Option<i64> {
    use k8s_openapi::jiff::{Timestamp, civil, tz::TimeZone};
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts.as_millisecond());
    }
    let civil = text
        .parse::<civil::DateTime>()
        .ok()
        .or_else(|| text.parse::<civil::Date>().ok().map(|d| d.at(0, 0, 0, 0)))?;
    civil
        .to_zoned(TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

/// Where a value too large for `status.restore` is kept: ConfigMaps owned by the run, named
/// after their content (so writing one twice is harmless), holding gzip-compressed JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRef {
    /// The ConfigMaps, in order; their data concatenated is the compressed document.
    pub config_maps: Vec<String>,
    /// SHA-256 of the uncompressed JSON, hex.
    pub sha256: String,
    /// Size of the uncompressed JSON.
    pub bytes: u64,
}

/// `status.restore.plan`: the plan with every list capped to its first items and a count.
/// When something was left out, the whole plan is in `stored`. A plan written by the previous
/// release has no counts and is complete.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The RESTORE keyword (capped: `TABLE "doc"."a", … (N more bytes)` for long table lists).
    #[serde(default)]
    pub keyword: String,
    #[serde(default)]
    pub relations: Vec<TableIdent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relations_count: Option<usize>,
    #[serde(default)]
    pub partitions: Vec<PlannedPartition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions_count: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<Renamed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_count: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_count: Option<usize>,
    #[serde(default)]
    pub gc_tables: Vec<String>,
    #[serde(default)]
    pub conflicts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts_count: Option<usize>,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings_count: Option<usize>,
    /// The whole plan, when this summary leaves something out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredRef>,
}

fn capped<T: Serialize + Clone>(items: &[T]) -> (Vec<T>, Option<usize>) {
    (
        bounded::head(items, bounded::LIST_ITEMS, bounded::LIST_BYTES),
        Some(items.len()),
    )
}

fn capped_messages(items: &[String]) -> (Vec<String>, Option<usize>) {
    let shortened: Vec<String> = items
        .iter()
        .take(bounded::LIST_ITEMS)
        .map(|m| bounded::text(m, 512))
        .collect();
    (
        bounded::head(&shortened, bounded::LIST_ITEMS, 4 * bounded::LIST_BYTES),
        Some(items.len()),
    )
}

impl PlanSummary {
    /// The plan as `status.restore` shows it; `stored` is set by the caller when
    /// [`Self::is_complete_for`] says the summary is not the whole plan.
    pub fn of(plan: &Plan) -> Self {
        let (relations, relations_count) = capped(&plan.relations);
        let (partitions, partitions_count) = capped(&plan.partitions);
        let (renamed, renamed_count) = capped(&plan.renamed);
        let (skipped, skipped_count) = capped(&plan.skipped);
        let (conflicts, conflicts_count) = capped_messages(&plan.conflicts);
        let (warnings, warnings_count) = capped_messages(&plan.warnings);
        Self {
            snapshot: plan.snapshot.clone(),
            keyword: bounded::text(&plan.keyword, KEYWORD_BYTES),
            relations,
            relations_count,
            partitions,
            partitions_count,
            renamed,
            renamed_count,
            skipped,
            skipped_count,
            gc_tables: bounded::head(&plan.gc_tables, 50, bounded::LIST_BYTES),
            conflicts,
            conflicts_count,
            warnings,
            warnings_count,
            stored: None,
        }
    }

    /// Whether this summary holds all of `plan`: then the run needs nothing else to resume.
    pub fn is_complete_for(&self, plan: &Plan) -> bool {
        self.to_plan().as_ref() == Some(plan)
    }

    /// The whole plan, when the summary is all of it (a small plan, or one written by the
    /// previous release, which kept every list); `None` when it is in `stored`.
    pub fn to_plan(&self) -> Option<Plan> {
        let whole = |shown: usize, count: Option<usize>| count.is_none_or(|c| c == shown);
        let complete = self.stored.is_none()
            && whole(self.relations.len(), self.relations_count)
            && whole(self.partitions.len(), self.partitions_count)
            && whole(self.renamed.len(), self.renamed_count)
            && whole(self.skipped.len(), self.skipped_count)
            && whole(self.conflicts.len(), self.conflicts_count)
            && whole(self.warnings.len(), self.warnings_count);
        complete.then(|| Plan {
            snapshot: self.snapshot.clone(),
            keyword: self.keyword.clone(),
            relations: self.relations.clone(),
            partitions: self.partitions.clone(),
            renamed: self.renamed.clone(),
            skipped: self.skipped.clone(),
            gc_tables: self.gc_tables.clone(),
            conflicts: self.conflicts.clone(),
            warnings: self.warnings.clone(),
        })
    }

    pub fn relations_total(&self) -> usize {
        self.relations_count.unwrap_or(self.relations.len())
    }

    pub fn partitions_total(&self) -> usize {
        self.partitions_count.unwrap_or(self.partitions.len())
    }

    pub fn skipped_total(&self) -> usize {
        self.skipped_count.unwrap_or(self.skipped.len())
    }

    pub fn renamed_total(&self) -> usize {
        self.renamed_count.unwrap_or(self.renamed.len())
    }

    pub fn conflicts_total(&self) -> usize {
        self.conflicts_count.unwrap_or(self.conflicts.len())
    }

    pub fn nothing_to_restore(&self) -> bool {
        self.keyword.is_empty()
    }
}

/// The keyword as `status.restore.plan.keyword` shows it.
pub const KEYWORD_BYTES: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TableIdent {
        TableIdent::parse(s).unwrap()
    }

    fn big_plan(tables: usize, name_len: usize) -> Plan {
        let relations: Vec<TableIdent> = (0..tables)
            .map(|i| TableIdent::new("doc", format!("{i:05}{}", "x".repeat(name_len - 5))))
            .collect();
        let keyword = format!(
            "TABLE {}",
            relations
                .iter()
                .map(TableIdent::quoted)
                .collect::<Vec<_>>()
                .join(", ")
        );
        Plan {
            keyword,
            renamed: relations
                .iter()
                .map(|r| Renamed {
                    from: r.clone(),
                    to: TableIdent::new("restored", r.table.clone()),
                })
                .collect(),
            conflicts: relations
                .iter()
                .map(|r| format!("{r} already exists in the cluster as a table"))
                .collect(),
            relations,
            ..Default::default()
        }
    }

    #[test]
    fn a_small_plan_is_its_own_summary() {
        let plan = Plan {
            keyword: r#"TABLE "doc"."a""#.into(),
            relations: vec![t("doc.a")],
            gc_tables: vec!["scheduled_jobs".into()],
            ..Default::default()
        };
        let summary = PlanSummary::of(&plan);
        assert!(summary.is_complete_for(&plan));
        assert_eq!(summary.relations_total(), 1);
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            serde_json::json!({"keyword": "TABLE \"doc\".\"a\"", "relations": [{"schema": "doc", "table": "a"}],
                "relationsCount": 1, "partitions": [], "partitionsCount": 0, "renamedCount": 0,
                "skippedCount": 0, "gcTables": ["scheduled_jobs"], "conflicts": [], "conflictsCount": 0,
                "warnings": [], "warningsCount": 0})
        );
    }

    #[test]
    fn ten_thousand_long_names_are_capped_and_counted() {
        let plan = big_plan(10_000, 255);
        let summary = PlanSummary::of(&plan);
        assert!(!summary.is_complete_for(&plan));
        assert!(summary.to_plan().is_none());
        assert_eq!(summary.relations_total(), 10_000);
        assert_eq!(summary.renamed_total(), 10_000);
        assert_eq!(summary.conflicts_total(), 10_000);
        assert!(!summary.relations.is_empty() && summary.relations.len() <= bounded::LIST_ITEMS);
        let bytes = serde_json::to_vec(&summary).unwrap().len();
        assert!(bytes <= 16 * 1024, "{bytes} bytes");
    }

    #[test]
    fn a_plan_of_the_previous_release_is_complete() {
        // status.restore.plan as the previous release wrote it: every list whole, no counts.
        let old = serde_json::json!({"keyword": "ALL", "relations": [{"schema": "doc", "table": "a"},
            {"schema": "doc", "table": "b"}], "partitions": [], "gcTables": [], "conflicts": [],
            "warnings": ["snapshot s is PARTIAL: some shards were not captured and will be missing"]});
        let summary: PlanSummary = serde_json::from_value(old).unwrap();
        let plan = summary.to_plan().expect("complete");
        assert_eq!(plan.relations, [t("doc.a"), t("doc.b")]);
        assert_eq!(plan.warnings.len(), 1);
        assert_eq!(summary.relations_total(), 2);
    }
}
