//! The per-token loss analysis of a token-classification split, as the NER chapter's error
//! analysis does it: the loss of every scored sub-word aggregated by token string and by true
//! tag (count, mean, sum), and the sentences with the highest summed loss shown token by token,
//! special tokens included. `evaluate` runs it on a split whose predictions carry `token_loss`.

use std::collections::BTreeMap;
use std::fmt::Write;

use arrow::array::RecordBatch;

use super::{EvaluateParams, Names, floats, integers, strings};
use crate::api::{Output, StageError};
use crate::columns::labels::IGNORE_LABEL;
use crate::columns::table;

/// The per-sub-word loss column: `list<float>`, null where the label is -100.
const TOKEN_LOSS: &str = "token_loss";
/// The sub-word token strings, one per token (special tokens included).
const INPUT_TOKENS: &str = "input_tokens";
/// How an unscored (-100) label is shown, as the chapter does.
const IGNORED: &str = "IGN";
/// How an unscored position's loss is shown in `token-errors.txt`.
const NO_LOSS: &str = "-";
/// Rows of the by-token table in `token-errors.txt` (the `token_losses` table has them all).
const TOP_TOKENS: usize = 10;
/// The widest line of a sentence block in `token-errors.txt` before its columns wrap.
const LINE_WIDTH: usize = 100;

/// One sentence as predicted: per position its sub-word, true and predicted tag ids and loss.
struct Sentence<'a> {
    tokens: Vec<&'a str>,
    labels: Vec<i64>,
    preds: Vec<i64>,
    losses: Vec<Option<f64>>,
}

impl Sentence<'_> {
    /// The positions with a label, with their loss.
    fn scored(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.losses
            .iter()
            .enumerate()
            .filter_map(|(j, l)| l.map(|l| (j, l)))
    }

    /// The chapter's `total_loss`: the sum of the token losses.
    fn total(&self) -> f64 {
        self.scored().map(|(_, l)| l).sum()
    }

    /// Every column as long as the labels, and a finite loss exactly where a label is scored.
    fn check(&self, split: &str, row: usize, label: &str, pred: &str) -> Result<(), StageError> {
        let n = self.labels.len();
        for (column, len) in [
            (INPUT_TOKENS, self.tokens.len()),
            (pred, self.preds.len()),
            (TOKEN_LOSS, self.losses.len()),
        ] {
            if len != n {
                return Err(StageError::failed(format!(
                    "split `{split}`, row {row}: {len} values in `{column}` but {n} labels in `{label}`; \
                     the per-token loss analysis needs one per sub-word token"
                )));
            }
        }
        for (j, (&y, loss)) in self.labels.iter().zip(&self.losses).enumerate() {
            let at = || {
                format!(
                    "split `{split}`, row {row}, token {j} (`{}`)",
                    self.tokens[j]
                )
            };
            match (y == IGNORE_LABEL, loss) {
                (true, Some(v)) => {
                    return Err(StageError::failed(format!(
                        "{}: `{TOKEN_LOSS}` is {v} but the label is {IGNORE_LABEL} (unscored)",
                        at()
                    ))
                    .with_hint("an unscored token's loss must be null"));
                }
                (false, None) => {
                    return Err(StageError::failed(format!(
                        "{}: label {y} is scored but `{TOKEN_LOSS}` is null",
                        at()
                    )));
                }
                (false, Some(v)) if !v.is_finite() => {
                    return Err(StageError::failed(format!(
                        "{}: `{TOKEN_LOSS}` is {v}; the analysis takes finite losses only (look at the stage that produced it)",
                        at()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The losses of one group of tokens: a sub-word string or a true tag.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    key: String,
    count: usize,
    sum: f64,
}

impl Group {
    fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// One of a split's highest-loss sentences, token by token, as the tables and text show it.
struct TopSentence {
    row: usize,
    total: f64,
    tokens: Vec<String>,
    labels: Vec<String>,
    preds: Vec<String>,
    losses: Vec<Option<f64>>,
}

/// The analysis of one split.
pub(super) struct SplitLosses {
    /// Highest sum first, ties by token.
    by_token: Vec<Group>,
    /// Highest mean first, ties by tag.
    by_tag: Vec<Group>,
    /// Highest total first, ties by row.
    top: Vec<TopSentence>,
}

/// The analysis of a split whose table has `token_loss`; `None` when it has not.
pub(super) fn analyse(
    batch: &RecordBatch,
    split: &str,
    p: &EvaluateParams,
    names: &Names,
) -> Result<Option<SplitLosses>, StageError> {
    if batch.column_by_name(TOKEN_LOSS).is_none() {
        return Ok(None);
    }
    let tokens = input_tokens(batch, split)?;
    let labels = table::int_lists(batch, &p.label, split)?;
    let preds = table::int_lists(batch, &p.pred, split)?;
    let losses = table::float_lists(batch, TOKEN_LOSS, split)?;
    let mut sentences = Vec::with_capacity(labels.len());
    for (row, (((tokens, labels), preds), losses)) in tokens
        .into_iter()
        .zip(labels)
        .zip(preds)
        .zip(losses)
        .enumerate()
    {
        let s = Sentence {
            tokens,
            labels,
            preds,
            losses,
        };
        s.check(split, row, &p.label, &p.pred)?;
        sentences.push(s);
    }
    let mut by_token = grouped(&sentences, |s, j| s.tokens[j].to_string());
    by_token.sort_by(|a, b| b.sum.total_cmp(&a.sum).then_with(|| a.key.cmp(&b.key)));
    let mut by_tag = grouped(&sentences, |s, j| names.of(s.labels[j]));
    by_tag.sort_by(|a, b| {
        b.mean()
            .total_cmp(&a.mean())
            .then_with(|| a.key.cmp(&b.key))
    });
    let top = highest_totals(&sentences, p.top_k)
        .into_iter()
        .map(|row| shown(&sentences[row], row, names))
        .collect();
    Ok(Some(SplitLosses {
        by_token,
        by_tag,
        top,
    }))
}

/// The `input_tokens` column, or an error saying why the analysis needs it.
fn input_tokens<'a>(batch: &'a RecordBatch, split: &str) -> Result<Vec<Vec<&'a str>>, StageError> {
    if batch.column_by_name(INPUT_TOKENS).is_none() {
        return Err(StageError::failed(format!(
            "split `{split}` has `{TOKEN_LOSS}` but no `{INPUT_TOKENS}` column: the per-token loss \
             analysis groups the losses by sub-word token string"
        ))
        .with_hint(format!(
            "keep the tokenizer's token strings beside `{TOKEN_LOSS}`, as a list<utf8> column \
             `{INPUT_TOKENS}` with one string per sub-word (special tokens included)"
        )));
    }
    table::string_lists(batch, INPUT_TOKENS, split)
}

/// Count and sum of the scored losses per key, in key order.
fn grouped(sentences: &[Sentence], key: impl Fn(&Sentence, usize) -> String) -> Vec<Group> {
    let mut groups: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for s in sentences {
        for (j, loss) in s.scored() {
            let g = groups.entry(key(s, j)).or_default();
            g.0 += 1;
            g.1 += loss;
        }
    }
    groups
        .into_iter()
        .map(|(key, (count, sum))| Group { key, count, sum })
        .collect()
}

/// The rows of the `k` highest total losses, highest first, ties by row.
fn highest_totals(sentences: &[Sentence], k: usize) -> Vec<usize> {
    let totals: Vec<f64> = sentences.iter().map(Sentence::total).collect();
    let mut rows: Vec<usize> = (0..totals.len()).collect();
    rows.sort_by(|&a, &b| totals[b].total_cmp(&totals[a]).then(a.cmp(&b)));
    rows.truncate(k);
    rows
}

/// A sentence with its tags named (`IGN` where unscored).
fn shown(s: &Sentence, row: usize, names: &Names) -> TopSentence {
    let tag = |&id: &i64| {
        if id == IGNORE_LABEL {
            IGNORED.to_string()
        } else {
            names.of(id)
        }
    };
    TopSentence {
        row,
        total: s.total(),
        tokens: s.tokens.iter().map(|t| t.to_string()).collect(),
        labels: s.labels.iter().map(tag).collect(),
        preds: s.preds.iter().map(tag).collect(),
        losses: s.losses.clone(),
    }
}

/// The analyses of the splits that have one, in the order they were scored.
#[derive(Default)]
pub(super) struct TokenLossTables {
    splits: Vec<(String, SplitLosses)>,
}

impl TokenLossTables {
    pub(super) fn add(&mut self, split: &str, losses: SplitLosses) {
        self.splits.push((split.to_string(), losses));
    }

    /// The tables `token_losses`, `tag_losses` and `sentences` into `output` and the file
    /// `token-errors.txt` into `out_dir`; nothing when no split had token losses.
    pub(super) fn finish(
        self,
        out_dir: &std::path::Path,
        output: &mut Output,
    ) -> Result<(), StageError> {
        if self.splits.is_empty() {
            return Ok(());
        }
        let by_token = self.groups_table("token", |l| &l.by_token)?;
        let by_tag = self.groups_table("tag", |l| &l.by_tag)?;
        output.tables.insert("token_losses".into(), by_token);
        output.tables.insert("tag_losses".into(), by_tag);
        output
            .tables
            .insert("sentences".into(), self.sentences_table()?);
        fs_err::write(out_dir.join("token-errors.txt"), self.text())?;
        Ok(())
    }

    /// `split`, `<key>`, `count`, `mean`, `sum`: one row per group of each split.
    fn groups_table(
        &self,
        key: &str,
        groups: fn(&SplitLosses) -> &Vec<Group>,
    ) -> Result<RecordBatch, StageError> {
        let rows: Vec<(&str, &Group)> = self
            .splits
            .iter()
            .flat_map(|(split, l)| groups(l).iter().map(move |g| (split.as_str(), g)))
            .collect();
        Ok(RecordBatch::try_from_iter([
            ("split", strings(rows.iter().map(|r| r.0))),
            (key, strings(rows.iter().map(|r| r.1.key.as_str()))),
            ("count", integers(rows.iter().map(|r| r.1.count as i64))),
            ("mean", floats(rows.iter().map(|r| r.1.mean()))),
            ("sum", floats(rows.iter().map(|r| r.1.sum))),
        ])?)
    }

    /// One row per top sentence of each split, its tokens as list columns.
    fn sentences_table(&self) -> Result<RecordBatch, StageError> {
        let rows: Vec<(&str, usize, &TopSentence)> = self
            .splits
            .iter()
            .flat_map(|(split, l)| {
                l.top
                    .iter()
                    .enumerate()
                    .map(move |(rank, s)| (split.as_str(), rank + 1, s))
            })
            .collect();
        let lists = |pick: fn(&TopSentence) -> &Vec<String>| {
            table::list_utf8(&rows.iter().map(|r| pick(r.2).clone()).collect::<Vec<_>>())
        };
        let losses: Vec<Vec<Option<f64>>> = rows.iter().map(|r| r.2.losses.clone()).collect();
        Ok(RecordBatch::try_from_iter([
            ("split", strings(rows.iter().map(|r| r.0))),
            ("rank", integers(rows.iter().map(|r| r.1 as i64))),
            ("row", integers(rows.iter().map(|r| r.2.row as i64))),
            ("total_loss", floats(rows.iter().map(|r| r.2.total))),
            ("input_tokens", lists(|s| &s.tokens)),
            ("labels", lists(|s| &s.labels)),
            ("preds", lists(|s| &s.preds)),
            ("losses", table::list_f64_opt(&losses)),
        ])?)
    }

    /// `token-errors.txt`: per split, the by-token top and the by-tag table, then each top
    /// sentence as aligned rows of tokens, labels, predictions and losses.
    fn text(&self) -> String {
        let mut text = String::new();
        for (split, l) in &self.splits {
            let shown = TOP_TOKENS.min(l.by_token.len());
            let _ = writeln!(
                text,
                "== {split}: loss by token ({shown} of {} tokens, highest sum first)\n",
                l.by_token.len()
            );
            write_groups(&mut text, "token", &l.by_token[..shown]);
            let _ = writeln!(text, "== {split}: loss by tag (highest mean first)\n");
            write_groups(&mut text, "tag", &l.by_tag);
            let _ = writeln!(
                text,
                "== {split}: the {} sentences with the highest total loss\n",
                l.top.len()
            );
            for (rank, s) in l.top.iter().enumerate() {
                let _ = writeln!(
                    text,
                    "#{}: row {}, total loss {:.4}\n",
                    rank + 1,
                    s.row,
                    s.total
                );
                write_sentence(&mut text, s);
            }
        }
        text
    }
}

/// A groups table as text: key, count, mean, sum.
fn write_groups(text: &mut String, key: &str, groups: &[Group]) {
    let w = groups
        .iter()
        .map(|g| g.key.chars().count())
        .chain([key.len()])
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        text,
        "{key:<w$}  {:>6}  {:>9}  {:>9}",
        "count", "mean", "sum"
    );
    for g in groups {
        let _ = writeln!(
            text,
            "{:<w$}  {:>6}  {:>9.4}  {:>9.4}",
            g.key,
            g.count,
            g.mean(),
            g.sum
        );
    }
    text.push('\n');
}

/// A sentence as the chapter's transposed frame: a line each for tokens, labels, predictions
/// and losses, one aligned column per token, wrapped into blocks of at most [`LINE_WIDTH`].
fn write_sentence(text: &mut String, s: &TopSentence) {
    let losses: Vec<String> = s
        .losses
        .iter()
        .map(|l| l.map_or_else(|| NO_LOSS.to_string(), |v| format!("{v:.2}")))
        .collect();
    let lines = [
        ("tokens", &s.tokens),
        ("labels", &s.labels),
        ("preds", &s.preds),
        ("losses", &losses),
    ];
    let widths: Vec<usize> = (0..s.tokens.len())
        .map(|j| {
            lines
                .iter()
                .map(|(_, v)| v[j].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for block in wrapped(&widths, 6) {
        for (head, cells) in &lines {
            let mut line = format!("{head:<6}");
            for j in block.clone() {
                let _ = write!(line, "  {:<w$}", cells[j], w = widths[j]);
            }
            let _ = writeln!(text, "{}", line.trim_end());
        }
        text.push('\n');
    }
}

/// The columns of `widths` in consecutive blocks whose lines (a `head`-wide heading, then two
/// spaces and the column per column) fit [`LINE_WIDTH`]; a wider column gets a block alone.
fn wrapped(widths: &[usize], head: usize) -> Vec<std::ops::Range<usize>> {
    let mut blocks = Vec::new();
    let (mut start, mut width) = (0, head);
    for (j, w) in widths.iter().enumerate() {
        if j > start && width + 2 + w > LINE_WIDTH {
            blocks.push(start..j);
            (start, width) = (j, head);
        }
        width += 2 + w;
    }
    if start < widths.len() {
        blocks.push(start..widths.len());
    }
    blocks
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, StringArray};
    use arrow::datatypes::Float64Type;

    use super::super::Evaluate;
    use super::*;
    use crate::columns::labels;

    const NAMES: [&str; 4] = ["O", "B-PER", "I-PER", "B-LOC"];

    /// Two sentences as a token-classification prediction table: sub-words, labels (-100 on
    /// special tokens and the second piece of `▁De an`), predictions, per-token losses.
    struct Columns {
        tokens: Vec<Vec<&'static str>>,
        labels: Vec<Vec<i32>>,
        preds: Vec<Vec<i32>>,
        losses: Vec<Vec<Option<f64>>>,
    }

    fn two_sentences() -> Columns {
        Columns {
            tokens: vec![
                vec!["<s>", "▁Jeff", "▁De", "an", "▁lives", "</s>"],
                vec!["<s>", "▁Jeff", "▁in", "▁Paris", "</s>"],
            ],
            labels: vec![vec![-100, 1, 2, -100, 0, -100], vec![-100, 1, 0, 3, -100]],
            preds: vec![vec![0, 1, 2, 2, 0, 0], vec![0, 2, 0, 0, 0]],
            losses: vec![
                vec![None, Some(0.5), Some(1.0), None, Some(0.25), None],
                vec![None, Some(1.5), Some(0.25), Some(2.0), None],
            ],
        }
    }

    fn batch(c: &Columns, with_input_tokens: bool) -> RecordBatch {
        let words: Vec<Vec<&str>> =
            vec![vec!["Jeff", "Dean", "lives"], vec!["Jeff", "in", "Paris"]];
        let mut cols = vec![
            ("tokens", table::list_utf8(&words)),
            ("labels", table::list_i32(&c.labels)),
            ("pred", table::list_i32(&c.preds)),
            ("token_loss", table::list_f64_opt(&c.losses)),
        ];
        if with_input_tokens {
            cols.push(("input_tokens", table::list_utf8(&c.tokens)));
        }
        let b = RecordBatch::try_from_iter(cols).unwrap();
        let names: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
        let meta: std::collections::HashMap<_, _> =
            labels::metadata("labels", &names).into_iter().collect();
        let schema = std::sync::Arc::new(b.schema().as_ref().clone().with_metadata(meta));
        RecordBatch::try_new(schema, b.columns().to_vec()).unwrap()
    }

    fn run(c: &Columns, top_k: usize) -> Result<(Output, tempfile::TempDir), StageError> {
        let p: EvaluateParams =
            crate::params_from_yaml(&format!("label: labels\ntext: tokens\ntop-k: {top_k}"));
        crate::run_for_test::<Evaluate>(&p, [("validation".to_string(), batch(c, true))])
    }

    fn column<'a>(t: &'a RecordBatch, name: &str) -> &'a arrow::array::ArrayRef {
        t.column_by_name(name).unwrap()
    }
    fn texts(t: &RecordBatch, name: &str) -> Vec<String> {
        let a: &StringArray = column(t, name).as_string();
        a.iter().map(|s| s.unwrap().to_string()).collect()
    }
    fn ints(t: &RecordBatch, name: &str) -> Vec<i64> {
        column(t, name)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec()
    }
    fn reals(t: &RecordBatch, name: &str) -> Vec<f64> {
        column(t, name)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec()
    }

    /// By hand: ▁Jeff 0.5 + 1.5 (2 tokens), ▁Paris 2.0, ▁De 1.0, ▁in 0.25, ▁lives 0.25; `an`
    /// and the special tokens are unscored. Ties by sum go by token: ▁Jeff before ▁Paris, ▁in
    /// before ▁lives.
    #[test]
    fn losses_by_token_are_counted_averaged_and_summed_highest_sum_first() {
        let (out, _dir) = run(&two_sentences(), 1).unwrap();
        let t = &out.tables["token_losses"];
        assert_eq!(texts(t, "split"), ["validation"; 5]);
        assert_eq!(
            texts(t, "token"),
            ["▁Jeff", "▁Paris", "▁De", "▁in", "▁lives"]
        );
        assert_eq!(ints(t, "count"), [2, 1, 1, 1, 1]);
        assert_eq!(reals(t, "sum"), [2.0, 2.0, 1.0, 0.25, 0.25]);
        assert_eq!(reals(t, "mean"), [1.0, 2.0, 1.0, 0.25, 0.25]);
    }

    /// By hand: B-LOC 2.0 (1), B-PER 0.5 + 1.5 (2, mean 1.0), I-PER 1.0 (1), O 0.25 + 0.25
    /// (2, mean 0.25). B-PER and I-PER tie on the mean and go by name.
    #[test]
    fn losses_by_tag_are_sorted_by_mean_then_tag() {
        let (out, _dir) = run(&two_sentences(), 1).unwrap();
        let t = &out.tables["tag_losses"];
        assert_eq!(texts(t, "tag"), ["B-LOC", "B-PER", "I-PER", "O"]);
        assert_eq!(ints(t, "count"), [1, 2, 1, 2]);
        assert_eq!(reals(t, "mean"), [2.0, 1.0, 1.0, 0.25]);
        assert_eq!(reals(t, "sum"), [2.0, 2.0, 1.0, 0.5]);
    }

    /// Totals: row 0 0.5 + 1.0 + 0.25 = 1.75, row 1 1.5 + 0.25 + 2.0 = 3.75.
    #[test]
    fn the_highest_total_loss_sentences_come_token_by_token() {
        let (out, dir) = run(&two_sentences(), 2).unwrap();
        let t = &out.tables["sentences"];
        assert_eq!(ints(t, "rank"), [1, 2]);
        assert_eq!(ints(t, "row"), [1, 0]);
        assert_eq!(reals(t, "total_loss"), [3.75, 1.75]);
        let list = |name: &str| table::string_lists(t, name, "t").unwrap()[0].join(" ");
        assert_eq!(list("input_tokens"), "<s> ▁Jeff ▁in ▁Paris </s>");
        assert_eq!(list("labels"), "IGN B-PER O B-LOC IGN");
        assert_eq!(list("preds"), "O I-PER O O O");
        let c = two_sentences();
        assert_eq!(
            table::float_lists(t, "losses", "t").unwrap(),
            [c.losses[1].clone(), c.losses[0].clone()]
        );

        let text = std::fs::read_to_string(dir.path().join("token-errors.txt")).unwrap();
        let block = "#1: row 1, total loss 3.7500\n\n\
                     tokens  <s>  ▁Jeff  ▁in   ▁Paris  </s>\n\
                     labels  IGN  B-PER  O     B-LOC   IGN\n\
                     preds   O    I-PER  O     O       O\n\
                     losses  -    1.50   0.25  2.00    -\n";
        assert!(text.contains(block), "{text}");
        assert!(
            text.contains(
                "token    count       mean        sum\n▁Jeff        2     1.0000     2.0000\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("== validation: loss by tag (highest mean first)\n\ntag     count"),
            "{text}"
        );
    }

    #[test]
    fn equal_totals_rank_by_row_and_top_k_cuts() {
        let s = |losses: Vec<Option<f64>>| Sentence {
            tokens: vec![""; losses.len()],
            labels: vec![0; losses.len()],
            preds: vec![0; losses.len()],
            losses,
        };
        let sentences = [
            s(vec![Some(1.0)]),
            s(vec![Some(0.5), Some(1.5)]),
            s(vec![Some(2.0)]),
            s(vec![]),
        ];
        assert_eq!(highest_totals(&sentences, 10), [1, 2, 0, 3]);
        assert_eq!(highest_totals(&sentences, 2), [1, 2]);
    }

    #[test]
    fn a_long_sentence_wraps_into_blocks_that_fit_the_line() {
        // A 6-wide heading and columns of 2 + 10: seven fit in 6 + 7 × 12 = 90, eight would take 102.
        assert_eq!(wrapped(&[10; 9], 6), [0..7, 7..9]);
        assert_eq!(wrapped(&[200, 1], 6), [0..1, 1..2]);
        assert!(wrapped(&[], 6).is_empty());
    }

    #[test]
    fn without_token_loss_no_analysis_is_written() {
        let c = two_sentences();
        let b = batch(&c, true);
        let b = b.project(&[0, 1, 2, 4]).unwrap();
        let p: EvaluateParams = crate::params_from_yaml("label: labels\ntext: tokens");
        let (out, dir) =
            crate::run_for_test::<Evaluate>(&p, [("validation".to_string(), b)]).unwrap();
        assert!(!out.tables.contains_key("token_losses") && !out.tables.contains_key("sentences"));
        assert!(!dir.path().join("token-errors.txt").exists());
    }

    fn error(c: &Columns, with_input_tokens: bool) -> String {
        let p: EvaluateParams = crate::params_from_yaml("label: labels");
        let err = crate::run_for_test::<Evaluate>(
            &p,
            [("validation".to_string(), batch(c, with_input_tokens))],
        )
        .expect_err("bad data must be refused");
        format!("{err} / hint: {}", err.hint().unwrap_or(""))
    }

    #[test]
    fn a_split_without_input_tokens_is_refused_with_a_hint() {
        let err = error(&two_sentences(), false);
        assert!(
            err.contains("split `validation` has `token_loss` but no `input_tokens` column")
                && err.contains("hint: keep the tokenizer's token strings"),
            "{err}"
        );
    }

    #[test]
    fn a_token_loss_row_of_another_length_is_refused() {
        let mut c = two_sentences();
        c.losses[1].pop();
        let err = error(&c, true);
        assert!(
            err.contains(
                "split `validation`, row 1: 4 values in `token_loss` but 5 labels in `labels`"
            ),
            "{err}"
        );
        let mut c = two_sentences();
        c.tokens[0].pop();
        let err = error(&c, true);
        assert!(
            err.contains("row 0: 5 values in `input_tokens` but 6 labels"),
            "{err}"
        );
    }

    #[test]
    fn a_non_finite_token_loss_is_refused() {
        let mut c = two_sentences();
        c.losses[1][3] = Some(f64::NAN);
        let err = error(&c, true);
        assert!(
            err.contains("split `validation`, row 1, token 3 (`▁Paris`): `token_loss` is NaN"),
            "{err}"
        );
    }

    #[test]
    fn a_loss_on_an_unscored_token_is_refused() {
        let mut c = two_sentences();
        c.losses[0][3] = Some(0.0);
        let err = error(&c, true);
        assert!(
            err.contains(
                "split `validation`, row 0, token 3 (`an`): `token_loss` is 0 but the label is -100"
            ) && err.contains("hint: an unscored token's loss must be null"),
            "{err}"
        );
    }

    #[test]
    fn a_scored_token_without_a_loss_is_refused() {
        let mut c = two_sentences();
        c.losses[0][1] = None;
        let err = error(&c, true);
        assert!(err.contains("split `validation`, row 0, token 1 (`▁Jeff`): label 1 is scored but `token_loss` is null"), "{err}");
    }
}
