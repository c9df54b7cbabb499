//! Annotated heatmaps: the confusion matrix `evaluate` draws, like scikit-learn's
//! `ConfusionMatrixDisplay(...).plot(cmap="Blues")` (cells shaded by their fraction and labelled
//! with it, true labels down, predicted labels across, and a colour bar), and any other grid of
//! numbers drawn the same way, e.g. `compare`'s train × eval table ([`annotated_heatmap`]).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::api::StageError;
use crate::figures::colour_map::BLUES;
use crate::figures::{FONT, draw_err, register_font};

/// The heatmap's shades: matplotlib's Blues between five of its nine stops (what the figure was
/// first drawn with; its PNG is part of `evaluate`'s output digest).
fn blues(v: f64) -> RGBColor {
    BLUES.at(v, 5)
}

/// The shade of a cell without a value.
const NO_VALUE: RGBColor = RGBColor(224, 224, 224);

/// A row-normalised confusion matrix as a heatmap, like the chapter's
/// `ConfusionMatrixDisplay(cm, display_labels=labels).plot(cmap="Blues", values_format=".2f")`:
/// rows are true labels, columns predicted labels, each cell shows its fraction.
pub fn confusion_heatmap(
    path: &Path,
    matrix: &[Vec<f64>],
    names: &[String],
    title: &str,
) -> Result<(), StageError> {
    let cells = matrix
        .iter()
        .map(|row| row.iter().map(|&v| Some(v)).collect())
        .collect();
    annotated_heatmap(
        path,
        &Heatmap {
            title,
            cells,
            row_names: names,
            column_names: names,
            row_title: "True label",
            column_title: "Predicted label",
            range: (0.0, 1.0),
            cell_digits: 2,
            tick_digits: 1,
            cell_width: Layout::CELL,
        },
    )
}

/// A grid of numbers to draw as an annotated heatmap.
pub struct Heatmap<'a> {
    pub title: &'a str,
    /// One row per row name, one value (or none: a grey cell) per column name.
    pub cells: Vec<Vec<Option<f64>>>,
    pub row_names: &'a [String],
    pub column_names: &'a [String],
    /// Above the row names; empty: none.
    pub row_title: &'a str,
    /// Under the column names; empty: none.
    pub column_title: &'a str,
    /// The values of the palest and the darkest shade (values outside are clamped).
    pub range: (f64, f64),
    /// Decimals of the values in the cells and of the colour bar's ticks.
    pub cell_digits: usize,
    pub tick_digits: usize,
    /// A cell's width in pixels (its height is 84; the confusion matrix's cells are square):
    /// wider for long column names.
    pub cell_width: i32,
}

impl Heatmap<'_> {
    /// Where `v` falls in the range, 0 (palest) to 1 (darkest).
    fn shade(&self, v: f64) -> f64 {
        let (lo, hi) = self.range;
        if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }
    }
}

/// Draws `map` to `path`: each cell shaded by its value and labelled with it, the row names
/// down the left, the column names along the bottom, the two titles and a colour bar.
pub fn annotated_heatmap(path: &Path, map: &Heatmap) -> Result<(), StageError> {
    register_font();
    let at = Layout::new(map);
    let root = BitMapBackend::new(path, at.size()).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let canvas = Canvas { root: &root, path };
    canvas.text(
        map.title,
        (at.left + at.width() / 2, 22),
        font(19.0, HPos::Center, VPos::Center),
    )?;
    draw_cells(&canvas, &at, map)?;
    draw_labels(&canvas, &at, map)?;
    draw_colour_bar(&canvas, &at, map)?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// Where things go, in pixels.
struct Layout {
    rows: i32,
    columns: i32,
    /// A cell's width; its height is [`Layout::CELL`].
    cell_width: i32,
    /// The matrix's left edge (after the longest row name).
    left: i32,
    /// The matrix's top edge (under the title).
    top: i32,
}

impl Layout {
    /// A cell's height (and the confusion matrix's cells' width).
    const CELL: i32 = 84;
    /// Room for the colour bar and its ticks, right of the matrix.
    const BAR: i32 = 70;
    /// Room for the column names and the axis title, under the matrix.
    const BOTTOM: i32 = 90;

    fn new(map: &Heatmap) -> Layout {
        let label_chars = map
            .row_names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(1) as i32;
        Layout {
            rows: map.row_names.len() as i32,
            columns: map.column_names.len() as i32,
            cell_width: map.cell_width,
            left: 40 + label_chars * 9,
            top: 64,
        }
    }

    /// The matrix's width.
    fn width(&self) -> i32 {
        self.cell_width * self.columns
    }

    /// The matrix's height.
    fn height(&self) -> i32 {
        Self::CELL * self.rows
    }

    /// The image's width and height.
    fn size(&self) -> (u32, u32) {
        let width = self.left + self.width() + Self::BAR + 20;
        let height = self.top + self.height() + Self::BOTTOM;
        (width as u32, height as u32)
    }
}

/// The drawing area and its file (for errors).
struct Canvas<'a, 'b> {
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    path: &'a Path,
}

impl Canvas<'_, '_> {
    fn text(&self, s: &str, at: (i32, i32), style: TextStyle) -> Result<(), StageError> {
        self.root
            .draw(&Text::new(s.to_string(), at, style))
            .map_err(|e| draw_err(self.path, e))
    }

    fn rect(&self, corners: [(i32, i32); 2], style: ShapeStyle) -> Result<(), StageError> {
        self.root
            .draw(&Rectangle::new(corners, style))
            .map_err(|e| draw_err(self.path, e))
    }
}

fn font(size: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK).pos(Pos::new(h, v))
}

/// Each cell shaded by its value and labelled with it (white on dark shades), then a frame.
fn draw_cells(canvas: &Canvas, at: &Layout, map: &Heatmap) -> Result<(), StageError> {
    let (w, h) = (at.cell_width, Layout::CELL);
    for (r, row) in map.cells.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (x0, y0) = (at.left + w * c as i32, at.top + h * r as i32);
            let Some(v) = *v else {
                canvas.rect([(x0, y0), (x0 + w, y0 + h)], NO_VALUE.filled())?;
                continue;
            };
            let shade = map.shade(v);
            canvas.rect([(x0, y0), (x0 + w, y0 + h)], blues(shade).filled())?;
            let colour = if shade > 0.5 { WHITE } else { BLACK };
            canvas.text(
                &format!("{v:.*}", map.cell_digits),
                (x0 + w / 2, y0 + h / 2),
                font(16.0, HPos::Center, VPos::Center).color(&colour),
            )?;
        }
    }
    let (left, top) = (at.left, at.top);
    canvas.rect(
        [(left, top), (left + at.width(), top + at.height())],
        BLACK.stroke_width(1),
    )
}

/// The row names down the left and the column names along the bottom (in turn, as the
/// confusion matrix was first drawn), and the two axis titles.
fn draw_labels(canvas: &Canvas, at: &Layout, map: &Heatmap) -> Result<(), StageError> {
    let (left, top, bottom) = (at.left, at.top, at.top + at.height());
    for i in 0..map.row_names.len().max(map.column_names.len()) {
        if let Some(name) = map.row_names.get(i) {
            let mid = Layout::CELL * i as i32 + Layout::CELL / 2;
            canvas.text(
                name,
                (left - 8, top + mid),
                font(14.0, HPos::Right, VPos::Center),
            )?;
        }
        if let Some(name) = map.column_names.get(i) {
            let mid = at.cell_width * i as i32 + at.cell_width / 2;
            canvas.text(
                name,
                (left + mid, bottom + 8),
                font(14.0, HPos::Center, VPos::Top),
            )?;
        }
    }
    if !map.column_title.is_empty() {
        canvas.text(
            map.column_title,
            (left + at.width() / 2, bottom + 46),
            font(16.0, HPos::Center, VPos::Top),
        )?;
    }
    if !map.row_title.is_empty() {
        canvas.text(
            map.row_title,
            (left - 8, top - 10),
            font(16.0, HPos::Right, VPos::Bottom),
        )?;
    }
    Ok(())
}

/// The colour bar from the range's low end (bottom) to its high end (top), framed, with ticks
/// at both ends and the middle.
fn draw_colour_bar(canvas: &Canvas, at: &Layout, map: &Heatmap) -> Result<(), StageError> {
    let top = at.top;
    let (bx, bw, bh) = (at.left + at.width() + 20, 18, at.height());
    for y in 0..bh {
        let v = 1.0 - y as f64 / (bh - 1).max(1) as f64;
        canvas.rect([(bx, top + y), (bx + bw, top + y + 1)], blues(v).filled())?;
    }
    canvas.rect([(bx, top), (bx + bw, top + bh)], BLACK.stroke_width(1))?;
    let (lo, hi) = map.range;
    for t in [0.0, 0.5, 1.0] {
        let y = top + ((1.0 - t) * (bh - 1) as f64).round() as i32;
        canvas.text(
            &format!("{:.*}", map.tick_digits, lo + t * (hi - lo)),
            (bx + bw + 6, y),
            font(13.0, HPos::Left, VPos::Center),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blues_runs_from_white_to_dark_blue() {
        assert_eq!(blues(0.0), RGBColor(247, 251, 255));
        assert_eq!(blues(1.0), RGBColor(8, 48, 107));
        assert_eq!(blues(0.5), RGBColor(107, 174, 214));
        assert_eq!(blues(f64::NAN), blues(0.0));
    }

    #[test]
    fn heatmap_png_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cm.png");
        let names: Vec<String> = ["sadness", "joy", "surprise"].map(String::from).to_vec();
        let m = vec![
            vec![0.8, 0.15, 0.05],
            vec![0.1, 0.9, 0.0],
            vec![0.3, 0.3, 0.4],
        ];
        confusion_heatmap(&path, &m, &names, "Normalized confusion matrix").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }

    #[test]
    fn any_grid_is_drawn_with_its_own_shape_and_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.png");
        let rows: Vec<String> = ["de", "fr"].map(String::from).to_vec();
        let columns: Vec<String> = ["de", "fr", "en"].map(String::from).to_vec();
        let map = Heatmap {
            title: "F1",
            cells: vec![
                vec![Some(86.0), None, Some(70.0)],
                vec![Some(62.0), Some(80.0), None],
            ],
            row_names: &rows,
            column_names: &columns,
            row_title: "train",
            column_title: "eval",
            range: (62.0, 86.0),
            cell_digits: 0,
            tick_digits: 0,
            cell_width: 100,
        };
        assert_eq!(map.shade(74.0), 0.5);
        annotated_heatmap(&path, &map).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // The PNG header's width and height: left 40 + 2 × 9, three cells of 100, the bar
        // (70 + 20); top 64, two cells of 84, the bottom 90.
        let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (58 + 300 + 90, 64 + 168 + 90));
    }
}
