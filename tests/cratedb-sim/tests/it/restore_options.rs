//! `RESTORE SNAPSHOT`'s rename options (CrateDB 5.6.0+, partitioned tables right from 5.7.2)
//! and partial restores next to live data, on both sides of those versions.

use cratedb_sim::{PartitionDef, Simulator, SimulatorHandle, SnapshotDef, Storage, TableDef};
use serde_json::json;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Error};

use crate::common::*;

/// `RESTORE SNAPSHOT "repo"."<snapshot>" <what> WITH (wait_for_completion = <wait>, k = $n, ...)`
/// with every option value bound as text, as the product sends them.
async fn restore_with(
    client: &Client,
    snapshot: &str,
    what: &str,
    wait: bool,
    options: &[(&str, Option<&str>)],
) -> Result<u64, Error> {
    let mut with = vec![format!("wait_for_completion = {wait}")];
    for (i, (k, _)) in options.iter().enumerate() {
        with.push(format!("{k} = ${}", i + 1));
    }
    let sql = format!(
        r#"RESTORE SNAPSHOT "repo"."{snapshot}" {what} WITH ({})"#,
        with.join(", ")
    );
    let stmt = client
        .prepare_typed(&sql, &vec![Type::TEXT; options.len()])
        .await?;
    let values: Vec<&(dyn ToSql + Sync)> = options
        .iter()
        .map(|(_, v)| v as &(dyn ToSql + Sync))
        .collect();
    client.execute(&stmt, &values).await
}

async fn count(client: &Client, fqn: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {fqn}"), &[])
        .await
        .unwrap_or_else(|e| panic!("count {fqn}: {e}"))
        .get(0)
}

async fn relations(client: &Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn partitions_of(client: &Client, schema: &str, table: &str) -> Vec<String> {
    client
        .query(
            "SELECT partition_ident FROM information_schema.table_partitions WHERE table_schema = $1 AND table_name = $2 ORDER BY partition_ident",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Live data the restores must leave alone: `doc.t1` (4 shards of 1000 documents) and
/// `doc.parted` with only its partition `day = 3` (1 shard).
fn beside_live_data(version: &str) -> cratedb_sim::SimulatorBuilder {
    builder(version).table(TableDef::new("doc", "t1")).table(
        TableDef::new("doc", "parted")
            .shards(1)
            .partitioned_by(["day"])
            .partition(PartitionDef::new("day", 3)),
    )
}

async fn with_repo(b: cratedb_sim::SimulatorBuilder) -> (SimulatorHandle, Client) {
    let sim = start(b).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    (sim, client)
}

const DAY1: &str = "04132";
const DAY2: &str = "04134";

#[tokio::test]
async fn rename_options_are_unknown_settings_before_5_6_0() {
    for version in ["5.5.0", "5.5.4"] {
        let sim = start(builder(version)).await;
        let client = system(&sim).await;
        // The analyzer looks the repository up before the options are checked.
        let err = restore_with(
            &client,
            "snap1",
            "TABLES",
            true,
            &[("table_rename_replacement", Some("$1_copy"))],
        )
        .await
        .unwrap_err();
        assert_eq!(server_message(&err), "[repo] missing");
        create_repo(&client, "repo").await.unwrap();
        for option in [
            "schema_rename_pattern",
            "schema_rename_replacement",
            "table_rename_pattern",
            "table_rename_replacement",
        ] {
            let err = restore_with(&client, "snap1", "TABLES", true, &[(option, Some("x"))])
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                Some(&SqlState::FEATURE_NOT_SUPPORTED),
                "{version}"
            );
            assert_eq!(
                server_message(&err),
                format!("Setting '{option}' is not supported"),
                "{version}"
            );
        }
        // Over HTTP it is the SQLParseException CrateDB turns the IllegalArgumentException into.
        let (status, body) = sql_post(
            &sim,
            "",
            &[],
            &json!({
                "stmt": r#"RESTORE SNAPSHOT repo.snap1 TABLE doc.t2 WITH (table_rename_replacement = ?)"#,
                "args": ["$1_copy"],
            }),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"],
            json!({"message": "SQLParseException[Setting 'table_rename_replacement' is not supported]", "code": 4000})
        );
        assert!(sim.tables().is_empty(), "nothing restored on {version}");
        assert!(sim.rejected_statements().is_empty(), "CrateDB's own error");
        // The options CrateDB 5.5 knows still work.
        assert_eq!(
            restore_with(
                &client,
                "snap1",
                "TABLE doc.t2",
                true,
                &[("ignore_unavailable", Some("false"))]
            )
            .await
            .unwrap(),
            1
        );
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn renamed_relations_restore_under_their_new_names_beside_live_data() {
    for version in ["5.7.2", "6.2.7", "6.3.0"] {
        let (sim, client) = with_repo(beside_live_data(version)).await;
        assert_eq!(
            restore_with(
                &client,
                "snap1",
                "TABLES",
                false,
                &[
                    ("schema_rename_replacement", Some("restored")),
                    ("table_rename_replacement", Some("$1_copy")),
                ],
            )
            .await
            .unwrap(),
            1,
            "{version}"
        );
        // The progress rows name the targets.
        let shards: Vec<serde_json::Value> = client
            .query_one(
                "SELECT shards FROM sys.snapshot_restore WHERE repository = $1 AND name = $2",
                &[&"repo", &"snap1"],
            )
            .await
            .unwrap()
            .get(0);
        let mut named: Vec<String> = shards
            .iter()
            .map(|s| {
                format!(
                    "{}.{}",
                    s["table_schema"].as_str().unwrap(),
                    s["table_name"].as_str().unwrap()
                )
            })
            .collect();
        named.sort();
        named.dedup();
        assert_eq!(
            named,
            [
                "restored.parted_copy",
                "restored.t1_copy",
                "restored.t2_copy"
            ],
            "{version}"
        );
        while !sim.restores_in_progress().is_empty() {
            client
                .query("SELECT 1 FROM sys.snapshot_restore", &[])
                .await
                .unwrap();
        }

        assert_eq!(
            relations(&client, "restored").await,
            ["parted_copy", "t1_copy", "t2_copy"],
            "{version}"
        );
        assert_eq!(
            partitions_of(&client, "restored", "parted_copy").await,
            [DAY1, DAY2]
        );
        let primaries: Vec<(String, String, String)> = client
            .query(
                "SELECT schema_name, table_name, state FROM sys.shards WHERE primary = true AND schema_name = 'restored' ORDER BY table_name, id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(primaries.len(), 5, "{primaries:?}");
        assert!(primaries.iter().all(|(_, _, s)| s == "STARTED"));
        assert_eq!(count(&client, "restored.t1_copy").await, 2000);
        assert_eq!(count(&client, "restored.parted_copy").await, 2000);
        // The live relations are untouched.
        assert_eq!(relations(&client, "doc").await, ["parted", "t1"]);
        assert_eq!(count(&client, "doc.t1").await, 4000);
        assert_eq!(count(&client, "doc.parted").await, 1000);
        assert_eq!(sim.doc_count("restored", "parted_copy"), Some(2000));
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn renamed_partitioned_tables_come_back_empty_before_5_7_2() {
    for (version, fixed) in [("5.6.0", false), ("5.7.1", false), ("5.7.2", true)] {
        let (sim, client) = with_repo(beside_live_data(version)).await;
        restore_with(
            &client,
            "snap1",
            r#"TABLE doc.parted, doc.t2"#,
            true,
            &[("table_rename_replacement", Some("$1_copy"))],
        )
        .await
        .unwrap();
        // Everything that reads index names shows the renamed table complete ...
        assert_eq!(
            relations(&client, "doc").await,
            ["parted", "parted_copy", "t1", "t2_copy"]
        );
        assert_eq!(
            partitions_of(&client, "doc", "parted_copy").await,
            [DAY1, DAY2]
        );
        let started: i64 = client
            .query_one(
                "SELECT count(*) FROM sys.shards WHERE table_name = 'parted_copy' AND state = 'STARTED' AND primary = true",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(started, 2);
        // ... but before 5.7.2 its partitions kept the source's alias: the renamed table is
        // empty and the rows answer to the source table.
        let (copy, source) = if fixed { (2000, 1000) } else { (0, 3000) };
        assert_eq!(count(&client, "doc.parted_copy").await, copy, "{version}");
        assert_eq!(count(&client, "doc.parted").await, source, "{version}");
        assert_eq!(sim.doc_count("doc", "parted_copy"), Some(copy as u64));
        // Plain tables were never affected.
        assert_eq!(count(&client, "doc.t2_copy").await, 1000, "{version}");
        sim.shutdown().await;
    }
}

/// A snapshot with two partitioned tables, `doc.pa` (day 1) and `doc.pb` (`pb_day`).
fn two_partitioned(pb_day: i64) -> SnapshotDef {
    SnapshotDef::new("snapp")
        .version("5.5.0")
        .table(
            TableDef::new("doc", "pa")
                .shards(1)
                .partitioned_by(["day"])
                .partition(PartitionDef::new("day", 1)),
        )
        .table(
            TableDef::new("doc", "pb")
                .shards(1)
                .partitioned_by(["day"])
                .partition(PartitionDef::new("day", pb_day)),
        )
}

#[tokio::test]
async fn relations_renamed_into_one_name_fail_as_in_cratedb() {
    let (sim, client) = with_repo(builder("5.10.3")).await;
    let into_t = [
        ("table_rename_pattern", Some("t\\d")),
        ("table_rename_replacement", Some("t")),
    ];
    let err = restore_with(&client, "snap1", "TABLE doc.t1, doc.t2", true, &into_t)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INTERNAL_ERROR));
    assert_eq!(
        server_message(&err),
        "[repo:snap1] indices [t2] and [t1] are renamed into the same index [t]"
    );
    let (status, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({
            "stmt": "RESTORE SNAPSHOT repo.snap1 TABLES WITH (table_rename_pattern = ?, table_rename_replacement = ?)",
            "args": ["t\\d", "t"],
        }),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["error"]["message"],
        "SnapshotRestoreException[[repo:snap1] indices [t2] and [t1] are renamed into the same index [t]]"
    );
    assert!(sim.tables().is_empty(), "nothing restored");
    sim.shutdown().await;

    // Two partitioned tables: the same partition collides as an index, different ones as
    // templates.
    for (pb_day, message) in [
        (
            1,
            "[repo:snapp] indices [.partitioned.pb.04132] and [.partitioned.pa.04132] are renamed into the same index [.partitioned.p.04132]",
        ),
        (
            2,
            "[repo:snapp] Rename conflict for partitioned table `doc.pb`. `.partitioned.pb.` already exists. Cannot rename `.partitioned.p.` to the same name",
        ),
    ] {
        let (sim, client) = with_repo(
            Simulator::builder()
                .server_version("5.10.3")
                .user("system", SYSTEM_PW)
                .storage(
                    Storage::s3(BUCKET, BASE, ACCESS, SECRET).snapshot(two_partitioned(pb_day)),
                ),
        )
        .await;
        let err = restore_with(
            &client,
            "snapp",
            "TABLES",
            true,
            &[
                ("table_rename_pattern", Some("p[ab]")),
                ("table_rename_replacement", Some("p")),
            ],
        )
        .await
        .unwrap_err();
        assert_eq!(server_message(&err), message);
        assert!(sim.tables().is_empty());
        sim.shutdown().await;
    }

    // CrateDB 6.1 dropped the check (RestoreService.resolveRelations keys by source name);
    // what it then does is not modelled, so the simulator refuses to guess.
    let (sim, client) = with_repo(builder("6.2.7")).await;
    let err = restore_with(&client, "snap1", "TABLE doc.t1, doc.t2", true, &into_t)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
    assert!(
        server_message(&err).starts_with(
            "cratedb-sim does not model restoring doc.t1 and doc.t2 under one name doc.t"
        ),
        "{err}"
    );
    assert_eq!(sim.rejected_statements().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn existing_targets_fail_and_missing_partitions_restore_into_them() {
    for version in ["5.6.0", "5.10.3", "6.3.0"] {
        let (sim, client) = with_repo(
            builder(version)
                .table(TableDef::new("doc", "t1_copy").shards(3))
                .table(
                    TableDef::new("doc", "parted_copy")
                        .shards(1)
                        .partitioned_by(["day"])
                        .partition(PartitionDef::new("day", 1)),
                ),
        )
        .await;
        let copy = [("table_rename_replacement", Some("$1_copy"))];
        let err = restore_with(&client, "snap1", "TABLE doc.t2, doc.t1", true, &copy)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::DUPLICATE_TABLE), "{version}");
        assert_eq!(
            server_message(&err),
            "Relation 'doc.t1_copy' already exists."
        );
        let err = restore_with(&client, "snap1", "TABLE doc.parted", true, &copy)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::INTERNAL_ERROR));
        assert_eq!(
            server_message(&err),
            "Partition '.partitioned.parted_copy.04132' already exists"
        );
        assert!(
            !sim.tables().iter().any(|t| t.name == "t2_copy"),
            "a failed restore changes nothing"
        );
        // The missing partition restores into the existing renamed table.
        restore_with(
            &client,
            "snap1",
            "TABLE doc.parted PARTITION (day = 2)",
            true,
            &copy,
        )
        .await
        .unwrap();
        assert_eq!(
            partitions_of(&client, "doc", "parted_copy").await,
            [DAY1, DAY2]
        );
        assert!(!sim.tables().iter().any(|t| t.name == "parted"));
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn replacements_are_read_like_java_and_unmodelled_patterns_are_refused() {
    let (sim, client) = with_repo(builder("5.10.3")).await;
    let attempt = |pattern: &'static str, replacement: &'static str| {
        let client = &client;
        async move {
            restore_with(
                client,
                "snap1",
                "TABLE doc.t2",
                true,
                &[
                    ("table_rename_pattern", Some(pattern)),
                    ("table_rename_replacement", Some(replacement)),
                ],
            )
            .await
        }
    };
    let err = attempt("(t)(\\d)", "$3").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INTERNAL_ERROR));
    assert_eq!(server_message(&err), "No group 3");
    let err = attempt("(t)(\\d)", "x$").await.unwrap_err();
    assert_eq!(
        server_message(&err),
        "Illegal group reference: group index is missing"
    );
    let err = attempt("(t)\\1", "$1").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
    assert!(server_message(&err).contains("a back reference in table_rename_pattern '(t)\\1'"));
    assert_eq!(
        sim.rejected_statements().len(),
        1,
        "only the unmodelled one"
    );
    assert!(sim.tables().is_empty());

    // Java reads the replacement only for a match: no match, no error, no new name.
    attempt("zzz", "$9").await.unwrap();
    // Groups and escapes.
    attempt("(t)(\\d)", "$2\\_$1").await.unwrap();
    // NULL is the default, and all four at their defaults rename nothing.
    restore_with(
        &client,
        "snap1",
        "TABLE doc.t1",
        true,
        &[
            ("schema_rename_pattern", None),
            ("table_rename_pattern", Some("(.+)")),
            ("table_rename_replacement", Some("$1")),
        ],
    )
    .await
    .unwrap();
    let mut names: Vec<String> = sim.tables().into_iter().map(|t| t.name).collect();
    names.sort();
    assert_eq!(names, ["2_t", "t1", "t2"]);
    // String literals work as parameters do.
    let o = sim.execute_as_superuser(
        "RESTORE SNAPSHOT repo.snap1 TABLE doc.parted WITH (wait_for_completion = true, table_rename_pattern = 'p(ar)ted', table_rename_replacement = 'lit_$1')",
    );
    assert_eq!(o.rowcount(), Some(1), "{o:?}");
    assert_eq!(partitions_of(&client, "doc", "lit_ar").await, [DAY1, DAY2]);

    // Over HTTP: the same value, CrateDB's class names.
    let (status, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({
            "stmt": "RESTORE SNAPSHOT repo.snap1 TABLE doc.parted WITH (table_rename_replacement = ?)",
            "args": ["$2"],
        }),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["error"]["message"],
        "IndexOutOfBoundsException[No group 2]"
    );
    let (status, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({
            "stmt": "RESTORE SNAPSHOT repo.snap1 TABLE doc.parted WITH (wait_for_completion = true, schema_rename_replacement = ?)",
            "args": ["http"],
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({"stmt": "SELECT count(*) AS n FROM http.parted"}),
    )
    .await;
    assert_eq!(body["cols"], json!(["n"]));
    assert_eq!(body["rows"], json!([[2000]]));
    // Only a plain count of a user table is modelled.
    let o = sim.execute_as_superuser("SELECT count(*) FROM http.parted WHERE day = 1");
    assert!(o.error().is_some_and(|e| e.sqlstate == "0A000"), "{o:?}");
    sim.shutdown().await;
}

/// A snapshot with `doc.parted` partitions for days 1, 2 and 3 and the plain `doc.t1`, `doc.t2`.
fn three_days() -> SnapshotDef {
    SnapshotDef::new("days")
        .version("5.5.0")
        .table(
            TableDef::new("doc", "parted")
                .shards(1)
                .partitioned_by(["day"])
                .partition(PartitionDef::new("day", 1))
                .partition(PartitionDef::new("day", 2))
                .partition(PartitionDef::new("day", 3)),
        )
        .table(TableDef::new("doc", "t1"))
        .table(TableDef::new("doc", "t2").shards(1))
}

#[tokio::test]
async fn single_partitions_and_table_lists_restore_what_is_missing() {
    for version in ["5.5.4", "5.10.3", "6.3.0"] {
        let (sim, client) = with_repo(
            Simulator::builder()
                .server_version(version)
                .user("system", SYSTEM_PW)
                .storage(Storage::s3(BUCKET, BASE, ACCESS, SECRET).snapshot(three_days()))
                .table(TableDef::new("doc", "t1"))
                .table(
                    TableDef::new("doc", "parted")
                        .shards(1)
                        .partitioned_by(["day"])
                        .partition(PartitionDef::new("day", 1)),
                ),
        )
        .await;
        // A list naming an existing table fails as a whole.
        let err = restore_with(&client, "days", "TABLE doc.t2, doc.t1", true, &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::DUPLICATE_TABLE), "{version}");
        assert!(!sim.tables().iter().any(|t| t.name == "t2"));
        // The same partition twice is one partition.
        let sql = r#"RESTORE SNAPSHOT "repo"."days" TABLE doc.parted PARTITION (day = $1), doc.parted PARTITION (day = $2) WITH (wait_for_completion = true)"#;
        client.execute(sql, &[&"2", &"2"]).await.unwrap();
        let day2_shards = sim
            .shards()
            .into_iter()
            .filter(|s| s.partition_ident.as_deref() == Some(DAY2))
            .count();
        assert_eq!(day2_shards, 1, "{version}");
        // The missing ones of a partly existing table, beside a missing plain table.
        let sql = r#"RESTORE SNAPSHOT "repo"."days" TABLE doc.t2, doc.parted PARTITION (day = $1) WITH (wait_for_completion = true)"#;
        client.execute(sql, &[&"3"]).await.unwrap();
        assert_eq!(
            partitions_of(&client, "doc", "parted").await,
            [DAY1, DAY2, "04136"],
            "{version}"
        );
        let recovery: Vec<(String, String)> = client
            .query(
                "SELECT partition_ident, recovery['type'] FROM sys.shards WHERE table_name = 'parted' AND primary = true ORDER BY partition_ident",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(
            recovery,
            [
                (DAY1.to_string(), "EXISTING_STORE".to_string()),
                (DAY2.to_string(), "SNAPSHOT".to_string()),
                ("04136".to_string(), "SNAPSHOT".to_string()),
            ],
            "{version}: the existing partition is untouched"
        );
        assert_eq!(count(&client, "doc.t2").await, 1000);
        assert_eq!(count(&client, "doc.parted").await, 3000);
        // An existing partition named explicitly is still a conflict.
        let err = client
            .execute(
                r#"RESTORE SNAPSHOT "repo"."days" TABLE doc.parted PARTITION (day = $1)"#,
                &[&"1"],
            )
            .await
            .unwrap_err();
        assert_eq!(
            server_message(&err),
            "Partition '.partitioned.parted.04132' already exists"
        );
        sim.shutdown().await;
    }
}
