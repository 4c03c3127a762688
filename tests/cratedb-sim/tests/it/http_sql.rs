//! CrateDB's HTTP endpoint (`/_sql`, `/`, `/_sim/statements`) at the protocol level.

use std::io::Write;

use base64::Engine as _;
use cratedb_sim::{Frontend, StatementOutcome};
use serde_json::json;

use crate::common::*;

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

#[tokio::test]
async fn queries_commands_types_and_duration() {
    let sim = start(builder("5.10.3")).await;
    let (status, body) = sql_post(
        &sim,
        "?types",
        &[],
        &json!({"stmt": "SELECT name, superuser FROM sys.users WHERE name = ?", "args": ["system"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cols"], json!(["name", "superuser"]));
    assert_eq!(body["col_types"], json!([4, 3]));
    assert_eq!(body["rows"], json!([["system", false]]));
    assert_eq!(body["rowcount"], 1);
    assert!(
        body["duration"].as_f64().is_some_and(|d| d >= 0.0),
        "{body}"
    );

    // no ?types, no col_types; `$n` placeholders too; arrays are [100, inner]
    let (_, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({"stmt": "SELECT name FROM sys.users WHERE name = $1", "args": ["crate"]}),
    )
    .await;
    assert!(body.get("col_types").is_none());
    assert_eq!(body["rows"], json!([["crate"]]));
    let (_, body) = sql_post(
        &sim,
        "?types=true",
        &[],
        &json!({"stmt": "SELECT partitioned_by FROM information_schema.tables LIMIT 1"}),
    )
    .await;
    assert_eq!(body["col_types"], json!([[100, 4]]));

    // a command answers CrateDB's row-count shape: one empty row
    let (status, body) = sql_post(
        &sim,
        "?types",
        &[],
        &json!({"stmt": "SET GLOBAL TRANSIENT \"cluster.routing.allocation.enable\" = 'primaries'"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cols"], json!([]));
    assert_eq!(body["col_types"], json!([]));
    assert_eq!(body["rows"], json!([[]]));
    assert_eq!(body["rowcount"], 1);
    assert_eq!(
        sim.transient_settings()["cluster.routing.allocation.enable"],
        json!("primaries")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn errors_carry_cratedb_codes_statuses_and_optional_trace() {
    let sim = start(builder("5.10.3").table(cratedb_sim::TableDef::new("doc", "t1"))).await;
    let cases = [
        (
            "SELEC 1",
            400,
            4000,
            "SQLParseException[line 1:1: mismatched input 'SELEC'",
        ),
        (
            "SELECT * FROM sys.nope",
            404,
            4041,
            "RelationUnknown[Relation 'sys.nope' unknown]",
        ),
        (
            "SELECT x FROM sys.nodes",
            404,
            4043,
            "ColumnUnknownException[Column x unknown]",
        ),
        (
            "DROP REPOSITORY nope",
            404,
            4047,
            "RepositoryMissingException[[nope] missing]",
        ),
        (
            "ALTER USER nobody SET (password = 'x')",
            404,
            40410,
            "RoleUnknownException[Role 'nobody' does not exist]",
        ),
        (
            "SET GLOBAL PERSISTENT \"no.such.setting\" = 1",
            400,
            4000,
            "SQLParseException[Setting 'no.such.setting' is not supported]",
        ),
    ];
    for (stmt, status, code, message) in cases {
        let (s, body) = sql_post(&sim, "", &[], &json!({ "stmt": stmt })).await;
        assert_eq!(s, status, "{stmt}: {body}");
        assert_eq!(body["error"]["code"], code, "{stmt}: {body}");
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.starts_with(message), "{stmt}: {m}");
        assert!(body.get("error_trace").is_none());
    }
    create_repo_http(&sim).await;
    let (s, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({"stmt": "RESTORE SNAPSHOT r.snap1 TABLE t1 WITH (wait_for_completion = true)"}),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_i64()),
        (409, Some(4093)),
        "{body}"
    );
    let (s, body) = sql_post(
        &sim,
        "?error_trace=true",
        &[],
        &json!({"stmt": "RESTORE SNAPSHOT r.nope ALL"}),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_i64()),
        (500, Some(5000)),
        "{body}"
    );
    assert!(
        body["error_trace"]
            .as_str()
            .is_some_and(|t| t.starts_with("SnapshotRestoreException[")),
        "{body}"
    );

    // request-level errors
    let (s, body) = sql_post(&sim, "", &[], &json!({"args": [1]})).await;
    assert_eq!((s, body["error"]["code"].as_i64()), (400, Some(4000)));
    assert_eq!(
        body["error"]["message"],
        "SQLParseException[Field [stmt] was not defined]"
    );
    let (s, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({"stmt": "SELECT 1", "args": [1], "bulk_args": [[1]]}),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_i64()),
        (400, Some(4000)),
        "{body}"
    );
    sim.shutdown().await;
}

async fn create_repo_http(sim: &cratedb_sim::SimulatorHandle) {
    let (s, body) = sql_post(
        sim,
        "",
        &[],
        &json!({
            "stmt": "CREATE REPOSITORY r TYPE s3 WITH (bucket = ?, base_path = ?, access_key = ?, secret_key = ?)",
            "args": [BUCKET, BASE, ACCESS, SECRET],
        }),
    )
    .await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn bulk_args_run_once_per_item_and_mark_failures() {
    let sim = start(builder("5.10.3")).await;
    sim.set_password("system", Some("a"));
    let (s, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({
            "stmt": "ALTER USER system SET (password = ?)",
            "bulk_args": [["b"], [], ["c"]],
        }),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["cols"], json!([]));
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], json!({"rowcount": 1}));
    assert_eq!(results[1]["rowcount"], -2);
    assert!(
        results[1]["error_message"]
            .as_str()
            .unwrap()
            .contains("parameter placeholder"),
        "{body}"
    );
    assert_eq!(results[2], json!({"rowcount": 1}));
    assert!(
        sim.users()
            .iter()
            .any(|u| u.name == "system" && u.password.as_deref() == Some("c"))
    );
    let texts: Vec<_> = sim
        .statements()
        .into_iter()
        .filter(|s| s.frontend == Frontend::Http)
        .map(|s| s.params)
        .collect();
    assert_eq!(texts, vec![vec![json!("b")], vec![], vec![json!("c")]]);
    // sys.jobs_log has the text, never the values
    let jobs: Vec<_> = sim.jobs_log().into_iter().map(|j| j.stmt).collect();
    assert_eq!(jobs, vec!["ALTER USER system SET (password = ?)"; 3]);

    let (s, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({"stmt": "SELECT name FROM sys.users", "bulk_args": [[]]}),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_i64()),
        (400, Some(4004)),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().starts_with(
        "UnsupportedFeatureException[Bulk operations for statements that return result sets"
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn basic_auth_loopback_trust_and_privileges() {
    let sim = start(builder("5.10.3")).await;
    let who = json!({"stmt": "SELECT current_user, current_schema, name FROM sys.cluster"});
    // no header from loopback: `crate`
    let (_, body) = sql_post(&sim, "", &[], &who).await;
    assert_eq!(body["rows"], json!([["crate", "doc", "crate"]]));
    // `crate` is trusted from loopback whatever the password
    let auth = basic("crate", "anything");
    let (s, _) = sql_post(&sim, "", &[("Authorization", &auth)], &who).await;
    assert_eq!(s, 200);
    // a regular user needs the right password
    let auth = basic("system", SYSTEM_PW);
    let (s, body) = sql_post(
        &sim,
        "",
        &[("Authorization", &auth), ("Default-Schema", "custom")],
        &who,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["rows"], json!([["system", "custom", "crate"]]));
    for (user, pw) in [("system", "wrong"), ("nobody", "x")] {
        let auth = basic(user, pw);
        let (s, head, text) = http_raw(
            sim.http_sql_addr(),
            "POST",
            "/_sql",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            who.to_string().as_bytes(),
        )
        .await;
        assert_eq!(s, 401);
        assert!(head.contains("www-authenticate: basic realm=\"cratedb authenticator\""));
        assert_eq!(
            text,
            format!("password authentication failed for user \"{user}\"\n")
        );
    }
    // superuser-only statements are refused for others, as over PostgreSQL
    let auth = basic("system", SYSTEM_PW);
    let (s, body) = sql_post(
        &sim,
        "",
        &[("Authorization", &auth)],
        &json!({"stmt": "ALTER USER crate SET (password = 'x')"}),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_i64()),
        (401, Some(4011)),
        "{body}"
    );
    assert_eq!(
        body["error"]["message"],
        "MissingPrivilegeException[Missing 'AL' privilege for user 'system']"
    );
    let users: Vec<_> = sim
        .statements()
        .iter()
        .filter(|s| s.frontend == Frontend::Http)
        .map(|s| s.user.clone())
        .collect();
    assert_eq!(users, ["crate", "crate", "system", "system"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn gzip_bodies_as_crate_python_sends_them() {
    let sim = start(builder("5.10.3")).await;
    // crate-python compresses bodies of 8 KiB and more
    let pad = " ".repeat(9000);
    let body = json!({"stmt": format!("SELECT name FROM sys.cluster{pad}")}).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let (s, _, text) = http_raw(
        sim.http_sql_addr(),
        "POST",
        "/_sql?types=true",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gz,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rows"], json!([["crate"]]));
    sim.shutdown().await;
}

#[tokio::test]
async fn root_document_and_statement_inspection() {
    let sim = start(builder("5.6.2").cluster_name("my-cluster")).await;
    let (s, _, text) = http_raw(sim.http_sql_addr(), "GET", "/", &[], b"").await;
    assert_eq!(s, 200);
    let root: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(root["ok"], true);
    assert_eq!(root["status"], 200);
    assert_eq!(root["name"], "crate-data-hot-0");
    assert_eq!(root["cluster_name"], "my-cluster");
    assert_eq!(root["version"]["number"], "5.6.2");

    sql_post(
        &sim,
        "",
        &[],
        &json!({"stmt": "ALTER USER system SET (password = ?)", "args": ["s3cret"]}),
    )
    .await;
    sql_post(&sim, "", &[], &json!({"stmt": "SELEC"})).await;
    sidecar_exec(&sim, "SELECT 1 FROM sys.cluster").await;
    // the same log on both HTTP listeners
    for addr in [sim.http_sql_addr(), sim.sidecar_addr()] {
        let (s, _, text) = http_raw(addr, "GET", "/_sim/statements", &[], b"").await;
        assert_eq!(s, 200);
        assert!(!text.contains("s3cret"), "{text}");
        let log: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0]["frontend"], "http");
        assert_eq!(log[0]["user"], "crate");
        assert_eq!(log[0]["sql"], "ALTER USER system SET (password = ?)");
        assert_eq!(log[0]["param_count"], 1);
        assert!(log[0].get("params").is_none());
        assert_eq!(log[1]["outcome"]["kind"], "error");
        assert!(
            log[1]["outcome"]["message"]
                .as_str()
                .unwrap()
                .starts_with("SQLParseException[")
        );
        assert_eq!(log[2]["frontend"], "sidecar");
    }
    let (_, _, text) = http_raw(
        sim.http_sql_addr(),
        "GET",
        "/_sim/statements?params=true",
        &[],
        b"",
    )
    .await;
    let log: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(log[0]["params"], json!(["s3cret"]));
    assert!(matches!(
        &sim.statements()[1].outcome,
        StatementOutcome::Error { sqlstate, .. } if sqlstate == "42601"
    ));
    assert!(sim.jobs_log().iter().all(|j| !j.stmt.contains("s3cret")));
    sim.shutdown().await;
}
