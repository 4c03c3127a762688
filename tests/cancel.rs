//! Cancelling a run (SPEC A29) against the simulator and the in-memory API server: before the
//! RESTORE nothing is sent and what the run changed is undone; while CrateDB restores, exactly
//! the relations and partitions the run creates are dropped, the run waits until CrateDB no
//! longer lists the restore, cleans up and ends `Cancelled`; a Pod replaced during the cancel
//! continues it. (The watch that notices a cancel within moments needs a real API server: the
//! e2e suites cover it. The in-memory one has no watch, so here the cancel is noticed in a status
//! write's answer or at a Pod's start, which the Job also does.)

mod common;

use std::time::Duration;

use common::harness::*;
use cratedb_restore::{job::error::ExitStatus, resource::CrateDB};
use cratedb_sim::{PartitionDef, ProgressMode, SnapshotDef, TableDef};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

const CANCEL: &str = "restore.cloud.crate.io/cancel";

async fn cancel(h: &Harness, value: &str, by: Option<&str>) {
    let api: Api<CrateDB> = Api::namespaced(h.client.clone(), common::NS);
    let mut patch = json!({"metadata": {"annotations": {CANCEL: value}}});
    if let Some(by) = by {
        // What the mutating webhook records when it admits the cancel.
        patch["status"] = json!({"restore": {"runId": RUN_ID, "cancelledBy": by,
            "cancelRequestedAt": "2026-12-07T10:00:00Z"}});
    }
    api.patch(CLUSTER, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Runs the Job until `step` is running, then stops it (its Pod goes away).
async fn run_until(h: &Harness, step: &str) {
    let watch = async {
        loop {
            if h.status().await["steps"][step]["state"] == "Running" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::select! {
        exit = h.run() => panic!("the run ended ({exit:?}) before {step}"),
        () = watch => {}
    }
}

fn assert_cancelled_and_clean(h: &Harness, exit: ExitStatus, status: &Value) {
    assert_eq!(exit, ExitStatus::Done, "{status:#}\n{}", h.logs.text());
    assert_eq!(status["phase"], "Cancelled", "{status:#}");
    assert!(h.sim.repositories().is_empty(), "repository dropped");
    assert!(h.sim.restores_in_progress().is_empty());
}

async fn cr_annotations(h: &Harness) -> Value {
    h.cr().await["metadata"]["annotations"].clone()
}

#[tokio::test]
async fn a_run_cancelled_before_its_pod_starts_sends_nothing_and_ends_cancelled() {
    let h = Harness::with_snapshot(orders_snapshot()).await;
    cancel(&h, "true", Some("alice")).await;
    let exit = h.run().await;
    let status = h.status().await;
    assert_cancelled_and_clean(&h, exit, &status);
    assert_eq!(h.count("RESTORE SNAPSHOT"), 0);
    assert_eq!(h.count("CREATE REPOSITORY"), 0);
    assert_eq!(status["cancelledBy"], "alice");
    assert_eq!(status["steps"]["preflight"]["state"], "Skipped");
    assert_eq!(status["steps"]["cancel_restore"]["state"], "Skipped");
    assert_eq!(
        status["message"],
        "Restore cancelled by alice: no RESTORE was sent, and what it changed was undone."
    );
    // The request is reset like at any end, and the cancel does not stay behind.
    let cr = h.cr().await;
    assert_eq!(cr["spec"]["cluster"]["restoreSnapshot"]["snapshot"], "");
    assert!(cr_annotations(&h).await.get(CANCEL).is_none());
    let events: Vec<String> = h.events().await.into_iter().map(|(r, _)| r).collect();
    assert!(
        events.contains(&"RestoreCancelled".to_string()),
        "{events:?}"
    );
    let told = h.sink.feedback();
    assert!(
        told.iter()
            .any(|(status, m)| status == "failure" && m.contains("cancelled by alice")),
        "{told:?}"
    );
}

#[tokio::test]
async fn a_cancel_while_crate_restores_drops_only_what_the_run_creates() {
    // One table exists already and stays; the snapshot's two others are restored slowly.
    let snap = SnapshotDef::new(SNAPSHOT)
        .version("5.6.0")
        .table(
            TableDef::new("doc", "orders")
                .shards(2)
                .bytes_per_shard(1_000_000),
        )
        .table(
            TableDef::new("sales", "events")
                .shards(2)
                .bytes_per_shard(1_000_000),
        );
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(snap))
            .table(TableDef::new("doc", "keep"))
            .progress(ProgressMode::PerObservation { percent_step: 1.0 }),
        Cluster {
            restore_snapshot: json!({"type": "tables", "tables": ["doc.orders", "sales.events"]}),
            ..Cluster::default()
        },
    )
    .await;
    let run = h.run();
    let cancel_midway = async {
        loop {
            let status = h.status().await;
            if status["steps"]["await_restore"]["state"] == "Running"
                && status["progress"]["percent"].as_f64().unwrap_or(0.0) > 5.0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        cancel(&h, RUN_ID, Some("bob")).await;
    };
    let (exit, ()) = tokio::join!(run, cancel_midway);
    let status = h.status().await;
    assert_cancelled_and_clean(&h, exit, &status);
    assert_eq!(h.count("RESTORE SNAPSHOT"), 1);
    let drops: Vec<String> = h
        .statements()
        .into_iter()
        .filter(|s| s.starts_with("DROP TABLE"))
        .collect();
    assert_eq!(
        drops,
        [
            r#"DROP TABLE IF EXISTS "doc"."orders""#,
            r#"DROP TABLE IF EXISTS "sales"."events""#
        ]
    );
    let tables: Vec<String> = h.sim.tables().iter().map(|t| t.name.clone()).collect();
    assert_eq!(tables, ["keep"], "only what existed before is left");
    assert_eq!(status["steps"]["await_restore"]["state"], "Skipped");
    assert_eq!(status["steps"]["cancel_restore"]["state"], "Succeeded");
    assert_eq!(
        status["steps"]["validate_restore_complete"]["state"],
        "Skipped"
    );
    assert_eq!(
        status["steps"]["after_restore_backup"]["state"],
        "Succeeded"
    );
    assert_eq!(h.cronjob_suspended().await, Some(false), "CronJob back");
    assert!(
        status["message"].as_str().unwrap().starts_with(
            "Restore cancelled by bob: the relations and partitions it created were dropped"
        ),
        "{status:#}"
    );
    h.assert_no_secret_leaks().await;
}

#[tokio::test]
async fn a_pod_replaced_during_a_cancel_continues_it_and_drops_a_partition_not_its_table() {
    let snap = two_day_snapshot(1_000_000);
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(snap))
            .table(parted_table(1_000_000).partition(PartitionDef::new("day", "2024-01-02")))
            .restore_outcome(SNAPSHOT, cratedb_sim::RestoreOutcome::stall()),
        Cluster {
            restore_snapshot: json!({"type": "partitions", "partitions": [
                {"table_ident": "doc.parted", "columns": [{"name": "day", "value": "'2024-01-01'"}]}
            ]}),
            ..Cluster::default()
        },
    )
    .await;
    // The first Pod waits on the restore and goes away; the cancel is admitted meanwhile.
    run_until(&h, "await_restore").await;
    assert_eq!(h.sim.partitions().len(), 2);
    cancel(&h, "true", Some("carol")).await;

    let exit = h.run().await;
    let status = h.status().await;
    assert_cancelled_and_clean(&h, exit, &status);
    assert_eq!(
        h.count("RESTORE SNAPSHOT"),
        1,
        "a cancelled run never sends another"
    );
    assert_eq!(
        h.count("DROP TABLE"),
        0,
        "the partitioned table existed before"
    );
    assert_eq!(
        h.statements()
            .into_iter()
            .filter(|s| s.starts_with("DELETE"))
            .collect::<Vec<_>>(),
        [r#"DELETE FROM "doc"."parted" WHERE "day" = '2024-01-01'"#]
    );
    let left: Vec<Value> = h.sim.partitions().iter().map(|p| json!(p.values)).collect();
    assert_eq!(left.len(), 1, "the existing partition stays: {left:?}");
    assert_eq!(status["cancelledBy"], "carol");
    assert_eq!(
        status["steps"]["cancel_restore"]["result"]["droppedPartitions"],
        1
    );
}
