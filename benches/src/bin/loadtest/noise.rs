//! How noisy the machine was during each phase: CPU steal and busy time from `/proc/stat`.
//!
//! On shared hosts another tenant can take half the CPU (steal), and a phase measured then
//! says nothing about the code. Each phase records both; one with more than
//! [`UNRELIABLE_STEAL_PCT`] steal is flagged, so that nobody quotes it.

use serde_json::{Value, json};

use crate::report::round;

/// Steal above which a phase's figures are flagged unreliable.
pub(crate) const UNRELIABLE_STEAL_PCT: f64 = 5.0;

/// The machine's CPU counters (all CPUs, in clock ticks) at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuTicks {
    total: u64,
    idle: u64,
    steal: u64,
}

impl CpuTicks {
    /// Reads the `cpu` line of `/proc/stat`; zeros where it cannot (not Linux), which reads
    /// as "unknown" below.
    pub(crate) fn now() -> Self {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().next().map(Self::parse))
            .unwrap_or_default()
    }

    /// Parses `cpu user nice system idle iowait irq softirq steal guest guest_nice`.
    fn parse(line: &str) -> Self {
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let at = |i: usize| fields.get(i).copied().unwrap_or(0);
        // guest and guest_nice are already counted in user and nice.
        let total = (0..8).map(at).sum();
        Self {
            total,
            idle: at(3) + at(4),
            steal: at(7),
        }
    }
}

/// The noise of one phase.
#[derive(Debug, Clone)]
pub(crate) struct PhaseNoise {
    pub(crate) name: &'static str,
    pub(crate) seconds: f64,
    /// Share of all CPU time stolen by the hypervisor, in percent (`None`: unknown).
    pub(crate) steal_pct: Option<f64>,
    /// Share of all CPU time not idle (this run's processes, Redis and everyone else).
    pub(crate) busy_pct: Option<f64>,
}

impl PhaseNoise {
    pub(crate) fn between(name: &'static str, seconds: f64, a: CpuTicks, b: CpuTicks) -> Self {
        let total = b.total.saturating_sub(a.total);
        let pct = |n: u64| (total > 0).then(|| 100.0 * n as f64 / total as f64);
        Self {
            name,
            seconds,
            steal_pct: pct(b.steal.saturating_sub(a.steal)),
            busy_pct: pct(total.saturating_sub(b.idle.saturating_sub(a.idle))),
        }
    }

    pub(crate) fn unreliable(&self) -> bool {
        self.steal_pct.is_some_and(|s| s > UNRELIABLE_STEAL_PCT)
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "seconds": round(self.seconds, 3),
            "steal_pct": self.steal_pct.map(|s| round(s, 2)),
            "busy_pct": self.busy_pct.map(|s| round(s, 1)),
            "unreliable": self.unreliable(),
        })
    }
}

/// Times `phase` and the machine's noise around it.
pub(crate) async fn measured<T>(
    name: &'static str,
    noise: &mut Vec<PhaseNoise>,
    phase: impl Future<Output = T>,
) -> T {
    let before = CpuTicks::now();
    let start = std::time::Instant::now();
    let out = phase.await;
    let seconds = start.elapsed().as_secs_f64();
    noise.push(PhaseNoise::between(name, seconds, before, CpuTicks::now()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_and_busy_shares_come_from_the_deltas() {
        let a = CpuTicks::parse("cpu  100 0 50 800 50 0 0 0 0 0");
        let b = CpuTicks::parse("cpu  200 0 100 900 50 0 0 150 0 0");
        // Δtotal = 100 + 50 + 100 + 150 = 400; Δsteal 150; Δidle 100.
        let n = PhaseNoise::between("x", 1.0, a, b);
        assert_eq!(n.steal_pct, Some(37.5));
        assert_eq!(n.busy_pct, Some(75.0));
        assert!(n.unreliable());
        let quiet = PhaseNoise::between("x", 1.0, a, a);
        assert_eq!(quiet.steal_pct, None);
        assert!(!quiet.unreliable());
    }
}
