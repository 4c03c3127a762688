//! The bad-input corpus (`tests/fixtures/bad-input/`): every file gets exactly the answer
//! `expected.json` names, through the real router with the production body limit. No input
//! may panic the server or produce a non-JSON 200.

mod common;

use std::{collections::BTreeMap, path::Path, sync::Arc};

use axum::{
    body::{Body, to_bytes},
    http::Request,
};
use common::*;
use cratedb_restore::webhook::{
    metrics::Metrics,
    server::{AppState, DEFAULT_MAX_BODY_BYTES, admission_router},
};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

#[derive(Deserialize)]
struct Expected {
    status: u16,
    contains: String,
    allowed: Option<bool>,
    code: Option<u16>,
}

#[tokio::test]
async fn every_bad_input_gets_its_exact_answer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-input");
    let expected: BTreeMap<String, Expected> =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let state = AppState {
        admission: Arc::new(admission(fake_api(vec![]).await)),
        metrics: Arc::new(Metrics::default()),
    };
    let app = admission_router(state, DEFAULT_MAX_BODY_BYTES);
    for (name, want) in &expected {
        let body = match name.strip_prefix("generated:") {
            Some("10MiB") => vec![b'{'; 10 * 1024 * 1024],
            Some(other) => panic!("unknown generated input {other}"),
            None => std::fs::read(dir.join(name)).unwrap(),
        };
        let response = app
            .clone()
            .oneshot(
                Request::post("/validate")
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, want.status, "{name}: {text}");
        if status == 200 {
            let review: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{name}: non-JSON 200: {e}"));
            assert_eq!(
                review["response"]["allowed"].as_bool(),
                want.allowed,
                "{name}"
            );
            assert_eq!(
                review["response"]["status"]["code"].as_u64(),
                want.code.map(u64::from),
                "{name}"
            );
            let message = review["response"]["status"]["message"]
                .as_str()
                .unwrap_or_default();
            assert!(message.contains(&want.contains), "{name}: {message}");
        } else {
            assert!(text.contains(&want.contains), "{name}: {text}");
        }
    }
    assert_eq!(expected.len(), 12, "every corpus file is listed");
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        files,
        expected.len(),
        "expected.json plus one entry per file, one generated"
    );
}
