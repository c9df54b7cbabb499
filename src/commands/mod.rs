//! The subcommands, one module each (`predict` holds `predict` and `export`), plus what they
//! share: the global options (`context`), a stage's last recorded result (`recorded`) and how
//! a command meets signals (`signals`). `main.rs` parses the arguments and calls `run` here.

pub mod context;
pub mod dag;
pub mod gc;
pub mod kinds;
pub mod metrics;
pub mod predict;
pub mod recorded;
pub mod run;
pub mod show;
pub mod signals;
pub mod status;
pub mod verify;
