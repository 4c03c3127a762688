//! The crate-control sidecar HTTP endpoint (`POST /exec`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engine::{Engine, Session};
use crate::model::Frontend;
use crate::outcome::ExecOutcome;
use crate::value::Value;

#[derive(Clone)]
struct SidecarState {
    engine: Arc<Engine>,
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn exec(State(state): State<SidecarState>, headers: HeaderMap, body: Bytes) -> Response {
    {
        let mut st = state.engine.lock();
        if st.sidecar_failures > 0 {
            st.sidecar_failures -= 1;
            let status = StatusCode::from_u16(st.sidecar_failure_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return reply(
                status,
                json!({"detail": status.canonical_reason().unwrap_or("failure")}),
            );
        }
        let token_ok = headers
            .get("token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t == st.sidecar_token);
        if !token_ok {
            return reply(StatusCode::UNAUTHORIZED, json!({"detail": "Invalid token"}));
        }
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"detail": format!("Invalid JSON body: {e}")}),
            );
        }
    };
    let Some(stmt) = parsed.get("stmt").and_then(|s| s.as_str()) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"detail": "Field 'stmt' is required"}),
        );
    };
    let args: Vec<Value> = match parsed.get("args") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(a)) => a.iter().map(Value::from_json).collect(),
        Some(_) => {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"detail": "Field 'args' must be a list"}),
            );
        }
    };
    let session = Session::superuser(Frontend::Sidecar);
    let outcome: ExecOutcome = state.engine.execute_sql(&session, stmt, &args).into();
    let (status, body) = outcome.to_sidecar_json();
    reply(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

/// Serve the sidecar until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    mut shutdown: watch::Receiver<bool>,
) {
    let inspect = Router::new()
        .route("/_sim/statements", get(crate::http_sql::statements))
        .route("/_sim/stats", get(crate::http_sql::stats))
        .with_state(engine.clone());
    let app = Router::new()
        .route("/exec", post(exec))
        .with_state(SidecarState { engine })
        .merge(inspect);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "sidecar server stopped");
    }
}
