//! The SQL the restore sends and how it reads the answers. Pure: statement text in, typed rows
//! out, so the parsing is tested without a server.

use serde_json::{Map, Value};

use super::SqlResult;
use crate::sql::{TableIdent, quote_ident, quote_literal};

pub const SERVER_VERSIONS: &str = "SELECT version['number'] FROM sys.nodes";
pub const REPOSITORY_EXISTS: &str = "SELECT name FROM sys.repositories WHERE name = $1";
pub const SNAPSHOT: &str = "SELECT name, version, state, tables, table_partitions FROM sys.snapshots WHERE repository = $1 AND name = $2 LIMIT 1";
/// The same without `table_partitions`, for servers (and simulators) that lack the column.
pub const SNAPSHOT_BASIC: &str = "SELECT name, version, state, tables FROM sys.snapshots WHERE repository = $1 AND name = $2 LIMIT 1";
pub const RELATIONS: &str = "SELECT table_schema, table_name, table_type, closed, partitioned_by FROM information_schema.tables";
/// The same without `closed` and `partitioned_by`.
pub const RELATIONS_BASIC: &str =
    "SELECT table_schema, table_name, table_type FROM information_schema.tables";
pub const PARTITIONS: &str = "SELECT table_schema, table_name, partition_ident, \"values\", closed FROM information_schema.table_partitions";
/// The same without `closed`.
pub const PARTITIONS_BASIC: &str = "SELECT table_schema, table_name, partition_ident, \"values\" FROM information_schema.table_partitions";
/// The filters below name relations as `schema.table` (and partitions as
/// `schema.table.partition_ident`) in one text array parameter: CrateDB allows no dot in schema
/// and table names, so the keys are unambiguous, and the statement text stays the same size
/// however many relations a restore has (SPEC A28).
const RELATION_KEY: &str = "schema_name || '.' || table_name";
/// The same key in `information_schema`.
const TABLE_KEY: &str = "table_schema || '.' || table_name";

/// The key of a relation in the filters above.
pub fn relation_key(table: &TableIdent) -> String {
    table.dotted()
}

/// The key of one partition of a relation.
pub fn partition_key(table: &TableIdent, partition_ident: &str) -> String {
    format!("{}.{partition_ident}", table.dotted())
}

/// Progress of a restore in one row, whatever the number of its shards: primary shards of the
/// relations in `$1` (and of the partitions in `$2`), how many are started, their size and what
/// of it is recovered.
pub fn shard_totals_statement() -> String {
    format!(
        "SELECT count(*), count(*) FILTER (WHERE state = 'STARTED'), sum(recovery['size']['used']), sum(recovery['size']['recovered']) FROM sys.shards WHERE primary = true AND ({RELATION_KEY} = ANY($1) OR {RELATION_KEY} || '.' || partition_ident = ANY($2))"
    )
}

/// The primary shards of the relations in `$1` (and of the partitions in `$2`) that are not
/// started: the completion check's problems, at most [`NOT_STARTED_LIMIT`] of them.
pub fn not_started_primaries_statement() -> String {
    format!(
        "SELECT schema_name, table_name, partition_ident, id, state FROM sys.shards WHERE primary = true AND state <> 'STARTED' AND ({RELATION_KEY} = ANY($1) OR {RELATION_KEY} || '.' || partition_ident = ANY($2)) LIMIT {NOT_STARTED_LIMIT}"
    )
}

pub const NOT_STARTED_LIMIT: usize = 100;

/// Primary shards per relation of `$1`, all and started: which relations are still restoring
/// (read once, for the deadline's message).
pub fn shards_per_relation_statement() -> String {
    format!(
        "SELECT schema_name, table_name, count(*), count(*) FILTER (WHERE state = 'STARTED') FROM sys.shards WHERE primary = true AND {RELATION_KEY} = ANY($1) GROUP BY schema_name, table_name"
    )
}

/// CrateDB's explanations for the unassigned primaries of the relations in `$1`.
pub fn unassigned_primaries_statement() -> String {
    format!(
        "SELECT table_schema, table_name, partition_ident, shard_id, current_state, explanation FROM sys.allocations WHERE primary = true AND {TABLE_KEY} = ANY($1)"
    )
}

/// [`RELATIONS`] (or [`RELATIONS_BASIC`]) of only the relations in `$1`.
pub fn relations_named(all: &str) -> String {
    format!("{all} WHERE {TABLE_KEY} = ANY($1)")
}

/// [`PARTITIONS`] (or [`PARTITIONS_BASIC`]) of only the relations in `$1`.
pub fn partitions_of(all: &str) -> String {
    format!("{all} WHERE {TABLE_KEY} = ANY($1)")
}

pub const CLUSTER_SETTINGS: &str = "SELECT settings FROM sys.cluster";
pub const USER_EXISTS: &str = "SELECT name FROM sys.users WHERE name = $1";
pub const ADMIN_GRANTEE: &str =
    "SELECT grantee FROM sys.privileges WHERE grantor = 'system' AND grantee <> 'gc_admin' LIMIT 1";

pub fn drop_repository(repository: &str) -> String {
    format!("DROP REPOSITORY {}", quote_ident(repository))
}

/// Running restores of this snapshot from this repository. Both values are escaped literals:
/// cleanup may have to send it through the superuser path, which takes no parameters.
pub fn running_restore(repository: &str, snapshot: &str) -> String {
    format!(
        "SELECT id, state FROM sys.snapshot_restore WHERE repository = {} AND name = {}",
        quote_literal(repository),
        quote_literal(snapshot)
    )
}

/// The same by snapshot name only, where `sys.snapshot_restore` has no `repository` column.
pub fn running_restore_by_name(snapshot: &str) -> String {
    format!(
        "SELECT id, state FROM sys.snapshot_restore WHERE name = {}",
        quote_literal(snapshot)
    )
}

/// Whether CrateDB refused a statement for naming a relation it does not have.
pub fn is_unknown_relation(error: &super::SqlError) -> bool {
    match error {
        super::SqlError::Sql { code, message } => {
            code == "42P01" || message.contains("RelationUnknown")
        }
        _ => false,
    }
}

/// Whether CrateDB refused a statement because repository `name` does not exist: over the
/// PostgreSQL wire only the exception's text arrives (`[name] missing` in 5.x,
/// `Repository 'name' unknown` later), through crash also its name.
pub fn is_unknown_repository(error: &super::SqlError, name: &str) -> bool {
    matches!(error, super::SqlError::Sql { message, .. }
        if message.contains(name) && (message.contains("missing") || message.contains("unknown")))
}

/// Whether CrateDB refused a statement for naming a column it does not have.
pub fn is_unknown_column(error: &super::SqlError) -> bool {
    match error {
        super::SqlError::Sql { code, message } => {
            code == "42703"
                || message.contains("ColumnUnknownException")
                || (message.contains("Column") && message.contains("unknown"))
        }
        _ => false,
    }
}

/// `CREATE SNAPSHOT` statements running in CrateDB (B§4.1); `jobs_table` is configurable
/// (`CRATEDB_OPERATOR_JOBS_TABLE`).
pub fn snapshots_in_progress(jobs_table: &TableIdent) -> String {
    format!(
        "SELECT stmt FROM {} WHERE stmt LIKE '%CREATE SNAPSHOT%' AND stmt NOT LIKE {}",
        jobs_table.sql(),
        quote_literal(&format!("%{}%", jobs_table.dotted()))
    )
}

/// A cluster setting's name as CrateDB writes it: dotted, unquoted. Only this product's own
/// constants are passed here, never user input.
fn setting_name(setting: &str) -> &str {
    debug_assert!(
        setting
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'),
        "{setting}"
    );
    setting
}

/// A setting value as one literal: numbers and booleans as they are, anything else as an
/// escaped string (values come from this product or from the cluster's own settings).
fn setting_value(value: &str) -> String {
    let numeric = !value.is_empty()
        && value
            .strip_prefix('-')
            .unwrap_or(value)
            .bytes()
            .all(|b| b.is_ascii_digit());
    if numeric || value == "true" || value == "false" {
        value.to_string()
    } else {
        quote_literal(value)
    }
}

/// `SET GLOBAL PERSISTENT indices.recovery.max_bytes_per_sec = '200mb'`, in the reference's form.
pub fn set_global(persistence: &str, setting: &str, value: &str) -> String {
    format!(
        "SET GLOBAL {persistence} {} = {}",
        setting_name(setting),
        setting_value(value)
    )
}

pub fn reset_global(setting: &str) -> String {
    format!("RESET GLOBAL {}", setting_name(setting))
}

/// `ALTER USER "u" SET (password = '...')`: carries a secret, so it is never logged.
pub fn alter_password(user: &str, password: &str) -> String {
    format!(
        "ALTER USER {} SET (password = {})",
        quote_ident(user),
        quote_literal(password)
    )
}

/// The same with the password as a `?` parameter (for paths that can bind it).
pub fn alter_password_bound(user: &str) -> String {
    format!("ALTER USER {} SET (password = ?)", quote_ident(user))
}

pub fn clear_jwt(user: &str) -> String {
    format!("ALTER USER {} SET (jwt = NULL)", quote_ident(user))
}

pub fn set_jwt(user: &str, issuer: &str, audience: &str) -> String {
    format!(
        "ALTER USER {} SET (jwt = {{\"iss\" = {}, \"username\" = {}, \"aud\" = {}}})",
        quote_ident(user),
        quote_literal(issuer),
        quote_literal(user),
        quote_literal(audience)
    )
}

pub fn rename_table(from: &TableIdent, to_table: &str) -> String {
    format!(
        "ALTER TABLE {} RENAME TO {}",
        from.quoted(),
        quote_ident(to_table)
    )
}

/// Drops one partition of a partitioned table: a `DELETE` whose condition names only the
/// partition columns removes the whole partition in CrateDB.
pub fn delete_partition(partition: &crate::restore_type::PartitionTarget) -> String {
    let condition: Vec<String> = partition
        .columns
        .iter()
        .map(|(column, value)| match value {
            crate::sql::SqlLiteral::Null => format!("{} IS NULL", quote_ident(column)),
            value => format!("{} = {value}", quote_ident(column)),
        })
        .collect();
    format!(
        "DELETE FROM {} WHERE {}",
        partition.table.quoted(),
        condition.join(" AND ")
    )
}

pub fn drop_table_if_exists(table: &TableIdent) -> String {
    format!("DROP TABLE IF EXISTS {}", table.quoted())
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn cell(row: &[Value], i: usize) -> &Value {
    row.get(i).unwrap_or(&Value::Null)
}

/// `sys.snapshots.tables` holds `schema.table`; schemas contain no dots.
pub fn snapshot_table(name: &str) -> TableIdent {
    match name.split_once('.') {
        Some((schema, table)) => TableIdent::new(schema, table),
        None => TableIdent::new(crate::sql::ident::DEFAULT_SCHEMA, name),
    }
}

/// The lowest version among the nodes: what every node can read.
pub fn server_version(result: &SqlResult) -> Option<crate::version::ServerVersion> {
    result
        .rows
        .iter()
        .filter_map(|r| text(cell(r, 0)))
        .filter_map(|v| v.parse().ok())
        .min()
}

#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotPartition {
    pub table: TableIdent,
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SnapshotInfo {
    pub name: String,
    pub version: Option<String>,
    pub state: Option<String>,
    pub tables: Vec<TableIdent>,
    pub partitions: Vec<SnapshotPartition>,
    /// Epoch milliseconds, when the query asked for them ([`SNAPSHOTS_OF_REPOSITORY`]).
    pub started: Option<i64>,
    pub finished: Option<i64>,
}

/// Every snapshot of a repository, with when it was taken (the snapshot catalog, `latest`).
pub const SNAPSHOTS_OF_REPOSITORY: &str = "SELECT name, version, state, tables, table_partitions, started, finished FROM sys.snapshots WHERE repository = $1";
/// The same without `table_partitions`.
pub const SNAPSHOTS_OF_REPOSITORY_BASIC: &str = "SELECT name, version, state, tables, NULL, started, finished FROM sys.snapshots WHERE repository = $1";

pub fn snapshot_info(result: &SqlResult) -> Option<SnapshotInfo> {
    result.rows.first().map(|row| snapshot_row(row))
}

/// Every row of [`SNAPSHOTS_OF_REPOSITORY`].
pub fn snapshot_rows(result: &SqlResult) -> Vec<SnapshotInfo> {
    result.rows.iter().map(|row| snapshot_row(row)).collect()
}

fn snapshot_row(row: &[Value]) -> SnapshotInfo {
    let tables = cell(row, 3)
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(text)
                .map(|t| snapshot_table(&t))
                .collect()
        })
        .unwrap_or_default();
    let partitions = cell(row, 4)
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    let schema = text(p.get("table_schema")?)?;
                    let table = text(p.get("table_name")?)?;
                    let values = p
                        .get("values")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    Some(SnapshotPartition {
                        table: TableIdent::new(schema, table),
                        values,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    SnapshotInfo {
        name: text(cell(row, 0)).unwrap_or_default(),
        version: text(cell(row, 1)),
        state: text(cell(row, 2)),
        tables,
        partitions,
        started: int(cell(row, 5)),
        finished: int(cell(row, 6)),
    }
}

/// Schemas CrateDB owns; their relations are never restore targets.
pub const SYSTEM_SCHEMAS: [&str; 4] = ["sys", "information_schema", "pg_catalog", "blob"];

#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub ident: TableIdent,
    pub is_view: bool,
    pub closed: bool,
    pub partitioned_by: Vec<String>,
}

pub fn relations(result: &SqlResult) -> Vec<Relation> {
    result
        .rows
        .iter()
        .filter_map(|r| {
            let ident = TableIdent::new(text(cell(r, 0))?, text(cell(r, 1))?);
            if SYSTEM_SCHEMAS.contains(&ident.schema.as_str()) {
                return None;
            }
            Some(Relation {
                is_view: text(cell(r, 2)).is_some_and(|t| t.eq_ignore_ascii_case("VIEW")),
                closed: truthy(cell(r, 3)),
                partitioned_by: cell(r, 4)
                    .as_array()
                    .map(|a| a.iter().filter_map(text).collect())
                    .unwrap_or_default(),
                ident,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub table: TableIdent,
    pub partition_ident: String,
    pub values: Map<String, Value>,
    pub closed: bool,
}

pub fn partitions(result: &SqlResult) -> Vec<Partition> {
    result
        .rows
        .iter()
        .filter_map(|r| {
            Some(Partition {
                table: TableIdent::new(text(cell(r, 0))?, text(cell(r, 1))?),
                partition_ident: text(cell(r, 2)).unwrap_or_default(),
                values: cell(r, 3).as_object().cloned().unwrap_or_default(),
                closed: truthy(cell(r, 4)),
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardRow {
    pub table: TableIdent,
    pub partition_ident: String,
    pub id: i64,
    pub state: String,
    /// NULL (None) before the shard starts recovering.
    pub used_bytes: Option<i64>,
    pub recovered_bytes: Option<i64>,
}

pub fn shards(result: &SqlResult) -> Vec<ShardRow> {
    result
        .rows
        .iter()
        .filter_map(|r| {
            Some(ShardRow {
                table: TableIdent::new(text(cell(r, 0))?, text(cell(r, 1))?),
                partition_ident: text(cell(r, 2)).unwrap_or_default(),
                id: int(cell(r, 3)).unwrap_or_default(),
                state: text(cell(r, 4)).unwrap_or_default(),
                used_bytes: int(cell(r, 5)),
                recovered_bytes: int(cell(r, 6)),
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct AllocationRow {
    pub table: TableIdent,
    pub partition_ident: String,
    pub shard_id: i64,
    pub current_state: String,
    pub explanation: Option<String>,
}

pub fn allocations(result: &SqlResult) -> Vec<AllocationRow> {
    result
        .rows
        .iter()
        .filter_map(|r| {
            Some(AllocationRow {
                table: TableIdent::new(text(cell(r, 0))?, text(cell(r, 1))?),
                partition_ident: text(cell(r, 2)).unwrap_or_default(),
                shard_id: int(cell(r, 3)).unwrap_or_default(),
                current_state: text(cell(r, 4)).unwrap_or_default(),
                explanation: text(cell(r, 5)).filter(|e| !e.is_empty()),
            })
        })
        .collect()
}

/// One row of [`shard_totals_statement`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardTotals {
    pub shards: usize,
    pub started: usize,
    pub used_bytes: i64,
    pub recovered_bytes: i64,
}

pub fn shard_totals(result: &SqlResult) -> ShardTotals {
    let Some(row) = result.rows.first() else {
        return ShardTotals::default();
    };
    let count = |i| int(cell(row, i)).unwrap_or(0).max(0) as usize;
    ShardTotals {
        shards: count(0),
        started: count(1),
        used_bytes: int(cell(row, 2)).unwrap_or(0),
        recovered_bytes: int(cell(row, 3)).unwrap_or(0),
    }
}

/// One row of [`shards_per_relation_statement`]: a relation, its primaries and the started ones.
pub fn shards_per_relation(result: &SqlResult) -> Vec<(TableIdent, usize, usize)> {
    result
        .rows
        .iter()
        .filter_map(|r| {
            let table = TableIdent::new(text(cell(r, 0))?, text(cell(r, 1))?);
            let count = |i| int(cell(r, i)).unwrap_or(0).max(0) as usize;
            Some((table, count(2), count(3)))
        })
        .collect()
}

/// A running restore row: `(id, state)`.
pub fn restore_rows(result: &SqlResult) -> Vec<(String, String)> {
    result
        .rows
        .iter()
        .map(|r| {
            (
                text(cell(r, 0)).unwrap_or_default(),
                text(cell(r, 1)).unwrap_or_default(),
            )
        })
        .collect()
}

/// Flattens nested settings (`{"indices": {"recovery": {...}}}`) into dotted keys.
pub fn flatten_settings(settings: &Value) -> std::collections::BTreeMap<String, Value> {
    fn walk(prefix: &str, value: &Value, out: &mut std::collections::BTreeMap<String, Value>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk("", settings, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(rows: Vec<Vec<Value>>) -> SqlResult {
        SqlResult {
            rows,
            ..Default::default()
        }
    }

    #[test]
    fn statements_quote_and_escape() {
        assert_eq!(
            running_restore("restore_backup_1", "snap'1"),
            "SELECT id, state FROM sys.snapshot_restore WHERE repository = 'restore_backup_1' AND name = 'snap''1'"
        );
        assert_eq!(
            snapshots_in_progress(&TableIdent::new("sys", "jobs")),
            r#"SELECT stmt FROM sys.jobs WHERE stmt LIKE '%CREATE SNAPSHOT%' AND stmt NOT LIKE '%sys.jobs%'"#
        );
        assert_eq!(
            alter_password("system", r"p'w\x"),
            r#"ALTER USER "system" SET (password = 'p''w\x')"#
        );
        assert_eq!(
            set_jwt("ad\"min", "https://jwk.example/'x", "cluster-1"),
            r#"ALTER USER "ad""min" SET (jwt = {"iss" = 'https://jwk.example/''x', "username" = 'ad"min', "aud" = 'cluster-1'})"#
        );
        assert_eq!(
            rename_table(
                &TableIdent::new("gc", "alembic_version"),
                "alembic_version_temp"
            ),
            r#"ALTER TABLE "gc"."alembic_version" RENAME TO "alembic_version_temp""#
        );
        assert_eq!(
            set_global("PERSISTENT", "indices.recovery.max_bytes_per_sec", "200mb"),
            "SET GLOBAL PERSISTENT indices.recovery.max_bytes_per_sec = '200mb'"
        );
        assert_eq!(
            set_global(
                "PERSISTENT",
                "cluster.routing.allocation.cluster_concurrent_rebalance",
                "6"
            ),
            "SET GLOBAL PERSISTENT cluster.routing.allocation.cluster_concurrent_rebalance = 6"
        );
        assert_eq!(
            set_global(
                "TRANSIENT",
                "cluster.routing.allocation.enable",
                "prim'aries"
            ),
            "SET GLOBAL TRANSIENT cluster.routing.allocation.enable = 'prim''aries'"
        );
        assert_eq!(
            reset_global("cluster.routing.allocation.enable"),
            "RESET GLOBAL cluster.routing.allocation.enable"
        );
        assert_eq!(drop_repository("r\"1"), r#"DROP REPOSITORY "r""1""#);
    }

    #[test]
    fn reads_snapshot_rows() {
        let info = snapshot_info(&result(vec![vec![
            json!("snap1"),
            json!("5.6.0"),
            json!("SUCCESS"),
            json!(["doc.t1", "gc.alembic_version"]),
            json!([{"table_schema": "doc", "table_name": "parted", "values": ["2024-01-01"]}]),
        ]]))
        .unwrap();
        assert_eq!(
            info.tables,
            [
                TableIdent::new("doc", "t1"),
                TableIdent::new("gc", "alembic_version")
            ]
        );
        assert_eq!(info.partitions[0].table, TableIdent::new("doc", "parted"));
        assert_eq!(info.partitions[0].values, [json!("2024-01-01")]);
        assert_eq!(info.version.as_deref(), Some("5.6.0"));
        assert!(snapshot_info(&result(vec![])).is_none());
    }

    #[test]
    fn reads_relations_without_system_schemas() {
        let rels = relations(&result(vec![
            vec![
                json!("doc"),
                json!("t1"),
                json!("BASE TABLE"),
                json!(false),
                json!(null),
            ],
            vec![
                json!("doc"),
                json!("v1"),
                json!("VIEW"),
                Value::Null,
                Value::Null,
            ],
            vec![
                json!("sys"),
                json!("shards"),
                json!("BASE TABLE"),
                json!(false),
                Value::Null,
            ],
            vec![
                json!("doc"),
                json!("p"),
                json!("BASE TABLE"),
                json!(true),
                json!(["day"]),
            ],
        ]));
        assert_eq!(rels.len(), 3);
        assert!(rels[1].is_view);
        assert!(rels[2].closed);
        assert_eq!(rels[2].partitioned_by, ["day"]);
    }

    #[test]
    fn reads_shards_with_null_recovery() {
        let rows = shards(&result(vec![
            vec![
                json!("doc"),
                json!("t"),
                json!(""),
                json!(0),
                json!("RECOVERING"),
                json!(100),
                json!(40),
            ],
            vec![
                json!("doc"),
                json!("t"),
                Value::Null,
                json!(1),
                json!("UNASSIGNED"),
                Value::Null,
                Value::Null,
            ],
            vec![
                json!("doc"),
                json!("t"),
                json!(""),
                json!("2"),
                json!("STARTED"),
                json!("NULL"),
                json!("NULL"),
            ],
        ]));
        assert_eq!(rows[0].recovered_bytes, Some(40));
        assert_eq!(rows[1].used_bytes, None);
        assert_eq!(rows[2].id, 2);
        assert_eq!(
            rows[2].used_bytes, None,
            "crash prints NULL; it is no number"
        );
    }

    #[test]
    fn versions_and_settings() {
        let v = server_version(&result(vec![vec![json!("5.10.3")], vec![json!("5.9.1")]])).unwrap();
        assert_eq!(v.to_string(), "5.9.1");
        let flat = flatten_settings(
            &json!({"indices": {"recovery": {"max_bytes_per_sec": "40mb"}}, "a": 1}),
        );
        assert_eq!(flat["indices.recovery.max_bytes_per_sec"], json!("40mb"));
        assert_eq!(flat["a"], json!(1));
    }
}
