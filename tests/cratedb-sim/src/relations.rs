//! The virtual system relations: their columns (with CrateDB's names and
//! types) and their rows, computed from the cluster state.

use crate::cluster::{
    Cluster, PartitionRt, RecoveryKind, RelKind, RelationRt, RestoreRt, ShardRt, ShardState,
    SnapRt, Version, index_name, shard_in,
};
use crate::error::SqlError;
use crate::eval::{Row, RowSink, subscript_path};
use crate::model::{DISK_WATERMARK_DECISION, DISK_WATERMARK_EXPLANATION};
use crate::sql::ast::SubKey;
use crate::value::{ColType, ObjType, Value};

/// A modelled relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rel {
    Nodes,
    Cluster,
    Repositories,
    Snapshots,
    SnapshotRestore,
    Shards,
    Allocations,
    Users,
    Privileges,
    Jobs,
    JobsLog,
    Tables,
    TablePartitions,
}

impl Rel {
    pub fn resolve(schema: &str, name: &str) -> Option<Rel> {
        Some(match (schema, name) {
            ("sys", "nodes") => Rel::Nodes,
            ("sys", "cluster") => Rel::Cluster,
            ("sys", "repositories") => Rel::Repositories,
            ("sys", "snapshots") => Rel::Snapshots,
            ("sys", "snapshot_restore") => Rel::SnapshotRestore,
            ("sys", "shards") => Rel::Shards,
            ("sys", "allocations") => Rel::Allocations,
            ("sys", "users") => Rel::Users,
            ("sys", "privileges") => Rel::Privileges,
            ("sys", "jobs") => Rel::Jobs,
            ("sys", "jobs_log") => Rel::JobsLog,
            ("information_schema", "tables") => Rel::Tables,
            ("information_schema", "table_partitions") => Rel::TablePartitions,
            _ => return None,
        })
    }

    /// The columns of the relation as CrateDB `version` has them.
    pub fn columns_for(self, version: &Version) -> Vec<(String, ColType)> {
        let all = self.columns();
        match self.column_map(version) {
            None => all,
            Some(map) => map.iter().map(|&i| all[i].clone()).collect(),
        }
    }

    /// Positions in [`Rel::columns`] (the newest layout) of the columns CrateDB `version` has;
    /// `None` when it has them all.
    pub fn column_map(self, version: &Version) -> Option<Vec<usize>> {
        match self {
            // SysSnapshotsTableInfo gained these with 5.9.0.
            Rel::Snapshots if !version.at_least(5, 9, 0) => {
                let added = [
                    "id",
                    "relations",
                    "reason",
                    "total_shards",
                    "include_global_state",
                ];
                Some(
                    self.columns()
                        .iter()
                        .enumerate()
                        .filter(|(_, (n, _))| !added.contains(&n.as_str()))
                        .map(|(i, _)| i)
                        .collect(),
                )
            }
            _ => None,
        }
    }

    /// Reading it counts as an observation of restore progress.
    pub fn observes_restores(self) -> bool {
        matches!(self, Rel::Shards | Rel::SnapshotRestore)
    }

    pub fn columns(self) -> Vec<(String, ColType)> {
        use ColType::*;
        let text_arr = || ColType::array(Text);
        let node_obj = || ColType::obj(vec![("id", Text), ("name", Text)]);
        let cols: Vec<(&str, ColType)> = match self {
            Rel::Nodes => vec![
                ("id", Text),
                ("name", Text),
                ("hostname", Text),
                (
                    "version",
                    ColType::obj(vec![
                        ("build_hash", Text),
                        ("build_snapshot", Bool),
                        ("minimum_index_compatibility_version", Text),
                        ("minimum_wire_compatibility_version", Text),
                        ("number", Text),
                    ]),
                ),
            ],
            Rel::Cluster => vec![
                ("id", Text),
                ("name", Text),
                ("master_node", Text),
                ("settings", crate::settings::settings_type()),
            ],
            Rel::Repositories => vec![
                ("name", Text),
                ("type", Text),
                ("settings", ColType::Object(ObjType::dynamic(Text))),
            ],
            Rel::Snapshots => vec![
                ("id", Text),
                ("name", Text),
                ("repository", Text),
                ("concrete_indices", text_arr()),
                ("tables", text_arr()),
                (
                    "relations",
                    ColType::array(ColType::obj(vec![
                        ("table_schema", Text),
                        ("table_name", Text),
                    ])),
                ),
                (
                    "table_partitions",
                    ColType::array(ColType::obj(vec![
                        ("table_schema", Text),
                        ("table_name", Text),
                        ("values", text_arr()),
                    ])),
                ),
                ("started", Timestamp),
                ("finished", Timestamp),
                ("version", Text),
                ("state", Text),
                ("failures", text_arr()),
                ("reason", Text),
                ("total_shards", Int4),
                ("include_global_state", Bool),
            ],
            Rel::SnapshotRestore => vec![
                ("id", Text),
                ("name", Text),
                ("repository", Text),
                (
                    "shards",
                    ColType::array(ColType::obj(vec![
                        ("table_schema", Text),
                        ("table_name", Text),
                        ("partition_ident", Text),
                        ("shard_id", Int4),
                        ("state", Text),
                    ])),
                ),
                ("state", Text),
            ],
            Rel::Shards => vec![
                ("schema_name", Text),
                ("table_name", Text),
                ("id", Int4),
                ("partition_ident", Text),
                ("num_docs", Int8),
                ("primary", Bool),
                ("relocating_node", Text),
                ("size", Int8),
                ("state", Text),
                ("closed", Bool),
                ("routing_state", Text),
                ("orphan_partition", Bool),
                (
                    "recovery",
                    ColType::obj(vec![
                        ("stage", Text),
                        ("type", Text),
                        ("total_time", Int8),
                        (
                            "size",
                            ColType::obj(vec![
                                ("used", Int8),
                                ("reused", Int8),
                                ("recovered", Int8),
                                ("percent", Float4),
                            ]),
                        ),
                        (
                            "files",
                            ColType::obj(vec![
                                ("used", Int4),
                                ("reused", Int4),
                                ("recovered", Int4),
                                ("percent", Float4),
                            ]),
                        ),
                    ]),
                ),
                ("node", node_obj()),
            ],
            Rel::Allocations => vec![
                ("table_schema", Text),
                ("table_name", Text),
                ("partition_ident", Text),
                ("shard_id", Int4),
                ("node_id", Text),
                ("primary", Bool),
                ("current_state", Text),
                ("explanation", Text),
                (
                    "decisions",
                    ColType::array(ColType::obj(vec![
                        ("node_id", Text),
                        ("node_name", Text),
                        ("explanations", text_arr()),
                    ])),
                ),
            ],
            Rel::Users => vec![
                ("name", Text),
                ("superuser", Bool),
                ("password", Text),
                (
                    "jwt",
                    ColType::obj(vec![("iss", Text), ("username", Text), ("aud", Text)]),
                ),
            ],
            Rel::Privileges => vec![
                ("grantee", Text),
                ("grantor", Text),
                ("state", Text),
                ("type", Text),
                ("class", Text),
                ("ident", Text),
            ],
            Rel::Jobs => vec![
                ("id", Text),
                ("username", Text),
                ("node", node_obj()),
                ("stmt", Text),
                ("started", Timestamp),
            ],
            Rel::JobsLog => vec![
                ("id", Text),
                ("username", Text),
                ("stmt", Text),
                ("started", Timestamp),
                ("ended", Timestamp),
                ("error", Text),
            ],
            Rel::Tables => vec![
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("table_type", Text),
                ("number_of_shards", Int4),
                ("number_of_replicas", Text),
                ("clustered_by", Text),
                ("partitioned_by", text_arr()),
                ("closed", Bool),
                ("blobs_path", Text),
                ("column_policy", Text),
                ("routing_hash_function", Text),
                ("self_referencing_column_name", Text),
                ("reference_generation", Text),
                ("table_owner", Text),
            ],
            Rel::TablePartitions => vec![
                ("table_schema", Text),
                ("table_name", Text),
                ("partition_ident", Text),
                ("values", ColType::Object(ObjType::dynamic(Text))),
                ("number_of_shards", Int4),
                ("number_of_replicas", Text),
                ("routing_hash_function", Text),
                ("closed", Bool),
            ],
        };
        cols.into_iter().map(|(n, t)| (n.to_string(), t)).collect()
    }
}

/// System relations CrateDB has that the simulator lists in
/// `information_schema.tables` but does not model for reading.
pub const SYSTEM_RELATIONS: &[(&str, &str)] = &[
    ("information_schema", "character_sets"),
    ("information_schema", "columns"),
    ("information_schema", "foreign_server_options"),
    ("information_schema", "foreign_servers"),
    ("information_schema", "foreign_table_options"),
    ("information_schema", "foreign_tables"),
    ("information_schema", "key_column_usage"),
    ("information_schema", "referential_constraints"),
    ("information_schema", "routines"),
    ("information_schema", "schemata"),
    ("information_schema", "sql_features"),
    ("information_schema", "table_constraints"),
    ("information_schema", "table_partitions"),
    ("information_schema", "tables"),
    ("information_schema", "user_mapping_options"),
    ("information_schema", "user_mappings"),
    ("information_schema", "views"),
    ("pg_catalog", "pg_am"),
    ("pg_catalog", "pg_attrdef"),
    ("pg_catalog", "pg_attribute"),
    ("pg_catalog", "pg_class"),
    ("pg_catalog", "pg_constraint"),
    ("pg_catalog", "pg_database"),
    ("pg_catalog", "pg_description"),
    ("pg_catalog", "pg_index"),
    ("pg_catalog", "pg_namespace"),
    ("pg_catalog", "pg_proc"),
    ("pg_catalog", "pg_roles"),
    ("pg_catalog", "pg_settings"),
    ("pg_catalog", "pg_tables"),
    ("pg_catalog", "pg_type"),
    ("pg_catalog", "pg_views"),
    ("sys", "allocations"),
    ("sys", "checks"),
    ("sys", "cluster"),
    ("sys", "health"),
    ("sys", "jobs"),
    ("sys", "jobs_log"),
    ("sys", "jobs_metrics"),
    ("sys", "node_checks"),
    ("sys", "nodes"),
    ("sys", "operations"),
    ("sys", "operations_log"),
    ("sys", "privileges"),
    ("sys", "repositories"),
    ("sys", "roles"),
    ("sys", "segments"),
    ("sys", "shards"),
    ("sys", "snapshot_restore"),
    ("sys", "snapshots"),
    ("sys", "summits"),
    ("sys", "users"),
];

/// Context of the statement that reads a relation.
pub struct ReadCtx<'a> {
    pub current_stmt: &'a str,
    pub current_user: &'a str,
    pub current_job_id: &'a str,
    pub started: i64,
}

fn node_value(c: &Cluster) -> Value {
    let n = &c.nodes[0];
    Value::object([("id", Value::text(&n.id)), ("name", Value::text(&n.name))])
}

/// `(type, stage)` of a shard's `recovery`, `None` where the column is NULL.
fn recovery_head(s: &ShardRt, primary: bool) -> Option<(&'static str, &'static str)> {
    Some(match (s.recovery, s.state) {
        (_, ShardState::Unassigned | ShardState::Initializing) => return None,
        (RecoveryKind::None, _) => return None,
        (RecoveryKind::ExistingStore, _) => {
            (if primary { "EXISTING_STORE" } else { "PEER" }, "DONE")
        }
        (RecoveryKind::Snapshot, ShardState::Started) => {
            (if primary { "SNAPSHOT" } else { "PEER" }, "DONE")
        }
        (RecoveryKind::Snapshot, _) => ("SNAPSHOT", "INDEX"),
    })
}

/// `recovery['files']`: the simulator counts one file per MB (1 to 500).
fn recovery_files(s: &ShardRt) -> (i64, i64, f64) {
    let files_used: i64 = if s.used == 0 {
        0
    } else {
        ((s.used / 1_000_000) as i64).clamp(1, 500)
    };
    let files_rec = if s.used == 0 {
        0
    } else {
        (files_used as f64 * s.recovered as f64 / s.used as f64).floor() as i64
    };
    let files_pct = if files_used == 0 {
        100.0
    } else {
        files_rec as f64 * 100.0 / files_used as f64
    };
    (files_used, files_rec, files_pct)
}

fn recovery_value(s: &ShardRt, primary: bool) -> Value {
    let Some((kind, stage)) = recovery_head(s, primary) else {
        return Value::Null;
    };
    let (files_used, files_rec, files_pct) = recovery_files(s);
    Value::object([
        ("stage", Value::text(stage)),
        ("type", Value::text(kind)),
        (
            "total_time",
            Value::Int(if stage == "DONE" { 1500 } else { 250 }),
        ),
        (
            "size",
            Value::object([
                ("used", Value::Int(s.used as i64)),
                ("reused", Value::Int(0)),
                ("recovered", Value::Int(s.recovered as i64)),
                ("percent", Value::Float(s.percent())),
            ]),
        ),
        (
            "files",
            Value::object([
                ("used", Value::Int(files_used)),
                ("reused", Value::Int(0)),
                ("recovered", Value::Int(files_rec)),
                ("percent", Value::Float(files_pct)),
            ]),
        ),
    ])
}

/// `recovery[path...]` without building the object for the paths progress queries read.
fn recovery_path(s: &ShardRt, primary: bool, path: &[SubKey]) -> Value {
    let Some((kind, stage)) = recovery_head(s, primary) else {
        return Value::Null;
    };
    let name = |i: usize| match path.get(i) {
        Some(SubKey::Name(n)) => Some(n.as_str()),
        _ => None,
    };
    match (path.len(), name(0), name(1)) {
        (1, Some("type"), _) => Value::text(kind),
        (1, Some("stage"), _) => Value::text(stage),
        (2, Some("size"), Some("used")) => Value::Int(s.used as i64),
        (2, Some("size"), Some("recovered")) => Value::Int(s.recovered as i64),
        (2, Some("size"), Some("reused")) => Value::Int(0),
        (2, Some("size"), Some("percent")) => Value::Float(s.percent()),
        _ => subscript_path(&recovery_value(s, primary), path),
    }
}

/// Replica state derived from its primary and the allocation setting.
fn replica_state(replicas_allowed: bool, primary: &ShardRt) -> ShardState {
    if primary.state == ShardState::Started && replicas_allowed {
        ShardState::Started
    } else {
        ShardState::Unassigned
    }
}

/// Feed one row to the sink; `Ok(false)` from the enclosing function once it wants no more.
macro_rules! emit {
    ($sink:expr, $row:expr) => {
        if !$sink(&$row)? {
            return Ok(false);
        }
    };
}

/// A shard copy of `sys.shards` or `sys.allocations`.
struct ShardCopy<'a> {
    schema: &'a str,
    table: &'a str,
    ident: Option<&'a str>,
    closed: bool,
    shard: &'a ShardRt,
    /// The copy's state (a replica's is derived from its primary's).
    state: ShardState,
    primary: bool,
    /// Numbers the relations of a scan: schema and table are the same while it is.
    run: u64,
}

/// Every primary and replica copy, relation by relation; stops when `f` says so.
fn scan_shard_copies(
    c: &Cluster,
    f: &mut dyn FnMut(ShardCopy<'_>) -> Result<bool, SqlError>,
) -> Result<bool, SqlError> {
    let replicas_allowed = c.replicas_allowed();
    for (run, ((schema, table), rel)) in c.relations.iter().enumerate() {
        if rel.kind != RelKind::Table {
            continue;
        }
        let replicas = rel.replica_count(c.nodes.len());
        let parts = std::iter::once((None, rel.closed, &rel.shards)).chain(
            rel.partitions
                .iter()
                .map(|(ident, p)| (Some(ident.as_str()), p.closed || rel.closed, &p.shards)),
        );
        for (ident, closed, shards) in parts {
            for s in shards {
                let copy = |state, primary| ShardCopy {
                    schema,
                    table,
                    ident,
                    closed,
                    shard: s,
                    state,
                    primary,
                    run: run as u64,
                };
                if !f(copy(s.state, true))? {
                    return Ok(false);
                }
                for _ in 0..replicas {
                    if !f(copy(replica_state(replicas_allowed, s), false))? {
                        return Ok(false);
                    }
                }
            }
        }
    }
    Ok(true)
}

/// A row of `sys.shards`.
struct ShardRow<'a> {
    copy: ShardCopy<'a>,
    node: &'a Value,
}

impl ShardRow<'_> {
    fn assigned(&self) -> bool {
        matches!(
            self.copy.state,
            ShardState::Recovering | ShardState::Started
        )
    }
    /// Whether `recovery` is read (a replica has one only once started).
    fn has_recovery(&self) -> bool {
        self.copy.primary || self.copy.state == ShardState::Started
    }
}

impl Row for ShardRow<'_> {
    fn cell(&self, col: usize) -> Value {
        let c = &self.copy;
        let s = c.shard;
        match col {
            0 => Value::text(c.schema),
            1 => Value::text(c.table),
            2 => Value::Int(s.id as i64),
            3 => match c.ident {
                Some(i) => Value::text(i),
                None if self.assigned() => Value::text(""),
                None => Value::Null,
            },
            4 => Value::Int(if c.state == ShardState::Started {
                s.docs as i64
            } else {
                0
            }),
            5 => Value::Bool(c.primary),
            7 => Value::Int(if self.assigned() {
                s.recovered as i64
            } else {
                0
            }),
            8 => Value::text(c.state.name()),
            9 => Value::Bool(c.closed),
            10 => Value::text(c.state.routing_name()),
            11 => Value::Bool(false),
            12 if self.has_recovery() => recovery_value(s, c.primary),
            13 if self.assigned() => self.node.clone(),
            _ => Value::Null,
        }
    }

    fn cell_path(&self, col: usize, path: &[SubKey]) -> Value {
        match col {
            12 if self.has_recovery() => recovery_path(self.copy.shard, self.copy.primary, path),
            12 => Value::Null,
            _ => subscript_path(&self.cell(col), path),
        }
    }

    /// `schema_name` and `table_name`.
    fn stable_columns(&self) -> Option<(u64, u64)> {
        Some((0b11, self.copy.run))
    }

    fn cell_str(&self, col: usize) -> Option<&str> {
        let c = &self.copy;
        match col {
            0 => Some(c.schema),
            1 => Some(c.table),
            3 => c.ident,
            8 => Some(c.state.name()),
            10 => Some(c.state.routing_name()),
            _ => None,
        }
    }
}

/// A row of `sys.allocations`.
struct AllocationRow<'a> {
    copy: ShardCopy<'a>,
    c: &'a Cluster,
}

impl AllocationRow<'_> {
    /// `(explanation, per-node decision)` of an unassigned copy.
    fn why(&self) -> Option<(String, String)> {
        let copy = &self.copy;
        if copy.state != ShardState::Unassigned {
            return None;
        }
        if copy.primary {
            let expl = copy
                .shard
                .explanation
                .clone()
                .unwrap_or_else(|| DISK_WATERMARK_EXPLANATION.to_string());
            let decision = if expl == DISK_WATERMARK_EXPLANATION {
                DISK_WATERMARK_DECISION.to_string()
            } else {
                expl.clone()
            };
            return Some((expl, decision));
        }
        let enable = self
            .c
            .effective_setting("cluster.routing.allocation.enable");
        let decision = if copy.shard.state != ShardState::Started {
            "primary shard for this replica is not yet active".to_string()
        } else {
            format!(
                "replica allocations are forbidden due to cluster setting [cluster.routing.allocation.enable={}]",
                enable.to_plain_string().unwrap_or_default()
            )
        };
        Some((
            "cannot allocate because allocation is not permitted to any of the nodes".into(),
            decision,
        ))
    }
}

impl Row for AllocationRow<'_> {
    fn cell(&self, col: usize) -> Value {
        let copy = &self.copy;
        let node = &self.c.nodes[0];
        match col {
            0 => Value::text(copy.schema),
            1 => Value::text(copy.table),
            2 => Value::opt_text(copy.ident),
            3 => Value::Int(copy.shard.id as i64),
            4 if copy.state != ShardState::Unassigned => Value::text(&node.id),
            5 => Value::Bool(copy.primary),
            6 => Value::text(copy.state.routing_name()),
            7 => self
                .why()
                .map(|(e, _)| Value::Text(e))
                .unwrap_or(Value::Null),
            8 => match self.why() {
                Some((_, d)) => Value::Array(vec![Value::object([
                    ("node_id", Value::text(&node.id)),
                    ("node_name", Value::text(&node.name)),
                    ("explanations", Value::Array(vec![Value::Text(d)])),
                ])]),
                None => Value::Null,
            },
            _ => Value::Null,
        }
    }

    /// `table_schema` and `table_name`.
    fn stable_columns(&self) -> Option<(u64, u64)> {
        Some((0b11, self.copy.run))
    }
}

/// A row of `information_schema.tables`: a user relation or a system table.
enum TableRow<'a> {
    User {
        schema: &'a str,
        name: &'a str,
        rel: &'a RelationRt,
    },
    System {
        schema: &'a str,
        name: &'a str,
    },
}

impl Row for TableRow<'_> {
    fn cell(&self, col: usize) -> Value {
        match *self {
            TableRow::User { schema, name, rel } => {
                let is_view = matches!(rel.kind, RelKind::View { .. });
                let table = |v: Value| if is_view { Value::Null } else { v };
                match col {
                    0 => Value::text("crate"),
                    1 => Value::text(schema),
                    2 => Value::text(name),
                    3 => Value::text(if is_view { "VIEW" } else { "BASE TABLE" }),
                    4 => table(Value::Int(rel.number_of_shards as i64)),
                    5 => table(Value::text(&rel.replicas)),
                    6 => table(Value::text("_id")),
                    7 if rel.is_partitioned() => {
                        Value::Array(rel.partitioned_by.iter().map(Value::text).collect())
                    }
                    8 => table(Value::Bool(rel.closed)),
                    10 => table(Value::text("strict")),
                    11 => table(Value::text(
                        "org.elasticsearch.cluster.routing.Murmur3HashFunction",
                    )),
                    12 => table(Value::text("_id")),
                    13 => table(Value::text("SYSTEM GENERATED")),
                    14 => Value::text("crate"),
                    _ => Value::Null,
                }
            }
            TableRow::System { schema, name } => match col {
                0 => Value::text("crate"),
                1 => Value::text(schema),
                2 => Value::text(name),
                3 => Value::text("BASE TABLE"),
                10 => Value::text("strict"),
                13 => Value::text("SYSTEM GENERATED"),
                _ => Value::Null,
            },
        }
    }
}

/// A row of `information_schema.table_partitions`.
struct PartitionRow<'a> {
    schema: &'a str,
    name: &'a str,
    ident: &'a str,
    rel: &'a RelationRt,
    p: &'a PartitionRt,
    /// Numbers the relations of the scan.
    run: u64,
}

impl Row for PartitionRow<'_> {
    fn cell(&self, col: usize) -> Value {
        match col {
            0 => Value::text(self.schema),
            1 => Value::text(self.name),
            2 => Value::text(self.ident),
            3 => Value::object(self.p.values.iter().map(|(k, v)| (k.clone(), v.clone()))),
            4 => Value::Int(self.p.shards.len() as i64),
            5 => Value::text(&self.rel.replicas),
            6 => Value::text("org.elasticsearch.cluster.routing.Murmur3HashFunction"),
            7 => Value::Bool(self.p.closed || self.rel.closed),
            _ => Value::Null,
        }
    }

    /// `table_schema` and `table_name`.
    fn stable_columns(&self) -> Option<(u64, u64)> {
        Some((0b11, self.run))
    }

    fn cell_str(&self, col: usize) -> Option<&str> {
        match col {
            0 => Some(self.schema),
            1 => Some(self.name),
            2 => Some(self.ident),
            _ => None,
        }
    }
}

/// A row of `sys.snapshots`.
struct SnapshotRow<'a> {
    c: &'a Cluster,
    repo: &'a str,
    s: &'a SnapRt,
    /// The version's columns as positions in the newest layout (see [`Rel::column_map`]).
    map: Option<&'a [usize]>,
}

impl Row for SnapshotRow<'_> {
    fn cell(&self, col: usize) -> Value {
        let s = &self.s.def;
        let tables = || s.tables.iter().enumerate();
        // A snapshot this cluster is still creating comes from its SnapshotsInProgress:
        // `finished` 0, the server's version, no failures.
        let in_progress = s.state == "IN_PROGRESS";
        let col = self
            .map
            .map_or(col, |m| m.get(col).copied().unwrap_or(usize::MAX));
        match col {
            0 => Value::text(Cluster::snapshot_uuid(s)),
            1 => Value::text(&s.name),
            2 => Value::text(self.repo),
            3 => Value::Array(
                tables()
                    .flat_map(|(ti, t)| {
                        let plain = t
                            .partitioned_by
                            .is_empty()
                            .then(|| index_name(&t.schema, &t.name, None));
                        plain.into_iter().chain(
                            self.s.idents[ti]
                                .iter()
                                .map(|ident| index_name(&t.schema, &t.name, Some(ident))),
                        )
                    })
                    .map(Value::Text)
                    .collect(),
            ),
            4 => Value::Array(tables().map(|(_, t)| Value::Text(t.fqn())).collect()),
            5 => Value::Array(
                tables()
                    .map(|(_, t)| {
                        Value::object([
                            ("table_schema", Value::text(&t.schema)),
                            ("table_name", Value::text(&t.name)),
                        ])
                    })
                    .collect(),
            ),
            6 => Value::Array(
                tables()
                    .flat_map(|(_, t)| t.partitions.iter().map(move |p| (t, p)))
                    .map(|(t, p)| {
                        let values = t
                            .partitioned_by
                            .iter()
                            .map(|col| {
                                p.values
                                    .get(col)
                                    .map(Value::from_json)
                                    .and_then(|v| v.to_plain_string())
                                    .map(Value::Text)
                                    .unwrap_or(Value::Null)
                            })
                            .collect();
                        Value::object([
                            ("table_schema", Value::text(&t.schema)),
                            ("table_name", Value::text(&t.name)),
                            ("values", Value::Array(values)),
                        ])
                    })
                    .collect(),
            ),
            7 => Value::Ts(s.started),
            8 => Value::Ts(if in_progress { 0 } else { s.finished }),
            9 if in_progress => Value::text(&self.c.version_text),
            9 => Value::text(&s.version),
            10 => Value::text(&s.state),
            11 if in_progress => Value::Array(Vec::new()),
            11 => Value::Array(s.failures.iter().map(Value::text).collect()),
            12 => Value::opt_text(s.reason.as_deref()),
            13 => Value::Int(
                tables()
                    .map(|(_, t)| {
                        let indices = if t.partitioned_by.is_empty() {
                            1
                        } else {
                            t.partitions.len() as i64
                        };
                        indices * t.shards as i64
                    })
                    .sum(),
            ),
            14 => Value::Bool(s.include_global_state),
            _ => Value::Null,
        }
    }
}

/// A row of `sys.snapshot_restore`.
struct RestoreRow<'a> {
    c: &'a Cluster,
    r: &'a RestoreRt,
}

impl Row for RestoreRow<'_> {
    fn cell(&self, col: usize) -> Value {
        let r = self.r;
        match col {
            0 => Value::text(&r.id),
            1 => Value::text(&r.snapshot),
            2 => Value::text(&r.repository),
            3 => {
                let mut shards = Vec::with_capacity(r.shard_count());
                for ix in &r.indices {
                    let current = (!ix.deleted)
                        .then(|| {
                            self.c
                                .index_shards_of(&ix.relation, ix.partition.as_deref())
                        })
                        .flatten();
                    for &id in &ix.shards {
                        let state = current
                            .and_then(|all| shard_in(all, id))
                            .map(|s| match (&s.restore, s.state) {
                                (Some(rs), _) if rs.failed => "FAILURE",
                                (_, ShardState::Started) => "SUCCESS",
                                (_, ShardState::Recovering) => "STARTED",
                                _ => "INIT",
                            })
                            .unwrap_or("FAILURE");
                        shards.push(Value::object([
                            ("table_schema", Value::text(&ix.relation.0)),
                            ("table_name", Value::text(&ix.relation.1)),
                            ("partition_ident", Value::opt_text(ix.partition.as_deref())),
                            ("shard_id", Value::Int(id as i64)),
                            ("state", Value::text(state)),
                        ]));
                    }
                }
                Value::Array(shards)
            }
            4 => Value::text(r.state),
            _ => Value::Null,
        }
    }
}

/// Feed the rows of `rel` to `sink` until it answers `false`. Large relations are read lazily,
/// cell by cell.
pub fn scan(
    c: &Cluster,
    rel: Rel,
    ctx: &ReadCtx<'_>,
    sink: &mut RowSink<'_>,
) -> Result<(), SqlError> {
    scan_rows_of(c, rel, ctx, sink).map(|_| ())
}

fn scan_rows_of(
    c: &Cluster,
    rel: Rel,
    ctx: &ReadCtx<'_>,
    sink: &mut RowSink<'_>,
) -> Result<bool, SqlError> {
    match rel {
        Rel::Shards => {
            let node = node_value(c);
            scan_shard_copies(c, &mut |copy| sink(&ShardRow { copy, node: &node }))
        }
        Rel::Allocations => scan_shard_copies(c, &mut |copy| sink(&AllocationRow { copy, c })),
        Rel::Tables => {
            for ((schema, name), rel) in &c.relations {
                emit!(sink, TableRow::User { schema, name, rel });
            }
            for (schema, name) in SYSTEM_RELATIONS {
                emit!(sink, TableRow::System { schema, name });
            }
            Ok(true)
        }
        Rel::TablePartitions => {
            for (run, ((schema, name), rel)) in c.relations.iter().enumerate() {
                for (ident, p) in &rel.partitions {
                    emit!(
                        sink,
                        PartitionRow {
                            schema,
                            name,
                            ident,
                            rel,
                            p,
                            run: run as u64,
                        }
                    );
                }
            }
            Ok(true)
        }
        Rel::Snapshots => {
            let map = Rel::Snapshots.column_map(&c.version);
            // SysSnapshots lists the cluster's own snapshots in progress from 5.7.3 on.
            let in_progress_shown = c.version.at_least(5, 7, 3);
            for repo in c.repositories.keys() {
                for s in c.repo_snapshots(repo) {
                    if s.def.state == "IN_PROGRESS" && !in_progress_shown {
                        continue;
                    }
                    emit!(
                        sink,
                        SnapshotRow {
                            c,
                            repo,
                            s,
                            map: map.as_deref()
                        }
                    );
                }
            }
            Ok(true)
        }
        Rel::SnapshotRestore => {
            for r in &c.restores {
                emit!(sink, RestoreRow { c, r });
            }
            Ok(true)
        }
        small => {
            for row in rows(c, small, ctx) {
                emit!(sink, row);
            }
            Ok(true)
        }
    }
}

/// All rows of one of the small relations, in column order.
fn rows(c: &Cluster, rel: Rel, ctx: &ReadCtx<'_>) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = Vec::new();
    match rel {
        Rel::Nodes => {
            for n in &c.nodes {
                out.push(vec![
                    Value::text(&n.id),
                    Value::text(&n.name),
                    Value::text(&n.hostname),
                    Value::object([
                        (
                            "build_hash",
                            Value::text("5d4f5a1cbb1b7a7a6a8ea3c9b4d6f3e2a1b0c9d8"),
                        ),
                        ("build_snapshot", Value::Bool(false)),
                        ("minimum_index_compatibility_version", Value::text("4.0.0")),
                        ("minimum_wire_compatibility_version", Value::text("4.0.0")),
                        ("number", Value::text(&c.version_text)),
                    ]),
                ]);
            }
        }
        Rel::Cluster => {
            let mut root = std::collections::BTreeMap::new();
            for def in crate::settings::SETTINGS {
                crate::settings::insert_nested(&mut root, def.name, c.effective_setting(def.name));
            }
            out.push(vec![
                Value::text(&c.cluster_id),
                Value::text(&c.cluster_name),
                Value::text(&c.nodes[0].id),
                Value::Object(root),
            ]);
        }
        Rel::Repositories => {
            for (name, r) in &c.repositories {
                let masked = [
                    "access_key",
                    "secret_key",
                    "key",
                    "account",
                    "sas_token",
                    "session_token",
                ];
                let settings = Value::object(r.settings.iter().map(|(k, v)| {
                    let v = if masked.contains(&k.as_str()) {
                        "[xxxxx]".to_string()
                    } else {
                        v.clone()
                    };
                    (k.clone(), Value::Text(v))
                }));
                out.push(vec![Value::text(name), Value::text(&r.kind), settings]);
            }
        }
        Rel::Users => {
            for (name, u) in &c.users {
                out.push(vec![
                    Value::text(name),
                    Value::Bool(u.superuser),
                    if u.password.is_some() {
                        Value::text("********")
                    } else {
                        Value::Null
                    },
                    match &u.jwt {
                        Some(j) => Value::object([
                            ("iss", Value::text(&j.iss)),
                            ("username", Value::text(&j.username)),
                            (
                                "aud",
                                Value::text(j.aud.clone().unwrap_or_else(|| c.cluster_id.clone())),
                            ),
                        ]),
                        None => Value::Null,
                    },
                ]);
            }
        }
        Rel::Privileges => {
            for p in &c.privileges {
                out.push(vec![
                    Value::text(&p.grantee),
                    Value::text(&p.grantor),
                    Value::text(&p.state),
                    Value::text(&p.kind),
                    Value::text(&p.class),
                    Value::opt_text(p.ident.as_deref()),
                ]);
            }
        }
        Rel::Jobs => {
            let node = node_value(c);
            for j in &c.jobs {
                out.push(vec![
                    Value::text(&j.id),
                    Value::text(&j.username),
                    node.clone(),
                    Value::text(&j.stmt),
                    Value::Ts(j.started),
                ]);
            }
            out.push(vec![
                Value::text(ctx.current_job_id),
                Value::text(ctx.current_user),
                node,
                Value::text(ctx.current_stmt),
                Value::Ts(ctx.started),
            ]);
        }
        Rel::JobsLog => {
            for j in &c.jobs_log {
                out.push(vec![
                    Value::text(&j.id),
                    Value::text(&j.username),
                    Value::text(&j.stmt),
                    Value::Ts(j.started),
                    Value::Ts(j.ended),
                    Value::opt_text(j.error.as_deref()),
                ]);
            }
        }
        Rel::Shards
        | Rel::Allocations
        | Rel::Tables
        | Rel::TablePartitions
        | Rel::Snapshots
        | Rel::SnapshotRestore => {
            unreachable!("read lazily by scan")
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::SimConfig;
    use crate::model::{PartitionDef, TableDef};

    /// Every lazily read relation yields one value per column, of the column's type.
    #[test]
    fn lazy_rows_match_their_columns() {
        let cfg = SimConfig {
            tables: vec![
                TableDef::new("doc", "t").shards(2).replicas("1"),
                TableDef::new("doc", "p")
                    .shards(1)
                    .partitioned_by(["day"])
                    .partition(PartitionDef::new("day", 1)),
            ],
            ..SimConfig::default()
        };
        let c = Cluster::new(&cfg).unwrap();
        let ctx = ReadCtx {
            current_stmt: "",
            current_user: "crate",
            current_job_id: "j",
            started: 0,
        };
        for rel in [
            Rel::Shards,
            Rel::Allocations,
            Rel::Tables,
            Rel::TablePartitions,
            Rel::Snapshots,
            Rel::SnapshotRestore,
        ] {
            let cols = rel.columns();
            let mut n = 0;
            scan(&c, rel, &ctx, &mut |row| {
                n += 1;
                for (i, (name, ty)) in cols.iter().enumerate() {
                    let v = row.cell(i);
                    assert!(v.coerce(ty).is_ok(), "{rel:?}.{name}: {v:?} is no {ty:?}");
                    if let Some(text) = row.cell_str(i) {
                        assert_eq!(Value::text(text), v, "{rel:?}.{name}");
                    }
                    if let Value::Object(m) = &v {
                        for k in m.keys() {
                            let path = [SubKey::Name(k.clone())];
                            assert_eq!(row.cell_path(i, &path), m[k], "{rel:?}.{name}['{k}']");
                        }
                    }
                }
                Ok(true)
            })
            .unwrap();
            if matches!(rel, Rel::Shards | Rel::Allocations) {
                // two primaries with one replica each; one partition's primary ("0-1" on one
                // node: no replica)
                assert_eq!(n, 5, "{rel:?}");
            }
        }
    }

    #[test]
    fn recovery_paths_equal_the_object() {
        let mut s = ShardRt {
            id: 0,
            state: ShardState::Recovering,
            used: 3_000_000,
            recovered: 1_000_000,
            docs: 1,
            recovery: RecoveryKind::Snapshot,
            explanation: None,
            restore: None,
        };
        for state in [
            ShardState::Recovering,
            ShardState::Started,
            ShardState::Initializing,
        ] {
            s.state = state;
            let full = recovery_value(&s, true);
            for path in [
                vec!["size", "used"],
                vec!["size", "recovered"],
                vec!["size", "percent"],
                vec!["size", "reused"],
                vec!["type"],
                vec!["stage"],
                vec!["files", "used"],
                vec!["nope"],
            ] {
                let keys: Vec<SubKey> = path.iter().map(|k| SubKey::Name(k.to_string())).collect();
                assert_eq!(
                    recovery_path(&s, true, &keys),
                    subscript_path(&full, &keys),
                    "{state:?} {path:?}"
                );
            }
        }
    }
}
