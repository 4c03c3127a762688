//! Pre-flight plan (SPEC A19): create the read-only repository, read the snapshot's contents and
//! the cluster's relations, and report every conflict at once before anything changes.

use super::super::{
    context::RunContext,
    error::StepError,
    plan::{PlanInput, plan},
    step::StepReport,
};
use crate::{
    bounded,
    cratedb::{SqlError, catalog, queries},
    plan::PlanSummary,
    repository::{create_repository_statement, expand_setting, fixed_repository_parameters},
    restore_request::{S3_REGION_SINCE, describe, unsupported_by},
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
    let snapshot = ctx.request.snapshot.clone();
    let info = catalog::snapshot(
        &ctx.db,
        &repository,
        &snapshot,
        ctx.config.snapshot_query_timeout,
    )
    .await
    .map_err(|e| match e {
        e if e.is_transient() => StepError::from(e),
        e => StepError::permanent(format!("Snapshots could not be fetched: {e}")),
    })?;
    let Some(info) = info else {
        return Err(StepError::permanent(format!(
            "Snapshot {snapshot} does not exist in repository {repository}."
        )));
    };
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
    let mut report = if plan.nothing_to_restore() {
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

/// The skipped relations and partitions, for messages and notifications (the first few and a
/// count).
pub fn skipped_list(plan: &crate::plan::Plan) -> String {
    bounded::names(&plan.skipped, bounded::LIST_ITEMS, 1024, "nothing")
}

/// S3-compatible stores (MinIO, Ceph) serve buckets under a path, not as a host name; CrateDB
/// before 6.3.0 addresses `<bucket>.<endpoint>` unless told otherwise, which such a store does
/// not resolve. The setting exists from 5.7.0; Amazon's own endpoints keep CrateDB's default.
pub fn addressing(
    settings: &[(&'static str, String)],
    version: Option<ServerVersion>,
) -> Option<(&'static str, String)> {
    let endpoint = settings.iter().find(|(s, _)| *s == "endpoint")?;
    let amazon = endpoint.1.trim_end_matches('/').ends_with("amazonaws.com");
    let has_setting = version.is_none_or(|v| v >= PATH_STYLE_SINCE);
    if amazon {
        return None;
    }
    if !has_setting {
        tracing::warn!(
            "CrateDB before 5.7.0 addresses an S3 bucket as <bucket>.<endpoint>; the store must answer under that name"
        );
        return None;
    }
    Some(("use_path_style_access", "true".into()))
}

/// CrateDB 5.7.0 added `use_path_style_access` to s3 repositories.
pub const PATH_STYLE_SINCE: ServerVersion = ServerVersion::new(5, 7, 0);

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
    let mut settings: Vec<(&'static str, String)> = Vec::new();
    // Each Secret once, however many fields point into it.
    let mut read: std::collections::BTreeMap<&str, k8s_openapi::api::core::v1::Secret> =
        Default::default();
    for credential in &ctx.request.credentials {
        if !read.contains_key(credential.secret.as_str()) {
            let secret = ctx
                .secrets()
                .get_opt(&credential.secret)
                .await?
                .ok_or_else(|| {
                    StepError::permanent(format!(
                        "Secret {} could not be found.",
                        credential.secret
                    ))
                })?;
            read.insert(&credential.secret, secret);
        }
    }
    for credential in &ctx.request.credentials {
        // A region taken from the cluster's backup settings is left to the server's inference
        // where it has no region setting (an explicit one was refused before).
        if credential.setting == "region" && version.is_some_and(|v| v < S3_REGION_SINCE) {
            tracing::info!(path = %credential.path, "no s3 region setting on this CrateDB; left out");
            continue;
        }
        let field = credential.path.as_str();
        let secret = &read[credential.secret.as_str()];
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&credential.key))
            .ok_or_else(|| StepError::permanent(format!("Key {field} not found in secret.")))?;
        let value = String::from_utf8(bytes.0.clone())
            .map_err(|_| StepError::permanent(format!("Field `{field}` must be UTF-8 text")))?;
        if value.trim().is_empty() {
            return Err(StepError::permanent(format!(
                "Field `{field}` must be a non-empty string"
            )));
        }
        settings.extend(expand_setting(credential.setting, value));
    }
    settings.extend(addressing(&settings, version));
    let names: Vec<&str> = settings.iter().map(|(s, _)| *s).collect();
    let statement = create_repository_statement(&repository, ctx.request.provider, &names);
    let fixed = fixed_repository_parameters();
    let params: Vec<&str> = fixed
        .iter()
        .copied()
        .chain(settings.iter().map(|(_, v)| v.as_str()))
        .collect();
    // The statement carries only placeholders; the values never reach a log line.
    ctx.db
        .query(&statement, &params)
        .await
        .map_err(|e| match e {
            SqlError::Sql { message, .. } => {
                StepError::permanent(format!("Backup repository could not be created: {message}"))
            }
            other => StepError::from(other),
        })?;
    tracing::info!(%repository, provider = %ctx.request.provider, "read-only repository created");
    Ok(())
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
