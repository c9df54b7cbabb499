#![no_main]
//! `load` with `format: parquet`.
//!
//! The parquet crate still asserts on some corrupt encodings; `load` catches those panics and
//! reports the file as unreadable. libFuzzer's panic hook would abort before that catch, so
//! panics raised inside the parquet crate are let through to it; any other panic still aborts.

mod load_common;

use std::sync::Once;

const VARIANTS: &[&str] = &[
    "{format: parquet, labels: [neg, pos]}",
    "{format: parquet}",
    "{format: parquet, columns: [text, label], labels: [neg, pos], limit: 3}",
];

fn let_parquet_panics_unwind() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parquet = info
                .location()
                .is_some_and(|l| l.file().contains("/parquet-"));
            if !in_parquet {
                abort(info);
            }
        }));
    });
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let_parquet_panics_unwind();
    load_common::run("split.parquet", VARIANTS, data)
});
