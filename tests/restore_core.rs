//! Restore runs against the CrateDB simulator and an in-memory API: the core path of every
//! restore type, and the ways a run fails. Each scenario checks the SQL CrateDB received, the
//! status, the Events and the exit code.

mod common;

use std::time::Duration;

use common::harness::*;
use cratedb_restore::job::error::ExitStatus;
use cratedb_sim::{PartitionDef, RestoreOutcome, SnapshotDef, TableDef, UserDef};
use serde_json::{Value, json};

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

fn restore(extra: Value) -> Cluster {
    Cluster {
        restore_snapshot: extra,
        ..Default::default()
    }
}

fn step_states(status: &Value) -> Vec<(String, String)> {
    status["steps"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v["state"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn state_of(status: &Value, step: &str) -> String {
    status["steps"][step]["state"]
        .as_str()
        .unwrap_or("absent")
        .to_string()
}

fn restore_statements(h: &Harness) -> Vec<String> {
    h.statements()
        .into_iter()
        .filter(|s| s.starts_with("RESTORE SNAPSHOT"))
        .collect()
}

async fn assert_succeeded(h: &Harness, exit: ExitStatus) -> Value {
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{status:#}\n{}", h.logs.text());
    assert_eq!(status["phase"], "Succeeded");
    assert!(
        h.sim.rejected_statements().is_empty(),
        "{:?}",
        h.sim.rejected_statements()
    );
    assert!(h.sim.repositories().is_empty(), "the repository is dropped");
    assert_eq!(
        h.cr().await["spec"]["cluster"]["restoreSnapshot"]["snapshot"],
        "",
        "request reset"
    );
    let events: Vec<String> = h.events().await.into_iter().map(|(r, _)| r).collect();
    assert!(
        events.contains(&"RestoreSucceeded".to_string()),
        "{events:?}"
    );
    h.assert_no_secret_leaks().await;
    status
}

#[tokio::test]
async fn type_all_succeeds_end_to_end() {
    let h = Harness::with_snapshot(snapshot()).await;
    let status = assert_succeeded(&h, h.run().await).await;
    assert_eq!(status["progressPercent"], 100.0);
    assert_eq!(status["plan"]["keyword"], "ALL");
    assert_eq!(
        status["plan"]["relations"],
        json!([{"schema": "doc", "table": "orders"}, {"schema": "sales", "table": "events"}])
    );
    assert_eq!(status["progress"]["totalBytes"], 2_500_000);
    assert_eq!(status["progress"]["recoveredBytes"], 2_500_000);
    assert_eq!(
        restore_statements(&h),
        [
            r#"RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-2024" ALL WITH (wait_for_completion = false)"#
        ]
    );
    assert_eq!(h.count("CREATE REPOSITORY"), 1);
    assert_eq!(
        h.statements()
            .iter()
            .find(|s| s.starts_with("CREATE REPOSITORY"))
            .unwrap(),
        r#"CREATE REPOSITORY "restore_backup_20261125082542_3fa9c1" TYPE s3 WITH (max_restore_bytes_per_sec = $1, readonly = $2, access_key = $3, base_path = $4, bucket = $5, secret_key = $6)"#
    );
    let states = step_states(&status);
    assert_eq!(states.len(), 14);
    assert!(states.iter().all(|(_, s)| s == "Succeeded"), "{states:?}");
    let events = h.events().await;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "RestoreSent" && n.contains("RESTORE started"))
    );
    assert_eq!(
        h.sink.feedback().last().unwrap(),
        &(
            "success".to_string(),
            "The snapshot has been restored successfully.".to_string()
        )
    );
    let conditions = status["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Restored" && c["status"] == "True")
    );
}

#[tokio::test]
async fn metadata_restores_no_tables_and_needs_no_row() {
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(snapshot()))
            .table(TableDef::new("doc", "orders")),
        restore(json!({"type": "metadata"})),
    )
    .await;
    let status = assert_succeeded(&h, h.run().await).await;
    assert_eq!(
        restore_statements(&h),
        [
            r#"RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-2024" METADATA WITH (wait_for_completion = false)"#
        ]
    );
    assert_eq!(
        status["plan"]["relations"],
        json!([]),
        "an existing table is no conflict for METADATA"
    );
    // METADATA replaces persistent settings with the snapshot's; the owned ones are put back.
    assert!(status["settingsChangedBySnapshot"].is_array());
}

#[tokio::test]
async fn tables_with_hostile_names_are_quoted() {
    let snap = SnapshotDef::new(SNAPSHOT)
        .version("5.6.0")
        .table(
            TableDef::new("doc", "we\"ird")
                .shards(1)
                .bytes_per_shard(10),
        )
        .table(
            TableDef::new("doc", "semi;colon")
                .shards(1)
                .bytes_per_shard(10),
        )
        .table(
            TableDef::new("doc", "täble_日本")
                .shards(1)
                .bytes_per_shard(10),
        )
        .table(
            TableDef::new("doc", "untouched")
                .shards(1)
                .bytes_per_shard(10),
        );
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(snap)),
        restore(json!({"type": "tables", "tables": ["doc.\"we\"\"ird\"", "semi;colon", "doc.täble_日本"]})),
    )
    .await;
    let status = assert_succeeded(&h, h.run().await).await;
    assert_eq!(
        restore_statements(&h),
        [
            r#"RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-2024" TABLE "doc"."we""ird", "doc"."semi;colon", "doc"."täble_日本" WITH (wait_for_completion = false)"#
        ]
    );
    assert_eq!(
        status["plan"]["relations"],
        json!([{"schema": "doc", "table": "we\"ird"}, {"schema": "doc", "table": "semi;colon"},
            {"schema": "doc", "table": "täble_日本"}])
    );
    let tables: Vec<String> = h
        .sim
        .tables()
        .into_iter()
        .map(|t| format!("{}.{}", t.schema, t.name))
        .collect();
    assert!(!tables.contains(&"doc.untouched".to_string()));
}

#[tokio::test]
async fn partitions_restore_into_an_existing_partitioned_table() {
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(two_day_snapshot(100)))
            .table(parted_table(100).partition(PartitionDef::new("day", "2024-01-02"))),
        restore(json!({"type": "partitions", "partitions": [
            {"table_ident": "doc.parted", "columns": [{"name": "day", "value": "'2024-01-01'"}]}
        ]})),
    )
    .await;
    let status = assert_succeeded(&h, h.run().await).await;
    assert_eq!(
        restore_statements(&h),
        [
            r#"RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-2024" TABLE "doc"."parted" PARTITION ("day" = '2024-01-01') WITH (wait_for_completion = false)"#
        ]
    );
    assert_eq!(
        status["plan"]["partitions"],
        json!([{"schema": "doc", "table": "parted", "values": "(\"day\" = '2024-01-01')",
            "columns": [{"column": "day", "value": "2024-01-01"}]}])
    );
    assert_eq!(h.sim.partitions().len(), 2);
}

async fn sections_on(version: &str) -> (Harness, Value) {
    // A snapshot no newer than either server.
    let h = Harness::start(
        sim_builder().server_version(version).storage(s3().snapshot(snapshot().version("5.5.0"))),
        Cluster {
            restore_snapshot: json!({"type": "sections", "sections": ["tables", "users", "privileges"]}),
            version: if version.starts_with("5.5") { "5.5.2" } else { "5.10.3" },
            ..Default::default()
        },
    )
    .await;
    let exit = h.run().await;
    let status = assert_succeeded(&h, exit).await;
    (h, status)
}

#[tokio::test]
async fn sections_use_the_keywords_of_the_server_version() {
    let (old, _) = sections_on("5.5.2").await;
    assert_eq!(
        restore_statements(&old),
        [
            r#"RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-2024" TABLES, USERS, PRIVILEGES WITH (wait_for_completion = false)"#
        ]
    );
    let (new, status) = sections_on("5.10.3").await;
    assert_eq!(
        restore_statements(&new),
        [
            r#"RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-2024" TABLES, USERMANAGEMENT WITH (wait_for_completion = false)"#
        ]
    );
    assert_eq!(
        status["plan"]["relations"],
        json!([{"schema": "doc", "table": "orders"}, {"schema": "sales", "table": "events"}])
    );
}

#[tokio::test]
async fn a_missing_snapshot_fails_before_anything_changes() {
    let h = Harness::start(sim_builder().storage(s3()), Cluster::default()).await;
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Failed);
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["steps"]["preflight"]["state"], "Failed");
    assert_eq!(
        status["steps"]["preflight"]["message"],
        "Snapshot snap-2024 does not exist in repository restore_backup_20261125082542_3fa9c1."
    );
    assert_eq!(state_of(&status, "before_cluster_update"), "Skipped");
    assert_eq!(state_of(&status, "restore_backup_data"), "Skipped");
    assert_eq!(state_of(&status, "restore_system_user_password"), "Skipped");
    assert_eq!(state_of(&status, "after_restore_backup"), "Succeeded");
    assert_eq!(state_of(&status, "reset_snapshot"), "Succeeded");
    assert_eq!(restore_statements(&h).len(), 0);
    assert!(
        h.sim.repositories().is_empty(),
        "repository dropped after the failed pre-flight"
    );
    // Nothing in the cluster was touched: CronJob untouched, backup-metrics still up.
    assert_eq!(h.cronjob_suspended().await, Some(false));
    assert!(
        !h.calls()
            .iter()
            .any(|c| c.contains("create-snapshot") || c.contains("backup-metrics")),
        "{:?}",
        h.calls()
    );
    assert_eq!(
        h.sink.feedback(),
        [(
            "failure".to_string(),
            "Snapshot snap-2024 does not exist in repository restore_backup_20261125082542_3fa9c1."
                .to_string()
        )]
    );
    let events = h.events().await;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "StepFailed" && n.contains("does not exist in repository"))
    );
    assert!(events.iter().any(|(r, _)| r == "RestoreFailed"));
    assert_eq!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Restored")
            .unwrap()["reason"],
        "Preflight"
    );
}

#[tokio::test]
async fn repository_creation_failure_is_reported_and_keeps_the_credentials() {
    // The simulator's storage holds other credentials: CrateDB cannot verify the repository.
    let storage = cratedb_sim::Storage::s3(BUCKET, BASE_PATH, "AKIA-OTHER", "other-secret")
        .snapshot(snapshot());
    let h = Harness::start(sim_builder().storage(storage), Cluster::default()).await;
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Failed);
    let message = status["steps"]["preflight"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Backup repository could not be created: "),
        "{message}"
    );
    assert_eq!(h.sink.feedback()[0].0, "failure");
    assert!(
        h.sink.feedback()[0]
            .1
            .starts_with("Backup repository could not be created")
    );
    // Nothing was changed: the user fixes the credentials and applies the request again (A26).
    assert!(
        h.secret_exists("restore-from-backup-my-cluster").await,
        "the fixed restore Secret is kept after a pre-flight failure"
    );
    assert!(
        status["steps"]["after_restore_backup"]["message"]
            .as_str()
            .unwrap()
            .contains("Secret restore-from-backup-my-cluster kept: no RESTORE was sent"),
        "{status:#}"
    );
    assert_eq!(
        h.deployment_replicas("backup-metrics-my-cluster").await,
        Some(1)
    );
    assert_eq!(state_of(&status, "reset_snapshot"), "Succeeded");
    h.assert_no_secret_leaks().await;
}

#[tokio::test]
async fn every_existing_table_is_reported_and_no_restore_is_sent() {
    let snap = snapshot().table(TableDef::new("doc", "customers").shards(1));
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(snap))
            .table(TableDef::new("doc", "orders"))
            .table(TableDef::new("sales", "events"))
            .table(TableDef::new("doc", "customers")),
        Cluster::default(),
    )
    .await;
    assert_eq!(h.run().await, ExitStatus::Failed);
    let status = h.status().await;
    let message = status["steps"]["preflight"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the restore cannot start, 3 conflict(s): "),
        "{message}"
    );
    for t in ["doc.orders", "sales.events", "doc.customers"] {
        assert!(
            message.contains(&format!("{t} already exists in the cluster as a table")),
            "{t}: {message}"
        );
    }
    assert_eq!(status["plan"]["conflicts"].as_array().unwrap().len(), 3);
    assert_eq!(restore_statements(&h).len(), 0, "no RESTORE is sent");
    assert!(
        !h.calls().iter().any(|c| c.contains("create-snapshot")),
        "no CronJob change"
    );
    assert_eq!(h.sink.feedback().len(), 1);
    assert!(h.sink.feedback()[0].1.contains("3 conflict(s)"));
}

#[tokio::test]
async fn unallocated_primaries_fail_with_cratedbs_explanation() {
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(snapshot()))
            .restore_outcome(SNAPSHOT, RestoreOutcome::primaries_never_allocated()),
        Cluster::default(),
    )
    .await;
    assert_eq!(h.run().await, ExitStatus::Failed);
    let status = h.status().await;
    assert_eq!(
        state_of(&status, "await_restore"),
        "Succeeded",
        "the row vanished"
    );
    assert_eq!(state_of(&status, "validate_restore_complete"), "Failed");
    let message = status["steps"]["validate_restore_complete"]["message"]
        .as_str()
        .unwrap();
    assert!(message.starts_with("Snapshot could not be restored completely: primary shard 0 of doc.orders is UNASSIGNED: "), "{message}");
    assert!(
        message.contains(cratedb_sim::DISK_WATERMARK_EXPLANATION),
        "{message}"
    );
    assert!(!message.contains("Insufficient disc space"));
    assert_eq!(
        state_of(&status, "restore_system_user_password"),
        "Succeeded",
        "runs after any RESTORE"
    );
    assert_eq!(state_of(&status, "send_success_notification"), "Skipped");
    assert_eq!(state_of(&status, "after_cluster_update"), "Succeeded");
    assert!(h.sink.feedback().iter().all(|(s, _)| s != "success"));
    assert_eq!(
        h.cronjob_suspended().await,
        Some(false),
        "cleanup re-enabled the CronJob"
    );
}

#[tokio::test]
async fn a_restore_that_never_finishes_hits_the_deadline_and_cleans_up() {
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(snapshot()))
            .restore_outcome(SNAPSHOT, RestoreOutcome::stall()),
        Cluster::default(),
    )
    .await;
    let mut config = h.config.clone();
    config.restore_timeout = Duration::from_millis(600);
    let exit = cratedb_restore::job::run(config, h.client.clone()).await;
    assert_eq!(exit, ExitStatus::Failed);
    let status = h.status().await;
    assert_eq!(state_of(&status, "await_restore"), "Failed");
    let message = status["steps"]["await_restore"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.starts_with("the restore did not finish within 0.6s (CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT): CrateDB is still restoring doc.orders, sales.events (50% of 2500000 bytes"),
        "{message}"
    );
    assert_eq!(
        status["steps"]["await_restore"]["result"]["stillRestoring"],
        serde_json::json!([{"schema": "doc", "table": "orders"}, {"schema": "sales", "table": "events"}])
    );
    // Cleanup never pulls the repository from under a running restore (A26); it says so.
    assert_eq!(
        h.sim.repositories().len(),
        1,
        "the repository stays while CrateDB restores"
    );
    assert_eq!(h.count("DROP REPOSITORY"), 0);
    let cleanup = status["steps"]["after_restore_backup"]["message"]
        .as_str()
        .unwrap();
    assert!(
        cleanup.contains("left in place: CrateDB is still restoring from it"),
        "{cleanup}"
    );
    // Settings are put back all the same.
    assert!(cleanup.contains("recovery settings reset"), "{cleanup}");
    assert_eq!(status["phase"], "Failed");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("CrateDB is still restoring doc.orders"),
        "{status:#}"
    );
    for cleanup in [
        "restore_internal_tables",
        "after_restore_backup",
        "after_cluster_update",
        "flush_notifications",
        "reset_snapshot",
    ] {
        assert_eq!(
            state_of(&status, cleanup),
            "Succeeded",
            "{cleanup} runs after the deadline"
        );
    }
    assert_eq!(
        h.deployment_replicas("backup-metrics-my-cluster").await,
        Some(1)
    );
    assert!(
        h.sink
            .feedback()
            .iter()
            .any(|(s, m)| s == "failure" && m.contains("did not finish"))
    );
}

#[tokio::test]
async fn a_killed_job_resumes_and_adopts_the_running_restore() {
    let h = Harness::with_snapshot(snapshot()).await;
    // First pod: stop it (as SIGKILL would) once the restore runs in CrateDB.
    let first = h.run();
    let killed = async {
        loop {
            if !h.sim.restores_in_progress().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::select! {
        exit = first => panic!("the first pod finished ({exit:?}) before it could be killed"),
        () = killed => {}
    }
    let midway = h.status().await;
    assert_eq!(midway["phase"], "Running");
    // Second pod: same run id.
    let status = assert_succeeded(&h, h.run().await).await;
    assert_eq!(
        restore_statements(&h).len(),
        1,
        "RESTORE issued once: {:?}",
        h.statements()
    );
    assert_eq!(h.count("CREATE REPOSITORY"), 1);
    assert_eq!(h.count("DROP REPOSITORY"), 1);
    // Killed either after the RESTORE was recorded or between sending and recording it: both
    // ways the second pod must not send it again.
    assert_eq!(status["steps"]["restore_backup_data"]["state"], "Succeeded");
    let suspends = h
        .calls()
        .iter()
        .filter(|c| c.contains("create-snapshot") && c.contains("\"suspend\":true"))
        .count();
    assert_eq!(
        suspends,
        1,
        "the CronJob is suspended once: {:?}",
        h.calls()
    );
    assert_eq!(h.cronjob_suspended().await, Some(false));
}

#[tokio::test]
async fn a_superseded_run_exits_without_touching_anything() {
    let h = Harness::with_snapshot(snapshot()).await;
    let mut config = h.config.clone();
    config.run_id = "20261101000000-000000".into();
    let exit = cratedb_restore::job::run(config, h.client.clone()).await;
    assert_eq!(exit, ExitStatus::Done);
    assert!(h.statements().is_empty(), "no SQL: {:?}", h.statements());
    assert!(h.calls().is_empty(), "no changes: {:?}", h.calls());
    assert!(h.status().await.is_null(), "no status written");
    assert!(h.sink.received().is_empty());
    assert!(h.logs.text().contains("nothing to do: the resource carries run id 20261125082542-3fa9c1, not 20261101000000-000000"));
}

#[tokio::test]
async fn a_run_whose_id_is_not_stored_yet_waits_for_it() {
    // The webhook creates the Job before the API server stores the request: the Pod may read
    // the resource while it still carries the previous run's id (A4, A26).
    let h = Harness::with_snapshot(snapshot()).await;
    let next_run = "20261125090000-0b0b0b";
    let mut config = h.config.clone();
    config.run_id = next_run.into();
    config.start_wait = Duration::from_secs(10);
    let api: kube::Api<cratedb_restore::resource::CrateDB> =
        kube::Api::namespaced(h.client.clone(), common::NS);
    let store_later = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.patch(
            CLUSTER,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {
                "restore.cloud.crate.io/run-id": next_run}}})),
        )
        .await
        .unwrap();
    };
    let (exit, ()) = tokio::join!(
        cratedb_restore::job::run(config, h.client.clone()),
        store_later
    );
    assert_eq!(exit, ExitStatus::Done, "{}", h.logs.text());
    let status = h.status().await;
    assert_eq!(status["runId"], next_run);
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(h.count("RESTORE SNAPSHOT"), 1);
    assert!(
        h.logs
            .text()
            .contains("waiting for the request to be stored")
    );
}

#[tokio::test]
async fn a_users_restore_locks_out_system_until_its_password_is_reset() {
    let snap = snapshot().users(vec![
        UserDef::new("system", "source-cluster-password"),
        UserDef::new("admin", "x"),
    ]);
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(snap)),
        restore(json!({"type": "sections", "sections": ["tables", "users"]})),
    )
    .await;
    let status = assert_succeeded(&h, h.run().await).await;
    assert_eq!(
        state_of(&status, "restore_system_user_password"),
        "Succeeded"
    );
    let system = h
        .sim
        .users()
        .into_iter()
        .find(|u| u.name == "system")
        .unwrap();
    assert_eq!(
        system.password.as_deref(),
        Some(SYSTEM_PASSWORD),
        "the cluster's own password is back"
    );
}

#[tokio::test]
async fn tls_required_but_not_offered_fails_clearly_and_prefer_falls_back() {
    use cratedb_restore::cratedb::tls::SslMode;
    // The simulator offers no TLS: `prefer` (the default, used by every other test) goes plain.
    let h = Harness::with_snapshot(snapshot()).await;
    let mut config = h.config.clone();
    config.crate_ssl_mode = SslMode::Require;
    let exit = cratedb_restore::job::run(config, h.client.clone()).await;
    assert_eq!(exit, ExitStatus::Failed);
    let status = h.status().await;
    let message = status["steps"]["preflight"]["message"].as_str().unwrap();
    assert!(message.contains("server does not support TLS"), "{message}");
    assert!(
        h.statements().is_empty(),
        "no statement went out unencrypted"
    );
}

#[tokio::test]
async fn a_tls_speaking_cratedb_is_spoken_to_encrypted_and_verified_with_a_ca() {
    use cratedb_restore::{cratedb::tls::SslMode, webhook::tls::self_signed};
    use cratedb_sim::Frontend;
    let server = self_signed(&["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("crate-ca.pem");
    std::fs::write(&ca, &server.cert_pem).unwrap();
    let wrong_ca = dir.path().join("other-ca.pem");
    std::fs::write(
        &wrong_ca,
        self_signed(&["127.0.0.1".into()]).unwrap().cert_pem,
    )
    .unwrap();

    // Default (prefer): encrypted because CrateDB offers TLS.
    let h = Harness::start(
        sim_builder()
            .tls(server.cert_pem.clone(), server.key_pem.clone())
            .storage(s3().snapshot(snapshot())),
        Cluster::default(),
    )
    .await;
    assert_succeeded(&h, h.run().await).await;
    let pg: Vec<_> = h
        .sim
        .statements()
        .into_iter()
        .filter(|s| matches!(s.frontend, Frontend::PgWire | Frontend::PgWireTls))
        .collect();
    assert!(!pg.is_empty());
    assert!(
        pg.iter().all(|s| s.frontend == Frontend::PgWireTls),
        "every statement went over TLS"
    );

    // Verified against the right CA: works; against another CA: refused before any statement.
    for (ca_file, ok) in [(ca, true), (wrong_ca, false)] {
        let h = Harness::start(
            sim_builder()
                .tls(server.cert_pem.clone(), server.key_pem.clone())
                .storage(s3().snapshot(snapshot())),
            Cluster::default(),
        )
        .await;
        let mut config = h.config.clone();
        config.crate_ssl_mode = SslMode::Require;
        config.crate_ca_file = Some(ca_file);
        let exit = cratedb_restore::job::run(config, h.client.clone()).await;
        if ok {
            assert_eq!(exit, ExitStatus::Done, "{}", h.logs.text());
        } else {
            assert_eq!(exit, ExitStatus::Failed);
            let status = h.status().await;
            let message = status["steps"]["preflight"]["message"].as_str().unwrap();
            assert!(message.contains("invalid peer certificate"), "{message}");
            assert!(h.statements().is_empty());
        }
    }
}

#[tokio::test]
async fn an_existing_timestamp_partition_is_found_before_the_restore() {
    // CrateDB keeps a timestamp partition's value as epoch milliseconds.
    let day = || {
        TableDef::new("doc", "events_by_day")
            .partitioned_by(["day"])
            .shards(1)
    };
    let jan_1 = PartitionDef::new("day", 1_704_067_200_000_i64);
    let snap = SnapshotDef::new(SNAPSHOT)
        .version("5.6.0")
        .partitioned_table(day().partition(jan_1.clone()));
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(snap)).table(day().partition(jan_1)),
        restore(json!({"type": "partitions", "partitions": [
            {"table_ident": "doc.events_by_day", "columns": [{"name": "day", "value": "'2024-01-01'"}]}
        ]})),
    )
    .await;
    assert_eq!(h.run().await, ExitStatus::Failed);
    let status = h.status().await;
    assert_eq!(
        status["plan"]["conflicts"],
        json!([
            "partition doc.events_by_day (day = '2024-01-01') already exists in the cluster; drop it first (DELETE FROM doc.events_by_day WHERE ...) or restore other partitions"
        ])
    );
    assert_eq!(restore_statements(&h).len(), 0, "found before any RESTORE");
}
