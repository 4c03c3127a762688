//! Command line of `kubectl-cratedb_restore`.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use cratedb_restore::plugin::{parse_duration, request::CliOption};

/// Follow CrateDB restores from kubectl: the status of a restore run with its steps and plan, a
/// live progress bar, a server-side dry run of a restore request, the restore Job's logs,
/// cancelling a running restore, and the snapshots that can be restored.
///
/// Installed on PATH as kubectl-cratedb_restore, it runs as `kubectl cratedb-restore ...` (or
/// `kubectl cratedb_restore ...`). It reads the CrateDB resource's status.restore, which the
/// restore Job keeps current, and talks to the Kubernetes API with your kubeconfig.
///
/// Examples:
///   kubectl cratedb-restore -n cratedb status my-cluster
///   kubectl cratedb-restore -n cratedb status my-cluster --watch --timeout 2h
///   kubectl cratedb-restore -n cratedb plan my-cluster -f restore.yaml
///   kubectl cratedb-restore -n cratedb logs my-cluster
///   kubectl cratedb-restore -n cratedb cancel my-cluster --wait
///   kubectl cratedb-restore -n cratedb snapshots my-cluster
///   kubectl cratedb-restore -n cratedb status my-cluster -o json | jq .restore.phase
///
/// Exit codes:
///   0  done: status shown, watched restore Succeeded, request admitted, logs followed to the end
///   1  an error: no such CrateDB or Job, API error, the planned request was denied
///   2  wrong command line
///   3  the watched restore Failed (the restore Job's exit code for a failed restore)
///   4  --timeout passed before the watched restore ended
///   5  the watched restore was Cancelled (what it changed was undone)
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-cratedb_restore",
    bin_name = "kubectl cratedb-restore",
    version,
    about,
    long_about,
    verbatim_doc_comment,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Namespace of the CrateDB resource [default: the kubeconfig context's namespace, else
    /// "default"].
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,

    /// Path of the kubeconfig file [default: $KUBECONFIG, else ~/.kube/config, else the
    /// in-cluster service account].
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use [default: its current-context].
    #[arg(long, global = true)]
    pub context: Option<String>,

    /// text for people, json for scripts (one JSON document on stdout).
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Status(StatusArgs),
    Plan(PlanArgs),
    Logs(LogsArgs),
    Cancel(CancelArgs),
    Snapshots(SnapshotsArgs),
}

/// List the snapshots that can be restored into a CrateDB, newest first.
///
/// Runs `cratedb-restore-job snapshots` as a short-lived Job next to the cluster, with the image,
/// ServiceAccount, resources and placement the cratedb-restore chart gives restore Jobs (read
/// from the chart's Job template ConfigMap), prints its answer and deletes the Job. The Job
/// reads the cluster's backup location (spec.backups; --from-request: the Secret references of
/// spec.cluster.restoreSnapshot) through a read-only repository of its own, which it drops again;
/// nothing else in the cluster changes.
///
/// Examples:
///   kubectl cratedb-restore -n cratedb snapshots my-cluster
///   kubectl cratedb-restore -n cratedb snapshots my-cluster --tables
///   kubectl cratedb-restore -n cratedb snapshots my-cluster -o json | jq -r '.snapshots[0].name'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SnapshotsArgs {
    /// Name of the CrateDB resource.
    pub name: String,

    /// List each snapshot's tables too.
    #[arg(long)]
    pub tables: bool,

    /// Read the location from spec.cluster.restoreSnapshot's Secret references instead of
    /// spec.backups.
    #[arg(long)]
    pub from_request: bool,

    /// Namespace of the cratedb-restore chart [default: the one namespace that has it].
    #[arg(long)]
    pub chart_namespace: Option<String>,

    /// Keep the catalog Job (and its Pod's log) instead of deleting it.
    #[arg(long)]
    pub keep_job: bool,

    /// How long to wait for the catalog Job, e.g. 90s, 5m.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
}

/// Cancel a running restore: stop it and undo what it changed.
///
/// Writes the annotation restore.cloud.crate.io/cancel: <run id> on the CrateDB (the run id of
/// status.restore, or --run-id). The admission webhook admits it only while a run is active and
/// has not finished restoring the data, and answers with what the cancel will do in the run's
/// current step, or why it refuses (no run active, another run, the data already restored).
///
/// The restore Job notices the cancel within seconds. Before its RESTORE was sent it sends none;
/// while CrateDB restores, it drops exactly the relations and partitions the run creates (never
/// anything that existed before), waits until CrateDB no longer lists the restore, then undoes
/// its other changes (repository, settings, backup CronJob, Grand Central tables) and ends
/// Cancelled. An `all`, `metadata` or sections restore may already have applied the snapshot's
/// users, privileges, settings or views, which a cancel cannot undo; the status says so.
///
/// Examples:
///   kubectl cratedb-restore -n cratedb cancel my-cluster --dry-run
///   kubectl cratedb-restore -n cratedb cancel my-cluster
///   kubectl cratedb-restore -n cratedb cancel my-cluster --wait --timeout 30m; echo "exit $?"
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CancelArgs {
    /// Name of the CrateDB resource.
    pub name: String,

    /// The run to cancel [default: status.restore.runId, else `true` (the active run)].
    #[arg(long)]
    pub run_id: Option<String>,

    /// Only ask what the cancel would do (a server-side dry run); change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Follow the run to its end like `status --watch` (exit 5 when Cancelled).
    #[arg(short, long, conflicts_with = "dry_run")]
    pub wait: bool,

    /// With --wait: stop after this long (exit 4), e.g. 90s, 30m, 2h.
    #[arg(long, value_parser = parse_duration, requires = "wait")]
    pub timeout: Option<Duration>,
}

/// Show a CrateDB's restore (phase, steps, plan, progress), or follow it live with --watch.
///
/// Shows the phase, run, snapshot, times, message and progress of the latest restore run, every
/// step in run order with its state and duration, and the plan.
///
/// With --watch, follows the run live: a progress bar with the restored bytes, the rate and the
/// ETA the restore Job measures, and the current step with its message (one plain line per
/// change when stderr is not a terminal). It ends when the run is Succeeded (exit 0), Failed
/// (exit 3) or Cancelled (exit 5) and prints the final phase and message; if the latest run has already ended, at
/// once. Updates come from a watch on the one CrateDB object, so every status write of the Job
/// shows up as it happens, without polling.
///
/// A CrateDB without status.restore prints "no restore recorded" (exit 0); a CrateDB that does
/// not exist is an error (exit 1).
///
/// Examples:
///   kubectl cratedb-restore -n cratedb status my-cluster
///   kubectl cratedb-restore -n cratedb status my-cluster -o json
///   kubectl cratedb-restore -n cratedb status my-cluster --watch
///   kubectl cratedb-restore -n cratedb status my-cluster --watch --timeout 30m || echo "exit $?"
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct StatusArgs {
    /// Name of the CrateDB resource.
    pub name: String,

    /// Follow the run until it ends, with a live progress bar.
    #[arg(short, long)]
    pub watch: bool,

    /// With --watch: stop after this long (exit 4), e.g. 90s, 30m, 2h.
    #[arg(long, value_parser = parse_duration, requires = "watch")]
    pub timeout: Option<Duration>,
}

/// Preview a restore request: a server-side dry run that prints the plan or the denial.
///
/// Sends the request as a server-side dry run (dryRun=All) of applying it to the named CrateDB;
/// the cratedb-restore admission webhooks answer as they would for `kubectl apply`. Prints the RESTORE SNAPSHOT statement the webhook plans and its other warnings (exit 0), or
/// the denial with the field and the fix (exit 1). No Job, no lock, no change to the resource.
///
/// FILE (or - for stdin, YAML or JSON) is one of:
///   - a whole CrateDB manifest: its spec.cluster.restoreSnapshot and its
///     restore.cloud.crate.io/ annotations (restore options) are the request;
///   - `restoreSnapshot: {...}`;
///   - the restoreSnapshot object itself: `{snapshot: ..., type: ..., bucket: ...}`.
///
/// The request's restoreSnapshot replaces the stored one as a whole. Restore options the request
/// names are set; the others stay as stored (--option NAME- removes one).
///
/// Examples:
///   kubectl cratedb-restore -n cratedb plan my-cluster -f my-cluster.yaml
///   kubectl cratedb-restore -n cratedb plan my-cluster -f - <<'EOF'
///   snapshot: snap-2024-11-24
///   type: tables
///   tables: [doc.orders]
///   accessKeyId:     {secretKeyRef: {name: restore-from-backup-my-cluster, key: access-key-id}}
///   secretAccessKey: {secretKeyRef: {name: restore-from-backup-my-cluster, key: secret-access-key}}
///   bucket:          {secretKeyRef: {name: restore-from-backup-my-cluster, key: bucket}}
///   basePath:        {secretKeyRef: {name: restore-from-backup-my-cluster, key: base-path}}
///   EOF
///   kubectl cratedb-restore plan my-cluster -f request.yaml --option on-conflict=skip -o json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct PlanArgs {
    /// Name of the CrateDB resource.
    pub name: String,

    /// The restore request: a file, or - for stdin.
    #[arg(short, long, value_name = "FILE")]
    pub filename: String,

    /// A restore option (annotation restore.cloud.crate.io/NAME): NAME=VALUE sets it, NAME-
    /// removes it. Repeatable; wins over the file's annotations.
    #[arg(long = "option", value_name = "NAME=VALUE")]
    pub options: Vec<CliOption>,
}

/// Follow the logs of the current restore run's Job, Pod after Pod, until the Job ends.
///
/// Streams the log of the Job named in status.restore.jobName: its newest Pod, and when that
/// Pod ends and the Job starts another one (a retry, which resumes the run), the next Pod.
/// Stops when the Job is complete or failed.
///
/// The log goes to stdout as the Job writes it; notes about Pods go to stderr. Exit 0 once the
/// Job has finished (whatever the restore's outcome: see `status`), 1 when there is no Job or no
/// Pod within --pod-running-timeout.
///
/// Examples:
///   kubectl cratedb-restore -n cratedb logs my-cluster
///   kubectl cratedb-restore -n cratedb logs my-cluster --tail 100
///   kubectl cratedb-restore -n cratedb logs my-cluster --since 10m
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct LogsArgs {
    /// Name of the CrateDB resource.
    pub name: String,

    /// Only lines newer than this (e.g. 10m, 1h), from the first Pod shown.
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,

    /// Only the last N lines of the first Pod shown.
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,

    /// How long to wait for the Job's first Pod to run.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub pod_running_timeout: Duration,
}
