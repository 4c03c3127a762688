//! Sending a write to the CrateDB the way `kubectl` would, and keeping what the admission
//! webhooks answered: their warnings (in `Warning` headers, which kube's `Api` methods do not
//! return) and, for a denial, the API `Status`. Built by `kube::core::Request`, sent with
//! `Client::send`.

use kube::{
    Resource,
    api::{Patch, PatchParams},
    client::Body,
    core::{Request, Status},
};
use serde_json::Value;

use cratedb_restore::{
    plugin::{dry_run::Denial, warning::kubernetes_warnings},
    resource::CrateDB,
};

use crate::access::{Target, with_causes};

pub const FIELD_MANAGER: &str = "kubectl-cratedb_restore";

/// What the API server answered: the webhooks' warnings, and the stored (or dry-run) object or
/// the denial.
pub struct Answer {
    pub warnings: Vec<String>,
    pub outcome: Result<Value, Denial>,
}

pub async fn patch(
    target: &Target,
    name: &str,
    patch: &Patch<Value>,
    dry_run: bool,
) -> Result<Answer, String> {
    let params = PatchParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let what = if dry_run { "dry run of" } else { "write to" };
    let http_request = Request::new(CrateDB::url_path(&(), Some(&target.namespace)))
        .patch(name, &params, patch)
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = target
        .client
        .send(http_request.map(Body::from))
        .await
        .map_err(|e| {
            format!(
                "{what} CrateDB {}/{name}: {}",
                target.namespace,
                with_causes(&e)
            )
        })?;
    let code = response.status();
    let warnings = kubernetes_warnings(
        response
            .headers()
            .get_all(http::header::WARNING)
            .iter()
            .map(|v| v.as_bytes()),
    );
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| format!("{what} CrateDB {}/{name}: {e}", target.namespace))?;
    let outcome = if code.is_success() {
        Ok(serde_json::from_slice(&body)
            .map_err(|e| format!("the API server's answer is not JSON: {e}"))?)
    } else {
        Err(match serde_json::from_slice::<Status>(&body) {
            Ok(status) => Denial {
                code: status.code,
                reason: status.reason,
                message: status.message,
            },
            Err(_) => Denial {
                code: code.as_u16(),
                reason: code.canonical_reason().unwrap_or_default().into(),
                message: String::from_utf8_lossy(&body).trim().to_string(),
            },
        })
    };
    Ok(Answer { warnings, outcome })
}
