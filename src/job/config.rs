//! Settings of one restore Job run, from flags and the reference operator's
//! `CRATEDB_OPERATOR_*` environment variables (SPEC A14, B§10).

use std::time::Duration;

use secrecy::SecretString;

#[derive(Clone)]
pub struct NotificationSettings {
    pub url: String,
    pub username: String,
    pub password: SecretString,
}

#[derive(Clone)]
pub struct JobConfig {
    pub namespace: String,
    pub name: String,
    pub run_id: String,
    /// PostgreSQL host; `crate-discovery-{name}.{namespace}` when unset.
    pub crate_host: Option<String>,
    pub crate_port: u16,
    /// TLS on the PostgreSQL wire (libpq's sslmode meanings).
    pub crate_ssl_mode: crate::cratedb::tls::SslMode,
    /// CA that must have signed CrateDB's certificate; without it TLS encrypts only.
    pub crate_ca_file: Option<std::path::PathBuf>,
    /// `openshift` selects the crate-control sidecar for superuser SQL.
    pub cloud_provider: Option<String>,
    /// The sidecar's exec URL; derived from the cluster name when unset.
    pub crate_control_url: Option<String>,
    /// Overall restore deadline, counted from the run's start (survives pod restarts).
    pub restore_timeout: Duration,
    /// Time the always-run cleanup steps keep after the deadline.
    pub cleanup_reserve: Duration,
    /// `{name}` is replaced by the CrateDB resource name.
    pub restore_secret_name: String,
    pub before_update_timeout: Duration,
    pub after_update_timeout: Duration,
    pub bootstrap_retry_delay: Duration,
    pub jobs_table: String,
    pub testing: bool,
    pub notifications: Option<NotificationSettings>,
    /// The longest wait between two looks at something the run waits for (a running restore,
    /// running backups); the waits start at `first_poll` and grow towards it.
    pub poll_interval: Duration,
    /// The first wait between two looks.
    pub first_poll: Duration,
    /// Least time between two progress writes to `status.restore`.
    pub progress_write_interval: Duration,
    pub progress_notification_interval: Duration,
    pub sql_timeout: Duration,
    pub snapshot_query_timeout: Duration,
    pub exec_timeout: Duration,
    pub sidecar_timeout: Duration,
    /// Attempts per step for transient failures before the step fails; 0: until the deadline.
    pub step_attempts: u32,
    /// How long the start guard waits for the resource to show this run's id.
    pub start_wait: Duration,
    /// First retry delay of a step; doubles up to `retry_max_delay`.
    pub retry_initial_delay: Duration,
    /// The longest wait between two attempts of a step.
    pub retry_max_delay: Duration,
    /// The uid of the run's Job, whose record ConfigMaps go with it.
    pub job_uid: Option<String>,
}

impl JobConfig {
    /// Defaults matching the reference operator; tests and the CLI override what they need.
    pub fn new(namespace: &str, name: &str, run_id: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            run_id: run_id.into(),
            crate_host: None,
            crate_port: 5432,
            crate_ssl_mode: crate::cratedb::tls::SslMode::default(),
            crate_ca_file: None,
            cloud_provider: None,
            crate_control_url: None,
            restore_timeout: Duration::from_secs(86_400),
            cleanup_reserve: Duration::from_secs(1_800),
            restore_secret_name: "restore-from-backup-{name}".into(),
            before_update_timeout: Duration::from_secs(86_400),
            after_update_timeout: Duration::from_secs(3_600),
            bootstrap_retry_delay: Duration::from_secs(60),
            jobs_table: "sys.jobs".into(),
            testing: false,
            notifications: None,
            poll_interval: Duration::from_secs(15),
            first_poll: Duration::from_secs(1),
            progress_write_interval: Duration::from_secs(30),
            progress_notification_interval: Duration::from_secs(15),
            sql_timeout: Duration::from_secs(60),
            snapshot_query_timeout: Duration::from_secs(120),
            exec_timeout: Duration::from_secs(120),
            sidecar_timeout: Duration::from_secs(5),
            step_attempts: 0,
            start_wait: Duration::from_secs(30),
            retry_initial_delay: Duration::from_secs(2),
            retry_max_delay: Duration::from_secs(30),
            job_uid: None,
        }
    }

    pub fn crate_host(&self) -> String {
        self.crate_host
            .clone()
            .unwrap_or_else(|| format!("crate-discovery-{}.{}", self.name, self.namespace))
    }

    /// Retries of a step or of a wait: capped, jittered, until the deadline.
    pub fn backoff(&self) -> crate::job::retry::Backoff {
        crate::job::retry::Backoff {
            initial: self.retry_initial_delay,
            max: self.retry_max_delay.max(self.retry_initial_delay),
            max_attempts: self.step_attempts,
        }
    }

    pub fn uses_sidecar(&self) -> bool {
        self.cloud_provider.as_deref() == Some("openshift")
    }

    /// The sidecar's exec URL: given explicitly, else next to an overridden CrateDB host (the
    /// sidecar runs beside CrateDB), else the cluster's crate-control Service.
    pub fn crate_control_url(&self) -> String {
        if let Some(url) = &self.crate_control_url {
            return url.clone();
        }
        match &self.crate_host {
            Some(host) => format!("http://{host}:5050/exec"),
            None => format!(
                "http://crate-control-{}.{}.svc.cluster.local:5050/exec",
                self.name, self.namespace
            ),
        }
    }

    /// The waits between looks at something that takes its time.
    pub fn poll_schedule(&self) -> crate::job::poll::PollSchedule {
        crate::job::poll::PollSchedule::new(self.first_poll, self.poll_interval)
    }

    pub fn restore_secret(&self) -> String {
        self.restore_secret_name.replace("{name}", &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_default_to_the_clusters_services_or_follow_the_host_override() {
        let mut config = JobConfig::new("ns", "c1", "r1");
        assert_eq!(config.crate_host(), "crate-discovery-c1.ns");
        assert_eq!(
            config.crate_control_url(),
            "http://crate-control-c1.ns.svc.cluster.local:5050/exec"
        );
        config.crate_host = Some("10.0.0.7".into());
        assert_eq!(config.crate_control_url(), "http://10.0.0.7:5050/exec");
        config.crate_control_url = Some("http://sidecar:9/exec".into());
        assert_eq!(config.crate_control_url(), "http://sidecar:9/exec");
    }
}
