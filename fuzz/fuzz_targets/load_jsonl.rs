#![no_main]
//! `load` with `format: jsonl` (one JSON object per line).

mod load_common;

const VARIANTS: &[&str] = &[
    "{format: jsonl, labels: [neg, pos]}",
    "{format: jsonl}",
    "{format: jsonl, columns: [text, label], labels: [neg, pos], limit: 3}",
    "{format: jsonl, label-column: tags, labels: [O, B-PER, I-PER]}",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| load_common::run("split.jsonl", VARIANTS, data));
