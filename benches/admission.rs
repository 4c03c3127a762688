//! CPU per admission review, in process (no network): criterion's estimates, then p50/p99 of
//! single reviews from an HDR histogram. The validating reviews use an in-memory API server
//! (kube-fake-client), so they include the cost of the Secret, Job and Lease reads.
//!
//! `cargo bench --bench admission`

use std::{hint::black_box, time::Instant};

use cratedb_restore::admission::{Admission, Endpoint};
use criterion::{Criterion, criterion_group};
use hdrhistogram::Histogram;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use serde_json::{Value, json};

const RUN_ID: &str = "20261125082542-3fa9c1";

fn refs() -> Value {
    let r = |k: &str| json!({"secretKeyRef": {"name": "restore", "key": k}});
    json!({"accessKeyId": r("a"), "secretAccessKey": r("b"), "bucket": r("c"), "basePath": r("d")})
}

fn review(restore_snapshot: Value, dry_run: bool) -> Vec<u8> {
    let obj = |rs: Value, run: Option<&str>| {
        let mut o = json!({"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
            "metadata": {"name": "c1", "namespace": "dbs", "uid": "u-1"},
            "spec": {"cluster": {"imageRegistry": "crate", "name": "c", "version": "5.10.3", "restoreSnapshot": rs},
                     "nodes": {"data": [{"name": "hot", "replicas": 3}]}}});
        if let Some(run) = run {
            o["metadata"]["annotations"] = json!({"restore.cloud.crate.io/run-id": run});
        }
        o
    };
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "bench", "kind": {"group": "cloud.crate.io", "version": "v1", "kind": "CrateDB"},
            "resource": {"group": "cloud.crate.io", "version": "v1", "resource": "cratedbs"},
            "name": "c1", "namespace": "dbs", "operation": "UPDATE", "userInfo": {"username": "bench"},
            "object": obj(restore_snapshot, Some(RUN_ID)), "oldObject": obj(json!({"snapshot": ""}), None),
            "dryRun": dry_run}
    }))
    .unwrap()
}

fn typical() -> Value {
    let mut rs = refs();
    rs["snapshot"] = json!("snap-2024");
    rs["type"] = json!("tables");
    rs["tables"] = json!(["doc.orders", "sales.events"]);
    rs
}

fn large() -> Value {
    let mut rs = refs();
    rs["snapshot"] = json!("snap-2024");
    rs["type"] = json!("partitions");
    rs["tables"] = json!(
        (0..500)
            .map(|i| format!("doc.table_{i}"))
            .collect::<Vec<_>>()
    );
    rs["partitions"] = json!((0..200)
        .map(|i| json!({"table_ident": format!("doc.parted_{}", i % 20),
                        "columns": [{"name": "day", "value": format!("'2024-01-{:02}'", i % 28 + 1)},
                                    {"name": "region", "value": format!("{i}")}]}))
        .collect::<Vec<_>>());
    rs
}

fn reset() -> Value {
    let mut rs = refs();
    rs["snapshot"] = json!("");
    rs
}

fn admission(rt: &tokio::runtime::Runtime) -> Admission {
    let mut secret = Secret::default();
    secret.metadata.name = Some("restore".into());
    secret.metadata.namespace = Some("dbs".into());
    secret.data = Some(
        ["a", "b", "c", "d"]
            .iter()
            .map(|k| (k.to_string(), ByteString(b"value".to_vec())))
            .collect(),
    );
    let client = rt
        .block_on(
            kube_fake_client::ClientBuilder::new()
                .with_object(secret)
                .build(),
        )
        .unwrap();
    Admission {
        client,
        jobs: Default::default(),
        default_deadline_seconds: 88_200,
        review_budget: cratedb_restore::admission::DEFAULT_REVIEW_BUDGET,
        runner: Default::default(),
    }
}

fn cases() -> Vec<(&'static str, Endpoint, Vec<u8>)> {
    vec![
        ("mutate/typical", Endpoint::Mutate, review(typical(), false)),
        ("mutate/large", Endpoint::Mutate, review(large(), false)),
        (
            "validate/typical (dry-run)",
            Endpoint::Validate,
            review(typical(), true),
        ),
        (
            "validate/large (dry-run)",
            Endpoint::Validate,
            review(large(), true),
        ),
        (
            "validate/reset (no restore)",
            Endpoint::Validate,
            review(reset(), false),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admission = admission(&rt);
    for (name, endpoint, body) in cases() {
        c.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(admission.review(endpoint, black_box(&body)))
                    .unwrap()
            })
        });
    }
}

/// p50/p99/p99.9 of single reviews, which criterion's estimates do not show.
fn percentiles(iterations: u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admission = admission(&rt);
    println!("\nper-review latency, {iterations} reviews each (in process, one core):");
    println!(
        "{:<30} {:>10} {:>10} {:>10} {:>8}",
        "case", "p50 µs", "p99 µs", "p99.9 µs", "body KiB"
    );
    for (name, endpoint, body) in cases() {
        let mut hist = Histogram::<u64>::new(3).unwrap();
        for _ in 0..iterations / 10 {
            rt.block_on(admission.review(endpoint, &body)).unwrap();
        }
        for _ in 0..iterations {
            let started = Instant::now();
            rt.block_on(admission.review(endpoint, black_box(&body)))
                .unwrap();
            hist.record(started.elapsed().as_nanos() as u64).unwrap();
        }
        let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{name:<30} {:>10.1} {:>10.1} {:>10.1} {:>8.1}",
            us(0.5),
            us(0.99),
            us(0.999),
            body.len() as f64 / 1024.0
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    // `cargo test` runs bench targets without --bench: then only check that everything works.
    let measuring = std::env::args().any(|a| a == "--bench");
    benches();
    Criterion::default().configure_from_args().final_summary();
    percentiles(if measuring { 20_000 } else { 50 });
}
