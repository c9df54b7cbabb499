//! The pipeline file: YAML with the location of every node (`yaml`), checked into a pipeline
//! whose stages have kinds, typed params, inputs and external files (`resolve`), and the
//! located messages that report what is wrong (`diagnostic`).

pub mod diagnostic;
pub mod resolve;
pub mod yaml;
