//! What a restore restores: the `type` of a request, its validated target, and the keyword that
//! follows `RESTORE SNAPSHOT "repo"."snap"` (SPEC A8, A21, B§5).

use std::{fmt, str::FromStr};

use crate::{
    sql::{SqlLiteral, TableIdent, quote_ident},
    version::ServerVersion,
};

/// `spec.cluster.restoreSnapshot.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestoreType {
    All,
    /// The default (SPEC A7): with no tables, or exactly `["all"]`, it restores everything.
    #[default]
    Tables,
    Metadata,
    Partitions,
    Sections,
}

impl RestoreType {
    pub const NAMES: [&'static str; 5] = ["all", "tables", "metadata", "partitions", "sections"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Tables => "tables",
            Self::Metadata => "metadata",
            Self::Partitions => "partitions",
            Self::Sections => "sections",
        }
    }
}

impl FromStr for RestoreType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "all" => Ok(Self::All),
            "tables" => Ok(Self::Tables),
            "metadata" => Ok(Self::Metadata),
            "partitions" => Ok(Self::Partitions),
            "sections" => Ok(Self::Sections),
            _ => Err(()),
        }
    }
}

impl fmt::Display for RestoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An item of `restoreSnapshot.sections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Tables,
    Views,
    Users,
    Privileges,
    Analyzers,
    Udfs,
}

impl Section {
    pub const NAMES: [&'static str; 6] = [
        "tables",
        "views",
        "users",
        "privileges",
        "analyzers",
        "udfs",
    ];

    /// The name as `restoreSnapshot.sections` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tables => "tables",
            Self::Views => "views",
            Self::Users => "users",
            Self::Privileges => "privileges",
            Self::Analyzers => "analyzers",
            Self::Udfs => "udfs",
        }
    }

    fn keyword(self, version: Option<ServerVersion>) -> &'static str {
        let user_management = version.is_some_and(|v| v >= ServerVersion::USERMANAGEMENT_SECTION);
        match self {
            Self::Tables => "TABLES",
            Self::Views => "VIEWS",
            Self::Users | Self::Privileges if user_management => "USERMANAGEMENT",
            Self::Users => "USERS",
            Self::Privileges => "PRIVILEGES",
            Self::Analyzers => "ANALYZERS",
            Self::Udfs => "UDFS",
        }
    }
}

impl FromStr for Section {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "tables" => Ok(Self::Tables),
            "views" => Ok(Self::Views),
            "users" => Ok(Self::Users),
            "privileges" => Ok(Self::Privileges),
            "analyzers" => Ok(Self::Analyzers),
            "udfs" => Ok(Self::Udfs),
            _ => Err(()),
        }
    }
}

/// One partition to restore: `TABLE "s"."t" PARTITION ("c" = <literal>, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionTarget {
    pub table: TableIdent,
    pub columns: Vec<(String, SqlLiteral)>,
}

impl PartitionTarget {
    /// `"s"."t" PARTITION ("c" = <literal>, ...)`, as the statement names it.
    pub fn render(&self) -> String {
        format!("{} PARTITION {}", self.table.quoted(), self.render_values())
    }

    /// `("c" = <literal>, ...)`.
    pub fn render_values(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|(name, value)| format!("{} = {value}", quote_ident(name)))
            .collect();
        format!("({})", columns.join(", "))
    }
}

/// The validated target of a restore.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreTarget {
    All,
    Metadata,
    Tables(Vec<TableIdent>),
    Partitions(Vec<PartitionTarget>),
    Sections(Vec<Section>),
}

impl RestoreTarget {
    /// The keyword after `RESTORE SNAPSHOT "repo"."snap"`. `version` is the server version when
    /// known; without it, sections use the keywords every supported version before 6.5 accepts.
    pub fn keyword(&self, version: Option<ServerVersion>) -> String {
        match self {
            Self::All => "ALL".to_string(),
            Self::Metadata => "METADATA".to_string(),
            Self::Tables(tables) => {
                let names: Vec<String> = tables.iter().map(TableIdent::quoted).collect();
                format!("TABLE {}", names.join(", "))
            }
            Self::Partitions(partitions) => {
                let items: Vec<String> = partitions.iter().map(PartitionTarget::render).collect();
                format!("TABLE {}", items.join(", "))
            }
            Self::Sections(sections) => {
                let mut keywords: Vec<&str> = Vec::new();
                for section in sections {
                    let keyword = section.keyword(version);
                    if !keywords.contains(&keyword) {
                        keywords.push(keyword);
                    }
                }
                keywords.join(", ")
            }
        }
    }

    /// Whether this restore brings back table data (and so shards to wait for).
    pub fn restores_tables(&self) -> bool {
        match self {
            Self::All | Self::Tables(_) | Self::Partitions(_) => true,
            Self::Metadata => false,
            Self::Sections(sections) => sections.contains(&Section::Tables),
        }
    }

    /// Whether CrateDB replaces the persistent cluster settings with the snapshot's (SPEC A22).
    pub fn overwrites_cluster_settings(&self) -> bool {
        matches!(self, Self::All | Self::Metadata)
    }
}

/// The statement that starts a restore of `what` (a [`RestoreTarget::keyword`], or the planned
/// one). It never waits: the Job polls for completion (SPEC B§2.3). Rename parameters are
/// escaped literals: they are no secret, and the dry-run preview shows exactly what is sent.
pub fn restore_statement(
    repository: &str,
    snapshot: &str,
    what: &str,
    rename: Option<&crate::rename::Rename>,
) -> String {
    let mut with = vec!["wait_for_completion = false".to_string()];
    if let Some(rename) = rename {
        with.extend(
            rename
                .parameters()
                .into_iter()
                .map(|(name, value)| format!("{name} = {}", crate::sql::quote_literal(value))),
        );
    }
    format!(
        "RESTORE SNAPSHOT {}.{} {what} WITH ({})",
        quote_ident(repository),
        quote_ident(snapshot),
        with.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TableIdent {
        TableIdent::parse(s).unwrap()
    }

    #[test]
    fn keywords_per_type() {
        let v5_5 = Some(ServerVersion::new(5, 5, 2));
        let v5_10 = Some(ServerVersion::new(5, 10, 3));
        let cases: Vec<(RestoreTarget, Option<ServerVersion>, &str)> = vec![
            (RestoreTarget::All, v5_10, "ALL"),
            (RestoreTarget::Metadata, v5_10, "METADATA"),
            (
                RestoreTarget::Tables(vec![t("doc.table1")]),
                v5_10,
                r#"TABLE "doc"."table1""#,
            ),
            (
                RestoreTarget::Tables(vec![
                    t(r#""doc"."table1""#),
                    t("doc.my-table"),
                    t("doc.my-table-name_!@^"),
                ]),
                v5_10,
                r#"TABLE "doc"."table1", "doc"."my-table", "doc"."my-table-name_!@^""#,
            ),
            (
                RestoreTarget::Tables(vec![t(r#"doc."x""; DROP TABLE y; --""#), t("t")]),
                v5_10,
                r#"TABLE "doc"."x""; DROP TABLE y; --", "doc"."t""#,
            ),
            (
                RestoreTarget::Sections(vec![Section::Tables, Section::Users, Section::Privileges]),
                v5_5,
                "TABLES, USERS, PRIVILEGES",
            ),
            (
                RestoreTarget::Sections(vec![Section::Tables, Section::Users, Section::Privileges]),
                v5_10,
                "TABLES, USERMANAGEMENT",
            ),
            (
                RestoreTarget::Sections(vec![Section::Privileges, Section::Views, Section::Udfs]),
                Some(ServerVersion::USERMANAGEMENT_SECTION),
                "USERMANAGEMENT, VIEWS, UDFS",
            ),
            (
                RestoreTarget::Sections(vec![Section::Analyzers, Section::Users]),
                None,
                "ANALYZERS, USERS",
            ),
            (
                RestoreTarget::Partitions(vec![
                    PartitionTarget {
                        table: t("table1"),
                        columns: vec![
                            ("col1".into(), SqlLiteral::parse("'val1'").unwrap()),
                            ("col2".into(), SqlLiteral::parse("2").unwrap()),
                        ],
                    },
                    PartitionTarget {
                        table: t(r#"s."t""2""#),
                        columns: vec![(r#"c"3"#.into(), SqlLiteral::parse("'it''s'").unwrap())],
                    },
                ]),
                v5_10,
                r#"TABLE "doc"."table1" PARTITION ("col1" = 'val1', "col2" = 2), "s"."t""2" PARTITION ("c""3" = 'it''s')"#,
            ),
        ];
        for (target, version, expected) in cases {
            assert_eq!(target.keyword(version), expected, "{target:?}");
        }
    }

    #[test]
    fn full_statement_quotes_repository_and_snapshot() {
        assert_eq!(
            restore_statement(
                "restore_backup_1718000000",
                "snap1",
                &RestoreTarget::Tables(vec![t("doc.t1"), t("doc.t2")]).keyword(None),
                None
            ),
            r#"RESTORE SNAPSHOT "restore_backup_1718000000"."snap1" TABLE "doc"."t1", "doc"."t2" WITH (wait_for_completion = false)"#
        );
        assert_eq!(
            restore_statement("r", r#"sn"ap"#, "ALL", None),
            r#"RESTORE SNAPSHOT "r"."sn""ap" ALL WITH (wait_for_completion = false)"#
        );
        let rename = crate::rename::Rename {
            schema: crate::rename::Rule::parse(None, Some("it's")).unwrap(),
            table: crate::rename::Rule::parse(Some("(\\w+)_(\\d+)"), Some("$2_$1")).unwrap(),
        };
        assert_eq!(
            restore_statement("r", "s", "ALL", Some(&rename)),
            r#"RESTORE SNAPSHOT "r"."s" ALL WITH (wait_for_completion = false, schema_rename_replacement = 'it''s', table_rename_pattern = '(\w+)_(\d+)', table_rename_replacement = '$2_$1')"#
        );
    }

    #[test]
    fn shard_and_settings_properties() {
        assert!(RestoreTarget::All.restores_tables());
        assert!(!RestoreTarget::Metadata.restores_tables());
        assert!(!RestoreTarget::Sections(vec![Section::Users]).restores_tables());
        assert!(RestoreTarget::Sections(vec![Section::Views, Section::Tables]).restores_tables());
        assert!(RestoreTarget::Metadata.overwrites_cluster_settings());
        assert!(!RestoreTarget::Tables(vec![]).overwrites_cluster_settings());
    }

    #[test]
    fn type_names_round_trip() {
        for name in RestoreType::NAMES {
            assert_eq!(name.parse::<RestoreType>().unwrap().as_str(), name);
        }
        assert!("ALL".parse::<RestoreType>().is_err());
        for name in Section::NAMES {
            assert!(name.parse::<Section>().is_ok());
        }
    }
}
