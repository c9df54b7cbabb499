//! The subcommands that read what a run left behind: `status`, `show`, `predict`/`export` and
//! `verify`.

pub mod predict;
pub mod show;
pub mod status;
pub mod verify;
