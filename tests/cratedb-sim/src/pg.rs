//! PostgreSQL wire front-end (pgwire): cleartext password authentication,
//! simple and extended query protocol.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::{Sink, stream};
use pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use pgwire::api::auth::{AuthSource, LoginInfo, Password, ServerParameterProvider};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, METADATA_DATABASE, METADATA_USER, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::engine::{Engine, Outcome, Prepared, Session};
use crate::error::SqlError;
use crate::model::Frontend;
use crate::value::{Cell, ColType, Value};

/// Open connections, so a fault knob can close them all.
#[derive(Default)]
pub struct ConnRegistry {
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Notify>>>,
}

impl ConnRegistry {
    fn register(&self, kill: Arc<Notify>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, kill);
        id
    }
    fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
    /// Close every open connection; returns how many.
    pub fn kill_all(&self) -> usize {
        let conns: Vec<Arc<Notify>> = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, n)| n)
            .collect();
        for n in &conns {
            n.notify_one();
        }
        conns.len()
    }
    /// Number of open connections.
    pub fn count(&self) -> usize {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn sql_error_to_pg(e: &SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        e.sqlstate.clone(),
        e.message.clone(),
    )))
}

fn session_of<C: ClientInfo + ?Sized>(client: &C) -> Session {
    let md = client.metadata();
    Session {
        frontend: if client.is_secure() {
            Frontend::PgWireTls
        } else {
            Frontend::PgWire
        },
        user: md.get(METADATA_USER).cloned().unwrap_or_default(),
        schema: md
            .get(METADATA_DATABASE)
            .filter(|d| !d.is_empty())
            .cloned()
            .unwrap_or_else(|| "doc".to_string()),
    }
}

struct SimAuthSource {
    engine: Arc<Engine>,
}

impl Debug for SimAuthSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimAuthSource")
    }
}

#[async_trait]
impl AuthSource for SimAuthSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        let pw = self
            .engine
            .lock()
            .users
            .get(user)
            .and_then(|u| u.password.clone())
            .unwrap_or_default();
        Ok(Password::new(None, pw.into_bytes()))
    }

    async fn verify_password(
        &self,
        login: &LoginInfo,
        presented: &[u8],
    ) -> PgWireResult<Option<()>> {
        let user = login.user().unwrap_or_default();
        let pw = String::from_utf8_lossy(presented);
        if self.engine.check_password(user, &pw) {
            Ok(None)
        } else {
            // CrateDB: FATAL, SQLSTATE 28000 (invalid_authorization_specification)
            Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_owned(),
                "28000".to_owned(),
                format!("password authentication failed for user \"{user}\""),
            ))))
        }
    }
}

struct CrateParams {
    version: String,
}

impl ServerParameterProvider for CrateParams {
    fn server_parameters<C>(&self, _client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let mut m = HashMap::new();
        m.insert("crate_version".into(), self.version.clone());
        m.insert("server_version".into(), "14.0".into());
        m.insert("server_encoding".into(), "UTF8".into());
        m.insert("client_encoding".into(), "UTF8".into());
        m.insert("datestyle".into(), "ISO".into());
        m.insert("TimeZone".into(), "UTC".into());
        m.insert("integer_datetimes".into(), "on".into());
        m.insert("standard_conforming_strings".into(), "on".into());
        Some(m)
    }
}

/// The statement type stored by the extended protocol.
pub type Stmt = Arc<Prepared>;

struct SimParser {
    engine: Arc<Engine>,
    kill: Arc<Notify>,
}

#[async_trait]
impl QueryParser for SimParser {
    type Statement = Stmt;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Stmt>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = session_of(client);
        if self.engine.should_drop(sql) {
            self.engine.record_dropped(&session, sql);
            self.kill.notify_one();
            std::future::pending::<()>().await;
        }
        match self.engine.prepare(&session, sql) {
            Ok(p) => Ok(Some(Arc::new(p))),
            Err(e) => {
                self.engine.record_failure(&session, sql, &e);
                Err(sql_error_to_pg(&e))
            }
        }
    }

    fn get_parameter_types(&self, stmt: &Stmt) -> PgWireResult<Vec<Type>> {
        Ok(vec![Type::VARCHAR; stmt.param_count])
    }

    fn get_result_schema(
        &self,
        stmt: &Stmt,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(field_infos(&stmt.fields, format))
    }
}

fn field_infos(fields: &[(String, ColType)], format: Option<&Format>) -> Vec<FieldInfo> {
    fields
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            let fmt = format.map(|f| f.format_for(i)).unwrap_or(FieldFormat::Text);
            FieldInfo::new(name.clone(), None, None, ty.pg_type(), fmt)
        })
        .collect()
}

fn outcome_to_response(outcome: Outcome, format: Option<&Format>) -> PgWireResult<Response> {
    match outcome {
        Outcome::Error(e) => Err(sql_error_to_pg(&e)),
        Outcome::Command { command, rowcount } => Ok(Response::Execution(
            Tag::new(command).with_rows(rowcount.max(0) as usize),
        )),
        Outcome::Rows(q) => {
            let schema = Arc::new(field_infos(&q.fields, format));
            let types: Vec<ColType> = q.fields.iter().map(|(_, t)| t.clone()).collect();
            let mut encoder = DataRowEncoder::new(schema.clone());
            let mut rows = Vec::with_capacity(q.rows.len());
            for r in &q.rows {
                for (v, t) in r.iter().zip(types.iter()) {
                    encoder.encode_field(&Cell { value: v, ty: t })?;
                }
                rows.push(Ok(encoder.take_row()));
            }
            let mut resp = QueryResponse::new(schema, stream::iter(rows));
            resp.set_command_tag(q.command);
            Ok(Response::Query(resp))
        }
    }
}

fn decode_param(bytes: Option<&[u8]>, ty: &Type, binary: bool) -> Result<Value, SqlError> {
    let Some(b) = bytes else {
        return Ok(Value::Null);
    };
    let bad =
        || SqlError::illegal_argument(format!("Cannot decode parameter of type {}", ty.name()));
    if !binary {
        return Ok(Value::Text(
            String::from_utf8(b.to_vec()).map_err(|_| bad())?,
        ));
    }
    let arr =
        |n: usize| -> Result<&[u8], SqlError> { if b.len() == n { Ok(b) } else { Err(bad()) } };
    Ok(match *ty {
        Type::INT2 => Value::Int(i16::from_be_bytes(arr(2)?.try_into().map_err(|_| bad())?) as i64),
        Type::INT4 => Value::Int(i32::from_be_bytes(arr(4)?.try_into().map_err(|_| bad())?) as i64),
        Type::INT8 => Value::Int(i64::from_be_bytes(arr(8)?.try_into().map_err(|_| bad())?)),
        Type::FLOAT4 => {
            Value::Float(f32::from_be_bytes(arr(4)?.try_into().map_err(|_| bad())?) as f64)
        }
        Type::FLOAT8 => Value::Float(f64::from_be_bytes(arr(8)?.try_into().map_err(|_| bad())?)),
        Type::BOOL => Value::Bool(arr(1)?[0] != 0),
        Type::JSON | Type::JSONB => {
            let raw = if *ty == Type::JSONB {
                b.get(1..).ok_or_else(bad)?
            } else {
                b
            };
            let j: serde_json::Value = serde_json::from_slice(raw).map_err(|_| bad())?;
            Value::from_json(&j)
        }
        _ => Value::Text(String::from_utf8(b.to_vec()).map_err(|_| bad())?),
    })
}

struct SimQueryHandler {
    engine: Arc<Engine>,
    kill: Arc<Notify>,
    parser: Arc<SimParser>,
}

#[async_trait]
impl SimpleQueryHandler for SimQueryHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client);
        if self.engine.should_drop(query) {
            self.engine.record_dropped(&session, query);
            self.kill.notify_one();
            std::future::pending::<()>().await;
        }
        let prepared = match self.engine.prepare_all(&session, query) {
            Ok(p) => p,
            Err(e) => {
                self.engine.record_failure(&session, query, &e);
                return Err(sql_error_to_pg(&e));
            }
        };
        let mut out = Vec::new();
        for p in prepared {
            let outcome = self.engine.execute(&session, &p, &[]);
            match outcome_to_response(outcome, None) {
                Ok(r) => out.push(r),
                Err(PgWireError::UserError(info)) => {
                    out.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ExtendedQueryHandler for SimQueryHandler {
    type Statement = Stmt;
    type QueryParser = SimParser;

    fn query_parser(&self) -> Arc<SimParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Stmt>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client);
        let stored: &StoredStatement<Stmt> = &portal.statement;
        let prepared = &stored.statement;
        if self.engine.should_drop(&prepared.text) {
            self.engine.record_dropped(&session, &prepared.text);
            self.kill.notify_one();
            std::future::pending::<()>().await;
        }
        let mut params = Vec::with_capacity(portal.parameters.len());
        for (i, p) in portal.parameters.iter().enumerate() {
            let ty = stored
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or(Type::VARCHAR);
            match decode_param(p.as_deref(), &ty, portal.parameter_format.is_binary(i)) {
                Ok(v) => params.push(v),
                Err(e) => return Err(sql_error_to_pg(&e)),
            }
        }
        let outcome = self.engine.execute(&session, prepared, &params);
        outcome_to_response(outcome, Some(&portal.result_column_format))
    }
}

struct ConnHandlers {
    startup: Arc<CleartextPasswordAuthStartupHandler<SimAuthSource, CrateParams>>,
    query: Arc<SimQueryHandler>,
}

impl PgWireServerHandlers for ConnHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.query.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.query.clone()
    }
    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }
}

/// Accept PostgreSQL connections until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    registry: Arc<ConnRegistry>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (socket, _) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let kill = Arc::new(Notify::new());
        let version = engine.lock().version_text.clone();
        let parser = Arc::new(SimParser {
            engine: engine.clone(),
            kill: kill.clone(),
        });
        let handlers = ConnHandlers {
            startup: Arc::new(CleartextPasswordAuthStartupHandler::new(
                SimAuthSource {
                    engine: engine.clone(),
                },
                CrateParams { version },
            )),
            query: Arc::new(SimQueryHandler {
                engine: engine.clone(),
                kill: kill.clone(),
                parser,
            }),
        };
        let registry = registry.clone();
        let mut shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            // A duplicate of the socket lets a fault knob close it with RST
            // (SO_LINGER 0) like a reset connection; normal closes stay graceful.
            let dup = socket.into_std().and_then(|std_sock| {
                let dup = std_sock.try_clone()?;
                Ok((TcpStream::from_std(std_sock)?, dup))
            });
            let (socket, dup) = match dup {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot set up pg connection");
                    return;
                }
            };
            let id = registry.register(kill.clone());
            let killed = tokio::select! {
                r = pgwire::tokio::process_socket(socket, tls, handlers) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "pg connection ended with error");
                    }
                    false
                }
                _ = kill.notified() => {
                    tracing::info!("pg connection dropped by fault knob");
                    true
                }
                _ = shutdown.changed() => false,
            };
            if killed {
                let _ = socket2::SockRef::from(&dup).set_linger(Some(std::time::Duration::ZERO));
            }
            drop(dup);
            registry.remove(id);
        });
    }
}
