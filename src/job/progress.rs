//! Measuring restore progress (SPEC A20; the model is [`crate::progress::Progress`]): CrateDB
//! sums the primary shards of the restored relations in one row ([`ShardTotals`]), so a poll
//! reads the same one row at 10 tables and at 10,000, and this turns it into percent, throughput
//! and ETA. A shard whose `recovery` is still NULL counts as nothing recovered of an unknown
//! size. Pure.

use crate::{cratedb::queries::ShardTotals, progress::Progress};

pub fn measure(totals: &ShardTotals) -> Progress {
    let total_bytes = totals.used_bytes.max(0);
    let recovered_bytes = totals.recovered_bytes.clamp(0, total_bytes);
    let percent = if total_bytes > 0 {
        (recovered_bytes as f64 * 100.0 / total_bytes as f64).min(100.0)
    } else if totals.shards > 0 && totals.started == totals.shards {
        100.0
    } else {
        0.0
    };
    Progress {
        percent,
        recovered_bytes,
        total_bytes,
        shards_total: totals.shards,
        shards_started: totals.started,
        bytes_per_second: None,
        eta_seconds: None,
    }
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

    fn totals(shards: usize, started: usize, used: i64, recovered: i64) -> ShardTotals {
        ShardTotals {
            shards,
            started,
            used_bytes: used,
            recovered_bytes: recovered,
        }
    }

    #[test]
    fn byte_weighted() {
        let p = measure(&totals(3, 1, 1000, 400));
        assert_eq!((p.recovered_bytes, p.total_bytes), (400, 1000));
        assert_eq!(p.percent, 40.0);
        assert_eq!((p.shards_started, p.shards_total), (1, 3));
        assert_eq!(p.whole_percent(), 40);
    }

    #[test]
    fn empty_tables_are_done_when_started() {
        assert_eq!(measure(&totals(1, 1, 0, 0)).percent, 100.0);
        assert_eq!(measure(&totals(1, 0, 0, 0)).percent, 0.0);
        assert_eq!(measure(&totals(0, 0, 0, 0)).percent, 0.0);
    }

    #[test]
    fn never_claims_100_before_every_shard_started_nor_more_than_was_there() {
        let p = measure(&totals(1, 0, 10, 12));
        assert_eq!(p.recovered_bytes, 10);
        assert_eq!(p.whole_percent(), 99);
    }

    #[test]
    fn rate_and_eta() {
        let before = measure(&totals(1, 0, 1000, 100));
        let now = measure(&totals(1, 0, 1000, 400));
        let p = with_rate(now, Some(&before), 3.0);
        assert_eq!(p.bytes_per_second, Some(100.0));
        assert_eq!(p.eta_seconds, Some(6));
    }
}
