//! The scenarios run against the real API server: what a user sees with kubectl when asking for
//! restores, what ends up in the cluster, and what each identity may do.

use std::{path::PathBuf, sync::Arc, time::Duration};

use k8s_openapi::api::{authorization::v1::SelfSubjectAccessReview, batch::v1::Job};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::{
    chart::{self, FULLNAME, RELEASE_NS, Rendered, WEBHOOK_NAME},
    harness::{
        Cluster, Kubectl, Run, Transcript, Webhook, WebhookOptions, b64, client_from, helm, tail,
        wait_until,
    },
};

/// Namespace of most CrateDB resources. Its restore-Job Role lists cluster `rbac-1`, so Secret
/// access there is limited to that cluster's Secrets.
pub(crate) const NS: &str = "dbs";
/// A CrateDB namespace listed by name only (Secret access not limited to names).
const NS_PLAIN: &str = "dbs2";
const NS_OTHER: &str = "other";
const JOB_SA: &str = "cratedb-restore-job";
pub(crate) const DENIED: &str =
    "admission webhook \"validate.restore.cloud.crate.io\" denied the request: ";
const JOB_SELECTOR: &str =
    "app.kubernetes.io/component=restore-job,restore.cloud.crate.io/cluster=";

type Scenario = fn(&Env);

pub const ALL: &[(&str, Scenario)] = &[
    (
        "invalid_requests_are_denied_with_the_rule",
        invalid_requests_are_denied_with_the_rule,
    ),
    (
        "dry_run_previews_the_plan_without_a_job",
        dry_run_previews_the_plan_without_a_job,
    ),
    (
        "admitted_restore_creates_one_owned_job",
        admitted_restore_creates_one_owned_job,
    ),
    (
        "one_restore_at_a_time_and_resets_pass",
        one_restore_at_a_time_and_resets_pass,
    ),
    (
        "concurrent_requests_create_exactly_one_job",
        concurrent_requests_create_exactly_one_job,
    ),
    (
        "restore_job_rbac_allows_exactly_its_calls",
        restore_job_rbac_allows_exactly_its_calls,
    ),
    (
        "webhook_runs_on_its_own_least_privilege_rbac",
        webhook_runs_on_its_own_least_privilege_rbac,
    ),
    (
        "without_the_mutating_webhook_restores_are_denied",
        without_the_mutating_webhook_restores_are_denied,
    ),
    (
        "helm_install_and_upgrade_keep_the_certificate",
        helm_install_and_upgrade_keep_the_certificate,
    ),
    (
        "the_restore_job_runs_to_success_on_the_real_api_server",
        the_restore_job_runs_to_success_on_the_real_api_server,
    ),
    (
        "a_terminated_job_leaves_its_run_for_the_next_pod",
        a_terminated_job_leaves_its_run_for_the_next_pod,
    ),
    (
        "a_cancel_through_the_webhooks_stops_the_running_restore",
        a_cancel_through_the_webhooks_stops_the_running_restore,
    ),
    (
        "the_job_lists_the_snapshots_of_the_clusters_backups",
        the_job_lists_the_snapshots_of_the_clusters_backups,
    ),
    (
        "a_cluster_created_with_a_restore_gets_an_owned_job",
        a_cluster_created_with_a_restore_gets_an_owned_job,
    ),
    (
        "one_request_one_run_however_it_is_written",
        one_request_one_run_however_it_is_written,
    ),
    (
        "secrets_only_for_requesters_who_may_read_them",
        secrets_only_for_requesters_who_may_read_them,
    ),
    (
        "restores_only_where_the_job_account_exists",
        restores_only_where_the_job_account_exists,
    ),
    (
        "beside_a_stock_operator_requests_are_checked_not_run",
        beside_a_stock_operator_requests_are_checked_not_run,
    ),
    (
        "plugin_follows_a_restore_from_kubectl",
        crate::plugin::plugin_follows_a_restore_from_kubectl,
    ),
];

/// The API server, the webhook and the clients. Fields drop in order: webhook, then cluster.
pub struct Env {
    webhook: Webhook,
    rt: tokio::runtime::Runtime,
    admin: Client,
    pub(crate) kubectl: Kubectl,
    pub(crate) transcript: Transcript,
    rendered: Rendered,
    pub(crate) cluster: Cluster,
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn values(url: &str, ca_bundle: &str) -> Value {
    json!({
        "webhook": {"url": url, "caBundle": ca_bundle},
        "restoreJob": {"namespaces": [{"name": NS, "clusters": ["rbac-1"]}, NS_PLAIN]}
    })
}

impl Env {
    pub fn start() -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Fail early, with instructions, when a tool is missing.
        helm();
        crate::harness::kubectl_binary();
        let cluster = Cluster::start();
        let transcript = Transcript::default();
        let kubectl = cluster.kubectl(transcript.clone());
        kubectl
            .apply(&[
                namespace(RELEASE_NS),
                namespace(NS),
                namespace(NS_PLAIN),
                namespace(NS_OTHER),
            ])
            .ok();
        cluster.install_crd(&kubectl);

        // The chart's RBAC first: the webhook runs with a token of ITS ServiceAccount.
        let first = chart::render("1.20.2", &values("", ""));
        let rbac: Vec<Value> = first
            .docs
            .iter()
            .filter(|d| {
                matches!(
                    d["kind"].as_str(),
                    Some(
                        "ServiceAccount"
                            | "ClusterRole"
                            | "ClusterRoleBinding"
                            | "Role"
                            | "RoleBinding"
                    )
                )
            })
            .cloned()
            .collect();
        assert!(rbac.len() >= 7, "{rbac:#?}");
        kubectl.apply(&rbac).ok();
        let job_template = cluster.state.join("job-template.yaml");
        std::fs::write(&job_template, first.job_template_yaml()).unwrap();
        let token = kubectl.token_for(RELEASE_NS, WEBHOOK_NAME);
        let webhook_kubeconfig = cluster.token_kubeconfig("webhook-sa", &token);
        let webhook = Webhook::start(WebhookOptions {
            dir: &cluster.state,
            name: "webhook",
            kubeconfig: Some(&webhook_kubeconfig),
            job_template: Some(&job_template),
            tls_files: None,
            extra_args: &[],
        });

        // Then the webhook configurations, pointing at it (webhook.url + caBundle).
        let rendered = chart::render(
            "1.20.2",
            &values(&webhook.url(), &b64(webhook.cert_pem.as_bytes())),
        );
        let configs: Vec<Value> = rendered
            .docs
            .iter()
            .filter(|d| {
                d["kind"]
                    .as_str()
                    .is_some_and(|k| k.ends_with("WebhookConfiguration"))
            })
            .cloned()
            .collect();
        // The CrateDB webhooks and the uninstall guard (which only judges the chart's own
        // pre-delete hook ConfigMap).
        assert_eq!(configs.len(), 3);
        kubectl.apply(&configs).ok();

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let admin = rt.block_on(client_from(&cluster.kubeconfig));
        let env = Env {
            webhook,
            rt,
            admin,
            kubectl,
            transcript,
            rendered,
            cluster,
        };
        // The API server picks up webhook configurations and RBAC asynchronously: wait until a
        // request is really checked by our webhook.
        let probe = cratedb("probe", NS_PLAIN, Some(aws_restore("no-such-secret", "s")));
        wait_until(
            "the API server calls the webhooks",
            Duration::from_secs(30),
            || {
                let run = env.apply_dry(&probe);
                run.stderr
                    .contains("Secret \"no-such-secret\" does not exist")
                    .then_some(())
            },
        );
        env
    }

    pub fn keep_state(&self) {
        self.cluster.keep();
    }

    /// Logs and recent commands, printed when a scenario fails.
    pub fn diagnostics(&self) -> String {
        let transcript: Vec<String> = self.transcript.lock().unwrap().iter().cloned().collect();
        let readyz = crate::harness::http_get(self.webhook.health_port, "/readyz")
            .map_or("no answer (not running?)".to_string(), |(code, _)| {
                code.to_string()
            });
        format!(
            "==== kube-apiserver.log (last errors and warnings) ====\n{}\n==== webhook log (tail; /readyz: {readyz}) ====\n{}\n==== last kubectl commands ====\n{}\n==== state dir: {} ====",
            apiserver_problems(&self.cluster.apiserver_log()),
            tail(&self.webhook.log, 60),
            transcript.join("\n\n"),
            self.cluster.state.display()
        )
    }

    pub(crate) fn apply(&self, object: &Value) -> Run {
        self.kubectl
            .run_stdin(&["apply", "-f", "-"], &object.to_string())
    }

    fn apply_dry(&self, object: &Value) -> Run {
        self.kubectl.run_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            &object.to_string(),
        )
    }

    pub(crate) fn get(&self, kind: &str, ns: &str, name: &str) -> Value {
        self.kubectl.get_json(&["get", kind, name, "-n", ns])
    }

    pub(crate) fn jobs_of(&self, ns: &str, cluster: &str) -> Vec<Value> {
        let list = self.kubectl.get_json(&[
            "get",
            "jobs",
            "-n",
            ns,
            "-l",
            &format!("{JOB_SELECTOR}{cluster}"),
        ]);
        list["items"].as_array().cloned().unwrap_or_default()
    }

    fn cratedbs(&self, ns: &str) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("cloud.crate.io", "v1", "CrateDB");
        Api::namespaced_with(
            self.admin.clone(),
            ns,
            &ApiResource::from_gvk_with_plural(&gvk, "cratedbs"),
        )
    }

    /// A client for `namespace/service_account`, with a freshly minted token.
    fn client_for(&self, namespace: &str, service_account: &str) -> (Kubectl, Client) {
        let token = self.kubectl.token_for(namespace, service_account);
        let who = format!("{namespace}:{service_account}");
        let path: PathBuf = self
            .cluster
            .token_kubeconfig(&who.replace(':', "-"), &token);
        let client = self.rt.block_on(client_from(&path));
        (self.kubectl.as_token(&who, &token), client)
    }

    /// SelfSubjectAccessReview as `client`: may it `verb` `resource` ("group/resource",
    /// "resource" for the core group, "/subresource" appended)?
    fn can(
        &self,
        client: &Client,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        let (group, rest) = match resource.split_once('/') {
            Some((g, r)) if g.contains('.') || g == "batch" || g == "apps" => (g, r),
            _ => ("", resource),
        };
        let (resource, subresource) = match rest.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (rest, None),
        };
        let review: SelfSubjectAccessReview = serde_json::from_value(json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "group": group, "resource": resource, "subresource": subresource,
                "verb": verb, "namespace": ns, "name": name}}
        }))
        .unwrap();
        let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
        let answer = self
            .rt
            .block_on(api.create(&PostParams::default(), &review))
            .expect("SelfSubjectAccessReview");
        answer.status.is_some_and(|s| s.allowed)
    }
}

/// The last error and warning lines of the API server's log (klog: E.../W... prefixes), which
/// say more than its tail of informational lines.
fn apiserver_problems(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('E') || l.starts_with('W'))
        .collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

// --- builders -------------------------------------------------------------------------------

pub(crate) fn cratedb(name: &str, ns: &str, restore: Option<Value>) -> Value {
    let mut cr = json!({
        "apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "cluster": {"imageRegistry": "crate", "name": format!("cluster-{name}"), "version": "5.10.3"},
            "nodes": {"data": [{"name": "hot", "replicas": 3}]}
        }
    });
    if let Some(r) = restore {
        cr["spec"]["cluster"]["restoreSnapshot"] = r;
    }
    cr
}

fn secret_ref(secret: &str, key: &str) -> Value {
    json!({"secretKeyRef": {"name": secret, "key": key}})
}

pub(crate) fn aws_restore(secret: &str, snapshot: &str) -> Value {
    json!({
        "snapshot": snapshot,
        "accessKeyId": secret_ref(secret, "access-key-id"),
        "secretAccessKey": secret_ref(secret, "secret-access-key"),
        "bucket": secret_ref(secret, "bucket"),
        "basePath": secret_ref(secret, "base-path"),
    })
}

pub(crate) fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

pub(crate) const SECRET_VALUE: &str = "s3cr3t/K3y+with'quote";

pub(crate) fn restore_secret(name: &str, ns: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
        "stringData": {
            "access-key-id": "AKIAEXAMPLEEXAMPLE", "secret-access-key": SECRET_VALUE,
            "bucket": "backups", "base-path": "clusters/prod",
            "account-key": "azure-key", "account-name": "azure-account", "container": "c",
            "empty": ""
        }
    })
}

fn run_id_of(cr: &Value) -> String {
    cr["metadata"]["annotations"]["restore.cloud.crate.io/run-id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run-id annotation: {cr:#}"))
        .to_string()
}

fn repository_of(run_id: &str) -> String {
    format!("restore_backup_{}", run_id.replace('-', "_"))
}

// --- scenarios ------------------------------------------------------------------------------

/// One case per rule. The CRD schema (enums, required fields) rejects some requests before the
/// validating webhook sees them; those assert the schema's message and that no webhook denied.
fn invalid_requests_are_denied_with_the_rule(env: &Env) {
    let secret = "restore-from-backup-inv";
    env.apply(&restore_secret(secret, NS)).ok();
    let base = || aws_restore(secret, "snap-1");
    let mut azure = with(
        base(),
        json!({"backupProvider": "azure_blob",
               "accountKey": secret_ref(secret, "account-key"),
               "accountName": secret_ref(secret, "account-name")}),
    );
    for k in ["accessKeyId", "secretAccessKey", "bucket"] {
        azure.as_object_mut().unwrap().remove(k);
    }
    // (case, restoreSnapshot, expected message; true = our webhook denies, false = the CRD)
    let cases: Vec<(&str, Value, String, bool)> = vec![
        (
            "unknown type",
            with(base(), json!({"type": "everything"})),
            r#"spec.cluster.restoreSnapshot.type: Unsupported value: "everything""#.into(),
            false,
        ),
        (
            "unknown section",
            with(base(), json!({"type": "sections", "sections": ["tables", "indices"]})),
            // (1.20 names the list, newer servers the item: sections[1])
            r#"Unsupported value: "indices": supported values: "tables", "views", "users", "privileges", "analyzers", "udfs""#.into(),
            false,
        ),
        (
            "unknown backupProvider",
            with(base(), json!({"backupProvider": "gcs"})),
            r#"spec.cluster.restoreSnapshot.backupProvider: Unsupported value: "gcs""#.into(),
            false,
        ),
        (
            "secretKeyRef without key",
            with(base(), json!({"bucket": {"secretKeyRef": {"name": secret}}})),
            "spec.cluster.restoreSnapshot.bucket.secretKeyRef.key: Required value".into(),
            false,
        ),
        (
            "partition without columns",
            with(base(), json!({"type": "partitions", "partitions": [{"table_ident": "doc.t"}]})),
            // (1.20 leaves the index out of the path: partitions.columns)
            "columns: Required value".into(),
            false,
        ),
        (
            "secretKeyRef with an empty key",
            with(base(), json!({"bucket": secret_ref(secret, "")})),
            "spec.cluster.restoreSnapshot.bucket.secretKeyRef.key: is missing; name the key inside the Secret that holds the value".into(),
            true,
        ),
        (
            "missing provider field (azure without container)",
            azure,
            "spec.cluster.restoreSnapshot.container: is required for backupProvider azure_blob; add container: {secretKeyRef: {name: <secret>, key: <key>}}".into(),
            true,
        ),
        (
            "missing Secret",
            aws_restore("no-such-secret", "snap-1"),
            format!(r#"spec.cluster.restoreSnapshot.accessKeyId: Secret "no-such-secret" does not exist in namespace "{NS}"; create it there or fix secretKeyRef.name"#),
            true,
        ),
        (
            "missing key",
            with(base(), json!({"bucket": secret_ref(secret, "bukket")})),
            format!(r#"spec.cluster.restoreSnapshot.bucket: Secret "{secret}" has no key "bukket" (it has: access-key-id, account-key, account-name, base-path, bucket, container, empty, secret-access-key); add the key or fix secretKeyRef.key"#),
            true,
        ),
        (
            "empty value",
            with(base(), json!({"basePath": secret_ref(secret, "empty")})),
            format!(r#"spec.cluster.restoreSnapshot.basePath: key "empty" of Secret "{secret}" is empty; put the value into the Secret"#),
            true,
        ),
        (
            "bad table name",
            with(base(), json!({"type": "tables", "tables": ["doc.orders", "doc."]})),
            r#"spec.cluster.restoreSnapshot.tables[1]: "doc." cannot be parsed: the table part after the dot is empty"#.into(),
            true,
        ),
        (
            "bad partition literal",
            with(base(), json!({"type": "partitions", "partitions": [
                {"table_ident": "doc.t", "columns": [{"name": "day", "value": "1; DROP TABLE doc.t"}]}]})),
            r#"spec.cluster.restoreSnapshot.partitions[0].columns[0].value: "1; DROP TABLE doc.t" is not one SQL literal"#.into(),
            true,
        ),
        (
            "type sections without sections",
            with(base(), json!({"type": "sections"})),
            "spec.cluster.restoreSnapshot.sections: type sections needs at least one section".into(),
            true,
        ),
        (
            "type partitions without partitions",
            with(base(), json!({"type": "partitions", "partitions": []})),
            "spec.cluster.restoreSnapshot.partitions: type partitions needs at least one partition".into(),
            true,
        ),
    ];
    for (i, (case, restore, expected, by_webhook)) in cases.iter().enumerate() {
        let name = format!("inv-{i}");
        let run = env.apply(&cratedb(&name, NS, Some(restore.clone())));
        assert!(
            !run.status.success(),
            "{case}: admitted:\n{}",
            run.describe()
        );
        if *by_webhook {
            let full = format!("{DENIED}invalid restore request: {expected}");
            assert!(
                run.stderr.contains(&full),
                "{case}: expected {full:?}:\n{}",
                run.describe()
            );
        } else {
            assert!(
                run.stderr.contains(expected.as_str())
                    && run
                        .stderr
                        .contains("is invalid: spec.cluster.restoreSnapshot.")
                    && !run.stderr.contains(DENIED),
                "{case}: expected the CRD schema's {expected:?}:\n{}",
                run.describe()
            );
        }
        assert!(
            !run.stderr.contains(SECRET_VALUE),
            "{case}: a secret value leaked"
        );
    }
    // The same denial as an update of an existing resource, and its HTTP code (422 Invalid).
    env.apply(&cratedb("inv-update", NS, None)).ok();
    let patch = json!({"spec": {"cluster": {"restoreSnapshot": with(base(), json!({"type": "sections"}))}}});
    let err = env
        .rt
        .block_on(env.cratedbs(NS).patch(
            "inv-update",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        ))
        .expect_err("denied");
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert_eq!(status.reason, "Invalid", "{status:?}");
            assert!(status.message.starts_with(DENIED), "{status:?}");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    // Nothing was stored and no Job was created.
    let names: Vec<String> = env.kubectl.get_json(&["get", "cratedbs", "-n", NS])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("inv-") && n != "inv-update"),
        "{names:?}"
    );
    let jobs = env.kubectl.get_json(&["get", "jobs", "-n", NS]);
    assert!(
        jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| !j["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("restore-inv")),
        "{jobs:#}"
    );
}

fn dry_run_previews_the_plan_without_a_job(env: &Env) {
    env.apply(&restore_secret("restore-from-backup-preview", NS))
        .ok();
    env.apply(&cratedb("preview", NS, None)).ok();
    let request = cratedb(
        "preview",
        NS,
        Some(with(
            aws_restore("restore-from-backup-preview", "snap-preview"),
            json!({"type": "tables", "tables": ["doc.orders", "sales.\"Q1\""]}),
        )),
    );
    let run = env.apply_dry(&request).ok();
    let warnings = run.warnings();
    assert!(
        warnings[0].starts_with("planned: RESTORE SNAPSHOT \"restore_backup_")
            && warnings[0].ends_with(
                r#"."snap-preview" TABLE "doc"."orders", "sales"."Q1" WITH (wait_for_completion = false)"#
            ),
        "{}",
        run.describe()
    );
    assert!(
        warnings.iter().any(|w| w.starts_with(&format!(
            "dry run: no restore Job was created; a real apply creates Job {NS}/restore-preview-"
        ))),
        "{}",
        run.describe()
    );
    assert!(!run.stderr.contains(SECRET_VALUE) && !run.stderr.contains("AKIAEXAMPLE"));
    // Nothing happened: no Job, no lock, the stored object is unchanged.
    assert!(env.jobs_of(NS, "preview").is_empty());
    env.kubectl
        .run(&["get", "lease", "cratedb-restore-preview", "-n", NS])
        .fails()
        .stderr_has("NotFound");
    let stored = env.get("cratedb", NS, "preview");
    assert!(
        stored["metadata"]["annotations"]
            .get("restore.cloud.crate.io/run-id")
            .is_none()
    );
    assert!(stored["spec"]["cluster"].get("restoreSnapshot").is_none());
    assert!(stored.get("status").is_none() || stored["status"].get("restore").is_none());
}

fn admitted_restore_creates_one_owned_job(env: &Env) {
    env.apply(&restore_secret("restore-from-backup-valid", NS))
        .ok();
    env.apply(&cratedb("valid", NS, None)).ok();
    let request = cratedb(
        "valid",
        NS,
        Some(with(
            aws_restore("restore-from-backup-valid", "snap-1"),
            json!({"tables": ["doc.orders"]}),
        )),
    );
    let run = env.apply(&request).ok();
    let cr = env.get("cratedb", NS, "valid");
    let run_id = run_id_of(&cr);
    let job_name = format!("restore-valid-{run_id}");
    let warnings = run.warnings();
    assert_eq!(
        warnings.first().map(String::as_str),
        Some(
            format!(
                r#"planned: RESTORE SNAPSHOT "{}"."snap-1" TABLE "doc"."orders" WITH (wait_for_completion = false)"#,
                repository_of(&run_id)
            )
            .as_str()
        ),
        "{}",
        run.describe()
    );
    assert_eq!(
        warnings.last().map(String::as_str),
        Some(format!("restore Job {NS}/{job_name} created; follow it with: kubectl -n {NS} logs -f job/{job_name}").as_str()),
        "{}",
        run.describe()
    );

    // The resource: run id, defaults, Pending status.
    let rs = &cr["spec"]["cluster"]["restoreSnapshot"];
    assert_eq!(rs["type"], "tables", "default type written");
    assert_eq!(rs["backupProvider"], "aws", "default provider written");
    let status = &cr["status"]["restore"];
    assert_eq!(status["phase"], "Pending", "{cr:#}");
    assert_eq!(status["runId"], run_id.as_str());
    assert_eq!(status["jobName"], job_name.as_str());
    assert_eq!(status["snapshot"], "snap-1");

    // Exactly one Job, with labels, owner and arguments.
    let jobs = env.jobs_of(NS, "valid");
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let job = &jobs[0];
    assert_eq!(job["metadata"]["name"], job_name.as_str());
    let labels = &job["metadata"]["labels"];
    for (k, v) in [
        ("app.kubernetes.io/name", "cratedb-restore"),
        ("app.kubernetes.io/component", "restore-job"),
        ("restore.cloud.crate.io/cluster", "valid"),
        ("restore.cloud.crate.io/run-id", run_id.as_str()),
    ] {
        assert_eq!(labels[k], v, "label {k}: {labels:#}");
    }
    let owners = job["metadata"]["ownerReferences"]
        .as_array()
        .expect("ownerReferences");
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["apiVersion"], "cloud.crate.io/v1");
    assert_eq!(owners[0]["kind"], "CrateDB");
    assert_eq!(owners[0]["name"], "valid");
    assert_eq!(owners[0]["uid"], cr["metadata"]["uid"]);
    assert_eq!(owners[0]["controller"], true);
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "restore");
    assert_eq!(
        container["args"],
        json!(["--namespace", NS, "--name", "valid", "--run-id", run_id])
    );
    // Everything else comes from the chart's Job template.
    let template = env.rendered.job_template();
    assert_eq!(
        container["image"],
        template["spec"]["template"]["spec"]["containers"][0]["image"]
    );
    assert_eq!(
        container["command"],
        json!(["/usr/local/bin/cratedb-restore-job"])
    );
    assert_eq!(
        container["env"],
        template["spec"]["template"]["spec"]["containers"][0]["env"]
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["serviceAccountName"], JOB_SA);
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(
        job["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"],
        "false"
    );
    assert_eq!(job["spec"]["backoffLimit"], 2);
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 88200);
    // ttlSecondsAfterFinished is alpha (feature gate off) in 1.20: the API server drops it.
    assert!(
        matches!(
            job["spec"].get("ttlSecondsAfterFinished"),
            None | Some(Value::Null)
        ) || job["spec"]["ttlSecondsAfterFinished"] == 86400,
        "{job:#}"
    );

    // The lock and the commands NOTES.txt tells users to run.
    let lease = env.get("lease", NS, "cratedb-restore-valid");
    assert_eq!(lease["spec"]["holderIdentity"], run_id.as_str());
    let phase = env
        .kubectl
        .run(&[
            "get",
            "cratedb",
            "valid",
            "-n",
            NS,
            "-o",
            "jsonpath={.status.restore.phase}",
        ])
        .ok();
    assert_eq!(phase.stdout, "Pending");
    let listed = env
        .kubectl
        .run(&[
            "get",
            "jobs",
            "-n",
            NS,
            "-l",
            &format!("{JOB_SELECTOR}valid"),
        ])
        .ok();
    assert!(listed.stdout.contains(&job_name), "{}", listed.describe());
    env.kubectl
        .run(&["describe", "cratedb", "valid", "-n", NS])
        .ok();
}

fn one_restore_at_a_time_and_resets_pass(env: &Env) {
    env.apply(&restore_secret("restore-from-backup-busy", NS))
        .ok();
    // Requested on CREATE this time, with every list the reset removes (the unused ones are
    // admitted with a warning).
    let first = with(
        aws_restore("restore-from-backup-busy", "snap-1"),
        json!({"type": "tables", "tables": ["doc.orders"], "sections": ["tables"],
               "partitions": [{"table_ident": "doc.t", "columns": [{"name": "day", "value": "1"}]}]}),
    );
    env.apply(&cratedb("busy", NS, Some(first))).ok();
    let cr = env.get("cratedb", NS, "busy");
    let run_id = run_id_of(&cr);
    let job_name = format!("restore-busy-{run_id}");
    assert_eq!(env.jobs_of(NS, "busy").len(), 1);
    assert_eq!(
        env.jobs_of(NS, "busy")[0]["metadata"]["ownerReferences"][0]["uid"],
        cr["metadata"]["uid"],
        "owned on CREATE too"
    );

    // A second restore while the Job is active: 409, with kubectl showing why.
    let second = r#"{"spec":{"cluster":{"restoreSnapshot":{"snapshot":"snap-2"}}}}"#;
    let busy_message = format!(
        "{DENIED}a restore of {NS}/busy is already running (run {run_id}, Job {job_name}); wait until it finishes (kubectl -n {NS} get job {job_name}) and apply again"
    );
    env.kubectl
        .patch("cratedb", "busy", NS, &["--type=merge"], second)
        .fails()
        .stderr_has(&busy_message);
    env.kubectl
        .patch(
            "cratedb",
            "busy",
            NS,
            &["--type=merge", "--dry-run=server"],
            second,
        )
        .fails()
        .stderr_has(&busy_message);
    let patch: Value = serde_json::from_str(second).unwrap();
    match env.rt.block_on(env.cratedbs(NS).patch(
        "busy",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )) {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (409, "RestoreInProgress"),
                "{status:?}"
            )
        }
        other => panic!("expected a 409 denial, got {other:?}"),
    }
    assert_eq!(env.jobs_of(NS, "busy").len(), 1);

    // Updates that leave restoreSnapshot alone pass while the restore runs.
    env.kubectl
        .run(&["label", "cratedb", "busy", "-n", NS, "team=data"])
        .ok();
    // The Job's own writes, with the Job's ServiceAccount: a status merge patch ...
    let (job_kubectl, _) = env.client_for(NS, JOB_SA);
    let running = r#"{"status":{"restore":{"phase":"Running","message":"restoring"}}}"#;
    wait_until("the Job's Role is active", Duration::from_secs(15), || {
        job_kubectl
            .patch("cratedb", "busy", NS, &["--type=merge"], running)
            .status
            .success()
            .then_some(())
    });
    // ... and its reset: snapshot "" and the type-specific fields removed (SPEC B§4.12).
    job_kubectl
        .patch(
            "cratedb",
            "busy",
            NS,
            &["--type=json"],
            &json!([
                {"op": "replace", "path": "/spec/cluster/restoreSnapshot/snapshot", "value": ""},
                {"op": "remove", "path": "/spec/cluster/restoreSnapshot/type"},
                {"op": "remove", "path": "/spec/cluster/restoreSnapshot/tables"},
                {"op": "remove", "path": "/spec/cluster/restoreSnapshot/sections"},
                {"op": "remove", "path": "/spec/cluster/restoreSnapshot/partitions"}
            ])
            .to_string(),
        )
        .ok();
    let reset = env.get("cratedb", NS, "busy");
    let rs = &reset["spec"]["cluster"]["restoreSnapshot"];
    assert_eq!(rs["snapshot"], "");
    for gone in ["type", "tables", "sections", "partitions"] {
        assert!(
            rs.get(gone).is_none(),
            "{gone} left after the reset: {rs:#}"
        );
    }
    assert_eq!(rs["backupProvider"], "aws", "kept by the reset");
    assert_eq!(reset["status"]["restore"]["phase"], "Running");

    // The Job is still active: a new request is still refused.
    env.kubectl
        .patch("cratedb", "busy", NS, &["--type=merge"], second)
        .fails()
        .stderr_has(&busy_message);

    // Once the Job has finished, the same snapshot can be restored again.
    let jobs: Api<Job> = Api::namespaced(env.admin.clone(), NS);
    let complete = json!({"status": {"succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    env.rt
        .block_on(jobs.patch_status(&job_name, &PatchParams::default(), &Patch::Merge(&complete)))
        .expect("mark the Job complete");
    job_kubectl
        .patch(
            "cratedb",
            "busy",
            NS,
            &["--type=merge"],
            r#"{"status":{"restore":{"phase":"Succeeded"}}}"#,
        )
        .ok();
    let again = env
        .kubectl
        .patch(
            "cratedb",
            "busy",
            NS,
            &["--type=merge"],
            r#"{"spec":{"cluster":{"restoreSnapshot":{"snapshot":"snap-1"}}}}"#,
        )
        .ok();
    assert!(
        again
            .warnings()
            .first()
            .is_some_and(|w| w.contains(r#"."snap-1" ALL WITH"#)),
        "{}",
        again.describe()
    );
    let cr = env.get("cratedb", NS, "busy");
    let new_run = run_id_of(&cr);
    assert_ne!(new_run, run_id);
    let jobs = env.jobs_of(NS, "busy");
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    assert!(
        jobs.iter()
            .any(|j| j["metadata"]["labels"]["restore.cloud.crate.io/run-id"] == new_run.as_str())
    );
    let lease = env.get("lease", NS, "cratedb-restore-busy");
    assert_eq!(
        lease["spec"]["holderIdentity"],
        new_run.as_str(),
        "stale lock taken over"
    );
    assert_eq!(cr["status"]["restore"]["phase"], "Pending");
}

fn concurrent_requests_create_exactly_one_job(env: &Env) {
    const N: usize = 50;
    env.apply(&restore_secret("restore-from-backup-race", NS))
        .ok();
    env.apply(&cratedb("race", NS, None)).ok();
    let api = env.cratedbs(NS);
    // Open N connections first, so that the N requests below leave at the same moment instead
    // of one TLS handshake after another.
    env.rt.block_on(futures::future::join_all(
        (0..N).map(|_| api.get_opt("race")),
    ));
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let results: Vec<(String, Result<(), kube::Error>)> = env.rt.block_on(async {
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let api = api.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    let snapshot = format!("snap-{i}");
                    let patch = json!({"spec": {"cluster": {"restoreSnapshot":
                        aws_restore("restore-from-backup-race", &snapshot)}}});
                    barrier.wait().await;
                    let result = api
                        .patch("race", &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ());
                    (snapshot, result)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let winners: Vec<&String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(s, _)| s)
        .collect();
    let mut reasons = std::collections::BTreeMap::new();
    for (_, r) in &results {
        if let Err(e) = r {
            let key = match e {
                kube::Error::Api(s) => format!("{} {}", s.code, s.reason),
                other => format!("{other}"),
            };
            *reasons.entry(key).or_insert(0) += 1;
        }
    }
    eprintln!(
        "    {N} concurrent requests: {} admitted, denials: {reasons:?}",
        winners.len()
    );
    // What the webhook saw: requests that lost the Lease race are denied with reason Conflict,
    // which the API server retries internally (a PATCH conflict); the retry then sees the
    // winner's Job and is denied as RestoreInProgress. Timing decides the mix; print it.
    let log = std::fs::read_to_string(&env.webhook.log).unwrap_or_default();
    let lost_race = log
        .lines()
        .filter(|l| l.contains("name=race") && l.contains("reason=\"Conflict\""))
        .count();
    eprintln!(
        "    webhook: {lost_race} reviews lost the Lease race (Conflict, retried by the API server)"
    );
    assert_eq!(
        winners.len(),
        1,
        "exactly one request admitted; denials: {reasons:?}"
    );
    for (snapshot, r) in &results {
        if let Err(e) = r {
            match e {
                kube::Error::Api(s) => assert_eq!(s.code, 409, "{snapshot}: {s:?}"),
                other => panic!("{snapshot}: not an admission denial: {other}"),
            }
        }
    }
    let jobs = env.jobs_of(NS, "race");
    assert_eq!(jobs.len(), 1, "exactly one Job: {jobs:#?}");
    let cr = env.get("cratedb", NS, "race");
    assert_eq!(
        jobs[0]["metadata"]["labels"]["restore.cloud.crate.io/run-id"],
        run_id_of(&cr).as_str()
    );
    assert_eq!(
        cr["spec"]["cluster"]["restoreSnapshot"]["snapshot"],
        winners[0].as_str()
    );
}

fn restore_job_rbac_allows_exactly_its_calls(env: &Env) {
    // rbac-1 is listed as a cluster of namespace dbs: the Role names its Secrets.
    env.apply(&restore_secret("restore-from-backup-rbac-1", NS))
        .ok();
    for (name, ns) in [
        ("user-system-rbac-1", NS),
        ("unrelated", NS),
        ("foreign", NS_OTHER),
        ("anything", NS_PLAIN),
    ] {
        env.apply(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ns}, "stringData": {"password": "pw"}}))
            .ok();
    }
    env.apply(&cratedb(
        "rbac-1",
        NS,
        Some(aws_restore("restore-from-backup-rbac-1", "")),
    ))
    .ok();
    let (k, client) = env.client_for(NS, JOB_SA);
    let user = format!("system:serviceaccount:{NS}:{JOB_SA}");
    wait_until("the Job's Role is active", Duration::from_secs(15), || {
        k.run(&["get", "cratedb", "rbac-1", "-n", NS])
            .status
            .success()
            .then_some(())
    });

    // The calls the Job makes, for real.
    k.run(&["get", "cratedb", "rbac-1", "-n", NS, "-o", "name"])
        .ok();
    k.patch(
        "cratedb",
        "rbac-1",
        NS,
        &["--type=merge"],
        r#"{"status":{"restore":{"phase":"Running"}}}"#,
    )
    .ok();
    k.patch(
        "cratedb",
        "rbac-1",
        NS,
        &["--type=json"],
        r#"[{"op":"replace","path":"/spec/cluster/restoreSnapshot/snapshot","value":""}]"#,
    )
    .ok();
    k.run(&[
        "get",
        "secret",
        "restore-from-backup-rbac-1",
        "-n",
        NS,
        "-o",
        "name",
    ])
    .ok();
    k.run(&[
        "get",
        "secret",
        "user-system-rbac-1",
        "-n",
        NS,
        "-o",
        "name",
    ])
    .ok();
    for what in [
        "cronjobs",
        "jobs",
        "deployments",
        "statefulsets",
        "ingresses.networking.k8s.io",
    ] {
        k.run(&["get", what, "-n", NS]).ok();
    }
    k.run(&["get", "namespace", NS, "-o", "name"]).ok();
    k.run_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "rbac-1.step-started", "namespace": NS},
            "involvedObject": {"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB", "name": "rbac-1", "namespace": NS},
            "reason": "StepStarted", "message": "restore_backup_data started", "type": "Normal",
            "source": {"component": "cratedb-restore-job"}})
        .to_string(),
    )
    .ok();
    k.run_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "rbac-1.step-finished", "namespace": NS},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "cloud.crate.io/cratedb-restore-job",
            "reportingInstance": "restore-rbac-1-pod", "action": "Restore",
            "reason": "StepFinished", "note": "restore_backup_data finished", "type": "Normal",
            "regarding": {"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB", "name": "rbac-1", "namespace": NS}})
        .to_string(),
    )
    .ok();
    k.run(&["delete", "secret", "restore-from-backup-rbac-1", "-n", NS])
        .ok();

    // Calls that need objects this API server does not have (pods, Gateway API, Traefik):
    // asked as SelfSubjectAccessReviews.
    let allowed = [
        ("get", "pods", Some("crate-data-hot-rbac-1-0")),
        ("create", "pods/exec", Some("crate-data-hot-rbac-1-0")),
        ("get", "pods/exec", Some("crate-data-hot-rbac-1-0")),
        ("patch", "batch/cronjobs", Some("create-snapshot-rbac-1")),
        ("patch", "apps/deployments", Some("backup-metrics-rbac-1")),
        ("get", "apps/deployments", Some("grand-central-rbac-1")),
        ("patch", "apps/statefulsets", Some("crate-data-hot-rbac-1")),
        ("create", "networking.k8s.io/ingresses", None),
        (
            "delete",
            "networking.k8s.io/ingresses",
            Some("grand-central-rbac-1"),
        ),
        (
            "get",
            "gateway.networking.k8s.io/httproutes",
            Some("grand-central-rbac-1"),
        ),
        ("create", "gateway.networking.k8s.io/httproutes", None),
        (
            "delete",
            "gateway.networking.k8s.io/httproutes",
            Some("grand-central-rbac-1"),
        ),
        (
            "get",
            "traefik.io/middlewares",
            Some("grand-central-ip-allowlist"),
        ),
        ("create", "traefik.io/middlewares", None),
        (
            "delete",
            "traefik.io/middlewares",
            Some("grand-central-cors"),
        ),
        ("get", "secrets", Some("user-gc-rbac-1")),
        ("get", "secrets", Some("crate-control-rbac-1")),
        (
            "patch",
            "events.k8s.io/events",
            Some("rbac-1.step-finished"),
        ),
    ];
    for (verb, resource, name) in allowed {
        assert!(
            env.can(&client, verb, resource, Some(NS), name),
            "{user} may not {verb} {resource} {name:?}"
        );
    }

    // And nothing more.
    let forbidden = |run: Run, what: &str| {
        let run = run.fails();
        assert!(
            run.stderr.contains("Forbidden")
                && run.stderr.contains(&format!("User \"{user}\" cannot")),
            "{what}: expected Forbidden:\n{}",
            run.describe()
        );
    };
    forbidden(
        k.run(&["get", "secret", "unrelated", "-n", NS]),
        "an unrelated Secret",
    );
    forbidden(
        k.run(&["get", "secret", "foreign", "-n", NS_OTHER]),
        "a Secret in another namespace",
    );
    forbidden(k.run(&["get", "secrets", "-n", NS]), "listing Secrets");
    forbidden(
        k.run(&["delete", "secret", "user-system-rbac-1", "-n", NS]),
        "deleting a credential Secret",
    );
    forbidden(
        k.run(&["get", "namespace", NS_OTHER]),
        "another namespace object",
    );
    forbidden(k.run(&["get", "cratedbs", "-A"]), "CrateDBs cluster-wide");
    forbidden(
        k.run(&["get", "cratedbs", "-n", NS_PLAIN]),
        "CrateDBs of another namespace",
    );
    forbidden(
        k.run(&["delete", "cratedb", "rbac-1", "-n", NS]),
        "deleting the CrateDB",
    );
    forbidden(
        k.run_stdin(
            &["create", "-f", "-"],
            &json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "x", "namespace": NS},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "x", "image": "x"}]}}}})
            .to_string(),
        ),
        "creating Jobs",
    );
    for (verb, resource) in [
        ("update", "cloud.crate.io/cratedbs"),
        ("delete", "batch/cronjobs"),
        ("delete", "apps/deployments"),
        ("create", "pods"),
        ("list", "nodes"),
        (
            "patch",
            "admissionregistration.k8s.io/validatingwebhookconfigurations",
        ),
    ] {
        assert!(
            !env.can(&client, verb, resource, Some(NS), None),
            "{user} may {verb} {resource}"
        );
    }

    // A namespace listed without clusters: any of its Secrets, but only there.
    let (_, plain) = env.client_for(NS_PLAIN, JOB_SA);
    assert!(env.can(&plain, "get", "secrets", Some(NS_PLAIN), Some("anything")));
    assert!(env.can(
        &plain,
        "delete",
        "secrets",
        Some(NS_PLAIN),
        Some("restore-from-backup-x")
    ));
    assert!(!env.can(&plain, "list", "secrets", Some(NS_PLAIN), None));
    assert!(!env.can(
        &plain,
        "get",
        "secrets",
        Some(NS),
        Some("restore-from-backup-rbac-1")
    ));
    // A namespace that is not listed has no restore-Job identity at all.
    env.kubectl
        .run(&["get", "serviceaccount", JOB_SA, "-n", NS_OTHER])
        .fails()
        .stderr_has("NotFound");
}

fn webhook_runs_on_its_own_least_privilege_rbac(env: &Env) {
    // Every review in this run was decided by a webhook authenticated as its ServiceAccount
    // (see Env::start); none of its calls was refused.
    let log = std::fs::read_to_string(&env.webhook.log).unwrap_or_default();
    assert!(
        log.contains("restore Job created"),
        "the webhook created Jobs"
    );
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the webhook hit an RBAC denial:\n{}",
        tail(&env.webhook.log, 40)
    );
    let (_, client) = env.client_for(RELEASE_NS, WEBHOOK_NAME);
    for (verb, resource, ns, name) in [
        ("get", "secrets", NS, Some("restore-from-backup-valid")),
        (
            "get",
            "secrets",
            NS_PLAIN,
            Some("restore-from-backup-valid"),
        ),
        ("get", "serviceaccounts", NS_OTHER, Some(JOB_SA)),
        ("list", "batch/jobs", NS, None),
        ("delete", "batch/jobs", NS, Some("restore-x")),
        ("get", "batch/jobs", NS, Some("restore-x")),
        ("create", "batch/jobs", NS_OTHER, None),
        (
            "get",
            "coordination.k8s.io/leases",
            NS,
            Some("cratedb-restore-x"),
        ),
        ("create", "coordination.k8s.io/leases", NS, None),
        (
            "update",
            "coordination.k8s.io/leases",
            NS,
            Some("cratedb-restore-x"),
        ),
        (
            "delete",
            "coordination.k8s.io/leases",
            NS,
            Some("cratedb-restore-x"),
        ),
    ] {
        assert!(
            env.can(&client, verb, resource, Some(ns), name),
            "webhook may not {verb} {resource}"
        );
    }
    // It asks the API server whether a requester may read a Secret (SPEC A24)...
    assert!(env.can(
        &client,
        "create",
        "authorization.k8s.io/subjectaccessreviews",
        None,
        None
    ));
    // ...and reads Secrets only in the restore namespaces, never cluster-wide.
    for ns in [NS_OTHER, "kube-system"] {
        assert!(
            !env.can(&client, "get", "secrets", Some(ns), Some("anything")),
            "webhook may read Secrets in {ns}"
        );
    }
    for (verb, resource) in [
        ("list", "secrets"),
        ("watch", "secrets"),
        ("get", "cloud.crate.io/cratedbs"),
        ("patch", "cloud.crate.io/cratedbs"),
        ("patch", "batch/jobs"),
        ("list", "coordination.k8s.io/leases"),
        ("create", "pods"),
        (
            "patch",
            "admissionregistration.k8s.io/mutatingwebhookconfigurations",
        ),
    ] {
        assert!(
            !env.can(&client, verb, resource, Some(NS), None),
            "webhook may {verb} {resource}"
        );
    }
}

/// A real `helm install` into the API server (every manifest accepted by a 1.20 server, NOTES),
/// then `helm upgrade`: the generated CA, certificate and caBundle stay the same.
fn helm_install_and_upgrade_keep_the_certificate(env: &Env) {
    let release_ns = "reuse-system";
    env.kubectl.apply(&[namespace("reuse-dbs")]).ok();
    let helm_try = |args: &[&str]| {
        let out = std::process::Command::new(helm())
            .env("KUBECONFIG", &env.cluster.kubeconfig)
            .env("HELM_CACHE_HOME", env.cluster.state.join("helm-cache"))
            .env("HELM_CONFIG_HOME", env.cluster.state.join("helm-config"))
            .env("HELM_DATA_HOME", env.cluster.state.join("helm-data"))
            .args(args)
            .output()
            .expect("run helm");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let helm_cmd = |args: &[&str]| {
        let (ok, text) = helm_try(args);
        assert!(ok, "helm {args:?} failed:\n{text}");
        text
    };
    let chart = crate::harness::chart_dir();
    let chart = chart.to_str().unwrap();
    // Inert in this cluster: the webhooks match no namespace (no Service endpoints exist here).
    let common = [
        "--namespace",
        release_ns,
        "--set-string",
        "webhook.namespaceSelector.matchLabels.e2e-never=true",
        "--set",
        "restoreJob.namespaces={reuse-dbs}",
    ];
    let mut install = vec!["install", "reuse", chart, "--create-namespace"];
    install.extend(common);
    let notes = helm_cmd(&install);
    assert!(
        notes.contains("kubectl -n reuse-dbs get jobs -l app.kubernetes.io/component=restore-job,restore.cloud.crate.io/cluster=<name>"),
        "{notes}"
    );
    assert!(
        notes.contains("kubectl -n reuse-dbs get cratedb <name> -o jsonpath='{.status.restore}'"),
        "{notes}"
    );
    let secret_name = "reuse-cratedb-restore-webhook-tls";
    let read = || {
        let secret = env.get("secret", release_ns, secret_name);
        let vwc = env.kubectl.get_json(&[
            "get",
            "validatingwebhookconfiguration",
            "reuse-cratedb-restore",
        ]);
        let mwc = env.kubectl.get_json(&[
            "get",
            "mutatingwebhookconfiguration",
            "reuse-cratedb-restore",
        ]);
        (
            secret["data"].clone(),
            vwc["webhooks"][0]["clientConfig"]["caBundle"].clone(),
            mwc["webhooks"][0]["clientConfig"]["caBundle"].clone(),
        )
    };
    let (data, vwc_ca, mwc_ca) = read();
    assert_eq!(vwc_ca, data["ca.crt"]);
    assert_eq!(mwc_ca, data["ca.crt"]);
    let mut upgrade = vec!["upgrade", "reuse", chart];
    upgrade.extend(common);
    helm_cmd(&upgrade);
    let after = read();
    assert_eq!(
        after,
        (data.clone(), vwc_ca.clone(), mwc_ca),
        "upgrade regenerated the certificate"
    );
    // The stored objects are what a 1.20 server accepts: PDB policy/v1beta1, RBAC, Deployment.
    env.get(
        "poddisruptionbudget",
        release_ns,
        "reuse-cratedb-restore-webhook",
    );
    env.get("deployment", release_ns, "reuse-cratedb-restore-webhook");
    env.get("role", "reuse-dbs", JOB_SA);
    // No webhook runs here, so the uninstall guard cannot tell whether restores run: the
    // uninstall is refused, and --no-hooks overrides it (README, "What you see ...").
    let (ok, refused) = helm_try(&["uninstall", "reuse", "--namespace", release_ns]);
    assert!(
        !ok && refused
            .contains("failed calling webhook \"uninstall-guard.restore.cloud.crate.io\""),
        "{refused}"
    );
    helm_cmd(&[
        "uninstall",
        "reuse",
        "--namespace",
        release_ns,
        "--no-hooks",
    ]);
    env.kubectl
        .run(&[
            "get",
            "validatingwebhookconfiguration",
            "reuse-cratedb-restore",
        ])
        .fails()
        .stderr_has("NotFound");
}

/// Re-applies a configuration when dropped (also while a failed assertion unwinds).
struct Restore<'a> {
    env: &'a Env,
    object: Value,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = self.env.kubectl.apply(std::slice::from_ref(&self.object));
    }
}

/// Why both webhooks fail closed: without the mutating webhook (deleted here; the same as an
/// outage with failurePolicy Ignore) no run id is stamped, and the validating webhook refuses to
/// start a restore it cannot name — it never lets one through unchecked.
fn without_the_mutating_webhook_restores_are_denied(env: &Env) {
    env.apply(&restore_secret("restore-from-backup-nomut", NS))
        .ok();
    env.apply(&cratedb("nomut", NS, None)).ok();
    let request = cratedb(
        "nomut",
        NS,
        Some(aws_restore("restore-from-backup-nomut", "snap-1")),
    );
    let expected = format!(
        "{DENIED}metadata.annotations[\"restore.cloud.crate.io/run-id\"] was not set by the cratedb-restore mutating webhook; check that its MutatingWebhookConfiguration is installed and matches this resource, then apply again"
    );
    {
        let _restore = Restore {
            env,
            object: env.rendered.one("MutatingWebhookConfiguration").clone(),
        };
        env.kubectl
            .run(&["delete", "mutatingwebhookconfiguration", FULLNAME])
            .ok();
        wait_until(
            "the API server stops calling the mutating webhook",
            Duration::from_secs(30),
            || {
                env.apply_dry(&request)
                    .stderr
                    .contains(&expected)
                    .then_some(())
            },
        );
        env.apply(&request).fails().stderr_has(&expected);
        let patch = json!({"spec": {"cluster": {"restoreSnapshot": aws_restore("restore-from-backup-nomut", "snap-2")}}});
        match env.rt.block_on(env.cratedbs(NS).patch(
            "nomut",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )) {
            Err(kube::Error::Api(status)) => assert_eq!(
                (status.code, status.reason.as_str()),
                (500, "MissingRunId"),
                "{status:?}"
            ),
            other => panic!("expected a 500 denial, got {other:?}"),
        }
        assert!(env.jobs_of(NS, "nomut").is_empty());
    }
    // Configuration back: the same request is admitted again.
    wait_until(
        "the mutating webhook is called again",
        Duration::from_secs(30),
        || env.apply_dry(&request).status.success().then_some(()),
    );
}

/// The whole product on the real API server: a restore admitted by the webhook, then the real
/// `cratedb-restore-job` binary run with the Job's arguments and a token of the Job's
/// ServiceAccount (so its Role is exercised call by call) against the CrateDB simulator. The
/// CronJob is `batch/v1beta1`, as on every Kubernetes before 1.21.
fn the_restore_job_runs_to_success_on_the_real_api_server(env: &Env) {
    const NAME: &str = "story";
    let ns = NS_PLAIN;
    let labels = json!({"app.kubernetes.io/component": "backup", "app.kubernetes.io/name": NAME});
    let run = admit_restore_for_the_job_binary(
        env,
        NAME,
        cratedb_sim::SnapshotDef::new("snap-e2e")
            .version("5.6.0")
            .table(
                cratedb_sim::TableDef::new("doc", "orders")
                    .shards(2)
                    .bytes_per_shard(1_000_000),
            ),
        json!({"type": "all"}),
        vec![
            json!({"apiVersion": "batch/v1beta1", "kind": "CronJob",
                   "metadata": {"name": format!("create-snapshot-{NAME}"), "namespace": ns, "labels": labels},
                   "spec": {"schedule": "0 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": {
                       "spec": {"restartPolicy": "Never", "containers": [{"name": "b", "image": "b"}]}}}}}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": format!("backup-metrics-{NAME}"), "namespace": ns},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "bm"}},
                            "template": {"metadata": {"labels": {"app": "bm"}},
                                         "spec": {"containers": [{"name": "c", "image": "c"}]}}}}),
        ],
    );
    let (sim, password, token) = (&run.sim, run.password.as_str(), run.token.as_str());
    let run_id = run_id_of(&env.get("cratedb", ns, NAME));

    // Run the Job's container command here, as the Job's ServiceAccount.
    let log = env.cluster.state.join("restore-job-story.log");
    let output = run
        .command("0.05")
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .output()
        .expect("run cratedb-restore-job");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    std::fs::write(&log, &stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "exit code; log:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !stdout.contains("forbidden"),
        "every call of the Job is allowed by its Role:\n{stdout}"
    );
    assert!(
        !stdout.contains(password) && !stdout.contains(SECRET_VALUE) && !stdout.contains(token)
    );
    for line in stdout.lines() {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            entry.get("timestamp").is_some() && entry.get("level").is_some(),
            "{line}"
        );
    }

    let cr = env.get("cratedb", ns, NAME);
    let status = &cr["status"]["restore"];
    assert_eq!(status["phase"], "Succeeded", "{cr:#}");
    assert_eq!(status["runId"], run_id.as_str());
    assert_eq!(status["progressPercent"], 100.0);
    assert_eq!(
        cr["spec"]["cluster"]["restoreSnapshot"]["snapshot"], "",
        "reset went through the webhook"
    );
    assert!(
        cr["spec"]["cluster"]["restoreSnapshot"]
            .get("type")
            .is_none()
    );
    assert!(
        status["steps"]["before_cluster_update"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!("CronJob create-snapshot-{NAME} suspended")),
        "{status:#}"
    );
    let cronjob = env.get(
        "cronjob.v1beta1.batch",
        ns,
        &format!("create-snapshot-{NAME}"),
    );
    assert_eq!(
        cronjob["spec"]["suspend"], false,
        "re-enabled after being suspended"
    );
    let deployment = env.get("deployment", ns, &format!("backup-metrics-{NAME}"));
    assert_eq!(deployment["spec"]["replicas"], 1);
    let secret_gone = env.kubectl.run(&[
        "get",
        "secret",
        "-n",
        ns,
        &format!("restore-from-backup-{NAME}"),
    ]);
    assert!(
        !secret_gone.status.success(),
        "the restore Secret is deleted"
    );
    let events = env
        .kubectl
        .run(&["get", "events.events.k8s.io", "-n", ns, "-o", "json"])
        .ok()
        .json();
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["regarding"]["name"] == NAME)
        .filter_map(|e| e["reason"].as_str())
        .collect();
    for reason in ["RestoreStarted", "RestoreSent", "RestoreSucceeded"] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }
    assert_eq!(sim.count_statements("RESTORE SNAPSHOT"), 1);
    assert!(sim.repositories().is_empty());

    // A second start of the same Job (a retried pod) finds the run finished and does nothing.
    let again = run.command("0.05").output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(sim.count_statements("RESTORE SNAPSHOT"), 1);
}

/// SIGTERM to the real Job binary in the middle of a restore: it exits 4 and leaves the run for
/// the next pod, which adopts the running RESTORE instead of sending a second one.
fn a_terminated_job_leaves_its_run_for_the_next_pod(env: &Env) {
    const NAME: &str = "sigterm";
    let ns = NS_PLAIN;
    let run = admit_restore_for_the_job_binary(
        env,
        NAME,
        cratedb_sim::SnapshotDef::new("snap-term")
            .version("5.6.0")
            .table(
                cratedb_sim::TableDef::new("doc", "events")
                    .shards(1)
                    .bytes_per_shard(1_000),
            ),
        json!({}),
        vec![],
    );
    let sim = &run.sim;
    let job_command = |poll: &str| {
        let mut cmd = run.command(poll);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };

    // First pod: polls slowly, so it is waiting for the restore when SIGTERM arrives.
    let mut first = job_command("30")
        .spawn()
        .expect("start cratedb-restore-job");
    wait_until(
        "the first pod waits for the restore",
        Duration::from_secs(30),
        || {
            let cr = env.get("cratedb", ns, NAME);
            (cr["status"]["restore"]["steps"]["await_restore"]["state"] == "Running").then_some(())
        },
    );
    std::process::Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    let status = first.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(4),
        "SIGTERM exits 4 (the run is left for the next pod)"
    );
    let midway = env.get("cratedb", ns, NAME);
    assert_eq!(
        midway["status"]["restore"]["phase"], "Running",
        "{midway:#}"
    );
    assert_eq!(
        midway["spec"]["cluster"]["restoreSnapshot"]["snapshot"], "snap-term",
        "not reset"
    );
    assert_eq!(
        sim.restores_in_progress().len(),
        1,
        "CrateDB keeps restoring"
    );

    // Second pod: same arguments; it resumes, adopts and finishes.
    let second = job_command("0.05").status().unwrap();
    assert_eq!(second.code(), Some(0));
    let cr = env.get("cratedb", ns, NAME);
    assert_eq!(cr["status"]["restore"]["phase"], "Succeeded", "{cr:#}");
    assert_eq!(
        cr["status"]["restore"]["steps"]["restore_backup_data"]["attempts"],
        1
    );
    assert_eq!(
        sim.count_statements("RESTORE SNAPSHOT"),
        1,
        "RESTORE issued once"
    );
}

/// SPEC A29 through the real API server: a dry run previews the cancel, a cancel of another run
/// is refused, and the admitted cancel reaches the Job through its watch (no status write
/// happens while the restore makes no visible progress) within a few seconds; the Job drops what
/// it created, cleans up and ends Cancelled, recording who asked.
fn a_cancel_through_the_webhooks_stops_the_running_restore(env: &Env) {
    const NAME: &str = "cancel";
    let ns = NS_PLAIN;
    let run = admit_restore_for_the_job_binary(
        env,
        NAME,
        cratedb_sim::SnapshotDef::new("snap-cancel")
            .version("5.6.0")
            .table(
                cratedb_sim::TableDef::new("doc", "events")
                    .shards(1)
                    .bytes_per_shard(1_000_000_000),
            ),
        json!({}),
        vec![],
    );
    let sim = &run.sim;
    // A restore that makes no visible progress for hours.
    sim.set_progress(cratedb_sim::ProgressMode::WallClock { bytes_per_sec: 1 });
    let mut job = run
        .command("1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start cratedb-restore-job");
    wait_until(
        "the Job waits for the restore",
        Duration::from_secs(30),
        || {
            let cr = env.get("cratedb", ns, NAME);
            (cr["status"]["restore"]["steps"]["await_restore"]["state"] == "Running").then_some(())
        },
    );
    let annotate = |value: &str, dry_run: bool| {
        let mut args = vec![
            "annotate".to_string(),
            "cratedb".into(),
            "-n".into(),
            ns.into(),
            NAME.into(),
            format!("restore.cloud.crate.io/cancel={value}"),
        ];
        if dry_run {
            args.push("--dry-run=server".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.kubectl.run(&args)
    };
    let preview = annotate("true", true).ok();
    assert!(
        preview
            .warnings()
            .iter()
            .any(|w| w.starts_with("cancel: CrateDB is restoring run")
                && w.contains("1 relation(s): doc.events")),
        "{}",
        preview.describe()
    );
    annotate("20200101000000-000000", false)
        .fails()
        .stderr_has("is not the active run");
    // As a user would: the plugin's preview, then the cancel.
    let dry = crate::plugin::plugin(env, &["-n", ns, "cancel", NAME, "--dry-run"]).ok();
    assert!(
        dry.stdout
            .contains("would be admitted (dry run, nothing changed)")
            && dry.stdout.contains("drops exactly what it creates"),
        "{}",
        dry.describe()
    );
    let asked = std::time::Instant::now();
    let cancelled = crate::plugin::plugin(env, &["-n", ns, "cancel", NAME]).ok();
    assert!(
        cancelled.stdout.starts_with("cancel of run ") && cancelled.stdout.contains(" requested"),
        "{}",
        cancelled.describe()
    );
    let status = job.wait().unwrap();
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "a cancelled run exits 0");
    let cr = env.get("cratedb", ns, NAME);
    let restore = &cr["status"]["restore"];
    assert_eq!(restore["phase"], "Cancelled", "{restore:#}");
    assert!(
        restore["cancelledBy"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{restore:#}"
    );
    assert!(
        took < Duration::from_secs(20),
        "noticed and done in {took:?}"
    );
    assert_eq!(sim.count_statements("RESTORE SNAPSHOT"), 1);
    assert_eq!(
        sim.statement_texts()
            .into_iter()
            .filter(|s| s.starts_with("DROP TABLE"))
            .collect::<Vec<_>>(),
        [r#"DROP TABLE IF EXISTS "doc"."events""#]
    );
    assert!(sim.repositories().is_empty(), "repository dropped");
    assert!(sim.restores_in_progress().is_empty());
    assert!(
        cr["metadata"]["annotations"]
            .get("restore.cloud.crate.io/cancel")
            .is_none(),
        "{cr:#}"
    );
    let shown = crate::plugin::plugin(env, &["-n", ns, "status", NAME]).ok();
    assert!(
        shown.stdout.contains("Phase:     Cancelled") && shown.stdout.contains("Cancelled: by "),
        "{}",
        shown.describe()
    );
    // What the README shows is what these commands print.
    crate::harness::examples(&[
        ("cancel-dry-run.txt", &dry.stdout),
        ("cancel.txt", &cancelled.stdout),
        ("status-cancelled.txt", &shown.stdout),
    ]);
}

/// SPEC A30: `cratedb-restore-job snapshots` as the restore Job's ServiceAccount, against the real
/// API server and the simulator: the cluster's backups (spec.backups, as the operator's CRD has
/// them) newest first, as text and as one JSON document, through a read-only repository it drops
/// again.
fn the_job_lists_the_snapshots_of_the_clusters_backups(env: &Env) {
    const NAME: &str = "catalog";
    let ns = NS_PLAIN;
    let password = format!("Sys-Pw-{NAME}");
    let day = |n: i64| 1_733_000_000_000_i64 + n * 86_400_000;
    let taken = |name: &str, n: i64, state: &str, tables: &[&str]| {
        let mut snap = cratedb_sim::SnapshotDef::new(name)
            .version("5.10.3")
            .state(state)
            .started(day(n))
            .finished(day(n) + 754_000);
        for t in tables {
            snap = snap.table(cratedb_sim::TableDef::new("doc", *t).shards(1));
        }
        snap
    };
    let sim = env.rt.block_on(async {
        cratedb_sim::Simulator::builder()
            .server_version("5.10.3")
            .user("system", &password)
            .storage(
                cratedb_sim::Storage::s3(
                    "backups",
                    "clusters/prod",
                    "AKIAEXAMPLEEXAMPLE",
                    SECRET_VALUE,
                )
                .snapshot(taken(
                    "nightly-2024-11-22",
                    0,
                    "SUCCESS",
                    &["orders", "customers"],
                ))
                .snapshot(taken(
                    "nightly-2024-11-23",
                    1,
                    "SUCCESS",
                    &["orders", "customers", "events"],
                ))
                .snapshot(taken(
                    "nightly-2024-11-24",
                    2,
                    "PARTIAL",
                    &["orders", "customers", "events"],
                )),
            )
            .start()
            .await
            .expect("simulator")
    });
    let r = |key: &str| json!({"secretKeyRef": {"name": format!("restore-from-backup-{NAME}"), "key": key}});
    let mut cr = cratedb(NAME, ns, None);
    cr["spec"]["backups"] = json!({"aws": {"accessKeyId": r("access-key-id"),
        "secretAccessKey": r("secret-access-key"), "bucket": r("bucket"),
        "basePath": "clusters/prod", "cron": "0 * * * *"}});
    env.kubectl
        .apply(&[
            restore_secret(&format!("restore-from-backup-{NAME}"), ns),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("user-system-{NAME}"), "namespace": ns},
                   "stringData": {"password": password}}),
            cr,
        ])
        .ok();
    let kubeconfig = env
        .cluster
        .token_kubeconfig("catalog-job", &env.kubectl.token_for(ns, JOB_SA));
    let list = |output: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cratedb-restore-job"))
            .args([
                "snapshots",
                "--namespace",
                ns,
                "--name",
                NAME,
                "--output",
                output,
            ])
            .args([
                "--crate-host",
                "127.0.0.1",
                "--crate-port",
                &sim.pg_addr().port().to_string(),
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("NO_COLOR", "1")
            .output()
            .expect("run cratedb-restore-job snapshots");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = list("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "Snapshots in spec.backups.aws, newest first:",
        "{text}"
    );
    assert!(
        lines[2].starts_with("nightly-2024-11-24  PARTIAL"),
        "{text}"
    );
    assert!(
        lines[4].starts_with("nightly-2024-11-22  SUCCESS"),
        "{text}"
    );
    let json: Value = serde_json::from_str(list("json").trim()).expect("one JSON document");
    assert_eq!(json["snapshots"][1]["name"], "nightly-2024-11-23");
    assert_eq!(
        json["snapshots"][1]["tables"],
        json!(["doc.orders", "doc.customers", "doc.events"])
    );
    assert_eq!(sim.count_statements("CREATE REPOSITORY"), 2);
    assert_eq!(sim.count_statements("DROP REPOSITORY"), 2);
    assert!(sim.repositories().is_empty());
    for verb in ["SET", "RESET", "RESTORE", "ALTER"] {
        assert_eq!(sim.count_statements(verb), 0, "{verb}");
    }
    assert!(!text.contains(SECRET_VALUE));
    crate::harness::examples(&[("snapshots.txt", &text)]);
}

/// A CrateDB created with a restore request in the same apply (a clone): the validating webhook
/// already sees the object's uid on CREATE, so the Job is owned by the new resource.
fn a_cluster_created_with_a_restore_gets_an_owned_job(env: &Env) {
    const NAME: &str = "clone";
    env.apply(&restore_secret(
        &format!("restore-from-backup-{NAME}"),
        NS_PLAIN,
    ))
    .ok();
    let run = env
        .apply(&cratedb(
            NAME,
            NS_PLAIN,
            Some(aws_restore(
                &format!("restore-from-backup-{NAME}"),
                "snap-clone",
            )),
        ))
        .ok();
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.starts_with("planned: RESTORE SNAPSHOT")),
        "{}",
        run.describe()
    );
    let cr = env.get("cratedb", NS_PLAIN, NAME);
    let jobs = env.jobs_of(NS_PLAIN, NAME);
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let owner = &jobs[0]["metadata"]["ownerReferences"][0];
    assert_eq!(
        owner["uid"], cr["metadata"]["uid"],
        "owned by the resource that was just created"
    );
    assert_eq!(cr["status"]["restore"]["phase"], "Pending");
}

/// A restore admitted through the webhooks, ready for the real `cratedb-restore-job`: a CrateDB
/// simulator holding `snapshot`, the Secrets a run reads, the Job's arguments and a kubeconfig
/// with a token of the Job's ServiceAccount. Dropping it stops the simulator.
struct JobBinaryRun {
    sim: cratedb_sim::SimulatorHandle,
    password: String,
    token: String,
    args: Vec<String>,
    kubeconfig: PathBuf,
}

impl JobBinaryRun {
    fn command(&self, poll_seconds: &str) -> std::process::Command {
        crate::harness::restore_job_command(
            &self.args,
            self.sim.pg_addr().port(),
            &self.sim.sidecar_url(),
            &self.kubeconfig,
            poll_seconds,
        )
    }
}

fn admit_restore_for_the_job_binary(
    env: &Env,
    name: &str,
    snapshot: cratedb_sim::SnapshotDef,
    restore: Value,
    extra_objects: Vec<Value>,
) -> JobBinaryRun {
    let ns = NS_PLAIN;
    let password = format!("Sys-Pw-{name}");
    let token = format!("Sidecar-Token-{name}");
    let snapshot_name = snapshot.name.clone();
    let sim = env.rt.block_on(async {
        cratedb_sim::Simulator::builder()
            .server_version("5.10.3")
            .user("system", &password)
            .sidecar_token(&token)
            .storage(
                cratedb_sim::Storage::s3(
                    "backups",
                    "clusters/prod",
                    "AKIAEXAMPLEEXAMPLE",
                    SECRET_VALUE,
                )
                .snapshot(snapshot),
            )
            .start()
            .await
            .expect("simulator")
    });
    let secret = |secret: &str, key: &str, value: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret, "namespace": ns},
               "stringData": {key: value}})
    };
    let mut objects = vec![
        restore_secret(&format!("restore-from-backup-{name}"), ns),
        secret(&format!("user-system-{name}"), "password", &password),
        secret(&format!("crate-control-{name}"), "token", &token),
        cratedb(name, ns, None),
    ];
    objects.extend(extra_objects);
    env.kubectl.apply(&objects).ok();
    let request = with(
        aws_restore(&format!("restore-from-backup-{name}"), &snapshot_name),
        restore,
    );
    env.apply(&cratedb(name, ns, Some(request))).ok();
    let job = env
        .jobs_of(ns, name)
        .pop()
        .expect("the webhook created the Job");
    let args: Vec<String> =
        serde_json::from_value(job["spec"]["template"]["spec"]["containers"][0]["args"].clone())
            .unwrap();
    let kubeconfig = env.cluster.token_kubeconfig(
        &format!("restore-job-{name}"),
        &env.kubectl.token_for(ns, JOB_SA),
    );
    JobBinaryRun {
        sim,
        password,
        token,
        args,
        kubeconfig,
    }
}

/// SPEC A23: client-side apply, server-side apply under several field managers and `kubectl
/// replace` of the same request are one run: same run id, same status, one Job. A run id written
/// by the user on a new request is replaced.
fn one_request_one_run_however_it_is_written(env: &Env) {
    let (name, secret) = ("gitops-1", "restore-from-backup-gitops-1");
    env.apply(&restore_secret(secret, NS_PLAIN)).ok();
    let manifest = cratedb(name, NS_PLAIN, Some(aws_restore(secret, "snap-g")));
    env.apply(&manifest).ok();
    let first = env.get("cratedb", NS_PLAIN, name);
    let run_id = run_id_of(&first);
    let status = first["status"]["restore"].clone();
    assert_eq!(status["runId"], run_id.as_str());
    assert_eq!(env.jobs_of(NS_PLAIN, name).len(), 1);

    let same_run = |how: &str| {
        let now = env.get("cratedb", NS_PLAIN, name);
        assert_eq!(run_id_of(&now), run_id, "{how}: run id changed");
        assert_eq!(now["status"]["restore"], status, "{how}: status changed");
        assert_eq!(
            now["spec"]["cluster"]["restoreSnapshot"]["type"], "tables",
            "{how}: defaults kept"
        );
        let jobs = env.jobs_of(NS_PLAIN, name);
        assert_eq!(jobs.len(), 1, "{how}: a second Job");
    };
    let text = manifest.to_string();
    for manager in ["argocd", "argocd", "flux"] {
        env.kubectl
            .run_stdin(
                &[
                    "apply",
                    "--server-side",
                    "--force-conflicts",
                    &format!("--field-manager={manager}"),
                    "-f",
                    "-",
                ],
                &text,
            )
            .ok();
        same_run(&format!("server-side apply by {manager}"));
    }
    // kubectl replace of the manifest as written (no annotation, no status, no defaults); a
    // custom resource needs the current resourceVersion for an update.
    let mut replaced = manifest.clone();
    replaced["metadata"]["resourceVersion"] =
        env.get("cratedb", NS_PLAIN, name)["metadata"]["resourceVersion"].clone();
    env.kubectl
        .run_stdin(&["replace", "-f", "-"], &replaced.to_string())
        .ok();
    same_run("kubectl replace");
    env.apply(&manifest).ok();
    same_run("client-side apply");

    // A run id written by hand on a new request is never taken over.
    let forged = "20200101000000-aaaaaa";
    let mut second = cratedb("gitops-2", NS_PLAIN, Some(aws_restore(secret, "snap-g")));
    second["metadata"]["annotations"] = json!({"restore.cloud.crate.io/run-id": forged});
    env.apply(&second).ok();
    let stored = env.get("cratedb", NS_PLAIN, "gitops-2");
    assert_ne!(run_id_of(&stored), forged);
    assert_eq!(
        stored["status"]["restore"]["runId"],
        run_id_of(&stored).as_str()
    );
}

/// SPEC A24: the webhook reads a referenced Secret only if the requesting user may read it
/// (SubjectAccessReview on the request's userInfo); otherwise 403, naming the Secret and the
/// missing permission, and none of its keys.
fn secrets_only_for_requesters_who_may_read_them(env: &Env) {
    let user = "restore-requester";
    env.kubectl
        .apply(&[
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": user, "namespace": NS_PLAIN}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": user, "namespace": NS_PLAIN},
                "rules": [
                    {"apiGroups": ["cloud.crate.io"], "resources": ["cratedbs"],
                     "verbs": ["get", "list", "create", "patch", "update"]},
                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                     "resourceNames": ["requester-keys"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": user, "namespace": NS_PLAIN},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
                "subjects": [{"kind": "ServiceAccount", "name": user, "namespace": NS_PLAIN}]}),
        ])
        .ok();
    env.apply(&restore_secret("requester-keys", NS_PLAIN)).ok();
    env.apply(&restore_secret("team-keys", NS_PLAIN)).ok();
    let (as_user, _) = env.client_for(NS_PLAIN, user);
    let denied = as_user
        .run_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            &cratedb("deputy-1", NS_PLAIN, Some(aws_restore("team-keys", "s"))).to_string(),
        )
        .fails();
    let expected = format!(
        "a restore may only use Secrets its requester can read: spec.cluster.restoreSnapshot.accessKeyId, spec.cluster.restoreSnapshot.basePath, spec.cluster.restoreSnapshot.bucket, spec.cluster.restoreSnapshot.secretAccessKey: user \"system:serviceaccount:{NS_PLAIN}:{user}\" may not get Secret \"team-keys\" in namespace \"{NS_PLAIN}\""
    );
    assert!(
        denied.stderr.contains(&expected),
        "{}\nexpected: {expected}",
        denied.describe()
    );
    for key in [
        "access-key-id",
        "secret-access-key",
        "base-path",
        "account-key",
    ] {
        assert!(
            !denied.stderr.contains(key),
            "{key} revealed: {}",
            denied.stderr
        );
    }
    // The same user with a Secret it may read: admitted (a dry run previews the plan).
    let admitted = as_user
        .run_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            &cratedb(
                "deputy-1",
                NS_PLAIN,
                Some(aws_restore("requester-keys", "s")),
            )
            .to_string(),
        )
        .ok();
    assert!(
        admitted
            .warnings()
            .iter()
            .any(|w| w.starts_with("planned: RESTORE SNAPSHOT")),
        "{}",
        admitted.describe()
    );
}

/// SPEC A25: a restore is denied where its Job could not start (no restore Job ServiceAccount
/// in the namespace), naming the account and the chart value that creates it.
fn restores_only_where_the_job_account_exists(env: &Env) {
    env.apply(&restore_secret("restore-from-backup-elsewhere", NS_OTHER))
        .ok();
    let denied = env
        .apply_dry(&cratedb(
            "elsewhere",
            NS_OTHER,
            Some(aws_restore("restore-from-backup-elsewhere", "s")),
        ))
        .fails();
    assert!(
        denied.stderr.contains(&format!(
            "restores cannot run in namespace \"{NS_OTHER}\": the restore Job's ServiceAccount \"{JOB_SA}\" does not exist; add \"{NS_OTHER}\" to the chart value restoreJob.namespaces"
        )),
        "{}",
        denied.describe()
    );
}

/// Points both webhook configurations at another webhook for as long as it lives, and back at
/// the suite's own webhook afterwards (also when the scenario panics).
struct WebhookSwap<'a> {
    env: &'a Env,
    original: Vec<(String, Value)>,
}

impl<'a> WebhookSwap<'a> {
    fn to(env: &'a Env, url: &str, ca_pem: &str) -> Self {
        let mut original = Vec::new();
        for (kind, path) in [
            ("mutatingwebhookconfiguration", "/mutate"),
            ("validatingwebhookconfiguration", "/validate"),
        ] {
            let current = env.kubectl.get_json(&["get", kind, chart::FULLNAME]);
            original.push((
                kind.to_string(),
                current["webhooks"][0]["clientConfig"].clone(),
            ));
            let config = json!({"url": format!("{url}{path}"), "caBundle": b64(ca_pem.as_bytes())});
            set_client_config(env, kind, &config).ok();
        }
        WebhookSwap { env, original }
    }
}

impl Drop for WebhookSwap<'_> {
    fn drop(&mut self) {
        for (kind, config) in &self.original {
            // Not asserted here: the wait below shows whether the suite's webhook is back.
            set_client_config(self.env, kind, config);
        }
        // Wait until the suite's own webhook answers again (it creates Jobs: a dry run says so).
        let probe = cratedb("probe", NS_PLAIN, Some(aws_restore("no-such-secret", "s")));
        wait_until(
            "the API server calls the suite's webhook again",
            Duration::from_secs(30),
            || {
                let run = self.env.apply_dry(&probe);
                (!run.stderr.contains("by the CrateDB operator")
                    && run
                        .stderr
                        .contains("Secret \"no-such-secret\" does not exist"))
                .then_some(())
            },
        );
    }
}

/// Where the API server sends the chart's webhook configuration `kind`.
fn set_client_config(env: &Env, kind: &str, config: &Value) -> Run {
    env.kubectl.run(&[
        "patch",
        kind,
        chart::FULLNAME,
        "--type=json",
        "-p",
        &json!([{"op": "replace", "path": "/webhooks/0/clientConfig", "value": config}])
            .to_string(),
    ])
}

/// `--restore-runner=operator` (SPEC A27): beside a stock operator the webhooks validate and
/// preview, guard overlap with the operator's own state, and create nothing.
fn beside_a_stock_operator_requests_are_checked_not_run(env: &Env) {
    let token = env.kubectl.token_for(RELEASE_NS, WEBHOOK_NAME);
    let kubeconfig = env
        .cluster
        .token_kubeconfig("webhook-operator-mode", &token);
    let operator_mode = Webhook::start(WebhookOptions {
        dir: &env.cluster.state,
        name: "webhook-operator-runner",
        kubeconfig: Some(&kubeconfig),
        job_template: None,
        tls_files: None,
        extra_args: &["--restore-runner=operator"],
    });
    let _swap = WebhookSwap::to(env, &operator_mode.url(), &operator_mode.cert_pem);
    let (name, secret) = ("op-1", "restore-from-backup-op-1");
    env.apply(&restore_secret(secret, NS_PLAIN)).ok();
    let request = cratedb(name, NS_PLAIN, Some(aws_restore(secret, "snap-o")));
    // Dry runs until the API server has picked up the swap: they leave nothing behind.
    wait_until(
        "the API server calls the operator-mode webhook",
        Duration::from_secs(30),
        || {
            env.apply_dry(&request)
                .warnings()
                .iter()
                .any(|w| w.starts_with("planned (by the CrateDB operator): RESTORE SNAPSHOT"))
                .then_some(())
        },
    );
    let admitted = env.apply(&request).ok();
    assert!(
        admitted
            .warnings()
            .iter()
            .any(|w| w.contains("the CrateDB operator performs this restore")),
        "{}",
        admitted.describe()
    );
    let stored = env.get("cratedb", NS_PLAIN, name);
    assert!(
        stored["metadata"]["annotations"]["restore.cloud.crate.io/run-id"].is_null(),
        "no run id: {stored:#}"
    );
    assert!(
        stored["status"]["restore"].is_null(),
        "no status: {stored:#}"
    );
    assert_eq!(
        stored["spec"]["cluster"]["restoreSnapshot"]["type"],
        "tables"
    );
    assert!(env.jobs_of(NS_PLAIN, name).is_empty(), "no Job");
    // The operator's restore is in progress while the stored snapshot is set.
    let other = cratedb(name, NS_PLAIN, Some(aws_restore(secret, "snap-p")));
    let refused = env.apply(&other).fails();
    assert!(
        refused
            .stderr
            .contains("the CrateDB operator is restoring snapshot \"snap-o\" into dbs2/op-1"),
        "{}",
        refused.describe()
    );
    // Options the operator would ignore are refused on a new cluster.
    let mut with_option = cratedb("op-2", NS_PLAIN, Some(aws_restore(secret, "snap-o")));
    with_option["metadata"]["annotations"] = json!({"restore.cloud.crate.io/on-conflict": "skip"});
    let refused = env.apply_dry(&with_option).fails();
    assert!(
        refused.stderr.contains("would ignore it"),
        "{}",
        refused.describe()
    );
}
