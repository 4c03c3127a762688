//! Completion truth (SPEC A10): a restore is complete when every planned relation exists and
//! every primary shard of every planned relation and partition is STARTED. The vanished
//! `sys.snapshot_restore` row only means "not running". Pure, in two parts that match the two
//! reads: which planned relations and partitions exist ([`presence`]), then what CrateDB says
//! of their shards ([`verify`]): a count of all and started primaries, and the few that are not
//! started, with CrateDB's explanation. Linear in what it is given.

use std::collections::{HashMap, HashSet};

use crate::{
    bounded,
    cratedb::queries::{self, AllocationRow, Partition, Relation, ShardRow, ShardTotals},
    plan::names_partition,
    restore_type::PartitionTarget,
    sql::TableIdent,
};

/// Which planned relations and partitions exist, and the keys of those whose shards count.
#[derive(Debug, Default, PartialEq)]
pub struct Presence {
    pub relations: usize,
    pub partitions: usize,
    /// Planned relations or partitions that do not exist.
    pub missing: Vec<String>,
    /// [`queries::relation_key`] of every planned relation that exists.
    pub relation_keys: Vec<String>,
    /// [`queries::partition_key`] of every planned partition that exists.
    pub partition_keys: Vec<String>,
}

pub fn presence(
    relations: &[TableIdent],
    partitions: &[PartitionTarget],
    existing: &[Relation],
    existing_partitions: &[Partition],
) -> Presence {
    let existing: HashSet<&TableIdent> = existing.iter().map(|r| &r.ident).collect();
    let mut partitions_of: HashMap<&TableIdent, Vec<&Partition>> = HashMap::new();
    for p in existing_partitions {
        partitions_of.entry(&p.table).or_default().push(p);
    }
    let mut out = Presence {
        relations: relations.len(),
        partitions: partitions.len(),
        ..Default::default()
    };
    for table in relations {
        if existing.contains(table) {
            out.relation_keys.push(queries::relation_key(table));
        } else {
            out.missing
                .push(format!("{table} does not exist after the restore"));
        }
    }
    for target in partitions {
        if !existing.contains(&target.table) {
            out.missing
                .push(format!("{} does not exist after the restore", target.table));
            continue;
        }
        let matching: Vec<&&Partition> = partitions_of
            .get(&target.table)
            .map(|ps| ps.iter().filter(|p| names_partition(target, p)).collect())
            .unwrap_or_default();
        if matching.is_empty() {
            // A requested partition the catalog does not list was not restored, whatever the
            // table's other shards say.
            out.missing.push(format!(
                "partition {} does not exist after the restore",
                target.render()
            ));
        }
        for p in matching {
            out.partition_keys
                .push(queries::partition_key(&p.table, &p.partition_ident));
        }
    }
    out
}

/// `Ok(summary)` or every reason the restore is not complete (the first
/// [`queries::NOT_STARTED_LIMIT`] shards, and a count of the rest).
pub fn verify(
    presence: &Presence,
    totals: &ShardTotals,
    not_started: &[ShardRow],
    allocations: &[AllocationRow],
) -> Result<String, Vec<String>> {
    let explanations: HashMap<(&TableIdent, &str, i64), &str> = allocations
        .iter()
        .filter_map(|a| {
            let reason = a.explanation.as_deref()?;
            Some(((&a.table, a.partition_ident.as_str(), a.shard_id), reason))
        })
        .collect();
    let mut problems = presence.missing.clone();
    for shard in not_started {
        let place = if shard.partition_ident.is_empty() {
            shard.table.dotted()
        } else {
            format!("{} partition {}", shard.table, shard.partition_ident)
        };
        let key = (&shard.table, shard.partition_ident.as_str(), shard.id);
        problems.push(match explanations.get(&key) {
            Some(reason) => format!(
                "primary shard {} of {place} is {}: {reason}",
                shard.id, shard.state
            ),
            None => format!("primary shard {} of {place} is {}", shard.id, shard.state),
        });
    }
    let unstarted = totals.shards.saturating_sub(totals.started);
    if unstarted > not_started.len() {
        problems.push(format!(
            "{} more primary shard(s) not started",
            bounded::count(unstarted - not_started.len())
        ));
    }
    if problems.is_empty() {
        Ok(format!(
            "{} relation(s) and {} partition target(s) present; {} primary shard(s) started",
            bounded::count(presence.relations),
            bounded::count(presence.partitions),
            bounded::count(totals.started)
        ))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TableIdent {
        TableIdent::parse(s).unwrap()
    }

    fn rel(s: &str) -> Relation {
        Relation {
            ident: t(s),
            is_view: false,
            closed: false,
            partitioned_by: vec![],
        }
    }

    fn shard(table: &str, id: i64, state: &str) -> ShardRow {
        ShardRow {
            table: t(table),
            partition_ident: String::new(),
            id,
            state: state.into(),
            used_bytes: None,
            recovered_bytes: None,
        }
    }

    fn totals(shards: usize, started: usize) -> ShardTotals {
        ShardTotals {
            shards,
            started,
            ..Default::default()
        }
    }

    #[test]
    fn complete_when_relations_exist_and_primaries_started() {
        let relations = [t("doc.a"), t("doc.empty")];
        let found = presence(&relations, &[], &[rel("doc.a"), rel("doc.empty")], &[]);
        assert_eq!(found.relation_keys, ["doc.a", "doc.empty"]);
        assert_eq!(
            verify(&found, &totals(2, 2), &[], &[]).unwrap(),
            "2 relation(s) and 0 partition target(s) present; 2 primary shard(s) started"
        );
    }

    #[test]
    fn a_requested_partition_missing_from_the_catalog_fails_by_name() {
        use crate::sql::SqlLiteral;
        let wanted = |day: &str| PartitionTarget {
            table: t("doc.events"),
            columns: vec![("day".into(), SqlLiteral::String(day.into()))],
        };
        let partitions = [wanted("2024-01-01"), wanted("2024-01-02")];
        // Only the first partition came back.
        let existing_partitions = [Partition {
            table: t("doc.events"),
            partition_ident: "04732cpp6ks3ed1o60o30c1g".into(),
            values: serde_json::json!({"day": 1_704_067_200_000_i64})
                .as_object()
                .unwrap()
                .clone(),
            closed: false,
        }];
        let found = presence(&[], &partitions, &[rel("doc.events")], &existing_partitions);
        assert_eq!(
            found.partition_keys,
            ["doc.events.04732cpp6ks3ed1o60o30c1g"]
        );
        assert_eq!(
            verify(&found, &totals(1, 1), &[], &[]).unwrap_err(),
            [
                r#"partition "doc"."events" PARTITION ("day" = '2024-01-02') does not exist after the restore"#
            ]
        );
    }

    #[test]
    fn reports_missing_relations_and_cratedbs_explanation() {
        let relations = [t("doc.a"), t("doc.gone")];
        let found = presence(&relations, &[], &[rel("doc.a")], &[]);
        let allocations = [AllocationRow {
            table: t("doc.a"),
            partition_ident: String::new(),
            shard_id: 1,
            current_state: "unassigned".into(),
            explanation: Some("the node is above the high watermark cluster setting".into()),
        }];
        assert_eq!(
            verify(
                &found,
                &totals(2, 1),
                &[shard("doc.a", 1, "UNASSIGNED")],
                &allocations
            )
            .unwrap_err(),
            [
                "doc.gone does not exist after the restore",
                "primary shard 1 of doc.a is UNASSIGNED: the node is above the high watermark cluster setting",
            ]
        );
    }

    #[test]
    fn shards_beyond_the_listed_ones_are_counted() {
        let found = presence(&[t("doc.a")], &[], &[rel("doc.a")], &[]);
        let listed: Vec<ShardRow> = (0..100)
            .map(|i| shard("doc.a", i, "INITIALIZING"))
            .collect();
        let problems = verify(&found, &totals(100_000, 10), &listed, &[]).unwrap_err();
        assert_eq!(problems.len(), 101);
        assert_eq!(problems[100], "99,890 more primary shard(s) not started");
    }

    #[test]
    fn ten_thousand_relations_are_checked_in_linear_time() {
        let relations: Vec<TableIdent> = (0..10_000).map(|i| t(&format!("doc.t{i}"))).collect();
        let existing: Vec<Relation> = relations
            .iter()
            .map(|r| Relation {
                ident: r.clone(),
                is_view: false,
                closed: false,
                partitioned_by: vec![],
            })
            .collect();
        let found = presence(&relations, &[], &existing, &[]);
        assert_eq!(found.relation_keys.len(), 10_000);
        assert!(found.missing.is_empty());
    }
}
