//! Rendering the Helm chart (`helm template`) and what the rendered manifests must say. The
//! rendering helpers are shared with the cluster scenarios, which apply the chart's RBAC and
//! webhook configurations to the real API server.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::TcpStream,
    process::Command,
    sync::Arc,
    time::Duration,
};

use serde_json::{Value, json};

use crate::harness::{self, Webhook, WebhookOptions, chart_dir, helm};

pub const RELEASE: &str = "e2e";
pub const RELEASE_NS: &str = "cratedb-restore-system";
/// Names the chart derives from release "e2e".
pub const FULLNAME: &str = "e2e-cratedb-restore";
pub const WEBHOOK_NAME: &str = "e2e-cratedb-restore-webhook";

/// The documents `helm template` printed, as JSON.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub docs: Vec<Value>,
}

impl Rendered {
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    #[track_caller]
    pub fn one(&self, kind: &str) -> &Value {
        let found = self.of_kind(kind);
        assert_eq!(found.len(), 1, "expected exactly one {kind}: {found:#?}");
        found[0]
    }

    #[track_caller]
    pub fn named(&self, kind: &str, namespace: Option<&str>, name: &str) -> &Value {
        self.docs
            .iter()
            .find(|d| {
                d["kind"] == kind
                    && d["metadata"]["name"] == name
                    && namespace.is_none_or(|ns| d["metadata"]["namespace"] == ns)
            })
            .unwrap_or_else(|| panic!("no {kind} {namespace:?}/{name} in the rendered chart"))
    }

    /// The ConfigMap with the restore Job template (the other one is the uninstall guard's hook).
    #[track_caller]
    fn job_template_map(&self) -> &Value {
        let found: Vec<&Value> = self
            .of_kind("ConfigMap")
            .into_iter()
            .filter(|c| c["data"].get("job.yaml").is_some())
            .collect();
        assert_eq!(found.len(), 1, "one Job template ConfigMap: {found:#?}");
        found[0]
    }

    /// The restore Job template the webhook reads (ConfigMap key job.yaml), as JSON.
    pub fn job_template(&self) -> Value {
        serde_saphyr::from_str(&self.job_template_yaml()).expect("job.yaml is YAML")
    }

    pub fn job_template_yaml(&self) -> String {
        self.job_template_map()["data"]["job.yaml"]
            .as_str()
            .expect("job.yaml in the ConfigMap")
            .to_string()
    }
}

/// `helm template RELEASE chart --namespace NS --kube-version V -f values.json`.
pub fn template(kube_version: &str, namespace: &str, values: &Value) -> Result<Rendered, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let values_file = dir.path().join("values.json");
    std::fs::write(&values_file, values.to_string()).unwrap();
    let out = Command::new(helm())
        .args(["template", RELEASE])
        .arg(chart_dir())
        .args(["--namespace", namespace, "--kube-version", kube_version])
        .arg("-f")
        .arg(&values_file)
        .output()
        .expect("run helm template");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("helm template printed invalid YAML ({e}):\n{text}"));
    Ok(Rendered {
        docs: docs.into_iter().filter(|d| d.is_object()).collect(),
    })
}

#[track_caller]
pub fn render(kube_version: &str, values: &Value) -> Rendered {
    template(kube_version, RELEASE_NS, values)
        .unwrap_or_else(|e| panic!("helm template failed:\n{e}"))
}

/// The webhook configuration of `kind` for CrateDB resources (the uninstall guard has its own).
pub fn cratedb_webhooks<'a>(rendered: &'a Rendered, kind: &str) -> &'a Value {
    rendered.named(kind, None, FULLNAME)
}

fn webhook_entry<'a>(rendered: &'a Rendered, kind: &str) -> &'a Value {
    let config = cratedb_webhooks(rendered, kind);
    let hooks = config["webhooks"].as_array().expect("webhooks");
    assert_eq!(hooks.len(), 1, "{config:#}");
    &hooks[0]
}

/// (apiGroup, resource, verb, resourceName) for every combination a rule allows.
pub fn rule_set(role: &Value) -> BTreeSet<(String, String, String, String)> {
    let mut set = BTreeSet::new();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    for rule in role["rules"].as_array().expect("rules") {
        let names = {
            let n = strings(&rule["resourceNames"]);
            if n.is_empty() {
                vec!["*".to_string()]
            } else {
                n
            }
        };
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for v in strings(&rule["verbs"]) {
                    for n in &names {
                        set.insert((g.clone(), r.clone(), v.clone(), n.clone()));
                    }
                }
            }
        }
    }
    set
}

fn rules(list: &[(&str, &str, &str, &str)]) -> BTreeSet<(String, String, String, String)> {
    list.iter()
        .map(|(g, r, v, n)| (g.to_string(), r.to_string(), v.to_string(), n.to_string()))
        .collect()
}

/// The webhook's ClusterRole: exactly what admission needs, and no Secrets (SPEC A24).
pub fn expected_webhook_rules() -> BTreeSet<(String, String, String, String)> {
    rules(&[
        ("", "serviceaccounts", "get", "*"),
        ("batch", "jobs", "list", "*"),
        ("batch", "jobs", "get", "*"),
        ("batch", "jobs", "create", "*"),
        ("batch", "jobs", "delete", "*"),
        ("coordination.k8s.io", "leases", "get", "*"),
        ("coordination.k8s.io", "leases", "create", "*"),
        ("coordination.k8s.io", "leases", "update", "*"),
        ("coordination.k8s.io", "leases", "delete", "*"),
    ])
}

/// The restore Job's Role in `namespace`, without its Secret rules.
pub fn expected_job_rules_without_secrets(
    namespace: &str,
) -> BTreeSet<(String, String, String, String)> {
    rules(&[
        ("cloud.crate.io", "cratedbs", "get", "*"),
        ("cloud.crate.io", "cratedbs", "patch", "*"),
        ("cloud.crate.io", "cratedbs", "watch", "*"),
        ("", "configmaps", "create", "*"),
        ("", "configmaps", "get", "*"),
        ("", "pods", "get", "*"),
        ("", "pods/exec", "get", "*"),
        ("", "pods/exec", "create", "*"),
        ("", "namespaces", "get", namespace),
        ("batch", "cronjobs", "list", "*"),
        ("batch", "cronjobs", "patch", "*"),
        ("batch", "jobs", "list", "*"),
        ("apps", "deployments", "list", "*"),
        ("apps", "deployments", "get", "*"),
        ("apps", "deployments", "patch", "*"),
        ("apps", "statefulsets", "list", "*"),
        ("apps", "statefulsets", "patch", "*"),
        ("networking.k8s.io", "ingresses", "list", "*"),
        ("networking.k8s.io", "ingresses", "get", "*"),
        ("networking.k8s.io", "ingresses", "delete", "*"),
        ("networking.k8s.io", "ingresses", "create", "*"),
        ("gateway.networking.k8s.io", "httproutes", "get", "*"),
        ("gateway.networking.k8s.io", "httproutes", "delete", "*"),
        ("gateway.networking.k8s.io", "httproutes", "create", "*"),
        ("traefik.io", "middlewares", "get", "*"),
        ("traefik.io", "middlewares", "delete", "*"),
        ("traefik.io", "middlewares", "create", "*"),
        ("", "events", "create", "*"),
        ("", "events", "patch", "*"),
        ("events.k8s.io", "events", "create", "*"),
        ("events.k8s.io", "events", "patch", "*"),
    ])
}

fn secret_rules(role: &Value) -> BTreeSet<(String, String, String, String)> {
    rule_set(role)
        .into_iter()
        .filter(|(_, r, _, _)| r == "secrets")
        .collect()
}

fn env_of(container: &Value) -> Vec<(String, Value)> {
    container["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A container's command-line arguments.
fn args_of(container: &Value) -> Vec<&str> {
    container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("an argument is a string"))
        .collect()
}

#[track_caller]
fn assert_restricted(pod: &Value, container: &Value) {
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{pod:#}");
    assert!(
        pod["securityContext"]["runAsUser"]
            .as_i64()
            .is_some_and(|u| u > 0),
        "{pod:#}"
    );
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{pod:#}"
    );
    let sc = &container["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{sc:#}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc:#}");
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{sc:#}");
    assert_eq!(sc["runAsNonRoot"], true, "{sc:#}");
}

fn lint(args: &[&str]) -> String {
    let out = Command::new(helm())
        .arg("lint")
        .arg("--strict")
        .arg(chart_dir())
        .args(args)
        .output()
        .expect("run helm lint");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "helm lint {args:?} failed:\n{text}");
    assert!(text.contains("0 chart(s) failed"), "{text}");
    text
}

// --- tests ----------------------------------------------------------------------------------

#[test]
fn chart_lint_is_clean() {
    lint(&["--namespace", RELEASE_NS]);
    lint(&[
        "--namespace",
        RELEASE_NS,
        "--set",
        "certManager.enabled=true",
        "--set",
        "restoreJob.namespaces={dbs}",
    ]);
    lint(&[
        "--namespace",
        RELEASE_NS,
        "--set",
        "webhook.url=https://127.0.0.1:18443",
        "--set",
        "webhook.networkPolicy.enabled=true",
        "--set",
        "restoreJob.namespaces[0].name=dbs",
        "--set",
        "restoreJob.namespaces[0].clusters={a,b}",
    ]);
}

#[test]
fn chart_defaults_render_fail_closed_webhooks_and_restricted_pods() {
    let r = render("1.20.2", &json!({"restoreJob": {"namespaces": ["dbs"]}}));
    let secret = r.named("Secret", Some(RELEASE_NS), &format!("{WEBHOOK_NAME}-tls"));
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let ca = secret["data"]["ca.crt"].as_str().expect("ca.crt");

    for (kind, path) in [
        ("MutatingWebhookConfiguration", "/mutate"),
        ("ValidatingWebhookConfiguration", "/validate"),
    ] {
        let hook = webhook_entry(&r, kind);
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]), "{kind}");
        assert_eq!(hook["sideEffects"], "NoneOnDryRun", "{kind}");
        assert_eq!(hook["failurePolicy"], "Fail", "{kind}");
        assert!(
            hook["timeoutSeconds"].as_i64().is_some_and(|t| t <= 5),
            "{kind}: {hook:#}"
        );
        assert_eq!(
            hook["rules"],
            json!([{"apiGroups": ["cloud.crate.io"], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["cratedbs"],
                    "scope": "Namespaced"}]),
            "{kind}"
        );
        assert_eq!(
            hook["clientConfig"]["service"],
            json!({"name": WEBHOOK_NAME, "namespace": RELEASE_NS, "path": path, "port": 443}),
            "{kind}"
        );
        assert_eq!(
            hook["clientConfig"]["caBundle"], ca,
            "{kind}: caBundle = the CA"
        );
        assert_eq!(
            hook["namespaceSelector"]["matchExpressions"],
            json!([{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                    "values": ["kube-system"]}]),
            "{kind}"
        );
        assert!(
            hook.get("matchConditions").is_none(),
            "{kind}: no matchConditions before 1.28"
        );
    }

    let deployment = r.named("Deployment", Some(RELEASE_NS), WEBHOOK_NAME);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], WEBHOOK_NAME);
    let container = &pod["containers"][0];
    assert_restricted(pod, container);
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "health"})
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "health"})
    );
    let args = args_of(container);
    for expected in [
        "--listen=0.0.0.0:8443",
        "--health-listen=0.0.0.0:8080",
        "--tls-cert-file=/etc/cratedb-restore/tls/tls.crt",
        "--tls-key-file=/etc/cratedb-restore/tls/tls.key",
        "--job-template=/etc/cratedb-restore/job/job.yaml",
        "--restore-timeout=86400",
        "--kube-timeout-seconds=3",
        "--restore-runner=job",
        "--review-timeout-ms=4250",
    ] {
        assert!(args.contains(&expected), "{expected} missing in {args:?}");
    }
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        format!("{WEBHOOK_NAME}-tls")
    );
    assert_eq!(
        pod["volumes"][1]["configMap"]["name"],
        format!("{FULLNAME}-job-template")
    );

    let service = r.named("Service", Some(RELEASE_NS), WEBHOOK_NAME);
    assert_eq!(
        service["spec"]["ports"][0],
        json!({"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"})
    );
    assert_eq!(
        container["ports"][0],
        json!({"name": "https", "containerPort": 8443, "protocol": "TCP"})
    );
    let pdb = r.one("PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"], "policy/v1beta1", "1.20 has no policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"], 1);

    // RBAC: the webhook's ClusterRole, bound cluster-wide to its ServiceAccount; access reviews;
    // Secrets only through a Role in each restore namespace.
    assert_eq!(
        rule_set(r.named("ClusterRole", None, WEBHOOK_NAME)),
        expected_webhook_rules()
    );
    let webhook_sa =
        json!([{"kind": "ServiceAccount", "name": WEBHOOK_NAME, "namespace": RELEASE_NS}]);
    let binding = r.named("ClusterRoleBinding", None, WEBHOOK_NAME);
    assert_eq!(binding["subjects"], webhook_sa);
    let review = format!("{WEBHOOK_NAME}-access-review");
    assert_eq!(
        rule_set(r.named("ClusterRole", None, &review)),
        rules(&[(
            "authorization.k8s.io",
            "subjectaccessreviews",
            "create",
            "*"
        )])
    );
    assert_eq!(
        r.named("ClusterRoleBinding", None, &review)["subjects"],
        webhook_sa
    );
    // The third: on 1.20, labelling kube-system with its name (only that namespace, see
    // chart_uninstall_guard_drain_and_namespace_exclusion_on_every_accepted_version).
    assert_eq!(
        r.of_kind("ClusterRole").len(),
        3,
        "nothing cluster-wide for the Job"
    );
    assert_eq!(r.of_kind("ClusterRoleBinding").len(), 3);
    let secrets_role = format!("{WEBHOOK_NAME}-secrets");
    assert_eq!(
        rule_set(r.named("Role", Some("dbs"), &secrets_role)),
        rules(&[("", "secrets", "get", "*")])
    );
    assert_eq!(
        r.named("RoleBinding", Some("dbs"), &secrets_role)["subjects"],
        webhook_sa
    );
    assert!(
        r.of_kind("Role").iter().all(|role| {
            role["metadata"]["namespace"] == "dbs"
                || (role["metadata"]["namespace"] == RELEASE_NS
                    && rule_set(role) == rules(&[("", "endpoints", "get", WEBHOOK_NAME)]))
        }),
        "Secret access only in the restore namespace; in its own, the webhook reads its Endpoints"
    );
    // The Job's Role in its namespace.
    let role = r.named("Role", Some("dbs"), "cratedb-restore-job");
    let mut expected = expected_job_rules_without_secrets("dbs");
    expected.extend(rules(&[
        ("", "secrets", "get", "*"),
        ("", "secrets", "delete", "*"),
    ]));
    assert_eq!(rule_set(role), expected);
    let role_binding = r.named("RoleBinding", Some("dbs"), "cratedb-restore-job");
    assert_eq!(
        role_binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "cratedb-restore-job", "namespace": "dbs"}])
    );
    assert_eq!(
        role_binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cratedb-restore-job"})
    );
    r.named("ServiceAccount", Some("dbs"), "cratedb-restore-job");

    // The restore Job template.
    let job = r.job_template();
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["backoffLimit"], 2);
    assert_eq!(spec["activeDeadlineSeconds"], 86400 + 1800);
    assert_eq!(spec["ttlSecondsAfterFinished"], 86400);
    assert!(spec.get("podFailurePolicy").is_none(), "not before 1.26");
    assert_eq!(
        spec["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"],
        "false"
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["serviceAccountName"], "cratedb-restore-job");
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "restore");
    assert_eq!(
        container["image"], "cratedb-restore:0.1.0",
        "tag = appVersion"
    );
    assert_eq!(
        container["command"],
        json!(["/usr/local/bin/cratedb-restore-job"])
    );
    assert_restricted(pod, container);
    let env = env_of(container);
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "CRATEDB_RESTORE_JOB_UID",
            "CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT",
            "CRATEDB_RESTORE_CLEANUP_RESERVE",
            "CRATEDB_RESTORE_LOG_FORMAT",
            "RUST_LOG",
            "CRATEDB_OPERATOR_RESTORE_BACKUP_SECRET_NAME",
            "CRATEDB_OPERATOR_JOBS_TABLE",
            "CRATEDB_OPERATOR_BOOTSTRAP_RETRY_DELAY"
        ]
    );
    assert_eq!(
        env[0].1["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['controller-uid']"
    );
    assert_eq!(env[1].1["value"], "86400");
    assert_eq!(env[2].1["value"], "1800");
    assert_eq!(env[5].1["value"], "restore-from-backup-{name}");
}

#[test]
fn chart_defaults_restore_in_the_release_namespace() {
    // No values at all: restores in the release namespace work (SPEC A25).
    let r = render("1.20.2", &json!({}));
    r.named("ServiceAccount", Some(RELEASE_NS), "cratedb-restore-job");
    let role = r.named("Role", Some(RELEASE_NS), "cratedb-restore-job");
    let mut expected = expected_job_rules_without_secrets(RELEASE_NS);
    expected.extend(rules(&[
        ("", "secrets", "get", "*"),
        ("", "secrets", "delete", "*"),
    ]));
    assert_eq!(rule_set(role), expected);
    r.named(
        "RoleBinding",
        Some(RELEASE_NS),
        &format!("{WEBHOOK_NAME}-secrets"),
    );
    let hook = webhook_entry(&r, "ValidatingWebhookConfiguration");
    let excluded = &hook["namespaceSelector"]["matchExpressions"][0]["values"];
    assert!(
        !excluded.as_array().unwrap().contains(&json!(RELEASE_NS)),
        "the webhooks see the release namespace: {excluded}"
    );
}

#[test]
fn chart_gates_match_conditions_and_pod_failure_policy_on_the_kubernetes_version() {
    let values = json!({"restoreJob": {"namespaces": ["dbs"]}});
    let new = render("1.30.0", &values);
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let conditions = &webhook_entry(&new, kind)["matchConditions"];
        let list = conditions
            .as_array()
            .unwrap_or_else(|| panic!("{kind}: {conditions}"));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["name"], "requests-or-rewrites-a-restore");
        let expr = list[0]["expression"].as_str().unwrap();
        for part in [
            "has(object.spec.cluster.restoreSnapshot)",
            "object.spec.cluster.restoreSnapshot.snapshot != ''",
            "oldObject == null",
            "oldObject.spec.cluster.restoreSnapshot != object.spec.cluster.restoreSnapshot",
            // kubectl replace drops the run id and the status: the webhooks put them back.
            "'restore.cloud.crate.io/run-id' in oldObject.metadata.annotations",
            "(!has(object.status) || !has(object.status.restore))",
            // Options are part of the request: changing one reaches the webhooks.
            "k.startsWith('restore.cloud.crate.io/') && k != 'restore.cloud.crate.io/run-id'",
        ] {
            assert!(expr.contains(part), "{kind}: {part} missing in {expr}");
        }
        // CEL must be balanced; a broken expression makes the configuration unusable.
        assert_eq!(
            expr.matches('(').count(),
            expr.matches(')').count(),
            "{expr}"
        );
    }
    assert_eq!(new.one("PodDisruptionBudget")["apiVersion"], "policy/v1");
    assert_eq!(
        new.job_template()["spec"]["podFailurePolicy"],
        json!({"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "restore", "operator": "In", "values": [2, 3]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
        ]})
    );

    // 1.27: podFailurePolicy (>= 1.26) but no matchConditions (< 1.28).
    let mid = render("1.27.3", &values);
    assert!(
        webhook_entry(&mid, "ValidatingWebhookConfiguration")
            .get("matchConditions")
            .is_none()
    );
    assert!(mid.job_template()["spec"].get("podFailurePolicy").is_some());
    let old = render("1.25.9", &values);
    assert!(old.job_template()["spec"].get("podFailurePolicy").is_none());

    // Both can be switched off.
    let off = render(
        "1.30.0",
        &json!({"webhook": {"matchConditions": {"enabled": false}},
                "restoreJob": {"namespaces": ["dbs"], "podFailurePolicy": {"enabled": false}}}),
    );
    assert!(
        webhook_entry(&off, "MutatingWebhookConfiguration")
            .get("matchConditions")
            .is_none()
    );
    assert!(off.job_template()["spec"].get("podFailurePolicy").is_none());
}

#[test]
fn chart_with_cert_manager_uses_a_certificate_and_ca_injection() {
    let r = render(
        "1.30.0",
        &json!({"certManager": {"enabled": true}, "restoreJob": {"namespaces": ["dbs"]}}),
    );
    assert!(r.of_kind("Secret").is_empty(), "no generated certificate");
    let cert = r.one("Certificate");
    assert_eq!(cert["apiVersion"], "cert-manager.io/v1");
    assert_eq!(cert["metadata"]["name"], WEBHOOK_NAME);
    assert_eq!(cert["spec"]["secretName"], format!("{WEBHOOK_NAME}-tls"));
    assert_eq!(
        cert["spec"]["dnsNames"],
        json!([
            WEBHOOK_NAME,
            format!("{WEBHOOK_NAME}.{RELEASE_NS}"),
            format!("{WEBHOOK_NAME}.{RELEASE_NS}.svc"),
            format!("{WEBHOOK_NAME}.{RELEASE_NS}.svc.cluster.local")
        ])
    );
    let issuer = r.one("Issuer");
    assert_eq!(issuer["spec"], json!({"selfSigned": {}}));
    assert_eq!(
        cert["spec"]["issuerRef"]["name"],
        issuer["metadata"]["name"]
    );
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let config = cratedb_webhooks(&r, kind);
        assert_eq!(
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            format!("{RELEASE_NS}/{WEBHOOK_NAME}"),
            "{kind}"
        );
        assert!(
            webhook_entry(&r, kind)["clientConfig"]
                .get("caBundle")
                .is_none(),
            "{kind}: cert-manager injects the caBundle"
        );
    }
    let deployment = r.one("Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        cert["spec"]["secretName"]
    );

    let external = render(
        "1.30.0",
        &json!({"certManager": {"enabled": true, "issuerRef": {"kind": "ClusterIssuer", "name": "corp-ca"}}}),
    );
    assert!(external.of_kind("Issuer").is_empty());
    assert_eq!(
        external.one("Certificate")["spec"]["issuerRef"],
        json!({"kind": "ClusterIssuer", "name": "corp-ca"})
    );
}

#[test]
fn chart_url_mode_points_the_api_server_at_an_external_webhook() {
    let r = render(
        "1.20.2",
        &json!({"webhook": {"url": "https://127.0.0.1:18443/", "caBundle": "Q0EK"}}),
    );
    for (kind, path) in [
        ("MutatingWebhookConfiguration", "/mutate"),
        ("ValidatingWebhookConfiguration", "/validate"),
    ] {
        assert_eq!(
            webhook_entry(&r, kind)["clientConfig"],
            json!({"url": format!("https://127.0.0.1:18443{path}"), "caBundle": "Q0EK"}),
            "{kind}"
        );
    }
}

#[test]
fn chart_restore_job_settings_and_rbac_variants() {
    let r = render(
        "1.30.0",
        &json!({
            "image": {"repository": "registry.example/cratedb-restore", "tag": "1.2.3"},
            "webhook": {"rbac": {"clusterWide": false}, "networkPolicy": {"enabled": true, "apiServerCIDRs": ["10.0.0.1/32"]}},
            "restoreJob": {
                "namespaces": [{"name": "prod", "clusters": ["c1", "c2"]}, "staging"],
                "rbac": {"extraSecretNames": ["shared-s3"]},
                "image": {"tag": "1.2.4"},
                "timeoutSeconds": 3600,
                "cleanupReserveSeconds": 600,
                "settings": {"cloudProvider": "openshift", "restoreBackupSecretName": "restore-{name}"},
                "notifications": {"url": "https://hooks.example/cratedb", "existingSecret": "notify"},
                "nodeSelector": {"pool": "system"},
                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "podAnnotations": {"team": "data"}
            }
        }),
    );
    // The webhook is bound only in the CrateDB namespaces (access reviews are cluster-scoped).
    let bindings: Vec<&str> = r
        .of_kind("ClusterRoleBinding")
        .iter()
        .map(|b| b["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(bindings, [format!("{WEBHOOK_NAME}-access-review")]);
    for ns in ["prod", "staging"] {
        let rb = r.named("RoleBinding", Some(ns), WEBHOOK_NAME);
        assert_eq!(rb["roleRef"]["kind"], "ClusterRole");
        assert_eq!(rb["subjects"][0]["namespace"], RELEASE_NS);
        r.named("Role", Some(ns), &format!("{WEBHOOK_NAME}-secrets"));
    }
    // Secrets of the listed clusters only, deletes only of the restore Secret.
    let prod = r.named("Role", Some("prod"), "cratedb-restore-job");
    let mut expected = BTreeSet::new();
    for c in ["c1", "c2"] {
        for name in [
            format!("user-system-{c}"),
            format!("user-gc-{c}"),
            format!("crate-control-{c}"),
            format!("restore-{c}"),
        ] {
            expected.insert(("".into(), "secrets".into(), "get".into(), name));
        }
        expected.insert((
            "".into(),
            "secrets".into(),
            "delete".into(),
            format!("restore-{c}"),
        ));
    }
    expected.insert((
        "".into(),
        "secrets".into(),
        "get".into(),
        "shared-s3".into(),
    ));
    assert_eq!(secret_rules(prod), expected);
    let without_secrets: BTreeSet<_> = rule_set(prod)
        .into_iter()
        .filter(|(_, r, _, _)| r != "secrets")
        .collect();
    assert_eq!(without_secrets, expected_job_rules_without_secrets("prod"));
    assert_eq!(
        secret_rules(r.named("Role", Some("staging"), "cratedb-restore-job")),
        rules(&[("", "secrets", "get", "*"), ("", "secrets", "delete", "*")])
    );

    let job = r.job_template();
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 4200);
    let pod = &job["spec"]["template"];
    assert_eq!(pod["metadata"]["annotations"]["team"], "data");
    assert_eq!(
        pod["metadata"]["annotations"]["sidecar.istio.io/inject"],
        "false"
    );
    assert_eq!(pod["spec"]["nodeSelector"], json!({"pool": "system"}));
    assert_eq!(pod["spec"]["tolerations"][0]["key"], "dedicated");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/cratedb-restore:1.2.4");
    let env: serde_json::Map<String, Value> = env_of(container).into_iter().collect();
    assert_eq!(
        env["CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT"]["value"],
        "3600"
    );
    assert_eq!(env["CRATEDB_OPERATOR_CLOUD_PROVIDER"]["value"], "openshift");
    assert_eq!(
        env["CRATEDB_OPERATOR_WEBHOOK_URL"]["value"],
        "https://hooks.example/cratedb"
    );
    for (var, key) in [
        ("CRATEDB_OPERATOR_WEBHOOK_USERNAME", "username"),
        ("CRATEDB_OPERATOR_WEBHOOK_PASSWORD", "password"),
    ] {
        assert_eq!(
            env[var],
            json!({"name": var, "valueFrom": {"secretKeyRef": {"name": "notify", "key": key}}}),
            "credentials only through secretKeyRef"
        );
    }
    let deployment = r.one("Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/cratedb-restore:1.2.3"
    );
    let policy = r.one("NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["egress"][1]["to"],
        json!([{"ipBlock": {"cidr": "10.0.0.1/32"}}])
    );
}

#[test]
fn chart_rejects_invalid_values() {
    let cases = [
        (json!({"webhook": {"timeoutSeconds": 10}}), "timeoutSeconds"),
        (
            json!({"webhook": {"validating": {"failurePolicy": "Sometimes"}}}),
            "failurePolicy",
        ),
        (
            json!({"webhook": {"timeoutSeconds": 3, "kubeTimeoutSeconds": 3}}),
            "must be smaller than webhook.timeoutSeconds",
        ),
        (
            json!({"restoreJob": {"notifications": {"url": "https://x"}}}),
            "needs restoreJob.notifications.existingSecret",
        ),
        (
            json!({"restoreJob": {"namespaces": ["dbs", {"name": "dbs"}]}}),
            "listed twice",
        ),
        (
            json!({"restoreJob": {"namespaces": ["dbs"]}, "webhook": {"excludeNamespaces": ["dbs"]}}),
            "the webhooks ignore it",
        ),
        (
            json!({"restoreJob": {"namespaces": ["Not_A_Namespace"]}}),
            "namespaces",
        ),
        (
            json!({"webhook": {"terminationGracePeriodSeconds": 20}}),
            "must be at least webhook.shutdownDelaySeconds",
        ),
        (json!({"webhoook": {}}), "webhoook"),
        (json!({"webhook": {"url": "http://insecure"}}), "url"),
    ];
    for (values, needle) in cases {
        match template("1.30.0", RELEASE_NS, &values) {
            Ok(_) => panic!("helm template accepted {values}"),
            Err(e) => assert!(e.contains(needle), "{values}: {needle:?} not in: {e}"),
        }
    }
}

/// The chart's lifecycle pieces (issue 17): the uninstall guard (a pre-delete hook ConfigMap and
/// a webhook configuration judging only it), the webhook's drain on shutdown (its endpoint, the
/// delay, the grace period), and the kube-system exclusion on every Kubernetes version the chart
/// accepts (`kubeVersion >= 1.20`; the name label exists from 1.21 on).
#[test]
fn chart_uninstall_guard_drain_and_namespace_exclusion_on_every_accepted_version() {
    let values = json!({"restoreJob": {"namespaces": ["dbs", "fleet"]}});
    for version in ["1.20.2", "1.21.0", "1.25.0", "1.30.0"] {
        let r = render(version, &values);
        let ca =
            r.named("Secret", Some(RELEASE_NS), &format!("{WEBHOOK_NAME}-tls"))["data"]["ca.crt"]
                .clone();
        // The guard: only the chart's own hook ConfigMap reaches /guard-uninstall.
        let guard = r.named(
            "ValidatingWebhookConfiguration",
            None,
            &format!("{FULLNAME}-uninstall-guard"),
        );
        let hooks = guard["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 1, "{guard:#}");
        let hook = &hooks[0];
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(
            hook["rules"],
            json!([{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                    "resources": ["configmaps"], "scope": "Namespaced"}])
        );
        assert_eq!(
            hook["objectSelector"],
            json!({"matchLabels": {"restore.cloud.crate.io/uninstall-guard": FULLNAME}})
        );
        assert_eq!(
            hook["clientConfig"]["service"],
            json!({"name": WEBHOOK_NAME, "namespace": RELEASE_NS, "path": "/guard-uninstall", "port": 443})
        );
        assert_eq!(hook["clientConfig"]["caBundle"], ca);
        let hook_map = r.named(
            "ConfigMap",
            Some(RELEASE_NS),
            &format!("{FULLNAME}-uninstall-guard"),
        );
        assert_eq!(
            hook_map["metadata"]["annotations"]["helm.sh/hook"],
            "pre-delete"
        );
        assert_eq!(
            hook_map["metadata"]["labels"]["restore.cloud.crate.io/uninstall-guard"],
            FULLNAME
        );
        assert_eq!(hook_map["data"]["namespaces"], "dbs,fleet");

        // The drain: the Pod knows its address and Service, and may read that Service's
        // Endpoints; the kubelet waits for delay + grace.
        let deployment = r.named("Deployment", Some(RELEASE_NS), WEBHOOK_NAME);
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let args = args_of(container);
        for expected in [
            "--shutdown-delay-seconds=10",
            "--shutdown-grace-seconds=15",
            &format!("--endpoints-service={WEBHOOK_NAME}"),
            "--exclude-namespaces=kube-system",
        ] {
            assert!(
                args.contains(&expected),
                "{version}: {expected} in {args:?}"
            );
        }
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        let env = container["env"].as_array().unwrap();
        for (name, path) in [
            ("POD_IP", "status.podIP"),
            ("POD_NAMESPACE", "metadata.namespace"),
        ] {
            assert!(
                env.iter()
                    .any(|e| e["name"] == name && e["valueFrom"]["fieldRef"]["fieldPath"] == path),
                "{name}: {env:#?}"
            );
        }
        let endpoints = r.named(
            "Role",
            Some(RELEASE_NS),
            &format!("{WEBHOOK_NAME}-endpoints"),
        );
        assert_eq!(
            rule_set(endpoints),
            rules(&[("", "endpoints", "get", WEBHOOK_NAME)])
        );

        // kube-system: below 1.21 the webhook labels it (and only it) itself.
        let labels_itself = version == "1.20.2";
        assert_eq!(
            args.contains(&"--label-excluded-namespaces"),
            labels_itself,
            "{version}: {args:?}"
        );
        let labelling: Vec<&Value> = r
            .of_kind("ClusterRole")
            .into_iter()
            .filter(|c| c["metadata"]["name"] == format!("{WEBHOOK_NAME}-namespace-labels"))
            .collect();
        if labels_itself {
            assert_eq!(
                rule_set(labelling[0]),
                rules(&[
                    ("", "namespaces", "get", "kube-system"),
                    ("", "namespaces", "patch", "kube-system")
                ])
            );
        } else {
            assert!(labelling.is_empty(), "{version}: {labelling:#?}");
        }
    }

    // Without the guard: neither the hook nor its webhook configuration.
    let off = render("1.20.2", &json!({"uninstallGuard": {"enabled": false}}));
    assert_eq!(off.of_kind("ValidatingWebhookConfiguration").len(), 1);
    assert!(
        off.of_kind("ConfigMap")
            .iter()
            .all(|c| c["metadata"]["annotations"].get("helm.sh/hook").is_none())
    );
    // A namespaceSelector of one's own replaces the exclusion, on the server side too.
    let custom = render(
        "1.20.2",
        &json!({"webhook": {"namespaceSelector": {"matchLabels": {"restores": "on"}}}}),
    );
    let args = custom.named("Deployment", Some(RELEASE_NS), WEBHOOK_NAME)["spec"]["template"]
        ["spec"]["containers"][0]["args"]
        .to_string();
    assert!(
        !args.contains("--exclude-namespaces") && !args.contains("--label-excluded-namespaces"),
        "{args}"
    );
    assert!(
        custom
            .of_kind("ClusterRole")
            .iter()
            .all(|c| c["metadata"]["name"] != format!("{WEBHOOK_NAME}-namespace-labels"))
    );
}

/// The generated CA, certificate and key work together: the real webhook serves the
/// certificate, and a client that trusts only the caBundle accepts it for the Service name.
#[test]
fn chart_generated_certificate_is_served_by_the_webhook() {
    use base64::Engine;
    let r = render("1.20.2", &json!({}));
    let secret = r.one("Secret");
    let decode = |key: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"][key].as_str().unwrap())
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, decode("tls.crt")).unwrap();
    std::fs::write(&key, decode("tls.key")).unwrap();
    let ca = decode("ca.crt");
    assert_eq!(
        b64(&ca),
        webhook_entry(&r, "ValidatingWebhookConfiguration")["clientConfig"]["caBundle"]
    );

    let webhook = Webhook::start(WebhookOptions {
        dir: dir.path(),
        name: "webhook-chart-cert",
        kubeconfig: None,
        job_template: None,
        tls_files: Some((&cert, &key)),
        extra_args: &[],
    });
    let response = tls_get(
        webhook.port,
        &ca,
        &format!("{WEBHOOK_NAME}.{RELEASE_NS}.svc"),
    );
    assert!(response.starts_with("HTTP/1.1 "), "{response}");
}

fn b64(bytes: &[u8]) -> String {
    harness::b64(bytes)
}

/// A TLS connection to 127.0.0.1:port that trusts only `ca_pem` and checks `server_name`; sends
/// one request and returns the response head.
fn tls_get(port: u16, ca_pem: &[u8], server_name: &str) -> String {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(
        b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .unwrap_or_else(|e| panic!("TLS with the chart's CA and name {server_name} failed: {e}"));
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}
