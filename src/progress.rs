//! Restore progress as `status.restore.progress` shows it (SPEC A20): recovered bytes over the
//! total bytes of every primary shard of the restored relations, with throughput and ETA. The
//! Job measures it; this is the model both the Job and the kubectl plugin read.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub percent: f64,
    pub recovered_bytes: i64,
    pub total_bytes: i64,
    pub shards_total: usize,
    pub shards_started: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
}

impl Progress {
    /// Whole percent for messages and notifications (never 100 before every shard started).
    pub fn whole_percent(&self) -> u32 {
        let pct = self.percent.floor() as u32;
        if pct >= 100 && self.shards_started < self.shards_total {
            99
        } else {
            pct.min(100)
        }
    }

    /// Whether a person reading the status would see a difference: the whole percent or the
    /// started shards (throughput and ETA move with every sample and do not count).
    pub fn visibly_differs(&self, other: &Progress) -> bool {
        self.whole_percent() != other.whole_percent()
            || self.shards_started != other.shards_started
            || self.shards_total != other.shards_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_claims_100_before_every_shard_started() {
        let p = Progress {
            percent: 100.0,
            shards_total: 2,
            shards_started: 1,
            ..Default::default()
        };
        assert_eq!(p.whole_percent(), 99);
        let done = Progress {
            shards_started: 2,
            ..p.clone()
        };
        assert_eq!(done.whole_percent(), 100);
        assert!(done.visibly_differs(&p));
        let faster = Progress {
            bytes_per_second: Some(5.0),
            eta_seconds: Some(3),
            ..p.clone()
        };
        assert!(!faster.visibly_differs(&p));
    }
}
