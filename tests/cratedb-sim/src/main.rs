//! `cratedb-sim`: run the CrateDB simulator as a process.

use std::path::PathBuf;

use clap::Parser;
use cratedb_sim::{SimConfig, Simulator};

/// CrateDB simulator: PostgreSQL wire protocol, CrateDB's HTTP endpoint
/// (`/_sql`, for crash) and the crate-control sidecar HTTP endpoint, over one
/// in-memory cluster state.
#[derive(Debug, Parser)]
#[command(name = "cratedb-sim", version, about, long_about = None)]
struct Args {
    /// Address for the PostgreSQL wire protocol listener.
    #[arg(long, default_value = "127.0.0.1:5432")]
    pg_listen: String,

    /// Address for the crate-control sidecar HTTP listener (`POST /exec`).
    #[arg(long, default_value = "127.0.0.1:5050")]
    http_listen: String,

    /// Address for CrateDB's HTTP endpoint (`POST /_sql`, `GET /`), what the
    /// `crash` shell connects to. `crate` is trusted only from loopback.
    #[arg(long, default_value = "127.0.0.1:4200")]
    http_sql_listen: String,

    /// JSON file describing the cluster: server_version, cluster_name, nodes,
    /// users, privileges, sidecar_token, storages (with snapshots), tables,
    /// views, persistent_settings, transient_settings, restore_outcomes,
    /// progress. Missing fields take their defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config: SimConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("invalid config {}: {e}", path.display()))?
        }
        None => SimConfig::default(),
    };
    let sim = Simulator::builder()
        .config(config)
        .pg_listen(args.pg_listen)
        .http_listen(args.http_listen)
        .http_sql_listen(args.http_sql_listen)
        .start()
        .await?;
    println!(
        "{}",
        serde_json::json!({
            "pg": sim.pg_addr().to_string(),
            "http": sim.sidecar_addr().to_string(),
            "sidecar_url": sim.sidecar_url(),
            "http_sql": sim.http_sql_addr().to_string(),
            "http_sql_url": sim.http_sql_url(),
        })
    );
    wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
