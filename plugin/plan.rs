//! `plan NAME -f FILE`: a server-side dry run of a restore request.
//!
//! The request goes out as a JSON patch with `?dryRun=All`, built by `kube::core::Request` and
//! sent with `Client::send`, because the admission webhooks' answer is in the response's
//! `Warning` headers, which kube's `Api` methods do not return.

use std::io::Read;

use kube::{
    Resource,
    api::{Patch, PatchParams},
    client::Body,
    core::{Request, Status},
};
use serde_json::Value;

use cratedb_restore::{
    plugin::{
        dry_run::{self, Denial, DryRunView},
        exit::Exit,
        render::Styles,
        request::{CliOption, PlanRequest, options_of},
        warning::kubernetes_warnings,
    },
    resource::CrateDB,
};

use crate::{
    access::{Target, with_causes},
    cli::Output,
};

const FIELD_MANAGER: &str = "kubectl-cratedb_restore";

fn read_request(filename: &str) -> Result<String, String> {
    if filename == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the request from stdin: {e}"))?;
        Ok(text)
    } else {
        std::fs::read_to_string(filename).map_err(|e| format!("cannot read {filename}: {e}"))
    }
}

pub async fn plan(
    target: &Target,
    name: &str,
    filename: &str,
    options: &[CliOption],
    output: Output,
) -> Result<Exit, String> {
    let source = if filename == "-" { "stdin" } else { filename };
    let request = PlanRequest::parse(&read_request(filename)?)
        .map_err(|e| format!("{source}: {e}"))?
        .with_options(options);
    request
        .check_target(name, &target.namespace)
        .map_err(|e| format!("{source}: {e}"))?;

    let stored = target.cratedb(name).await?;
    let stored = serde_json::to_value(&stored).map_err(|e| format!("CrateDB {name}: {e}"))?;
    let patch = request.patch_for(&stored);
    let params = PatchParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let http_request = Request::new(CrateDB::url_path(&(), Some(&target.namespace)))
        .patch(name, &params, &Patch::Json::<()>(patch))
        .map_err(|e| format!("cannot build the dry-run request: {e}"))?;
    let response = target
        .client
        .send(http_request.map(Body::from))
        .await
        .map_err(|e| {
            format!(
                "dry run of CrateDB {}/{name}: {}",
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
        .map_err(|e| format!("dry run of CrateDB {}/{name}: {e}", target.namespace))?;
    let outcome = if code.is_success() {
        let admitted: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("the API server's answer is not JSON: {e}"))?;
        Ok(options_of(&admitted))
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
    let view = DryRunView::new(&target.namespace, name, warnings, outcome);
    print!(
        "{}",
        match output {
            Output::Text => dry_run::render_text(
                &view,
                Styles {
                    color: console::colors_enabled()
                }
            ),
            Output::Json => dry_run::render_json(&view),
        }
    );
    Ok(if view.allowed { Exit::Ok } else { Exit::Error })
}
