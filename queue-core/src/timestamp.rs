//! Epoch timestamps in both units Sidekiq has written.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Integers above this are taken as milliseconds (year 5138 in seconds; 1973 in ms).
const MILLIS_THRESHOLD: f64 = 1e11;

/// A point in time stored in a job payload.
///
/// Sidekiq 6 and 7 write float epoch seconds (`1760000000.123`); Sidekiq 8 writes integer
/// epoch milliseconds (`1760000000123`). Reading accepts both: a float is seconds, an
/// integer is milliseconds when it is too large to be seconds. We always **write float
/// epoch seconds**, which every Sidekiq version reads.
///
/// ```
/// use queue_core::Timestamp;
/// let s: Timestamp = serde_json::from_str("1760000000.5").unwrap();
/// let ms: Timestamp = serde_json::from_str("1760000000500").unwrap();
/// assert_eq!(s, ms);
/// assert_eq!(serde_json::to_string(&ms).unwrap(), "1760000000.5");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Timestamp(f64);

impl Timestamp {
    /// The current time of this machine's clock.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// From a [`SystemTime`].
    pub fn from_system_time(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Self(d.as_secs_f64())
    }

    /// From epoch seconds.
    pub fn from_secs_f64(secs: f64) -> Self {
        Self(secs)
    }

    /// Epoch seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0
    }

    /// As a [`SystemTime`]. Times before the epoch, `NaN`, and times this platform's
    /// `SystemTime` cannot hold (a crafted payload can say 10¹⁹ s) all read as the epoch.
    ///
    /// ```
    /// use queue_core::Timestamp;
    /// use std::time::UNIX_EPOCH;
    /// assert_eq!(Timestamp::from_secs_f64(1e19).to_system_time(), UNIX_EPOCH);
    /// ```
    pub fn to_system_time(self) -> SystemTime {
        Duration::try_from_secs_f64(self.0)
            .ok()
            .and_then(|d| UNIX_EPOCH.checked_add(d))
            .unwrap_or(UNIX_EPOCH)
    }
}

/// Days from the epoch beyond which [`utc_day`] stops counting (about 2.7 billion years).
const MAX_DAYS: i64 = 1_000_000_000_000;

/// The UTC calendar day of epoch second `secs` as `YYYY-MM-DD` (Sidekiq's daily stat keys).
///
/// ```
/// assert_eq!(queue_core::timestamp::utc_day(0.0), "1970-01-01");
/// assert_eq!(queue_core::timestamp::utc_day(1_709_208_000.0), "2024-02-29");
/// ```
pub fn utc_day(secs: f64) -> String {
    // Howard Hinnant's days-to-civil algorithm: exact for the proleptic Gregorian calendar.
    // `as` saturates (NaN is 0); the clamp keeps the arithmetic below inside i64 for any
    // input, since callers may pass times read from Redis.
    let days = ((secs / 86_400.0).floor() as i64).clamp(-MAX_DAYS, MAX_DAYS);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        if n.is_f64() {
            return Ok(Self(n.as_f64().unwrap_or_default()));
        }
        let v = n.as_f64().unwrap_or_default();
        Ok(Self(if v > MILLIS_THRESHOLD { v / 1000.0 } else { v }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_seconds_are_seconds() {
        let t: Timestamp = serde_json::from_str("1760000000").unwrap();
        assert_eq!(t.as_secs_f64(), 1_760_000_000.0);
    }

    #[test]
    fn out_of_range_times_do_not_panic() {
        for secs in [f64::NAN, f64::INFINITY, -f64::INFINITY, 1e300, -1e300, 1e19] {
            let _ = utc_day(secs);
            let _ = Timestamp::from_secs_f64(secs).to_system_time();
        }
        assert_eq!(utc_day(f64::NAN), "1970-01-01");
    }

    #[test]
    fn writes_full_precision_float_seconds() {
        let t = Timestamp::from_secs_f64(1_760_000_000.123_456);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1760000000.123456");
    }
}
