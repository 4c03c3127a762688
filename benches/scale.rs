//! What a restore run costs as the restore grows (SPEC A28): the release `cratedb-restore-job`
//! against the e2e suite's kube-apiserver 1.20.2 and the CrateDB simulator, for 10, 100, 1,000
//! and 10,000 tables (4 primary shards each, every 10th partitioned into 3 partitions), as
//! `type: all` and as `type: tables` naming every table, and for 100 tables × 365 daily
//! partitions. Per case: the largest `.status` seen, the largest status write, rows and time per
//! progress poll, the Job's peak RSS, its Kubernetes API requests, its log size, and its
//! overhead beyond the restore (wall time less the simulator's own time and the poll waits).
//!
//! `cargo bench --bench scale` (run `tests/e2e/setup.sh` once). Without `--bench` (as `cargo
//! test` runs it) only the smallest and one larger case run, to check that it works.

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/rusage.rs"]
#[allow(dead_code)]
mod rusage;

use std::{
    io::Read,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use cratedb_restore::resource::CrateDB;
use cratedb_sim::{PartitionDef, SnapshotDef, TableDef};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use serde_json::{Value, json};

const NS: &str = "scale";
const POLL: &str = "0.05";

#[derive(Clone, Copy)]
struct Case {
    tables: usize,
    partitions_per_table: usize,
    every_nth_partitioned: usize,
    name_tables: bool,
}

impl Case {
    fn label(&self) -> String {
        if self.partitions_per_table > 3 {
            format!(
                "{} tables × {} partitions, type all",
                self.tables, self.partitions_per_table
            )
        } else if self.name_tables {
            format!("{} tables, type tables", count(self.tables))
        } else {
            format!("{} tables, type all", count(self.tables))
        }
    }

    fn names(&self) -> Vec<(String, String)> {
        (0..self.tables)
            .map(|i| (format!("s{}", i % 10), format!("table_{i:05}")))
            .collect()
    }

    fn snapshot(&self) -> SnapshotDef {
        let mut snap = SnapshotDef::new("snap").version("5.6.0");
        for (i, (schema, name)) in self.names().into_iter().enumerate() {
            let table = TableDef::new(schema, name).shards(4).bytes_per_shard(1_000);
            snap = if i % self.every_nth_partitioned == 0 {
                let mut table = table.partitioned_by(["day"]);
                for day in 0..self.partitions_per_table {
                    table = table.partition(PartitionDef::new(
                        "day",
                        json!(1_704_067_200_000_i64 + day as i64 * 86_400_000),
                    ));
                }
                snap.partitioned_table(table)
            } else {
                snap.table(table)
            };
        }
        snap
    }
}

fn count(n: usize) -> String {
    cratedb_restore::bounded::count(n)
}

struct Measured {
    label: String,
    status_bytes: usize,
    largest_write: u64,
    poll_rows: i64,
    poll_ms: f64,
    rss_mib: f64,
    api_requests: u64,
    log_bytes: usize,
    overhead_s: f64,
    sim_s: f64,
    wall_s: f64,
}

fn field(log: &str, name: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("run ended"))?;
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

async fn run_case(
    case: Case,
    index: usize,
    cluster: &harness::Cluster,
    client: &kube::Client,
) -> Measured {
    let name = format!("c{index}");
    let run_id = format!("20261207000000-{index:06x}");
    let sim = cratedb_sim::Simulator::builder()
        .user("system", "pw")
        .sidecar_token("tok")
        .storage(cratedb_sim::Storage::s3("b", "p", "ak", "sk").snapshot(case.snapshot()))
        .progress(cratedb_sim::ProgressMode::PerObservation { percent_step: 34.0 })
        .start()
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    for (secret, data) in [
        (
            format!("restore-from-backup-{name}"),
            json!({"a": "ak", "s": "sk", "b": "b", "p": "p"}),
        ),
        (format!("user-system-{name}"), json!({"password": "pw"})),
        (format!("crate-control-{name}"), json!({"token": "tok"})),
    ] {
        let object: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret, "namespace": NS}, "stringData": data}))
        .unwrap();
        secrets
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    let r = |k: &str| json!({"secretKeyRef": {"name": format!("restore-from-backup-{name}"), "key": k}});
    let mut request = json!({"snapshot": "snap", "type": "all",
        "accessKeyId": r("a"), "secretAccessKey": r("s"), "bucket": r("b"), "basePath": r("p")});
    if case.name_tables {
        request["type"] = json!("tables");
        request["tables"] = json!(
            case.names()
                .iter()
                .map(|(s, t)| format!("{s}.{t}"))
                .collect::<Vec<_>>()
        );
    }
    let cratedbs: Api<CrateDB> = Api::namespaced(client.clone(), NS);
    let cr: CrateDB = serde_json::from_value(json!({"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
        "metadata": {"name": name, "namespace": NS, "annotations": {"restore.cloud.crate.io/run-id": run_id}},
        "spec": {"cluster": {"imageRegistry": "crate", "name": "c", "version": "5.10.3", "restoreSnapshot": request},
                 "nodes": {"data": [{"name": "hot", "replicas": 3}]}}}))
    .unwrap();
    cratedbs.create(&PostParams::default(), &cr).await.unwrap();

    // The largest `.status` while the run goes on, sampled.
    let largest = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (largest, done, api, name) = (
            largest.clone(),
            done.clone(),
            cratedbs.clone(),
            name.clone(),
        );
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(cr) = api.get(&name).await {
                    let bytes = serde_json::to_vec(&cr.status).map(|v| v.len()).unwrap_or(0);
                    largest.fetch_max(bytes, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let log = tempfile::NamedTempFile::new().unwrap();
    let args: Vec<String> = ["--namespace", NS, "--name", &name, "--run-id", &run_id]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let busy_before = sim.busy_time();
    let started = Instant::now();
    let child = harness::restore_job_command(
        &args,
        sim.pg_addr().port(),
        &sim.sidecar_url(),
        &cluster.kubeconfig,
        POLL,
    )
    .env("CRATEDB_RESTORE_FIRST_POLL_INTERVAL", POLL)
    .stdout(log.reopen().unwrap())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let (code, rss_kib) = tokio::task::spawn_blocking(move || rusage::wait_with_peak(child))
        .await
        .unwrap();
    let wall = started.elapsed();
    let sim_time = sim.busy_time() - busy_before;
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let final_cr = cratedbs.get(&name).await.unwrap();
    let status_bytes = serde_json::to_vec(&final_cr.status).unwrap().len();
    largest.fetch_max(status_bytes, Ordering::Relaxed);
    let mut text = String::new();
    log.reopen().unwrap().read_to_string(&mut text).unwrap();
    // SCALE_LOGS=<dir> keeps each run's log there.
    if let Ok(dir) = std::env::var("SCALE_LOGS") {
        std::fs::write(format!("{dir}/{name}.log"), &text).ok();
    }
    assert_eq!(
        code,
        0,
        "{}: the run failed:\n{}",
        case.label(),
        &text[text.len().saturating_sub(3000)..]
    );
    let phase = final_cr
        .restore_status()
        .and_then(|s| s.phase)
        .map(|p| p.to_string());
    assert_eq!(phase.as_deref(), Some("Succeeded"), "{}", case.label());

    // The progress polls, as CrateDB (the simulator) answered them.
    let polls: Vec<_> = sim
        .statements()
        .into_iter()
        .filter(|s| s.sql.starts_with("SELECT count(*), count(*) FILTER"))
        .collect();
    let poll_rows = polls
        .iter()
        .map(|p| match p.outcome {
            cratedb_sim::StatementOutcome::Ok { rowcount } => rowcount,
            _ => -1,
        })
        .max()
        .unwrap_or(-1);
    // Time of one progress poll over the PostgreSQL wire, the way the Job sends it.
    let poll_ms = match polls.first() {
        Some(poll) => time_poll(&sim, &poll.sql, &poll.params).await,
        None => f64::NAN,
    };
    // The waits between polls are the restore's, not the Job's.
    let waits = polls.len().saturating_sub(1) as f64 * POLL.parse::<f64>().unwrap();
    let measured = Measured {
        label: case.label(),
        status_bytes: largest.load(Ordering::Relaxed),
        largest_write: field(&text, "largest_status_write").unwrap_or(0),
        poll_rows,
        poll_ms,
        rss_mib: rss_kib as f64 / 1024.0,
        api_requests: field(&text, "api_requests").unwrap_or(0),
        log_bytes: text.len(),
        overhead_s: (wall.as_secs_f64() - sim_time.as_secs_f64() - waits).max(0.0),
        sim_s: sim_time.as_secs_f64(),
        wall_s: wall.as_secs_f64(),
    };
    sim.shutdown().await;
    cratedbs
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    measured
}

/// The mean time of a progress poll, sent as the Job sends it (prepared, text-array parameters).
async fn time_poll(sim: &cratedb_sim::SimulatorHandle, sql: &str, params: &[Value]) -> f64 {
    let (client, conn) = tokio_postgres::connect(
        &sim.pg_connection_string("system", "pw"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let arrays: Vec<Vec<String>> = params
        .iter()
        .map(|p| {
            p.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let types = vec![tokio_postgres::types::Type::TEXT_ARRAY; arrays.len()];
    let statement = client.prepare_typed(sql, &types).await.unwrap();
    let values: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = arrays
        .iter()
        .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let rounds = 5;
    let started = Instant::now();
    for _ in 0..rounds {
        client.query(&statement, &values).await.unwrap();
    }
    started.elapsed().as_secs_f64() * 1000.0 / rounds as f64
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let tables_cases = |tables: usize, name_tables: bool| Case {
        tables,
        partitions_per_table: 3,
        every_nth_partitioned: 10,
        name_tables,
    };
    let mut cases: Vec<Case> = Vec::new();
    let sizes: &[usize] = if measuring {
        &[10, 100, 1_000, 10_000]
    } else {
        &[10, 1_000]
    };
    for &name_tables in &[false, true] {
        for &n in sizes {
            cases.push(tables_cases(n, name_tables));
        }
    }
    if measuring {
        cases.push(Case {
            tables: 100,
            partitions_per_table: 365,
            every_nth_partitioned: 1,
            name_tables: false,
        });
    }
    // SCALE_ONLY=<part of a case's label> runs only those cases (to look at one closely).
    if let Ok(only) = std::env::var("SCALE_ONLY") {
        cases.retain(|c| c.label().contains(&only));
    }

    cratedb_restore::install_crypto_provider();
    let cluster = harness::Cluster::start();
    let kubectl = cluster.kubectl(Default::default());
    cluster.install_crd(&kubectl);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results: Vec<Measured> = rt.block_on(async {
        let client = harness::client_from(&cluster.kubeconfig).await;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        )
        .unwrap();
        namespaces.create(&PostParams::default(), &ns).await.ok();
        let mut results = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            let m = run_case(*case, i, &cluster, &client).await;
            eprintln!(
                "{}: {:.1} s wall, status {}, {} API requests",
                m.label,
                m.wall_s,
                kib(m.status_bytes),
                m.api_requests
            );
            results.push(m);
        }
        results
    });

    println!(
        "cratedb-restore-job (release) against kube-apiserver 1.20.2 and the simulator; 4 primary shards per table, every 10th table partitioned into 3 partitions; polls every {POLL} s:"
    );
    println!(
        "| case | largest .status | largest status write | rows per progress poll | time per poll | Job peak RSS | API requests | Job log | overhead beyond the restore | simulator's time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for m in &results {
        println!(
            "| {} | {} | {} B | {} | {:.1} ms | {:.1} MiB | {} | {} | {:.2} s | {:.2} s |",
            m.label,
            kib(m.status_bytes),
            m.largest_write,
            m.poll_rows,
            m.poll_ms,
            m.rss_mib,
            m.api_requests,
            kib(m.log_bytes),
            m.overhead_s,
            m.sim_s
        );
    }
    for name_tables in [false, true] {
        let series: Vec<&Measured> = results
            .iter()
            .zip(&cases)
            .filter(|(_, c)| c.name_tables == name_tables && c.partitions_per_table == 3)
            .map(|(m, _)| m)
            .collect();
        if let (Some(first), Some(last)) = (series.first(), series.last()) {
            println!(
                "growth {} → {} ({}): .status ×{:.2}, largest write ×{:.2}, rows per poll ×{:.2}, RSS ×{:.2}, API requests ×{:.2}, log ×{:.2}, overhead ×{:.2}",
                first.label,
                last.label,
                if name_tables {
                    "type tables"
                } else {
                    "type all"
                },
                last.status_bytes as f64 / first.status_bytes as f64,
                last.largest_write as f64 / first.largest_write.max(1) as f64,
                last.poll_rows as f64 / first.poll_rows.max(1) as f64,
                last.rss_mib / first.rss_mib,
                last.api_requests as f64 / first.api_requests.max(1) as f64,
                last.log_bytes as f64 / first.log_bytes as f64,
                last.overhead_s / first.overhead_s.max(0.001)
            );
        }
    }
    drop(cluster);
}
