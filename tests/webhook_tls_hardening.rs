//! TLS and lifecycle hardening of the admission server: old protocol versions are refused,
//! certificate rotation under load loses no request, and shutdown drains in-flight reviews.

mod common;

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::Request, middleware::Next, response::Response};
use common::{
    https::{TlsServer, client_config, https_post},
    *,
};
use cratedb_restore::webhook::{
    metrics::Metrics,
    server::{AppState, admission_router},
    tls::{self, CertFiles, CertStore, PemPair},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
};

async fn router() -> Router {
    let state = AppState {
        admission: Arc::new(admission(fake_api(vec![restore_secret()]).await)),
        metrics: Arc::new(Metrics::default()),
    };
    admission_router(state, 1 << 20)
}

/// `POST /validate` of `body` on a fresh connection; the HTTP status.
async fn post(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    body: &[u8],
) -> Result<u16, String> {
    https_post(addr, config, "/validate", body)
        .await
        .map(|answer| answer.status)
}

fn reset_review() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/admission/validate-reset.json"
    ))
    .unwrap()
}

/// A TLS 1.1 ClientHello (legacy version 0x0302, no supported_versions extension). Its cipher
/// suites include ones the server has, so the version is the only reason to refuse it.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    // ECDHE-RSA/ECDSA-AES128-GCM-SHA256, AES128-SHA, AES256-SHA
    body.extend_from_slice(&[0x00, 0x08, 0xc0, 0x2f, 0xc0, 0x2b, 0x00, 0x2f, 0x00, 0x35]);
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    // signature_algorithms (ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256): without
    // it rustls refuses the hello before it looks at the version.
    let sig_algs = [
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
    ];
    body.extend_from_slice(&[0x00, sig_algs.len() as u8]);
    body.extend_from_slice(&sig_algs);
    let mut handshake = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![
        0x16,
        0x03,
        0x01,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn a_tls_1_1_client_is_refused_with_a_protocol_version_alert() {
    let pair = tls::self_signed(&["127.0.0.1".into()]).unwrap();
    let server = TlsServer::start(CertStore::from_pem(&pair).unwrap(), router().await).await;
    let addr = server.addr;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(!answer.is_empty(), "the server answers with an alert");
    assert_eq!(
        answer[0], 0x15,
        "an alert record, not a ServerHello: {answer:02x?}"
    );
    assert_eq!(
        answer[answer.len() - 1],
        70,
        "alert protocol_version: {answer:02x?}"
    );
    // And a TLS 1.2/1.3 client is served.
    assert_eq!(
        post(addr, client_config(&[&pair.cert_pem]), &reset_review()).await,
        Ok(200)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_loses_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let files = CertFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let pairs: Vec<PemPair> = (0..6)
        .map(|_| tls::self_signed(&["127.0.0.1".into()]).unwrap())
        .collect();
    let write = |pair: &PemPair| {
        // Written beside and renamed into place, as an atomic Secret update is.
        let tmp = dir.path().join("next");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("tls.crt"), &pair.cert_pem).unwrap();
        std::fs::write(tmp.join("tls.key"), &pair.key_pem).unwrap();
        std::fs::rename(tmp.join("tls.key"), &files.key).unwrap();
        std::fs::rename(tmp.join("tls.crt"), &files.cert).unwrap();
    };
    write(&pairs[0]);
    let store = CertStore::from_files(files.clone()).unwrap();
    let (stop_watch, watch_stopped) = oneshot::channel::<()>();
    tokio::spawn(tls::watch_files(
        store.clone(),
        Duration::from_millis(20),
        |_| {},
        async {
            let _ = watch_stopped.await;
        },
    ));
    let server = TlsServer::start(store, router().await).await;
    let addr = server.addr;
    let trusted = client_config(
        &pairs
            .iter()
            .map(|p| p.cert_pem.as_str())
            .collect::<Vec<_>>(),
    );

    let load = {
        let trusted = trusted.clone();
        tokio::spawn(async move {
            let body = reset_review();
            let mut results = Vec::new();
            for _ in 0..150 {
                let batch: Vec<_> = (0..4).map(|_| post(addr, trusted.clone(), &body)).collect();
                for r in futures::future::join_all(batch).await {
                    results.push(r);
                }
            }
            results
        })
    };
    for pair in &pairs[1..] {
        tokio::time::sleep(Duration::from_millis(60)).await;
        write(pair);
    }
    let results = load.await.unwrap();
    let failed: Vec<_> = results.iter().filter(|r| **r != Ok(200)).collect();
    assert_eq!(results.len(), 600);
    assert!(
        failed.is_empty(),
        "{} of 600 requests failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    stop_watch.send(()).unwrap();
    server.shutdown().await;
}

async fn slow(request: Request, next: Next) -> Response {
    tokio::time::sleep(Duration::from_millis(500)).await;
    next.run(request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_reviews_and_refuses_new_ones() {
    let pair = tls::self_signed(&["127.0.0.1".into()]).unwrap();
    let app = router().await.layer(axum::middleware::from_fn(slow));
    let mut server = TlsServer::start(CertStore::from_pem(&pair).unwrap(), app).await;
    let addr = server.addr;
    let config = client_config(&[&pair.cert_pem]);
    let in_flight = tokio::spawn({
        let config = config.clone();
        async move { post(addr, config, &reset_review()).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.begin_shutdown();
    assert_eq!(
        in_flight.await.unwrap(),
        Ok(200),
        "the in-flight review is answered"
    );
    server.shutdown().await;
    assert!(
        post(addr, config, &reset_review()).await.is_err(),
        "no new connections after shutdown"
    );
}
