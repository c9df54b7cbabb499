//! The stage kinds of cairn: what each stage computes.
//!
//! A stage turns its inputs (upstream Arrow tables and files) into outputs (Arrow tables, files,
//! metrics). Nothing here knows about fingerprints, caching or scheduling: the engine in the
//! `cairn` crate decides whether and when a stage runs, and stores what it returns.
//!
//! Adding a kind: write one module implementing [`Stage`], add one line to [`registry::KINDS`].

pub mod api;
pub mod registry;
#[cfg(feature = "test-kinds")]
mod testing;

pub use api::*;
