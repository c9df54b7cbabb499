//! The confusion-matrix heatmap `evaluate` draws, like scikit-learn's
//! `ConfusionMatrixDisplay(...).plot(cmap="Blues")`: cells shaded by their fraction and labelled
//! with it, true labels down, predicted labels across, and a colour bar.

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

/// A row-normalised confusion matrix as a heatmap, like the chapter's
/// `ConfusionMatrixDisplay(cm, display_labels=labels).plot(cmap="Blues", values_format=".2f")`:
/// rows are true labels, columns predicted labels, each cell shows its fraction.
pub fn confusion_heatmap(
    path: &Path,
    matrix: &[Vec<f64>],
    names: &[String],
    title: &str,
) -> Result<(), StageError> {
    register_font();
    let at = Layout::new(names);
    let root = BitMapBackend::new(path, at.size()).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let canvas = Canvas { root: &root, path };
    canvas.text(
        title,
        (at.left + at.side() / 2, 22),
        font(19.0, HPos::Center, VPos::Center),
    )?;
    draw_cells(&canvas, &at, matrix)?;
    draw_labels(&canvas, &at, names)?;
    draw_colour_bar(&canvas, &at)?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// Where things go, in pixels.
struct Layout {
    /// Classes (the matrix is k × k).
    k: i32,
    /// A cell's side.
    cell: i32,
    /// The matrix's left edge (after the longest true label).
    left: i32,
    /// The matrix's top edge (under the title).
    top: i32,
}

impl Layout {
    /// Room for the colour bar and its ticks, right of the matrix.
    const BAR: i32 = 70;
    /// Room for the predicted labels and the axis title, under the matrix.
    const BOTTOM: i32 = 90;

    fn new(names: &[String]) -> Layout {
        let label_chars = names.iter().map(|n| n.chars().count()).max().unwrap_or(1) as i32;
        Layout {
            k: names.len() as i32,
            cell: 84,
            left: 40 + label_chars * 9,
            top: 64,
        }
    }

    /// The matrix's side.
    fn side(&self) -> i32 {
        self.cell * self.k
    }

    /// The image's width and height.
    fn size(&self) -> (u32, u32) {
        let width = self.left + self.side() + Self::BAR + 20;
        let height = self.top + self.side() + Self::BOTTOM;
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
fn draw_cells(canvas: &Canvas, at: &Layout, matrix: &[Vec<f64>]) -> Result<(), StageError> {
    let cell = at.cell;
    for (t, row) in matrix.iter().enumerate() {
        for (p, &v) in row.iter().enumerate() {
            let (x0, y0) = (at.left + cell * p as i32, at.top + cell * t as i32);
            canvas.rect([(x0, y0), (x0 + cell, y0 + cell)], blues(v).filled())?;
            let colour = if v > 0.5 { WHITE } else { BLACK };
            canvas.text(
                &format!("{v:.2}"),
                (x0 + cell / 2, y0 + cell / 2),
                font(16.0, HPos::Center, VPos::Center).color(&colour),
            )?;
        }
    }
    let (left, top, side) = (at.left, at.top, at.side());
    canvas.rect(
        [(left, top), (left + side, top + side)],
        BLACK.stroke_width(1),
    )
}

/// The class names down the left and along the bottom, and the two axis titles.
fn draw_labels(canvas: &Canvas, at: &Layout, names: &[String]) -> Result<(), StageError> {
    let (left, top, side) = (at.left, at.top, at.side());
    for (i, name) in names.iter().enumerate() {
        let mid = at.cell * i as i32 + at.cell / 2;
        canvas.text(
            name,
            (left - 8, top + mid),
            font(14.0, HPos::Right, VPos::Center),
        )?;
        canvas.text(
            name,
            (left + mid, top + side + 8),
            font(14.0, HPos::Center, VPos::Top),
        )?;
    }
    canvas.text(
        "Predicted label",
        (left + side / 2, top + side + 46),
        font(16.0, HPos::Center, VPos::Top),
    )?;
    canvas.text(
        "True label",
        (left - 8, top - 10),
        font(16.0, HPos::Right, VPos::Bottom),
    )
}

/// The colour bar from 0 (bottom) to 1 (top), framed, with ticks at 0, 0.5 and 1.
fn draw_colour_bar(canvas: &Canvas, at: &Layout) -> Result<(), StageError> {
    let top = at.top;
    let (bx, bw, bh) = (at.left + at.side() + 20, 18, at.side());
    for y in 0..bh {
        let v = 1.0 - y as f64 / (bh - 1).max(1) as f64;
        canvas.rect([(bx, top + y), (bx + bw, top + y + 1)], blues(v).filled())?;
    }
    canvas.rect([(bx, top), (bx + bw, top + bh)], BLACK.stroke_width(1))?;
    for (v, label) in [(0.0, "0.0"), (0.5, "0.5"), (1.0, "1.0")] {
        let y = top + ((1.0 - v) * (bh - 1) as f64).round() as i32;
        canvas.text(
            label,
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
}
