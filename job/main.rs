//! `cratedb-restore-job`: runs one admitted restore. See `--help` for options and exit codes.

mod cli;

use clap::Parser;
use cratedb_restore::{job, job::error::ExitStatus, telemetry};

use cli::Cli;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => {
            tracing::error!("{message}");
            std::process::exit(ExitStatus::Usage.code());
        }
    };
    cratedb_restore::install_crypto_provider();
    let client = match job::api_count::counted_client().await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "no Kubernetes API access (KUBECONFIG, ~/.kube/config or in-cluster)");
            std::process::exit(ExitStatus::Retry.code());
        }
    };
    let status = tokio::select! {
        status = job::run(config, client) => status,
        _ = terminated() => {
            tracing::warn!("SIGTERM received: stopping; the next pod resumes this run where it stopped");
            ExitStatus::Interrupted
        }
    };
    std::process::exit(status.code());
}

async fn terminated() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
