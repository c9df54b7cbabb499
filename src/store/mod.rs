//! What is kept on disk: the content-addressed cache of objects and entries, crash-safe
//! writes, tables as Parquet objects, the checked-in manifest, and garbage collection.

pub mod atomic;
pub mod cache;
pub mod gc;
pub mod manifest;
pub mod tables;
