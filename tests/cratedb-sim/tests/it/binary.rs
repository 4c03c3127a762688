//! The `cratedb-sim` binary.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

#[test]
fn help_lists_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_cratedb-sim"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--pg-listen",
        "--http-listen",
        "--config",
        "--http-sql-listen",
        "127.0.0.1:5432",
        "127.0.0.1:5050",
        "127.0.0.1:4200",
    ] {
        assert!(text.contains(flag), "{flag} missing in:\n{text}");
    }
}

#[tokio::test]
async fn binary_serves_config_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("cratedb-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("config.json");
    let cfg = serde_json::json!({
        "server_version": "5.6.2",
        "users": [{"name": "system", "password": "pw"}],
        "sidecar_token": "tok",
        "storages": [{"type": "s3", "bucket": "b", "base_path": "p", "access_key": "a", "secret_key": "s",
                      "snapshots": [{"name": "snap1", "version": "5.6.0",
                                     "tables": [{"schema": "doc", "name": "t1", "shards": 2}]}]}],
        "tables": [{"schema": "doc", "name": "existing"}],
        "restore_outcomes": {"snap1": {"kind": "instant"}}
    });
    std::fs::File::create(&cfg_path)
        .unwrap()
        .write_all(cfg.to_string().as_bytes())
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cratedb-sim"))
        .args([
            "--pg-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--http-sql-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&cfg_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn binary");
    let stdout = child.stdout.take().unwrap();
    let mut child = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addrs: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    let http: std::net::SocketAddr = addrs["http"].as_str().unwrap().parse().unwrap();
    let pg: std::net::SocketAddr = addrs["pg"].as_str().unwrap().parse().unwrap();

    let body = r#"{"stmt": "SELECT version['number'] FROM sys.nodes"}"#;
    let (status, json) = raw_post(http, "tok", body).await;
    assert_eq!(status, 200);
    assert_eq!(json["rows"][0][0], "5.6.2");

    let (client, conn) = tokio_postgres::connect(
        &format!(
            "host={} port={} user=system password=pw dbname=doc",
            pg.ip(),
            pg.port()
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'doc'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.0.wait().unwrap();
    assert!(
        status.success(),
        "binary exits cleanly on SIGTERM: {status:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn raw_post(addr: std::net::SocketAddr, token: &str, body: &str) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /exec HTTP/1.1\r\nHost: {addr}\r\ntoken: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let json = serde_json::from_str(raw.split_once("\r\n\r\n").unwrap().1).unwrap_or_default();
    (status, json)
}

/// The simulator process, killed by its pid when dropped (also when a test
/// panics half-way).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn sql(addr: std::net::SocketAddr, stmt: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::json!({ "stmt": stmt }).to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /_sql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    serde_json::from_str(raw.split_once("\r\n\r\n").unwrap().1).unwrap()
}

/// What an e2e suite does with the simulator in a Pod: configure it from a
/// file (a restore that takes about a second of wall-clock time), talk to it
/// over CrateDB's HTTP endpoint only, read the statement log over HTTP.
#[tokio::test]
async fn binary_serves_cratedb_http_with_a_timed_restore() {
    let dir = std::env::temp_dir().join(format!("cratedb-sim-http-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("config.json");
    // one shard of 1 MB at 1 MB/s: done about a second after it starts recovering
    let cfg = serde_json::json!({
        "storages": [{"type": "s3", "bucket": "b", "base_path": "p", "access_key": "a", "secret_key": "s",
                      "snapshots": [{"name": "snap1",
                                     "tables": [{"schema": "doc", "name": "t1", "shards": 1,
                                                 "bytes_per_shard": 1000000}]}]}],
        "progress": {"mode": "wall_clock", "bytes_per_sec": 1000000}
    });
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cratedb-sim"))
        .args([
            "--pg-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--http-sql-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&cfg_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn binary");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addrs: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    let http: std::net::SocketAddr = addrs["http_sql"].as_str().unwrap().parse().unwrap();
    assert_eq!(addrs["http_sql_url"], format!("http://{http}"));

    let r = sql(
        http,
        "CREATE REPOSITORY r TYPE s3 WITH (bucket = 'b', base_path = 'p', access_key = 'a', secret_key = 's')",
    )
    .await;
    assert_eq!(r["rowcount"], 1, "{r}");
    let started = std::time::Instant::now();
    let r = sql(
        http,
        "RESTORE SNAPSHOT r.snap1 ALL WITH (wait_for_completion = false)",
    )
    .await;
    assert_eq!(r["rowcount"], 1, "{r}");
    let mut saw_progress = false;
    loop {
        let r = sql(http, "SELECT count(*) FROM sys.snapshot_restore").await;
        if r["rows"][0][0] == 0 {
            break;
        }
        let p = sql(
            http,
            "SELECT recovery['size']['percent'] FROM sys.shards WHERE table_name = 't1'",
        )
        .await;
        saw_progress |= p["rows"][0][0]
            .as_f64()
            .is_some_and(|v| v > 0.0 && v < 100.0);
        assert!(started.elapsed().as_secs() < 20, "restore never finished");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    assert!(took.as_millis() >= 800, "finished after {took:?}");
    assert!(saw_progress, "no partial progress seen");

    let (_, log) = get(http, "/_sim/statements").await;
    let log: Vec<serde_json::Value> = serde_json::from_str(&log).unwrap();
    assert!(
        log.iter()
            .all(|e| e["frontend"] == "http" && e["user"] == "crate")
    );
    assert!(log.iter().any(|e| {
        e["sql"]
            .as_str()
            .unwrap()
            .starts_with("RESTORE SNAPSHOT r.snap1 ALL")
    }));
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw.split_once("\r\n\r\n").unwrap().1.to_string())
}

/// How long the binary takes to start from a `--config` file with 10,000 tables (100,000
/// primary shards) in the cluster and 10,000 in a snapshot. Prints the time; run with
/// `cargo test --release -p cratedb-sim --test it -- --ignored --nocapture config_file_at_scale`.
#[test]
#[ignore = "timing at scale; prints, asserts nothing about speed"]
fn config_file_at_scale() {
    let dir = std::env::temp_dir().join(format!("cratedb-sim-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("config.json");
    let tables: Vec<serde_json::Value> = (0..10_000)
        .map(|i| serde_json::json!({"schema": format!("s{}", i % 25), "name": format!("t{i:05}"), "shards": 10, "replicas": "0"}))
        .collect();
    let cfg = serde_json::json!({
        "users": [{"name": "system", "password": "pw"}],
        "tables": tables,
        "storages": [{"type": "fs", "location": "/backups",
                      "snapshots": [{"name": "snap", "tables": tables}]}],
    })
    .to_string();
    std::fs::write(&cfg_path, &cfg).unwrap();
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cratedb-sim"))
        .args([
            "--pg-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--http-sql-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&cfg_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn binary");
    let stdout = child.stdout.take().unwrap();
    let child = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    println!(
        "--config with 10,000 tables in the cluster and 10,000 in a snapshot ({} KiB): serving after {:?}",
        cfg.len() / 1024,
        started.elapsed()
    );
    assert!(line.contains("\"pg\""), "{line}");
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
