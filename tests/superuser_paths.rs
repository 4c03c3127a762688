//! The two superuser SQL paths at the protocol level: kube-rs pod exec against a WebSocket
//! endpoint speaking the Kubernetes exec channel protocol (v5 and v4), and the crate-control
//! sidecar over HTTP, both in front of the CrateDB simulator.

mod common;

use std::{sync::Arc, time::Duration};

use common::{exec_endpoint::*, harness::*};
use cratedb_restore::cratedb::{
    SqlError,
    superuser::{PodExec, Sidecar, Superuser},
};
use serde_json::{Value, json};

async fn sim() -> Arc<cratedb_sim::SimulatorHandle> {
    Arc::new(sim_builder().user("admin", "pw").start().await.unwrap())
}

fn exec(endpoint: &ExecEndpoint) -> Superuser {
    Superuser::Exec(PodExec {
        client: endpoint.client(),
        namespace: "dbs".into(),
        pod: "crate-data-hot-my-cluster-0".into(),
        container: "crate".into(),
        scheme: "https",
        timeout: Duration::from_secs(10),
    })
}

#[tokio::test]
async fn pod_exec_runs_crash_over_the_v5_channel_protocol() {
    let sim = sim().await;
    let endpoint = ExecEndpoint::start(
        sim.clone(),
        &["v5.channel.k8s.io", "v4.channel.k8s.io"],
        Mode::Crash,
    )
    .await;
    let su = exec(&endpoint);

    let rows = su
        .execute("SELECT name, superuser FROM sys.users ORDER BY name")
        .await
        .unwrap();
    assert_eq!(rows.columns, ["name", "superuser"]);
    assert!(
        rows.rows.contains(&vec![json!("admin"), json!(false)]),
        "{rows:?}"
    );
    assert!(
        rows.rows.contains(&vec![json!("crate"), json!(true)]),
        "{rows:?}"
    );

    let nulls = su
        .execute("SELECT id, state FROM sys.snapshot_restore WHERE name = 'none'")
        .await
        .unwrap();
    assert!(nulls.rows.is_empty());

    let altered = su
        .execute(r#"ALTER USER "admin" SET (password = 'n''ew')"#)
        .await
        .unwrap();
    assert_eq!(altered.rowcount, Some(1));
    assert!(
        sim.users()
            .iter()
            .any(|u| u.name == "admin" && u.password.as_deref() == Some("n'ew"))
    );

    // crash takes no parameters: the password is an escaped literal, backslashes kept.
    su.set_password("admin", r"b\s'q").await.unwrap();
    assert!(
        sim.users()
            .iter()
            .any(|u| u.name == "admin" && u.password.as_deref() == Some(r"b\s'q"))
    );

    let error = su.execute("SELEC 1").await.unwrap_err();
    assert!(
        matches!(&error, SqlError::Sql { message, .. } if message.contains("SQLParseException")),
        "{error:?}"
    );
    assert!(!error.is_transient());

    let calls = endpoint.calls();
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[0].protocol, "v5.channel.k8s.io");
    assert_eq!(calls[0].namespace, "dbs");
    assert_eq!(calls[0].pod, "crate-data-hot-my-cluster-0");
    assert_eq!(calls[0].container, "crate");
    assert_eq!(
        calls[0].command,
        [
            "crash",
            "--verify-ssl=false",
            "--host=https://localhost:4200",
            "-c",
            "SELECT name, superuser FROM sys.users ORDER BY name"
        ]
    );
}

#[tokio::test]
async fn pod_exec_works_over_v4_and_reports_a_missing_crash() {
    let sim = sim().await;
    let v4 = ExecEndpoint::start(sim.clone(), &["v4.channel.k8s.io"], Mode::Crash).await;
    let rows = exec(&v4)
        .execute("SELECT name FROM sys.users WHERE name = 'system'")
        .await
        .unwrap();
    assert_eq!(rows.rows, vec![vec![json!("system")]]);
    assert_eq!(v4.calls()[0].protocol, "v4.channel.k8s.io");

    let broken = ExecEndpoint::start(sim, &["v5.channel.k8s.io"], Mode::CommandNotFound).await;
    let error = exec(&broken).execute("SELECT 1").await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("status 127"), "{error}");
}

#[tokio::test]
async fn passwords_go_to_crash_on_stdin_never_into_the_exec_request() {
    // Kubernetes 1.20 speaks v4 over WebSocket, which cannot close stdin: the product's shell
    // wrapper reads one line, so crash still sees the end of its input.
    let sim = sim().await;
    let v4 = ExecEndpoint::start(sim.clone(), &["v4.channel.k8s.io"], Mode::Crash).await;
    let su = exec(&v4);
    let password = "s3cr3t 'pw' \\ ;--";
    su.set_password("admin", password).await.unwrap();
    assert!(
        sim.users()
            .iter()
            .any(|u| u.name == "admin" && u.password.as_deref() == Some(password))
    );
    let call = &v4.calls()[0];
    assert_eq!(&call.command[..2], ["sh", "-c"]);
    assert_eq!(
        &call.command[3..],
        [
            "sh",
            "crash",
            "--verify-ssl=false",
            "--host=https://localhost:4200"
        ]
    );
    for part in ["s3cr3t", "pw", "ALTER"] {
        assert!(!call.query.contains(part), "{part} in {}", call.query);
        assert!(call.command.iter().all(|a| !a.contains(part)));
    }
    // An error of a name without "Exception" is still an error (crash's exit status).
    let error = su.execute("SELECT * FROM doc.nope").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "RelationUnknown[Relation 'doc.nope' unknown]"
    );
}

#[tokio::test]
async fn sidecar_answers_rows_errors_and_retryable_failures() {
    let sim = sim().await;
    let sidecar = |token: &str| {
        Superuser::Sidecar(Sidecar {
            http: reqwest::Client::new(),
            url: format!("{}/exec", sim.sidecar_url()),
            token: token.to_string().into(),
            timeout: Duration::from_secs(5),
        })
    };
    let su = sidecar(SIDECAR_TOKEN);
    let rows = su
        .execute("SELECT name FROM sys.users WHERE name = 'admin'")
        .await
        .unwrap();
    assert_eq!(rows.rows, vec![vec![Value::from("admin")]]);

    sim.fail_sidecar_requests(1);
    let error = su.execute("SELECT 1").await.unwrap_err();
    assert!(error.is_transient(), "a 5xx is retryable: {error:?}");
    assert!(
        su.execute("SELECT 1").await.is_ok(),
        "the next request goes through"
    );

    let sql_error = su.execute("SELECT * FROM doc.nope").await.unwrap_err();
    assert!(!sql_error.is_transient());
    assert!(sql_error.to_string().contains("nope"), "{sql_error}");

    // A password goes as a bound parameter through the sidecar: not in the statement text.
    su.set_password("admin", "pa'ss\\word").await.unwrap();
    assert!(
        sim.users()
            .iter()
            .any(|u| u.name == "admin" && u.password.as_deref() == Some("pa'ss\\word"))
    );
    let alter = sim
        .statements()
        .into_iter()
        .rfind(|s| s.sql.starts_with("ALTER USER"))
        .unwrap();
    assert_eq!(alter.sql, r#"ALTER USER "admin" SET (password = ?)"#);
    assert!(!format!("{:?}", sim.jobs_log()).contains("pa'ss"));

    let denied = sidecar("wrong-token")
        .execute("SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(denied.to_string(), "Invalid token");
    assert!(!denied.is_transient());
}

#[tokio::test]
async fn a_full_run_survives_sidecar_hiccups() {
    let h = Harness::start(
        sim_builder().storage(
            s3().snapshot(
                cratedb_sim::SnapshotDef::new(SNAPSHOT)
                    .version("5.6.0")
                    .table(cratedb_sim::TableDef::new("doc", "t").shards(1)),
            ),
        ),
        Cluster::default(),
    )
    .await;
    h.sim.fail_sidecar_requests(2);
    assert_eq!(
        h.run().await,
        cratedb_restore::job::error::ExitStatus::Done,
        "{}",
        h.logs.text()
    );
    assert_eq!(h.status().await["phase"], "Succeeded");
}
