#![no_main]
//! `load` with `format: csv` (RFC 4180, quotes allowed).

mod load_common;

const VARIANTS: &[&str] = &[
    "{format: csv, labels: [neg, pos]}",
    "{format: csv}",
    "{format: csv, columns: [text, label], labels: [neg, pos], limit: 3}",
    "{format: csv, delimiter: ';', label-column: y, labels: ['0', '1']}",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| load_common::run("split.csv", VARIANTS, data));
