//! The last step (SPEC B§4.12): `snapshot` set to "" and `type`, `tables`, `sections`,
//! `partitions` removed, so the same snapshot can be restored again later. The secret
//! references and `backupProvider` stay. A `test` on the run-id annotation makes the patch a
//! no-op if a newer request has replaced this run's.

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::super::{context::RunContext, error::StepError, step::StepReport};
use crate::resource::{CANCEL_ANNOTATION, RUN_ID_ANNOTATION};

/// A JSON pointer token (RFC 6901).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub async fn run(ctx: &mut RunContext) -> Result<StepReport, StepError> {
    // The resource as read at start names the fields to remove; the patch's `test` guards the
    // run id. Only if the request was edited meanwhile (a `remove` of a field that is gone) is
    // the resource read again.
    // A cancel arrived after the start: the resource carries its annotation now.
    let current = if ctx.cancel.get().is_some() {
        ctx.cratedbs.get(&ctx.run.cluster).await?
    } else {
        ctx.cr.clone()
    };
    match reset(ctx, &current).await {
        Err(StepError::Permanent(message)) if message.contains(REMOVE_FAILED) => {
            let current = ctx.cratedbs.get(&ctx.run.cluster).await?;
            reset(ctx, &current).await
        }
        other => other,
    }
}

const REMOVE_FAILED: &str = "a field to remove is gone";

async fn reset(
    ctx: &RunContext,
    current: &crate::resource::CrateDB,
) -> Result<StepReport, StepError> {
    if current.run_id_annotation() != Some(ctx.run.run_id.as_str()) {
        return Ok(StepReport::new(
            "not reset: a newer restore request replaced this run's",
        ));
    }
    let Some(rs) = current.restore_snapshot() else {
        return Ok(StepReport::new("nothing to reset: restoreSnapshot is gone"));
    };
    let annotation = format!("/metadata/annotations/{}", pointer_token(RUN_ID_ANNOTATION));
    let mut ops = vec![
        json!({"op": "test", "path": annotation, "value": ctx.run.run_id}),
        json!({"op": "replace", "path": "/spec/cluster/restoreSnapshot/snapshot", "value": ""}),
    ];
    // The cancel has been carried out: it must not stay on the resource.
    if current
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(CANCEL_ANNOTATION))
    {
        ops.push(json!({"op": "remove", "path": format!("/metadata/annotations/{}", pointer_token(CANCEL_ANNOTATION))}));
    }
    for (key, present) in [
        ("type", rs.restore_type.is_some()),
        ("tables", rs.tables.is_some()),
        ("sections", rs.sections.is_some()),
        ("partitions", rs.partitions.is_some()),
    ] {
        if present {
            ops.push(
                json!({"op": "remove", "path": format!("/spec/cluster/restoreSnapshot/{key}")}),
            );
        }
    }
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(ops)).expect("well-formed patch");
    match ctx
        .cratedbs
        .patch(
            &ctx.run.cluster,
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(StepReport::new(
            "restoreSnapshot reset: snapshot emptied, type/tables/sections/partitions removed",
        )),
        // The test op failed: the annotation changed between our read and the patch.
        Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("test") => Ok(
            StepReport::new("not reset: a newer restore request replaced this run's"),
        ),
        Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("missing") => Err(
            StepError::permanent(format!("{REMOVE_FAILED}: {}", s.message)),
        ),
        Err(e) => Err(e.into()),
    }
}
