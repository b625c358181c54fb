//! Times and durations as the pages print them.

use std::time::Duration;

/// `YYYY-MM-DD HH:MM:SS UTC` of an epoch second (`-` for a time that is not finite or out
/// of years 1970..=9999).
pub(crate) fn utc(secs: f64) -> String {
    if !secs.is_finite() || !(0.0..253_402_300_800.0).contains(&secs) {
        return "-".to_owned();
    }
    // In range (checked above), so the cast neither truncates nor wraps.
    let secs = secs as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `HH:MM` (UTC) of an epoch second, for chart labels.
pub(crate) fn hour_minute(secs: f64) -> String {
    utc(secs).get(11..16).unwrap_or("-").to_owned()
}

/// Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small and positive by construction (1..=31, 1..=12).
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A short duration: `850ms`, `42s`, `3m 5s`, `2h 10m`, `3d 4h`.
pub(crate) fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// How long ago `then` was at `now` (both epoch seconds), or how far ahead (`in 3m 5s`).
pub(crate) fn relative(then: f64, now: f64) -> String {
    let delta = now - then;
    match Duration::try_from_secs_f64(delta.abs()) {
        Ok(d) if delta >= 0.0 => format!("{} ago", short(d)),
        Ok(d) => format!("in {}", short(d)),
        Err(_) => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_709_208_000.5), "2024-02-29 12:00:00 UTC");
        assert_eq!(utc(f64::NAN), "-");
        assert_eq!(hour_minute(1_709_208_060.0), "12:01");
        assert_eq!(short(Duration::from_secs(3725)), "1h 2m");
        assert_eq!(relative(100.0, 160.0), "1m 0s ago");
        assert_eq!(relative(160.0, 100.0), "in 1m 0s");
    }
}
