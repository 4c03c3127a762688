//! The real `crash` shell (0.32.0 from PyPI, installed by
//! `tests/tools/install-crash.sh`) against the simulator's HTTP endpoint, and
//! the simulator's crash imitation (`crash_output`) checked against it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use cratedb_sim::{Frontend, SimulatorHandle, TableDef};
use tokio::io::AsyncWriteExt;

use crate::common::*;

static CRASH: OnceLock<PathBuf> = OnceLock::new();

/// `bin/crash` of the cached install; installs it when missing.
async fn crash_bin() -> PathBuf {
    if let Some(p) = CRASH.get() {
        return p.clone();
    }
    let path = tokio::task::spawn_blocking(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/install-crash.sh");
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
    .expect("install task");
    CRASH.get_or_init(|| path).clone()
}

#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Run crash with `args` (and `stdin`); the child is killed when this future
/// is dropped, on timeout and on panic alike (`kill_on_drop`).
async fn crash(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let bin = crash_bin().await;
    let home = tempfile::Builder::new()
        .prefix("cratedb-sim-crash-home-")
        .tempdir()
        .expect("a temporary HOME for crash");
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.args(args)
        // crash saves its config and history under $HOME
        .env("HOME", home.path())
        .env_remove("CRATEPW")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn crash");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("crash finishes within 60 s")
        .expect("crash output");
    Run {
        stdout: String::from_utf8(out.stdout).expect("utf8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf8 stderr"),
        code: out.status.code().unwrap_or(-1),
    }
}

/// `crash --hosts <url> -c <sql>`.
async fn crash_c(sim: &SimulatorHandle, sql: &str) -> Run {
    crash(&["--hosts", &sim.http_sql_url(), "-c", sql], None, &[]).await
}

/// The `(0.004 sec)` crash prints is measured; the imitation prints 0.001.
fn normalize_duration(text: &str) -> String {
    text.lines()
        .map(|l| match l.rfind(" (") {
            Some(i) if l.ends_with(" sec)") => format!("{} (N sec)", &l[..i]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Real crash and the imitation print the same thing for `sql`.
async fn assert_same_as_imitation(sim: &SimulatorHandle, sql: &str) -> Run {
    let real = crash_c(sim, sql).await;
    let imitation = sim.crash_output(sql);
    assert_eq!(real.stdout, imitation.stdout, "stdout of {sql}");
    assert_eq!(
        normalize_duration(&real.stderr),
        normalize_duration(&imitation.stderr),
        "stderr of {sql}"
    );
    assert_eq!(real.code, imitation.exit_code, "exit status of {sql}");
    real
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_prints_the_table_and_row_count() {
    let sim = start(builder("5.10.3").table(TableDef::new("doc", "events").shards(3))).await;
    let run = crash_c(&sim, "SELECT name, superuser FROM sys.users ORDER BY name").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "\
+--------+-----------+
| name   | superuser |
+--------+-----------+
| crate  | TRUE      |
| system | FALSE     |
+--------+-----------+
"
    );
    assert_eq!(
        normalize_duration(&run.stderr),
        "CONNECT OK\nSELECT 2 rows in set (N sec)"
    );
    // crash's session probe and the statement, as `crate`, over HTTP
    let http: Vec<_> = sim
        .statements()
        .into_iter()
        .filter(|s| s.frontend == Frontend::Http)
        .map(|s| (s.user, s.sql))
        .collect();
    assert_eq!(
        http,
        vec![
            (
                "crate".to_string(),
                "SELECT current_user, current_schema, name FROM sys.cluster".to_string()
            ),
            (
                "crate".to_string(),
                "SELECT name, superuser FROM sys.users ORDER BY name".to_string()
            ),
        ]
    );
    assert!(
        sim.jobs_log()
            .iter()
            .any(|j| j.stmt == "SELECT name, superuser FROM sys.users ORDER BY name")
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_imitation_prints_what_crash_prints() {
    let sim = start(
        builder("5.10.3")
            .table(TableDef::new("doc", "events").shards(3))
            .table(
                TableDef::new("doc", "parted")
                    .partitioned_by(["day"])
                    .partition(cratedb_sim::PartitionDef::new("day", 1)),
            ),
    )
    .await;
    for sql in [
        "SELECT name, superuser FROM sys.users ORDER BY name",
        "SELECT table_name, count(*), count(*) FILTER (WHERE state = 'STARTED') AS started, sum(recovery['size']['used']) FROM sys.shards WHERE schema_name || '.' || table_name = ANY(['doc.events', 'doc.parted']) GROUP BY table_name ORDER BY table_name",
        "SELECT table_name, closed, partitioned_by, number_of_shards FROM information_schema.tables WHERE table_schema = 'doc' ORDER BY table_name",
        "SELECT count(*), min(number_of_shards), avg(number_of_shards) FROM information_schema.tables WHERE table_schema = 'doc'",
        "SELECT settings['cluster']['routing'] FROM sys.cluster",
        "SELECT name FROM sys.users WHERE name = 'nobody'",
        "SELECT id, state, recovery['size']['percent'] FROM sys.shards ORDER BY id LIMIT 2",
        "SHOW TABLES",
        "FOO BAR",
        "SELECT x FROM sys.nodes",
        "SELECT * FROM doc.nope",
    ] {
        assert_same_as_imitation(&sim, sql).await;
    }
    // commands change state, so real crash and the imitation each run one
    let run = assert_same_as_imitation(
        &sim,
        "SET GLOBAL TRANSIENT \"cluster.routing.allocation.enable\" = 'all'",
    )
    .await;
    assert_eq!(
        normalize_duration(&run.stderr),
        "CONNECT OK\nSET OK, 1 row affected (N sec)"
    );
    // a partition delete answers CrateDB's unknown row count, -1
    let run = crash_c(&sim, "DELETE FROM parted WHERE day = 1").await;
    assert_eq!(
        normalize_duration(&run.stderr),
        "CONNECT OK\nDELETE OK, -1 rows affected (N sec)"
    );
    assert!(sim.partitions().is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_go_to_stderr_and_exit_1() {
    let sim = start(builder("5.10.3")).await;
    let run = crash_c(&sim, "FOO BAR").await;
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("CONNECT OK\nSQLParseException[line 1:1: mismatched input 'FOO'"),
        "{run:?}"
    );
    // several statements: each runs, the exit status says one failed
    let run = crash_c(
        &sim,
        "SELECT 1 AS a; SELECT x FROM sys.nodes; SELECT 2 AS b",
    )
    .await;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        "+---+\n| a |\n+---+\n| 1 |\n+---+\n+---+\n| b |\n+---+\n| 2 |\n+---+\n"
    );
    assert!(
        run.stderr
            .contains("\nColumnUnknownException[Column x unknown]\n"),
        "{run:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_on_stdin_keep_passwords_off_the_command_line() {
    let sim = start(builder("5.10.3")).await;
    let run = crash(
        &["--hosts", &sim.http_sql_url()],
        Some("ALTER USER \"system\" SET (password = 'n''ew;pw');\nSELECT name FROM sys.cluster;\n"),
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "+-------+\n| name  |\n+-------+\n| crate |\n+-------+\n"
    );
    assert_eq!(
        normalize_duration(&run.stderr),
        "CONNECT OK\nALTER OK, 1 row affected (N sec)\nSELECT 1 row in set (N sec)"
    );
    assert!(
        sim.users()
            .iter()
            .any(|u| u.name == "system" && u.password.as_deref() == Some("n'ew;pw"))
    );
    let alter = sim
        .statements()
        .into_iter()
        .find(|s| s.sql.starts_with("ALTER USER"))
        .expect("ALTER logged");
    assert_eq!(alter.frontend, Frontend::Http);
    assert_eq!(alter.user, "crate");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_products_invocation_and_json_format() {
    let sim = start(builder("5.10.3")).await;
    let host = format!("--host=http://localhost:{}", sim.http_sql_addr().port());
    let run = crash(
        &[
            "--verify-ssl=false",
            &host,
            "-c",
            "SELECT name FROM sys.cluster",
        ],
        None,
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "+-------+\n| name  |\n+-------+\n| crate |\n+-------+\n"
    );

    let run = crash(
        &[
            "--hosts",
            &sim.http_sql_url(),
            "--format",
            "json",
            "-c",
            "SELECT name, superuser FROM sys.users ORDER BY name",
        ],
        None,
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(
        rows,
        serde_json::json!([
            {"name": "crate", "superuser": true},
            {"name": "system", "superuser": false},
        ])
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_with_passwords_and_refused_credentials() {
    let sim = start(builder("5.10.3")).await;
    let url = sim.http_sql_url();
    let run = crash(
        &["--hosts", &url, "-U", "system", "-c", "SELECT current_user"],
        None,
        &[("CRATEPW", SYSTEM_PW)],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "+--------------+\n| current_user |\n+--------------+\n| system       |\n+--------------+\n"
    );
    // only a superuser may change another user's password
    let run = crash(
        &[
            "--hosts",
            &url,
            "-U",
            "system",
            "-c",
            "ALTER USER crate SET (password = 'x')",
        ],
        None,
        &[("CRATEPW", SYSTEM_PW)],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("MissingPrivilegeException[Missing 'AL' privilege for user 'system']"),
        "{run:?}"
    );
    // a wrong password fails at connect: crash prints the HTTP status line
    let run = crash(
        &["--hosts", &url, "-U", "system", "-c", "SELECT 1"],
        None,
        &[("CRATEPW", "wrong")],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "401 Client Error: Unauthorized\n");
    sim.shutdown().await;
}
