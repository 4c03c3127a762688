//! Faults injected into full restore runs: a pod killed at every step boundary, CrateDB
//! connections dropped, the API server failing status writes, the notification endpoint failing.
//! Every run must still complete, send RESTORE once and clean up once.

mod common;

use std::time::Duration;

use common::harness::*;
use cratedb_restore::job::{
    error::ExitStatus,
    step::{PLAN, When},
};

async fn harness() -> Harness {
    Harness::with_snapshot(orders_snapshot()).await
}

fn assert_once(h: &Harness, what: &str) {
    assert_eq!(h.count(what), 1, "{what} once: {:#?}", h.statements());
}

async fn assert_clean_success(h: &Harness, exit: ExitStatus) {
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{status:#}\n{}", h.logs.text());
    assert_eq!(status["phase"], "Succeeded");
    assert_once(h, "RESTORE SNAPSHOT");
    assert_once(h, "CREATE REPOSITORY");
    assert_once(h, "DROP REPOSITORY");
    assert!(h.sim.repositories().is_empty());
    assert_eq!(h.cronjob_suspended().await, Some(false));
    assert_eq!(
        h.deployment_replicas("backup-metrics-my-cluster").await,
        Some(1)
    );
    assert_eq!(
        h.cr().await["spec"]["cluster"]["restoreSnapshot"]["snapshot"],
        ""
    );
    h.assert_no_secret_leaks().await;
}

#[tokio::test]
async fn a_pod_killed_at_every_step_boundary_is_resumed_by_the_next() {
    // Every boundary between two steps of a run that is not cancelled (after the last step only
    // the final status is left).
    for boundary in PLAN[..PLAN.len() - 1]
        .iter()
        .filter(|s| s.when != When::CancelledAfterRestore)
        .map(|s| s.id.as_str())
    {
        let h = harness().await;
        let watch = async {
            loop {
                let status = h.status().await;
                if status["steps"][boundary]["state"] == "Succeeded" {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::select! {
            exit = h.run() => panic!("the run ended ({exit:?}) before it could be killed after {boundary}"),
            () = watch => {}
        }
        let exit = h.run().await;
        assert_clean_success(&h, exit).await;
        let resumed = h.status().await;
        assert_eq!(
            resumed["steps"][boundary]["attempts"], 1,
            "{boundary} ran once"
        );
        let suspends = h
            .calls()
            .iter()
            .filter(|c| c.contains("create-snapshot") && c.contains("\"suspend\":true"))
            .count();
        assert_eq!(suspends, 1, "after {boundary}: {:?}", h.calls());
    }
}

#[tokio::test]
async fn dropped_cratedb_connections_are_retried() {
    let h = harness().await;
    h.sim
        .drop_connection_on("information_schema.tables", Some(1));
    h.sim.drop_connection_on("sys.cluster", Some(1));
    h.sim.fail_sidecar_requests(2);
    let exit = h.run().await;
    assert_clean_success(&h, exit).await;
    assert!(h.logs.text().contains("retrying"), "the retries are logged");
}

#[tokio::test]
async fn status_writes_survive_409_and_500() {
    let h = harness().await;
    h.status_faults
        .lock()
        .unwrap()
        .extend([409, 500, 409, 500, 500]);
    let exit = h.run().await;
    assert_clean_success(&h, exit).await;
    assert!(
        h.status_faults.lock().unwrap().is_empty(),
        "every fault was hit"
    );
    assert!(h.logs.text().contains("status write failed; retrying"));
}

#[tokio::test]
async fn notifications_are_retried_on_502() {
    let h = harness().await;
    h.sink.script(&[502, 200]);
    let exit = h.run().await;
    assert_clean_success(&h, exit).await;
    let received = h.sink.received();
    assert_eq!(
        received[0].body, received[1].body,
        "the 502'd notification was sent again"
    );
    assert_eq!(
        h.sink.feedback().last().unwrap().1,
        "The snapshot has been restored successfully."
    );
}

/// An ALL restore whose snapshot holds the source's `system` user: CrateDB gives `system` the
/// source's password when the RESTORE starts. The Pod that issued it keeps its open connection;
/// the next Pod's login is refused until the password is reset. It resets it at once through
/// the superuser path and finishes the run (found on the real single-node cluster, where a
/// deleted Job Pod's replacement kept failing in await_restore).
#[tokio::test]
async fn a_resumed_all_restore_logs_in_again_after_the_snapshot_replaced_the_password() {
    let snapshot = orders_snapshot().users(vec![cratedb_sim::UserDef::new("system", "src-pw")]);
    let h = Harness::with_snapshot(snapshot).await;
    let issued = async {
        loop {
            if h.status().await["steps"]["restore_backup_data"]["state"] == "Succeeded" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::select! {
        exit = h.run() => panic!("the run ended ({exit:?}) before RESTORE could be interrupted"),
        () = issued => {}
    }
    let system = |h: &Harness| {
        h.sim
            .users()
            .into_iter()
            .find(|u| u.name == "system")
            .and_then(|u| u.password)
    };
    assert_eq!(
        system(&h).as_deref(),
        Some("src-pw"),
        "the snapshot's password"
    );
    let exit = h.run().await;
    assert_clean_success(&h, exit).await;
    assert!(
        h.logs.text().contains("login refused after RESTORE"),
        "the early reset is logged:\n{}",
        h.logs.text()
    );
    assert_eq!(system(&h).as_deref(), Some(SYSTEM_PASSWORD));
}
