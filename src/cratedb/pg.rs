//! The PostgreSQL wire connection as user `system` (SPEC A9): `crate-discovery-{name}.{namespace}`
//! port 5432, default schema `doc`. One connection is kept and re-made when it breaks. Every
//! value is a bound parameter declared as text, so CrateDB coerces it and nothing is inlined.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row, types::Type};

use super::{SqlError, SqlParam, SqlResult};

#[derive(Clone)]
pub struct PgEndpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: SecretString,
    /// CrateDB uses the `database` startup parameter as the session's default schema.
    pub schema: String,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    pub ssl_mode: super::tls::SslMode,
    /// TLS client configuration for `prefer` and `require`.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for PgEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("schema", &self.schema)
            .field("ssl_mode", &self.ssl_mode)
            .finish_non_exhaustive()
    }
}

pub struct Pg {
    endpoint: PgEndpoint,
    client: Mutex<Option<Client>>,
}

impl Pg {
    pub fn new(endpoint: PgEndpoint) -> Self {
        Self {
            endpoint,
            client: Mutex::new(None),
        }
    }

    pub fn target(&self) -> String {
        format!("{}:{}", self.endpoint.host, self.endpoint.port)
    }

    async fn connect(&self) -> Result<Client, SqlError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.endpoint.host)
            .port(self.endpoint.port)
            .user(&self.endpoint.user)
            .password(self.endpoint.password.expose_secret())
            .dbname(&self.endpoint.schema)
            .application_name("cratedb-restore-job")
            .connect_timeout(self.endpoint.connect_timeout)
            .ssl_mode(self.endpoint.ssl_mode.postgres());
        let closed = |result: Result<(), tokio_postgres::Error>| {
            if let Err(error) = result {
                tracing::debug!(%error, "CrateDB connection closed");
            }
        };
        match (&self.endpoint.tls, self.endpoint.ssl_mode) {
            (Some(tls), mode) if mode != super::tls::SslMode::Disable => {
                let connector = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
                let (client, connection) = config
                    .connect(connector)
                    .await
                    .map_err(|e| self.classify(e))?;
                tokio::spawn(async move { closed(connection.await) });
                Ok(client)
            }
            _ => {
                let (client, connection) =
                    config.connect(NoTls).await.map_err(|e| self.classify(e))?;
                tokio::spawn(async move { closed(connection.await) });
                Ok(client)
            }
        }
    }

    /// Runs one statement with text parameters and returns its rows as JSON.
    pub async fn query(&self, sql: &str, params: &[&str]) -> Result<SqlResult, SqlError> {
        let params: Vec<SqlParam> = params.iter().map(|p| SqlParam::Text(p)).collect();
        self.query_params(sql, &params, self.endpoint.statement_timeout)
            .await
    }

    pub async fn query_with_timeout(
        &self,
        sql: &str,
        params: &[&str],
        timeout: Duration,
    ) -> Result<SqlResult, SqlError> {
        let params: Vec<SqlParam> = params.iter().map(|p| SqlParam::Text(p)).collect();
        self.query_params(sql, &params, timeout).await
    }

    /// A statement with typed parameters (text arrays among them).
    pub async fn query_typed(
        &self,
        sql: &str,
        params: &[SqlParam<'_>],
    ) -> Result<SqlResult, SqlError> {
        self.query_params(sql, params, self.endpoint.statement_timeout)
            .await
    }

    pub async fn query_params(
        &self,
        sql: &str,
        params: &[SqlParam<'_>],
        timeout: Duration,
    ) -> Result<SqlResult, SqlError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect().await?);
        }
        let client = guard.as_ref().expect("connected above");
        let run = async {
            let types: Vec<Type> = params
                .iter()
                .map(|p| match p {
                    SqlParam::Text(_) => Type::TEXT,
                    SqlParam::TextArray(_) => Type::TEXT_ARRAY,
                })
                .collect();
            let statement = client.prepare_typed(sql, &types).await?;
            let values: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| match p {
                    SqlParam::Text(text) => text as &(dyn tokio_postgres::types::ToSql + Sync),
                    SqlParam::TextArray(items) => {
                        items as &(dyn tokio_postgres::types::ToSql + Sync)
                    }
                })
                .collect();
            if statement.columns().is_empty() {
                let affected = client.execute(&statement, &values).await?;
                Ok::<_, tokio_postgres::Error>((Vec::new(), Vec::new(), Some(affected)))
            } else {
                let rows = client.query(&statement, &values).await?;
                let columns = statement
                    .columns()
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect();
                Ok((columns, rows, None))
            }
        };
        let outcome = tokio::time::timeout(timeout, run).await;
        let (columns, rows, affected) = match outcome {
            Err(_) => {
                // The connection may be stuck mid-statement: start afresh next time.
                *guard = None;
                return Err(SqlError::Timeout {
                    seconds: timeout.as_secs(),
                });
            }
            Ok(Err(e)) => {
                let error = self.classify(e);
                if error.is_transient() {
                    *guard = None;
                }
                return Err(error);
            }
            Ok(Ok(result)) => result,
        };
        let rows: Vec<Vec<Value>> = rows.iter().map(row_values).collect::<Result<_, _>>()?;
        Ok(SqlResult {
            rowcount: affected.or(Some(rows.len() as u64)),
            columns,
            rows,
        })
    }

    fn classify(&self, error: tokio_postgres::Error) -> SqlError {
        if let Some(db) = error.as_db_error() {
            let code = db.code().code().to_string();
            // 28P01 invalid_password, 28000 invalid_authorization_specification
            if code.starts_with("28") {
                return SqlError::Auth {
                    user: self.endpoint.user.clone(),
                    message: db.message().to_string(),
                };
            }
            return SqlError::Sql {
                code,
                message: db.message().to_string(),
            };
        }
        // tokio-postgres keeps the cause (refused, reset, TLS) in the source chain.
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        SqlError::Connection {
            target: self.target(),
            detail,
        }
    }
}

fn row_values(row: &Row) -> Result<Vec<Value>, SqlError> {
    (0..row.len())
        .map(|i| cell(row, i))
        .collect::<Result<Vec<_>, _>>()
}

/// One column as JSON: `Option<T>` read with the Rust type that matches the column's type.
fn scalar<'a, T>(row: &'a Row, i: usize) -> Result<Option<Value>, tokio_postgres::Error>
where
    T: tokio_postgres::types::FromSql<'a> + Into<Value>,
{
    Ok(row.try_get::<_, Option<T>>(i)?.map(Into::into))
}

/// An array column as a JSON array, NULL elements kept.
fn array<'a, T>(row: &'a Row, i: usize) -> Result<Option<Value>, tokio_postgres::Error>
where
    T: tokio_postgres::types::FromSql<'a> + Into<Value>,
{
    Ok(row.try_get::<_, Option<Vec<Option<T>>>>(i)?.map(|items| {
        Value::Array(
            items
                .into_iter()
                .map(|x| x.map_or(Value::Null, Into::into))
                .collect(),
        )
    }))
}

fn cell(row: &Row, i: usize) -> Result<Value, SqlError> {
    let column = &row.columns()[i];
    let ty = column.type_();
    let value = match *ty {
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            scalar::<String>(row, i)
        }
        Type::CHAR => scalar::<i8>(row, i),
        Type::INT2 => scalar::<i16>(row, i),
        Type::INT4 => scalar::<i32>(row, i),
        Type::INT8 => scalar::<i64>(row, i),
        Type::FLOAT4 => scalar::<f32>(row, i),
        Type::FLOAT8 => scalar::<f64>(row, i),
        Type::BOOL => scalar::<bool>(row, i),
        Type::JSON | Type::JSONB => row.try_get::<_, Option<Value>>(i),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY | Type::NAME_ARRAY => {
            array::<String>(row, i)
        }
        Type::JSON_ARRAY | Type::JSONB_ARRAY => array::<Value>(row, i),
        Type::INT4_ARRAY => array::<i32>(row, i),
        Type::INT8_ARRAY => array::<i64>(row, i),
        Type::TIMESTAMPTZ | Type::TIMESTAMP => scalar::<EpochMillis>(row, i),
        _ => {
            return Err(SqlError::Decode(format!(
                "column {} has type {ty}, which this product does not read",
                column.name()
            )));
        }
    };
    value
        .map(|v| v.unwrap_or(Value::Null))
        .map_err(|e| SqlError::Decode(format!("column {} ({ty}): {e}", column.name())))
}

/// A timestamp as CrateDB's HTTP endpoint (and crash) give it: epoch milliseconds.
struct EpochMillis(i64);

/// 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix milliseconds.
const POSTGRES_EPOCH_MILLIS: i64 = 946_684_800_000;

impl<'a> tokio_postgres::types::FromSql<'a> for EpochMillis {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // Binary format: microseconds since 2000-01-01, big-endian.
        let micros = i64::from_be_bytes(raw.try_into()?);
        Ok(Self(POSTGRES_EPOCH_MILLIS + micros.div_euclid(1000)))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TIMESTAMPTZ | Type::TIMESTAMP)
    }
}

impl From<EpochMillis> for Value {
    fn from(value: EpochMillis) -> Value {
        Value::from(value.0)
    }
}
