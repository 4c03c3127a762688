//! After a fully clean run (SPEC B§4.10): sync the admin user name a clone brought along into
//! `spec.users[0].name` (only when spec.users exists, A11) and queue the success notification.
//! Queued notifications live in the status until the flush step sends them.

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::super::{context::RunContext, error::StepError, notify::Notification, step::StepReport};
use crate::cratedb::queries;

pub const SUCCESS_MESSAGE: &str = "The snapshot has been restored successfully.";

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    // Queued once: a retried attempt finds its notifications already in the status.
    if !ctx.status.state.notifications.is_empty() {
        return Ok(StepReport::new("notifications already queued"));
    }
    let admin = match ctx.db.query(queries::ADMIN_GRANTEE, &[]).await {
        Ok(rows) => rows
            .first_cell()
            .and_then(Value::as_str)
            .map(str::to_string),
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(error) => {
            tracing::info!(%error, "cannot read the admin user; no name sync");
            None
        }
    };
    let current = ctx
        .cr
        .spec
        .users
        .as_ref()
        .and_then(|u| u.first())
        .map(|u| u.name.clone());
    let mut note = "admin user name unchanged".to_string();
    if let Some(admin) = admin.filter(|a| Some(a) != current.as_ref()) {
        match current {
            Some(old) => {
                let patch: json_patch::Patch = serde_json::from_value(json!([
                    {"op": "test", "path": "/spec/users/0/name", "value": old},
                    {"op": "replace", "path": "/spec/users/0/name", "value": admin}
                ]))
                .expect("static patch");
                ctx.cratedbs
                    .patch(
                        &ctx.run.cluster,
                        &PatchParams::default(),
                        &Patch::<()>::Json(patch),
                    )
                    .await?;
                ctx.status.state.notifications.push(
                    Notification::AdminUsernameChanged {
                        username: admin.clone(),
                    }
                    .to_queued(),
                );
                note = format!("spec.users[0].name changed from {old} to {admin}");
            }
            None => {
                note = format!(
                    "admin user {admin} found, but the resource has no spec.users; nothing to sync"
                );
            }
        }
    }
    // What on-conflict: skip left out is part of the outcome the backend is told about.
    let message = match ctx.plan.as_ref() {
        Some(plan) if plan.nothing_to_restore() => format!(
            "Nothing to restore: everything exists already (skipped: {}).",
            super::preflight::skipped_list(plan)
        ),
        Some(plan) if !plan.skipped.is_empty() => format!(
            "{SUCCESS_MESSAGE} Skipped because they exist already: {}.",
            super::preflight::skipped_list(plan)
        ),
        _ => SUCCESS_MESSAGE.to_string(),
    };
    // `latest` says which snapshot it was.
    let snapshot = ctx.snapshot();
    let message = if snapshot != ctx.request.snapshot {
        format!(
            "{message} (snapshot {} resolved to {snapshot})",
            ctx.request.snapshot
        )
    } else {
        message
    };
    ctx.status
        .state
        .notifications
        .push(Notification::success(message).to_queued());
    ctx.status.save().await?;
    Ok(StepReport::new(format!(
        "{note}; success notification queued"
    )))
}
