//! The read-only snapshot repository a restore reads from (SPEC B§6).
//!
//! Credentials are always bound parameters (SPEC A8): they never appear in statement text, so
//! neither our logs nor CrateDB's `sys.jobs_log` can show them.

use std::{fmt, str::FromStr};

use crate::sql::quote_ident;

/// Throughput cap the reference operator sets on every restore repository.
pub const MAX_RESTORE_BYTES_PER_SEC: &str = "240mb";

/// `spec.cluster.restoreSnapshot.backupProvider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageProvider {
    #[default]
    Aws,
    AzureBlob,
}

/// One credential: the `restoreSnapshot` field that references it and the repository setting it
/// becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialField {
    pub crd_field: &'static str,
    pub setting: &'static str,
}

const AWS_FIELDS: [CredentialField; 4] = [
    CredentialField {
        crd_field: "accessKeyId",
        setting: "access_key",
    },
    CredentialField {
        crd_field: "basePath",
        setting: "base_path",
    },
    CredentialField {
        crd_field: "bucket",
        setting: "bucket",
    },
    CredentialField {
        crd_field: "secretAccessKey",
        setting: "secret_key",
    },
];

const AZURE_FIELDS: [CredentialField; 4] = [
    CredentialField {
        crd_field: "accountKey",
        setting: "key",
    },
    CredentialField {
        crd_field: "accountName",
        setting: "account",
    },
    CredentialField {
        crd_field: "basePath",
        setting: "base_path",
    },
    CredentialField {
        crd_field: "container",
        setting: "container",
    },
];

impl StorageProvider {
    pub const NAMES: [&'static str; 2] = ["aws", "azure_blob"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AzureBlob => "azure_blob",
        }
    }

    /// CrateDB's repository type.
    pub fn repository_type(self) -> &'static str {
        match self {
            Self::Aws => "s3",
            Self::AzureBlob => "azure",
        }
    }

    /// The fields a request must reference, in the order their settings are bound.
    pub fn credential_fields(self) -> &'static [CredentialField] {
        match self {
            Self::Aws => &AWS_FIELDS,
            Self::AzureBlob => &AZURE_FIELDS,
        }
    }
}

impl FromStr for StorageProvider {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "aws" => Ok(Self::Aws),
            "azure_blob" => Ok(Self::AzureBlob),
            _ => Err(()),
        }
    }
}

impl fmt::Display for StorageProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The repository a run creates: unique per run, so a restarted Job finds its own.
pub fn repository_name(run_id: &str) -> String {
    let safe: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("restore_backup_{safe}")
}

/// `CREATE REPOSITORY` with every value as a parameter: `$1` = max_restore_bytes_per_sec,
/// `$2` = readonly, then one per entry of `settings` (the credentials in
/// [`StorageProvider::credential_fields`] order, then endpoint, protocol, region).
pub fn create_repository_statement(
    repository: &str,
    provider: StorageProvider,
    settings: &[&str],
) -> String {
    let mut with = vec![
        "max_restore_bytes_per_sec = $1".to_string(),
        "readonly = $2".to_string(),
    ];
    for (i, setting) in settings.iter().enumerate() {
        with.push(format!("{setting} = ${}", i + 3));
    }
    format!(
        "CREATE REPOSITORY {} TYPE {} WITH ({})",
        quote_ident(repository),
        provider.repository_type(),
        with.join(", ")
    )
}

/// The repository settings one Secret value becomes. An S3 endpoint may be written as a URL
/// (`https://minio.example:9000`, as `spec.backups.aws.endpointUrl` holds it): CrateDB takes the
/// host and port as `endpoint` and the scheme as `protocol`.
pub fn expand_setting(setting: &'static str, value: String) -> Vec<(&'static str, String)> {
    if setting == "endpoint" {
        for scheme in ["https", "http"] {
            if let Some(rest) = value.strip_prefix(&format!("{scheme}://")) {
                let host = rest.trim_end_matches('/').to_string();
                return vec![("endpoint", host), ("protocol", scheme.to_string())];
            }
        }
    }
    vec![(setting, value)]
}

/// The two fixed parameters that precede the credentials.
pub fn fixed_repository_parameters() -> [&'static str; 2] {
    [MAX_RESTORE_BYTES_PER_SEC, "true"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_statements_bind_every_value() {
        let settings = |p: StorageProvider| -> Vec<&str> {
            p.credential_fields().iter().map(|f| f.setting).collect()
        };
        assert_eq!(
            create_repository_statement(
                "restore_backup_1",
                StorageProvider::Aws,
                &settings(StorageProvider::Aws)
            ),
            r#"CREATE REPOSITORY "restore_backup_1" TYPE s3 WITH (max_restore_bytes_per_sec = $1, readonly = $2, access_key = $3, base_path = $4, bucket = $5, secret_key = $6)"#
        );
        assert_eq!(
            create_repository_statement(
                r#"we"ird"#,
                StorageProvider::AzureBlob,
                &settings(StorageProvider::AzureBlob)
            ),
            r#"CREATE REPOSITORY "we""ird" TYPE azure WITH (max_restore_bytes_per_sec = $1, readonly = $2, key = $3, account = $4, base_path = $5, container = $6)"#
        );
        assert_eq!(
            expand_setting("endpoint", "http://minio.minio:9000/".into()),
            [
                ("endpoint", "minio.minio:9000".to_string()),
                ("protocol", "http".to_string())
            ]
        );
        assert_eq!(
            expand_setting("endpoint", "s3.eu.example".into()),
            [("endpoint", "s3.eu.example".to_string())]
        );
        assert_eq!(fixed_repository_parameters(), ["240mb", "true"]);
    }

    #[test]
    fn repository_names_are_plain_identifiers() {
        assert_eq!(
            repository_name("20261125082542-3fa9c1"),
            "restore_backup_20261125082542_3fa9c1"
        );
        assert_eq!(repository_name("A;b\"c"), "restore_backup_a_b_c");
    }

    #[test]
    fn providers_parse_and_name_their_fields() {
        assert_eq!("aws".parse::<StorageProvider>(), Ok(StorageProvider::Aws));
        assert_eq!(
            "azure_blob".parse::<StorageProvider>(),
            Ok(StorageProvider::AzureBlob)
        );
        assert!("gcs".parse::<StorageProvider>().is_err());
        let aws: Vec<_> = StorageProvider::Aws
            .credential_fields()
            .iter()
            .map(|f| f.crd_field)
            .collect();
        assert_eq!(
            aws,
            ["accessKeyId", "basePath", "bucket", "secretAccessKey"]
        );
    }
}
