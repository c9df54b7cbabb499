//! `sample` and `concat` run by the real `cairn` binary on tiny data files: a stratified
//! learning-curve pair of samples (the smaller inside the larger, the other splits whole),
//! two CoNLL languages joined with a source column, both cached on a second run; a label
//! mismatch and an over-large sample fail naming what differs.

mod common;

use std::collections::BTreeSet;

use arrow::record_batch::RecordBatch;
use cairn::store::cache::{Cache, table_output_name};
use cairn::store::manifest::Manifest;
use cairn_stages::columns::{labels, table};
use common::Project;

const NER: &str = "[O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC]";
const EMOTIONS: [&str; 3] = ["sadness", "joy", "anger"];

/// 30 training examples (15 joy, 10 sadness, 5 anger) and 6 validation ones, as JSON Lines.
fn write_emotions(p: &Project) {
    let line =
        |i: usize, label: &str| format!("{{\"text\": \"text {i}\", \"label\": \"{label}\"}}\n");
    let train: String = (0..30)
        .map(|i| line(i, EMOTIONS[[1, 0, 1, 0, 1, 2][i % 6]]))
        .collect();
    let validation: String = (100..106).map(|i| line(i, EMOTIONS[i % 3])).collect();
    p.write("emotion/train.jsonl", &train);
    p.write("emotion/validation.jsonl", &validation);
}

/// One sentence per word list, each word tagged `O` except a final location.
fn conll(sentences: &[&[&str]]) -> String {
    sentences
        .iter()
        .map(|words| {
            let (last, rest) = words.split_last().unwrap();
            let mut s: String = rest.iter().map(|w| format!("{w}\tO\n")).collect();
            s.push_str(&format!("{last}\tB-LOC\n\n"));
            s
        })
        .collect()
}

fn write_languages(p: &Project) {
    p.write(
        "de/train.conll",
        &conll(&[&["in", "Berlin"], &["nach", "Bonn"]]),
    );
    p.write("de/validation.conll", &conll(&[&["aus", "Köln"]]));
    p.write("en/train.conll", &conll(&[&["to", "London"]]));
    p.write(
        "en/validation.conll",
        &conll(&[&["from", "York"], &["in", "Leeds"]]),
    );
}

fn pipeline(train_small: usize, en_labels: &str) -> String {
    format!(
        r#"
name: mix
stages:
  emotion:
    kind: load
    labels: [sadness, joy, anger]
    splits: {{train: emotion/train.jsonl, validation: emotion/validation.jsonl}}
  small:
    kind: sample
    inputs: [emotion]
    keep: {{train: {train_small}}}
    stratify: label
  large:
    kind: sample
    inputs: [emotion]
    keep: {{train: 20}}
    stratify: label
  load-de:
    kind: load
    format: conll
    labels: {NER}
    splits: {{train: de/train.conll, validation: de/validation.conll}}
  load-en:
    kind: load
    format: conll
    labels: {en_labels}
    splits: {{train: en/train.conll, validation: en/validation.conll}}
  both:
    kind: concat
    inputs: [load-de, load-en]
    source-column: lang
"#
    )
}

fn project() -> Project {
    let p = Project::new();
    write_emotions(&p);
    write_languages(&p);
    p
}

fn table_of(p: &Project, stage: &str, split: &str) -> RecordBatch {
    let cache = Cache::new(&p.path("cache"));
    let manifest = Manifest::load(&cache.manifest_path("mix"))
        .unwrap()
        .unwrap();
    let out = &manifest.stages[stage].outputs[&table_output_name(split)];
    cairn::store::tables::from_parquet(cache.read_verified(&out.digest).unwrap()).unwrap()
}

fn texts(batch: &RecordBatch) -> Vec<String> {
    table::strings(batch, "text", "?")
        .unwrap()
        .into_iter()
        .map(String::from)
        .collect()
}

fn label_counts(batch: &RecordBatch) -> Vec<usize> {
    let mut counts = vec![0; EMOTIONS.len()];
    for id in table::ids(batch, "label", "?").unwrap() {
        counts[id.unwrap() as usize] += 1;
    }
    counts
}

/// Each label's count is its share of `k` of the 30 rows (10, 15, 5) rounded down or up.
fn assert_shares(counts: &[usize], k: usize) {
    assert_eq!(counts.iter().sum::<usize>(), k);
    for (count, size) in counts.iter().zip([10, 15, 5]) {
        let (lo, hi) = (k * size / 30, (k * size).div_ceil(30));
        assert!((lo..=hi).contains(count), "{counts:?} for {k}");
    }
}

#[test]
fn samples_nest_keep_label_shares_and_are_cached() {
    let p = project();
    p.write("p.yaml", &pipeline(10, NER));
    p.cairn(&["run", "p.yaml"]).ok();

    let (small, large) = (
        table_of(&p, "small", "train"),
        table_of(&p, "large", "train"),
    );
    let (small_texts, large_texts) = (texts(&small), texts(&large));
    assert_eq!((small_texts.len(), large_texts.len()), (10, 20));
    let large_set: BTreeSet<&String> = large_texts.iter().collect();
    assert!(
        small_texts.iter().all(|t| large_set.contains(t)),
        "the 10 are not among the 20: {small_texts:?} vs {large_texts:?}"
    );
    // 10 sadness, 15 joy, 5 anger: a third of each, and two thirds, within rounding.
    assert_shares(&label_counts(&small), 10);
    assert_shares(&label_counts(&large), 20);
    let names: Vec<String> = EMOTIONS.map(String::from).to_vec();
    assert_eq!(labels::label_names(&small.schema()), Some(names));
    // The validation split passes through whole, in its order.
    assert_eq!(
        texts(&table_of(&p, "small", "validation")),
        texts(&table_of(&p, "emotion", "validation"))
    );

    let again = p.cairn(&["run", "p.yaml"]).ok();
    assert!(again.stdout.contains("0 ran, 6 cached"), "{}", again.stdout);
    // A new sample size runs only its own stage, and is nested in the same way.
    p.write("p.yaml", &pipeline(5, NER));
    let changed = p.cairn(&["run", "p.yaml"]).ok();
    assert!(
        changed.stdout.contains("1 ran, 5 cached"),
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .lines()
            .any(|l| l.starts_with("small ") && l.contains(" ran ")),
        "{}",
        changed.stdout
    );
    let five = texts(&table_of(&p, "small", "train"));
    assert!(five.iter().all(|t| small_texts.contains(t)), "{five:?}");
}

#[test]
fn concat_joins_languages_with_their_source_and_label_names() {
    let p = project();
    p.write("p.yaml", &pipeline(10, NER));
    p.cairn(&["run", "p.yaml"]).ok();
    let train = table_of(&p, "both", "train");
    let words = table::string_lists(&train, "tokens", "train").unwrap();
    assert_eq!(
        words,
        [
            vec!["in", "Berlin"],
            vec!["nach", "Bonn"],
            vec!["to", "London"]
        ]
    );
    assert_eq!(
        table::strings(&train, "lang", "train").unwrap(),
        ["load-de", "load-de", "load-en"]
    );
    assert_eq!(
        labels::label_names(&train.schema()).unwrap().join(" "),
        "O B-PER I-PER B-ORG I-ORG B-LOC I-LOC"
    );
    let validation = table_of(&p, "both", "validation");
    assert_eq!(
        table::strings(&validation, "lang", "validation").unwrap(),
        ["load-de", "load-en", "load-en"]
    );
}

#[test]
fn concat_names_both_sides_when_label_names_differ() {
    let p = project();
    p.write(
        "p.yaml",
        &pipeline(10, "[O, B-ORG, I-ORG, B-PER, I-PER, B-LOC, I-LOC]"),
    );
    let run = p.cairn(&["run", "p.yaml"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(
            "split `train`: `load-de` has labels [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC] \
             but `load-en` has [O, B-ORG, I-ORG, B-PER, I-PER, B-LOC, I-LOC] (they differ at \
             id 1: `B-PER` vs `B-ORG`)"
        ) && run.stderr.contains("stage: both"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_sample_larger_than_its_split_fails_naming_both_sizes() {
    let p = project();
    p.write("p.yaml", &pipeline(31, NER));
    let run = p.cairn(&["run", "p.yaml"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("split `train` has 30 rows; `keep.train` asks for 31")
            && run.stderr.contains("ask for at most 30 rows"),
        "{}",
        run.stderr
    );
}
