//! `status NAME`: one view of `status.restore` ([`StatusView`]), printed as text for people or
//! as one JSON document for scripts. Steps come in run order ([`crate::job::step::PLAN`]), each
//! with its duration. Pure: the caller passes the current time and whether to colour.

use std::{collections::BTreeMap, fmt::Write as _};

use console::Style;
use indicatif::HumanBytes;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::{
    job::step::{PLAN, StepId},
    plan::PlanSummary,
    progress::Progress,
    restore_options::PREFIX,
    status::{Phase, RestoreStatus, StepState},
};

/// Long lists in the text view stop after this many items (JSON has them all).
const LIST_LIMIT: usize = 20;

/// What `status` shows, and the JSON document `status --output json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub namespace: String,
    pub name: String,
    /// `None`: the CrateDB has no `status.restore` ("no restore recorded").
    pub restore: Option<RestoreView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreView {
    pub run_id: Option<String>,
    pub phase: Option<Phase>,
    pub snapshot: Option<String>,
    #[serde(rename = "type")]
    pub restore_type: Option<String>,
    pub job_name: Option<String>,
    pub requested_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// From `startedAt` to `finishedAt`, or to now while the run is active.
    pub duration_seconds: Option<f64>,
    pub message: Option<String>,
    pub server_version: Option<String>,
    /// Who asked to cancel the run (`cancel`), when someone did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
    /// The admitted restore options (`restore.cloud.crate.io/` annotations).
    pub options: BTreeMap<String, String>,
    /// The step running now, else the last one that ran.
    pub current_step: Option<String>,
    /// The first step in run order that failed: the run's cause of failure.
    pub failed_step: Option<String>,
    pub progress_percent: Option<f64>,
    pub progress: Option<Progress>,
    /// Every step of the run order, then any step this version does not know.
    pub steps: Vec<StepView>,
    /// `status.restore.plan` exactly as stored (fields newer than this plugin included).
    pub plan: Option<Value>,
    #[serde(skip)]
    typed_plan: Option<PlanSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    pub id: String,
    /// `None`: the step has not run (yet).
    pub state: Option<StepState>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_seconds: Option<f64>,
    pub attempts: u32,
    pub message: Option<String>,
}

impl StatusView {
    /// The view of a CrateDB's `status.restore` (`None` when it has none). Fails when the stored
    /// value is not a `status.restore` this plugin can read.
    pub fn new(
        namespace: &str,
        name: &str,
        restore: Option<&Value>,
        now: Timestamp,
    ) -> Result<StatusView, String> {
        let restore = match restore {
            None | Some(Value::Null) => None,
            Some(raw) => Some(RestoreView::new(raw, now)?),
        };
        Ok(StatusView {
            namespace: namespace.into(),
            name: name.into(),
            restore,
        })
    }
}

fn seconds_between(from: Option<&str>, to: Option<&str>, now: Timestamp) -> Option<f64> {
    let from: Timestamp = from?.parse().ok()?;
    let to: Timestamp = match to {
        Some(t) => t.parse().ok()?,
        None => now,
    };
    let millis = to.as_millisecond() - from.as_millisecond();
    (millis >= 0).then(|| millis as f64 / 1000.0)
}

impl RestoreView {
    pub fn new(raw: &Value, now: Timestamp) -> Result<RestoreView, String> {
        let status: RestoreStatus = serde_json::from_value(raw.clone())
            .map_err(|e| format!("status.restore cannot be read: {e}"))?;
        let active = status.phase.is_some_and(Phase::is_active);
        // cancel_restore belongs to a run that was asked to stop; listing it under every other
        // run would read as if each one had a step left undone.
        let cancelling = status.cancel_requested_at.is_some()
            || status.phase == Some(Phase::Cancelled)
            || status.steps.contains_key(StepId::CancelRestore.as_str());
        let mut ids: Vec<String> = PLAN
            .iter()
            .filter(|s| cancelling || s.id != StepId::CancelRestore)
            .map(|s| s.id.as_str().to_string())
            .collect();
        let unknown: Vec<String> = status
            .steps
            .keys()
            .filter(|k| !ids.contains(k))
            .cloned()
            .collect();
        ids.extend(unknown);
        let steps: Vec<StepView> = ids
            .into_iter()
            .map(|id| match status.steps.get(&id) {
                Some(record) => {
                    let running = record.state == Some(StepState::Running);
                    let duration = if record.finished_at.is_some() || (running && active) {
                        seconds_between(
                            record.started_at.as_deref(),
                            record.finished_at.as_deref(),
                            now,
                        )
                    } else {
                        None
                    };
                    StepView {
                        id,
                        state: record.state,
                        started_at: record.started_at.clone(),
                        finished_at: record.finished_at.clone(),
                        duration_seconds: duration,
                        attempts: record.attempts,
                        message: record.message.clone(),
                    }
                }
                None => StepView {
                    id,
                    state: None,
                    started_at: None,
                    finished_at: None,
                    duration_seconds: None,
                    attempts: 0,
                    message: None,
                },
            })
            .collect();
        let current_step = steps
            .iter()
            .find(|s| s.state == Some(StepState::Running))
            .or_else(|| steps.iter().rev().find(|s| s.state.is_some()))
            .map(|s| s.id.clone());
        let failed_step = steps
            .iter()
            .find(|s| s.state == Some(StepState::Failed))
            .map(|s| s.id.clone());
        let duration_seconds = if status.finished_at.is_some() || active {
            seconds_between(
                status.started_at.as_deref(),
                status.finished_at.as_deref(),
                now,
            )
        } else {
            None
        };
        Ok(RestoreView {
            run_id: status.run_id,
            phase: status.phase,
            snapshot: status.snapshot,
            restore_type: status.restore_type,
            job_name: status.job_name,
            requested_at: status.requested_at,
            started_at: status.started_at,
            finished_at: status.finished_at,
            duration_seconds,
            message: status.message,
            server_version: status.server_version,
            cancelled_by: status.cancelled_by,
            options: status.options.unwrap_or_default(),
            current_step,
            failed_step,
            progress_percent: status.progress_percent,
            progress: status.progress,
            steps,
            plan: raw.get("plan").filter(|p| !p.is_null()).cloned(),
            typed_plan: status.plan,
        })
    }

    pub fn is_active(&self) -> bool {
        self.phase.is_some_and(Phase::is_active)
    }

    /// Whole percent done: `progressPercent` as the Job writes it (never 100 before every shard
    /// started), else the byte-weighted `progress.percent`; 100 once the run succeeded.
    pub fn percent(&self) -> Option<f64> {
        if self.phase == Some(Phase::Succeeded) {
            return Some(100.0);
        }
        self.progress_percent
            .or(self.progress.as_ref().map(|p| p.percent))
            .map(|p| p.clamp(0.0, 100.0).floor())
    }

    /// 1-based position of the current step in the run order, and the number of steps.
    pub fn step_position(&self) -> Option<(usize, usize)> {
        let current = self.current_step.as_deref()?;
        let index = self.steps.iter().position(|s| s.id == current)?;
        Some((index + 1, self.steps.len()))
    }
}

/// Whether to colour, decided once by the caller (console: a terminal, `NO_COLOR` unset).
#[derive(Debug, Clone, Copy)]
pub struct Styles {
    pub color: bool,
}

impl Styles {
    pub const PLAIN: Styles = Styles { color: false };

    fn style(self, style: Style) -> Style {
        style.force_styling(self.color)
    }

    pub fn phase(self, phase: Option<Phase>) -> String {
        let Some(phase) = phase else {
            return "-".into();
        };
        let style = match phase {
            Phase::Succeeded => Style::new().green().bold(),
            Phase::Failed => Style::new().red().bold(),
            Phase::Cancelled => Style::new().magenta().bold(),
            Phase::Running => Style::new().cyan().bold(),
            Phase::Pending => Style::new().yellow().bold(),
        };
        self.style(style).apply_to(phase.to_string()).to_string()
    }

    fn state(self, state: Option<StepState>, width: usize) -> String {
        let (text, style) = match state {
            Some(StepState::Succeeded) => ("Succeeded", Style::new().green()),
            Some(StepState::Failed) => ("Failed", Style::new().red().bold()),
            Some(StepState::Running) => ("Running", Style::new().cyan()),
            Some(StepState::Skipped) => ("Skipped", Style::new().dim()),
            None => ("-", Style::new().dim()),
        };
        self.style(style)
            .apply_to(format!("{text:<width$}"))
            .to_string()
    }

    pub fn heading(self, text: &str) -> String {
        self.style(Style::new().bold()).apply_to(text).to_string()
    }
}

/// `0.4s`, `12s`, `5m3s`, `2h30m`: short and exact enough for steps and runs.
pub fn short_duration(seconds: f64) -> String {
    if seconds < 9.95 {
        format!("{seconds:.1}s")
    } else {
        crate::duration::human(std::time::Duration::from_secs(seconds.round() as u64))
    }
}

/// `40% · 400 B of 1000 B · 1/3 primary shards started · 100 B/s · ETA 6s`.
pub fn progress_line(view: &RestoreView) -> Option<String> {
    let percent = view.percent()?;
    let mut parts = vec![format!("{}%", percent.floor() as u64)];
    if let Some(p) = &view.progress {
        if p.total_bytes > 0 {
            parts.push(format!(
                "{} of {}",
                HumanBytes(p.recovered_bytes.max(0) as u64),
                HumanBytes(p.total_bytes as u64)
            ));
        }
        if p.shards_total > 0 {
            parts.push(format!(
                "{}/{} primary shards started",
                p.shards_started, p.shards_total
            ));
        }
        if let Some(rate) = p.bytes_per_second {
            parts.push(format!("{}/s", HumanBytes(rate.max(0.0) as u64)));
        }
        if let Some(eta) = p.eta_seconds
            && view.is_active()
        {
            parts.push(format!("ETA {}", short_duration(eta as f64)));
        }
    }
    Some(parts.join(" · "))
}

fn list(items: &[String]) -> String {
    counted_list(items, items.len())
}

/// The items shown and how many there are in all: the status keeps the first few of a long
/// list and its count.
fn counted_list(items: &[String], total: usize) -> String {
    if items.is_empty() && total == 0 {
        return "-".into();
    }
    let mut shown: Vec<String> = items.iter().take(LIST_LIMIT).cloned().collect();
    if total > shown.len() {
        shown.push(format!(
            "and {} more",
            crate::bounded::count(total - shown.len())
        ));
    }
    shown.join(", ")
}

fn truncated(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}…")
}

/// The text of `status NAME`.
pub fn render_text(view: &StatusView, styles: Styles, now: Timestamp) -> String {
    let mut out = String::new();
    let Some(r) = &view.restore else {
        let _ = writeln!(
            out,
            "CrateDB {}/{}: no restore recorded (status.restore is empty)",
            view.namespace, view.name
        );
        return out;
    };
    let field = |out: &mut String, label: &str, value: &str| {
        let _ = writeln!(out, "{:<11}{value}", format!("{label}:"));
    };
    let _ = writeln!(out, "CrateDB {}/{}", view.namespace, view.name);
    field(&mut out, "Phase", &styles.phase(r.phase));
    field(&mut out, "Run", r.run_id.as_deref().unwrap_or("-"));
    if let Some(job) = &r.job_name {
        field(&mut out, "Job", job);
    }
    field(
        &mut out,
        "Snapshot",
        &format!(
            "{}{} (type {})",
            r.snapshot.as_deref().unwrap_or("-"),
            // `latest`, and the snapshot pre-flight resolved it to.
            r.typed_plan
                .as_ref()
                .and_then(|p| p.snapshot.as_deref())
                .filter(|resolved| Some(*resolved) != r.snapshot.as_deref())
                .map(|resolved| format!(" → {resolved}"))
                .unwrap_or_default(),
            r.restore_type.as_deref().unwrap_or("-")
        ),
    );
    if !r.options.is_empty() {
        let options: Vec<String> = r
            .options
            .iter()
            .map(|(k, v)| format!("{}={v}", k.strip_prefix(PREFIX).unwrap_or(k)))
            .collect();
        field(&mut out, "Options", &options.join(", "));
    }
    if let Some(version) = &r.server_version {
        field(&mut out, "CrateDB", version);
    }
    let ago = |at: &str| {
        seconds_between(Some(at), None, now)
            .map(|s| format!("{at} ({} ago)", short_duration(s)))
            .unwrap_or_else(|| at.to_string())
    };
    if let Some(at) = &r.requested_at {
        field(&mut out, "Requested", &ago(at));
    }
    field(
        &mut out,
        "Started",
        &r.started_at.as_deref().map(ago).unwrap_or("-".into()),
    );
    let finished = match (&r.finished_at, r.duration_seconds) {
        (Some(at), Some(d)) => format!("{at} (took {})", short_duration(d)),
        (Some(at), None) => at.clone(),
        (None, Some(d)) if r.is_active() => format!("- (running for {})", short_duration(d)),
        (None, _) => "-".into(),
    };
    field(&mut out, "Finished", &finished);
    if let Some(by) = &r.cancelled_by {
        field(&mut out, "Cancelled", &format!("by {by}"));
    }
    field(&mut out, "Message", r.message.as_deref().unwrap_or("-"));
    if let Some(line) = progress_line(r) {
        field(&mut out, "Progress", &line);
    }

    let id_width = r.steps.iter().map(|s| s.id.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        out,
        "\n{}",
        styles.heading(&format!(
            "{:<id_width$}  {:<9}  {:>8}  MESSAGE",
            "STEP", "STATE", "DURATION"
        ))
    );
    for step in &r.steps {
        let duration = step
            .duration_seconds
            .map(short_duration)
            .unwrap_or_default();
        let mut message = step.message.clone().unwrap_or_default();
        if step.attempts > 1 {
            message = format!("(attempt {}) {message}", step.attempts);
        }
        // Padding only where something follows, so no line ends in blanks (or in blanks
        // inside a colour code).
        let line = if duration.is_empty() && message.is_empty() {
            format!("{:<id_width$}  {}", step.id, styles.state(step.state, 0))
        } else {
            format!(
                "{:<id_width$}  {}  {duration:>8}  {message}",
                step.id,
                styles.state(step.state, 9),
            )
        };
        let _ = writeln!(out, "{}", line.trim_end());
    }

    if let Some(plan) = &r.typed_plan {
        let _ = writeln!(out, "\n{}", styles.heading("PLAN"));
        let item = |out: &mut String, label: &str, value: &str| {
            let _ = writeln!(out, "  {:<13}{value}", format!("{label}:"));
        };
        let restores = if plan.nothing_to_restore() {
            "nothing: everything the request names exists already (on-conflict: skip); no RESTORE is sent".to_string()
        } else {
            truncated(&plan.keyword, 200)
        };
        item(&mut out, "Restores", &restores);
        let relations: Vec<String> = plan.relations.iter().map(|t| t.sql()).collect();
        item(
            &mut out,
            "Relations",
            &format!(
                "{} ({})",
                counted_list(&relations, plan.relations_total()),
                crate::bounded::count(plan.relations_total())
            ),
        );
        if plan.partitions_total() > 0 {
            let partitions: Vec<String> = plan
                .partitions
                .iter()
                .map(|p| format!("{} {}", p.table.sql(), p.values))
                .collect();
            item(
                &mut out,
                "Partitions",
                &counted_list(&partitions, plan.partitions_total()),
            );
        }
        for renamed in plan.renamed.iter().take(LIST_LIMIT) {
            item(
                &mut out,
                "Renamed",
                &format!("{} → {}", renamed.from.sql(), renamed.to.sql()),
            );
        }
        let renamed_shown = plan.renamed.len().min(LIST_LIMIT);
        if plan.renamed_total() > renamed_shown {
            item(
                &mut out,
                "Renamed",
                &format!(
                    "and {} more",
                    crate::bounded::count(plan.renamed_total() - renamed_shown)
                ),
            );
        }
        if plan.skipped_total() > 0 {
            let skipped: Vec<String> = plan.skipped.iter().map(|s| s.describe()).collect();
            item(
                &mut out,
                "Skipped",
                &format!(
                    "{} ({}; they exist already, on-conflict: skip)",
                    counted_list(&skipped, plan.skipped_total()),
                    crate::bounded::count(plan.skipped_total())
                ),
            );
        }
        if !plan.gc_tables.is_empty() {
            let gc: Vec<String> = plan
                .gc_tables
                .iter()
                .map(|t| crate::sql::TableIdent::new(crate::plan::GC_SCHEMA, t.as_str()).sql())
                .collect();
            item(
                &mut out,
                "Moved aside",
                &format!(
                    "{} (Grand Central tables, renamed to *_temp first)",
                    list(&gc)
                ),
            );
        }
        for conflict in &plan.conflicts {
            item(&mut out, "Conflict", conflict);
        }
        if plan.conflicts_total() > plan.conflicts.len() {
            item(
                &mut out,
                "Conflict",
                &format!(
                    "and {} more",
                    crate::bounded::count(plan.conflicts_total() - plan.conflicts.len())
                ),
            );
        }
        for warning in &plan.warnings {
            item(&mut out, "Warning", warning);
        }
        let warnings_total = plan.warnings_count.unwrap_or(plan.warnings.len());
        if warnings_total > plan.warnings.len() {
            item(
                &mut out,
                "Warning",
                &format!(
                    "and {} more",
                    crate::bounded::count(warnings_total - plan.warnings.len())
                ),
            );
        }
    }
    out
}

/// The JSON of `status NAME --output json`: one document.
pub fn render_json(view: &StatusView) -> String {
    serde_json::to_string_pretty(view).expect("a view serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-11-24T10:10:00Z".parse().unwrap()
    }

    /// status.restore as the Job writes it in the middle of a run.
    fn running() -> Value {
        json!({
            "runId": "20241124100000-abc123",
            "snapshot": "snap-2024-11-24",
            "type": "tables",
            "phase": "Running",
            "jobName": "restore-my-cluster-20241124100000-abc123",
            "repository": "restore_backup_20241124100000_abc123",
            "startedAt": "2024-11-24T10:00:00Z",
            "finishedAt": null,
            "message": "Please wait while cluster data is being restored... (40%)",
            "serverVersion": "5.10.3",
            "progressPercent": 40.0,
            "progress": {"percent": 40.0, "recoveredBytes": 419430400, "totalBytes": 1048576000,
                         "shardsTotal": 6, "shardsStarted": 2, "bytesPerSecond": 10485760.0,
                         "etaSeconds": 60},
            "plan": {"keyword": "TABLE \"doc\".\"orders\", \"sales\".\"Q1\"",
                     "relations": [{"schema": "doc", "table": "orders"}, {"schema": "sales", "table": "Q1"}],
                     "partitions": [], "gcTables": [], "conflicts": [], "warnings": []},
            "steps": {
                "preflight": {"state": "Succeeded", "startedAt": "2024-11-24T10:00:00Z",
                              "finishedAt": "2024-11-24T10:00:01.250Z", "attempts": 1,
                              "message": "2 relations to restore, no conflicts"},
                "before_cluster_update": {"state": "Succeeded", "startedAt": "2024-11-24T10:00:01.250Z",
                              "finishedAt": "2024-11-24T10:00:31Z", "attempts": 1,
                              "message": "CronJob create-snapshot-my-cluster suspended"},
                "before_restore_backup": {"state": "Succeeded", "startedAt": "2024-11-24T10:00:31Z",
                              "finishedAt": "2024-11-24T10:00:32Z", "attempts": 1},
                "restore_backup_data": {"state": "Succeeded", "startedAt": "2024-11-24T10:00:32Z",
                              "finishedAt": "2024-11-24T10:00:33Z", "attempts": 2,
                              "message": "RESTORE sent"},
                "await_restore": {"state": "Running", "startedAt": "2024-11-24T10:00:33Z", "attempts": 1}
            },
            "notifications": [],
            "conditions": []
        })
    }

    fn view(restore: Option<Value>) -> StatusView {
        StatusView::new("dbs", "my-cluster", restore.as_ref(), now()).unwrap()
    }

    #[test]
    fn the_cancel_step_is_listed_once_a_cancel_was_asked_for() {
        let plain = render_text(&view(Some(running())), Styles::PLAIN, now());
        assert!(!plain.contains("cancel_restore"), "{plain}");
        let mut asked = running();
        asked["cancelRequestedAt"] = json!("2024-11-24T10:09:00Z");
        let text = render_text(&view(Some(asked)), Styles::PLAIN, now());
        assert!(
            text.contains("await_restore                 Running       9m27s\ncancel_restore                -\n"),
            "{text}"
        );
    }

    #[test]
    fn text_of_a_running_restore() {
        let text = render_text(&view(Some(running())), Styles::PLAIN, now());
        let expected = r#"CrateDB dbs/my-cluster
Phase:     Running
Run:       20241124100000-abc123
Job:       restore-my-cluster-20241124100000-abc123
Snapshot:  snap-2024-11-24 (type tables)
CrateDB:   5.10.3
Started:   2024-11-24T10:00:00Z (10m ago)
Finished:  - (running for 10m)
Message:   Please wait while cluster data is being restored... (40%)
Progress:  40% · 400.00 MiB of 1000.00 MiB · 2/6 primary shards started · 10.00 MiB/s · ETA 1m

STEP                          STATE      DURATION  MESSAGE
preflight                     Succeeded      1.2s  2 relations to restore, no conflicts
before_cluster_update         Succeeded       30s  CronJob create-snapshot-my-cluster suspended
before_restore_backup         Succeeded      1.0s
restore_backup_data           Succeeded      1.0s  (attempt 2) RESTORE sent
await_restore                 Running       9m27s
restore_system_user_password  -
restore_user_jwt_auth         -
validate_restore_complete     -
restore_internal_tables       -
after_restore_backup          -
after_cluster_update          -
send_success_notification     -
flush_notifications           -
reset_snapshot                -

PLAN
  Restores:    TABLE "doc"."orders", "sales"."Q1"
  Relations:   doc.orders, sales."Q1" (2)
"#;
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn text_of_a_failed_restore_with_conflicts_and_no_progress() {
        let failed = json!({
            "runId": "r2", "snapshot": "snap", "type": "all", "phase": "Failed",
            "startedAt": "2024-11-24T10:00:00Z", "finishedAt": "2024-11-24T10:00:02Z",
            "message": "doc.a already exists in the cluster as a table; drop or rename it first, or restore only other tables",
            "plan": {"keyword": "ALL", "relations": [{"schema": "doc", "table": "a"}],
                     "partitions": [{"schema": "doc", "table": "p", "values": "(\"day\" = '2024-01-02')"}],
                     "gcTables": ["scheduled_jobs"],
                     "conflicts": ["doc.a already exists in the cluster as a table; drop or rename it first, or restore only other tables"],
                     "warnings": ["snapshot snap is PARTIAL: some shards were not captured and will be missing"]},
            "steps": {
                "preflight": {"state": "Failed", "startedAt": "2024-11-24T10:00:00Z",
                              "finishedAt": "2024-11-24T10:00:01Z", "attempts": 1,
                              "message": "1 conflict"},
                "reset_snapshot": {"state": "Succeeded", "startedAt": "2024-11-24T10:00:01Z",
                                   "finishedAt": "2024-11-24T10:00:02Z", "attempts": 1},
                "a_future_step": {"state": "Skipped", "attempts": 0}
            }
        });
        let v = view(Some(failed));
        let text = render_text(&v, Styles::PLAIN, now());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "Phase:     Failed");
        assert_eq!(lines[5], "Finished:  2024-11-24T10:00:02Z (took 2.0s)");
        assert!(!text.contains("Progress:"), "{text}");
        assert!(
            text.contains("\npreflight                     Failed         1.0s  1 conflict\n"),
            "{text}"
        );
        assert!(
            text.contains("\nreset_snapshot                Succeeded      1.0s\n"),
            "{text}"
        );
        assert!(
            text.contains("\nrestore_user_jwt_auth         -\n"),
            "a step that never ran: {text}"
        );
        assert!(
            text.contains("\na_future_step                 Skipped\n"),
            "{text}"
        );
        let restore = v.restore.as_ref().unwrap();
        assert_eq!(restore.failed_step.as_deref(), Some("preflight"));
        assert_eq!(restore.current_step.as_deref(), Some("a_future_step"));
        assert!(
            text.ends_with(
                r#"
PLAN
  Restores:    ALL
  Relations:   doc.a (1)
  Partitions:  doc.p ("day" = '2024-01-02')
  Moved aside: gc.scheduled_jobs (Grand Central tables, renamed to *_temp first)
  Conflict:    doc.a already exists in the cluster as a table; drop or rename it first, or restore only other tables
  Warning:     snapshot snap is PARTIAL: some shards were not captured and will be missing
"#
            ),
            "{text}"
        );
    }

    #[test]
    fn renamed_and_skipped_relations_and_options() {
        let status = json!({
            "runId": "r3", "snapshot": "snap", "type": "all", "phase": "Succeeded",
            "startedAt": "2024-11-24T10:00:00Z", "finishedAt": "2024-11-24T10:01:00Z",
            "options": {"restore.cloud.crate.io/on-conflict": "skip",
                        "restore.cloud.crate.io/table-rename-pattern": "(.+)",
                        "restore.cloud.crate.io/table-rename-replacement": "restored_$1"},
            "plan": {"keyword": "TABLE \"doc\".\"orders\"",
                     "relations": [{"schema": "doc", "table": "restored_orders"}],
                     "partitions": [],
                     "renamed": [{"from": {"schema": "doc", "table": "orders"},
                                  "to": {"schema": "doc", "table": "restored_orders"}},
                                 {"from": {"schema": "doc", "table": "events"},
                                  "to": {"schema": "doc", "table": "restored_events"}}],
                     "skipped": [{"schema": "doc", "table": "restored_events"},
                                 {"schema": "doc", "table": "parted", "partition": "(\"day\" = '2024-01-02')"}],
                     "gcTables": [], "conflicts": [], "warnings": []}
        });
        let v = view(Some(status.clone()));
        let text = render_text(&v, Styles::PLAIN, now());
        assert!(
            text.contains("Snapshot:  snap (type all)\nOptions:   on-conflict=skip, table-rename-pattern=(.+), table-rename-replacement=restored_$1\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                r#"
PLAN
  Restores:    TABLE "doc"."orders"
  Relations:   doc.restored_orders (1)
  Renamed:     doc.orders → doc.restored_orders
  Renamed:     doc.events → doc.restored_events
  Skipped:     doc.restored_events, doc.parted PARTITION ("day" = '2024-01-02') (2; they exist already, on-conflict: skip)
"#
            ),
            "{text}"
        );
        let doc: Value = serde_json::from_str(&render_json(&v)).unwrap();
        assert_eq!(doc["restore"]["options"], status["options"]);
        assert_eq!(
            doc["restore"]["plan"], status["plan"],
            "renamed and skipped as stored"
        );

        let mut nothing = status;
        nothing["plan"]["keyword"] = json!("");
        nothing["plan"]["relations"] = json!([]);
        let text = render_text(&view(Some(nothing)), Styles::PLAIN, now());
        assert!(
            text.contains("  Restores:    nothing: everything the request names exists already (on-conflict: skip); no RESTORE is sent\n"),
            "{text}"
        );
    }

    #[test]
    fn no_restore_recorded() {
        assert_eq!(
            render_text(&view(None), Styles::PLAIN, now()),
            "CrateDB dbs/my-cluster: no restore recorded (status.restore is empty)\n"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&render_json(&view(None))).unwrap(),
            json!({"namespace": "dbs", "name": "my-cluster", "restore": null})
        );
    }

    #[test]
    fn a_pending_restore_as_the_webhook_seeds_it() {
        let pending = json!({"runId": "r1", "phase": "Pending", "snapshot": "s", "type": "all",
                             "jobName": "restore-x-r1", "requestedAt": "2024-11-24T10:09:58Z"});
        let v = view(Some(pending));
        let text = render_text(&v, Styles::PLAIN, now());
        assert!(text.contains("Phase:     Pending\n"), "{text}");
        assert!(
            text.contains("Requested: 2024-11-24T10:09:58Z (2.0s ago)\n"),
            "{text}"
        );
        assert!(text.contains("Started:   -\nFinished:  -\n"), "{text}");
        assert_eq!(v.restore.as_ref().unwrap().current_step, None);
        assert!(!text.contains("PLAN"));
    }

    #[test]
    fn json_shape() {
        let v = view(Some(running()));
        let doc: Value = serde_json::from_str(&render_json(&v)).unwrap();
        assert_eq!(doc["namespace"], "dbs");
        assert_eq!(doc["name"], "my-cluster");
        let r = &doc["restore"];
        assert_eq!(r["phase"], "Running");
        assert_eq!(r["runId"], "20241124100000-abc123");
        assert_eq!(r["type"], "tables");
        assert_eq!(r["currentStep"], "await_restore");
        assert_eq!(r["failedStep"], Value::Null);
        assert_eq!(r["durationSeconds"], 600.0);
        assert_eq!(r["progress"]["recoveredBytes"], 419430400);
        assert_eq!(r["progress"]["etaSeconds"], 60);
        assert_eq!(r["plan"], running()["plan"], "the plan as stored");
        let steps = r["steps"].as_array().unwrap();
        assert_eq!(
            steps.len(),
            PLAN.len() - 1,
            "no cancel_restore row: not cancelled"
        );
        assert!(steps.iter().all(|s| s["id"] != "cancel_restore"));
        assert_eq!(
            steps[0],
            json!({"id": "preflight", "state": "Succeeded", "startedAt": "2024-11-24T10:00:00Z",
                   "finishedAt": "2024-11-24T10:00:01.250Z", "durationSeconds": 1.25, "attempts": 1,
                   "message": "2 relations to restore, no conflicts"})
        );
        assert_eq!(steps[4]["state"], "Running");
        assert_eq!(steps[4]["durationSeconds"], 567.0);
        assert_eq!(
            steps[13],
            json!({"id": "reset_snapshot", "state": null, "startedAt": null, "finishedAt": null,
                   "durationSeconds": null, "attempts": 0, "message": null})
        );
        assert_eq!(v.restore.as_ref().unwrap().step_position(), Some((5, 14)));
    }

    #[test]
    fn unreadable_status_is_an_error_not_a_guess() {
        let err =
            StatusView::new("dbs", "x", Some(&json!({"phase": "Exploded"})), now()).unwrap_err();
        assert!(err.starts_with("status.restore cannot be read: "), "{err}");
    }

    #[test]
    fn colour_only_when_asked() {
        let v = view(Some(running()));
        let plain = render_text(&v, Styles::PLAIN, now());
        assert!(!plain.contains('\u{1b}'));
        let coloured = render_text(&v, Styles { color: true }, now());
        assert!(coloured.contains("\u{1b}["));
        assert_eq!(console::strip_ansi_codes(&coloured), plain);
    }

    #[test]
    fn durations() {
        for (s, text) in [
            (0.04, "0.0s"),
            (1.25, "1.2s"),
            (9.9, "9.9s"),
            (9.96, "10s"),
            (59.4, "59s"),
            (303.0, "5m3s"),
            (9000.0, "2h30m"),
        ] {
            assert_eq!(short_duration(s), text, "{s}");
        }
    }
}
