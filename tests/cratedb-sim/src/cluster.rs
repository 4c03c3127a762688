//! The in-memory cluster state and its mutations (repositories, restores,
//! shard progress, settings, users).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use crate::error::{SimError, SqlError};
use crate::java_regex::{JavaPattern, ReplaceError};
use crate::model::*;
use crate::value::Value;

/// A CrateDB version `major.minor.patch`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.trim().split(['.', '-']).map(|p| p.parse::<u32>());
        let a = it.next()?.ok()?;
        let b = it.next().unwrap_or(Ok(0)).ok()?;
        let c = it.next().unwrap_or(Ok(0)).ok()?;
        Some(Version(a, b, c))
    }
    pub fn at_least(&self, a: u32, b: u32, c: u32) -> bool {
        *self >= Version(a, b, c)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The whole simulator configuration (builder and `--config` JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// CrateDB server version, e.g. `5.10.3`.
    pub server_version: String,
    pub cluster_name: String,
    /// Number of nodes in `sys.nodes`.
    pub nodes: usize,
    /// Users besides the built-in superuser `crate`.
    pub users: Vec<UserDef>,
    /// Privileges; `None` grants every configured regular user ALL on the
    /// cluster (granted by `crate`), like a CrateDB Cloud `system` user.
    pub privileges: Option<Vec<PrivilegeDef>>,
    /// The crate-control sidecar token.
    pub sidecar_token: String,
    pub storages: Vec<Storage>,
    /// Tables that already exist in the cluster (all shards STARTED).
    pub tables: Vec<TableDef>,
    pub views: Vec<ViewDef>,
    pub persistent_settings: BTreeMap<String, serde_json::Value>,
    pub transient_settings: BTreeMap<String, serde_json::Value>,
    /// Outcome per snapshot name or per table (`schema.table`).
    pub restore_outcomes: BTreeMap<String, RestoreOutcome>,
    pub progress: ProgressMode,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            server_version: "5.10.3".into(),
            cluster_name: "crate".into(),
            nodes: 1,
            users: Vec::new(),
            privileges: None,
            sidecar_token: "sidecar-token".into(),
            storages: Vec::new(),
            tables: Vec::new(),
            views: Vec::new(),
            persistent_settings: BTreeMap::new(),
            transient_settings: BTreeMap::new(),
            restore_outcomes: BTreeMap::new(),
            progress: ProgressMode::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardState {
    Unassigned,
    Initializing,
    Recovering,
    Started,
}

impl ShardState {
    pub fn name(self) -> &'static str {
        match self {
            ShardState::Unassigned => "UNASSIGNED",
            ShardState::Initializing => "INITIALIZING",
            ShardState::Recovering => "RECOVERING",
            ShardState::Started => "STARTED",
        }
    }
    pub fn routing_name(self) -> &'static str {
        match self {
            ShardState::Unassigned => "UNASSIGNED",
            ShardState::Initializing | ShardState::Recovering => "INITIALIZING",
            ShardState::Started => "STARTED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryKind {
    None,
    ExistingStore,
    Snapshot,
}

#[derive(Debug, Clone)]
pub struct ShardRestore {
    pub restore_id: String,
    pub behaviour: RestoreOutcome,
    pub observations: u32,
    pub done: bool,
    pub failed: bool,
}

/// A primary shard.
#[derive(Debug, Clone)]
pub struct ShardRt {
    pub id: u32,
    pub state: ShardState,
    pub used: u64,
    pub recovered: u64,
    pub docs: u64,
    pub recovery: RecoveryKind,
    /// Allocation explanation while unassigned.
    pub explanation: Option<String>,
    pub restore: Option<ShardRestore>,
}

impl ShardRt {
    fn started(id: u32, bytes: u64, docs: u64, recovery: RecoveryKind) -> Self {
        ShardRt {
            id,
            state: ShardState::Started,
            used: bytes,
            recovered: bytes,
            docs,
            recovery,
            explanation: None,
            restore: None,
        }
    }

    pub fn percent(&self) -> f64 {
        if self.used == 0 {
            100.0
        } else {
            (self.recovered as f64 * 100.0 / self.used as f64).min(100.0)
        }
    }
}

#[derive(Debug, Clone)]
pub struct PartitionRt {
    pub values: Vec<(String, Value)>,
    pub closed: bool,
    pub shards: Vec<ShardRt>,
    /// The relation whose queries see this partition's rows when it is not the one holding it
    /// (a renamed partition restored by CrateDB 5.6.0 - 5.7.1 keeps its source's alias).
    pub alias: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RelKind {
    Table,
    View { query: String },
}

#[derive(Debug, Clone)]
pub struct RelationRt {
    pub kind: RelKind,
    pub number_of_shards: u32,
    pub replicas: String,
    pub partitioned_by: Vec<String>,
    pub closed: bool,
    /// Shards of a plain table.
    pub shards: Vec<ShardRt>,
    /// Partitions by ident.
    pub partitions: BTreeMap<String, PartitionRt>,
}

impl RelationRt {
    pub fn is_partitioned(&self) -> bool {
        !self.partitioned_by.is_empty()
    }
    fn view(query: &str) -> Self {
        RelationRt {
            kind: RelKind::View {
                query: query.to_string(),
            },
            number_of_shards: 0,
            replicas: String::new(),
            partitioned_by: Vec::new(),
            closed: false,
            shards: Vec::new(),
            partitions: BTreeMap::new(),
        }
    }
    /// Number of replica copies per primary shard on a single-zone cluster.
    pub fn replica_count(&self, nodes: usize) -> u32 {
        let r = self.replicas.trim();
        if let Some((lo, hi)) = r.split_once('-') {
            let lo: u32 = lo.parse().unwrap_or(0);
            let hi: u32 = if hi == "all" {
                nodes.saturating_sub(1) as u32
            } else {
                hi.parse().unwrap_or(0)
            };
            lo.max(hi.min(nodes.saturating_sub(1) as u32))
        } else {
            r.parse().unwrap_or(0)
        }
    }
}

/// One index (a table or a partition) a restore recovers.
#[derive(Debug, Clone)]
pub struct RestoreIndex {
    /// `(schema, table)`, the key of [`Cluster::relations`].
    pub relation: (String, String),
    pub partition: Option<String>,
    /// Ids of its shards the restore recovers.
    pub shards: Vec<u32>,
    /// Deleted while restoring (`DROP TABLE`, `DELETE` of the partition): its shards count as
    /// failed ("index was deleted", `RestoreService.updateRestoreStateWithDeletedIndices`).
    pub deleted: bool,
    /// As of the last pass over its shards: how many are not done, failed, recovering or
    /// started.
    counts: ShardCounts,
}

/// Shards of a restore by progress.
#[derive(Debug, Clone, Copy, Default)]
struct ShardCounts {
    pending: usize,
    failed: usize,
    active: usize,
}

impl ShardCounts {
    fn add(&mut self, o: ShardCounts) {
        self.pending += o.pending;
        self.failed += o.failed;
        self.active += o.active;
    }
    fn sub(&mut self, o: ShardCounts) {
        self.pending -= o.pending;
        self.failed -= o.failed;
        self.active -= o.active;
    }
}

#[derive(Debug, Clone)]
pub struct RestoreRt {
    pub id: String,
    pub repository: String,
    pub snapshot: String,
    /// `INIT`, `STARTED` or `FAILURE`.
    pub state: &'static str,
    pub indices: Vec<RestoreIndex>,
    /// `(schema, table)` → positions in `indices`.
    by_relation: HashMap<(String, String), Vec<usize>>,
    /// The sum of the counts of the indices not deleted.
    live: ShardCounts,
    /// Some index was deleted.
    any_deleted: bool,
}

impl RestoreRt {
    fn new(
        id: String,
        repository: String,
        snapshot: String,
        indices: Vec<RestoreIndex>,
    ) -> RestoreRt {
        let mut by_relation: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, ix) in indices.iter().enumerate() {
            by_relation.entry(ix.relation.clone()).or_default().push(i);
        }
        let mut r = RestoreRt {
            id,
            repository,
            snapshot,
            state: "INIT",
            indices,
            by_relation,
            live: ShardCounts::default(),
            any_deleted: false,
        };
        r.recount();
        r
    }

    /// Shards in the restore (`sys.snapshot_restore.shards`), deleted ones included.
    pub fn shard_count(&self) -> usize {
        self.indices.iter().map(|ix| ix.shards.len()).sum()
    }

    fn recount(&mut self) {
        self.live = ShardCounts::default();
        for ix in self.indices.iter().filter(|ix| !ix.deleted) {
            self.live.add(ix.counts);
        }
    }
}

/// The shard with `id` (shards are usually stored in id order).
pub fn shard_in(shards: &[ShardRt], id: u32) -> Option<&ShardRt> {
    match shards.get(id as usize) {
        Some(s) if s.id == id => Some(s),
        _ => shards.iter().find(|s| s.id == id),
    }
}

fn shard_in_mut(shards: &mut [ShardRt], id: u32) -> Option<&mut ShardRt> {
    let pos = match shards.get(id as usize) {
        Some(s) if s.id == id => id as usize,
        _ => shards.iter().position(|s| s.id == id)?,
    };
    shards.get_mut(pos)
}

/// A snapshot with the lookups restores need, built once.
#[derive(Debug)]
pub struct SnapRt {
    pub def: SnapshotDef,
    /// `(schema, table)` → position in `def.tables`.
    by_name: HashMap<(String, String), usize>,
    /// Per table, the ident of each partition (in `partitions` order).
    pub idents: Vec<Vec<String>>,
    /// Per table, partition ident → position in `partitions`.
    by_ident: Vec<HashMap<String, usize>>,
}

impl SnapRt {
    fn new(def: SnapshotDef) -> SnapRt {
        let by_name = def
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.schema.clone(), t.name.clone()), i))
            .collect();
        let idents: Vec<Vec<String>> = def
            .tables
            .iter()
            .map(|t| {
                t.partitions
                    .iter()
                    .map(|p| def_partition_ident(t, p))
                    .collect()
            })
            .collect();
        let by_ident = idents
            .iter()
            .map(|ids| {
                ids.iter()
                    .enumerate()
                    .map(|(i, id)| (id.clone(), i))
                    .collect()
            })
            .collect();
        SnapRt {
            def,
            by_name,
            idents,
            by_ident,
        }
    }

    /// Position of table `schema.name` (the first of that name).
    pub fn table_index(&self, schema: &str, name: &str) -> Option<usize> {
        self.by_name
            .get(&(schema.to_string(), name.to_string()))
            .copied()
    }

    /// Position of the partition with `ident` in table `table`.
    pub fn partition_index(&self, table: usize, ident: &str) -> Option<usize> {
        self.by_ident.get(table)?.get(ident).copied()
    }
}

/// A storage location with its snapshots.
#[derive(Debug)]
pub struct StorageRt {
    pub location: StorageLocation,
    pub snapshots: Vec<Arc<SnapRt>>,
}

#[derive(Debug, Clone)]
pub struct RepoRt {
    pub kind: String,
    pub settings: BTreeMap<String, String>,
    /// Index of the storage holding the repository's snapshots.
    pub storage: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct UserRt {
    pub password: Option<String>,
    pub superuser: bool,
    pub jwt: Option<JwtDef>,
}

#[derive(Debug, Clone)]
pub struct JobRt {
    pub id: String,
    pub stmt: String,
    pub started: i64,
    pub username: String,
}

#[derive(Debug, Clone)]
pub struct DropRule {
    pub substring: String,
    pub remaining: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct NodeRt {
    pub id: String,
    pub name: String,
    pub hostname: String,
}

/// The cluster.
pub struct Cluster {
    pub version: Version,
    pub version_text: String,
    pub cluster_id: String,
    pub cluster_name: String,
    pub nodes: Vec<NodeRt>,
    pub users: BTreeMap<String, UserRt>,
    pub privileges: Vec<PrivilegeDef>,
    pub persistent: BTreeMap<String, Value>,
    pub transient: BTreeMap<String, Value>,
    pub storages: Vec<StorageRt>,
    pub repositories: BTreeMap<String, RepoRt>,
    pub relations: BTreeMap<(String, String), RelationRt>,
    pub restores: Vec<RestoreRt>,
    pub jobs: Vec<JobRt>,
    pub jobs_log: VecDeque<JobLogEntry>,
    pub(crate) statements: Vec<LoggedStatement>,
    pub outcomes: HashMap<String, RestoreOutcome>,
    pub progress: ProgressMode,
    pub last_wall: Instant,
    pub injections: Vec<ErrorInjection>,
    pub drop_rules: Vec<DropRule>,
    pub sidecar_failures: u32,
    /// The HTTP status of those failures (503 unless set).
    pub sidecar_failure_status: u16,
    pub sidecar_token: String,
    uuid_counter: u64,
}

const JOBS_LOG_SIZE: usize = 10_000;

/// Encode a partition ident the way CrateDB does (`PartitionName.encodeIdent`):
/// base32hex of a VInt count followed by VInt(len+1)+UTF-8 bytes per value
/// (0 for NULL), lower case, without padding.
pub fn encode_partition_ident(values: &[Option<String>]) -> String {
    fn vint(mut v: u32, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut bytes = Vec::new();
    vint(values.len() as u32, &mut bytes);
    for v in values {
        match v {
            None => vint(0, &mut bytes),
            Some(s) => {
                vint(s.len() as u32 + 1, &mut bytes);
                bytes.extend_from_slice(s.as_bytes());
            }
        }
    }
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::new();
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for b in bytes {
        buffer = (buffer << 8) | b as u64;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 0x1f) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize] as char);
    }
    out
}

/// The Elasticsearch index name of a table or partition.
pub fn index_name(schema: &str, table: &str, partition: Option<&str>) -> String {
    let prefix = if schema == "doc" {
        String::new()
    } else {
        format!("{schema}.")
    };
    match partition {
        Some(ident) => format!("{prefix}.partitioned.{table}.{ident}"),
        None => format!("{prefix}{table}"),
    }
}

/// Partition values in `partitioned_by` order, as strings (`None` = NULL).
fn partition_strings(partitioned_by: &[String], values: &[(String, Value)]) -> Vec<Option<String>> {
    partitioned_by
        .iter()
        .map(|c| {
            values
                .iter()
                .find(|(k, _)| k == c)
                .and_then(|(_, v)| v.to_plain_string())
        })
        .collect()
}

fn def_partition_values(t: &TableDef, p: &PartitionDef) -> Vec<(String, Value)> {
    t.partitioned_by
        .iter()
        .map(|c| {
            (
                c.clone(),
                p.values.get(c).map(Value::from_json).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// Ident of a partition definition.
pub fn def_partition_ident(t: &TableDef, p: &PartitionDef) -> String {
    encode_partition_ident(&partition_strings(
        &t.partitioned_by,
        &def_partition_values(t, p),
    ))
}

/// `(schema, table, partition assignments)` of `RESTORE ... TABLE`.
pub type TableTarget = (String, String, Vec<(String, Value)>);

/// What a `RESTORE SNAPSHOT` asks for, after analysis.
#[derive(Debug, Clone)]
pub enum RestoreTarget {
    All,
    Metadata,
    Tables(Vec<TableTarget>),
    Sections(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub repository: String,
    pub snapshot: String,
    pub target: RestoreTarget,
    pub wait_for_completion: bool,
    pub ignore_unavailable: bool,
    /// The rename options (CrateDB ≥ 5.6.0; all defaults otherwise).
    pub rename: RenameOptions,
}

/// `schema_rename_pattern`, `schema_rename_replacement`, `table_rename_pattern` and
/// `table_rename_replacement` of `RESTORE SNAPSHOT` (`SnapshotSettings`, CrateDB ≥ 5.6.0), with
/// CrateDB's defaults where a value is absent or NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameOptions {
    pub schema_pattern: String,
    pub schema_replacement: String,
    pub table_pattern: String,
    pub table_replacement: String,
}

impl Default for RenameOptions {
    fn default() -> Self {
        RenameOptions {
            schema_pattern: RenameOptions::DEFAULT_PATTERN.into(),
            schema_replacement: RenameOptions::DEFAULT_REPLACEMENT.into(),
            table_pattern: RenameOptions::DEFAULT_PATTERN.into(),
            table_replacement: RenameOptions::DEFAULT_REPLACEMENT.into(),
        }
    }
}

impl RenameOptions {
    /// `SnapshotSettings.*_RENAME_PATTERN`'s default.
    pub const DEFAULT_PATTERN: &'static str = "(.+)";
    /// `SnapshotSettings.*_RENAME_REPLACEMENT`'s default.
    pub const DEFAULT_REPLACEMENT: &'static str = "$1";

    /// `RestoreRequest.hasNonDefaultRenamePatterns`: CrateDB renames nothing unless one of the
    /// four values differs from its default (as text).
    pub fn renames(&self) -> bool {
        *self != RenameOptions::default()
    }
}

/// Applies [`RenameOptions`] the way `RestoreService` does: `table.replaceAll(...)`, then
/// `schema.replaceAll(...)`, each pattern compiled when first needed.
struct Renamer<'a> {
    options: &'a RenameOptions,
    table: Option<JavaPattern>,
    schema: Option<JavaPattern>,
}

impl<'a> Renamer<'a> {
    fn new(options: &'a RenameOptions) -> Self {
        Renamer {
            options,
            table: None,
            schema: None,
        }
    }

    fn replace(
        slot: &mut Option<JavaPattern>,
        option: &str,
        pattern: &str,
        replacement: &str,
        name: &str,
    ) -> Result<String, SqlError> {
        if slot.is_none() {
            let compiled = JavaPattern::compile(pattern).map_err(|what| {
                SqlError::not_modelled(format!("{what} in {option} '{pattern}'"))
            })?;
            *slot = Some(compiled);
        }
        let compiled = slot.as_ref().expect("compiled above");
        compiled
            .replace_all(name, replacement)
            .map_err(|e| match e {
                ReplaceError::Java { exception, message } => {
                    if exception == "IllegalArgumentException" {
                        SqlError::illegal_argument(message)
                    } else {
                        SqlError::internal(exception, message)
                    }
                }
                ReplaceError::NotModelled(what) => {
                    SqlError::not_modelled(format!("{what} (with {option} '{pattern}')"))
                }
            })
    }

    /// The name relation `schema.table` is restored under.
    fn target(&mut self, schema: &str, table: &str) -> Result<(String, String), SqlError> {
        if !self.options.renames() {
            return Ok((schema.to_string(), table.to_string()));
        }
        let o = self.options;
        let new_table = Self::replace(
            &mut self.table,
            "table_rename_pattern",
            &o.table_pattern,
            &o.table_replacement,
            table,
        )?;
        let new_schema = Self::replace(
            &mut self.schema,
            "schema_rename_pattern",
            &o.schema_pattern,
            &o.schema_replacement,
            schema,
        )?;
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 255
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        let changed = (new_schema.as_str(), new_table.as_str()) != (schema, table);
        if changed
            && (!plain(&new_schema)
                || !plain(&new_table)
                || matches!(
                    new_schema.as_str(),
                    "sys" | "information_schema" | "pg_catalog" | "blob"
                ))
        {
            return Err(SqlError::not_modelled(format!(
                "restoring {schema}.{table} under the name '{new_schema}'.'{new_table}' (CrateDB validates relation and index names there; the simulator accepts only non-empty names of lowercase letters, digits and _ outside the system schemas)"
            )));
        }
        Ok((new_schema, new_table))
    }
}

/// One index the restore creates.
struct PlannedIndex {
    table: usize,
    partition: Option<usize>,
    replace_closed: bool,
}

impl PlannedIndex {
    /// What restoring snapshot table `t` (at `table`) as a whole means: the table itself, or
    /// each of its partitions.
    fn whole_table(table: usize, t: &TableDef) -> Vec<PlannedIndex> {
        let partitions: Vec<Option<usize>> = if t.partitioned_by.is_empty() {
            vec![None]
        } else {
            (0..t.partitions.len()).map(Some).collect()
        };
        partitions
            .into_iter()
            .map(|partition| PlannedIndex {
                table,
                partition,
                replace_closed: false,
            })
            .collect()
    }
}

impl Cluster {
    pub fn new(cfg: &SimConfig) -> Result<Cluster, SimError> {
        let version = Version::parse(&cfg.server_version).ok_or_else(|| {
            SimError::Config(format!("bad server_version '{}'", cfg.server_version))
        })?;
        let mut c = Cluster {
            version,
            version_text: cfg.server_version.clone(),
            cluster_id: "2a3c4f5e-8b1d-4c7a-9e0f-1d2c3b4a5f6e".into(),
            cluster_name: cfg.cluster_name.clone(),
            nodes: (0..cfg.nodes.max(1))
                .map(|i| NodeRt {
                    id: format!("n0de{i:02}xQmSJyz1Z7xYqVgA"),
                    name: format!("crate-data-hot-{i}"),
                    hostname: format!("crate-data-hot-{i}.crate-discovery"),
                })
                .collect(),
            users: BTreeMap::new(),
            privileges: Vec::new(),
            persistent: BTreeMap::new(),
            transient: BTreeMap::new(),
            storages: cfg
                .storages
                .iter()
                .map(|s| StorageRt {
                    location: s.location.clone(),
                    snapshots: s
                        .snapshots
                        .iter()
                        .map(|d| Arc::new(SnapRt::new(d.clone())))
                        .collect(),
                })
                .collect(),
            repositories: BTreeMap::new(),
            relations: BTreeMap::new(),
            restores: Vec::new(),
            jobs: Vec::new(),
            jobs_log: VecDeque::new(),
            statements: Vec::new(),
            outcomes: cfg
                .restore_outcomes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            progress: cfg.progress,
            last_wall: Instant::now(),
            injections: Vec::new(),
            drop_rules: Vec::new(),
            sidecar_failures: 0,
            sidecar_failure_status: 503,
            sidecar_token: cfg.sidecar_token.clone(),
            uuid_counter: 0,
        };
        c.users.insert(
            "crate".into(),
            UserRt {
                password: None,
                superuser: true,
                jwt: None,
            },
        );
        for u in &cfg.users {
            c.users.insert(
                u.name.clone(),
                UserRt {
                    password: u.password.clone(),
                    superuser: u.superuser,
                    jwt: u.jwt.clone(),
                },
            );
        }
        c.privileges = match &cfg.privileges {
            Some(p) => p.clone(),
            None => cfg
                .users
                .iter()
                .filter(|u| !u.superuser)
                .flat_map(|u| PrivilegeDef::all_cluster(&u.name, "crate"))
                .collect(),
        };
        for (k, v) in &cfg.persistent_settings {
            let v = crate::settings::validate(k, &Value::from_json(v))
                .map_err(|e| SimError::Config(e.message))?;
            c.persistent.insert(k.clone(), v);
        }
        for (k, v) in &cfg.transient_settings {
            let v = crate::settings::validate(k, &Value::from_json(v))
                .map_err(|e| SimError::Config(e.message))?;
            c.transient.insert(k.clone(), v);
        }
        for t in &cfg.tables {
            c.insert_started_table(t);
        }
        for v in &cfg.views {
            c.relations.insert(
                (v.schema.clone(), v.name.clone()),
                RelationRt::view(&v.query),
            );
        }
        for s in &c.storages {
            let mut names = HashSet::new();
            for snap in s.snapshots.iter().map(|s| &s.def) {
                if !names.insert(snap.name.as_str()) {
                    return Err(SimError::Config(format!(
                        "two snapshots named '{}' in one storage",
                        snap.name
                    )));
                }
                if !matches!(
                    snap.state.as_str(),
                    "SUCCESS" | "PARTIAL" | "FAILED" | "INCOMPATIBLE" | "IN_PROGRESS"
                ) {
                    return Err(SimError::Config(format!(
                        "snapshot '{}' has state '{}'; CrateDB's states are SUCCESS, PARTIAL, FAILED, INCOMPATIBLE and IN_PROGRESS",
                        snap.name, snap.state
                    )));
                }
                if Version::parse(&snap.version).is_none() {
                    return Err(SimError::Config(format!(
                        "snapshot '{}' has a bad version '{}'",
                        snap.name, snap.version
                    )));
                }
            }
        }
        Ok(c)
    }

    fn insert_started_table(&mut self, t: &TableDef) {
        let make_shards = || {
            (0..t.shards)
                .map(|i| {
                    ShardRt::started(
                        i,
                        t.bytes_per_shard,
                        t.docs_per_shard,
                        RecoveryKind::ExistingStore,
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut rel = RelationRt {
            kind: RelKind::Table,
            number_of_shards: t.shards,
            replicas: t.replicas.clone(),
            partitioned_by: t.partitioned_by.clone(),
            closed: t.closed,
            shards: Vec::new(),
            partitions: BTreeMap::new(),
        };
        if t.partitioned_by.is_empty() {
            rel.shards = make_shards();
        } else {
            for p in &t.partitions {
                rel.partitions.insert(
                    def_partition_ident(t, p),
                    PartitionRt {
                        values: def_partition_values(t, p),
                        closed: p.closed,
                        shards: make_shards(),
                        alias: None,
                    },
                );
            }
        }
        self.relations
            .insert((t.schema.clone(), t.name.clone()), rel);
    }

    /// A fresh UUID-looking id (deterministic sequence).
    pub fn next_uuid(&mut self) -> String {
        self.uuid_counter += 1;
        let n = self.uuid_counter;
        let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995;
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            (h >> 32) as u32,
            (h >> 16) as u16,
            (h & 0xfff) as u16,
            (n & 0xfff) as u16,
            n.wrapping_mul(0x2545_F491_4F6C_DD1D) & 0xffff_ffff_ffff
        )
    }

    /// Effective value of a setting (transient > persistent > default).
    pub fn effective_setting(&self, name: &str) -> Value {
        self.transient
            .get(name)
            .or_else(|| self.persistent.get(name))
            .cloned()
            .or_else(|| crate::settings::find(name).map(|d| (d.default)()))
            .unwrap_or(Value::Null)
    }

    /// Whether replicas may be allocated (`cluster.routing.allocation.enable`).
    pub fn replicas_allowed(&self) -> bool {
        matches!(self.effective_setting("cluster.routing.allocation.enable"), Value::Text(s) if s == "all")
    }

    pub fn push_job_log(&mut self, entry: JobLogEntry) {
        self.jobs_log.push_back(entry);
        while self.jobs_log.len() > JOBS_LOG_SIZE {
            self.jobs_log.pop_front();
        }
    }

    // ------------------------------------------------------------------
    // Shard access

    /// The shards of a table (`partition` `None`) or of one of its partitions.
    pub fn index_shards(
        &self,
        schema: &str,
        table: &str,
        partition: Option<&str>,
    ) -> Option<&Vec<ShardRt>> {
        let rel = self
            .relations
            .get(&(schema.to_string(), table.to_string()))?;
        Some(match partition {
            Some(p) => &rel.partitions.get(p)?.shards,
            None => &rel.shards,
        })
    }

    /// [`Cluster::index_shards`] by the relation's key.
    pub fn index_shards_of(
        &self,
        relation: &(String, String),
        partition: Option<&str>,
    ) -> Option<&Vec<ShardRt>> {
        let rel = self.relations.get(relation)?;
        Some(match partition {
            Some(p) => &rel.partitions.get(p)?.shards,
            None => &rel.shards,
        })
    }

    fn index_shards_of_mut(
        &mut self,
        relation: &(String, String),
        partition: Option<&str>,
    ) -> Option<&mut Vec<ShardRt>> {
        let rel = self.relations.get_mut(relation)?;
        Some(match partition {
            Some(p) => &mut rel.partitions.get_mut(p)?.shards,
            None => &mut rel.shards,
        })
    }

    // ------------------------------------------------------------------
    // Restore progress

    /// The outcome for the first of `fqns` (target, then source name) that has one, else the
    /// snapshot's.
    fn outcome_for(&self, snapshot: &str, fqns: &[String]) -> RestoreOutcome {
        fqns.iter()
            .find_map(|fqn| self.outcomes.get(fqn))
            .or_else(|| self.outcomes.get(snapshot))
            .cloned()
            .unwrap_or(RestoreOutcome::Succeed)
    }

    /// Advance all running restores by one observation.
    pub fn observe_restores(&mut self) {
        let step_percent = match self.progress {
            ProgressMode::PerObservation { percent_step } => percent_step.max(0.0),
            ProgressMode::WallClock { .. } => 0.0,
        };
        self.pass_over_restores(&mut |shard| {
            let Some(rs) = shard.restore.as_mut() else {
                return;
            };
            if rs.done {
                return;
            }
            rs.observations += 1;
            let obs = rs.observations;
            let behaviour = rs.behaviour.clone();
            let step = (shard.used as f64 * step_percent / 100.0).round() as u64;
            match behaviour {
                RestoreOutcome::Succeed | RestoreOutcome::Instant => {
                    advance(shard, step, None);
                }
                RestoreOutcome::Stall { max_percent } => {
                    advance(shard, step, Some(max_percent));
                }
                RestoreOutcome::PrimariesNeverAllocated {
                    explanation,
                    observations,
                } => {
                    shard.explanation = Some(explanation);
                    if obs >= observations
                        && let Some(rs) = shard.restore.as_mut()
                    {
                        rs.done = true;
                    }
                }
                RestoreOutcome::Fail {
                    after_observations,
                    explanation,
                } => {
                    if obs > after_observations {
                        shard.state = ShardState::Unassigned;
                        shard.recovery = RecoveryKind::None;
                        shard.recovered = 0;
                        shard.explanation = Some(explanation);
                        if let Some(rs) = shard.restore.as_mut() {
                            rs.done = true;
                            rs.failed = true;
                        }
                    } else {
                        advance(shard, step, Some(99.0));
                    }
                }
            }
        });
        self.settle_restores(true);
    }

    /// Apply `f` to every shard running restores recover (indices not deleted) and count
    /// them anew by progress.
    fn pass_over_restores(&mut self, f: &mut dyn FnMut(&mut ShardRt)) {
        let mut restores = std::mem::take(&mut self.restores);
        for r in &mut restores {
            for ix in r.indices.iter_mut().filter(|ix| !ix.deleted) {
                let mut counts = ShardCounts::default();
                if let Some(shards) =
                    self.index_shards_of_mut(&ix.relation, ix.partition.as_deref())
                {
                    for &id in &ix.shards {
                        let Some(shard) = shard_in_mut(shards, id) else {
                            continue;
                        };
                        f(shard);
                        let Some(rs) = &shard.restore else {
                            continue;
                        };
                        counts.pending += usize::from(!rs.done);
                        counts.failed += usize::from(rs.failed);
                        counts.active += usize::from(matches!(
                            shard.state,
                            ShardState::Recovering | ShardState::Started
                        ));
                    }
                }
                ix.counts = counts;
            }
            r.recount();
        }
        self.restores = restores;
    }

    /// Bring each restore's row up to date with its shard counts: `INIT` becomes `STARTED`
    /// once a shard recovers or an index was deleted; a restore with nothing left restoring
    /// ends, and one with failed shards first shows `FAILURE` for one more observation
    /// (`observed`). Shards of deleted indices do not count as failed here: CrateDB removes
    /// such an entry at once.
    fn settle_restores(&mut self, observed: bool) {
        let restores = std::mem::take(&mut self.restores);
        let mut keep = Vec::with_capacity(restores.len());
        for mut r in restores {
            if r.state == "INIT" && (r.live.active > 0 || r.any_deleted) {
                r.state = "STARTED";
            }
            let (all_done, any_failed) = (r.live.pending == 0, r.live.failed > 0);
            if !all_done || (any_failed && !observed) {
                keep.push(r);
            } else if any_failed && r.state != "FAILURE" {
                r.state = "FAILURE";
                keep.push(r);
            } else {
                self.finish_restore(&r);
            }
        }
        self.restores = keep;
    }

    fn finish_restore(&mut self, r: &RestoreRt) {
        for ix in r.indices.iter().filter(|ix| !ix.deleted) {
            if let Some(shards) = self.index_shards_of_mut(&ix.relation, ix.partition.as_deref()) {
                for &id in &ix.shards {
                    if let Some(shard) = shard_in_mut(shards, id) {
                        shard.restore = None;
                    }
                }
            }
        }
    }

    /// Wall-clock progress (only in [`ProgressMode::WallClock`]).
    pub fn wall_tick(&mut self) {
        let ProgressMode::WallClock { bytes_per_sec } = self.progress else {
            self.last_wall = Instant::now();
            return;
        };
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_wall).as_secs_f64();
        self.last_wall = now;
        let bytes = (bytes_per_sec as f64 * elapsed) as u64;
        if bytes == 0 {
            return;
        }
        self.pass_over_restores(&mut |shard| {
            if shard.state != ShardState::Recovering {
                return;
            }
            let cap = match shard.restore.as_ref().map(|rs| &rs.behaviour) {
                None => return,
                Some(RestoreOutcome::Stall { max_percent }) => Some(*max_percent),
                Some(RestoreOutcome::Fail { .. }) => Some(99.0),
                Some(_) => None,
            };
            shard.recovered = (shard.recovered + bytes).min(shard.used);
            if let Some(cap) = cap {
                shard.recovered = shard
                    .recovered
                    .min((shard.used as f64 * cap / 100.0) as u64);
            } else if shard.recovered >= shard.used {
                shard.state = ShardState::Started;
                if let Some(rs) = shard.restore.as_mut() {
                    rs.done = true;
                }
            }
        });
        // remove completed restores without counting an observation
        self.settle_restores(false);
    }

    /// Mark the indices of `schema.table` (all of them, or the partitions in `partitions`) as
    /// deleted in running restores; a restore with nothing left restoring ends. Costs the
    /// number of indices marked, not the size of the restores.
    fn forget_in_restores(
        &mut self,
        schema: &str,
        table: &str,
        partitions: Option<&HashSet<&str>>,
    ) {
        let key = (schema.to_string(), table.to_string());
        let mut touched = false;
        for r in &mut self.restores {
            let Some(positions) = r.by_relation.get(&key) else {
                continue;
            };
            for &i in positions {
                let ix = &mut r.indices[i];
                let hit = match (partitions, ix.partition.as_deref()) {
                    (None, _) => true,
                    (Some(set), Some(p)) => set.contains(p),
                    (Some(_), None) => false,
                };
                if hit && !ix.deleted {
                    ix.deleted = true;
                    r.live.sub(ix.counts);
                    r.any_deleted = true;
                    touched = true;
                }
            }
        }
        if touched {
            self.settle_restores(false);
        }
    }

    fn rename_relation_in_restores(&mut self, from: &(String, String), to: &(String, String)) {
        for r in &mut self.restores {
            let Some(positions) = r.by_relation.remove(from) else {
                continue;
            };
            let mut kept = Vec::new();
            let mut moved = Vec::new();
            for i in positions {
                let ix = &mut r.indices[i];
                if ix.deleted {
                    kept.push(i);
                } else {
                    ix.relation = to.clone();
                    moved.push(i);
                }
            }
            if !kept.is_empty() {
                r.by_relation.insert(from.clone(), kept);
            }
            if !moved.is_empty() {
                r.by_relation.entry(to.clone()).or_default().extend(moved);
            }
        }
    }

    // ------------------------------------------------------------------
    // DDL helpers

    pub fn drop_table(&mut self, schema: &str, table: &str) -> bool {
        let key = (schema.to_string(), table.to_string());
        match self.relations.get(&key) {
            Some(r) if r.kind == RelKind::Table => {
                self.relations.remove(&key);
                self.forget_in_restores(schema, table, None);
                true
            }
            _ => false,
        }
    }

    /// Delete partitions (`DELETE FROM t WHERE <partition columns> = ...`) of `schema.table`:
    /// their shards go, and running restores count theirs as deleted.
    pub fn delete_partitions(&mut self, schema: &str, table: &str, idents: &[String]) {
        let key = (schema.to_string(), table.to_string());
        if let Some(rel) = self.relations.get_mut(&key) {
            for ident in idents {
                rel.partitions.remove(ident);
            }
        }
        let set: HashSet<&str> = idents.iter().map(String::as_str).collect();
        self.forget_in_restores(schema, table, Some(&set));
    }

    pub fn rename_table(
        &mut self,
        from: (String, String),
        to: (String, String),
    ) -> Result<(), SqlError> {
        match self.relations.get(&from) {
            Some(r) if r.kind == RelKind::Table => {}
            _ => {
                return Err(SqlError::relation_unknown(&format!(
                    "{}.{}",
                    from.0, from.1
                )));
            }
        }
        if self.relations.contains_key(&to) {
            return Err(SqlError::relation_already_exists(&format!(
                "{}.{}",
                to.0, to.1
            )));
        }
        let rel = self.relations.remove(&from).expect("checked above");
        self.relations.insert(to.clone(), rel);
        self.rename_relation_in_restores(&from, &to);
        for p in self
            .relations
            .values_mut()
            .flat_map(|r| r.partitions.values_mut())
        {
            if p.alias.as_ref() == Some(&from) {
                p.alias = Some(to.clone());
            }
        }
        Ok(())
    }

    /// The rows `SELECT count(*) FROM schema.table` counts: the documents of the table's started
    /// primary shards, for a partitioned table of the partitions whose alias is the table
    /// (usually its own; see [`PartitionRt::alias`]). `None` when no such table exists.
    pub fn visible_docs(&self, schema: &str, table: &str) -> Option<u64> {
        let key = (schema.to_string(), table.to_string());
        let rel = self.relations.get(&key)?;
        if rel.kind != RelKind::Table {
            return None;
        }
        let started = |shards: &[ShardRt]| -> u64 {
            shards
                .iter()
                .filter(|s| s.state == ShardState::Started)
                .map(|s| s.docs)
                .sum()
        };
        let mut docs = started(&rel.shards);
        for (holder, r) in &self.relations {
            for p in r.partitions.values() {
                if p.alias.as_ref().unwrap_or(holder) == &key {
                    docs += started(&p.shards);
                }
            }
        }
        Some(docs)
    }

    // ------------------------------------------------------------------
    // Snapshots

    /// Snapshots visible through repository `repo`.
    pub fn repo_snapshots(&self, repo: &str) -> &[Arc<SnapRt>] {
        self.repositories
            .get(repo)
            .and_then(|r| r.storage)
            .and_then(|i| self.storages.get(i))
            .map(|s| s.snapshots.as_slice())
            .unwrap_or_default()
    }

    pub fn snapshot_uuid(snap: &SnapshotDef) -> String {
        if !snap.uuid.is_empty() {
            return snap.uuid.clone();
        }
        // deterministic, base64-url-ish like Elasticsearch UUIDs
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in snap.name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..22)
            .map(|i| A[((h.rotate_left(i * 7) ^ (i as u64 * 31)) & 63) as usize] as char)
            .collect()
    }

    // ------------------------------------------------------------------
    // RESTORE SNAPSHOT

    /// Validate and start a restore. Nothing changes when it fails.
    pub fn restore(&mut self, req: RestoreRequest) -> Result<(), SqlError> {
        let repo = self
            .repositories
            .get(&req.repository)
            .cloned()
            .ok_or_else(|| {
                SqlError::new(
                    "RepositoryMissingException",
                    format!("[{}] missing", req.repository),
                    "XX000",
                )
            })?;

        // Analyzer: sections and what they include.
        let mut include_tables = false;
        let mut include_custom = false;
        let mut custom_types: Vec<&'static str> = Vec::new(); // empty = all
        let mut include_global = false;
        let mut global_prefix: Option<&'static str> = None;
        const ANALYZER_PREFIX: &str = "crate.analysis.custom";
        let v = self.version.clone();
        match &req.target {
            RestoreTarget::All => {
                include_tables = true;
                include_custom = true;
                include_global = true;
            }
            RestoreTarget::Metadata => {
                include_custom = true;
                include_global = true;
                global_prefix = Some(ANALYZER_PREFIX);
            }
            RestoreTarget::Tables(_) => include_tables = true,
            RestoreTarget::Sections(sections) => {
                for s in sections {
                    let unknown =
                        || SqlError::illegal_argument(format!("Unknown metadata type '{s}'"));
                    match s.as_str() {
                        "TABLES" => include_tables = true,
                        "ANALYZERS" => {
                            include_global = true;
                            global_prefix = Some(ANALYZER_PREFIX);
                        }
                        "VIEWS" => {
                            include_custom = true;
                            custom_types.push("views");
                        }
                        "UDFS" => {
                            include_custom = true;
                            custom_types.push("udfs");
                        }
                        "USERS" | "PRIVILEGES" => {
                            if v.at_least(6, 5, 0) {
                                return Err(unknown());
                            }
                            include_custom = true;
                            if v.at_least(5, 6, 0) {
                                custom_types.extend(["users", "privileges"]);
                            } else if s == "USERS" {
                                custom_types.push("users");
                            } else {
                                custom_types.push("privileges");
                            }
                        }
                        "USERMANAGEMENT" => {
                            if !v.at_least(5, 6, 0) {
                                return Err(unknown());
                            }
                            include_custom = true;
                            custom_types.extend(["users", "privileges"]);
                        }
                        _ => return Err(unknown()),
                    }
                }
            }
        }

        // Snapshot lookup and restorability. A snapshot still being created is not in the
        // repository's data yet.
        let snap_rt: Arc<SnapRt> = self
            .repo_snapshots(&req.repository)
            .iter()
            .find(|s| s.def.name == req.snapshot && s.def.state != "IN_PROGRESS")
            .cloned()
            .ok_or_else(|| {
                SqlError::internal(
                    "SnapshotRestoreException",
                    format!(
                        "[{}:{}] snapshot does not exist",
                        req.repository, req.snapshot
                    ),
                )
            })?;
        let snap = &snap_rt.def;
        let snap_id = format!(
            "{}:{}/{}",
            req.repository,
            snap.name,
            Self::snapshot_uuid(snap)
        );
        if !matches!(snap.state.as_str(), "SUCCESS" | "PARTIAL") {
            return Err(SqlError::internal(
                "SnapshotRestoreException",
                format!("[{snap_id}] unsupported snapshot state [{}]", snap.state),
            ));
        }
        let snap_version = Version::parse(&snap.version).unwrap_or(Version(0, 0, 0));
        if snap_version > self.version {
            return Err(SqlError::internal(
                "SnapshotRestoreException",
                format!(
                    "[{snap_id}] the snapshot was created with CrateDB version [{}] which is higher than the version of this node [{}]",
                    snap.version, self.version
                ),
            ));
        }
        let _ = repo;

        // Resolve the indices to restore.
        let mut planned: Vec<PlannedIndex> = Vec::new();
        let explicit = matches!(req.target, RestoreTarget::Tables(_));
        if let RestoreTarget::Tables(tables) = &req.target {
            // CrateDB < 5.6 checks every listed table against the cluster first
            // (RestoreSnapshotPlan.bind), before it looks into the snapshot.
            for (schema, name, assignments) in tables {
                let fqn = format!("{schema}.{name}");
                let existing = self.relations.get(&(schema.clone(), name.clone()));
                if !v.at_least(5, 6, 0)
                    && let Some(rel) = existing
                {
                    if assignments.is_empty() {
                        return Err(SqlError::relation_already_exists(&fqn));
                    }
                    let ident = self.ident_for_assignments(
                        rel.partitioned_by.as_slice(),
                        &fqn,
                        assignments,
                    )?;
                    if rel.partitions.contains_key(&ident) {
                        return Err(partition_exists(schema, name, &ident));
                    }
                }
            }
            for (schema, name, assignments) in tables {
                let fqn = format!("{schema}.{name}");
                let Some(ti) = snap_rt.table_index(schema, name) else {
                    if req.ignore_unavailable {
                        continue;
                    }
                    return Err(SqlError::internal(
                        "ResourceNotFoundException",
                        format!("Relation [{fqn}] not found in snapshot"),
                    ));
                };
                let t = &snap.tables[ti];
                if assignments.is_empty() {
                    planned.extend(PlannedIndex::whole_table(ti, t));
                } else {
                    if t.partitioned_by.is_empty() {
                        return Err(SqlError::illegal_argument(format!(
                            "table '{fqn}' is not partitioned"
                        )));
                    }
                    let ident = self.ident_for_assignments(&t.partitioned_by, &fqn, assignments)?;
                    match snap_rt.partition_index(ti, &ident) {
                        Some(pi) => planned.push(PlannedIndex {
                            table: ti,
                            partition: Some(pi),
                            replace_closed: false,
                        }),
                        None if req.ignore_unavailable => {}
                        None => {
                            return Err(SqlError::internal(
                                "IndexNotFoundException",
                                format!(
                                    "no such index [{}]",
                                    index_name(schema, name, Some(&ident))
                                ),
                            ));
                        }
                    }
                }
            }
        } else if include_tables {
            for (ti, t) in snap.tables.iter().enumerate() {
                planned.extend(PlannedIndex::whole_table(ti, t));
            }
        }

        // `RESTORE ... TABLE t, t PARTITION (...)` names an index once (CrateDB collects them in
        // sets).
        let mut seen = std::collections::HashSet::new();
        planned.retain(|p| seen.insert((p.table, p.partition)));

        // Tables that the restore creates even without partitions.
        let mut touched: Vec<usize> = Vec::new();
        if include_tables && !explicit {
            touched = (0..snap.tables.len()).collect();
        } else if let RestoreTarget::Tables(tables) = &req.target {
            let planned_tables: HashSet<usize> = planned.iter().map(|p| p.table).collect();
            let mut seen = HashSet::new();
            for (schema, name, assignments) in tables {
                if let Some(ti) = snap_rt.table_index(schema, name)
                    && (assignments.is_empty() || planned_tables.contains(&ti))
                    && seen.insert(ti)
                {
                    touched.push(ti);
                }
            }
        }

        // The names relations are restored under (rename options, CrateDB >= 5.6).
        let renaming = req.rename.renames();
        let mut renamer = Renamer::new(&req.rename);
        let mut targets: BTreeMap<usize, (String, String)> = BTreeMap::new();
        for ti in planned
            .iter()
            .map(|p| p.table)
            .chain(touched.iter().copied())
        {
            if let std::collections::btree_map::Entry::Vacant(slot) = targets.entry(ti) {
                let t = &snap.tables[ti];
                slot.insert(renamer.target(&t.schema, &t.name)?);
            }
        }
        let target_of = |ti: usize| targets[&ti].clone();
        let index_of = |p: &PlannedIndex, (schema, table): &(String, String)| {
            let ident = p.partition.map(|pi| snap_rt.idents[p.table][pi].as_str());
            index_name(schema, table, ident)
        };
        // Relations renamed into one name, in snapshot order.
        let mut sharing: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        if renaming {
            for (ti, target) in &targets {
                sharing.entry(target.clone()).or_default().push(*ti);
            }
            sharing.retain(|_, sources| sources.len() > 1);
        }
        if let Some((target, sources)) = sharing.iter().next() {
            let fqns: Vec<String> = sources.iter().map(|ti| snap.tables[*ti].fqn()).collect();
            if v.at_least(6, 1, 0) {
                return Err(SqlError::not_modelled(format!(
                    "restoring {} under one name {}.{} on CrateDB >= 6.1 (its RestoreService has no check for it)",
                    fqns.join(" and "),
                    target.0,
                    target.1
                )));
            }
            // RestoreService.applyRenameToIndices (5.6 - 6.0): one index name, two sources.
            let mut renamed: BTreeMap<String, String> = BTreeMap::new();
            for p in &planned {
                let t = &snap.tables[p.table];
                let source = index_of(p, &(t.schema.clone(), t.name.clone()));
                let target = index_of(p, &target_of(p.table));
                if let Some(previous) = renamed.insert(target.clone(), source.clone()) {
                    return Err(SqlError::internal(
                        "SnapshotRestoreException",
                        format!(
                            "[{}:{}] indices [{source}] and [{previous}] are renamed into the same index [{target}]",
                            req.repository, req.snapshot
                        ),
                    ));
                }
            }
            let partitioned: Vec<bool> = sources
                .iter()
                .map(|ti| !snap.tables[*ti].partitioned_by.is_empty())
                .collect();
            if partitioned.iter().any(|p| *p) && !partitioned.iter().all(|p| *p) {
                return Err(SqlError::not_modelled(format!(
                    "restoring a partitioned and a plain table ({}) under one name {}.{}",
                    fqns.join(" and "),
                    target.0,
                    target.1
                )));
            }
            if v.at_least(6, 0, 0) && partitioned.iter().all(|p| *p) {
                return Err(SqlError::not_modelled(format!(
                    "restoring partitioned tables {} under one name {}.{} on CrateDB 6.0",
                    fqns.join(" and "),
                    target.0,
                    target.1
                )));
            }
        }

        // RestoreService: existing open indices are conflicts; closed ones are replaced.
        for p in &mut planned {
            let key = target_of(p.table);
            let (schema, name) = (&key.0, &key.1);
            let fqn = || format!("{schema}.{name}");
            let Some(rel) = self.relations.get(&key) else {
                continue;
            };
            match p.partition {
                None => {
                    if rel.kind != RelKind::Table || rel.is_partitioned() {
                        return Err(SqlError::relation_already_exists(&fqn()));
                    }
                    if rel.closed {
                        p.replace_closed = true;
                    } else if v.at_least(5, 6, 0) || explicit {
                        return Err(SqlError::relation_already_exists(&fqn()));
                    } else {
                        return Err(open_index_exists(&snap_id, &index_name(schema, name, None)));
                    }
                }
                Some(pi) => {
                    if rel.kind != RelKind::Table || !rel.is_partitioned() {
                        return Err(SqlError::relation_already_exists(&fqn()));
                    }
                    let ident = &snap_rt.idents[p.table][pi];
                    if let Some(existing) = rel.partitions.get(ident) {
                        if existing.closed {
                            p.replace_closed = true;
                        } else if v.at_least(5, 6, 0) {
                            return Err(partition_exists(schema, name, ident));
                        } else {
                            return Err(open_index_exists(
                                &snap_id,
                                &index_name(schema, name, Some(ident)),
                            ));
                        }
                    }
                }
            }
        }

        // RestoreService.restoreTemplates (5.6 - 5.10): two partitioned tables renamed into one.
        if let Some((target, sources)) = sharing.iter().next() {
            let second = &snap.tables[sources[1]];
            return Err(SqlError::internal(
                "SnapshotRestoreException",
                format!(
                    "[{}:{}] Rename conflict for partitioned table `{}`. `{}` already exists. Cannot rename `{}` to the same name",
                    req.repository,
                    req.snapshot,
                    second.fqn(),
                    index_name(&second.schema, &second.name, Some("")),
                    index_name(&target.0, &target.1, Some("")),
                ),
            ));
        }

        // ---- Apply (no more failures past this point) ----
        let restore_id = self.next_uuid();
        let mut indices: Vec<RestoreIndex> = Vec::new();
        // Before 5.7.2 a renamed partition kept the alias of its source table, so the renamed
        // table was created but its data was visible only through the source (fixed by
        // "Use renamed alias when restoring a snapshot with rename parameters").
        let keeps_source_alias = renaming && !v.at_least(5, 7, 2);
        let replaced: HashSet<usize> = planned
            .iter()
            .filter(|p| p.partition.is_none() && p.replace_closed)
            .map(|p| p.table)
            .collect();
        for &ti in &touched {
            let t = &snap.tables[ti];
            let key = target_of(ti);
            if replaced.contains(&ti) {
                self.relations.remove(&key);
            }
            self.relations.entry(key).or_insert_with(|| RelationRt {
                kind: RelKind::Table,
                number_of_shards: t.shards,
                replicas: t.replicas.clone(),
                partitioned_by: t.partitioned_by.clone(),
                closed: false,
                shards: Vec::new(),
                partitions: BTreeMap::new(),
            });
        }
        for p in &planned {
            let t = &snap.tables[p.table];
            let source = (t.schema.clone(), t.name.clone());
            let target = target_of(p.table);
            let behaviour =
                self.outcome_for(&snap.name, &[format!("{}.{}", target.0, target.1), t.fqn()]);
            let shards: Vec<ShardRt> = (0..t.shards)
                .map(|i| new_restoring_shard(i, t, &behaviour, &restore_id))
                .collect();
            let partition_ident = p.partition.map(|pi| snap_rt.idents[p.table][pi].clone());
            let restoring: Vec<u32> = shards
                .iter()
                .filter(|s| s.restore.is_some())
                .map(|s| s.id)
                .collect();
            if !restoring.is_empty() {
                indices.push(RestoreIndex {
                    relation: target.clone(),
                    partition: partition_ident.clone(),
                    counts: ShardCounts {
                        pending: restoring.len(),
                        ..ShardCounts::default()
                    },
                    shards: restoring,
                    deleted: false,
                });
            }
            let alias = (keeps_source_alias && source != target).then(|| source.clone());
            let rel = self
                .relations
                .get_mut(&target)
                .expect("relation created above");
            match (p.partition, partition_ident) {
                (Some(pi), Some(ident)) => {
                    rel.partitions.insert(
                        ident,
                        PartitionRt {
                            values: def_partition_values(t, &t.partitions[pi]),
                            closed: false,
                            shards,
                            alias,
                        },
                    );
                }
                _ => {
                    rel.shards = shards;
                    rel.closed = false;
                }
            }
        }

        if include_global {
            let mut new_settings = BTreeMap::new();
            for (k, val) in &snap.settings {
                if global_prefix.is_none_or(|pre| k.starts_with(pre)) {
                    new_settings.insert(k.clone(), Value::from_json(val));
                }
            }
            self.persistent = new_settings;
        }
        if include_custom {
            let wants = |t: &str| custom_types.is_empty() || custom_types.contains(&t);
            if wants("users")
                && let Some(users) = &snap.users
            {
                self.users.retain(|name, u| u.superuser && name == "crate");
                for u in users {
                    if u.name == "crate" {
                        continue;
                    }
                    self.users.insert(
                        u.name.clone(),
                        UserRt {
                            password: u.password.clone(),
                            superuser: u.superuser,
                            jwt: u.jwt.clone(),
                        },
                    );
                }
            }
            if wants("privileges")
                && let Some(privs) = &snap.privileges
            {
                self.privileges = privs.clone();
            }
            if wants("views") {
                self.relations
                    .retain(|_, r| !matches!(r.kind, RelKind::View { .. }));
                for vdef in &snap.views {
                    self.relations
                        .entry((vdef.schema.clone(), vdef.name.clone()))
                        .or_insert_with(|| RelationRt::view(&vdef.query));
                }
            }
        }

        if !indices.is_empty() {
            self.restores.push(RestoreRt::new(
                restore_id,
                req.repository.clone(),
                snap.name.clone(),
                indices,
            ));
            if req.wait_for_completion {
                self.run_to_completion();
            }
        }
        Ok(())
    }

    /// Drive the newest restore until it is gone (used for
    /// `wait_for_completion = true`); stalled restores stay asynchronous.
    fn run_to_completion(&mut self) {
        let Some(last) = self.restores.last() else {
            return;
        };
        let id = last.id.clone();
        let stalls = last.indices.iter().any(|ix| {
            self.index_shards_of(&ix.relation, ix.partition.as_deref())
                .is_some_and(|shards| {
                    ix.shards.iter().any(|&i| {
                        shard_in(shards, i)
                            .and_then(|s| s.restore.as_ref())
                            .is_some_and(|rs| matches!(rs.behaviour, RestoreOutcome::Stall { .. }))
                    })
                })
        });
        if stalls {
            return;
        }
        let saved = self.progress;
        self.progress = ProgressMode::PerObservation {
            percent_step: 100.0,
        };
        for _ in 0..10_000 {
            if !self.restores.iter().any(|r| r.id == id) {
                break;
            }
            self.observe_restores();
        }
        self.progress = saved;
    }

    fn ident_for_assignments(
        &self,
        partitioned_by: &[String],
        fqn: &str,
        assignments: &[(String, Value)],
    ) -> Result<String, SqlError> {
        for (col, _) in assignments {
            if !partitioned_by.contains(col) {
                return Err(SqlError::illegal_argument(format!(
                    "\"{col}\" is no known partition column"
                )));
            }
        }
        if assignments.len() != partitioned_by.len() {
            return Err(SqlError::illegal_argument(format!(
                "The table \"{fqn}\" is partitioned by columns [{}] but the values for the partition are incomplete",
                partitioned_by.join(", ")
            )));
        }
        Ok(encode_partition_ident(&partition_strings(
            partitioned_by,
            assignments,
        )))
    }
}

fn partition_exists(schema: &str, table: &str, ident: &str) -> SqlError {
    SqlError::internal(
        "PartitionAlreadyExistsException",
        format!(
            "Partition '{}' already exists",
            index_name(schema, table, Some(ident))
        ),
    )
}

fn open_index_exists(snap_id: &str, index: &str) -> SqlError {
    SqlError::internal(
        "SnapshotRestoreException",
        format!(
            "[{snap_id}] cannot restore index [{index}] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name"
        ),
    )
}

fn new_restoring_shard(
    id: u32,
    t: &TableDef,
    behaviour: &RestoreOutcome,
    restore_id: &str,
) -> ShardRt {
    let mut s = ShardRt {
        id,
        state: ShardState::Initializing,
        used: t.bytes_per_shard,
        recovered: 0,
        docs: t.docs_per_shard,
        recovery: RecoveryKind::None,
        explanation: None,
        restore: Some(ShardRestore {
            restore_id: restore_id.to_string(),
            behaviour: behaviour.clone(),
            observations: 0,
            done: false,
            failed: false,
        }),
    };
    match behaviour {
        RestoreOutcome::Instant => {
            s.state = ShardState::Started;
            s.recovered = s.used;
            s.recovery = RecoveryKind::Snapshot;
            s.restore = None;
        }
        RestoreOutcome::PrimariesNeverAllocated { explanation, .. } => {
            s.state = ShardState::Unassigned;
            s.explanation = Some(explanation.clone());
        }
        _ => {}
    }
    s
}

/// One observation of progress for a shard.
fn advance(shard: &mut ShardRt, step: u64, cap_percent: Option<f64>) {
    match shard.state {
        ShardState::Initializing | ShardState::Unassigned => {
            shard.state = ShardState::Recovering;
            shard.recovery = RecoveryKind::Snapshot;
            shard.recovered = step.min(shard.used);
        }
        ShardState::Recovering => {
            shard.recovered = (shard.recovered + step).min(shard.used);
        }
        ShardState::Started => {}
    }
    if let Some(cap) = cap_percent {
        let max = (shard.used as f64 * cap.min(99.9) / 100.0) as u64;
        shard.recovered = shard.recovered.min(max);
        return;
    }
    if shard.state == ShardState::Recovering && shard.recovered >= shard.used {
        shard.state = ShardState::Started;
        if let Some(rs) = shard.restore.as_mut() {
            rs.done = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ident_matches_cratedb_encoding() {
        // CrateDB documents `.partitioned.parted_table.0400` for value NULL.
        assert_eq!(encode_partition_ident(&[None]), "0400");
        // A single value "1": bytes [1, 2, '1'] -> base32hex "04132"
        assert_eq!(encode_partition_ident(&[Some("1".into())]), "04132");
        assert_eq!(
            index_name("doc", "t", Some("04132")),
            ".partitioned.t.04132"
        );
        assert_eq!(index_name("s", "t", Some("0400")), "s..partitioned.t.0400");
        assert_eq!(index_name("s", "t", None), "s.t");
    }

    #[test]
    fn versions_compare() {
        let v = Version::parse("5.10.3").unwrap();
        assert!(v.at_least(5, 6, 0));
        assert!(!Version::parse("5.5.2").unwrap().at_least(5, 6, 0));
        assert!(Version::parse("6.5.0").unwrap().at_least(6, 5, 0));
    }

    #[test]
    fn replica_counts() {
        let mut r = RelationRt::view("x");
        r.replicas = "0-1".into();
        assert_eq!(r.replica_count(1), 0);
        assert_eq!(r.replica_count(3), 1);
        r.replicas = "2".into();
        assert_eq!(r.replica_count(1), 2);
    }
}
