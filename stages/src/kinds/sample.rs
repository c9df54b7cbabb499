//! `sample`: a seeded shuffle that keeps a count or a fraction of each split (Hugging Face's
//! `shuffle(seed).select(range(n))`), optionally stratified by label, with nested subsets so a
//! learning curve over sample sizes is monotone in data.
//!
//! The rules:
//! - **Order.** Each split is shuffled by its own generator seeded with `seed` (SplitMix64,
//!   [`crate::ml::rng`], Fisher–Yates): a split's sample depends on the seed, its rows and its
//!   request only, never on the other splits, the machine or the thread count.
//! - **Nesting.** Rows are taken in one fixed *sampling order* per split, and a request for k
//!   rows keeps the first k of it: for a given seed the 250 rows are among the 500. Without
//!   `stratify` the sampling order is the shuffle itself. With it, the order is built step by
//!   step (see [`stratified_order`]) so that after every k rows each label holds its share
//!   `k · n_label / n` rounded down or up: the counts always sum to k exactly, and they never
//!   decrease as k grows (proportional rounding such as largest remainder can take a row away
//!   from a label when k grows, which would break nesting).
//! - **Output.** The kept rows in shuffled order, every column and the schema metadata (label
//!   names) kept. Metrics: `rows.<split>`.
//! - **Amounts.** A count (`250`) or a fraction of the split (`0.5`, any number written with a
//!   decimal point, in (0, 1]): k = round(fraction · rows), half up. Rounding, not truncation,
//!   so `0.29` of 100 rows is 29 although 0.29 · 100 is 28.999… in binary.
//! - **Splits not named** in a per-split `keep` are passed through unchanged: sampling the
//!   training split while evaluating on the whole validation and test splits is the learning
//!   curve's case (a downstream stage can still select one split with `stage.split`). A named
//!   split the input lacks is an error, so a typo cannot pass a split through silently.
//! - **Too many rows asked** is an error naming the split, its size and the request, never a
//!   silent clamp: a cell of a learning curve labelled n = 4000 must hold 4000 rows.
//! - **`seed`** defaults to 42, as `finetune`'s does: the canonical params record it, so the
//!   fingerprint sees the seed whether or not the pipeline wrote it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use arrow::array::UInt32Array;
use arrow::record_batch::RecordBatch;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::api::{Arity, Context, Input, Output, PrepareEnv, Stage, StageError};
use crate::columns::table;
use crate::ml::rng::Rng;

/// Params of `sample`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SampleParams {
    /// How many rows to keep: a count (`250`) or a fraction in (0, 1] (`0.5`), either for every
    /// split or per split (`{train: 250, validation: 0.5}`; splits not named pass through
    /// unchanged). Required.
    pub keep: Keep,
    /// Seeds the shuffle. Default 42.
    #[serde(default = "forty_two")]
    pub seed: u64,
    /// A column of one integer label id per row (e.g. `label`): keep each label's share of the
    /// split in every sample. Default: none (a plain shuffle).
    #[serde(default)]
    pub stratify: Option<String>,
}

fn forty_two() -> u64 {
    42
}

/// How many rows of one split to keep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Amount {
    /// This many rows.
    Count(u64),
    /// This share of the split's rows, in (0, 1].
    Fraction(f64),
}

/// `keep:` as one amount for every split, or per split.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Keep {
    Every(Amount),
    PerSplit(BTreeMap<String, Amount>),
}

const AMOUNT_EXPECTED: &str = "a row count (e.g. 250) or a fraction in (0, 1] (e.g. 0.5)";

struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(AMOUNT_EXPECTED)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
        Ok(Amount::Count(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
        u64::try_from(v)
            .map(Amount::Count)
            .map_err(|_| E::custom(format!("a row count cannot be negative, got {v}")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
        Ok(Amount::Fraction(v))
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        d.deserialize_any(AmountVisitor)
    }
}

/// One amount, or a map of split name to amount (each value read as an [`Amount`], so an error
/// in it is located at `keep.<split>`).
struct KeepVisitor;

impl<'de> Visitor<'de> for KeepVisitor {
    type Value = Keep;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{AMOUNT_EXPECTED} for every split, or per split (e.g. {{train: 250, validation: 0.5}})"
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Keep, E> {
        AmountVisitor.visit_u64(v).map(Keep::Every)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Keep, E> {
        AmountVisitor.visit_i64(v).map(Keep::Every)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Keep, E> {
        AmountVisitor.visit_f64(v).map(Keep::Every)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keep, A::Error> {
        let mut splits = BTreeMap::new();
        while let Some(split) = map.next_key::<String>()? {
            let amount = map.next_value::<Amount>()?;
            splits.insert(split, amount);
        }
        Ok(Keep::PerSplit(splits))
    }
}

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keep, D::Error> {
        d.deserialize_any(KeepVisitor)
    }
}

impl Keep {
    /// The amount asked of `split` and the param it was written in (`keep` or `keep.<split>`);
    /// `None`: the split passes through.
    fn of(&self, split: &str) -> Option<(Amount, String)> {
        match self {
            Keep::Every(a) => Some((*a, "keep".to_string())),
            Keep::PerSplit(m) => m.get(split).map(|a| (*a, format!("keep.{split}"))),
        }
    }

    /// Every amount with the param it was written in.
    fn amounts(&self) -> Vec<(Amount, String)> {
        match self {
            Keep::Every(a) => vec![(*a, "keep".to_string())],
            Keep::PerSplit(m) => m
                .iter()
                .map(|(split, a)| (*a, format!("keep.{split}")))
                .collect(),
        }
    }
}

impl Amount {
    /// Refuses amounts that keep nothing or more than everything.
    fn check(self, field: &str) -> Result<(), StageError> {
        match self {
            Amount::Count(0) => Err(StageError::param(
                field,
                format!("`{field}` asks for 0 rows"),
                Some("give a count of at least 1, or a fraction in (0, 1]".into()),
            )),
            Amount::Fraction(f) if !(f > 0.0 && f <= 1.0) => Err(StageError::param(
                field,
                format!("`{field}` is the fraction {f}, which is not in (0, 1]"),
                Some(
                    "a number with a decimal point is a fraction of the split (0.5 keeps half); \
                     write a count without one (250)"
                        .into(),
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The rows to keep of a split of `available` rows (a fraction rounds half up).
    pub fn rows(self, available: usize) -> usize {
        match self {
            Amount::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Amount::Fraction(f) => (f * available as f64).round() as usize,
        }
    }
}

/// A seeded permutation of `0..n` (Fisher–Yates driven by SplitMix64).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// One label's rows: their positions in the shuffled order, and how many are placed so far.
struct Stratum {
    positions: Vec<usize>,
    taken: usize,
}

impl Stratum {
    /// The first step (1-based) at which its next row may be placed without the label going
    /// above its share rounded up: the least h with `taken < h · size / total`.
    fn release(&self, total: usize) -> u128 {
        (self.taken as u128 * total as u128) / self.positions.len() as u128 + 1
    }

    /// The last step at which its next row must be placed for the label not to fall below its
    /// share rounded down: the least h with `taken + 1 <= h · size / total`.
    fn deadline(&self, total: usize) -> u128 {
        ((self.taken as u128 + 1) * total as u128).div_ceil(self.positions.len() as u128)
    }
}

/// The rows of each label (a null label is a label too), as positions in `shuffled`.
fn strata(shuffled: &[usize], labels: &[Option<i64>]) -> Vec<Stratum> {
    let mut by_label: BTreeMap<Option<i64>, Vec<usize>> = BTreeMap::new();
    for (position, &row) in shuffled.iter().enumerate() {
        by_label.entry(labels[row]).or_default().push(position);
    }
    by_label
        .into_values()
        .map(|positions| Stratum {
            positions,
            taken: 0,
        })
        .collect()
}

/// The stratified sampling order of a shuffled split, as positions in `shuffled` (`labels` by
/// row). Each step places the next row, in shuffled order, of one label: among the labels whose
/// next row is *released* (placing it keeps the label at or below its share rounded up), the one
/// whose *deadline* (the step by which it must be placed to stay at or above its share rounded
/// down) is earliest; ties go to the label whose next row comes first in the shuffle. This is
/// earliest-deadline-first scheduling of unit jobs in windows, and the windows always admit a
/// schedule (for any steps a..b, the rows whose windows lie inside number at most b − a + 1),
/// so every prefix of k rows holds ⌊k·nᵢ/n⌋ or ⌈k·nᵢ/n⌉ rows of each label i.
pub fn stratified_order(shuffled: &[usize], labels: &[Option<i64>]) -> Vec<usize> {
    let total = shuffled.len();
    let mut strata = strata(shuffled, labels);
    let mut waiting: BinaryHeap<Reverse<(u128, usize)>> =
        (0..strata.len()).map(|s| Reverse((1, s))).collect();
    let mut ready: BinaryHeap<Reverse<(u128, usize, usize)>> = BinaryHeap::new();
    let mut order = Vec::with_capacity(total);
    for step in 1..=total as u128 {
        // Nothing ready cannot happen (the windows admit a schedule); promoting the earliest
        // waiting label then keeps the loop total all the same.
        while let Some(&Reverse((release, s))) = waiting.peek()
            && (release <= step || ready.is_empty())
        {
            waiting.pop();
            let stratum = &strata[s];
            ready.push(Reverse((
                stratum.deadline(total),
                stratum.positions[stratum.taken],
                s,
            )));
        }
        let Some(Reverse((_, position, s))) = ready.pop() else {
            break;
        };
        order.push(position);
        let stratum = &mut strata[s];
        stratum.taken += 1;
        if stratum.taken < stratum.positions.len() {
            waiting.push(Reverse((stratum.release(total), s)));
        }
    }
    order
}

/// The rows (indices into the split) a sample of `k` keeps, in shuffled order: the first `k` of
/// the sampling order.
pub fn sample_rows(k: usize, seed: u64, n: usize, labels: Option<&[Option<i64>]>) -> Vec<usize> {
    let shuffled = permutation(n, seed);
    let mut kept: Vec<usize> = match labels {
        None => (0..k.min(n)).collect(),
        Some(labels) => stratified_order(&shuffled, labels)
            .into_iter()
            .take(k)
            .collect(),
    };
    kept.sort_unstable();
    kept.into_iter()
        .map(|position| shuffled[position])
        .collect()
}

/// The sample of one split, or the error that names its size and the request.
fn sample_split(
    p: &SampleParams,
    split: &str,
    batch: &RecordBatch,
    (amount, field): (Amount, String),
) -> Result<RecordBatch, StageError> {
    let n = batch.num_rows();
    let k = amount.rows(n);
    if k > n {
        return Err(StageError::param(
            &field,
            format!("split `{split}` has {n} rows; `{field}` asks for {k}"),
            Some(format!(
                "ask for at most {n} rows, or for a fraction (1.0 keeps every row, shuffled)"
            )),
        ));
    }
    if k == 0 && n > 0 {
        return Err(StageError::param(
            &field,
            format!("split `{split}` has {n} rows; `{field}` keeps 0 of them once rounded"),
            Some("ask for a larger fraction, or for a count".into()),
        ));
    }
    let labels = match &p.stratify {
        Some(column) => Some(table::ids(batch, column, split).map_err(|e| {
            e.at_param("stratify").with_hint(
                "`stratify` names a column of one integer label id per row, e.g. `label`",
            )
        })?),
        None => None,
    };
    let rows = sample_rows(k, p.seed, n, labels.as_deref());
    let indices = UInt32Array::from_iter_values(rows.into_iter().map(|r| r as u32));
    Ok(arrow::compute::take_record_batch(batch, &indices)?)
}

/// A split named in `keep` that the input lacks is a typo, not a pass-through.
fn check_named_splits(keep: &Keep, input: &Input) -> Result<(), StageError> {
    let Keep::PerSplit(m) = keep else {
        return Ok(());
    };
    match m.keys().find(|s| !input.tables.contains_key(*s)) {
        Some(bad) => Err(StageError::param(
            &format!("keep.{bad}"),
            format!(
                "`keep` names split `{bad}`, which input `{}` does not have (splits: {})",
                input.stage,
                input.tables.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            None,
        )),
        None => Ok(()),
    }
}

/// `sample`: seeded, nested, optionally stratified subsets of each split.
pub struct Sample;

impl Stage for Sample {
    type Params = SampleParams;
    const KIND: &'static str = "sample";
    /// Bump when the rows a sample keeps, or their order, change.
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "seeded shuffle keeping a count or fraction per split; nested sizes, optional stratify";

    fn validate(p: &SampleParams, _env: &PrepareEnv) -> Result<(), StageError> {
        if p.keep == Keep::PerSplit(BTreeMap::new()) {
            return Err(StageError::param(
                "keep",
                "`keep` names no split",
                Some("e.g. `keep: {train: 250}`, or `keep: 250` for every split".into()),
            ));
        }
        if p.stratify.as_deref() == Some("") {
            return Err(StageError::param(
                "stratify",
                "`stratify` names no column",
                Some("name the column of label ids, e.g. `stratify: label`".into()),
            ));
        }
        p.keep
            .amounts()
            .into_iter()
            .try_for_each(|(amount, field)| amount.check(&field))
    }

    fn run(p: &SampleParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        check_named_splits(&p.keep, input)?;
        let mut output = Output::default();
        for (split, batch) in &input.tables {
            ctx.check_cancelled()?;
            let sampled = match p.keep.of(split) {
                Some(request) => sample_split(p, split, batch, request)?,
                None => batch.clone(),
            };
            output
                .metrics
                .insert(format!("rows.{split}"), sampled.num_rows().into());
            output.tables.insert(split.clone(), sampled);
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::Schema;

    use super::*;
    use crate::columns::labels;

    const SEEDS: [u64; 4] = [0, 1, 42, 2024];

    /// Labels of an imbalanced split: 60% label 0, 30% label 1, 9% label 2, 1% label 3, spread
    /// over the rows in a fixed pattern.
    fn imbalanced(n: usize) -> Vec<Option<i64>> {
        (0..n)
            .map(|i| match (i * 37) % 100 {
                0..60 => Some(0),
                60..90 => Some(1),
                90..99 => Some(2),
                _ => Some(3),
            })
            .collect()
    }

    fn counts(rows: &[usize], labels: &[Option<i64>]) -> BTreeMap<Option<i64>, usize> {
        let mut c = BTreeMap::new();
        for &r in rows {
            *c.entry(labels[r]).or_insert(0) += 1;
        }
        c
    }

    fn is_subset(small: &[usize], big: &[usize]) -> bool {
        let big: std::collections::HashSet<_> = big.iter().collect();
        small.iter().all(|r| big.contains(r))
    }

    /// `text` (`row i`) and `label` (ids from `labels`), with label names in the metadata.
    fn split(labels: &[Option<i64>]) -> RecordBatch {
        let text: StringArray = (0..labels.len())
            .map(|i| Some(format!("row {i}")))
            .collect();
        let b = RecordBatch::try_from_iter([
            ("text", Arc::new(text) as ArrayRef),
            (
                "label",
                Arc::new(Int64Array::from(labels.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap();
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let meta: HashMap<String, String> = labels::metadata("label", &names).into_iter().collect();
        let schema = Schema::new(b.schema().fields().clone()).with_metadata(meta);
        b.with_schema(Arc::new(schema)).unwrap()
    }

    fn texts(batch: &RecordBatch) -> Vec<String> {
        table::strings(batch, "text", "t")
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn run(yaml: &str, tables: &[(&str, RecordBatch)]) -> Result<Output, StageError> {
        let p: SampleParams = crate::params_from_yaml(yaml);
        let tables = tables.iter().map(|(s, b)| (s.to_string(), b.clone()));
        crate::run_for_test::<Sample>(&p, tables).map(|(out, _dir)| out)
    }

    fn param_error(err: StageError) -> (String, String, Option<String>) {
        match err {
            StageError::Param {
                field,
                message,
                hint,
            } => (field, message, hint),
            other => panic!("not a param error: {other:?}"),
        }
    }

    #[test]
    fn keep_reads_as_a_count_a_fraction_or_per_split() {
        let p: SampleParams = crate::params_from_yaml("keep: 250");
        assert_eq!(p.keep, Keep::Every(Amount::Count(250)));
        assert_eq!((p.seed, p.stratify), (42, None));
        let p: SampleParams = crate::params_from_yaml("keep: 1.0\nseed: 7\nstratify: label");
        assert_eq!(p.keep, Keep::Every(Amount::Fraction(1.0)));
        assert_eq!((p.seed, p.stratify.as_deref()), (7, Some("label")));
        let p: SampleParams = crate::params_from_yaml("keep: {train: 250, validation: 0.5}");
        assert_eq!(
            p.keep,
            Keep::PerSplit(BTreeMap::from([
                ("train".into(), Amount::Count(250)),
                ("validation".into(), Amount::Fraction(0.5)),
            ]))
        );
        // The canonical form (what the fingerprint hashes) keeps count and fraction apart.
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"keep":{"train":250,"validation":0.5},"seed":42,"stratify":null}"#
        );
    }

    #[test]
    fn a_malformed_keep_is_an_error_at_its_path() {
        let parse = |json: &str| {
            crate::registry::lookup("sample")
                .unwrap()
                .parse(serde_json::from_str(json).unwrap())
                .err()
                .map(|e| (e.path.join("."), e.message))
                .expect("refused")
        };
        assert_eq!(
            parse(r#"{"keep": {"train": -3}}"#),
            (
                "keep.train".into(),
                "a row count cannot be negative, got -3".into()
            )
        );
        let (path, message) = parse(r#"{"keep": {"train": "all"}}"#);
        assert_eq!(path, "keep.train");
        assert!(message.contains(AMOUNT_EXPECTED), "{message}");
        let (path, message) = parse(r#"{"keep": [250]}"#);
        assert_eq!(path, "keep");
        assert!(message.contains("per split (e.g. {train: 250"), "{message}");
        assert_eq!(parse(r#"{"seed": 1}"#).1, "missing field `keep`");
    }

    #[test]
    fn validate_refuses_amounts_that_keep_nothing_or_more_than_everything() {
        let env = PrepareEnv {
            root: std::path::Path::new("."),
            offline: true,
        };
        let refused = |yaml: &str| {
            let p: SampleParams = crate::params_from_yaml(yaml);
            param_error(Sample::validate(&p, &env).unwrap_err())
        };
        let (field, message, hint) = refused("keep: 0");
        assert_eq!(
            (field.as_str(), message.as_str()),
            ("keep", "`keep` asks for 0 rows")
        );
        assert!(hint.unwrap().contains("at least 1"));
        let (field, message, hint) = refused("keep: {train: 100, validation: 1.5}");
        assert_eq!(field, "keep.validation");
        assert_eq!(
            message,
            "`keep.validation` is the fraction 1.5, which is not in (0, 1]"
        );
        assert!(hint.unwrap().contains("write a count without one"));
        assert_eq!(
            refused("keep: 0.0").1,
            "`keep` is the fraction 0, which is not in (0, 1]"
        );
        assert_eq!(refused("keep: {}").1, "`keep` names no split");
        assert_eq!(
            refused("keep: 5\nstratify: ''"),
            (
                "stratify".into(),
                "`stratify` names no column".into(),
                Some("name the column of label ids, e.g. `stratify: label`".into())
            )
        );
        let p: SampleParams = crate::params_from_yaml("keep: {train: 1, test: 1.0}");
        assert!(Sample::validate(&p, &env).is_ok());
    }

    #[test]
    fn fractions_round_half_up_not_down() {
        assert_eq!(Amount::Fraction(0.29).rows(100), 29);
        assert_eq!(Amount::Fraction(0.5).rows(5), 3);
        assert_eq!(Amount::Fraction(0.5).rows(4), 2);
        assert_eq!(Amount::Fraction(1.0).rows(7), 7);
        assert_eq!(Amount::Count(3).rows(7), 3);
    }

    /// Pinned: the shuffle is the same on every machine (a change here changes every sample,
    /// and needs a VERSION bump).
    #[test]
    fn the_shuffle_is_pinned_by_the_seed() {
        assert_eq!(permutation(10, 42), PINNED_42);
        assert_eq!(permutation(10, 42), permutation(10, 42));
        assert_ne!(permutation(10, 42), permutation(10, 43));
        let mut sorted = permutation(1000, 7);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert!(permutation(0, 1).is_empty());
    }

    /// Also what an independent Python SplitMix64 + Fisher–Yates gives for seed 42.
    const PINNED_42: [usize; 10] = [1, 6, 2, 9, 7, 5, 4, 3, 0, 8];

    #[test]
    fn smaller_samples_are_inside_larger_ones() {
        let n = 1000;
        let sizes = [1, 10, 250, 500, 999, 1000];
        for seed in SEEDS {
            let samples: Vec<Vec<usize>> = sizes
                .iter()
                .map(|&k| sample_rows(k, seed, n, None))
                .collect();
            for (k, rows) in sizes.iter().zip(&samples) {
                assert_eq!(rows.len(), *k);
            }
            for pair in samples.windows(2) {
                // The smaller sample is the larger one's first rows.
                assert_eq!(pair[0][..], pair[1][..pair[0].len()], "seed {seed}");
            }
        }
    }

    #[test]
    fn smaller_stratified_samples_are_inside_larger_ones() {
        let n = 1000;
        let labels = imbalanced(n);
        let sizes = [1, 7, 10, 250, 251, 500, 999, 1000];
        for seed in SEEDS {
            let samples: Vec<Vec<usize>> = sizes
                .iter()
                .map(|&k| sample_rows(k, seed, n, Some(&labels)))
                .collect();
            for (k, rows) in sizes.iter().zip(&samples) {
                assert_eq!(rows.len(), *k);
            }
            for pair in samples.windows(2) {
                assert!(is_subset(&pair[0], &pair[1]), "seed {seed}");
            }
        }
    }

    /// Every prefix of the stratified order (every sample size) holds each label's share
    /// rounded down or up, for several label layouts, including labels with 1 or 2 rows.
    #[test]
    fn every_stratified_sample_keeps_each_labels_share_within_rounding() {
        let layouts: Vec<Vec<Option<i64>>> = vec![
            imbalanced(1000),
            imbalanced(97),
            (0..50).map(|i| Some(i64::from(i % 7 == 0))).collect(),
            (0..30)
                .map(|i| if i == 3 { None } else { Some(i % 2) })
                .collect(),
            (0..12).map(Some).collect(),
            vec![Some(5); 9],
        ];
        for labels in &layouts {
            let n = labels.len();
            let sizes = counts(&(0..n).collect::<Vec<_>>(), labels);
            for seed in SEEDS {
                let shuffled = permutation(n, seed);
                let order = stratified_order(&shuffled, labels);
                assert_eq!(order.len(), n);
                let mut held: BTreeMap<Option<i64>, usize> = BTreeMap::new();
                for (k, &position) in order.iter().enumerate().map(|(i, p)| (i + 1, p)) {
                    *held.entry(labels[shuffled[position]]).or_insert(0) += 1;
                    for (label, &size) in &sizes {
                        let got = held.get(label).copied().unwrap_or(0);
                        let (lo, hi) = ((k * size) / n, (k * size).div_ceil(n));
                        assert!(
                            (lo..=hi).contains(&got),
                            "n {n}, seed {seed}, k {k}: label {label:?} has {got}, share {lo}..={hi}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_stratified_sample_by_hand() {
        // 6 of label 0, 3 of label 1, 1 of label 2: 5 rows are 3 + 1 or 2 + 0 or 1.
        let labels: Vec<Option<i64>> = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2].map(Some).to_vec();
        for seed in SEEDS {
            let c = counts(&sample_rows(5, seed, 10, Some(&labels)), &labels);
            assert_eq!(c[&Some(0)], 3, "seed {seed}: {c:?}");
            assert_eq!(c.values().sum::<usize>(), 5);
            // 2 rows: label 0 first (its share, 1.2, is due soonest), then label 0 or 1; the
            // rare label 2 (share 0.2) waits.
            let c = counts(&sample_rows(2, seed, 10, Some(&labels)), &labels);
            assert!((1..=2).contains(&c[&Some(0)]), "seed {seed}: {c:?}");
            assert_eq!(c.get(&Some(2)), None, "seed {seed}: {c:?}");
        }
    }

    #[test]
    fn kept_rows_come_in_shuffled_order() {
        let labels = imbalanced(200);
        let shuffled = permutation(200, 42);
        let rank: HashMap<usize, usize> =
            shuffled.iter().enumerate().map(|(i, &r)| (r, i)).collect();
        let rows = sample_rows(50, 42, 200, Some(&labels));
        assert!(rows.windows(2).all(|w| rank[&w[0]] < rank[&w[1]]));
        assert_eq!(sample_rows(50, 42, 200, None), shuffled[..50]);
    }

    #[test]
    fn the_stage_samples_named_splits_and_passes_the_others_through() {
        let train = split(&imbalanced(40));
        let validation = split(&imbalanced(10));
        let out = run(
            "keep: {train: 10}\nstratify: label",
            &[("train", train.clone()), ("validation", validation.clone())],
        )
        .unwrap();
        assert_eq!(out.tables["validation"], validation);
        let sampled = &out.tables["train"];
        assert_eq!(sampled.num_rows(), 10);
        assert_eq!(sampled.schema(), train.schema());
        let want: Vec<String> = sample_rows(10, 42, 40, Some(&imbalanced(40)))
            .iter()
            .map(|r| format!("row {r}"))
            .collect();
        assert_eq!(texts(sampled), want);
        assert_eq!(out.metrics["rows.train"], 10);
        assert_eq!(out.metrics["rows.validation"], 10);

        let again = run(
            "keep: 0.5",
            &[("train", train.clone()), ("validation", validation)],
        )
        .unwrap();
        assert_eq!(again.metrics["rows.validation"], 5);
        let larger = run("keep: 30", &[("train", train.clone())]).unwrap();
        let smaller = run("keep: 0.25", &[("train", train.clone())]).unwrap();
        let (small, large) = (
            texts(&smaller.tables["train"]),
            texts(&larger.tables["train"]),
        );
        assert_eq!(small[..], large[..10]);
        let other_seed = run("keep: 10\nseed: 43", &[("train", train)]).unwrap();
        assert_ne!(texts(&other_seed.tables["train"]), small);
    }

    #[test]
    fn the_same_request_gives_the_same_bytes() {
        let train = split(&imbalanced(300));
        let a = run(
            "keep: 120\nstratify: label\nseed: 9",
            &[("train", train.clone())],
        )
        .unwrap();
        let b = run("keep: 120\nstratify: label\nseed: 9", &[("train", train)]).unwrap();
        assert_eq!(a.tables, b.tables);
    }

    #[test]
    fn run_errors_name_the_split_its_size_and_the_request() {
        let tables = [
            ("train", split(&imbalanced(40))),
            ("test", split(&imbalanced(3))),
        ];
        let (field, message, hint) = param_error(run("keep: {train: 50}", &tables).unwrap_err());
        assert_eq!(field, "keep.train");
        assert_eq!(
            message,
            "split `train` has 40 rows; `keep.train` asks for 50"
        );
        assert_eq!(
            hint.as_deref(),
            Some("ask for at most 40 rows, or for a fraction (1.0 keeps every row, shuffled)")
        );
        let (field, message, _) = param_error(run("keep: 0.1", &tables).unwrap_err());
        assert_eq!(field, "keep");
        assert_eq!(
            message,
            "split `test` has 3 rows; `keep` keeps 0 of them once rounded"
        );
        let (field, message, _) = param_error(run("keep: {trian: 5}", &tables).unwrap_err());
        assert_eq!(field, "keep.trian");
        assert_eq!(
            message,
            "`keep` names split `trian`, which input `upstream` does not have (splits: test, train)"
        );
        let (field, message, hint) =
            param_error(run("keep: {train: 5}\nstratify: labels", &tables).unwrap_err());
        assert_eq!(field, "stratify");
        assert_eq!(
            message,
            "split `train` has no column `labels` (columns: text, label)"
        );
        assert!(hint.unwrap().contains("one integer label id per row"));
        let (_, message, _) =
            param_error(run("keep: {train: 5}\nstratify: text", &tables).unwrap_err());
        assert_eq!(
            message,
            "column `text` of split `train` is Utf8, expected integer label ids"
        );
    }
}
