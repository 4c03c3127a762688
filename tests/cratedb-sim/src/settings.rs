//! The cluster settings the simulator accepts in `SET GLOBAL` / `RESET GLOBAL`
//! and shows in `sys.cluster.settings`.

use std::collections::BTreeMap;

use crate::error::SqlError;
use crate::value::{ColType, ObjType, Value};

#[derive(Debug, Clone, Copy)]
pub enum SettingKind {
    /// Text with an optional list of allowed values.
    Text(Option<&'static [&'static str]>),
    Int,
    Bool,
    /// A byte size like `40mb`.
    ByteSize,
    /// A percentage or byte size like `85%`.
    Watermark,
}

pub struct SettingDef {
    pub name: &'static str,
    pub kind: SettingKind,
    pub default: fn() -> Value,
}

const ALLOCATION_ENABLE: &[&str] = &["all", "primaries", "new_primaries", "none"];
const REBALANCE_ENABLE: &[&str] = &["all", "primaries", "replicas", "none"];
const ALLOW_REBALANCE: &[&str] = &["always", "indices_primaries_active", "indices_all_active"];
const MIN_AVAILABILITY: &[&str] = &["full", "primaries", "none"];

/// The modelled settings.
pub static SETTINGS: &[SettingDef] = &[
    SettingDef {
        name: "cluster.routing.allocation.enable",
        kind: SettingKind::Text(Some(ALLOCATION_ENABLE)),
        default: || Value::text("all"),
    },
    SettingDef {
        name: "cluster.routing.allocation.cluster_concurrent_rebalance",
        kind: SettingKind::Int,
        default: || Value::Int(2),
    },
    SettingDef {
        name: "cluster.routing.allocation.node_concurrent_recoveries",
        kind: SettingKind::Int,
        default: || Value::Int(2),
    },
    SettingDef {
        name: "cluster.routing.allocation.allow_rebalance",
        kind: SettingKind::Text(Some(ALLOW_REBALANCE)),
        default: || Value::text("indices_all_active"),
    },
    SettingDef {
        name: "cluster.routing.rebalance.enable",
        kind: SettingKind::Text(Some(REBALANCE_ENABLE)),
        default: || Value::text("all"),
    },
    SettingDef {
        name: "cluster.routing.allocation.disk.threshold_enabled",
        kind: SettingKind::Bool,
        default: || Value::Bool(true),
    },
    SettingDef {
        name: "cluster.routing.allocation.disk.watermark.low",
        kind: SettingKind::Watermark,
        default: || Value::text("85%"),
    },
    SettingDef {
        name: "cluster.routing.allocation.disk.watermark.high",
        kind: SettingKind::Watermark,
        default: || Value::text("90%"),
    },
    SettingDef {
        name: "cluster.routing.allocation.disk.watermark.flood_stage",
        kind: SettingKind::Watermark,
        default: || Value::text("95%"),
    },
    SettingDef {
        name: "cluster.graceful_stop.min_availability",
        kind: SettingKind::Text(Some(MIN_AVAILABILITY)),
        default: || Value::text("primaries"),
    },
    SettingDef {
        name: "indices.recovery.max_bytes_per_sec",
        kind: SettingKind::ByteSize,
        default: || Value::text("40mb"),
    },
    SettingDef {
        name: "stats.enabled",
        kind: SettingKind::Bool,
        default: || Value::Bool(true),
    },
    SettingDef {
        name: "stats.jobs_log_size",
        kind: SettingKind::Int,
        default: || Value::Int(10_000),
    },
];

pub fn find(name: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|s| s.name == name)
}

fn not_supported(name: &str) -> SqlError {
    SqlError::illegal_argument(format!("Setting '{name}' is not supported"))
}

fn is_byte_size(s: &str) -> bool {
    let s = s.trim().to_ascii_lowercase();
    let digits: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.parse::<f64>().is_ok()
        && matches!(
            unit,
            "b" | "kb" | "mb" | "gb" | "tb" | "pb" | "k" | "m" | "g" | "t" | "p"
        )
}

/// Validate and normalise a value for a setting. Unknown names fail like
/// CrateDB (`Setting '<name>' is not supported`).
pub fn validate(name: &str, value: &Value) -> Result<Value, SqlError> {
    let def = find(name).ok_or_else(|| not_supported(name))?;
    let text = value.to_plain_string();
    let shown = text.clone().unwrap_or_else(|| "null".into());
    let parse_err = |what: &str| {
        SqlError::illegal_argument(format!(
            "failed to parse setting [{name}] with value [{shown}] as {what}"
        ))
    };
    match def.kind {
        SettingKind::Text(allowed) => {
            let s = text.ok_or_else(|| parse_err("a string"))?;
            if let Some(allowed) = allowed
                && !allowed.contains(&s.to_ascii_lowercase().as_str())
            {
                return Err(SqlError::illegal_argument(format!(
                    "Illegal value of setting [{name}]: [{s}], allowed values are {}",
                    allowed.join(", ")
                )));
            }
            Ok(Value::Text(s.to_ascii_lowercase()))
        }
        SettingKind::Int => {
            let s = text.ok_or_else(|| parse_err("an integer"))?;
            s.trim()
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| parse_err("an integer"))
        }
        SettingKind::Bool => match text.as_deref().map(|s| s.to_ascii_lowercase()) {
            Some(s) if s == "true" => Ok(Value::Bool(true)),
            Some(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err(parse_err("a boolean")),
        },
        SettingKind::ByteSize => {
            let s = text.ok_or_else(|| parse_err("a size in bytes"))?;
            if is_byte_size(&s) {
                Ok(Value::Text(s.to_ascii_lowercase()))
            } else {
                Err(SqlError::illegal_argument(format!(
                    "failed to parse setting [{name}] with value [{s}] as a size in bytes: unit is missing or unrecognized"
                )))
            }
        }
        SettingKind::Watermark => {
            let s = text.ok_or_else(|| parse_err("a watermark"))?;
            let pct = s
                .strip_suffix('%')
                .is_some_and(|p| p.parse::<f64>().is_ok());
            if pct || is_byte_size(&s) {
                Ok(Value::Text(s))
            } else {
                Err(parse_err("a percentage or a size in bytes"))
            }
        }
    }
}

/// Whether `name` is a known setting or a prefix of known settings (for
/// `SET GLOBAL cluster.routing = {...}` object assignments and `RESET`).
pub fn known_prefix(name: &str) -> bool {
    SETTINGS
        .iter()
        .any(|s| s.name == name || s.name.starts_with(&format!("{name}.")))
}

/// Flatten `name = value` into dotted settings (objects expand).
pub fn flatten(name: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{name}.{k}"), v, out);
            }
        }
        v => out.push((name.to_string(), v.clone())),
    }
}

/// Insert a dotted key into a nested object.
pub fn insert_nested(root: &mut BTreeMap<String, Value>, dotted: &str, value: Value) {
    let mut parts = dotted.split('.').peekable();
    let mut cur = root;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_string(), value);
            return;
        }
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(BTreeMap::new()));
        if !matches!(entry, Value::Object(_)) {
            *entry = Value::Object(BTreeMap::new());
        }
        let Value::Object(next) = entry else {
            return;
        };
        cur = next;
    }
}

fn kind_type(kind: SettingKind) -> ColType {
    match kind {
        SettingKind::Int => ColType::Int4,
        SettingKind::Bool => ColType::Bool,
        _ => ColType::Text,
    }
}

/// The column type of `sys.cluster.settings`: a strict object tree of all
/// modelled settings.
pub fn settings_type() -> ColType {
    fn insert(fields: &mut Vec<(String, ColType)>, parts: &[&str], t: ColType) {
        if parts.len() == 1 {
            fields.push((parts[0].to_string(), t));
            return;
        }
        let idx = match fields.iter().position(|(k, _)| k == parts[0]) {
            Some(i) => i,
            None => {
                fields.push((
                    parts[0].to_string(),
                    ColType::Object(ObjType {
                        fields: Vec::new(),
                        dynamic: None,
                    }),
                ));
                fields.len() - 1
            }
        };
        if let ColType::Object(o) = &mut fields[idx].1 {
            insert(&mut o.fields, &parts[1..], t);
        }
    }
    let mut fields = Vec::new();
    for s in SETTINGS {
        let parts: Vec<&str> = s.name.split('.').collect();
        insert(&mut fields, &parts, kind_type(s.kind));
    }
    ColType::Object(ObjType {
        fields,
        dynamic: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_known_settings() {
        assert_eq!(
            validate(
                "cluster.routing.allocation.cluster_concurrent_rebalance",
                &Value::text("6")
            )
            .unwrap(),
            Value::Int(6)
        );
        assert_eq!(
            validate("indices.recovery.max_bytes_per_sec", &Value::text("200MB")).unwrap(),
            Value::text("200mb")
        );
        let e = validate(
            "cluster.routing.allocation.enable",
            &Value::text("sometimes"),
        )
        .unwrap_err();
        assert_eq!(e.sqlstate, "0A000");
        let e = validate("no.such.setting", &Value::Int(1)).unwrap_err();
        assert_eq!(e.message, "Setting 'no.such.setting' is not supported");
    }

    #[test]
    fn nested_insert_builds_tree() {
        let mut root = BTreeMap::new();
        insert_nested(&mut root, "a.b.c", Value::Int(1));
        insert_nested(&mut root, "a.d", Value::Int(2));
        assert_eq!(
            Value::Object(root).to_json(),
            serde_json::json!({"a": {"b": {"c": 1}, "d": 2}})
        );
        assert!(known_prefix("cluster.routing"));
        assert!(!known_prefix("cluster.rout"));
    }
}
