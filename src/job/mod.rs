//! The restore Job: one run of one admitted restore, from the start guard to the final status.

pub mod api_count;
pub mod cancel;
pub mod completion;
pub mod config;
pub mod context;
pub mod engine;
pub mod error;
pub mod events;
pub mod notify;
pub mod plan;
pub mod poll;
pub mod progress;
pub mod record;
pub mod repository;
pub mod retry;
pub mod snapshots;
pub mod status_writer;
pub mod step;
pub mod steps;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client, Resource};
use secrecy::SecretString;
use tokio::time::Instant;

use crate::{
    cratedb::{
        pg::{Pg, PgEndpoint},
        superuser::{PodExec, Sidecar, Superuser},
    },
    resource::{CrateDB, RestoreSnapshotSpec},
    restore_request,
    run::RunIdentity,
    status::Phase,
};
use config::JobConfig;
use context::{RunContext, read_secret_value};
use error::{ExitStatus, StepError};
use events::EventSink;
use k8s_openapi::api::core::v1::Secret;
use notify::{Notification, Notifier};
use retry::Backoff;
use status_writer::StatusWriter;

/// What the start guard decided (SPEC A4).
#[derive(Debug, PartialEq, Eq)]
pub enum StartDecision {
    /// The resource does not carry this run's id (yet): the request may not be stored yet, or
    /// was never stored, or was superseded.
    OtherRun(String),
    /// Nothing to do: the request was withdrawn.
    NotOurs(String),
    /// This run already ended; only the exit code is left to give.
    Finished(Phase),
    Proceed,
}

/// Pure: what to do with the resource as read at start.
pub fn start_decision(cr: &CrateDB, run_id: &str) -> StartDecision {
    match cr.run_id_annotation() {
        Some(id) if id == run_id => {}
        other => {
            return StartDecision::OtherRun(format!(
                "the resource carries run id {}, not {run_id}: this request was never persisted or was superseded",
                other.unwrap_or("(none)")
            ));
        }
    }
    let ours = cr.restore_status_of_run(run_id);
    if let Some(phase) = ours.and_then(|s| s.phase).filter(|p| !p.is_active()) {
        return StartDecision::Finished(phase);
    }
    // A run that has started any step must finish (cleanup, reset), whatever the spec says now.
    let started = ours.is_some_and(|s| !s.steps.is_empty());
    if !started
        && cr
            .restore_snapshot()
            .and_then(|r| r.requested_snapshot())
            .is_none()
    {
        return StartDecision::NotOurs(
            "restoreSnapshot.snapshot is empty: the request was withdrawn".into(),
        );
    }
    StartDecision::Proceed
}

fn exit_for(phase: Phase) -> ExitStatus {
    match phase {
        Phase::Succeeded | Phase::Cancelled => ExitStatus::Done,
        Phase::Failed => ExitStatus::Failed,
        Phase::Pending | Phase::Running => ExitStatus::Retry,
    }
}

/// The CrateDB pod that runs `crash` (SPEC B§1.3).
pub fn crash_pod(cr: &CrateDB, cluster: &str) -> String {
    let nodes = cr.spec.nodes.as_ref();
    if nodes.is_some_and(|n| n.master.is_some()) {
        return format!("crate-master-{cluster}-0");
    }
    let data = nodes
        .and_then(|n| n.data.as_ref())
        .and_then(|d| d.first())
        .map(|d| d.name.clone())
        .unwrap_or_else(|| "hot".into());
    format!("crate-data-{data}-{cluster}-0")
}

/// Why the run could not even start.
enum StartError {
    /// Worth another pod: the API was unreachable or refused for a moment.
    Retry(String),
    /// The stored run cannot be read: starting over could repeat a RESTORE (SPEC A6).
    Unreadable(String),
}

/// Reads the resource; a `status.restore` (or spec) this version cannot read is reported as
/// such, with what to do, instead of as a connection problem.
async fn read_resource(api: &Api<CrateDB>, name: &str) -> Result<Option<CrateDB>, StartError> {
    match api.get_opt(name).await {
        Ok(cr) => Ok(cr),
        Err(kube::Error::SerdeError(error)) => Err(StartError::Unreadable(format!(
            "the CrateDB resource cannot be read ({error}); the run stops instead of starting over, which could send a second RESTORE. Fix status.restore (kubectl edit cratedb {name}) or remove it if no restore runs, then delete this Job's Pod"
        ))),
        Err(error) => Err(StartError::Retry(format!(
            "cannot read the CrateDB resource: {error}"
        ))),
    }
}

/// The resource once it shows this run (or the start wait is over) and what to do with it
/// (SPEC A4): the webhook creates the Job before the API server stores the request.
async fn wait_for_run(
    api: &Api<CrateDB>,
    run: &RunIdentity,
    wait: Duration,
) -> Result<Option<(CrateDB, StartDecision)>, StartError> {
    let until = Instant::now() + wait;
    loop {
        let Some(cr) = read_resource(api, &run.cluster).await? else {
            return Ok(None);
        };
        match start_decision(&cr, &run.run_id) {
            StartDecision::OtherRun(reason) if Instant::now() < until => {
                tracing::info!(run_id = %run.run_id, "{reason}; waiting for the request to be stored");
                tokio::time::sleep(START_POLL.min(until - Instant::now())).await;
            }
            decision => return Ok(Some((cr, decision))),
        }
    }
}

/// How often the start guard looks again for this run's id.
const START_POLL: Duration = Duration::from_secs(1);

/// A Secret the run needs before its first step: `user-system-<name>` (the `system` user's
/// password) or `crate-control-<name>` (the sidecar's token). The operator creates them with the
/// cluster, so while one is missing the cluster is still starting: the run waits for it until
/// the restore deadline, saying so in the status. So does a refused read (401/403: a Role edited
/// by hand, an uninstalled chart, a rotated token): permissions can come back. Other failures to
/// read it are what they are.
struct SecretWait<'a> {
    secrets: &'a Api<Secret>,
    secret: String,
    key: &'static str,
    backoff: &'a Backoff,
    deadline: Instant,
}

fn wait_for_secret<'a>(
    secrets: &'a Api<Secret>,
    secret: String,
    key: &'static str,
    backoff: &'a Backoff,
    deadline: Instant,
) -> SecretWait<'a> {
    SecretWait {
        secrets,
        secret,
        key,
        backoff,
        deadline,
    }
}

impl SecretWait<'_> {
    async fn run(self, status: &mut StatusWriter) -> Result<String, StepError> {
        let (secret, key) = (&self.secret, self.key);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match read_secret_value(self.secrets, secret, key).await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => StepError::Transient(format!(
                    "Secret {secret} (key {key}) does not exist yet; the cluster may still be starting"
                )),
                // A 401/403 is transient too (StepError::from): the status then names the
                // missing permission while the run waits, instead of failing a restore that
                // resumes once the permission is back.
                Err(error) if error.is_transient() => {
                    error.context(&format!("cannot read Secret {secret}"))
                }
                Err(error) => return Err(error.context(&format!("cannot read Secret {secret}"))),
            };
            let Some(delay) = self.backoff.next_delay(attempt, self.deadline) else {
                return Err(StepError::DeadlineExceeded(format!(
                    "{error}; gave up at the restore deadline"
                )));
            };
            tracing::warn!(%error, attempt, "waiting for a Secret the run needs");
            let waiting = format!("Waiting: {error}");
            status.state.message = Some(waiting.clone());
            status
                .state
                .set_condition("Progressing", "True", "Waiting", &waiting);
            status.save_progress(Duration::from_secs(5)).await?;
            tokio::time::sleep(delay).await;
        }
    }
}

/// A run that cannot reach its first step: the status says why (condition `reason`), an event
/// and a notification tell it, and the exit code says whether another pod may do better.
async fn fail_before_start(
    status: &mut StatusWriter,
    events: &EventSink,
    notifier: &Notifier,
    reason: &str,
    error: StepError,
) -> ExitStatus {
    let message = crate::bounded::text(&error.to_string(), crate::bounded::MESSAGE_BYTES);
    if matches!(error, StepError::StatusLost(_)) {
        tracing::error!(%message, "cannot write status.restore; a retry may help");
        return ExitStatus::Retry;
    }
    tracing::error!(%message, reason, "the restore cannot start");
    notifier.send(&Notification::failure(message.clone())).await;
    status.state.phase = Some(Phase::Failed);
    status.state.finished_at = Some(Timestamp::now().to_string());
    status.state.message = Some(message.clone());
    status
        .state
        .set_condition("Restored", "False", reason, &message);
    if let Err(error) = status.save().await {
        tracing::error!(%error, "cannot write the final status; a retry may help");
        return ExitStatus::Retry;
    }
    events.warning("RestoreFailed", "Start", message).await;
    ExitStatus::Failed
}

/// Runs the restore and returns how the process should exit.
pub async fn run(config: JobConfig, client: Client) -> ExitStatus {
    let run = RunIdentity::new(&config.namespace, &config.name, &config.run_id);
    let cratedbs: Api<CrateDB> = Api::namespaced(client.clone(), &run.namespace);
    let (cr, decision) = match wait_for_run(&cratedbs, &run, config.start_wait).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            tracing::info!(namespace = %run.namespace, name = %run.cluster, "the CrateDB resource does not exist (any more); nothing to do");
            return ExitStatus::Done;
        }
        Err(StartError::Retry(message)) => {
            tracing::error!("{message}; a retry may help");
            return ExitStatus::Retry;
        }
        Err(StartError::Unreadable(message)) => {
            tracing::error!("{message}");
            return ExitStatus::Usage;
        }
    };
    match decision {
        StartDecision::OtherRun(reason) | StartDecision::NotOurs(reason) => {
            tracing::info!(run_id = %run.run_id, "nothing to do: {reason}");
            return ExitStatus::Done;
        }
        StartDecision::Finished(phase) => {
            tracing::info!(run_id = %run.run_id, %phase, "this run has already finished");
            return exit_for(phase);
        }
        StartDecision::Proceed => {}
    }

    // What the resource holds now (this run's status, an earlier run's, or none): the base the
    // first status write is a difference to.
    let stored_status = cr.restore_status().cloned();
    let mut state = cr
        .restore_status_of_run(&run.run_id)
        .cloned()
        .unwrap_or_default();
    let resumed = !state.steps.is_empty();
    let job_uid = record::job_uid(&client, &run, config.job_uid.as_deref()).await;
    let records = record::RecordStore::new(
        Api::namespaced(client.clone(), &run.namespace),
        &run,
        job_uid.as_deref(),
        cr.metadata.uid.as_deref(),
    );
    let admitted = match admitted_request(&cr, &state, &records, &config).await {
        Ok(admitted) => admitted,
        Err(exit) => return exit,
    };
    // For people: the options as admitted, each value capped (the record holds them exactly; a
    // run of the previous release resumes from the status's own copy, left as it is).
    if state.request.is_none() {
        state.options = Some(
            admitted
                .options
                .iter()
                .map(|(k, v)| (k.clone(), crate::bounded::text(v, 512)))
                .collect(),
        );
    }
    let options = admitted.options.clone();
    let spec: RestoreSnapshotSpec = match serde_json::from_value(admitted.restore_snapshot.clone())
    {
        Ok(spec) => spec,
        Err(error) => {
            tracing::error!(
                "the admitted request of run {} cannot be read ({error}); the run stops instead of starting over. Fix or remove status.restore, then delete this Job's Pod",
                run.run_id
            );
            return ExitStatus::Usage;
        }
    };
    // The whole plan, when pre-flight made one: in the status, or in the run's record when the
    // status shows it capped.
    let plan = match load_plan(&state, &records).await {
        Ok(plan) => plan,
        Err(error) if error.is_transient() => {
            tracing::error!(%error, "cannot read the run's plan; a retry may help");
            return ExitStatus::Retry;
        }
        Err(error) => {
            tracing::error!(%error, "the run's plan cannot be read; the run stops instead of guessing what it restores");
            return ExitStatus::Usage;
        }
    };
    let started_at: Timestamp = state
        .started_at
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(Timestamp::now);
    state.run_id = Some(run.run_id.clone());
    state.snapshot = spec.snapshot.clone();
    state.restore_type = Some(spec.restore_type.clone().unwrap_or_else(|| "tables".into()));
    state.phase = Some(Phase::Running);
    state.job_name = Some(run.job_name());
    state.repository = Some(run.repository());
    state.started_at = Some(started_at.to_string());
    state.set_condition("Restored", "Unknown", "Running", "The restore is running");

    // The deadline counts from the run's first start, so restarts do not extend it.
    let elapsed = Timestamp::now().duration_since(started_at).unsigned_abs();
    let remaining = config.restore_timeout.saturating_sub(elapsed);
    let deadline = Instant::now() + remaining;
    let cleanup_deadline = deadline + config.cleanup_reserve;

    // Status writes get more patience than a step: losing one loses the run's memory.
    let backoff = Backoff {
        initial: config.retry_initial_delay,
        max: Duration::from_secs(30),
        max_attempts: 10,
    };
    let mut status = StatusWriter::new(
        cratedbs.clone(),
        &run.cluster,
        stored_status.as_ref(),
        state,
        backoff,
    );
    let events = EventSink::new(client.clone(), cr.object_ref(&()));
    let notifier = Notifier::new(
        config.notifications.clone(),
        &run.namespace,
        &run.cluster,
        !config.testing,
    );

    if status.state.request.is_none() && status.state.request_record.is_none() {
        let waiting = config.backoff();
        if let Err(error) = keep_request(&records, &admitted, &mut status, &waiting, deadline).await
        {
            return fail_before_start(&mut status, &events, &notifier, "CannotStart", error).await;
        }
    }
    let request =
        match restore_request::validate_with_options(&spec, &options, cr.spec.backups.as_ref()) {
            Ok(request) => request,
            Err(errors) => {
                // Admission validated this request; if it no longer reads, the run cannot start.
                let error = StepError::permanent(restore_request::describe(&errors));
                return fail_before_start(&mut status, &events, &notifier, "InvalidRequest", error)
                    .await;
            }
        };

    let secrets = Api::namespaced(client.clone(), &run.namespace);
    let waiting = config.backoff();
    let wait_for = |secret: String, key: &'static str| {
        wait_for_secret(&secrets, secret, key, &waiting, deadline)
    };
    let password = match wait_for(format!("user-system-{}", run.cluster), "password")
        .run(&mut status)
        .await
    {
        Ok(password) => password,
        Err(error) => {
            return fail_before_start(&mut status, &events, &notifier, "CannotStart", error).await;
        }
    };
    let tls = match crate::cratedb::tls::client_config(config.crate_ca_file.as_deref()) {
        Ok(tls) => std::sync::Arc::new(tls),
        Err(error) => {
            tracing::error!(%error, "TLS to CrateDB cannot be set up");
            return ExitStatus::Usage;
        }
    };
    let db = Pg::new(PgEndpoint {
        host: config.crate_host(),
        port: config.crate_port,
        user: "system".into(),
        password: SecretString::from(password.clone()),
        schema: "doc".into(),
        connect_timeout: Duration::from_secs(10),
        statement_timeout: config.sql_timeout,
        ssl_mode: config.crate_ssl_mode,
        tls: Some(tls),
    });
    let superuser = if config.uses_sidecar() {
        let token = match wait_for(format!("crate-control-{}", run.cluster), "token")
            .run(&mut status)
            .await
        {
            Ok(token) => token,
            Err(error) => {
                return fail_before_start(&mut status, &events, &notifier, "CannotStart", error)
                    .await;
            }
        };
        Superuser::Sidecar(Sidecar {
            http: reqwest::Client::new(),
            url: config.crate_control_url(),
            token: SecretString::from(token),
            timeout: config.sidecar_timeout,
        })
    } else {
        Superuser::Exec(PodExec {
            client: client.clone(),
            namespace: run.namespace.clone(),
            pod: crash_pod(&cr, &run.cluster),
            container: "crate".into(),
            scheme: if cr.spec.cluster.ssl.is_some() {
                "https"
            } else {
                "http"
            },
            timeout: config.exec_timeout,
        })
    };

    // A cancel may come at any moment of the run: watch the one object for it.
    let cancel = cancel::watch_for_cancel(
        client.clone(),
        &run,
        cr.metadata.resource_version.clone(),
        cancel::requested(&cr, &run.run_id),
    );
    let (seen, run_id) = (cancel.clone(), run.run_id.clone());
    status.observe(move |cr| seen.observe(cr, &run_id));
    tracing::info!(
        run_id = %run.run_id,
        cluster = %run.cluster,
        namespace = %run.namespace,
        snapshot = %request.snapshot,
        restore_type = %request.restore_type,
        superuser = %superuser.describe(),
        resumed,
        "restore run starting"
    );
    let mut ctx = RunContext {
        config,
        client,
        cratedbs,
        cr,
        request,
        run,
        db,
        superuser,
        notifier,
        status,
        events,
        deadline,
        cleanup_deadline,
        earlier_failure: false,
        settings_before: None,
        system_password: SecretString::from(password),
        plan,
        records,
        cancel,
    };
    if !resumed {
        ctx.events
            .normal(
                "RestoreStarted",
                "Restore",
                format!(
                    "Restore run {} of snapshot {} started by Job {}",
                    ctx.run.run_id,
                    ctx.request.snapshot,
                    ctx.run.job_name()
                ),
            )
            .await;
    }

    let phase = match engine::execute(&mut ctx).await {
        Ok(phase) => phase,
        Err(error) => {
            tracing::error!(%error, "the run stops: its status cannot be written; the next pod resumes it");
            return ExitStatus::Retry;
        }
    };
    if let Err(error) = finish(&mut ctx, phase).await {
        tracing::error!(%error, "cannot write the final status; the next pod finishes the run");
        return ExitStatus::Retry;
    }
    let stats = ctx.status.stats();
    tracing::info!(
        status_writes = stats.writes,
        status_bytes = stats.bytes,
        largest_status_write = stats.largest,
        api_requests = api_count::requests(),
        "run ended"
    );
    exit_for(phase)
}

/// The request this run admitted, with its options: as the previous release kept it in the
/// status, from the run's record, or (first start) from the resource, kept in the record
/// before the first step so that a later edit or withdrawal of the request changes nothing.
async fn admitted_request(
    cr: &CrateDB,
    state: &crate::status::RestoreStatus,
    records: &record::RecordStore,
    config: &JobConfig,
) -> Result<crate::run_record::AdmittedRequest, ExitStatus> {
    use crate::run_record::AdmittedRequest;
    let annotations = || {
        crate::restore_options::option_annotations(
            cr.metadata
                .annotations
                .as_ref()
                .unwrap_or(&Default::default()),
        )
    };
    if let Some(request) = &state.request {
        return Ok(AdmittedRequest {
            restore_snapshot: request.clone(),
            options: state.options.clone().unwrap_or_else(annotations),
        });
    }
    let Some(reference) = &state.request_record else {
        // First start: the request as stored now (the run id says it is this run's); it is
        // kept in the run's record before the first step ([`keep_request`]).
        return Ok(AdmittedRequest {
            restore_snapshot: cr
                .restore_snapshot()
                .and_then(|r| serde_json::to_value(r).ok())
                .unwrap_or(serde_json::Value::Null),
            options: annotations(),
        });
    };
    let backoff = config.backoff();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match records.get::<AdmittedRequest>(reference).await {
            Ok(admitted) => return Ok(admitted),
            Err(error) if error.is_transient() && backoff.wait(attempt, deadline).await => {
                tracing::warn!(%error, attempt, "cannot read the run's request; retrying");
            }
            Err(error) if error.is_transient() => {
                tracing::error!(%error, "cannot read the run's request; a retry may help");
                return Err(ExitStatus::Retry);
            }
            Err(error) => {
                tracing::error!(%error, "the run's request cannot be read; the run stops instead of guessing what was asked");
                return Err(ExitStatus::Usage);
            }
        }
    }
}

/// Keeps the admitted request in the run's record before the first step (written with the
/// run's first status write). Waits like for a Secret while the API refuses, saying so in the
/// status, until the restore deadline.
async fn keep_request(
    records: &record::RecordStore,
    admitted: &crate::run_record::AdmittedRequest,
    status: &mut StatusWriter,
    backoff: &Backoff,
    deadline: Instant,
) -> Result<(), StepError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match records.put("request", admitted).await {
            Ok(reference) => {
                status.state.request_record = Some(reference);
                return Ok(());
            }
            Err(error) if error.is_transient() => error,
            Err(error) => {
                return Err(error.context(
                    "the run cannot keep its request (does the restore Job's Role allow create and get on ConfigMaps?)",
                ));
            }
        };
        let Some(delay) = backoff.next_delay(attempt, deadline) else {
            return Err(StepError::DeadlineExceeded(format!(
                "{error}; gave up at the restore deadline"
            )));
        };
        tracing::warn!(%error, attempt, "cannot keep the run's request yet; waiting");
        let waiting = format!("Waiting: cannot keep the run's request: {error}");
        status.state.message = Some(crate::bounded::text(
            &waiting,
            crate::bounded::MESSAGE_BYTES,
        ));
        status
            .state
            .set_condition("Progressing", "True", "Waiting", &waiting);
        status.save_progress(Duration::from_secs(5)).await?;
        tokio::time::sleep(delay).await;
    }
}

/// The whole plan of a run that has one.
async fn load_plan(
    state: &crate::status::RestoreStatus,
    records: &record::RecordStore,
) -> Result<Option<crate::plan::Plan>, StepError> {
    let Some(summary) = &state.plan else {
        return Ok(None);
    };
    if let Some(plan) = summary.to_plan() {
        return Ok(Some(plan));
    }
    match &summary.stored {
        Some(reference) => records.get(reference).await.map(Some),
        None => Err(StepError::permanent(
            "status.restore.plan is capped but names no record of the whole plan",
        )),
    }
}

async fn finish(ctx: &mut RunContext, phase: Phase) -> Result<(), StepError> {
    let state = &mut ctx.status.state;
    let failure = step::first_failure(state);
    state.phase = Some(phase);
    state.finished_at = Some(Timestamp::now().to_string());
    state.set_condition(
        "Progressing",
        "False",
        "Finished",
        "The restore run has ended",
    );
    let summary = match &failure {
        Some((step, message)) => {
            state.set_condition("Restored", "False", &step.reason(), message);
            format!("Restore failed in step {}: {message}", step.as_str())
        }
        None if phase == Phase::Cancelled => {
            let by = state
                .cancelled_by
                .clone()
                .unwrap_or_else(|| "an unknown user".into());
            let undone = if steps::restore_issued_in(state) {
                "the relations and partitions it created were dropped, and its other changes undone"
            } else {
                "no RESTORE was sent, and what it changed was undone"
            };
            let mut summary = format!("Restore cancelled by {by}: {undone}.");
            if steps::restore_issued_in(state)
                && let Some(note) = steps::cancel_restore::irreversible(ctx)
            {
                summary.push_str(&format!(" Note: {note}."));
            }
            let state = &mut ctx.status.state;
            state.set_condition("Restored", "False", "Cancelled", &summary);
            summary
        }
        None => {
            state.set_condition(
                "Restored",
                "True",
                "Succeeded",
                "The snapshot has been restored successfully.",
            );
            state.progress_percent = Some(100.0);
            if state.plan.as_ref().is_some_and(|p| p.nothing_to_restore()) {
                "Nothing to restore: everything in the snapshot exists already (on-conflict: skip)."
                    .to_string()
            } else {
                "The snapshot has been restored successfully.".to_string()
            }
        }
    };
    let state = &mut ctx.status.state;
    state.message = Some(summary.clone());
    ctx.status.save().await?;
    match phase {
        Phase::Cancelled => {
            ctx.events
                .normal("RestoreCancelled", "Cancel", summary.clone())
                .await;
            tracing::warn!(run_id = %ctx.run.run_id, "{summary}");
        }
        Phase::Succeeded => {
            ctx.events
                .normal("RestoreSucceeded", "Restore", summary.clone())
                .await;
            tracing::info!(run_id = %ctx.run.run_id, "{summary}");
        }
        _ => {
            ctx.events
                .warning("RestoreFailed", "Restore", summary.clone())
                .await;
            tracing::error!(run_id = %ctx.run.run_id, "{summary}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cr(annotation: Option<&str>, snapshot: &str, status: serde_json::Value) -> CrateDB {
        let mut v = json!({
            "apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
            "metadata": {"name": "c1", "namespace": "ns"},
            "spec": {"cluster": {"restoreSnapshot": {"snapshot": snapshot}}, "nodes": {"data": [{"name": "hot"}]}},
            "status": status
        });
        if let Some(a) = annotation {
            v["metadata"]["annotations"] = json!({crate::resource::RUN_ID_ANNOTATION: a});
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn start_guard() {
        assert!(matches!(
            start_decision(&cr(Some("r0"), "s", json!({})), "r1"),
            StartDecision::OtherRun(_)
        ));
        assert!(matches!(
            start_decision(&cr(None, "s", json!({})), "r1"),
            StartDecision::OtherRun(_)
        ));
        assert!(matches!(
            start_decision(&cr(Some("r1"), "", json!({})), "r1"),
            StartDecision::NotOurs(_)
        ));
        assert_eq!(
            start_decision(
                &cr(
                    Some("r1"),
                    "s",
                    json!({"restore": {"runId": "r1", "phase": "Pending"}})
                ),
                "r1"
            ),
            StartDecision::Proceed
        );
        assert_eq!(
            start_decision(
                &cr(
                    Some("r1"),
                    "s",
                    json!({"restore": {"runId": "r1", "phase": "Failed"}})
                ),
                "r1"
            ),
            StartDecision::Finished(Phase::Failed)
        );
        // Reset already done by this run, status not final yet: finish it.
        assert_eq!(
            start_decision(
                &cr(
                    Some("r1"),
                    "",
                    json!({"restore": {"runId": "r1", "phase": "Running", "steps": {"preflight": {"state": "Succeeded"}}}})
                ),
                "r1"
            ),
            StartDecision::Proceed
        );
    }

    #[test]
    fn crash_pod_follows_the_node_layout() {
        let data_only = cr(Some("r"), "s", json!({}));
        assert_eq!(crash_pod(&data_only, "c1"), "crate-data-hot-c1-0");
        let mut master = data_only.clone();
        master.spec.nodes.as_mut().unwrap().master = Some(json!({"replicas": 3}));
        assert_eq!(crash_pod(&master, "c1"), "crate-master-c1-0");
    }
}
