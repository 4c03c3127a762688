//! How long to wait between two looks at something that takes its time (a running restore,
//! running backups): a second at first, then a fifth of the time waited so far, up to the
//! configured interval (SPEC A28). A restore that ends after 5 s is seen within a second; a
//! day-long one is looked at every interval, with about 20 more looks in its first minutes
//! than a fixed interval would make. Pure.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollSchedule {
    first: Duration,
    ceiling: Duration,
}

impl PollSchedule {
    /// `ceiling` wins over `first` when it is shorter (tests poll every few milliseconds).
    pub fn new(first: Duration, ceiling: Duration) -> Self {
        Self {
            first: first.min(ceiling),
            ceiling,
        }
    }

    /// The wait before the next look, after `waited` since the wait began.
    pub fn delay(&self, waited: Duration) -> Duration {
        (waited / 5).clamp(self.first, self.ceiling)
    }

    /// How many looks a wait of `total` takes (the first look at once).
    pub fn looks_within(&self, total: Duration) -> u64 {
        let mut waited = Duration::ZERO;
        let mut looks = 1;
        while waited < total {
            waited += self.delay(waited).max(Duration::from_millis(1));
            looks += 1;
        }
        looks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn starts_at_a_second_and_backs_off_to_the_ceiling() {
        let schedule = PollSchedule::new(s(1.0), s(15.0));
        assert_eq!(schedule.delay(Duration::ZERO), s(1.0));
        assert_eq!(schedule.delay(s(4.0)), s(1.0));
        assert_eq!(schedule.delay(s(10.0)), s(2.0));
        assert_eq!(schedule.delay(s(60.0)), s(12.0));
        assert_eq!(schedule.delay(s(3600.0)), s(15.0));
        // A ceiling below the floor wins.
        assert_eq!(
            PollSchedule::new(s(1.0), s(0.005)).delay(s(100.0)),
            s(0.005)
        );
    }

    #[test]
    fn a_five_second_restore_is_seen_within_a_second_of_its_end() {
        let schedule = PollSchedule::new(s(1.0), s(15.0));
        let mut at = Duration::ZERO;
        while at < s(5.0) {
            at += schedule.delay(at);
        }
        assert!(at - s(5.0) <= s(1.0), "seen at {at:?}");
    }

    #[test]
    fn a_day_long_restore_looks_at_most_a_few_percent_more_often() {
        let adaptive = PollSchedule::new(s(1.0), s(15.0)).looks_within(s(86_400.0));
        let fixed = 86_400 / 15 + 1;
        let extra = adaptive as f64 / fixed as f64 - 1.0;
        assert!(
            extra < 0.01,
            "{adaptive} looks against {fixed}: {:.2} %",
            extra * 100.0
        );
        assert!(adaptive > fixed, "{adaptive}");
    }
}
