//! Computing the pre-flight plan (SPEC A19; the model is [`crate::plan`]): what a restore will
//! bring back and every reason it cannot, from the snapshot's contents and the cluster's current
//! relations, before anything in the cluster changes. Pure, and linear in the size of its
//! inputs: every lookup goes through an index built once (10,000 tables, 36,500 partitions).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::{
    bounded,
    cratedb::queries::{Partition, Relation, SnapshotInfo, SnapshotPartition},
    plan::{
        GC_SCHEMA, GC_TEMP_SUFFIX, Plan, PlannedPartition, Renamed, Skipped, names_partition,
        same_value,
    },
    restore_options::OnConflict,
    restore_request::RestoreRequest,
    restore_type::{PartitionTarget, RestoreTarget, RestoreType},
    sql::{SqlLiteral, TableIdent},
    version::ServerVersion,
};

pub struct PlanInput<'a> {
    pub request: &'a RestoreRequest,
    pub snapshot: &'a SnapshotInfo,
    pub relations: &'a [Relation],
    pub partitions: &'a [Partition],
    pub server_version: Option<ServerVersion>,
}

pub fn plan(input: &PlanInput<'_>) -> Plan {
    let PlanInput {
        request,
        snapshot,
        relations,
        partitions,
        server_version,
    } = input;
    let mut plan = Plan {
        keyword: request.target.keyword(*server_version),
        ..Default::default()
    };

    if let (Some(snap), Some(server)) = (
        snapshot
            .version
            .as_deref()
            .and_then(|v| v.parse::<ServerVersion>().ok()),
        server_version,
    ) && snap > *server
    {
        plan.conflicts.push(format!(
            "snapshot {} was taken by CrateDB {snap}, which is newer than this cluster's {server}; restore it into a cluster running {snap} or later",
            snapshot.name
        ));
    }
    match snapshot.state.as_deref() {
        Some("FAILED") => plan.conflicts.push(format!(
            "snapshot {} is in state FAILED and cannot be restored; pick a successful snapshot",
            snapshot.name
        )),
        Some("PARTIAL") => plan.warnings.push(format!(
            "snapshot {} is PARTIAL: some shards were not captured and will be missing",
            snapshot.name
        )),
        _ => {}
    }

    let in_snapshot: BTreeSet<&TableIdent> = snapshot.tables.iter().collect();
    let by_ident: HashMap<&TableIdent, &Relation> =
        relations.iter().map(|r| (&r.ident, r)).collect();
    let existing = |ident: &TableIdent| by_ident.get(ident).copied();
    let snapshot_partitions_of = group_by_table(&snapshot.partitions, |p| &p.table);
    let cluster_partitions_of = group_by_table(partitions, |p| &p.table);
    let mut seen = Seen::default();
    let rename = request.options.rename.as_ref().filter(|r| r.renames());
    let target_of = |source: &TableIdent| match rename {
        Some(rename) => {
            let (schema, table) = rename.target(&source.schema, &source.table);
            TableIdent::new(schema, table)
        }
        None => source.clone(),
    };
    let skip = request.options.on_conflict == OnConflict::Skip;

    // The snapshot's relations this restore names.
    let sources: Vec<TableIdent> = match &request.target {
        RestoreTarget::All => snapshot.tables.clone(),
        RestoreTarget::Metadata => Vec::new(),
        RestoreTarget::Sections(_) if request.target.restores_tables() => snapshot.tables.clone(),
        RestoreTarget::Sections(_) => Vec::new(),
        RestoreTarget::Tables(tables) => {
            for t in tables {
                if !in_snapshot.contains(t) {
                    plan.conflicts.push(not_in_snapshot(t, snapshot));
                }
            }
            tables.clone()
        }
        RestoreTarget::Partitions(targets) => {
            partition_conflicts(
                targets,
                &Catalog {
                    snapshot,
                    in_snapshot: &in_snapshot,
                    snapshot_partitions_of: &snapshot_partitions_of,
                    existing: &by_ident,
                    cluster_partitions_of: &cluster_partitions_of,
                },
                &target_of,
                &mut plan,
            );
            plan.partitions = targets
                .iter()
                .map(|p| PlannedPartition::new(target_of(&p.table), &p.columns))
                .collect();
            let mut tables: HashSet<&TableIdent> = HashSet::new();
            for p in targets {
                if tables.insert(&p.table) {
                    seen.note_rename(&p.table, &target_of(&p.table), &mut plan);
                }
            }
            Vec::new()
        }
    };

    // Grand Central tables that exist are renamed aside before the restore, so they are not
    // conflicts (SPEC A19, B§4.7). Only an explicit `type: all` or gc tables named in `tables`
    // qualify, as in the reference, and only when they keep their names.
    let gc_candidates: Vec<&TableIdent> = match (&request.restore_type, &request.target) {
        _ if rename.is_some() || skip => Vec::new(),
        (RestoreType::All, _) => sources.iter().filter(|t| t.schema == GC_SCHEMA).collect(),
        (RestoreType::Tables, RestoreTarget::Tables(tables)) => tables
            .iter()
            .filter(|t| t.schema == GC_SCHEMA && in_snapshot.contains(t))
            .collect(),
        _ => Vec::new(),
    };
    for t in gc_candidates {
        if existing(t).is_some() {
            let temp = TableIdent::new(GC_SCHEMA, format!("{}{GC_TEMP_SUFFIX}", t.table));
            if existing(&temp).is_some() {
                plan.conflicts.push(format!(
                    "{temp} already exists (left by an earlier restore?), so {t} cannot be moved aside; drop {temp} or rename it back to {t}"
                ));
            }
            plan.gc_tables.push(t.table.clone());
        }
    }

    // What the RESTORE names when skip leaves something out: tables one by one, and single
    // partitions of partitioned tables that exist in part.
    let mut named: Vec<String> = Vec::new();
    let mut left_out = false;
    let mut landing: BTreeMap<TableIdent, TableIdent> = BTreeMap::new();
    for source in &sources {
        let target = target_of(source);
        if let Some(first) = landing.insert(target.clone(), source.clone())
            && &first != source
        {
            plan.conflicts.push(format!(
                "{first} and {source} would both be restored as {target}; change the rename pattern so every table gets its own name"
            ));
        }
        let snapshot_partitions: &[&SnapshotPartition] = snapshot_partitions_of
            .get(source)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if rename.is_some()
            && !snapshot_partitions.is_empty()
            && let Some(server) = server_version
            && *server < RENAMED_PARTITIONS_FIXED
        {
            plan.conflicts.push(format!(
                "{source} is partitioned: CrateDB {server} restores a renamed partitioned table empty (fixed in {RENAMED_PARTITIONS_FIXED}); upgrade the cluster or restore it under its own name"
            ));
        }
        match existing(&target) {
            Some(rel) if !plan.gc_tables.contains(&target.table) || target.schema != GC_SCHEMA => {
                if !skip {
                    let kind = if rel.is_view { "a view" } else { "a table" };
                    plan.conflicts.push(format!(
                        "{target} already exists in the cluster as {kind}; drop or rename it first, restore only other tables, or set restore.cloud.crate.io/on-conflict: skip"
                    ));
                    named.push(source.quoted());
                    seen.push_relation(&mut plan, source, &target);
                    continue;
                }
                left_out = true;
                let in_cluster = cluster_partitions_of
                    .get(&target)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let missing = missing_partitions(rel, snapshot_partitions, in_cluster, &target);
                match missing {
                    Some((present, missing)) if !missing.is_empty() => {
                        for values in present {
                            plan.skipped.push(Skipped {
                                table: target.clone(),
                                partition: Some(values),
                            });
                        }
                        for columns in missing {
                            let source_partition = PartitionTarget {
                                table: source.clone(),
                                columns: columns.clone(),
                            };
                            named.push(source_partition.render());
                            plan.partitions
                                .push(PlannedPartition::new(target.clone(), &columns));
                        }
                        seen.note_rename(source, &target, &mut plan);
                    }
                    _ => plan.skipped.push(Skipped {
                        table: target.clone(),
                        partition: None,
                    }),
                }
            }
            _ => {
                named.push(source.quoted());
                seen.push_relation(&mut plan, source, &target);
            }
        }
    }
    if skip {
        // A skip restore names tables (never ALL): the snapshot's metadata is not restored over
        // what the cluster has.
        plan.keyword = if named.is_empty() {
            String::new()
        } else {
            format!("TABLE {}", named.join(", "))
        };
        if !left_out && matches!(request.target, RestoreTarget::All) {
            plan.warnings.push(
                "on-conflict: skip restores the snapshot's tables one by one, not its metadata (settings, users, views, functions)".into(),
            );
        }
    }
    plan
}

/// CrateDB restored renamed partitioned tables empty before 5.7.2.
pub const RENAMED_PARTITIONS_FIXED: ServerVersion = ServerVersion::new(5, 7, 2);

/// What the plan already holds, so that adding to it stays O(1).
#[derive(Default)]
struct Seen {
    relations: HashSet<TableIdent>,
    renamed: HashSet<TableIdent>,
}

impl Seen {
    fn push_relation(&mut self, plan: &mut Plan, source: &TableIdent, target: &TableIdent) {
        if self.relations.insert(target.clone()) {
            plan.relations.push(target.clone());
        }
        self.note_rename(source, target, plan);
    }

    fn note_rename(&mut self, source: &TableIdent, target: &TableIdent, plan: &mut Plan) {
        if source != target && self.renamed.insert(source.clone()) {
            plan.renamed.push(Renamed {
                from: source.clone(),
                to: target.clone(),
            });
        }
    }
}

fn group_by_table<'a, T>(
    items: &'a [T],
    table: impl Fn(&'a T) -> &'a TableIdent,
) -> HashMap<&'a TableIdent, Vec<&'a T>> {
    let mut groups: HashMap<&TableIdent, Vec<&T>> = HashMap::new();
    for item in items {
        groups.entry(table(item)).or_default().push(item);
    }
    groups
}

/// The snapshot's and the cluster's contents, indexed by table.
struct Catalog<'a> {
    snapshot: &'a SnapshotInfo,
    in_snapshot: &'a BTreeSet<&'a TableIdent>,
    snapshot_partitions_of: &'a HashMap<&'a TableIdent, Vec<&'a SnapshotPartition>>,
    existing: &'a HashMap<&'a TableIdent, &'a Relation>,
    cluster_partitions_of: &'a HashMap<&'a TableIdent, Vec<&'a Partition>>,
}

/// For a partitioned table that exists: the snapshot partitions it has (rendered) and the ones
/// it lacks (as columns). `None` when the table is not partitioned or the snapshot does not
/// say which partitions it holds: then the whole table counts as existing.
#[allow(clippy::type_complexity)]
fn missing_partitions(
    relation: &Relation,
    snapshot_partitions: &[&SnapshotPartition],
    cluster_partitions: &[&Partition],
    target: &TableIdent,
) -> Option<(Vec<String>, Vec<Vec<(String, SqlLiteral)>>)> {
    if relation.partitioned_by.is_empty() || snapshot_partitions.is_empty() {
        return None;
    }
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for p in snapshot_partitions {
        if p.values.len() != relation.partitioned_by.len() {
            return None;
        }
        let columns: Vec<(String, SqlLiteral)> = relation
            .partitioned_by
            .iter()
            .zip(&p.values)
            .map(|(c, v)| (c.clone(), SqlLiteral::from_json(v)))
            .collect();
        let candidate = PartitionTarget {
            table: target.clone(),
            columns,
        };
        if cluster_partitions
            .iter()
            .any(|existing| names_partition(&candidate, existing))
        {
            present.push(candidate.render_values());
        } else {
            missing.push(candidate.columns);
        }
    }
    Some((present, missing))
}

fn partition_conflicts(
    targets: &[PartitionTarget],
    catalog: &Catalog<'_>,
    target_of: &dyn Fn(&TableIdent) -> TableIdent,
    plan: &mut Plan,
) {
    for requested in targets {
        // The partition as it lands: in the renamed table, if renamed.
        let target = &PartitionTarget {
            table: target_of(&requested.table),
            columns: requested.columns.clone(),
        };
        let rendered = format!(
            "{} ({})",
            target.table,
            target
                .columns
                .iter()
                .map(|(c, v)| format!("{c} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !catalog.in_snapshot.contains(&requested.table) {
            plan.conflicts
                .push(not_in_snapshot(&requested.table, catalog.snapshot));
            continue;
        }
        let in_snapshot = catalog
            .snapshot_partitions_of
            .get(&requested.table)
            .is_some_and(|partitions| {
                partitions.iter().any(|p| {
                    target
                        .columns
                        .iter()
                        .all(|(_, lit)| p.values.iter().any(|v| same_value(lit, v)))
                })
            });
        if !in_snapshot {
            plan.warnings.push(format!(
                "partition {rendered} was not found among the snapshot's partitions of {}; CrateDB will refuse the restore if it is missing",
                target.table
            ));
        }
        if let Some(rel) = catalog.existing.get(&target.table) {
            if rel.closed {
                plan.conflicts.push(format!(
                    "table {} is closed; open it (ALTER TABLE ... OPEN) before restoring partitions into it",
                    target.table
                ));
            }
            let exists = catalog
                .cluster_partitions_of
                .get(&target.table)
                .is_some_and(|partitions| partitions.iter().any(|p| names_partition(target, p)));
            if exists {
                plan.conflicts.push(format!(
                    "partition {rendered} already exists in the cluster; drop it first (DELETE FROM {} WHERE ...) or restore other partitions",
                    target.table
                ));
            }
        }
    }
}

fn not_in_snapshot(table: &TableIdent, snapshot: &SnapshotInfo) -> String {
    format!(
        "table {table} is not in snapshot {}; it has: {}",
        snapshot.name,
        bounded::names(&snapshot.tables, 20, 2048, "no tables")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cratedb::queries::SnapshotPartition, repository::StorageProvider, restore_type::Section,
    };
    use serde_json::json;

    fn t(s: &str) -> TableIdent {
        TableIdent::parse(s).unwrap()
    }

    fn request(restore_type: RestoreType, target: RestoreTarget) -> RestoreRequest {
        RestoreRequest {
            snapshot: "snap1".into(),
            restore_type,
            target,
            provider: StorageProvider::Aws,
            credentials: vec![],
            options: Default::default(),
            warnings: vec![],
        }
    }

    fn snapshot(tables: &[&str]) -> SnapshotInfo {
        SnapshotInfo {
            name: "snap1".into(),
            version: Some("5.6.0".into()),
            state: Some("SUCCESS".into()),
            tables: tables.iter().map(|s| t(s)).collect(),
            partitions: vec![SnapshotPartition {
                table: t("doc.parted"),
                values: vec![json!("2024-01-01")],
            }],
            ..Default::default()
        }
    }

    fn rel(name: &str) -> Relation {
        Relation {
            ident: t(name),
            is_view: false,
            closed: false,
            partitioned_by: vec![],
        }
    }

    fn run(
        req: &RestoreRequest,
        snap: &SnapshotInfo,
        rels: &[Relation],
        parts: &[Partition],
    ) -> Plan {
        plan(&PlanInput {
            request: req,
            snapshot: snap,
            relations: rels,
            partitions: parts,
            server_version: Some(ServerVersion::new(5, 10, 3)),
        })
    }

    #[test]
    fn all_conflicts_are_reported_together() {
        let snap = snapshot(&["doc.a", "doc.b", "doc.c", "doc.d"]);
        let mut view = rel("doc.c");
        view.is_view = true;
        let p = run(
            &request(RestoreType::All, RestoreTarget::All),
            &snap,
            &[rel("doc.a"), rel("doc.b"), view],
            &[],
        );
        assert_eq!(p.keyword, "ALL");
        assert_eq!(
            p.relations,
            [t("doc.a"), t("doc.b"), t("doc.c"), t("doc.d")]
        );
        assert_eq!(
            p.conflicts,
            [
                "doc.a already exists in the cluster as a table; drop or rename it first, restore only other tables, or set restore.cloud.crate.io/on-conflict: skip",
                "doc.b already exists in the cluster as a table; drop or rename it first, restore only other tables, or set restore.cloud.crate.io/on-conflict: skip",
                "doc.c already exists in the cluster as a view; drop or rename it first, restore only other tables, or set restore.cloud.crate.io/on-conflict: skip",
            ]
        );
    }

    #[test]
    fn tables_missing_from_the_snapshot_and_newer_snapshots_conflict() {
        let mut snap = snapshot(&["doc.a"]);
        snap.version = Some("5.11.0".into());
        let p = run(
            &request(
                RestoreType::Tables,
                RestoreTarget::Tables(vec![t("doc.a"), t("doc.zz")]),
            ),
            &snap,
            &[],
            &[],
        );
        assert_eq!(
            p.conflicts,
            [
                "snapshot snap1 was taken by CrateDB 5.11.0, which is newer than this cluster's 5.10.3; restore it into a cluster running 5.11.0 or later",
                "table doc.zz is not in snapshot snap1; it has: doc.a",
            ]
        );
    }

    #[test]
    fn gc_tables_are_moved_aside_not_conflicts_for_explicit_all_only() {
        let snap = snapshot(&["doc.a", "gc.alembic_version", "gc.scheduled_jobs"]);
        let existing = [rel("gc.alembic_version"), rel("gc.scheduled_jobs")];
        let p = run(
            &request(RestoreType::All, RestoreTarget::All),
            &snap,
            &existing,
            &[],
        );
        assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
        assert_eq!(p.gc_tables, ["alembic_version", "scheduled_jobs"]);
        // type tables with an empty list renders ALL but does not rename (SPEC B§13.2).
        let p = run(
            &request(RestoreType::Tables, RestoreTarget::All),
            &snap,
            &existing,
            &[],
        );
        assert!(p.gc_tables.is_empty());
        assert_eq!(p.conflicts.len(), 2);
        // Listed gc tables are renamed; a left-over _temp table blocks it.
        let mut existing = existing.to_vec();
        existing.push(rel("gc.scheduled_jobs_temp"));
        let p = run(
            &request(
                RestoreType::Tables,
                RestoreTarget::Tables(vec![t("gc.scheduled_jobs")]),
            ),
            &snap,
            &existing,
            &[],
        );
        assert_eq!(p.gc_tables, ["scheduled_jobs"]);
        assert_eq!(
            p.conflicts,
            [
                "gc.scheduled_jobs_temp already exists (left by an earlier restore?), so gc.scheduled_jobs cannot be moved aside; drop gc.scheduled_jobs_temp or rename it back to gc.scheduled_jobs"
            ]
        );
    }

    #[test]
    fn partitions_conflict_when_present_or_closed() {
        let snap = snapshot(&["doc.parted"]);
        let target = RestoreTarget::Partitions(vec![PartitionTarget {
            table: t("doc.parted"),
            columns: vec![("day".into(), SqlLiteral::parse("'2024-01-01'").unwrap())],
        }]);
        let req = request(RestoreType::Partitions, target);
        let mut parted = rel("doc.parted");
        parted.partitioned_by = vec!["day".into()];
        let p = run(&req, &snap, &[parted.clone()], &[]);
        assert!(p.conflicts.is_empty() && p.warnings.is_empty(), "{p:?}");
        assert_eq!(
            serde_json::to_value(&p.partitions).unwrap(),
            json!([{"schema": "doc", "table": "parted", "values": "(\"day\" = '2024-01-01')",
                "columns": [{"column": "day", "value": "2024-01-01"}]}])
        );
        let existing = Partition {
            table: t("doc.parted"),
            partition_ident: "04732".into(),
            values: json!({"day": "2024-01-01"}).as_object().unwrap().clone(),
            closed: false,
        };
        parted.closed = true;
        let p = run(&req, &snap, &[parted], &[existing]);
        assert_eq!(
            p.conflicts,
            [
                "table doc.parted is closed; open it (ALTER TABLE ... OPEN) before restoring partitions into it",
                "partition doc.parted (day = '2024-01-01') already exists in the cluster; drop it first (DELETE FROM doc.parted WHERE ...) or restore other partitions",
            ]
        );
    }

    #[test]
    fn timestamp_partitions_match_their_epoch_millis() {
        let lit = |s: &str| SqlLiteral::parse(s).unwrap();
        assert!(same_value(
            &lit("'2024-01-01'"),
            &json!(1_704_067_200_000_i64)
        ));
        assert!(same_value(
            &lit("'2024-01-01T10:00:00'"),
            &json!(1_704_103_200_000_i64)
        ));
        assert!(same_value(
            &lit("'2024-01-01T10:00:00+02:00'"),
            &json!(1_704_096_000_000_i64)
        ));
        assert!(!same_value(
            &lit("'2024-01-02'"),
            &json!(1_704_067_200_000_i64)
        ));
        assert!(same_value(&lit("'2024-01-01'"), &json!("2024-01-01")));
        assert!(
            same_value(&lit("'2024-01-01'"), &json!("1704067200000")),
            "as sys.snapshots lists it"
        );
        assert!(!same_value(&lit("'eu'"), &json!(1)));
        assert!(same_value(&lit("7"), &json!(7)));
        assert!(same_value(&lit("null"), &serde_json::Value::Null));
    }

    #[test]
    fn metadata_and_user_sections_restore_no_relations() {
        let snap = snapshot(&["doc.a"]);
        for target in [
            RestoreTarget::Metadata,
            RestoreTarget::Sections(vec![Section::Users, Section::Views]),
        ] {
            let p = run(
                &request(RestoreType::Sections, target),
                &snap,
                &[rel("doc.a")],
                &[],
            );
            assert!(p.relations.is_empty() && p.conflicts.is_empty(), "{p:?}");
        }
        let p = run(
            &request(
                RestoreType::Sections,
                RestoreTarget::Sections(vec![Section::Tables]),
            ),
            &snap,
            &[rel("doc.a")],
            &[],
        );
        assert_eq!(p.conflicts.len(), 1);
    }

    fn with_options(mut req: RestoreRequest, pairs: &[(&str, &str)]) -> RestoreRequest {
        let annotations = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        req.options = crate::restore_options::parse(&annotations).unwrap();
        req
    }

    fn parted_snapshot(days: &[&str]) -> SnapshotInfo {
        let mut snap = snapshot(&["doc.a", "doc.parted"]);
        snap.partitions = days
            .iter()
            .map(|d| SnapshotPartition {
                table: t("doc.parted"),
                values: vec![json!(d)],
            })
            .collect();
        snap
    }

    fn cluster_partition(day: &str) -> Partition {
        Partition {
            table: t("doc.parted"),
            partition_ident: format!("ident-{day}"),
            values: json!({"day": day}).as_object().unwrap().clone(),
            closed: false,
        }
    }

    #[test]
    fn renamed_relations_are_planned_and_checked_under_their_targets() {
        use crate::restore_options::{SCHEMA_RENAME_REPLACEMENT, TABLE_RENAME_REPLACEMENT};
        let req = with_options(
            request(RestoreType::All, RestoreTarget::All),
            &[
                (SCHEMA_RENAME_REPLACEMENT, "restored"),
                (TABLE_RENAME_REPLACEMENT, "$1_copy"),
            ],
        );
        let snap = snapshot(&["doc.a", "doc.b"]);
        // The originals exist: no conflict, they are not the targets.
        let p = run(&req, &snap, &[rel("doc.a"), rel("doc.b")], &[]);
        assert!(p.conflicts.is_empty(), "{p:?}");
        assert_eq!(p.relations, [t("restored.a_copy"), t("restored.b_copy")]);
        assert_eq!(
            serde_json::to_value(&p.renamed).unwrap(),
            json!([{"from": {"schema": "doc", "table": "a"}, "to": {"schema": "restored", "table": "a_copy"}},
                   {"from": {"schema": "doc", "table": "b"}, "to": {"schema": "restored", "table": "b_copy"}}])
        );
        assert_eq!(p.keyword, "ALL");
        // A target that exists is a conflict, named by its target.
        let p = run(&req, &snap, &[rel("restored.b_copy")], &[]);
        assert_eq!(p.conflicts.len(), 1);
        assert!(
            p.conflicts[0].starts_with("restored.b_copy already exists"),
            "{p:?}"
        );
        // Two tables landing on one name.
        let req = with_options(
            request(RestoreType::All, RestoreTarget::All),
            &[(TABLE_RENAME_REPLACEMENT, "same")],
        );
        let p = run(&req, &snap, &[], &[]);
        assert_eq!(
            p.conflicts,
            [
                "doc.a and doc.b would both be restored as doc.same; change the rename pattern so every table gets its own name"
            ]
        );
    }

    #[test]
    fn renaming_a_partitioned_table_needs_5_7_2() {
        let req = with_options(
            request(RestoreType::All, RestoreTarget::All),
            &[(
                crate::restore_options::SCHEMA_RENAME_REPLACEMENT,
                "restored",
            )],
        );
        let snap = parted_snapshot(&["2024-01-01"]);
        let at = |version| {
            plan(&PlanInput {
                request: &req,
                snapshot: &snap,
                relations: &[],
                partitions: &[],
                server_version: Some(version),
            })
        };
        let old = at(ServerVersion::new(5, 7, 1));
        assert_eq!(
            old.conflicts,
            [
                "doc.parted is partitioned: CrateDB 5.7.1 restores a renamed partitioned table empty (fixed in 5.7.2); upgrade the cluster or restore it under its own name"
            ]
        );
        assert!(at(ServerVersion::new(5, 7, 2)).conflicts.is_empty());
    }

    #[test]
    fn skip_restores_only_what_is_missing() {
        let req = with_options(
            request(RestoreType::All, RestoreTarget::All),
            &[(crate::restore_options::ON_CONFLICT, "skip")],
        );
        let snap = parted_snapshot(&["2024-01-01", "2024-01-02"]);
        let mut parted = rel("doc.parted");
        parted.partitioned_by = vec!["day".into()];
        // doc.a exists; doc.parted exists with one of the snapshot's two partitions.
        let p = run(
            &req,
            &snap,
            &[rel("doc.a"), parted.clone()],
            &[cluster_partition("2024-01-01")],
        );
        assert!(p.conflicts.is_empty(), "{p:?}");
        assert_eq!(
            p.keyword,
            r#"TABLE "doc"."parted" PARTITION ("day" = '2024-01-02')"#
        );
        let skipped: Vec<String> = p.skipped.iter().map(Skipped::describe).collect();
        assert_eq!(
            skipped,
            ["doc.a", r#"doc.parted PARTITION ("day" = '2024-01-01')"#]
        );
        assert_eq!(p.partitions.len(), 1);
        assert!(p.relations.is_empty());
        // Nothing exists: the tables one by one, not ALL (no metadata over the cluster's).
        let p = run(&req, &snap, &[], &[]);
        assert_eq!(p.keyword, r#"TABLE "doc"."a", "doc"."parted""#);
        assert_eq!(p.relations, [t("doc.a"), t("doc.parted")]);
        assert!(p.warnings.iter().any(|w| w.contains("not its metadata")));
        // Everything exists: nothing to restore.
        let p = run(
            &req,
            &snap,
            &[rel("doc.a"), parted],
            &[
                cluster_partition("2024-01-01"),
                cluster_partition("2024-01-02"),
            ],
        );
        assert!(p.nothing_to_restore(), "{p:?}");
        let skipped: Vec<String> = p.skipped.iter().map(Skipped::describe).collect();
        assert_eq!(skipped, ["doc.a", "doc.parted"]);
    }
}
