//! Entity-level scores for token classification as the `seqeval` package computes them in its
//! default (non-strict) mode, which the NER chapter uses: tags are IOB2-style (`B-PER`,
//! `I-PER`, `O`), an entity is a (type, start, end) span, and a prediction counts only when
//! its span and type match exactly. Like `seqeval`, an `I-` tag after `O` or after another
//! type opens an entity (conlleval's lenient rule), and sentences never run into each other.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// One entity: its type and the first and last token positions (over all sentences).
type Span = (String, usize, usize);

/// Precision, recall and F1 over entities, micro-averaged, with zero for an empty ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EntityScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// How many true entities.
    pub support: usize,
}

/// Overall and per-type scores.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityReport {
    pub overall: EntityScores,
    /// By entity type (`PER`, `LOC`, ...), sorted by name.
    pub per_type: BTreeMap<String, EntityScores>,
}

/// Splits a tag into its prefix letter and type the way `seqeval.get_entities` does:
/// `B-PER` → (`B`, `PER`), `O` → (`O`, `_`).
fn parse(tag: &str) -> (char, &str) {
    let mut chars = tag.chars();
    let prefix = chars.next().unwrap_or('O');
    let rest = chars.as_str();
    let kind = rest.split_once('-').map_or(rest, |(_, t)| t);
    (prefix, if kind.is_empty() { "_" } else { kind })
}

fn end_of_chunk(prev: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(prev, 'E' | 'S')
        || (matches!(prev, 'B' | 'I') && matches!(tag, 'B' | 'S' | 'O'))
        || (prev != 'O' && prev != '.' && prev_type != kind)
}

fn start_of_chunk(prev: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (matches!(prev, 'E' | 'S' | 'O') && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_type != kind)
}

/// The entities in `sentences`, positions counted over the sentences joined with an `O`
/// between them (as `seqeval` flattens nested lists).
pub fn entities<S: AsRef<str>>(sentences: &[Vec<S>]) -> BTreeSet<Span> {
    let mut flat: Vec<&str> = Vec::new();
    for s in sentences {
        flat.extend(s.iter().map(AsRef::as_ref));
        flat.push("O");
    }
    flat.push("O");
    let mut chunks = BTreeSet::new();
    let (mut prev, mut prev_type) = ('O', "_");
    let mut begin = 0;
    for (i, tag) in flat.iter().enumerate() {
        let (t, kind) = parse(tag);
        if end_of_chunk(prev, t, prev_type, kind) {
            chunks.insert((prev_type.to_string(), begin, i - 1));
        }
        if start_of_chunk(prev, t, prev_type, kind) {
            begin = i;
        }
        prev = t;
        prev_type = kind;
    }
    chunks
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn scores(correct: usize, predicted: usize, support: usize) -> EntityScores {
    let precision = ratio(correct, predicted);
    let recall = ratio(correct, support);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    EntityScores {
        precision,
        recall,
        f1,
        support,
    }
}

/// Scores predicted tag sequences against true ones (same sentence lengths).
pub fn score<S: AsRef<str>>(truth: &[Vec<S>], pred: &[Vec<S>]) -> EntityReport {
    let t = entities(truth);
    let p = entities(pred);
    let correct: BTreeSet<&Span> = t.intersection(&p).collect();
    let types: BTreeSet<&String> = t.iter().chain(&p).map(|(k, _, _)| k).collect();
    let count = |set: &BTreeSet<Span>, k: &str| set.iter().filter(|(x, _, _)| x == k).count();
    let per_type = types
        .into_iter()
        // seqeval's report lists the types of the true entities (and predicted ones, with
        // support 0); `_` would only come from a tag without a type.
        .map(|k| {
            let c = correct.iter().filter(|(x, _, _)| x == k).count();
            (k.clone(), scores(c, count(&p, k), count(&t, k)))
        })
        .collect();
    EntityReport {
        overall: scores(correct.len(), p.len(), t.len()),
        per_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_seqeval_package_on_hand_made_cases() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/seqeval.json");
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let tags = |v: &serde_json::Value| -> Vec<Vec<String>> {
            serde_json::from_value(v.clone()).unwrap()
        };
        let cases = fixture["cases"].as_array().unwrap();
        assert!(cases.len() >= 8);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let r = score(&tags(&case["true"]), &tags(&case["pred"]));
            for (got, key) in [
                (r.overall.precision, "precision"),
                (r.overall.recall, "recall"),
                (r.overall.f1, "f1"),
            ] {
                let want = case[key].as_f64().unwrap();
                assert!((got - want).abs() < 1e-12, "{name} {key}: {got} vs {want}");
            }
            let want_types = case["per_type"].as_object().unwrap();
            for (k, want) in want_types {
                let got = r
                    .per_type
                    .get(k)
                    .unwrap_or_else(|| panic!("{name}: no {k}"));
                assert!(
                    (got.f1 - want["f1"].as_f64().unwrap()).abs() < 1e-12,
                    "{name} {k}"
                );
                assert_eq!(
                    got.support as u64,
                    want["support"].as_u64().unwrap(),
                    "{name} {k}"
                );
            }
        }
    }

    #[test]
    fn an_inside_tag_after_outside_opens_an_entity() {
        let e = entities(&[vec!["O", "I-PER", "I-PER", "B-LOC"]]);
        let want: BTreeSet<Span> = [("PER".into(), 1, 2), ("LOC".into(), 3, 3)].into();
        assert_eq!(e, want);
    }
}
