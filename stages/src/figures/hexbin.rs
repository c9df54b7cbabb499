//! The hexbin density grid `project` draws, like matplotlib's `hexbin`: one panel per label,
//! all on one extent so panels compare, each in its own colour map.

use std::collections::HashMap;
use std::path::Path;

use plotters::prelude::*;

use crate::api::StageError;
use crate::figures::colour_map::{BLUES, ColourMap, GREENS, GREYS, ORANGES, PURPLES, REDS};
use crate::figures::{FONT, draw_err, register_font};

/// The panels' colour maps, in the order the chapter's figure uses them.
const PANEL_MAPS: [&ColourMap; 6] = [&GREYS, &BLUES, &ORANGES, &REDS, &PURPLES, &GREENS];

/// Panel `panel`'s shade for `t` in [0, 1]: its map between three of the nine stops (what the
/// figure was first drawn with; its PNG is part of `project`'s output digest).
fn panel_colour(panel: usize, t: f64) -> RGBColor {
    PANEL_MAPS[panel % PANEL_MAPS.len()].at(t, 3)
}

/// A hexagonal cell: its lattice (false: integer, true: half-offset) and indices.
pub type Cell = (bool, i64, i64);

/// A hexagonal binning like matplotlib's `hexbin(gridsize=nx)`: two interleaved rectangular
/// lattices over the extent, each point counted in the nearer lattice centre.
pub struct Hexbin {
    pub xmin: f64,
    pub ymin: f64,
    pub sx: f64,
    pub sy: f64,
}

impl Hexbin {
    pub fn new(extent: (f64, f64, f64, f64), nx: usize) -> Hexbin {
        let (xmin, xmax, ymin, ymax) = extent;
        let ny = ((nx as f64) / 3f64.sqrt()).floor().max(1.0);
        let pad_x = 1e-9 * (xmax - xmin).abs().max(1e-12);
        let sx = ((xmax - xmin) + 2.0 * pad_x).max(1e-12) / nx as f64;
        let sy = ((ymax - ymin) + 2.0 * pad_x).max(1e-12) / ny;
        Hexbin {
            xmin: xmin - pad_x,
            ymin: ymin - pad_x,
            sx,
            sy,
        }
    }

    /// The cell of a point: lattice (false: integer, true: half-offset) and indices.
    pub fn cell(&self, x: f64, y: f64) -> Cell {
        let ix = (x - self.xmin) / self.sx;
        let iy = (y - self.ymin) / self.sy;
        let (ix1, iy1) = (ix.round(), iy.round());
        let (ix2, iy2) = (ix.floor(), iy.floor());
        let d1 = (ix - ix1).powi(2) + 3.0 * (iy - iy1).powi(2);
        let d2 = (ix - ix2 - 0.5).powi(2) + 3.0 * (iy - iy2 - 0.5).powi(2);
        if d1 < d2 {
            (false, ix1 as i64, iy1 as i64)
        } else {
            (true, ix2 as i64, iy2 as i64)
        }
    }

    /// The hexagon around a cell's centre, in data coordinates.
    pub fn polygon(&self, cell: Cell) -> Vec<(f64, f64)> {
        let off = if cell.0 { 0.5 } else { 0.0 };
        let cx = self.xmin + (cell.1 as f64 + off) * self.sx;
        let cy = self.ymin + (cell.2 as f64 + off) * self.sy;
        [
            (0.5, -0.5),
            (0.5, 0.5),
            (0.0, 1.0),
            (-0.5, 0.5),
            (-0.5, -0.5),
            (0.0, -1.0),
        ]
        .iter()
        .map(|(u, v)| (cx + u * self.sx, cy + v * self.sy / 3.0))
        .collect()
    }
}

/// The extent (xmin, xmax, ymin, ymax) of every panel's points; the unit square when there are
/// none.
fn extent(panels: &[Panel]) -> (f64, f64, f64, f64) {
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in panels.iter().flat_map(|p| p.points.iter()) {
        xmin = xmin.min(x as f64);
        xmax = xmax.max(x as f64);
        ymin = ymin.min(y as f64);
        ymax = ymax.max(y as f64);
    }
    if !xmin.is_finite() {
        (xmin, xmax, ymin, ymax) = (0.0, 1.0, 0.0, 1.0);
    }
    (xmin, xmax, ymin, ymax)
}

/// The points per cell, in cell order (so the drawing does not depend on hashing), and the
/// largest count (1 when there are no points).
fn counts(hex: &Hexbin, points: &[(f32, f32)]) -> (Vec<(Cell, u32)>, f64) {
    let mut counts: HashMap<Cell, u32> = HashMap::new();
    for &(x, y) in points {
        *counts.entry(hex.cell(x as f64, y as f64)).or_default() += 1;
    }
    let max = counts.values().copied().max().unwrap_or(1) as f64;
    let mut cells: Vec<_> = counts.into_iter().collect();
    cells.sort();
    (cells, max)
}

/// One panel of a hexbin grid: a title and its points.
pub struct Panel {
    pub title: String,
    pub points: Vec<(f32, f32)>,
}

/// Writes a grid of hexbin density panels (three per row) to `path`, all on the extent of all
/// points so panels compare, each in its own colour map.
pub fn hexbin_grid(path: &Path, panels: &[Panel], gridsize: usize) -> Result<(), StageError> {
    register_font();
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols).max(1);
    let (pw, ph) = (320u32, 300u32);
    let root = BitMapBackend::new(path, (pw * cols as u32, ph * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let (xmin, xmax, ymin, ymax) = extent(panels);
    let hex = Hexbin::new((xmin, xmax, ymin, ymax), gridsize);
    let (mx, my) = (0.6 * hex.sx, 0.4 * hex.sy);
    let areas = root.split_evenly((rows, cols));
    for (i, (panel, area)) in panels.iter().zip(&areas).enumerate() {
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, (FONT, 22))
            .margin(8)
            .build_cartesian_2d((xmin - mx)..(xmax + mx), (ymin - my)..(ymax + my))
            .map_err(|e| draw_err(path, e))?;
        let (cells, max) = counts(&hex, &panel.points);
        chart
            .draw_series(cells.iter().map(|(cell, n)| {
                Polygon::new(
                    hex.polygon(*cell),
                    panel_colour(i, *n as f64 / max).filled(),
                )
            }))
            .map_err(|e| draw_err(path, e))?;
        // A frame, no ticks (the axes of a UMAP layout carry no meaning).
        chart
            .plotting_area()
            .draw(&Rectangle::new(
                [(xmin - mx, ymin - my), (xmax + mx, ymax + my)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| draw_err(path, e))?;
    }
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexbin_cells_tile_the_plane() {
        let h = Hexbin::new((0.0, 10.0, 0.0, 10.0), 10);
        // A lattice centre falls in its own cell; a point between rows goes to the nearer one.
        assert_eq!(
            h.cell(h.xmin + 2.0 * h.sx, h.ymin + 3.0 * h.sy),
            (false, 2, 3)
        );
        assert_eq!(
            h.cell(h.xmin + 2.5 * h.sx, h.ymin + 3.5 * h.sy),
            (true, 2, 3)
        );
        let poly = h.polygon((false, 2, 3));
        assert_eq!(poly.len(), 6);
    }

    #[test]
    fn writes_a_png_with_panels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.png");
        let panels: Vec<Panel> = (0..6)
            .map(|p| Panel {
                title: format!("label {p}"),
                points: (0..200)
                    .map(|i| {
                        let t = i as f32 * 0.1 + p as f32;
                        (t.cos() * (1.0 + p as f32), t.sin())
                    })
                    .collect(),
            })
            .collect();
        hexbin_grid(&path, &panels, 20).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
