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
        "127.0.0.1:5432",
        "127.0.0.1:5050",
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
            "--config",
        ])
        .arg(&cfg_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn binary");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
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
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
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
