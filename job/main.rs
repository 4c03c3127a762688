//! `cratedb-restore-job`: runs one admitted restore. See `--help` for options and exit codes.

mod cli;

use clap::Parser;
use cratedb_restore::{job, job::error::ExitStatus, telemetry};

use cli::{CatalogOutput, Cli, Command, SnapshotsArgs};

#[tokio::main]
async fn main() {
    let mut cli = Cli::parse();
    if let Some(Command::Snapshots(args)) = cli.command.take() {
        std::process::exit(snapshots(args).await);
    }
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

/// `snapshots`: the catalog of what can be restored, on stdout.
async fn snapshots(args: SnapshotsArgs) -> i32 {
    use job::snapshots::CatalogError;
    telemetry::init_stderr(args.log_format);
    cratedb_restore::install_crypto_provider();
    let client = match job::api_count::counted_client().await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "no Kubernetes API access (KUBECONFIG, ~/.kube/config or in-cluster)");
            return ExitStatus::Retry.code();
        }
    };
    let wait = std::time::Duration::from_secs(args.wait);
    match job::snapshots::list_waiting(&args.config(), client, args.from_request, wait).await {
        Ok((source, snapshots)) => {
            match args.output {
                CatalogOutput::Json => println!(
                    "{}",
                    cratedb_restore::snapshot_catalog::to_json(&source, &snapshots)
                ),
                CatalogOutput::Text => print!(
                    "{}",
                    cratedb_restore::snapshot_catalog::render_text(
                        &source,
                        &snapshots,
                        args.tables
                    )
                ),
            }
            ExitStatus::Done.code()
        }
        Err(error) => {
            tracing::error!("cannot list the snapshots: {error}");
            match error {
                CatalogError::Usage(_) => ExitStatus::Usage.code(),
                CatalogError::Refused(_) => ExitStatus::Failed.code(),
                CatalogError::Unavailable(_) => ExitStatus::Retry.code(),
            }
        }
    }
}
