//! The subcommands, one module each (`predict` holds `predict` and `export`, `metrics` holds
//! `metrics` and `params`), plus what they share: the global options (`context`), a stage's
//! last recorded result (`recorded`), a manifest at a git revision (`revision`), values as
//! tables (`tabular`) and how a command meets signals (`signals`). `main.rs` parses the
//! arguments and calls `run` here.

pub mod context;
pub mod dag;
pub mod gc;
pub mod kinds;
pub mod metrics;
pub mod path;
pub mod predict;
pub mod recorded;
pub mod report;
pub mod revision;
pub mod run;
pub mod show;
pub mod signals;
pub mod status;
pub mod tabular;
pub mod verify;
