//! The Kubernetes Job that runs one restore (SPEC A2, A3; Job settings per the chart).
//!
//! Pure: a template (from a file the chart renders, or the built-in default) plus the run's
//! identity gives the Job manifest. Settings given as flags override the template.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec},
        core::v1::{Container, EnvVar, PodSpec},
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use serde_json::json;

use crate::{resource, run::CLUSTER_ANNOTATION, run::RunIdentity};

/// The container that runs `cratedb-restore-job` inside the template.
pub const CONTAINER_NAME: &str = "restore";

/// The environment variable that tells the restore Job its Job's uid.
pub const JOB_UID_ENV: &str = "CRATEDB_RESTORE_JOB_UID";

/// Exit codes of the restore Job that mean "a retry will not help" (see `cratedb-restore-job
/// --help`); the default pod failure policy fails the Job on them at once.
pub const PERMANENT_EXIT_CODES: [i32; 2] = [2, 3];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read Job template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("Job template {path} is not a batch/v1 Job manifest: {detail}")]
    Parse { path: String, detail: String },
}

/// Everything configurable about restore Jobs. `None` means "keep the template's value, or the
/// built-in default when the template has none".
#[derive(Debug, Clone, Default)]
pub struct JobSettings {
    pub template: Option<Job>,
    pub image: Option<String>,
    pub image_pull_policy: Option<String>,
    pub service_account: Option<String>,
    pub backoff_limit: Option<i32>,
    pub ttl_seconds_after_finished: Option<i32>,
    pub active_deadline_seconds: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub node_selector: BTreeMap<String, String>,
}

pub const DEFAULT_IMAGE: &str = concat!("cratedb-restore:", env!("CARGO_PKG_VERSION"));
pub const DEFAULT_SERVICE_ACCOUNT: &str = "cratedb-restore-job";
pub const DEFAULT_BACKOFF_LIMIT: i32 = 2;
pub const DEFAULT_TTL_SECONDS_AFTER_FINISHED: i32 = 86_400;

impl JobSettings {
    /// The ServiceAccount restore Jobs run as: the flag, else the template's, else the default.
    pub fn service_account_name(&self) -> String {
        self.service_account
            .clone()
            .or_else(|| {
                self.template
                    .as_ref()
                    .and_then(|t| t.spec.as_ref())
                    .and_then(|s| s.template.spec.as_ref())
                    .and_then(|p| p.service_account_name.clone())
            })
            .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.into())
    }

    /// Reads a Job template written as YAML or JSON.
    pub fn load_template(path: &str) -> Result<Job, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.to_string(),
            source,
        })?;
        serde_saphyr::from_str::<Job>(&text).map_err(|e| TemplateError::Parse {
            path: path.to_string(),
            detail: e.to_string(),
        })
    }
}

/// The owner of a restore Job: the CrateDB resource, so deleting it removes its Jobs.
#[derive(Debug, Clone)]
pub struct Owner {
    pub name: String,
    pub uid: String,
}

/// Builds the Job for one run. The deadline default is the restore timeout plus the cleanup
/// reserve, so the Job's own deadline (SPEC A12) always fires first.
pub fn build_job(
    settings: &JobSettings,
    run: &RunIdentity,
    owner: Option<&Owner>,
    default_deadline_seconds: i64,
) -> Job {
    let mut job = settings.template.clone().unwrap_or_default();
    let labels = run.job_labels();

    let meta = &mut job.metadata;
    meta.name = Some(run.job_name());
    meta.generate_name = None;
    meta.namespace = Some(run.namespace.clone());
    meta.resource_version = None;
    meta.uid = None;
    let meta_labels = meta.labels.get_or_insert_with(BTreeMap::new);
    meta_labels.extend(settings.labels.clone());
    meta_labels.extend(labels.clone());
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CLUSTER_ANNOTATION.into(), run.cluster.clone());
    meta.owner_references = owner.map(|o| {
        vec![OwnerReference {
            api_version: format!("{}/{}", resource::GROUP, resource::VERSION),
            kind: resource::KIND.into(),
            name: o.name.clone(),
            uid: o.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(false),
        }]
    });

    let spec = job.spec.get_or_insert_with(JobSpec::default);
    // A Job selects its own Pods; a template must not bring a selector from elsewhere.
    spec.selector = None;
    spec.manual_selector = None;
    set(
        &mut spec.backoff_limit,
        settings.backoff_limit,
        DEFAULT_BACKOFF_LIMIT,
    );
    set(
        &mut spec.ttl_seconds_after_finished,
        settings.ttl_seconds_after_finished,
        DEFAULT_TTL_SECONDS_AFTER_FINISHED,
    );
    set(
        &mut spec.active_deadline_seconds,
        settings.active_deadline_seconds,
        default_deadline_seconds,
    );
    // Only for the built-in template: a template decides for itself (the chart renders the
    // policy only for clusters that know the field).
    if spec.pod_failure_policy.is_none() && settings.template.is_none() {
        spec.pod_failure_policy = serde_json::from_value(json!({
            "rules": [
                {"action": "FailJob", "onExitCodes": {
                    "containerName": CONTAINER_NAME, "operator": "In",
                    "values": PERMANENT_EXIT_CODES}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
            ]
        }))
        .ok();
    }

    let template = &mut spec.template;
    let pod_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    let pod_labels = pod_meta.labels.get_or_insert_with(BTreeMap::new);
    pod_labels.extend(settings.labels.clone());
    pod_labels.extend(labels);
    let pod = template.spec.get_or_insert_with(PodSpec::default);
    fill_pod(pod, settings, run);
    job
}

fn set<T: Clone>(field: &mut Option<T>, flag: Option<T>, default: T) {
    if let Some(value) = flag {
        *field = Some(value);
    } else if field.is_none() {
        *field = Some(default);
    }
}

fn fill_pod(pod: &mut PodSpec, settings: &JobSettings, run: &RunIdentity) {
    // Job Pods must not restart in place: the Job controller decides on retries.
    pod.restart_policy = Some("Never".into());
    pod.service_account_name = Some(settings.service_account_name());
    pod.automount_service_account_token.get_or_insert(true);
    if !settings.node_selector.is_empty() {
        pod.node_selector
            .get_or_insert_with(BTreeMap::new)
            .extend(settings.node_selector.clone());
    }
    if pod.security_context.is_none() {
        pod.security_context = serde_json::from_value(json!({
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"}
        }))
        .ok();
    }

    let index = pod
        .containers
        .iter()
        .position(|c| c.name == CONTAINER_NAME)
        .unwrap_or_else(|| {
            pod.containers.insert(
                0,
                Container {
                    name: CONTAINER_NAME.into(),
                    ..Default::default()
                },
            );
            0
        });
    let container = &mut pod.containers[index];
    if let Some(image) = &settings.image {
        container.image = Some(image.clone());
    } else if container.image.is_none() {
        container.image = Some(DEFAULT_IMAGE.into());
    }
    if let Some(policy) = &settings.image_pull_policy {
        container.image_pull_policy = Some(policy.clone());
    }
    if container.command.is_none() {
        container.command = Some(vec!["cratedb-restore-job".into()]);
    }
    container.args = Some(vec![
        "--namespace".into(),
        run.namespace.clone(),
        "--name".into(),
        run.cluster.clone(),
        "--run-id".into(),
        run.run_id.clone(),
    ]);
    // The run keeps its record in ConfigMaps owned by its Job: the Job's uid comes from the
    // label the Job controller puts on its Pods (`controller-uid`, kept beside
    // `batch.kubernetes.io/controller-uid` on newer clusters).
    let env = container.env.get_or_insert_with(Vec::new);
    if !env.iter().any(|e| e.name == JOB_UID_ENV) {
        env.extend(serde_json::from_value::<EnvVar>(json!({
            "name": JOB_UID_ENV,
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['controller-uid']"}}
        })));
    }
    if container.security_context.is_none() {
        container.security_context = serde_json::from_value(json!({
            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}
        }))
        .ok();
    }
    if container.resources.is_none() {
        container.resources = serde_json::from_value(json!({
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"}
        }))
        .ok();
    }
}

/// Whether a restore Job has reached its end (Complete or Failed, or is being deleted).
pub fn is_finished(job: &Job) -> bool {
    if job.metadata.deletion_timestamp.is_some() {
        return true;
    }
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunIdentity {
        RunIdentity::new("prod", "cluster-1", "20261125082542-3fa9c1")
    }

    fn owner() -> Owner {
        Owner {
            name: "cluster-1".into(),
            uid: "uid-1".into(),
        }
    }

    #[test]
    fn default_job_is_restricted_and_owned() {
        let job = build_job(&JobSettings::default(), &run(), Some(&owner()), 88_200);
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(
            v["metadata"]["name"],
            "restore-cluster-1-20261125082542-3fa9c1"
        );
        assert_eq!(v["metadata"]["namespace"], "prod");
        assert_eq!(
            v["metadata"]["labels"]["restore.cloud.crate.io/run-id"],
            "20261125082542-3fa9c1"
        );
        assert_eq!(
            v["metadata"]["annotations"][CLUSTER_ANNOTATION],
            "cluster-1"
        );
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "CrateDB");
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(v["spec"]["backoffLimit"], 2);
        assert_eq!(v["spec"]["activeDeadlineSeconds"], 88_200);
        assert_eq!(v["spec"]["ttlSecondsAfterFinished"], 86_400);
        assert_eq!(
            v["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"],
            json!([2, 3])
        );
        let pod = &v["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["serviceAccountName"], "cratedb-restore-job");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &pod["containers"][0];
        assert_eq!(c["name"], "restore");
        assert_eq!(
            c["args"],
            json!([
                "--namespace",
                "prod",
                "--name",
                "cluster-1",
                "--run-id",
                "20261125082542-3fa9c1"
            ])
        );
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(
            v["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"],
            "restore-job"
        );
    }

    #[test]
    fn template_values_are_kept_and_flags_override_them() {
        let template: Job = serde_saphyr::from_str(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: ignored
  labels: {team: data}
spec:
  backoffLimit: 5
  ttlSecondsAfterFinished: 60
  template:
    spec:
      serviceAccountName: from-template
      nodeSelector: {pool: system}
      tolerations: [{key: dedicated, operator: Exists}]
      containers:
      - name: sidecar
        image: busybox
      - name: restore
        image: registry/restore:1
        env: [{name: CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT, value: "3600"}]
        resources: {limits: {memory: 1Gi}}
"#,
        )
        .unwrap();
        let settings = JobSettings {
            template: Some(template),
            backoff_limit: Some(1),
            image: Some("registry/restore:2".into()),
            labels: BTreeMap::from([("extra".into(), "yes".into())]),
            node_selector: BTreeMap::from([("zone".into(), "a".into())]),
            ..Default::default()
        };
        let v = serde_json::to_value(build_job(&settings, &run(), None, 100)).unwrap();
        assert_eq!(
            v["metadata"]["name"],
            "restore-cluster-1-20261125082542-3fa9c1"
        );
        assert_eq!(v["metadata"]["labels"]["team"], "data");
        assert_eq!(v["metadata"]["labels"]["extra"], "yes");
        assert!(v["metadata"].get("ownerReferences").is_none());
        assert_eq!(v["spec"]["backoffLimit"], 1);
        assert_eq!(v["spec"]["ttlSecondsAfterFinished"], 60);
        let pod = &v["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "from-template");
        assert_eq!(pod["nodeSelector"], json!({"pool": "system", "zone": "a"}));
        assert_eq!(pod["tolerations"][0]["key"], "dedicated");
        assert_eq!(pod["containers"][0]["name"], "sidecar");
        let c = &pod["containers"][1];
        assert_eq!(c["image"], "registry/restore:2");
        assert_eq!(c["env"][0]["value"], "3600");
        assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
        assert_eq!(c["args"][1], "prod");
    }

    #[test]
    fn finished_jobs_are_recognised() {
        let mut job: Job = serde_json::from_value(json!({"metadata": {"name": "j"}})).unwrap();
        assert!(!is_finished(&job));
        job.status =
            serde_json::from_value(json!({"conditions": [{"type": "Failed", "status": "True"}]}))
                .unwrap();
        assert!(is_finished(&job));
        job.status = serde_json::from_value(
            json!({"active": 1, "conditions": [{"type": "Complete", "status": "False"}]}),
        )
        .unwrap();
        assert!(!is_finished(&job));
    }
}
