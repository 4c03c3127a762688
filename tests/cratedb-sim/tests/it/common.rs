//! Shared helpers.

use cratedb_sim::{
    PartitionDef, Simulator, SimulatorBuilder, SimulatorHandle, SnapshotDef, Storage, TableDef,
    UserDef,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::{Client, NoTls};

pub const BUCKET: &str = "backups";
pub const BASE: &str = "cluster-a/snapshots";
pub const ACCESS: &str = "AKIAEXAMPLEKEY";
pub const SECRET: &str = "s3cr3t/with'quote";
pub const SYSTEM_PW: &str = "system-pw";
pub const TOKEN: &str = "sidecar-token-1";

/// The snapshot most tests restore from.
pub fn snap1() -> SnapshotDef {
    SnapshotDef::new("snap1")
        .version("5.5.0")
        .table(
            TableDef::new("doc", "t1")
                .shards(2)
                .bytes_per_shard(1_000_000),
        )
        .table(TableDef::new("doc", "t2").shards(1).bytes_per_shard(400))
        .partitioned_table(
            TableDef::new("doc", "parted")
                .shards(1)
                .partitioned_by(["day"])
                .partition(PartitionDef::new("day", 1))
                .partition(PartitionDef::new("day", 2)),
        )
        .users(vec![
            UserDef::new("system", "old-snapshot-pw"),
            UserDef::new("gc_admin", "gc-old"),
        ])
        .setting(
            "cluster.routing.allocation.enable",
            serde_json::json!("all"),
        )
        .setting(
            "indices.recovery.max_bytes_per_sec",
            serde_json::json!("10mb"),
        )
}

pub fn builder(version: &str) -> SimulatorBuilder {
    Simulator::builder()
        .server_version(version)
        .user("system", SYSTEM_PW)
        .sidecar_token(TOKEN)
        .storage(Storage::s3(BUCKET, BASE, ACCESS, SECRET).snapshot(snap1()))
}

pub async fn start(b: SimulatorBuilder) -> SimulatorHandle {
    b.start().await.expect("simulator starts")
}

pub async fn connect_as(
    sim: &SimulatorHandle,
    user: &str,
    pw: &str,
    db: &str,
) -> Result<Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(sim.pg_addr().ip().to_string())
        .port(sim.pg_addr().port())
        .user(user)
        .password(pw)
        .dbname(db);
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

pub async fn system(sim: &SimulatorHandle) -> Client {
    connect_as(sim, "system", SYSTEM_PW, "doc")
        .await
        .expect("system connects")
}

/// CREATE REPOSITORY exactly like the product: every value bound.
pub async fn create_repo(client: &Client, name: &str) -> Result<u64, tokio_postgres::Error> {
    let sql = format!(
        "CREATE REPOSITORY \"{name}\" TYPE s3 WITH (max_restore_bytes_per_sec = $1, readonly = $2, access_key = $3, base_path = $4, bucket = $5, secret_key = $6)"
    );
    let stmt = client
        .prepare_typed(&sql, &[tokio_postgres::types::Type::TEXT; 6])
        .await?;
    client
        .execute(
            &stmt,
            &[&"240mb", &"true", &ACCESS, &BASE, &BUCKET, &SECRET],
        )
        .await
}

/// A minimal HTTP/1.1 POST over a raw TCP stream: `(status, JSON body)`.
pub async fn http_post(
    sim: &SimulatorHandle,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(sim.sidecar_addr())
        .await
        .expect("connect sidecar");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        sim.sidecar_addr(),
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("token: {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream
        .write_all(req.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8(raw).expect("utf8 response");
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body split");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Run SQL through the sidecar as the product does.
pub async fn sidecar_exec(sim: &SimulatorHandle, stmt: &str) -> (u16, serde_json::Value) {
    http_post(
        sim,
        "/exec",
        Some(TOKEN),
        &serde_json::json!({ "stmt": stmt }).to_string(),
    )
    .await
}

/// The message of the error CrateDB answered with; panics (showing `err`) when the error did
/// not come from the server (a dropped connection, a client-side failure).
pub fn server_message(err: &tokio_postgres::Error) -> &str {
    err.as_db_error()
        .unwrap_or_else(|| panic!("expected an error from the server, got: {err}"))
        .message()
}

/// One HTTP/1.1 request over a raw TCP stream: `(status, lower-cased head, body)`.
pub async fn http_raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8(raw).expect("utf8 response");
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body split");
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, head, body)
}

/// `POST /_sql<query>` on CrateDB's HTTP endpoint: `(status, JSON body)`.
pub async fn sql_post(
    sim: &SimulatorHandle,
    query: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let (status, _, text) = http_raw(
        sim.http_sql_addr(),
        "POST",
        &format!("/_sql{query}"),
        &all,
        body.to_string().as_bytes(),
    )
    .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}
