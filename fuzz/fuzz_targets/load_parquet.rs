#![no_main]
//! `load` with `format: parquet`.

mod load_common;

const VARIANTS: &[&str] = &[
    "{format: parquet, labels: [neg, pos]}",
    "{format: parquet}",
    "{format: parquet, columns: [text, label], labels: [neg, pos], limit: 3}",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| load_common::run("split.parquet", VARIANTS, data));
