//! Command line of `cratedb-restore-job`. Every option can also be set by the environment
//! variable shown in `--help`; the reference operator's `CRATEDB_OPERATOR_*` variables keep their
//! names and meaning.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cratedb_restore::{
    job::config::{JobConfig, NotificationSettings},
    telemetry::LogFormat,
};
use secrecy::SecretString;

/// Runs one admitted CrateDB restore, from the pre-flight plan to the reset of the request, and
/// records every step in the resource's status.restore, as Kubernetes Events and in this log.
///
/// The admission webhook creates one Job per admitted restore and passes --namespace, --name and
/// --run-id. A restarted pod resumes the same run: completed steps are skipped and a RESTORE
/// already under way is adopted, never issued twice.
///
/// Exit codes:
///   0  the restore succeeded, or there was nothing to do (superseded or finished run)
///   1  an unexpected problem before a final status could be written; a retry may help
///   2  wrong arguments or configuration; a retry will not help
///   3  the restore failed; status.restore says why and cleanup ran; a retry will not help
///   4  interrupted (SIGTERM); the run is left for the next pod to resume
///
/// `cratedb-restore-job snapshots --namespace NS --name CLUSTER` lists what can be restored
/// instead (see `cratedb-restore-job snapshots --help`).
#[derive(Debug, Parser)]
#[command(
    name = "cratedb-restore-job",
    version,
    about,
    long_about,
    verbatim_doc_comment,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Namespace of the CrateDB resource.
    #[arg(long, env = "CRATEDB_RESTORE_NAMESPACE", required = true)]
    pub namespace: Option<String>,

    /// Name of the CrateDB resource.
    #[arg(long, env = "CRATEDB_RESTORE_NAME", required = true)]
    pub name: Option<String>,

    /// Run id the admission webhook stamped on the resource (annotation
    /// restore.cloud.crate.io/run-id). A different annotation means this run was superseded.
    #[arg(long, env = "CRATEDB_RESTORE_RUN_ID", required = true)]
    pub run_id: Option<String>,

    /// CrateDB PostgreSQL host [default: crate-discovery-<name>.<namespace>].
    #[arg(long, env = "CRATEDB_RESTORE_CRATE_HOST")]
    pub crate_host: Option<String>,

    /// CrateDB PostgreSQL port.
    #[arg(long, env = "CRATEDB_RESTORE_CRATE_PORT", default_value_t = 5432)]
    pub crate_port: u16,

    /// TLS on the PostgreSQL wire: disable, prefer (TLS when CrateDB offers it, as libpq's
    /// default) or require.
    #[arg(
        long,
        env = "CRATEDB_RESTORE_CRATE_SSLMODE",
        value_enum,
        default_value = "prefer"
    )]
    pub crate_sslmode: cratedb_restore::cratedb::tls::SslMode,

    /// PEM CA that must have signed CrateDB's certificate (chain and host name are then
    /// verified). Without it, TLS encrypts but does not authenticate the server.
    #[arg(long, env = "CRATEDB_RESTORE_CRATE_CA_FILE")]
    pub crate_ca_file: Option<std::path::PathBuf>,

    /// Cloud provider; `openshift` sends superuser SQL to the crate-control sidecar instead of
    /// running `crash` in the CrateDB pod.
    #[arg(long, env = "CRATEDB_OPERATOR_CLOUD_PROVIDER")]
    pub cloud_provider: Option<String>,

    /// URL of the crate-control sidecar's exec endpoint [default: http://<crate-host>:5050/exec
    /// when --crate-host is given, else
    /// http://crate-control-<name>.<namespace>.svc.cluster.local:5050/exec].
    #[arg(long, env = "CRATEDB_RESTORE_CRATE_CONTROL_URL")]
    pub crate_control_url: Option<String>,

    /// Overall restore deadline in seconds, counted from the run's first start.
    #[arg(
        long,
        env = "CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT",
        default_value_t = 86_400
    )]
    pub restore_timeout: u64,

    /// Seconds the cleanup steps keep after the deadline.
    #[arg(long, env = "CRATEDB_RESTORE_CLEANUP_RESERVE", default_value_t = 1_800)]
    pub cleanup_reserve: u64,

    /// The only Secret deleted after the restore; {name} is the CrateDB resource's name.
    #[arg(
        long,
        env = "CRATEDB_OPERATOR_RESTORE_BACKUP_SECRET_NAME",
        default_value = "restore-from-backup-{name}"
    )]
    pub restore_secret_name: String,

    /// Longest wait, in seconds, for a running snapshot or backup Job before the restore.
    #[arg(
        long,
        env = "CRATEDB_OPERATOR_BEFORE_UPDATE_TIMEOUT",
        default_value_t = 86_400
    )]
    pub before_update_timeout: u64,

    /// Time limit in seconds for putting the cluster back after the restore.
    #[arg(
        long,
        env = "CRATEDB_OPERATOR_AFTER_UPDATE_TIMEOUT",
        default_value_t = 3_600
    )]
    pub after_update_timeout: u64,

    /// Seconds before retrying a failed password or JWT reset.
    #[arg(
        long,
        env = "CRATEDB_OPERATOR_BOOTSTRAP_RETRY_DELAY",
        default_value_t = 60
    )]
    pub bootstrap_retry_delay: u64,

    /// Table that lists running statements (checked for CREATE SNAPSHOT).
    #[arg(long, env = "CRATEDB_OPERATOR_JOBS_TABLE", default_value = "sys.jobs")]
    pub jobs_table: String,

    /// Test mode of the reference operator: 5 s waits, no notification retries.
    #[arg(long, env = "CRATEDB_OPERATOR_TESTING", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub testing: bool,

    /// Notification endpoint; notifications are sent only when URL, username and password are
    /// all set.
    #[arg(long, env = "CRATEDB_OPERATOR_WEBHOOK_URL")]
    pub webhook_url: Option<String>,

    /// Basic-auth user for notifications.
    #[arg(long, env = "CRATEDB_OPERATOR_WEBHOOK_USERNAME")]
    pub webhook_username: Option<String>,

    /// Basic-auth password for notifications (prefer the environment variable from a Secret).
    #[arg(
        long,
        env = "CRATEDB_OPERATOR_WEBHOOK_PASSWORD",
        hide_env_values = true
    )]
    pub webhook_password: Option<String>,

    /// Longest seconds between two looks at a running restore (and at running backups before
    /// it) [default: 15, or 5 with --testing]. The looks start a second apart and back off
    /// towards this ceiling (a fifth of the time waited so far), so a short restore is seen to
    /// end within about a second and a day-long one is looked at every interval.
    #[arg(long, env = "CRATEDB_RESTORE_POLL_INTERVAL")]
    pub poll_interval: Option<f64>,

    /// Seconds of the first wait between two looks (the floor of the back-off).
    #[arg(
        long,
        env = "CRATEDB_RESTORE_FIRST_POLL_INTERVAL",
        default_value_t = 1.0
    )]
    pub first_poll_interval: f64,

    /// Least seconds between two progress writes to status.restore; a write also needs a change
    /// a person would see (percent, shards started). The final status is always written.
    #[arg(
        long,
        env = "CRATEDB_RESTORE_PROGRESS_INTERVAL",
        default_value_t = 30.0
    )]
    pub progress_interval: f64,

    /// The uid of this run's Job (the webhook sets it from the Pod's controller-uid label). The
    /// run keeps its record (the admitted request, a plan too large for the status) in
    /// ConfigMaps owned by that Job; without it they are owned by the CrateDB resource and
    /// removed when the run ends.
    #[arg(long, env = "CRATEDB_RESTORE_JOB_UID")]
    pub job_uid: Option<String>,

    /// Attempts per step on transient errors (CrateDB unreachable, API 429/5xx, conflicts).
    /// 0 (the default): retry with capped, jittered backoff until the restore deadline (cleanup
    /// steps: until the end of the cleanup reserve), so a cluster that is still starting is
    /// waited for.
    #[arg(long, env = "CRATEDB_RESTORE_STEP_ATTEMPTS", default_value_t = 0)]
    pub step_attempts: u32,

    /// Longest wait in seconds between two attempts of a step (the waits grow from 2 s,
    /// doubling, with jitter).
    #[arg(long, env = "CRATEDB_RESTORE_RETRY_MAX_DELAY", default_value_t = 30.0)]
    pub retry_max_delay: f64,

    /// Seconds to wait at start for the CrateDB resource to show this run's id. The webhook
    /// creates the Job before the API server stores the request, so a fast Pod can read the
    /// resource first; a run id that never appears means the request was denied later.
    #[arg(long, env = "CRATEDB_RESTORE_START_WAIT", default_value_t = 30)]
    pub start_wait: u64,

    /// Log format: text for people, json for log pipelines. The level comes from RUST_LOG.
    #[arg(
        long,
        env = "CRATEDB_RESTORE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Snapshots(SnapshotsArgs),
}

/// List the snapshots that can be restored into a CrateDB cluster, newest first.
///
/// Reads the cluster's backup location — spec.backups (the operator's backup settings), or with
/// --from-request the Secret references of spec.cluster.restoreSnapshot — through a read-only
/// repository of its own (readonly = true, named cratedb_restore_catalog_<random>), reads
/// sys.snapshots, and drops the repository again. Nothing else in the cluster changes: no
/// setting, no CronJob, no status. Credentials are bound parameters, never in SQL text or output.
///
/// Prints each snapshot's name, state, start and end, CrateDB version and the number of tables
/// and partitions (--tables: the table names too); --output json prints one JSON document on one
/// line of stdout ({"source": ..., "snapshots": [...]}), logs go to stderr.
///
/// Exit codes: 0 listed; 1 CrateDB or the API unreachable (a retry may help); 2 no such CrateDB
/// or no backup location; 3 CrateDB refused (credentials, bucket).
///
/// Examples:
///   cratedb-restore-job snapshots --namespace cratedb --name my-cluster
///   cratedb-restore-job snapshots --namespace cratedb --name my-cluster --from-request -o json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SnapshotsArgs {
    /// Namespace of the CrateDB resource.
    #[arg(long, env = "CRATEDB_RESTORE_NAMESPACE")]
    pub namespace: String,

    /// Name of the CrateDB resource.
    #[arg(long, env = "CRATEDB_RESTORE_NAME")]
    pub name: String,

    /// Read the location from spec.cluster.restoreSnapshot's Secret references instead of
    /// spec.backups.
    #[arg(long)]
    pub from_request: bool,

    /// text for people, json for scripts (one line on stdout).
    #[arg(short, long, value_enum, default_value_t = CatalogOutput::Text)]
    pub output: CatalogOutput,

    /// With text output: list each snapshot's tables.
    #[arg(long)]
    pub tables: bool,

    /// CrateDB PostgreSQL host [default: crate-discovery-<name>.<namespace>].
    #[arg(long, env = "CRATEDB_RESTORE_CRATE_HOST")]
    pub crate_host: Option<String>,

    /// CrateDB PostgreSQL port.
    #[arg(long, env = "CRATEDB_RESTORE_CRATE_PORT", default_value_t = 5432)]
    pub crate_port: u16,

    /// TLS on the PostgreSQL wire: disable, prefer or require.
    #[arg(
        long,
        env = "CRATEDB_RESTORE_CRATE_SSLMODE",
        value_enum,
        default_value = "prefer"
    )]
    pub crate_sslmode: cratedb_restore::cratedb::tls::SslMode,

    /// PEM CA that must have signed CrateDB's certificate.
    #[arg(long, env = "CRATEDB_RESTORE_CRATE_CA_FILE")]
    pub crate_ca_file: Option<std::path::PathBuf>,

    /// How long an unreachable CrateDB or Kubernetes API is tried again (a cluster that is
    /// starting, a Service without ready endpoints yet) before exit 1. 0: one attempt.
    #[arg(
        long,
        env = "CRATEDB_RESTORE_CATALOG_WAIT",
        default_value_t = 60,
        value_name = "SECONDS"
    )]
    pub wait: u64,

    /// Log format (logs go to stderr).
    #[arg(
        long,
        env = "CRATEDB_RESTORE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CatalogOutput {
    Text,
    Json,
}

impl SnapshotsArgs {
    pub fn config(&self) -> JobConfig {
        // The catalog needs no run id; the config's one is never used.
        let mut config = JobConfig::new(&self.namespace, &self.name, "catalog");
        config.crate_host = self.crate_host.clone();
        config.crate_port = self.crate_port;
        config.crate_ssl_mode = self.crate_sslmode;
        config.crate_ca_file = self.crate_ca_file.clone();
        config
    }
}

impl Cli {
    pub fn into_config(self) -> Result<JobConfig, String> {
        let (Some(namespace), Some(name), Some(run_id)) = (self.namespace, self.name, self.run_id)
        else {
            return Err("--namespace, --name and --run-id are required".into());
        };
        if !cratedb_restore::run::is_valid_run_id(&run_id) {
            return Err(format!(
                "--run-id {run_id:?} is not a run id issued by the webhook"
            ));
        }
        let mut config = JobConfig::new(&namespace, &name, &run_id);
        config.crate_host = self.crate_host;
        config.crate_port = self.crate_port;
        config.crate_ssl_mode = self.crate_sslmode;
        config.crate_ca_file = self.crate_ca_file;
        config.cloud_provider = self.cloud_provider;
        config.crate_control_url = self.crate_control_url;
        config.restore_timeout = Duration::from_secs(self.restore_timeout);
        config.cleanup_reserve = Duration::from_secs(self.cleanup_reserve);
        config.restore_secret_name = self.restore_secret_name;
        config.before_update_timeout = Duration::from_secs(self.before_update_timeout);
        config.after_update_timeout = Duration::from_secs(self.after_update_timeout);
        config.bootstrap_retry_delay = Duration::from_secs(self.bootstrap_retry_delay);
        config.jobs_table = self.jobs_table;
        config.testing = self.testing;
        let default_poll = if self.testing { 5.0 } else { 15.0 };
        let seconds = |v: f64, what: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(format!("{what} must be a non-negative number of seconds"))
            }
        };
        config.poll_interval = seconds(
            self.poll_interval.unwrap_or(default_poll),
            "--poll-interval",
        )?;
        config.first_poll = seconds(self.first_poll_interval, "--first-poll-interval")?;
        config.progress_write_interval = seconds(self.progress_interval, "--progress-interval")?;
        config.job_uid = self.job_uid.filter(|u| !u.is_empty());
        config.retry_max_delay = seconds(self.retry_max_delay, "--retry-max-delay")?;
        config.step_attempts = self.step_attempts;
        config.start_wait = Duration::from_secs(self.start_wait);
        config.notifications = match (
            self.webhook_url,
            self.webhook_username,
            self.webhook_password,
        ) {
            (Some(url), Some(username), Some(password)) => Some(NotificationSettings {
                url,
                username,
                password: SecretString::from(password),
            }),
            _ => None,
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_contract() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "cratedb-restore-job",
            "--namespace",
            "ns",
            "--name",
            "c1",
            "--run-id",
            "20261125082542-3fa9c1",
        ])
        .unwrap();
        let config = cli.into_config().unwrap();
        assert_eq!(config.crate_host(), "crate-discovery-c1.ns");
        assert_eq!(config.restore_secret(), "restore-from-backup-c1");
        assert_eq!(config.poll_interval, Duration::from_secs(15));
        assert!(config.notifications.is_none());
        let bad =
            Cli::try_parse_from(["x", "--namespace", "n", "--name", "c", "--run-id", "Bad Id"])
                .unwrap();
        assert!(bad.into_config().is_err());
        assert!(Cli::try_parse_from(["x", "--name", "c"]).is_err());
        // The catalog needs no run id.
        let catalog = Cli::try_parse_from([
            "cratedb-restore-job",
            "snapshots",
            "--namespace",
            "ns",
            "--name",
            "c1",
            "-o",
            "json",
        ])
        .unwrap();
        match catalog.command {
            Some(Command::Snapshots(args)) => {
                assert_eq!(args.output, CatalogOutput::Json);
                assert_eq!(args.config().crate_host(), "crate-discovery-c1.ns");
            }
            None => panic!("no subcommand"),
        }
    }
}
