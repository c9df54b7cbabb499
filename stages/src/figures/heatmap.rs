//! Heatmaps as PNG files, drawn with `plotters` on its bitmap backend, with the font that
//! [`crate::figures::hexbin`] embeds (no system font library needed).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::api::StageError;

/// The family name figures use; [`register_font`] makes it available.
pub const FAMILY: &str = crate::figures::hexbin::FONT;

/// Registers the embedded font under [`FAMILY`] (once per process).
pub fn register_font() {
    crate::figures::hexbin::register_fonts();
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> StageError {
    StageError::failed(format!("drawing {}: {e}", path.display()))
}

/// matplotlib's "Blues" colour map at `v` in [0, 1] (linear between five of its stops).
pub fn blues(v: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 5] = [
        (247, 251, 255),
        (198, 219, 239),
        (107, 174, 214),
        (33, 113, 181),
        (8, 48, 107),
    ];
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let t = v * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
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
    let k = names.len();
    let cell: i32 = 84;
    let label_chars = names.iter().map(|n| n.chars().count()).max().unwrap_or(1) as i32;
    let left = 40 + label_chars * 9;
    let top = 64;
    let bar = 70; // colour bar and its ticks
    let bottom = 90;
    let width = left + cell * k as i32 + bar + 20;
    let height = top + cell * k as i32 + bottom;
    let root = BitMapBackend::new(path, (width as u32, height as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let font =
        |size: f64, h: HPos, v: VPos| (FAMILY, size).into_font().color(&BLACK).pos(Pos::new(h, v));
    let text = |s: &str, at: (i32, i32), style| {
        root.draw(&Text::new(s.to_string(), at, style))
            .map_err(|e| draw_err(path, e))
    };
    text(
        title,
        (left + cell * k as i32 / 2, 22),
        font(19.0, HPos::Center, VPos::Center),
    )?;
    for (t, row) in matrix.iter().enumerate() {
        for (p, &v) in row.iter().enumerate() {
            let (x0, y0) = (left + cell * p as i32, top + cell * t as i32);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                blues(v).filled(),
            ))
            .map_err(|e| draw_err(path, e))?;
            let colour = if v > 0.5 { WHITE } else { BLACK };
            root.draw(&Text::new(
                format!("{v:.2}"),
                (x0 + cell / 2, y0 + cell / 2),
                font(16.0, HPos::Center, VPos::Center).color(&colour),
            ))
            .map_err(|e| draw_err(path, e))?;
        }
    }
    root.draw(&Rectangle::new(
        [(left, top), (left + cell * k as i32, top + cell * k as i32)],
        BLACK.stroke_width(1),
    ))
    .map_err(|e| draw_err(path, e))?;
    for (i, name) in names.iter().enumerate() {
        let mid = cell * i as i32 + cell / 2;
        text(
            name,
            (left - 8, top + mid),
            font(14.0, HPos::Right, VPos::Center),
        )?;
        text(
            name,
            (left + mid, top + cell * k as i32 + 8),
            font(14.0, HPos::Center, VPos::Top),
        )?;
    }
    text(
        "Predicted label",
        (left + cell * k as i32 / 2, top + cell * k as i32 + 46),
        font(16.0, HPos::Center, VPos::Top),
    )?;
    text(
        "True label",
        (left - 8, top - 10),
        font(16.0, HPos::Right, VPos::Bottom),
    )?;
    // Colour bar from 0 (bottom) to 1 (top).
    let (bx, bw, bh) = (left + cell * k as i32 + 20, 18, cell * k as i32);
    for y in 0..bh {
        let v = 1.0 - y as f64 / (bh - 1).max(1) as f64;
        root.draw(&Rectangle::new(
            [(bx, top + y), (bx + bw, top + y + 1)],
            blues(v).filled(),
        ))
        .map_err(|e| draw_err(path, e))?;
    }
    root.draw(&Rectangle::new(
        [(bx, top), (bx + bw, top + bh)],
        BLACK.stroke_width(1),
    ))
    .map_err(|e| draw_err(path, e))?;
    for (v, label) in [(0.0, "0.0"), (0.5, "0.5"), (1.0, "1.0")] {
        let y = top + ((1.0 - v) * (bh - 1) as f64).round() as i32;
        text(
            label,
            (bx + bw + 6, y),
            font(13.0, HPos::Left, VPos::Center),
        )?;
    }
    root.present().map_err(|e| draw_err(path, e))?;
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
