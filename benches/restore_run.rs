//! A whole restore run, orchestration only: the real `job::run` against the CrateDB simulator
//! and an in-memory API server, with a RESTORE that completes at once. Prints the wall time, the
//! Kubernetes requests and SQL statements one run makes, the process's peak RSS, and how the
//! poll interval sets the time to Succeeded when the restore needs several polls.
//!
//! `cargo bench --bench restore_run`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::harness::*;
use cratedb_restore::job::error::ExitStatus;
use cratedb_sim::{ProgressMode, RestoreOutcome, SnapshotDef, TableDef};

fn snapshot() -> SnapshotDef {
    SnapshotDef::new(SNAPSHOT)
        .version("5.6.0")
        .table(
            TableDef::new("doc", "orders")
                .shards(4)
                .bytes_per_shard(1_000_000),
        )
        .table(
            TableDef::new("sales", "events")
                .shards(2)
                .bytes_per_shard(500_000),
        )
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn one_run(outcome: RestoreOutcome, poll: Duration) -> (Duration, usize, usize, Harness) {
    let h = Harness::start(
        sim_builder()
            .storage(s3().snapshot(snapshot()))
            .restore_outcome(SNAPSHOT, outcome)
            .progress(ProgressMode::PerObservation { percent_step: 25.0 }),
        Cluster::default(),
    )
    .await;
    let mut config = h.config.clone();
    config.poll_interval = poll;
    config.notifications = None;
    let started = Instant::now();
    let exit = cratedb_restore::job::run(config, h.client.clone()).await;
    let elapsed = started.elapsed();
    assert_eq!(exit, ExitStatus::Done, "{}", h.logs.text());
    let api = h.api_requests.load(std::sync::atomic::Ordering::Relaxed);
    let sql = h.statements().len();
    (elapsed, api, sql, h)
}

fn main() {
    // `cargo test` runs bench targets without --bench: then one run of each kind only.
    let measuring = std::env::args().any(|a| a == "--bench");
    let runs = if measuring { 20 } else { 2 };
    let polls: &[u64] = if measuring { &[10, 100, 500] } else { &[10] };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Warm-up, then 20 instant restores.
        let _ = one_run(RestoreOutcome::Instant, Duration::from_millis(1)).await;
        let mut times = Vec::new();
        let (mut api, mut sql) = (0, 0);
        for _ in 0..runs {
            let (t, a, s, _) = one_run(RestoreOutcome::Instant, Duration::from_millis(1)).await;
            times.push(t);
            (api, sql) = (a, s);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("full restore run, RESTORE completing at once ({runs} runs, simulator and API in process):");
        println!(
            "  wall time: median {:.1} ms, min {:.1} ms, max {:.1} ms",
            ms(times[runs / 2]),
            ms(times[0]),
            ms(times[runs - 1])
        );
        println!("  per run: {api} Kubernetes API requests, {sql} SQL statements (PostgreSQL wire + sidecar)");
        println!("  process peak RSS (job + simulator + in-memory API): {:.1} MiB", peak_rss_mib());

        println!("\npoll interval vs time to Succeeded (restore needs several polls: +25 % per observation):");
        println!("  {:>12} {:>14} {:>8}", "poll interval", "time to done", "polls");
        for &poll in polls {
            let (t, _, _, h) = one_run(RestoreOutcome::Succeed, Duration::from_millis(poll)).await;
            let polls = h.status().await["steps"]["await_restore"]["result"]["polls"].as_u64().unwrap_or(0);
            println!("  {:>10} ms {:>11.0} ms {:>8}", poll, ms(t), polls);
        }
    });
}
