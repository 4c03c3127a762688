//! The statements the restore Job sends to follow a restore of many relations: `= ANY` over
//! `schema || '.' || table`, aggregates with `FILTER`, `GROUP BY`, over CrateDB's HTTP
//! endpoint (JSON array arguments) and PostgreSQL wire (array literals).

use cratedb_sim::ProgressMode;
use serde_json::{Value as Json, json};
use tokio_postgres::types::Type;

use crate::common::*;

/// Primaries of the listed relations: how many, how many started, bytes to restore and
/// restored.
pub const SUMMARY: &str = "SELECT count(*), count(*) FILTER (WHERE state = 'STARTED'), sum(recovery['size']['used']), sum(recovery['size']['recovered']) FROM sys.shards WHERE primary = true AND schema_name || '.' || table_name = ANY($1)";
/// The first 101 primaries of the listed relations that are not started yet.
pub const PENDING: &str = "SELECT schema_name, table_name, partition_ident, id, state FROM sys.shards WHERE primary = true AND state <> 'STARTED' AND schema_name || '.' || table_name = ANY($1) LIMIT 101";
/// The listed relations that exist.
pub const RELATIONS: &str = "SELECT table_schema, table_name, table_type, closed, partitioned_by FROM information_schema.tables WHERE table_schema || '.' || table_name = ANY($1)";
/// The partitions of the listed relations.
pub const PARTITIONS: &str = "SELECT table_schema, table_name, partition_ident, \"values\", closed FROM information_schema.table_partitions WHERE table_schema || '.' || table_name = ANY($1)";
/// Per relation: primaries and primaries not started.
pub const PER_RELATION: &str = "SELECT schema_name, table_name, count(*), count(*) FILTER (WHERE state <> 'STARTED') FROM sys.shards WHERE primary = true AND schema_name || '.' || table_name = ANY($1) GROUP BY schema_name, table_name ORDER BY schema_name, table_name LIMIT 1000";

async fn post(sim: &cratedb_sim::SimulatorHandle, stmt: &str, args: Json) -> Json {
    let (status, body) = sql_post(sim, "?types", &[], &json!({"stmt": stmt, "args": args})).await;
    assert_eq!(status, 200, "{stmt}: {body}");
    body
}

fn sorted(rows: &Json) -> Vec<Json> {
    let mut rows = rows.as_array().expect("rows").clone();
    rows.sort_by_key(|r| r.to_string());
    rows
}

#[tokio::test]
async fn the_jobs_progress_statements_over_http_with_array_arguments() {
    let sim =
        start(builder("5.10.3").progress(ProgressMode::PerObservation { percent_step: 50.0 }))
            .await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    client
        .execute(
            r#"RESTORE SNAPSHOT "repo"."snap1" TABLE "doc"."t1", "doc"."parted" WITH (wait_for_completion = false)"#,
            &[],
        )
        .await
        .unwrap();
    let wanted = json!([["doc.t1", "doc.parted", "doc.t2", "gc.missing"]]);

    // 1st observation: everything initializing
    let body = post(&sim, PER_RELATION, wanted.clone()).await;
    assert_eq!(
        body["cols"],
        json!([
            "schema_name",
            "table_name",
            "count(*)",
            "count(*) FILTER (WHERE (state <> 'STARTED'))"
        ])
    );
    assert_eq!(body["col_types"], json!([4, 4, 10, 10]));
    assert_eq!(
        body["rows"],
        json!([["doc", "parted", 2, 2], ["doc", "t1", 2, 2]])
    );

    // 2nd: recovering at 50 %
    let body = post(&sim, PENDING, wanted.clone()).await;
    assert_eq!(body["col_types"], json!([4, 4, 4, 9, 4]));
    let rows = sorted(&body["rows"]);
    assert_eq!(rows.len(), 4, "{body}");
    assert!(rows.iter().all(|r| r[4] == "RECOVERING"), "{body}");
    assert_eq!(rows[2], json!(["doc", "t1", "", 0, "RECOVERING"]));
    let idents: Vec<Json> = sim
        .partitions()
        .into_iter()
        .map(|p| json!(p.ident))
        .collect();
    assert_eq!([&rows[0][2], &rows[1][2]], [&idents[0], &idents[1]]);

    // 3rd: all started
    let body = post(&sim, SUMMARY, wanted.clone()).await;
    assert_eq!(body["col_types"], json!([10, 10, 10, 10]));
    assert_eq!(body["rows"], json!([[4, 4, 4_000_000, 4_000_000]]));
    let body = post(&sim, PENDING, wanted.clone()).await;
    assert_eq!(body["rows"], json!([]));
    assert!(sim.restores_in_progress().is_empty());

    let body = post(&sim, RELATIONS, wanted.clone()).await;
    assert_eq!(body["col_types"], json!([4, 4, 4, 3, [100, 4]]));
    assert_eq!(
        sorted(&body["rows"]),
        vec![
            json!(["doc", "parted", "BASE TABLE", false, ["day"]]),
            json!(["doc", "t1", "BASE TABLE", false, null]),
        ]
    );
    let body = post(&sim, PARTITIONS, wanted).await;
    let rows = sorted(&body["rows"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][3], json!({"day": 1}), "{body}");
    assert_eq!(rows[1][3], json!({"day": 2}), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_summary_before_and_during_a_restore() {
    let sim =
        start(builder("5.10.3").progress(ProgressMode::PerObservation { percent_step: 50.0 }))
            .await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    let wanted = json!([["doc.t1", "doc.parted"]]);
    // nothing restored yet: one row, count 0, sums NULL
    let body = post(&sim, SUMMARY, wanted.clone()).await;
    assert_eq!(body["rows"], json!([[0, 0, null, null]]));
    client
        .execute(
            r#"RESTORE SNAPSHOT "repo"."snap1" ALL WITH (wait_for_completion = false)"#,
            &[],
        )
        .await
        .unwrap();
    // initializing shards have no recovery yet
    let body = post(&sim, SUMMARY, wanted.clone()).await;
    assert_eq!(body["rows"], json!([[4, 0, null, null]]));
    let body = post(&sim, SUMMARY, wanted.clone()).await;
    assert_eq!(body["rows"], json!([[4, 0, 4_000_000, 2_000_000]]));
    // an empty list matches nothing; a NULL array makes every comparison NULL
    let body = post(&sim, SUMMARY, json!([[]])).await;
    assert_eq!(body["rows"], json!([[0, 0, null, null]]));
    let body = post(&sim, SUMMARY, json!([null])).await;
    assert_eq!(body["rows"], json!([[0, 0, null, null]]));
    sim.shutdown().await;
}

#[tokio::test]
async fn array_literals_concatenation_and_types_over_postgres() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    client
        .execute(
            r#"RESTORE SNAPSHOT "repo"."snap1" ALL WITH (wait_for_completion = true)"#,
            &[],
        )
        .await
        .unwrap();
    let stmt = client
        .prepare(&SUMMARY.replace("$1", "ARRAY['doc.t1', 'doc.t2']"))
        .await
        .unwrap();
    let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(types, vec![Type::INT8; 4]);
    let row = client.query_one(&stmt, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 3);
    assert_eq!(row.get::<_, i64>(1), 3);
    assert_eq!(row.get::<_, i64>(2), 2_000_400);

    let rows = client
        .query(
            "SELECT schema_name || '.' || table_name AS fqn, count(*) FROM sys.shards \
             WHERE table_name = ANY(['t1', 'parted']) GROUP BY 1 ORDER BY fqn",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![("doc.parted".to_string(), 2), ("doc.t1".to_string(), 2)]
    );
    let row = client
        .query_one("SELECT 'a' || NULL IS NULL, 'a' <> ANY(['a', 'b'])", &[])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert!(row.get::<_, bool>(1));

    let err = client
        .query(
            "SELECT schema_name, count(*) FROM sys.shards GROUP BY table_name",
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        server_message(&err).starts_with(
            "'schema_name' must appear in the GROUP BY clause or be used in an aggregation function"
        ),
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn text_array_parameters_as_tokio_postgres_binds_them() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    create_repo(&client, "repo").await.unwrap();
    client
        .execute(
            r#"RESTORE SNAPSHOT "repo"."snap1" ALL WITH (wait_for_completion = true)"#,
            &[],
        )
        .await
        .unwrap();
    // exactly as the Job binds it: text[] declared at Parse, a Vec<&str> in binary format
    let stmt = client
        .prepare_typed(SUMMARY, &[Type::TEXT_ARRAY])
        .await
        .unwrap();
    assert_eq!(stmt.params(), &[Type::TEXT_ARRAY]);
    let wanted: Vec<&str> = vec!["doc.t1", "doc.parted", "doc.nope"];
    let row = client.query_one(&stmt, &[&wanted]).await.unwrap();
    let got: Vec<i64> = (0..4).map(|i| row.get(i)).collect();
    assert_eq!(got, vec![4, 4, 4_000_000, 4_000_000]);
    // varchar[] and NULL elements
    let stmt = client
        .prepare_typed(PENDING, &[Type::VARCHAR_ARRAY])
        .await
        .unwrap();
    let with_null: Vec<Option<&str>> = vec![Some("doc.t2"), None];
    assert!(client.query(&stmt, &[&with_null]).await.unwrap().is_empty());
    // left untyped, the parameter of `= ANY($1)` is described as an array
    let stmt = client.prepare(RELATIONS).await.unwrap();
    assert_eq!(stmt.params(), &[Type::VARCHAR_ARRAY]);
    let rows = client.query(&stmt, &[&wanted]).await.unwrap();
    assert_eq!(rows.len(), 2);
    let stmt = client.prepare(PARTITIONS).await.unwrap();
    let rows = client.query(&stmt, &[&wanted]).await.unwrap();
    assert_eq!(rows.len(), 2);
    // an empty array and a NULL array match nothing
    let stmt = client
        .prepare_typed(SUMMARY, &[Type::TEXT_ARRAY])
        .await
        .unwrap();
    let none: Vec<&str> = Vec::new();
    let row = client.query_one(&stmt, &[&none]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    let null: Option<Vec<&str>> = None;
    let row = client.query_one(&stmt, &[&null]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    // the statement log shows the array
    let logged = sim
        .statements()
        .into_iter()
        .find(|s| s.sql == SUMMARY)
        .unwrap();
    assert_eq!(
        logged.params,
        vec![json!(["doc.t1", "doc.parted", "doc.nope"])]
    );
    sim.shutdown().await;
}

/// One PostgreSQL message: type byte, length, body.
fn pg_msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Read messages until `ReadyForQuery`: `(type, body)` each.
async fn pg_read_until_ready(s: &mut tokio::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    loop {
        let kind = s.read_u8().await.unwrap();
        let len = s.read_i32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        s.read_exact(&mut body).await.unwrap();
        out.push((kind, body));
        if kind == b'Z' {
            return out;
        }
    }
}

#[tokio::test]
async fn text_format_array_parameters() {
    use tokio::io::AsyncWriteExt;
    let sim =
        start(builder("5.10.3").table(cratedb_sim::TableDef::new("doc", "t1").shards(3))).await;
    let mut s = tokio::net::TcpStream::connect(sim.pg_addr()).await.unwrap();
    let mut startup = Vec::new();
    startup.extend_from_slice(&196608i32.to_be_bytes());
    for kv in ["user", "system", "database", "doc"] {
        startup.extend_from_slice(kv.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut first = (startup.len() as i32 + 4).to_be_bytes().to_vec();
    first.extend_from_slice(&startup);
    s.write_all(&first).await.unwrap();
    let mut pw = SYSTEM_PW.as_bytes().to_vec();
    pw.push(0);
    // the cleartext password request comes first; answer it, then wait for ReadyForQuery
    let mut buf = [0u8; 9];
    tokio::io::AsyncReadExt::read_exact(&mut s, &mut buf)
        .await
        .unwrap();
    assert_eq!(buf[0], b'R');
    s.write_all(&pg_msg(b'p', &pw)).await.unwrap();
    pg_read_until_ready(&mut s).await;

    for (oid, literal) in [(1009u32, r#"{"doc.t1","doc.x"}"#), (1015, "{doc.t1}")] {
        let mut parse = vec![0u8];
        parse.extend_from_slice(
            b"SELECT count(*) FROM sys.shards WHERE schema_name || '.' || table_name = ANY($1)\0",
        );
        parse.extend_from_slice(&1i16.to_be_bytes());
        parse.extend_from_slice(&oid.to_be_bytes());
        let mut bind = vec![0u8, 0u8];
        bind.extend_from_slice(&1i16.to_be_bytes());
        bind.extend_from_slice(&0i16.to_be_bytes()); // text format
        bind.extend_from_slice(&1i16.to_be_bytes());
        bind.extend_from_slice(&(literal.len() as i32).to_be_bytes());
        bind.extend_from_slice(literal.as_bytes());
        bind.extend_from_slice(&0i16.to_be_bytes());
        let mut execute = vec![0u8];
        execute.extend_from_slice(&0i32.to_be_bytes());
        let mut out = pg_msg(b'P', &parse);
        out.extend(pg_msg(b'B', &bind));
        out.extend(pg_msg(b'E', &execute));
        out.extend(pg_msg(b'S', &[]));
        s.write_all(&out).await.unwrap();
        let msgs = pg_read_until_ready(&mut s).await;
        let row = msgs
            .iter()
            .find(|(k, _)| *k == b'D')
            .unwrap_or_else(|| panic!("no row: {msgs:?}"));
        // one column: length then text "3"
        assert_eq!(&row.1[2..], &[0, 0, 0, 1, b'3'], "{literal}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn the_simulators_own_time_is_counted() {
    let sim = start(builder("5.10.3")).await;
    let client = system(&sim).await;
    sim.reset_stats();
    assert_eq!(sim.stats(), cratedb_sim::SimStats::default());
    client
        .query("SELECT name FROM sys.users", &[])
        .await
        .unwrap();
    client
        .query("SELECT nope FROM sys.users", &[])
        .await
        .unwrap_err();
    post(&sim, SUMMARY, json!([["doc.t1"]])).await;
    let stats = sim.stats();
    assert_eq!(stats.statements, 3);
    assert_eq!(sim.statement_count(), 3);
    assert!(stats.busy > std::time::Duration::ZERO);
    assert!(sim.busy_time() >= stats.busy);
    for addr in [sim.http_sql_addr(), sim.sidecar_addr()] {
        let (status, _, body) = http_raw(addr, "GET", "/_sim/stats", &[], b"").await;
        assert_eq!(status, 200);
        let body: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(body["statements"], 3, "{body}");
        assert!(body["busy_ns"].as_u64().unwrap() > 0, "{body}");
        assert!(body["busy_ms"].as_f64().unwrap() > 0.0, "{body}");
    }
    sim.shutdown().await;
}
