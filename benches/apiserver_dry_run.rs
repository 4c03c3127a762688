//! Latency the webhook adds to a server-side dry run through a real kube-apiserver (the e2e
//! suite's 1.20.2 + etcd): the same `--dry-run=server` request for a new restore, first without
//! and then with our mutating and validating webhook configurations, measured in one run. The
//! requests go through kube-rs (what `kubectl apply --dry-run=server` sends, without kubectl's
//! process start-up, which would hide the difference).
//!
//! `cargo bench --bench apiserver_dry_run` (needs `tests/e2e/setup.sh` once; N=… requests each)

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use k8s_openapi::api::{
    admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
    core::v1::{Namespace, Secret},
};
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    discovery::ApiResource,
};
use serde_json::{Value, json};

fn webhook_entry(name: &str, url: &str, ca: &str) -> Value {
    json!({
        "name": name,
        "clientConfig": {"url": url, "caBundle": ca},
        "rules": [{"apiGroups": ["cloud.crate.io"], "apiVersions": ["v1"],
                   "operations": ["CREATE", "UPDATE"], "resources": ["cratedbs"]}],
        "admissionReviewVersions": ["v1"], "sideEffects": "NoneOnDryRun",
        "failurePolicy": "Fail", "timeoutSeconds": 5
    })
}

async fn measure(api: &Api<DynamicObject>, n: usize, label: &str) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let r = |k: &str| json!({"secretKeyRef": {"name": "restore-from-backup-bench", "key": k}});
    for i in 0..n + n / 10 {
        let patch = json!({"spec": {"cluster": {"restoreSnapshot": {
            "snapshot": format!("snap-{i}"), "tables": ["doc.orders"],
            "accessKeyId": r("access-key-id"), "secretAccessKey": r("secret-access-key"),
            "bucket": r("bucket"), "basePath": r("base-path")}}}});
        let params = PatchParams {
            dry_run: true,
            ..Default::default()
        };
        let started = Instant::now();
        api.patch("bench", &params, &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        if i >= n / 10 {
            hist.record(started.elapsed().as_micros() as u64).unwrap();
        }
    }
    hist
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if measuring { 300 } else { 10 });
    let cluster = harness::Cluster::start();
    let kubectl = cluster.kubectl(Default::default());
    cluster.install_crd(&kubectl);
    let webhook = harness::Webhook::start(harness::WebhookOptions {
        dir: &cluster.state,
        name: "bench-webhook",
        kubeconfig: Some(&cluster.kubeconfig),
        job_template: None,
        tls_files: None,
        extra_args: &[],
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        cratedb_restore::install_crypto_provider();
        let client = harness::client_from(&cluster.kubeconfig).await;
        let ns: Api<Namespace> = Api::all(client.clone());
        ns.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "bench"}})).unwrap()).await.unwrap();
        // The restore Job's ServiceAccount, as the chart creates it: without it the webhook refuses
        // restores in the namespace (they could not run).
        let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), "bench");
        accounts
            .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": cratedb_restore::restore_job::DEFAULT_SERVICE_ACCOUNT}})).unwrap())
            .await
            .unwrap();
        let secrets: Api<Secret> = Api::namespaced(client.clone(), "bench");
        let data: serde_json::Map<String, Value> = ["access-key-id", "secret-access-key", "bucket", "base-path"]
            .iter()
            .map(|k| (k.to_string(), json!("dmFsdWU=")))
            .collect();
        secrets
            .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "restore-from-backup-bench"}, "data": data})).unwrap())
            .await
            .unwrap();
        let ar = ApiResource::from_gvk_with_plural(&kube::api::GroupVersionKind::gvk("cloud.crate.io", "v1", "CrateDB"), "cratedbs");
        let cratedbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "bench", &ar);
        let cr: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cloud.crate.io/v1", "kind": "CrateDB", "metadata": {"name": "bench", "namespace": "bench"},
            "spec": {"cluster": {"imageRegistry": "crate", "name": "bench", "version": "5.10.3"},
                     "nodes": {"data": [{"name": "hot", "replicas": 3}]}}
        }))
        .unwrap();
        // CRD discovery can lag behind Established for a moment.
        for _ in 0..50 {
            if cratedbs.create(&PostParams::default(), &cr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let without = measure(&cratedbs, n, "without webhooks").await;

        let ca = harness::b64(webhook.cert_pem.as_bytes());
        let mutating: MutatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": "bench-mutate"},
            "webhooks": [webhook_entry("mutate.restore.cloud.crate.io", &format!("{}/mutate", webhook.url()), &ca)]
        }))
        .unwrap();
        let validating: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": "bench-validate"},
            "webhooks": [webhook_entry("validate.restore.cloud.crate.io", &format!("{}/validate", webhook.url()), &ca)]
        }))
        .unwrap();
        Api::<MutatingWebhookConfiguration>::all(client.clone()).create(&PostParams::default(), &mutating).await.unwrap();
        Api::<ValidatingWebhookConfiguration>::all(client.clone()).create(&PostParams::default(), &validating).await.unwrap();
        // The API server picks configurations up asynchronously: wait until a dry run is reviewed.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let with = measure(&cratedbs, n, "with webhooks").await;

        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!("server-side dry run of a new restore through kube-apiserver 1.20.2 ({n} requests each, sequential):");
        println!("  {:<22} {:>8} {:>8} {:>8}", "", "p50 ms", "p90 ms", "p99 ms");
        println!("  {:<22} {:>8.2} {:>8.2} {:>8.2}", "without webhooks", ms(&without, 0.5), ms(&without, 0.9), ms(&without, 0.99));
        println!("  {:<22} {:>8.2} {:>8.2} {:>8.2}", "with both webhooks", ms(&with, 0.5), ms(&with, 0.9), ms(&with, 0.99));
        println!(
            "  added by the webhooks: {:.2} ms at p50 (ratio {:.2}x), {:.2} ms at p99",
            ms(&with, 0.5) - ms(&without, 0.5),
            ms(&with, 0.5) / ms(&without, 0.5),
            ms(&with, 0.99) - ms(&without, 0.99)
        );
    });
    drop(webhook);
    drop(cluster);
}
