//! The crate-control sidecar endpoint.

use cratedb_sim::{Frontend, StatementOutcome};

use crate::common::*;

#[tokio::test]
async fn token_is_checked() {
    let sim = start(builder("5.10.3")).await;
    let body = r#"{"stmt": "SELECT name FROM sys.nodes"}"#;
    let (status, json) = http_post(&sim, "/exec", None, body).await;
    assert_eq!(status, 401);
    assert_eq!(json, serde_json::json!({"detail": "Invalid token"}));
    let (status, _) = http_post(&sim, "/exec", Some("wrong"), body).await;
    assert_eq!(status, 401);
    let (status, json) = http_post(&sim, "/exec", Some(TOKEN), body).await;
    assert_eq!(status, 200);
    assert_eq!(json["cols"], serde_json::json!(["name"]));
    assert_eq!(json["rows"], serde_json::json!([["crate-data-hot-0"]]));
    assert_eq!(json["rowcount"], 1);
    // rejected requests never reach the engine
    assert_eq!(sim.statements().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn unavailable_knob_answers_503_then_recovers() {
    let sim = start(builder("5.10.3")).await;
    sim.fail_sidecar_requests(2);
    let stmt = "SELECT 1 FROM sys.snapshot_restore WHERE name='snap1' AND state NOT IN ('SUCCESS', 'FAILURE') LIMIT 1;";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(sidecar_exec(&sim, stmt).await.0);
    }
    assert_eq!(statuses, vec![503, 503, 200]);
    sim.shutdown().await;
}

#[tokio::test]
async fn sql_errors_args_and_logging() {
    let sim = start(builder("5.10.3")).await;
    let (status, json) = sidecar_exec(&sim, "SELEC 1").await;
    assert_eq!(status, 400);
    assert_eq!(json["error"]["code"], 4000);
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("SQLParseException[line 1:1: mismatched input 'SELEC'")
    );

    let (status, json) = sidecar_exec(&sim, "SELECT * FROM sys.nope").await;
    assert_eq!(status, 400);
    assert_eq!(
        json["error"]["message"],
        "RelationUnknown[Relation 'sys.nope' unknown]"
    );
    assert_eq!(json["error"]["code"], 4041);

    let body = serde_json::json!({"stmt": "SELECT name, superuser FROM sys.users WHERE name = ?", "args": ["system"]});
    let (status, json) = http_post(&sim, "/exec", Some(TOKEN), &body.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(json["rows"], serde_json::json!([["system", false]]));

    let (status, json) = http_post(&sim, "/exec", Some(TOKEN), "not json").await;
    assert_eq!(status, 400);
    assert!(json["detail"].as_str().unwrap().contains("Invalid JSON"));

    let log = sim.statements();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|s| s.frontend == Frontend::Sidecar && s.user == "crate")
    );
    assert!(log[0].rejected && !log[1].rejected);
    assert_eq!(log[2].params, vec![serde_json::json!("system")]);
    assert_eq!(log[2].outcome, StatementOutcome::Ok { rowcount: 1 });
    sim.shutdown().await;
}
