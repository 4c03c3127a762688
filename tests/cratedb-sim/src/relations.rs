//! The virtual system relations: their columns (with CrateDB's names and
//! types) and their rows, computed from the cluster state.

use crate::cluster::{Cluster, RecoveryKind, RelKind, ShardRt, ShardState, index_name};
use crate::model::{DISK_WATERMARK_DECISION, DISK_WATERMARK_EXPLANATION};
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

fn recovery_value(s: &ShardRt, primary: bool) -> Value {
    let (kind, stage) = match (s.recovery, s.state) {
        (_, ShardState::Unassigned | ShardState::Initializing) => return Value::Null,
        (RecoveryKind::None, _) => return Value::Null,
        (RecoveryKind::ExistingStore, _) => {
            (if primary { "EXISTING_STORE" } else { "PEER" }, "DONE")
        }
        (RecoveryKind::Snapshot, ShardState::Started) => {
            (if primary { "SNAPSHOT" } else { "PEER" }, "DONE")
        }
        (RecoveryKind::Snapshot, _) => ("SNAPSHOT", "INDEX"),
    };
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

/// Iterate `(schema, table, partition ident, closed, shard)` over all shards.
fn for_each_shard(c: &Cluster, mut f: impl FnMut(&str, &str, Option<&str>, bool, &ShardRt, u32)) {
    for ((schema, table), rel) in &c.relations {
        if rel.kind != RelKind::Table {
            continue;
        }
        let replicas = rel.replica_count(c.nodes.len());
        for s in &rel.shards {
            f(schema, table, None, rel.closed, s, replicas);
        }
        for (ident, p) in &rel.partitions {
            for s in &p.shards {
                f(
                    schema,
                    table,
                    Some(ident),
                    p.closed || rel.closed,
                    s,
                    replicas,
                );
            }
        }
    }
}

/// Replica state derived from its primary and the allocation setting.
fn replica_state(c: &Cluster, primary: &ShardRt) -> ShardState {
    if primary.state == ShardState::Started && c.replicas_allowed() {
        ShardState::Started
    } else {
        ShardState::Unassigned
    }
}

/// All rows of a relation, in column order.
pub fn rows(c: &Cluster, rel: Rel, ctx: &ReadCtx<'_>) -> Vec<Vec<Value>> {
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
        Rel::Snapshots => {
            for repo in c.repositories.keys() {
                for s in c.repo_snapshots(repo) {
                    let mut concrete = Vec::new();
                    let mut tables = Vec::new();
                    let mut relations = Vec::new();
                    let mut partitions = Vec::new();
                    let mut total_shards = 0i64;
                    for t in &s.tables {
                        tables.push(Value::text(t.fqn()));
                        relations.push(Value::object([
                            ("table_schema", Value::text(&t.schema)),
                            ("table_name", Value::text(&t.name)),
                        ]));
                        if t.partitioned_by.is_empty() {
                            concrete.push(Value::text(index_name(&t.schema, &t.name, None)));
                            total_shards += t.shards as i64;
                        }
                        for p in &t.partitions {
                            let ident = crate::cluster::def_partition_ident(t, p);
                            concrete.push(Value::text(index_name(
                                &t.schema,
                                &t.name,
                                Some(&ident),
                            )));
                            total_shards += t.shards as i64;
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
                            partitions.push(Value::object([
                                ("table_schema", Value::text(&t.schema)),
                                ("table_name", Value::text(&t.name)),
                                ("values", Value::Array(values)),
                            ]));
                        }
                    }
                    out.push(vec![
                        Value::text(Cluster::snapshot_uuid(s)),
                        Value::text(&s.name),
                        Value::text(repo),
                        Value::Array(concrete),
                        Value::Array(tables),
                        Value::Array(relations),
                        Value::Array(partitions),
                        Value::Ts(s.started),
                        Value::Ts(s.finished),
                        Value::text(&s.version),
                        Value::text(&s.state),
                        Value::Array(Vec::new()),
                        Value::Null,
                        Value::Int(total_shards),
                        Value::Bool(true),
                    ]);
                }
            }
        }
        Rel::SnapshotRestore => {
            for r in &c.restores {
                let shards = r
                    .shards
                    .iter()
                    .map(|k| {
                        let state = lookup_shard(c, k)
                            .map(|s| match (&s.restore, s.state) {
                                (Some(rs), _) if rs.failed => "FAILURE",
                                (_, ShardState::Started) => "SUCCESS",
                                (_, ShardState::Recovering) => "STARTED",
                                _ => "INIT",
                            })
                            .unwrap_or("FAILURE");
                        Value::object([
                            ("table_schema", Value::text(&k.schema)),
                            ("table_name", Value::text(&k.table)),
                            ("partition_ident", Value::opt_text(k.partition.as_deref())),
                            ("shard_id", Value::Int(k.id as i64)),
                            ("state", Value::text(state)),
                        ])
                    })
                    .collect();
                out.push(vec![
                    Value::text(&r.id),
                    Value::text(&r.snapshot),
                    Value::text(&r.repository),
                    Value::Array(shards),
                    Value::text(r.state),
                ]);
            }
        }
        Rel::Shards => {
            let node = node_value(c);
            for_each_shard(c, |schema, table, ident, closed, s, replicas| {
                let mut push = |state: ShardState, primary: bool, recovery: Value| {
                    let assigned = matches!(state, ShardState::Recovering | ShardState::Started);
                    let pident = match ident {
                        Some(i) => Value::text(i),
                        None if assigned => Value::text(""),
                        None => Value::Null,
                    };
                    let started = state == ShardState::Started;
                    out.push(vec![
                        Value::text(schema),
                        Value::text(table),
                        Value::Int(s.id as i64),
                        pident,
                        Value::Int(if started { s.docs as i64 } else { 0 }),
                        Value::Bool(primary),
                        Value::Null,
                        Value::Int(if assigned { s.recovered as i64 } else { 0 }),
                        Value::text(state.name()),
                        Value::Bool(closed),
                        Value::text(state.routing_name()),
                        Value::Bool(false),
                        recovery,
                        if assigned { node.clone() } else { Value::Null },
                    ]);
                };
                push(s.state, true, recovery_value(s, true));
                for _ in 0..replicas {
                    let rs = replica_state(c, s);
                    let rec = if rs == ShardState::Started {
                        recovery_value(s, false)
                    } else {
                        Value::Null
                    };
                    push(rs, false, rec);
                }
            });
        }
        Rel::Allocations => {
            let node = &c.nodes[0];
            for_each_shard(c, |schema, table, ident, _closed, s, replicas| {
                let mut push = |state: ShardState,
                                primary: bool,
                                explanation: Option<String>,
                                decision: Option<String>| {
                    let current = state.routing_name();
                    let assigned = state != ShardState::Unassigned;
                    let decisions = match &decision {
                        Some(d) => Value::Array(vec![Value::object([
                            ("node_id", Value::text(&node.id)),
                            ("node_name", Value::text(&node.name)),
                            ("explanations", Value::Array(vec![Value::text(d)])),
                        ])]),
                        None => Value::Null,
                    };
                    out.push(vec![
                        Value::text(schema),
                        Value::text(table),
                        Value::opt_text(ident),
                        Value::Int(s.id as i64),
                        if assigned {
                            Value::text(&node.id)
                        } else {
                            Value::Null
                        },
                        Value::Bool(primary),
                        Value::text(current),
                        Value::opt_text(explanation.as_deref()),
                        decisions,
                    ]);
                };
                if s.state == ShardState::Unassigned {
                    let expl = s
                        .explanation
                        .clone()
                        .unwrap_or_else(|| DISK_WATERMARK_EXPLANATION.to_string());
                    let decision = if expl == DISK_WATERMARK_EXPLANATION {
                        DISK_WATERMARK_DECISION.to_string()
                    } else {
                        expl.clone()
                    };
                    push(s.state, true, Some(expl), Some(decision));
                } else {
                    push(s.state, true, None, None);
                }
                for _ in 0..replicas {
                    let rs = replica_state(c, s);
                    if rs == ShardState::Unassigned {
                        let enable = c.effective_setting("cluster.routing.allocation.enable");
                        let why = if s.state != ShardState::Started {
                            "primary shard for this replica is not yet active".to_string()
                        } else {
                            format!(
                                "replica allocations are forbidden due to cluster setting [cluster.routing.allocation.enable={}]",
                                enable.to_plain_string().unwrap_or_default()
                            )
                        };
                        push(
                            rs,
                            false,
                            Some("cannot allocate because allocation is not permitted to any of the nodes".into()),
                            Some(why),
                        );
                    } else {
                        push(rs, false, None, None);
                    }
                }
            });
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
        Rel::Tables => {
            for ((schema, name), r) in &c.relations {
                let is_view = matches!(r.kind, RelKind::View { .. });
                let table = |v: Value| if is_view { Value::Null } else { v };
                out.push(vec![
                    Value::text("crate"),
                    Value::text(schema),
                    Value::text(name),
                    Value::text(if is_view { "VIEW" } else { "BASE TABLE" }),
                    table(Value::Int(r.number_of_shards as i64)),
                    table(Value::text(&r.replicas)),
                    table(Value::text("_id")),
                    if r.is_partitioned() {
                        Value::Array(r.partitioned_by.iter().map(Value::text).collect())
                    } else {
                        Value::Null
                    },
                    table(Value::Bool(r.closed)),
                    Value::Null,
                    table(Value::text("strict")),
                    table(Value::text(
                        "org.elasticsearch.cluster.routing.Murmur3HashFunction",
                    )),
                    table(Value::text("_id")),
                    table(Value::text("SYSTEM GENERATED")),
                    Value::text("crate"),
                ]);
            }
            for (schema, name) in SYSTEM_RELATIONS {
                out.push(vec![
                    Value::text("crate"),
                    Value::text(*schema),
                    Value::text(*name),
                    Value::text("BASE TABLE"),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::text("strict"),
                    Value::Null,
                    Value::Null,
                    Value::text("SYSTEM GENERATED"),
                    Value::Null,
                ]);
            }
        }
        Rel::TablePartitions => {
            for ((schema, name), r) in &c.relations {
                for (ident, p) in &r.partitions {
                    out.push(vec![
                        Value::text(schema),
                        Value::text(name),
                        Value::text(ident),
                        Value::object(p.values.iter().map(|(k, v)| (k.clone(), v.clone()))),
                        Value::Int(p.shards.len() as i64),
                        Value::text(&r.replicas),
                        Value::text("org.elasticsearch.cluster.routing.Murmur3HashFunction"),
                        Value::Bool(p.closed || r.closed),
                    ]);
                }
            }
        }
    }
    out
}

fn lookup_shard<'a>(c: &'a Cluster, k: &crate::cluster::ShardKey) -> Option<&'a ShardRt> {
    let rel = c.relations.get(&(k.schema.clone(), k.table.clone()))?;
    let shards = match &k.partition {
        Some(p) => &rel.partitions.get(p)?.shards,
        None => &rel.shards,
    };
    shards.iter().find(|s| s.id == k.id)
}
