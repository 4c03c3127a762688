//! `cratedb-restore-webhook`: the admission server. See `--help`.

mod cli;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use clap::Parser;
use cratedb_restore::{
    admission::Admission,
    restore_job::JobSettings,
    telemetry,
    webhook::{
        endpoints::{self, EndpointWait, OwnEndpoint},
        metrics::Metrics,
        scope,
        server::{AppState, Drain, health_router, serve_tls_draining, webhook_router},
        tls::{self, CertFiles, CertStore},
    },
};
use tokio::{net::TcpListener, sync::watch};

use cli::Cli;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    if let Err(error) = run(cli).await {
        tracing::error!(%error, "cratedb-restore-webhook stopped");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    // kube's client and our server share one process-wide crypto provider.
    cratedb_restore::install_crypto_provider();

    let store = match (&cli.tls_cert_file, &cli.tls_key_file) {
        (Some(cert), Some(key)) => CertStore::from_files(CertFiles {
            cert: cert.clone(),
            key: key.clone(),
        })?,
        _ => {
            if !cli.self_signed {
                tracing::warn!(
                    "no --tls-cert-file given: serving a self-signed certificate (local use only)"
                );
            }
            let pair = tls::self_signed(&cli.self_signed_hosts)?;
            if let Some(out) = &cli.self_signed_cert_out {
                std::fs::write(out, &pair.cert_pem)?;
                tracing::info!(path = %out.display(), "wrote the self-signed certificate");
            }
            CertStore::from_pem(&pair)?
        }
    };
    let tls_config = Arc::new(store.server_config()?);

    let client = kube_client(cli.kube_timeout_seconds).await;
    let jobs = JobSettings {
        template: cli
            .job_template
            .as_ref()
            .map(|p| JobSettings::load_template(&p.to_string_lossy()))
            .transpose()?,
        image: cli.job_image.clone(),
        image_pull_policy: cli.job_image_pull_policy.clone(),
        service_account: cli.job_service_account.clone(),
        backoff_limit: cli.job_backoff_limit,
        ttl_seconds_after_finished: cli.job_ttl_seconds_after_finished,
        active_deadline_seconds: cli.job_active_deadline_seconds,
        labels: cli.job_labels.iter().cloned().collect::<BTreeMap<_, _>>(),
        node_selector: cli.job_node_selector.iter().cloned().collect(),
    };
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        admission: Arc::new(Admission {
            client,
            jobs,
            default_deadline_seconds: cli.restore_timeout + cli.cleanup_reserve,
            review_budget: Duration::from_millis(cli.review_timeout_ms.max(1)),
            runner: cli.restore_runner,
        }),
        metrics: metrics.clone(),
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let ready = Arc::new(AtomicBool::new(false));
    let health = TcpListener::bind(cli.health_listen).await?;
    tracing::info!(addr = %health.local_addr()?, "health and metrics listening (HTTP)");
    let health_task = tokio::spawn({
        let app = health_router(ready.clone(), metrics.clone());
        let stop = stopped(stop_rx.clone());
        async move { axum::serve(health, app).with_graceful_shutdown(stop).await }
    });

    let reload_metrics = metrics.clone();
    tokio::spawn(tls::watch_files(
        store.clone(),
        Duration::from_secs(cli.tls_reload_interval.max(1)),
        move |ok| reload_metrics.observe_cert_reload(ok),
        stopped(stop_rx.clone()),
    ));

    let excluded: Vec<String> = cli
        .exclude_namespaces
        .iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if cli.label_excluded_namespaces && !excluded.is_empty() {
        tokio::spawn(scope::keep_labelled(
            state.admission.client.clone(),
            excluded.clone(),
            Duration::from_secs(60),
        ));
    }
    let own_endpoint = match (&cli.endpoints_service, &cli.pod_ip, &cli.pod_namespace) {
        (Some(service), Some(pod_ip), Some(namespace)) => Some(OwnEndpoint {
            client: state.admission.client.clone(),
            namespace: namespace.clone(),
            service: service.clone(),
            pod_ip: pod_ip.clone(),
        }),
        _ => None,
    };

    let listener = TcpListener::bind(cli.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "admission webhook listening (HTTPS)");
    ready.store(true, Ordering::Release);

    let app = webhook_router(state, cli.max_body_bytes, excluded);
    let (draining_tx, draining) = watch::channel(false);
    let (accepting_tx, accepting) = watch::channel(true);
    let server = serve_tls_draining(
        listener,
        tls_config,
        app,
        Drain {
            draining,
            stop_accepting: async move {
                let mut accepting = accepting;
                let _ = accepting.wait_for(|a| !*a).await;
            },
            grace: Duration::from_secs(cli.shutdown_grace_seconds),
            idle_close: Duration::from_secs_f64(cli.drain_idle_seconds.max(0.0)),
        },
    );
    let signals = async {
        shutdown_signal().await;
        // Readiness fails, answers say `Connection: close`, idle connections close; reviews the
        // API server still sends here are answered until this Pod's endpoint is gone.
        ready.store(false, Ordering::Release);
        let _ = draining_tx.send(true);
        let delay = Duration::from_secs(cli.shutdown_delay_seconds);
        tracing::info!(
            delay_seconds = cli.shutdown_delay_seconds,
            "shutdown requested; draining connections while the endpoint goes"
        );
        match endpoints::wait_until_removed(own_endpoint.as_ref(), delay, ENDPOINT_LINGER).await {
            EndpointWait::Removed(after) => tracing::info!(
                after_ms = after.as_millis() as u64,
                "this Pod's endpoint is gone; no longer accepting connections"
            ),
            EndpointWait::DelayOver => tracing::warn!(
                "this Pod's endpoint is still listed after the shutdown delay; no longer accepting connections"
            ),
            EndpointWait::NoService => {}
        }
        let _ = accepting_tx.send(false);
    };
    tokio::join!(server, signals);
    let _ = stop_tx.send(true);
    let _ = health_task.await;
    Ok(())
}

/// After this Pod's endpoint is gone, how long the API server's view of the Endpoints may lag.
const ENDPOINT_LINGER: Duration = Duration::from_secs(1);

async fn kube_client(timeout_seconds: u64) -> kube::Client {
    let timeout = Some(Duration::from_secs(timeout_seconds.max(1)));
    let mut config = match kube::Config::infer().await {
        Ok(config) => config,
        Err(error) => {
            tracing::warn!(%error, "no Kubernetes configuration found (KUBECONFIG, ~/.kube/config, in-cluster); reviews that need the API will be denied");
            // An unroutable endpoint: every call fails fast with a connection error.
            kube::Config::new("https://127.0.0.1:1".parse().expect("static URL"))
        }
    };
    config.connect_timeout = timeout;
    config.read_timeout = timeout;
    config.write_timeout = timeout;
    kube::Client::try_from(config).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot build a Kubernetes client");
        std::process::exit(1)
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
