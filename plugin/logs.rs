//! `logs NAME`: the current run's Job logs, Pod after Pod.
//!
//! Pods are found by polling once a second (label `job-name=<job>`, the newest first): log
//! lines stream as they come, and a look-up per second between Pods is all the waiting needs.

use std::{collections::HashSet, time::Duration};

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{
    Api,
    api::{ListParams, LogParams},
};

use cratedb_restore::{
    plugin::{exit::Exit, render::short_duration},
    restore_job::CONTAINER_NAME,
};

use crate::{access::Target, cli::LogsArgs};

const POLL: Duration = Duration::from_secs(1);

/// `Complete` or `Failed` with its reason, once the Job has finished.
fn finished(job: &Job) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| match (&c.reason, &c.message) {
            (Some(reason), Some(message)) => format!("{} ({reason}: {message})", c.type_),
            (Some(reason), None) => format!("{} ({reason})", c.type_),
            _ => c.type_.clone(),
        })
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Why a Pending Pod waits (`ContainerCreating`, `ImagePullBackOff`), when it says.
fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
}

pub async fn logs(target: &Target, args: &LogsArgs) -> Result<Exit, String> {
    let name = args.name.as_str();
    let ns = target.namespace.as_str();
    let cratedb = target.cratedb(name).await?;
    let job_name = cratedb
        .data
        .pointer("/status/restore/jobName")
        .and_then(|v| v.as_str())
        .filter(|j| !j.is_empty())
        .ok_or_else(|| {
            format!("CrateDB {ns}/{name} has no restore Job: no restore recorded (status.restore.jobName is empty)")
        })?
        .to_string();
    let jobs: Api<Job> = Api::namespaced(target.client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), ns);
    let job_gone = || {
        format!(
            "Job {ns}/{job_name} of the current restore run no longer exists (finished restore Jobs are deleted after a day; `kubectl cratedb-restore status {name}` still shows the run)"
        )
    };
    jobs.get_opt(&job_name)
        .await
        .map_err(|e| target.describe(e, &format!("Job {job_name:?}")))?
        .ok_or_else(job_gone)?;

    let selector = ListParams::default().labels(&format!("job-name={job_name}"));
    let mut streamed: HashSet<String> = HashSet::new();
    // Pods older than the last one streamed are earlier attempts: never gone back to.
    let mut last_created = None;
    let started = tokio::time::Instant::now();
    let mut said = String::new();
    loop {
        let job = jobs
            .get_opt(&job_name)
            .await
            .map_err(|e| target.describe(e, &format!("Job {job_name:?}")))?
            .ok_or_else(job_gone)?;
        let newest = pods
            .list(&selector)
            .await
            .map_err(|e| target.describe(e, &format!("Pods of Job {job_name:?}")))?
            .items
            .into_iter()
            .filter(|p| !streamed.contains(p.metadata.name.as_deref().unwrap_or_default()))
            .filter(|p| last_created.is_none() || created(p) >= last_created)
            .max_by_key(created);
        let mut pending = None;
        if let Some(pod) = newest {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            if phase(&pod) != "Pending" {
                if !streamed.is_empty() {
                    eprintln!("--- Pod {pod_name} (a new attempt of Job {job_name}) ---");
                }
                let first = streamed.is_empty().then_some(args);
                match stream(&pods, &pod, first).await {
                    Ok(()) => {}
                    // Not allowed to read logs: no other Pod will be readable either.
                    Err(kube::Error::Api(status)) if matches!(status.code, 401 | 403) => {
                        return Err(format!(
                            "cannot read the log of Pod {ns}/{pod_name}: {} ({} {})",
                            status.message, status.code, status.reason
                        ));
                    }
                    // A Pod whose container never ran has no log; the next attempt may.
                    Err(error) => eprintln!(
                        "(no log from Pod {pod_name}: {})",
                        crate::access::with_causes(&error)
                    ),
                }
                streamed.insert(pod_name);
                last_created = created(&pod);
                continue;
            }
            let note = format!(
                "waiting for Pod {pod_name} to start ({})",
                waiting_reason(&pod).unwrap_or_else(|| "Pending".into())
            );
            if note != said {
                eprintln!("{note}");
                said = note;
            }
            pending = Some(pod_name);
        }
        if let Some(end) = finished(&job) {
            eprintln!("Job {ns}/{job_name}: {end}");
            return Ok(Exit::Ok);
        }
        if streamed.is_empty() && started.elapsed() >= args.pod_running_timeout {
            let what = match pending {
                Some(pod) => format!("its Pod {pod} is still Pending"),
                None => "it has no Pod yet".to_string(),
            };
            return Err(format!(
                "Job {ns}/{job_name} has no running Pod after {}: {what} (is it suspended, or can it not be scheduled? kubectl -n {ns} describe job {job_name})",
                short_duration(args.pod_running_timeout.as_secs_f64())
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn created(pod: &Pod) -> Option<k8s_openapi::jiff::Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Copies one Pod's log to stdout until its container ends.
async fn stream(pods: &Api<Pod>, pod: &Pod, first: Option<&LogsArgs>) -> Result<(), kube::Error> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let params = LogParams {
        follow: true,
        container: (containers.len() > 1 && containers.contains(&CONTAINER_NAME))
            .then(|| CONTAINER_NAME.to_string()),
        since_seconds: first
            .and_then(|a| a.since)
            .map(|d| d.as_secs().max(1) as i64),
        tail_lines: first.and_then(|a| a.tail),
        ..Default::default()
    };
    let mut lines = pods.log_stream(&pod_name, &params).await?.lines();
    while let Some(line) = lines.try_next().await.map_err(kube::Error::ReadEvents)? {
        println!("{line}");
    }
    Ok(())
}
