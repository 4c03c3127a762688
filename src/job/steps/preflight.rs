//! Pre-flight plan (SPEC A19): create the read-only repository, read the snapshot's contents and
//! the cluster's relations, and report every conflict at once before anything changes.

use super::super::{
    context::RunContext,
    error::StepError,
    plan::{PlanInput, plan},
    step::StepReport,
};
use crate::{
    backup_location::Location,
    bounded,
    cratedb::{catalog, queries},
    job::repository,
    plan::PlanSummary,
    restore_request::{describe, unsupported_by},
    snapshot_catalog::{self, LATEST},
    version::ServerVersion,
};

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    ensure_namespace_not_terminating(ctx).await?;
    let versions = ctx.db.query(queries::SERVER_VERSIONS, &[]).await?;
    let server_version = queries::server_version(&versions);
    ctx.status.state.server_version = server_version.map(|v| v.to_string());
    if let Some(version) = server_version {
        let unsupported = unsupported_by(&ctx.request, version);
        if !unsupported.is_empty() {
            return Err(StepError::permanent(format!(
                "the restore cannot start on CrateDB {version}: {}",
                describe(&unsupported).trim_start_matches("invalid restore request: ")
            )));
        }
    }

    ensure_repository(ctx).await?;

    let repository = ctx.run.repository();
    let info = snapshot_to_restore(ctx, &repository).await?;
    let resolved = info.name != ctx.request.snapshot;
    let relations = catalog::relations(&ctx.db).await?;
    let partitions = catalog::partitions(&ctx.db).await?;

    let plan = plan(&PlanInput {
        request: &ctx.request,
        snapshot: &info,
        relations: &relations,
        partitions: &partitions,
        server_version,
    });
    for warning in plan.warnings.iter().take(bounded::LIST_ITEMS) {
        tracing::warn!(warning = %bounded::text(warning, bounded::LOG_VALUE_BYTES), "plan warning");
    }
    if plan.warnings.len() > bounded::LIST_ITEMS {
        tracing::warn!(
            more = plan.warnings.len() - bounded::LIST_ITEMS,
            "more plan warnings; the run's record holds them all"
        );
    }
    let mut plan = plan;
    // The snapshot the RESTORE reads, recorded once: a replaced Pod never resolves `latest` again.
    plan.snapshot = Some(info.name.clone());
    let mut summary = PlanSummary::of(&plan);
    if !summary.is_complete_for(&plan) {
        // Too large for the status: the whole plan goes to the run's record, which a replaced
        // Pod reads back.
        summary.stored = Some(ctx.records.put("plan", &plan).await?);
    }
    ctx.status.state.plan = Some(summary);
    ctx.plan = Some(plan.clone());
    if !plan.conflicts.is_empty() {
        return Err(StepError::permanent(format!(
            "the restore cannot start, {} conflict(s): {}",
            bounded::count(plan.conflicts.len()),
            bounded::join(&plan.conflicts, "; ", bounded::LIST_ITEMS, 1536, "none")
        )));
    }
    let server = server_version
        .map(|v| v.to_string())
        .unwrap_or_else(|| "unknown".into());
    let snapshot_version = info.version.as_deref().unwrap_or("unknown");
    let mut report = if resolved {
        format!("snapshot latest is {}; ", info.name)
    } else {
        String::new()
    };
    report += &if plan.nothing_to_restore() {
        format!(
            "nothing to do: everything the snapshot holds exists already (server {server}, snapshot {snapshot_version})"
        )
    } else {
        format!(
            "planned RESTORE … {} ({} relation(s), {} partition(s); server {server}, snapshot {snapshot_version})",
            bounded::text(&plan.keyword, 512),
            bounded::count(plan.relations.len()),
            bounded::count(plan.partitions.len()),
        )
    };
    if !plan.renamed.is_empty() {
        report.push_str(&format!(
            "; restored as: {}",
            bounded::names(&plan.renamed, bounded::LIST_ITEMS, 1024, "")
        ));
    }
    if !plan.skipped.is_empty() {
        report.push_str(&format!(
            "; skipped (exist already): {}",
            skipped_list(&plan)
        ));
    }
    Ok(StepReport::new(report))
}

/// The snapshot this run restores: the one requested, or for `latest` the newest SUCCESS
/// snapshot that holds everything requested (a snapshot literally named `latest` is taken as
/// named).
async fn snapshot_to_restore(
    ctx: &RunContext,
    repository: &str,
) -> Result<crate::cratedb::queries::SnapshotInfo, StepError> {
    let requested = &ctx.request.snapshot;
    let fetch_failed = |e: crate::cratedb::SqlError| match e {
        e if e.is_transient() => StepError::from(e),
        e => StepError::permanent(format!("Snapshots could not be fetched: {e}")),
    };
    let timeout = ctx.config.snapshot_query_timeout;
    if let Some(info) = catalog::snapshot(&ctx.db, repository, requested, timeout)
        .await
        .map_err(fetch_failed)?
    {
        return Ok(info);
    }
    if requested != LATEST {
        return Err(StepError::permanent(format!(
            "Snapshot {requested} does not exist in repository {repository}."
        )));
    }
    let all = catalog::snapshots(&ctx.db, repository, timeout)
        .await
        .map_err(fetch_failed)?;
    let chosen = snapshot_catalog::latest(&all, &ctx.request.target).map_err(|reason| {
        StepError::permanent(format!("snapshot latest cannot be resolved: {reason}"))
    })?;
    tracing::info!(snapshot = %chosen.name, candidates = all.len(), "snapshot latest resolved");
    Ok(chosen.clone())
}

/// The skipped relations and partitions, for messages and notifications (the first few and a
/// count).
pub fn skipped_list(plan: &crate::plan::Plan) -> String {
    bounded::names(&plan.skipped, bounded::LIST_ITEMS, 1024, "nothing")
}

/// Creates this run's repository unless CrateDB already has it (SPEC A6: never twice).
pub async fn ensure_repository(ctx: &mut RunContext) -> Result<(), StepError> {
    let repository = ctx.run.repository();
    let existing = ctx
        .db
        .query(queries::REPOSITORY_EXISTS, &[&repository])
        .await?;
    if !existing.rows.is_empty() {
        tracing::info!(%repository, "repository exists already; reusing it");
        return Ok(());
    }
    let version = ctx
        .status
        .state
        .server_version
        .as_deref()
        .and_then(|v| v.parse::<ServerVersion>().ok());
    let location = Location {
        provider: ctx.request.provider,
        credentials: ctx.request.credentials.clone(),
        literals: Vec::new(),
        source: crate::restore_request::SPEC_PATH.into(),
    };
    let settings = repository::settings(&ctx.secrets(), &location, version).await?;
    repository::create(&ctx.db, &repository, location.provider, &settings).await
}

/// A restore into a namespace that is being deleted cannot finish its cleanup (SPEC B§2.1).
async fn ensure_namespace_not_terminating(ctx: &RunContext) -> Result<(), StepError> {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(ctx.client.clone());
    match namespaces.get_opt(&ctx.run.namespace).await {
        Ok(Some(ns)) if is_terminating(&ns) => Err(StepError::permanent(
            "The namespace for the target operation is terminating",
        )),
        Ok(_) => Ok(()),
        // Reading the namespace is a side check (RBAC may not grant it): unknown is not
        // terminating, and it never fails the restore by itself.
        Err(error) => {
            tracing::debug!(%error, "cannot read the namespace; assuming it is not terminating");
            Ok(())
        }
    }
}

fn is_terminating(ns: &k8s_openapi::api::core::v1::Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminating_namespaces_are_recognised() {
        let ns = |v: serde_json::Value| serde_json::from_value(v).unwrap();
        assert!(!is_terminating(&ns(
            serde_json::json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}})
        )));
        assert!(is_terminating(&ns(
            serde_json::json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})
        )));
        assert!(is_terminating(&ns(
            serde_json::json!({"metadata": {"name": "a", "deletionTimestamp": "2026-11-25T00:00:00Z"}})
        )));
    }
}
