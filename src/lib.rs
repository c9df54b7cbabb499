//! cairn's engine: it decides whether and when each stage of a pipeline runs. It reads and
//! checks the pipeline file (`spec`), builds the stage graph (`graph`), fingerprints stages
//! and decides what is stale (`plan`), keeps results (`store`), runs what is stale (`exec`);
//! `commands` holds the `cairn` subcommands, from `run` to `kinds`.
//! What a stage computes lives in the `cairn-stages` crate; nothing here knows about NLP.

pub mod commands;
pub mod exec;
pub mod graph;
pub mod plan;
pub mod spec;
pub mod store;
