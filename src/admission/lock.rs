//! One restore per cluster, ever (SPEC A3).
//!
//! Three signals say a restore is active: a restore Job of the cluster that has not finished, the
//! stored `status.restore` phase (when its Job still exists), and the cluster's Lease. The Lease is
//! the atomic part: the API server lets exactly one `create` win, so concurrent admissions cannot
//! both start a Job. A Lease whose holder has no live Job is stale and is taken over with an
//! optimistic-concurrency `replace`, which again only one request can win.

use std::time::Duration;

use k8s_openapi::{
    api::{
        batch::v1::Job,
        coordination::v1::{Lease, LeaseSpec},
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference},
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, PostParams, Preconditions},
};

use super::{budget::Budget, error::AdmissionError};
use crate::{
    resource,
    restore_job::{Owner, is_finished},
    run::{CLUSTER_ANNOTATION, RunIdentity, labels},
    status::RestoreStatus,
};

/// How long a fresh Lease protects a run whose Job is not created yet. An admission call lasts at
/// most the webhook timeout (≤ 5 s); this leaves ample room without blocking a later restore
/// for long when a Job creation failed.
pub const ADMISSION_GRACE: Duration = Duration::from_secs(30);

/// What the cluster currently shows about restores other than the one being admitted.
#[derive(Debug, Default)]
pub struct Observed {
    pub jobs: Vec<Job>,
    pub lease: Option<Lease>,
}

impl Observed {
    pub async fn read(
        client: &Client,
        budget: &Budget,
        run: &RunIdentity,
    ) -> Result<Self, AdmissionError> {
        let jobs: Api<Job> = Api::namespaced(client.clone(), &run.namespace);
        let listed = budget
            .call(
                &format!("list restore Jobs in namespace {:?}", run.namespace),
                jobs.list(&ListParams::default().labels(&run.cluster_selector())),
            )
            .await?;
        let jobs = listed
            .items
            .into_iter()
            .filter(|job| {
                // The label value may be a shortened form; the annotation has the full name.
                job.annotations().get(CLUSTER_ANNOTATION) == Some(&run.cluster)
            })
            .collect();
        let leases: Api<Lease> = Api::namespaced(client.clone(), &run.namespace);
        let lease = budget
            .call(
                &format!("read Lease {:?}", run.lock_name()),
                leases.get_opt(&run.lock_name()),
            )
            .await?;
        Ok(Self { jobs, lease })
    }

    fn job_of(&self, run_id: &str) -> Option<&Job> {
        self.jobs
            .iter()
            .find(|job| job.labels().get(labels::RUN_ID).map(String::as_str) == Some(run_id))
    }

    /// The reason `run` may not start, if any, plus warnings about stale state.
    pub fn conflict(
        &self,
        run: &RunIdentity,
        status: Option<&RestoreStatus>,
        now: Timestamp,
    ) -> (Option<AdmissionError>, Vec<String>) {
        let mut warnings = Vec::new();
        let ns = &run.namespace;
        if let Some(job) = self
            .jobs
            .iter()
            .find(|job| !is_finished(job) && job.labels().get(labels::RUN_ID) != Some(&run.run_id))
        {
            let other = job
                .labels()
                .get(labels::RUN_ID)
                .cloned()
                .unwrap_or_default();
            let name = job.name_any();
            return (
                Some(AdmissionError::RestoreInProgress(format!(
                    "a restore of {ns}/{} is already running (run {other}, Job {name}); wait until it finishes (kubectl -n {ns} get job {name}) and apply again",
                    run.cluster
                ))),
                warnings,
            );
        }
        if let Some(status) = status
            && let (Some(phase), Some(other)) = (status.phase, status.run_id.as_deref())
            && phase.is_active()
            && other != run.run_id
        {
            warnings.push(format!(
                "status.restore says run {other} is {phase}, but its Job is gone or finished; treating that run as abandoned"
            ));
        }
        if let Some(lease) = &self.lease
            && let Some(holder) = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
            && holder != run.run_id
            && self.job_of(holder).is_none()
            && lease_is_fresh(lease, now)
        {
            return (
                Some(AdmissionError::ConcurrentRequest(format!(
                    "another restore request for {ns}/{} (run {holder}) is being admitted right now; wait a few seconds, check kubectl -n {ns} get jobs -l {}, and apply again",
                    run.cluster,
                    run.cluster_selector()
                ))),
                warnings,
            );
        }
        (None, warnings)
    }
}

/// A Lease taken moments ago protects a run whose Job is still being created.
fn lease_is_fresh(lease: &Lease, now: Timestamp) -> bool {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.acquire_time.as_ref())
        .is_some_and(|t| now.duration_since(t.0).unsigned_abs() < ADMISSION_GRACE)
}

fn lease_for(run: &RunIdentity, owner: Option<&Owner>, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(run.lock_name()),
            namespace: Some(run.namespace.clone()),
            labels: Some(run.job_labels()),
            annotations: Some([(CLUSTER_ANNOTATION.to_string(), run.cluster.clone())].into()),
            owner_references: owner.map(|o| {
                vec![OwnerReference {
                    api_version: format!("{}/{}", resource::GROUP, resource::VERSION),
                    kind: resource::KIND.into(),
                    name: o.name.clone(),
                    uid: o.uid.clone(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(run.run_id.clone()),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(ADMISSION_GRACE.as_secs() as i32),
            ..Default::default()
        }),
    }
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

/// Takes the cluster's Lease for `run`. Exactly one of several concurrent callers succeeds.
pub async fn acquire(
    client: &Client,
    budget: &Budget,
    run: &RunIdentity,
    owner: Option<&Owner>,
    now: Timestamp,
) -> Result<Lease, AdmissionError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &run.namespace);
    let desired = lease_for(run, owner, now);
    let lost = || {
        AdmissionError::ConcurrentRequest(format!(
            "another restore request for {}/{} took the restore lock first; check kubectl -n {} get jobs -l {} and apply again if no restore runs",
            run.namespace,
            run.cluster,
            run.namespace,
            run.cluster_selector()
        ))
    };
    let create = "create the restore Lease";
    match budget
        .limit(create, api.create(&PostParams::default(), &desired))
        .await?
    {
        Ok(lease) => return Ok(lease),
        Err(e) if is_status(&e, 409) => {}
        Err(e) => return Err(AdmissionError::kubernetes(create)(e)),
    }
    let observed = Observed::read(client, budget, run).await?;
    let Some(existing) = observed.lease.clone() else {
        // Deleted between our create and this read: whoever creates next wins; retry.
        return Err(lost());
    };
    let holder = existing
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref());
    if holder == Some(run.run_id.as_str()) {
        // The API server retried this admission call; the lock is already ours.
        return Ok(existing);
    }
    if let (Some(conflict), _) = observed.conflict(run, None, now) {
        return Err(conflict);
    }
    let mut takeover = desired;
    takeover.metadata.resource_version = existing.metadata.resource_version.clone();
    let take_over = "take over the stale restore Lease";
    match budget
        .limit(
            take_over,
            api.replace(&run.lock_name(), &PostParams::default(), &takeover),
        )
        .await?
    {
        Ok(lease) => Ok(lease),
        Err(e) if is_status(&e, 409) => Err(lost()),
        Err(e) => Err(AdmissionError::kubernetes(take_over)(e)),
    }
}

/// Removes what a review that ran out of time may have created for `run`: its Job and its Lease,
/// each only while it still names this run. Called twice, because a create that timed out on our
/// side may still land in the API server a moment later.
pub async fn undo_admission(client: &Client, run: &RunIdentity) {
    let jobs: Api<Job> = Api::namespaced(client.clone(), &run.namespace);
    if let Ok(Some(job)) = jobs.get_opt(&run.job_name()).await
        && job.labels().get(labels::RUN_ID) == Some(&run.run_id)
    {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: job.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        match jobs.delete(&run.job_name(), &params).await {
            Ok(_) => {
                tracing::info!(job = %run.job_name(), "removed the Job of a review that ran out of time")
            }
            Err(error) => {
                tracing::warn!(%error, job = %run.job_name(), "could not remove the Job of a review that ran out of time; it exits at once (its run was never stored)")
            }
        }
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), &run.namespace);
    if let Ok(Some(lease)) = leases.get_opt(&run.lock_name()).await
        && lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(run.run_id.as_str())
    {
        release(client, run, &lease).await;
    }
}

/// Gives the Lease back after a failed Job creation, only if it is still exactly ours.
pub async fn release(client: &Client, run: &RunIdentity, lease: &Lease) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &run.namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: lease.metadata.uid.clone(),
            resource_version: lease.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    if let Err(error) = api.delete(&run.lock_name(), &params).await {
        tracing::warn!(%error, lease = %run.lock_name(), "could not release the restore Lease; it expires on its own");
    }
}
