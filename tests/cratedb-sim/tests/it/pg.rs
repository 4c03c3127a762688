//! PostgreSQL wire protocol behaviour.

use cratedb_sim::{ErrorInjection, Frontend, StatementOutcome, TableDef};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::common::*;

#[tokio::test]
async fn password_authentication_succeeds_and_fails_like_cratedb() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    let row = client
        .query_one("SELECT name FROM sys.users WHERE name = $1", &[&"system"])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "system");

    let err = connect_as(&sim, "system", "wrong", "doc")
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("server error");
    assert_eq!(db.code(), &SqlState::INVALID_AUTHORIZATION_SPECIFICATION);
    assert_eq!(
        db.message(),
        "password authentication failed for user \"system\""
    );
    assert_eq!(db.severity(), "FATAL");

    let err = connect_as(&sim, "nobody", "x", "doc").await.unwrap_err();
    assert!(err.as_db_error().is_some());
    // crate has no password: no PostgreSQL login
    assert!(connect_as(&sim, "crate", "", "doc").await.is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn simple_and_extended_queries_with_parameters() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;

    // simple query protocol, two statements in one message
    let msgs = client
        .simple_query(
            "SELECT name FROM sys.users WHERE superuser = true; SELECT count(*) FROM sys.nodes",
        )
        .await
        .unwrap();
    let rows: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })
        .collect();
    assert_eq!(rows, vec![Some("crate".to_string()), Some("1".to_string())]);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(1)))
    );

    // extended protocol, typed as the product does
    let stmt = client
        .prepare_typed(
            "SELECT name, superuser FROM sys.users WHERE name = $1",
            &[Type::TEXT],
        )
        .await
        .unwrap();
    assert_eq!(stmt.params(), &[Type::TEXT]);
    let row = client.query_one(&stmt, &[&"system"]).await.unwrap();
    assert!(!row.get::<_, bool>("superuser"));

    // unspecified parameter types are described as varchar
    let stmt = client
        .prepare("SELECT count(*) = 1 FROM sys.users WHERE name = $1")
        .await
        .unwrap();
    assert_eq!(stmt.params(), &[Type::VARCHAR]);
    assert_eq!(stmt.columns()[0].type_(), &Type::BOOL);
    assert!(
        client
            .query_one(&stmt, &[&"system"])
            .await
            .unwrap()
            .get::<_, bool>(0)
    );
    assert!(
        !client
            .query_one(&stmt, &[&"ghost"])
            .await
            .unwrap()
            .get::<_, bool>(0)
    );

    // '?' placeholders work too, and ORDER BY / LIMIT
    let rows = client
        .query(
            "SELECT name FROM sys.users WHERE name <> ? ORDER BY name DESC LIMIT 5",
            &[&"nobody"],
        )
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, vec!["system".to_string(), "crate".to_string()]);
    sim.shutdown().await;
}

#[tokio::test]
async fn describe_reports_real_types_that_decode() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo1").await.unwrap();

    let stmt = client
        .prepare_typed(
            "SELECT tables, table_partitions, started, total_shards, include_global_state, reason, version \
             FROM sys.snapshots WHERE repository = $1 AND name = $2 LIMIT 1;",
            &[Type::TEXT, Type::TEXT],
        )
        .await
        .unwrap();
    let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        vec![
            Type::VARCHAR_ARRAY,
            Type::JSON_ARRAY,
            Type::TIMESTAMPTZ,
            Type::INT4,
            Type::BOOL,
            Type::VARCHAR,
            Type::VARCHAR
        ]
    );
    let row = client
        .query_one(&stmt, &[&"repo1", &"snap1"])
        .await
        .unwrap();
    let tables: Vec<String> = row.get("tables");
    assert_eq!(tables, vec!["doc.t1", "doc.t2", "doc.parted"]);
    let parts: Vec<serde_json::Value> = row.get("table_partitions");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["values"], serde_json::json!(["1"]));
    assert_eq!(parts[0]["table_name"], "parted");
    assert_eq!(row.get::<_, i32>("total_shards"), 2 + 1 + 2);
    assert!(row.get::<_, bool>("include_global_state"));
    assert_eq!(row.get::<_, Option<String>>("reason"), None);

    // objects are json; percent is real and NULL before any recovery
    let row = client
        .query_one("SELECT sys.cluster.settings FROM sys.cluster", &[])
        .await
        .unwrap();
    let settings: serde_json::Value = row.get(0);
    assert_eq!(settings["indices"]["recovery"]["max_bytes_per_sec"], "40mb");
    assert_eq!(
        settings["cluster"]["routing"]["allocation"]["cluster_concurrent_rebalance"],
        2
    );
    let row = client
        .query_one(
            "SELECT min(recovery['size']['percent']) FROM sys.shards where state='RECOVERING' and recovery['type']='SNAPSHOT';",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.columns()[0].type_(), &Type::FLOAT4);
    assert_eq!(row.get::<_, Option<f32>>(0), None);
    let row = client
        .query_one("SELECT version['number'] AS v, version FROM sys.nodes", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>("v"), "5.10.3");
    assert_eq!(
        row.get::<_, serde_json::Value>("version")["number"],
        "5.10.3"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn database_parameter_is_the_default_schema() {
    let sim = start(builder("5.10.3")).await;
    let doc = system(&sim).await;
    let err = doc.query("SELECT * FROM shards", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    assert_eq!(server_message(&err), "Relation 'doc.shards' unknown");

    create_repo(&doc, "r").await.unwrap();
    let other = connect_as(&sim, "system", SYSTEM_PW, "system")
        .await
        .unwrap();
    // unqualified t1 resolves to system.t1, which is not in the snapshot
    let err = other
        .execute(
            r#"RESTORE SNAPSHOT "r"."snap1" TABLE "t1" with (wait_for_completion=false)"#,
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INTERNAL_ERROR));
    assert!(server_message(&err).contains("Relation [system.t1] not found in snapshot"));
    // ... while the doc session finds doc.t1
    assert_eq!(
        doc.execute(
            r#"RESTORE SNAPSHOT "r"."snap1" TABLE "t1" with (wait_for_completion=false)"#,
            &[]
        )
        .await
        .unwrap(),
        1
    );
    assert!(
        sim.tables()
            .iter()
            .any(|t| t.schema == "doc" && t.name == "t1")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_sql_is_rejected_with_42601_and_logged() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    for sql in [
        "INSERT INTO doc.t VALUES (1)",
        "SELECT a.x FROM sys.shards a JOIN sys.nodes n ON a.x = n.id",
        "WITH tables AS (SELECT unnest(tables) AS t FROM sys.snapshots) SELECT * FROM tables",
    ] {
        let err = client.simple_query(sql).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::SYNTAX_ERROR), "{sql}");
        assert!(server_message(&err).contains("mismatched input"), "{sql}");
    }
    // extended protocol: the Parse fails
    let err = client.prepare("UPDATE doc.t SET x = 1").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::SYNTAX_ERROR));
    assert_eq!(
        server_message(&err),
        "line 1:1: mismatched input 'UPDATE' expecting {'SELECT', 'SHOW', 'CREATE', 'DROP', 'DELETE', 'RESTORE', 'SET', 'RESET', 'ALTER'}"
    );
    // analysis errors are CrateDB errors, not rejections
    let err = client
        .query("SELECT nope FROM sys.nodes", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_COLUMN));
    let rejected = sim.rejected_statements();
    assert_eq!(rejected.len(), 4);
    assert!(
        rejected
            .iter()
            .all(|r| r.frontend == Frontend::PgWire && r.user == "system")
    );
    assert_eq!(rejected[3].sql, "UPDATE doc.t SET x = 1");
    assert!(
        matches!(&rejected[0].outcome, StatementOutcome::Error { sqlstate, message }
        if sqlstate == "42601" && message.starts_with("SQLParseException[line 1:1: mismatched input 'INSERT'"))
    );
    // sys.jobs_log records failures with CrateDB's plain message
    let failed = sim
        .jobs_log()
        .into_iter()
        .find(|j| j.stmt == "UPDATE doc.t SET x = 1")
        .unwrap();
    assert!(
        failed
            .error
            .unwrap()
            .starts_with("line 1:1: mismatched input 'UPDATE'")
    );
    // the connection still works
    assert_eq!(client.query("SELECT 1", &[]).await.unwrap().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn command_tags_report_crate_rowcounts() {
    let sim = start(builder("5.10.3").table(TableDef::new("gc", "scheduled_jobs"))).await;
    let client = system(&sim).await;
    let n = client
        .execute(
            "SET GLOBAL PERSISTENT cluster.routing.allocation.cluster_concurrent_rebalance = $1",
            &[&"6"],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        sim.persistent_settings()["cluster.routing.allocation.cluster_concurrent_rebalance"],
        serde_json::json!(6)
    );
    assert_eq!(
        client
            .execute(
                r#"ALTER TABLE "gc"."scheduled_jobs" RENAME TO "scheduled_jobs_temp";"#,
                &[]
            )
            .await
            .unwrap(),
        1
    );
    let msgs = client
        .simple_query(r#"SHOW TABLES FROM "gc";"#)
        .await
        .unwrap();
    let names: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["scheduled_jobs_temp"]);
    assert_eq!(
        client
            .execute(r#"DROP TABLE IF EXISTS "gc"."scheduled_jobs_temp";"#, &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        client
            .execute(r#"DROP TABLE IF EXISTS "gc"."nope""#, &[])
            .await
            .unwrap(),
        0
    );
    let err = client
        .execute(r#"DROP TABLE "gc"."nope""#, &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    sim.shutdown().await;
}

#[tokio::test]
async fn jobs_log_never_contains_bound_parameter_values() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    create_repo(&client, "restore_backup_1718000000")
        .await
        .unwrap();

    let log = sim.jobs_log();
    let create = log
        .iter()
        .find(|j| j.stmt.starts_with("CREATE REPOSITORY"))
        .expect("logged");
    assert!(create.stmt.contains("secret_key = $6"));
    assert!(create.error.is_none());
    assert!(
        log.iter()
            .all(|j| !j.stmt.contains(SECRET) && !j.stmt.contains(ACCESS))
    );
    // the same over SQL
    let rows = client
        .query("SELECT stmt FROM sys.jobs_log", &[])
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| !r.get::<_, String>(0).contains(SECRET)));

    // the test log keeps parameters, the summary does not
    let rec = sim
        .statements()
        .into_iter()
        .find(|s| s.sql.starts_with("CREATE REPOSITORY"))
        .unwrap();
    assert_eq!(rec.param_count, 6);
    assert_eq!(rec.params[5], serde_json::json!(SECRET));
    let summary = sim.statements_without_params();
    let text = serde_json::to_string(&summary).unwrap();
    assert!(!text.contains(SECRET));
    assert!(
        summary
            .iter()
            .any(|s| s.sql.starts_with("CREATE REPOSITORY") && s.param_count == 6)
    );
    // sys.repositories masks secrets
    let row = client
        .query_one(
            "SELECT settings FROM sys.repositories WHERE name = $1",
            &[&"restore_backup_1718000000"],
        )
        .await
        .unwrap();
    let settings: serde_json::Value = row.get(0);
    assert_eq!(settings["secret_key"], "[xxxxx]");
    assert_eq!(settings["bucket"], BUCKET);
    sim.shutdown().await;
}

#[tokio::test]
async fn connections_can_be_dropped_now_or_on_a_statement() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    assert_eq!(sim.open_pg_connections(), 1);
    assert_eq!(sim.drop_pg_connections(), 1);
    assert!(client.query("SELECT 1", &[]).await.is_err());

    let client = system(&sim).await;
    sim.drop_connection_on("sys.snapshot_restore", Some(1));
    let err = client
        .query(
            "SELECT 1 FROM sys.snapshot_restore WHERE name = $1 LIMIT 1",
            &[&"snap1"],
        )
        .await
        .unwrap_err();
    assert!(
        err.as_db_error().is_none(),
        "a dropped connection is not an SQL error: {err}"
    );
    let client = system(&sim).await;
    assert!(
        client
            .query(
                "SELECT 1 FROM sys.snapshot_restore WHERE name = $1 LIMIT 1",
                &[&"snap1"]
            )
            .await
            .unwrap()
            .is_empty()
    );
    let dropped: Vec<_> = sim
        .statements()
        .into_iter()
        .filter(|s| s.outcome == StatementOutcome::ConnectionDropped)
        .collect();
    assert_eq!(dropped.len(), 1);
    assert!(dropped[0].sql.contains("sys.snapshot_restore"));
    sim.shutdown().await;
}

#[tokio::test]
async fn error_injection_fails_matching_statements() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    sim.inject_error(
        ErrorInjection::once("sys.cluster", "node is shutting down").sqlstate("57P01"),
    );
    let err = client
        .query("SELECT settings FROM sys.cluster", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::ADMIN_SHUTDOWN));
    assert_eq!(server_message(&err), "node is shutting down");
    assert_eq!(
        client
            .query("SELECT settings FROM sys.cluster", &[])
            .await
            .unwrap()
            .len(),
        1
    );

    sim.inject_error(ErrorInjection::always("sys.nodes", "boom"));
    for _ in 0..2 {
        assert!(
            client
                .query("SELECT name FROM sys.nodes", &[])
                .await
                .is_err()
        );
    }
    sim.clear_error_injections();
    assert!(
        client
            .query("SELECT name FROM sys.nodes", &[])
            .await
            .is_ok()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn seeded_snapshot_jobs_show_in_sys_jobs() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    let q = "SELECT stmt FROM sys.jobs WHERE stmt LIKE '%CREATE SNAPSHOT%' AND stmt NOT LIKE '%sys.jobs%'";
    assert!(client.query(q, &[]).await.unwrap().is_empty());
    // the running statement itself is a job
    let rows = client
        .query("SELECT stmt, username FROM sys.jobs", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].get::<_, String>(0),
        "SELECT stmt, username FROM sys.jobs"
    );
    assert_eq!(rows[0].get::<_, String>(1), "system");

    let id =
        sim.seed_job(r#"CREATE SNAPSHOT "backup"."nightly" ALL WITH (wait_for_completion = true)"#);
    let rows = client.query(q, &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].get::<_, String>(0).starts_with("CREATE SNAPSHOT"));
    assert!(sim.remove_job(&id));
    assert!(client.query(q, &[]).await.unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn settings_set_reset_and_unknown_settings() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    client
        .execute(
            "SET GLOBAL TRANSIENT cluster.routing.allocation.enable = 'primaries'",
            &[],
        )
        .await
        .unwrap();
    client
        .execute(
            "SET GLOBAL PERSISTENT \"indices.recovery.max_bytes_per_sec\" = $1",
            &[&"200mb"],
        )
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT settings['cluster']['routing']['allocation']['enable'], settings['indices']['recovery']['max_bytes_per_sec'] FROM sys.cluster",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "primaries");
    assert_eq!(row.get::<_, String>(1), "200mb");
    assert_eq!(
        sim.transient_settings()["cluster.routing.allocation.enable"],
        "primaries"
    );

    let err = client
        .execute(
            "SET GLOBAL PERSISTENT cluster.routing.allocation.foo = 1",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
    assert_eq!(
        server_message(&err),
        "Setting 'cluster.routing.allocation.foo' is not supported"
    );
    let err = client
        .execute(
            "SET GLOBAL PERSISTENT indices.recovery.max_bytes_per_sec = 'fast'",
            &[],
        )
        .await
        .unwrap_err();
    assert!(server_message(&err).contains("as a size in bytes"));

    client
        .execute("RESET GLOBAL cluster.routing.allocation.enable", &[])
        .await
        .unwrap();
    assert!(sim.transient_settings().is_empty());
    let row = client
        .query_one(
            "SELECT settings['cluster']['routing']['allocation']['enable'] FROM sys.cluster",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "all");
    sim.shutdown().await;
}
