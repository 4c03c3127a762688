//! `plan NAME -f FILE`: a server-side dry run of a restore request, sent as a JSON patch with
//! `?dryRun=All` (see [`crate::send`] for how the webhooks' answer is kept).

use std::io::Read;

use kube::api::Patch;

use cratedb_restore::plugin::{
    dry_run::{self, DryRunView},
    exit::Exit,
    render::Styles,
    request::{CliOption, PlanRequest, options_of},
};

use crate::{access::Target, cli::Output, send};

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
    let answer = send::patch(target, name, &Patch::Json(patch), true).await?;
    let outcome = answer.outcome.map(|admitted| options_of(&admitted));
    let warnings = answer.warnings;
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
