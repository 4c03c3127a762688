//! The HTTP side: the admission router (served over TLS), the plain-HTTP health and metrics
//! router, and a TLS accept loop that drains its clients before it stops (see [`Drain`]).

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderValue, Request, StatusCode, Version, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use rustls::ServerConfig;
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

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
    webhook_router(state, max_body_bytes, Vec::new())
}

/// The routes with what the real server adds: reviews of objects in `excluded_namespaces` are
/// allowed untouched (see [`super::scope`]), and `POST /guard-uninstall` answers the chart's
/// pre-delete hook (see [`super::uninstall_guard`]).
pub fn webhook_router(
    state: AppState,
    max_body_bytes: usize,
    excluded_namespaces: Vec<String>,
) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/guard-uninstall", post(guard_uninstall))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(Routed {
            app: state,
            excluded: excluded_namespaces.into(),
        })
}

#[derive(Clone)]
struct Routed {
    app: AppState,
    excluded: Arc<[String]>,
}

async fn validate(State(state): State<Routed>, body: Bytes) -> Response {
    review(state, Endpoint::Validate, body).await
}

async fn mutate(State(state): State<Routed>, body: Bytes) -> Response {
    review(state, Endpoint::Mutate, body).await
}

async fn guard_uninstall(State(state): State<Routed>, body: Bytes) -> Response {
    let started = Instant::now();
    let result = super::uninstall_guard::review(&state.app.admission.client, &body).await;
    answer(&state.app, "guard-uninstall", started, result)
}

async fn review(state: Routed, endpoint: Endpoint, body: Bytes) -> Response {
    let started = Instant::now();
    if let Some(allowed) = super::scope::excluded_answer(&body, &state.excluded) {
        tracing::debug!(
            endpoint = endpoint.as_str(),
            "review from an excluded namespace: allowed untouched"
        );
        return answer(
            &state.app,
            endpoint.as_str(),
            started,
            Ok((allowed, Outcome::Allowed)),
        );
    }
    let result = state
        .app
        .admission
        .review(endpoint, &body)
        .await
        .map(|(review, outcome)| (encode_review(&review), outcome));
    answer(&state.app, endpoint.as_str(), started, result)
}

fn answer(
    state: &AppState,
    endpoint: &str,
    started: Instant,
    result: Result<(serde_json::Value, Outcome), crate::admission::ReviewError>,
) -> Response {
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((review, outcome)) => {
            let reason = match outcome {
                Outcome::Denied(reason) => Some(reason),
                _ => None,
            };
            state
                .metrics
                .observe_review(endpoint, outcome.label(), reason, seconds);
            Json(review).into_response()
        }
        Err(error) => {
            tracing::warn!(endpoint, %error, "unreadable admission review");
            state
                .metrics
                .observe_review(endpoint, "error", None, seconds);
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
                            "not ready: the TLS listener is not bound yet, or the server is shutting down",
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
/// finish for up to `grace`: [`serve_tls_draining`] with draining and the end of accepting at
/// the same moment (no endpoint to wait for, as in local use).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let (draining_tx, draining) = watch::channel(false);
    let stop_accepting = async move {
        shutdown.await;
        let _ = draining_tx.send(true);
    };
    serve_tls_draining(
        listener,
        tls,
        app,
        Drain {
            draining,
            stop_accepting,
            grace,
            idle_close: Duration::ZERO,
        },
    )
    .await;
}

/// How a server that is shutting down lets go of its clients.
///
/// The API server calls admission webhooks over HTTP/1.1 and keeps connections alive in one pool
/// per Service, so it goes on sending reviews over a connection to a terminating Pod after the
/// Pod's endpoint is gone. Closing such a connection while it is idle races with the next
/// review written into it (`write: broken pipe`, a failed `kubectl apply`). So, once `draining`
/// turns true:
/// * every HTTP/1 response carries `Connection: close`: the client takes its answer and opens a
///   new connection (to a Pod that stays) for the next review;
/// * an HTTP/1 connection idle for `idle_close` is closed: by then its client has moved on to
///   other connections (Go's pool hands out the most recently used one first);
/// * an HTTP/2 connection gets a GOAWAY, the protocol's own clean close;
/// * new connections are still accepted (and answered as above) until `stop_accepting`
///   resolves, which the caller lets happen once the Pod's endpoint is gone;
/// * then the server waits up to `grace` for the remaining connections to end.
pub struct Drain<S> {
    pub draining: watch::Receiver<bool>,
    pub stop_accepting: S,
    pub grace: Duration,
    pub idle_close: Duration,
}

/// When a connection last finished a request, and how many it is working on.
struct Activity {
    since: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `since` of the last response (or of the accept).
    last_done_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        }
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        self.last_done_ms
            .store(self.since.elapsed().as_millis() as u64, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// How long the connection has had nothing to do, or None while it answers a request.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
        Some(self.since.elapsed().saturating_sub(last))
    }
}

/// Resolves when a draining server should close this connection: at once for HTTP/2 (GOAWAY
/// lets in-flight streams finish), for HTTP/1 once it has been idle for `idle_close`.
async fn close_when_drained(
    mut draining: watch::Receiver<bool>,
    activity: &Activity,
    http2: bool,
    idle_close: Duration,
) {
    // A dropped sender means the server is gone: close as well.
    let _ = draining.wait_for(|d| *d).await;
    if http2 {
        return;
    }
    loop {
        match activity.idle_for() {
            Some(idle) if idle >= idle_close => return,
            Some(idle) => tokio::time::sleep(idle_close - idle).await,
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// [`serve_tls`] with a drain: see [`Drain`].
pub async fn serve_tls_draining<S: Future<Output = ()>>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    drain: Drain<S>,
) {
    let Drain {
        draining,
        stop_accepting,
        grace,
        idle_close,
    } = drain;
    let acceptor = TlsAcceptor::from(tls);
    let builder = auto::Builder::new(TokioExecutor::new());
    // Every connection task holds a sender; all dropped = all connections ended.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    tokio::pin!(stop_accepting);
    loop {
        let (tcp, peer): (_, SocketAddr) = tokio::select! {
            _ = &mut stop_accepting => break,
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
        let app = app.clone();
        let draining = draining.clone();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let _open = open;
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
            let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let activity = Arc::new(Activity::new());
            let service = {
                let activity = activity.clone();
                let draining = draining.clone();
                hyper::service::service_fn(move |request: Request<Incoming>| {
                    let app = app.clone();
                    let activity = activity.clone();
                    let draining = draining.clone();
                    async move {
                        activity.begin();
                        let http1 = request.version() < Version::HTTP_2;
                        let mut response = match app.oneshot(request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        };
                        if http1 && *draining.borrow() {
                            response
                                .headers_mut()
                                .insert(header::CONNECTION, HeaderValue::from_static("close"));
                        }
                        activity.end();
                        Ok::<_, Infallible>(response)
                    }
                })
            };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = close_when_drained(draining, &activity, http2, idle_close) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(open_tx);
    tracing::info!("no longer accepting connections; waiting for the open ones to end");
    tokio::select! {
        _ = open_rx.recv() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}
