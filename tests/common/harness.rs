//! A restore run end to end without a cluster: the real `job::run` against the CrateDB
//! simulator (PostgreSQL wire and sidecar), an in-memory Kubernetes API, and a local
//! notification endpoint. Logs of the run are captured for assertions.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use cratedb_restore::{
    job::{
        self,
        config::{JobConfig, NotificationSettings},
        error::ExitStatus,
    },
    resource::CrateDB,
};
use cratedb_sim::{SimulatorBuilder, SimulatorHandle};
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    batch::v1::CronJob,
    core::v1::Secret,
};
use kube::{
    Api,
    api::{DynamicObject, ListParams},
};
use serde_json::{Value, json};

use super::{NS as NNS, notify_sink::NotifySink, secret};

pub const CLUSTER: &str = "my-cluster";
pub const RUN_ID: &str = "20261125082542-3fa9c1";
pub const SNAPSHOT: &str = "snap-2024";
pub const SYSTEM_PASSWORD: &str = "Sys-Pw-7f3a-DISTINCT";
pub const GC_PASSWORD: &str = "Gc-Pw-91d0-DISTINCT";
pub const SIDECAR_TOKEN: &str = "Sidecar-Token-55aa-DISTINCT";
pub const ACCESS_KEY: &str = "AKIA-DISTINCT-4c1d";
pub const SECRET_KEY: &str = "S3cr3t/K3y+DISTINCT'9e2b";
pub const BUCKET: &str = "backups";
pub const BASE_PATH: &str = "clusters/prod";
pub const AZURE_ACCOUNT: &str = "cratebackups";
pub const AZURE_KEY: &str = "AzureKey==DISTINCT-77c1";
pub const AZURE_CONTAINER: &str = "snapshots";
pub const WEBHOOK_PASSWORD: &str = "Notify-Pw-0b0b-DISTINCT";

/// Every secret value a run handles; none may appear in logs, events, status or notifications.
pub const SECRET_VALUES: [&str; 6] = [
    SYSTEM_PASSWORD,
    GC_PASSWORD,
    SIDECAR_TOKEN,
    ACCESS_KEY,
    SECRET_KEY,
    AZURE_KEY,
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Aws,
    Azure,
}

/// The Kubernetes side of a scenario.
pub struct Cluster {
    pub restore_snapshot: Value,
    pub provider: Provider,
    pub grand_central: bool,
    pub users: Option<Value>,
    /// `None`: no backup CronJob; `Some(suspended)`.
    pub cronjob: Option<bool>,
    pub backup_metrics: bool,
    pub gc_secret: bool,
    pub version: &'static str,
    /// Annotations besides the run id (restore options).
    pub annotations: Vec<(&'static str, &'static str)>,
    /// `spec.backups`, if any.
    pub backups: Option<Value>,
    /// More Secrets in the namespace: `(name, [(key, value)])`.
    pub extra_secrets: Vec<(&'static str, Vec<(&'static str, &'static str)>)>,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            restore_snapshot: json!({"type": "all"}),
            provider: Provider::Aws,
            grand_central: false,
            users: Some(
                json!([{"name": "admin", "password": {"secretKeyRef": {"name": "user-password-my-cluster-0", "key": "password"}}}]),
            ),
            cronjob: Some(false),
            backup_metrics: true,
            gc_secret: false,
            version: "5.10.3",
            annotations: Vec::new(),
            backups: None,
            extra_secrets: Vec::new(),
        }
    }
}

fn ref_(key: &str) -> Value {
    json!({"secretKeyRef": {"name": format!("restore-from-backup-{CLUSTER}"), "key": key}})
}

impl Cluster {
    fn cratedb(&self) -> Value {
        let mut rs = match self.provider {
            Provider::Aws => json!({
                "backupProvider": "aws",
                "accessKeyId": ref_("access-key-id"), "secretAccessKey": ref_("secret-access-key"),
                "bucket": ref_("bucket"), "basePath": ref_("base-path")
            }),
            Provider::Azure => json!({
                "backupProvider": "azure_blob",
                "accountKey": ref_("account-key"), "accountName": ref_("account-name"),
                "container": ref_("container"), "basePath": ref_("base-path")
            }),
        };
        rs["snapshot"] = json!(SNAPSHOT);
        for (k, v) in self.restore_snapshot.as_object().unwrap() {
            rs[k] = v.clone();
        }
        let mut cr = json!({
            "apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
            "metadata": {"name": CLUSTER, "namespace": NNS, "uid": "4f1c2a7e-6b1d-4a8e-9c7e-2d3b5f6a7c80",
                         "annotations": {"restore.cloud.crate.io/run-id": RUN_ID}},
            "spec": {
                "cluster": {"imageRegistry": "crate", "name": "prod", "version": self.version,
                            "restoreSnapshot": rs, "externalDNS": "prod.example.com."},
                "nodes": {"data": [{"name": "hot", "replicas": 3}]}
            }
        });
        // No `status` here: kube-fake-client treats a type whose seed object has a status as
        // having a status subresource, which this CRD has not (the webhook's Pending seed is
        // written by the Job anyway).
        if let Some(users) = &self.users {
            cr["spec"]["users"] = users.clone();
        }
        for (k, v) in &self.annotations {
            cr["metadata"]["annotations"][*k] = json!(v);
        }
        if let Some(backups) = &self.backups {
            cr["spec"]["backups"] = backups.clone();
        }
        if self.grand_central {
            cr["spec"]["grandCentral"] = json!({"backendEnabled": true, "backendImage": "gc:1",
                "apiUrl": "https://prod.gc.example.com", "jwkUrl": "https://prod.gc.example.com/api/v2/meta/jwk/"});
        }
        cr
    }

    fn objects(&self) -> Vec<Value> {
        let mut objects = vec![self.cratedb()];
        let labels =
            json!({"app.kubernetes.io/component": "backup", "app.kubernetes.io/name": CLUSTER});
        if let Some(suspended) = self.cronjob {
            objects.push(json!({"apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": {"name": format!("create-snapshot-{CLUSTER}"), "namespace": NNS, "labels": labels},
                "spec": {"schedule": "0 * * * *", "suspend": suspended,
                         "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "b", "image": "b"}]}}}}}}));
        }
        if self.backup_metrics {
            objects.push(deployment(&format!("backup-metrics-{CLUSTER}"), 1));
        }
        objects.push(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": format!("crate-data-hot-{CLUSTER}"), "namespace": NNS,
                "labels": {"app.kubernetes.io/component": "cratedb", "app.kubernetes.io/managed-by": "crate-operator",
                           "app.kubernetes.io/name": CLUSTER, "app.kubernetes.io/part-of": "cratedb"}},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "serviceName": "s",
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "crate", "image": "crate"}]}}}}));
        if self.grand_central {
            objects.push(deployment(&format!("grand-central-{CLUSTER}"), 1));
            objects.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": format!("grand-central-{CLUSTER}"), "namespace": NNS, "labels": {"app": "gc"}},
                "spec": {"rules": [{"host": "prod.gc.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": format!("grand-central-{CLUSTER}"), "port": {"number": 5050}}}}]}}]}}));
        }
        objects
    }

    fn secrets(&self) -> Vec<Secret> {
        let restore = match self.provider {
            Provider::Aws => secret(
                &format!("restore-from-backup-{CLUSTER}"),
                &[
                    ("access-key-id", ACCESS_KEY),
                    ("secret-access-key", SECRET_KEY),
                    ("bucket", BUCKET),
                    ("base-path", BASE_PATH),
                ],
            ),
            Provider::Azure => secret(
                &format!("restore-from-backup-{CLUSTER}"),
                &[
                    ("account-key", AZURE_KEY),
                    ("account-name", AZURE_ACCOUNT),
                    ("container", AZURE_CONTAINER),
                    ("base-path", BASE_PATH),
                ],
            ),
        };
        let mut secrets = vec![
            restore,
            secret(
                &format!("user-system-{CLUSTER}"),
                &[("password", SYSTEM_PASSWORD)],
            ),
            secret(
                &format!("crate-control-{CLUSTER}"),
                &[("token", SIDECAR_TOKEN)],
            ),
        ];
        if self.gc_secret {
            secrets.push(secret(
                &format!("user-gc-{CLUSTER}"),
                &[("password", GC_PASSWORD)],
            ));
        }
        for (name, data) in &self.extra_secrets {
            secrets.push(secret(name, data));
        }
        secrets
    }
}

fn deployment(name: &str, replicas: i32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NNS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "c"}]}}}})
}

fn recorder(
    calls: Arc<Mutex<Vec<String>>>,
    status_faults: Arc<Mutex<std::collections::VecDeque<u16>>>,
    requests: Arc<std::sync::atomic::AtomicUsize>,
) -> kube_fake_client::interceptor::Funcs {
    use std::sync::atomic::Ordering::Relaxed;
    let (c1, c2, c3) = (calls.clone(), calls.clone(), calls);
    let (r1, r2, r3, r4, r5) = (
        requests.clone(),
        requests.clone(),
        requests.clone(),
        requests.clone(),
        requests,
    );
    kube_fake_client::interceptor::Funcs::new()
        .get(move |_| {
            r4.fetch_add(1, Relaxed);
            Ok(None)
        })
        .list(move |_| {
            r5.fetch_add(1, Relaxed);
            Ok(None)
        })
        .patch(move |ctx| {
            r1.fetch_add(1, Relaxed);
            let status_only = ctx
                .patch
                .as_object()
                .is_some_and(|o| o.len() == 1 && o.contains_key("status"));
            if status_only && let Some(code) = status_faults.lock().unwrap().pop_front() {
                return Err(match code {
                    409 => kube_fake_client::Error::Conflict("injected conflict".into()),
                    _ => kube_fake_client::Error::Internal("injected failure".into()),
                });
            }
            if !status_only {
                c1.lock()
                    .unwrap()
                    .push(format!("patch {} {}", ctx.name, ctx.patch));
            }
            Ok(None)
        })
        .delete(move |ctx| {
            r2.fetch_add(1, Relaxed);
            c2.lock().unwrap().push(format!("delete {}", ctx.name));
            Ok(None)
        })
        .create(move |ctx| {
            r3.fetch_add(1, Relaxed);
            let kind = ctx.object["kind"].as_str().unwrap_or_default();
            // Events and the run's own record ConfigMaps are the run's bookkeeping, not changes
            // to the cluster it restores into.
            if kind != "Event" && kind != "ConfigMap" {
                c3.lock().unwrap().push(format!(
                    "create {kind} {}",
                    ctx.object["metadata"]["name"].as_str().unwrap_or_default()
                ));
            }
            Ok(None)
        })
}

/// The simulator with this project's usual users, storage credentials and sidecar token.
pub fn sim_builder() -> SimulatorBuilder {
    cratedb_sim::Simulator::builder()
        .server_version("5.10.3")
        .user("system", SYSTEM_PASSWORD)
        .sidecar_token(SIDECAR_TOKEN)
}

pub fn s3() -> cratedb_sim::Storage {
    cratedb_sim::Storage::s3(BUCKET, BASE_PATH, ACCESS_KEY, SECRET_KEY)
}

/// One table, `doc.orders` (two 1 MB shards), in a snapshot taken by CrateDB 5.6.0.
pub fn orders_snapshot() -> cratedb_sim::SnapshotDef {
    cratedb_sim::SnapshotDef::new(SNAPSHOT)
        .version("5.6.0")
        .table(
            cratedb_sim::TableDef::new("doc", "orders")
                .shards(2)
                .bytes_per_shard(1_000_000),
        )
}

/// `doc.parted`, partitioned by `day`, one shard of `bytes` per partition.
pub fn parted_table(bytes: u64) -> cratedb_sim::TableDef {
    cratedb_sim::TableDef::new("doc", "parted")
        .partitioned_by(["day"])
        .shards(1)
        .bytes_per_shard(bytes)
}

/// A snapshot of `doc.parted` with the partitions of 2024-01-01 and 2024-01-02.
pub fn two_day_snapshot(bytes: u64) -> cratedb_sim::SnapshotDef {
    cratedb_sim::SnapshotDef::new(SNAPSHOT)
        .version("5.6.0")
        .partitioned_table(
            parted_table(bytes)
                .partition(cratedb_sim::PartitionDef::new("day", "2024-01-01"))
                .partition(cratedb_sim::PartitionDef::new("day", "2024-01-02")),
        )
}

pub fn azure() -> cratedb_sim::Storage {
    cratedb_sim::Storage::azure(AZURE_ACCOUNT, AZURE_KEY, AZURE_CONTAINER, BASE_PATH)
}

#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Harness {
    /// Changing Kubernetes calls in order: `patch <name> <body>`, `delete <name>`,
    /// `create <kind> <name>` (status writes and Events are left out).
    pub api_calls: Arc<Mutex<Vec<String>>>,
    /// Every Kubernetes API request the run made (reads included).
    pub api_requests: Arc<std::sync::atomic::AtomicUsize>,
    /// HTTP codes the next status patches fail with (409 or 500), in order.
    pub status_faults: Arc<Mutex<std::collections::VecDeque<u16>>>,
    pub sim: SimulatorHandle,
    pub client: kube::Client,
    pub sink: NotifySink,
    pub config: JobConfig,
    pub logs: LogBuffer,
    _log_guard: tracing::subscriber::DefaultGuard,
}

impl Harness {
    /// The usual simulator with `snapshot` in its S3 repository, and the default cluster.
    pub async fn with_snapshot(snapshot: cratedb_sim::SnapshotDef) -> Self {
        Self::start(
            sim_builder().storage(s3().snapshot(snapshot)),
            Cluster::default(),
        )
        .await
    }

    /// Must run on a current-thread runtime (plain `#[tokio::test]`) so that log capture sees
    /// every task.
    pub async fn start(sim: SimulatorBuilder, cluster: Cluster) -> Self {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("cratedb_restore=debug")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        let sim = sim.start().await.expect("simulator starts");
        let api_calls = Arc::new(Mutex::new(Vec::new()));
        let status_faults = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let api_requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let client = kube_fake_client::ClientBuilder::new()
            .with_interceptor_funcs(recorder(
                api_calls.clone(),
                status_faults.clone(),
                api_requests.clone(),
            ))
            .with_resource::<CrateDB>()
            .with_runtime_objects(cluster.objects())
            .with_objects(cluster.secrets())
            .build()
            .await
            .expect("in-memory API");
        let sink = NotifySink::start().await;
        let mut config = JobConfig::new(NNS, CLUSTER, RUN_ID);
        config.crate_host = Some("127.0.0.1".into());
        config.crate_port = sim.pg_addr().port();
        config.cloud_provider = Some("openshift".into());
        config.crate_control_url = Some(format!("{}/exec", sim.sidecar_url()));
        config.poll_interval = Duration::from_millis(5);
        // As in a Job's Pod, where the downward API gives the Job's uid.
        config.job_uid = Some("6a1f0c52-0b8e-4d6b-9a51-3c0f1f0e2b7d".into());
        config.progress_write_interval = Duration::ZERO;
        config.progress_notification_interval = Duration::ZERO;
        config.retry_initial_delay = Duration::from_millis(5);
        config.retry_max_delay = Duration::from_millis(50);
        config.bootstrap_retry_delay = Duration::from_millis(5);
        config.step_attempts = 3;
        config.start_wait = Duration::from_millis(300);
        config.notifications = Some(NotificationSettings {
            url: sink.url(),
            username: "cloud".into(),
            password: WEBHOOK_PASSWORD.to_string().into(),
        });
        Self {
            api_calls,
            api_requests,
            status_faults,
            sim,
            client,
            sink,
            config,
            logs,
            _log_guard: guard,
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.api_calls.lock().unwrap().clone()
    }

    pub async fn run(&self) -> ExitStatus {
        job::run(self.config.clone(), self.client.clone()).await
    }

    pub async fn cr(&self) -> Value {
        let api: Api<CrateDB> = Api::namespaced(self.client.clone(), NNS);
        serde_json::to_value(api.get(CLUSTER).await.unwrap()).unwrap()
    }

    pub async fn status(&self) -> Value {
        self.cr().await["status"]["restore"].clone()
    }

    /// `(reason, note)` of the Events recorded on the resource, in creation order.
    pub async fn events(&self) -> Vec<(String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), NNS);
        api.list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Statement texts the simulator received (placeholders, not values), rejected ones included.
    pub fn statements(&self) -> Vec<String> {
        self.sim.statement_texts()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.sim.count_statements(prefix)
    }

    pub async fn deployment_replicas(&self, name: &str) -> Option<i32> {
        Api::<Deployment>::namespaced(self.client.clone(), NNS)
            .get_opt(name)
            .await
            .unwrap()
            .and_then(|d| d.spec.and_then(|s| s.replicas))
    }

    pub async fn cronjob_suspended(&self) -> Option<bool> {
        Api::<CronJob>::namespaced(self.client.clone(), NNS)
            .get_opt(&format!("create-snapshot-{CLUSTER}"))
            .await
            .unwrap()
            .and_then(|c| c.spec.and_then(|s| s.suspend))
    }

    pub async fn statefulset_labels(&self) -> Value {
        let sts = Api::<StatefulSet>::namespaced(self.client.clone(), NNS)
            .get(&format!("crate-data-hot-{CLUSTER}"))
            .await
            .unwrap();
        serde_json::to_value(sts.metadata.labels).unwrap()
    }

    pub async fn secret_exists(&self, name: &str) -> bool {
        Api::<Secret>::namespaced(self.client.clone(), NNS)
            .get_opt(name)
            .await
            .unwrap()
            .is_some()
    }

    pub async fn dynamic_exists(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        name: &str,
    ) -> bool {
        let ar = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(group, version, kind),
            plural,
        );
        Api::<DynamicObject>::namespaced_with(self.client.clone(), NNS, &ar)
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .is_some()
    }

    /// Fails the test if any secret value shows up where people or other systems can read it.
    pub async fn assert_no_secret_leaks(&self) {
        let logs = self.logs.text();
        let events = format!("{:?}", self.events().await);
        let status = self.status().await.to_string();
        let notifications = format!(
            "{:?}",
            self.sink
                .received()
                .iter()
                .map(|r| r.body.to_string())
                .collect::<Vec<_>>()
        );
        for value in SECRET_VALUES {
            for (place, text) in [
                ("logs", &logs),
                ("events", &events),
                ("status", &status),
                ("notifications", &notifications),
            ] {
                assert!(!text.contains(value), "secret value leaked into {place}");
            }
        }
        // Repository credentials and, through the sidecar, passwords are bound parameters, so
        // CrateDB's own log has only placeholders (SPEC A8).
        let jobs_log = format!("{:?}", self.sim.jobs_log());
        for value in SECRET_VALUES {
            assert!(
                !jobs_log.contains(value),
                "secret value leaked into CrateDB's sys.jobs_log"
            );
        }
    }
}
