//! Property tests ("fuzzing") of the admission entry point and of identifier and literal parsing.
//! A short run is part of every test run; a long one:
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz_admission`.

mod common;

use std::sync::Arc;

use axum::{
    body::{Body, to_bytes},
    http::Request,
};
use common::*;
use cratedb_restore::{
    sql::{SqlLiteral, TableIdent},
    webhook::{
        metrics::Metrics,
        server::{AppState, admission_router},
    },
};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Strings that exercise quoting: quotes, dots, backslashes, semicolons, controls, unicode.
fn hostile_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\"".to_string()),
            Just("'".to_string()),
            Just(".".to_string()),
            Just("\\".to_string()),
            Just(";".to_string()),
            Just(" ".to_string()),
            Just("\u{0}".to_string()),
            Just("日本".to_string()),
            Just("all".to_string()),
            "[a-z_]{1,6}",
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn restore_snapshot() -> impl Strategy<Value = Value> {
    (
        prop::option::of(hostile_string()),
        prop::option::of(prop_oneof![Just("all"), Just("tables"), Just("metadata"), Just("partitions"), Just("sections"), Just("bogus")]),
        prop::collection::vec(hostile_string(), 0..4),
        prop::collection::vec(prop_oneof![Just("tables"), Just("users"), Just("views"), Just("nope")], 0..3),
        prop::collection::vec((hostile_string(), hostile_string(), hostile_string()), 0..3),
        prop::option::of(prop_oneof![Just("aws"), Just("azure_blob"), Just("gcs")]),
        any::<bool>(),
    )
        .prop_map(|(snapshot, type_, tables, sections, partitions, provider, refs)| {
            let mut rs = json!({"tables": tables, "sections": sections,
                "partitions": partitions.into_iter().map(|(t, c, v)| json!({"table_ident": t, "columns": [{"name": c, "value": v}]})).collect::<Vec<_>>()});
            if let Some(s) = snapshot {
                rs["snapshot"] = json!(s);
            }
            if let Some(t) = type_ {
                rs["type"] = json!(t);
            }
            if let Some(p) = provider {
                rs["backupProvider"] = json!(p);
            }
            if refs {
                for (k, v) in aws_refs(SECRET).as_object().unwrap() {
                    rs[k] = v.clone();
                }
            }
            rs
        })
}

async fn post(app: &axum::Router, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(Request::post(path).body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_never_give_a_non_json_200(body in prop::collection::vec(any::<u8>(), 0..512)) {
        runtime().block_on(async {
            let app = admission_router(AppState { admission: Arc::new(admission(fake_api(vec![]).await)), metrics: Arc::new(Metrics::default()) }, 64 * 1024);
            for path in ["/validate", "/mutate"] {
                let (status, bytes) = post(&app, path, body.clone()).await;
                prop_assert!(status == 200 || status == 400, "{status}");
                if status == 200 {
                    prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn structured_reviews_always_get_a_well_formed_answer(rs in restore_snapshot(), create in any::<bool>(), dry_run in any::<bool>()) {
        runtime().block_on(async {
            let app = admission_router(AppState { admission: Arc::new(admission(fake_api(vec![restore_secret()]).await)), metrics: Arc::new(Metrics::default()) }, 1 << 20);
            let new = cratedb(Some(rs.clone()), Some("20261125082542-3fa9c1"), None);
            let old = (!create).then(|| cratedb(Some(json!({"snapshot": ""})), None, None));
            let review = review("fuzz", if create { "CREATE" } else { "UPDATE" }, Some(new.clone()), old, dry_run);
            let body = serde_json::to_vec(&review).unwrap();
            for path in ["/validate", "/mutate"] {
                let (status, bytes) = post(&app, path, body.clone()).await;
                prop_assert_eq!(status, 200);
                let answer: Value = serde_json::from_slice(&bytes).unwrap();
                prop_assert_eq!(&answer["response"]["uid"], "fuzz");
                let allowed = answer["response"]["allowed"].as_bool();
                prop_assert!(allowed.is_some());
                if allowed == Some(false) {
                    let code = answer["response"]["status"]["code"].as_u64().unwrap();
                    prop_assert!([409, 422, 500].contains(&code), "{code}");
                    prop_assert!(!answer["response"]["status"]["message"].as_str().unwrap().is_empty());
                }
                if answer["response"].get("patch").is_some() {
                    let patch = patch_of(&answer);
                    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
                    let mut doc = new.clone();
                    prop_assert!(json_patch::patch(&mut doc, &patch).is_ok(), "the patch applies");
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn identifiers_round_trip_through_quoting(input in hostile_string()) {
        if let Ok(ident) = TableIdent::parse(&input) {
            let quoted = ident.quoted();
            prop_assert_eq!(TableIdent::parse(&quoted).unwrap(), ident.clone());
            // The quoted form is one token per part: an even number of quotes inside each.
            prop_assert_eq!(quoted.matches('"').count() % 2, 0);
        }
    }

    #[test]
    fn literals_round_trip_and_never_carry_sql(input in hostile_string()) {
        if let Ok(literal) = SqlLiteral::parse(&input) {
            let rendered = literal.to_string();
            prop_assert_eq!(SqlLiteral::parse(&rendered).unwrap(), literal.clone());
            if let SqlLiteral::String(_) = literal {
                prop_assert!(rendered.starts_with('\'') && rendered.ends_with('\''));
                prop_assert_eq!(rendered[1..rendered.len() - 1].replace("''", "").matches('\'').count(), 0);
            }
        }
    }
}
