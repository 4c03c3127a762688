//! CrateDB's HTTP endpoint (port 4200): `POST /_sql`, the root document
//! `GET /` that clients probe on connect, and `GET /_sim/statements` for tests
//! that cannot call the Rust API (the simulator running as a Pod).
//!
//! Authentication follows CrateDB with the host-based rules crate-operator
//! deploys: `crate` is trusted from loopback (any or no password), every other
//! request needs `Authorization: Basic` with a password matching `sys.users`.
//! A request without the header is user `crate` (`auth.trust.http_default_user`).

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engine::{Engine, Outcome, Session};
use crate::error::SqlError;
use crate::model::{Frontend, LoggedStatement};
use crate::outcome::ExecOutcome;
use crate::value::Value;

#[derive(Clone)]
struct HttpState {
    engine: Arc<Engine>,
}

fn json_reply(status: StatusCode, body: Json) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A flag in CrateDB's sense: `?types` or `?types=true`.
fn flag(query: Option<&str>, name: &str) -> bool {
    query.unwrap_or_default().split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        k == name && (v.is_empty() || v == "true")
    })
}

fn sql_error(e: &SqlError, error_trace: bool) -> Response {
    let http = e.http();
    json_reply(
        StatusCode::from_u16(http.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        http.body(error_trace),
    )
}

/// CrateDB's answer to a failed authentication: plain text, 401, and the
/// header that makes browsers prompt (`HttpAuthUpstreamHandler.sendUnauthorized`).
fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (
                header::WWW_AUTHENTICATE,
                "Basic realm=\"CrateDB Authenticator\"",
            ),
            (header::CONTENT_TYPE, "text/plain; charset=UTF-8"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}

/// The authenticated user, or the 401 text.
fn authenticate(engine: &Engine, headers: &HeaderMap, peer: SocketAddr) -> Result<String, String> {
    let (user, password) = match headers.get(header::AUTHORIZATION) {
        None => ("crate".to_string(), None),
        Some(value) => {
            let value = value.to_str().unwrap_or_default();
            let Some(encoded) = value.strip_prefix("Basic ") else {
                return Err(
                    "cratedb-sim models only Basic authentication over HTTP (no JWT)".into(),
                );
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| "Invalid Basic authentication header".to_string())?;
            let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
            let user = if user.is_empty() { "crate" } else { user };
            (user.to_string(), Some(password.to_string()))
        }
    };
    if user == "crate" && peer.ip().is_loopback() {
        return Ok(user);
    }
    match password {
        Some(pw) if engine.check_password(&user, &pw) => Ok(user),
        _ => Err(format!(
            "password authentication failed for user \"{user}\""
        )),
    }
}

fn session(user: String, headers: &HeaderMap) -> Session {
    let schema = headers
        .get("Default-Schema")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .unwrap_or("doc")
        .to_string();
    Session {
        frontend: Frontend::Http,
        user,
        schema,
    }
}

/// The request body, un-gzipped when the client compressed it (crate-python
/// does for bodies of 8 KiB and more).
fn request_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, SqlError> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .map_err(|e| {
            SqlError::new(
                "SQLParseException",
                format!("Invalid gzip body: {e}"),
                "42601",
            )
        })?;
    Ok(out)
}

/// A parsed `/_sql` request (CrateDB's `SQLRequestParser`).
struct SqlRequest {
    stmt: String,
    args: Vec<Value>,
    bulk_args: Option<Vec<Vec<Value>>>,
}

fn parse_request(body: &[u8]) -> Result<SqlRequest, SqlError> {
    let parse_err = |detail: &str| {
        SqlError::new(
            "SQLParseException",
            format!(
                "Failed to parse source [{}]: {detail}",
                String::from_utf8_lossy(body)
            ),
            "42601",
        )
    };
    let v: Json = serde_json::from_slice(body).map_err(|e| parse_err(&e.to_string()))?;
    let stmt = match v.get("stmt") {
        Some(Json::String(s)) => s.clone(),
        _ => {
            return Err(SqlError::new(
                "SQLParseException",
                "Field [stmt] was not defined",
                "42601",
            ));
        }
    };
    let args = match v.get("args") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(a)) => a.iter().map(Value::from_json).collect(),
        Some(_) => return Err(parse_err("Field [args] must be an array")),
    };
    let bulk_args = match v.get("bulk_args") {
        None | Some(Json::Null) => None,
        Some(Json::Array(rows)) => Some(
            rows.iter()
                .map(|r| match r {
                    Json::Array(a) => Ok(a.iter().map(Value::from_json).collect()),
                    _ => Err(parse_err("Field [bulk_args] must be an array of arrays")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(parse_err("Field [bulk_args] must be an array of arrays")),
    };
    if !args.is_empty() && bulk_args.as_ref().is_some_and(|b| !b.is_empty()) {
        return Err(SqlError::illegal_argument(
            "request body contains args and bulk_args. It's forbidden to provide both",
        ));
    }
    Ok(SqlRequest {
        stmt,
        args,
        bulk_args,
    })
}

fn duration_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// A successful single-statement answer, shaped like CrateDB's
/// `RestResultSetReceiver` / `RestRowCountReceiver`.
fn result_body(outcome: Outcome, types: bool, started: Instant) -> Result<Json, SqlError> {
    let col_types: Vec<Json> = match &outcome {
        Outcome::Rows(q) => q.fields.iter().map(|(_, t)| t.crate_type_id()).collect(),
        _ => Vec::new(),
    };
    let mut body = match ExecOutcome::from(outcome) {
        ExecOutcome::Error(e) => return Err(e),
        ExecOutcome::Rows { columns, rows, .. } => {
            json!({"cols": columns, "rows": rows, "rowcount": rows.len()})
        }
        // CrateDB writes one empty row for row-count results.
        ExecOutcome::Command { rowcount, .. } => {
            json!({"cols": [], "rows": [[]], "rowcount": rowcount})
        }
    };
    if types {
        body["col_types"] = Json::Array(col_types);
    }
    body["duration"] = json!(duration_ms(started));
    Ok(body)
}

/// `bulk_args`: one execution per argument list; failed items have row count
/// -2 and an `error_message` (`RestBulkRowCountReceiver`).
fn bulk_body(
    engine: &Engine,
    session: &Session,
    stmt: &str,
    bulk: &[Vec<Value>],
    started: Instant,
) -> Result<Json, SqlError> {
    let prepared = match engine.prepare(session, stmt) {
        Ok(p) => p,
        Err(e) => {
            engine.record_failure(session, stmt, &e);
            return Err(e);
        }
    };
    if !bulk.is_empty() && !prepared.fields.is_empty() {
        let e = SqlError::new(
            "UnsupportedOperationException",
            "Bulk operations for statements that return result sets is not supported",
            "0A000",
        );
        engine.record_failure(session, stmt, &e);
        return Err(e);
    }
    let results: Vec<Json> = bulk
        .iter()
        .map(|args| match engine.execute(session, &prepared, args) {
            Outcome::Error(e) => json!({"rowcount": -2, "error_message": e.message}),
            Outcome::Command { rowcount, .. } => json!({"rowcount": rowcount}),
            Outcome::Rows(q) => json!({"rowcount": q.rows.len()}),
        })
        .collect();
    Ok(json!({"cols": [], "results": results, "duration": duration_ms(started)}))
}

async fn sql(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let engine = &state.engine;
    let user = match authenticate(engine, &headers, peer) {
        Ok(u) => u,
        Err(message) => return unauthorized(&message),
    };
    let error_trace = flag(query.as_deref(), "error_trace");
    let types = flag(query.as_deref(), "types");
    let session = session(user, &headers);
    let request = request_body(&headers, &body).and_then(|b| parse_request(&b));
    engine.add_busy(started.elapsed());
    let request = match request {
        Ok(r) => r,
        Err(e) => return sql_error(&e, error_trace),
    };
    let result = match &request.bulk_args {
        Some(bulk) => bulk_body(engine, &session, &request.stmt, bulk, started),
        None => {
            let outcome = engine.execute_sql(&session, &request.stmt, &request.args);
            let encoding = Instant::now();
            let body = result_body(outcome, types, started);
            engine.add_busy(encoding.elapsed());
            body
        }
    };
    match result {
        Ok(body) => json_reply(StatusCode::OK, body),
        Err(e) => sql_error(&e, error_trace),
    }
}

/// The document CrateDB serves at `/` (clients read `version.number` from it).
async fn root(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(message) = authenticate(&state.engine, &headers, peer) {
        return unauthorized(&message);
    }
    let st = state.engine.lock();
    let node = st.nodes.first().map(|n| n.name.clone()).unwrap_or_default();
    json_reply(
        StatusCode::OK,
        json!({
            "ok": true,
            "status": 200,
            "name": node,
            "cluster_name": st.cluster_name,
            "version": {
                "number": st.version_text,
                "build_hash": "cratedb-sim",
                "build_timestamp": "1970-01-01T00:00:00Z",
                "build_snapshot": false,
                "lucene_version": "9.12.1",
            },
        }),
    )
}

/// `GET /_sim/stats`: statements received and the simulator's own time spent on them
/// (parsing, analysis, execution, encoding), e.g. `{"statements": 12, "busy_ns": 3400000,
/// "busy_ms": 3.4}`; lets a benchmark subtract the simulator from what it measured.
pub(crate) async fn stats(State(engine): State<Arc<Engine>>) -> Response {
    let s = engine.stats();
    json_reply(
        StatusCode::OK,
        json!({
            "statements": s.statements,
            "busy_ns": s.busy.as_nanos() as u64,
            "busy_ms": s.busy.as_secs_f64() * 1000.0,
        }),
    )
}

/// `GET /_sim/statements`: the statement log without parameter values (they
/// may be passwords, and this endpoint has no authentication);
/// `?params=true` adds them, like `SimulatorHandle::statements`.
pub(crate) async fn statements(
    State(engine): State<Arc<Engine>>,
    RawQuery(q): RawQuery,
) -> Response {
    let body = {
        let st = engine.lock();
        if flag(q.as_deref(), "params") {
            serde_json::to_value(
                st.statements
                    .iter()
                    .map(LoggedStatement::record)
                    .collect::<Vec<_>>(),
            )
        } else {
            serde_json::to_value(
                st.statements
                    .iter()
                    .map(LoggedStatement::summary)
                    .collect::<Vec<_>>(),
            )
        }
    };
    json_reply(StatusCode::OK, body.unwrap_or(Json::Null))
}

/// Serve CrateDB's HTTP endpoint until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    mut shutdown: watch::Receiver<bool>,
) {
    let inspect = Router::new()
        .route("/_sim/statements", get(statements))
        .route("/_sim/stats", get(stats))
        .with_state(engine.clone());
    let app = Router::new()
        .route("/", get(root))
        .route("/_sql", post(sql))
        .with_state(HttpState { engine })
        .merge(inspect);
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    })
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "HTTP SQL server stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_like_cratedb() {
        assert!(flag(Some("types"), "types"));
        assert!(flag(Some("types=true&error_trace=true"), "error_trace"));
        assert!(!flag(Some("types=false"), "types"));
        assert!(!flag(None, "types"));
        assert!(!flag(Some("typesx"), "types"));
    }

    #[test]
    fn request_parsing() {
        let r = parse_request(br#"{"stmt": "SELECT ?", "args": [1]}"#).unwrap();
        assert_eq!(r.stmt, "SELECT ?");
        assert_eq!(r.args.len(), 1);
        assert!(r.bulk_args.is_none());
        let e = parse_request(br#"{"args": []}"#).err().unwrap();
        assert_eq!(
            e.crate_message(),
            "SQLParseException[Field [stmt] was not defined]"
        );
        let e = parse_request(br#"{"stmt": "x", "args": [1], "bulk_args": [[1]]}"#)
            .err()
            .unwrap();
        assert_eq!(e.http().code, 4000);
        assert!(
            e.crate_message()
                .starts_with("SQLParseException[request body contains args")
        );
        let e = parse_request(b"not json").err().unwrap();
        assert!(e.message.starts_with("Failed to parse source [not json]"));
    }
}
