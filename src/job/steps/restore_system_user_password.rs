//! Password reset after a restore (SPEC B§4.4): a restored USERS section brings the source
//! cluster's passwords, so `system` (and `gc_admin`, if its Secret exists) get this cluster's
//! passwords back through the superuser path. The statements carry passwords: never logged.

use secrecy::ExposeSecret;

use super::super::{context::RunContext, error::StepError, step::StepReport};

pub fn system_secret(cluster: &str) -> String {
    format!("user-system-{cluster}")
}

pub fn gc_secret(cluster: &str) -> String {
    format!("user-gc-{cluster}")
}

async fn reset(ctx: &RunContext, user: &str, password: &str) -> Result<(), StepError> {
    let result = ctx
        .superuser
        .set_password(user, password)
        .await
        .map_err(|e| StepError::Transient(format!("password reset of {user:?} failed: {e}")))?;
    if result.rowcount.unwrap_or(0) == 0 {
        return Err(StepError::Transient(format!(
            "password reset of {user:?} did not report ALTER OK"
        )));
    }
    tracing::info!(user, "password reset success");
    Ok(())
}

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    // The password the run logged in with, read from user-system-<name> at its start.
    let password = ctx.system_password.expose_secret().to_string();
    reset(ctx, "system", &password).await?;
    let gc = gc_secret(&ctx.run.cluster);
    let gc_note = match ctx.secret_value(&gc, "password").await {
        Ok(Some(gc_password)) => {
            reset(ctx, "gc_admin", &gc_password).await?;
            "gc_admin password reset"
        }
        Ok(None) => {
            tracing::info!(secret = %gc, "GC admin secret not found; skipping the gc_admin password");
            "no gc_admin secret; skipped"
        }
        Err(error) if error.is_transient() => return Err(error),
        Err(error) => {
            tracing::info!(%error, "GC admin secret not found or retrieval failed; skipping");
            "gc_admin secret unreadable; skipped"
        }
    };
    Ok(StepReport::new(format!("system password reset; {gc_note}")))
}
