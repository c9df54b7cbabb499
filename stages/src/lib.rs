//! The stage kinds of cairn: what each stage computes.
//!
//! A stage turns its inputs (upstream Arrow tables and files) into outputs (Arrow tables, files,
//! metrics). Nothing here knows about fingerprints, caching or scheduling: the engine in the
//! `cairn` crate decides whether and when a stage runs, and stores what it returns.
//!
//! Adding a kind: write one module implementing [`Stage`], add one line to [`registry::KINDS`].

pub mod api;
pub mod encoders;
pub mod figure;
pub mod inspect;
pub mod kinds;
pub mod labels;
pub mod lbfgs;
pub mod logreg;
pub mod manifold;
pub mod matrix;
pub mod model;
pub mod plot;
pub mod pretrained;
pub mod registry;
pub mod scores;
pub mod table;
#[cfg(feature = "test-kinds")]
mod testing;

pub use api::*;

/// Params as the engine reads them: YAML, through JSON (so enums are written as maps, e.g.
/// `{replace: {pattern: x, with: y}}`), into the typed struct.
#[cfg(test)]
pub(crate) fn params_from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
    serde_json::from_value(serde_json::to_value(value).expect("json")).expect("params")
}
