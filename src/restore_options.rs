//! Restore options beyond the reference (SPEC A27). The operator's CRD prunes unknown fields
//! under `restoreSnapshot`, so they travel as annotations on the `CrateDB` resource, under
//! `restore.cloud.crate.io/`. They are part of the request: validated at admission, covered by
//! the run id, shown in the plan, and changing them during a run is an overlap. Pure.

use std::collections::BTreeMap;

use crate::{
    rename::{Rename, Rule, RuleError},
    resource::{CANCEL_ANNOTATION, RUN_ID_ANNOTATION},
    restore_request::FieldError,
};

pub const PREFIX: &str = "restore.cloud.crate.io/";
pub const SCHEMA_RENAME_PATTERN: &str = "restore.cloud.crate.io/schema-rename-pattern";
pub const SCHEMA_RENAME_REPLACEMENT: &str = "restore.cloud.crate.io/schema-rename-replacement";
pub const TABLE_RENAME_PATTERN: &str = "restore.cloud.crate.io/table-rename-pattern";
pub const TABLE_RENAME_REPLACEMENT: &str = "restore.cloud.crate.io/table-rename-replacement";
pub const ON_CONFLICT: &str = "restore.cloud.crate.io/on-conflict";
pub const S3_ENDPOINT_SECRET_REF: &str = "restore.cloud.crate.io/s3-endpoint-secret-ref";
pub const S3_REGION_SECRET_REF: &str = "restore.cloud.crate.io/s3-region-secret-ref";

/// Every option annotation, in the order they are listed to users.
pub const OPTIONS: [&str; 7] = [
    SCHEMA_RENAME_PATTERN,
    SCHEMA_RENAME_REPLACEMENT,
    TABLE_RENAME_PATTERN,
    TABLE_RENAME_REPLACEMENT,
    ON_CONFLICT,
    S3_ENDPOINT_SECRET_REF,
    S3_REGION_SECRET_REF,
];

/// What to do with a relation (or partition) of the snapshot that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Fail in pre-flight, listing every conflict (the reference's behaviour, made early).
    #[default]
    Fail,
    /// Leave it out of the RESTORE and report it as skipped.
    Skip,
}

/// `<secret>/<key>`: a value in a Secret of the resource's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    pub secret: String,
    pub key: String,
}

/// The validated options of one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RestoreOptions {
    pub rename: Option<Rename>,
    pub on_conflict: OnConflict,
    pub s3_endpoint: Option<SecretKey>,
    pub s3_region: Option<SecretKey>,
}

/// `metadata.annotations["<key>"]`, the path users see in denials.
pub fn path(annotation: &str) -> String {
    format!("metadata.annotations[\"{annotation}\"]")
}

/// The option annotations of an object, exactly as written (the run id and a cancel are not
/// options: they say which run, and what to do with it).
pub fn option_annotations(annotations: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    annotations
        .iter()
        .filter(|(k, _)| {
            k.starts_with(PREFIX)
                && k.as_str() != RUN_ID_ANNOTATION
                && k.as_str() != CANCEL_ANNOTATION
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn secret_key(annotation: &str, value: &str) -> Result<SecretKey, FieldError> {
    match value.split_once('/') {
        Some((secret, key)) if !secret.is_empty() && !key.is_empty() && !key.contains('/') => {
            Ok(SecretKey {
                secret: secret.into(),
                key: key.into(),
            })
        }
        _ => Err(FieldError::new(
            path(annotation),
            format!(
                "{value:?} is not <secret>/<key>; name a Secret in this namespace and one of its keys, e.g. s3-endpoint/url"
            ),
        )),
    }
}

/// Validates the option annotations; every problem at once.
pub fn parse(annotations: &BTreeMap<String, String>) -> Result<RestoreOptions, Vec<FieldError>> {
    let options = option_annotations(annotations);
    let mut errors = Vec::new();
    for key in options.keys() {
        if !OPTIONS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                path(key),
                format!(
                    "is not a restore option; the options are {}",
                    OPTIONS
                        .iter()
                        .map(|o| o.trim_start_matches(PREFIX))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let get = |key: &str| options.get(key).map(String::as_str);

    let rule =
        |pattern_key: &str, replacement_key: &str, errors: &mut Vec<FieldError>| match Rule::parse(
            get(pattern_key),
            get(replacement_key),
        ) {
            Ok(rule) => Some(rule),
            Err(RuleError::Pattern(message)) => {
                errors.push(FieldError::new(
                    path(pattern_key),
                    format!("{message}; CrateDB reads it as a Java regular expression"),
                ));
                None
            }
            Err(RuleError::Replacement(message)) => {
                errors.push(FieldError::new(path(replacement_key), message));
                None
            }
        };
    let any_rename = [
        SCHEMA_RENAME_PATTERN,
        SCHEMA_RENAME_REPLACEMENT,
        TABLE_RENAME_PATTERN,
        TABLE_RENAME_REPLACEMENT,
    ]
    .iter()
    .any(|k| options.contains_key(*k));
    let rename = if any_rename {
        let schema = rule(
            SCHEMA_RENAME_PATTERN,
            SCHEMA_RENAME_REPLACEMENT,
            &mut errors,
        );
        let table = rule(TABLE_RENAME_PATTERN, TABLE_RENAME_REPLACEMENT, &mut errors);
        schema
            .zip(table)
            .map(|(schema, table)| Rename { schema, table })
    } else {
        None
    };

    let on_conflict = match get(ON_CONFLICT) {
        None | Some("fail") => OnConflict::Fail,
        Some("skip") => OnConflict::Skip,
        Some(other) => {
            errors.push(FieldError::new(
                path(ON_CONFLICT),
                format!("{other:?} is not a choice; use fail (the default) or skip"),
            ));
            OnConflict::Fail
        }
    };

    let mut reference =
        |key: &str| get(key).and_then(|v| secret_key(key, v).map_err(|e| errors.push(e)).ok());
    let s3_endpoint = reference(S3_ENDPOINT_SECRET_REF);
    let s3_region = reference(S3_REGION_SECRET_REF);

    if errors.is_empty() {
        Ok(RestoreOptions {
            rename,
            on_conflict,
            s3_endpoint,
            s3_region,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_annotations_mean_the_reference_behaviour() {
        let options = parse(&annotations(&[(RUN_ID_ANNOTATION, "r1"), ("other/x", "y")])).unwrap();
        assert_eq!(options, RestoreOptions::default());
        assert!(option_annotations(&annotations(&[(RUN_ID_ANNOTATION, "r1")])).is_empty());
    }

    #[test]
    fn reads_every_option() {
        let options = parse(&annotations(&[
            (SCHEMA_RENAME_REPLACEMENT, "restored"),
            (TABLE_RENAME_PATTERN, "(.+)"),
            (TABLE_RENAME_REPLACEMENT, "$1_copy"),
            (ON_CONFLICT, "skip"),
            (S3_ENDPOINT_SECRET_REF, "minio/url"),
            (S3_REGION_SECRET_REF, "minio/region"),
        ]))
        .unwrap();
        let rename = options.rename.unwrap();
        assert_eq!(
            rename.target("doc", "orders"),
            ("restored".into(), "orders_copy".into())
        );
        assert_eq!(options.on_conflict, OnConflict::Skip);
        assert_eq!(
            options.s3_endpoint,
            Some(SecretKey {
                secret: "minio".into(),
                key: "url".into()
            })
        );
    }

    #[test]
    fn every_problem_names_its_annotation() {
        let errors = parse(&annotations(&[
            (TABLE_RENAME_PATTERN, "(a)\\1"),
            (SCHEMA_RENAME_PATTERN, "doc"),
            (SCHEMA_RENAME_REPLACEMENT, "$1"),
            (ON_CONFLICT, "overwrite"),
            (S3_ENDPOINT_SECRET_REF, "just-a-name"),
            ("restore.cloud.crate.io/on-confict", "skip"),
        ]))
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                r#"metadata.annotations["restore.cloud.crate.io/on-confict"]: is not a restore option; the options are schema-rename-pattern, schema-rename-replacement, table-rename-pattern, table-rename-replacement, on-conflict, s3-endpoint-secret-ref, s3-region-secret-ref"#,
                r#"metadata.annotations["restore.cloud.crate.io/schema-rename-replacement"]: refers to group $1, but the pattern has no groups"#,
                r#"metadata.annotations["restore.cloud.crate.io/table-rename-pattern"]: uses a back reference, which is not supported; CrateDB reads it as a Java regular expression"#,
                r#"metadata.annotations["restore.cloud.crate.io/on-conflict"]: "overwrite" is not a choice; use fail (the default) or skip"#,
                r#"metadata.annotations["restore.cloud.crate.io/s3-endpoint-secret-ref"]: "just-a-name" is not <secret>/<key>; name a Secret in this namespace and one of its keys, e.g. s3-endpoint/url"#,
            ]
        );
    }
}
