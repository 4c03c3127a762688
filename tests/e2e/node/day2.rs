//! Day-2 scenarios on the real single node (project issue 16): a restore cancelled while its
//! Job's Pod waits on the running RESTORE, a Pod deleted during a cancel, and the snapshot
//! catalog through the kubectl plugin. Each asserts what a user and the cluster see: the status,
//! the Events, the simulator's statement log and the Job.

use std::time::Duration;

use serde_json::{Value, json};

use super::{
    BASE_PATH, ClusterSpec, NS, NodeEnv, POD_START, RESTORE_RUN, SimCluster, Stream, snapshot,
    wait_until, with_prefix,
};
use crate::node::scenarios::{Requested, request_restore_of, wait_job_complete};

type Scenario = fn(&NodeEnv);

pub const ALL: &[(&str, Scenario)] = &[
    (
        "a_cancel_while_the_job_pod_waits_on_the_restore_drops_only_its_relations",
        a_cancel_while_the_job_pod_waits_on_the_restore_drops_only_its_relations,
    ),
    (
        "a_job_pod_deleted_during_a_cancel_is_replaced_and_the_cancel_goes_on",
        a_job_pod_deleted_during_a_cancel_is_replaced_and_the_cancel_goes_on,
    ),
    (
        "the_plugin_lists_the_snapshots_through_a_short_lived_job",
        the_plugin_lists_the_snapshots_through_a_short_lived_job,
    ),
];

/// Deploys a cluster whose RESTORE of `doc.orders` takes minutes, requests it (type tables) and
/// waits until the Job's Pod waits on it.
fn restoring(env: &NodeEnv, name: &str) -> (SimCluster, Requested) {
    let cluster = env.deploy_cluster(ClusterSpec {
        ns: NS.into(),
        name: name.into(),
        snapshot: snapshot(50_000_000),
        bytes_per_sec: 100_000,
        extra: vec![],
    });
    let manifest =
        cluster.restore_manifest_with(json!({"type": "tables", "tables": ["doc.orders"]}));
    let req = request_restore_of(env, &cluster, &manifest);
    wait_until("the Job's Pod waits on the RESTORE", RESTORE_RUN, || {
        let cr = env.get("cratedb", NS, &cluster.name);
        (cr["status"]["restore"]["steps"]["await_restore"]["state"] == "Running").then_some(())
    });
    (cluster, req)
}

/// What every cancelled run leaves behind; returns the CrateDB resource. `pods`: how many Pods
/// worked on the run (each repeats the drops the one before may have sent already).
fn assert_cancelled(env: &NodeEnv, cluster: &SimCluster, req: &Requested, pods: usize) -> Value {
    wait_job_complete(env, cluster, &req.job);
    let cr = env.get("cratedb", NS, &cluster.name);
    let status = &cr["status"]["restore"];
    assert_eq!(status["phase"], "Cancelled", "{status:#}");
    assert!(
        status["cancelledBy"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{status:#}"
    );
    assert_eq!(status["steps"]["cancel_restore"]["state"], "Succeeded");
    assert_eq!(
        status["steps"]["after_restore_backup"]["state"],
        "Succeeded"
    );
    assert_eq!(cr["spec"]["cluster"]["restoreSnapshot"]["snapshot"], "");
    assert!(
        cr["metadata"]["annotations"]
            .get("restore.cloud.crate.io/cancel")
            .is_none(),
        "the cancel does not stay on the resource"
    );
    let events: Vec<String> = env
        .events_of(&cluster.name)
        .into_iter()
        .map(|(reason, _)| reason)
        .collect();
    assert!(
        events.contains(&"RestoreCancelled".to_string()),
        "{events:?}"
    );
    let log = env.statements(cluster);
    assert_eq!(with_prefix(&log, "RESTORE SNAPSHOT").len(), 1);
    // Exactly the run's own relation is dropped, and the repository.
    let drops: Vec<&str> = with_prefix(&log, "DROP TABLE")
        .iter()
        .filter_map(|s| s["sql"].as_str())
        .collect();
    assert!(
        !drops.is_empty()
            && drops
                .iter()
                .all(|d| *d == r#"DROP TABLE IF EXISTS "doc"."orders""#),
        "{drops:?}"
    );
    let repository_drops = with_prefix(&log, "DROP REPOSITORY").len();
    assert!(
        (1..=pods).contains(&repository_drops),
        "{repository_drops} DROP REPOSITORY for {pods} Pod(s)"
    );
    // The recovery settings are put back (RESET or SET to the saved values).
    assert!(
        with_prefix(
            &log,
            "SET GLOBAL PERSISTENT indices.recovery.max_bytes_per_sec"
        )
        .len()
            >= 2
            || !with_prefix(&log, "RESET GLOBAL").is_empty(),
        "settings back: {log:#?}"
    );
    cr
}

fn a_cancel_while_the_job_pod_waits_on_the_restore_drops_only_its_relations(env: &NodeEnv) {
    let (cluster, req) = restoring(env, "cancel");
    let kubeconfig = env.node.kubeconfig();
    // As a user would: a dry run first, then the cancel, followed to its end.
    let mut preview = Stream::plugin(
        &kubeconfig,
        &["-n", NS, "cancel", &cluster.name, "--dry-run"],
    );
    let previewed = wait_until("the cancel's preview", Duration::from_secs(30), || {
        preview.exit_code()
    });
    let said = preview.text();
    assert_eq!(previewed, 0, "{said}\n{}", preview.stderr_text());
    assert!(
        said.contains("drops exactly what it creates (1 relation(s): doc.orders, 0 partition(s))"),
        "{said}"
    );
    let mut cancel = Stream::plugin(&kubeconfig, &["-n", NS, "cancel", &cluster.name, "--wait"]);
    let exit = wait_until(
        "cancel --wait follows the run to its end",
        RESTORE_RUN,
        || cancel.exit_code(),
    );
    assert_eq!(
        exit,
        5,
        "exit 5 for a Cancelled run:\n{}\n{}",
        cancel.text(),
        cancel.stderr_text()
    );
    let cr = assert_cancelled(env, &cluster, &req, 1);
    assert_eq!(
        env.job_pods(&req.job).len(),
        1,
        "one Pod did the whole cancel"
    );
    assert!(
        cr["status"]["restore"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Restore cancelled by"),
        "{:#}",
        cr["status"]["restore"]
    );
}

fn a_job_pod_deleted_during_a_cancel_is_replaced_and_the_cancel_goes_on(env: &NodeEnv) {
    let (cluster, req) = restoring(env, "cancel-resume");
    let first = env.job_pods(&req.job)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    env.kubectl
        .run(&[
            "annotate",
            "cratedb",
            "-n",
            NS,
            &cluster.name,
            "restore.cloud.crate.io/cancel=true",
        ])
        .ok();
    env.kubectl
        .run(&["delete", "pod", "-n", NS, &first, "--wait=false"])
        .ok();
    wait_until("a second Pod of the Job", POD_START, || {
        env.job_pods(&req.job)
            .into_iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .find(|n| *n != first)
    });
    assert_cancelled(env, &cluster, &req, 2);
}

fn the_plugin_lists_the_snapshots_through_a_short_lived_job(env: &NodeEnv) {
    let taken = |name: &str, day: i64, state: &str| {
        let mut s = snapshot(1_000);
        s["name"] = json!(name);
        s["state"] = json!(state);
        s["started"] = json!(1_733_000_000_000_i64 + day * 86_400_000);
        s["finished"] = json!(1_733_000_060_000_i64 + day * 86_400_000);
        s
    };
    let cluster = env.deploy_cluster(ClusterSpec {
        ns: NS.into(),
        name: "catalog".into(),
        snapshot: json!([
            taken("nightly-1", 1, "SUCCESS"),
            taken("nightly-2", 2, "SUCCESS"),
            taken("nightly-3", 3, "FAILED")
        ]),
        bytes_per_sec: 1_000_000,
        extra: vec![],
    });
    // The cluster's own backup settings, as the operator's CRD has them.
    let secret = cluster.restore_secret();
    let r = |key: &str| json!({"secretKeyRef": {"name": secret, "key": key}});
    let backups = json!({"spec": {"backups": {"aws": {
        "accessKeyId": r("access-key-id"), "secretAccessKey": r("secret-access-key"),
        "bucket": r("bucket"), "basePath": BASE_PATH, "cron": "0 * * * *"}}}});
    env.kubectl
        .run(&[
            "patch",
            "cratedb",
            "-n",
            NS,
            &cluster.name,
            "--type",
            "merge",
            "-p",
            &backups.to_string(),
        ])
        .ok();
    let kubeconfig = env.node.kubeconfig();
    let mut listing = Stream::plugin(
        &kubeconfig,
        &["-n", NS, "snapshots", &cluster.name, "-o", "json"],
    );
    let exit = wait_until("kubectl cratedb-restore snapshots", POD_START, || {
        listing.exit_code()
    });
    let out = listing.text();
    assert_eq!(exit, 0, "{out}\n{}", listing.stderr_text());
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let names: Vec<&str> = answer["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["nightly-3", "nightly-2", "nightly-1"], "{answer:#}");
    assert_eq!(answer["snapshots"][0]["state"], "FAILED");
    assert_eq!(answer["snapshots"][1]["tables"], json!(["doc.orders"]));
    assert_eq!(answer["source"], "spec.backups.aws");
    // The catalog Job is gone, and it changed nothing but its own repository.
    let catalog_jobs = env.list("job", NS, "app.kubernetes.io/component=snapshot-catalog");
    assert!(catalog_jobs.is_empty(), "{catalog_jobs:#?}");
    let log = env.statements(&cluster);
    let created = with_prefix(&log, "CREATE REPOSITORY");
    assert_eq!(created.len(), 1);
    assert!(
        created[0]["sql"]
            .as_str()
            .unwrap()
            .contains("\"cratedb_restore_catalog_"),
        "{created:?}"
    );
    assert_eq!(with_prefix(&log, "DROP REPOSITORY").len(), 1);
    for verb in ["SET", "RESET", "RESTORE", "ALTER", "DROP TABLE"] {
        assert!(with_prefix(&log, verb).is_empty(), "{verb}: {log:#?}");
    }
    // The same as people read it (the README shows this output).
    let mut text = Stream::plugin(
        &kubeconfig,
        &["-n", NS, "snapshots", &cluster.name, "--tables"],
    );
    let exit = wait_until(
        "kubectl cratedb-restore snapshots --tables",
        POD_START,
        || text.exit_code(),
    );
    let shown = text.text();
    assert_eq!(exit, 0, "{shown}\n{}", text.stderr_text());
    assert!(
        shown.starts_with("Snapshots in spec.backups.aws, newest first:\n")
            && shown.contains("  tables: doc.orders"),
        "{shown}"
    );
    crate::harness::examples(&[(
        "plugin-snapshots.txt",
        &format!("{}{shown}", text.stderr_text()),
    )]);
}
