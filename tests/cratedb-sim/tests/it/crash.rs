//! crash-style rendering of superuser statements.

use cratedb_sim::{ExecOutcome, Frontend, TableDef, crash_output};

use crate::common::*;

#[tokio::test]
async fn crash_output_samples() {
    let sim = start(builder("5.10.3").table(TableDef::new("doc", "events").shards(1))).await;
    let out = sim.crash_output("SELECT table_name, closed, partitioned_by FROM information_schema.tables WHERE table_schema = 'doc'");
    assert_eq!(out.exit_code, 0);
    assert_eq!(
        out.stdout,
        "\
+------------+--------+----------------+
| table_name | closed | partitioned_by |
+------------+--------+----------------+
| events     | FALSE  | NULL           |
+------------+--------+----------------+
"
    );
    assert_eq!(out.stderr, "CONNECT OK\nSELECT 1 row in set (0.001 sec)\n");
    let out = sim.crash_output(
        "SELECT min(recovery['size']['percent']) FROM sys.shards where state='RECOVERING'",
    );
    // a column of NULLs only is not numeric for tabulate: left-aligned
    assert!(
        out.stdout
            .lines()
            .nth(3)
            .is_some_and(|l| l.starts_with("| NULL ")),
        "{}",
        out.stdout
    );
    let out = sim.crash_output(r#"ALTER USER "system" SET (password='n''ew');"#);
    assert_eq!((out.exit_code, out.stdout.as_str()), (0, ""));
    assert_eq!(
        out.stderr,
        "CONNECT OK\nALTER OK, 1 row affected (0.001 sec)\n"
    );
    assert!(
        sim.users()
            .iter()
            .any(|u| u.name == "system" && u.password.as_deref() == Some("n'ew"))
    );
    let out = sim.crash_output("FOO BAR");
    assert_eq!((out.exit_code, out.stdout.as_str()), (1, ""));
    assert!(
        out.stderr
            .starts_with("CONNECT OK\nSQLParseException[line 1:1: mismatched input 'FOO'"),
        "{}",
        out.stderr
    );
    let out = sim.crash_output("SELECT x FROM sys.nodes");
    assert_eq!(
        out.stderr,
        "CONNECT OK\nColumnUnknownException[Column x unknown]\n"
    );
    assert!(
        sim.statements()
            .iter()
            .all(|s| s.frontend == Frontend::Superuser)
    );

    // the pure function on a hand-made outcome
    let out = crash_output(&ExecOutcome::Command {
        command: "CREATE".into(),
        rowcount: 1,
    });
    assert_eq!(
        out.stderr,
        "CONNECT OK\nCREATE OK, 1 row affected (0.001 sec)\n"
    );
    sim.shutdown().await;
}
