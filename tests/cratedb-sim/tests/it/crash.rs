//! crash-style rendering of superuser statements.

use cratedb_sim::{ExecOutcome, Frontend, TableDef, render_crash_output};

use crate::common::*;

#[tokio::test]
async fn crash_output_samples() {
    let sim = start(builder("5.10.3").table(TableDef::new("doc", "events").shards(1))).await;
    let (out, err) = sim.crash("SELECT table_name, closed, partitioned_by FROM information_schema.tables WHERE table_schema = 'doc'");
    assert!(err.is_empty());
    assert_eq!(
        out,
        "\
+------------+--------+----------------+
| table_name | closed | partitioned_by |
+------------+--------+----------------+
| events     | FALSE  | NULL           |
+------------+--------+----------------+
SELECT 1 row in set (0.001 sec)
"
    );
    let (out, _) = sim
        .crash("SELECT min(recovery['size']['percent']) FROM sys.shards where state='RECOVERING'");
    // a column of NULLs only is not numeric for tabulate: left-aligned
    assert!(
        out.lines().nth(3).is_some_and(|l| l.starts_with("| NULL ")),
        "{out}"
    );
    let (out, err) = sim.crash(r#"ALTER USER "system" SET (password='n''ew');"#);
    assert_eq!(out, "ALTER OK, 1 row affected (0.001 sec)\n");
    assert!(err.is_empty());
    assert!(
        sim.users()
            .iter()
            .any(|u| u.name == "system" && u.password.as_deref() == Some("n'ew"))
    );
    let (out, err) = sim.crash("FOO BAR");
    assert!(out.is_empty());
    assert!(
        err.starts_with("SQLParseException[line 1:1: mismatched input 'FOO'"),
        "{err}"
    );
    assert!(err.contains("Exception"));
    let (_, err) = sim.crash("SELECT x FROM sys.nodes");
    assert_eq!(err, "ColumnUnknownException[Column x unknown]\n");
    assert!(
        sim.statements()
            .iter()
            .all(|s| s.frontend == Frontend::Superuser)
    );

    // the pure function on a hand-made outcome
    let (out, _) = render_crash_output(&ExecOutcome::Command {
        command: "CREATE".into(),
        rowcount: 1,
    });
    assert_eq!(out, "CREATE OK, 1 row affected (0.001 sec)\n");
    sim.shutdown().await;
}
