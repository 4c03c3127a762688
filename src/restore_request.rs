//! From `spec.cluster.restoreSnapshot` as written to a validated restore request (SPEC A7, A8, A15).
//!
//! Pure: takes the spec, returns the request or every problem at once, each naming the field path
//! and the fix. The admission webhook and the restore Job share it, so what was admitted is exactly
//! what runs.

use std::fmt;

use std::collections::BTreeMap;

use crate::{
    repository::StorageProvider,
    resource::{BackupsSpec, SecretKeySelector},
    resource::{PartitionSpec, RestoreSnapshotSpec, SecretRef},
    restore_options::{self, RestoreOptions},
    restore_type::{PartitionTarget, RestoreTarget, RestoreType, Section},
    sql::{SqlLiteral, TableIdent, parse_single_ident},
    version::ServerVersion,
};

pub const SPEC_PATH: &str = "spec.cluster.restoreSnapshot";

/// One problem with a request: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A secret value the restore needs: the repository setting it becomes, where the request
/// names it, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRef {
    pub setting: &'static str,
    /// `spec.cluster.restoreSnapshot.bucket`, an option annotation, or `spec.backups.aws.…`.
    pub path: String,
    pub secret: String,
    pub key: String,
}

/// A request that passed every rule that needs no cluster access.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreRequest {
    pub snapshot: String,
    pub restore_type: RestoreType,
    pub target: RestoreTarget,
    pub provider: StorageProvider,
    /// In the provider's binding order (SPEC B§6), then the S3 endpoint and region if any.
    pub credentials: Vec<CredentialRef>,
    /// The options from `restore.cloud.crate.io/` annotations (SPEC A27).
    pub options: RestoreOptions,
    /// Things that are allowed but probably not what the user meant.
    pub warnings: Vec<String>,
}

/// Validates a requested restore. `spec.snapshot` must be non-empty; callers check
/// [`RestoreSnapshotSpec::requested_snapshot`] first.
pub fn validate(spec: &RestoreSnapshotSpec) -> Result<RestoreRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    let snapshot = spec.snapshot.clone().unwrap_or_default();
    if snapshot.is_empty() {
        errors.push(FieldError::new(
            format!("{SPEC_PATH}.snapshot"),
            "is empty; name the snapshot to restore",
        ));
    } else if snapshot.chars().any(char::is_control) {
        errors.push(FieldError::new(
            format!("{SPEC_PATH}.snapshot"),
            "contains control characters; use the snapshot name as sys.snapshots shows it",
        ));
    }

    let restore_type = match spec.restore_type.as_deref() {
        None => RestoreType::default(),
        Some(name) => name.parse().unwrap_or_else(|()| {
            errors.push(FieldError::new(
                format!("{SPEC_PATH}.type"),
                format!(
                    "{name:?} is not a restore type; use one of {}",
                    RestoreType::NAMES.join(", ")
                ),
            ));
            RestoreType::default()
        }),
    };

    // An unknown provider says nothing about which credentials are needed, so they are only
    // checked for a known one.
    let provider = match spec.backup_provider.as_deref() {
        None => Some(StorageProvider::default()),
        Some(name) => name
            .parse()
            .map_err(|()| {
                errors.push(FieldError::new(
                    format!("{SPEC_PATH}.backupProvider"),
                    format!(
                        "{name:?} is not a storage provider; use {}",
                        StorageProvider::NAMES.join(" or ")
                    ),
                ))
            })
            .ok(),
    };

    let target = match restore_type {
        RestoreType::All => Some(RestoreTarget::All),
        RestoreType::Metadata => Some(RestoreTarget::Metadata),
        RestoreType::Tables => {
            tables_target(spec.tables.as_deref().unwrap_or_default(), &mut errors)
        }
        RestoreType::Sections => {
            sections_target(spec.sections.as_deref().unwrap_or_default(), &mut errors)
        }
        RestoreType::Partitions => {
            partitions_target(spec.partitions.as_deref().unwrap_or_default(), &mut errors)
        }
    };
    for (field, used_by, present) in [
        (
            "tables",
            RestoreType::Tables,
            spec.tables.as_ref().is_some_and(|v| !v.is_empty()),
        ),
        (
            "sections",
            RestoreType::Sections,
            spec.sections.as_ref().is_some_and(|v| !v.is_empty()),
        ),
        (
            "partitions",
            RestoreType::Partitions,
            spec.partitions.as_ref().is_some_and(|v| !v.is_empty()),
        ),
    ] {
        if present && restore_type != used_by {
            warnings.push(format!(
                "{SPEC_PATH}.{field} is ignored for type {restore_type}; it is only read for type {used_by}"
            ));
        }
    }

    let credentials = provider
        .map(|p| credential_refs(spec, p, &mut errors))
        .unwrap_or_default();

    match (target, provider) {
        (Some(target), Some(provider)) if errors.is_empty() => Ok(RestoreRequest {
            snapshot,
            restore_type,
            target,
            provider,
            credentials,
            options: RestoreOptions::default(),
            warnings,
        }),
        _ => Err(errors),
    }
}

fn tables_target(tables: &[String], errors: &mut Vec<FieldError>) -> Option<RestoreTarget> {
    // The reference restores everything for an empty list or exactly ["all"] (SPEC B§5).
    if tables.is_empty() || (tables.len() == 1 && tables[0].trim().eq_ignore_ascii_case("all")) {
        return Some(RestoreTarget::All);
    }
    let before = errors.len();
    let mut parsed = Vec::with_capacity(tables.len());
    for (i, name) in tables.iter().enumerate() {
        match TableIdent::parse(name) {
            Ok(ident) if !parsed.contains(&ident) => parsed.push(ident),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::new(
                format!("{SPEC_PATH}.tables[{i}]"),
                format!(
                    "{name:?} cannot be parsed: {e}; write schema.table (no schema means doc), quoting a part as \"...\" if it contains dots or quotes"
                ),
            )),
        }
    }
    (errors.len() == before).then_some(RestoreTarget::Tables(parsed))
}

fn sections_target(sections: &[String], errors: &mut Vec<FieldError>) -> Option<RestoreTarget> {
    if sections.is_empty() {
        errors.push(FieldError::new(
            format!("{SPEC_PATH}.sections"),
            format!(
                "type sections needs at least one section; list some of {}",
                Section::NAMES.join(", ")
            ),
        ));
        return None;
    }
    let before = errors.len();
    let mut parsed = Vec::with_capacity(sections.len());
    for (i, name) in sections.iter().enumerate() {
        match name.parse::<Section>() {
            Ok(section) if !parsed.contains(&section) => parsed.push(section),
            Ok(_) => {}
            Err(()) => errors.push(FieldError::new(
                format!("{SPEC_PATH}.sections[{i}]"),
                format!(
                    "{name:?} is not a section; use one of {}",
                    Section::NAMES.join(", ")
                ),
            )),
        }
    }
    (errors.len() == before).then_some(RestoreTarget::Sections(parsed))
}

fn partitions_target(
    partitions: &[PartitionSpec],
    errors: &mut Vec<FieldError>,
) -> Option<RestoreTarget> {
    if partitions.is_empty() {
        errors.push(FieldError::new(
            format!("{SPEC_PATH}.partitions"),
            "type partitions needs at least one partition; add {table_ident: schema.table, columns: [{name, value}]}",
        ));
        return None;
    }
    let before = errors.len();
    let mut parsed = Vec::with_capacity(partitions.len());
    for (i, partition) in partitions.iter().enumerate() {
        let path = format!("{SPEC_PATH}.partitions[{i}]");
        let table = match partition.table_ident.as_deref() {
            None => {
                errors.push(FieldError::new(
                    format!("{path}.table_ident"),
                    "is missing; name the partitioned table as schema.table",
                ));
                None
            }
            Some(name) => TableIdent::parse(name)
                .map_err(|e| {
                    errors.push(FieldError::new(
                        format!("{path}.table_ident"),
                        format!("{name:?} cannot be parsed: {e}; write schema.table"),
                    ))
                })
                .ok(),
        };
        let columns = partition.columns.as_deref().unwrap_or_default();
        if columns.is_empty() {
            errors.push(FieldError::new(
                format!("{path}.columns"),
                "is missing or empty; list each partition column as {name, value}",
            ));
        }
        let mut parsed_columns = Vec::with_capacity(columns.len());
        for (j, column) in columns.iter().enumerate() {
            let cpath = format!("{path}.columns[{j}]");
            let name = match column.name.as_deref() {
                None => {
                    errors.push(FieldError::new(
                        format!("{cpath}.name"),
                        "is missing; name the partition column",
                    ));
                    None
                }
                Some(name) => parse_single_ident(name)
                    .map_err(|e| {
                        errors.push(FieldError::new(
                            format!("{cpath}.name"),
                            format!("{name:?} is not a column name: {e}"),
                        ))
                    })
                    .ok(),
            };
            let value = match column.value.as_deref() {
                None => {
                    errors.push(FieldError::new(
                        format!("{cpath}.value"),
                        "is missing; give the partition value as one SQL literal, e.g. '2024-01-01' or 42",
                    ));
                    None
                }
                Some(value) => SqlLiteral::parse(value)
                    .map_err(|e| {
                        errors.push(FieldError::new(
                            format!("{cpath}.value"),
                            format!(
                                "{e}; write a number, a quoted string such as '2024-01-01' (double any ' inside), true, false or null"
                            ),
                        ))
                    })
                    .ok(),
            };
            if let (Some(name), Some(value)) = (name, value) {
                parsed_columns.push((name, value));
            }
        }
        if let Some(table) = table {
            parsed.push(PartitionTarget {
                table,
                columns: parsed_columns,
            });
        }
    }
    (errors.len() == before).then_some(RestoreTarget::Partitions(parsed))
}

fn credential_refs(
    spec: &RestoreSnapshotSpec,
    provider: StorageProvider,
    errors: &mut Vec<FieldError>,
) -> Vec<CredentialRef> {
    let mut refs = Vec::new();
    for field in provider.credential_fields() {
        let path = format!("{SPEC_PATH}.{}", field.crd_field);
        let selector = match spec.secret_ref(field.crd_field) {
            None => {
                errors.push(FieldError::new(
                    &path,
                    format!(
                        "is required for backupProvider {provider}; add {}: {{secretKeyRef: {{name: <secret>, key: <key>}}}}",
                        field.crd_field
                    ),
                ));
                continue;
            }
            Some(SecretRef {
                secret_key_ref: None,
            }) => {
                errors.push(FieldError::new(
                    format!("{path}.secretKeyRef"),
                    "is missing; reference the Secret as secretKeyRef: {name: <secret>, key: <key>}",
                ));
                continue;
            }
            Some(SecretRef {
                secret_key_ref: Some(selector),
            }) => selector,
        };
        let name = selector.name.as_deref().filter(|n| !n.is_empty());
        let key = selector.key.as_deref().filter(|k| !k.is_empty());
        if name.is_none() {
            errors.push(FieldError::new(
                format!("{path}.secretKeyRef.name"),
                "is missing; name the Secret (in the CrateDB resource's namespace) that holds the value",
            ));
        }
        if key.is_none() {
            errors.push(FieldError::new(
                format!("{path}.secretKeyRef.key"),
                "is missing; name the key inside the Secret that holds the value",
            ));
        }
        if let (Some(name), Some(key)) = (name, key) {
            refs.push(CredentialRef {
                setting: field.setting,
                path,
                secret: name.to_string(),
                key: key.to_string(),
            });
        }
    }
    refs
}

/// The whole request: `restoreSnapshot`, the option annotations and, for S3, the cluster's own
/// backup endpoint and region as defaults (SPEC A27). Every problem at once.
pub fn validate_with_options(
    spec: &RestoreSnapshotSpec,
    annotations: &BTreeMap<String, String>,
    backups: Option<&BackupsSpec>,
) -> Result<RestoreRequest, Vec<FieldError>> {
    let request = validate(spec);
    let options = restore_options::parse(annotations);
    let (mut request, options) = match (request, options) {
        (Ok(request), Ok(options)) => (request, options),
        (request, options) => {
            let mut errors = request.err().unwrap_or_default();
            errors.extend(options.err().unwrap_or_default());
            return Err(errors);
        }
    };
    let mut errors = Vec::new();
    let restores_tables = request.target.restores_tables();
    if options.rename.as_ref().is_some_and(|r| r.renames()) && !restores_tables {
        errors.push(FieldError::new(
            restore_options::path(restore_options::TABLE_RENAME_PATTERN),
            format!(
                "renames restored tables, but a {} restore restores none; remove the rename annotations or restore tables",
                request.restore_type
            ),
        ));
    }
    if options.on_conflict == restore_options::OnConflict::Skip
        && !matches!(request.restore_type, RestoreType::All | RestoreType::Tables)
    {
        errors.push(FieldError::new(
            restore_options::path(restore_options::ON_CONFLICT),
            format!(
                "skip leaves existing tables and partitions out of a restore of type all or tables; a {} restore cannot skip, remove it (or restore type tables)",
                request.restore_type
            ),
        ));
    }
    let defaults = backups.and_then(|b| b.aws.as_ref());
    for (setting, annotation, explicit, default, default_path) in [
        (
            "endpoint",
            restore_options::S3_ENDPOINT_SECRET_REF,
            &options.s3_endpoint,
            defaults.and_then(|a| a.endpoint_url.as_ref()),
            "spec.backups.aws.endpointUrl",
        ),
        (
            "region",
            restore_options::S3_REGION_SECRET_REF,
            &options.s3_region,
            defaults.and_then(|a| a.region.as_ref()),
            "spec.backups.aws.region",
        ),
    ] {
        if request.provider != StorageProvider::Aws {
            if explicit.is_some() {
                errors.push(FieldError::new(
                    restore_options::path(annotation),
                    format!(
                        "applies to S3 repositories only, but backupProvider is {}; remove it",
                        request.provider
                    ),
                ));
            }
            continue;
        }
        let reference = match (explicit, default) {
            (Some(explicit), _) => Some((
                restore_options::path(annotation),
                explicit.secret.clone(),
                explicit.key.clone(),
            )),
            (
                None,
                Some(SecretRef {
                    secret_key_ref:
                        Some(SecretKeySelector {
                            name: Some(name),
                            key: Some(key),
                        }),
                }),
            ) if !name.is_empty() && !key.is_empty() => {
                Some((default_path.to_string(), name.clone(), key.clone()))
            }
            _ => None,
        };
        if let Some((path, secret, key)) = reference {
            request.credentials.push(CredentialRef {
                setting,
                path,
                secret,
                key,
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    request.options = options;
    Ok(request)
}

/// CrateDB 5.6.0 added the RESTORE rename parameters.
pub const RENAME_SINCE: ServerVersion = ServerVersion::new(5, 6, 0);
/// CrateDB 6.3.0 added the `region` setting of s3 repositories (older servers infer it).
pub const S3_REGION_SINCE: ServerVersion = ServerVersion::new(6, 3, 0);

/// What CrateDB `version` cannot do of this request, each naming the option to change.
pub fn unsupported_by(request: &RestoreRequest, version: ServerVersion) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if let Some(rename) = request.options.rename.as_ref().filter(|r| r.renames())
        && version < RENAME_SINCE
    {
        let named = rename
            .parameters()
            .first()
            .map(|(name, _)| name.replace('_', "-"))
            .unwrap_or_else(|| "table-rename-pattern".into());
        problems.push(FieldError::new(
            restore_options::path(&format!("{}{named}", restore_options::PREFIX)),
            format!(
                "CrateDB {version} cannot restore under other names (RESTORE's rename parameters came with {RENAME_SINCE}); upgrade the cluster or remove the rename annotations"
            ),
        ));
    }
    if version < S3_REGION_SINCE
        && let Some(region) = request
            .credentials
            .iter()
            .find(|c| c.setting == "region" && c.path.starts_with("metadata."))
    {
        problems.push(FieldError::new(
            &region.path,
            format!(
                "CrateDB {version} has no region setting for s3 repositories (it came with {S3_REGION_SINCE}; older servers infer the region from the endpoint); remove the annotation"
            ),
        ));
    }
    problems
}

/// Joins problems into one admission message.
pub fn describe(errors: &[FieldError]) -> String {
    let items: Vec<String> = errors.iter().map(FieldError::to_string).collect();
    format!("invalid restore request: {}", items.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> RestoreSnapshotSpec {
        serde_json::from_value(value).unwrap()
    }

    fn aws_refs() -> serde_json::Value {
        json!({
            "accessKeyId": {"secretKeyRef": {"name": "restore", "key": "access-key-id"}},
            "secretAccessKey": {"secretKeyRef": {"name": "restore", "key": "secret-access-key"}},
            "bucket": {"secretKeyRef": {"name": "restore", "key": "bucket"}},
            "basePath": {"secretKeyRef": {"name": "restore", "key": "base-path"}}
        })
    }

    fn with_aws(mut extra: serde_json::Value) -> RestoreSnapshotSpec {
        let obj = extra.as_object_mut().unwrap();
        for (k, v) in aws_refs().as_object().unwrap() {
            obj.insert(k.clone(), v.clone());
        }
        spec(extra)
    }

    fn errors_of(spec: RestoreSnapshotSpec) -> Vec<String> {
        validate(&spec)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn defaults_to_tables_all_on_aws() {
        let req = validate(&with_aws(json!({"snapshot": "snap1"}))).unwrap();
        assert_eq!(req.restore_type, RestoreType::Tables);
        assert_eq!(req.target, RestoreTarget::All);
        assert_eq!(req.provider, StorageProvider::Aws);
        let settings: Vec<_> = req.credentials.iter().map(|c| c.setting).collect();
        assert_eq!(
            settings,
            ["access_key", "base_path", "bucket", "secret_key"]
        );
        assert_eq!(req.credentials[0].secret, "restore");
        assert_eq!(req.credentials[0].key, "access-key-id");
        assert!(req.warnings.is_empty());
    }

    #[test]
    fn tables_all_keyword_and_lists() {
        for tables in [json!([]), json!(["all"]), json!(["ALL"])] {
            let req = validate(&with_aws(json!({"snapshot": "s", "tables": tables}))).unwrap();
            assert_eq!(req.target, RestoreTarget::All);
        }
        let req = validate(&with_aws(
            json!({"snapshot": "s", "tables": ["doc.a", "b", "doc.a", "\"x\"\"y\".z"]}),
        ))
        .unwrap();
        assert_eq!(
            req.target.keyword(None),
            r#"TABLE "doc"."a", "doc"."b", "x""y"."z""#
        );
    }

    #[test]
    fn unknown_enums_name_the_field_and_the_choices() {
        assert_eq!(
            errors_of(with_aws(json!({"snapshot": "s", "type": "everything"}))),
            [
                r#"spec.cluster.restoreSnapshot.type: "everything" is not a restore type; use one of all, tables, metadata, partitions, sections"#
            ]
        );
        assert_eq!(
            errors_of(with_aws(
                json!({"snapshot": "s", "type": "sections", "sections": ["tables", "indices"]})
            )),
            [
                r#"spec.cluster.restoreSnapshot.sections[1]: "indices" is not a section; use one of tables, views, users, privileges, analyzers, udfs"#
            ]
        );
        assert_eq!(
            errors_of(spec(json!({"snapshot": "s", "backupProvider": "gcs"}))),
            [
                r#"spec.cluster.restoreSnapshot.backupProvider: "gcs" is not a storage provider; use aws or azure_blob"#
            ]
        );
    }

    #[test]
    fn empty_sections_and_partitions_are_denied() {
        assert_eq!(
            errors_of(with_aws(json!({"snapshot": "s", "type": "sections"}))),
            [
                "spec.cluster.restoreSnapshot.sections: type sections needs at least one section; list some of tables, views, users, privileges, analyzers, udfs"
            ]
        );
        assert_eq!(
            errors_of(with_aws(
                json!({"snapshot": "s", "type": "partitions", "partitions": []})
            )),
            [
                "spec.cluster.restoreSnapshot.partitions: type partitions needs at least one partition; add {table_ident: schema.table, columns: [{name, value}]}"
            ]
        );
    }

    #[test]
    fn bad_table_names_are_denied_each() {
        assert_eq!(
            errors_of(with_aws(
                json!({"snapshot": "s", "tables": ["doc.", "ok", "\"open"]})
            )),
            [
                r#"spec.cluster.restoreSnapshot.tables[0]: "doc." cannot be parsed: the table part after the dot is empty; write schema.table (no schema means doc), quoting a part as "..." if it contains dots or quotes"#,
                r#"spec.cluster.restoreSnapshot.tables[2]: "\"open" cannot be parsed: a quoted part is not closed with "; write schema.table (no schema means doc), quoting a part as "..." if it contains dots or quotes"#,
            ]
        );
    }

    #[test]
    fn partitions_need_ident_columns_and_literals() {
        let errors = errors_of(with_aws(json!({
            "snapshot": "s", "type": "partitions",
            "partitions": [
                {"table_ident": "doc.t1", "columns": [{"name": "day", "value": "2024-01-01"}]},
                {"columns": []},
                {"table_ident": "doc.t3", "columns": [{"value": "1"}, {"name": "n", "value": "1; DROP TABLE x"}]}
            ]
        })));
        assert_eq!(
            errors,
            [
                r#"spec.cluster.restoreSnapshot.partitions[0].columns[0].value: "2024-01-01" is not one SQL literal; write a number, a quoted string such as '2024-01-01' (double any ' inside), true, false or null"#,
                "spec.cluster.restoreSnapshot.partitions[1].table_ident: is missing; name the partitioned table as schema.table",
                "spec.cluster.restoreSnapshot.partitions[1].columns: is missing or empty; list each partition column as {name, value}",
                "spec.cluster.restoreSnapshot.partitions[2].columns[0].name: is missing; name the partition column",
                r#"spec.cluster.restoreSnapshot.partitions[2].columns[1].value: "1; DROP TABLE x" is not one SQL literal; write a number, a quoted string such as '2024-01-01' (double any ' inside), true, false or null"#,
            ]
        );
    }

    #[test]
    fn valid_partitions_render_the_grammar() {
        let req = validate(&with_aws(json!({
            "snapshot": "s", "type": "partitions",
            "partitions": [
                {"table_ident": "doc.t1", "columns": [{"name": "day", "value": "'2024-01-01'"}, {"name": "\"Region\"", "value": "7"}]},
                {"table_ident": "t2", "columns": [{"name": "flag", "value": "true"}]}
            ]
        })))
        .unwrap();
        assert_eq!(
            req.target.keyword(None),
            r#"TABLE "doc"."t1" PARTITION ("day" = '2024-01-01', "Region" = 7), "doc"."t2" PARTITION ("flag" = true)"#
        );
    }

    #[test]
    fn provider_fields_are_required() {
        assert_eq!(
            errors_of(spec(json!({
                "snapshot": "s", "backupProvider": "azure_blob",
                "accountKey": {"secretKeyRef": {"name": "a", "key": "account-key"}},
                "accountName": {"secretKeyRef": {"key": "account-name"}},
                "basePath": {},
                "accessKeyId": {"secretKeyRef": {"name": "ignored", "key": "for-azure"}}
            }))),
            [
                "spec.cluster.restoreSnapshot.accountName.secretKeyRef.name: is missing; name the Secret (in the CrateDB resource's namespace) that holds the value",
                "spec.cluster.restoreSnapshot.basePath.secretKeyRef: is missing; reference the Secret as secretKeyRef: {name: <secret>, key: <key>}",
                "spec.cluster.restoreSnapshot.container: is required for backupProvider azure_blob; add container: {secretKeyRef: {name: <secret>, key: <key>}}",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = errors_of(spec(
            json!({"snapshot": "s", "type": "bogus", "backupProvider": "x"}),
        ));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            describe(&validate(&spec(json!({"snapshot": "s"}))).unwrap_err()).starts_with(
                "invalid restore request: spec.cluster.restoreSnapshot.accessKeyId: is required"
            )
        );
    }

    #[test]
    fn unused_lists_warn() {
        let req = validate(&with_aws(
            json!({"snapshot": "s", "type": "all", "tables": ["doc.t"]}),
        ))
        .unwrap();
        assert_eq!(
            req.warnings,
            [
                "spec.cluster.restoreSnapshot.tables is ignored for type all; it is only read for type tables"
            ]
        );
    }

    #[test]
    fn control_characters_in_snapshot_names_are_denied() {
        assert_eq!(
            errors_of(with_aws(json!({"snapshot": "snap\n1"}))),
            [
                "spec.cluster.restoreSnapshot.snapshot: contains control characters; use the snapshot name as sys.snapshots shows it"
            ]
        );
    }

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn s3_endpoint_and_region_come_from_options_or_the_clusters_backups() {
        use restore_options::{S3_ENDPOINT_SECRET_REF, S3_REGION_SECRET_REF};
        let backups: BackupsSpec = serde_json::from_value(json!({"aws": {
            "endpointUrl": {"secretKeyRef": {"name": "backup-s3", "key": "endpoint"}},
            "region": {"secretKeyRef": {"name": "backup-s3", "key": "region"}}}}))
        .unwrap();
        let aws = with_aws(json!({"snapshot": "s"}));
        let req = validate_with_options(
            &aws,
            &options(&[(S3_ENDPOINT_SECRET_REF, "minio/url")]),
            Some(&backups),
        )
        .unwrap();
        let extra: Vec<(&str, &str, &str)> = req.credentials[4..]
            .iter()
            .map(|c| (c.setting, c.path.as_str(), c.secret.as_str()))
            .collect();
        assert_eq!(
            extra,
            [
                (
                    "endpoint",
                    r#"metadata.annotations["restore.cloud.crate.io/s3-endpoint-secret-ref"]"#,
                    "minio"
                ),
                ("region", "spec.backups.aws.region", "backup-s3"),
            ]
        );
        // Azure has no S3 endpoint: named explicitly it is an error, the S3 defaults are ignored.
        let azure = spec(json!({"snapshot": "s", "backupProvider": "azure_blob",
            "accountKey": {"secretKeyRef": {"name": "a", "key": "k"}},
            "accountName": {"secretKeyRef": {"name": "a", "key": "n"}},
            "container": {"secretKeyRef": {"name": "a", "key": "c"}},
            "basePath": {"secretKeyRef": {"name": "a", "key": "p"}}}));
        assert_eq!(
            validate_with_options(&azure, &options(&[]), Some(&backups))
                .unwrap()
                .credentials
                .len(),
            4
        );
        let errors = validate_with_options(
            &azure,
            &options(&[(S3_REGION_SECRET_REF, "r/region")]),
            None,
        )
        .unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            r#"metadata.annotations["restore.cloud.crate.io/s3-region-secret-ref"]: applies to S3 repositories only, but backupProvider is azure_blob; remove it"#
        );
    }

    #[test]
    fn options_that_do_not_fit_the_type_are_refused() {
        use restore_options::{ON_CONFLICT, TABLE_RENAME_REPLACEMENT};
        let metadata = with_aws(json!({"snapshot": "s", "type": "metadata"}));
        let errors: Vec<String> = validate_with_options(
            &metadata,
            &options(&[(TABLE_RENAME_REPLACEMENT, "x_$1"), (ON_CONFLICT, "skip")]),
            None,
        )
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("a metadata restore restores none"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("a metadata restore cannot skip"),
            "{errors:?}"
        );
        let sections =
            with_aws(json!({"snapshot": "s", "type": "sections", "sections": ["tables"]}));
        assert!(
            validate_with_options(&sections, &options(&[(ON_CONFLICT, "skip")]), None).is_err()
        );
    }

    #[test]
    fn old_servers_lack_renames_and_the_s3_region() {
        use restore_options::{S3_REGION_SECRET_REF, TABLE_RENAME_REPLACEMENT};
        let req = validate_with_options(
            &with_aws(json!({"snapshot": "s"})),
            &options(&[
                (TABLE_RENAME_REPLACEMENT, "$1_copy"),
                (S3_REGION_SECRET_REF, "s/r"),
            ]),
            None,
        )
        .unwrap();
        let at = |v| -> Vec<String> {
            unsupported_by(&req, v)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            at(ServerVersion::new(5, 5, 4)),
            [
                r#"metadata.annotations["restore.cloud.crate.io/table-rename-replacement"]: CrateDB 5.5.4 cannot restore under other names (RESTORE's rename parameters came with 5.6.0); upgrade the cluster or remove the rename annotations"#,
                r#"metadata.annotations["restore.cloud.crate.io/s3-region-secret-ref"]: CrateDB 5.5.4 has no region setting for s3 repositories (it came with 6.3.0; older servers infer the region from the endpoint); remove the annotation"#,
            ]
        );
        assert_eq!(at(ServerVersion::new(6, 2, 1)).len(), 1);
        assert!(at(ServerVersion::new(6, 3, 0)).is_empty());
    }
}
