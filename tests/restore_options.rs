//! Restore options end to end against the CrateDB simulator (SPEC A27): restoring under other
//! names next to the live tables, restoring only what is missing, and S3-compatible stores — on
//! both sides of the CrateDB versions that brought what they need.

mod common;

use common::harness::*;
use cratedb_restore::job::error::ExitStatus;
use cratedb_sim::{PartitionDef, SnapshotDef, TableDef};
use serde_json::{Value, json};

const RENAME_TABLES: (&str, &str) = ("restore.cloud.crate.io/table-rename-replacement", "$1_copy");
const SKIP: (&str, &str) = ("restore.cloud.crate.io/on-conflict", "skip");

fn restore_statements(h: &Harness) -> Vec<String> {
    h.statements()
        .into_iter()
        .filter(|s| s.starts_with("RESTORE SNAPSHOT"))
        .collect()
}

fn two_tables() -> SnapshotDef {
    orders_snapshot().table(
        TableDef::new("sales", "events")
            .shards(1)
            .bytes_per_shard(500_000),
    )
}

fn cluster(restore: Value, annotations: Vec<(&'static str, &'static str)>) -> Cluster {
    Cluster {
        restore_snapshot: restore,
        annotations,
        ..Cluster::default()
    }
}

async fn succeeded(h: &Harness, exit: ExitStatus) -> Value {
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{status:#}\n{}", h.logs.text());
    assert_eq!(status["phase"], "Succeeded", "{status:#}");
    status
}

#[tokio::test]
async fn a_table_is_restored_under_another_name_next_to_the_live_one() {
    let live = TableDef::new("doc", "orders").shards(2).docs_per_shard(7);
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(orders_snapshot()))
            .table(live),
        cluster(
            json!({"type": "tables", "tables": ["doc.orders"]}),
            vec![RENAME_TABLES],
        ),
    )
    .await;
    let status = succeeded(&h, h.run().await).await;
    assert_eq!(
        restore_statements(&h),
        [
            r#"RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-2024" TABLE "doc"."orders" WITH (wait_for_completion = false, table_rename_replacement = '$1_copy')"#
        ]
    );
    assert_eq!(
        status["plan"]["renamed"],
        json!([{"from": {"schema": "doc", "table": "orders"}, "to": {"schema": "doc", "table": "orders_copy"}}])
    );
    assert_eq!(
        status["plan"]["relations"],
        json!([{"schema": "doc", "table": "orders_copy"}])
    );
    assert_eq!(
        status["options"],
        json!({"restore.cloud.crate.io/table-rename-replacement": "$1_copy"})
    );
    // The completion check looked at the copy; the live table is untouched.
    assert!(
        status["steps"]["validate_restore_complete"]["message"]
            .as_str()
            .unwrap()
            .starts_with("1 relation(s)"),
        "{status:#}"
    );
    assert_eq!(h.sim.doc_count("doc", "orders"), Some(14));
    assert!(h.sim.doc_count("doc", "orders_copy").is_some());
}

#[tokio::test]
async fn renames_on_a_server_without_them_fail_before_anything_changes() {
    let h = Harness::start(
        sim_builder()
            .server_version("5.5.4")
            .storage(s3().snapshot(orders_snapshot().version("5.5.0"))),
        Cluster {
            version: "5.5.4",
            ..cluster(json!({"type": "all"}), vec![RENAME_TABLES])
        },
    )
    .await;
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Failed);
    assert_eq!(
        status["steps"]["preflight"]["message"],
        r#"the restore cannot start on CrateDB 5.5.4: metadata.annotations["restore.cloud.crate.io/table-rename-replacement"]: CrateDB 5.5.4 cannot restore under other names (RESTORE's rename parameters came with 5.6.0); upgrade the cluster or remove the rename annotations"#
    );
    assert!(restore_statements(&h).is_empty());
    assert!(
        h.calls().iter().all(|c| !c.contains("suspend")),
        "{:?}",
        h.calls()
    );
    assert!(h.secret_exists("restore-from-backup-my-cluster").await);
}

fn parted() -> TableDef {
    TableDef::new("doc", "parted")
        .partitioned_by(["day"])
        .shards(1)
        .bytes_per_shard(100)
        .docs_per_shard(3)
}

#[tokio::test]
async fn a_renamed_partitioned_table_needs_5_7_2() {
    let snap = || {
        SnapshotDef::new(SNAPSHOT)
            .version("5.6.0")
            .partitioned_table(
                parted()
                    .partition(PartitionDef::new("day", "2024-01-01"))
                    .partition(PartitionDef::new("day", "2024-01-02")),
            )
    };
    // 5.7.1 would restore it empty (the simulator models that bug): refused in pre-flight.
    let old = Harness::start(
        sim_builder()
            .server_version("5.7.1")
            .storage(s3().snapshot(snap())),
        Cluster {
            version: "5.7.1",
            ..cluster(json!({"type": "all"}), vec![RENAME_TABLES])
        },
    )
    .await;
    assert_eq!(old.run().await, ExitStatus::Failed);
    let message = old.status().await["steps"]["preflight"]["message"].clone();
    assert!(
        message.as_str().unwrap().contains(
            "doc.parted is partitioned: CrateDB 5.7.1 restores a renamed partitioned table empty"
        ),
        "{message}"
    );
    assert!(restore_statements(&old).is_empty());
    // 5.7.2: restored under its new name, with its rows.
    let fixed = Harness::start(
        sim_builder()
            .server_version("5.7.2")
            .storage(s3().snapshot(snap())),
        Cluster {
            version: "5.7.2",
            ..cluster(json!({"type": "all"}), vec![RENAME_TABLES])
        },
    )
    .await;
    succeeded(&fixed, fixed.run().await).await;
    assert_eq!(fixed.sim.doc_count("doc", "parted_copy"), Some(6));
}

#[tokio::test]
async fn skip_restores_only_the_missing_tables_and_partitions() {
    let snap = two_tables().partitioned_table(
        parted()
            .partition(PartitionDef::new("day", "2024-01-01"))
            .partition(PartitionDef::new("day", "2024-01-02")),
    );
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(snap))
            .table(TableDef::new("doc", "orders").shards(2))
            .table(parted().partition(PartitionDef::new("day", "2024-01-01"))),
        cluster(json!({"type": "all"}), vec![SKIP]),
    )
    .await;
    let status = succeeded(&h, h.run().await).await;
    assert_eq!(
        restore_statements(&h),
        [
            r#"RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-2024" TABLE "sales"."events", "doc"."parted" PARTITION ("day" = '2024-01-02') WITH (wait_for_completion = false)"#
        ]
    );
    let skipped: Vec<String> = status["plan"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut name = format!(
                "{}.{}",
                s["schema"].as_str().unwrap(),
                s["table"].as_str().unwrap()
            );
            if let Some(p) = s["partition"].as_str() {
                name.push_str(&format!(" PARTITION {p}"));
            }
            name
        })
        .collect();
    assert_eq!(
        skipped,
        [
            "doc.orders",
            r#"doc.parted PARTITION ("day" = '2024-01-01')"#
        ]
    );
    assert_eq!(
        h.sim.partitions().len(),
        2,
        "the missing partition came back"
    );
    let success = h.sink.feedback().last().unwrap().1.clone();
    assert!(
        success.ends_with(r#"Skipped because they exist already: doc.orders, doc.parted PARTITION ("day" = '2024-01-01')."#),
        "{success}"
    );
}

#[tokio::test]
async fn skip_with_everything_in_place_changes_nothing() {
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(two_tables()))
            .table(TableDef::new("doc", "orders").shards(2))
            .table(TableDef::new("sales", "events").shards(1)),
        cluster(json!({"type": "tables"}), vec![SKIP]),
    )
    .await;
    let status = succeeded(&h, h.run().await).await;
    assert!(restore_statements(&h).is_empty());
    assert_eq!(
        status["message"],
        "Nothing to restore: everything in the snapshot exists already (on-conflict: skip)."
    );
    // No CronJob suspended, no settings raised, no StatefulSet labelled.
    assert!(
        h.calls()
            .iter()
            .all(|c| !c.contains("create-snapshot") && !c.contains("crate-data-hot")),
        "{:?}",
        h.calls()
    );
    assert_eq!(h.count("SET GLOBAL"), 0);
    assert_eq!(
        h.sink.feedback().last().unwrap().1,
        "Nothing to restore: everything exists already (skipped: doc.orders, sales.events)."
    );
}

#[tokio::test]
async fn an_s3_compatible_store_is_reached_through_its_endpoint() {
    let minio = || {
        s3().endpoint("http://minio.minio:9000")
            .snapshot(orders_snapshot())
    };
    // From the options: the endpoint Secret named in an annotation.
    let h = Harness::start(
        sim_builder().storage(minio()),
        Cluster {
            extra_secrets: vec![("minio", vec![("url", "http://minio.minio:9000")])],
            ..cluster(
                json!({"type": "all"}),
                vec![("restore.cloud.crate.io/s3-endpoint-secret-ref", "minio/url")],
            )
        },
    )
    .await;
    succeeded(&h, h.run().await).await;
    let create = h
        .statements()
        .into_iter()
        .find(|s| s.starts_with("CREATE REPOSITORY"))
        .unwrap();
    assert_eq!(
        create,
        r#"CREATE REPOSITORY "restore_backup_20261125082542_3fa9c1" TYPE s3 WITH (max_restore_bytes_per_sec = $1, readonly = $2, access_key = $3, base_path = $4, bucket = $5, secret_key = $6, endpoint = $7, protocol = $8, use_path_style_access = $9)"#,
        "values are bound, never statement text"
    );
    h.assert_no_secret_leaks().await;

    // From the cluster's own backup settings, when the request names none.
    let h = Harness::start(
        sim_builder().storage(minio()),
        Cluster {
            backups: Some(json!({"aws": {
                "endpointUrl": {"secretKeyRef": {"name": "backup-s3", "key": "endpoint"}}}})),
            extra_secrets: vec![("backup-s3", vec![("endpoint", "http://minio.minio:9000")])],
            ..cluster(json!({"type": "all"}), vec![])
        },
    )
    .await;
    succeeded(&h, h.run().await).await;

    // Without an endpoint, CrateDB cannot verify a repository on that store.
    let h = Harness::start(
        sim_builder().storage(minio()),
        cluster(json!({"type": "all"}), vec![]),
    )
    .await;
    assert_eq!(h.run().await, ExitStatus::Failed);
    let message = h.status().await["steps"]["preflight"]["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .starts_with("Backup repository could not be created: "),
        "{message}"
    );
}
