//! What can be restored (SPEC A30), against the simulator and the in-memory API server: the
//! catalog reads a cluster's snapshots through a read-only repository of its own and changes
//! nothing else; `snapshot: latest` restores the newest SUCCESS snapshot that holds everything
//! requested, records it once, and fails listing what the newest ones lack when none does.

mod common;

use common::harness::*;
use cratedb_restore::job::{error::ExitStatus, snapshots};
use cratedb_sim::{SnapshotDef, TableDef};
use serde_json::json;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_733_000_000_000;

fn taken(name: &str, day: i64, state: &str, tables: &[&str]) -> SnapshotDef {
    let mut snap = SnapshotDef::new(name)
        .version("5.6.0")
        .state(state)
        .started(T0 + day * DAY)
        .finished(T0 + day * DAY + 60_000);
    for t in tables {
        snap = snap.table(TableDef::new("doc", *t).shards(1).bytes_per_shard(1_000));
    }
    snap
}

/// Four nightly snapshots: the newest failed, the one before lacks doc.b.
fn nightly() -> cratedb_sim::Storage {
    s3().snapshot(taken("nightly-1", 1, "SUCCESS", &["a", "b"]))
        .snapshot(taken("nightly-2", 2, "SUCCESS", &["a", "b"]))
        .snapshot(taken("nightly-3", 3, "SUCCESS", &["a"]))
        .snapshot(taken("nightly-4", 4, "FAILED", &["a", "b"]))
}

/// The cluster's own backup settings, as the operator's CRD has them.
fn with_backups(restore_snapshot: serde_json::Value) -> Cluster {
    let r = |k: &str| json!({"secretKeyRef": {"name": "backup-s3", "key": k}});
    Cluster {
        restore_snapshot,
        backups: Some(
            json!({"aws": {"accessKeyId": r("ak"), "secretAccessKey": r("sk"),
            "bucket": r("bucket"), "basePath": BASE_PATH, "region": r("region"), "cron": "0 * * * *"}}),
        ),
        extra_secrets: vec![(
            "backup-s3",
            vec![
                ("ak", ACCESS_KEY),
                ("sk", SECRET_KEY),
                ("bucket", BUCKET),
                ("region", "us-east-1"),
            ],
        )],
        ..Cluster::default()
    }
}

#[tokio::test]
async fn the_catalog_lists_the_clusters_backups_newest_first_and_leaves_nothing_behind() {
    let h = Harness::start(sim_builder().storage(nightly()), with_backups(json!({}))).await;
    let (source, listed) = snapshots::list(&h.config, h.client.clone(), false)
        .await
        .unwrap();
    assert_eq!(source, "spec.backups.aws");
    let listed = cratedb_restore::snapshot_catalog::newest_first(listed);
    let names: Vec<(&str, Option<&str>)> = listed
        .iter()
        .map(|s| (s.name.as_str(), s.state.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("nightly-4", Some("FAILED")),
            ("nightly-3", Some("SUCCESS")),
            ("nightly-2", Some("SUCCESS")),
            ("nightly-1", Some("SUCCESS"))
        ]
    );
    assert_eq!(listed[0].started, Some(T0 + 4 * DAY));
    assert_eq!(listed[1].tables.len(), 1);
    // One read-only repository of its own, dropped again; nothing else sent or changed.
    let statements = h.statements();
    let created: Vec<&String> = statements
        .iter()
        .filter(|s| s.starts_with("CREATE REPOSITORY"))
        .collect();
    assert_eq!(created.len(), 1);
    assert!(
        created[0].contains("\"cratedb_restore_catalog_"),
        "{}",
        created[0]
    );
    assert_eq!(h.count("DROP REPOSITORY"), 1);
    assert!(h.sim.repositories().is_empty());
    for prefix in ["SET", "RESET", "RESTORE", "ALTER", "DROP TABLE"] {
        assert_eq!(h.count(prefix), 0, "{prefix}: {statements:#?}");
    }
    let readonly = h
        .sim
        .statements()
        .into_iter()
        .find(|s| s.sql.starts_with("CREATE REPOSITORY"))
        .unwrap();
    assert!(readonly.sql.contains("readonly = $2"));
    assert_eq!(readonly.params[1], json!("true"));
    assert!(
        h.calls().is_empty(),
        "no Kubernetes change: {:?}",
        h.calls()
    );
    h.assert_no_secret_leaks().await;
}

#[tokio::test]
async fn the_catalog_reads_a_requests_location_or_says_what_is_missing() {
    let h = Harness::with_snapshot(taken("s1", 1, "SUCCESS", &["orders"])).await;
    let (source, listed) = snapshots::list(&h.config, h.client.clone(), true)
        .await
        .unwrap();
    assert_eq!(source, "spec.cluster.restoreSnapshot");
    assert_eq!(listed.len(), 1);
    let error = snapshots::list(&h.config, h.client.clone(), false)
        .await
        .unwrap_err();
    assert!(
        matches!(error, snapshots::CatalogError::Usage(ref m) if m.contains("no spec.backups")),
        "{error}"
    );
}

#[tokio::test]
async fn latest_restores_the_newest_success_that_holds_every_requested_table() {
    let h = Harness::start(
        sim_builder().storage(nightly()),
        Cluster {
            restore_snapshot: json!({"snapshot": "latest", "type": "tables", "tables": ["doc.a", "doc.b"]}),
            ..Cluster::default()
        },
    )
    .await;
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{status:#}");
    assert_eq!(status["plan"]["snapshot"], "nightly-2");
    assert_eq!(status["snapshot"], "latest");
    let restores: Vec<String> = h
        .statements()
        .into_iter()
        .filter(|s| s.starts_with("RESTORE"))
        .collect();
    assert_eq!(
        restores,
        [
            r#"RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."nightly-2" TABLE "doc"."a", "doc"."b" WITH (wait_for_completion = false)"#
        ]
    );
    assert!(
        status["steps"]["preflight"]["message"]
            .as_str()
            .unwrap()
            .starts_with("snapshot latest is nightly-2; planned RESTORE"),
        "{status:#}"
    );
    let told = h.sink.feedback();
    assert!(
        told.iter()
            .any(|(status, m)| status == "success" && m.contains("resolved to nightly-2")),
        "{told:?}"
    );
}

#[tokio::test]
async fn a_snapshot_named_latest_is_taken_as_named_and_none_fitting_fails_with_reasons() {
    let named = Harness::start(
        sim_builder().storage(nightly().snapshot(taken("latest", 0, "SUCCESS", &["a"]))),
        Cluster {
            restore_snapshot: json!({"snapshot": "latest", "type": "tables", "tables": ["doc.a"]}),
            ..Cluster::default()
        },
    )
    .await;
    assert_eq!(named.run().await, ExitStatus::Done);
    assert_eq!(named.status().await["plan"]["snapshot"], "latest");

    let none = Harness::start(
        sim_builder().storage(nightly()),
        Cluster {
            restore_snapshot: json!({"snapshot": "latest", "type": "tables", "tables": ["doc.zz"]}),
            ..Cluster::default()
        },
    )
    .await;
    assert_eq!(none.run().await, ExitStatus::Failed);
    let status = none.status().await;
    assert_eq!(
        status["steps"]["preflight"]["message"],
        "snapshot latest cannot be resolved: no snapshot in state SUCCESS holds everything requested; the newest: nightly-4 is FAILED; nightly-3 lacks doc.zz; nightly-2 lacks doc.zz; nightly-1 lacks doc.zz"
    );
    assert_eq!(none.count("RESTORE"), 0);
}
