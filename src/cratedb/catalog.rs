//! Reading CrateDB's catalog the same way everywhere. Columns that not every server (or
//! simulator) has are asked for first; when CrateDB says a column is unknown the query is
//! repeated without them, so a missing optional column never fails a restore.

use std::time::Duration;

use super::{
    SqlError, SqlParam, SqlResult,
    pg::Pg,
    queries::{self, Partition, Relation, SnapshotInfo, is_unknown_column},
};

async fn with_fallback(
    db: &Pg,
    full: &str,
    basic: &str,
    params: &[SqlParam<'_>],
    timeout: Option<Duration>,
) -> Result<SqlResult, SqlError> {
    let run = |sql: &str| {
        let sql = sql.to_string();
        async move {
            match timeout {
                Some(t) => db.query_params(&sql, params, t).await,
                None => db.query_typed(&sql, params).await,
            }
        }
    };
    match run(full).await {
        Err(e) if is_unknown_column(&e) => {
            tracing::debug!(error = %e, "optional column missing; asking without it");
            run(basic).await
        }
        other => other,
    }
}

/// The relations outside CrateDB's own schemas.
pub async fn relations(db: &Pg) -> Result<Vec<Relation>, SqlError> {
    let rows = with_fallback(db, queries::RELATIONS, queries::RELATIONS_BASIC, &[], None).await?;
    Ok(queries::relations(&rows))
}

/// Only the relations named by `keys` ([`queries::relation_key`]): one row per relation that
/// exists, however many others the cluster has.
pub async fn relations_named(db: &Pg, keys: &[String]) -> Result<Vec<Relation>, SqlError> {
    let rows = with_fallback(
        db,
        &queries::relations_named(queries::RELATIONS),
        &queries::relations_named(queries::RELATIONS_BASIC),
        &[SqlParam::TextArray(keys)],
        None,
    )
    .await?;
    Ok(queries::relations(&rows))
}

/// The partitions of partitioned tables (none where the catalog has no such relation).
pub async fn partitions(db: &Pg) -> Result<Vec<Partition>, SqlError> {
    partitions_where(db, queries::PARTITIONS, queries::PARTITIONS_BASIC, &[]).await
}

/// Only the partitions of the relations named by `keys`.
pub async fn partitions_of(db: &Pg, keys: &[String]) -> Result<Vec<Partition>, SqlError> {
    partitions_where(
        db,
        &queries::partitions_of(queries::PARTITIONS),
        &queries::partitions_of(queries::PARTITIONS_BASIC),
        &[SqlParam::TextArray(keys)],
    )
    .await
}

async fn partitions_where(
    db: &Pg,
    full: &str,
    basic: &str,
    params: &[SqlParam<'_>],
) -> Result<Vec<Partition>, SqlError> {
    match with_fallback(db, full, basic, params, None).await {
        Ok(rows) => Ok(queries::partitions(&rows)),
        Err(SqlError::Sql { code, .. }) if code == "42P01" => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// One snapshot of one repository, if it exists.
pub async fn snapshot(
    db: &Pg,
    repository: &str,
    snapshot: &str,
    timeout: Duration,
) -> Result<Option<SnapshotInfo>, SqlError> {
    let rows = with_fallback(
        db,
        queries::SNAPSHOT,
        queries::SNAPSHOT_BASIC,
        &[SqlParam::Text(repository), SqlParam::Text(snapshot)],
        Some(timeout),
    )
    .await?;
    Ok(queries::snapshot_info(&rows))
}

/// Running restores of this snapshot from this repository, as `(id, state)`, through `run`: the
/// PostgreSQL wire while waiting (polling it for a day through `crash` would open an exec
/// session every poll), the cleanup path afterwards.
pub async fn running_restores(
    run: impl AsyncFn(&str) -> Result<SqlResult, SqlError>,
    repository: &str,
    snapshot: &str,
) -> Result<Vec<(String, String)>, SqlError> {
    match run(&queries::running_restore(repository, snapshot)).await {
        Ok(rows) => Ok(queries::restore_rows(&rows)),
        Err(e) if is_unknown_column(&e) => {
            let rows = run(&queries::running_restore_by_name(snapshot)).await?;
            Ok(queries::restore_rows(&rows))
        }
        Err(e) => Err(e),
    }
}

/// Every snapshot of a repository, with when it was taken.
pub async fn snapshots(
    db: &Pg,
    repository: &str,
    timeout: Duration,
) -> Result<Vec<SnapshotInfo>, SqlError> {
    let rows = with_fallback(
        db,
        queries::SNAPSHOTS_OF_REPOSITORY,
        queries::SNAPSHOTS_OF_REPOSITORY_BASIC,
        &[SqlParam::Text(repository)],
        Some(timeout),
    )
    .await?;
    Ok(queries::snapshot_rows(&rows))
}
