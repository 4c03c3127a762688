//! The snapshot catalog: several snapshots per repository, their states and timestamps, as
//! `sys.snapshots` shows them in each CrateDB version.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cratedb_sim::{
    PartitionDef, SimConfig, Simulator, SimulatorBuilder, SnapshotDef, Storage, TableDef,
};
use tokio_postgres::error::SqlState;

use crate::common::*;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_720_000_000_000;

fn catalog() -> Storage {
    let t = || TableDef::new("doc", "t").shards(3);
    Storage::s3(BUCKET, BASE, ACCESS, SECRET)
        .snapshot(
            SnapshotDef::new("nightly-1")
                .started(T0)
                .finished(T0 + 60_000)
                .version("5.9.2")
                .table(t()),
        )
        .snapshot(
            SnapshotDef::new("nightly-2")
                .state("PARTIAL")
                .started(T0 + DAY)
                .finished(T0 + DAY + 90_000)
                .failures([
                    "SnapshotShardFailure{shardId=[t][1], reason='IndexShardSnapshotFailedException[Aborted]', nodeId='n1', status=INTERNAL_SERVER_ERROR}",
                ])
                .table(t())
                .partitioned_table(
                    TableDef::new("doc", "p")
                        .shards(1)
                        .partitioned_by(["day"])
                        .partition(PartitionDef::new("day", 7)),
                ),
        )
        .snapshot(
            SnapshotDef::new("nightly-3")
                .state("FAILED")
                .started(T0 + 2 * DAY)
                .finished(T0 + 2 * DAY + 5_000)
                .reason("Indices don't have primary shards [t]")
                .include_global_state(false),
        )
        .snapshot(
            SnapshotDef::new("nightly-4")
                .state("IN_PROGRESS")
                .started(T0 + 3 * DAY)
                .version("5.9.2")
                .table(t()),
        )
}

fn with_catalog(version: &str) -> SimulatorBuilder {
    Simulator::builder()
        .server_version(version)
        .user("system", SYSTEM_PW)
        .storage(catalog())
}

fn at(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms as u64)
}

#[tokio::test]
async fn several_snapshots_with_states_timestamps_and_failures() {
    let sim = start(with_catalog("5.10.3")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    // the product's create_repo sets readonly = 'true'; sys.repositories shows it as text
    let row = client
        .query_one(
            "SELECT settings['readonly'], settings['bucket'] FROM sys.repositories WHERE name = 'repo'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "true");
    assert_eq!(row.get::<_, String>(1), BUCKET);

    let rows = client
        .query(
            "SELECT name, repository, state, started, finished, version, failures, reason, \
             total_shards, include_global_state, concrete_indices, tables, id \
             FROM sys.snapshots WHERE repository = $1 ORDER BY started",
            &[&"repo"],
        )
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["nightly-1", "nightly-2", "nightly-3", "nightly-4"]);
    assert!(rows.iter().all(|r| r.get::<_, String>(1) == "repo"));
    let states: Vec<String> = rows.iter().map(|r| r.get(2)).collect();
    assert_eq!(states, ["SUCCESS", "PARTIAL", "FAILED", "IN_PROGRESS"]);
    let started: Vec<SystemTime> = rows.iter().map(|r| r.get(3)).collect();
    assert_eq!(started[0], at(T0));
    assert_eq!(started[3], at(T0 + 3 * DAY));
    let finished: Vec<SystemTime> = rows.iter().map(|r| r.get(4)).collect();
    assert_eq!(finished[1], at(T0 + DAY + 90_000));
    // a snapshot this cluster is still creating: finished at epoch 0, the server's version
    assert_eq!(finished[3], UNIX_EPOCH);
    assert_eq!(rows[3].get::<_, String>(5), "5.10.3");
    assert_eq!(rows[0].get::<_, String>(5), "5.9.2");
    let failures: Vec<String> = rows[1].get(6);
    assert_eq!(failures.len(), 1);
    assert!(failures[0].starts_with("SnapshotShardFailure{shardId=[t][1]"));
    assert!(rows[0].get::<_, Vec<String>>(6).is_empty());
    assert_eq!(rows[0].get::<_, Option<String>>(7), None);
    assert_eq!(
        rows[2].get::<_, Option<String>>(7).as_deref(),
        Some("Indices don't have primary shards [t]")
    );
    let total: Vec<i32> = rows.iter().map(|r| r.get(8)).collect();
    assert_eq!(total, [3, 4, 0, 3]);
    let global: Vec<bool> = rows.iter().map(|r| r.get(9)).collect();
    assert_eq!(global, [true, true, false, true]);
    assert_eq!(
        rows[1].get::<_, Vec<String>>(10),
        vec!["t".to_string(), ".partitioned.p.0413e".to_string()]
    );
    assert_eq!(
        rows[1].get::<_, Vec<String>>(11),
        vec!["doc.t".to_string(), "doc.p".to_string()]
    );
    let ids: Vec<String> = rows.iter().map(|r| r.get(12)).collect();
    assert!(ids.iter().all(|id| id.len() == 22), "{ids:?}");

    // the newest finished one, as a Job would pick it
    let latest: String = client
        .query_one(
            "SELECT name FROM sys.snapshots WHERE repository = $1 AND state IN ('SUCCESS', 'PARTIAL') \
             ORDER BY finished DESC LIMIT 1",
            &[&"repo"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(latest, "nightly-2");

    // only SUCCESS and PARTIAL restore; one in progress is not in the repository yet
    let restore = |snap: &str| {
        format!(r#"RESTORE SNAPSHOT repo."{snap}" TABLE t WITH (wait_for_completion = true)"#)
    };
    let err = client
        .execute(&restore("nightly-3"), &[])
        .await
        .unwrap_err();
    assert!(
        server_message(&err).ends_with("unsupported snapshot state [FAILED]"),
        "{err}"
    );
    let err = client
        .execute(&restore("nightly-4"), &[])
        .await
        .unwrap_err();
    assert_eq!(
        server_message(&err),
        "[repo:nightly-4] snapshot does not exist"
    );
    client.execute(&restore("nightly-2"), &[]).await.unwrap();
    assert_eq!(sim.shards().len(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn sys_snapshots_columns_and_rows_follow_the_server_version() {
    // 5.9.0 added id, relations, reason, total_shards and include_global_state
    let sim = start(with_catalog("5.8.6")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    let err = client
        .query("SELECT total_shards FROM sys.snapshots", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_COLUMN));
    assert_eq!(server_message(&err), "Column total_shards unknown");
    let stmt = client.prepare("SELECT * FROM sys.snapshots").await.unwrap();
    let cols: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        cols,
        [
            "name",
            "repository",
            "concrete_indices",
            "tables",
            "table_partitions",
            "started",
            "finished",
            "version",
            "state",
            "failures"
        ]
    );
    let rows = client.query(&stmt, &[]).await.unwrap();
    assert_eq!(rows.len(), 4, "5.7.3 and later list snapshots in progress");
    let state: String = rows[1].get("state");
    assert_eq!(state, "PARTIAL");
    sim.shutdown().await;

    // before 5.7.3 a snapshot in progress was missing from sys.snapshots
    let sim = start(with_catalog("5.7.2")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM sys.snapshots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    sim.shutdown().await;
}

#[test]
fn the_catalog_from_a_config_file_and_its_checks() {
    let cfg: SimConfig = serde_json::from_value(serde_json::json!({
        "storages": [{"type": "fs", "location": "/backups", "snapshots": [
            {"name": "a", "state": "PARTIAL", "started": T0, "finished": T0 + 1,
             "failures": ["x"], "reason": "why", "include_global_state": false},
            {"name": "b"}
        ]}]
    }))
    .unwrap();
    let snaps = &cfg.storages[0].snapshots;
    assert_eq!(
        (
            snaps[0].started,
            snaps[0].finished,
            snaps[0].reason.as_deref()
        ),
        (T0, T0 + 1, Some("why"))
    );
    assert!(!snaps[0].include_global_state);
    assert!(snaps[1].include_global_state);
    assert_eq!(snaps[1].state, "SUCCESS");

    let rt = tokio::runtime::Runtime::new().unwrap();
    for (storage, want) in [
        (
            Storage::fs("/b").snapshot(SnapshotDef::new("a").state("DONE")),
            "state 'DONE'",
        ),
        (
            Storage::fs("/b")
                .snapshot(SnapshotDef::new("a"))
                .snapshot(SnapshotDef::new("a")),
            "two snapshots named 'a'",
        ),
    ] {
        let err = rt
            .block_on(Simulator::builder().storage(storage).start())
            .unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
}
