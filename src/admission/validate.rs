//! The validating webhook (SPEC A3, A15): rules, Secret checks, the one-restore-per-cluster lock,
//! and, for an admitted real (non-dry-run) request, the restore Job.

use std::time::Duration;

use k8s_openapi::{api::batch::v1::Job, jiff::Timestamp};
use kube::{
    Api, Client,
    api::PostParams,
    core::{DynamicObject, admission::AdmissionRequest},
};
use serde_json::Value;

use super::{
    budget::Budget,
    cancel::{self, CancelReview},
    change::{RestoreChange, classify, object_identity, run_id_annotation},
    error::AdmissionError,
    lock::{self, Observed},
    runnable,
    runner::RestoreRunner,
    secrets,
};
use crate::{
    repository::repository_name,
    resource::{BackupsSpec, RUN_ID_ANNOTATION, RestoreSnapshotSpec},
    restore_job::{JobSettings, Owner, build_job},
    restore_options::OnConflict,
    restore_request::{self, FieldError, RestoreRequest, SPEC_PATH},
    restore_type::restore_statement,
    run::{RunIdentity, labels},
    snapshot_catalog::LATEST,
    sql::quote_ident,
    status::RestoreStatus,
    version::ServerVersion,
};

/// Warnings longer than this may be cut by the API server; long plans are summarised.
const MAX_WARNING_CHARS: usize = 250;

/// What an allowed review says back.
#[derive(Debug, Default)]
pub struct Admitted {
    pub warnings: Vec<String>,
    /// The Job created for this review (none for dry-run or when nothing was requested).
    pub job: Option<String>,
}

/// How long after a review ran out of time a Job or Lease create it sent may still land: longer
/// than any single API call may take (the chart keeps the per-call timeout below 5 s).
const LATE_CREATE_WINDOW: Duration = Duration::from_secs(6);

pub struct Validator<'a> {
    pub client: &'a Client,
    pub jobs: &'a JobSettings,
    pub default_deadline_seconds: i64,
    /// What all API calls of one review may take together (SPEC A25).
    pub review_budget: Duration,
    pub runner: RestoreRunner,
}

impl Validator<'_> {
    pub async fn validate(
        &self,
        request: &AdmissionRequest<DynamicObject>,
        now: Timestamp,
    ) -> Result<Admitted, AdmissionError> {
        match cancel::review(request) {
            CancelReview::NotACancel => {}
            CancelReview::Refuse(why) => return Err(AdmissionError::CancelRefused(why)),
            CancelReview::Admit { .. } if self.runner == RestoreRunner::Operator => {
                return Err(AdmissionError::CancelRefused(format!(
                    "metadata.annotations[\"{}\"]: the CrateDB operator performs restores here (--restore-runner=operator) and has no cancel; remove the annotation",
                    crate::resource::CANCEL_ANNOTATION
                )));
            }
            CancelReview::Admit { preview, .. } => {
                return Ok(Admitted {
                    warnings: vec![preview],
                    job: None,
                });
            }
        }
        let RestoreChange::NewRequest { restore_snapshot } = classify(request) else {
            return Ok(Admitted::default());
        };
        let (Some(object), Some((name, namespace))) =
            (request.object.as_ref(), object_identity(request))
        else {
            return Ok(Admitted::default());
        };
        if name.is_empty() {
            return Err(AdmissionError::InvalidSpec(vec![FieldError::new(
                "metadata.name",
                "is empty; a restore needs a named CrateDB resource (generateName is not supported with restoreSnapshot)",
            )]));
        }

        let spec: RestoreSnapshotSpec =
            serde_json::from_value(restore_snapshot.clone()).map_err(|e| {
                AdmissionError::InvalidSpec(vec![FieldError::new(
                    SPEC_PATH,
                    format!("cannot be read: {e}"),
                )])
            })?;
        let annotations = object.metadata.annotations.clone().unwrap_or_default();
        let backups: Option<BackupsSpec> = object
            .data
            .pointer("/spec/backups")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let restore = restore_request::validate_with_options(&spec, &annotations, backups.as_ref())
            .map_err(AdmissionError::InvalidSpec)?;
        let version = object
            .data
            .pointer("/spec/cluster/version")
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<ServerVersion>().ok());
        // The spec's version is what the operator runs; pre-flight checks the real server too.
        if let Some(version) = version {
            let unsupported = restore_request::unsupported_by(&restore, version);
            if !unsupported.is_empty() {
                return Err(AdmissionError::InvalidSpec(unsupported));
            }
        }

        if self.runner == RestoreRunner::Operator {
            // The stock operator knows nothing of this product's options: refuse rather than
            // let them be ignored.
            let ignored: Vec<FieldError> = crate::restore_options::option_annotations(&annotations)
                .keys()
                .map(|k| {
                    FieldError::new(
                        crate::restore_options::path(k),
                        "is a cratedb-restore option, but the CrateDB operator performs restores here (--restore-runner=operator) and would ignore it; remove it, or run restores with the job runner",
                    )
                })
                .collect();
            if !ignored.is_empty() {
                return Err(AdmissionError::InvalidSpec(ignored));
            }
            // The operator's own lock: its restore is in progress while the stored request is.
            if let Some(snapshot) = request
                .old_object
                .as_ref()
                .and_then(|o| o.data.pointer("/spec/cluster/restoreSnapshot/snapshot"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                return Err(AdmissionError::RestoreInProgress(format!(
                    "the CrateDB operator is restoring snapshot {snapshot:?} into {namespace}/{name} (spec.cluster.restoreSnapshot.snapshot is set); wait until the operator resets it to \"\" and apply again"
                )));
            }
        }
        let budget = Budget::starting_now(self.review_budget);
        if self.runner == RestoreRunner::Job {
            runnable::check_job_account(
                self.client,
                &budget,
                &namespace,
                &self.jobs.service_account_name(),
            )
            .await?;
        }
        let forbidden = secrets::check_requester_access(
            self.client,
            &budget,
            &namespace,
            &request.user_info,
            &restore.credentials,
        )
        .await?;
        if !forbidden.is_empty() {
            return Err(AdmissionError::Forbidden(forbidden));
        }
        let secret_errors =
            secrets::check_references(self.client, &budget, &namespace, &restore.credentials)
                .await?;
        if !secret_errors.is_empty() {
            return Err(AdmissionError::InvalidSpec(secret_errors));
        }

        if self.runner == RestoreRunner::Operator {
            let mut warnings = vec![operator_plan_warning(&restore, version)];
            warnings.extend(restore.warnings.iter().cloned());
            warnings.push(
                "restore runner: the CrateDB operator performs this restore; no restore Job is created"
                    .into(),
            );
            return Ok(Admitted {
                warnings,
                job: None,
            });
        }

        let run_id = match run_id_annotation(Some(object)) {
            Some(id)
                if crate::run::is_valid_run_id(id)
                    && Some(id) != run_id_annotation(request.old_object.as_ref()) =>
            {
                id
            }
            _ => {
                return Err(AdmissionError::MissingRunId {
                    annotation: RUN_ID_ANNOTATION,
                });
            }
        };
        let run = RunIdentity::new(&namespace, &name, run_id);

        let old_status: Option<RestoreStatus> = request
            .old_object
            .as_ref()
            .and_then(|o| o.data.pointer("/status/restore"))
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let observed = Observed::read(self.client, &budget, &run).await?;
        let (conflict, mut warnings) = observed.conflict(&run, old_status.as_ref(), now);
        if let Some(conflict) = conflict {
            return Err(conflict);
        }

        warnings.insert(0, plan_warning(&restore, &run, version));
        if restore.options.on_conflict == OnConflict::Skip {
            warnings.push(
                "on-conflict: skip: relations and partitions that already exist are left out of the RESTORE; status.restore.plan.skipped lists them".into(),
            );
        }
        warnings.extend(restore.warnings.iter().cloned());

        if request.dry_run {
            warnings.push(format!(
                "dry run: no restore Job was created; a real apply creates Job {}/{}",
                run.namespace,
                run.job_name()
            ));
            return Ok(Admitted {
                warnings,
                job: None,
            });
        }

        let owner = object
            .metadata
            .uid
            .clone()
            .filter(|u| !u.is_empty())
            .map(|uid| Owner {
                name: name.clone(),
                uid,
            });
        match self.start_run(&run, owner.as_ref(), now, &budget).await {
            Ok(()) => {}
            Err(error @ AdmissionError::OutOfTime { .. }) => {
                // The denial goes out now; what this review may have created is removed behind
                // it, so it does not hold the cluster's restore lock.
                let client = self.client.clone();
                tokio::spawn(async move {
                    lock::undo_admission(&client, &run).await;
                    tokio::time::sleep(LATE_CREATE_WINDOW).await;
                    lock::undo_admission(&client, &run).await;
                });
                return Err(error);
            }
            Err(error) => return Err(error),
        }
        warnings.push(format!(
            "restore Job {ns}/{job} created; follow it with: kubectl -n {ns} logs -f job/{job}",
            ns = namespace,
            job = run.job_name()
        ));
        Ok(Admitted {
            warnings,
            job: Some(run.job_name()),
        })
    }

    /// Takes the cluster's restore lock and creates the run's Job.
    async fn start_run(
        &self,
        run: &RunIdentity,
        owner: Option<&Owner>,
        now: Timestamp,
        budget: &Budget,
    ) -> Result<(), AdmissionError> {
        let lease = lock::acquire(self.client, budget, run, owner, now).await?;
        let job = build_job(self.jobs, run, owner, self.default_deadline_seconds);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &run.namespace);
        let create = format!("create restore Job {}/{}", run.namespace, run.job_name());
        match budget
            .limit(&create, jobs.create(&PostParams::default(), &job))
            .await?
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // The API server retried this call: the Job exists already if it is ours.
                let existing = budget
                    .call(
                        &format!("read restore Job {}", run.job_name()),
                        jobs.get(&run.job_name()),
                    )
                    .await?;
                let ours = existing
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::RUN_ID))
                    .is_some_and(|id| *id == run.run_id);
                if ours {
                    return Ok(());
                }
                lock::release(self.client, run, &lease).await;
                Err(AdmissionError::ConcurrentRequest(format!(
                    "a Job named {} already exists and belongs to another run; delete it or apply again",
                    run.job_name()
                )))
            }
            Err(e) => {
                lock::release(self.client, run, &lease).await;
                Err(AdmissionError::kubernetes(create)(e))
            }
        }
    }
}

/// The preview when the operator performs the restore: the repository name is the operator's.
pub fn operator_plan_warning(restore: &RestoreRequest, version: Option<ServerVersion>) -> String {
    let statement = restore_statement(
        "<operator repository>",
        &restore.snapshot,
        &restore.target.keyword(version),
        restore.options.rename.as_ref(),
    );
    format!("planned (by the CrateDB operator): {statement}")
}

/// How the warning with the planned statement starts (the kubectl plugin looks for it).
pub const PLANNED_PREFIX: &str = "planned: ";

/// `planned: RESTORE SNAPSHOT …` — no credentials are part of the statement. A plan too long for
/// one warning keeps its start and says how much was left out.
pub fn plan_warning(
    restore: &RestoreRequest,
    run: &RunIdentity,
    version: Option<ServerVersion>,
) -> String {
    let repository = repository_name(&run.run_id);
    let statement = |what: &str| {
        let text = format!(
            "{PLANNED_PREFIX}{}",
            restore_statement(
                &repository,
                &restore.snapshot,
                what,
                restore.options.rename.as_ref(),
            )
        );
        if restore.snapshot != LATEST {
            return text;
        }
        // Which snapshot `latest` means is only known when the Job reads the repository.
        let repository = quote_ident(&repository);
        text.replacen(
            &format!("{repository}.{}", quote_ident(LATEST)),
            &format!("{repository}.latest (resolved when the Job starts)"),
            1,
        )
    };
    let keyword = restore.target.keyword(version);
    let full = statement(&keyword);
    let over = full.chars().count().saturating_sub(MAX_WARNING_CHARS);
    if over == 0 {
        return full;
    }
    // The target list is what grows; the statement's start and its WITH (…) stay readable.
    let note = |n: usize| format!("… ({n} more characters; see status.restore.plan)");
    let cut = over + note(over).chars().count();
    let kept: String = keyword
        .chars()
        .take(keyword.chars().count().saturating_sub(cut))
        .collect();
    let left_out = keyword.chars().count() - kept.chars().count();
    statement(&format!("{kept}{}", note(left_out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plan_warning_shows_the_statement_and_never_credentials() {
        let spec: RestoreSnapshotSpec = serde_json::from_value(json!({
            "snapshot": "snap-1", "type": "tables", "tables": ["doc.t1", "x\"y.z"],
            "accessKeyId": {"secretKeyRef": {"name": "s", "key": "access-key-id"}},
            "secretAccessKey": {"secretKeyRef": {"name": "s", "key": "secret-access-key"}},
            "bucket": {"secretKeyRef": {"name": "s", "key": "bucket"}},
            "basePath": {"secretKeyRef": {"name": "s", "key": "base-path"}}
        }))
        .unwrap();
        let restore = restore_request::validate(&spec);
        // "x\"y.z" has a stray quote in an unquoted part: denied.
        assert!(restore.is_err());
        let mut spec = spec;
        spec.tables = Some(vec!["doc.t1".into(), "\"x\"\"y\".z".into()]);
        let restore = restore_request::validate(&spec).unwrap();
        let run = RunIdentity::new("ns", "c1", "20261125082542-3fa9c1");
        assert_eq!(
            plan_warning(&restore, &run, None),
            r#"planned: RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-1" TABLE "doc"."t1", "x""y"."z" WITH (wait_for_completion = false)"#
        );
    }

    #[test]
    fn latest_is_resolved_when_the_job_starts() {
        let spec: RestoreSnapshotSpec = serde_json::from_value(json!({
            "snapshot": "latest", "type": "all",
            "accessKeyId": {"secretKeyRef": {"name": "s", "key": "a"}},
            "secretAccessKey": {"secretKeyRef": {"name": "s", "key": "b"}},
            "bucket": {"secretKeyRef": {"name": "s", "key": "c"}},
            "basePath": {"secretKeyRef": {"name": "s", "key": "d"}}
        }))
        .unwrap();
        let restore = restore_request::validate(&spec).unwrap();
        assert_eq!(
            plan_warning(&restore, &RunIdentity::new("ns", "c", "r1"), None),
            r#"planned: RESTORE SNAPSHOT "restore_backup_r1".latest (resolved when the Job starts) ALL WITH (wait_for_completion = false)"#
        );
    }

    #[test]
    fn long_plans_are_summarised() {
        let tables: Vec<String> = (0..100).map(|i| format!("doc.table_{i}")).collect();
        let spec: RestoreSnapshotSpec = serde_json::from_value(json!({
            "snapshot": "s", "tables": tables,
            "accessKeyId": {"secretKeyRef": {"name": "s", "key": "a"}},
            "secretAccessKey": {"secretKeyRef": {"name": "s", "key": "b"}},
            "bucket": {"secretKeyRef": {"name": "s", "key": "c"}},
            "basePath": {"secretKeyRef": {"name": "s", "key": "d"}}
        }))
        .unwrap();
        let restore = restore_request::validate(&spec).unwrap();
        let warning = plan_warning(&restore, &RunIdentity::new("ns", "c", "r1"), None);
        assert!(
            warning.chars().count() <= MAX_WARNING_CHARS + 10,
            "{warning}"
        );
        assert!(warning.starts_with(
            r#"planned: RESTORE SNAPSHOT "restore_backup_r1"."s" TABLE "doc"."table_0""#
        ));
        assert!(
            warning.ends_with(
                "more characters; see status.restore.plan) WITH (wait_for_completion = false)"
            ),
            "{warning}"
        );
    }
}
