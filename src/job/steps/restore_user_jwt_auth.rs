//! JWT authentication of the cluster's users (SPEC B§4.5): on CrateDB ≥ 5.7.2 with users and
//! Grand Central configured, each existing user gets the JWT issuer of this cluster back.

use super::super::{context::RunContext, error::StepError, step::StepReport};
use crate::{cratedb::queries, version::ServerVersion};

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    let version = ctx
        .cr
        .spec
        .cluster
        .version
        .as_deref()
        .and_then(|v| v.parse::<ServerVersion>().ok());
    let users = ctx.cr.spec.users.clone().unwrap_or_default();
    let Some(grand_central) = ctx.cr.spec.grand_central.clone() else {
        return Ok(StepReport::new("not needed: no Grand Central configured"));
    };
    if version.is_none_or(|v| v < ServerVersion::JWT_AUTH) {
        return Ok(StepReport::new(format!(
            "not needed: JWT authentication needs CrateDB {} or later",
            ServerVersion::JWT_AUTH
        )));
    }
    if users.is_empty() {
        return Ok(StepReport::new(
            "not needed: the cluster has no users in spec.users",
        ));
    }
    let Some(issuer) = grand_central.jwk_url.filter(|u| !u.is_empty()) else {
        return Ok(StepReport::new(
            "not needed: spec.grandCentral.jwkUrl is empty",
        ));
    };
    let mut done = Vec::new();
    for user in &users {
        let exists = ctx.db.query(queries::USER_EXISTS, &[&user.name]).await?;
        if exists.rows.is_empty() {
            tracing::info!(user = %user.name, "user does not exist after the restore; JWT not set");
            continue;
        }
        if let Err(error) = ctx.superuser.execute(&queries::clear_jwt(&user.name)).await {
            tracing::info!(%error, user = %user.name, "clearing the JWT setting failed; setting it anyway");
        }
        match ctx
            .superuser
            .execute(&queries::set_jwt(&user.name, &issuer, &ctx.run.cluster))
            .await
        {
            Ok(_) => done.push(user.name.clone()),
            Err(error) if error.to_string().contains("RoleAlreadyExistsException") => {
                done.push(user.name.clone())
            }
            Err(error) => {
                return Err(StepError::Transient(format!(
                    "JWT setting of user {:?} failed: {error}",
                    user.name
                )));
            }
        }
    }
    Ok(StepReport::new(format!(
        "JWT authentication set for: {}",
        if done.is_empty() {
            "nobody".into()
        } else {
            done.join(", ")
        }
    )))
}
