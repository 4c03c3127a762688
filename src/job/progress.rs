//! Restore progress (SPEC A20): recovered bytes over total bytes of every primary shard of the
//! planned relations, finished shards included. A shard whose `recovery` is still NULL counts
//! as nothing recovered of an unknown size. Pure.

use serde::{Deserialize, Serialize};

use crate::{cratedb::queries::ShardRow, sql::TableIdent};

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
}

/// `relations` empty means every shard counts (the plan had no relation list).
pub fn measure(shards: &[ShardRow], relations: &[TableIdent]) -> Progress {
    let planned: Vec<&ShardRow> = shards
        .iter()
        .filter(|s| relations.is_empty() || relations.contains(&s.table))
        .collect();
    let mut progress = Progress {
        shards_total: planned.len(),
        ..Default::default()
    };
    for shard in &planned {
        let used = shard.used_bytes.unwrap_or(0).max(0);
        let recovered = shard.recovered_bytes.unwrap_or(0).clamp(0, used);
        progress.total_bytes += used;
        progress.recovered_bytes += recovered;
        if shard.state == "STARTED" {
            progress.shards_started += 1;
        }
    }
    progress.percent = if progress.total_bytes > 0 {
        (progress.recovered_bytes as f64 * 100.0 / progress.total_bytes as f64).min(100.0)
    } else if progress.shards_total > 0 && progress.shards_started == progress.shards_total {
        100.0
    } else {
        0.0
    };
    progress
}

/// Adds throughput and ETA from the previous sample taken `seconds` earlier.
pub fn with_rate(mut current: Progress, previous: Option<&Progress>, seconds: f64) -> Progress {
    if let Some(prev) = previous
        && seconds > 0.0
    {
        let delta = (current.recovered_bytes - prev.recovered_bytes).max(0) as f64;
        let rate = delta / seconds;
        current.bytes_per_second = Some(rate);
        let remaining = (current.total_bytes - current.recovered_bytes).max(0) as f64;
        current.eta_seconds = (rate > 0.0).then(|| (remaining / rate).ceil() as u64);
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(table: &str, state: &str, used: Option<i64>, recovered: Option<i64>) -> ShardRow {
        ShardRow {
            table: TableIdent::parse(table).unwrap(),
            partition_ident: String::new(),
            id: 0,
            state: state.into(),
            used_bytes: used,
            recovered_bytes: recovered,
        }
    }

    #[test]
    fn byte_weighted_and_null_safe() {
        let shards = [
            shard("doc.big", "RECOVERING", Some(900), Some(300)),
            shard("doc.small", "STARTED", Some(100), Some(100)),
            shard("doc.big", "UNASSIGNED", None, None),
            shard("doc.other", "RECOVERING", Some(1_000_000), Some(0)),
        ];
        let planned = [
            TableIdent::parse("doc.big").unwrap(),
            TableIdent::parse("doc.small").unwrap(),
        ];
        let p = measure(&shards, &planned);
        assert_eq!((p.recovered_bytes, p.total_bytes), (400, 1000));
        assert_eq!(p.percent, 40.0);
        assert_eq!((p.shards_started, p.shards_total), (1, 3));
        assert_eq!(p.whole_percent(), 40);
    }

    #[test]
    fn empty_tables_are_done_when_started() {
        let p = measure(&[shard("doc.e", "STARTED", Some(0), Some(0))], &[]);
        assert_eq!(p.percent, 100.0);
        let p = measure(&[shard("doc.e", "INITIALIZING", None, None)], &[]);
        assert_eq!(p.percent, 0.0);
        assert_eq!(measure(&[], &[]).percent, 0.0);
    }

    #[test]
    fn never_claims_100_before_every_shard_started() {
        let p = measure(&[shard("doc.a", "RECOVERING", Some(10), Some(10))], &[]);
        assert_eq!(p.whole_percent(), 99);
    }

    #[test]
    fn rate_and_eta() {
        let before = measure(&[shard("doc.a", "RECOVERING", Some(1000), Some(100))], &[]);
        let now = measure(&[shard("doc.a", "RECOVERING", Some(1000), Some(400))], &[]);
        let p = with_rate(now, Some(&before), 3.0);
        assert_eq!(p.bytes_per_second, Some(100.0));
        assert_eq!(p.eta_seconds, Some(6));
    }
}
