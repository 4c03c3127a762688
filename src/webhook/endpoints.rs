//! Knowing when a terminating webhook Pod may stop accepting connections: once the API server
//! no longer sends new reviews to it, i.e. once the Pod's address has left the `addresses` of
//! its Service's Endpoints (the API server, with `--enable-aggregator-routing` or a Service
//! reference, dials an endpoint from that list). Until then the Pod keeps serving; the Endpoints
//! controller removes it as soon as the Pod is deleted, and the API server's informer follows
//! within moments, which `linger` allows for.

use std::time::Duration;

use k8s_openapi::api::core::v1::Endpoints;
use kube::{Api, Client};
use tokio::time::Instant;

/// The Service whose Endpoints list this Pod, and the Pod's address in it.
#[derive(Clone)]
pub struct OwnEndpoint {
    pub client: Client,
    pub namespace: String,
    pub service: String,
    pub pod_ip: String,
}

/// How the wait for the endpoint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointWait {
    /// The address is no longer among the ready addresses (after this long).
    Removed(Duration),
    /// Still listed (or unknowable: the API unreachable) when the delay ran out.
    DelayOver,
    /// No Service configured: the whole delay was waited.
    NoService,
}

/// Whether `ip` is among the ready addresses of `endpoints` (Pure).
pub fn lists(endpoints: &Endpoints, ip: &str) -> bool {
    endpoints.subsets.iter().flatten().any(|subset| {
        subset
            .addresses
            .iter()
            .flatten()
            .any(|address| address.ip == ip)
    })
}

/// Waits until `own`'s address has left its Service's Endpoints, then `linger` more, but no
/// longer than `delay` in all. Without `own`, waits `delay`.
pub async fn wait_until_removed(
    own: Option<&OwnEndpoint>,
    delay: Duration,
    linger: Duration,
) -> EndpointWait {
    let started = Instant::now();
    let until = started + delay;
    let Some(own) = own else {
        tokio::time::sleep_until(until).await;
        return EndpointWait::NoService;
    };
    let api: Api<Endpoints> = Api::namespaced(own.client.clone(), &own.namespace);
    let mut logged_error = false;
    loop {
        match api.get_opt(&own.service).await {
            Ok(found) if found.as_ref().is_none_or(|e| !lists(e, &own.pod_ip)) => {
                let removed = started.elapsed();
                tokio::time::sleep_until((Instant::now() + linger).min(until)).await;
                return EndpointWait::Removed(removed);
            }
            Ok(_) => {}
            Err(error) if !logged_error => {
                tracing::warn!(%error, service = %own.service, "cannot read the Service's Endpoints while shutting down; serving on until the shutdown delay is over");
                logged_error = true;
            }
            Err(_) => {}
        }
        let next = Instant::now() + Duration::from_millis(250);
        if next >= until {
            tokio::time::sleep_until(until).await;
            return EndpointWait::DelayOver;
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_ready_addresses_count() {
        let endpoints: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "svc"},
            "subsets": [{"addresses": [{"ip": "10.244.0.7"}],
                         "notReadyAddresses": [{"ip": "10.244.0.9"}],
                         "ports": [{"port": 8443}]}]
        }))
        .unwrap();
        assert!(lists(&endpoints, "10.244.0.7"));
        assert!(
            !lists(&endpoints, "10.244.0.9"),
            "not ready: no new reviews"
        );
        assert!(!lists(&endpoints, "10.244.0.8"));
        assert!(!lists(&Endpoints::default(), "10.244.0.7"));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_service_the_whole_delay_is_waited() {
        let started = Instant::now();
        let outcome =
            wait_until_removed(None, Duration::from_secs(7), Duration::from_secs(1)).await;
        assert_eq!(outcome, EndpointWait::NoService);
        assert_eq!(started.elapsed(), Duration::from_secs(7));
    }
}
