//! Repositories, snapshots and restores.

use cratedb_sim::{
    DISK_WATERMARK_DECISION, DISK_WATERMARK_EXPLANATION, ExecOutcome, PartitionDef, ProgressMode,
    RestoreOutcome, Simulator, SnapshotDef, Storage, TableDef, UserDef,
};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::common::*;

const POLL: &str = "SELECT 1 FROM sys.snapshot_restore WHERE name='snap1' AND state NOT IN ('SUCCESS', 'FAILURE') LIMIT 1;";
const MIN_PCT: &str = "SELECT min(recovery['size']['percent']) FROM sys.shards where state='RECOVERING' and recovery['type']='SNAPSHOT';";

async fn restore(client: &Client, what: &str) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            &format!(r#"RESTORE SNAPSHOT "repo"."snap1" {what} with (wait_for_completion=false)"#),
            &[],
        )
        .await
}

fn rows_of(o: &ExecOutcome) -> Vec<Vec<serde_json::Value>> {
    match o {
        ExecOutcome::Rows { rows, .. } => rows.clone(),
        other => panic!("expected rows, got {other:?}"),
    }
}

async fn primary_states(client: &Client, table: &str) -> Vec<(String, Option<serde_json::Value>)> {
    client
        .query(
            "SELECT state, recovery FROM sys.shards WHERE schema_name = $1 AND table_name = $2 AND primary = TRUE ORDER BY id",
            &[&"doc", &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn async_restore_progresses_until_the_row_disappears() {
    let sim =
        start(builder("5.10.3").progress(ProgressMode::PerObservation { percent_step: 10.0 }))
            .await;
    let client = system(&sim).await;
    assert_eq!(create_repo(&client, "repo").await.unwrap(), 1);
    let snap = client
        .query(
            "SELECT * FROM sys.snapshots WHERE repository=$1 AND name=$2 LIMIT 1;",
            &[&"repo", &"snap1"],
        )
        .await
        .unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].get::<_, String>("state"), "SUCCESS");

    assert_eq!(
        restore(&client, r#"TABLE "doc"."t1","doc"."t2""#)
            .await
            .unwrap(),
        1
    );
    // relations exist at once
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'doc' AND table_name IN ('t1', 't2')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    // first observation: shards initializing, recovery NULL, row present
    let states = primary_states(&client, "t1").await;
    assert_eq!(states.len(), 2);
    assert!(
        states
            .iter()
            .all(|(s, r)| s == "INITIALIZING" && r.is_none()),
        "{states:?}"
    );

    let mut percents = Vec::new();
    let mut polls = 0;
    loop {
        polls += 1;
        assert!(polls < 20, "restore never finished");
        let (status, body) = sidecar_exec(&sim, POLL).await;
        assert_eq!(status, 200);
        if body["rowcount"] == 0 {
            break;
        }
        let (_, body) = sidecar_exec(&sim, MIN_PCT).await;
        percents.push(body["rows"][0][0].as_f64());
    }
    assert!(percents.iter().flatten().all(|p| *p < 100.0));
    let seen: Vec<f64> = percents.iter().flatten().copied().collect();
    assert_eq!(seen, vec![20.0, 40.0, 60.0, 80.0], "{percents:?}");

    let states = primary_states(&client, "t1").await;
    assert!(states.iter().all(|(s, _)| s == "STARTED"));
    let rec = states[0].1.clone().unwrap();
    assert_eq!(rec["type"], "SNAPSHOT");
    assert_eq!(rec["size"]["recovered"], rec["size"]["used"]);
    assert_eq!(rec["size"]["percent"], 100.0);
    assert!(sim.restores_in_progress().is_empty());
    // t1 only: partitioned table untouched
    assert!(!sim.tables().iter().any(|t| t.name == "parted"));
    sim.shutdown().await;
}

#[tokio::test]
async fn restore_row_is_visible_while_restoring() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    restore(&client, "ALL").await.unwrap();
    let o = sim.execute_as_superuser(
        "SELECT name, repository, state, shards['state'] FROM sys.snapshot_restore",
    );
    let rows = rows_of(&o);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "snap1");
    assert_eq!(rows[0][1], "repo");
    assert_eq!(rows[0][2], "INIT");
    assert_eq!(rows[0][3].as_array().unwrap().len(), 5);
    let rows = rows_of(&sim.execute_as_superuser("SELECT state FROM sys.snapshot_restore"));
    assert_eq!(rows[0][0], "STARTED");
    // partitions appear immediately
    let parts = sim.partitions();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].values["day"], serde_json::json!(1));
    sim.advance_restores(10);
    assert!(sim.restores_in_progress().is_empty());
    assert!(sim.shards().iter().all(|s| s.state == "STARTED"));
    sim.shutdown().await;
}

#[tokio::test]
async fn metadata_restore_creates_no_row_and_overwrites_settings() {
    let sim = start(builder("5.10.3").persistent_setting(
        "cluster.routing.allocation.enable",
        serde_json::json!("primaries"),
    ))
    .await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    restore(&client, "METADATA").await.unwrap();
    assert!(client.query(POLL, &[]).await.unwrap().is_empty());
    assert!(sim.restores_in_progress().is_empty());
    // METADATA restores only analyzer settings: the other persistent ones are gone
    assert!(sim.persistent_settings().is_empty());
    // users came from the snapshot
    assert_eq!(
        sim.users()
            .iter()
            .find(|u| u.name == "gc_admin")
            .and_then(|u| u.password.clone()),
        Some("gc-old".to_string())
    );

    // ALL takes the snapshot's persistent settings
    let sim2 = start(builder("5.10.3")).await;
    let c2 = system(&sim2).await;
    create_repo(&c2, "repo").await.unwrap();
    c2.execute(
        "SET GLOBAL PERSISTENT cluster.routing.allocation.cluster_concurrent_rebalance = 6",
        &[],
    )
    .await
    .unwrap();
    restore(&c2, "ALL").await.unwrap();
    let s = sim2.persistent_settings();
    assert_eq!(
        s.get("indices.recovery.max_bytes_per_sec"),
        Some(&serde_json::json!("10mb"))
    );
    assert!(!s.contains_key("cluster.routing.allocation.cluster_concurrent_rebalance"));
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test]
async fn existing_table_fails_with_42p07_and_changes_nothing() {
    let sim = start(builder("5.10.3").table(TableDef::new("doc", "t1").shards(3))).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    let err = restore(&client, r#"TABLE "doc"."t2", "doc"."t1""#)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::DUPLICATE_TABLE));
    assert_eq!(server_message(&err), "Relation 'doc.t1' already exists.");
    assert!(sim.restores_in_progress().is_empty());
    assert!(
        !sim.tables().iter().any(|t| t.name == "t2"),
        "restore must be atomic"
    );
    assert_eq!(sim.shards().iter().filter(|s| s.table == "t1").count(), 3);
    sim.shutdown().await;
}

fn with_existing_partition(version: &str) -> cratedb_sim::SimulatorBuilder {
    builder(version).table(
        TableDef::new("doc", "parted")
            .shards(1)
            .partitioned_by(["day"])
            .partition(PartitionDef::new("day", 1)),
    )
}

#[tokio::test]
async fn existing_partition_fails_with_xx000() {
    // 5.10.3: explicit partition
    let sim = start(with_existing_partition("5.10.3")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    let err = restore(&client, r#"TABLE "doc"."parted" PARTITION ("day" = 1)"#)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INTERNAL_ERROR));
    assert_eq!(
        server_message(&err),
        "Partition '.partitioned.parted.04132' already exists"
    );
    // the other partition restores into the existing table
    assert_eq!(
        restore(&client, r#"TABLE "doc"."parted" PARTITION ("day" = 2)"#)
            .await
            .unwrap(),
        1
    );
    assert_eq!(sim.partitions().len(), 2);

    // 5.5.2: ALL hits the "open index" error from RestoreService
    let old = start(with_existing_partition("5.5.2")).await;
    let c = system(&old).await;
    create_repo(&c, "repo").await.unwrap();
    let err = restore(&c, "ALL").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INTERNAL_ERROR));
    let msg = server_message(&err).to_string();
    assert!(msg.starts_with("[repo:snap1/"), "{msg}");
    assert!(
        msg.contains("cannot restore index [.partitioned.parted.04132] because an open index with same name already exists in the cluster"),
        "{msg}"
    );
    sim.shutdown().await;
    old.shutdown().await;
}

#[tokio::test]
async fn primaries_never_allocated_leave_unassigned_shards_and_an_explanation() {
    let sim = start(
        builder("5.10.3").restore_outcome("snap1", RestoreOutcome::primaries_never_allocated()),
    )
    .await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    restore(&client, r#"TABLE "doc"."t1""#).await.unwrap();
    assert_eq!(client.query(POLL, &[]).await.unwrap().len(), 1);
    assert_eq!(client.query(POLL, &[]).await.unwrap().len(), 1);
    assert!(
        client.query(POLL, &[]).await.unwrap().is_empty(),
        "row gone after 2 observations"
    );
    let states = primary_states(&client, "t1").await;
    assert!(
        states.iter().all(|(s, r)| s == "UNASSIGNED" && r.is_none()),
        "{states:?}"
    );
    let row = client
        .query_one(
            "SELECT explanation, decisions FROM sys.allocations WHERE table_schema = 'doc' AND table_name = 't1' AND primary = true AND shard_id = 0",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), DISK_WATERMARK_EXPLANATION);
    let decisions: Vec<serde_json::Value> = row.get(1);
    assert_eq!(decisions[0]["explanations"][0], DISK_WATERMARK_DECISION);
    // the relation exists though (A10: existence is not enough)
    assert!(sim.tables().iter().any(|t| t.name == "t1"));
    sim.shutdown().await;
}

#[tokio::test]
async fn stalled_restores_keep_their_row_and_failed_ones_show_failure() {
    let sim = start(
        builder("5.10.3")
            .restore_outcome("doc.t1", RestoreOutcome::stall())
            .restore_outcome("doc.t2", RestoreOutcome::fail()),
    )
    .await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    restore(&client, r#"TABLE "doc"."t1""#).await.unwrap();
    for _ in 0..10 {
        assert_eq!(client.query(POLL, &[]).await.unwrap().len(), 1);
    }
    let pct: Option<f32> = client.query_one(MIN_PCT, &[]).await.unwrap().get(0);
    assert!(pct.is_some_and(|p| p > 0.0 && p < 100.0), "{pct:?}");

    let sim2 = start(builder("5.10.3").restore_outcome("snap1", RestoreOutcome::fail())).await;
    let c2 = system(&sim2).await;
    create_repo(&c2, "repo").await.unwrap();
    restore(&c2, r#"TABLE "doc"."t2""#).await.unwrap();
    let mut states = Vec::new();
    for _ in 0..6 {
        let rows = c2
            .query("SELECT state FROM sys.snapshot_restore", &[])
            .await
            .unwrap();
        states.push(rows.first().map(|r| r.get::<_, String>(0)));
    }
    assert_eq!(
        states,
        vec![
            Some("INIT".to_string()),
            Some("STARTED".to_string()),
            Some("STARTED".to_string()),
            Some("FAILURE".to_string()),
            None,
            None
        ]
    );
    assert!(
        sim2.shards()
            .iter()
            .filter(|s| s.table == "t2")
            .all(|s| s.state == "UNASSIGNED")
    );
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test]
async fn instant_and_synchronous_restores_never_show_a_row() {
    let sim = start(builder("5.10.3").restore_outcome("snap1", RestoreOutcome::Instant)).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    restore(&client, "TABLES").await.unwrap();
    assert!(client.query(POLL, &[]).await.unwrap().is_empty());
    assert_eq!(sim.shards().len(), 2 + 1 + 2);
    assert!(sim.shards().iter().all(|s| s.state == "STARTED"));

    let sim2 = start(builder("5.10.3")).await;
    let c2 = system(&sim2).await;
    create_repo(&c2, "repo").await.unwrap();
    c2.execute(
        r#"RESTORE SNAPSHOT "repo"."snap1" TABLE doc.t1 WITH (wait_for_completion = true)"#,
        &[],
    )
    .await
    .unwrap();
    assert!(sim2.restores_in_progress().is_empty());
    assert!(sim2.shards().iter().all(|s| s.state == "STARTED"));
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test]
async fn users_restore_replaces_the_system_password_until_alter_user() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    restore(&client, "USERMANAGEMENT").await.unwrap();
    // no tables, no row
    assert!(sim.restores_in_progress().is_empty());

    let err = connect_as(&sim, "system", SYSTEM_PW, "doc")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    );
    assert!(
        connect_as(&sim, "system", "old-snapshot-pw", "doc")
            .await
            .is_ok()
    );

    // the regular user may not change other users
    let old = connect_as(&sim, "system", "old-snapshot-pw", "doc")
        .await
        .unwrap();
    let err = old
        .execute(r#"ALTER USER "gc_admin" SET (password = 'x')"#, &[])
        .await
        .unwrap_err();
    assert_eq!(
        server_message(&err),
        "Missing 'AL' privilege for user 'system'"
    );

    let pw = SYSTEM_PW.replace('\'', "''");
    let (status, body) = sidecar_exec(
        &sim,
        &format!(r#"ALTER USER "system" SET (password='{pw}');"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rowcount"], 1);
    assert!(connect_as(&sim, "system", SYSTEM_PW, "doc").await.is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn section_keywords_follow_the_server_version() {
    // 5.5.2: no USERMANAGEMENT; USERS restores users only
    let sim = start(builder("5.5.2")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    let err = restore(&client, "USERMANAGEMENT").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
    assert_eq!(
        server_message(&err),
        "Unknown metadata type 'USERMANAGEMENT'"
    );
    assert_eq!(restore(&client, "USERS").await.unwrap(), 1);
    assert!(sim.users().iter().any(|u| u.name == "gc_admin"));

    // 6.5.0: USERS and PRIVILEGES are gone
    let sim2 = start(builder("6.5.0")).await;
    let c2 = system(&sim2).await;
    create_repo(&c2, "repo").await.unwrap();
    for kw in ["USERS", "TABLES,PRIVILEGES"] {
        let err = restore(&c2, kw).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{kw}");
    }
    assert_eq!(restore(&c2, "USERMANAGEMENT").await.unwrap(), 1);
    // TABLES + VIEWS sections together
    let err = restore(&c2, "TABLES,VIEWS,FOO").await.unwrap_err();
    assert_eq!(server_message(&err), "Unknown metadata type 'FOO'");
    assert!(sim2.restores_in_progress().is_empty());
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test]
async fn unknown_repository_snapshot_and_table() {
    let sim = start(
        builder("5.10.3").storage(
            Storage::s3(BUCKET, "other/path", ACCESS, SECRET)
                .snapshot(SnapshotDef::new("future").version("6.0.0")),
        ),
    )
    .await;
    let client = system(&sim).await;
    let err = restore(&client, "ALL").await.unwrap_err();
    assert_eq!(server_message(&err), "[repo] missing");
    create_repo(&client, "repo").await.unwrap();
    let err = client
        .execute(r#"RESTORE SNAPSHOT "repo"."nope" ALL"#, &[])
        .await
        .unwrap_err();
    assert_eq!(server_message(&err), "[repo:nope] snapshot does not exist");
    let err = restore(&client, r#"TABLE "doc"."missing""#)
        .await
        .unwrap_err();
    assert_eq!(
        server_message(&err),
        "Relation [doc.missing] not found in snapshot"
    );
    // a snapshot newer than the server
    let o = sim.execute_as_superuser(
        "CREATE REPOSITORY other TYPE s3 WITH (bucket = 'backups', base_path = '/other/path/', access_key = 'AKIAEXAMPLEKEY', secret_key = 's3cr3t/with''quote')",
    );
    assert_eq!(o.rowcount(), Some(1), "{o:?}");
    let o = sim.execute_as_superuser(r#"RESTORE SNAPSHOT other.future ALL"#);
    let e = o.error().expect("version error");
    assert!(
        e.message
            .contains("which is higher than the version of this node [5.10.3]"),
        "{}",
        e.message
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn repository_verification_and_visibility_of_snapshots() {
    let sim = start(
        Simulator::builder()
            .user("system", SYSTEM_PW)
            .storage(Storage::s3(BUCKET, BASE, ACCESS, SECRET).snapshot(snap1()))
            .storage(
                Storage::azure("acct", "azkey==", "container", "base")
                    .snapshot(SnapshotDef::new("az1")),
            ),
    )
    .await;
    let client = system(&sim).await;
    // nothing visible without a repository
    assert!(
        client
            .query("SELECT name FROM sys.snapshots", &[])
            .await
            .unwrap()
            .is_empty()
    );

    let bad = "CREATE REPOSITORY bad TYPE s3 WITH (bucket = $1, base_path = $2, access_key = $3, secret_key = $4)";
    let err = client
        .execute(bad, &[&BUCKET, &BASE, &ACCESS, &"wrong"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INTERNAL_ERROR));
    assert!(
        server_message(&err)
            .starts_with("[bad] Unable to verify the repository, [bad] is not accessible on master node: AmazonS3Exception"),
        "{err}"
    );
    let err = client
        .execute(bad, &[&"nobucket", &BASE, &ACCESS, &SECRET])
        .await
        .unwrap_err();
    assert!(server_message(&err).contains("NoSuchBucket"));
    assert!(
        sim.repositories().is_empty(),
        "failed verification leaves no repository"
    );

    let err = client
        .execute(
            "CREATE REPOSITORY r TYPE s3 WITH (bucket = 'b', color = 'blue')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
    assert_eq!(server_message(&err), "Setting 'color' is not supported");

    create_repo(&client, "repo").await.unwrap();
    let err = create_repo(&client, "repo").await.unwrap_err();
    assert_eq!(server_message(&err), "Repository 'repo' already exists");

    // azure, with bound values
    let az = "CREATE REPOSITORY \"az\" TYPE azure WITH (max_restore_bytes_per_sec = $1, readonly = $2, key = $3, account = $4, base_path = $5, container = $6)";
    client
        .execute(
            az,
            &[
                &"240mb",
                &"true",
                &"azkey==",
                &"acct",
                &"base",
                &"container",
            ],
        )
        .await
        .unwrap();
    let names: Vec<String> = client
        .query("SELECT name FROM sys.snapshots ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, vec!["az1", "snap1"]);
    assert_eq!(
        client.execute("DROP REPOSITORY \"az\"", &[]).await.unwrap(),
        1
    );
    let n: i64 = client
        .query_one("SELECT count(*) FROM sys.snapshots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let err = client
        .execute("DROP REPOSITORY \"az\"", &[])
        .await
        .unwrap_err();
    assert_eq!(server_message(&err), "[az] missing");
    sim.shutdown().await;
}

#[tokio::test]
async fn wall_clock_progress_moves_without_observations_of_bytes() {
    let sim = start(builder("5.10.3").progress(ProgressMode::WallClock {
        bytes_per_sec: 1_000_000_000,
    }))
    .await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    restore(&client, r#"TABLE "doc"."t1""#).await.unwrap();
    // one observation moves INITIALIZING -> RECOVERING
    assert_eq!(client.query(POLL, &[]).await.unwrap().len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(client.query(POLL, &[]).await.unwrap().is_empty());
    assert!(
        sim.shards()
            .iter()
            .filter(|s| s.table == "t1")
            .all(|s| s.state == "STARTED")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn jwt_properties_can_be_set_and_must_be_unique() {
    let sim = start(builder("5.10.3").user_def(UserDef::new("admin", "a"))).await;
    let stmt = r#"ALTER USER "admin" SET (jwt = {"iss" = 'https://gc.example/jwks', "username" = 'admin', "aud" = 'cluster-1'})"#;
    let (status, body) = sidecar_exec(&sim, "ALTER USER \"admin\" SET (jwt = NULL)").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = sidecar_exec(&sim, stmt).await;
    assert_eq!(status, 200);
    let o = sim.execute_as_superuser("SELECT jwt['iss'], jwt FROM sys.users WHERE name = 'admin'");
    let rows = rows_of(&o);
    assert_eq!(rows[0][0], "https://gc.example/jwks");
    assert_eq!(rows[0][1]["aud"], "cluster-1");
    let (status, body) = sidecar_exec(
        &sim,
        r#"ALTER USER "system" SET (jwt = {"iss" = 'https://gc.example/jwks', "username" = 'admin'})"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("RoleAlreadyExistsException[")
    );

    let old = start(builder("5.5.2")).await;
    let o = old.execute_as_superuser(r#"ALTER USER "system" SET (jwt = NULL)"#);
    assert_eq!(o.error().unwrap().message, "Setting 'jwt' is not supported");
    sim.shutdown().await;
    old.shutdown().await;
}
