//! Production scale at the lowest level that runs a whole restore (SPEC A28): 10,000 tables
//! against the simulator and the in-memory API server. `status.restore` stays bounded, every
//! status write carries only what changed, no log line grows with the restore, a Pod replaced
//! while CrateDB restores resumes from the bounded status and the run's record with one RESTORE,
//! and the progress polls ask CrateDB for one row of sums over the restored relations. Timing is
//! the scale benchmark's business (`cargo bench --bench scale`), not these tests'.

mod common;

use std::time::Duration;

use common::harness::*;
use cratedb_restore::job::error::ExitStatus;
use cratedb_sim::{SnapshotDef, TableDef};
use serde_json::{Value, json};

const TABLES: usize = 10_000;

/// `n` tables of 4 shards named `s<i%10>.<prefix><i>` padded to `name_len` characters, every
/// 10th partitioned by day into 3 partitions.
fn snapshot(n: usize, name_len: usize) -> SnapshotDef {
    let mut snap = SnapshotDef::new(SNAPSHOT).version("5.6.0");
    for i in 0..n {
        let mut name = format!("t{i:05}_");
        while name.len() < name_len {
            name.push('x');
        }
        let table = TableDef::new(format!("s{}", i % 10), name)
            .shards(4)
            .bytes_per_shard(1_000);
        snap = if i % 10 == 0 {
            let mut table = table.partitioned_by(["day"]);
            for day in 1..=3 {
                table = table.partition(cratedb_sim::PartitionDef::new(
                    "day",
                    json!(format!("2024-01-0{day}")),
                ));
            }
            snap.partitioned_table(table)
        } else {
            snap.table(table)
        };
    }
    snap
}

fn table_names(n: usize, name_len: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut name = format!("t{i:05}_");
            while name.len() < name_len {
                name.push('x');
            }
            format!("s{}.{name}", i % 10)
        })
        .collect()
}

fn bytes(v: &Value) -> usize {
    serde_json::to_vec(v).unwrap().len()
}

fn longest_log_line(h: &Harness) -> usize {
    h.logs.text().lines().map(str::len).max().unwrap_or(0)
}

#[tokio::test]
async fn ten_thousand_tables_named_in_the_request_keep_the_status_bounded() {
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(snapshot(TABLES, 40))),
        Cluster {
            restore_snapshot: json!({"type": "tables", "tables": table_names(TABLES, 40)}),
            ..Cluster::default()
        },
    )
    .await;
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(
        exit,
        ExitStatus::Done,
        "{:#}",
        status["message"].as_str().unwrap_or_default()
    );
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(h.count("RESTORE SNAPSHOT"), 1);
    assert!(bytes(&status) <= 64 * 1024, "{} bytes", bytes(&status));
    let plan = &status["plan"];
    assert_eq!(plan["relationsCount"], TABLES);
    assert!(plan["relations"].as_array().unwrap().len() <= 10);
    assert!(
        plan["stored"]["configMaps"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{plan:#}"
    );
    assert!(status.get("request").is_none());
    assert!(status["requestRecord"]["configMaps"].is_array());
    let longest = longest_log_line(&h);
    assert!(longest <= 8 * 1024, "a log line of {longest} bytes");
    // The completion check counted every restored primary shard: 9,000 tables of 4 and 1,000
    // partitioned tables of 3 partitions of 4.
    let validated = status["steps"]["validate_restore_complete"]["message"]
        .as_str()
        .unwrap();
    assert_eq!(
        validated,
        "10,000 relation(s) and 0 partition target(s) present; 48,000 primary shard(s) started"
    );
}

#[tokio::test]
async fn a_pod_replaced_while_ten_thousand_long_named_tables_restore_sends_one_restore() {
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(snapshot(TABLES, 255))),
        Cluster {
            restore_snapshot: json!({"type": "all"}),
            ..Cluster::default()
        },
    )
    .await;
    // The first Pod goes away while CrateDB restores.
    let watch = async {
        loop {
            let status = h.status().await;
            if status["steps"]["await_restore"]["state"] == "Running" {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let at_replacement = tokio::select! {
        exit = h.run() => panic!("the run ended ({exit:?}) before its Pod could be replaced"),
        status = watch => status,
    };
    assert!(
        bytes(&at_replacement) <= 64 * 1024,
        "{} bytes",
        bytes(&at_replacement)
    );
    assert!(!h.sim.restores_in_progress().is_empty());

    // The replacement reads the plan back from the run's record and adopts the restore.
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{}", status["message"]);
    assert_eq!(h.count("RESTORE SNAPSHOT"), 1);
    assert_eq!(h.count("CREATE REPOSITORY"), 1);
    assert_eq!(status["steps"]["restore_backup_data"]["attempts"], 1);
    assert_eq!(status["plan"]["relationsCount"], TABLES);
    assert!(bytes(&status) <= 64 * 1024, "{} bytes", bytes(&status));
    let longest = longest_log_line(&h);
    assert!(longest <= 8 * 1024, "a log line of {longest} bytes");
}

#[tokio::test]
async fn progress_polls_read_one_row_of_sums_over_the_restored_relations() {
    // A cluster with other tables besides the ones restored: their shards must not be read.
    let mut sim = sim_builder().storage(s3().snapshot(snapshot(100, 10)));
    for i in 0..1_000 {
        sim = sim.table(TableDef::new("other", format!("o{i}")).shards(8));
    }
    let h = Harness::start(
        sim,
        Cluster {
            restore_snapshot: json!({"type": "all"}),
            ..Cluster::default()
        },
    )
    .await;
    let exit = h.run().await;
    assert_eq!(exit, ExitStatus::Done, "{}", h.logs.text());
    let polls: Vec<_> = h
        .sim
        .statements()
        .into_iter()
        .filter(|s| s.sql.contains("FROM sys.shards"))
        .collect();
    assert!(!polls.is_empty());
    for poll in &polls {
        assert!(
            poll.sql.contains("= ANY($1)"),
            "every shard read is restricted to the restored relations: {}",
            poll.sql
        );
    }
    // Each progress poll answers one row, whatever the number of shards.
    let progress: Vec<_> = polls
        .iter()
        .filter(|s| s.sql.starts_with("SELECT count(*)"))
        .collect();
    assert!(!progress.is_empty(), "progress polls");
    for poll in progress {
        assert_eq!(
            poll.outcome,
            cratedb_sim::StatementOutcome::Ok { rowcount: 1 },
            "{}",
            poll.sql
        );
    }
}
