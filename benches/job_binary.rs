//! The real `cratedb-restore-job` binary against the e2e suite's kube-apiserver 1.20.2 and the
//! CrateDB simulator: wall time of a whole run whose RESTORE completes at once, and the binary's
//! peak RSS (the rusage wait4 reports for it), over several runs.
//!
//! `cargo bench --bench job_binary` (run `tests/e2e/setup.sh` once)

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/rusage.rs"]
#[allow(dead_code)]
mod rusage;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const NS: &str = "bench";

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let runs = if measuring { 10 } else { 1 };
    let cluster = harness::Cluster::start();
    let kubectl = cluster.kubectl(Default::default());
    cluster.install_crd(&kubectl);
    kubectl
        .apply(&[json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})])
        .ok();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut times = Vec::new();
    let mut peak_rss_kib = 0;
    for i in 0..runs {
        let name = format!("c{i}");
        let run_id = format!("20261125000000-{i:06x}");
        let sim = rt.block_on(async {
            cratedb_sim::Simulator::builder()
                .user("system", "pw")
                .sidecar_token("tok")
                .storage(
                    cratedb_sim::Storage::s3("b", "p", "ak", "sk").snapshot(
                        cratedb_sim::SnapshotDef::new("s").version("5.6.0").table(
                            cratedb_sim::TableDef::new("doc", "t")
                                .shards(4)
                                .bytes_per_shard(1_000_000),
                        ),
                    ),
                )
                .restore_outcome("s", cratedb_sim::RestoreOutcome::Instant)
                .start()
                .await
                .unwrap()
        });
        let r = |k: &str| json!({"secretKeyRef": {"name": format!("restore-from-backup-{name}"), "key": k}});
        let objects: Vec<Value> = vec![
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("restore-from-backup-{name}"), "namespace": NS},
                   "stringData": {"a": "ak", "s": "sk", "b": "b", "p": "p"}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("user-system-{name}"), "namespace": NS},
                   "stringData": {"password": "pw"}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("crate-control-{name}"), "namespace": NS},
                   "stringData": {"token": "tok"}}),
            json!({"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
                   "metadata": {"name": name, "namespace": NS, "annotations": {"restore.cloud.crate.io/run-id": run_id}},
                   "spec": {"cluster": {"imageRegistry": "crate", "name": "c", "version": "5.10.3",
                                        "restoreSnapshot": {"snapshot": "s", "type": "all",
                                            "accessKeyId": r("a"), "secretAccessKey": r("s"), "bucket": r("b"), "basePath": r("p")}},
                            "nodes": {"data": [{"name": "hot", "replicas": 3}]}}}),
        ];
        kubectl.apply(&objects).ok();
        let started = Instant::now();
        let args: Vec<String> = ["--namespace", NS, "--name", &name, "--run-id", &run_id]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let child = harness::restore_job_command(
            &args,
            sim.pg_addr().port(),
            &sim.sidecar_url(),
            &cluster.kubeconfig,
            "0.01",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let (code, rss) = rusage::wait_with_rusage(child);
        times.push(started.elapsed());
        peak_rss_kib = peak_rss_kib.max(rss);
        assert_eq!(code, 0, "run {i}");
        rt.block_on(sim.shutdown());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "cratedb-restore-job binary, whole run against kube-apiserver 1.20.2 + the simulator ({runs} runs, RESTORE completing at once):"
    );
    println!(
        "  wall time (process start to exit): median {:.0} ms, min {:.0} ms, max {:.0} ms",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1])
    );
    println!(
        "  peak RSS of the job process (wait4 rusage, largest run): {:.1} MiB",
        peak_rss_kib as f64 / 1024.0
    );
    drop(cluster);
}
