//! Every statement the product sends parses under CrateDB's own grammar: the PyPI package
//! `cratedb-sqlparse` is CrateDB's ANTLR grammar, run here with `raise_exception=True` over the
//! simulator's statement log of restore runs that together send every kind of statement the Job
//! has (every restore type, renames, skip, Grand Central tables, the sidecar's password and JWT
//! resets, cancels before and during a RESTORE, the snapshot catalog, `latest`, unassigned
//! primaries, a deadline), plus the statements that only the crash path sends. The package is
//! installed once into a virtualenv under ~/.cache/cratedb-restore/ (`$CRATEDB_RESTORE_CACHE`).

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::harness::*;
use cratedb_restore::{
    cratedb::queries,
    restore_type::PartitionTarget,
    sql::{SqlLiteral, TableIdent},
};
use cratedb_sim::{PartitionDef, RestoreOutcome, SnapshotDef, TableDef, UserDef};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

const SQLPARSE_VERSION: &str = "0.0.17";

fn cache_root() -> PathBuf {
    match std::env::var_os("CRATEDB_RESTORE_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/cratedb-restore"),
    }
}

/// The virtualenv's python with `cratedb-sqlparse`, installed on first use.
fn sqlparse_python() -> PathBuf {
    let venv = cache_root().join(format!("sqlparse-{SQLPARSE_VERSION}"));
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import cratedb_sqlparse"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return python;
    }
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed (needs python3 with venv and the PyPI registry):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        &format!("cratedb-sqlparse=={SQLPARSE_VERSION}"),
    ]));
    assert!(
        ready(&python),
        "cratedb-sqlparse is not importable in {}",
        venv.display()
    );
    python
}

/// Statements CrateDB's grammar refuses, with its message.
fn refused_by_the_grammar(statements: &BTreeSet<String>) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("statements.json");
    std::fs::write(&input, serde_json::to_string(statements).unwrap()).unwrap();
    let script = r#"
import json, sys
from cratedb_sqlparse import sqlparse
refused = []
for statement in json.load(open(sys.argv[1])):
    try:
        sqlparse(statement, raise_exception=True)
    except Exception as e:
        refused.append([statement, str(e)])
print(json.dumps(refused))
"#;
    let out = Command::new(sqlparse_python())
        .args(["-c", script])
        .arg(&input)
        .output()
        .expect("run cratedb-sqlparse");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list")
}

/// Runs the Job once and adds every statement the simulator received.
async fn collect(h: &Harness, into: &mut BTreeSet<String>) {
    let exit = h.run().await;
    eprintln!("run: {exit:?} {}", h.status().await["message"]);
    take(h, into);
}

fn take(h: &Harness, into: &mut BTreeSet<String>) {
    for record in h.sim.statements() {
        assert!(
            !record.rejected,
            "outside the simulator's SQL: {}",
            record.sql
        );
        into.insert(record.sql);
    }
}

async fn annotate_cancel(h: &Harness) {
    let api: Api<cratedb_restore::resource::CrateDB> =
        Api::namespaced(h.client.clone(), common::NS);
    api.patch(
        CLUSTER,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"restore.cloud.crate.io/cancel": "true"}},
            "status": {"restore": {"runId": RUN_ID, "cancelledBy": "alice"}}}),
        ),
    )
    .await
    .unwrap();
}

async fn statements_of_the_job() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let two = || {
        SnapshotDef::new(SNAPSHOT)
            .version("5.6.0")
            .table(
                TableDef::new("doc", "orders")
                    .shards(2)
                    .bytes_per_shard(1_000),
            )
            .table(TableDef::new("gc", "scheduled_jobs").shards(1))
            .users(vec![
                UserDef::new("system", "source-password"),
                UserDef::new("gc_admin", "source-gc-password"),
            ])
    };
    // `all` with Grand Central tables moved aside, the sidecar's password reset, admin sync.
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(two()))
            .table(TableDef::new("gc", "scheduled_jobs")),
        Cluster {
            grand_central: true,
            gc_secret: true,
            ..Cluster::default()
        },
    )
    .await;
    collect(&h, &mut all).await;
    // `tables` renamed, and `on-conflict: skip` over a table that exists.
    for (restore, annotations, existing) in [
        (
            json!({"type": "tables", "tables": ["doc.orders"]}),
            vec![
                (
                    "restore.cloud.crate.io/schema-rename-replacement",
                    "restored",
                ),
                ("restore.cloud.crate.io/table-rename-replacement", "$1_copy"),
            ],
            None,
        ),
        (
            json!({"type": "all"}),
            vec![("restore.cloud.crate.io/on-conflict", "skip")],
            Some(TableDef::new("doc", "orders")),
        ),
    ] {
        let mut sim = sim_builder().storage(s3().snapshot(two()));
        if let Some(table) = existing {
            sim = sim.table(table);
        }
        let h = Harness::start(
            sim,
            Cluster {
                restore_snapshot: restore,
                annotations,
                ..Cluster::default()
            },
        )
        .await;
        collect(&h, &mut all).await;
    }
    // Partitions into an existing table; sections with users; metadata.
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(two_day_snapshot(100)))
            .table(parted_table(100).partition(PartitionDef::new("day", "2024-01-02"))),
        Cluster {
            restore_snapshot: json!({"type": "partitions", "partitions": [
                {"table_ident": "doc.parted", "columns": [{"name": "day", "value": "'2024-01-01'"}]}]}),
            ..Cluster::default()
        },
    )
    .await;
    collect(&h, &mut all).await;
    for restore in [
        json!({"type": "sections", "sections": ["users", "privileges", "views"]}),
        json!({"type": "metadata"}),
    ] {
        let h = Harness::start(
            sim_builder().storage(s3().snapshot(two())),
            Cluster {
                restore_snapshot: restore,
                ..Cluster::default()
            },
        )
        .await;
        collect(&h, &mut all).await;
    }
    // Primaries that never start (allocation explanations), and a deadline (per-relation shards).
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(two()))
            .restore_outcome(SNAPSHOT, RestoreOutcome::primaries_never_allocated()),
        Cluster::default(),
    )
    .await;
    collect(&h, &mut all).await;
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(two()))
            .restore_outcome(SNAPSHOT, RestoreOutcome::stall()),
        Cluster::default(),
    )
    .await;
    let mut config = h.config.clone();
    config.restore_timeout = Duration::from_millis(600);
    cratedb_restore::job::run(config, h.client.clone()).await;
    take(&h, &mut all);
    // A cancel while CrateDB restores a table and a partition.
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(two_day_snapshot(1_000_000)))
            .table(parted_table(1_000_000).partition(PartitionDef::new("day", "2024-01-02")))
            .restore_outcome(SNAPSHOT, RestoreOutcome::stall()),
        Cluster {
            restore_snapshot: json!({"type": "partitions", "partitions": [
                {"table_ident": "doc.parted", "columns": [{"name": "day", "value": "'2024-01-01'"}]}]}),
            ..Cluster::default()
        },
    )
    .await;
    let waiting = async {
        loop {
            if h.status().await["steps"]["await_restore"]["state"] == "Running" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::select! {
        _ = h.run() => panic!("the run ended before the cancel"),
        () = waiting => {}
    }
    annotate_cancel(&h).await;
    collect(&h, &mut all).await;
    // A cancel while CrateDB restores whole tables.
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(two()))
            .restore_outcome(SNAPSHOT, RestoreOutcome::stall()),
        Cluster {
            restore_snapshot: json!({"type": "tables", "tables": ["doc.orders"]}),
            ..Cluster::default()
        },
    )
    .await;
    let waiting = async {
        loop {
            if h.status().await["steps"]["await_restore"]["state"] == "Running" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::select! {
        _ = h.run() => panic!("the run ended before the cancel"),
        () = waiting => {}
    }
    annotate_cancel(&h).await;
    collect(&h, &mut all).await;
    // `latest`, and the snapshot catalog.
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(two())),
        Cluster {
            restore_snapshot: json!({"snapshot": "latest"}),
            ..Cluster::default()
        },
    )
    .await;
    // (The catalog first: the restore deletes restore-from-backup-<name> afterwards.)
    cratedb_restore::job::snapshots::list(&h.config, h.client.clone(), true)
        .await
        .unwrap();
    collect(&h, &mut all).await;
    all
}

/// What only the crash path sends (values as escaped literals: crash takes no parameters).
fn statements_of_the_crash_path() -> BTreeSet<String> {
    let partition = PartitionTarget {
        table: TableIdent::new("doc", "parted"),
        columns: vec![
            ("day".into(), SqlLiteral::String("2024-01-01".into())),
            ("n".into(), SqlLiteral::Number("7".into())),
            ("x".into(), SqlLiteral::Null),
        ],
    };
    [
        queries::alter_password("system", "p'w\\x"),
        queries::set_jwt("ad\"min", "https://jwk.example/'x", "cluster-1"),
        queries::clear_jwt("admin"),
        queries::running_restore_by_name("snap'1"),
        queries::delete_partition(&partition),
        queries::set_global("TRANSIENT", "cluster.routing.allocation.enable", "all"),
        queries::reset_global("cluster.routing.allocation.enable"),
        queries::shards_per_relation_statement(),
    ]
    .into_iter()
    .collect()
}

#[tokio::test]
async fn every_statement_the_product_sends_parses_under_cratedbs_own_grammar() {
    let mut statements = statements_of_the_job().await;
    let sent = statements.len();
    statements.extend(statements_of_the_crash_path());
    for kind in [
        "CREATE REPOSITORY",
        "RESTORE SNAPSHOT",
        "ALTER TABLE",
        "ALTER USER",
        "DROP TABLE",
        "DELETE FROM",
        "DROP REPOSITORY",
        "SET GLOBAL",
        "SELECT count(*), count(*) FILTER",
        "SELECT schema_name, table_name, count(*)",
        "SELECT table_schema, table_name, partition_ident, shard_id",
        "SELECT name, version, state, tables, table_partitions, started",
    ] {
        assert!(
            statements.iter().any(|s| s.starts_with(kind)),
            "the runs send no {kind}: {statements:#?}"
        );
    }
    let refused = refused_by_the_grammar(&statements);
    assert!(
        refused.is_empty(),
        "CrateDB's grammar refuses {} of {} statements ({sent} from the runs):\n{}",
        refused.len(),
        statements.len(),
        refused
            .iter()
            .map(|(s, e)| format!("{s}\n  -> {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{} distinct statements parse", statements.len());
}
