//! Declarative definitions of the simulated cluster: storage locations with
//! their snapshots, tables, users, and the knobs that steer restores.
//!
//! All definition types are `serde` deserializable so the `cratedb-sim` binary
//! can read them from its `--config` JSON file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A storage location that holds snapshots (an S3 bucket path, an Azure
/// container path, or a shared file system path).
///
/// `CREATE REPOSITORY` "verifies" against these: a repository works only if its
/// settings name a configured location and carry matching credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Storage {
    /// Where the snapshots live and how to authenticate.
    #[serde(flatten)]
    pub location: StorageLocation,
    /// The snapshots stored at that location.
    #[serde(default)]
    pub snapshots: Vec<SnapshotDef>,
}

/// The kind of storage and its coordinates/credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StorageLocation {
    /// S3 (`TYPE s3`), Amazon's or an S3-compatible store (MinIO, Ceph, Garage, ...).
    S3 {
        bucket: String,
        #[serde(default)]
        base_path: String,
        access_key: String,
        secret_key: String,
        /// Where an S3-compatible store answers (`host[:port]`, or a URL whose scheme sets
        /// `protocol`); `None` is Amazon S3 itself. A repository reaches this storage only when
        /// it names the same endpoint (and protocol).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// `http` or `https` (default) for an `endpoint`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<String>,
        /// The only signing region the store accepts (like Garage, or MinIO with a region
        /// set); `None` accepts any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// Whether the store also answers virtual-hosted-style requests
        /// (`<bucket>.<endpoint>`). Default: yes for Amazon S3, no for a store with an
        /// `endpoint` (MinIO's default), so CrateDB < 6.3.0 needs
        /// `use_path_style_access = true` there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        virtual_host_style: Option<bool>,
    },
    /// Azure blob storage (`TYPE azure`).
    Azure {
        account: String,
        key: String,
        container: String,
        #[serde(default)]
        base_path: String,
    },
    /// Shared file system (`TYPE fs`).
    Fs { location: String },
}

impl Storage {
    /// An S3 location.
    pub fn s3(
        bucket: impl Into<String>,
        base_path: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Storage {
            location: StorageLocation::S3 {
                bucket: bucket.into(),
                base_path: base_path.into(),
                access_key: access_key.into(),
                secret_key: secret_key.into(),
                endpoint: None,
                protocol: None,
                region: None,
                virtual_host_style: None,
            },
            snapshots: Vec::new(),
        }
    }

    fn s3_field(&mut self, what: &str) -> &mut StorageLocation {
        assert!(
            matches!(self.location, StorageLocation::S3 { .. }),
            "Storage::{what} applies to S3 storages only"
        );
        &mut self.location
    }

    /// An S3-compatible store at `endpoint` (`host[:port]`, e.g. `minio.minio:9000`, or a URL
    /// such as `http://minio.minio:9000`, whose scheme sets the protocol). Panics for a storage
    /// that is not S3.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        if let StorageLocation::S3 { endpoint: e, .. } = self.s3_field("endpoint") {
            *e = Some(endpoint.into());
        }
        self
    }

    /// `http` or `https` (the default) for the [`Storage::endpoint`]. Panics for a storage
    /// that is not S3.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        if let StorageLocation::S3 { protocol: p, .. } = self.s3_field("protocol") {
            *p = Some(protocol.into());
        }
        self
    }

    /// The only signing region the store accepts. Panics for a storage that is not S3.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        if let StorageLocation::S3 { region: r, .. } = self.s3_field("region") {
            *r = Some(region.into());
        }
        self
    }

    /// Whether the store answers virtual-hosted-style requests (`<bucket>.<endpoint>`; by
    /// default Amazon S3 does, a store with an endpoint does not). Panics for a storage that
    /// is not S3.
    pub fn virtual_host_style(mut self, answers: bool) -> Self {
        if let StorageLocation::S3 {
            virtual_host_style: v,
            ..
        } = self.s3_field("virtual_host_style")
        {
            *v = Some(answers);
        }
        self
    }

    /// An Azure blob storage location.
    pub fn azure(
        account: impl Into<String>,
        key: impl Into<String>,
        container: impl Into<String>,
        base_path: impl Into<String>,
    ) -> Self {
        Storage {
            location: StorageLocation::Azure {
                account: account.into(),
                key: key.into(),
                container: container.into(),
                base_path: base_path.into(),
            },
            snapshots: Vec::new(),
        }
    }

    /// A file system location (`path.repo`).
    pub fn fs(location: impl Into<String>) -> Self {
        Storage {
            location: StorageLocation::Fs {
                location: location.into(),
            },
            snapshots: Vec::new(),
        }
    }

    /// Add a snapshot stored here.
    pub fn snapshot(mut self, snapshot: SnapshotDef) -> Self {
        self.snapshots.push(snapshot);
        self
    }
}

/// A snapshot in a storage location (a row of `sys.snapshots` once a repository reaches it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDef {
    pub name: String,
    /// The CrateDB version that created the snapshot (`sys.snapshots.version`).
    #[serde(default = "default_snapshot_version")]
    pub version: String,
    /// `SUCCESS` (default), `PARTIAL`, `FAILED`, `INCOMPATIBLE` or `IN_PROGRESS`
    /// (CrateDB's `SnapshotState`). Only `SUCCESS` and `PARTIAL` restore. `IN_PROGRESS` is a
    /// snapshot the simulated cluster is creating itself (CrateDB lists those from its cluster
    /// state with `finished` at epoch 0 and its own version; `RESTORE` does not find them). A
    /// snapshot another cluster is still writing is not in the repository yet: leave it out.
    #[serde(default = "default_snapshot_state")]
    pub state: String,
    /// Snapshot UUID (`sys.snapshots.id`); derived from the name when empty.
    #[serde(default)]
    pub uuid: String,
    /// Start time, epoch milliseconds (`sys.snapshots.started`).
    #[serde(default = "default_started")]
    pub started: i64,
    /// Finish time, epoch milliseconds (`sys.snapshots.finished`).
    #[serde(default = "default_finished")]
    pub finished: i64,
    /// Shard failures of a `PARTIAL` or `FAILED` snapshot (`sys.snapshots.failures`), as CrateDB
    /// prints them (`SnapshotShardFailure{shardId=[.., 0], reason='..', nodeId='..',
    /// status=..}`).
    #[serde(default)]
    pub failures: Vec<String>,
    /// Why the snapshot failed (`sys.snapshots.reason`); NULL for a successful one.
    #[serde(default)]
    pub reason: Option<String>,
    /// Whether the snapshot holds the cluster's global state (`sys.snapshots.include_global_state`).
    #[serde(default = "default_true")]
    pub include_global_state: bool,
    #[serde(default)]
    pub tables: Vec<TableDef>,
    #[serde(default)]
    pub views: Vec<ViewDef>,
    /// The users (user management metadata) in the snapshot; `None` means the
    /// snapshot has no user metadata at all, so restoring users changes nothing.
    #[serde(default)]
    pub users: Option<Vec<UserDef>>,
    /// The privileges in the snapshot (same `None` semantics as `users`).
    #[serde(default)]
    pub privileges: Option<Vec<PrivilegeDef>>,
    /// Persistent cluster settings stored in the snapshot, as dotted keys
    /// (`"cluster.routing.allocation.enable": "all"`).
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

fn default_snapshot_version() -> String {
    "5.10.3".into()
}
fn default_snapshot_state() -> String {
    "SUCCESS".into()
}
fn default_started() -> i64 {
    1_718_000_000_000
}
fn default_finished() -> i64 {
    1_718_000_060_000
}
fn default_true() -> bool {
    true
}

impl SnapshotDef {
    /// A successful snapshot created by CrateDB 5.10.3 with no content.
    pub fn new(name: impl Into<String>) -> Self {
        SnapshotDef {
            name: name.into(),
            version: default_snapshot_version(),
            state: default_snapshot_state(),
            uuid: String::new(),
            started: default_started(),
            finished: default_finished(),
            failures: Vec::new(),
            reason: None,
            include_global_state: true,
            tables: Vec::new(),
            views: Vec::new(),
            users: None,
            privileges: None,
            settings: BTreeMap::new(),
        }
    }
    /// The CrateDB version that created the snapshot.
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.version = v.into();
        self
    }
    /// Snapshot state (`SUCCESS`, `PARTIAL`, `FAILED`, `INCOMPATIBLE`, `IN_PROGRESS`; see
    /// [`SnapshotDef::state`](struct@SnapshotDef)).
    pub fn state(mut self, s: impl Into<String>) -> Self {
        self.state = s.into();
        self
    }
    /// The snapshot's UUID (`sys.snapshots.id`).
    pub fn uuid(mut self, uuid: impl Into<String>) -> Self {
        self.uuid = uuid.into();
        self
    }
    /// When the snapshot started, epoch milliseconds.
    pub fn started(mut self, epoch_millis: i64) -> Self {
        self.started = epoch_millis;
        self
    }
    /// When the snapshot finished, epoch milliseconds.
    pub fn finished(mut self, epoch_millis: i64) -> Self {
        self.finished = epoch_millis;
        self
    }
    /// The shard failures listed in `sys.snapshots.failures`.
    pub fn failures<I, S>(mut self, failures: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.failures = failures.into_iter().map(Into::into).collect();
        self
    }
    /// The failure reason shown in `sys.snapshots.reason`.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
    /// Whether the snapshot includes the global cluster state (default: yes).
    pub fn include_global_state(mut self, include: bool) -> Self {
        self.include_global_state = include;
        self
    }
    /// Add a (partitioned or plain) table.
    pub fn table(mut self, t: TableDef) -> Self {
        self.tables.push(t);
        self
    }
    /// Alias of [`SnapshotDef::table`] for readability with partitioned tables.
    pub fn partitioned_table(self, t: TableDef) -> Self {
        self.table(t)
    }
    /// Add a view.
    pub fn view(mut self, v: ViewDef) -> Self {
        self.views.push(v);
        self
    }
    /// Set the users stored in the snapshot.
    pub fn users(mut self, users: Vec<UserDef>) -> Self {
        self.users = Some(users);
        self
    }
    /// Set the privileges stored in the snapshot.
    pub fn privileges(mut self, privileges: Vec<PrivilegeDef>) -> Self {
        self.privileges = Some(privileges);
        self
    }
    /// Set one persistent cluster setting stored in the snapshot.
    pub fn setting(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.settings.insert(key.into(), value);
        self
    }
    /// Replace all persistent cluster settings stored in the snapshot.
    pub fn settings(mut self, settings: BTreeMap<String, serde_json::Value>) -> Self {
        self.settings = settings;
        self
    }
}

/// A table (in a snapshot or in the running cluster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub schema: String,
    pub name: String,
    /// Number of primary shards (per partition for partitioned tables).
    #[serde(default = "default_shards")]
    pub shards: u32,
    /// `information_schema.tables.number_of_replicas`, e.g. `"0-1"` or `"1"`.
    #[serde(default = "default_replicas")]
    pub replicas: String,
    /// Size of each primary shard in bytes.
    #[serde(default = "default_bytes")]
    pub bytes_per_shard: u64,
    /// Documents in each primary shard.
    #[serde(default = "default_docs")]
    pub docs_per_shard: u64,
    /// Partition columns; empty for a plain table.
    #[serde(default)]
    pub partitioned_by: Vec<String>,
    /// The partitions (only for partitioned tables).
    #[serde(default)]
    pub partitions: Vec<PartitionDef>,
    /// Whether the table is closed (cluster tables only).
    #[serde(default)]
    pub closed: bool,
}

fn default_shards() -> u32 {
    4
}
fn default_replicas() -> String {
    "0-1".into()
}
fn default_bytes() -> u64 {
    1_000_000
}
fn default_docs() -> u64 {
    1_000
}

impl TableDef {
    /// A plain table with 4 shards of 1 MB and `number_of_replicas = '0-1'`.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableDef {
            schema: schema.into(),
            name: name.into(),
            shards: default_shards(),
            replicas: default_replicas(),
            bytes_per_shard: default_bytes(),
            docs_per_shard: default_docs(),
            partitioned_by: Vec::new(),
            partitions: Vec::new(),
            closed: false,
        }
    }
    /// Number of primary shards (per partition).
    pub fn shards(mut self, n: u32) -> Self {
        self.shards = n;
        self
    }
    /// `number_of_replicas` setting, e.g. `"1"` or `"0-1"`.
    pub fn replicas(mut self, r: impl Into<String>) -> Self {
        self.replicas = r.into();
        self
    }
    /// Bytes per primary shard.
    pub fn bytes_per_shard(mut self, b: u64) -> Self {
        self.bytes_per_shard = b;
        self
    }
    /// Documents per primary shard.
    pub fn docs_per_shard(mut self, d: u64) -> Self {
        self.docs_per_shard = d;
        self
    }
    /// Make the table partitioned by these columns.
    pub fn partitioned_by<I, S>(mut self, cols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.partitioned_by = cols.into_iter().map(Into::into).collect();
        self
    }
    /// Add a partition; values are given per partition column.
    pub fn partition(mut self, p: PartitionDef) -> Self {
        self.partitions.push(p);
        self
    }
    /// Mark the table closed.
    pub fn closed(mut self, closed: bool) -> Self {
        self.closed = closed;
        self
    }
    /// `schema.name`.
    pub fn fqn(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// One partition of a partitioned table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionDef {
    /// Partition column → value (`{"day": 1718000000000}`).
    pub values: BTreeMap<String, serde_json::Value>,
    /// Whether the partition is closed (cluster tables only).
    #[serde(default)]
    pub closed: bool,
}

impl PartitionDef {
    /// A partition with one column value.
    pub fn new(column: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        let mut values = BTreeMap::new();
        values.insert(column.into(), value.into());
        PartitionDef {
            values,
            closed: false,
        }
    }
    /// Add another partition column value.
    pub fn value(mut self, column: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.values.insert(column.into(), value.into());
        self
    }
}

/// A view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    pub schema: String,
    pub name: String,
    #[serde(default)]
    pub query: String,
}

impl ViewDef {
    /// A view `schema.name`.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        ViewDef {
            schema: schema.into(),
            name: name.into(),
            query: "SELECT 1".into(),
        }
    }
}

/// A database user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDef {
    pub name: String,
    /// Cleartext password; `None` means the user cannot log in with a password.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub superuser: bool,
    /// JWT properties.
    #[serde(default)]
    pub jwt: Option<JwtDef>,
}

impl UserDef {
    /// A regular user with a password.
    pub fn new(name: impl Into<String>, password: impl Into<String>) -> Self {
        UserDef {
            name: name.into(),
            password: Some(password.into()),
            superuser: false,
            jwt: None,
        }
    }
}

/// JWT properties of a user (`ALTER USER ... SET (jwt = {...})`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtDef {
    pub iss: String,
    pub username: String,
    #[serde(default)]
    pub aud: Option<String>,
}

/// A row of `sys.privileges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegeDef {
    pub grantee: String,
    pub grantor: String,
    /// `GRANT` or `DENY`.
    #[serde(default = "default_grant")]
    pub state: String,
    /// `DQL`, `DML`, `DDL` or `AL`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `CLUSTER`, `SCHEMA`, `TABLE` or `VIEW`.
    #[serde(default = "default_class")]
    pub class: String,
    /// Schema or table name; `None` for `CLUSTER`.
    #[serde(default)]
    pub ident: Option<String>,
}

fn default_grant() -> String {
    "GRANT".into()
}
fn default_class() -> String {
    "CLUSTER".into()
}

impl PrivilegeDef {
    /// A cluster-wide `GRANT <kind> TO <grantee>` by `grantor`.
    pub fn cluster(
        grantee: impl Into<String>,
        grantor: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        PrivilegeDef {
            grantee: grantee.into(),
            grantor: grantor.into(),
            state: default_grant(),
            kind: kind.into(),
            class: default_class(),
            ident: None,
        }
    }

    /// `GRANT ALL PRIVILEGES TO <grantee>` (DQL, DML, DDL, AL on the cluster).
    pub fn all_cluster(grantee: &str, grantor: &str) -> Vec<PrivilegeDef> {
        ["AL", "DDL", "DML", "DQL"]
            .iter()
            .map(|k| PrivilegeDef::cluster(grantee, grantor, *k))
            .collect()
    }
}

/// How a restore of a snapshot (or of one table) proceeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RestoreOutcome {
    /// Shards go INITIALIZING → RECOVERING → STARTED as observed (default).
    Succeed,
    /// Everything completes inside the `RESTORE` call: no `sys.snapshot_restore`
    /// row is ever visible.
    Instant,
    /// Primaries are never allocated: shards stay `UNASSIGNED` with `recovery`
    /// NULL; the restore row disappears after `observations` observations and
    /// `sys.allocations.explanation` shows `explanation`.
    PrimariesNeverAllocated {
        #[serde(default = "default_unassigned_explanation")]
        explanation: String,
        #[serde(default = "default_observations")]
        observations: u32,
    },
    /// Shards recover up to `max_percent` and never finish; the row stays.
    Stall {
        #[serde(default = "default_stall_percent")]
        max_percent: f64,
    },
    /// Shards recover for `after_observations` observations, then fail: the row
    /// shows `FAILURE` for one observation and disappears; shards end
    /// `UNASSIGNED` with `explanation` in `sys.allocations`.
    Fail {
        #[serde(default = "default_observations")]
        after_observations: u32,
        #[serde(default = "default_fail_explanation")]
        explanation: String,
    },
}

/// CrateDB's allocation explanation when no node can take a shard.
pub const DISK_WATERMARK_EXPLANATION: &str =
    "cannot allocate because allocation is not permitted to any of the nodes";

/// The per-node decision text for the disk high watermark.
pub const DISK_WATERMARK_DECISION: &str = "the node is above the high watermark cluster setting [cluster.routing.allocation.disk.watermark.high=90%], using more disk space than the maximum allowed [90.0%], actual free: [4.2%]";

fn default_unassigned_explanation() -> String {
    DISK_WATERMARK_EXPLANATION.into()
}
fn default_fail_explanation() -> String {
    "cannot allocate because a previous copy of the primary shard existed but can no longer be found on the nodes in the cluster".into()
}
fn default_observations() -> u32 {
    2
}
fn default_stall_percent() -> f64 {
    50.0
}

impl RestoreOutcome {
    /// [`RestoreOutcome::PrimariesNeverAllocated`] with CrateDB's disk
    /// watermark explanation, row gone after 2 observations.
    pub fn primaries_never_allocated() -> Self {
        RestoreOutcome::PrimariesNeverAllocated {
            explanation: default_unassigned_explanation(),
            observations: default_observations(),
        }
    }
    /// [`RestoreOutcome::Stall`] at 50 %.
    pub fn stall() -> Self {
        RestoreOutcome::Stall {
            max_percent: default_stall_percent(),
        }
    }
    /// [`RestoreOutcome::Fail`] after 2 observations.
    pub fn fail() -> Self {
        RestoreOutcome::Fail {
            after_observations: default_observations(),
            explanation: default_fail_explanation(),
        }
    }
}

/// How restore progress advances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ProgressMode {
    /// Every statement that reads `sys.shards` or `sys.snapshot_restore`
    /// advances each recovering shard by `percent_step` % of its bytes, after
    /// the statement has produced its result (deterministic).
    PerObservation { percent_step: f64 },
    /// Shards recover `bytes_per_sec` bytes per wall-clock second (state
    /// transitions still need an observation to start).
    WallClock { bytes_per_sec: u64 },
}

impl Default for ProgressMode {
    fn default() -> Self {
        ProgressMode::PerObservation { percent_step: 25.0 }
    }
}

/// Which front-end sent a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frontend {
    /// PostgreSQL wire protocol.
    PgWire,
    /// PostgreSQL wire protocol inside TLS (see [`crate::SimulatorBuilder::tls`]).
    PgWireTls,
    /// crate-control sidecar (`POST /exec`).
    Sidecar,
    /// CrateDB's HTTP endpoint (`POST /_sql`, port 4200): what real `crash` uses.
    Http,
    /// [`crate::SimulatorHandle::execute_as_superuser`] (crash in the pod).
    Superuser,
}

/// How a logged statement ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatementOutcome {
    /// Success with the row count.
    Ok { rowcount: i64 },
    /// An SQL error.
    Error { sqlstate: String, message: String },
    /// The connection was dropped by a fault knob.
    ConnectionDropped,
}

/// One entry of the simulator's statement log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementRecord {
    /// Sequence number, starting at 1.
    pub seq: u64,
    pub frontend: Frontend,
    pub user: String,
    /// The statement text exactly as sent (with `$n` placeholders).
    pub sql: String,
    pub param_count: usize,
    /// Bound parameter values (JSON rendering).
    pub params: Vec<serde_json::Value>,
    pub outcome: StatementOutcome,
    /// Refused because it is outside the modelled SQL.
    pub rejected: bool,
}

/// A statement log entry as the simulator keeps it (parameters as values, shared between
/// entries that bound the same ones); rendered as a [`StatementRecord`] when read.
#[derive(Debug, Clone)]
pub(crate) struct LoggedStatement {
    pub seq: u64,
    pub frontend: Frontend,
    pub user: String,
    pub sql: String,
    pub param_count: usize,
    pub params: std::sync::Arc<Vec<crate::value::Value>>,
    pub outcome: StatementOutcome,
    pub rejected: bool,
}

impl LoggedStatement {
    /// The public record, parameter values as JSON.
    pub fn record(&self) -> StatementRecord {
        StatementRecord {
            seq: self.seq,
            frontend: self.frontend,
            user: self.user.clone(),
            sql: self.sql.clone(),
            param_count: self.param_count,
            params: self
                .params
                .iter()
                .map(crate::value::Value::to_json)
                .collect(),
            outcome: self.outcome.clone(),
            rejected: self.rejected,
        }
    }

    /// The record without parameter values.
    pub fn summary(&self) -> StatementSummary {
        StatementSummary {
            seq: self.seq,
            frontend: self.frontend,
            user: self.user.clone(),
            sql: self.sql.clone(),
            param_count: self.param_count,
            outcome: self.outcome.clone(),
            rejected: self.rejected,
        }
    }
}

/// A statement log entry without the parameter values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementSummary {
    pub seq: u64,
    pub frontend: Frontend,
    pub user: String,
    pub sql: String,
    pub param_count: usize,
    pub outcome: StatementOutcome,
    pub rejected: bool,
}

impl StatementRecord {
    /// This record without the parameter values.
    pub fn without_params(&self) -> StatementSummary {
        StatementSummary {
            seq: self.seq,
            frontend: self.frontend,
            user: self.user.clone(),
            sql: self.sql.clone(),
            param_count: self.param_count,
            outcome: self.outcome.clone(),
            rejected: self.rejected,
        }
    }
}

/// A row of `sys.jobs_log` (statement text only, never parameter values).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobLogEntry {
    pub id: String,
    pub username: String,
    pub stmt: String,
    pub started: i64,
    pub ended: i64,
    pub error: Option<String>,
}

/// Make statements fail on purpose.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInjection {
    /// Statements whose text contains this substring fail.
    pub substring: String,
    /// Java exception class name shown over HTTP/crash.
    pub exception: String,
    pub message: String,
    pub sqlstate: String,
    /// How many statements fail; `None` = every matching statement.
    pub times: Option<u32>,
}

impl ErrorInjection {
    /// The next statement containing `substring` fails with an internal error.
    pub fn once(substring: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorInjection {
            substring: substring.into(),
            exception: "RuntimeException".into(),
            message: message.into(),
            sqlstate: "XX000".into(),
            times: Some(1),
        }
    }
    /// Every statement containing `substring` fails.
    pub fn always(substring: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorInjection {
            times: None,
            ..ErrorInjection::once(substring, message)
        }
    }
    /// Use this SQLSTATE.
    pub fn sqlstate(mut self, s: impl Into<String>) -> Self {
        self.sqlstate = s.into();
        self
    }
    /// Use this exception name.
    pub fn exception(mut self, e: impl Into<String>) -> Self {
        self.exception = e.into();
        self
    }
}
