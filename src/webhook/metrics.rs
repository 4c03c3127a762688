//! Prometheus metrics of the admission server, served as text on the health port.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    pub endpoint: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    pub endpoint: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: String,
}

pub struct Metrics {
    registry: Registry,
    reviews: Family<ReviewLabels, Counter>,
    denials: Family<DenialLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    cert_reloads: Family<ReloadLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cratedb_restore_webhook");
        let reviews = Family::<ReviewLabels, Counter>::default();
        let denials = Family::<DenialLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            // 0.25 ms .. ~4 s: a review is sub-millisecond unless it waits on the API server.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.00025, 2.0, 15,
            ))
        });
        let cert_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "reviews",
            "Admission reviews answered, by endpoint and outcome (allowed, patched, denied, error)",
            reviews.clone(),
        );
        registry.register(
            "denials",
            "Denied admission reviews, by endpoint and reason",
            denials.clone(),
        );
        registry.register(
            "review_duration_seconds",
            "Time to answer an admission review, by endpoint",
            latency.clone(),
        );
        registry.register(
            "certificate_reloads",
            "TLS certificate reloads from disk, by result (success, failure)",
            cert_reloads.clone(),
        );
        Self {
            registry,
            reviews,
            denials,
            latency,
            cert_reloads,
        }
    }
}

impl Metrics {
    pub fn observe_review(
        &self,
        endpoint: &str,
        outcome: &str,
        denial_reason: Option<&str>,
        seconds: f64,
    ) {
        self.reviews
            .get_or_create(&ReviewLabels {
                endpoint: endpoint.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        if let Some(reason) = denial_reason {
            self.denials
                .get_or_create(&DenialLabels {
                    endpoint: endpoint.to_string(),
                    reason: reason.to_string(),
                })
                .inc();
        }
        self.latency
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_string(),
            })
            .observe(seconds);
    }

    pub fn observe_cert_reload(&self, success: bool) {
        self.cert_reloads
            .get_or_create(&ReloadLabels {
                result: if success { "success" } else { "failure" }.to_string(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.observe_review("validate", "denied", Some("Invalid"), 0.001);
        m.observe_review("mutate", "patched", None, 0.0002);
        m.observe_cert_reload(true);
        let text = m.render();
        assert!(
            text.contains(
                r#"cratedb_restore_webhook_reviews_total{endpoint="validate",outcome="denied"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"cratedb_restore_webhook_denials_total{endpoint="validate",reason="Invalid"} 1"#
        ));
        assert!(text.contains(
            r#"cratedb_restore_webhook_review_duration_seconds_count{endpoint="mutate"} 1"#
        ));
        assert!(
            text.contains(
                r#"cratedb_restore_webhook_certificate_reloads_total{result="success"} 1"#
            )
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
