//! The product reads what `crash` prints with `cratedb::crash::interpret`. Here the real
//! `crash` 0.32.0 (installed by `tests/tools/install-crash.sh`) runs against the CrateDB
//! simulator's HTTP endpoint, and what it prints must parse into the rows and errors CrateDB
//! answered, judged by crash's exit status; the simulator's crash imitation (used by the
//! pod-exec test endpoint) must print the same.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use cratedb_restore::cratedb::{SqlResult, crash::interpret};
use cratedb_sim::{Simulator, SimulatorHandle, TableDef};
use serde_json::{Value, json};

async fn crash_bin() -> PathBuf {
    tokio::task::spawn_blocking(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/install-crash.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run tests/tools/install-crash.sh");
        assert!(out.status.success(), "install-crash.sh failed");
        let dir = String::from_utf8(out.stdout).expect("utf8 path");
        PathBuf::from(dir.lines().last().expect("install dir").trim()).join("bin/crash")
    })
    .await
    .expect("install task")
}

/// `(stdout, stderr, exit status)` of the product's invocation; the child is killed when
/// this future is dropped (timeout, panic).
async fn real_crash(bin: &PathBuf, sim: &SimulatorHandle, sql: &str) -> (String, String, i32) {
    // crash keeps its history under $HOME; a directory of its own, removed when this returns.
    let home = tempfile::Builder::new()
        .prefix("crash-parse-home-")
        .tempdir()
        .expect("a temporary HOME for crash");
    let host = format!("--host=http://localhost:{}", sim.http_sql_addr().port());
    let child = tokio::process::Command::new(bin)
        .args(["--verify-ssl=false", &host, "-c", sql])
        .env("HOME", home.path())
        .env_remove("CRATEPW")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn crash");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("crash finishes within 60 s")
        .expect("crash output");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

async fn sim() -> SimulatorHandle {
    Simulator::builder()
        .user("system", "pw")
        .table(TableDef::new("doc", "events").shards(3))
        .start()
        .await
        .expect("simulator starts")
}

/// Parses real crash's output (with its exit status) and checks that both imitation layouts
/// parse the same.
async fn parse_real(
    bin: &PathBuf,
    sim: &SimulatorHandle,
    sql: &str,
) -> (Result<SqlResult, String>, i32, String) {
    let (stdout, stderr, code) = real_crash(bin, sim, sql).await;
    let real = interpret("crash", &stdout, &stderr, code).map_err(|e| e.to_string());
    let faithful = sim.crash_output(sql);
    assert_eq!(faithful.exit_code, code, "{sql}: exit status");
    assert_eq!(
        interpret(
            "crash",
            &faithful.stdout,
            &faithful.stderr,
            faithful.exit_code
        )
        .map_err(|e| e.to_string()),
        real,
        "{sql}: crash_output"
    );
    (real, code, stderr)
}

/// A statement that succeeds: crash exits 0 and the output parses.
async fn rows(bin: &PathBuf, sim: &SimulatorHandle, sql: &str) -> SqlResult {
    let (parsed, code, stderr) = parse_real(bin, sim, sql).await;
    assert_eq!(code, 0, "{sql}: {stderr}");
    parsed.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A statement that fails: crash exits 1 and the output parses into the error.
async fn error(bin: &PathBuf, sim: &SimulatorHandle, sql: &str) -> String {
    let (parsed, code, stderr) = parse_real(bin, sim, sql).await;
    assert_eq!(code, 1, "{sql}: {stderr}");
    parsed.expect_err(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_crash_output_parses_into_rows_and_errors() {
    let bin = crash_bin().await;
    let sim = sim().await;

    let users = rows(
        &bin,
        &sim,
        "SELECT name, superuser FROM sys.users ORDER BY name",
    )
    .await;
    assert_eq!(users.columns, ["name", "superuser"]);
    assert_eq!(
        users.rows,
        vec![
            vec![json!("crate"), json!(true)],
            vec![json!("system"), json!(false)]
        ]
    );
    assert_eq!(users.rowcount, Some(2));

    let tables = rows(
        &bin,
        &sim,
        "SELECT table_name, number_of_shards, partitioned_by, closed FROM information_schema.tables WHERE table_schema = 'doc'",
    )
    .await;
    assert_eq!(
        tables.rows,
        vec![vec![json!("events"), json!(3), Value::Null, json!(false)]]
    );

    let empty = rows(&bin, &sim, "SELECT id FROM sys.snapshot_restore").await;
    assert_eq!(empty.columns, ["id"]);
    assert!(empty.rows.is_empty());

    let err = error(&bin, &sim, "SELEC 1").await;
    assert!(
        err.starts_with("SQLParseException[line 1:1: mismatched input 'SELEC'"),
        "{err}"
    );
    let err = error(&bin, &sim, "ALTER USER nobody SET (password = 'x')").await;
    assert_eq!(err, "RoleUnknownException[Role 'nobody' does not exist]");

    // Some of CrateDB's error names lack the word "Exception": the exit status says it failed.
    let err = error(&bin, &sim, "SELECT * FROM doc.nope").await;
    assert_eq!(err, "RelationUnknown[Relation 'doc.nope' unknown]");

    // a command that changes state: real crash once, then the imitation
    let (stdout, stderr, code) =
        real_crash(&bin, &sim, "ALTER USER \"system\" SET (password = 'it''s')").await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let altered = interpret("crash", &stdout, &stderr, code).unwrap();
    assert_eq!(altered.rowcount, Some(1));
    assert!(
        sim.users()
            .iter()
            .any(|u| u.name == "system" && u.password.as_deref() == Some("it's"))
    );
    let imitation = sim.crash_output("ALTER USER \"system\" SET (password = 'x')");
    assert_eq!(
        interpret(
            "crash",
            &imitation.stdout,
            &imitation.stderr,
            imitation.exit_code
        )
        .unwrap(),
        altered
    );
    sim.shutdown().await;
}
