//! A run stored by the previous release is resumed by this Job (SPEC A28): a chart upgrade in
//! the middle of a restore loses nothing. The fixture is `status.restore` (and the resource
//! around it) exactly as the previous release's Job wrote it while it waited on a running
//! RESTORE: the request and the whole plan inline, no record. The restore it sent is running in
//! CrateDB; the new Job must adopt it, send no second RESTORE and no second CREATE REPOSITORY,
//! and finish the run.

mod common;

use common::harness::*;
use cratedb_restore::{job::error::ExitStatus, resource::CrateDB};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("fixtures/status/previous-release-awaiting-restore.json");

fn two_table_snapshot() -> cratedb_sim::SnapshotDef {
    cratedb_sim::SnapshotDef::new(SNAPSHOT)
        .version("5.6.0")
        .table(
            cratedb_sim::TableDef::new("doc", "orders")
                .shards(2)
                .bytes_per_shard(1_000_000),
        )
        .table(
            cratedb_sim::TableDef::new("sales", "events")
                .shards(2)
                .bytes_per_shard(1_000_000),
        )
}

#[tokio::test]
async fn a_run_of_the_previous_release_waiting_on_its_restore_is_finished_with_one_restore() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let h = Harness::start(
        sim_builder().storage(s3().snapshot(two_table_snapshot())),
        Cluster {
            restore_snapshot: fixture["spec"]["cluster"]["restoreSnapshot"].clone(),
            ..Cluster::default()
        },
    )
    .await;
    // What the previous release's Pod did before it was replaced: its repository and its
    // RESTORE, still running in CrateDB, and its status.
    let repository = fixture["status"]["restore"]["repository"].as_str().unwrap();
    let statement =
        fixture["status"]["restore"]["steps"]["restore_backup_data"]["result"]["restoreStatement"]
            .as_str()
            .unwrap();
    let created = h.sim.execute_as_superuser(&format!(
        "CREATE REPOSITORY \"{repository}\" TYPE s3 WITH (bucket = '{BUCKET}', base_path = '{BASE_PATH}', access_key = '{ACCESS_KEY}', secret_key = '{}', readonly = true)",
        SECRET_KEY.replace('\'', "''")
    ));
    assert!(created.error().is_none(), "{created:?}");
    let restored = h.sim.execute_as_superuser(statement);
    assert!(restored.error().is_none(), "{restored:?}");
    assert_eq!(h.sim.restores_in_progress().len(), 1);
    let api: Api<CrateDB> = Api::namespaced(h.client.clone(), common::NS);
    api.patch(
        CLUSTER,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": fixture["status"]})),
    )
    .await
    .unwrap();

    let exit = h.run().await;
    let status = h.status().await;
    assert_eq!(exit, ExitStatus::Done, "{status:#}\n{}", h.logs.text());
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(h.count("RESTORE SNAPSHOT"), 1, "{:#?}", h.statements());
    assert_eq!(h.count("CREATE REPOSITORY"), 1, "{:#?}", h.statements());
    assert_eq!(h.count("DROP REPOSITORY"), 1);
    // Steps the previous Pod finished were not run again.
    for step in [
        "preflight",
        "before_cluster_update",
        "before_restore_backup",
        "restore_backup_data",
    ] {
        assert_eq!(status["steps"][step]["attempts"], 1, "{step}");
    }
    assert_eq!(status["steps"]["await_restore"]["state"], "Succeeded");
    assert!(
        status["steps"]["validate_restore_complete"]["message"]
            .as_str()
            .unwrap()
            .starts_with("2 relation(s)"),
        "{status:#}"
    );
    // The previous release's copy of the request is left as it was (read raw: this model reads
    // it but never writes it); no record was needed.
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        h.client.clone(),
        common::NS,
        &kube::api::ApiResource::erase::<CrateDB>(&()),
    );
    let stored = raw.get(CLUSTER).await.unwrap().data["status"]["restore"].clone();
    assert_eq!(stored["request"], fixture["status"]["restore"]["request"]);
    assert!(stored.get("requestRecord").is_none(), "{stored:#}");
    assert_eq!(
        h.cr().await["spec"]["cluster"]["restoreSnapshot"]["snapshot"],
        ""
    );
    // (Not h.assert_no_secret_leaks: the stand-in for the previous Pod above wrote the
    // repository's credentials into CrateDB's jobs log itself.)
    for value in SECRET_VALUES {
        assert!(
            !h.logs.text().contains(value),
            "secret value in the Job's log"
        );
        assert!(
            !status.to_string().contains(value),
            "secret value in the status"
        );
    }
}
