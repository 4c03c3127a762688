//! The webhook server's own lifecycle: how a shutting-down server lets go of kept-alive
//! connections (the API server's HTTP/1.1 pool), the uninstall guard that answers the chart's
//! pre-delete hook, and namespaces the webhooks leave alone.

mod common;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Body, http::Request, routing::get};
use common::{admission, cratedb, fake_api, https::client_config, restore_snapshot, review};
use cratedb_restore::webhook::{
    metrics::Metrics,
    server::{AppState, Drain, serve_tls_draining, webhook_router},
    tls::{self, CertStore},
};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    time::Instant,
};
use tokio_rustls::client::TlsStream;
use tower::ServiceExt;

/// One HTTP/1.1 answer read from a kept-alive connection.
struct Answer {
    status: u16,
    close: bool,
    body: String,
}

/// A kept-alive HTTP/1.1 connection over TLS, as the API server's webhook client holds them.
struct KeepAlive {
    stream: TlsStream<TcpStream>,
    buffered: Vec<u8>,
}

impl KeepAlive {
    async fn open(addr: SocketAddr, roots: &str) -> KeepAlive {
        let mut config = (*client_config(&[roots])).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(addr).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        KeepAlive {
            stream,
            buffered: Vec::new(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.stream.write_all(request.as_bytes()).await.unwrap();
        let head_end = loop {
            if let Some(at) = self.buffered.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed before an answer");
            self.buffered.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        while self.buffered.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed inside an answer");
            self.buffered.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&self.buffered[head_end..head_end + length]).into();
        self.buffered.drain(..head_end + length);
        Answer {
            status: head.split(' ').nth(1).unwrap().parse().unwrap(),
            close: head.lines().any(|l| l.trim() == "connection: close"),
            body,
        }
    }

    /// Waits until the server closes the connection (TLS close or EOF) and returns how long that
    /// took; panics after `within`.
    async fn closed_within(&mut self, within: Duration) -> Duration {
        let started = Instant::now();
        let mut chunk = [0u8; 64];
        match tokio::time::timeout(within, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => started.elapsed(),
            Ok(Ok(n)) => panic!("unexpected {n} bytes on an idle connection"),
            Err(_) => panic!("the connection is still open after {within:?}"),
        }
    }
}

#[tokio::test]
async fn a_draining_server_lets_go_of_kept_alive_connections_cleanly() {
    const IDLE_CLOSE: Duration = Duration::from_millis(400);
    let pair = tls::self_signed(&["127.0.0.1".into()]).unwrap();
    let config = Arc::new(CertStore::from_pem(&pair).unwrap().server_config().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/x", get(|| async { "answer" }));
    let (draining_tx, draining) = watch::channel(false);
    let (accepting_tx, mut accepting) = watch::channel(true);
    let server = tokio::spawn(serve_tls_draining(
        listener,
        config,
        app,
        Drain {
            draining,
            stop_accepting: async move {
                let _ = accepting.wait_for(|a| !*a).await;
            },
            grace: Duration::from_secs(30),
            idle_close: IDLE_CLOSE,
        },
    ));

    // Before the shutdown: connections are kept alive.
    let mut busy = KeepAlive::open(addr, &pair.cert_pem).await;
    let mut idle = KeepAlive::open(addr, &pair.cert_pem).await;
    for connection in [&mut busy, &mut idle] {
        let answer = connection.get("/x").await;
        assert_eq!((answer.status, answer.close), (200, false));
        assert_eq!(answer.body, "answer");
    }

    draining_tx.send(true).unwrap();
    let drain_started = Instant::now();
    // A connection in use gets its answer, marked as the last one, then the server closes it:
    // the client never writes into a connection the server is closing.
    let answer = busy.get("/x").await;
    assert_eq!(
        (answer.status, answer.close),
        (200, true),
        "Connection: close"
    );
    busy.closed_within(Duration::from_secs(2)).await;
    // An idle one is closed once it has been idle for IDLE_CLOSE, not at once.
    idle.closed_within(Duration::from_secs(5)).await;
    assert!(
        drain_started.elapsed() >= IDLE_CLOSE - Duration::from_millis(50),
        "closed after {:?}",
        drain_started.elapsed()
    );
    // New connections are still accepted and answered while the endpoint may be listed.
    let mut late = KeepAlive::open(addr, &pair.cert_pem).await;
    let answer = late.get("/x").await;
    assert_eq!((answer.status, answer.close), (200, true));
    late.closed_within(Duration::from_secs(2)).await;

    // Once the endpoint is gone: no more connections; the server ends with the last one.
    accepting_tx.send(false).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server ends once its connections are gone, long before the grace period")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

async fn post(app: &Router, path: &str, body: &Value) -> Value {
    let response = app
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn router(client: kube::Client, excluded: &[&str]) -> Router {
    webhook_router(
        AppState {
            admission: Arc::new(admission(client)),
            metrics: Arc::new(Metrics::default()),
        },
        1 << 20,
        excluded.iter().map(|s| s.to_string()).collect(),
    )
}

/// The chart's pre-delete hook ConfigMap, as the API server sends its creation.
fn hook_review(labelled: bool) -> Value {
    let mut labels = json!({"app.kubernetes.io/component": "uninstall-guard"});
    if labelled {
        labels["restore.cloud.crate.io/uninstall-guard"] = json!("e2e-cratedb-restore");
    }
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "hook-1",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "e2e-cratedb-restore-uninstall-guard", "namespace": "cratedb-restore-system",
            "operation": "CREATE", "userInfo": {"username": "helm-user"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "e2e-cratedb-restore-uninstall-guard",
                                    "namespace": "cratedb-restore-system", "labels": labels},
                       "data": {"namespaces": "dbs,fleet"}},
            "oldObject": null
        }
    })
}

fn restore_job(namespace: &str, cluster: &str, run_id: &str, conditions: Value) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("restore-{cluster}-{run_id}"), "namespace": namespace,
                     "labels": {"app.kubernetes.io/component": "restore-job",
                                "restore.cloud.crate.io/cluster": cluster,
                                "restore.cloud.crate.io/run-id": run_id},
                     "annotations": {"restore.cloud.crate.io/cluster": cluster}},
        "spec": {"template": {"spec": {"containers": [], "restartPolicy": "Never"}}},
        "status": {"conditions": conditions}
    })
}

async fn api_with_jobs(jobs: Vec<Value>) -> kube::Client {
    let jobs: Vec<k8s_openapi::api::batch::v1::Job> = jobs
        .into_iter()
        .map(|j| serde_json::from_value(j).unwrap())
        .collect();
    kube_fake_client::ClientBuilder::new()
        .with_objects(jobs)
        .build()
        .await
        .expect("in-memory API")
}

#[tokio::test]
async fn helm_uninstall_is_refused_while_restore_jobs_run_naming_them() {
    let running = api_with_jobs(vec![
        restore_job("fleet", "orders", "20261201120000-abcdef", json!([])),
        restore_job(
            "dbs",
            "events",
            "20261130120000-000001",
            json!([{"type": "Complete", "status": "True"}]),
        ),
        // Not in a restore namespace of this release.
        restore_job("elsewhere", "x", "20261201120000-000002", json!([])),
    ])
    .await;
    let answer = post(
        &router(running, &[]),
        "/guard-uninstall",
        &hook_review(true),
    )
    .await;
    let response = &answer["response"];
    assert_eq!(response["uid"], "hook-1");
    assert_eq!(response["allowed"], false, "{answer:#}");
    assert_eq!(response["status"]["code"], 409);
    assert_eq!(response["status"]["reason"], "RestoresRunning");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "1 restore(s) still running: CrateDB fleet/orders (run 20261201120000-abcdef, Job restore-orders-20261201120000-abcdef)"
        ) && message.contains("--no-hooks"),
        "{message}"
    );

    // Every restore finished: the uninstall goes on.
    let finished = api_with_jobs(vec![restore_job(
        "fleet",
        "orders",
        "20261201120000-abcdef",
        json!([{"type": "Failed", "status": "True"}]),
    )])
    .await;
    let app = router(finished, &[]);
    let answer = post(&app, "/guard-uninstall", &hook_review(true)).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
    // Any other ConfigMap is none of the guard's business.
    let running = api_with_jobs(vec![restore_job("dbs", "o", "r", json!([]))]).await;
    let answer = post(
        &router(running, &[]),
        "/guard-uninstall",
        &hook_review(false),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
}

#[tokio::test]
async fn reviews_from_an_excluded_namespace_are_allowed_untouched() {
    // An API without the restore Secret: a review that reached the admission logic would be
    // denied for the missing Secret, and the mutating one would stamp a run id.
    let app = router(fake_api(vec![]).await, &["kube-system"]);
    let mut object = cratedb(Some(restore_snapshot(json!({}))), None, None);
    object["metadata"]["namespace"] = json!("kube-system");
    let mut request = review("u-ks", "CREATE", Some(object), None, false);
    request["request"]["namespace"] = json!("kube-system");
    for path in ["/mutate", "/validate"] {
        let answer = post(&app, path, &request).await;
        assert_eq!(
            answer["response"],
            json!({"uid": "u-ks", "allowed": true}),
            "{path}: {answer:#}"
        );
    }
    // The same request elsewhere is looked at.
    request["request"]["namespace"] = json!("dbs");
    request["request"]["object"]["metadata"]["namespace"] = json!("dbs");
    let answer = post(&app, "/validate", &request).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
}
