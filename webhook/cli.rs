//! Command line of `cratedb-restore-webhook`. Every flag can also be set by the environment
//! variable shown in `--help`.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use cratedb_restore::telemetry::LogFormat;

/// Admission webhook for CrateDB restores: validates and defaults
/// `spec.cluster.restoreSnapshot` on `cratedbs.cloud.crate.io` and starts one restore Job per
/// admitted request.
///
/// Endpoints: POST /validate and POST /mutate (admission.k8s.io/v1 AdmissionReview, HTTPS) on
/// --listen; GET /healthz, /readyz and /metrics (plain HTTP) on --health-listen.
///
/// Kubernetes access is inferred the standard way: KUBECONFIG (or ~/.kube/config), then the
/// in-cluster service account. Without any, the server still starts; reviews that need the API
/// (Secret checks, the restore lock, Job creation) are denied with an explanation.
#[derive(Debug, Parser)]
#[command(name = "cratedb-restore-webhook", version, about, long_about)]
pub struct Cli {
    /// Address for the HTTPS admission endpoints.
    #[arg(long, env = "CRATEDB_RESTORE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// PEM certificate (chain) to serve. Re-read when it changes on disk, including a Secret
    /// volume's `..data` symlink swap.
    #[arg(long, env = "CRATEDB_RESTORE_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key matching --tls-cert-file.
    #[arg(long, env = "CRATEDB_RESTORE_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,

    /// Generate a self-signed certificate at start instead of reading files. This is also what
    /// happens when no certificate files are given (the local default).
    #[arg(long, env = "CRATEDB_RESTORE_SELF_SIGNED", conflicts_with_all = ["tls_cert_file", "tls_key_file"])]
    pub self_signed: bool,

    /// Names and IP addresses the self-signed certificate is valid for.
    #[arg(
        long,
        env = "CRATEDB_RESTORE_SELF_SIGNED_HOSTS",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1"
    )]
    pub self_signed_hosts: Vec<String>,

    /// Write the generated self-signed certificate (PEM, no key) here, e.g. to use as a caBundle
    /// or with `curl --cacert`.
    #[arg(long, env = "CRATEDB_RESTORE_SELF_SIGNED_CERT_OUT")]
    pub self_signed_cert_out: Option<PathBuf>,

    /// Seconds between re-reads of the certificate files (a backup to the directory watch).
    #[arg(
        long,
        env = "CRATEDB_RESTORE_TLS_RELOAD_INTERVAL",
        default_value_t = 10
    )]
    pub tls_reload_interval: u64,

    /// Address for /healthz, /readyz and /metrics (plain HTTP).
    #[arg(
        long,
        env = "CRATEDB_RESTORE_HEALTH_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub health_listen: SocketAddr,

    /// Largest accepted request body in bytes; larger bodies get HTTP 413.
    #[arg(long, env = "CRATEDB_RESTORE_MAX_BODY_BYTES", default_value_t = cratedb_restore::webhook::server::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// On SIGTERM, once no new connections are accepted: seconds the open connections get to
    /// finish their reviews and close before the process exits.
    #[arg(long, env = "CRATEDB_RESTORE_SHUTDOWN_GRACE", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,

    /// On SIGTERM, the longest time in seconds to go on accepting connections, so that reviews
    /// the API server still sends here are answered. With --endpoints-service and --pod-ip this
    /// ends one second after this Pod's address has left the Service's Endpoints. Meanwhile
    /// /readyz fails, every HTTP/1 answer carries `Connection: close` and kept-alive
    /// connections are closed once idle (see --drain-idle-seconds).
    #[arg(long, env = "CRATEDB_RESTORE_SHUTDOWN_DELAY", default_value_t = 0)]
    pub shutdown_delay_seconds: u64,

    /// While shutting down, an HTTP/1 connection idle for this many seconds is closed (one in
    /// use is closed after its answer, which says so).
    #[arg(long, env = "CRATEDB_RESTORE_DRAIN_IDLE", default_value_t = 1.0)]
    pub drain_idle_seconds: f64,

    /// The Service in front of this webhook (in --pod-namespace): on SIGTERM the server serves
    /// on until this Pod's address has left its Endpoints (at most --shutdown-delay-seconds).
    #[arg(long, env = "CRATEDB_RESTORE_ENDPOINTS_SERVICE", requires_all = ["pod_ip", "pod_namespace"])]
    pub endpoints_service: Option<String>,

    /// This Pod's IP address (the downward API's status.podIP).
    #[arg(long, env = "POD_IP")]
    pub pod_ip: Option<String>,

    /// This Pod's namespace (the downward API's metadata.namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub pod_namespace: Option<String>,

    /// Namespaces whose reviews are allowed untouched (comma-separated). The chart excludes them
    /// from the webhook configurations too; this holds where that selector cannot (Kubernetes
    /// 1.20, see --label-excluded-namespaces).
    #[arg(
        long,
        env = "CRATEDB_RESTORE_EXCLUDE_NAMESPACES",
        value_delimiter = ','
    )]
    pub exclude_namespaces: Vec<String>,

    /// Put the label kubernetes.io/metadata.name=<name> on each --exclude-namespaces namespace
    /// that lacks it, as Kubernetes does itself from 1.21 on, so that the webhook
    /// configurations' namespaceSelector excludes them on 1.20 too. Needs get and patch on those
    /// namespaces (the chart grants it below 1.21 only).
    #[arg(long, env = "CRATEDB_RESTORE_LABEL_EXCLUDED_NAMESPACES", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub label_excluded_namespaces: bool,

    /// Who performs admitted restores. job: this product's restore Job (created by the validating
    /// webhook). operator: a stock CrateDB operator's own restore handler; the webhooks then only
    /// validate, preview the RESTORE and refuse a new request while the stored
    /// restoreSnapshot.snapshot is non-empty (the operator's own "in progress"), and create no
    /// Job, Lease or run id.
    #[arg(long, env = "CRATEDB_RESTORE_RESTORE_RUNNER", default_value = "job", value_parser = clap::value_parser!(cratedb_restore::admission::runner::RestoreRunner))]
    pub restore_runner: cratedb_restore::admission::runner::RestoreRunner,

    /// Milliseconds all Kubernetes API calls of one review may take together (Secret access
    /// checks and reads, the restore lock, the Job). When it runs out the review is denied with
    /// reason Timeout and whatever was created for it is removed, instead of the API server
    /// giving up on the webhook. Keep it below the webhook configuration's timeoutSeconds (the
    /// chart sets timeoutSeconds x 1000 - 750).
    #[arg(long, env = "CRATEDB_RESTORE_REVIEW_TIMEOUT_MS", default_value_t = cratedb_restore::admission::DEFAULT_REVIEW_BUDGET.as_millis() as u64)]
    pub review_timeout_ms: u64,

    /// Timeout in seconds for each Kubernetes API call made while deciding a review. Keep it
    /// below the webhook's timeoutSeconds.
    #[arg(long, env = "CRATEDB_RESTORE_KUBE_TIMEOUT", default_value_t = 3)]
    pub kube_timeout_seconds: u64,

    /// A batch/v1 Job manifest (YAML or JSON) used as the template of every restore Job:
    /// image, resources, security context, placement, env, labels. Name, namespace, owner, the
    /// restore container's args and restartPolicy are always set by the webhook. The container
    /// named `restore` (or a new first container) runs the restore.
    #[arg(long, env = "CRATEDB_RESTORE_JOB_TEMPLATE")]
    pub job_template: Option<PathBuf>,

    /// Image of the restore container (overrides the template).
    #[arg(long, env = "CRATEDB_RESTORE_JOB_IMAGE")]
    pub job_image: Option<String>,

    /// imagePullPolicy of the restore container (overrides the template).
    #[arg(long, env = "CRATEDB_RESTORE_JOB_IMAGE_PULL_POLICY")]
    pub job_image_pull_policy: Option<String>,

    /// ServiceAccount the restore Job runs as [default: cratedb-restore-job].
    #[arg(long, env = "CRATEDB_RESTORE_JOB_SERVICE_ACCOUNT")]
    pub job_service_account: Option<String>,

    /// backoffLimit of restore Jobs [default: 2]. Retries are safe: a restarted Job adopts its run.
    #[arg(long, env = "CRATEDB_RESTORE_JOB_BACKOFF_LIMIT")]
    pub job_backoff_limit: Option<i32>,

    /// ttlSecondsAfterFinished of restore Jobs [default: 86400], so logs stay readable for a day.
    #[arg(long, env = "CRATEDB_RESTORE_JOB_TTL_SECONDS_AFTER_FINISHED")]
    pub job_ttl_seconds_after_finished: Option<i32>,

    /// activeDeadlineSeconds of restore Jobs [default: --restore-timeout + --cleanup-reserve].
    #[arg(long, env = "CRATEDB_RESTORE_JOB_ACTIVE_DEADLINE_SECONDS")]
    pub job_active_deadline_seconds: Option<i64>,

    /// Extra label for restore Jobs and their Pods, KEY=VALUE (repeatable, or comma-separated in
    /// the environment variable).
    #[arg(long = "job-label", env = "CRATEDB_RESTORE_JOB_LABELS", value_delimiter = ',', value_parser = parse_key_value)]
    pub job_labels: Vec<(String, String)>,

    /// nodeSelector entry for restore Pods, KEY=VALUE (repeatable).
    #[arg(long = "job-node-selector", env = "CRATEDB_RESTORE_JOB_NODE_SELECTOR", value_delimiter = ',', value_parser = parse_key_value)]
    pub job_node_selector: Vec<(String, String)>,

    /// The restore's overall deadline in seconds; the Job's deadline is derived from it.
    #[arg(
        long,
        env = "CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT",
        default_value_t = 86_400
    )]
    pub restore_timeout: i64,

    /// Seconds the Job keeps for cleanup after the restore deadline.
    #[arg(long, env = "CRATEDB_RESTORE_CLEANUP_RESERVE", default_value_t = 1_800)]
    pub cleanup_reserve: i64,

    /// Log format: text for people, json for log pipelines. The level comes from RUST_LOG.
    #[arg(
        long,
        env = "CRATEDB_RESTORE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent_and_defaults_match_the_contract() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["cratedb-restore-webhook"]).unwrap();
        assert_eq!(cli.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(cli.health_listen.to_string(), "0.0.0.0:8080");
        assert!(!cli.self_signed);
        assert_eq!(cli.self_signed_hosts, ["localhost", "127.0.0.1"]);
        let cli = Cli::try_parse_from([
            "x",
            "--job-label",
            "a=b",
            "--job-label",
            "c=d",
            "--listen",
            "127.0.0.1:9443",
        ])
        .unwrap();
        assert_eq!(
            cli.job_labels,
            [("a".into(), "b".into()), ("c".into(), "d".into())]
        );
        assert!(
            Cli::try_parse_from([
                "x",
                "--self-signed",
                "--tls-cert-file",
                "c",
                "--tls-key-file",
                "k"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["x", "--tls-cert-file", "c"]).is_err());
        assert!(Cli::try_parse_from(["x", "--job-label", "novalue"]).is_err());
    }
}
