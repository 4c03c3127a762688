//! # cratedb-sim — a CrateDB simulator for integration tests
//!
//! One in-memory CrateDB cluster state served by three front-ends:
//!
//! * the **PostgreSQL wire protocol** (via `pgwire`, optionally inside TLS): simple and extended
//!   query protocol, cleartext password authentication against the simulated
//!   `sys.users`, the startup `database` parameter as the session's default
//!   schema (CrateDB behaviour; `doc` when absent), result columns described
//!   with CrateDB's PostgreSQL types before execution, parameters in binary or
//!   text format including arrays (`text[]`, `varchar[]`, `int8[]`, ... in the
//!   binary array format or as `{"a","b",NULL}` literals; a parameter the
//!   client leaves untyped is described with the type the statement implies,
//!   `varchar[]` for `x = ANY($1)`, else `varchar`), CrateDB's command tags
//!   (`SELECT 3`, `RESTORE 1`, `CREATE 1`, ...) and its SQLSTATEs;
//! * **CrateDB's HTTP endpoint** (CrateDB's port 4200;
//!   [`SimulatorBuilder::http_sql_listen`], `--http-sql-listen`), enough for
//!   the real `crash` shell: `POST /_sql` with `stmt`, `args` (`?`/`$n`; a
//!   JSON array is an array parameter) or
//!   `bulk_args`, `?types` (`col_types` with CrateDB's type ids) and
//!   `?error_trace`, a gzip-compressed body (crate-python compresses bodies
//!   of 8 KiB and more), the `Default-Schema` header, answers shaped like
//!   CrateDB's (`cols`, `rows`, `rowcount`, `duration` in ms; one empty row
//!   for row-count results; bulk `results` with `rowcount` -2 and
//!   `error_message` for a failed item), errors as
//!   `{"error": {"message": "Exception[...]", "code": 4xxx}}` with CrateDB's
//!   HTTP status, and `GET /` with `name`, `cluster_name` and
//!   `version.number`, which clients probe on connect. Authentication follows
//!   the host-based rules crate-operator deploys: `crate` is trusted from
//!   loopback (a request without `Authorization` is `crate`, as with
//!   CrateDB's `auth.trust.http_default_user`), everyone else needs
//!   `Authorization: Basic` with the `sys.users` password, else a plain-text
//!   401 `password authentication failed for user "..."`; statements run as
//!   that user, so superuser-only statements fail for others as over
//!   PostgreSQL;
//! * the **crate-control sidecar** HTTP endpoint: `POST /exec` with header
//!   `token` and body `{"stmt": ..., "args": [...]}`, executed as the
//!   superuser `crate` (SQL errors answer 400 with CrateDB's error body).
//!
//! An [`SqlError`] is one value with two renderings: message and SQLSTATE over
//! PostgreSQL, `ExceptionName[message]` with the code from
//! [`error::HTTP_ERROR_CODES`] and the matching HTTP status over HTTP.
//!
//! [`crash_output`] prints a result exactly as `crash -c` (0.32, tabular,
//! not a terminal) prints it: the table on stdout, `CONNECT OK` and the
//! status line or error on stderr, exit status 1 after an error; the tests
//! compare it with the real binary.
//! [`SimulatorHandle::execute_as_superuser`] runs SQL as `crate` for a
//! pod-exec test endpoint built on the same engine.
//!
//! Every statement goes into a statement log ([`SimulatorHandle::statements`],
//! with parameters; [`SimulatorHandle::statements_without_params`]; over HTTP
//! `GET /_sim/statements` on the sidecar and the `/_sql` listener, without
//! parameters unless `?params=true`: the endpoint has no authentication and
//! parameters may be passwords), tagged with its [`Frontend`] and user, and
//! into `sys.jobs_log` (statement text only, never bound parameter values, as
//! in CrateDB).
//!
//! The simulator's own cost is counted so a benchmark can tell it apart from
//! its client's: [`SimulatorHandle::stats`] ([`SimulatorHandle::busy_time`],
//! [`SimulatorHandle::statement_count`], [`SimulatorHandle::reset_stats`]) and
//! `GET /_sim/stats` (`{"statements": n, "busy_ns": .., "busy_ms": ..}`) on the
//! same two listeners: statements received and the time spent parsing,
//! analyzing and executing them (with the cluster lock held) and decoding
//! parameters and encoding results.
//!
//! ## Scale
//!
//! Relations are read lazily, row by row and only for the columns (and object
//! children such as `recovery['size']['used']`) a statement uses; a `WHERE`
//! part or `GROUP BY` key that reads only a shard's `schema_name` and
//! `table_name` is evaluated once per relation; a constant `ANY` operand is a
//! hash set built once per execution; restores track their shards per index.
//! `examples/scale.rs` (`cargo run --release -p cratedb-sim --example scale`)
//! prints timings for 10,000 tables with 100,000 primary shards and for 100
//! partitioned tables with 365 partitions each: the restore Job's statements
//! with a 10,000-element array take tens of milliseconds, `RESTORE ... ALL` of
//! the 10,000 tables a few tens. The ignored test `config_file_at_scale`
//! (`tests/it/binary.rs`) times the binary starting from such a `--config`.
//!
//! ## What is modelled
//!
//! * A hand-written tokenizer and recursive-descent parser for this CrateDB
//!   SQL subset (keywords case-insensitive, `"quoted ""ids"""`, unquoted ids
//!   folded to lower case, `'it''s'` strings, `$n` and `?` parameters,
//!   optional trailing `;`, several `;`-separated statements in a simple
//!   query):
//!   * `SELECT [DISTINCT] items [FROM relation [alias]] [WHERE expr]
//!     [GROUP BY expr, ...] [ORDER BY expr [ASC|DESC] [NULLS FIRST|LAST], ...]
//!     [LIMIT n] [OFFSET n]` with `*`, column references (also qualified:
//!     `sys.cluster.settings`), subscripts (`recovery['size']['percent']`,
//!     `shards['state']`), `count(*)`, `count/min/max/sum/avg(x)`, each with an
//!     optional `FILTER (WHERE cond)`, `coalesce`, `lower`, `upper`, `AS`
//!     aliases; expressions with `=`, `<>`, `!=`, `<`, `>`, `<=`, `>=`,
//!     `op ANY(array)` / `op SOME(array)` (array literal `[..]` or
//!     `ARRAY[..]`, an array parameter or an array column), the text
//!     concatenation `||`, `[NOT] LIKE`, `[NOT] ILIKE`, `[NOT] IN (...)`,
//!     `IS [NOT] NULL`, `AND`, `OR`, `NOT`, parentheses, literals, object
//!     literals and parameters;
//!   * CrateDB's semantics there: `x op ANY(arr)` is NULL when `x` or `arr` is
//!     NULL, true when the comparison holds for an element, else NULL when `arr`
//!     holds a NULL, else false (`AnyOperator`; so `x <> ANY(arr)` is true when
//!     some element differs, which is not `NOT IN`); `a || b` is NULL when
//!     either side is; `sum` of `integer`/`bigint` is a `bigint` (overflow fails
//!     with `ArithmeticException[long overflow]`), of `real` a `real`, of
//!     `double` a `double`, `avg` a `double`, `count` a `bigint`; `GROUP BY`
//!     takes expressions, output ordinals and output aliases, groups NULLs
//!     together, and answers CrateDB's errors for a column neither grouped nor
//!     aggregated (`'x' must appear in the GROUP BY clause or be used in an
//!     aggregation function. Perhaps ...`), an aggregate in `GROUP BY`, an
//!     ordinal out of range and an `ORDER BY` column that is not an output of an
//!     aggregating query (`ORDER BY expression 'x' must appear in the select
//!     clause when grouping or global aggregation is used`); a `FILTER` on a
//!     scalar function fails with `Only aggregate functions allow a FILTER
//!     clause`. Output names are CrateDB 5.x's (`OutputNameFormatter`): the
//!     expression as written (`count(*) FILTER (WHERE (state = 'STARTED'))`,
//!     `((a || '.') || b)`, `x = ANY($1)` without parentheses, `SOME` shown
//!     as `ANY`);
//!   * `SELECT count(*) [[AS] alias] FROM <user table>`, the one read of user
//!     tables: the documents of its started primary shards (see
//!     [`SimulatorHandle::doc_count`]);
//!   * `SHOW TABLES [FROM|IN schema]`;
//!   * `CREATE REPOSITORY name TYPE s3|azure|fs [WITH (k = literal|param, ...)]`
//!     with CrateDB's per-type setting names (`region` for `s3` only from
//!     6.3.0, before that CrateDB's `Setting 'region' is not supported`), and
//!     "verification" against the configured [`Storage`] locations and
//!     credentials; for `s3` also against the store's endpoint
//!     ([`Storage::endpoint`], [`Storage::protocol`]): a repository reaches a
//!     store only through the same endpoint (lower-cased; a URL's scheme wins
//!     over `protocol`, whose default is `https`) and protocol, by path-style
//!     requests unless the store answers virtual-hosted ones
//!     ([`Storage::virtual_host_style`]; `use_path_style_access` defaults to
//!     `false` before 6.3.0, `true` from 6.3.0), and signed for the store's
//!     region when it demands one ([`Storage::region`]; the repository's
//!     `region` from 6.3.0, else `us-east-1`); a `protocol` other than
//!     `http`/`https` fails before 6.3.0 as `com.amazonaws.Protocol` does.
//!     Without an endpoint the request goes to Amazon S3, i.e. to the storages
//!     without one;
//!   * `DROP REPOSITORY name`;
//!   * `RESTORE SNAPSHOT repo.snap ALL | METADATA | TABLE t [PARTITION (c = v, ...)] [, ...]
//!     | section [, ...] [WITH (wait_for_completion = ..., ignore_unavailable = ...,
//!     schema_rename_pattern = ..., schema_rename_replacement = ...,
//!     table_rename_pattern = ..., table_rename_replacement = ...)]`;
//!   * `SET GLOBAL [PERSISTENT|TRANSIENT] setting = value [, ...]` and
//!     `RESET GLOBAL setting [, ...]` for the settings listed in
//!     [`settings::SETTINGS`] (unknown → `Setting '<name>' is not supported`);
//!   * `ALTER TABLE t RENAME TO t2`, `DROP TABLE [IF EXISTS] t`;
//!   * `DELETE FROM t [WHERE cond]` where it deletes whole partitions of an
//!     open partitioned table, CrateDB's way to drop a partition
//!     (`DeletePlanner`): `cond` may read only partition columns (any
//!     expression, parameters included) and selects the partitions it is true
//!     for; without `WHERE` every partition goes. The answer is CrateDB's row
//!     count `-1` (tag `DELETE -1`, which tokio-postgres reads as 0; HTTP
//!     `"rowcount": -1`; crash `DELETE OK, -1 rows affected`), or `0` when no
//!     partition matches; the table itself stays;
//!   * `ALTER USER|ROLE u SET (password = ..., jwt = NULL | {iss = .., username = .., aud = ..})`.
//! * Virtual relations with CrateDB's column names and types: `sys.nodes`,
//!   `sys.cluster` (nested effective `settings`), `sys.repositories` (settings
//!   as given, CrateDB's masked ones — `access_key`, `secret_key`,
//!   `session_token`, `account`, `key`, `sas_token` — as `[xxxxx]`; the
//!   unmasked values through [`SimulatorHandle::repository`]), `sys.snapshots` (only snapshots reachable through
//!   an existing repository; see below), `sys.snapshot_restore` (a row only while a
//!   restore has shards restoring), `sys.shards` (primaries and replicas,
//!   `recovery` NULL before a shard starts recovering), `sys.allocations`
//!   (explanations for unassigned shards), `sys.users`, `sys.privileges`,
//!   `sys.jobs` (seeded jobs plus the statement itself), `sys.jobs_log`,
//!   `information_schema.tables` (user relations plus system tables) and
//!   `information_schema.table_partitions`.
//! * The snapshot catalog: any number of snapshots per storage
//!   ([`SnapshotDef`]; names unique per storage), with CrateDB's states
//!   (`SUCCESS`, `PARTIAL`, `FAILED`, `INCOMPATIBLE`, `IN_PROGRESS`), settable
//!   `started`/`finished`, `version`, `failures` and `reason`, and
//!   `include_global_state`. `sys.snapshots` has `SysSnapshotsTableInfo`'s
//!   columns and types: `name`, `repository`, `concrete_indices` (index
//!   names), `tables`, `table_partitions` (`values` as text), `started`,
//!   `finished` (`timestamptz`), `version`, `state`, `failures` (`text[]`), and
//!   from 5.9.0 also `id`, `relations`, `reason`, `total_shards` (`integer`)
//!   and `include_global_state` (before 5.9.0 those are unknown columns). An
//!   `IN_PROGRESS` snapshot is one the simulated cluster creates itself:
//!   listed from 5.7.3 on (`SysSnapshots.snapshotsInProgress`) with `finished`
//!   at epoch 0, the server's `version` and no failures; `RESTORE` says
//!   `snapshot does not exist` as it is not in the repository's data yet. Only
//!   `SUCCESS` and `PARTIAL` restore (else `unsupported snapshot state [..]`).
//!   `CREATE REPOSITORY ... WITH (readonly = true, ...)` is accepted and shown
//!   in `sys.repositories.settings` (as text, like every setting).
//! * Restores: conflicts (`RelationAlreadyExists` 42P07; existing partitions
//!   XX000 — `PartitionAlreadyExistsException` on ≥ 5.6, the "open index with
//!   same name already exists" `SnapshotRestoreException` before 5.6 for
//!   `ALL`/`TABLES`), unknown repository/snapshot/table errors, snapshot
//!   version newer than the server, section/version rules (`USERMANAGEMENT`
//!   only on ≥ 5.6.0; `USERS`/`PRIVILEGES` rejected on ≥ 6.5.0; both with
//!   CrateDB's `Unknown metadata type` error, SQLSTATE 0A000), closed
//!   target indices being replaced, and the metadata effects: `ALL`
//!   replaces the persistent settings with the snapshot's, `METADATA` and
//!   `ANALYZERS` replace them with only the snapshot's analyzer settings
//!   (so other persistent settings are wiped, as in CrateDB); `ALL`,
//!   `METADATA`, `USERS`/`PRIVILEGES`/`USERMANAGEMENT` replace users
//!   (passwords included) and privileges; views are replaced by `ALL`,
//!   `METADATA`, `VIEWS`. `TABLE t PARTITION (..), t PARTITION (..)` restores
//!   the named partitions into an existing partitioned table (each index
//!   once); before 5.6 CrateDB checks every listed table against the cluster
//!   before it looks into the snapshot.
//! * Rename options (`RestoreService.applyRenameToIndices` /
//!   `applyRenameToRelation`): unknown settings before 5.6.0 (`Setting
//!   'schema_rename_pattern' is not supported`, checked after the repository
//!   lookup, before any value is evaluated); from 5.6.0 every restored relation
//!   with its partitions, shards and `sys.snapshot_restore` rows gets the name
//!   Java's `table.replaceAll(..)` / `schema.replaceAll(..)` gives, unless all
//!   four values are the defaults `(.+)` / `$1` (NULL means the default). The
//!   replacement is read as `Matcher.appendReplacement` (JDK 21) reads it, only
//!   on a match, with its errors (`IndexOutOfBoundsException[No group 3]`,
//!   `IllegalArgumentException[Illegal group reference]`, ...). Targets that
//!   exist fail with `RelationAlreadyExists` / `PartitionAlreadyExistsException`
//!   on the target name (closed ones are replaced, as above); two relations
//!   renamed into one fail with `SnapshotRestoreException` `[repo:snap] indices
//!   [b] and [a] are renamed into the same index [c]` (5.6 – 6.0) or, for two
//!   partitioned tables with different partitions, `Rename conflict for
//!   partitioned table ...` (5.6 – 5.10). From 5.6.0 to 5.7.1 a renamed
//!   partition keeps its source table's alias: the renamed table, its
//!   partitions and shards exist, but `SELECT count(*)` on it counts 0 and the
//!   source table (if it exists) counts those rows (the bug 5.7.2 fixed).
//!   Restore outcomes ([`RestoreOutcome`]) are looked up by target name, then
//!   source name, then snapshot.
//! * Cancelling a restore by dropping what it restores (CrateDB has no `KILL`
//!   for a restore; its documentation says to drop the tables or partitions):
//!   `DROP TABLE` of a relation being restored removes it and its shards, and
//!   `DELETE FROM t WHERE <partition columns> = ...` a partition. As
//!   `RestoreService.updateRestoreStateWithDeletedIndices` does, the deleted
//!   shards stay in the `sys.snapshot_restore` row's `shards` with state
//!   `FAILURE` while the rest of the restore goes on (the row's `state` turns
//!   `STARTED`); the row disappears once nothing of the restore is left
//!   restoring, at once when the drop was the last piece, without a
//!   `FAILURE` row state for the deleted shards.
//! * Deterministic restore progress ([`ProgressMode`]): by default every
//!   statement reading `sys.shards` or `sys.snapshot_restore` advances
//!   recovering shards after it has produced its result; per snapshot or
//!   table outcomes via [`RestoreOutcome`]. With `wall_clock` progress each
//!   recovering shard gains `bytes_per_sec` per second, so a restore of
//!   shards of `bytes_per_shard` takes `bytes_per_shard / bytes_per_sec`
//!   seconds once observed (everything is settable in the `--config` file).
//! * The session functions `current_user`, `session_user`, `user` and
//!   `current_schema` (crash reads them on connect).
//! * Fault injection: failing statements ([`ErrorInjection`]), dropping
//!   PostgreSQL connections now or on a matching statement (TCP reset),
//!   sidecar 503s, seeded `sys.jobs` entries.
//!
//! ## What is not modelled
//!
//! * Table data: rows of user tables cannot be read or written (no `INSERT`,
//!   `COPY`, `CREATE TABLE`, ...); joins, sub-queries, `HAVING`, `UNION`,
//!   CTEs, casts, arithmetic, `op ALL(..)`, `LIKE ANY`, `DISTINCT` aggregates,
//!   window functions, `||` on arrays or objects, `ANY` over objects, and most
//!   scalar functions. Such statements fail with a CrateDB-style syntax error
//!   (42601) or an `UnsupportedFeatureException` (0A000) and are listed by
//!   [`SimulatorHandle::rejected_statements`]. CrateDB 6.0 names function
//!   outputs by the function alone (`count`, not `count(*)`); the simulator
//!   keeps the 5.x names for every version. Without `ORDER BY` groups come out
//!   in the order they were first seen (CrateDB's order is arbitrary).
//! * Privilege checks, except `ALTER USER`: only a superuser may alter other
//!   users; a regular user may alter only itself (CrateDB also allows users
//!   with the `AL` privilege). Users without a password cannot log in over
//!   PostgreSQL wire (no host-based `trust` rules). TLS is offered only when configured
//!   (`SimulatorBuilder::tls`), never required (no `ssl = on` HBA rule).
//! * `CREATE SNAPSHOT`, `DROP SNAPSHOT`,
//!   repository types other than `s3`, `azure`, `fs`, real disk watermarks,
//!   shard allocation across several nodes (all shards live on the first
//!   node), transactions, cursors, `COPY`, cancel requests.
//! * CrateDB's HTTP endpoint: plain HTTP only (no TLS on the `/_sql` port, so
//!   not `crash --host=https://...`); no JWT or client-certificate
//!   authentication, no `X-Real-IP`, fixed host-based rules (above); no
//!   `/_blobs`, admin UI, CORS or keep-alive sessions; `error_trace` is the
//!   message, not a Java stack trace; `duration` is the simulator's own time;
//!   exceptions CrateDB reclassifies only partly: `IllegalArgumentException`
//!   and `UnsupportedOperationException` become `SQLParseException` /
//!   `UnsupportedFeatureException` over HTTP (as `SQLExceptions` does), the
//!   simulator's `IndexNotFoundException` stays 5000 instead of CrateDB's
//!   `RelationUnknown`; newer CrateDB versions may shape failed bulk items
//!   differently. `crash -v` also queries `sys.checks` and
//!   `sys.node_checks`, which are not modelled (it prints those errors).
//! * The crash imitation counts a cell's width in characters (crash uses
//!   terminal width, so East Asian wide characters differ) and does not
//!   model multi-line cells.
//! * Error texts are CrateDB's where the simulator models the situation,
//!   taken from CrateDB 5.x/6.x sources; they are not byte-identical for
//!   every version. Over PostgreSQL wire only the message is sent (as CrateDB
//!   does); over HTTP and crash the message is `ExceptionName[message]`.
//!   Parser error messages say `mismatched input '<token>' expecting ...`
//!   but list only what this simulator accepts.
//! * `DELETE` of rows (a plain table, a condition on other than partition
//!   columns), of closed tables, views and system tables is refused as not
//!   modelled.
//! * Restore details: `wait_for_completion = true` drives the restore to its
//!   end inside the statement and answers `RESTORE 1` even for a
//!   [`RestoreOutcome::Fail`] (a [`RestoreOutcome::Stall`] stays
//!   asynchronous); `PARTIAL` snapshots restore completely (CrateDB refuses an index
//!   with failed shards: `index [..] wasn't fully snapshotted - cannot
//!   restore`; the simulator does not tie `failures` to indices), and a snapshot
//!   whose metadata cannot be read (CrateDB's `FAILED` row of NULLs) is not
//!   modelled; replicas are
//!   derived (started once their primary is started and
//!   `cluster.routing.allocation.enable` is `all`); repository errors use
//!   CrateDB 5.x texts (`[repo] missing` from `RepositoryMissingException`,
//!   not the older `RepositoryUnknownException`); a table missing from the
//!   snapshot gives CrateDB 6.x's `Relation [s.t] not found in snapshot`.
//! * Rename options: the Java regex dialect is translated, not run. Refused as
//!   not modelled (0A000, listed by [`SimulatorHandle::rejected_statements`]):
//!   back references, lookaround, named and atomic groups, inline flags,
//!   possessive quantifiers, boundary matchers, `\p{..}`, `\Q..\E`, octal,
//!   control and `\x{..}` escapes, `\h \v \R \X`, nested classes and `&&`, a
//!   repeated group that can match the empty string, names with line
//!   terminators, empty-matching patterns on names outside the BMP, and every
//!   pattern Java rejects (`PatternSyntaxException` texts are not modelled).
//!   Target names other than non-empty lowercase letters, digits and `_`
//!   outside the system schemas are refused too (CrateDB's name validation is
//!   not modelled). Two relations renamed into one name on CrateDB >= 6.1 (no
//!   check in its `RestoreService`), on 6.0 for two partitioned tables, and a
//!   partitioned and a plain table renamed into one are refused. Views are
//!   never renamed. A closed partition replaced under a new name before 6.1
//!   keeps the source's alias in CrateDB even after 5.7.2; the simulator
//!   models the alias bug only for 5.6.0 – 5.7.1.
//! * S3 stores: the connection error texts are the AWS SDK v1's (CrateDB
//!   < 6.3.0; 6.3.0 switched clients and words them differently), wrapped as
//!   `SdkClientException 'Unable to execute HTTP request: ...'`; region
//!   inference from the endpoint is not modelled (without `region` the client
//!   signs for `us-east-1`), nor proxies, `max_retries` or the order in which a
//!   real store checks a request (the simulator checks endpoint, protocol,
//!   addressing, bucket, region, access key, secret, base path); Azure
//!   `endpoint` settings are accepted but not used by verification.
//! * Timestamps are `timestamptz` over PostgreSQL and epoch milliseconds in
//!   JSON, like CrateDB; text columns are `varchar` and text arrays
//!   `varchar[]`, also like CrateDB; `REAL` columns (e.g.
//!   `recovery['size']['percent']`) are `float4`.
//!
//! ## Example
//!
//! ```no_run
//! use cratedb_sim::{Simulator, SnapshotDef, Storage, TableDef, RestoreOutcome};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::builder()
//!     .server_version("5.10.3")
//!     .user("system", "pw")
//!     .sidecar_token("tok")
//!     .storage(
//!         Storage::s3("bucket", "base/path", "AKIA...", "secret...").snapshot(
//!             SnapshotDef::new("snap1")
//!                 .version("5.6.0")
//!                 .table(TableDef::new("doc", "t1").shards(2).bytes_per_shard(1_000_000)),
//!         ),
//!     )
//!     .table(TableDef::new("doc", "existing"))
//!     .restore_outcome("snap1", RestoreOutcome::Succeed)
//!     .start()
//!     .await?;
//!
//! let (client, conn) = tokio_postgres::connect(
//!     &sim.pg_connection_string("system", "pw"),
//!     tokio_postgres::NoTls,
//! )
//! .await?;
//! tokio::spawn(conn);
//! let rows = client.query("SELECT name FROM sys.snapshots WHERE repository = $1", &[&"r"]).await?;
//! assert!(rows.is_empty()); // no repository yet
//!
//! // the same engine, as crash inside the pod would print it
//! let printed = sim.crash_output("SELECT name FROM sys.users ORDER BY name");
//! assert!(printed.stdout.contains("| system |"));
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! A restore with `wait_for_completion = false` returns at once; its
//! `sys.snapshot_restore` row disappears after a few observations:
//!
//! ```no_run
//! # async fn demo(sim: cratedb_sim::SimulatorHandle) {
//! sim.execute_as_superuser(
//!     "CREATE REPOSITORY r TYPE s3 WITH (bucket = 'bucket', base_path = 'base/path', \
//!      access_key = 'AKIA...', secret_key = 'secret...', readonly = true)",
//! );
//! sim.execute_as_superuser(r#"RESTORE SNAPSHOT "r"."snap1" ALL with (wait_for_completion=false)"#);
//! while !sim.restores_in_progress().is_empty() {
//!     sim.execute_as_superuser("SELECT 1 FROM sys.snapshot_restore");
//! }
//! assert!(sim.shards().iter().all(|s| s.state == "STARTED"));
//! # }
//! ```

pub mod cluster;
mod crash;
mod engine;
pub mod error;
mod eval;
mod http_sql;
mod java_regex;
pub mod model;
mod outcome;
mod pg;
mod relations;
pub mod settings;
mod sidecar;
mod sim;
pub mod sql;
pub mod value;

pub use cluster::SimConfig;
pub use crash::{CrashOutput, crash_output};
pub use error::{SimError, SqlError};
pub use model::*;
pub use outcome::ExecOutcome;
pub use sim::{
    PartitionInfo, RepositoryInfo, RestoreInfo, ShardInfo, SimStats, Simulator, SimulatorBuilder,
    SimulatorHandle, TableInfo,
};
