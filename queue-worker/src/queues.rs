//! Which queues a worker takes jobs from, and in which order.

use queue_core::validate_queue_name;

use crate::error::{Error, Result};

/// The queues to work on: strict priority, or weighted random order like Sidekiq's.
///
/// ```
/// use queue_worker::Queues;
/// let strict = Queues::parse("critical,default").unwrap();
/// assert_eq!(strict.order(), vec!["critical", "default"]);
/// let weighted = Queues::parse("critical:3,default:1").unwrap();
/// assert!(weighted.is_weighted());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues {
    entries: Vec<(String, u32)>,
    weighted: bool,
}

impl Queues {
    /// Strict priority: always try `names` in this order.
    pub fn strict<S: AsRef<str>>(names: &[S]) -> Result<Self> {
        let entries = names
            .iter()
            .map(|n| {
                validate_queue_name(n.as_ref())?;
                Ok((n.as_ref().to_owned(), 1))
            })
            .collect::<Result<Vec<_>>>()?;
        Self::build(entries, false)
    }

    /// Weighted: each fetch tries the queues in a random order in which a queue of weight 3
    /// comes first three times as often as one of weight 1; none is starved.
    pub fn weighted<S: AsRef<str>>(entries: &[(S, u32)]) -> Result<Self> {
        let entries = entries
            .iter()
            .map(|(n, w)| {
                validate_queue_name(n.as_ref())?;
                Ok((n.as_ref().to_owned(), (*w).max(1)))
            })
            .collect::<Result<Vec<_>>>()?;
        Self::build(entries, true)
    }

    fn build(entries: Vec<(String, u32)>, weighted: bool) -> Result<Self> {
        if entries.is_empty() {
            return Err(Error::NoQueues);
        }
        Ok(Self { entries, weighted })
    }

    /// Parses `WORKER_QUEUES`: `a,b` is strict; any `name:weight` makes it weighted.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut entries = Vec::new();
        let mut weighted = false;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = match part.split_once(':') {
                Some((n, w)) => {
                    weighted = true;
                    let w = w.parse::<u32>().map_err(|_| Error::InvalidSetting {
                        name: "WORKER_QUEUES",
                        reason: format!("weight of {n:?} is not a number"),
                    })?;
                    (n, w)
                }
                None => (part, 1),
            };
            validate_queue_name(name)?;
            entries.push((name.to_owned(), weight.max(1)));
        }
        Self::build(entries, weighted)
    }

    /// Whether the order is weighted random rather than strict.
    pub fn is_weighted(&self) -> bool {
        self.weighted
    }

    /// Queue names, without weights.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The order to try the queues in for one fetch.
    pub fn order(&self) -> Vec<&str> {
        if !self.weighted {
            return self.names();
        }
        // Weighted sampling without replacement (Efraimidis-Spirakis keys).
        let mut keyed: Vec<(f64, &str)> = self
            .entries
            .iter()
            .map(|(n, w)| (fastrand::f64().powf(1.0 / f64::from(*w)), n.as_str()))
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
        keyed.into_iter().map(|(_, n)| n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_order_favours_heavy_queues_without_starving_light_ones() {
        let q = Queues::parse("critical:3,default:1").unwrap();
        let firsts = (0..4000).filter(|_| q.order()[0] == "critical").count();
        assert!((2700..3300).contains(&firsts), "{firsts}");
        assert_eq!(q.order().len(), 2);
    }

    #[test]
    fn bad_specs_are_rejected() {
        assert!(Queues::parse("").is_err());
        assert!(Queues::parse("a:x").is_err());
        assert!(Queues::parse("bad name").is_err());
    }
}
