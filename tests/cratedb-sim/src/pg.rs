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
use postgres_types::Kind;
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
        Ok((0..stmt.param_count)
            .map(|i| param_type(&[], stmt, i))
            .collect())
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

/// The wire response, with the time spent encoding it counted as the simulator's.
fn respond(engine: &Engine, outcome: Outcome, format: Option<&Format>) -> PgWireResult<Response> {
    let started = std::time::Instant::now();
    let r = outcome_to_response(outcome, format);
    engine.add_busy(started.elapsed());
    r
}

fn outcome_to_response(outcome: Outcome, format: Option<&Format>) -> PgWireResult<Response> {
    match outcome {
        Outcome::Error(e) => Err(sql_error_to_pg(&e)),
        // CrateDB's tag carries its row count as is: `DELETE -1` when it is unknown
        // (a partition delete).
        Outcome::Command { command, rowcount } if rowcount < 0 => Ok(Response::Execution(
            Tag::new(&format!("{command} {rowcount}")),
        )),
        Outcome::Command { command, rowcount } => Ok(Response::Execution(
            Tag::new(command).with_rows(rowcount as usize),
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

/// The type parameter `i` is read as: what the client declared at Parse, else what the statement
/// implies (`x = ANY($1)`: an array; the type [`SimParser`] describes), else `varchar`.
fn param_type(declared: &[Option<Type>], stmt: &Prepared, i: usize) -> Type {
    declared
        .get(i)
        .cloned()
        .flatten()
        .or_else(|| stmt.param_type(i).map(ColType::pg_type))
        .unwrap_or(Type::VARCHAR)
}

/// Reads the binary array format (`array_recv`) field by field.
struct ArrayReader<'a> {
    rest: &'a [u8],
}

impl<'a> ArrayReader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

/// `flat` (row-major) as nested arrays of the dimensions `dims`.
fn nest(flat: Vec<Value>, dims: &[usize]) -> Value {
    if dims.len() <= 1 {
        return Value::Array(flat);
    }
    let inner: usize = dims[1..].iter().product();
    let mut out = Vec::with_capacity(dims[0]);
    let mut it = flat.into_iter();
    for _ in 0..dims[0] {
        let chunk: Vec<Value> = it.by_ref().take(inner).collect();
        out.push(nest(chunk, &dims[1..]));
    }
    Value::Array(out)
}

/// An array in PostgreSQL's binary format: dimensions, element OID, then each element (length
/// -1 for NULL) in the element type's binary format.
fn decode_binary_array(b: &[u8], elem: &Type, ty: &Type) -> Result<Value, SqlError> {
    let bad = || {
        SqlError::illegal_argument(format!(
            "Cannot decode parameter of type {}: malformed binary array",
            ty.name()
        ))
    };
    let mut r = ArrayReader { rest: b };
    let ndim = r.i32().ok_or_else(bad)?;
    let _has_nulls = r.i32().ok_or_else(bad)?;
    let oid = u32::from_be_bytes(r.take(4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let elem_ty = Type::from_oid(oid).unwrap_or_else(|| elem.clone());
    if !(0..=6).contains(&ndim) {
        return Err(bad());
    }
    let mut dims = Vec::new();
    for _ in 0..ndim {
        let len = usize::try_from(r.i32().ok_or_else(bad)?).map_err(|_| bad())?;
        let _lower_bound = r.i32().ok_or_else(bad)?;
        dims.push(len);
    }
    let total: usize = if dims.is_empty() {
        0
    } else {
        dims.iter().product()
    };
    if total > r.rest.len() / 4 {
        return Err(bad());
    }
    let mut flat = Vec::with_capacity(total);
    for _ in 0..total {
        let len = r.i32().ok_or_else(bad)?;
        if len < 0 {
            flat.push(Value::Null);
        } else {
            let bytes = r.take(len as usize).ok_or_else(bad)?;
            flat.push(decode_param(Some(bytes), &elem_ty, true)?);
        }
    }
    if !r.rest.is_empty() {
        return Err(bad());
    }
    Ok(nest(flat, &dims))
}

/// An array literal in PostgreSQL's text format (`array_in`): `{a,"b c",NULL,{1,2}}`, elements
/// quoted with `"` (backslash escapes) or bare (trimmed; `NULL` in any case is NULL). Elements
/// stay text, like scalar parameters in the text format.
fn parse_text_array(s: &str) -> Option<Value> {
    fn list(chars: &[char], i: &mut usize) -> Option<Value> {
        if chars.get(*i) != Some(&'{') {
            return None;
        }
        *i += 1;
        let mut items = Vec::new();
        let skip_ws = |i: &mut usize| {
            while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
                *i += 1;
            }
        };
        skip_ws(i);
        if chars.get(*i) == Some(&'}') {
            *i += 1;
            return Some(Value::Array(items));
        }
        loop {
            skip_ws(i);
            match chars.get(*i)? {
                '{' => items.push(list(chars, i)?),
                '"' => {
                    *i += 1;
                    let mut text = String::new();
                    loop {
                        match chars.get(*i)? {
                            '"' => break,
                            '\\' => {
                                *i += 1;
                                text.push(*chars.get(*i)?);
                            }
                            c => text.push(*c),
                        }
                        *i += 1;
                    }
                    *i += 1;
                    items.push(Value::Text(text));
                }
                _ => {
                    let mut text = String::new();
                    let mut escaped = false;
                    while let Some(c) = chars.get(*i) {
                        match c {
                            ',' | '}' => break,
                            '\\' => {
                                *i += 1;
                                text.push(*chars.get(*i)?);
                                escaped = true;
                            }
                            c => text.push(*c),
                        }
                        *i += 1;
                    }
                    let text = text.trim().to_string();
                    if text.is_empty() {
                        return None;
                    }
                    items.push(if !escaped && text.eq_ignore_ascii_case("null") {
                        Value::Null
                    } else {
                        Value::Text(text)
                    });
                }
            }
            skip_ws(i);
            match chars.get(*i)? {
                ',' => *i += 1,
                '}' => {
                    *i += 1;
                    return Some(Value::Array(items));
                }
                _ => return None,
            }
        }
    }
    let chars: Vec<char> = s.trim().chars().collect();
    let mut i = 0;
    let v = list(&chars, &mut i)?;
    (i == chars.len()).then_some(v)
}

fn decode_param(bytes: Option<&[u8]>, ty: &Type, binary: bool) -> Result<Value, SqlError> {
    let Some(b) = bytes else {
        return Ok(Value::Null);
    };
    let bad =
        || SqlError::illegal_argument(format!("Cannot decode parameter of type {}", ty.name()));
    if let Kind::Array(elem) = ty.kind() {
        if binary {
            return decode_binary_array(b, elem, ty);
        }
        let text = std::str::from_utf8(b).map_err(|_| bad())?;
        return parse_text_array(text).ok_or_else(|| {
            SqlError::illegal_argument(format!(
                "Cannot decode parameter of type {}: malformed array literal: \"{text}\"",
                ty.name()
            ))
        });
    }
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
            match respond(&self.engine, outcome, None) {
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
        let decoding = std::time::Instant::now();
        let mut params = Vec::with_capacity(portal.parameters.len());
        for (i, p) in portal.parameters.iter().enumerate() {
            let ty = param_type(&stored.parameter_types, prepared, i);
            match decode_param(p.as_deref(), &ty, portal.parameter_format.is_binary(i)) {
                Ok(v) => params.push(v),
                Err(e) => return Err(sql_error_to_pg(&e)),
            }
        }
        self.engine.add_busy(decoding.elapsed());
        let outcome = self.engine.execute(&session, prepared, &params);
        respond(&self.engine, outcome, Some(&portal.result_column_format))
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use postgres_types::ToSql;

    fn binary<T: ToSql>(v: T, ty: &Type) -> Vec<u8> {
        let mut out = BytesMut::new();
        v.to_sql(ty, &mut out).unwrap();
        out.to_vec()
    }

    fn texts(items: &[Option<&str>]) -> Value {
        Value::Array(items.iter().map(|s| Value::opt_text(*s)).collect())
    }

    #[test]
    fn binary_arrays_as_tokio_postgres_encodes_them() {
        let b = binary(vec!["doc.t1", "gc.t 2"], &Type::TEXT_ARRAY);
        assert_eq!(
            decode_param(Some(&b), &Type::TEXT_ARRAY, true).unwrap(),
            texts(&[Some("doc.t1"), Some("gc.t 2")])
        );
        let b = binary(vec![Some("a"), None], &Type::VARCHAR_ARRAY);
        assert_eq!(
            decode_param(Some(&b), &Type::VARCHAR_ARRAY, true).unwrap(),
            texts(&[Some("a"), None])
        );
        let b = binary(Vec::<&str>::new(), &Type::TEXT_ARRAY);
        assert_eq!(
            decode_param(Some(&b), &Type::TEXT_ARRAY, true).unwrap(),
            Value::Array(vec![])
        );
        let b = binary(vec![1i64, -2], &Type::INT8_ARRAY);
        assert_eq!(
            decode_param(Some(&b), &Type::INT8_ARRAY, true).unwrap(),
            Value::Array(vec![Value::Int(1), Value::Int(-2)])
        );
        assert_eq!(
            decode_param(None, &Type::TEXT_ARRAY, true).unwrap(),
            Value::Null
        );
        // a 2x2 array, written by hand: ndim, flags, oid, (len, lbound) x 2, 4 int4 elements
        let mut raw = Vec::new();
        for x in [2i32, 0, 23, 2, 1, 2, 1] {
            raw.extend_from_slice(&x.to_be_bytes());
        }
        for x in [1i32, 2, 3, 4] {
            raw.extend_from_slice(&4i32.to_be_bytes());
            raw.extend_from_slice(&x.to_be_bytes());
        }
        assert_eq!(
            decode_param(Some(&raw), &Type::INT4_ARRAY, true).unwrap(),
            Value::Array(vec![
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
                Value::Array(vec![Value::Int(3), Value::Int(4)]),
            ])
        );
        let e = decode_param(Some(&raw[..raw.len() - 1]), &Type::INT4_ARRAY, true).unwrap_err();
        assert!(e.message.contains("malformed binary array"), "{e:?}");
    }

    #[test]
    fn text_array_literals() {
        let t = |s: &str| decode_param(Some(s.as_bytes()), &Type::TEXT_ARRAY, false);
        assert_eq!(
            t(r#"{"doc.t1","gc.t2"}"#).unwrap(),
            texts(&[Some("doc.t1"), Some("gc.t2")])
        );
        assert_eq!(
            t(r#"{ a , "b \"c\"" ,NULL,"NULL", x\,y }"#).unwrap(),
            texts(&[Some("a"), Some("b \"c\""), None, Some("NULL"), Some("x,y")])
        );
        assert_eq!(t("{}").unwrap(), Value::Array(vec![]));
        assert_eq!(
            t("{{a},{b}}").unwrap(),
            Value::Array(vec![texts(&[Some("a")]), texts(&[Some("b")])])
        );
        for bad in ["a,b", "{a", "{a,}", "{a}x", r#"{"a}"#] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }
}
