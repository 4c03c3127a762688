//! Restore Jobs as Pods on the e2e suite's real single-node Kubernetes 1.20 (tests/e2e/node):
//! `kubectl apply` → `Succeeded` for a restore the simulator finishes in 5 s, Job Pod start →
//! first status write, and the peak memory of the webhook and Job containers from their cgroups
//! (cgroup v1 `memory.max_usage_in_bytes` under the kubelet's `kubepods` hierarchy).
//!
//! `cargo bench --bench node` (root; brings a node up and down, ~4 minutes; N=3 restores per
//! setting). First with the chart's defaults (the Job polls a running restore every 15 s), then
//! after `helm upgrade` with `CRATEDB_RESTORE_POLL_INTERVAL=1` in `restoreJob.extraEnv`.
//! `cargo test` runs it without `--bench`: it then only says how to run it (the `node` e2e test
//! runs the same harness).

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../tests/e2e/node/mod.rs"]
#[allow(dead_code)]
mod node;

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams},
};
use node::{ClusterSpec, NS, NodeEnv, RELEASE_NS, WEBHOOK_SELECTOR, scenarios, snapshot};
use serde_json::json;

#[derive(Default, Debug)]
struct Sample {
    /// kubectl apply started → container process seen in its cgroup.
    start: Option<Duration>,
    /// → status.restore first written by the Job (phase Running).
    first_write: Option<Duration>,
    /// → status.restore.phase Succeeded.
    succeeded: Option<Duration>,
    /// → Job condition Complete.
    complete: Option<Duration>,
    /// memory.max_usage_in_bytes of the Job container (last read before it ended).
    peak: u64,
    /// Largest `rss` of memory.stat seen.
    rss: u64,
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_rss(dir: &Path) -> Option<u64> {
    let text = fs::read_to_string(dir.join("memory.stat")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("rss "))
        .and_then(|v| v.trim().parse().ok())
}

/// `/sys/fs/cgroup/memory/kubepods[/<qos>]/pod<uid>`.
fn pod_cgroup(uid: &str) -> Option<PathBuf> {
    let base = Path::new("/sys/fs/cgroup/memory/kubepods");
    ["burstable", "besteffort", ""]
        .iter()
        .map(|q| base.join(q).join(format!("pod{uid}")))
        .find(|p| p.is_dir())
}

/// The container cgroup below a pod's whose processes include one named `comm`.
fn container_with(pod: &Path, comm: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(pod).ok()?.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        if procs.lines().any(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        }) {
            return Some(dir);
        }
    }
    None
}

async fn observe(client: kube::Client, cluster: &str, job: &str, t0: Instant) -> Sample {
    let gvk = GroupVersionKind::gvk("cloud.crate.io", "v1", "CrateDB");
    let cratedbs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(&gvk, "cratedbs"),
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let jobs: Api<Job> = Api::namespaced(client, NS);
    let mut s = Sample::default();
    let mut container: Option<PathBuf> = None;
    let deadline = t0 + Duration::from_secs(240);
    loop {
        assert!(
            Instant::now() < deadline,
            "restore {job} did not finish: {s:?}"
        );
        if s.first_write.is_none() || s.succeeded.is_none() {
            let cr = cratedbs.get(cluster).await.expect("get cratedb");
            let phase = cr.data["status"]["restore"]["phase"]
                .as_str()
                .unwrap_or_default();
            if s.first_write.is_none() && phase != "Pending" && !phase.is_empty() {
                s.first_write = Some(t0.elapsed());
            }
            if phase == "Succeeded" {
                s.succeeded = Some(t0.elapsed());
            }
            assert_ne!(phase, "Failed", "{:#}", cr.data["status"]);
        }
        match &container {
            None if s.start.is_none() => {
                let list = pods
                    .list(&ListParams::default().labels(&format!("job-name={job}")))
                    .await
                    .expect("list pods");
                for pod in list.items {
                    let uid = pod.metadata.uid.unwrap_or_default();
                    if let Some(dir) =
                        pod_cgroup(&uid).and_then(|p| container_with(&p, "cratedb-restore"))
                    {
                        s.start = Some(t0.elapsed());
                        container = Some(dir);
                    }
                }
            }
            Some(dir) => match read_u64(&dir.join("memory.max_usage_in_bytes")) {
                Some(peak) => {
                    s.peak = s.peak.max(peak);
                    s.rss = s.rss.max(stat_rss(dir).unwrap_or(0));
                }
                None => container = None, // the container ended; its cgroup is gone
            },
            None => {}
        }
        if s.complete.is_none() {
            let j = jobs.get(job).await.expect("get job");
            let complete = j.status.and_then(|st| st.conditions).is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Complete" && c.status == "True")
            });
            if complete {
                s.complete = Some(t0.elapsed());
            }
        }
        if s.succeeded.is_some() && s.complete.is_some() && container.is_none() {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

fn run_restores(env: &NodeEnv, label: &str, first: usize, n: usize) -> Vec<Sample> {
    let mut samples = Vec::new();
    for i in first..first + n {
        let cluster = env.deploy_cluster(ClusterSpec {
            name: format!("bench-{i}"),
            ns: NS.into(),
            // 2 shards × 500 kB at 100 kB/s each: the simulator restores for 5 s.
            snapshot: snapshot(500_000),
            bytes_per_sec: 100_000,
            extra: vec![],
        });
        let t0 = Instant::now();
        let req = scenarios::request_restore(env, &cluster);
        let s = env
            .rt
            .block_on(observe(env.admin.clone(), &cluster.name, &req.job, t0));
        scenarios::assert_run_succeeded(env, &cluster, &req);
        println!(
            "{label} #{i}: apply→container start {}, →first status write {}, →Succeeded {}, →Job Complete {}; Job container peak {} (rss {})",
            ms(s.start),
            ms(s.first_write),
            ms(s.succeeded),
            ms(s.complete),
            mib(s.peak),
            mib(s.rss)
        );
        samples.push(s);
    }
    samples
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn summary(label: &str, samples: &[Sample]) {
    let col = |f: &dyn Fn(&Sample) -> Option<Duration>| {
        let v: Vec<f64> = samples
            .iter()
            .filter_map(f)
            .map(|d| d.as_secs_f64())
            .collect();
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = v.iter().cloned().fold(0.0, f64::max);
        format!("{:.2} s ({:.2}–{:.2})", median(v), min, max)
    };
    println!(
        "| {label} | {} | {} | {} | {} | {} |",
        col(&|s| s.succeeded),
        col(&|s| s.complete),
        col(&|s| s.start),
        // Both are polled every 20 ms: a write seen in the same poll as the start counts 0.
        col(&|s| Some(s.first_write?.saturating_sub(s.start?))),
        mib(samples.iter().map(|s| s.peak).max().unwrap_or(0)),
    );
}

fn webhook_memory(env: &NodeEnv) {
    let pods: Api<Pod> = Api::namespaced(env.admin.clone(), RELEASE_NS);
    let list = env
        .rt
        .block_on(pods.list(&ListParams::default().labels(WEBHOOK_SELECTOR)))
        .expect("webhook pods");
    for pod in list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let id = pod
            .status
            .and_then(|s| s.container_statuses)
            .and_then(|c| c.into_iter().next())
            .and_then(|c| c.container_id)
            .unwrap_or_default();
        let id = id.trim_start_matches("containerd://");
        let dir = pod_cgroup(&uid).map(|p| p.join(id));
        match dir.filter(|d| d.is_dir()) {
            Some(dir) => println!(
                "webhook pod {name}: peak {} (memory.max_usage_in_bytes), now {}, rss {}",
                mib(read_u64(&dir.join("memory.max_usage_in_bytes")).unwrap_or(0)),
                mib(read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0)),
                mib(stat_rss(&dir).unwrap_or(0))
            ),
            None => println!("webhook pod {name}: no cgroup found for container {id}"),
        }
    }
}

/// Server-side dry runs of a restore request through the API server and both webhook Pods.
fn webhook_load(env: &NodeEnv, n: usize) -> Duration {
    env.apply(&[
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "restore-from-backup-load", "namespace": NS},
               "stringData": {"access-key-id": "a", "secret-access-key": "s",
                              "bucket": "b", "base-path": "p"}}),
        node::cratedb("load", None),
    ])
    .ok();
    let gvk = GroupVersionKind::gvk("cloud.crate.io", "v1", "CrateDB");
    let api: Api<DynamicObject> = Api::namespaced_with(
        env.admin.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(&gvk, "cratedbs"),
    );
    let patch = json!({"spec": {"cluster": {"restoreSnapshot":
        node::restore_request("restore-from-backup-load", "snap-1")}}});
    let params = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let started = Instant::now();
    env.rt.block_on(async {
        for _ in 0..n {
            api.patch("load", &params, &Patch::Merge(&patch))
                .await
                .expect("dry-run patch");
        }
    });
    started.elapsed()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "node bench: not measuring without --bench; run `cargo bench --bench node` as root (brings a node up, ~4 minutes)"
        );
        return;
    }
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let started = Instant::now();
    let env = NodeEnv::start();
    let t = &env.timings;
    println!(
        "setup: release build {:.1} s, images {}, node-up {:.1} s, helm install {:.1} s (webhook answering after {:.1} s)",
        t.artifacts.build_time.as_secs_f64(),
        t.artifacts
            .image_time
            .map_or("up to date".into(), |d| format!("{:.1} s", d.as_secs_f64())),
        t.node_up.as_secs_f64(),
        t.helm_install.as_secs_f64(),
        t.webhook_ready.as_secs_f64()
    );
    let defaults = run_restores(&env, "chart defaults (poll 15 s)", 0, n);

    // The same with a 1 s poll interval (restoreJob.extraEnv): the webhook Pods roll, since the
    // Job template changes.
    let helm = std::process::Command::new(harness::helm())
        .args(["upgrade", node::RELEASE])
        .arg(harness::chart_dir())
        .args([
            "-n",
            RELEASE_NS,
            "--reuse-values",
            "--wait",
            "--timeout",
            "180s",
        ])
        .args([
            "--set",
            "restoreJob.extraEnv[0].name=CRATEDB_RESTORE_POLL_INTERVAL",
        ])
        .args(["--set-string", "restoreJob.extraEnv[0].value=1"])
        .env("KUBECONFIG", env.node.kubeconfig())
        .env("HELM_CACHE_HOME", env.node.dir.join("helm/cache"))
        .env("HELM_CONFIG_HOME", env.node.dir.join("helm/config"))
        .env("HELM_DATA_HOME", env.node.dir.join("helm/data"))
        .output()
        .expect("helm upgrade");
    assert!(
        helm.status.success(),
        "helm upgrade: {}",
        String::from_utf8_lossy(&helm.stderr)
    );
    env.kubectl
        .run(&[
            "rollout",
            "status",
            &format!("deployment/{}", node::WEBHOOK_DEPLOYMENT),
            "-n",
            RELEASE_NS,
            "--timeout=180s",
        ])
        .ok();
    let fast = run_restores(&env, "poll 1 s", n, n);

    let load = 300;
    let took = webhook_load(&env, load);
    println!(
        "webhook load: {load} server-side dry runs in {:.1} s ({:.1} ms each, sequential)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / load as f64
    );
    webhook_memory(&env);

    println!(
        "\n| setting | apply → Succeeded | apply → Job Complete | apply → Job container start | container start → first status write | Job container peak |\n|---|---|---|---|---|---|"
    );
    summary("chart defaults (poll 15 s)", &defaults);
    summary("CRATEDB_RESTORE_POLL_INTERVAL=1", &fast);
    if let Err(e) = env.teardown() {
        panic!("{e}");
    }
    println!("bench total {:.1} s", started.elapsed().as_secs_f64());
}
