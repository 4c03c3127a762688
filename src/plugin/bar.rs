//! `status NAME --watch`: the live view of a restore. On a terminal an indicatif progress bar
//! (percent of the bytes to restore, from `status.restore.progress`, with the Job's own rate and
//! ETA) above the current step and its message; elsewhere one plain line per change. The bar
//! draws to any [`ProgressDrawTarget`], so tests render it into a fixed-width in-memory
//! terminal.

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::render::{RestoreView, short_duration};
use crate::status::Phase;

/// The bar counts tenths of a percent.
const LENGTH: u64 = 1000;
/// Line 1: spinner, bar (as wide as the terminal) and percent; line 2: bytes, rate and ETA
/// (`{prefix}`); line 3: the step and its message (`{wide_msg}`, cut to the terminal's width).
const TEMPLATE: &str =
    "{spinner:.cyan} [{wide_bar:.cyan/blue}] {percent:>3}%\n  {prefix}\n  {wide_msg}";

pub struct WatchBar {
    bar: ProgressBar,
}

impl WatchBar {
    pub fn new(target: ProgressDrawTarget) -> WatchBar {
        let style = ProgressStyle::with_template(TEMPLATE)
            .expect("a valid template")
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(LENGTH), target).with_style(style);
        WatchBar { bar }
    }

    /// Shows `view`: bar position, numbers, step and message.
    pub fn update(&self, view: &RestoreView) {
        // Whole percents, so the bar's own {percent} shows exactly the run's figure.
        let position = view
            .percent()
            .map_or(0, |p| ((p * 10.0) as u64).min(LENGTH));
        self.bar.set_position(position);
        self.bar.set_prefix(numbers(view));
        self.bar.set_message(headline(view));
    }

    /// Redraws now (the spinner moves only with ticks: the caller enables a steady tick on a
    /// real terminal).
    pub fn draw(&self) {
        self.bar.force_draw();
    }

    pub fn progress_bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// Removes the bar from the terminal; the final result is printed after it.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// `400.00 MiB of 1000.00 MiB · 10.00 MiB/s · ETA 1m15s` (rate and ETA only while the run is
/// active), or the phase before there is any progress.
pub fn numbers(view: &RestoreView) -> String {
    let phase = || {
        view.phase
            .map_or_else(|| "-".to_string(), |p| p.to_string())
    };
    let Some(p) = &view.progress else {
        return phase();
    };
    let mut parts = Vec::new();
    if p.total_bytes > 0 {
        parts.push(format!(
            "{} of {}",
            HumanBytes(p.recovered_bytes.max(0) as u64),
            HumanBytes(p.total_bytes as u64)
        ));
    }
    if view.is_active() {
        if let Some(rate) = p.bytes_per_second {
            parts.push(format!("{}/s", HumanBytes(rate.max(0.0) as u64)));
        }
        if let Some(eta) = p.eta_seconds {
            parts.push(format!("ETA {}", short_duration(eta as f64)));
        }
    }
    if parts.is_empty() {
        return phase();
    }
    parts.join(" · ")
}

/// `[5/14] await_restore: Please wait ...`: where the run is and what it says.
pub fn headline(view: &RestoreView) -> String {
    let message = view.message.as_deref().unwrap_or(match view.phase {
        Some(Phase::Pending) | None => "waiting for the restore Job to start",
        _ => "",
    });
    match (view.current_step.as_deref(), view.step_position()) {
        (Some(step), Some((n, of))) => format!("[{n}/{of}] {step}: {message}"),
        _ => message.to_string(),
    }
}

/// One line per change when the output is not a terminal (logs, CI):
/// `Running · 40% · 400.00 MiB of 1000.00 MiB · 10.00 MiB/s · ETA 1m15s · [5/14] await_restore: ...`.
pub fn plain_line(view: &RestoreView) -> String {
    let phase = view
        .phase
        .map_or_else(|| "-".to_string(), |p| p.to_string());
    let mut parts = vec![phase.clone()];
    if let Some(percent) = view.percent() {
        parts.push(format!("{}%", percent.floor() as u64));
    }
    let numbers = numbers(view);
    if numbers != phase {
        parts.push(numbers);
    }
    let headline = headline(view);
    if !headline.is_empty() {
        parts.push(headline);
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::InMemoryTerm;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::{Value, json};

    const WAIT: &str = "Please wait while cluster data is being restored...";

    fn view(status: Value) -> RestoreView {
        RestoreView::new(
            &status,
            "2024-11-24T10:10:00Z".parse::<Timestamp>().unwrap(),
        )
        .unwrap()
    }

    /// status.restore with byte progress, as the Job writes it.
    fn at(percent: f64, recovered: i64, phase: &str, step: &str, message: &str) -> RestoreView {
        let whole = if percent >= 100.0 && phase == "Running" {
            99.0
        } else {
            percent.floor()
        };
        view(json!({
            "runId": "r1", "phase": phase, "message": message,
            "startedAt": "2024-11-24T10:00:00Z",
            "progressPercent": whole,
            "progress": {"percent": percent, "recoveredBytes": recovered, "totalBytes": 1_048_576_000_i64,
                         "shardsTotal": 4, "shardsStarted": 1, "bytesPerSecond": 10_485_760.0,
                         "etaSeconds": 75},
            "steps": {
                "preflight": {"state": "Succeeded", "attempts": 1},
                step: {"state": if phase == "Running" { "Running" } else { "Succeeded" }, "attempts": 1}
            }
        }))
    }

    /// The screen of a `cols`-wide terminal after showing each view in turn.
    fn rendered(cols: u16, views: &[RestoreView]) -> String {
        let term = InMemoryTerm::new(6, cols);
        let bar = WatchBar::new(ProgressDrawTarget::term_like(Box::new(term.clone())));
        for v in views {
            bar.update(v);
            bar.draw();
        }
        term.contents()
    }

    #[test]
    fn a_bar_at_a_few_points_in_80_columns() {
        assert_eq!(
            rendered(80, &[at(0.0, 0, "Running", "await_restore", WAIT)]),
            "⠁ [                                                                       ]   0%
  0 B of 1000.00 MiB · 10.00 MiB/s · ETA 1m15s
  [5/14] await_restore: Please wait while cluster data is being restored..."
        );
        assert_eq!(
            rendered(
                80,
                &[at(40.0, 419_430_400, "Running", "await_restore", WAIT)]
            ),
            "⠁ [============================>                                          ]  40%
  400.00 MiB of 1000.00 MiB · 10.00 MiB/s · ETA 1m15s
  [5/14] await_restore: Please wait while cluster data is being restored..."
        );
        // Each update redraws in place: only the latest state is on the screen. All bytes
        // recovered but a shard not started yet: 99%, as the Job reports it, never 100%.
        assert_eq!(
            rendered(
                80,
                &[
                    at(40.0, 419_430_400, "Running", "await_restore", WAIT),
                    at(100.0, 1_048_576_000, "Running", "await_restore", WAIT),
                ]
            ),
            "⠉ [======================================================================>]  99%
  1000.00 MiB of 1000.00 MiB · 10.00 MiB/s · ETA 1m15s
  [5/14] await_restore: Please wait while cluster data is being restored..."
        );
        assert_eq!(
            rendered(
                80,
                &[at(
                    100.0,
                    1_048_576_000,
                    "Succeeded",
                    "reset_snapshot",
                    "The restore succeeded"
                )]
            ),
            "⠁ [=======================================================================] 100%
  1000.00 MiB of 1000.00 MiB
  [14/14] reset_snapshot: The restore succeeded"
        );
    }

    #[test]
    fn long_messages_are_cut_to_the_terminal_width() {
        let long = "Step preflight waiting: cannot reach CrateDB at crate-discovery-my-cluster.dbs:5432 (connection refused); attempt 7 in 30s";
        let screen = rendered(60, &[at(0.0, 0, "Running", "preflight", long)]);
        assert_eq!(
            screen,
            "⠁ [                                                   ]   0%
  0 B of 1000.00 MiB · 10.00 MiB/s · ETA 1m15s
  [1/14] preflight: Step preflight waiting: cannot reach Cra"
        );
        for line in screen.lines() {
            assert!(line.chars().count() <= 60, "{line:?}");
        }
    }

    #[test]
    fn before_any_progress() {
        let pending = view(json!({"runId": "r1", "phase": "Pending"}));
        assert_eq!(
            rendered(60, std::slice::from_ref(&pending)),
            "⠁ [                                                   ]   0%
  Pending
  waiting for the restore Job to start"
        );
        assert_eq!(
            plain_line(&pending),
            "Pending · waiting for the restore Job to start"
        );
        let preflight = view(json!({"runId": "r1", "phase": "Running",
            "message": "Step preflight waiting: cannot reach CrateDB; attempt 2 in 5s",
            "steps": {"preflight": {"state": "Running", "attempts": 2}}}));
        assert_eq!(
            rendered(60, &[preflight]),
            "⠁ [                                                   ]   0%
  Running
  [1/14] preflight: Step preflight waiting: cannot reach Cra"
        );
    }

    #[test]
    fn plain_lines_for_logs() {
        let v = at(40.0, 419_430_400, "Running", "await_restore", "Restoring");
        assert_eq!(
            plain_line(&v),
            "Running · 40% · 400.00 MiB of 1000.00 MiB · 10.00 MiB/s · ETA 1m15s · [5/14] await_restore: Restoring"
        );
        let done = at(100.0, 1_048_576_000, "Succeeded", "reset_snapshot", "Done");
        assert_eq!(
            plain_line(&done),
            "Succeeded · 100% · 1000.00 MiB of 1000.00 MiB · [14/14] reset_snapshot: Done"
        );
    }
}
