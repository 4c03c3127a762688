//! Full restore runs (every step of the reference) on the simulator and an in-memory API: the
//! reference operator's four integration scenarios (AWS/Azure × with/without Grand Central) and
//! the cluster shapes around them. Each checks the order of Kubernetes changes, the SQL, the
//! notifications, the final status, and that no secret value leaks.

mod common;

use common::harness::*;
use cratedb_restore::job::error::ExitStatus;
use cratedb_sim::{PrivilegeDef, SnapshotDef, TableDef, UserDef};
use serde_json::json;

fn with_gc_tables(snap: SnapshotDef) -> SnapshotDef {
    snap.table(
        TableDef::new("gc", "alembic_version")
            .shards(1)
            .bytes_per_shard(10),
    )
    .table(
        TableDef::new("gc", "scheduled_jobs")
            .shards(1)
            .bytes_per_shard(10),
    )
}

/// The recorded Kubernetes changes with volatile parts (timestamps) replaced.
fn calls(h: &Harness) -> Vec<String> {
    h.calls()
        .into_iter()
        .map(|c| {
            let re = c.find("operator-").map(|i| {
                let end = c[i..].find('"').map(|e| i + e).unwrap_or(c.len());
                format!("{}operator-<ts>{}", &c[..i], &c[end..])
            });
            re.unwrap_or(c)
        })
        .collect()
}

fn settings_statements(h: &Harness) -> Vec<String> {
    h.statements()
        .into_iter()
        .filter(|s| s.starts_with("SET GLOBAL") || s.starts_with("RESET GLOBAL"))
        .collect()
}

async fn reference_scenario(provider: Provider, grand_central: bool) {
    let storage = match provider {
        Provider::Aws => s3(),
        Provider::Azure => azure(),
    };
    // A Grand Central cluster's snapshot carries its gc_admin user (with the source's password).
    let snap = if grand_central {
        with_gc_tables(orders_snapshot()).users(vec![
            UserDef::new("system", "src-pw"),
            UserDef::new("gc_admin", "src-gc-pw"),
        ])
    } else {
        orders_snapshot()
    };
    let mut sim = sim_builder().storage(storage.snapshot(snap));
    if grand_central {
        sim = sim
            .user("gc_admin", GC_PASSWORD)
            .table(TableDef::new("gc", "alembic_version"))
            .table(TableDef::new("gc", "scheduled_jobs"));
    }
    let h = Harness::start(
        sim,
        Cluster {
            provider,
            grand_central,
            gc_secret: grand_central,
            ..Default::default()
        },
    )
    .await;
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{status:#}\n{}", h.logs.text());
    assert_eq!(status["phase"], "Succeeded");

    // (1) preparing, then (14) success, and nothing else but progress.
    let feedback = h.sink.feedback();
    assert_eq!(
        feedback.first().unwrap(),
        &(
            "in_progress".to_string(),
            "Preparing to restore data from snapshot.".to_string()
        )
    );
    assert_eq!(
        feedback.last().unwrap(),
        &(
            "success".to_string(),
            "The snapshot has been restored successfully.".to_string()
        )
    );
    assert!(
        feedback[1..feedback.len() - 1]
            .iter()
            .all(|(s, m)| s == "in_progress"
                && m.starts_with("Please wait while cluster data is being restored... (")),
        "{feedback:?}"
    );
    let first = &h.sink.received()[0];
    assert_eq!(
        first.authorization.as_deref(),
        Some("Basic Y2xvdWQ6Tm90aWZ5LVB3LTBiMGItRElTVElOQ1Q=")
    );
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(first.body["feedback_data"]["action"], "restore_snapshot");

    // (2) recovery settings raised during the restore, put back after it.
    let settings = settings_statements(&h);
    assert_eq!(
        settings,
        [
            "SET GLOBAL TRANSIENT cluster.routing.allocation.enable = 'primaries'",
            "SET GLOBAL PERSISTENT cluster.routing.allocation.enable = 'primaries'",
            "SET GLOBAL PERSISTENT cluster.routing.allocation.cluster_concurrent_rebalance = 6",
            "SET GLOBAL PERSISTENT indices.recovery.max_bytes_per_sec = '200mb'",
            "SET GLOBAL PERSISTENT cluster.routing.allocation.cluster_concurrent_rebalance = 2",
            "SET GLOBAL PERSISTENT indices.recovery.max_bytes_per_sec = '40mb'",
            "RESET GLOBAL cluster.routing.allocation.enable",
        ]
    );
    let persistent = h.sim.persistent_settings();
    assert_ne!(
        persistent.get("indices.recovery.max_bytes_per_sec"),
        Some(&json!("200mb")),
        "{persistent:?}"
    );

    // (4) the repository with the provider's settings, all bound.
    let create = h
        .sim
        .statements()
        .into_iter()
        .find(|s| s.sql.starts_with("CREATE REPOSITORY"))
        .unwrap();
    match provider {
        Provider::Aws => {
            assert!(create.sql.contains("TYPE s3 WITH (max_restore_bytes_per_sec = $1, readonly = $2, access_key = $3, base_path = $4, bucket = $5, secret_key = $6)"));
            assert_eq!(
                create.params,
                vec![
                    json!("240mb"),
                    json!("true"),
                    json!(ACCESS_KEY),
                    json!(BASE_PATH),
                    json!(BUCKET),
                    json!(SECRET_KEY)
                ]
            );
        }
        Provider::Azure => {
            assert!(create.sql.contains("TYPE azure WITH (max_restore_bytes_per_sec = $1, readonly = $2, key = $3, account = $4, base_path = $5, container = $6)"));
            assert_eq!(
                create.params,
                vec![
                    json!("240mb"),
                    json!("true"),
                    json!(AZURE_KEY),
                    json!(AZURE_ACCOUNT),
                    json!(BASE_PATH),
                    json!(AZURE_CONTAINER)
                ]
            );
        }
    }

    // (8)-(10) gc tables moved aside, restored, the originals dropped.
    let gc_sql: Vec<String> = h
        .statements()
        .into_iter()
        .filter(|s| s.contains("\"gc\""))
        .collect();
    if grand_central {
        assert_eq!(
            gc_sql,
            [
                r#"ALTER TABLE "gc"."alembic_version" RENAME TO "alembic_version_temp""#,
                r#"ALTER TABLE "gc"."scheduled_jobs" RENAME TO "scheduled_jobs_temp""#,
                r#"DROP TABLE IF EXISTS "gc"."alembic_version_temp""#,
                r#"DROP TABLE IF EXISTS "gc"."scheduled_jobs_temp""#,
            ]
        );
        assert!(
            h.dynamic_exists(
                "networking.k8s.io",
                "v1",
                "Ingress",
                "ingresses",
                "grand-central-my-cluster"
            )
            .await,
            "Ingress recreated"
        );
        assert_eq!(
            h.deployment_replicas("grand-central-my-cluster").await,
            Some(1)
        );
    } else {
        assert!(gc_sql.is_empty(), "{gc_sql:?}");
    }

    // The Kubernetes changes, in order.
    let mut expected = vec![
        r#"patch create-snapshot-my-cluster {"metadata":{"annotations":{"restore.cloud.crate.io/suspended-by":"20261125082542-3fa9c1"}},"spec":{"suspend":true}}"#.to_string(),
        r#"patch crate-data-hot-my-cluster {"metadata":{"labels":{"dc-util-routing-owner":"operator-<ts>"}}}"#.to_string(),
        r#"patch backup-metrics-my-cluster {"spec":{"replicas":0}}"#.to_string(),
    ];
    if grand_central {
        expected.push(r#"patch grand-central-my-cluster {"spec":{"replicas":0}}"#.into());
        expected.push("delete grand-central-my-cluster".into());
    }
    expected.push("delete restore-from-backup-my-cluster".into());
    expected.push(r#"patch backup-metrics-my-cluster {"spec":{"replicas":1}}"#.into());
    if grand_central {
        expected.push("create Ingress grand-central-my-cluster".into());
        expected.push(r#"patch grand-central-my-cluster {"spec":{"replicas":1}}"#.into());
    }
    expected.push(r#"patch create-snapshot-my-cluster {"metadata":{"annotations":{"restore.cloud.crate.io/suspended-by":null}},"spec":{"suspend":false}}"#.into());
    expected.push(
        r#"patch crate-data-hot-my-cluster {"metadata":{"labels":{"dc-util-routing-owner":null}}}"#
            .into(),
    );
    let observed = calls(&h);
    let (reset, rest) = observed.split_last().unwrap();
    assert_eq!(rest, expected.as_slice());
    assert!(
        reset.starts_with("patch my-cluster [{\"op\":\"test\""),
        "{reset}"
    );
    assert!(reset.contains(
        r#"{"op":"replace","path":"/spec/cluster/restoreSnapshot/snapshot","value":""}"#
    ));
    assert!(reset.contains(r#"{"op":"remove","path":"/spec/cluster/restoreSnapshot/type"}"#));

    // (12), (13), (16) and the reset.
    assert_eq!(
        h.deployment_replicas("backup-metrics-my-cluster").await,
        Some(1)
    );
    assert!(!h.secret_exists("restore-from-backup-my-cluster").await);
    assert_eq!(h.cronjob_suspended().await, Some(false));
    assert!(
        h.statefulset_labels()
            .await
            .get("dc-util-routing-owner")
            .is_none()
    );
    let rs = &h.cr().await["spec"]["cluster"]["restoreSnapshot"];
    assert_eq!(rs["snapshot"], "");
    assert!(rs.get("type").is_none());
    assert!(
        rs.get("basePath").is_some() && rs.get("backupProvider").is_some(),
        "references stay"
    );
    assert!(
        h.sim.rejected_statements().is_empty(),
        "{:?}",
        h.sim.rejected_statements()
    );
    if grand_central {
        let gc_admin = h
            .sim
            .users()
            .into_iter()
            .find(|u| u.name == "gc_admin")
            .unwrap();
        assert_eq!(
            gc_admin.password.as_deref(),
            Some(GC_PASSWORD),
            "gc_admin password reset"
        );
    }
    h.assert_no_secret_leaks().await;
}

#[tokio::test]
async fn aws_without_grand_central() {
    reference_scenario(Provider::Aws, false).await;
}

#[tokio::test]
async fn aws_with_grand_central() {
    reference_scenario(Provider::Aws, true).await;
}

#[tokio::test]
async fn azure_without_grand_central() {
    reference_scenario(Provider::Azure, false).await;
}

#[tokio::test]
async fn azure_with_grand_central() {
    reference_scenario(Provider::Azure, true).await;
}

#[tokio::test]
async fn gc_tables_are_renamed_back_when_the_restore_fails() {
    // gc.alembic_version exists and is moved aside; the restore's primaries are never allocated,
    // so validation fails and the cleanup must not lose the original table.
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(with_gc_tables(orders_snapshot())))
            .table(TableDef::new("gc", "alembic_version"))
            .restore_outcome(
                SNAPSHOT,
                cratedb_sim::RestoreOutcome::primaries_never_allocated(),
            ),
        Cluster {
            grand_central: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(h.run().await, ExitStatus::Failed);
    let status = h.status().await;
    assert_eq!(
        status["steps"]["restore_internal_tables"]["state"],
        "Succeeded"
    );
    let gc_sql: Vec<String> = h
        .statements()
        .into_iter()
        .filter(|s| s.contains("\"gc\""))
        .collect();
    assert_eq!(
        gc_sql[0],
        r#"ALTER TABLE "gc"."alembic_version" RENAME TO "alembic_version_temp""#
    );
    // gc.alembic_version was restored (unallocated), so the original is kept aside, not lost.
    let message = status["steps"]["restore_internal_tables"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("gc.alembic_version_temp kept: gc.alembic_version exists (restored)"),
        "{message}"
    );
    assert!(
        h.sim
            .tables()
            .iter()
            .any(|t| t.schema == "gc" && t.name == "alembic_version_temp")
    );
    assert_eq!(
        h.deployment_replicas("grand-central-my-cluster").await,
        Some(1),
        "Grand Central resumed after a failure too"
    );
}

#[tokio::test]
async fn a_failed_restore_statement_puts_gc_tables_back_at_once() {
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(with_gc_tables(orders_snapshot())))
            .table(TableDef::new("gc", "alembic_version")),
        Cluster::default(),
    )
    .await;
    h.sim.inject_error(
        cratedb_sim::ErrorInjection::once(
            "RESTORE SNAPSHOT",
            "[restore_backup] snapshot is locked",
        )
        .sqlstate("XX000"),
    );
    assert_eq!(h.run().await, ExitStatus::Failed);
    let status = h.status().await;
    assert_eq!(
        status["steps"]["restore_backup_data"]["message"],
        "Snapshot could not be restored: [restore_backup] snapshot is locked"
    );
    let gc_sql: Vec<String> = h
        .statements()
        .into_iter()
        .filter(|s| s.contains("\"gc\""))
        .collect();
    assert_eq!(
        gc_sql,
        [
            r#"ALTER TABLE "gc"."alembic_version" RENAME TO "alembic_version_temp""#,
            r#"ALTER TABLE "gc"."alembic_version_temp" RENAME TO "alembic_version""#,
        ]
    );
    assert!(
        h.sim
            .tables()
            .iter()
            .any(|t| t.schema == "gc" && t.name == "alembic_version")
    );
    assert_eq!(status["steps"]["await_restore"]["state"], "Skipped");
    assert_eq!(
        status["steps"]["restore_system_user_password"]["state"],
        "Skipped"
    );
}

#[tokio::test]
async fn an_already_suspended_cronjob_stays_suspended() {
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(orders_snapshot())),
        Cluster {
            cronjob: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(h.run().await, ExitStatus::Done);
    assert_eq!(h.cronjob_suspended().await, Some(true));
    assert!(
        !calls(&h)
            .iter()
            .any(|c| c.starts_with("patch create-snapshot")),
        "{:?}",
        calls(&h)
    );
    let status = h.status().await;
    assert_eq!(
        status["steps"]["after_cluster_update"]["message"]
            .as_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap(),
        "CronJob create-snapshot-my-cluster left suspended as it was before the restore"
    );
}

#[tokio::test]
async fn a_missing_backup_metrics_deployment_is_skipped() {
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(orders_snapshot())),
        Cluster {
            backup_metrics: false,
            cronjob: None,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(h.run().await, ExitStatus::Done);
    let status = h.status().await;
    assert!(
        status["steps"]["before_restore_backup"]["message"]
            .as_str()
            .unwrap()
            .contains("no Deployment backup-metrics-my-cluster; skipped")
    );
    assert_eq!(
        status["steps"]["before_restore_backup"]["result"]["backupMetrics"],
        "absent"
    );
    assert!(
        !calls(&h)
            .iter()
            .any(|c| c.contains("backup-metrics") && c.contains("\"replicas\":1"))
    );
    assert_eq!(
        status["steps"]["after_cluster_update"]["message"]
            .as_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap(),
        "no CronJob was disabled"
    );
}

#[tokio::test]
async fn the_admin_user_of_a_clone_is_synced_and_announced() {
    let snap = orders_snapshot()
        .users(vec![
            UserDef::new("system", "x"),
            UserDef::new("cloned_admin", "y"),
        ])
        .privileges(PrivilegeDef::all_cluster("cloned_admin", "system"));
    let h = Harness::with_snapshot(snap).await;
    assert_eq!(h.run().await, ExitStatus::Done);
    assert_eq!(h.cr().await["spec"]["users"][0]["name"], "cloned_admin");
    let admin = h
        .sink
        .received()
        .into_iter()
        .find(|r| r.body["event"] == "admin_username_changed")
        .unwrap();
    assert_eq!(
        admin.body["admin_username_changed_data"],
        json!({"admin_username": "cloned_admin"})
    );
    assert_eq!(admin.body["status"], "success");
    let events: Vec<String> = h
        .sink
        .received()
        .iter()
        .map(|r| r.body["event"].as_str().unwrap().to_string())
        .collect();
    let admin_at = events
        .iter()
        .position(|e| e == "admin_username_changed")
        .unwrap();
    assert_eq!(
        events[admin_at + 1],
        "feedback",
        "the success feedback follows the admin change"
    );
    assert!(calls(&h).iter().any(|c| {
        c.contains(r#"{"op":"replace","path":"/spec/users/0/name","value":"cloned_admin"}"#)
    }));
}

#[tokio::test]
async fn a_cluster_without_users_skips_the_name_sync() {
    let snap = orders_snapshot()
        .users(vec![
            UserDef::new("system", "x"),
            UserDef::new("cloned_admin", "y"),
        ])
        .privileges(PrivilegeDef::all_cluster("cloned_admin", "system"));
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(snap)),
        Cluster {
            users: None,
            grand_central: true,
            version: "5.8.0",
            ..Default::default()
        },
    )
    .await;
    assert_eq!(h.run().await, ExitStatus::Done);
    let status = h.status().await;
    assert!(
        status["steps"]["send_success_notification"]["message"]
            .as_str()
            .unwrap()
            .starts_with(
                "admin user cloned_admin found, but the resource has no spec.users; nothing to sync"
            )
    );
    assert_eq!(
        status["steps"]["restore_user_jwt_auth"]["message"],
        "not needed: the cluster has no users in spec.users"
    );
    assert!(!calls(&h).iter().any(|c| c.contains("/spec/users")));
    assert!(h.cr().await["spec"].get("users").is_none());
}

#[tokio::test]
async fn jwt_authentication_is_restored_for_existing_users() {
    let snap = orders_snapshot().users(vec![
        UserDef::new("system", "x"),
        UserDef::new("admin", "y"),
    ]);
    let h = Harness::start(
        sim_builder()
            .server_version("5.8.0")
            .storage(s3().snapshot(snap)),
        Cluster {
            grand_central: true,
            version: "5.8.0",
            ..Default::default()
        },
    )
    .await;
    assert_eq!(h.run().await, ExitStatus::Done);
    let jwt: Vec<String> = h
        .statements()
        .into_iter()
        .filter(|s| s.contains("jwt"))
        .collect();
    assert_eq!(
        jwt,
        [
            r#"ALTER USER "admin" SET (jwt = NULL)"#,
            r#"ALTER USER "admin" SET (jwt = {"iss" = 'https://prod.gc.example.com/api/v2/meta/jwk/', "username" = 'admin', "aud" = 'my-cluster'})"#,
        ]
    );
    let admin = h
        .sim
        .users()
        .into_iter()
        .find(|u| u.name == "admin")
        .unwrap();
    assert!(admin.jwt.is_some());
}

#[tokio::test]
async fn a_running_snapshot_is_waited_for_before_anything_changes() {
    let h = Harness::with_snapshot(orders_snapshot()).await;
    let id = h
        .sim
        .seed_job("CREATE SNAPSHOT \"backups\".\"nightly\" ALL");
    let finish_snapshot = async {
        // Let the run see the snapshot a few times, then let it end.
        while !h
            .logs
            .text()
            .contains("A snapshot is currently in progress")
        {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert!(h.sim.remove_job(&id));
    };
    let (exit, ()) = tokio::join!(h.run(), finish_snapshot);
    assert_eq!(exit, ExitStatus::Done, "{}", h.logs.text());
    let waits = h
        .statements()
        .iter()
        .filter(|s| s.contains("LIKE '%CREATE SNAPSHOT%'"))
        .count();
    assert!(
        waits >= 2,
        "polled sys.jobs while the snapshot ran: {waits}"
    );
    // The restore started only after the snapshot had finished.
    let statements = h.statements();
    let last_wait = statements
        .iter()
        .rposition(|s| s.contains("LIKE '%CREATE SNAPSHOT%'"))
        .unwrap();
    let restore = statements
        .iter()
        .position(|s| s.starts_with("RESTORE SNAPSHOT"))
        .unwrap();
    assert!(last_wait < restore);
    assert!(
        h.sink.received().iter().all(|r| r.body["event"] != "delay"),
        "no delay notification for a CrateDB-side snapshot"
    );
}

#[tokio::test]
async fn an_active_backup_job_is_waited_for_with_one_delay_notification() {
    use k8s_openapi::api::batch::v1::Job;
    use kube::{
        Api,
        api::{Patch, PatchParams, PostParams},
    };
    let h = Harness::with_snapshot(orders_snapshot()).await;
    let jobs: Api<Job> = Api::namespaced(h.client.clone(), "dbs");
    let backup: Job = serde_json::from_value(json!({
        "metadata": {"name": "create-snapshot-my-cluster-29000000", "namespace": "dbs",
                     "labels": {"app.kubernetes.io/component": "backup", "app.kubernetes.io/name": "my-cluster"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "b", "image": "b"}]}}},
        "status": {"active": 1}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &backup).await.unwrap();
    let finish_backup = async {
        while !h
            .logs
            .text()
            .contains("A snapshot k8s job is currently running")
        {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        jobs.patch_status(
            "create-snapshot-my-cluster-29000000",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"active": null, "succeeded": 1}})),
        )
        .await
        .unwrap();
    };
    let (exit, ()) = tokio::join!(h.run(), finish_backup);
    assert_eq!(exit, ExitStatus::Done, "{}", h.logs.text());
    let delays: Vec<_> = h
        .sink
        .received()
        .into_iter()
        .filter(|r| r.body["event"] == "delay")
        .collect();
    assert_eq!(
        delays.len(),
        1,
        "the delay is announced once, however long the wait"
    );
    assert_eq!(delays[0].body["status"], "temporary_failure");
    assert_eq!(
        delays[0].body["temporary_failure_data"],
        json!({"reason": "A snapshot is in progress"})
    );
    // The CronJob was suspended first, so no new backup starts while we wait.
    // (The test's own creation of the backup Job comes first.)
    let calls = calls(&h);
    assert_eq!(calls[0], "create Job create-snapshot-my-cluster-29000000");
    assert!(
        calls[1].starts_with("patch create-snapshot-my-cluster ")
            && calls[1].contains("\"suspend\":true"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn catalogs_without_the_optional_columns_still_restore() {
    use cratedb_sim::ErrorInjection;
    // A table of the cluster's own, so that its partitions are read (without `partitioned_by`
    // the Job cannot tell which tables have any).
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(orders_snapshot()))
            .table(cratedb_sim::TableDef::new("doc", "own")),
        Cluster::default(),
    )
    .await;
    for (needle, column) in [
        ("table_partitions FROM sys.snapshots", "table_partitions"),
        (
            "closed, partitioned_by FROM information_schema.tables",
            "closed",
        ),
        ("closed FROM information_schema.table_partitions", "closed"),
        ("sys.snapshot_restore WHERE repository", "repository"),
    ] {
        h.sim.inject_error(
            ErrorInjection::always(needle, format!("Column {column} unknown"))
                .sqlstate("42703")
                .exception("ColumnUnknownException"),
        );
    }
    assert_eq!(h.run().await, ExitStatus::Done, "{}", h.logs.text());
    let statements = h.statements();
    for basic in [
        "SELECT name, version, state, tables FROM sys.snapshots WHERE repository = $1 AND name = $2 LIMIT 1",
        "SELECT table_schema, table_name, table_type FROM information_schema.tables",
        "SELECT table_schema, table_name, partition_ident, \"values\" FROM information_schema.table_partitions",
        "SELECT id, state FROM sys.snapshot_restore WHERE name = 'snap-2024'",
    ] {
        assert!(
            statements.iter().any(|s| s == basic),
            "fell back to: {basic}"
        );
    }
    assert_eq!(h.status().await["phase"], "Succeeded");
}

#[tokio::test]
async fn a_cronjob_left_suspended_by_an_unfinished_run_is_re_enabled() {
    use k8s_openapi::api::batch::v1::CronJob;
    use kube::{
        Api,
        api::{Patch, PatchParams},
    };
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(orders_snapshot())),
        Cluster {
            cronjob: Some(true),
            ..Default::default()
        },
    )
    .await;
    Api::<CronJob>::namespaced(h.client.clone(), "dbs")
        .patch(
            "create-snapshot-my-cluster",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"restore.cloud.crate.io/suspended-by": "20261101000000-dead00"}}})),
        )
        .await
        .unwrap();
    assert_eq!(h.run().await, ExitStatus::Done);
    assert_eq!(
        h.cronjob_suspended().await,
        Some(false),
        "backups are on again"
    );
    let status = h.status().await;
    assert!(
        status["steps"]["before_cluster_update"]["message"]
            .as_str()
            .unwrap()
            .starts_with("CronJob create-snapshot-my-cluster was left suspended by restore run 20261101000000-dead00, which never finished; this run re-enables it"),
        "{status:#}"
    );
    let cronjob = Api::<CronJob>::namespaced(h.client.clone(), "dbs")
        .get("create-snapshot-my-cluster")
        .await
        .unwrap();
    assert!(
        !cronjob
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("restore.cloud.crate.io/suspended-by"),
        "the marker is removed with the re-enable"
    );
}

#[tokio::test]
async fn what_an_unfinished_run_left_behind_is_cleaned_up() {
    use k8s_openapi::api::{apps::v1::Deployment, networking::v1::Ingress};
    use kube::{
        Api,
        api::{DeleteParams, Patch, PatchParams},
    };
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(orders_snapshot())),
        Cluster {
            grand_central: true,
            ..Default::default()
        },
    )
    .await;
    // The state a run killed for good after suspending Grand Central leaves behind.
    let create = format!(
        "CREATE REPOSITORY restore_backup_20261101000000_dead00 TYPE s3 WITH (bucket = '{BUCKET}', base_path = '{BASE_PATH}', access_key = '{ACCESS_KEY}', secret_key = '{}', readonly = true)",
        SECRET_KEY.replace('\'', "''")
    );
    assert!(matches!(
        h.sim.execute_as_superuser(&create),
        cratedb_sim::ExecOutcome::Command { .. }
    ));
    let ingresses: Api<Ingress> = Api::namespaced(h.client.clone(), "dbs");
    let ingress =
        serde_json::to_value(ingresses.get("grand-central-my-cluster").await.unwrap()).unwrap();
    ingresses
        .delete("grand-central-my-cluster", &DeleteParams::default())
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "dbs");
    deployments
        .patch(
            "grand-central-my-cluster",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    // What the mutating webhook records for the new run.
    let cratedbs: Api<cratedb_restore::resource::CrateDB> =
        Api::namespaced(h.client.clone(), "dbs");
    cratedbs
        .patch(
            "my-cluster",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"restore": {"runId": RUN_ID, "phase": "Pending",
                "abandonedRun": {"runId": "20261101000000-dead00",
                                 "repository": "restore_backup_20261101000000_dead00",
                                 "grandCentral": {"deployment": true, "routing": [ingress]}}}}}),
            ),
        )
        .await
        .unwrap();

    assert_eq!(h.run().await, ExitStatus::Done, "{}", h.logs.text());
    assert!(
        h.sim.repositories().is_empty(),
        "both repositories dropped: {:?}",
        h.sim.repositories()
    );
    assert_eq!(
        h.deployment_replicas("grand-central-my-cluster").await,
        Some(1)
    );
    assert!(
        h.dynamic_exists(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            "grand-central-my-cluster"
        )
        .await
    );
    let message = h.status().await["steps"]["after_restore_backup"]["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("repository restore_backup_20261101000000_dead00 dropped"),
        "{message}"
    );
}
