//! The line chart `compare` draws, like matplotlib's `plot(x, y, marker="o")` per series plus
//! `axhline(y, linestyle="--")` per reference: a metric against a numeric x (a learning curve's
//! training-set size), on a linear or a logarithmic x axis, one colour per series with a legend.

use std::path::Path;

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::api::StageError;
use crate::figures::{FONT, draw_err, register_font};

/// matplotlib's `tab10` cycle: series take these in turn, then the references.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The most x ticks a logarithmic axis labels (it labels the points' own x values).
const MAX_X_TICKS: usize = 10;

/// One line: its name in the legend and its points, in the order to join them.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A horizontal dashed line at `value` across the chart, named in the legend.
pub struct Reference {
    pub name: String,
    pub value: f64,
}

/// What a line chart shows.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// A logarithmic x axis (every x must be > 0), ticked at the points' x values.
    pub log_x: bool,
    pub series: &'a [Series],
    pub references: &'a [Reference],
}

impl LineChart<'_> {
    /// Every point's x, ascending, each once.
    fn xs(&self) -> Vec<f64> {
        let mut xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        xs
    }

    /// The x axis's range, placed (x, or log2 x), with a margin so the end markers are whole.
    fn x_range(&self) -> (f64, f64) {
        let xs = self.xs();
        let (lo, hi) = match (xs.first(), xs.last()) {
            (Some(&lo), Some(&hi)) if self.log_x => (lo.log2(), hi.log2()),
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => (0.0, 1.0),
        };
        let pad = if hi > lo {
            0.05 * (hi - lo)
        } else {
            0.5_f64.max(lo.abs() * 0.1)
        };
        (lo - pad, hi + pad)
    }

    /// The y axis's range: every point and reference, with a margin.
    fn y_range(&self) -> (f64, f64) {
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(self.references.iter().map(|r| r.value));
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let pad = if hi > lo {
            0.08 * (hi - lo)
        } else {
            0.05_f64.max(lo.abs() * 0.05)
        };
        (lo - pad, hi + pad)
    }

    /// The x ticks: on a log axis the points' x values (every k-th when there are many), on a
    /// linear one round numbers.
    fn x_ticks(&self, placed: &RangedCoordf64) -> Vec<f64> {
        if self.log_x {
            let xs = self.xs();
            let every = xs.len().div_ceil(MAX_X_TICKS).max(1);
            return xs.into_iter().step_by(every).collect();
        }
        placed.key_points(MAX_X_TICKS)
    }

    /// The x axis: placed range, ticks, and how to place a value.
    fn x_axis(&self) -> XAxis {
        let (lo, hi) = self.x_range();
        let placed = RangedCoordf64::from(lo..hi);
        XAxis {
            log: self.log_x,
            ticks: self.x_ticks(&placed),
            placed,
        }
    }
}

/// A linear or base-2 logarithmic x axis over f64, with the ticks given (plotters' own log axis
/// ticks powers of ten, which a learning curve's sizes rarely are).
struct XAxis {
    log: bool,
    /// The axis over placed values (x, or log2 x).
    placed: RangedCoordf64,
    ticks: Vec<f64>,
}

impl XAxis {
    fn place(&self, x: f64) -> f64 {
        if self.log { x.log2() } else { x }
    }
}

impl Ranged for XAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, x: &f64, limit: (i32, i32)) -> i32 {
        self.placed.map(&self.place(*x), limit)
    }

    /// The ticks for labels and grid lines; no light lines between them.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        let placed = self.placed.range();
        if self.log {
            placed.start.exp2()..placed.end.exp2()
        } else {
            placed
        }
    }
}

impl ValueFormatter<f64> for XAxis {
    fn format_ext(&self, x: &f64) -> String {
        number(*x)
    }
}

/// The legend's corners, in the order preferred when they are equally free.
const CORNERS: [SeriesLabelPosition; 4] = [
    SeriesLabelPosition::LowerRight,
    SeriesLabelPosition::UpperLeft,
    SeriesLabelPosition::UpperRight,
    SeriesLabelPosition::LowerLeft,
];

impl LineChart<'_> {
    /// The corner whose legend-sized box covers the fewest markers and reference lines (as
    /// matplotlib's `loc="best"` does, roughly): the box is a third of the width and about 20
    /// pixels per entry of the plot's 400.
    fn legend_corner(&self) -> SeriesLabelPosition {
        let (x0, x1) = self.x_range();
        let (y0, y1) = self.y_range();
        let entries = (self.series.len() + self.references.len()) as f64;
        let height = ((entries * 20.0 + 16.0) / 400.0).min(0.9);
        let fraction = |v: f64, lo: f64, hi: f64| (v - lo) / (hi - lo);
        let place = |x: f64| if self.log_x { x.log2() } else { x };
        let points: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .map(|&(x, y)| (fraction(place(x), x0, x1), fraction(y, y0, y1)))
            .collect();
        let lines: Vec<f64> = self
            .references
            .iter()
            .map(|r| fraction(r.value, y0, y1))
            .collect();
        let covered = |corner: &SeriesLabelPosition| {
            let (right, upper) = match corner {
                SeriesLabelPosition::LowerRight => (true, false),
                SeriesLabelPosition::UpperLeft => (false, true),
                SeriesLabelPosition::UpperRight => (true, true),
                _ => (false, false),
            };
            let in_band = |y: f64| if upper { y > 1.0 - height } else { y < height };
            let in_column = |x: f64| if right { x > 2.0 / 3.0 } else { x < 1.0 / 3.0 };
            let markers = points.iter().filter(|p| in_column(p.0) && in_band(p.1));
            markers.count() + lines.iter().filter(|y| in_band(**y)).count()
        };
        let best = CORNERS.iter().min_by_key(|c| covered(c));
        best.cloned().unwrap_or(SeriesLabelPosition::LowerRight)
    }
}

/// `v` without float noise: 12 significant digits, trailing zeros dropped (`250`, `0.1`).
fn number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{}", if v == 0.0 { 0.0 } else { v });
    }
    let decimals = (11 - v.abs().log10().floor() as i32).clamp(0, 17) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Series `i`'s colour (references continue after the series).
fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Draws `chart` to `path` (800 × 500): axes with labels and a light grid, each series as a line
/// with round markers, each reference as a dashed line, and a legend in the lower right.
pub fn line_chart(path: &Path, chart: &LineChart) -> Result<(), StageError> {
    if let Some(x) = chart.xs().into_iter().find(|x| chart.log_x && *x <= 0.0) {
        return Err(StageError::failed(format!(
            "a logarithmic x axis needs x > 0, not {}",
            number(x)
        )));
    }
    register_font();
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let x_axis = chart.x_axis();
    let Range { start: x0, end: x1 } = x_axis.range();
    let (y0, y1) = chart.y_range();
    let mut plot = ChartBuilder::on(&root)
        .caption(chart.title, (FONT, 22))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x_axis, y0..y1)
        .map_err(|e| draw_err(path, e))?;
    plot.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .bold_line_style(RGBColor(225, 225, 225))
        .max_light_lines(0)
        .draw()
        .map_err(|e| draw_err(path, e))?;
    for (i, series) in chart.series.iter().enumerate() {
        let style = colour(i).stroke_width(2);
        let points = &series.points;
        plot.draw_series(std::iter::once(PathElement::new(points.clone(), style)))
            .map_err(|e| draw_err(path, e))?
            .label(&series.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        plot.draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, 4, colour(i).filled())),
        )
        .map_err(|e| draw_err(path, e))?;
    }
    for (j, reference) in chart.references.iter().enumerate() {
        let style = colour(chart.series.len() + j).stroke_width(2);
        let line = [(x0, reference.value), (x1, reference.value)];
        plot.draw_series(std::iter::once(DashedPathElement::new(line, 8, 5, style)))
            .map_err(|e| draw_err(path, e))?
            .label(&reference.name)
            .legend(move |(x, y)| DashedPathElement::new([(x, y), (x + 24, y)], 6, 3, style));
    }
    plot.configure_series_labels()
        .position(chart.legend_corner())
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw_err(path, e))?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use plotters::coord::ranged1d::BoldPoints;

    use super::*;

    fn curve(log_x: bool, references: &[Reference]) -> Vec<u8> {
        let series = [
            Series {
                name: "de".into(),
                points: vec![(250.0, 0.41), (500.0, 0.55), (1000.0, 0.68), (4000.0, 0.79)],
            },
            Series {
                name: "fr".into(),
                points: vec![(250.0, 0.35), (1000.0, 0.6)],
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.png");
        let chart = LineChart {
            title: "F1 vs training examples",
            x_label: "num_samples",
            y_label: "test.entity_f1",
            log_x,
            series: &series,
            references,
        };
        line_chart(&path, &chart).unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn numbers_are_printed_without_float_noise() {
        assert_eq!(number(250.0), "250");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(-1.5), "-1.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1e-7), "0.0000001");
        assert_eq!(number(2f64.powf(250f64.log2())), "250");
    }

    #[test]
    fn log_axes_are_ticked_at_the_points_x_values() {
        let series = [Series {
            name: "a".into(),
            points: vec![(250.0, 0.1), (1000.0, 0.2), (500.0, 0.3)],
        }];
        let chart = LineChart {
            title: "",
            x_label: "",
            y_label: "",
            log_x: true,
            series: &series,
            references: &[],
        };
        let axis = chart.x_axis();
        assert_eq!(axis.key_points(BoldPoints(10)), [250.0, 500.0, 1000.0]);
        assert!(axis.key_points(10usize).is_empty(), "no light lines");
        // log2 250 and log2 1000 are two units apart, widened by 5% of that each side: the
        // ends are 250 / 2^0.1 and 1000 * 2^0.1, and 500 sits in the middle.
        let Range { start, end } = axis.range();
        assert!((start - 250.0 / 0.1f64.exp2()).abs() < 1e-9, "{start}");
        assert!((end - 1000.0 * 0.1f64.exp2()).abs() < 1e-9, "{end}");
        assert_eq!(axis.map(&500.0, (0, 1200)), 600);
    }

    #[test]
    fn the_y_range_covers_points_and_references() {
        let series = [Series {
            name: "a".into(),
            points: vec![(1.0, 0.5), (2.0, 0.7)],
        }];
        let references = [Reference {
            name: "zero-shot".into(),
            value: 0.2,
        }];
        let chart = LineChart {
            title: "",
            x_label: "",
            y_label: "",
            log_x: false,
            series: &series,
            references: &references,
        };
        // 0.2 to 0.7, widened by 8% of 0.5 each side.
        let (lo, hi) = chart.y_range();
        assert!(
            (lo - 0.16).abs() < 1e-12 && (hi - 0.74).abs() < 1e-12,
            "{lo} {hi}"
        );
    }

    #[test]
    fn the_legend_goes_to_the_freest_corner() {
        let chart = |points: Vec<(f64, f64)>| {
            let series = [Series {
                name: "a".into(),
                points,
            }];
            let chart = LineChart {
                title: "",
                x_label: "",
                y_label: "",
                log_x: false,
                series: &series,
                references: &[],
            };
            chart.legend_corner()
        };
        // A rising curve leaves the lower right free; a falling one (a loss) the upper right.
        let rising = vec![(1.0, 0.1), (2.0, 0.5), (3.0, 0.9)];
        assert!(matches!(chart(rising), SeriesLabelPosition::LowerRight));
        let falling = vec![(1.0, 0.9), (2.0, 0.5), (3.0, 0.1)];
        assert!(matches!(chart(falling), SeriesLabelPosition::UpperRight));
    }

    #[test]
    fn charts_are_pngs_with_the_same_bytes_every_time() {
        let zero_shot = [Reference {
            name: "zero-shot".into(),
            value: 0.3,
        }];
        let log = curve(true, &zero_shot);
        assert_eq!(&log[1..4], b"PNG");
        assert_eq!(log, curve(true, &zero_shot));
        assert_ne!(log, curve(false, &zero_shot));
        assert_ne!(log, curve(true, &[]));
    }

    #[test]
    fn a_log_axis_refuses_x_at_or_below_zero() {
        let series = [Series {
            name: "a".into(),
            points: vec![(0.0, 0.5), (2.0, 0.7)],
        }];
        let chart = LineChart {
            title: "",
            x_label: "",
            y_label: "",
            log_x: true,
            series: &series,
            references: &[],
        };
        let dir = tempfile::tempdir().unwrap();
        let err = line_chart(&dir.path().join("x.png"), &chart).unwrap_err();
        assert_eq!(err.to_string(), "a logarithmic x axis needs x > 0, not 0");
    }
}
