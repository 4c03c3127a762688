//! Restore runs against the CrateDB simulator and an in-memory API: the core path of every
//! restore type, and the ways a run fails.

mod common;

use common::harness::*;
use cratedb_restore::job::error::ExitStatus;
use cratedb_sim::{SnapshotDef, TableDef};
use serde_json::json;

fn snapshot() -> SnapshotDef {
    SnapshotDef::new(SNAPSHOT)
        .version("5.6.0")
        .table(
            TableDef::new("doc", "orders")
                .shards(2)
                .bytes_per_shard(1_000_000),
        )
        .table(
            TableDef::new("sales", "events")
                .shards(1)
                .bytes_per_shard(500_000),
        )
}

#[tokio::test]
async fn type_all_succeeds_end_to_end() {
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(snapshot())),
        Cluster::default(),
    )
    .await;
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{status:#}\n{}", h.logs.text());
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(status["progressPercent"], 100.0);
    assert_eq!(status["plan"]["keyword"], "ALL");
    assert_eq!(
        status["plan"]["relations"],
        json!(["doc.orders", "sales.events"])
    );
    assert_eq!(h.count("RESTORE SNAPSHOT"), 1);
    assert_eq!(h.count("CREATE REPOSITORY"), 1);
    assert!(
        h.sim.rejected_statements().is_empty(),
        "{:?}",
        h.sim.rejected_statements()
    );
    assert!(h.sim.repositories().is_empty(), "repository dropped");
    assert_eq!(
        h.cr().await["spec"]["cluster"]["restoreSnapshot"]["snapshot"],
        ""
    );
    h.assert_no_secret_leaks().await;
}
