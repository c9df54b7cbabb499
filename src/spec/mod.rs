//! The pipeline file: YAML with the location of every node (`yaml`), checked into a pipeline
//! whose stages (sweeps expanded into their cells) have kinds, typed params, inputs (a list or
//! by name) and external files (`resolve`), and the located messages that report what is wrong
//! (`diagnostic`); and the file's JSON Schema, for editors (`schema`).

pub mod diagnostic;
pub mod resolve;
pub mod schema;
pub mod yaml;
