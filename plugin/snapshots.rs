//! `snapshots NAME`: what can be restored into a CrateDB, read by a short-lived Job that runs
//! `cratedb-restore-job snapshots` with the image, ServiceAccount, resources and placement the
//! chart gives restore Jobs (its Job template ConfigMap), next to the cluster. The plugin prints
//! the Job's answer and deletes the Job (`--keep-job` keeps it).

use std::time::Duration;

use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{ConfigMap, EnvVar, Pod},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy},
};
use rand::Rng;
use serde_json::{Value, json};

use cratedb_restore::{
    plugin::exit::Exit,
    restore_job::CONTAINER_NAME,
    run::{CLUSTER_ANNOTATION, labels},
    snapshot_catalog,
};

use crate::{
    access::Target,
    cli::{Output, SnapshotsArgs},
};

/// The label that tells catalog Jobs from restore Jobs (the overlap guard counts only those).
const COMPONENT: &str = "snapshot-catalog";

/// The chart's Job template: in `namespace`, or the one release that has one.
async fn job_template(target: &Target, namespace: Option<&str>) -> Result<Job, String> {
    let selector = "app.kubernetes.io/component=webhook,app.kubernetes.io/part-of=cratedb";
    let api: Api<ConfigMap> = match namespace {
        Some(ns) => Api::namespaced(target.client.clone(), ns),
        None => Api::all(target.client.clone()),
    };
    let found: Vec<ConfigMap> = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| {
            format!(
                "cannot find the cratedb-restore chart's Job template ({e}); name its namespace with --chart-namespace"
            )
        })?
        .items
        .into_iter()
        .filter(|c| c.data.as_ref().is_some_and(|d| d.contains_key("job.yaml")))
        .collect();
    let chosen = match found.as_slice() {
        [one] => one,
        [] => {
            return Err(format!(
                "no cratedb-restore chart found{}: install it, or name its namespace with --chart-namespace",
                namespace
                    .map(|ns| format!(" in namespace {ns}"))
                    .unwrap_or_default()
            ));
        }
        several => {
            let places: Vec<String> = several
                .iter()
                .map(|c| c.metadata.namespace.clone().unwrap_or_default())
                .collect();
            return Err(format!(
                "cratedb-restore is installed in several namespaces ({}); pick one with --chart-namespace",
                places.join(", ")
            ));
        }
    };
    let text = &chosen.data.as_ref().expect("filtered above")["job.yaml"];
    serde_saphyr::from_str::<Job>(text).map_err(|e| format!("the chart's Job template: {e}"))
}

/// The catalog Job: the chart's restore Job template with the catalog's command line.
pub fn catalog_job(template: Job, namespace: &str, cluster: &str, from_request: bool) -> Job {
    let suffix: u32 = rand::rng().random_range(0..0x10_0000);
    let short: String = cluster.chars().take(30).collect();
    let name = format!(
        "cratedb-restore-snapshots-{}-{suffix:05x}",
        short.trim_end_matches('-')
    );
    let mut job = template;
    let meta = &mut job.metadata;
    meta.name = Some(name);
    meta.namespace = Some(namespace.into());
    let job_labels = meta.labels.get_or_insert_with(Default::default);
    job_labels.insert(labels::NAME.into(), labels::NAME_VALUE.into());
    job_labels.insert(labels::COMPONENT.into(), COMPONENT.into());
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(CLUSTER_ANNOTATION.into(), cluster.into());
    let spec = job.spec.get_or_insert_with(Default::default);
    spec.backoff_limit = Some(0);
    spec.active_deadline_seconds = Some(600);
    spec.ttl_seconds_after_finished = Some(3600);
    if let Some(pod) = spec.template.spec.as_mut()
        && let Some(container) = pod.containers.iter_mut().find(|c| c.name == CONTAINER_NAME)
    {
        let mut args = vec![
            "snapshots".to_string(),
            "--namespace".into(),
            namespace.into(),
            "--name".into(),
            cluster.into(),
            "--output".into(),
            "json".into(),
        ];
        if from_request {
            args.push("--from-request".into());
        }
        container.args = Some(args);
        // Only warnings beside the answer in the log.
        let env = container.env.get_or_insert_with(Vec::new);
        env.retain(|e| e.name != "RUST_LOG");
        env.push(EnvVar {
            name: "RUST_LOG".into(),
            value: Some("warn".into()),
            ..Default::default()
        });
    }
    job
}

/// The catalog's answer among the lines of its Pod's log.
pub fn answer_in(log: &str) -> Option<Value> {
    log.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .find(|v| v.get("snapshots").is_some_and(Value::is_array))
}

pub async fn snapshots(
    target: &Target,
    args: &SnapshotsArgs,
    output: Output,
) -> Result<Exit, String> {
    target.cratedb(&args.name).await?;
    let template = job_template(target, args.chart_namespace.as_deref()).await?;
    let job = catalog_job(template, &target.namespace, &args.name, args.from_request);
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(target.client.clone(), &target.namespace);
    jobs.create(&PostParams::default(), &job)
        .await
        .map_err(|e| format!("cannot create the catalog Job: {e}"))?;
    eprintln!(
        "reading the snapshots of {}/{} with Job {job_name} …",
        target.namespace, args.name
    );
    let outcome = wait_and_read(target, &jobs, &job_name, args.timeout).await;
    if !args.keep_job {
        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        if let Err(error) = jobs.delete(&job_name, &background).await {
            eprintln!("warning: cannot delete Job {job_name}: {error}");
        }
    } else {
        eprintln!("kept Job {job_name}");
    }
    let document = outcome?;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"namespace": target.namespace, "name": args.name,
                "source": document["source"], "snapshots": document["snapshots"]}))
            .unwrap_or_default()
        ),
        Output::Text => print!(
            "{}",
            snapshot_catalog::render_document(&document, args.tables)
        ),
    }
    Ok(Exit::Ok)
}

async fn wait_and_read(
    target: &Target,
    jobs: &Api<Job>,
    job_name: &str,
    timeout: Duration,
) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let finished = loop {
        let job = jobs
            .get(job_name)
            .await
            .map_err(|e| format!("cannot read Job {job_name}: {e}"))?;
        let status = job.status.unwrap_or_default();
        if status.succeeded.unwrap_or(0) > 0 {
            break true;
        }
        if status.failed.unwrap_or(0) > 0 {
            break false;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "Job {job_name} did not finish within {}; see kubectl -n {} describe job {job_name}",
                cratedb_restore::duration::human(timeout),
                target.namespace
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), &target.namespace);
    let pod = pods
        .list(&ListParams::default().labels(&format!("job-name={job_name}")))
        .await
        .map_err(|e| format!("cannot find the Pod of Job {job_name}: {e}"))?
        .items
        .into_iter()
        .next()
        .and_then(|p| p.metadata.name)
        .ok_or_else(|| format!("Job {job_name} has no Pod"))?;
    let log = pods
        .logs(
            &pod,
            &LogParams {
                container: Some(CONTAINER_NAME.into()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("cannot read the log of Pod {pod}: {e}"))?;
    match answer_in(&log) {
        Some(document) if finished => Ok(document),
        _ => {
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(format!(
                "the catalog Job {job_name} {}:\n{}",
                if finished { "gave no answer" } else { "failed" },
                tail.join("\n")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_job_is_the_templates_with_its_own_command_and_labels() {
        let template: Job = serde_json::from_value(json!({"apiVersion": "batch/v1", "kind": "Job",
            "spec": {"backoffLimit": 2, "template": {"spec": {"serviceAccountName": "cratedb-restore-job",
                "restartPolicy": "Never", "containers": [{"name": "restore", "image": "reg/cratedb-restore:1",
                "command": ["/usr/local/bin/cratedb-restore-job"],
                "env": [{"name": "RUST_LOG", "value": "info"}, {"name": "CRATEDB_RESTORE_LOG_FORMAT", "value": "json"}]}]}}}}))
        .unwrap();
        let job = serde_json::to_value(catalog_job(template, "dbs", "my-cluster", true)).unwrap();
        assert!(
            job["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("cratedb-restore-snapshots-my-cluster-")
        );
        assert_eq!(
            job["metadata"]["labels"]["app.kubernetes.io/component"],
            COMPONENT
        );
        assert_eq!(job["spec"]["backoffLimit"], 0);
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["args"],
            json!([
                "snapshots",
                "--namespace",
                "dbs",
                "--name",
                "my-cluster",
                "--output",
                "json",
                "--from-request"
            ])
        );
        assert_eq!(container["image"], "reg/cratedb-restore:1");
        assert_eq!(
            job["spec"]["template"]["spec"]["serviceAccountName"],
            "cratedb-restore-job"
        );
        assert_eq!(
            container["env"],
            json!([{"name": "CRATEDB_RESTORE_LOG_FORMAT", "value": "json"}, {"name": "RUST_LOG", "value": "warn"}])
        );
    }

    #[test]
    fn the_answer_is_the_last_catalog_document_in_the_log() {
        let log = "{\"level\":\"WARN\",\"message\":\"x\"}\n{\"source\":\"spec.backups.aws\",\"snapshots\":[]}\n";
        assert_eq!(answer_in(log).unwrap()["source"], "spec.backups.aws");
        assert!(answer_in("no json here").is_none());
    }
}
