//! The statement engine shared by all front-ends: analysis, execution, the
//! statement log and `sys.jobs_log`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cluster::{
    Cluster, RelKind, RenameOptions, RepoRt, RestoreRequest, RestoreTarget, SimConfig,
};
use crate::error::{SimError, SqlError};
use crate::eval::{EvalCtx, NoRow, SelectPlan, eval, plan_select, run_select, scan_rows};
use crate::model::*;
use crate::relations::{ReadCtx, Rel, SYSTEM_RELATIONS, scan};
use crate::sql::ast::{Expr, QName, RestoreWhat, Statement};
use crate::sql::parse_statements;
use crate::value::{ColType, Value, now_millis};

/// Who runs a statement.
#[derive(Debug, Clone)]
pub struct Session {
    pub frontend: Frontend,
    pub user: String,
    /// Default schema (the PostgreSQL `database` startup parameter).
    pub schema: String,
}

impl Session {
    /// The superuser `crate` with schema `doc` (crash, sidecar).
    pub fn superuser(frontend: Frontend) -> Self {
        Session {
            frontend,
            user: "crate".into(),
            schema: "doc".into(),
        }
    }
}

/// An analyzed statement.
#[derive(Debug, Clone)]
pub enum Plan {
    Select {
        rel: Option<Rel>,
        plan: SelectPlan,
    },
    ShowTables(Option<String>),
    /// `SELECT count(*) FROM <user table>`: the one read of user tables the simulator models.
    CountRows {
        schema: String,
        name: String,
    },
    Other(Statement),
}

/// The output name when `s` is exactly `SELECT count(*) [[AS] alias] FROM t [alias]`.
fn count_star_only(s: &crate::sql::ast::Select) -> Option<String> {
    use crate::sql::ast::SelectItem;
    let plain = !s.distinct
        && s.where_.is_none()
        && s.group_by.is_empty()
        && s.order_by.is_empty()
        && s.limit.is_none()
        && s.offset.is_none();
    match s.items.as_slice() {
        [
            SelectItem::Expr {
                expr:
                    Expr::Func {
                        name,
                        star: true,
                        filter,
                        ..
                    },
                alias,
            },
        ] if plain && name == "count" && filter.is_none() => {
            Some(alias.clone().unwrap_or_else(|| "count(*)".into()))
        }
        _ => None,
    }
}

/// A statement ready to execute (the unit the extended protocol stores).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub text: String,
    pub plan: Plan,
    pub fields: Vec<(String, ColType)>,
    pub param_count: usize,
    /// The parameter types the statement implies (`x = ANY($1)`: an array), `None` where
    /// nothing does; what a PostgreSQL client is told when it leaves the type open.
    pub param_types: Vec<Option<ColType>>,
    pub command: &'static str,
}

impl Prepared {
    /// The implied type of parameter `i` (0-based), if any.
    pub fn param_type(&self, i: usize) -> Option<&ColType> {
        self.param_types.get(i).and_then(Option::as_ref)
    }
}

/// Rows of a query.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub command: &'static str,
    pub fields: Vec<(String, ColType)>,
    pub rows: Vec<Vec<Value>>,
}

/// The outcome of one statement.
#[derive(Debug, Clone)]
pub enum Outcome {
    Rows(QueryResult),
    Command {
        command: &'static str,
        rowcount: i64,
    },
    Error(SqlError),
}

impl Outcome {
    fn rowcount(&self) -> i64 {
        match self {
            Outcome::Rows(q) => q.rows.len() as i64,
            Outcome::Command { rowcount, .. } => *rowcount,
            Outcome::Error(_) => -1,
        }
    }
}

struct LogEntry<'a> {
    session: &'a Session,
    sql: &'a str,
    params: &'a [Value],
    param_count: usize,
    /// The error, if the statement failed.
    error: Option<&'a SqlError>,
    rowcount: i64,
    dropped: bool,
    rejected: bool,
    started: i64,
}

/// The engine: one cluster behind a mutex.
pub struct Engine {
    state: Mutex<Cluster>,
    stats: Stats,
}

/// The simulator's own work, for benchmarks that want to tell it apart from their client's.
#[derive(Default)]
struct Stats {
    statements: AtomicU64,
    busy_nanos: AtomicU64,
}

/// Cumulative counters of the simulator's own work (see [`Engine::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Statements received (executed, failed or refused).
    pub statements: u64,
    /// Time spent parsing, analyzing and executing them and encoding their results.
    pub busy: Duration,
}

fn resolve_table(q: &QName, default_schema: &str) -> Result<(String, String), SqlError> {
    match q.0.as_slice() {
        [t] => Ok((default_schema.to_string(), t.clone())),
        [s, t] => Ok((s.clone(), t.clone())),
        _ => Err(SqlError::illegal_argument(format!(
            "Invalid relation name: {}",
            q.display()
        ))),
    }
}

impl Engine {
    pub fn new(cfg: &SimConfig) -> Result<Engine, SimError> {
        Ok(Engine {
            state: Mutex::new(Cluster::new(cfg)?),
            stats: Stats::default(),
        })
    }

    /// Add `d` to the simulator's busy time (work done outside [`Engine::execute`], e.g.
    /// encoding a result for the wire).
    pub fn add_busy(&self, d: Duration) {
        self.stats.busy_nanos.fetch_add(
            d.as_nanos().min(u64::MAX as u128) as u64,
            AtomicOrdering::Relaxed,
        );
    }

    /// Statements received and time spent on them so far.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            statements: self.stats.statements.load(AtomicOrdering::Relaxed),
            busy: Duration::from_nanos(self.stats.busy_nanos.load(AtomicOrdering::Relaxed)),
        }
    }

    /// Start counting from zero.
    pub fn reset_stats(&self) {
        self.stats.statements.store(0, AtomicOrdering::Relaxed);
        self.stats.busy_nanos.store(0, AtomicOrdering::Relaxed);
    }

    /// Lock the state (poisoning is ignored: a panicking test must not wedge others).
    pub fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parse and analyze one or more statements.
    pub fn prepare_all(&self, session: &Session, sql: &str) -> Result<Vec<Prepared>, SqlError> {
        let started = Instant::now();
        let prepared = parse_statements(sql).and_then(|parsed| {
            parsed
                .into_iter()
                .map(|p| self.analyze(session, p.stmt, p.text, p.param_count))
                .collect()
        });
        self.add_busy(started.elapsed());
        prepared
    }

    /// Parse and analyze exactly one statement.
    pub fn prepare(&self, session: &Session, sql: &str) -> Result<Prepared, SqlError> {
        let started = Instant::now();
        let prepared = crate::sql::parse_statement(sql)
            .and_then(|p| self.analyze(session, p.stmt, sql.to_string(), p.param_count));
        self.add_busy(started.elapsed());
        prepared
    }

    fn analyze(
        &self,
        session: &Session,
        stmt: Statement,
        text: String,
        param_count: usize,
    ) -> Result<Prepared, SqlError> {
        let command = stmt.command_word();
        let mut param_types = Vec::new();
        let (plan, fields) = match stmt {
            Statement::Select(s) => {
                let (rel, quals, columns) = match &s.from {
                    None => (None, Vec::new(), Vec::new()),
                    Some(from) => {
                        let (schema, name) = resolve_table(&from.name, &session.schema)?;
                        let rel = match Rel::resolve(&schema, &name) {
                            Some(r) => r,
                            None => {
                                if SYSTEM_RELATIONS.contains(&(schema.as_str(), name.as_str())) {
                                    return Err(SqlError::not_modelled(format!(
                                        "reading relation '{schema}.{name}'"
                                    )));
                                }
                                let is_table = self
                                    .lock()
                                    .relations
                                    .get(&(schema.clone(), name.clone()))
                                    .map(|r| r.kind == RelKind::Table);
                                if is_table == Some(true)
                                    && let Some(column) = count_star_only(&s)
                                {
                                    return Ok(Prepared {
                                        text,
                                        plan: Plan::CountRows { schema, name },
                                        fields: vec![(column, ColType::Int8)],
                                        param_count,
                                        param_types: Vec::new(),
                                        command,
                                    });
                                }
                                if is_table.is_some() {
                                    return Err(SqlError::not_modelled(format!(
                                        "reading rows of user relation '{schema}.{name}'"
                                    )));
                                }
                                return Err(SqlError::relation_unknown(&format!(
                                    "{schema}.{name}"
                                )));
                            }
                        };
                        let mut quals =
                            vec![vec![schema.clone(), name.clone()], vec![name.clone()]];
                        if let Some(a) = &from.alias {
                            quals = vec![vec![a.clone()]];
                        }
                        let version = self.lock().version.clone();
                        (Some(rel), quals, rel.columns_for(&version))
                    }
                };
                let plan =
                    plan_select(&s, quals, &columns, Some((&session.user, &session.schema)))?;
                let fields = plan.fields.clone();
                param_types = plan.param_types.clone();
                (Plan::Select { rel, plan }, fields)
            }
            Statement::ShowTables { schema } => (
                Plan::ShowTables(schema),
                vec![("table_name".to_string(), ColType::Text)],
            ),
            other => (Plan::Other(other), Vec::new()),
        };
        Ok(Prepared {
            text,
            plan,
            fields,
            param_count,
            param_types,
            command,
        })
    }

    fn log(&self, st: &mut Cluster, e: LogEntry<'_>) {
        self.stats.statements.fetch_add(1, AtomicOrdering::Relaxed);
        let LogEntry {
            session,
            sql,
            params,
            param_count,
            error,
            rowcount,
            dropped,
            rejected,
            started,
        } = e;
        let outcome = match (error, dropped) {
            (_, true) => StatementOutcome::ConnectionDropped,
            (Some(err), _) => StatementOutcome::Error {
                sqlstate: err.sqlstate.clone(),
                message: err.crate_message(),
            },
            (None, _) => StatementOutcome::Ok { rowcount },
        };
        let error = error.map(|err| err.message.clone());
        let seq = st.statements.len() as u64 + 1;
        // A poll binds the same (possibly large) parameters again and again: share them.
        let params = st
            .statements
            .iter()
            .rev()
            .take(8)
            .find(|l| l.params.as_slice() == params)
            .map(|l| l.params.clone())
            .unwrap_or_else(|| Arc::new(params.to_vec()));
        st.statements.push(LoggedStatement {
            seq,
            frontend: session.frontend,
            user: session.user.clone(),
            sql: sql.to_string(),
            param_count,
            params,
            outcome: outcome.clone(),
            rejected,
        });
        if !matches!(outcome, StatementOutcome::ConnectionDropped) {
            let id = st.next_uuid();
            st.push_job_log(JobLogEntry {
                id,
                username: session.user.clone(),
                stmt: sql.to_string(),
                started,
                ended: now_millis(),
                error,
            });
        }
        match &outcome {
            StatementOutcome::Error { message, .. } if rejected => {
                tracing::warn!(frontend = ?session.frontend, sql, message, "rejected statement");
            }
            _ => tracing::debug!(frontend = ?session.frontend, sql, "statement"),
        }
    }

    /// Record a statement that failed before execution (parse/analysis).
    pub fn record_failure(&self, session: &Session, sql: &str, err: &SqlError) {
        let mut st = self.lock();
        let started = now_millis();
        self.log(
            &mut st,
            LogEntry {
                session,
                sql,
                params: &[],
                param_count: 0,
                error: Some(err),
                rowcount: -1,
                dropped: false,
                rejected: err.rejected,
                started,
            },
        );
    }

    /// Record a statement whose connection a fault knob dropped.
    pub fn record_dropped(&self, session: &Session, sql: &str) {
        let mut st = self.lock();
        let started = now_millis();
        self.log(
            &mut st,
            LogEntry {
                session,
                sql,
                params: &[],
                param_count: 0,
                error: None,
                rowcount: -1,
                dropped: true,
                rejected: false,
                started,
            },
        );
    }

    /// Whether a PostgreSQL connection should be dropped for this statement.
    pub fn should_drop(&self, sql: &str) -> bool {
        let mut st = self.lock();
        let mut hit = false;
        for rule in &mut st.drop_rules {
            if sql.contains(&rule.substring) && rule.remaining != Some(0) {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                hit = true;
                break;
            }
        }
        st.drop_rules.retain(|r| r.remaining != Some(0));
        hit
    }

    /// Parse, analyze and execute text (sidecar, superuser); logs everything.
    pub fn execute_sql(&self, session: &Session, sql: &str, params: &[Value]) -> Outcome {
        match self.prepare(session, sql) {
            Ok(p) => self.execute(session, &p, params),
            Err(e) => {
                self.record_failure(session, sql, &e);
                Outcome::Error(e)
            }
        }
    }

    /// Execute a prepared statement with bound parameters; logs it.
    pub fn execute(&self, session: &Session, prepared: &Prepared, params: &[Value]) -> Outcome {
        let started = now_millis();
        let mut st = self.lock();
        let busy_since = Instant::now();
        st.wall_tick();
        let sql = prepared.text.as_str();

        let mut outcome = None;
        if let Some(pos) = st
            .injections
            .iter()
            .position(|i| sql.contains(&i.substring))
        {
            let inj = st.injections[pos].clone();
            if let Some(n) = st.injections[pos].times.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.injections.remove(pos);
                }
            }
            outcome = Some(Outcome::Error(SqlError::new(
                inj.exception,
                inj.message,
                inj.sqlstate,
            )));
        }
        let outcome = match outcome {
            Some(o) => o,
            None if params.len() < prepared.param_count => {
                Outcome::Error(SqlError::illegal_argument(format!(
                    "The query contains a parameter placeholder ${}, but there are only {} parameter values",
                    prepared.param_count,
                    params.len()
                )))
            }
            None => {
                let job_id = st.next_uuid();
                let ctx = ReadCtx {
                    current_stmt: sql,
                    current_user: &session.user,
                    current_job_id: &job_id,
                    started,
                };
                match run(&mut st, session, prepared, params, &ctx) {
                    Ok(o) => {
                        if let Plan::Select { rel: Some(r), .. } = &prepared.plan
                            && r.observes_restores()
                        {
                            st.observe_restores();
                        }
                        o
                    }
                    Err(e) => Outcome::Error(e),
                }
            }
        };
        let error = match &outcome {
            Outcome::Error(e) => Some(e),
            _ => None,
        };
        self.log(
            &mut st,
            LogEntry {
                session,
                sql,
                params,
                param_count: prepared.param_count,
                error,
                rowcount: outcome.rowcount(),
                dropped: false,
                rejected: error.is_some_and(|e| e.rejected),
                started,
            },
        );
        drop(st);
        self.add_busy(busy_since.elapsed());
        outcome
    }

    /// Check a cleartext password (PostgreSQL authentication).
    pub fn check_password(&self, user: &str, password: &str) -> bool {
        let st = self.lock();
        matches!(st.users.get(user), Some(u) if u.password.as_deref() == Some(password))
    }
}

fn eval_const(e: &Expr, params: &[Value]) -> Result<Value, SqlError> {
    let mut b = crate::eval::Binder::new(Vec::new(), &[]);
    let (be, _) = b.bind(e, false).map_err(|err| {
        if err.sqlstate == "42703" {
            SqlError::illegal_argument(format!(
                "Only literals and parameters are allowed here, got {}",
                e.display_name()
            ))
        } else {
            err
        }
    })?;
    eval(&be, &NoRow, &EvalCtx::new(params))
}

/// `DELETE FROM schema.name [WHERE cond]` where it deletes whole partitions
/// (`DeletePlanner`: a condition on partition columns only is `DeletePartitions`, no condition
/// on a partitioned table `DeleteAllPartitions`): the matching partitions go, with their shards
/// and their part of running restores. The row count is CrateDB's `-1` (unknown), or `0` when
/// no partition matches. Deleting rows is not modelled.
fn delete_partitions(
    st: &mut Cluster,
    schema: &str,
    name: &str,
    where_: Option<&Expr>,
    params: &[Value],
) -> Result<i64, SqlError> {
    let fqn = format!("{schema}.{name}");
    if Rel::resolve(schema, name).is_some() || SYSTEM_RELATIONS.contains(&(schema, name)) {
        return Err(SqlError::not_modelled(format!("DELETE FROM {fqn}")));
    }
    let key = (schema.to_string(), name.to_string());
    let rel = st
        .relations
        .get(&key)
        .ok_or_else(|| SqlError::relation_unknown(&fqn))?;
    if rel.kind != RelKind::Table || rel.closed || !rel.is_partitioned() {
        return Err(SqlError::not_modelled(format!(
            "deleting rows of {fqn} (only DELETE of whole partitions of an open partitioned table is modelled)"
        )));
    }
    let columns: Vec<(String, ColType)> = rel
        .partitioned_by
        .iter()
        .map(|c| (c.clone(), ColType::Text))
        .collect();
    let matching: Vec<String> = match where_ {
        None => rel.partitions.keys().cloned().collect(),
        Some(w) => {
            let mut b = crate::eval::Binder::new(
                vec![vec![key.0.clone(), key.1.clone()], vec![key.1.clone()]],
                &columns,
            );
            let (cond, _) = b.bind(w, false).map_err(|e| {
                if e.sqlstate == "42703" {
                    SqlError::not_modelled(format!(
                        "DELETE FROM {fqn} with a condition on other columns than its partition columns ({}): that deletes rows",
                        rel.partitioned_by.join(", ")
                    ))
                } else {
                    e
                }
            })?;
            let ctx = EvalCtx::new(params);
            let mut out = Vec::new();
            for (ident, p) in &rel.partitions {
                let row: Vec<Value> = rel
                    .partitioned_by
                    .iter()
                    .map(|c| {
                        p.values
                            .iter()
                            .find(|(k, _)| k == c)
                            .map(|(_, v)| v.clone())
                            .unwrap_or(Value::Null)
                    })
                    .collect();
                if eval(&cond, &row, &ctx)?.is_true() {
                    out.push(ident.clone());
                }
            }
            out
        }
    };
    if matching.is_empty() {
        return Ok(0);
    }
    st.delete_partitions(schema, name, &matching);
    Ok(-1)
}

fn as_bool(v: &Value, what: &str) -> Result<bool, SqlError> {
    match v.coerce(&ColType::Bool) {
        Ok(Value::Bool(b)) => Ok(b),
        _ => Err(SqlError::illegal_argument(format!(
            "Can't convert \"{}\" to boolean for setting '{what}'",
            v.to_plain_string().unwrap_or_default()
        ))),
    }
}

fn run(
    st: &mut Cluster,
    session: &Session,
    p: &Prepared,
    params: &[Value],
    ctx: &ReadCtx<'_>,
) -> Result<Outcome, SqlError> {
    let done = |rowcount: i64| Outcome::Command {
        command: p.command,
        rowcount,
    };
    match &p.plan {
        Plan::Select { rel, plan } => {
            let out = run_select(plan, params, |sink| match rel {
                Some(r) => scan(st, *r, ctx, sink),
                None => scan_rows(&[Vec::new()], sink),
            })?;
            Ok(Outcome::Rows(QueryResult {
                command: p.command,
                fields: p.fields.clone(),
                rows: out,
            }))
        }
        Plan::ShowTables(schema) => {
            let mut names: Vec<Vec<Value>> = st
                .relations
                .iter()
                .filter(|((s, _), r)| {
                    r.kind == RelKind::Table
                        && match schema {
                            Some(want) => s == want,
                            None => {
                                !matches!(s.as_str(), "sys" | "information_schema" | "pg_catalog")
                            }
                        }
                })
                .map(|((_, n), _)| vec![Value::text(n)])
                .collect();
            names.sort_by(|a, b| a[0].sql_cmp(&b[0]).unwrap_or(std::cmp::Ordering::Equal));
            Ok(Outcome::Rows(QueryResult {
                command: p.command,
                fields: p.fields.clone(),
                rows: names,
            }))
        }
        Plan::CountRows { schema, name } => {
            let docs = st
                .visible_docs(schema, name)
                .ok_or_else(|| SqlError::relation_unknown(&format!("{schema}.{name}")))?;
            Ok(Outcome::Rows(QueryResult {
                command: p.command,
                fields: p.fields.clone(),
                rows: vec![vec![Value::Int(docs as i64)]],
            }))
        }
        Plan::Other(stmt) => match stmt {
            Statement::CreateRepository { name, kind, props } => {
                create_repository(st, name, kind, props, params)?;
                Ok(done(1))
            }
            Statement::DropRepository { name } => {
                if st.repositories.remove(name).is_none() {
                    return Err(SqlError::new(
                        "RepositoryMissingException",
                        format!("[{name}] missing"),
                        "XX000",
                    ));
                }
                Ok(done(1))
            }
            Statement::Restore(r) => {
                // RestoreSnapshotAnalyzer looks the repository up first; the planner then
                // checks every key against SnapshotSettings.SETTINGS before it evaluates any
                // value (GenericProperties.ensureContainsOnly). The rename options came with
                // 5.6.0.
                if !st.repositories.contains_key(&r.repository) {
                    return Err(SqlError::new(
                        "RepositoryMissingException",
                        format!("[{}] missing", r.repository),
                        "XX000",
                    ));
                }
                let renames_known = st.version.at_least(5, 6, 0);
                for (k, _) in &r.props {
                    let known = match k.as_str() {
                        "wait_for_completion" | "ignore_unavailable" => true,
                        "schema_rename_pattern"
                        | "schema_rename_replacement"
                        | "table_rename_pattern"
                        | "table_rename_replacement" => renames_known,
                        _ => false,
                    };
                    if !known {
                        return Err(SqlError::illegal_argument(format!(
                            "Setting '{k}' is not supported"
                        )));
                    }
                }
                let mut wait = false;
                let mut ignore = false;
                let mut rename = RenameOptions::default();
                for (k, e) in &r.props {
                    let v = eval_const(e, params)?;
                    // Setting.simpleString: the value as text; NULL leaves the default.
                    let text = |slot: &mut String| {
                        if let Some(s) = v.to_plain_string() {
                            *slot = s;
                        }
                    };
                    match k.as_str() {
                        "wait_for_completion" => wait = as_bool(&v, k)?,
                        "ignore_unavailable" => ignore = as_bool(&v, k)?,
                        "schema_rename_pattern" => text(&mut rename.schema_pattern),
                        "schema_rename_replacement" => text(&mut rename.schema_replacement),
                        "table_rename_pattern" => text(&mut rename.table_pattern),
                        _ => text(&mut rename.table_replacement),
                    }
                }
                let target = match &r.what {
                    RestoreWhat::All => RestoreTarget::All,
                    RestoreWhat::Metadata => RestoreTarget::Metadata,
                    RestoreWhat::Sections(s) => RestoreTarget::Sections(s.clone()),
                    RestoreWhat::Tables(tables) => {
                        let mut out = Vec::new();
                        for t in tables {
                            let (schema, name) = resolve_table(&t.name, &session.schema)?;
                            let mut assignments = Vec::new();
                            for (col, e) in &t.partition {
                                assignments.push((col.clone(), eval_const(e, params)?));
                            }
                            out.push((schema, name, assignments));
                        }
                        RestoreTarget::Tables(out)
                    }
                };
                st.restore(RestoreRequest {
                    repository: r.repository.clone(),
                    snapshot: r.snapshot.clone(),
                    target,
                    wait_for_completion: wait,
                    ignore_unavailable: ignore,
                    rename,
                })?;
                Ok(done(1))
            }
            Statement::SetGlobal {
                persistent,
                assignments,
            } => {
                let mut updates = Vec::new();
                for (name, e) in assignments {
                    if !crate::settings::known_prefix(name) {
                        return Err(SqlError::illegal_argument(format!(
                            "Setting '{name}' is not supported"
                        )));
                    }
                    let v = eval_const(e, params)?;
                    let mut flat = Vec::new();
                    crate::settings::flatten(name, &v, &mut flat);
                    for (k, v) in flat {
                        let v = crate::settings::validate(&k, &v)?;
                        updates.push((k, v));
                    }
                }
                let target = if *persistent {
                    &mut st.persistent
                } else {
                    &mut st.transient
                };
                for (k, v) in updates {
                    target.insert(k, v);
                }
                Ok(done(1))
            }
            Statement::ResetGlobal { settings } => {
                for name in settings {
                    if !crate::settings::known_prefix(name) {
                        return Err(SqlError::illegal_argument(format!(
                            "Setting '{name}' is not supported"
                        )));
                    }
                }
                for name in settings {
                    let prefix = format!("{name}.");
                    st.persistent
                        .retain(|k, _| k != name && !k.starts_with(&prefix));
                    st.transient
                        .retain(|k, _| k != name && !k.starts_with(&prefix));
                }
                Ok(done(1))
            }
            Statement::AlterTableRename { table, to } => {
                let from = resolve_table(table, &session.schema)?;
                if to.0.len() > 1 {
                    return Err(SqlError::illegal_argument(
                        "Target table name must not include a schema",
                    ));
                }
                let target = (from.0.clone(), to.0[0].clone());
                st.rename_table(from, target)?;
                Ok(done(1))
            }
            Statement::DropTable { table, if_exists } => {
                let (schema, name) = resolve_table(table, &session.schema)?;
                if st.drop_table(&schema, &name) {
                    Ok(done(1))
                } else if *if_exists {
                    Ok(done(0))
                } else {
                    Err(SqlError::relation_unknown(&format!("{schema}.{name}")))
                }
            }
            Statement::Delete { table, where_ } => {
                let (schema, name) = resolve_table(table, &session.schema)?;
                delete_partitions(st, &schema, &name, where_.as_ref(), params).map(done)
            }
            Statement::AlterUser { user, props } => {
                alter_user(st, session, user, props, params)?;
                Ok(done(1))
            }
            Statement::Select(_) | Statement::ShowTables { .. } => Err(SqlError::internal(
                "IllegalStateException",
                "unplanned query",
            )),
        },
    }
}

const S3_SETTINGS: &[&str] = &[
    "access_key",
    "secret_key",
    "session_token",
    "base_path",
    "bucket",
    "buffer_size",
    "canned_acl",
    "chunk_size",
    "compress",
    "server_side_encryption",
    "endpoint",
    "protocol",
    "max_retries",
    "use_throttle_retries",
    "readonly",
    "storage_class",
    "use_path_style_access",
    "proxy_host",
    "proxy_port",
    "proxy_username",
    "proxy_password",
];
const AZURE_SETTINGS: &[&str] = &[
    "account",
    "key",
    "sas_token",
    "container",
    "base_path",
    "chunk_size",
    "readonly",
    "location_mode",
    "compress",
    "max_retries",
    "endpoint",
    "secondary_endpoint",
    "endpoint_suffix",
    "timeout",
    "proxy_type",
    "proxy_host",
    "proxy_port",
];
const FS_SETTINGS: &[&str] = &["location", "compress", "chunk_size", "readonly"];
const GENERIC_REPO_SETTINGS: &[&str] = &["max_restore_bytes_per_sec", "max_snapshot_bytes_per_sec"];

fn norm_path(p: &str) -> String {
    p.trim_matches('/').to_string()
}

fn create_repository(
    st: &mut Cluster,
    name: &str,
    kind: &str,
    props: &[(String, Expr)],
    params: &[Value],
) -> Result<(), SqlError> {
    let kind = kind.to_lowercase();
    let allowed: &[&str] = match kind.as_str() {
        "s3" => S3_SETTINGS,
        "azure" => AZURE_SETTINGS,
        "fs" => FS_SETTINGS,
        "url" | "hdfs" | "gcs" => {
            return Err(SqlError::not_modelled(format!(
                "repositories of type '{kind}'"
            )));
        }
        _ => {
            return Err(SqlError::illegal_argument(format!(
                "Invalid repository type \"{kind}\""
            )));
        }
    };
    let mut settings = BTreeMap::new();
    // `region` came with 6.3.0 (S3Repository.optionalSettings).
    let region_known = kind == "s3" && st.version.at_least(6, 3, 0);
    for (k, e) in props {
        let known = allowed.contains(&k.as_str())
            || GENERIC_REPO_SETTINGS.contains(&k.as_str())
            || (k == "region" && region_known);
        if !known {
            return Err(SqlError::illegal_argument(format!(
                "Setting '{k}' is not supported"
            )));
        }
        let v = eval_const(e, params)?;
        settings.insert(k.clone(), v.to_plain_string().unwrap_or_default());
    }
    let required: &[&str] = match kind.as_str() {
        "azure" => &["account"],
        "fs" => &["location"],
        _ => &[],
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| !settings.contains_key(*r))
        .collect();
    if !missing.is_empty() {
        return Err(SqlError::illegal_argument(format!(
            "The following required parameters are missing to create a repository of type \"{kind}\": [{}]",
            missing.join(", ")
        )));
    }
    if st.repositories.contains_key(name) {
        return Err(SqlError::new(
            "RepositoryAlreadyExistsException",
            format!("Repository '{name}' already exists"),
            "XX000",
        ));
    }
    let get = |k: &str| settings.get(k).cloned().unwrap_or_default();
    let verify_err = |cause: &str, msg: &str| {
        SqlError::internal(
            "RepositoryVerificationException",
            format!(
                "[{name}] Unable to verify the repository, [{name}] is not accessible on master node: {cause} '{msg}'"
            ),
        )
    };
    let found: Option<usize>;
    match kind.as_str() {
        "s3" => {
            let bucket = get("bucket");
            if bucket.is_empty() {
                return Err(verify_err(
                    "IllegalArgumentException",
                    "No bucket defined for s3 repository",
                ));
            }
            found = verify_s3(st, &settings, &bucket, &verify_err)?;
        }
        "azure" => {
            let account = get("account");
            let container = get("container");
            let candidates: Vec<(usize, &StorageLocation)> = st
                .storages
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(&s.location, StorageLocation::Azure { account: a, .. } if *a == account))
                .map(|(i, s)| (i, &s.location))
                .collect();
            if !settings.contains_key("key") && !settings.contains_key("sas_token") {
                return Err(verify_err(
                    "SettingsException",
                    "Neither a secret key nor a shared access token was set.",
                ));
            }
            if candidates.is_empty() {
                return Err(verify_err(
                    "UnknownHostException",
                    &format!("{account}.blob.core.windows.net"),
                ));
            }
            if !candidates
                .iter()
                .any(|(_, l)| matches!(l, StorageLocation::Azure { key, .. } if *key == get("key")))
            {
                return Err(verify_err(
                    "BlobStorageException",
                    "Status code 403, AuthenticationFailed: Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
                ));
            }
            let in_container: Vec<&(usize, &StorageLocation)> = candidates
                .iter()
                .filter(|(_, l)| matches!(l, StorageLocation::Azure { container: c, key, .. } if *c == container && *key == get("key")))
                .collect();
            if in_container.is_empty() {
                return Err(verify_err(
                    "BlobStorageException",
                    "Status code 404, ContainerNotFound: The specified container does not exist.",
                ));
            }
            let base = norm_path(&get("base_path"));
            found = in_container.iter().find_map(|(i, l)| match l {
                StorageLocation::Azure { base_path, .. } if norm_path(base_path) == base => {
                    Some(*i)
                }
                _ => None,
            });
        }
        _ => {
            let loc = get("location");
            found = st.storages.iter().position(
                |s| matches!(&s.location, StorageLocation::Fs { location } if *location == loc),
            );
            if found.is_none() {
                return Err(SqlError::internal(
                    "RepositoryException",
                    format!(
                        "[{name}] failed to create repository: [{name}] location [{loc}] doesn't match any of the locations specified by path.repo"
                    ),
                ));
            }
        }
    }
    st.repositories.insert(
        name.to_string(),
        RepoRt {
            kind,
            settings,
            storage: found,
        },
    );
    Ok(())
}

/// Where an S3 client sends its requests: `(host[:port], protocol)`, `None` for Amazon S3.
/// CrateDB lower-cases the endpoint (`S3RepositorySettings.ENDPOINT_SETTING`) and, like the
/// AWS SDK, takes the scheme of an endpoint written as a URL instead of `protocol`.
fn s3_address(endpoint: Option<&str>, protocol: Option<&str>) -> Option<(String, String)> {
    let endpoint = endpoint?.trim().to_lowercase();
    if endpoint.is_empty() {
        return None;
    }
    let (protocol, host) = match endpoint.split_once("://") {
        Some((scheme, rest)) => (scheme.to_string(), rest),
        None => (
            protocol.unwrap_or("https").trim().to_lowercase(),
            endpoint.as_str(),
        ),
    };
    let host = host.trim_end_matches('/').to_string();
    let hostname = host.split(':').next().unwrap_or_default();
    if hostname == "amazonaws.com" || hostname.ends_with(".amazonaws.com") {
        return None;
    }
    Some((host, protocol))
}

/// Bucket names the AWS SDK addresses virtual-hosted style (`BucketNameUtils.isDNSBucketName`).
fn dns_bucket(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..")
        && !bucket.contains(".-")
        && !bucket.contains("-.")
}

/// S3 "verification": which configured storage holds the repository's snapshots (`None`: a
/// reachable bucket without snapshots under `base_path`), or CrateDB's
/// `RepositoryVerificationException` for the first request that would fail.
fn verify_s3(
    st: &Cluster,
    settings: &BTreeMap<String, String>,
    bucket: &str,
    verify_err: &dyn Fn(&str, &str) -> SqlError,
) -> Result<Option<usize>, SqlError> {
    let get = |k: &str| settings.get(k).cloned().unwrap_or_default();
    let sdk = |cause: &str| {
        verify_err(
            "SdkClientException",
            &format!("Unable to execute HTTP request: {cause}"),
        )
    };
    let modern = st.version.at_least(6, 3, 0);
    let protocol = settings.get("protocol").map(String::as_str);
    if !modern
        && let Some(p) = protocol
        && !matches!(p.to_lowercase().as_str(), "http" | "https")
    {
        // S3RepositorySettings.PROTOCOL_SETTING parses com.amazonaws.Protocol before 6.3.0.
        return Err(verify_err(
            "IllegalArgumentException",
            &format!(
                "No enum constant com.amazonaws.Protocol.{}",
                p.to_uppercase()
            ),
        ));
    }
    let address = s3_address(settings.get("endpoint").map(String::as_str), protocol);
    let s3: Vec<(usize, &StorageLocation)> = st
        .storages
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.location, StorageLocation::S3 { .. }))
        .map(|(i, s)| (i, &s.location))
        .collect();
    let address_of = |l: &StorageLocation| match l {
        StorageLocation::S3 {
            endpoint, protocol, ..
        } => s3_address(endpoint.as_deref(), protocol.as_deref()),
        _ => None,
    };
    let host_of = |a: &Option<(String, String)>| a.as_ref().map(|(h, _)| h.clone());
    let at_host: Vec<&(usize, &StorageLocation)> = s3
        .iter()
        .filter(|(_, l)| host_of(&address_of(l)) == host_of(&address))
        .collect();
    let (hostname, reachable): (String, Vec<&(usize, &StorageLocation)>) = match &address {
        None => ("s3.amazonaws.com".into(), at_host),
        Some((host, protocol)) => {
            let hostname = host.split(':').next().unwrap_or_default().to_string();
            if at_host.is_empty() {
                return Err(sdk(&format!("{hostname}: Name or service not known")));
            }
            let same: Vec<_> = at_host
                .into_iter()
                .filter(|(_, l)| address_of(l).is_some_and(|(_, p)| p == *protocol))
                .collect();
            if same.is_empty() {
                return Err(sdk(&if protocol == "https" {
                    "Unsupported or unrecognized SSL message".to_string()
                } else {
                    format!("{host} failed to respond")
                }));
            }
            (hostname, same)
        }
    };
    // Path-style access is the default from 6.3.0 (S3RepositorySettings.USE_PATH_STYLE_ACCESS).
    let path_style = match settings.get("use_path_style_access") {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => modern,
    };
    let answers_virtual = |l: &StorageLocation| match l {
        StorageLocation::S3 {
            virtual_host_style,
            endpoint,
            ..
        } => virtual_host_style.unwrap_or(endpoint.is_none()),
        _ => false,
    };
    let reachable: Vec<_> = if path_style || !dns_bucket(bucket) {
        reachable
    } else {
        let virtual_ok: Vec<_> = reachable
            .into_iter()
            .filter(|(_, l)| answers_virtual(l))
            .collect();
        if virtual_ok.is_empty() {
            return Err(sdk(&format!(
                "{bucket}.{hostname}: Name or service not known"
            )));
        }
        virtual_ok
    };
    let candidates: Vec<&(usize, &StorageLocation)> = reachable
        .into_iter()
        .filter(|(_, l)| matches!(l, StorageLocation::S3 { bucket: b, .. } if b == bucket))
        .collect();
    if candidates.is_empty() {
        return Err(verify_err(
            "AmazonS3Exception",
            "The specified bucket does not exist (Service: Amazon S3; Status Code: 404; Error Code: NoSuchBucket)",
        ));
    }
    // The signing region: the repository's `region` (6.3.0+), else what the client infers for
    // a store that is not Amazon's: us-east-1.
    let signing = settings
        .get("region")
        .filter(|_| modern)
        .cloned()
        .unwrap_or_else(|| "us-east-1".into());
    let region_ok = |l: &StorageLocation| matches!(l, StorageLocation::S3 { region, .. } if region.as_ref().is_none_or(|r| *r == signing));
    if !candidates.iter().any(|(_, l)| region_ok(l)) {
        let expecting = candidates
            .iter()
            .find_map(|(_, l)| match l {
                StorageLocation::S3 { region, .. } => region.clone(),
                _ => None,
            })
            .unwrap_or_default();
        return Err(verify_err(
            "AmazonS3Exception",
            &format!(
                "The authorization header is malformed; the region '{signing}' is wrong; expecting '{expecting}' (Service: Amazon S3; Status Code: 400; Error Code: AuthorizationHeaderMalformed)"
            ),
        ));
    }
    let candidates: Vec<_> = candidates
        .into_iter()
        .filter(|(_, l)| region_ok(l))
        .collect();
    let key_ok = candidates
        .iter()
        .any(|(_, l)| matches!(l, StorageLocation::S3 { access_key, .. } if *access_key == get("access_key")));
    if !key_ok {
        return Err(verify_err(
            "AmazonS3Exception",
            "The AWS Access Key Id you provided does not exist in our records. (Service: Amazon S3; Status Code: 403; Error Code: InvalidAccessKeyId)",
        ));
    }
    let creds_ok = candidates.iter().any(|(_, l)| {
        matches!(l, StorageLocation::S3 { access_key, secret_key, .. }
            if *access_key == get("access_key") && *secret_key == get("secret_key"))
    });
    if !creds_ok {
        return Err(verify_err(
            "AmazonS3Exception",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method. (Service: Amazon S3; Status Code: 403; Error Code: SignatureDoesNotMatch)",
        ));
    }
    let base = norm_path(&get("base_path"));
    Ok(candidates.iter().find_map(|(i, l)| match l {
        StorageLocation::S3 { base_path, .. } if norm_path(base_path) == base => Some(*i),
        _ => None,
    }))
}

fn alter_user(
    st: &mut Cluster,
    session: &Session,
    user: &str,
    props: &[(String, Expr)],
    params: &[Value],
) -> Result<(), SqlError> {
    let is_super = st.users.get(&session.user).is_some_and(|u| u.superuser);
    if !st.users.contains_key(user) {
        return Err(SqlError::new(
            "RoleUnknownException",
            format!("Role '{user}' does not exist"),
            "XX000",
        ));
    }
    if !is_super && session.user != user {
        return Err(SqlError::new(
            "MissingPrivilegeException",
            format!("Missing 'AL' privilege for user '{}'", session.user),
            "XX000",
        ));
    }
    let mut password: Option<Option<String>> = None;
    let mut jwt: Option<Option<JwtDef>> = None;
    for (k, e) in props {
        match k.as_str() {
            "password" => {
                let v = eval_const(e, params)?;
                password = Some(match v {
                    Value::Null => None,
                    Value::Text(s) => Some(s),
                    other => {
                        return Err(SqlError::illegal_argument(format!(
                            "Invalid password value {}",
                            other.to_json()
                        )));
                    }
                });
            }
            "jwt" => {
                if !st.version.at_least(5, 7, 0) {
                    return Err(SqlError::illegal_argument("Setting 'jwt' is not supported"));
                }
                let v = eval_const(e, params)?;
                jwt = Some(match v {
                    Value::Null => None,
                    Value::Object(m) => {
                        for key in m.keys() {
                            if !matches!(key.as_str(), "iss" | "username" | "aud") {
                                return Err(SqlError::illegal_argument(format!(
                                    "Only 'iss', 'username' and 'aud' JWT properties are allowed, got '{key}'"
                                )));
                            }
                        }
                        let field = |f: &str| -> Result<String, SqlError> {
                            m.get(f).and_then(|v| v.to_plain_string()).ok_or_else(|| {
                                SqlError::illegal_argument(format!(
                                    "JWT property '{f}' must have a non-null value"
                                ))
                            })
                        };
                        Some(JwtDef {
                            iss: field("iss")?,
                            username: field("username")?,
                            aud: m.get("aud").and_then(|v| v.to_plain_string()),
                        })
                    }
                    other => {
                        return Err(SqlError::illegal_argument(format!(
                            "Invalid jwt value {}",
                            other.to_json()
                        )));
                    }
                });
            }
            _ => {
                return Err(SqlError::illegal_argument(format!(
                    "Setting '{k}' is not supported"
                )));
            }
        }
    }
    if let Some(Some(j)) = &jwt {
        let clash = st.users.iter().any(|(name, u)| {
            name != user
                && u.jwt
                    .as_ref()
                    .is_some_and(|o| o.iss == j.iss && o.username == j.username)
        });
        if clash {
            return Err(SqlError::new(
                "RoleAlreadyExistsException",
                "Another role with the same combination of iss/username jwt properties already exists",
                "XX000",
            ));
        }
    }
    let u = st.users.get_mut(user).expect("checked above");
    if let Some(p) = password {
        u.password = p;
    }
    if let Some(j) = jwt {
        u.jwt = j;
    }
    Ok(())
}
