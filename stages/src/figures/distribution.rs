//! The chapter's first look at a dataset: how often each class occurs, as a horizontal bar chart
//! (pandas' `value_counts(ascending=True).plot.barh()`), and a numeric quantity per class as box
//! plots (`df.boxplot(column, by=label, showfliers=False)`: boxes from the first to the third
//! quartile, the median, whiskers to the furthest value within 1.5 IQR, no outliers).

use std::path::Path;

use plotters::prelude::*;

use crate::api::StageError;
use crate::figures::{FONT, draw_err, register_font};

const BAR: RGBColor = RGBColor(31, 119, 180);

/// The label of a category axis: category `i` sits at coordinate `i`; other ticks stay blank.
fn category_names(names: Vec<String>) -> impl Fn(&f64) -> String {
    move |at: &f64| {
        let i = at.round();
        match (i - at).abs() < 1e-6 && i >= 0.0 {
            true => names.get(i as usize).cloned().unwrap_or_default(),
            false => String::new(),
        }
    }
}

/// Horizontal bars, one per class, the least frequent at the bottom; 800 × 60 + 36 per class.
pub fn class_bars(path: &Path, title: &str, counts: &[(String, usize)]) -> Result<(), StageError> {
    let mut sorted: Vec<&(String, usize)> = counts.iter().collect();
    sorted.sort_by_key(|(name, n)| (*n, name.clone()));
    register_font();
    let height = 120 + 36 * sorted.len() as u32;
    let root = BitMapBackend::new(path, (800, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let most = sorted.last().map_or(1, |(_, n)| (*n).max(1)) as f64;
    let label_width = sorted
        .iter()
        .map(|(name, _)| name.chars().count() as u32 * 9 + 16)
        .max()
        .unwrap_or(40);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0.0..most * 1.08, -0.5..sorted.len() as f64 - 0.5)
        .map_err(|e| draw_err(path, e))?;
    let name_at = category_names(sorted.iter().map(|(name, _)| name.clone()).collect());
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(sorted.len().max(1) * 2 + 1)
        .y_label_formatter(&name_at)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("count")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .bold_line_style(RGBColor(225, 225, 225))
        .max_light_lines(0)
        .draw()
        .map_err(|e| draw_err(path, e))?;
    chart
        .draw_series(sorted.iter().enumerate().map(|(i, (_, n))| {
            let y = i as f64;
            Rectangle::new([(0.0, y - 0.35), (*n as f64, y + 0.35)], BAR.filled())
        }))
        .map_err(|e| draw_err(path, e))?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// The five numbers a box shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxStats {
    pub whisker_low: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub whisker_high: f64,
}

impl BoxStats {
    /// Quartiles by linear interpolation (numpy's default, as matplotlib uses); whiskers at the
    /// furthest values within 1.5 IQR of the box. `None` for no values.
    pub fn of(values: &[f64]) -> Option<BoxStats> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let quantile = |q: f64| {
            let at = q * (v.len() - 1) as f64;
            let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (at - lo as f64)
        };
        let (q1, median, q3) = (quantile(0.25), quantile(0.5), quantile(0.75));
        let reach = 1.5 * (q3 - q1);
        let whisker_low = v.iter().copied().find(|&x| x >= q1 - reach).unwrap_or(q1);
        let whisker_high = v
            .iter()
            .rev()
            .copied()
            .find(|&x| x <= q3 + reach)
            .unwrap_or(q3);
        Some(BoxStats {
            whisker_low,
            q1,
            median,
            q3,
            whisker_high,
        })
    }
}

/// One box per group, left to right in the given order; 800 × 500.
pub fn box_plot(
    path: &Path,
    title: &str,
    y_label: &str,
    groups: &[(String, BoxStats)],
) -> Result<(), StageError> {
    register_font();
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let top = groups
        .iter()
        .map(|(_, b)| b.whisker_high)
        .fold(1.0f64, f64::max);
    let bottom = groups
        .iter()
        .map(|(_, b)| b.whisker_low)
        .fold(top, f64::min)
        .min(0.0);
    let name_at = category_names(groups.iter().map(|(name, _)| name.clone()).collect());
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..groups.len() as f64 - 0.5, bottom..top * 1.08)
        .map_err(|e| draw_err(path, e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len().max(1) * 2 + 1)
        .x_label_formatter(&name_at)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc(y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .bold_line_style(RGBColor(225, 225, 225))
        .max_light_lines(0)
        .draw()
        .map_err(|e| draw_err(path, e))?;
    let ink = BLACK.stroke_width(1);
    for (i, (_, b)) in groups.iter().enumerate() {
        let x = i as f64;
        let (half, cap) = (0.25, 0.12);
        let lines = [
            vec![
                (x - half, b.q1),
                (x + half, b.q1),
                (x + half, b.q3),
                (x - half, b.q3),
                (x - half, b.q1),
            ],
            vec![(x, b.q1), (x, b.whisker_low)],
            vec![(x, b.q3), (x, b.whisker_high)],
            vec![(x - cap, b.whisker_low), (x + cap, b.whisker_low)],
            vec![(x - cap, b.whisker_high), (x + cap, b.whisker_high)],
        ];
        chart
            .draw_series(lines.into_iter().map(|l| PathElement::new(l, ink)))
            .map_err(|e| draw_err(path, e))?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x - half, b.median), (x + half, b.median)],
                RGBColor(44, 160, 44).stroke_width(2),
            )))
            .map_err(|e| draw_err(path, e))?;
    }
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy: np.percentile([1..9, 30], [25, 50, 75]) = 3.25, 5.5, 7.75; 30 is beyond
    /// 7.75 + 1.5 × 4.5 = 14.5, so the upper whisker stops at 9.
    #[test]
    fn box_stats_match_numpy_and_matplotlib() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 30.0];
        let b = BoxStats::of(&v).unwrap();
        assert_eq!((b.q1, b.median, b.q3), (3.25, 5.5, 7.75));
        assert_eq!((b.whisker_low, b.whisker_high), (1.0, 9.0));
        assert_eq!(BoxStats::of(&[]), None);
    }

    #[test]
    fn both_figures_are_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let bars = dir.path().join("bars.png");
        let counts = [("joy".to_string(), 5362), ("surprise".to_string(), 572)];
        class_bars(&bars, "Frequency of Classes", &counts).unwrap();
        let boxes = dir.path().join("boxes.png");
        let groups = [("joy".to_string(), BoxStats::of(&[3.0, 9.0, 20.0]).unwrap())];
        box_plot(&boxes, "Words Per Tweet", "words", &groups).unwrap();
        for f in [bars, boxes] {
            assert_eq!(&std::fs::read(f).unwrap()[..4], b"\x89PNG");
        }
    }
}
