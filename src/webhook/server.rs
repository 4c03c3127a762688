//! The HTTP side: the admission router (served over TLS), the plain-HTTP health and metrics
//! router, and a TLS accept loop with graceful shutdown.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::metrics::Metrics;
use crate::admission::{Admission, Endpoint, Outcome, encode_review};

/// Large enough for an AdmissionReview carrying two objects at etcd's 1.5 MiB limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A TLS handshake that has not finished by then is dropped (slow or hostile clients).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct AppState {
    pub admission: Arc<Admission>,
    pub metrics: Arc<Metrics>,
}

/// `POST /validate` and `POST /mutate`.
pub fn admission_router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

async fn validate(State(state): State<AppState>, body: Bytes) -> Response {
    review(state, Endpoint::Validate, body).await
}

async fn mutate(State(state): State<AppState>, body: Bytes) -> Response {
    review(state, Endpoint::Mutate, body).await
}

async fn review(state: AppState, endpoint: Endpoint, body: Bytes) -> Response {
    let started = Instant::now();
    let result = state.admission.review(endpoint, &body).await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((review, outcome)) => {
            let reason = match outcome {
                Outcome::Denied(reason) => Some(reason),
                _ => None,
            };
            state
                .metrics
                .observe_review(endpoint.as_str(), outcome.label(), reason, seconds);
            Json(encode_review(&review)).into_response()
        }
        Err(error) => {
            tracing::warn!(endpoint = endpoint.as_str(), %error, "unreadable admission review");
            state
                .metrics
                .observe_review(endpoint.as_str(), "error", None, seconds);
            (StatusCode::BAD_REQUEST, error.to_string()).into_response()
        }
    }
}

/// Liveness, readiness and metrics, on their own plain-HTTP port.
pub fn health_router(ready: Arc<AtomicBool>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.load(Ordering::Acquire);
                async move {
                    if ready {
                        (StatusCode::OK, "ready")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "TLS listener not bound yet",
                        )
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish for up to `grace`.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let acceptor = TlsAcceptor::from(tls);
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer): (_, SocketAddr) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(error) = watcher.watch(conn).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}
