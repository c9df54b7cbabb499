//! Every PNG figure the stages draw, with plotters' bitmap backend: the confusion-matrix
//! [`heatmap`] and the [`hexbin`] density grid, in the [`colour_map`]s they share, and the
//! [`lines`] chart (a metric against a numeric x, with reference lines).
//!
//! Text uses a font compiled into the binary (a Latin subset of DejaVu Sans, assets/fonts,
//! Bitstream Vera licence), registered with plotters' `ab_glyph` backend: no system fonts or
//! fontconfig needed, so figures look the same on every machine.

pub mod colour_map;
pub mod distribution;
pub mod heatmap;
pub mod hexbin;
pub mod lines;

use std::path::Path;
use std::sync::Once;

use plotters::style::FontStyle;

use crate::api::StageError;

/// The family name figures use for text; [`register_font`] makes it available.
const FONT: &str = "sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-LatinSubset.ttf");

/// Registers the embedded font with plotters under [`FONT`] (once per process).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font checked in with the source.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, FONT_BYTES);
    });
}

/// A drawing error, naming the figure's file.
fn draw_err(path: &Path, e: impl std::fmt::Display) -> StageError {
    StageError::failed(format!("drawing {}: {e}", path.display()))
}
