//! The scenarios on the real single node (project issue 9). Each deploys its own CrateDB
//! cluster (a simulator Pod named like the operator's), asks for a restore with `kubectl apply`
//! as a user would, and asserts what the user and the cluster see: `status.restore`, Events on
//! the CrateDB resource, the simulator's statement log, the Job's completion and its Pods.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{
    BUSYBOX_IMAGE, ClusterSpec, IMAGE_TAG, JOB_SA, JOB_SELECTOR, NS, NS_OTHER, NodeEnv, POD_START,
    RELEASE_NS, RESTORE_RUN, SimCluster, Stream, WEBHOOK_DEPLOYMENT, WEBHOOK_SELECTOR, cratedb,
    restore_request, snapshot, wait_until, with_prefix,
};
use crate::harness::Run;

type Scenario = fn(&NodeEnv);

pub const ALL: &[(&str, Scenario)] = &[
    (
        "webhook_pods_ready_and_a_restore_runs_as_a_job_pod",
        webhook_pods_ready_and_a_restore_runs_as_a_job_pod,
    ),
    (
        "superuser_sql_goes_through_pod_exec_of_crash_without_secrets_in_the_uri",
        superuser_sql_goes_through_pod_exec_of_crash_without_secrets_in_the_uri,
    ),
    (
        "a_deleted_job_pod_is_replaced_and_the_run_resumes",
        a_deleted_job_pod_is_replaced_and_the_run_resumes,
    ),
    (
        "a_deleted_job_pod_resumes_an_all_restore_that_replaced_the_system_password",
        a_deleted_job_pod_resumes_an_all_restore_that_replaced_the_system_password,
    ),
    (
        "a_rolling_restart_of_the_webhook_loses_no_request",
        a_rolling_restart_of_the_webhook_loses_no_request,
    ),
    (
        "the_job_token_can_do_what_a_restore_needs_and_no_more",
        the_job_token_can_do_what_a_restore_needs_and_no_more,
    ),
    (
        "backups_are_suspended_and_a_running_backup_delays_the_restore",
        backups_are_suspended_and_a_running_backup_delays_the_restore,
    ),
];

/// The steps of a run that is not cancelled, in order (`status.restore.steps`; a cancelled run
/// also has `cancel_restore`).
pub const STEPS: [&str; 14] = [
    "preflight",
    "before_cluster_update",
    "before_restore_backup",
    "restore_backup_data",
    "await_restore",
    "restore_system_user_password",
    "restore_user_jwt_auth",
    "validate_restore_complete",
    "restore_internal_tables",
    "after_restore_backup",
    "after_cluster_update",
    "send_success_notification",
    "flush_notifications",
    "reset_snapshot",
];

// --- helpers ---------------------------------------------------------------------------------

/// Replaces every secret value of the clusters in `text` (for failure messages).
fn redact(text: &str, clusters: &[&SimCluster]) -> String {
    let mut out = text.to_string();
    for c in clusters {
        for (what, value) in [
            ("system password", c.secrets.system_password.as_str()),
            ("access key", c.secrets.access_key.as_str()),
            ("secret key", c.secrets.secret_key.as_str()),
        ] {
            out = out.replace(value, &format!("<{what} of {}>", c.name));
        }
    }
    out
}

/// A restore requested with `kubectl apply`.
pub struct Requested {
    pub run_id: String,
    pub job: String,
}

/// `kubectl apply -f -` of the cluster's CrateDB manifest with `restoreSnapshot` set; asserts
/// the webhook's warnings (the plan, the Job it created) and returns the run id and Job name.
#[track_caller]
pub fn request_restore(env: &NodeEnv, cluster: &SimCluster) -> Requested {
    request_restore_of(env, cluster, &cluster.restore_manifest())
}

/// [`request_restore`] with a manifest of the cluster's CrateDB resource.
#[track_caller]
pub fn request_restore_of(env: &NodeEnv, cluster: &SimCluster, manifest: &Value) -> Requested {
    let apply = env.apply_one(manifest).ok();
    let warnings = apply.warnings();
    assert!(
        warnings
            .first()
            .is_some_and(|w| w.starts_with("planned: RESTORE SNAPSHOT")),
        "the webhook previews the plan:\n{}",
        apply.describe()
    );
    let cr = env.get("cratedb", &cluster.ns, &cluster.name);
    let run_id = cr["metadata"]["annotations"]["restore.cloud.crate.io/run-id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run-id annotation after the apply: {cr:#}"))
        .to_string();
    let job = format!("restore-{}-{run_id}", cluster.name);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with(&format!("restore Job {}/{job} created", cluster.ns))),
        "the webhook names the Job it created:\n{}",
        apply.describe()
    );
    assert_eq!(
        cr["status"]["restore"]["phase"], "Pending",
        "seeded by the mutating webhook: {cr:#}"
    );
    Requested { run_id, job }
}

/// Waits until the Job is Complete (or Failed, which fails the scenario with its log). On a
/// timeout the run's status and the Job's log say where it stands.
#[track_caller]
pub fn wait_job_complete(env: &NodeEnv, cluster: &SimCluster, job: &str) -> Value {
    let deadline = Instant::now() + RESTORE_RUN;
    let (condition, j) = loop {
        if let Some(j) = env.try_get("job", &cluster.ns, job) {
            let conditions = j["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let done = conditions.iter().find(|c| {
                (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
            });
            if let Some(c) = done {
                break (
                    c["type"].as_str().unwrap_or_default().to_string(),
                    j.clone(),
                );
            }
        }
        // A step retrying over and over (transient failures; a healthy run has 1 attempt per
        // step, 2 after a Pod restart) is reported at once instead of at the timeout.
        let cr = env.get("cratedb", &cluster.ns, &cluster.name);
        let retrying = STEPS.iter().find(|s| {
            cr["status"]["restore"]["steps"][**s]["attempts"]
                .as_u64()
                .is_some_and(|a| a >= 4)
        });
        if Instant::now() > deadline || retrying.is_some() {
            let status = &cr["status"]["restore"];
            let steps: Vec<String> = STEPS
                .iter()
                .filter_map(|s| {
                    let step = &status["steps"][*s];
                    step["state"].as_str().map(|state| {
                        format!(
                            "  {s}: {state} (attempts {}) {}",
                            step["attempts"],
                            step["message"].as_str().unwrap_or_default()
                        )
                    })
                })
                .collect();
            panic!(
                "Job {}/{job} not complete ({}): status.restore.phase {}, message: {}\n{}\n--- log (tail) ---\n{}",
                cluster.ns,
                match retrying {
                    Some(step) => format!("step {step} keeps failing"),
                    None => format!("timed out after {RESTORE_RUN:?}"),
                },
                status["phase"],
                status["message"],
                steps.join("\n"),
                super::last_lines(
                    &env.kubectl
                        .run(&["logs", "-n", &cluster.ns, &format!("job/{job}")])
                        .stdout,
                    15
                )
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        condition,
        "Complete",
        "Job {job} failed: {:#}\n--- log ---\n{}",
        j["status"],
        env.kubectl
            .run(&["logs", "-n", &cluster.ns, &format!("job/{job}")])
            .stdout
    );
    j
}

/// What every successful run leaves behind: the status, the Events, the simulator's log, the
/// Job's completion and its Pod's end. Returns the CrateDB resource.
#[track_caller]
pub fn assert_run_succeeded(env: &NodeEnv, cluster: &SimCluster, req: &Requested) -> Value {
    let job = wait_job_complete(env, cluster, &req.job);
    assert_eq!(job["status"]["succeeded"], 1, "{:#}", job["status"]);
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["name"], cluster.name,
        "the Job belongs to the CrateDB resource"
    );

    // status.restore: the whole run, every step done or skipped, the request reset.
    let cr = env.get("cratedb", &cluster.ns, &cluster.name);
    let status = &cr["status"]["restore"];
    assert_eq!(status["phase"], "Succeeded", "{status:#}");
    assert_eq!(status["runId"], req.run_id.as_str(), "{status:#}");
    assert_eq!(status["jobName"], req.job.as_str(), "{status:#}");
    assert_eq!(status["progressPercent"], 100.0, "{status:#}");
    assert!(status["finishedAt"].is_string(), "{status:#}");
    for step in STEPS {
        let state = status["steps"][step]["state"]
            .as_str()
            .unwrap_or("(missing)");
        assert!(
            state == "Succeeded" || state == "Skipped",
            "step {step} is {state}: {status:#}"
        );
    }
    for step in [
        "preflight",
        "restore_backup_data",
        "await_restore",
        "restore_system_user_password",
        "validate_restore_complete",
        "reset_snapshot",
    ] {
        assert_eq!(
            status["steps"][step]["state"], "Succeeded",
            "{step}: {status:#}"
        );
    }
    assert_eq!(
        cr["spec"]["cluster"]["restoreSnapshot"]["snapshot"], "",
        "the request is reset (through the webhook) so it can be asked again"
    );
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Restored" && c["status"] == "True"),
        "{status:#}"
    );

    // Events on the CrateDB resource (kubectl describe cratedb): the run's start, the RESTORE
    // sent, its end, each once (also over a Pod restart); nothing failed.
    let events = env.events_in(&cluster.ns, &cluster.name);
    for reason in ["RestoreStarted", "RestoreSent", "RestoreSucceeded"] {
        let of_run: Vec<&(String, String)> = events
            .iter()
            .filter(|(r, n)| {
                r == reason && (reason == "RestoreSucceeded" || n.contains(&req.run_id))
            })
            .collect();
        assert_eq!(
            of_run.len(),
            1,
            "one {reason} event of run {} on cratedb/{}/{}: {events:#?}",
            req.run_id,
            cluster.ns,
            cluster.name
        );
    }
    assert!(
        !events
            .iter()
            .any(|(r, _)| r == "StepFailed" || r == "RestoreFailed"),
        "{events:#?}"
    );

    // The simulator: one RESTORE, the repository created (over PostgreSQL, as system, with
    // bound parameters) and dropped again.
    let log = env.statements(cluster);
    let shown = || redact(&serde_json::to_string_pretty(&log).unwrap(), &[cluster]);
    let restores = with_prefix(&log, "RESTORE SNAPSHOT");
    assert_eq!(
        restores.len(),
        1,
        "exactly one RESTORE SNAPSHOT:\n{}",
        shown()
    );
    assert_eq!(restores[0]["frontend"], "pg_wire", "{}", shown());
    assert_eq!(restores[0]["user"], "system");
    assert_eq!(restores[0]["outcome"]["kind"], "ok", "{}", shown());
    let repository = status["repository"]
        .as_str()
        .expect("status.restore.repository");
    assert!(
        restores[0]["sql"].as_str().unwrap().contains(repository),
        "{}",
        shown()
    );
    let creates = with_prefix(&log, "CREATE REPOSITORY");
    assert_eq!(creates.len(), 1, "{}", shown());
    assert!(
        creates[0]["param_count"].as_u64() >= Some(4),
        "the four credentials as bound parameters: {}",
        shown()
    );
    for statement in &log {
        let sql = statement["sql"].as_str().unwrap_or_default();
        for secret in [&cluster.secrets.access_key, &cluster.secrets.secret_key] {
            assert!(
                !sql.contains(secret.as_str()),
                "a storage credential in statement text: {}",
                redact(sql, &[cluster])
            );
        }
    }
    assert!(
        !with_prefix(&log, "DROP REPOSITORY").is_empty(),
        "{}",
        shown()
    );

    // The Job's Pod ran to Succeeded with exit code 0.
    let pods = env.job_pods_in(&cluster.ns, &req.job);
    let last = pods
        .iter()
        .find(|p| p["status"]["phase"] == "Succeeded")
        .unwrap_or_else(|| panic!("no Succeeded Pod of Job {}: {pods:#?}", req.job));
    let terminated = &last["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 0, "{:#}", last["status"]);
    assert_eq!(terminated["reason"], "Completed");
    assert_eq!(
        last["spec"]["containers"][0]["image"],
        format!("{}:{IMAGE_TAG}", super::PRODUCT_REPOSITORY)
    );
    assert_eq!(
        last["spec"]["serviceAccountName"], JOB_SA,
        "the Job runs as the chart's restore ServiceAccount"
    );

    // kubectl get jobs shows it complete.
    let table = env
        .kubectl
        .run(&[
            "get",
            "jobs",
            "-n",
            &cluster.ns,
            "-l",
            &format!("{JOB_SELECTOR}{}", cluster.name),
        ])
        .ok()
        .stdout;
    let row = table
        .lines()
        .find(|l| l.starts_with(&req.job))
        .unwrap_or_else(|| panic!("no row for {} in:\n{table}", req.job));
    assert_eq!(
        row.split_whitespace().nth(1),
        Some("1/1"),
        "COMPLETIONS column:\n{table}"
    );
    cr
}

/// The JSON lines of `kubectl logs job/<job>` (the chart's default log format is json).
#[track_caller]
pub fn job_log_lines(env: &NodeEnv, target: &str) -> Vec<Value> {
    let run = env.kubectl.run(&["logs", "-n", NS, target]).ok();
    log_lines(&run)
}

/// [`job_log_lines`], or None while the container has not started.
pub fn try_job_log_lines(env: &NodeEnv, target: &str) -> Option<Vec<Value>> {
    let run = env.kubectl.run(&["logs", "-n", NS, target]);
    run.status.success().then(|| log_lines(&run))
}

#[track_caller]
fn log_lines(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}\n{}", run.stdout))
        })
        .collect()
}

/// The step a log line belongs to (its span, or its own `step` field).
fn step_of(line: &Value) -> Option<&str> {
    line["span"]["step"].as_str().or(line["step"].as_str())
}

fn webhook_pods(env: &NodeEnv) -> Vec<Value> {
    env.kubectl
        .get_json(&["get", "pods", "-n", RELEASE_NS, "-l", WEBHOOK_SELECTOR])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The operator's backup CronJob (`create-snapshot-<name>`, batch/v1beta1 as on 1.20), whose
/// Jobs only run `true`.
fn backup_cronjob(name: &str, labels: &Value, suspend: bool) -> Value {
    json!({"apiVersion": "batch/v1beta1", "kind": "CronJob",
           "metadata": {"name": name, "namespace": NS, "labels": labels},
           "spec": {"schedule": "0 0 1 1 *", "suspend": suspend,
                    "jobTemplate": {"spec": {"template": {"spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "backup", "image": busybox(),
                                        "imagePullPolicy": "Never", "command": ["true"]}]}}}}}})
}

fn busybox() -> String {
    format!("{BUSYBOX_IMAGE}:{IMAGE_TAG}")
}

// --- 1 -----------------------------------------------------------------------------------------

/// `helm install` with only image values and `restoreJob.namespaces`: the webhook Pods are Ready
/// through their probes and the API server reaches them through the Service with the chart's
/// own certificate; a restore applied with kubectl runs as a Job Pod to Succeeded, its log tells
/// the steps, `kubectl get jobs` shows it complete, and backup-metrics is stopped and restarted.
fn webhook_pods_ready_and_a_restore_runs_as_a_job_pod(env: &NodeEnv) {
    // The webhook Deployment: two replicas, Ready through /readyz, never restarted.
    let pods = webhook_pods(env);
    assert_eq!(
        pods.len(),
        2,
        "webhook.replicaCount defaults to 2: {pods:#?}"
    );
    for pod in &pods {
        assert!(is_ready(pod), "{:#}", pod["status"]);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(
            c["image"],
            format!("{}:{IMAGE_TAG}", super::PRODUCT_REPOSITORY)
        );
        assert_eq!(c["imagePullPolicy"], "Never");
        let status = &pod["status"]["containerStatuses"][0];
        assert_eq!(status["ready"], true);
        assert_eq!(
            status["restartCount"], 0,
            "liveness never failed: {status:#}"
        );
    }
    let endpoints = env.get("endpoints", RELEASE_NS, WEBHOOK_DEPLOYMENT);
    let ready = endpoints["subsets"][0]["addresses"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(ready, 2, "both pods behind the Service: {endpoints:#}");

    // Both webhook configurations call the Service and trust the chart's generated CA.
    let ca = env
        .kubectl
        .run(&[
            "get",
            "secret",
            &format!("{WEBHOOK_DEPLOYMENT}-tls"),
            "-n",
            RELEASE_NS,
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ])
        .ok()
        .stdout;
    assert!(!ca.trim().is_empty(), "the chart's TLS Secret has ca.crt");
    for kind in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        let list = env.kubectl.get_json(&["get", kind]);
        let ours: Vec<&Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["webhooks"].as_array().unwrap())
            .filter(|w| {
                w["name"] == "mutate.restore.cloud.crate.io"
                    || w["name"] == "validate.restore.cloud.crate.io"
            })
            .collect();
        assert_eq!(ours.len(), 1, "{kind}: {list:#}");
        let client = &ours[0]["clientConfig"];
        assert!(client.get("url").is_none(), "no webhook.url: {client:#}");
        assert_eq!(client["service"]["name"], WEBHOOK_DEPLOYMENT, "{client:#}");
        assert_eq!(client["service"]["namespace"], RELEASE_NS);
        assert_eq!(
            client["caBundle"].as_str().unwrap_or_default(),
            ca.trim(),
            "{kind} trusts the CA in the chart's TLS Secret"
        );
    }

    // The uninstall guard's configuration judges only the chart's pre-delete hook ConfigMap,
    // through the same Service (node/lifecycle.rs has the uninstall itself).
    let guard = env.kubectl.get_json(&[
        "get",
        "validatingwebhookconfiguration",
        "e2e-cratedb-restore-uninstall-guard",
    ]);
    let hook = &guard["webhooks"][0];
    assert_eq!(hook["name"], "uninstall-guard.restore.cloud.crate.io");
    assert_eq!(hook["clientConfig"]["service"]["path"], "/guard-uninstall");
    assert_eq!(
        hook["objectSelector"]["matchLabels"]["restore.cloud.crate.io/uninstall-guard"],
        "e2e-cratedb-restore"
    );

    // A cluster with a backup-metrics Deployment, which the restore stops and restarts.
    let metrics = "backup-metrics-story";
    let cluster = env.deploy_cluster(ClusterSpec {
        ns: NS.into(),
        name: "story".into(),
        snapshot: snapshot(500_000),
        bytes_per_sec: 100_000,
        extra: vec![json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": metrics, "namespace": NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": metrics}},
                     "template": {"metadata": {"labels": {"app": metrics}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "metrics", "image": busybox(),
                                                           "imagePullPolicy": "Never",
                                                           "command": ["sleep", "3600"]}]}}}})],
    });
    wait_until("backup-metrics Ready", POD_START, || {
        let d = env.get("deployment", NS, metrics);
        (d["status"]["readyReplicas"] == 1).then_some(())
    });
    let generation = env.get("deployment", NS, metrics)["metadata"]["generation"]
        .as_i64()
        .unwrap();

    let req = request_restore(env, &cluster);
    // The Job's Pod, as the Job controller creates and the kubelet runs it.
    let pod = wait_until("the Job's Pod exists", POD_START, || {
        env.job_pods(&req.job).into_iter().next()
    });
    assert_eq!(pod["spec"]["containers"][0]["name"], "restore");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");

    let cr = assert_run_succeeded(env, &cluster, &req);
    let pods = env.job_pods(&req.job);
    assert_eq!(pods.len(), 1, "one Pod ran the whole restore: {pods:#?}");
    assert_eq!(pods[0]["status"]["containerStatuses"][0]["restartCount"], 0);

    // kubectl logs job/<name>: the story, step by step, as JSON lines.
    let lines = job_log_lines(env, &format!("job/{}", req.job));
    let text = |l: &Value| l["message"].as_str().unwrap_or_default().to_string();
    assert!(
        lines.iter().any(|l| text(l) == "restore run starting"
            && l["run_id"] == req.run_id.as_str()
            && l["resumed"] == false),
        "{lines:#?}"
    );
    let status = &cr["status"]["restore"];
    for step in STEPS {
        let of_step: Vec<&Value> = lines.iter().filter(|l| step_of(l) == Some(step)).collect();
        if status["steps"][step]["state"] == "Skipped" {
            assert!(
                of_step.iter().any(|l| text(l) == "step skipped"),
                "{step}: {of_step:#?}"
            );
        } else {
            assert!(
                of_step.iter().any(|l| text(l) == "step started"),
                "{step} started: {of_step:#?}"
            );
            assert!(
                of_step.iter().any(|l| l["outcome"] == "succeeded"),
                "{step} succeeded: {of_step:#?}"
            );
        }
    }
    let position = |step: &str| {
        lines
            .iter()
            .position(|l| step_of(l) == Some(step))
            .unwrap_or(usize::MAX)
    };
    assert!(
        STEPS.windows(2).all(|w| position(w[0]) < position(w[1])),
        "steps logged in order"
    );
    for line in &lines {
        let raw = line.to_string();
        for secret in cluster.secrets.values() {
            assert!(
                !raw.contains(secret),
                "a secret in the Job's log: {}",
                redact(&raw, &[&cluster])
            );
        }
    }

    // backup-metrics: scaled to 0 during the restore and back to 1 after it.
    let d = wait_until("backup-metrics Ready again", POD_START, || {
        let d = env.get("deployment", NS, metrics);
        (d["status"]["readyReplicas"] == 1).then_some(d)
    });
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["metadata"]["generation"].as_i64().unwrap(),
        generation + 2,
        "scaled down and up once each"
    );
    // The restore Secret named restore-from-backup-<name> is deleted at the end.
    assert!(
        env.try_get("secret", NS, &cluster.restore_secret())
            .is_none(),
        "restore-from-backup-story is deleted after the restore"
    );
}

// --- 2 -----------------------------------------------------------------------------------------

/// The default superuser path: with no CRATEDB_OPERATOR_CLOUD_PROVIDER, the password reset after
/// a restore of type `all` (which brings the source cluster's `system` password) runs as `crash`
/// inside the `crate` container through pod exec. The simulator saw it on its HTTP front-end
/// as `crate` from loopback; the API server's audit log has the exec requests; none of their
/// URIs carries a secret value.
fn superuser_sql_goes_through_pod_exec_of_crash_without_secrets_in_the_uri(env: &NodeEnv) {
    let audit_log = std::path::PathBuf::from(env.node.get("AUDIT_LOG"));
    let cluster = env.deploy_cluster(ClusterSpec {
        ns: NS.into(),
        name: "exec".into(),
        snapshot: snapshot(200_000),
        bytes_per_sec: 100_000,
        extra: vec![],
    });
    let req = request_restore(env, &cluster);
    assert_run_succeeded(env, &cluster, &req);

    let log = env.statements(&cluster);
    let shown = || redact(&serde_json::to_string_pretty(&log).unwrap(), &[&cluster]);
    let alter = with_prefix(&log, "ALTER USER");
    assert_eq!(alter.len(), 1, "one password reset:\n{}", shown());
    assert_eq!(
        alter[0]["frontend"],
        "http",
        "sent by crash to CrateDB's HTTP endpoint:\n{}",
        shown()
    );
    assert_eq!(
        alter[0]["user"], "crate",
        "crash in the pod is crate (loopback)"
    );
    assert_eq!(alter[0]["outcome"]["kind"], "ok", "{}", shown());
    assert!(
        log.iter().all(|s| s["frontend"] != "sidecar"),
        "no crate-control sidecar on the default path:\n{}",
        shown()
    );
    // The reset really gave `system` its password back: everything the Job sent over
    // PostgreSQL after the reset succeeded as `system`.
    let reset_at = alter[0]["seq"].as_u64().unwrap();
    let after: Vec<&Value> = log
        .iter()
        .filter(|s| s["seq"].as_u64().unwrap() > reset_at && s["frontend"] == "pg_wire")
        .collect();
    assert!(!after.is_empty(), "{}", shown());
    assert!(
        after
            .iter()
            .all(|s| s["user"] == "system" && s["outcome"]["kind"] == "ok"),
        "{}",
        shown()
    );

    // The audit log: pods/exec requests of the Job's ServiceAccount into the CrateDB pod.
    let user = format!("system:serviceaccount:{NS}:{JOB_SA}");
    let text = std::fs::read_to_string(&audit_log)
        .unwrap_or_else(|e| panic!("audit log {}: {e}", audit_log.display()));
    let execs: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["objectRef"]["subresource"] == "exec"
                && e["objectRef"]["namespace"] == NS
                && e["objectRef"]["name"] == cluster.pod.as_str()
        })
        .collect();
    let by_job: Vec<&Value> = execs
        .iter()
        .filter(|e| e["user"]["username"] == user.as_str())
        .collect();
    assert!(
        !by_job.is_empty(),
        "the audit log has the Job's pods/exec requests into {}: {}",
        cluster.pod,
        redact(&serde_json::to_string(&execs).unwrap(), &[&cluster])
    );
    for e in &by_job {
        let uri = e["requestURI"].as_str().unwrap();
        let query: Vec<(String, String)> = uri
            .split_once('?')
            .map(|(_, q)| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let commands: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.as_str())
            .collect();
        // `crash …`, or `sh -c <read one line> sh crash …` when the statement goes on stdin.
        assert!(commands.contains(&"crash"), "{}", redact(uri, &[&cluster]));
        assert!(
            query.iter().any(|(k, v)| k == "container" && v == "crate"),
            "{}",
            redact(uri, &[&cluster])
        );
    }
    // No secret value in any audited URI (raw, percent-decoded, or form-decoded).
    let mut leaks = Vec::new();
    for e in &execs {
        let uri = e["requestURI"].as_str().unwrap_or_default();
        let decoded: String = form_urlencoded::parse(uri.as_bytes())
            .map(|(k, v)| format!("{k}={v}&"))
            .collect();
        for (what, value) in [
            (
                "the system password",
                cluster.secrets.system_password.as_str(),
            ),
            ("the access key", cluster.secrets.access_key.as_str()),
            ("the secret key", cluster.secrets.secret_key.as_str()),
        ] {
            if uri.contains(value) || decoded.contains(value) {
                leaks.push(format!("{what} in {}", redact(uri, &[&cluster])));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secret values in audited pods/exec request URIs (statements with passwords must go to crash on stdin, never in the exec request):\n{}",
        leaks.join("\n")
    );
}

// --- 3 -----------------------------------------------------------------------------------------

/// `kubectl delete pod` of the Job's Pod while CrateDB restores (a 40 s restore of type
/// `tables`): the Pod exits 4 on SIGTERM, the Job controller starts another Pod, which resumes
/// the run (earlier steps are not repeated) and finishes it; the simulator saw exactly one
/// RESTORE SNAPSHOT.
fn a_deleted_job_pod_is_replaced_and_the_run_resumes(env: &NodeEnv) {
    deleted_job_pod_resumes(
        env,
        "resume",
        json!({"type": "tables", "tables": ["doc.orders"]}),
    );
}

/// The same with a restore of type `all`, whose snapshot holds the source cluster's users: CrateDB
/// replaces `system`'s password when the RESTORE starts, so the replacement Pod's new PostgreSQL
/// login as `system` is refused until the run resets the password (through crash), which only
/// happens after `await_restore`. The first Pod never noticed: its connection was already open.
fn a_deleted_job_pod_resumes_an_all_restore_that_replaced_the_system_password(env: &NodeEnv) {
    deleted_job_pod_resumes(env, "resume-all", json!({}));
}

fn deleted_job_pod_resumes(env: &NodeEnv, name: &str, restore: Value) {
    let cluster = env.deploy_cluster(ClusterSpec {
        ns: NS.into(),
        name: name.into(),
        snapshot: snapshot(1_000_000),
        bytes_per_sec: 25_000,
        extra: vec![],
    });
    let req = request_restore_of(env, &cluster, &cluster.restore_manifest_with(restore));
    // The first Pod's attempts per step (a step may have retried while the cluster started).
    let steps_before_delete = wait_until(
        "the first Pod waits for the running RESTORE",
        RESTORE_RUN,
        || {
            let cr = env.get("cratedb", NS, &cluster.name);
            let steps = &cr["status"]["restore"]["steps"];
            (steps["await_restore"]["state"] == "Running").then(|| steps.clone())
        },
    );
    assert_eq!(
        with_prefix(&env.statements(&cluster), "RESTORE SNAPSHOT").len(),
        1
    );
    let pods = env.job_pods(&req.job);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    let first = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    // The kubelet reports the container running a little after it runs (its status is written
    // every few seconds under load): only then can a log be followed.
    wait_until(
        "the first Pod's container reported running",
        POD_START,
        || {
            let pod = env.get("pod", NS, &first);
            pod["status"]["containerStatuses"][0]["state"]["running"]
                .is_object()
                .then_some(())
        },
    );

    // Follow the first Pod's log and its status to their end (neither can be read once the Pod
    // is gone); both streams are attached before the delete.
    let kubeconfig = env.node.kubeconfig();
    let mut log = Stream::start(&kubeconfig, &["logs", "-f", "-n", NS, &first]);
    // The plugin follows the run across both Pods, as a user would watch it.
    let mut plugin_logs = Stream::plugin(&kubeconfig, &["-n", NS, "logs", &cluster.name]);
    let watch = Stream::start(
        &kubeconfig,
        &["get", "pod", "-n", NS, &first, "-w", "-o", "json"],
    );
    let attached = Instant::now() + Duration::from_secs(30);
    while log.text().is_empty() || watch.documents().is_empty() || plugin_logs.text().is_empty() {
        assert!(
            Instant::now() < attached,
            "log, watch and plugin not attached after 30 s:\n{}\n{}\n{}",
            log.describe(),
            watch.describe(),
            plugin_logs.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    env.kubectl
        .run(&["delete", "pod", "-n", NS, &first, "--wait=false"])
        .ok();
    let terminated = |docs: &[Value]| {
        docs.iter()
            .filter_map(|p| {
                p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"].as_i64()
            })
            .next_back()
    };
    wait_until(
        "the deleted Pod's container ends (log stream closed, exit code reported)",
        Duration::from_secs(60),
        || (log.ended() && terminated(&watch.documents()).is_some()).then_some(()),
    );
    let exit_code = terminated(&watch.documents());
    drop(watch);
    let first_log = log.stop();
    assert_eq!(
        exit_code,
        Some(4),
        "exit code 4 (interrupted by SIGTERM, the next Pod resumes); log:\n{first_log}"
    );
    assert!(
        first_log.contains("SIGTERM received"),
        "the first Pod says why it stopped:\n{first_log}"
    );

    // The Job controller's replacement resumes and finishes the run.
    let second = wait_until("a second Pod of the Job", POD_START, || {
        env.job_pods(&req.job)
            .into_iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .find(|n| *n != first)
    });
    let cr = assert_run_succeeded(env, &cluster, &req);
    let status = &cr["status"]["restore"];
    let lines = job_log_lines(env, &format!("pod/{second}"));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "restore run starting" && l["resumed"] == true),
        "the second Pod resumes the run: {lines:#?}"
    );
    for step in [
        "preflight",
        "before_cluster_update",
        "before_restore_backup",
        "restore_backup_data",
    ] {
        assert!(
            lines.iter().any(
                |l| l["message"] == "already done in an earlier attempt of this run"
                    && step_of(l) == Some(step)
            ),
            "{step} is not repeated: {lines:#?}"
        );
        assert!(
            steps_before_delete[step]["attempts"].as_u64() >= Some(1),
            "{step} ran in the first Pod: {steps_before_delete:#}"
        );
        assert_eq!(
            status["steps"][step]["attempts"], steps_before_delete[step]["attempts"],
            "{step} has no attempt by the second Pod: {status:#}"
        );
    }
    assert_eq!(
        with_prefix(&env.statements(&cluster), "RESTORE SNAPSHOT").len(),
        1,
        "exactly one RESTORE SNAPSHOT over both Pods"
    );
    assert_eq!(
        with_prefix(&env.statements(&cluster), "CREATE REPOSITORY").len(),
        1,
        "the repository is not created again"
    );

    let plugin_exit = wait_until(
        "`kubectl cratedb-restore logs` ends with the Job",
        Duration::from_secs(30),
        || plugin_logs.exit_code(),
    );
    let (followed, notes) = (plugin_logs.text(), plugin_logs.stderr_text());
    assert_eq!(plugin_exit, 0, "stdout:\n{followed}\nstderr:\n{notes}");
    assert!(
        followed.contains("SIGTERM received") && followed.contains("\"resumed\":true"),
        "the plugin shows the first Pod's end and the second Pod's resumption:\n{followed}"
    );
    assert!(
        notes.contains(&format!(
            "--- Pod {second} (a new attempt of Job {})",
            req.job
        )) && notes.contains("Complete"),
        "the plugin names the new attempt and the Job's end:\n{notes}"
    );
}

// --- 4 -----------------------------------------------------------------------------------------

/// `kubectl rollout restart` of the webhook Deployment while restore requests are applied
/// (server-side dry runs, at least 50, until the old Pods are gone): every request gets an
/// answer from the webhook, none is lost to a connection error.
fn a_rolling_restart_of_the_webhook_loses_no_request(env: &NodeEnv) {
    const MIN_REQUESTS: usize = 50;
    // Only a safety net: the workers stop when the rollout has ended (also when its wait fails),
    // and a rollout on a busy node takes a minute (~13 applies a second).
    const MAX_REQUESTS: usize = 5_000;
    let name = "rolling";
    let secret = format!("restore-from-backup-{name}");
    env.apply(&[
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret, "namespace": NS},
               "stringData": {"access-key-id": "AKIA-rolling", "secret-access-key": "rolling-secret",
                              "bucket": super::BUCKET, "base-path": super::BASE_PATH}}),
        cratedb(name, None),
    ])
    .ok();
    let manifest = cratedb(name, Some(restore_request(&secret, "snap-1"))).to_string();
    let old: Vec<String> = webhook_pods(env)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(old.len(), 2);

    let results: Mutex<Vec<(Instant, Instant, Run)>> = Mutex::new(Vec::new());
    let sent = AtomicUsize::new(0);
    let rollout_done = AtomicBool::new(false);
    let started = Instant::now();
    let restarted = std::cell::Cell::new(started);
    let mut rollout_ended = None;
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let n = sent.fetch_add(1, Ordering::SeqCst);
                    if n >= MAX_REQUESTS
                        || (n >= MIN_REQUESTS && rollout_done.load(Ordering::SeqCst))
                    {
                        break;
                    }
                    let t0 = Instant::now();
                    let run = env
                        .kubectl
                        .run_stdin(&["apply", "--dry-run=server", "-f", "-"], &manifest);
                    results.lock().unwrap().push((t0, Instant::now(), run));
                }
            });
        }
        // Let requests flow before the restart, then restart and wait for the old Pods to go.
        // The workers stop in every case (also when a wait here fails).
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until("first answers", Duration::from_secs(30), || {
                (results.lock().unwrap().len() >= 4).then_some(())
            });
            restarted.set(Instant::now());
            env.kubectl
                .run(&[
                    "rollout",
                    "restart",
                    &format!("deployment/{WEBHOOK_DEPLOYMENT}"),
                    "-n",
                    RELEASE_NS,
                ])
                .ok();
            env.wait_webhook_rollout();
            wait_until(
                "the old webhook Pods are gone",
                Duration::from_secs(90),
                || {
                    let now: Vec<String> = webhook_pods(env)
                        .iter()
                        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
                        .collect();
                    (!now.iter().any(|p| old.contains(p))).then_some(())
                },
            );
        }));
        rollout_ended = Some(Instant::now());
        rollout_done.store(true, Ordering::SeqCst);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
    let rollout_ended = rollout_ended.unwrap();
    let results = results.into_inner().unwrap();
    let total = results.len();
    let mut admitted = 0;
    let mut denials: Vec<String> = Vec::new();
    let mut lost = Vec::new();
    for (_, _, run) in &results {
        let ours = run
            .stderr
            .contains("admission webhook \"validate.restore.cloud.crate.io\" denied the request: ")
            || run.stderr.contains(
                "admission webhook \"mutate.restore.cloud.crate.io\" denied the request: ",
            );
        if run.status.success()
            && run
                .warnings()
                .first()
                .is_some_and(|w| w.starts_with("planned: RESTORE SNAPSHOT"))
        {
            admitted += 1;
        } else if !run.status.success() && ours && !run.stderr.contains("failed calling webhook") {
            denials.push(run.stderr.trim().to_string());
        } else {
            lost.push(run.describe());
        }
    }
    eprintln!(
        "  {total} requests in {:.1}s: {admitted} admitted, {} denied, {} lost; the rollout (restart to old Pods gone) took {:.1}s{}",
        started.elapsed().as_secs_f64(),
        denials.len(),
        lost.len(),
        rollout_ended.duration_since(restarted.get()).as_secs_f64(),
        denials
            .iter()
            .take(3)
            .map(|d| format!("\n  denial: {d}"))
            .collect::<String>()
    );
    assert!(total >= MIN_REQUESTS, "{total} requests");
    assert!(
        lost.is_empty(),
        "{} of {total} requests lost during the rolling restart (no answer from the webhook):\n{}",
        lost.len(),
        lost.iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    // The restart really happened under the requests: new Pods, all Ready, none of the old.
    let now = webhook_pods(env);
    assert_eq!(now.len(), 2);
    assert!(now.iter().all(is_ready));
    // Requests ran over the whole rollout: from before the restart until the old Pods were gone.
    let last_start = results.iter().map(|(t0, _, _)| *t0).max().unwrap();
    assert!(
        last_start + Duration::from_secs(5) > rollout_ended,
        "requests kept coming until the rollout ended"
    );
}

// --- 5 -----------------------------------------------------------------------------------------

/// The restore Job's ServiceAccount token (TokenRequest API) with `kubectl --token`: every call
/// a restore makes works, for real; a sample of what it must not do is forbidden.
fn the_job_token_can_do_what_a_restore_needs_and_no_more(env: &NodeEnv) {
    let name = "rbac";
    let cronjob = format!("create-snapshot-{name}");
    let labels = json!({"app.kubernetes.io/component": "backup", "app.kubernetes.io/name": name});
    let cluster = env.deploy_cluster(ClusterSpec {
        ns: NS.into(),
        name: name.into(),
        snapshot: snapshot(1000),
        bytes_per_sec: 100_000,
        extra: vec![
            backup_cronjob(&cronjob, &labels, true),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": format!("backup-metrics-{name}"), "namespace": NS},
                   "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "bm-rbac"}},
                            "template": {"metadata": {"labels": {"app": "bm-rbac"}},
                                         "spec": {"containers": [{"name": "m", "image": busybox(),
                                                                  "imagePullPolicy": "Never"}]}}}}),
        ],
    });
    // Something to be kept from: a Pod and a Secret in another namespace.
    env.apply(&[
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "foreign", "namespace": NS_OTHER},
               "stringData": {"password": "foreign-pw"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim", "namespace": NS_OTHER},
               "spec": {"terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": busybox(), "imagePullPolicy": "Never",
                                        "command": ["sleep", "3600"]}]}}),
    ])
    .ok();
    let (k, token) = env.kubectl_as(NS, JOB_SA);
    let client = env.client_with_token("restore-job-rbac", &token);
    // Merge patches as the Job sends them (kube-rs, no read first).
    let patch =
        |group: &str, version: &str, kind: &str, plural: &str, object: &str, body: Value| {
            let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
            let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
                client.clone(),
                NS,
                &kube::api::ApiResource::from_gvk_with_plural(&gvk, plural),
            );
            let result = env.rt.block_on(api.patch(
                object,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&body),
            ));
            if let Err(e) = result {
                panic!("the restore Job's token must be allowed to patch {plural}/{object}: {e}");
            }
        };
    patch(
        "cloud.crate.io",
        "v1",
        "CrateDB",
        "cratedbs",
        name,
        json!({"metadata": {"annotations": {"e2e/rbac-probe": "1"}}}),
    );
    patch(
        "batch",
        "v1beta1",
        "CronJob",
        "cronjobs",
        &cronjob,
        json!({"metadata": {"annotations": {"restore.cloud.crate.io/suspended-by": "rbac-probe"}},
               "spec": {"suspend": true}}),
    );
    patch(
        "batch",
        "v1beta1",
        "CronJob",
        "cronjobs",
        &cronjob,
        json!({"metadata": {"annotations": {"restore.cloud.crate.io/suspended-by": null}},
               "spec": {"suspend": false}}),
    );
    patch(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        &format!("backup-metrics-{name}"),
        json!({"spec": {"replicas": 0}}),
    );
    patch(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        &format!("crate-data-hot-{name}"),
        json!({"metadata": {"labels": {"dc-util-routing-owner": "e2e"}}}),
    );
    // `-n` first: for exec, everything after `--` is the command.
    let n = ["-n", NS];
    let with_ns = |args: &[&str]| -> Vec<String> {
        n.iter().chain(args.iter()).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        k.run(&refs)
    };
    let sts = format!("crate-data-hot-{name}");
    let allowed: Vec<Vec<String>> = vec![
        // The CrateDB resource: read (patched above).
        with_ns(&["get", "cratedb", name, "-o", "name"]),
        // The cluster's Secrets: read; the restore Secret: delete.
        with_ns(&[
            "get",
            "secret",
            &format!("user-system-{name}"),
            "-o",
            "name",
        ]),
        with_ns(&["get", "secret", &cluster.restore_secret(), "-o", "name"]),
        with_ns(&["delete", "secret", &cluster.restore_secret()]),
        // The CrateDB pod (crash in it: below).
        with_ns(&["get", "pod", &cluster.pod, "-o", "name"]),
        // Its own namespace object (terminating check).
        vec![
            "get".into(),
            "namespace".into(),
            NS.into(),
            "-o".into(),
            "name".into(),
        ],
        // Backup CronJob (batch/v1beta1 on 1.20): list (suspended above).
        with_ns(&[
            "get",
            "cronjobs.v1beta1.batch",
            "-l",
            "app.kubernetes.io/component=backup",
        ]),
        // Backup Jobs: list.
        with_ns(&["get", "jobs", "-l", "app.kubernetes.io/component=backup"]),
        // backup-metrics / grand-central Deployments; StatefulSets (patched above).
        with_ns(&["get", "deployments"]),
        with_ns(&[
            "get",
            "deployment",
            &format!("backup-metrics-{name}"),
            "-o",
            "name",
        ]),
        with_ns(&["get", "statefulsets", "-l", "app.kubernetes.io/name=rbac"]),
        // Grand Central's Ingresses: list.
        with_ns(&["get", "ingresses.networking.k8s.io"]),
    ];
    for args in allowed {
        let r = run(args);
        assert!(
            r.status.success(),
            "the restore Job's token must be allowed:\n{}",
            r.describe()
        );
    }
    // pods/exec of crash in the CrateDB pod, as the Job's superuser path does.
    let exec = run(with_ns(&[
        "exec",
        &cluster.pod,
        "-c",
        "crate",
        "--",
        "crash",
        "--verify-ssl=false",
        "--host=http://localhost:4200",
        "-c",
        "SELECT name FROM sys.cluster",
    ]));
    assert!(
        exec.status.success() && exec.stdout.contains(&format!("cluster-{name}")),
        "{}",
        exec.describe()
    );
    // Events: created through events.k8s.io/v1, as the Job's recorder does.
    let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "rbac-probe.e2e", "namespace": NS},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "cratedb-restore-job",
        "reportingInstance": "e2e", "action": "Probe", "reason": "Probe", "type": "Normal",
        "note": "rbac probe",
        "regarding": {"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB", "name": name, "namespace": NS}});
    let r = k.run_stdin(&["create", "-f", "-"], &event.to_string());
    assert!(
        r.status.success(),
        "events.k8s.io create:\n{}",
        r.describe()
    );

    let forbidden: Vec<Vec<String>> = vec![
        // Secrets of another namespace; listing Secrets at all.
        vec![
            "get".into(),
            "secret".into(),
            "foreign".into(),
            "-n".into(),
            NS_OTHER.into(),
        ],
        with_ns(&["get", "secrets"]),
        // Pod exec in another namespace.
        vec![
            "exec".into(),
            "victim".into(),
            "-n".into(),
            NS_OTHER.into(),
            "--".into(),
            "true".into(),
        ],
        // Deleting CrateDB resources; CrateDB resources of another namespace.
        with_ns(&["delete", "cratedb", name]),
        vec![
            "get".into(),
            "cratedbs".into(),
            "-n".into(),
            NS_OTHER.into(),
        ],
        // Pods, Jobs, Deployments: no create/delete.
        with_ns(&["delete", "pod", &cluster.pod]),
        with_ns(&["create", "job", "intruder", "--image", &busybox()]),
        with_ns(&["delete", "deployment", &format!("backup-metrics-{name}")]),
        with_ns(&["delete", "statefulset", &sts]),
        // Nothing cluster-wide.
        vec!["get".into(), "namespaces".into()],
        vec!["get".into(), "nodes".into()],
    ];
    for args in forbidden {
        let r = run(args);
        assert!(
            !r.status.success()
                && (r.stderr.contains("Forbidden") || r.stderr.contains("forbidden")),
            "the restore Job's token must be forbidden:\n{}",
            r.describe()
        );
    }
    // What the forbidden calls would have touched is still there.
    assert!(env.try_get("cratedb", NS, name).is_some());
    assert!(env.try_get("pod", NS, &cluster.pod).is_some());
}

// --- 6 -----------------------------------------------------------------------------------------

/// A real backup CronJob (batch/v1beta1 on 1.20) is suspended while the restore runs and
/// resumed after it; a running backup Job's Pod delays the restore (no RESTORE is sent) until
/// it ends.
fn backups_are_suspended_and_a_running_backup_delays_the_restore(env: &NodeEnv) {
    let name = "backup";
    let cronjob = format!("create-snapshot-{name}");
    let backup_job = format!("create-snapshot-{name}-manual");
    let labels = json!({"app.kubernetes.io/component": "backup", "app.kubernetes.io/name": name});
    let cluster = env.deploy_cluster(ClusterSpec {
        ns: NS.into(),
        name: name.into(),
        snapshot: snapshot(500_000),
        bytes_per_sec: 100_000,
        extra: vec![
            backup_cronjob(&cronjob, &labels, false),
            // A backup in progress: runs until the test touches /tmp/done in it.
            json!({"apiVersion": "batch/v1", "kind": "Job",
                   "metadata": {"name": backup_job, "namespace": NS, "labels": labels},
                   "spec": {"backoffLimit": 0, "template": {
                       "metadata": {"labels": labels},
                       "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                "containers": [{"name": "backup", "image": busybox(),
                                                "imagePullPolicy": "Never",
                                                "command": ["sh", "-c", "until [ -e /tmp/done ]; do sleep 0.2; done"]}]}}}}),
        ],
    });
    let backup_pod = wait_until("the backup Job's Pod runs", POD_START, || {
        let pods = env.list("pods", NS, &format!("job-name={backup_job}"));
        pods.into_iter()
            .find(|p| p["status"]["phase"] == "Running")
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
    });
    wait_until("the backup Job is active", Duration::from_secs(30), || {
        (env.get("job", NS, &backup_job)["status"]["active"] == 1).then_some(())
    });

    let req = request_restore(env, &cluster);
    let waiting =
        format!("A snapshot k8s job is currently running, waiting for it to finish: {backup_job}");
    wait_until("the restore waits for the backup Job", RESTORE_RUN, || {
        let cr = env.get("cratedb", NS, name);
        (cr["status"]["restore"]["message"] == waiting.as_str()).then_some(())
    });
    // It keeps waiting over at least one more poll, sending no RESTORE.
    wait_until(
        "the Job logs the wait twice (two polls)",
        Duration::from_secs(60),
        || {
            let lines = try_job_log_lines(env, &format!("job/{}", req.job))?;
            (lines
                .iter()
                .filter(|l| l["message"] == waiting.as_str())
                .count()
                >= 2)
                .then_some(())
        },
    );
    let cr = env.get("cratedb", NS, name);
    assert_eq!(
        cr["status"]["restore"]["steps"]["before_cluster_update"]["state"], "Running",
        "{:#}",
        cr["status"]
    );
    assert!(
        with_prefix(&env.statements(&cluster), "RESTORE SNAPSHOT").is_empty(),
        "no RESTORE while a backup runs"
    );
    // The CronJob is suspended by this run.
    let cj = env.get("cronjobs.v1beta1.batch", NS, &cronjob);
    assert_eq!(cj["spec"]["suspend"], true, "{cj:#}");
    assert_eq!(
        cj["metadata"]["annotations"]["restore.cloud.crate.io/suspended-by"],
        req.run_id.as_str()
    );

    // The backup ends; the restore goes on.
    env.kubectl
        .run(&["exec", "-n", NS, &backup_pod, "--", "touch", "/tmp/done"])
        .ok();
    let done = wait_until("the backup Job completes", Duration::from_secs(60), || {
        let j = env.get("job", NS, &backup_job);
        j["status"]["completionTime"].as_str().map(str::to_string)
    });
    let cr = assert_run_succeeded(env, &cluster, &req);
    let status = &cr["status"]["restore"];
    let proceeded: k8s_openapi::jiff::Timestamp =
        status["steps"]["before_cluster_update"]["finishedAt"]
            .as_str()
            .expect("finishedAt")
            .parse()
            .unwrap();
    let done: k8s_openapi::jiff::Timestamp = done.parse().unwrap();
    assert!(
        proceeded >= done,
        "the restore went on ({proceeded}) only after the backup ended ({done})"
    );
    assert!(
        status["steps"]["before_cluster_update"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("CronJob {cronjob} suspended")),
        "{status:#}"
    );
    // Resumed after: not suspended, the marker gone.
    let cj = env.get("cronjobs.v1beta1.batch", NS, &cronjob);
    assert_eq!(cj["spec"]["suspend"], false, "{cj:#}");
    assert!(
        cj["metadata"]["annotations"]
            .get("restore.cloud.crate.io/suspended-by")
            .is_none(),
        "{cj:#}"
    );
}
