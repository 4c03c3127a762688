//! How fast the simulator serves a restore Job at production scale; prints timings, asserts
//! nothing about them.
//!
//! ```text
//! cargo run --release -p cratedb-sim --example scale
//! ```
//!
//! Two clusters: 10,000 tables with 10 primaries each (100,000 primary shards) restored from one
//! snapshot, and 100 partitioned tables with 365 daily partitions each. For each statement the
//! restore Job sends (with all relation names as one `text[]` parameter) it prints the wall time
//! seen by a tokio-postgres client and the simulator's own share ([`SimulatorHandle::stats`]).

use std::time::{Duration, Instant};

use cratedb_sim::{
    PartitionDef, ProgressMode, SimConfig, Simulator, SimulatorHandle, SnapshotDef, Storage,
    TableDef,
};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

const SUMMARY: &str = "SELECT count(*), count(*) FILTER (WHERE state = 'STARTED'), sum(recovery['size']['used']), sum(recovery['size']['recovered']) FROM sys.shards WHERE primary = true AND schema_name || '.' || table_name = ANY($1)";
const PENDING: &str = "SELECT schema_name, table_name, partition_ident, id, state FROM sys.shards WHERE primary = true AND state <> 'STARTED' AND schema_name || '.' || table_name = ANY($1) LIMIT 101";
const RELATIONS: &str = "SELECT table_schema, table_name, table_type, closed, partitioned_by FROM information_schema.tables WHERE table_schema || '.' || table_name = ANY($1)";
const PARTITIONS: &str = "SELECT table_schema, table_name, partition_ident, \"values\", closed FROM information_schema.table_partitions WHERE table_schema || '.' || table_name = ANY($1)";
const PER_RELATION: &str = "SELECT schema_name, table_name, count(*), count(*) FILTER (WHERE state <> 'STARTED') FROM sys.shards WHERE primary = true AND schema_name || '.' || table_name = ANY($1) GROUP BY schema_name, table_name ORDER BY 4 DESC, 1, 2 LIMIT 100";
const RESTORE_ROW: &str = "SELECT 1 FROM sys.snapshot_restore WHERE name = 'snap' AND state NOT IN ('SUCCESS', 'FAILURE') LIMIT 1";
const SNAPSHOT: &str = "SELECT name, version, state, tables, table_partitions FROM sys.snapshots WHERE repository = $1 AND name = $2 LIMIT 1";

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1000.0)
}

fn report(what: &str, wall: Duration, busy: Duration) {
    println!("{what:<58} wall {}  simulator {}", ms(wall), ms(busy));
}

async fn connect(sim: &SimulatorHandle) -> Client {
    let (client, conn) = tokio_postgres::connect(&sim.pg_connection_string("system", "pw"), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// Run `sql` `n` times with `params`; report the best wall time and simulator time (the
/// machine may be busy with other work).
async fn measure(
    sim: &SimulatorHandle,
    client: &Client,
    label: &str,
    sql: &str,
    types: &[Type],
    params: &[&(dyn ToSql + Sync)],
    n: usize,
) -> usize {
    let stmt = client.prepare_typed(sql, types).await.expect("prepare");
    let mut walls = Vec::new();
    let mut busys = Vec::new();
    let mut rows = 0;
    for _ in 0..n {
        let before = sim.busy_time();
        let t = Instant::now();
        rows = client.query(&stmt, params).await.expect(sql).len();
        walls.push(t.elapsed());
        busys.push(sim.busy_time() - before);
    }
    walls.sort();
    busys.sort();
    report(
        &format!("{label} ({rows} rows, best of {n})"),
        walls[0],
        busys[0],
    );
    rows
}

async fn exec(sim: &SimulatorHandle, client: &Client, label: &str, sql: &str) {
    let before = sim.busy_time();
    let t = Instant::now();
    let result = client.execute(sql, &[]).await;
    report(label, t.elapsed(), sim.busy_time() - before);
    if let Err(e) = result {
        println!("   failed: {e}");
    }
}

fn storage(snapshot: SnapshotDef) -> Storage {
    Storage::s3("bucket", "base", "key", "secret").snapshot(snapshot)
}

const CREATE_REPO: &str = "CREATE REPOSITORY repo TYPE s3 WITH (bucket = 'bucket', base_path = 'base', access_key = 'key', secret_key = 'secret', readonly = true)";

async fn plain_tables() {
    println!("== 10,000 tables x 10 primaries (100,000 primary shards)");
    let tables: Vec<TableDef> = (0..10_000)
        .map(|i| {
            TableDef::new(format!("s{}", i % 25), format!("t{i:05}"))
                .shards(10)
                .replicas("0")
        })
        .collect();
    let names: Vec<String> = tables.iter().map(TableDef::fqn).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    // a running cluster with the tables, from the builder
    let t = Instant::now();
    let mut b = Simulator::builder().user("system", "pw");
    for table in &tables {
        b = b.table(table.clone());
    }
    let sim = b.start().await.expect("start");
    report(
        "builder: cluster with 10,000 tables, start",
        t.elapsed(),
        Duration::ZERO,
    );
    let client = connect(&sim).await;
    measure(
        &sim,
        &client,
        "summary",
        SUMMARY,
        &[Type::TEXT_ARRAY],
        &[&names],
        5,
    )
    .await;
    sim.shutdown().await;

    // the same from a --config file's JSON
    let config = serde_json::json!({
        "users": [{"name": "system", "password": "pw"}],
        "tables": tables,
    })
    .to_string();
    let t = Instant::now();
    let cfg: SimConfig = serde_json::from_str(&config).expect("config");
    let sim = Simulator::builder()
        .config(cfg)
        .start()
        .await
        .expect("start");
    report(
        &format!("--config JSON ({} KiB): parse, start", config.len() / 1024),
        t.elapsed(),
        Duration::ZERO,
    );
    sim.shutdown().await;

    // an empty cluster and a snapshot holding the tables
    let mut snap = SnapshotDef::new("snap");
    snap.tables = tables.clone();
    let t = Instant::now();
    let sim = Simulator::builder()
        .user("system", "pw")
        .storage(storage(snap))
        .progress(ProgressMode::PerObservation { percent_step: 1.0 })
        .start()
        .await
        .expect("start");
    report(
        "builder: snapshot with 10,000 tables, start",
        t.elapsed(),
        Duration::ZERO,
    );
    let client = connect(&sim).await;
    exec(&sim, &client, "CREATE REPOSITORY", CREATE_REPO).await;
    let repo_snap: [&(dyn ToSql + Sync); 2] = [&"repo", &"snap"];
    measure(
        &sim,
        &client,
        "sys.snapshots (10,000 tables)",
        SNAPSHOT,
        &[Type::TEXT, Type::TEXT],
        &repo_snap,
        5,
    )
    .await;
    exec(
        &sim,
        &client,
        "RESTORE SNAPSHOT repo.snap ALL",
        "RESTORE SNAPSHOT repo.snap ALL WITH (wait_for_completion = false)",
    )
    .await;
    let arr: [&(dyn ToSql + Sync); 1] = [&names];
    let ty = [Type::TEXT_ARRAY];
    measure(&sim, &client, "summary", SUMMARY, &ty, &arr, 5).await;
    measure(&sim, &client, "pending LIMIT 101", PENDING, &ty, &arr, 5).await;
    measure(
        &sim,
        &client,
        "per relation GROUP BY",
        PER_RELATION,
        &ty,
        &arr,
        5,
    )
    .await;
    measure(
        &sim,
        &client,
        "information_schema.tables",
        RELATIONS,
        &ty,
        &arr,
        5,
    )
    .await;
    measure(
        &sim,
        &client,
        "information_schema.table_partitions",
        PARTITIONS,
        &ty,
        &arr,
        5,
    )
    .await;
    measure(
        &sim,
        &client,
        "sys.snapshot_restore poll",
        RESTORE_ROW,
        &[],
        &[],
        5,
    )
    .await;
    exec(
        &sim,
        &client,
        "DROP TABLE of a table being restored",
        "DROP TABLE s0.t00000",
    )
    .await;
    let t = Instant::now();
    sim.advance_restores(1);
    report(
        "one observation of 100,000 restoring shards",
        t.elapsed(),
        Duration::ZERO,
    );
    // cancel everything by dropping each table (no client round trips)
    let before = sim.busy_time();
    let t = Instant::now();
    for name in &names[1..] {
        let out = sim.execute_as_superuser(&format!("DROP TABLE {name}"));
        assert!(out.error().is_none(), "{out:?}");
    }
    report(
        "DROP TABLE x 9,999 (cancels the restore)",
        t.elapsed(),
        sim.busy_time() - before,
    );
    assert!(sim.restores_in_progress().is_empty());
    let stats = sim.stats();
    println!(
        "   simulator total: {} statements, {}",
        stats.statements,
        ms(stats.busy)
    );
    sim.shutdown().await;
}

async fn partitioned_tables() {
    println!("== 100 partitioned tables x 365 daily partitions x 2 primaries (73,000 shards)");
    let day = 86_400_000i64;
    let tables: Vec<TableDef> = (0..100)
        .map(|i| {
            let mut t = TableDef::new("metrics", format!("m{i:03}"))
                .shards(2)
                .replicas("0")
                .partitioned_by(["day"]);
            t.partitions = (0..365)
                .map(|d| PartitionDef::new("day", 1_700_000_000_000i64 / day * day + d * day))
                .collect();
            t
        })
        .collect();
    let names: Vec<String> = tables.iter().map(TableDef::fqn).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut snap = SnapshotDef::new("snap");
    snap.tables = tables.clone();
    let t = Instant::now();
    let mut b = Simulator::builder()
        .user("system", "pw")
        .storage(storage(snap))
        .progress(ProgressMode::PerObservation { percent_step: 1.0 });
    for table in &tables[..50] {
        b = b.table(table.clone());
    }
    let sim = b.start().await.expect("start");
    report(
        "builder: 50 tables in the cluster, 100 in a snapshot",
        t.elapsed(),
        Duration::ZERO,
    );
    let client = connect(&sim).await;
    exec(&sim, &client, "CREATE REPOSITORY", CREATE_REPO).await;
    exec(
        &sim,
        &client,
        "RESTORE SNAPSHOT TABLE (the 50 missing tables)",
        &format!(
            "RESTORE SNAPSHOT repo.snap TABLE {} WITH (wait_for_completion = false)",
            names[50..].join(", ")
        ),
    )
    .await;
    let arr: [&(dyn ToSql + Sync); 1] = [&names];
    let ty = [Type::TEXT_ARRAY];
    measure(&sim, &client, "summary", SUMMARY, &ty, &arr, 5).await;
    measure(&sim, &client, "pending LIMIT 101", PENDING, &ty, &arr, 5).await;
    measure(
        &sim,
        &client,
        "per relation GROUP BY",
        PER_RELATION,
        &ty,
        &arr,
        5,
    )
    .await;
    measure(
        &sim,
        &client,
        "information_schema.tables",
        RELATIONS,
        &ty,
        &arr,
        5,
    )
    .await;
    measure(
        &sim,
        &client,
        "information_schema.table_partitions",
        PARTITIONS,
        &ty,
        &arr,
        5,
    )
    .await;
    exec(
        &sim,
        &client,
        "DELETE of one partition being restored",
        &format!(
            "DELETE FROM metrics.m099 WHERE day = {}",
            1_700_000_000_000i64 / day * day
        ),
    )
    .await;
    let before = sim.busy_time();
    let t = Instant::now();
    for name in &names[50..] {
        let out = sim.execute_as_superuser(&format!("DELETE FROM {name}"));
        assert!(out.error().is_none(), "{out:?}");
    }
    report(
        "DELETE FROM (all partitions) x 50 (cancels the restore)",
        t.elapsed(),
        sim.busy_time() - before,
    );
    assert!(sim.restores_in_progress().is_empty());
    let stats = sim.stats();
    println!(
        "   simulator total: {} statements, {}",
        stats.statements,
        ms(stats.busy)
    );
    sim.shutdown().await;
}

#[tokio::main]
async fn main() {
    plain_tables().await;
    partitioned_tables().await;
}
