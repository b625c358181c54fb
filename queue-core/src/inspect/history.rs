//! Processed and failed counts per UTC day (`Sidekiq::Stats::History`).

use redis::Value;

use super::{Inspector, counter};
use crate::error::Result;
use crate::timestamp::{Timestamp, utc_day};

/// Most days one history read covers: Sidekiq keeps five years of daily counters.
pub const MAX_HISTORY_DAYS: u32 = 5 * 365;

/// Seconds in a day (UTC days have no leap seconds in epoch time).
const DAY_SECS: f64 = 86_400.0;

/// Latest epoch second accepted as the history's last day (9999-12-31T23:59:59Z), so that
/// the calendar arithmetic stays far from overflow whatever time the caller passes.
const LAST_SECOND: f64 = 253_402_300_799.0;

/// The counters of one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayStats {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// Jobs processed that day (`stat:processed:DAY`; 0 when the key is missing).
    pub processed: u64,
    /// Failed executions that day (`stat:failed:DAY`; 0 when the key is missing).
    pub failed: u64,
}

/// The `days` UTC days ending with the day of `end`, newest first.
fn days_back(days: u32, end: Timestamp) -> Vec<String> {
    let end = end.as_secs_f64();
    let end = if end.is_finite() {
        end.clamp(0.0, LAST_SECOND)
    } else {
        0.0
    };
    (0..days.min(MAX_HISTORY_DAYS))
        .map(|back| utc_day(end - f64::from(back) * DAY_SECS))
        .collect()
}

impl Inspector<'_> {
    /// Processed and failed counts of the `days` UTC days ending with the day of `end`,
    /// newest first, like `Sidekiq::Stats::History.new(days, end).processed` / `.failed`.
    ///
    /// `days` is capped at [`MAX_HISTORY_DAYS`]; 0 gives an empty list without a round trip
    /// (Sidekiq raises instead). An `end` outside years 1970..=9999 is clamped to them. One round trip:
    /// two `MGET`s (the keys share a hash slot under a `{…}` prefix; with the empty prefix
    /// on Redis Cluster, `MGET` fails with `CROSSSLOT`, as Sidekiq's does).
    pub async fn history(&self, days: u32, end: Timestamp) -> Result<Vec<DayStats>> {
        if self.spread() {
            return self.spread_history(days, end).await;
        }
        let days = days_back(days, end);
        if days.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.client.keys();
        let processed: Vec<String> = days.iter().map(|d| keys.stat_processed_on(d)).collect();
        let failed: Vec<String> = days.iter().map(|d| keys.stat_failed_on(d)).collect();
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg(&processed).cmd("MGET").arg(&failed);
        let (p, f): (Vec<Value>, Vec<Value>) = self.query(&pipe).await?;
        days.into_iter()
            .enumerate()
            .map(|(i, day)| {
                let read = |values: &[Value], keys: &[String]| match (values.get(i), keys.get(i)) {
                    (Some(v), Some(k)) => counter(v, k),
                    _ => Ok(0),
                };
                Ok(DayStats {
                    processed: read(&p, &processed)?,
                    failed: read(&f, &failed)?,
                    day,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_run_back_across_month_and_year_ends() {
        let end = Timestamp::from_secs_f64(1_709_208_000.0); // 2024-02-29 12:00 UTC
        assert_eq!(
            days_back(3, end),
            ["2024-02-29", "2024-02-28", "2024-02-27"]
        );
        let new_year = Timestamp::from_secs_f64(1_704_067_200.0); // 2024-01-01 00:00 UTC
        assert_eq!(days_back(2, new_year), ["2024-01-01", "2023-12-31"]);
        assert!(days_back(0, end).is_empty());
        assert_eq!(days_back(u32::MAX, end).len(), MAX_HISTORY_DAYS as usize);
    }

    #[test]
    fn out_of_range_ends_do_not_overflow() {
        assert_eq!(
            days_back(1, Timestamp::from_secs_f64(f64::NAN)),
            ["1970-01-01"]
        );
        assert_eq!(
            days_back(1, Timestamp::from_secs_f64(-5e18)),
            ["1970-01-01"]
        );
        assert_eq!(
            days_back(1, Timestamp::from_secs_f64(1e300)),
            ["9999-12-31"]
        );
        assert_eq!(days_back(2, Timestamp::from_secs_f64(0.0))[1], "1969-12-31");
    }
}
