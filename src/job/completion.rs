//! Completion truth (SPEC A10): a restore is complete when every planned relation exists and
//! every primary shard of every planned relation and partition is STARTED. The vanished
//! `sys.snapshot_restore` row only means "not running". Pure.

use super::plan::names_partition;
use crate::{
    cratedb::queries::{AllocationRow, Partition, Relation, ShardRow},
    restore_type::PartitionTarget,
    sql::TableIdent,
};

pub struct CompletionInput<'a> {
    pub relations: &'a [TableIdent],
    pub partitions: &'a [PartitionTarget],
    pub existing: &'a [Relation],
    pub existing_partitions: &'a [Partition],
    pub shards: &'a [ShardRow],
    pub allocations: &'a [AllocationRow],
}

/// `Ok(summary)` or every reason the restore is not complete.
pub fn verify(input: &CompletionInput<'_>) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut checked_shards = 0usize;
    let mut check_shards =
        |table: &TableIdent, partition: Option<&str>, problems: &mut Vec<String>| {
            for shard in input
                .shards
                .iter()
                .filter(|s| &s.table == table && partition.is_none_or(|p| s.partition_ident == p))
            {
                checked_shards += 1;
                if shard.state == "STARTED" {
                    continue;
                }
                let reason = input
                    .allocations
                    .iter()
                    .find(|a| {
                        &a.table == table
                            && a.shard_id == shard.id
                            && a.partition_ident == shard.partition_ident
                    })
                    .and_then(|a| a.explanation.clone());
                let place = if shard.partition_ident.is_empty() {
                    table.dotted()
                } else {
                    format!("{table} partition {}", shard.partition_ident)
                };
                problems.push(match reason {
                    Some(reason) => format!(
                        "primary shard {} of {place} is {}: {reason}",
                        shard.id, shard.state
                    ),
                    None => format!("primary shard {} of {place} is {}", shard.id, shard.state),
                });
            }
        };

    for table in input.relations {
        if !input.existing.iter().any(|r| &r.ident == table) {
            problems.push(format!("{table} does not exist after the restore"));
            continue;
        }
        check_shards(table, None, &mut problems);
    }
    for target in input.partitions {
        if !input.existing.iter().any(|r| r.ident == target.table) {
            problems.push(format!("{} does not exist after the restore", target.table));
            continue;
        }
        let matching: Vec<&Partition> = input
            .existing_partitions
            .iter()
            .filter(|p| names_partition(target, p))
            .collect();
        if matching.is_empty() {
            // A requested partition the catalog does not list was not restored, whatever the
            // table's other shards say.
            problems.push(format!(
                "partition {} does not exist after the restore",
                target.render()
            ));
        }
        for p in matching {
            check_shards(&target.table, Some(&p.partition_ident), &mut problems);
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{} relation(s) and {} partition target(s) present; {checked_shards} primary shard(s) started",
            input.relations.len(),
            input.partitions.len()
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

    #[test]
    fn complete_when_relations_exist_and_primaries_started() {
        let relations = [t("doc.a"), t("doc.empty")];
        let existing = [rel("doc.a"), rel("doc.empty")];
        let shards = [shard("doc.a", 0, "STARTED"), shard("doc.a", 1, "STARTED")];
        let input = CompletionInput {
            relations: &relations,
            partitions: &[],
            existing: &existing,
            existing_partitions: &[],
            shards: &shards,
            allocations: &[],
        };
        assert_eq!(
            verify(&input).unwrap(),
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
        let existing = [rel("doc.events")];
        // Only the first partition came back; every shard of the table is started.
        let existing_partitions = [Partition {
            table: t("doc.events"),
            partition_ident: "04732cpp6ks3ed1o60o30c1g".into(),
            values: serde_json::json!({"day": 1_704_067_200_000_i64})
                .as_object()
                .unwrap()
                .clone(),
            closed: false,
        }];
        let mut first = shard("doc.events", 0, "STARTED");
        first.partition_ident = "04732cpp6ks3ed1o60o30c1g".into();
        let input = CompletionInput {
            relations: &[],
            partitions: &partitions,
            existing: &existing,
            existing_partitions: &existing_partitions,
            shards: &[first],
            allocations: &[],
        };
        assert_eq!(
            verify(&input).unwrap_err(),
            [
                r#"partition "doc"."events" PARTITION ("day" = '2024-01-02') does not exist after the restore"#
            ]
        );
    }

    #[test]
    fn reports_missing_relations_and_cratedbs_explanation() {
        let relations = [t("doc.a"), t("doc.gone")];
        let existing = [rel("doc.a")];
        let shards = [
            shard("doc.a", 0, "STARTED"),
            shard("doc.a", 1, "UNASSIGNED"),
        ];
        let allocations = [AllocationRow {
            table: t("doc.a"),
            partition_ident: String::new(),
            shard_id: 1,
            current_state: "unassigned".into(),
            explanation: Some("the node is above the high watermark cluster setting".into()),
        }];
        let input = CompletionInput {
            relations: &relations,
            partitions: &[],
            existing: &existing,
            existing_partitions: &[],
            shards: &shards,
            allocations: &allocations,
        };
        assert_eq!(
            verify(&input).unwrap_err(),
            [
                "primary shard 1 of doc.a is UNASSIGNED: the node is above the high watermark cluster setting",
                "doc.gone does not exist after the restore",
            ]
        );
    }
}
