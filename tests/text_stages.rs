//! The text stages (load, normalize, pretokenize, tokenize, align-labels) run by the real
//! `cairn` binary on pipelines written into temp dirs, checked against the Python reference
//! (tests/fixtures/tokenizer/reference.json) on the full emotion and WikiANN en/de data.
//!
//! Needs `scripts/setup.sh` (data in data/ or ../shared/data, the model in the HF hub cache).

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::record_batch::RecordBatch;
use cairn::store::cache::{Cache, table_output_name};
use cairn::store::manifest::Manifest;
use cairn_stages::{columns::labels, columns::table};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
const EMOTION_LABELS: &str = "[sadness, joy, love, anger, fear, surprise]";
const NER_TAGS: &str = "[O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC]";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding emotion/ and wikiann/: data/ (scripts/setup.sh) or ../shared/data.
fn data_dir() -> PathBuf {
    for d in [repo().join("data"), repo().join("../shared/data")] {
        if d.join("emotion/train.txt").is_file() && d.join("wikiann/de/test").is_file() {
            return d.canonicalize().unwrap();
        }
    }
    panic!("the emotion / WikiANN data is missing: run scripts/setup.sh (it fills data/)");
}

/// Fails with what to do when the model is not in the Hugging Face cache.
fn require_model() {
    let snapshot =
        cairn_stages::hub::model::HubRepo::parse(cairn_stages::hub::model::RepoKind::Model, MODEL)
            .unwrap()
            .cached_snapshot(&cairn_stages::hub::model::hub_cache_dir());
    assert!(
        snapshot.is_some_and(|s| s.join("tokenizer.json").is_file()),
        "{MODEL} is not in the Hugging Face cache ({}): run scripts/setup.sh",
        cairn_stages::hub::model::hub_cache_dir().display()
    );
}

fn reference() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/tokenizer/reference.json")).unwrap(),
    )
    .unwrap()
}

/// A pipeline in a temp dir with its own cache.
struct Project {
    dir: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "cairn failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Project {
    fn new() -> Project {
        Project {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    fn cache(&self) -> Cache {
        Cache::new(&self.path("cache"))
    }
    fn cairn(&self, args: &[&str], env: &[(&str, &Path)]) -> Run {
        let cache = self.path("cache");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .current_dir(self.dir.path());
        cmd.env_remove("CAIRN_CACHE_DIR").env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
    /// Writes `p.yaml` and runs it.
    fn run(&self, yaml: &str) -> Run {
        self.write("p.yaml", yaml);
        self.cairn(&["run", "p.yaml"], &[])
    }
    fn manifest(&self, name: &str) -> Option<Manifest> {
        Manifest::load(&self.cache().manifest_path(name)).unwrap()
    }
    fn table(&self, name: &str, stage: &str, split: &str) -> RecordBatch {
        let m = self.manifest(name).expect("manifest");
        let out = &m.stages[stage].outputs[&table_output_name(split)];
        cairn::store::tables::from_parquet(self.cache().read_verified(&out.digest).unwrap())
            .unwrap()
    }
    fn metric(&self, name: &str, stage: &str, key: &str) -> Value {
        self.manifest(name).unwrap().stages[stage].metrics[key].clone()
    }
}

fn ids(batch: &RecordBatch, column: &str) -> Vec<Vec<i64>> {
    table::int_lists(batch, column, "?").unwrap()
}

/// The fixture's digest: per example its ids in decimal joined by `,`, then `\n`; sha256 hex.
fn digest(rows: &[Vec<i64>]) -> String {
    let mut h = Sha256::new();
    for r in rows {
        let line: Vec<String> = r.iter().map(i64::to_string).collect();
        h.update(line.join(",").as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn as_ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap_or(-1))
        .collect()
}

fn samples(split: &Value) -> Vec<&Value> {
    let s = &split["sample"];
    s["first"]
        .as_array()
        .unwrap()
        .iter()
        .chain(s["hard"].as_array().unwrap())
        .collect()
}

#[test]
fn emotion_staged_tokenization_equals_one_shot_and_the_python_reference() {
    let data = data_dir();
    require_model();
    let p = Project::new();
    p.run(&format!(
        r#"
name: emotion
root: {data}
params: {{model: {MODEL}}}
stages:
  load:
    kind: load
    format: delimited
    delimiter: ";"
    columns: [text, label]
    labels: {EMOTION_LABELS}
    splits: {{train: emotion/train.txt, validation: emotion/validation.txt, test: emotion/test.txt}}
  normalize: {{kind: normalize, inputs: [load], from-tokenizer: "${{params.model}}"}}
  pretokenize: {{kind: pretokenize, inputs: [normalize], method: from-tokenizer, tokenizer: "${{params.model}}"}}
  staged: {{kind: tokenize, inputs: [pretokenize], tokenizer: "${{params.model}}", is-split-into-words: true}}
  oneshot: {{kind: tokenize, inputs: [load], tokenizer: "${{params.model}}", return-tokens: true}}
"#,
        data = data.display()
    ))
    .ok();
    let reference = reference();
    let names: Vec<String> = ["sadness", "joy", "love", "anger", "fear", "surprise"]
        .map(String::from)
        .to_vec();
    let mut equal_rows = 0;
    for split in ["train", "validation", "test"] {
        let want = &reference["emotion"][split];
        let staged = p.table("emotion", "staged", split);
        let oneshot = p.table("emotion", "oneshot", split);
        let (s, o) = (ids(&staged, "input_ids"), ids(&oneshot, "input_ids"));
        assert_eq!(
            o.len() as u64,
            want["count"].as_u64().unwrap(),
            "{split}: rows"
        );
        for (i, (a, b)) in s.iter().zip(&o).enumerate() {
            assert_eq!(a, b, "{split} row {i}: staged ids differ from one-shot");
        }
        equal_rows += s.len();
        assert_eq!(
            digest(&o),
            want["ids_sha256"].as_str().unwrap(),
            "{split}: ids differ from Python's"
        );
        assert_eq!(
            digest(&s),
            want["ids_sha256"].as_str().unwrap(),
            "{split}: staged ids differ from Python's"
        );
        for (key, metric) in [
            ("total_tokens", "tokens"),
            ("max_tokens", "max_tokens"),
            ("truncated", "truncated"),
        ] {
            assert_eq!(
                p.metric("emotion", "oneshot", &format!("{metric}.{split}")),
                want[key],
                "{split}: {key}"
            );
        }
        let texts = table::strings(&oneshot, "text", split).unwrap();
        let labels_col = oneshot.column_by_name("label").unwrap();
        let label_ids =
            arrow::compute::cast(labels_col, &arrow::datatypes::DataType::Int64).unwrap();
        let label_ids = label_ids
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        let tokens = table::string_lists(&oneshot, "tokens", split).unwrap();
        for sample in samples(want) {
            let i = sample["index"].as_u64().unwrap() as usize;
            assert_eq!(
                texts[i],
                sample["text"].as_str().unwrap(),
                "{split}[{i}] text"
            );
            assert_eq!(
                labels::int2str(&names, label_ids.value(i)),
                sample["label"].as_str(),
                "{split}[{i}] label"
            );
            assert_eq!(o[i], as_ids(&sample["ids"]), "{split}[{i}] ids");
            let want_tokens: Vec<&str> = sample["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            assert_eq!(tokens[i], want_tokens, "{split}[{i}] tokens");
        }
        // Label names travel with the table through every stage.
        assert_eq!(labels::label_names(&staged.schema()), Some(names.clone()));
    }
    assert_eq!(equal_rows, 20_000);
}

#[test]
fn wikiann_en_and_de_token_and_word_ids_equal_the_python_reference() {
    let data = data_dir();
    require_model();
    let p = Project::new();
    let load = |lang: &str| {
        format!(
            "  load-{lang}:\n    kind: load\n    format: conll\n    strip-prefix: true\n    labels: {NER_TAGS}\n    splits: {{train: wikiann/{lang}/train, dev: wikiann/{lang}/dev, test: wikiann/{lang}/test}}\n  tok-{lang}: {{kind: tokenize, inputs: [load-{lang}], tokenizer: {MODEL}, is-split-into-words: true}}\n"
        )
    };
    p.run(&format!(
        "name: wikiann\nroot: {}\nstages:\n{}{}",
        data.display(),
        load("en"),
        load("de")
    ))
    .ok();
    let reference = reference();
    for lang in ["en", "de"] {
        for split in ["train", "dev", "test"] {
            let want = &reference["wikiann"][lang][split];
            let t = p.table("wikiann", &format!("tok-{lang}"), split);
            let (input_ids, word_ids) = (ids(&t, "input_ids"), ids(&t, "word_ids"));
            assert_eq!(
                input_ids.len() as u64,
                want["count"].as_u64().unwrap(),
                "{lang}/{split}: sentences"
            );
            assert_eq!(
                digest(&input_ids),
                want["ids_sha256"].as_str().unwrap(),
                "{lang}/{split}: ids"
            );
            assert_eq!(
                digest(&word_ids),
                want["word_ids_sha256"].as_str().unwrap(),
                "{lang}/{split}: word ids"
            );
            let stage = format!("tok-{lang}");
            for (key, metric) in [
                ("total_tokens", "tokens"),
                ("max_tokens", "max_tokens"),
                ("truncated", "truncated"),
            ] {
                assert_eq!(
                    p.metric("wikiann", &stage, &format!("{metric}.{split}")),
                    want[key],
                    "{lang}/{split}: {key}"
                );
            }
            let words = table::string_lists(&t, "tokens", split).unwrap();
            let tags = ids(&t, "ner_tags");
            let total_words: usize = words.iter().map(Vec::len).sum();
            assert_eq!(
                total_words as u64,
                want["words"].as_u64().unwrap(),
                "{lang}/{split}: words"
            );
            for sample in samples(want) {
                let i = sample["index"].as_u64().unwrap() as usize;
                let want_words: Vec<&str> = sample["words"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap())
                    .collect();
                assert_eq!(words[i], want_words, "{lang}/{split}[{i}] words");
                assert_eq!(
                    input_ids[i],
                    as_ids(&sample["ids"]),
                    "{lang}/{split}[{i}] ids"
                );
                assert_eq!(
                    word_ids[i],
                    as_ids(&sample["word_ids"]),
                    "{lang}/{split}[{i}] word ids"
                );
                let want_tags: Vec<i64> = sample["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        t.as_i64().unwrap_or_else(|| {
                            let names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"];
                            names.iter().position(|n| Some(*n) == t.as_str()).unwrap() as i64
                        })
                    })
                    .collect();
                assert_eq!(tags[i], want_tags, "{lang}/{split}[{i}] tags");
            }
        }
    }
}

/// `Ove` and `Knausgård` are one word each and several WordPiece tokens: only the first carries
/// the word's tag.
#[test]
fn align_labels_keeps_the_tag_on_the_first_sub_word_only() {
    require_model();
    let p = Project::new();
    p.write(
        "ner.txt",
        "en:Karl\tB-PER\nen:Ove\tI-PER\nen:Knausgård\tI-PER\nen:wrote\tO\n\nen:Oslo\tB-LOC\n",
    );
    p.run(&format!(
        r#"
name: ner
stages:
  load: {{kind: load, format: conll, strip-prefix: true, labels: {NER_TAGS}, splits: {{train: ner.txt}}}}
  tok: {{kind: tokenize, inputs: [load], tokenizer: {MODEL}, is-split-into-words: true, return-tokens: true, tokens-column: subwords}}
  first: {{kind: align-labels, inputs: [tok]}}
  all: {{kind: align-labels, inputs: [tok], label-all-tokens: true}}
"#
    ))
    .ok();
    let first = p.table("ner", "first", "train");
    let tokens = table::string_lists(&first, "subwords", "train").unwrap();
    // The words stay as loaded.
    let words = table::string_lists(&first, "tokens", "train").unwrap();
    assert_eq!(words[0], ["Karl", "Ove", "Knausgård", "wrote"]);
    let shown: Vec<(&str, i64)> = tokens[0]
        .iter()
        .copied()
        .zip(ids(&first, "labels")[0].clone())
        .collect();
    assert_eq!(
        shown,
        [
            ("[CLS]", -100),
            ("karl", 1),
            ("o", 2),
            ("##ve", -100),
            ("kn", 2),
            ("##aus", -100),
            ("##gard", -100),
            ("wrote", 0),
            ("[SEP]", -100)
        ]
    );
    let all = p.table("ner", "all", "train");
    assert_eq!(ids(&all, "labels")[0], [-100, 1, 2, 2, 2, 2, 2, 0, -100]);
    assert_eq!(ids(&first, "word_ids")[0], [-1, 0, 1, 1, 2, 2, 2, 3, -1]);
    assert_eq!(ids(&all, "labels")[1], [-100, 5, -100]);
}

#[test]
fn char_and_word_tokenizers_build_a_vocabulary_from_train() {
    let p = Project::new();
    p.write("train.txt", "the cat sat;a\nthe dog;b\n");
    p.write("test.txt", "the bird;a\n");
    p.run(
        r#"
name: simple
stages:
  load: {kind: load, format: delimited, delimiter: ";", columns: [text, label], labels: [a, b], splits: {train: train.txt, test: test.txt}}
  chars: {kind: tokenize, inputs: [load], tokenizer: char, return-tokens: true}
  words: {kind: tokenize, inputs: [load], tokenizer: word, return-tokens: true}
"#,
    )
    .ok();
    let m = p.manifest("simple").unwrap();
    let vocab = |stage: &str| {
        let digest = &m.stages[stage].outputs["files/vocab.txt"].digest;
        String::from_utf8(p.cache().read_verified(digest).unwrap()).unwrap()
    };
    assert_eq!(
        vocab("words").lines().collect::<Vec<_>>(),
        ["[PAD]", "[UNK]", "cat", "dog", "sat", "the"]
    );
    let chars: Vec<String> = vocab("chars").lines().map(String::from).collect();
    assert_eq!(chars[..4], ["[PAD]", "[UNK]", " ", "a"]);
    // "bird" is not in train: [UNK]; nor are its 'b', 'i' and 'r' (train has "the cat sat",
    // "the dog").
    let test = p.table("simple", "words", "test");
    assert_eq!(ids(&test, "input_ids")[0], [5, 1]);
    let test = p.table("simple", "chars", "test");
    let back: String = ids(&test, "input_ids")[0]
        .iter()
        .map(|&i| chars[i as usize].as_str())
        .collect();
    assert_eq!(back, "the [UNK][UNK][UNK]d");
    // Round trip on train: ids back to characters give the text.
    let train = p.table("simple", "chars", "train");
    let texts = table::strings(&train, "text", "train").unwrap();
    for (row, text) in ids(&train, "input_ids").iter().zip(texts) {
        assert_eq!(
            row.iter()
                .map(|&i| chars[i as usize].as_str())
                .collect::<String>(),
            text
        );
    }
    assert_eq!(p.metric("simple", "words", "vocab_size"), 6);
}

/// The table `describe` prints for `cairn show --stats`, on the loaded emotion train split.
#[test]
fn describe_shows_the_class_distribution_of_emotion() {
    let data = data_dir();
    let p = Project::new();
    p.run(&format!(
        "name: e\nroot: {}\nstages:\n  load: {{kind: load, format: delimited, delimiter: ';', columns: [text, label], labels: {EMOTION_LABELS}, splits: {{train: emotion/train.txt}}}}\n",
        data.display()
    ))
    .ok();
    let text = cairn_stages::columns::inspect::describe(&p.table("e", "load", "train"));
    let raw = std::fs::read_to_string(data.join("emotion/train.txt")).unwrap();
    let joy = raw.lines().filter(|l| l.ends_with(";joy")).count();
    let line = text.lines().nth(2).unwrap(); // header, then the most frequent class
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols[..3],
        [
            "joy".to_string(),
            joy.to_string(),
            format!("{:.1}%", 100.0 * joy as f64 / 16000.0)
        ],
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: a clear error naming the place, a non-zero exit, nothing cached.

const EMOTION_LOAD: &str = r#"
name: bad
stages:
  load:
    kind: load
    format: delimited
    delimiter: ";"
    columns: [text, label]
    labels: [sadness, joy, love, anger, fear, surprise]
    splits: {train: data/train.txt}
"#;

fn assert_fails_uncached(p: &Project, run: Run, code: i32, message: &str) {
    assert_eq!(
        run.code, code,
        "exit code; stderr:\n{}\nstdout:\n{}",
        run.stderr, run.stdout
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains(message), "expected `{message}` in:\n{all}");
    let cached = p
        .manifest("bad")
        .is_some_and(|m| m.stages.contains_key("load") || m.stages.contains_key("tok"));
    assert!(
        !cached,
        "a failed stage must not be recorded in the manifest"
    );
}

#[test]
fn malformed_line_is_named_by_file_and_line() {
    let p = Project::new();
    p.write("data/train.txt", "i feel fine;joy\ni have no delimiter\n");
    let run = p.run(EMOTION_LOAD);
    assert_fails_uncached(
        &p,
        run,
        1,
        "data/train.txt:2: expected 2 fields (text;label) separated by \";\", found 1: `i have no delimiter`",
    );
}

#[test]
fn unknown_label_is_named_with_the_known_ones() {
    let p = Project::new();
    p.write("data/train.txt", "a;joy\nb;sadness\nc;joyy\n");
    let run = p.run(EMOTION_LOAD);
    assert_fails_uncached(
        &p,
        run,
        1,
        "data/train.txt:3: unknown label `joyy` (labels: sadness, joy, love, anger, fear, surprise)",
    );
}

#[test]
fn invalid_utf8_is_named_by_file_and_line() {
    let p = Project::new();
    p.write("data/train.txt", b"ok;joy\ncaf\xe9 latin-1;joy\n");
    let run = p.run(EMOTION_LOAD);
    assert_fails_uncached(
        &p,
        run,
        1,
        "data/train.txt:2: invalid UTF-8 (byte 0xe9 at byte 4 of the line, after `caf`)",
    );
}

#[test]
fn empty_split_file_is_an_error() {
    let p = Project::new();
    p.write("data/train.txt", "");
    let run = p.run(EMOTION_LOAD);
    assert_fails_uncached(
        &p,
        run,
        1,
        "data/train.txt: the file is empty (split `train`)",
    );
}

#[test]
fn missing_split_file_is_caught_before_anything_runs() {
    let p = Project::new();
    let run = p.run(EMOTION_LOAD);
    assert_fails_uncached(&p, run, 2, "`data/train.txt` does not exist");
}

#[test]
fn tokenizer_json_that_does_not_parse_is_named() {
    let p = Project::new();
    p.write("data/train.txt", "ok;joy\n");
    p.write("tok/tokenizer.json", "{\"version\": \"1.0\", \"model\": ");
    let run = p.run(&format!(
        "{EMOTION_LOAD}  tok: {{kind: tokenize, inputs: [load], tokenizer: ./tok}}\n"
    ));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("tok/tokenizer.json: the tokenizer.json of `./tok` does not parse"),
        "{all}"
    );
    assert!(all.contains("line 1"), "the parse error's position: {all}");
    let m = p.manifest("bad").unwrap();
    assert!(m.stages.contains_key("load") && !m.stages.contains_key("tok"));
}

#[test]
fn missing_model_offline_lists_the_files_and_says_what_to_do() {
    let p = Project::new();
    p.write("data/train.txt", "ok;joy\n");
    std::fs::create_dir_all(p.path("empty-hub")).unwrap();
    p.write(
        "p.yaml",
        format!("{EMOTION_LOAD}  tok: {{kind: tokenize, inputs: [load], tokenizer: {MODEL}}}\n"),
    );
    let run = p.cairn(
        &["--offline", "run", "p.yaml"],
        &[("HF_HUB_CACHE", &p.path("empty-hub"))],
    );
    assert_fails_uncached(&p, run, 2, "missing tokenizer.json");
    let run = p.cairn(
        &["--offline", "run", "p.yaml"],
        &[("HF_HUB_CACHE", &p.path("empty-hub"))],
    );
    assert!(run.stderr.contains("scripts/setup.sh"), "{}", run.stderr);
}

/// `hf://` datasets come from the Hugging Face cache when offline: the split files of one
/// folder, and the dataset's own `ClassLabel` names when `labels:` is not given.
#[test]
fn hub_dataset_loads_offline_from_the_hf_cache() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    let p = Project::new();
    let snapshot =
        p.path("hub/datasets--me--toy/snapshots/0123456789abcdef0123456789abcdef01234567");
    p.write(
        "hub/datasets--me--toy/refs/main",
        "0123456789abcdef0123456789abcdef01234567",
    );
    let features = r#"{"info": {"features": {"text": {"dtype": "string", "_type": "Value"}, "label": {"names": ["neg", "pos"], "_type": "ClassLabel"}}}}"#;
    let table = |texts: Vec<&str>, labels: Vec<i64>| {
        let schema = Schema::new(vec![
            Field::new("text", DataType::Utf8, false),
            Field::new("label", DataType::Int64, false),
        ])
        .with_metadata(std::collections::HashMap::from([(
            "huggingface".to_string(),
            features.to_string(),
        )]));
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(texts)),
                Arc::new(Int64Array::from(labels)),
            ],
        )
        .unwrap();
        cairn::store::tables::to_parquet(&batch).unwrap()
    };
    std::fs::create_dir_all(snapshot.join("split")).unwrap();
    std::fs::create_dir_all(snapshot.join("unsplit")).unwrap();
    std::fs::write(
        snapshot.join("split/train-00000-of-00001.parquet"),
        table(vec!["good", "bad"], vec![1, 0]),
    )
    .unwrap();
    std::fs::write(
        snapshot.join("split/test-00000-of-00001.parquet"),
        table(vec!["fine"], vec![1]),
    )
    .unwrap();
    std::fs::write(
        snapshot.join("unsplit/train-00000-of-00001.parquet"),
        table(vec!["x"], vec![0]),
    )
    .unwrap();
    let hub = p.path("hub");

    p.write(
        "p.yaml",
        "name: hub\nstages:\n  load: {kind: load, source: 'hf://me/toy'}\n",
    );
    let run = p.cairn(&["--offline", "run", "p.yaml"], &[("HF_HUB_CACHE", &hub)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("several folders (split, unsplit): choose one with `config:`"),
        "{}",
        run.stderr
    );

    p.write(
        "p.yaml",
        "name: hub\nstages:\n  load: {kind: load, source: 'hf://me/toy', config: split}\n",
    );
    let run = p.cairn(&["--offline", "run", "p.yaml"], &[("HF_HUB_CACHE", &hub)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let train = p.table("hub", "load", "train");
    assert_eq!(
        table::strings(&train, "text", "train").unwrap(),
        ["good", "bad"]
    );
    assert_eq!(
        labels::label_names(&train.schema()),
        Some(vec!["neg".to_string(), "pos".to_string()])
    );
    assert_eq!(p.table("hub", "load", "test").num_rows(), 1);

    // Not in the cache and offline: says so and what to do.
    p.write(
        "p.yaml",
        "name: hub\nstages:\n  load: {kind: load, source: 'hf://me/other'}\n",
    );
    let run = p.cairn(&["--offline", "run", "p.yaml"], &[("HF_HUB_CACHE", &hub)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("dataset `me/other` is not in the Hugging Face cache"),
        "{}",
        run.stderr
    );
}
