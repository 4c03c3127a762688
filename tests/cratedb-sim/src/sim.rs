//! The simulator builder and the handle of a running simulator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::{DropRule, JobRt, RelKind, ShardState, SimConfig};
use crate::crash::{CrashOutput, crash_output};
use crate::engine::{Engine, Session};
use crate::error::SimError;
use crate::model::*;
use crate::outcome::ExecOutcome;
use crate::pg::ConnRegistry;
use crate::value::now_millis;

/// Entry point: `Simulator::builder()`.
pub struct Simulator;

impl Simulator {
    /// A builder with CrateDB 5.10.3, one node, no users but `crate`, no
    /// storage, no tables, all three listeners on `127.0.0.1:0`.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder {
            config: SimConfig::default(),
            pg_listen: "127.0.0.1:0".into(),
            http_listen: "127.0.0.1:0".into(),
            http_sql_listen: "127.0.0.1:0".into(),
            tls: None,
        }
    }
}

/// Builds and starts a simulator.
#[derive(Debug, Clone)]
pub struct SimulatorBuilder {
    config: SimConfig,
    pg_listen: String,
    http_listen: String,
    http_sql_listen: String,
    tls: Option<(String, String)>,
}

impl SimulatorBuilder {
    /// Start from a full configuration (e.g. read from JSON).
    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }
    /// CrateDB server version shown in `sys.nodes.version['number']` and used
    /// for version-dependent behaviour.
    pub fn server_version(mut self, v: impl Into<String>) -> Self {
        self.config.server_version = v.into();
        self
    }
    /// Cluster name (`sys.cluster.name`).
    pub fn cluster_name(mut self, n: impl Into<String>) -> Self {
        self.config.cluster_name = n.into();
        self
    }
    /// Number of nodes in `sys.nodes`.
    pub fn nodes(mut self, n: usize) -> Self {
        self.config.nodes = n.max(1);
        self
    }
    /// A regular user with a password. Unless [`SimulatorBuilder::privileges`]
    /// is set, every such user holds ALL privileges granted by `crate`.
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.config.users.push(UserDef::new(name, password));
        self
    }
    /// A user with full control over its definition.
    pub fn user_def(mut self, user: UserDef) -> Self {
        self.config.users.push(user);
        self
    }
    /// Replace the default privileges.
    pub fn privileges(mut self, privileges: Vec<PrivilegeDef>) -> Self {
        self.config.privileges = Some(privileges);
        self
    }
    /// The crate-control sidecar token (header `token`).
    pub fn sidecar_token(mut self, token: impl Into<String>) -> Self {
        self.config.sidecar_token = token.into();
        self
    }
    /// A storage location with snapshots.
    pub fn storage(mut self, storage: Storage) -> Self {
        self.config.storages.push(storage);
        self
    }
    /// A table that already exists in the cluster (all shards STARTED).
    pub fn table(mut self, table: TableDef) -> Self {
        self.config.tables.push(table);
        self
    }
    /// A view that already exists in the cluster.
    pub fn view(mut self, view: ViewDef) -> Self {
        self.config.views.push(view);
        self
    }
    /// An initial persistent cluster setting.
    pub fn persistent_setting(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.config.persistent_settings.insert(key.into(), value);
        self
    }
    /// An initial transient cluster setting.
    pub fn transient_setting(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.config.transient_settings.insert(key.into(), value);
        self
    }
    /// How restores of snapshot `key` (or of table `schema.table`) proceed.
    pub fn restore_outcome(mut self, key: impl Into<String>, outcome: RestoreOutcome) -> Self {
        self.config.restore_outcomes.insert(key.into(), outcome);
        self
    }
    /// How restore progress advances.
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.config.progress = mode;
        self
    }
    /// PostgreSQL listen address (default `127.0.0.1:0`).
    pub fn pg_listen(mut self, addr: impl Into<String>) -> Self {
        self.pg_listen = addr.into();
        self
    }
    /// Offer TLS on the PostgreSQL port (SSLRequest answered `S`) with this PEM certificate
    /// chain and key; statements over it are logged as [`Frontend::PgWireTls`].
    pub fn tls(mut self, cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        self.tls = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Sidecar HTTP listen address (default `127.0.0.1:0`).
    pub fn http_listen(mut self, addr: impl Into<String>) -> Self {
        self.http_listen = addr.into();
        self
    }

    /// Listen address of CrateDB's own HTTP endpoint (`POST /_sql`, what
    /// `crash` talks to; CrateDB's port is 4200; default `127.0.0.1:0`).
    pub fn http_sql_listen(mut self, addr: impl Into<String>) -> Self {
        self.http_sql_listen = addr.into();
        self
    }

    /// Bind the three listeners and start serving.
    pub async fn start(self) -> Result<SimulatorHandle, SimError> {
        let engine = Arc::new(Engine::new(&self.config)?);
        let (pg, pg_addr) = bind("pg", &self.pg_listen).await?;
        let (http, http_addr) = bind("http", &self.http_listen).await?;
        let (http_sql, http_sql_addr) = bind("http-sql", &self.http_sql_listen).await?;
        let tls = self
            .tls
            .as_ref()
            .map(|(cert, key)| tls_acceptor(cert, key))
            .transpose()?;
        let (tx, rx) = watch::channel(false);
        let registry = Arc::new(ConnRegistry::default());
        let tasks = vec![
            tokio::spawn(crate::pg::serve(
                pg,
                engine.clone(),
                registry.clone(),
                rx.clone(),
                tls,
            )),
            tokio::spawn(crate::sidecar::serve(http, engine.clone(), rx.clone())),
            tokio::spawn(crate::http_sql::serve(http_sql, engine.clone(), rx)),
        ];
        tracing::info!(%pg_addr, %http_addr, %http_sql_addr, "cratedb-sim started");
        Ok(SimulatorHandle {
            engine,
            registry,
            pg_addr,
            http_addr,
            http_sql_addr,
            shutdown: tx,
            tasks,
        })
    }
}

async fn bind(what: &'static str, addr: &str) -> Result<(TcpListener, SocketAddr), SimError> {
    let err = |source| SimError::Bind {
        what,
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

/// A table or view of the cluster (see [`SimulatorHandle::tables`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    /// `BASE TABLE` or `VIEW`.
    pub table_type: String,
    pub number_of_shards: u32,
    pub partitioned_by: Vec<String>,
    pub closed: bool,
}

/// A partition (see [`SimulatorHandle::partitions`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionInfo {
    pub schema: String,
    pub table: String,
    pub ident: String,
    pub values: BTreeMap<String, serde_json::Value>,
    pub closed: bool,
}

/// A primary shard (see [`SimulatorHandle::shards`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardInfo {
    pub schema: String,
    pub table: String,
    pub partition_ident: Option<String>,
    pub id: u32,
    /// `UNASSIGNED`, `INITIALIZING`, `RECOVERING` or `STARTED`.
    pub state: String,
    pub bytes_used: u64,
    pub bytes_recovered: u64,
}

/// A repository with its unmasked settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepositoryInfo {
    pub name: String,
    pub kind: String,
    pub settings: BTreeMap<String, String>,
}

impl RepositoryInfo {
    /// One setting as given to `CREATE REPOSITORY` (e.g. `endpoint`, `protocol`, `region`).
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }
}

/// The simulator's own cost so far (see [`SimulatorHandle::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SimStats {
    /// Statements received (executed, failed or refused).
    pub statements: u64,
    /// Time spent parsing, analyzing and executing them and encoding their results.
    pub busy: std::time::Duration,
}

/// A running restore (a `sys.snapshot_restore` row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreInfo {
    pub id: String,
    pub repository: String,
    pub snapshot: String,
    pub state: String,
    pub shards: usize,
}

/// A running simulator. Dropping it stops the servers; prefer
/// [`SimulatorHandle::shutdown`] to wait for them.
pub struct SimulatorHandle {
    engine: Arc<Engine>,
    registry: Arc<ConnRegistry>,
    pg_addr: SocketAddr,
    http_addr: SocketAddr,
    http_sql_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimulatorHandle {
    /// Address of the PostgreSQL listener.
    pub fn pg_addr(&self) -> SocketAddr {
        self.pg_addr
    }
    /// Address of the sidecar HTTP listener.
    pub fn sidecar_addr(&self) -> SocketAddr {
        self.http_addr
    }
    /// `http://127.0.0.1:<port>` (POST `/exec` there).
    pub fn sidecar_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }
    /// Address of CrateDB's HTTP endpoint (`POST /_sql`, `GET /`).
    pub fn http_sql_addr(&self) -> SocketAddr {
        self.http_sql_addr
    }
    /// `http://127.0.0.1:<port>`: what `crash --hosts` takes.
    pub fn http_sql_url(&self) -> String {
        format!("http://{}", self.http_sql_addr)
    }
    /// A libpq-style connection string for `user`, database `doc`.
    pub fn pg_connection_string(&self, user: &str, password: &str) -> String {
        format!(
            "host={} port={} user={} password={} dbname=doc",
            self.pg_addr.ip(),
            self.pg_addr.port(),
            user,
            password
        )
    }
    /// The configured server version.
    pub fn server_version(&self) -> String {
        self.engine.lock().version_text.clone()
    }

    /// Run a statement as the superuser `crate` (what `crash` does inside
    /// the pod); it is logged with [`Frontend::Superuser`].
    pub fn execute_as_superuser(&self, sql: &str) -> ExecOutcome {
        self.engine
            .execute_sql(&Session::superuser(Frontend::Superuser), sql, &[])
            .into()
    }

    /// [`SimulatorHandle::execute_as_superuser`] printed exactly as `crash -c`
    /// prints it, stream by stream, with its exit status.
    pub fn crash_output(&self, sql: &str) -> CrashOutput {
        crash_output(&self.execute_as_superuser(sql))
    }

    // ---- logs -------------------------------------------------------

    /// Every statement received, in order, with bound parameters.
    pub fn statements(&self) -> Vec<StatementRecord> {
        self.engine
            .lock()
            .statements
            .iter()
            .map(LoggedStatement::record)
            .collect()
    }
    /// Every statement received, without parameter values.
    pub fn statements_without_params(&self) -> Vec<StatementSummary> {
        self.engine
            .lock()
            .statements
            .iter()
            .map(LoggedStatement::summary)
            .collect()
    }
    /// Just the SQL texts, in order.
    pub fn statement_texts(&self) -> Vec<String> {
        self.engine
            .lock()
            .statements
            .iter()
            .map(|s| s.sql.clone())
            .collect()
    }
    /// How many received statements begin with `prefix` (leading whitespace ignored).
    pub fn count_statements(&self, prefix: &str) -> usize {
        self.engine
            .lock()
            .statements
            .iter()
            .filter(|s| s.sql.trim_start().starts_with(prefix))
            .count()
    }
    /// Statements refused because they are outside the modelled SQL.
    pub fn rejected_statements(&self) -> Vec<StatementRecord> {
        self.engine
            .lock()
            .statements
            .iter()
            .filter(|s| s.rejected)
            .map(LoggedStatement::record)
            .collect()
    }
    /// `sys.jobs_log` (statement texts only, never parameter values).
    pub fn jobs_log(&self) -> Vec<JobLogEntry> {
        self.engine.lock().jobs_log.iter().cloned().collect()
    }

    // ---- state inspectors -------------------------------------------

    /// Tables and views.
    pub fn tables(&self) -> Vec<TableInfo> {
        self.engine
            .lock()
            .relations
            .iter()
            .map(|((s, n), r)| TableInfo {
                schema: s.clone(),
                name: n.clone(),
                table_type: if r.kind == RelKind::Table {
                    "BASE TABLE"
                } else {
                    "VIEW"
                }
                .into(),
                number_of_shards: r.number_of_shards,
                partitioned_by: r.partitioned_by.clone(),
                closed: r.closed,
            })
            .collect()
    }
    /// Partitions of all partitioned tables.
    pub fn partitions(&self) -> Vec<PartitionInfo> {
        let st = self.engine.lock();
        let mut out = Vec::new();
        for ((s, n), r) in &st.relations {
            for (ident, p) in &r.partitions {
                out.push(PartitionInfo {
                    schema: s.clone(),
                    table: n.clone(),
                    ident: ident.clone(),
                    values: p
                        .values
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_json()))
                        .collect(),
                    closed: p.closed,
                });
            }
        }
        out
    }
    /// Primary shards.
    pub fn shards(&self) -> Vec<ShardInfo> {
        let mut st = self.engine.lock();
        st.wall_tick();
        let mut out = Vec::new();
        for ((s, n), r) in &st.relations {
            let mut push = |p: Option<&String>, sh: &crate::cluster::ShardRt| {
                out.push(ShardInfo {
                    schema: s.clone(),
                    table: n.clone(),
                    partition_ident: p.cloned(),
                    id: sh.id,
                    state: sh.state.name().to_string(),
                    bytes_used: sh.used,
                    bytes_recovered: if sh.state == ShardState::Unassigned {
                        0
                    } else {
                        sh.recovered
                    },
                });
            };
            for sh in &r.shards {
                push(None, sh);
            }
            for (ident, p) in &r.partitions {
                for sh in &p.shards {
                    push(Some(ident), sh);
                }
            }
        }
        out
    }
    /// Repositories with unmasked settings.
    pub fn repositories(&self) -> Vec<RepositoryInfo> {
        self.engine
            .lock()
            .repositories
            .iter()
            .map(|(n, r)| RepositoryInfo {
                name: n.clone(),
                kind: r.kind.clone(),
                settings: r.settings.clone(),
            })
            .collect()
    }
    /// One repository with unmasked settings.
    pub fn repository(&self, name: &str) -> Option<RepositoryInfo> {
        self.repositories().into_iter().find(|r| r.name == name)
    }
    /// The rows `SELECT count(*) FROM schema.table` counts (documents of started primaries the
    /// table's queries see); `None` when there is no such table. A renamed partitioned table
    /// restored by CrateDB 5.6.0 - 5.7.1 counts 0: its partitions answer to the source's name.
    pub fn doc_count(&self, schema: &str, table: &str) -> Option<u64> {
        let mut st = self.engine.lock();
        st.wall_tick();
        st.visible_docs(schema, table)
    }
    /// Users with their current passwords (including `crate`).
    pub fn users(&self) -> Vec<UserDef> {
        self.engine
            .lock()
            .users
            .iter()
            .map(|(n, u)| UserDef {
                name: n.clone(),
                password: u.password.clone(),
                superuser: u.superuser,
                jwt: u.jwt.clone(),
            })
            .collect()
    }
    /// Current privileges.
    pub fn privileges(&self) -> Vec<PrivilegeDef> {
        self.engine.lock().privileges.clone()
    }
    /// Persistent cluster settings (dotted keys).
    pub fn persistent_settings(&self) -> BTreeMap<String, serde_json::Value> {
        self.engine
            .lock()
            .persistent
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect()
    }
    /// Transient cluster settings (dotted keys).
    pub fn transient_settings(&self) -> BTreeMap<String, serde_json::Value> {
        self.engine
            .lock()
            .transient
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect()
    }
    /// Restores that currently have a `sys.snapshot_restore` row.
    pub fn restores_in_progress(&self) -> Vec<RestoreInfo> {
        let mut st = self.engine.lock();
        st.wall_tick();
        st.restores
            .iter()
            .map(|r| RestoreInfo {
                id: r.id.clone(),
                repository: r.repository.clone(),
                snapshot: r.snapshot.clone(),
                state: r.state.to_string(),
                shards: r.shard_count(),
            })
            .collect()
    }
    /// Number of open PostgreSQL connections.
    pub fn open_pg_connections(&self) -> usize {
        self.registry.count()
    }

    // ---- the simulator's own cost -------------------------------------

    /// Statements received and the time the simulator spent on them (see [`SimStats`]).
    pub fn stats(&self) -> SimStats {
        let s = self.engine.stats();
        SimStats {
            statements: s.statements,
            busy: s.busy,
        }
    }
    /// The simulator's cumulative time spent on statements: parsing, analysis, execution
    /// (with the cluster lock held) and encoding results for the wire. Also at
    /// `GET /_sim/stats` on the sidecar and `/_sql` listeners.
    pub fn busy_time(&self) -> std::time::Duration {
        self.engine.stats().busy
    }
    /// Statements received so far (executed, failed or refused).
    pub fn statement_count(&self) -> u64 {
        self.engine.stats().statements
    }
    /// Count [`SimulatorHandle::stats`] from zero again (e.g. after a benchmark's set-up).
    pub fn reset_stats(&self) {
        self.engine.reset_stats();
    }

    // ---- fault knobs and control --------------------------------------

    /// Make matching statements fail (see [`ErrorInjection`]).
    pub fn inject_error(&self, injection: ErrorInjection) {
        self.engine.lock().injections.push(injection);
    }
    /// Remove all error injections.
    pub fn clear_error_injections(&self) {
        self.engine.lock().injections.clear();
    }
    /// Close every open PostgreSQL connection now (with a TCP reset);
    /// returns how many were open.
    pub fn drop_pg_connections(&self) -> usize {
        self.registry.kill_all()
    }
    /// Reset the PostgreSQL connection that sends a statement containing
    /// `substring` (`times`: how many times; `None` = always). The statement
    /// is not executed and is logged as `ConnectionDropped`.
    pub fn drop_connection_on(&self, substring: impl Into<String>, times: Option<u32>) {
        self.engine.lock().drop_rules.push(DropRule {
            substring: substring.into(),
            remaining: times,
        });
    }
    /// The sidecar answers HTTP 503 to the next `n` requests.
    pub fn fail_sidecar_requests(&self, n: u32) {
        self.fail_sidecar_requests_with(n, 503);
    }
    /// The sidecar answers HTTP `status` (e.g. 429) to the next `n` requests.
    pub fn fail_sidecar_requests_with(&self, n: u32, status: u16) {
        let mut st = self.engine.lock();
        st.sidecar_failures = n;
        st.sidecar_failure_status = status;
    }
    /// Add a running job to `sys.jobs` (e.g. `CREATE SNAPSHOT ...`); returns its id.
    pub fn seed_job(&self, stmt: impl Into<String>) -> String {
        let mut st = self.engine.lock();
        let id = st.next_uuid();
        st.jobs.push(JobRt {
            id: id.clone(),
            stmt: stmt.into(),
            started: now_millis(),
            username: "crate".into(),
        });
        id
    }
    /// Remove a seeded job; `false` if unknown.
    pub fn remove_job(&self, id: &str) -> bool {
        let mut st = self.engine.lock();
        let before = st.jobs.len();
        st.jobs.retain(|j| j.id != id);
        st.jobs.len() != before
    }
    /// Set the outcome for restores of snapshot (or table) `key`; applies to
    /// restores started afterwards.
    pub fn set_restore_outcome(&self, key: impl Into<String>, outcome: RestoreOutcome) {
        self.engine.lock().outcomes.insert(key.into(), outcome);
    }
    /// Change how progress advances.
    pub fn set_progress(&self, mode: ProgressMode) {
        let mut st = self.engine.lock();
        st.wall_tick();
        st.progress = mode;
    }
    /// Advance running restores by `n` observations without a query.
    pub fn advance_restores(&self, n: u32) {
        let mut st = self.engine.lock();
        for _ in 0..n {
            st.observe_restores();
        }
    }
    /// Set a user's password directly (test set-up; not logged).
    pub fn set_password(&self, user: &str, password: Option<&str>) -> bool {
        let mut st = self.engine.lock();
        match st.users.get_mut(user) {
            Some(u) => {
                u.password = password.map(str::to_string);
                true
            }
            None => false,
        }
    }

    /// Stop the servers and wait for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl std::fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorHandle")
            .field("pg_addr", &self.pg_addr)
            .field("http_addr", &self.http_addr)
            .field("http_sql_addr", &self.http_sql_addr)
            .finish()
    }
}

fn tls_acceptor(cert_pem: &str, key_pem: &str) -> Result<pgwire::tokio::TlsAcceptor, SimError> {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let bad = |e: String| SimError::Config(format!("TLS certificate or key: {e}"));
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad(e.to_string()))?;
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}
