//! Cancelling a restore the way CrateDB documents it: dropping what is being restored
//! (`DROP TABLE`; `DELETE FROM t WHERE <partition columns> = ...` for one partition).

use cratedb_sim::{ProgressMode, RestoreOutcome, SimulatorHandle};
use serde_json::{Value as Json, json};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;

use crate::common::*;

const RESTORE_ROW: &str = "SELECT state, shards FROM sys.snapshot_restore WHERE name = 'snap1'";

/// `(state, [(table, partition_ident, state) per shard])` of the restore's row, if any.
async fn restore_row(sim: &SimulatorHandle) -> Option<(String, Vec<(String, Json, String)>)> {
    let (status, body) = sql_post(sim, "", &[], &json!({ "stmt": RESTORE_ROW })).await;
    assert_eq!(status, 200, "{body}");
    let row = body["rows"].as_array()?.first()?.clone();
    let shards = row[1]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["table_name"].as_str().unwrap().to_string(),
                s["partition_ident"].clone(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Some((row[0].as_str().unwrap().to_string(), shards))
}

async fn http(sim: &SimulatorHandle, stmt: &str) -> (u16, Json) {
    sql_post(sim, "", &[], &json!({ "stmt": stmt })).await
}

fn tables_with_shards(sim: &SimulatorHandle) -> Vec<String> {
    let mut t: Vec<String> = sim
        .shards()
        .into_iter()
        .map(|s| {
            format!(
                "{}{}",
                s.table,
                s.partition_ident.map(|_| "/p").unwrap_or("")
            )
        })
        .collect();
    t.dedup();
    t
}

#[tokio::test]
async fn dropping_relations_being_restored_cancels_them_one_by_one() {
    let sim = start(
        builder("5.10.3")
            .restore_outcome("snap1", RestoreOutcome::stall())
            .progress(ProgressMode::PerObservation { percent_step: 10.0 }),
    )
    .await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    client
        .execute(
            r#"RESTORE SNAPSHOT "repo"."snap1" ALL WITH (wait_for_completion = false)"#,
            &[],
        )
        .await
        .unwrap();
    let (state, shards) = restore_row(&sim).await.unwrap();
    assert_eq!(state, "INIT");
    assert_eq!(shards.len(), 2 + 1 + 2);

    // DROP TABLE of a restoring table: gone with its shards; its shards fail in the row
    assert_eq!(client.execute("DROP TABLE doc.t1", &[]).await.unwrap(), 1);
    assert!(!sim.tables().iter().any(|t| t.name == "t1"));
    assert!(!sim.shards().iter().any(|s| s.table == "t1"));
    let (state, shards) = restore_row(&sim).await.unwrap();
    assert_eq!(state, "STARTED");
    let failed: Vec<_> = shards.iter().filter(|s| s.2 == "FAILURE").collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|s| s.0 == "t1"), "{shards:?}");
    assert!(
        shards
            .iter()
            .filter(|s| s.0 != "t1")
            .all(|s| s.2 == "STARTED"),
        "the others keep restoring: {shards:?}"
    );

    // one partition: DELETE with its partition column; CrateDB's row count is -1
    let ident = sim.partitions()[0].ident.clone();
    let (status, body) = http(&sim, "DELETE FROM doc.parted WHERE day = 1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rowcount"], -1);
    assert_eq!(sim.partitions().len(), 1);
    assert!(
        !sim.shards()
            .iter()
            .any(|s| s.partition_ident.as_deref() == Some(&ident))
    );
    let (_, shards) = restore_row(&sim).await.unwrap();
    assert!(
        shards
            .iter()
            .any(|s| s.1 == json!(ident) && s.2 == "FAILURE"),
        "{shards:?}"
    );

    // the last pieces: the row is gone at once
    let msgs = client
        .simple_query("DELETE FROM parted WHERE day = 2")
        .await
        .unwrap();
    assert!(
        msgs.iter()
            .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(0))),
        "tokio-postgres reads the tag DELETE -1 as 0"
    );
    assert!(restore_row(&sim).await.is_some());
    assert_eq!(client.execute("DROP TABLE t2", &[]).await.unwrap(), 1);
    assert_eq!(restore_row(&sim).await, None);
    assert!(sim.restores_in_progress().is_empty());
    // the partitioned table stays, without partitions
    assert!(sim.tables().iter().any(|t| t.name == "parted"));
    assert!(sim.partitions().is_empty());
    assert_eq!(
        sim.crash_output("DELETE FROM parted").stderr,
        "CONNECT OK\nDELETE OK, 0 rows affected (0.001 sec)\n"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_rest_of_a_restore_finishes_after_a_drop() {
    let sim =
        start(builder("5.10.3").progress(ProgressMode::PerObservation { percent_step: 50.0 }))
            .await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    client
        .execute(
            r#"RESTORE SNAPSHOT "repo"."snap1" TABLE t1, t2 WITH (wait_for_completion = false)"#,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(sim.restores_in_progress()[0].shards, 3);
    client.execute("DROP TABLE t2", &[]).await.unwrap();
    assert_eq!(tables_with_shards(&sim), vec!["t1".to_string()]);
    // t1 still recovers; the row ends when t1 is done (no FAILURE state for the drop)
    let mut states = Vec::new();
    while let Some((state, _)) = restore_row(&sim).await {
        states.push(state);
        assert!(states.len() < 10);
    }
    assert_eq!(states, vec!["STARTED", "STARTED"]);
    assert!(sim.shards().iter().all(|s| s.state == "STARTED"));
    sim.shutdown().await;
}

#[tokio::test]
async fn partition_deletes_are_cratedbs_and_other_deletes_are_not_modelled() {
    let sim = start(
        builder("5.10.3")
            .table(cratedb_sim::TableDef::new("doc", "plain"))
            .table(
                cratedb_sim::TableDef::new("doc", "p")
                    .shards(1)
                    .partitioned_by(["day", "region"])
                    .partition(cratedb_sim::PartitionDef::new("day", 1).value("region", "eu"))
                    .partition(cratedb_sim::PartitionDef::new("day", 1).value("region", "us"))
                    .partition(cratedb_sim::PartitionDef::new("day", 2).value("region", "eu")),
            ),
    )
    .await;
    let client = system(&sim).await;
    let parts = |sim: &SimulatorHandle| {
        let mut v: Vec<String> = sim
            .partitions()
            .into_iter()
            .map(|p| format!("{}/{}", p.values["day"], p.values["region"]))
            .collect();
        v.sort();
        v
    };
    // no partition matches: 0 rows, nothing deleted
    let (_, body) = http(&sim, "DELETE FROM p WHERE day = 3").await;
    assert_eq!(body["rowcount"], 0);
    // any condition on partition columns only; bound parameters too
    let (_, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({"stmt": "DELETE FROM p WHERE day = ? AND region = ?", "args": [1, "us"]}),
    )
    .await;
    assert_eq!(body["rowcount"], -1, "{body}");
    assert_eq!(parts(&sim), vec!["1/\"eu\"", "2/\"eu\""]);
    let (_, body) = http(&sim, "DELETE FROM p WHERE region = 'eu' AND day IN (2, 5)").await;
    assert_eq!(body["rowcount"], -1, "{body}");
    assert_eq!(parts(&sim), vec!["1/\"eu\""]);

    // refused: rows of a plain table, conditions on other columns, system tables
    for sql in [
        "DELETE FROM plain",
        "DELETE FROM plain WHERE x = 1",
        "DELETE FROM p WHERE day = 1 AND x = 2",
        "DELETE FROM sys.shards",
    ] {
        let err = client.execute(sql, &[]).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{sql}");
        assert!(
            server_message(&err).starts_with("cratedb-sim does not model"),
            "{sql}: {err}"
        );
    }
    let err = client.execute("DELETE FROM nope", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    assert_eq!(parts(&sim), vec!["1/\"eu\""]);
    assert_eq!(sim.rejected_statements().len(), 4);
    // every partition; crash prints CrateDB's unknown row count
    assert_eq!(
        sim.crash_output("DELETE FROM p").stderr,
        "CONNECT OK\nDELETE OK, -1 rows affected (0.001 sec)\n"
    );
    assert!(sim.partitions().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn dropping_a_partitioned_table_being_restored_ends_its_restore() {
    let sim = start(builder("5.10.3").restore_outcome("snap1", RestoreOutcome::stall())).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    client
        .execute(
            r#"RESTORE SNAPSHOT "repo"."snap1" TABLE parted WITH (wait_for_completion = false)"#,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(restore_row(&sim).await.unwrap().1.len(), 2);
    assert_eq!(client.execute("DROP TABLE parted", &[]).await.unwrap(), 1);
    assert!(sim.partitions().is_empty() && sim.shards().is_empty());
    assert_eq!(restore_row(&sim).await, None);
    // dropping it again is CrateDB's unknown relation
    let err = client.execute("DROP TABLE parted", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    sim.shutdown().await;
}
