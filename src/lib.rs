//! cairn's engine: it decides whether and when each stage of a pipeline runs. It reads the
//! pipeline file (`spec`), checks it (`resolve`, `dag`), fingerprints stages (`fingerprint`,
//! `plan`), stores results (`cache`, `tables`, `manifest`) and runs what is stale (`run`).
//! What a stage computes lives in the `cairn-stages` crate; nothing here knows about NLP.

pub mod atomic;
pub mod cache;
pub mod dag;
pub mod diagnostic;
pub mod fingerprint;
pub mod gc;
pub mod manifest;
pub mod plan;
pub mod predict;
pub mod resolve;
pub mod run;
pub mod show;
pub mod spec;
pub mod status;
pub mod tables;
pub mod verify;
