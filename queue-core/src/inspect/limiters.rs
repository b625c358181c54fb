//! The rate limiters in use (`limiter_acquire.lua`), each with how much of it is taken now.

use super::Inspector;
use crate::error::Result;

/// One limiter, as last asked for and as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterInfo {
    /// Its name.
    pub name: String,
    /// `concurrent`, `window` or `bucket`.
    pub kind: String,
    /// Its limit, as last asked for.
    pub limit: u64,
    /// Window and bucket: the interval (ms); concurrent: a slot's lifetime (ms).
    pub span_ms: u64,
    /// Concurrent: slots held now; window: admissions in the last interval; bucket: 1 while
    /// the next admission must wait, else 0.
    pub in_use: u64,
}

impl Inspector<'_> {
    /// Every limiter in use, by name: two round trips (`HGETALL limiters` and `TIME`, then one
    /// `ZCOUNT` or `PTTL` per limiter).
    pub async fn limiters(&self) -> Result<Vec<LimiterInfo>> {
        let keys = self.client.keys();
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(keys.limiters()).cmd("TIME");
        let (all, (secs, micros)): (Vec<(String, String)>, (u64, u64)) = self.query(&pipe).await?;
        let now_ms = secs * 1000 + micros / 1000;
        let mut infos: Vec<LimiterInfo> = all
            .into_iter()
            .map(|(name, spec)| {
                let mut parts = spec.split(' ');
                let kind = parts.next().unwrap_or_default().to_owned();
                let limit = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                let span_ms = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                LimiterInfo {
                    name,
                    kind,
                    limit,
                    span_ms,
                    in_use: 0,
                }
            })
            .collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        if infos.is_empty() {
            return Ok(infos);
        }
        let mut pipe = redis::pipe();
        for info in &infos {
            let key = keys.limiter(&info.name);
            match info.kind.as_str() {
                // Concurrent slots are scored by their expiry, window admissions by their time.
                "concurrent" => pipe.cmd("ZCOUNT").arg(key).arg(now_ms).arg("+inf"),
                "window" => pipe
                    .cmd("ZCOUNT")
                    .arg(key)
                    .arg(now_ms.saturating_sub(info.span_ms))
                    .arg("+inf"),
                // A bucket's next admission time is its value; `EXISTS` tells if it waits.
                _ => pipe.cmd("EXISTS").arg(key),
            };
        }
        // A key of another type answers an error: shown as 0 rather than failing the list.
        let counts: Vec<redis::Value> = self.query(&pipe).await?;
        for (info, count) in infos.iter_mut().zip(counts) {
            info.in_use = redis::from_redis_value::<u64>(count).unwrap_or(0);
        }
        Ok(infos)
    }
}
