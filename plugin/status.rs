//! `status NAME` and `status NAME --watch`.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use futures::StreamExt;
use indicatif::ProgressDrawTarget;
use k8s_openapi::jiff::Timestamp;
use kube::{
    api::DynamicObject,
    runtime::{WatchStreamExt, watcher},
};

use cratedb_restore::plugin::{
    bar::{WatchBar, plain_line},
    exit::Exit,
    render::{self, RestoreView, StatusView, Styles, short_duration},
};

use crate::{access::Target, cli::Output};

fn view_of(target: &Target, name: &str, object: &DynamicObject) -> Result<StatusView, String> {
    StatusView::new(
        &target.namespace,
        name,
        object.data.pointer("/status/restore"),
        Timestamp::now(),
    )
    .map_err(|e| format!("CrateDB {}/{name}: {e}", target.namespace))
}

fn stdout_styles() -> Styles {
    Styles {
        color: console::colors_enabled(),
    }
}

pub async fn show(target: &Target, name: &str, output: Output) -> Result<Exit, String> {
    let object = target.cratedb(name).await?;
    let view = view_of(target, name, &object)?;
    print!(
        "{}",
        match output {
            Output::Text => render::render_text(&view, stdout_styles(), Timestamp::now()),
            Output::Json => render::render_json(&view),
        }
    );
    Ok(Exit::Ok)
}

/// Where the live view goes: a bar on a terminal, plain lines otherwise (both on stderr, so
/// stdout carries only the result).
enum Live {
    Bar(WatchBar),
    Lines { last: String },
}

impl Live {
    fn new() -> Live {
        if std::io::stderr().is_terminal() {
            let bar = WatchBar::new(ProgressDrawTarget::stderr());
            bar.progress_bar()
                .enable_steady_tick(Duration::from_millis(120));
            Live::Bar(bar)
        } else {
            Live::Lines {
                last: String::new(),
            }
        }
    }

    fn show(&mut self, view: &RestoreView) {
        match self {
            Live::Bar(bar) => bar.update(view),
            Live::Lines { last } => {
                let line = plain_line(view);
                if line != *last {
                    eprintln!("{line}");
                    *last = line;
                }
            }
        }
    }

    fn note(&mut self, text: &str) {
        match self {
            Live::Bar(bar) => bar.progress_bar().set_message(text.to_string()),
            Live::Lines { last } => {
                if text != last {
                    eprintln!("{text}");
                    *last = text.to_string();
                }
            }
        }
    }

    fn clear(&self) {
        if let Live::Bar(bar) = self {
            bar.clear();
        }
    }
}

/// Follows the CrateDB with a watch on that one object (kube's `watch_object`: a field-selected
/// watch that re-lists and resumes after a dropped connection, with backoff between retries).
/// Every status write of the Job arrives as an event; nothing polls.
pub async fn watch(
    target: &Target,
    name: &str,
    output: Output,
    timeout: Option<Duration>,
) -> Result<Exit, String> {
    // A clear "not found" before the watch, which would only report "not there".
    target.cratedb(name).await?;
    let started = tokio::time::Instant::now();
    let deadline = timeout.map(|t| started + t);
    let mut events = watcher::watch_object(target.cratedbs(), name)
        .default_backoff()
        .boxed();
    let mut live = Live::new();
    let mut last_view: Option<StatusView> = None;
    let finished = loop {
        let timed_out = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            event = events.next() => event,
            _ = timed_out => break None,
            _ = tokio::signal::ctrl_c() => {
                live.clear();
                eprintln!("interrupted; the restore goes on (kubectl cratedb-restore status {name})");
                std::process::exit(130);
            }
        };
        match event {
            Some(Ok(Some(object))) => {
                let view = view_of(target, name, &object).inspect_err(|_| live.clear())?;
                match &view.restore {
                    Some(restore) => {
                        live.show(restore);
                        if Exit::for_phase(restore.phase).is_some() {
                            break Some(view);
                        }
                    }
                    None => live.note("no restore recorded yet; waiting for one to start"),
                }
                last_view = Some(view);
            }
            Some(Ok(None)) => {
                live.clear();
                return Err(format!(
                    "CrateDB {}/{name} was deleted while watching",
                    target.namespace
                ));
            }
            Some(Err(error)) => {
                if let watcher::Error::InitialListFailed(kube::Error::Api(status))
                | watcher::Error::WatchStartFailed(kube::Error::Api(status)) = &error
                    && matches!(status.code, 401 | 403)
                {
                    live.clear();
                    return Err(format!(
                        "cannot watch CrateDB {}/{name}: {} ({} {})",
                        target.namespace, status.message, status.code, status.reason
                    ));
                }
                live.note(&format!("watch interrupted ({error}); reconnecting"));
            }
            None => {
                live.clear();
                return Err("the watch ended unexpectedly".into());
            }
        }
    };
    live.clear();
    let Some(view) = finished else {
        let phase = last_view
            .as_ref()
            .and_then(|v| v.restore.as_ref())
            .and_then(|r| r.phase)
            .map_or("not started".to_string(), |p| p.to_string());
        eprintln!(
            "timed out after {}: the restore of {}/{name} is still {phase}",
            short_duration(started.elapsed().as_secs_f64()),
            target.namespace
        );
        if output == Output::Json
            && let Some(view) = &last_view
        {
            print!("{}", render::render_json(view));
        }
        return Ok(Exit::Timeout);
    };
    let restore = view.restore.as_ref().expect("a finished run");
    match output {
        Output::Json => print!("{}", render::render_json(&view)),
        Output::Text => {
            let styles = stdout_styles();
            let took = restore
                .duration_seconds
                .map(|d| format!(" after {}", short_duration(d)))
                .unwrap_or_default();
            println!(
                "Restore of {}/{} (run {}): {}{took}",
                view.namespace,
                view.name,
                restore.run_id.as_deref().unwrap_or("-"),
                styles.phase(restore.phase)
            );
            if let Some(message) = &restore.message {
                println!("{message}");
            }
        }
    }
    let _ = std::io::stdout().flush();
    Ok(Exit::for_phase(restore.phase).expect("a terminal phase"))
}
