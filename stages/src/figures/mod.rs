//! Every PNG figure the stages draw, with plotters' bitmap backend and a font compiled into the
//! binary, so figures look the same on every machine.

pub mod heatmap;
pub mod hexbin;
