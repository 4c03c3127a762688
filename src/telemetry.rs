//! Logging for both binaries: structured `tracing` output as text for people or JSON for log
//! pipelines, filtered by `RUST_LOG` (default: info for this product, warnings for libraries).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

const DEFAULT_FILTER: &str =
    "info,kube=warn,hyper=warn,hyper_util=warn,rustls=warn,tower=warn,tokio_postgres=warn";

pub fn init(format: LogFormat) {
    init_to(format, false);
}

/// Logs on stderr, for commands whose stdout is their result.
pub fn init_stderr(format: LogFormat) {
    init_to(format, true);
}

fn init_to(format: LogFormat, stderr: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let writer = move || -> Box<dyn std::io::Write> {
        if stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match format {
        // Colours only on a terminal: `kubectl logs` and files get plain text.
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_target(false)
                    .with_writer(writer)
                    .with_ansi(
                        std::io::IsTerminal::is_terminal(&std::io::stdout())
                            && std::env::var_os("NO_COLOR").is_none(),
                    ),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
    };
}
