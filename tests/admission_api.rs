//! The validating webhook's Kubernetes interactions (Secret checks, the lock, Job creation)
//! against an in-memory API server.

mod common;

use std::sync::Arc;

use common::*;
use cratedb_restore::admission::{Admission, Endpoint, encode_review};
use k8s_openapi::api::{batch::v1::Job, coordination::v1::Lease};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};

async fn validate(admission: &Admission, review: &Value) -> Value {
    let body = serde_json::to_vec(review).unwrap();
    let (review, _) = admission
        .review(Endpoint::Validate, &body)
        .await
        .expect("decodable");
    encode_review(&review)
}

async fn jobs(client: &kube::Client) -> Vec<Job> {
    Api::<Job>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

fn message(answer: &Value) -> &str {
    answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
}

const RUN: &str = "20261125082542-3fa9c1";
const RUN2: &str = "20261125090000-0b0b0b";

#[tokio::test]
async fn admitted_restore_creates_one_owned_job_and_warns_the_plan() {
    let client = fake_api(vec![restore_secret()]).await;
    let admission = admission(client.clone());
    let review = new_restore_review(
        "u1",
        RUN,
        json!({"type": "tables", "tables": ["doc.orders"]}),
        false,
    );
    let answer = validate(&admission, &review).await;
    assert_eq!(answer["response"]["uid"], "u1");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings: Vec<&str> = answer["response"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        warnings[0],
        r#"planned: RESTORE SNAPSHOT "restore_backup_20261125082542_3fa9c1"."snap-2024" TABLE "doc"."orders" WITH (wait_for_completion = false)"#
    );
    assert_eq!(
        warnings.last().unwrap(),
        &"restore Job dbs/restore-my-cluster-20261125082542-3fa9c1 created; follow it with: kubectl -n dbs logs -f job/restore-my-cluster-20261125082542-3fa9c1"
    );
    assert!(
        !answer.to_string().contains("s3cr3t"),
        "no secret value in the answer"
    );

    let jobs = jobs(&client).await;
    assert_eq!(jobs.len(), 1);
    let job = serde_json::to_value(&jobs[0]).unwrap();
    assert_eq!(
        job["metadata"]["name"],
        "restore-my-cluster-20261125082542-3fa9c1"
    );
    assert_eq!(
        job["metadata"]["labels"]["restore.cloud.crate.io/cluster"],
        CLUSTER
    );
    assert_eq!(
        job["metadata"]["labels"]["restore.cloud.crate.io/run-id"],
        RUN
    );
    assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], CLUSTER_UID);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["--namespace", NS, "--name", CLUSTER, "--run-id", RUN])
    );
    let lease = Api::<Lease>::namespaced(client.clone(), NS)
        .get("cratedb-restore-my-cluster")
        .await
        .unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some(RUN));

    // The API server may call again for the same request (timeouts, retries): same answer, no
    // second Job.
    let again = validate(&admission, &review).await;
    assert_eq!(again["response"]["allowed"], true, "{again}");
    assert_eq!(self::jobs(&client).await.len(), 1);
}

#[tokio::test]
async fn dry_run_previews_without_side_effects() {
    let client = fake_api(vec![restore_secret()]).await;
    let answer = validate(
        &admission(client.clone()),
        &new_restore_review("u2", RUN, json!({"type": "all"}), true),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings = answer["response"]["warnings"].to_string();
    assert!(
        warnings.contains(
            r#"RESTORE SNAPSHOT \"restore_backup_20261125082542_3fa9c1\".\"snap-2024\" ALL WITH"#
        ),
        "{warnings}"
    );
    assert!(
        warnings.contains("dry run: no restore Job was created"),
        "{warnings}"
    );
    assert!(jobs(&client).await.is_empty());
    let leases = Api::<Lease>::namespaced(client, NS)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(leases.items.is_empty());
}

#[tokio::test]
async fn secret_problems_are_denied_with_the_field_and_fix() {
    let partial = secret(
        SECRET,
        &[
            ("access-key-id", "AKIA"),
            ("secret-access-key", ""),
            ("base-path", "p"),
        ],
    );
    let client = fake_api(vec![partial]).await;
    let answer = validate(
        &admission(client.clone()),
        &new_restore_review("u3", RUN, json!({}), false),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 422);
    assert_eq!(
        message(&answer),
        r#"invalid restore request: spec.cluster.restoreSnapshot.bucket: Secret "restore-from-backup-my-cluster" has no key "bucket" (it has: access-key-id, base-path, secret-access-key); add the key or fix secretKeyRef.key; spec.cluster.restoreSnapshot.secretAccessKey: key "secret-access-key" of Secret "restore-from-backup-my-cluster" is empty; put the value into the Secret"#
    );
    let missing = fake_api(vec![]).await;
    let answer = validate(
        &admission(missing),
        &new_restore_review("u4", RUN, json!({}), false),
    )
    .await;
    assert!(message(&answer).starts_with(r#"invalid restore request: spec.cluster.restoreSnapshot.accessKeyId: Secret "restore-from-backup-my-cluster" does not exist in namespace "dbs"; create it there or fix secretKeyRef.name"#), "{answer}");
    assert!(jobs(&client).await.is_empty());
}

#[tokio::test]
async fn a_secret_the_requester_may_not_read_is_denied_without_its_keys() {
    // The Secret exists and is complete, but alice may not read it: the webhook must not read it
    // on her behalf (SPEC A24), nor tell her its keys.
    let client = fake_api_denying(vec![restore_secret()], &[SECRET]).await;
    let answer = validate(
        &admission(client.clone()),
        &new_restore_review("f1", RUN, json!({}), false),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 403);
    assert_eq!(answer["response"]["status"]["reason"], "Forbidden");
    assert_eq!(
        message(&answer),
        r#"a restore may only use Secrets its requester can read: spec.cluster.restoreSnapshot.accessKeyId, spec.cluster.restoreSnapshot.basePath, spec.cluster.restoreSnapshot.bucket, spec.cluster.restoreSnapshot.secretAccessKey: user "alice" may not get Secret "restore-from-backup-my-cluster" in namespace "dbs"; grant that user get on secrets/restore-from-backup-my-cluster in "dbs" (a Role and RoleBinding), or reference a Secret the user can read"#
    );
    for key in ["access-key-id", "secret-access-key", "base-path", "AKIA"] {
        assert!(!message(&answer).contains(key), "{key} revealed");
    }
    assert!(jobs(&client).await.is_empty());
}

#[tokio::test]
async fn a_namespace_without_the_job_account_is_denied_naming_the_chart_value() {
    let client = kube_fake_client::ClientBuilder::new()
        .with_objects(vec![restore_secret()])
        .build()
        .await
        .unwrap();
    let answer = validate(
        &admission(client.clone()),
        &new_restore_review("sa1", RUN, json!({}), true),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 422);
    assert_eq!(answer["response"]["status"]["reason"], "JobCannotRun");
    assert_eq!(
        message(&answer),
        r#"restores cannot run in namespace "dbs": the restore Job's ServiceAccount "cratedb-restore-job" does not exist; add "dbs" to the chart value restoreJob.namespaces (helm upgrade ... --set 'restoreJob.namespaces={dbs}'), which creates the account and its Role there"#
    );
}

/// An API whose Job creations land at once but answer only after `delay`: the review's budget
/// runs out while the Job and the Lease exist.
async fn slow_job_creation(delay: std::time::Duration) -> (kube::Client, kube::Client) {
    let inner = fake_api(vec![restore_secret()]).await;
    let store = inner.clone();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        async move {
            let slow =
                request.method() == http::Method::POST && request.uri().path().ends_with("/jobs");
            let answer = inner.send(request).await;
            if slow {
                tokio::time::sleep(delay).await;
            }
            answer
        }
    });
    (kube::Client::new(service, NS), store)
}

#[tokio::test]
async fn a_review_that_runs_out_of_time_is_denied_and_leaves_no_lock() {
    let (client, store) = slow_job_creation(std::time::Duration::from_millis(1500)).await;
    let mut admission = admission(client);
    admission.review_budget = std::time::Duration::from_millis(500);
    let started = std::time::Instant::now();
    let answer = validate(&admission, &new_restore_review("t1", RUN, json!({}), false)).await;
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1000),
        "answered within the budget"
    );
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 504);
    assert_eq!(answer["response"]["status"]["reason"], "Timeout");
    assert!(
        message(&answer).contains(&format!(
            "while trying to create restore Job {NS}/restore-my-cluster-{RUN}"
        )),
        "{answer}"
    );
    // The Job and the Lease the review created are removed behind the denial, so the next
    // request is not locked out.
    let leases: Api<Lease> = Api::namespaced(store.clone(), NS);
    let mut gone = false;
    for _ in 0..100 {
        let lease = leases
            .get_opt(&format!("cratedb-restore-{CLUSTER}"))
            .await
            .unwrap();
        if lease.is_none() && jobs(&store).await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone, "lease or job left: {:?}", jobs(&store).await);
    let retry = validate(
        &common::admission(store.clone()),
        &new_restore_review("t2", RUN2, json!({}), false),
    )
    .await;
    assert_eq!(retry["response"]["allowed"], true, "{retry}");
}

#[tokio::test]
async fn a_second_restore_is_denied_while_the_first_job_runs() {
    let client = fake_api(vec![restore_secret()]).await;
    let admission = admission(client.clone());
    let first = validate(&admission, &new_restore_review("a", RUN, json!({}), false)).await;
    assert_eq!(first["response"]["allowed"], true);
    let second = validate(
        &admission,
        &new_restore_review("b", RUN2, json!({"type": "all"}), false),
    )
    .await;
    assert_eq!(second["response"]["allowed"], false);
    assert_eq!(second["response"]["status"]["code"], 409);
    assert_eq!(second["response"]["status"]["reason"], "RestoreInProgress");
    assert_eq!(
        message(&second),
        "a restore of dbs/my-cluster is already running (run 20261125082542-3fa9c1, Job restore-my-cluster-20261125082542-3fa9c1); wait until it finishes (kubectl -n dbs get job restore-my-cluster-20261125082542-3fa9c1) and apply again"
    );
    // Dry-run sees the same conflict.
    let dry = validate(&admission, &new_restore_review("c", RUN2, json!({}), true)).await;
    assert_eq!(dry["response"]["status"]["code"], 409);
    assert_eq!(jobs(&client).await.len(), 1);
}

#[tokio::test]
async fn a_finished_job_releases_the_cluster() {
    let client = fake_api(vec![restore_secret()]).await;
    let admission = admission(client.clone());
    assert_eq!(
        validate(&admission, &new_restore_review("a", RUN, json!({}), false)).await["response"]["allowed"],
        true
    );
    let name = "restore-my-cluster-20261125082542-3fa9c1";
    Api::<Job>::namespaced(client.clone(), NS)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
            ),
        )
        .await
        .unwrap();
    // The stored status still says Running for the old run: stale, so a warning, not a denial.
    let stored = cratedb(
        Some(json!({"snapshot": ""})),
        Some(RUN),
        Some(json!({"restore": {"runId": RUN, "phase": "Running"}})),
    );
    let new = cratedb(Some(restore_snapshot(json!({}))), Some(RUN2), None);
    let answer = validate(
        &admission,
        &review("b", "UPDATE", Some(new), Some(stored), false),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"]["warnings"].to_string().contains(
        "status.restore says run 20261125082542-3fa9c1 is Running, but its Job is gone or finished; treating that run as abandoned"
    ));
    assert_eq!(jobs(&client).await.len(), 2);
    let lease = Api::<Lease>::namespaced(client, NS)
        .get("cratedb-restore-my-cluster")
        .await
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(RUN2),
        "stale lease taken over"
    );
}

#[tokio::test]
async fn concurrent_requests_create_exactly_one_job() {
    let client = fake_api(vec![restore_secret()]).await;
    let admission = Arc::new(admission(client.clone()));
    let tasks: Vec<_> = (0..25)
        .map(|i| {
            let admission = admission.clone();
            tokio::spawn(async move {
                let run = format!("20261125082542-{i:06x}");
                validate(
                    &admission,
                    &new_restore_review(&format!("u{i}"), &run, json!({}), false),
                )
                .await
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        if answer["response"]["allowed"] == true {
            allowed += 1;
        } else {
            assert_eq!(answer["response"]["status"]["code"], 409, "{answer}");
        }
    }
    assert_eq!(allowed, 1);
    assert_eq!(jobs(&client).await.len(), 1);
}

#[tokio::test]
async fn updates_that_are_not_new_restores_pass_without_api_calls() {
    // No Secrets exist: any lookup would deny, so passing proves none happened.
    let client = fake_api(vec![]).await;
    let admission = admission(client.clone());
    let running = cratedb(
        Some(restore_snapshot(json!({"type": "tables"}))),
        Some(RUN),
        Some(json!({"restore": {"runId": RUN, "phase": "Running"}})),
    );
    let mut status_write = running.clone();
    status_write["status"]["restore"]["progressPercent"] = json!(42);
    let reset = cratedb(
        Some(json!({"snapshot": "", "backupProvider": "aws"})),
        Some(RUN),
        Some(json!({"restore": {"runId": RUN, "phase": "Succeeded"}})),
    );
    let mut unrelated = running.clone();
    unrelated["spec"]["nodes"]["data"][0]["replicas"] = json!(5);
    for (name, answer) in [
        (
            "status",
            validate(
                &admission,
                &review(
                    "s",
                    "UPDATE",
                    Some(status_write),
                    Some(running.clone()),
                    false,
                ),
            )
            .await,
        ),
        (
            "reset",
            validate(
                &admission,
                &review("r", "UPDATE", Some(reset), Some(running.clone()), false),
            )
            .await,
        ),
        (
            "unrelated",
            validate(
                &admission,
                &review("x", "UPDATE", Some(unrelated), Some(running.clone()), false),
            )
            .await,
        ),
        (
            "delete",
            validate(
                &admission,
                &review("d", "DELETE", None, Some(running.clone()), false),
            )
            .await,
        ),
    ] {
        assert_eq!(answer["response"]["allowed"], true, "{name}: {answer}");
        assert!(answer["response"].get("warnings").is_none(), "{name}");
    }
    assert!(jobs(&client).await.is_empty());
}

#[tokio::test]
async fn a_request_the_mutating_webhook_never_saw_is_denied() {
    let client = fake_api(vec![restore_secret()]).await;
    let stored = cratedb(Some(json!({"snapshot": ""})), Some(RUN), None);
    // Same annotation as stored: the run id belongs to the previous run.
    let new = cratedb(Some(restore_snapshot(json!({}))), Some(RUN), None);
    let answer = validate(
        &admission(client.clone()),
        &review("m", "UPDATE", Some(new), Some(stored), false),
    )
    .await;
    assert_eq!(answer["response"]["status"]["code"], 500);
    assert_eq!(answer["response"]["status"]["reason"], "MissingRunId");
    assert!(message(&answer).contains("MutatingWebhookConfiguration"));
    assert!(jobs(&client).await.is_empty());
}

/// A new restore review whose object carries these option annotations (and the run id).
fn with_annotations(mut review: Value, pairs: &[(&str, &str)]) -> Value {
    let annotations = &mut review["request"]["object"]["metadata"]["annotations"];
    if annotations.is_null() {
        *annotations = json!({});
    }
    for (k, v) in pairs {
        annotations[*k] = json!(v);
    }
    review
}

#[tokio::test]
async fn options_are_validated_and_shown_in_the_plan() {
    let client = fake_api(vec![restore_secret()]).await;
    let admission = admission(client.clone());
    let bad = with_annotations(
        new_restore_review("o1", RUN, json!({}), true),
        &[
            ("restore.cloud.crate.io/table-rename-pattern", "(?i)orders"),
            ("restore.cloud.crate.io/on-conflict", "overwrite"),
        ],
    );
    let answer = validate(&admission, &bad).await;
    assert_eq!(answer["response"]["status"]["code"], 422);
    assert_eq!(
        message(&answer),
        r#"invalid restore request: metadata.annotations["restore.cloud.crate.io/table-rename-pattern"]: uses inline flags, which is not supported; CrateDB reads it as a Java regular expression; metadata.annotations["restore.cloud.crate.io/on-conflict"]: "overwrite" is not a choice; use fail (the default) or skip"#
    );
    let good = with_annotations(
        new_restore_review("o2", RUN, json!({"tables": ["doc.orders"]}), true),
        &[
            (
                "restore.cloud.crate.io/schema-rename-replacement",
                "restored",
            ),
            ("restore.cloud.crate.io/on-conflict", "skip"),
        ],
    );
    let answer = validate(&admission, &good).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings = answer["response"]["warnings"].to_string();
    assert!(
        warnings.contains(r#"TABLE \"doc\".\"orders\" WITH (wait_for_completion = false, schema_rename_replacement = 'restored')"#),
        "{warnings}"
    );
    assert!(warnings.contains("on-conflict: skip"), "{warnings}");
}

fn operator_admission(client: kube::Client) -> Admission {
    let mut admission = admission(client);
    admission.runner = cratedb_restore::admission::runner::RestoreRunner::Operator;
    admission
}

#[tokio::test]
async fn beside_a_stock_operator_the_webhook_validates_previews_and_guards_only() {
    let client = fake_api(vec![restore_secret()]).await;
    let admission = operator_admission(client.clone());
    // The mutating webhook writes the defaults, no run id and no status.
    let stored = cratedb(Some(json!({"snapshot": ""})), None, None);
    let new = cratedb(Some(restore_snapshot(json!({}))), None, None);
    let mutate_body = review(
        "m1",
        "UPDATE",
        Some(new.clone()),
        Some(stored.clone()),
        false,
    );
    let (answer, _) = admission
        .review(Endpoint::Mutate, &serde_json::to_vec(&mutate_body).unwrap())
        .await
        .unwrap();
    let patch = patch_of(&encode_review(&answer));
    let paths: Vec<&str> = patch
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/spec/cluster/restoreSnapshot/type",
            "/spec/cluster/restoreSnapshot/backupProvider"
        ]
    );
    // Admitted with the operator's preview, and nothing created.
    let answer = validate(
        &admission,
        &review("v1", "UPDATE", Some(new.clone()), Some(stored), false),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        answer["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with(r#"planned (by the CrateDB operator): RESTORE SNAPSHOT "<operator repository>"."snap-2024" ALL"#),
        "{answer}"
    );
    assert!(jobs(&client).await.is_empty());
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    assert!(
        leases
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // The operator's lock: a different request while its restore is stored is refused.
    let running = cratedb(Some(restore_snapshot(json!({}))), None, None);
    let other = cratedb(
        Some(restore_snapshot(json!({"snapshot": "snap-2025"}))),
        None,
        None,
    );
    let answer = validate(
        &admission,
        &review("v2", "UPDATE", Some(other), Some(running), false),
    )
    .await;
    assert_eq!(answer["response"]["status"]["code"], 409);
    assert!(
        message(&answer).starts_with(r#"the CrateDB operator is restoring snapshot "snap-2024""#),
        "{answer}"
    );
    // Options the operator would ignore are refused.
    let with_option = with_annotations(
        review(
            "v3",
            "UPDATE",
            Some(new),
            Some(cratedb(Some(json!({"snapshot": ""})), None, None)),
            false,
        ),
        &[("restore.cloud.crate.io/on-conflict", "skip")],
    );
    let answer = validate(&admission, &with_option).await;
    assert_eq!(answer["response"]["status"]["code"], 422);
    assert!(message(&answer).contains("would ignore it"), "{answer}");
}
