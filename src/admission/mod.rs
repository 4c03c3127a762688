//! Admission: the decisions behind `POST /validate` and `POST /mutate`.
//!
//! `review` takes the raw body and returns the AdmissionReview to send back; the HTTP layer only
//! adds transport concerns. Every decision is one tracing span with the request's identity.

pub mod budget;
pub mod cancel;
pub mod change;
pub mod error;
pub mod lock;
pub mod mutate;
pub mod runnable;
pub mod runner;
pub mod secrets;
pub mod validate;

use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use kube::{
    Client,
    core::{
        DynamicObject,
        admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
    },
};
use tracing::{Instrument, field};

use crate::{resource, restore_job::JobSettings, run::new_run_id};

pub use error::AdmissionError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Mutate => "mutate",
        }
    }
}

/// How a review ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Patched,
    Denied(&'static str),
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Patched => "patched",
            Self::Denied(_) => "denied",
        }
    }
}

/// A body that is not an `admission.k8s.io/v1` AdmissionReview with a request: the HTTP layer
/// answers 400 and the API server applies the webhook's failure policy.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the body is not an AdmissionReview: {0}")]
    Decode(#[from] serde_json::Error),
    #[error(
        "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got {api_version:?} {kind:?}"
    )]
    WrongType { api_version: String, kind: String },
    #[error("the AdmissionReview has no request")]
    MissingRequest,
    #[error("request.{field} is missing for an {operation} operation")]
    MissingObject {
        field: &'static str,
        operation: &'static str,
    },
}

/// Everything the two endpoints need.
#[derive(Clone)]
pub struct Admission {
    pub client: Client,
    pub jobs: JobSettings,
    /// `activeDeadlineSeconds` for restore Jobs whose template sets none.
    pub default_deadline_seconds: i64,
    /// What all Kubernetes API calls of one review may take together; below the webhook
    /// configuration's `timeoutSeconds` (SPEC A25).
    pub review_budget: std::time::Duration,
    /// Who performs admitted restores.
    pub runner: runner::RestoreRunner,
}

/// The default review budget: one second below the largest `timeoutSeconds` the chart allows.
pub const DEFAULT_REVIEW_BUDGET: std::time::Duration = std::time::Duration::from_millis(4000);

pub fn decode(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, ReviewError> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    if review.types.api_version != kube::core::admission::META_API_VERSION_V1
        || review.types.kind != kube::core::admission::META_KIND
    {
        return Err(ReviewError::WrongType {
            api_version: review.types.api_version,
            kind: review.types.kind,
        });
    }
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::MissingRequest)?;
    let operation = match request.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    };
    if matches!(request.operation, Operation::Create | Operation::Update)
        && request.object.is_none()
    {
        return Err(ReviewError::MissingObject {
            field: "object",
            operation,
        });
    }
    if request.operation == Operation::Update && request.old_object.is_none() {
        return Err(ReviewError::MissingObject {
            field: "oldObject",
            operation,
        });
    }
    Ok(request)
}

/// The JSON sent back to the API server. kube's response type writes `patch` as an array of
/// numbers, which the API server happens to accept; the documented wire form (and what other
/// clients and tools expect) is a base64 string, so that is what we send.
pub fn encode_review(review: &AdmissionReview<DynamicObject>) -> serde_json::Value {
    use base64::Engine;
    let mut value = serde_json::to_value(review).unwrap_or_default();
    if let Some(patch) = review.response.as_ref().and_then(|r| r.patch.as_ref())
        && let Some(slot) = value.pointer_mut("/response/patch")
    {
        *slot = serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(patch));
    }
    value
}

fn is_cratedb(request: &AdmissionRequest<DynamicObject>) -> bool {
    request.kind.group == resource::GROUP && request.kind.kind == resource::KIND
}

impl Admission {
    /// Decides one review. Errors mean the body was not a usable AdmissionReview.
    pub async fn review(
        &self,
        endpoint: Endpoint,
        body: &[u8],
    ) -> Result<(AdmissionReview<DynamicObject>, Outcome), ReviewError> {
        let request = decode(body)?;
        let span = tracing::info_span!(
            "admission",
            endpoint = endpoint.as_str(),
            uid = %request.uid,
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = %request.name,
            operation = ?request.operation,
            dry_run = request.dry_run,
            allowed = field::Empty,
            reason = field::Empty,
            run_id = field::Empty,
            duration_ms = field::Empty,
        );
        let started = Instant::now();
        let (response, outcome) = self
            .decide(endpoint, &request)
            .instrument(span.clone())
            .await;
        span.record("allowed", response.allowed);
        if let Outcome::Denied(reason) = outcome {
            span.record("reason", reason);
        }
        span.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
        span.in_scope(|| match outcome {
            Outcome::Denied(_) => {
                tracing::info!(message = %response.result.message, "review denied")
            }
            _ => tracing::info!("review allowed"),
        });
        Ok((response.into_review(), outcome))
    }

    async fn decide(
        &self,
        endpoint: Endpoint,
        request: &AdmissionRequest<DynamicObject>,
    ) -> (AdmissionResponse, Outcome) {
        let response = AdmissionResponse::from(request);
        if !is_cratedb(request) {
            return (response, Outcome::Allowed);
        }
        let now = Timestamp::now();
        match endpoint {
            Endpoint::Mutate => {
                let patch = match self.runner {
                    runner::RestoreRunner::Job => mutate::patch_for(request, &new_run_id(now), now),
                    // The operator keeps its own state: only the defaults are written.
                    runner::RestoreRunner::Operator => mutate::defaults_patch(request),
                };
                if patch.0.is_empty() {
                    return (response, Outcome::Allowed);
                }
                if let Some(id) = patch_run_id(&patch) {
                    tracing::Span::current().record("run_id", id);
                }
                match response.clone().with_patch(patch) {
                    Ok(patched) => (patched, Outcome::Patched),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot serialise the patch");
                        (
                            response.deny("internal error: cannot serialise the patch"),
                            Outcome::Denied("InternalError"),
                        )
                    }
                }
            }
            Endpoint::Validate => {
                let validator = validate::Validator {
                    client: &self.client,
                    jobs: &self.jobs,
                    default_deadline_seconds: self.default_deadline_seconds,
                    review_budget: self.review_budget,
                    runner: self.runner,
                };
                match validator.validate(request, now).await {
                    Ok(admitted) => {
                        if let Some(job) = &admitted.job {
                            tracing::info!(job = %job, "restore Job created");
                        }
                        let mut response = response;
                        if !admitted.warnings.is_empty() {
                            response.warnings = Some(admitted.warnings);
                        }
                        (response, Outcome::Allowed)
                    }
                    Err(error) => {
                        let reason = error.reason();
                        (error.deny(response), Outcome::Denied(reason))
                    }
                }
            }
        }
    }
}

fn patch_run_id(patch: &json_patch::Patch) -> Option<String> {
    patch.0.iter().find_map(|op| match op {
        json_patch::PatchOperation::Add(add) => add
            .value
            .pointer("/restore/runId")
            .or_else(|| add.value.get("runId"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
        _ => None,
    })
}
