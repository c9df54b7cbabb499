//! The stage kinds, one module each. Each is listed once in [`crate::registry::KINDS`].

pub mod align_labels;
pub mod classify;
pub mod compare;
pub mod concat;
pub mod describe;
pub mod evaluate;
pub mod extract_hidden;
pub mod finetune;
pub mod load;
pub mod normalize;
pub mod predict;
pub mod pretokenize;
pub mod project;
pub mod sample;
pub mod scale;
pub mod tokenize;
