//! What a real deployment hits first (SPEC A26, issue "Data safety and least privilege"): a
//! cluster that is still starting, status writes that keep failing, a stored run that cannot be
//! read, a restored `system` password during cleanup, a jobs table the Job may not read, and a
//! sidecar asking to slow down. Each ends in a terminal, truthful state.

mod common;

use std::time::Duration;

use common::harness::*;
use cratedb_restore::{job::error::ExitStatus, resource::CrateDB};
use cratedb_sim::{ErrorInjection, UserDef};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

fn api<K>(h: &Harness) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::namespaced(h.client.clone(), common::NS)
}

#[tokio::test]
async fn a_cluster_that_is_still_starting_is_waited_for() {
    let h = Harness::with_snapshot(orders_snapshot()).await;
    // The operator has not created the system user's Secret yet, and CrateDB refuses the first
    // dozen connections: more than any fixed attempt count used to allow.
    let secrets: Api<Secret> = api(&h);
    let system = secrets.get("user-system-my-cluster").await.unwrap();
    secrets
        .delete("user-system-my-cluster", &DeleteParams::default())
        .await
        .unwrap();
    h.sim
        .drop_connection_on("information_schema.tables", Some(12));
    let mut config = h.config.clone();
    config.step_attempts = 0;
    config.restore_timeout = Duration::from_secs(120);
    let create_later = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut again = system.clone();
        again.metadata.resource_version = None;
        again.metadata.uid = None;
        secrets
            .create(&PostParams::default(), &again)
            .await
            .unwrap();
    };
    let (exit, ()) = tokio::join!(
        cratedb_restore::job::run(config, h.client.clone()),
        create_later
    );
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{status:#}\n{}", h.logs.text());
    assert_eq!(status["phase"], "Succeeded");
    let logs = h.logs.text();
    assert!(
        logs.contains("Secret user-system-my-cluster (key password) does not exist yet"),
        "the wait for the Secret is said"
    );
    assert!(
        status["steps"]["preflight"]["attempts"].as_u64().unwrap() > 8,
        "{status:#}"
    );
    assert_eq!(h.count("RESTORE SNAPSHOT"), 1);
}

#[tokio::test]
async fn status_writes_that_keep_failing_stop_the_run_with_exit_1() {
    let h = Harness::with_snapshot(orders_snapshot()).await;
    h.status_faults.lock().unwrap().extend([500; 200]);
    let exit = h.run().await;
    assert_eq!(exit, ExitStatus::Retry, "{}", h.logs.text());
    assert!(
        h.logs.text().contains("cannot write status.restore"),
        "{}",
        h.logs.text()
    );
    // Nothing happened that the status could not record.
    assert!(h.statements().is_empty(), "{:?}", h.statements());
    assert!(h.calls().is_empty(), "{:?}", h.calls());
}

#[tokio::test]
async fn a_stored_run_that_cannot_be_read_stops_instead_of_starting_over() {
    let h = Harness::with_snapshot(orders_snapshot()).await;
    // Written as raw JSON: the product's own type would refuse to read the answer.
    let crs: Api<kube::api::DynamicObject> = Api::namespaced_with(
        h.client.clone(),
        common::NS,
        &kube::api::ApiResource::erase::<CrateDB>(&()),
    );
    crs.patch(
        CLUSTER,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"restore": {"runId": RUN_ID, "phase": "Sideways",
            "steps": {"restore_backup_data": {"state": "Succeeded"}}}}}),
        ),
    )
    .await
    .unwrap();
    let exit = h.run().await;
    assert_eq!(exit, ExitStatus::Usage);
    let logs = h.logs.text();
    assert!(
        logs.contains("the run stops instead of starting over"),
        "{logs}"
    );
    assert!(
        h.statements().is_empty(),
        "no second RESTORE, nothing at all"
    );
}

#[tokio::test]
async fn cleanup_uses_the_superuser_path_when_a_restored_password_locks_out_system() {
    // A USERS restore brings the source cluster's `system` password; the reset through the
    // sidecar fails (all its attempts), and the PostgreSQL connection then breaks, so cleanup
    // logs in again with this cluster's password, which CrateDB now refuses.
    let snap = orders_snapshot().users(vec![UserDef::new("system", "source-cluster-password")]);
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(snap)),
        Cluster {
            restore_snapshot: json!({"type": "sections", "sections": ["tables", "users"]}),
            ..Cluster::default()
        },
    )
    .await;
    h.sim.fail_sidecar_requests(3);
    h.sim
        .drop_connection_on("cluster_concurrent_rebalance = 2", Some(1));
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Failed, "{status:#}");
    assert_eq!(
        status["steps"]["restore_system_user_password"]["state"],
        "Failed"
    );
    assert_eq!(
        status["steps"]["after_restore_backup"]["state"], "Succeeded",
        "{status:#}"
    );
    assert!(h.sim.repositories().is_empty(), "the repository is dropped");
    let superuser: Vec<String> = h
        .sim
        .statements()
        .into_iter()
        .filter(|s| s.frontend == cratedb_sim::Frontend::Sidecar)
        .map(|s| s.sql)
        .collect();
    assert!(
        superuser
            .iter()
            .any(|s| s.starts_with("SET GLOBAL PERSISTENT"))
            && superuser.iter().any(|s| s.starts_with("DROP REPOSITORY")),
        "cleanup went through the superuser path: {superuser:?}"
    );
    assert!(h.logs.text().contains("login refused"));
}

#[tokio::test]
async fn a_jobs_table_the_job_may_not_read_is_an_error_not_an_idle_cluster() {
    let h = Harness::with_snapshot(orders_snapshot()).await;
    h.sim.inject_error(
        ErrorInjection::always("FROM sys.jobs", "Missing 'DQL' privilege for user 'system'")
            .exception("MissingPrivilegeException")
            .sqlstate("42501"),
    );
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Failed);
    let message = status["steps"]["before_cluster_update"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.starts_with("cannot check sys.jobs for a running CREATE SNAPSHOT: ")
            && message.contains("Missing 'DQL' privilege"),
        "{message}"
    );
    assert_eq!(h.count("RESTORE SNAPSHOT"), 0);
    assert_eq!(
        h.cronjob_suspended().await,
        Some(false),
        "cleanup re-enabled it"
    );
}

#[tokio::test]
async fn a_sidecar_that_asks_to_slow_down_is_retried() {
    let snap = orders_snapshot().users(vec![UserDef::new("system", "source-cluster-password")]);
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(snap)),
        Cluster {
            restore_snapshot: json!({"type": "all"}),
            ..Cluster::default()
        },
    )
    .await;
    h.sim.fail_sidecar_requests_with(2, 429);
    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{status:#}");
    assert_eq!(
        status["steps"]["restore_system_user_password"]["attempts"],
        3
    );
    assert!(h.logs.text().contains("429"));
}

#[tokio::test]
async fn a_whole_run_makes_at_most_40_kubernetes_api_requests() {
    // Every step's completion is written before the next starts (SPEC A6): one status write per
    // step, plus the few records a crash-safe step needs, the Secrets, the CronJob, the
    // StatefulSets, backup-metrics, the reset and three Events.
    let h = Harness::with_snapshot(orders_snapshot()).await;
    let mut config = h.config.clone();
    config.progress_write_interval =
        cratedb_restore::job::config::JobConfig::new("ns", "c", "r").progress_write_interval;
    let exit = cratedb_restore::job::run(config, h.client.clone()).await;
    assert_eq!(exit, ExitStatus::Done, "{}", h.logs.text());
    let requests = h.api_requests.load(std::sync::atomic::Ordering::Relaxed);
    assert!(requests <= 40, "{requests} Kubernetes API requests");
    let mut events: Vec<String> = h.events().await.into_iter().map(|(r, _)| r).collect();
    events.sort();
    assert_eq!(
        events,
        ["RestoreSent", "RestoreStarted", "RestoreSucceeded"]
    );
}
