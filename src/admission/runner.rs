//! Who performs an admitted restore (SPEC A27). `job`: this product's restore Job, created by
//! the validating webhook. `operator`: a stock CrateDB operator's own restore handler; the
//! webhooks then validate, preview and guard overlap, and create nothing. Each mode has its own
//! lock: this product's Lease and Jobs, or the operator's state (a restore is in progress while
//! the stored `restoreSnapshot.snapshot` is non-empty, until the operator resets it).

use std::{fmt, str::FromStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestoreRunner {
    #[default]
    Job,
    Operator,
}

impl RestoreRunner {
    pub const NAMES: [&'static str; 2] = ["job", "operator"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Job => "job",
            Self::Operator => "operator",
        }
    }
}

impl FromStr for RestoreRunner {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "job" => Ok(Self::Job),
            "operator" => Ok(Self::Operator),
            other => Err(format!(
                "{other:?} is not a restore runner; use {}",
                Self::NAMES.join(" or ")
            )),
        }
    }
}

impl fmt::Display for RestoreRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
