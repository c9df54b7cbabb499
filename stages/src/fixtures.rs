//! Test fixtures shared by the stages' unit tests and the engine's integration tests (built
//! for tests and with the `test-kinds` feature only): the tiny random BERT with a word-level
//! tokenizer over its ids.

use std::path::Path;

use serde_json::json;

/// Writes the tiny random BERT fixture (vocabulary 100, 64 positions; tests/fixtures/encoders/
/// bert) into `dir` with a word-level `tokenizer.json`: `[PAD]` `[UNK]` `[CLS]` `[SEP]`,
/// `w4` … `w99`, plus `extra` (word, id) entries (an id ≥ 100 is beyond the vocabulary).
pub fn write_tiny_bert(dir: &Path, extra: &[(&str, u32)]) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/encoders/bert");
    std::fs::create_dir_all(dir).expect("model dir");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(f), dir.join(f)).expect("copy fixture");
    }
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];
    let mut vocab = serde_json::Map::new();
    for (i, s) in specials.iter().enumerate() {
        vocab.insert(s.to_string(), json!(i));
    }
    for i in 4..100 {
        vocab.insert(format!("w{i}"), json!(i));
    }
    for (word, id) in extra {
        vocab.insert(word.to_string(), json!(id));
    }
    let added: Vec<_> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).expect("tokenizer.json");
}
