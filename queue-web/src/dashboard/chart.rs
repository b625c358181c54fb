//! Bar charts drawn on the server as inline SVG geometry (no script, nothing to load).

/// Width and height of the drawing area, in SVG user units (the SVG scales to its box).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;

/// One bar pair: processed (full height of the pair) and failed (drawn over it).
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub(crate) x: String,
    pub(crate) width: String,
    pub(crate) processed_y: String,
    pub(crate) processed_h: String,
    pub(crate) failed_y: String,
    pub(crate) failed_h: String,
    /// Tooltip: the label and both counts.
    pub(crate) title: String,
}

/// A chart of processed/failed counts per period, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    pub(crate) bars: Vec<Bar>,
    pub(crate) max: u64,
    pub(crate) first_label: String,
    pub(crate) last_label: String,
    pub(crate) processed: u64,
    pub(crate) failed: u64,
}

impl Chart {
    /// The chart of `points` (label, processed, failed), oldest first.
    pub(crate) fn new(points: &[(String, u64, u64)]) -> Self {
        let max = points.iter().map(|p| p.1.max(p.2)).max().unwrap_or(0);
        let slot = WIDTH / points.len().max(1) as f64;
        let scale = |v: u64| {
            if max == 0 {
                0.0
            } else {
                v as f64 / max as f64 * HEIGHT
            }
        };
        let bars = points
            .iter()
            .enumerate()
            .map(|(i, (label, processed, failed))| {
                let (ph, fh) = (scale(*processed), scale(*failed));
                Bar {
                    x: format!("{:.2}", i as f64 * slot + slot * 0.1),
                    width: format!("{:.2}", slot * 0.8),
                    processed_y: format!("{:.2}", HEIGHT - ph),
                    processed_h: format!("{ph:.2}"),
                    failed_y: format!("{:.2}", HEIGHT - fh),
                    failed_h: format!("{fh:.2}"),
                    title: format!("{label}: {processed} processed, {failed} failed"),
                }
            })
            .collect();
        Self {
            bars,
            max,
            first_label: points.first().map(|p| p.0.clone()).unwrap_or_default(),
            last_label: points.last().map(|p| p.0.clone()).unwrap_or_default(),
            processed: points.iter().map(|p| p.1).sum(),
            failed: points.iter().map(|p| p.2).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_count() {
        let c = Chart::new(&[("a".into(), 10, 5), ("b".into(), 0, 0)]);
        assert_eq!(c.max, 10);
        assert_eq!(c.bars[0].processed_h, "120.00");
        assert_eq!(c.bars[0].failed_h, "60.00");
        assert_eq!(c.bars[1].processed_h, "0.00");
        assert_eq!(Chart::new(&[]).bars.len(), 0);
    }
}
