//! `plan NAME -f FILE`: what the API server answered to a server-side dry run of a restore
//! request, as text or one JSON document. The webhook's plan is its first warning
//! (`planned: RESTORE SNAPSHOT ...`); a denial is the API `Status` it returned. Pure.

use std::{collections::BTreeMap, fmt::Write as _};

use console::Style;
use serde::Serialize;

use super::render::Styles;

use crate::admission::validate::PLANNED_PREFIX as PLANNED;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunView {
    pub namespace: String,
    pub name: String,
    pub allowed: bool,
    /// The statement the webhook plans (`RESTORE SNAPSHOT ...`), when it sent one.
    pub planned: Option<String>,
    /// Every warning the API server returned, in order (the plan included).
    pub warnings: Vec<String>,
    /// The restore options (`restore.cloud.crate.io/` annotations) of the admitted object.
    pub options: BTreeMap<String, String>,
    pub denial: Option<Denial>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl DryRunView {
    pub fn new(
        namespace: &str,
        name: &str,
        warnings: Vec<String>,
        outcome: Result<BTreeMap<String, String>, Denial>,
    ) -> DryRunView {
        let planned = warnings
            .iter()
            .find_map(|w| w.strip_prefix(PLANNED))
            .map(str::to_string);
        let (allowed, options, denial) = match outcome {
            Ok(options) => (true, options, None),
            Err(denial) => (false, BTreeMap::new(), Some(denial)),
        };
        DryRunView {
            namespace: namespace.into(),
            name: name.into(),
            allowed,
            planned,
            warnings,
            options,
            denial,
        }
    }
}

pub fn render_text(view: &DryRunView, styles: Styles) -> String {
    let mut out = String::new();
    let verdict = match &view.denial {
        None => Style::new()
            .green()
            .bold()
            .force_styling(styles.color)
            .apply_to("admitted".to_string()),
        Some(d) => Style::new()
            .red()
            .bold()
            .force_styling(styles.color)
            .apply_to(format!("denied ({} {})", d.code, d.reason)),
    };
    let _ = writeln!(
        out,
        "Restore request for CrateDB {}/{}: {verdict} (server-side dry run; nothing was stored)",
        view.namespace, view.name
    );
    if let Some(denial) = &view.denial {
        let _ = writeln!(out, "{}", denial.message);
    }
    if let Some(planned) = &view.planned {
        let _ = writeln!(out, "Planned:  {planned}");
    } else if view.allowed {
        let _ = writeln!(
            out,
            "Planned:  - (no plan came back: the request is the same as the stored one, or the cratedb-restore webhooks do not cover this namespace)"
        );
    }
    for (key, value) in &view.options {
        let _ = writeln!(out, "Option:   {key}={value}");
    }
    for warning in view.warnings.iter().filter(|w| !w.starts_with(PLANNED)) {
        let _ = writeln!(out, "Warning:  {warning}");
    }
    out
}

pub fn render_json(view: &DryRunView) -> String {
    serde_json::to_string_pretty(view).expect("a view serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const PLAN: &str = r#"planned: RESTORE SNAPSHOT "restore_backup_20241124100000_abc123"."snap-1" TABLE "doc"."orders" WITH (wait_for_completion = false)"#;
    const DRY: &str = "dry run: no restore Job was created; a real apply creates Job dbs/restore-c-20241124100000-abc123";

    #[test]
    fn admitted() {
        let view = DryRunView::new(
            "dbs",
            "c",
            vec![PLAN.into(), DRY.into()],
            Ok(BTreeMap::from([(
                "restore.cloud.crate.io/on-conflict".into(),
                "skip".into(),
            )])),
        );
        assert_eq!(
            render_text(&view, Styles::PLAIN),
            format!(
                "Restore request for CrateDB dbs/c: admitted (server-side dry run; nothing was stored)\nPlanned:  {}\nOption:   restore.cloud.crate.io/on-conflict=skip\nWarning:  {DRY}\n",
                &PLAN["planned: ".len()..]
            )
        );
        let doc: Value = serde_json::from_str(&render_json(&view)).unwrap();
        assert_eq!(
            doc,
            json!({"namespace": "dbs", "name": "c", "allowed": true,
                   "planned": &PLAN["planned: ".len()..], "warnings": [PLAN, DRY],
                   "options": {"restore.cloud.crate.io/on-conflict": "skip"}, "denial": null})
        );
    }

    #[test]
    fn denied() {
        let message = r#"admission webhook "validate.restore.cloud.crate.io" denied the request: invalid restore request: spec.cluster.restoreSnapshot.sections: type sections needs at least one section"#;
        let view = DryRunView::new(
            "dbs",
            "c",
            vec![],
            Err(Denial {
                code: 422,
                reason: "Invalid".into(),
                message: message.into(),
            }),
        );
        assert_eq!(
            render_text(&view, Styles::PLAIN),
            format!(
                "Restore request for CrateDB dbs/c: denied (422 Invalid) (server-side dry run; nothing was stored)\n{message}\n"
            )
        );
        let doc: Value = serde_json::from_str(&render_json(&view)).unwrap();
        assert_eq!(doc["allowed"], false);
        assert_eq!(doc["planned"], Value::Null);
        assert_eq!(doc["denial"]["code"], 422);
        assert_eq!(doc["denial"]["message"], message);
    }

    #[test]
    fn admitted_without_a_plan_says_why_that_may_be() {
        let view = DryRunView::new("dbs", "c", vec![], Ok(BTreeMap::new()));
        assert!(render_text(&view, Styles::PLAIN).contains("Planned:  - (no plan came back"));
    }
}
