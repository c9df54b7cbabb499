#![no_main]
//! `load` with `format: conll` (WikiANN: `token<TAB>tag` per line, blank line between sentences).

mod load_common;

const VARIANTS: &[&str] = &[
    "{format: conll, strip-prefix: true, labels: [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC]}",
    "{format: conll, labels: [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC], limit: 2}",
    "{format: conll, delimiter: ' ', label-column: tags, labels: [O, X]}",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| load_common::run("split", VARIANTS, data));
