//! CrateDB server versions, as `sys.nodes` reports them and as `spec.cluster.version` names them.

use std::{fmt, str::FromStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ServerVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// From 5.6.0 the `USERS` and `PRIVILEGES` restore sections are spelled `USERMANAGEMENT`
    /// (the old keywords stay as deprecated aliases until 6.5).
    pub const USERMANAGEMENT_SECTION: Self = Self::new(5, 6, 0);

    /// JWT authentication for users exists from this version (`CRATEDB_JWT_AUTH_VERSION`).
    pub const JWT_AUTH: Self = Self::new(5, 7, 2);
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CrateDB version (expected MAJOR.MINOR.PATCH)")]
pub struct VersionError(pub String);

impl FromStr for ServerVersion {
    type Err = VersionError;

    /// Accepts `5.10.3`, `5.10.3-SNAPSHOT`, `5.10` and image tags such as `nightly-5.11.0-2024-01-01`:
    /// the first run of dot-separated numbers is the version.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionError(s.to_string());
        let start = s.find(|c: char| c.is_ascii_digit()).ok_or_else(err)?;
        let numbers: Vec<u32> = s[start..]
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .next()
            .unwrap_or_default()
            .split('.')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u32>().map_err(|_| err()))
            .collect::<Result<_, _>>()?;
        match numbers.as_slice() {
            [major, minor] => Ok(Self::new(*major, *minor, 0)),
            [major, minor, patch, ..] => Ok(Self::new(*major, *minor, *patch)),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_tags() {
        let cases = [
            ("5.10.3", ServerVersion::new(5, 10, 3)),
            ("5.6.0-SNAPSHOT", ServerVersion::new(5, 6, 0)),
            ("5.10", ServerVersion::new(5, 10, 0)),
            ("nightly-5.11.0-2024-01-01", ServerVersion::new(5, 11, 0)),
            ("4.8.4.1", ServerVersion::new(4, 8, 4)),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<ServerVersion>().unwrap(), expected, "{input}");
        }
        for bad in ["", "latest", "5", "x.y.z"] {
            assert!(bad.parse::<ServerVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn orders_numerically() {
        assert!(ServerVersion::new(5, 10, 0) > ServerVersion::new(5, 6, 0));
        assert!(ServerVersion::new(5, 5, 9) < ServerVersion::USERMANAGEMENT_SECTION);
    }
}
