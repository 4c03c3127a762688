//! The control plane and the chart's own lifecycle under running restores (project issue 17):
//! the API server stopped for 20 s, etcd restarted, kubelet and containerd restarted, the Job's
//! container SIGKILLed, a burst of 20 restores in four namespaces, `helm upgrade` and `helm
//! rollback` under `kubectl apply`s, `helm uninstall` while a restore runs, a Role that loses
//! the Secret permission, and kube-system left alone on Kubernetes 1.20.
//!
//! Every scenario asserts what a user sees (`status.restore`, Events, the Job's Pods and log)
//! and what CrateDB saw (the simulator's statement log: one `RESTORE`), and prints the figures
//! BENCHMARKS.md quotes. Node processes are stopped and started again only through
//! `scripts/node-ctl.sh`, by the PIDs node-up.sh recorded, and started again when a scenario
//! fails half-way ([`Stopped`]).

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use serde_json::{Value, json};

use super::{
    ClusterSpec, FLEET_NS, JOB_SA, NS, NodeEnv, POD_START, RELEASE, RELEASE_NS, RESTORE_RUN,
    SimCluster, Stream, WEBHOOK_DEPLOYMENT, WEBHOOK_SELECTOR, cratedb_in, http_get,
    scenarios::{Requested, assert_run_succeeded, job_log_lines, request_restore_of},
    wait_until,
};
use crate::harness::{Run, chart_dir};

type Scenario = fn(&NodeEnv);

/// Issue 17's scenarios, run after the others (`node::run`). The SIGKILL scenario's twin run is
/// the baseline of the disruption figures, so it comes before them; the uninstall removes the
/// chart, so it comes last.
pub const ALL: &[(&str, Scenario)] = &[
    (
        "kube_system_is_left_alone_by_the_webhooks_on_kubernetes_1_20",
        kube_system_is_left_alone_by_the_webhooks_on_kubernetes_1_20,
    ),
    (
        "a_role_without_the_secret_permission_makes_the_run_wait_not_fail",
        a_role_without_the_secret_permission_makes_the_run_wait_not_fail,
    ),
    (
        "the_jobs_container_sigkilled_and_the_next_pod_resumes",
        the_jobs_container_sigkilled_and_the_next_pod_resumes,
    ),
    (
        "the_api_server_stopped_for_20s_while_the_job_waits_on_a_restore",
        the_api_server_stopped_for_20s_while_the_job_waits_on_a_restore,
    ),
    (
        "etcd_restarted_while_the_job_waits_on_a_restore",
        etcd_restarted_while_the_job_waits_on_a_restore,
    ),
    (
        "kubelet_and_containerd_restarted_while_the_job_waits_on_a_restore",
        kubelet_and_containerd_restarted_while_the_job_waits_on_a_restore,
    ),
    (
        "twenty_restores_in_four_namespaces_at_once",
        twenty_restores_in_four_namespaces_at_once,
    ),
    (
        "helm_upgrade_and_rollback_while_a_restore_runs_answer_every_apply",
        helm_upgrade_and_rollback_while_a_restore_runs_answer_every_apply,
    ),
    (
        "helm_uninstall_waits_for_the_running_restore_and_leaves_no_webhook_behind",
        helm_uninstall_waits_for_the_running_restore_and_leaves_no_webhook_behind,
    ),
];

/// The disruption scenarios' restore: 2 shards × 500 kB at 25 kB/s each, 20 s in CrateDB. The
/// Job sees its end at the poll ~21.6 s into `await_restore` (polls a second apart, then a fifth
/// of the time waited) and writes it: the disruptions cover that write.
const DISRUPTED_BYTES: u64 = 500_000;
const DISRUPTED_RATE: u64 = 25_000;
/// The burst's restores: 5 s in CrateDB (as in BENCHMARKS.md's node bench).
const BURST_BYTES: u64 = 500_000;
const BURST_RATE: u64 = 100_000;

/// How long the disruption scenarios' restore takes undisturbed, start to end of the run
/// (measured by the twin run of the SIGKILL scenario).
static BASELINE: Mutex<Option<Duration>> = Mutex::new(None);

fn tables() -> Value {
    json!({"type": "tables", "tables": ["doc.orders"]})
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn parse_time(text: &str) -> SystemTime {
    let ts: k8s_openapi::jiff::Timestamp = text
        .parse()
        .unwrap_or_else(|e| panic!("not a timestamp ({e}): {text}"));
    SystemTime::from(ts)
}

/// The local instant of a wall-clock time of this machine.
fn instant_of(time: SystemTime) -> Instant {
    let (now_wall, now) = (SystemTime::now(), Instant::now());
    match now_wall.duration_since(time) {
        Ok(ago) => now.checked_sub(ago).unwrap_or(now),
        Err(ahead) => now + ahead.duration(),
    }
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// The CrateDB resource through the admin kube client (fast enough to time status writes to a
/// few milliseconds; `None` while the API server does not answer).
fn cratedb_now(env: &NodeEnv, cluster: &SimCluster) -> Option<Value> {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cloud.crate.io", "v1", "CrateDB"),
        "cratedbs",
    );
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(env.admin.clone(), &cluster.ns, &resource);
    let got = env.rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(3), api.get_opt(&cluster.name)).await
    });
    match got {
        Ok(Ok(Some(object))) => serde_json::to_value(object).ok(),
        _ => None,
    }
}

fn restore_status(env: &NodeEnv, cluster: &SimCluster) -> Value {
    env.get("cratedb", &cluster.ns, &cluster.name)["status"]["restore"].clone()
}

/// Waits until the run waits on CrateDB's running restore; the instant its `await_restore`
/// step started.
#[track_caller]
fn await_started(env: &NodeEnv, cluster: &SimCluster) -> Instant {
    let started = wait_until(
        &format!("{}/{}: await_restore runs", cluster.ns, cluster.name),
        RESTORE_RUN,
        || {
            let step = &restore_status(env, cluster)["steps"]["await_restore"];
            (step["state"] == "Running")
                .then(|| step["startedAt"].as_str().map(str::to_string))
                .flatten()
        },
    );
    instant_of(parse_time(&started))
}

/// startedAt → finishedAt of a finished run.
fn run_duration(cr: &Value) -> Duration {
    let status = &cr["status"]["restore"];
    let at = |key: &str| parse_time(status[key].as_str().unwrap_or_default());
    at("finishedAt")
        .duration_since(at("startedAt"))
        .unwrap_or_default()
}

/// Polls until `status.restore` differs from `before`: the run's next status write.
#[track_caller]
fn next_status_write(env: &NodeEnv, cluster: &SimCluster, before: &Value) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(cr) = cratedb_now(env, cluster)
            && cr["status"]["restore"] != *before
        {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "no status write by the run for 120 s after the disruption"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the API server is ready again (`/readyz`).
fn api_ready(env: &NodeEnv) -> Instant {
    wait_until("the API server is ready", Duration::from_secs(120), || {
        let run = env
            .kubectl
            .run(&["get", "--raw=/readyz", "--request-timeout=2s"]);
        (run.status.success() && run.stdout.trim() == "ok").then(Instant::now)
    })
}

fn delay_over_baseline(duration: Duration) -> String {
    match *BASELINE.lock().unwrap() {
        Some(base) => format!(
            "{:+.1} s against the undisturbed run ({})",
            duration.as_secs_f64() - base.as_secs_f64(),
            secs(base)
        ),
        None => "no baseline (the SIGKILL scenario's twin did not run)".into(),
    }
}

fn log_count(lines: &[Value], message: &str) -> usize {
    lines.iter().filter(|l| l["message"] == message).count()
}

/// The simulator StatefulSets of finished scenarios go (their Pods would only slow the
/// teardown and count against the node's Pod limit).
fn remove_clusters(env: &NodeEnv, clusters: &[&SimCluster]) {
    for c in clusters {
        let _ = env.kubectl.run(&[
            "delete",
            "statefulset",
            &format!("crate-data-hot-{}", c.name),
            "-n",
            &c.ns,
            "--wait=false",
        ]);
    }
}

/// Node processes a scenario stopped. [`Stopped::start`] starts them again in reverse order;
/// dropping it without (a failed scenario) does the same, so later scenarios find a whole node.
pub struct Stopped<'a> {
    env: &'a NodeEnv,
    names: Vec<&'static str>,
}

impl<'a> Stopped<'a> {
    #[track_caller]
    pub fn stop(env: &'a NodeEnv, names: &[&'static str]) -> Stopped<'a> {
        let mut stopped = Stopped {
            env,
            names: Vec::new(),
        };
        for name in names {
            env.node_ctl("stop", &[name]);
            stopped.names.push(name);
        }
        stopped
    }

    /// Starts the last stopped one; `then` runs once it is started (a readiness wait).
    #[track_caller]
    pub fn start_next(&mut self, then: impl FnOnce(&NodeEnv)) {
        let name = self.names.pop().expect("a stopped process");
        self.env.node_ctl("start", &[name]);
        then(self.env);
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        while let Some(name) = self.names.pop() {
            let env = self.env;
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                env.node_ctl("start", &[name])
            }))
            .is_err()
            {
                eprintln!("could not start {name} again after a failed scenario");
            }
        }
    }
}

/// The plugin's `status --watch` on a run, started before a disruption.
fn watch_run(env: &NodeEnv, cluster: &SimCluster) -> Stream {
    let kubeconfig = env.node.kubeconfig();
    let mut watch = Stream::plugin(
        &kubeconfig,
        &[
            "-n",
            &cluster.ns,
            "status",
            &cluster.name,
            "--watch",
            "--timeout",
            "10m",
        ],
    );
    let started = Instant::now();
    wait_until(
        "the plugin watches the run",
        Duration::from_secs(30),
        || (!watch.stderr_text().is_empty() || watch.ended()).then_some(()),
    );
    eprintln!(
        "  the plugin's watch printed after {}: {}",
        secs(started.elapsed()),
        watch.stderr_text().lines().next().unwrap_or_default()
    );
    watch
}

/// The watch saw the run end Succeeded (it resumed after the disruption).
#[track_caller]
fn assert_watch_saw_success(mut watch: Stream) {
    let code = wait_until(
        "the plugin's watch ends with the run",
        Duration::from_secs(60),
        || watch.exit_code(),
    );
    let (out, err) = (watch.text(), watch.stderr_text());
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("Succeeded"), "{out}");
}

/// A run that went on in its first Pod: one Pod, never restarted, one `restore run starting`.
#[track_caller]
fn assert_one_pod(env: &NodeEnv, req: &Requested) -> Vec<Value> {
    let pods = env.job_pods(&req.job);
    assert_eq!(pods.len(), 1, "the first Pod finished the run: {pods:#?}");
    assert_eq!(
        pods[0]["status"]["containerStatuses"][0]["restartCount"], 0,
        "{:#}",
        pods[0]["status"]
    );
    let lines = job_log_lines(env, &format!("job/{}", req.job));
    assert_eq!(log_count(&lines, "restore run starting"), 1);
    lines
}

/// When a control-plane process was down under a running restore, and when the API server and
/// the run answered again.
struct Outage {
    stopped_at: Instant,
    /// From the SIGTERM to the process's exit.
    exited: Duration,
    started_at: Instant,
    ready_at: Instant,
    /// The run's first status write after the outage.
    written_at: Instant,
}

/// Stops `process` at `at` (SIGTERM by its PID; down from then on: kube-apiserver stops
/// listening at once, its graceful exit then waits for open watches, up to node-ctl's SIGKILL
/// after 15 s), starts it again with the same flags `down_for` later, and waits for the API
/// server and for the run's next status write.
fn outage(
    env: &NodeEnv,
    cluster: &SimCluster,
    at: Instant,
    process: &'static str,
    down_for: Duration,
) -> Outage {
    sleep_until(at);
    let before = restore_status(env, cluster);
    let stopped_at = Instant::now();
    let mut down = Stopped::stop(env, &[process]);
    let exited = stopped_at.elapsed();
    sleep_until(stopped_at + down_for);
    let started_at = Instant::now();
    down.start_next(|_| {});
    let ready_at = api_ready(env);
    let written_at = next_status_write(env, cluster, &before);
    Outage {
        stopped_at,
        exited,
        started_at,
        ready_at,
        written_at,
    }
}

// --- the API server stopped for 20 s -----------------------------------------------------------

/// kube-apiserver stopped (SIGTERM by its PID) for 20 s and started again with the same flags
/// while the Job waits on a 20 s RESTORE. The outage (5 s to 25 s into `await_restore`, then the
/// API server's own start) covers the moment the Job writes the restore's end (~22 s): that
/// write fails, is retried, and lands once the API server is back; the run ends Succeeded in
/// its first Pod, and the plugin's watch resumes.
pub fn the_api_server_stopped_for_20s_while_the_job_waits_on_a_restore(env: &NodeEnv) {
    let cluster = env.deploy_cluster(ClusterSpec::new(
        "apiserver",
        DISRUPTED_BYTES,
        DISRUPTED_RATE,
    ));
    let req = request_restore_of(env, &cluster, &cluster.restore_manifest_with(tables()));
    let watch = watch_run(env, &cluster);
    let awaiting = await_started(env, &cluster);
    eprintln!(
        "  await_restore seen {} after it began",
        secs(awaiting.elapsed())
    );
    let Outage {
        stopped_at,
        exited,
        started_at,
        ready_at,
        written_at,
    } = outage(
        env,
        &cluster,
        awaiting + Duration::from_secs(5),
        "kube-apiserver",
        Duration::from_secs(20),
    );

    let cr = assert_run_succeeded(env, &cluster, &req);
    let lines = assert_one_pod(env, &req);
    let retried = log_count(&lines, "status write failed; retrying");
    assert!(
        retried >= 1,
        "the outage covered a status write, which failed and was retried:\n{lines:#?}"
    );
    assert_watch_saw_success(watch);
    let duration = run_duration(&cr);
    eprintln!(
        "  figures: API server down {} from its SIGTERM ({} after await_restore began; the process took {} to exit), ready {} after its start; the run's next status write {} after the API server was ready ({} after its start); {retried} failed status write(s) retried; run {} ({})",
        secs(started_at - stopped_at),
        secs(stopped_at - awaiting),
        secs(exited),
        secs(ready_at - started_at),
        secs(written_at.saturating_duration_since(ready_at)),
        secs(written_at - started_at),
        secs(duration),
        delay_over_baseline(duration)
    );
    remove_clusters(env, &[&cluster]);
}

// --- etcd restarted ------------------------------------------------------------------------------

/// etcd stopped for 10 s (covering the Job's write of the restore's end) and started again
/// with the same flags and data: the API server waits for it, the run goes on in its first Pod.
pub fn etcd_restarted_while_the_job_waits_on_a_restore(env: &NodeEnv) {
    let cluster = env.deploy_cluster(ClusterSpec::new("etcd", DISRUPTED_BYTES, DISRUPTED_RATE));
    let req = request_restore_of(env, &cluster, &cluster.restore_manifest_with(tables()));
    let watch = watch_run(env, &cluster);
    let awaiting = await_started(env, &cluster);
    let Outage {
        stopped_at,
        exited,
        started_at,
        ready_at,
        written_at,
    } = outage(
        env,
        &cluster,
        awaiting + Duration::from_secs(15),
        "etcd",
        Duration::from_secs(10),
    );

    let cr = assert_run_succeeded(env, &cluster, &req);
    let lines = assert_one_pod(env, &req);
    assert_watch_saw_success(watch);
    let duration = run_duration(&cr);
    eprintln!(
        "  figures: etcd down {} from its SIGTERM ({} after await_restore began; {} to exit), the API server ready {} after etcd's start; the run's next status write {} after that; {} failed status write(s) retried; run {} ({})",
        secs(started_at - stopped_at),
        secs(stopped_at - awaiting),
        secs(exited),
        secs(ready_at - started_at),
        secs(written_at.saturating_duration_since(ready_at)),
        log_count(&lines, "status write failed; retrying"),
        secs(duration),
        delay_over_baseline(duration)
    );
    remove_clusters(env, &[&cluster]);
}

// --- kubelet and containerd restarted ------------------------------------------------------------

fn container(pod: &Value) -> (String, String) {
    let status = &pod["status"]["containerStatuses"][0];
    (
        status["containerID"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        status["state"]["running"]["startedAt"]
            .as_str()
            .or(status["state"]["terminated"]["startedAt"].as_str())
            .unwrap_or_default()
            .to_string(),
    )
}

/// The kubelet and containerd stopped and started again (containerd first) while the Job waits
/// on a RESTORE: the containers (the Job's, the simulator's) keep running through it, the same
/// container IDs, no restart; the run ends Succeeded in its first Pod.
pub fn kubelet_and_containerd_restarted_while_the_job_waits_on_a_restore(env: &NodeEnv) {
    let cluster = env.deploy_cluster(ClusterSpec::new("kubelet", DISRUPTED_BYTES, DISRUPTED_RATE));
    let req = request_restore_of(env, &cluster, &cluster.restore_manifest_with(tables()));
    let awaiting = await_started(env, &cluster);
    let job_pod = env.job_pods(&req.job)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // As the kubelet reports them (its status lags the container's start a little).
    let running = |pod: &str| {
        wait_until(
            &format!("{pod}'s container reported running"),
            POD_START,
            || {
                let (id, started) = container(&env.get("pod", NS, pod));
                (!id.is_empty() && !started.is_empty()).then_some((id, started))
            },
        )
    };
    let before_job = running(&job_pod);
    let before_sim = running(&cluster.pod);
    sleep_until(awaiting + Duration::from_secs(5));
    let stopped_at = Instant::now();
    let mut down = Stopped::stop(env, &["kubelet", "containerd"]);
    let ctr = env.node.get("CTR").to_string();
    let socket = env.node.get("CONTAINERD_ADDRESS").to_string();
    down.start_next(|_| {
        wait_until("containerd serves again", Duration::from_secs(60), || {
            std::process::Command::new(&ctr)
                .args(["--address", &socket, "version"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| ())
        });
    });
    let node_ip = env.node.get("NODE_IP").to_string();
    down.start_next(|_| {
        wait_until("the kubelet is healthy", Duration::from_secs(60), || {
            http_get(&format!("{node_ip}:10248"), "/healthz")
                .ok()
                .filter(|b| b.trim() == "ok")
        });
    });
    let healthy_at = Instant::now();
    // The kubelet reports both Pods Ready again, with the containers it found running.
    for pod in [&job_pod, &cluster.pod] {
        env.wait_pod_ready(pod);
    }
    let ready_at = Instant::now();

    let cr = assert_run_succeeded(env, &cluster, &req);
    assert_one_pod(env, &req);
    let after_job = container(&env.get("pod", NS, &job_pod));
    let after_sim = container(&env.get("pod", NS, &cluster.pod));
    assert_eq!(after_job, before_job, "the Job's container ran on");
    assert_eq!(after_sim, before_sim, "CrateDB's container ran on");
    assert_eq!(
        env.get("pod", NS, &cluster.pod)["status"]["containerStatuses"][0]["restartCount"],
        0
    );
    let duration = run_duration(&cr);
    eprintln!(
        "  figures: kubelet and containerd down {} in all (stopped {} after await_restore began), Pods Ready again {} later; run {} ({})",
        secs(healthy_at - stopped_at),
        secs(stopped_at - awaiting),
        secs(ready_at - healthy_at),
        secs(duration),
        delay_over_baseline(duration)
    );
    remove_clusters(env, &[&cluster]);
}

// --- the Job's container SIGKILLed -------------------------------------------------------------

/// The PID (on this host) of a Pod's first container, from containerd's task list.
fn container_pid(env: &NodeEnv, pod: &Value) -> i32 {
    let id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|c| c.strip_prefix("containerd://"))
        .unwrap_or_else(|| panic!("no containerd container: {:#}", pod["status"]))
        .to_string();
    let out = std::process::Command::new(env.node.get("CTR"))
        .args([
            "--address",
            env.node.get("CONTAINERD_ADDRESS"),
            "--namespace",
            "k8s.io",
            "tasks",
            "ls",
        ])
        .output()
        .expect("ctr tasks ls");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let mut fields = l.split_whitespace();
            (fields.next() == Some(id.as_str()))
                .then(|| fields.next()?.parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("task {id} not in:\n{text}"))
}

/// SIGKILL of the Job container's process (as the OOM killer would) while CrateDB restores (a
/// 20 s RESTORE, killed 5 s in):
/// the Pod fails with 137, the Job controller's next Pod resumes the run (no step repeated, no
/// second RESTORE) and finishes it. A twin cluster restores the same snapshot at the same time,
/// undisturbed: its run is the other scenarios' baseline.
pub fn the_jobs_container_sigkilled_and_the_next_pod_resumes(env: &NodeEnv) {
    let mut clusters = env.deploy_clusters(vec![
        ClusterSpec::new("oom", DISRUPTED_BYTES, DISRUPTED_RATE),
        ClusterSpec::new("twin", DISRUPTED_BYTES, DISRUPTED_RATE),
    ]);
    let twin = clusters.pop().unwrap();
    let cluster = clusters.pop().unwrap();
    let req = request_restore_of(env, &cluster, &cluster.restore_manifest_with(tables()));
    let twin_req = request_restore_of(env, &twin, &twin.restore_manifest_with(tables()));
    let awaiting = await_started(env, &cluster);
    let steps_before = restore_status(env, &cluster)["steps"].clone();
    sleep_until(awaiting + Duration::from_secs(5));
    let pods = env.job_pods(&req.job);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    let first = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    let pid = container_pid(env, &pods[0]);
    // SAFETY: kill(2) of the container process containerd reports for this Pod.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill -9 {pid}");
    let killed_at = Instant::now();
    let terminated = wait_until(
        "the killed Pod is reported failed",
        Duration::from_secs(60),
        || {
            let pod = env.get("pod", NS, &first);
            let t = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
            t["exitCode"].as_i64().map(|_| t.clone())
        },
    );
    assert_eq!(terminated["exitCode"], 137, "SIGKILL: {terminated:#}");
    let second = wait_until("the Job's next Pod", POD_START, || {
        env.job_pods(&req.job)
            .into_iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .find(|n| *n != first)
    });
    let cr = assert_run_succeeded(env, &cluster, &req);
    let twin_cr = assert_run_succeeded(env, &twin, &twin_req);
    let job = env.get("job", NS, &req.job);
    assert_eq!(job["status"]["failed"], 1, "{:#}", job["status"]);
    let lines = job_log_lines(env, &format!("pod/{second}"));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "restore run starting" && l["resumed"] == true),
        "{lines:#?}"
    );
    let status = &cr["status"]["restore"];
    for step in [
        "preflight",
        "before_cluster_update",
        "before_restore_backup",
        "restore_backup_data",
    ] {
        assert_eq!(
            status["steps"][step]["attempts"], steps_before[step]["attempts"],
            "{step} not repeated by the second Pod: {status:#}"
        );
    }
    let second_started = parse_time(
        env.get("pod", NS, &second)["status"]["containerStatuses"][0]["state"]["terminated"]
            ["startedAt"]
            .as_str()
            .unwrap_or_default(),
    );
    let duration = run_duration(&cr);
    let baseline = run_duration(&twin_cr);
    *BASELINE.lock().unwrap() = Some(baseline);
    eprintln!(
        "  figures: killed {} after await_restore began; the next Pod's container started {} after the kill; run {} against {} for the undisturbed twin ({:+.1} s)",
        secs(killed_at - awaiting),
        secs(instant_of(second_started).saturating_duration_since(killed_at)),
        secs(duration),
        secs(baseline),
        duration.as_secs_f64() - baseline.as_secs_f64()
    );
    remove_clusters(env, &[&cluster, &twin]);
}

// --- admission figures -----------------------------------------------------------------------

/// `kubectl apply`s timed by the test: (start, end, the run).
type Timed = Vec<(Instant, Instant, Run)>;

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn latencies(mut all: Vec<Duration>) -> String {
    all.sort();
    format!(
        "kubectl apply round trip p50 {} p99 {} (max {}, {} applies)",
        ms(quantile(&all, 0.5)),
        ms(quantile(&all, 0.99)),
        ms(*all.last().unwrap_or(&Duration::ZERO)),
        all.len()
    )
}

/// The webhook Pods' review histograms: per endpoint, cumulative counts by upper bound.
fn review_histograms(env: &NodeEnv) -> BTreeMap<(String, String), f64> {
    let mut sums = BTreeMap::new();
    let pods = env.list("pods", RELEASE_NS, WEBHOOK_SELECTOR);
    for pod in pods {
        let Some(ip) = pod["status"]["podIP"].as_str() else {
            continue;
        };
        let Ok(text) = http_get(&format!("{ip}:8080"), "/metrics") else {
            continue;
        };
        for line in text.lines() {
            let Some(rest) =
                line.strip_prefix("cratedb_restore_webhook_review_duration_seconds_bucket{")
            else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let label = |key: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
                    .unwrap_or_default()
            };
            let count: f64 = value.trim().parse().unwrap_or(0.0);
            *sums.entry((label("endpoint"), label("le"))).or_insert(0.0) += count;
        }
    }
    sums
}

/// p50/p99 upper bounds of the reviews between two histogram readings, per endpoint.
fn review_quantiles(
    before: &BTreeMap<(String, String), f64>,
    after: &BTreeMap<(String, String), f64>,
) -> String {
    let mut out = Vec::new();
    for endpoint in ["mutate", "validate"] {
        let mut buckets: Vec<(f64, f64)> = after
            .iter()
            .filter(|((e, _), _)| e == endpoint)
            .map(|((_, le), n)| {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::INFINITY)
                };
                let base = before
                    .get(&(endpoint.to_string(), le.clone()))
                    .copied()
                    .unwrap_or(0.0);
                (bound, n - base)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last().map_or(0.0, |b| b.1);
        let bound = |q: f64| {
            buckets
                .iter()
                .find(|(_, n)| *n >= q * total)
                .map_or("-".to_string(), |(b, _)| format!("≤ {:.2} ms", b * 1000.0))
        };
        out.push(format!(
            "{endpoint}: {total} reviews, p50 {} p99 {}",
            bound(0.5),
            bound(0.99)
        ));
    }
    format!("webhook review time (its histogram) {}", out.join("; "))
}

// --- 20 restores at once ---------------------------------------------------------------------

/// One apply of the burst: (its cluster's index, start, end, wall-clock start, the run).
type BurstApply = (usize, Instant, Instant, SystemTime, Run);

/// 20 restores of 20 clusters in four namespaces, applied at the same moment: every apply is
/// answered (the plan and the Job), every run Succeeds with one RESTORE in its own cluster, the
/// runs overlap (nothing serializes them: each cluster has its own lock), and the figures go to
/// BENCHMARKS.md. A 21st cluster restores alone first: the baseline.
pub fn twenty_restores_in_four_namespaces_at_once(env: &NodeEnv) {
    let namespaces: Vec<&str> = std::iter::once(NS).chain(FLEET_NS).collect();
    let mut specs = vec![ClusterSpec::new("solo", BURST_BYTES, BURST_RATE)];
    for i in 0..20 {
        let ns = namespaces[i % 4];
        specs.push(
            ClusterSpec::new(&format!("burst-{i}"), BURST_BYTES, BURST_RATE).in_namespace(ns),
        );
    }
    let deploy_started = Instant::now();
    let mut clusters = env.deploy_clusters(specs);
    let deployed = deploy_started.elapsed();
    let solo = clusters.remove(0);
    let solo_req = request_restore_of(env, &solo, &solo.restore_manifest_with(tables()));
    let baseline = run_duration(&assert_run_succeeded(env, &solo, &solo_req));

    let before = review_histograms(env);
    let barrier = std::sync::Barrier::new(clusters.len());
    let applied: Mutex<Vec<BurstApply>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (i, cluster) in clusters.iter().enumerate() {
            let (barrier, applied) = (&barrier, &applied);
            s.spawn(move || {
                let manifest = cluster.restore_manifest_with(tables());
                barrier.wait();
                let (t0, wall) = (Instant::now(), SystemTime::now());
                let run = env.apply_one(&manifest);
                applied
                    .lock()
                    .unwrap()
                    .push((i, t0, Instant::now(), wall, run));
            });
        }
    });
    let after = review_histograms(env);
    let mut applied = applied.into_inner().unwrap();
    applied.sort_by_key(|a| a.0);
    let burst_end = applied.iter().map(|a| a.2).max().unwrap();
    let failed: Vec<String> = applied
        .iter()
        .filter(|a| !a.4.status.success())
        .map(|a| a.4.describe())
        .collect();
    assert!(
        failed.is_empty(),
        "applies not admitted:\n{}",
        failed.join("\n")
    );

    let mut runs = Vec::new();
    for (i, _, _, wall, run) in &applied {
        let cluster = &clusters[*i];
        let warnings = run.warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("planned: RESTORE SNAPSHOT")),
            "{}",
            run.describe()
        );
        let cr = env.get("cratedb", &cluster.ns, &cluster.name);
        let run_id = cr["metadata"]["annotations"]["restore.cloud.crate.io/run-id"]
            .as_str()
            .expect("run id")
            .to_string();
        let req = Requested {
            job: format!("restore-{}-{run_id}", cluster.name),
            run_id,
        };
        runs.push((cluster, req, *wall));
    }
    let asserting = Instant::now();
    let mut starts = Vec::new();
    let mut first_writes = Vec::new();
    let mut delays = Vec::new();
    let mut intervals = Vec::new();
    for (cluster, req, wall) in &runs {
        let cr = assert_run_succeeded(env, cluster, req);
        let status = &cr["status"]["restore"];
        let started = parse_time(status["startedAt"].as_str().unwrap());
        let finished = parse_time(status["finishedAt"].as_str().unwrap());
        intervals.push((started, finished));
        first_writes.push(instant_of(started).saturating_duration_since(burst_end));
        delays.push(run_duration(&cr).saturating_sub(baseline));
        let pod = env.job_pods_in(&cluster.ns, &req.job).remove(0);
        let container_started = parse_time(
            pod["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"]
                .as_str()
                .unwrap(),
        );
        starts.push(container_started.duration_since(*wall).unwrap_or_default());
    }
    eprintln!(
        "  (the 20 runs ended and were checked {} after the burst)",
        secs(asserting.elapsed())
    );
    // The runs overlapped: at the busiest moment most of them were running together.
    let busiest = intervals
        .iter()
        .map(|(s, _)| intervals.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap();
    assert!(
        busiest >= 10,
        "at most {busiest} of 20 runs ran at the same time: something serializes them"
    );
    for v in [&mut starts, &mut first_writes, &mut delays] {
        v.sort();
    }
    eprintln!(
        "  figures: 21 simulator Pods deployed in {}; the solo run {}; burst of 20 applies: {}; {}; Job container start after its apply: p50 {} max {} (spread {}); first status write after the burst's last answer: p50 {} max {}; run delay against the solo run: p50 {} max {}; at most {busiest} runs at once",
        secs(deployed),
        secs(baseline),
        latencies(applied.iter().map(|a| a.2 - a.1).collect()),
        review_quantiles(&before, &after),
        secs(quantile(&starts, 0.5)),
        secs(*starts.last().unwrap()),
        secs(*starts.last().unwrap() - starts[0]),
        secs(quantile(&first_writes, 0.5)),
        secs(*first_writes.last().unwrap()),
        secs(quantile(&delays, 0.5)),
        secs(*delays.last().unwrap()),
    );
    let all: Vec<&SimCluster> = std::iter::once(&solo).chain(clusters.iter()).collect();
    remove_clusters(env, &all);
}

// --- helm upgrade and helm rollback under applies ----------------------------------------------

/// What one rollout with applies gave: (start, end, run) per apply, and the rollout's window.
struct UnderApplies {
    results: Timed,
    started: Instant,
    ended: Instant,
    /// What each old webhook Pod logged from its SIGTERM to its exit: (Pod, endpoint gone after
    /// ms, drained before the grace period ran out, SIGTERM to its last line).
    shutdowns: Vec<(String, Option<u64>, bool, Duration)>,
}

impl UnderApplies {
    fn during(&self) -> usize {
        self.results
            .iter()
            .filter(|(t0, _, _)| *t0 >= self.started && *t0 <= self.ended)
            .count()
    }

    fn failures(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|(_, _, r)| !r.status.success())
            .map(|(_, _, r)| r.describe())
            .collect()
    }
}

fn webhook_pod_names(env: &NodeEnv) -> Vec<String> {
    env.list("pods", RELEASE_NS, WEBHOOK_SELECTOR)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `change` (a helm command) and waits for the webhook rollout it causes (the old Pods
/// gone), while workers `kubectl apply` for real: the restore requests of `requests` (the
/// 10th and 20th apply) and otherwise label edits of the `bystanders` CrateDB resources, until
/// the rollout is over and at least 50 applies started during it (three workers: two did ~52
/// in a 26 s rollout on 2 cores).
fn rollout_under_applies(
    env: &NodeEnv,
    requests: [&SimCluster; 2],
    bystanders: &[String],
    change: impl FnOnce(),
) -> UnderApplies {
    const MIN_DURING: usize = 50;
    let old = webhook_pod_names(env);
    // Each old Pod's log to its end: how it shut down.
    let kubeconfig = env.node.kubeconfig();
    let old_logs: Vec<(String, Stream)> = old
        .iter()
        .map(|pod| {
            let stream = Stream::start(&kubeconfig, &["logs", "-f", "-n", RELEASE_NS, pod]);
            (pod.clone(), stream)
        })
        .collect();
    let results: Mutex<Timed> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let window: Mutex<Option<(Instant, Instant)>> = Mutex::new(None);
    let during =
        |results: &Timed, from: Instant| results.iter().filter(|(t0, _, _)| *t0 >= from).count();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let manifest = match n {
                        10 => requests[0].restore_manifest_with(tables()),
                        20 => requests[1].restore_manifest_with(tables()),
                        _ => {
                            let mut object =
                                cratedb_in(NS, &bystanders[n % bystanders.len()], None);
                            object["metadata"]["labels"] = json!({"e2e/edit": n.to_string()});
                            object
                        }
                    };
                    let t0 = Instant::now();
                    let run = env.apply_one(&manifest);
                    results.lock().unwrap().push((t0, Instant::now(), run));
                }
            });
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let started = Instant::now();
            change();
            env.wait_webhook_rollout();
            wait_until(
                "the old webhook Pods are gone",
                Duration::from_secs(120),
                || {
                    let now = webhook_pod_names(env);
                    (!now.iter().any(|p| old.contains(p))).then_some(())
                },
            );
            let ended = Instant::now();
            *window.lock().unwrap() = Some((started, ended));
            // Enough applies inside the rollout (they go on a little after it otherwise).
            wait_until(
                "50 applies during the rollout",
                Duration::from_secs(120),
                || (during(&results.lock().unwrap(), started) >= MIN_DURING).then_some(()),
            );
        }));
        done.store(true, Ordering::SeqCst);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
    let (started, ended) = window.into_inner().unwrap().unwrap();
    let shutdowns = old_logs
        .into_iter()
        .map(|(pod, mut stream)| {
            // The stream ends with the container.
            wait_until(
                &format!("the log of {pod} ends"),
                Duration::from_secs(60),
                || stream.ended().then_some(()),
            );
            let lines: Vec<Value> = stream
                .stop()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let gone = lines
                .iter()
                .find(|l| {
                    l["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("this Pod's endpoint is gone"))
                })
                .and_then(|l| l["after_ms"].as_u64());
            let drained = lines
                .iter()
                .any(|l| l["message"] == "all connections drained");
            let at = |l: &Value| l["timestamp"].as_str().map(parse_time);
            let term = lines
                .iter()
                .find(|l| {
                    l["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("shutdown requested"))
                })
                .and_then(at);
            let last = lines.last().and_then(at);
            let took = match (term, last) {
                (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
                _ => Duration::ZERO,
            };
            (pod, gone, drained, took)
        })
        .collect();
    let under = UnderApplies {
        results: results.into_inner().unwrap(),
        started,
        ended,
        shutdowns,
    };
    for (pod, gone, drained, _) in &under.shutdowns {
        assert!(
            gone.is_some() && *drained,
            "{pod} served until its endpoint was gone ({gone:?} ms) and closed every connection itself (drained: {drained})"
        );
    }
    assert!(
        under.during() >= MIN_DURING,
        "{} applies started during the rollout",
        under.during()
    );
    under
}

/// The Job template settings a run got: (label e2e-settings, backoffLimit). (Not
/// ttlSecondsAfterFinished: Kubernetes 1.20 drops it, its TTLAfterFinished gate is alpha.)
fn job_settings(env: &NodeEnv, job: &str) -> (Option<String>, i64) {
    let j = env.get("job", NS, job);
    let label = j["metadata"]["labels"]["e2e-settings"]
        .as_str()
        .map(str::to_string);
    assert_eq!(
        j["spec"]["template"]["metadata"]["labels"]["e2e-settings"].as_str(),
        label.as_deref(),
        "the Pod template has the Job's labels"
    );
    (label, j["spec"]["backoffLimit"].as_i64().unwrap())
}

/// `helm upgrade --reuse-values` with changed restore Job settings, then `helm rollback`, while
/// an 80 s restore runs; during each webhook rollout 50+ real `kubectl apply`s (two restore
/// requests for other clusters, otherwise label edits of CrateDB resources) are all answered
/// (no `failed calling webhook`, no `broken pipe`). The running Job keeps its Pod and settings;
/// a restore requested after the upgrade gets the new settings, one after the rollback the old.
pub fn helm_upgrade_and_rollback_while_a_restore_runs_answer_every_apply(env: &NodeEnv) {
    let mut clusters = env.deploy_clusters(vec![
        // 80 s: through both rollouts and the two requests after them.
        ClusterSpec::new("lifecycle", 2_000_000, DISRUPTED_RATE),
        ClusterSpec::new("during-up-1", BURST_BYTES, BURST_RATE),
        ClusterSpec::new("during-up-2", BURST_BYTES, BURST_RATE),
        ClusterSpec::new("during-back-1", BURST_BYTES, BURST_RATE),
        ClusterSpec::new("during-back-2", BURST_BYTES, BURST_RATE),
        ClusterSpec::new("after-upgrade", BURST_BYTES, BURST_RATE),
        ClusterSpec::new("after-rollback", BURST_BYTES, BURST_RATE),
    ]);
    let after_rollback = clusters.pop().unwrap();
    let after_upgrade = clusters.pop().unwrap();
    let bystanders: Vec<String> = (1..=3).map(|i| format!("bystander-{i}")).collect();
    env.apply(
        &bystanders
            .iter()
            .map(|b| cratedb_in(NS, b, None))
            .collect::<Vec<_>>(),
    )
    .ok();
    let running = &clusters[0];
    let req = request_restore_of(env, running, &running.restore_manifest_with(tables()));
    await_started(env, running);
    let job_before = env.get("job", NS, &req.job);
    let pod_before = env.job_pods(&req.job).remove(0);
    assert_eq!(job_settings(env, &req.job), (None, 2));

    let chart = chart_dir().display().to_string();
    let upgrade = rollout_under_applies(env, [&clusters[1], &clusters[2]], &bystanders, || {
        env.helm(&[
            "upgrade",
            RELEASE,
            &chart,
            "-n",
            RELEASE_NS,
            "--reuse-values",
            "--set",
            "restoreJob.labels.e2e-settings=upgraded",
            "--set",
            "restoreJob.backoffLimit=4",
        ])
        .ok();
    });
    let failures = upgrade.failures();
    assert!(
        failures.is_empty(),
        "{} of {} applies failed during the upgrade:\n{}",
        failures.len(),
        upgrade.results.len(),
        failures.join("\n\n")
    );
    let next = request_restore_of(
        env,
        &after_upgrade,
        &after_upgrade.restore_manifest_with(tables()),
    );
    assert_eq!(
        job_settings(env, &next.job),
        (Some("upgraded".into()), 4),
        "the next restore gets the upgraded settings"
    );

    let rollback = rollout_under_applies(env, [&clusters[3], &clusters[4]], &bystanders, || {
        env.helm(&["rollback", RELEASE, "-n", RELEASE_NS]).ok();
    });
    let failures = rollback.failures();
    assert!(
        failures.is_empty(),
        "{} of {} applies failed during the rollback:\n{}",
        failures.len(),
        rollback.results.len(),
        failures.join("\n\n")
    );
    let back = request_restore_of(
        env,
        &after_rollback,
        &after_rollback.restore_manifest_with(tables()),
    );
    assert_eq!(
        job_settings(env, &back.job),
        (None, 2),
        "after the rollback a restore gets the first settings again"
    );
    let status = env.helm(&["status", RELEASE, "-n", RELEASE_NS]).ok();
    assert!(
        status.stdout.contains("REVISION: 3") && status.stdout.contains("STATUS: deployed"),
        "{}",
        status.describe()
    );

    // The restore that ran through both rollouts: still running in its first Pod, with the
    // settings it started with.
    assert_eq!(restore_status(env, running)["phase"], "Running");
    let job_after = env.get("job", NS, &req.job);
    assert_eq!(
        job_after["metadata"]["labels"],
        job_before["metadata"]["labels"]
    );
    assert_eq!(job_after["spec"], job_before["spec"]);
    let pods = env.job_pods(&req.job);
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["metadata"]["uid"], pod_before["metadata"]["uid"]);
    assert_eq!(pods[0]["status"]["containerStatuses"][0]["restartCount"], 0);

    assert_run_succeeded(env, running, &req);
    for cluster in &clusters[1..] {
        let cr = env.get("cratedb", NS, &cluster.name);
        let run_id = cr["metadata"]["annotations"]["restore.cloud.crate.io/run-id"]
            .as_str()
            .unwrap_or_else(|| panic!("{} was requested during a rollout: {cr:#}", cluster.name))
            .to_string();
        let during = Requested {
            job: format!("restore-{}-{run_id}", cluster.name),
            run_id,
        };
        assert_run_succeeded(env, cluster, &during);
    }
    assert_run_succeeded(env, &after_upgrade, &next);
    assert_run_succeeded(env, &after_rollback, &back);
    for (what, under) in [("upgrade", &upgrade), ("rollback", &rollback)] {
        eprintln!(
            "  figures: helm {what}: rollout {} (helm command to old Pods gone), {} applies during it, {} in all, errors {}; {}; old Pods: endpoint gone {:?} ms after SIGTERM, all connections drained, SIGTERM to exit {:?}",
            secs(under.ended - under.started),
            under.during(),
            under.results.len(),
            under.failures().len(),
            latencies(under.results.iter().map(|(a, b, _)| *b - *a).collect()),
            under
                .shutdowns
                .iter()
                .map(|s| s.1.unwrap_or_default())
                .collect::<Vec<_>>(),
            under
                .shutdowns
                .iter()
                .map(|s| secs(s.3))
                .collect::<Vec<_>>()
        );
    }
    let all: Vec<&SimCluster> = clusters
        .iter()
        .chain([&after_upgrade, &after_rollback])
        .collect();
    remove_clusters(env, &all);
}

// --- a Role without the Secret permission --------------------------------------------------------

/// The restore Job's Role, put back when dropped.
struct RoleEdit<'a> {
    env: &'a NodeEnv,
    original: Value,
    restored: bool,
}

impl RoleEdit<'_> {
    fn replace(env: &NodeEnv, role: &Value) {
        let mut object = role.clone();
        for key in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
        ] {
            object["metadata"].as_object_mut().unwrap().remove(key);
        }
        env.kubectl
            .run_stdin(&["replace", "-f", "-"], &object.to_string())
            .ok();
    }

    fn restore(&mut self) {
        Self::replace(self.env, &self.original);
        self.restored = true;
    }
}

impl Drop for RoleEdit<'_> {
    fn drop(&mut self) {
        if !self.restored {
            let (env, original) = (self.env, self.original.clone());
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Self::replace(env, &original)
            }));
        }
    }
}

/// The restore Job's Role loses `get secrets` (edited by hand) before a restore starts: the
/// run does not fail; it waits, its status naming the missing permission, and goes on once
/// the Role has it again. No failure Event, one RESTORE, Succeeded.
pub fn a_role_without_the_secret_permission_makes_the_run_wait_not_fail(env: &NodeEnv) {
    let cluster = env.deploy_cluster(ClusterSpec::new("permission", BURST_BYTES, BURST_RATE));
    let original = env.get("role", NS, JOB_SA);
    let mut edit = RoleEdit {
        env,
        original: original.clone(),
        restored: false,
    };
    let mut cut = original.clone();
    let rules: Vec<Value> = original["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            !r["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("secrets"))
        })
        .cloned()
        .collect();
    cut["rules"] = Value::Array(rules);
    RoleEdit::replace(env, &cut);

    let req = request_restore_of(env, &cluster, &cluster.restore_manifest_with(tables()));
    let waiting = wait_until(
        "the run waits, naming the missing permission",
        Duration::from_secs(90),
        || {
            let status = restore_status(env, &cluster);
            let message = status["message"].as_str()?;
            (message.contains("permission missing")
                && message.contains(r#"cannot get resource "secrets""#))
            .then_some(status)
        },
    );
    assert_eq!(waiting["phase"], "Running", "{waiting:#}");
    let message = waiting["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(&format!("user-system-{}", cluster.name))
            && message.contains(&format!("system:serviceaccount:{NS}:{JOB_SA}")),
        "names the Secret and who may not read it: {message}"
    );
    assert!(
        waiting["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "Waiting"),
        "{waiting:#}"
    );
    assert!(
        !env.events_of(&cluster.name)
            .iter()
            .any(|(r, _)| r == "RestoreFailed"),
        "no failure while the permission is missing"
    );
    edit.restore();
    let repaired = Instant::now();
    // The run's first step starts once the Secret can be read.
    let resumed = wait_until(
        "the run goes on once the Role is repaired",
        Duration::from_secs(60),
        || {
            cratedb_now(env, &cluster)
                .filter(|cr| cr["status"]["restore"]["steps"]["preflight"].is_object())
                .map(|_| Instant::now())
        },
    );
    assert_run_succeeded(env, &cluster, &req);
    let lines = assert_one_pod(env, &req);
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "waiting for a Secret the run needs"
                && l["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("permission missing"))),
        "{lines:#?}"
    );
    eprintln!(
        "  figures: the run's first step began {} after the Role was repaired",
        secs(resumed - repaired)
    );
    remove_clusters(env, &[&cluster]);
}

// --- kube-system on 1.20 -------------------------------------------------------------------------

/// Reviews the webhook Pods answered so far (all endpoints and outcomes).
fn reviews_answered(env: &NodeEnv) -> f64 {
    env.list("pods", RELEASE_NS, WEBHOOK_SELECTOR)
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .map(|ip| {
            let text = http_get(&format!("{ip}:8080"), "/metrics")
                .unwrap_or_else(|e| panic!("metrics of {ip}: {e}"));
            text.lines()
                .filter(|l| l.starts_with("cratedb_restore_webhook_reviews_total{"))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum()
}

/// Kubernetes 1.20, which the chart accepts, does not label namespaces with their name: the
/// webhook has labelled kube-system (and nothing else) itself, so the API server does not call
/// the webhooks for a CrateDB resource there, not even for a restore request.
pub fn kube_system_is_left_alone_by_the_webhooks_on_kubernetes_1_20(env: &NodeEnv) {
    let version = env.kubectl.get_json(&["version"]);
    assert_eq!(
        version["serverVersion"]["minor"], "20",
        "this scenario is about 1.20: {version:#}"
    );
    wait_until(
        "the webhook labels kube-system with its name",
        Duration::from_secs(60),
        || {
            let ns = env.kubectl.get_json(&["get", "namespace", "kube-system"]);
            (ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "kube-system").then_some(())
        },
    );
    let dbs = env.kubectl.get_json(&["get", "namespace", NS]);
    assert!(
        dbs["metadata"]["labels"]
            .get("kubernetes.io/metadata.name")
            .is_none(),
        "only the excluded namespaces are labelled: {dbs:#}"
    );
    let before = reviews_answered(env);
    let name = "system-db";
    let request = super::restore_request(&format!("restore-from-backup-{name}"), "snap-1");
    let created = env
        .apply_one(&cratedb_in("kube-system", name, Some(request.clone())))
        .ok();
    assert!(created.warnings().is_empty(), "{}", created.describe());
    let mut edited = cratedb_in("kube-system", name, Some(request));
    edited["metadata"]["labels"] = json!({"e2e/edit": "1"});
    env.apply_one(&edited).ok();
    let after = reviews_answered(env);
    assert_eq!(
        before, after,
        "the API server called the webhooks for kube-system"
    );
    let stored = env.get("cratedb", "kube-system", name);
    assert!(
        stored["metadata"]["annotations"]
            .get("restore.cloud.crate.io/run-id")
            .is_none()
            && stored.get("status").is_none(),
        "{stored:#}"
    );
    assert!(env.list("jobs", "kube-system", "").is_empty());
    env.kubectl
        .run(&["delete", "cratedb", name, "-n", "kube-system"])
        .ok();
}

// --- helm uninstall -------------------------------------------------------------------------------

/// `helm uninstall` while a restore runs is refused by the chart's pre-delete hook, naming the
/// restore, and deletes nothing; the restore finishes. The uninstall then goes through: no
/// webhook configuration is left that could block a CrateDB update, and the operator's own
/// edits of a CrateDB resource go through. (Last scenario: it removes the chart.)
pub fn helm_uninstall_waits_for_the_running_restore_and_leaves_no_webhook_behind(env: &NodeEnv) {
    let cluster = env.deploy_cluster(ClusterSpec::new("uninstall", 500_000, DISRUPTED_RATE));
    let operated = "operated";
    env.apply(&[cratedb_in(NS, operated, None)]).ok();
    let req = request_restore_of(env, &cluster, &cluster.restore_manifest_with(tables()));
    await_started(env, &cluster);

    let revision = |env: &NodeEnv| {
        let status = env
            .helm(&["status", RELEASE, "-n", RELEASE_NS, "-o", "json"])
            .ok()
            .json();
        (
            status["version"].as_i64().unwrap(),
            status["info"]["status"].as_str().unwrap().to_string(),
        )
    };
    let (deployed, _) = revision(env);
    let refused = env.helm(&["uninstall", RELEASE, "-n", RELEASE_NS]).fails();
    let expected = format!(
        "CrateDB {NS}/{} (run {}, Job {})",
        cluster.name, req.run_id, req.job
    );
    assert!(
        refused.stderr.contains(
            "admission webhook \"uninstall-guard.restore.cloud.crate.io\" denied the request"
        ) && refused.stderr.contains(&expected)
            && refused.stderr.contains("--no-hooks"),
        "{}",
        refused.describe()
    );
    // Nothing was deleted: the webhook, the Job's identity; the run goes on. Helm itself marks
    // the release `uninstalling` before it runs pre-delete hooks and leaves it so when one fails
    // (helm/helm#9700); `helm rollback <release> <revision>` marks it deployed again, with the
    // same manifests (nothing rolls).
    assert_eq!(revision(env), (deployed, "uninstalling".to_string()));
    let pods_before = webhook_pod_names(env);
    env.helm(&["rollback", RELEASE, &deployed.to_string(), "-n", RELEASE_NS])
        .ok();
    assert_eq!(revision(env), (deployed + 1, "deployed".to_string()));
    assert_eq!(webhook_pod_names(env), pods_before, "nothing rolled");
    for (kind, ns, name) in [
        ("deployment", RELEASE_NS, WEBHOOK_DEPLOYMENT),
        ("serviceaccount", NS, JOB_SA),
        ("role", NS, JOB_SA),
        ("rolebinding", NS, JOB_SA),
    ] {
        assert!(
            env.try_get(kind, ns, name).is_some(),
            "{kind} {ns}/{name} kept"
        );
    }
    assert!(
        env.try_get(
            "configmap",
            RELEASE_NS,
            "e2e-cratedb-restore-uninstall-guard"
        )
        .is_none(),
        "the refused hook left nothing behind"
    );
    let edit = |n: &str| {
        env.kubectl.run(&[
            "patch",
            "cratedb",
            operated,
            "-n",
            NS,
            "--type=merge",
            "--field-manager=crate-operator",
            "-p",
            &json!({"metadata": {"annotations": {"operator.cloud.crate.io/last": n}},
                    "spec": {"nodes": {"data": [{"name": "hot", "replicas": 2}]}}})
            .to_string(),
        ])
    };
    edit("1").ok();
    assert_run_succeeded(env, &cluster, &req);

    let t = Instant::now();
    env.helm(&["uninstall", RELEASE, "-n", RELEASE_NS]).ok();
    let took = t.elapsed();
    for kind in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        let list = env.kubectl.get_json(&["get", kind]);
        let ours: Vec<&Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["webhooks"].as_array().is_some_and(|w| {
                    w.iter().any(|w| {
                        w["name"]
                            .as_str()
                            .is_some_and(|n| n.ends_with("restore.cloud.crate.io"))
                    })
                })
            })
            .collect();
        assert!(
            ours.is_empty(),
            "{kind} left after the uninstall: {ours:#?}"
        );
    }
    // The operator's own edits go through at once, spec and status alike.
    let edited = Instant::now();
    edit("2").ok();
    env.kubectl
        .run(&[
            "patch",
            "cratedb",
            operated,
            "-n",
            NS,
            "--type=merge",
            "--field-manager=crate-operator",
            "-p",
            r#"{"status": {"crateDBStatus": {"health": "GREEN"}}}"#,
        ])
        .ok();
    let after_edit = edited.elapsed();
    assert!(env.try_get("serviceaccount", NS, JOB_SA).is_none());
    eprintln!(
        "  figures: the refused uninstall named the run; helm uninstall afterwards {}; the operator's edits right after it {}",
        secs(took),
        ms(after_edit)
    );
    remove_clusters(env, &[&cluster]);
}
