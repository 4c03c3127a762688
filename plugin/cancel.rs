//! `cancel NAME`: asks the restore Job to stop the running restore and undo what it changed, by
//! writing `restore.cloud.crate.io/cancel: <run id>` on the CrateDB. The admission webhook
//! admits it only while the run has not finished restoring, and says what the cancel will do
//! (or why it refuses); `--wait` then follows the run to its end like `status --watch`.

use kube::api::Patch;
use serde_json::{Value, json};

use cratedb_restore::{
    plugin::{exit::Exit, render::Styles},
    resource::CANCEL_ANNOTATION,
};

use crate::{
    access::Target,
    cli::{CancelArgs, Output},
    send, status,
};

pub async fn cancel(target: &Target, args: &CancelArgs, output: Output) -> Result<Exit, String> {
    let name = &args.name;
    let stored = target.cratedb(name).await?;
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => stored
            .data
            .pointer("/status/restore/runId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| "true".into()),
    };
    let patch = json!({"metadata": {"annotations": {CANCEL_ANNOTATION: run_id}}});
    let answer = send::patch(target, name, &Patch::Merge(patch), args.dry_run).await?;
    let ns = &target.namespace;
    let styles = Styles {
        color: console::colors_enabled(),
    };
    match (&answer.outcome, output) {
        (Err(denial), Output::Text) => {
            println!(
                "{} cancel of CrateDB {ns}/{name} refused ({} {}): {}",
                styles.heading("REFUSED"),
                denial.code,
                denial.reason,
                denial.message
            );
        }
        (Ok(_), Output::Text) => {
            let verb = if args.dry_run {
                "would be admitted (dry run, nothing changed)"
            } else {
                "requested"
            };
            println!("cancel of run {run_id} of CrateDB {ns}/{name} {verb}");
            for warning in &answer.warnings {
                println!("  {warning}");
            }
        }
        (outcome, Output::Json) => {
            let document = json!({
                "namespace": ns, "name": name, "runId": run_id, "dryRun": args.dry_run,
                "allowed": outcome.is_ok(), "warnings": answer.warnings,
                "denial": outcome.as_ref().err(),
            });
            if !(args.wait && outcome.is_ok() && !args.dry_run) {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&document).unwrap_or_default()
                );
            }
        }
    }
    if answer.outcome.is_err() {
        return Ok(Exit::Error);
    }
    if args.wait && !args.dry_run {
        return status::watch(target, name, output, args.timeout).await;
    }
    Ok(Exit::Ok)
}
