//! The admission server's HTTP contract: routing, bodies and status codes without a network
//! (`Router::oneshot`), then over real HTTPS on 127.0.0.1 with generated certificates, including
//! a certificate rotation done the way a Kubernetes Secret volume does it.

mod common;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use common::{
    https::{TlsServer, client_config, https_post},
    *,
};
use cratedb_restore::webhook::{
    metrics::Metrics,
    server::{AppState, admission_router, health_router},
    tls::{self, CertFiles, CertStore},
};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde_json::Value;
use tokio::sync::oneshot;
use tower::ServiceExt;

const MAX_BODY: usize = 64 * 1024;

async fn app() -> (Router, kube::Client, Arc<Metrics>) {
    let client = fake_api(vec![restore_secret()]).await;
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        admission: Arc::new(admission(client.clone())),
        metrics: metrics.clone(),
    };
    (admission_router(state, MAX_BODY), client, metrics)
}

async fn post(app: &Router, path: &str, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/admission")
            .join(name),
    )
    .unwrap()
}

#[tokio::test]
async fn mutate_returns_a_base64_json_patch_that_applies() {
    let (app, _, _) = app().await;
    let body = fixture("mutate-new-restore.json");
    let (status, answer) = post(&app, "/mutate", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"],
        "7d3e1f5a-0001-4c1b-9a55-000000000001"
    );
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let patch = patch_of(&answer);
    let review: Value = serde_json::from_slice(&body).unwrap();
    let mut object = review["request"]["object"].clone();
    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
    json_patch::patch(&mut object, &patch).unwrap();
    let run_id = object["metadata"]["annotations"][RUN_ANNOTATION]
        .as_str()
        .unwrap();
    assert_ne!(
        run_id, "20261101000000-aaaaaa",
        "a new run id replaces the stored one"
    );
    assert_eq!(
        object["spec"]["cluster"]["restoreSnapshot"]["type"],
        "tables"
    );
    assert_eq!(
        object["spec"]["cluster"]["restoreSnapshot"]["backupProvider"],
        "aws"
    );
    assert_eq!(object["status"]["restore"]["phase"], "Pending");
    assert_eq!(object["status"]["restore"]["runId"], run_id);
}

#[tokio::test]
async fn validate_answers_denials_as_http_200_with_a_status_code() {
    let (app, client, metrics) = app().await;
    let (status, answer) = post(&app, "/validate", fixture("validate-invalid-type.json")).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        answer["response"]["uid"],
        "7d3e1f5a-0002-4c1b-9a55-000000000002"
    );
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 422);
    assert_eq!(
        answer["response"]["status"]["message"],
        r#"invalid restore request: spec.cluster.restoreSnapshot.type: "everything" is not a restore type; use one of all, tables, metadata, partitions, sections"#
    );
    let (_, reset) = post(&app, "/validate", fixture("validate-reset.json")).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&reset).unwrap()["response"]["allowed"],
        true
    );

    let (_, dry) = post(
        &app,
        "/validate",
        fixture("validate-new-restore-dry-run.json"),
    )
    .await;
    let dry: Value = serde_json::from_slice(&dry).unwrap();
    assert_eq!(dry["response"]["allowed"], true, "{dry}");
    assert!(
        dry["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains(r#"TABLE "doc"."orders", "sales"."Line Items""#)
    );
    let jobs: kube::Api<k8s_openapi::api::batch::v1::Job> = kube::Api::namespaced(client, "dbs");
    assert!(
        jobs.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "dry-run creates no Job"
    );
    let text = metrics.render();
    assert!(
        text.contains(r#"reviews_total{endpoint="validate",outcome="denied"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"denials_total{endpoint="validate",reason="Invalid"} 1"#));
}

#[tokio::test]
async fn unreadable_bodies_get_http_errors() {
    let (app, _, metrics) = app().await;
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "garbage",
            b"not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "the body is not an AdmissionReview",
        ),
        (
            "empty",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "the body is not an AdmissionReview",
        ),
        (
            "non-utf8",
            vec![0xff, 0xfe, 0x7b],
            StatusCode::BAD_REQUEST,
            "the body is not an AdmissionReview",
        ),
        (
            "no request",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "the AdmissionReview has no request",
        ),
        (
            "v1beta1",
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "expected apiVersion admission.k8s.io/v1",
        ),
        (
            "oversized",
            vec![b' '; MAX_BODY + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
    ];
    for (name, body, expected, text) in cases {
        let (status, answer) = post(&app, "/validate", body).await;
        assert_eq!(status, expected, "{name}");
        assert!(
            String::from_utf8_lossy(&answer).contains(text),
            "{name}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let review = review("u", "UPDATE", Some(cratedb(None, None, None)), None, false);
    let (status, answer) = post(&app, "/validate", serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "UPDATE without oldObject");
    assert_eq!(
        String::from_utf8_lossy(&answer),
        "request.oldObject is missing for an UPDATE operation"
    );

    let get = app
        .clone()
        .oneshot(Request::get("/validate").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let unknown = app
        .clone()
        .oneshot(Request::post("/other").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(
        metrics
            .render()
            .contains(r#"reviews_total{endpoint="validate",outcome="error"} 6"#)
    );
}

#[tokio::test]
async fn health_endpoints_follow_readiness() {
    let ready = Arc::new(AtomicBool::new(false));
    let app = health_router(ready.clone(), Arc::new(Metrics::default()));
    let get = |path: &'static str| {
        let app = app.clone();
        async move {
            app.oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get("/healthz").await, StatusCode::OK);
    assert_eq!(get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
    ready.store(true, Ordering::Release);
    assert_eq!(get("/readyz").await, StatusCode::OK);
    assert_eq!(get("/metrics").await, StatusCode::OK);
}

// ---- over the network ----------------------------------------------------------------------

#[tokio::test]
async fn https_serves_reviews_with_a_certificate_for_127_0_0_1() {
    let pair = tls::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let server = TlsServer::start(CertStore::from_pem(&pair).unwrap(), app().await.0).await;
    let trusted = client_config(&[&pair.cert_pem]);
    let invalid = https_post(
        server.addr,
        trusted.clone(),
        "/validate",
        &fixture("validate-invalid-type.json"),
    )
    .await
    .unwrap();
    assert_eq!(invalid.status, 200);
    let answer: Value = serde_json::from_slice(&invalid.body).unwrap();
    assert_eq!(answer["response"]["status"]["code"], 422);
    let malformed = https_post(server.addr, trusted, "/mutate", b"{")
        .await
        .unwrap();
    assert_eq!(malformed.status, 400);
    // A client that does not trust the certificate fails the handshake.
    let other = tls::self_signed(&["127.0.0.1".into()]).unwrap();
    assert!(
        https_post(
            server.addr,
            client_config(&[&other.cert_pem]),
            "/validate",
            b"{}"
        )
        .await
        .is_err()
    );
    server.shutdown().await;
}

/// Lays out a directory the way the kubelet writes a Secret volume: the files are symlinks
/// to `..data/<file>`, and `..data` is a symlink to a timestamped directory that is replaced
/// atomically on update.
fn write_secret_volume(dir: &Path, generation: u32, pair: &tls::PemPair) {
    let versioned = dir.join(format!("..2026_11_25_{generation}"));
    std::fs::create_dir(&versioned).unwrap();
    std::fs::write(versioned.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(versioned.join("tls.key"), &pair.key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(versioned.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        let link = dir.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(file), &link).unwrap();
        }
    }
}

#[tokio::test]
async fn certificate_rotation_through_a_secret_volume_swap_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = tls::self_signed(&["127.0.0.1".into()]).unwrap();
    write_secret_volume(dir.path(), 1, &first);
    let files = CertFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let store = CertStore::from_files(files).unwrap();
    let reloads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (stop_watch, watch_stopped) = oneshot::channel::<()>();
    let counter = reloads.clone();
    // A long poll interval: only the directory watch can pick the change up within the test.
    tokio::spawn(tls::watch_files(
        store.clone(),
        Duration::from_secs(3600),
        move |ok| {
            if ok {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        },
        async {
            let _ = watch_stopped.await;
        },
    ));
    let server = TlsServer::start(store, app().await.0).await;
    let first_der = CertificateDer::from_pem_slice(first.cert_pem.as_bytes()).unwrap();
    let answer = https_post(
        server.addr,
        client_config(&[&first.cert_pem]),
        "/validate",
        b"{}",
    )
    .await
    .unwrap();
    assert_eq!(answer.served, first_der);

    let second = tls::self_signed(&["127.0.0.1".into()]).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // let the watch settle on the first state
    write_secret_volume(dir.path(), 2, &second);
    let second_der = CertificateDer::from_pem_slice(second.cert_pem.as_bytes()).unwrap();
    let trusts_both = client_config(&[&first.cert_pem, &second.cert_pem]);
    let mut served_second = false;
    for _ in 0..100 {
        if let Ok(answer) = https_post(server.addr, trusts_both.clone(), "/validate", b"{}").await
            && answer.served == second_der
        {
            assert_eq!(answer.status, 400);
            served_second = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served_second,
        "the rotated certificate is served without a restart"
    );
    assert_eq!(reloads.load(Ordering::SeqCst), 1);
    stop_watch.send(()).unwrap();
    server.shutdown().await;
}
