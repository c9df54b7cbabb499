#![no_main]
//! `load` with `format: delimited` (the emotion corpus' `text;label` lines).

mod load_common;

const VARIANTS: &[&str] = &[
    "{format: delimited, delimiter: ';', columns: [text, label], labels: [sadness, joy, love, anger, fear, surprise]}",
    "{format: delimited, delimiter: ';'}",
    "{format: delimited, columns: [a, b, label], labels: [x, y], limit: 2}",
    "{format: delimited, delimiter: '::', label-column: b, labels: ['0', '1']}",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| load_common::run("split.txt", VARIANTS, data));
