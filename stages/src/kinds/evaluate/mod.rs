//! `evaluate`: how good a classifier's predictions are, per split, as the chapter looks at them:
//! accuracy, weighted and macro F1, scikit-learn's `classification_report`, the row-normalised
//! confusion matrix (table and heatmap), and — when the input carries probabilities, logits or
//! a per-example loss — the error analysis: the examples with the highest and lowest loss.
//!
//! Input: one table per split with the true label ids and either predicted ids (`pred`) or
//! scores to take the argmax of (`probs` or `logits`, `fixed_size_list<float>[k]`), e.g. the
//! output of `classify` or of a fine-tuning stage (`label`, `pred`, `logits`, `loss`, `text`).
//! Label names come from the schema metadata (see [`crate::columns::labels`]).
//!
//! Token labels (list columns, e.g. a token-classification `finetune`'s `labels` and `pred`,
//! -100 where unscored): the report and confusion matrix count the scored tokens, and the
//! metrics add seqeval's entity precision, recall and F1 (report.txt lists them per type).
//!
//! Per-token losses (the NER chapter's error analysis): when a token split also has
//! `token_loss` (`list<float>`, the cross-entropy of the true tag per sub-word, null exactly
//! where the label is -100) and `input_tokens` (`list<utf8>`, the sub-word strings, special
//! tokens included), evaluate aggregates the scored losses by sub-word and by true tag, and
//! shows the `top-k` sentences with the highest summed loss token by token. Without
//! `input_tokens` the split is refused (the analysis groups by token string); so is a row whose
//! `token_loss` or `input_tokens` length differs from its labels, a non-finite token loss, a
//! loss where the label is -100 or a null one where it is scored. `token_loss` is read for
//! token labels only.
//!
//! Outputs: tables `report` (one row per class and per average, per split), `confusion`
//! (row-normalised, one row per true label, one column per predicted label) and `errors` (top
//! and bottom `top-k` by loss); files `report.txt` (the report and confusion counts as text),
//! `errors.txt` and `confusion-<split>.png`; metrics `{split: {accuracy, f1_weighted,
//! f1_macro[, loss]}}` (token labels add `entity_precision`, `entity_recall`, `entity_f1`).
//!
//! With per-token losses, also: table `token_losses` (`split`, `token`, `count` int64, `mean`,
//! `sum`: every scored sub-word string, highest sum first, ties by token), table `tag_losses`
//! (`split`, `tag` (true tag name), `count`, `mean`, `sum`: highest mean first, ties by tag),
//! table `sentences` (`split`, `rank` and `row` int64, `total_loss`, and token by token
//! `input_tokens`, `labels` and `preds` as tag names — `IGN` where unscored — and `losses`,
//! `list<float64>` null where unscored: the `top-k` highest totals, ties by row), and file
//! `token-errors.txt` (per split: the 10 highest-sum tokens, the tags, then each top sentence
//! as aligned lines of tokens, labels, preds and losses, `-` where unscored).

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{Arity, Context, Input, Output, Stage, StageError};
use crate::columns::labels::IGNORE_LABEL;
use crate::columns::matrix::read_f64 as matrix;
use crate::columns::table::ids;
use crate::metrics::scores::Report;
use crate::metrics::seqeval::EntityReport;
use crate::numeric::argmax;
use crate::{columns::labels, columns::table, figures::heatmap, metrics::seqeval};

mod token_losses;

/// Picks the gold or the predicted tag ids of a scored row.
type PickTags = fn(&(Vec<i64>, Vec<i64>)) -> &Vec<i64>;

/// Params of `evaluate`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EvaluateParams {
    /// The splits to score. Default: every split with labels but `train`; `train` only when no
    /// other split has labels (and the stage says so). Splits without labels are skipped and
    /// listed (printed, in `report.txt` and in the metric `skipped`); none with labels is an
    /// error.
    #[serde(default)]
    pub splits: Option<Vec<String>>,
    /// The true label ids. Default `label`.
    #[serde(default = "label")]
    pub label: String,
    /// The predicted label ids; when the input has no such column, the argmax of `probs` or
    /// `logits`. Default `pred`.
    #[serde(default = "pred")]
    pub pred: String,
    /// The text shown in the error analysis. Default `text`.
    #[serde(default = "text")]
    pub text: String,
    /// How many highest- and lowest-loss examples to list, and, for token labels with
    /// `token_loss`, how many highest-total-loss sentences to show token by token. Default 10.
    #[serde(default = "ten")]
    pub top_k: usize,
}

fn label() -> String {
    "label".into()
}
fn pred() -> String {
    "pred".into()
}
fn text() -> String {
    "text".into()
}
fn ten() -> usize {
    10
}

/// Per-example cross-entropy of the true label: the input's `loss` column when it has one,
/// else from `probs` (−log p, p clipped to ε as scikit-learn's `log_loss`), else from `logits`
/// (log Σ exp z − z_y). `None` when the input has none of them.
fn example_loss(
    batch: &RecordBatch,
    split: &str,
    truth: &[i64],
) -> Result<Option<Vec<f64>>, StageError> {
    if batch.column_by_name("loss").is_some() {
        let loss = crate::columns::matrix::read_scalars(batch, "loss", split)?;
        return Ok(Some(
            loss.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
        ));
    }
    let scores = |name: &str| -> Result<Option<(Vec<f64>, usize)>, StageError> {
        if batch.column_by_name(name).is_none() {
            return Ok(None);
        }
        let (m, k) = matrix(batch, name, split)?;
        if let Some(&bad) = truth.iter().find(|&&y| y < 0 || y as usize >= k) {
            return Err(StageError::failed(format!(
                "split `{split}`: label {bad} has no entry in `{name}` ({k} per row)"
            )));
        }
        Ok(Some((m, k)))
    };
    if let Some((probs, k)) = scores("probs")? {
        return Ok(Some(
            truth
                .iter()
                .enumerate()
                .map(|(i, &y)| {
                    -probs[i * k + y as usize]
                        .clamp(f64::EPSILON, 1.0 - f64::EPSILON)
                        .ln()
                })
                .collect(),
        ));
    }
    if let Some((logits, k)) = scores("logits")? {
        return Ok(Some(
            truth
                .iter()
                .enumerate()
                .map(|(i, &y)| {
                    let z = &logits[i * k..(i + 1) * k];
                    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() - z[y as usize]
                })
                .collect(),
        ));
    }
    Ok(None)
}

/// Predicted ids: the `pred` column, or the argmax of `probs` / `logits`.
fn predictions(
    batch: &RecordBatch,
    p: &EvaluateParams,
    split: &str,
) -> Result<Vec<i64>, StageError> {
    if batch.column_by_name(&p.pred).is_some() {
        return ids(batch, &p.pred, split)?
            .into_iter()
            .enumerate()
            .map(|(row, v)| {
                v.ok_or_else(|| {
                    StageError::failed(format!("split `{split}`, row {row}: `{}` is null", p.pred))
                })
            })
            .collect();
    }
    for name in ["probs", "logits"] {
        if batch.column_by_name(name).is_some() {
            let (m, k) = matrix(batch, name, split)?;
            return Ok(m.chunks_exact(k.max(1)).map(|r| argmax(r) as i64).collect());
        }
    }
    Err(StageError::failed(format!(
        "split `{split}` has neither a `{}` column nor `probs` / `logits` to predict from",
        p.pred
    )))
}

/// True and predicted labels as scored. Sequence task: one per row. Token task (list
/// columns, e.g. from a token-classification `finetune`): every token whose label is not -100,
/// flattened, plus the per-row sequences for entity scoring and error analysis.
struct Scored {
    truth: Vec<i64>,
    pred: Vec<i64>,
    rows: Option<Vec<(Vec<i64>, Vec<i64>)>>,
}

fn scored_labels(
    batch: &RecordBatch,
    p: &EvaluateParams,
    split: &str,
) -> Result<Scored, StageError> {
    let label_col = table::column(batch, &p.label, split)?;
    if !matches!(label_col.data_type(), arrow::datatypes::DataType::List(_)) {
        let truth: Vec<i64> = ids(batch, &p.label, split)?
            .into_iter()
            .enumerate()
            .map(|(row, v)| {
                v.ok_or_else(|| {
                    StageError::failed(format!(
                        "split `{split}`, row {row}: label `{}` is null",
                        p.label
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let pred = predictions(batch, p, split)?;
        return Ok(Scored {
            truth,
            pred,
            rows: None,
        });
    }
    let labels = table::int_lists(batch, &p.label, split)?;
    let preds = table::int_lists(batch, &p.pred, split)?;
    let (mut truth, mut pred, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (l, q)) in labels.iter().zip(&preds).enumerate() {
        if l.len() != q.len() {
            return Err(StageError::failed(format!(
                "split `{split}` row {i}: {} labels in `{}` but {} predictions in `{}`",
                l.len(),
                p.label,
                q.len(),
                p.pred
            )));
        }
        let (t, r): (Vec<i64>, Vec<i64>) = l
            .iter()
            .zip(q)
            .filter(|(t, _)| **t != IGNORE_LABEL)
            .map(|(t, q)| (*t, *q))
            .unzip();
        truth.extend(&t);
        pred.extend(&r);
        rows.push((t, r));
    }
    Ok(Scored {
        truth,
        pred,
        rows: Some(rows),
    })
}

/// The text column for the error analysis; a list of words is joined with spaces.
fn shown_texts(
    batch: &RecordBatch,
    name: &str,
    split: &str,
) -> Result<Option<Vec<String>>, StageError> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(None);
    };
    if matches!(col.data_type(), arrow::datatypes::DataType::List(_)) {
        return Ok(Some(
            table::string_lists(batch, name, split)?
                .into_iter()
                .map(|w| w.join(" "))
                .collect(),
        ));
    }
    Ok(Some(
        table::strings(batch, name, split)?
            .into_iter()
            .map(str::to_string)
            .collect(),
    ))
}

/// One row of the confusion table: split, true label, (predicted label, fraction) per column.
type ConfusionRow = (String, String, Vec<(String, f64)>);

/// One row of the `report` table: a class, an average, or the accuracy (NaN precision and
/// recall) of one split.
struct ReportRow {
    split: String,
    label: String,
    precision: f64,
    recall: f64,
    f1: f64,
    support: i64,
}

/// One row of the `errors` table: an example among the highest or lowest losses of a split.
struct ErrorRow {
    split: String,
    /// `highest` or `lowest`.
    kind: &'static str,
    /// 1-based, within the kind.
    rank: i64,
    row: i64,
    text: String,
    label: String,
    predicted: String,
    loss: f64,
}

/// One example of the error analysis.
struct Example {
    row: usize,
    loss: f64,
}

/// Label ids as the report shows them: their recorded names, else the number.
struct Names(Option<Vec<String>>);

impl Names {
    fn of(&self, id: i64) -> String {
        self.0
            .as_deref()
            .and_then(|n| labels::int2str(n, id))
            .map_or_else(|| id.to_string(), str::to_string)
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// The splits scored by default, and why others were not.
#[derive(Debug, PartialEq)]
struct DefaultSplits {
    splits: Vec<String>,
    /// Prediction tables without labels: (split, why).
    skipped: Vec<(String, String)>,
    /// Only `train` has labels, so only it is scored.
    training_only: bool,
}

/// Every labelled split but `train`, or `train` when it is the only labelled one (said so, never
/// silently). Prediction tables without labels are skipped with a reason; tables that hold no
/// predictions (e.g. a fine-tune's `history`) are not splits to score. No labelled split at all
/// is an error.
fn default_splits(
    tables: &crate::api::Tables,
    p: &EvaluateParams,
    input: &str,
) -> Result<DefaultSplits, StageError> {
    let mut labelled = Vec::new();
    let mut skipped = Vec::new();
    for (split, t) in tables {
        let has = |c: &str| t.column_by_name(c).is_some();
        if has(&p.label) {
            labelled.push(split.clone());
        } else if has(&p.pred) || has("probs") || has("logits") {
            skipped.push((split.clone(), format!("no `{}` column", p.label)));
        }
    }
    let held_out: Vec<String> = labelled.iter().filter(|s| *s != "train").cloned().collect();
    if !held_out.is_empty() {
        return Ok(DefaultSplits {
            splits: held_out,
            skipped,
            training_only: false,
        });
    }
    if labelled.is_empty() {
        return Err(StageError::param(
            "label",
            format!(
                "no split of input `{input}` has a `{}` column, so there is nothing to score (splits: {})",
                p.label,
                tables.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            Some("evaluate compares predictions with true labels: set `label:` to the column that holds them".into()),
        ));
    }
    Ok(DefaultSplits {
        splits: labelled,
        skipped,
        training_only: true,
    })
}

/// `evaluate`: scores, report, confusion matrix and error analysis.
pub struct Evaluate;

impl Stage for Evaluate {
    type Params = EvaluateParams;
    const KIND: &'static str = "evaluate";
    /// Bump when a score, table or file changes. 2: splits skipped for want of labels are
    /// named (report.txt, metric `skipped`), never silently replaced by `train`. 3: a token
    /// split with `token_loss` adds the per-token loss analysis (`token_losses`, `tag_losses`,
    /// `sentences`, `token-errors.txt`); other outputs are unchanged.
    const VERSION: u32 = 3;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str = "accuracy, F1, classification report, confusion matrix (table + PNG) and highest/lowest-loss examples";

    fn run(p: &EvaluateParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let chosen = chosen_splits(p, input)?;
        for n in &chosen.notes {
            ctx.progress.println(&format!("{}: {n}", ctx.stage));
        }
        let mut written = Written::default();
        let mut output = Output::default();
        for split in &chosen.splits {
            ctx.check_cancelled()?;
            let metrics = evaluate_split(p, ctx, &input.tables[split], split, &mut written)?;
            output.metrics.insert(split.clone(), metrics);
        }
        if !chosen.skipped.is_empty() {
            output.metrics.insert(
                "skipped".into(),
                chosen
                    .skipped
                    .iter()
                    .map(|(s, why)| (s.clone(), json!(why)))
                    .collect(),
            );
        }
        written.finish(&chosen.notes, ctx.out_dir, &mut output)?;
        Ok(output)
    }
}

/// The splits to score, and what to tell about the choice.
struct Chosen {
    splits: Vec<String>,
    /// Prediction tables left out by default for want of labels: (split, why).
    skipped: Vec<(String, String)>,
    /// Lines for the log and the top of `report.txt`.
    notes: Vec<String>,
}

/// `splits`, each of which the input must have, or the [`default_splits`] with notes on what
/// was left out.
fn chosen_splits(p: &EvaluateParams, input: &Input) -> Result<Chosen, StageError> {
    if let Some(list) = &p.splits {
        for s in list {
            input.table_named_by("splits", s)?;
        }
        return Ok(Chosen {
            splits: list.clone(),
            skipped: Vec::new(),
            notes: Vec::new(),
        });
    }
    let chosen = default_splits(&input.tables, p, &input.stage)?;
    let mut notes: Vec<String> = chosen
        .skipped
        .iter()
        .map(|(split, why)| format!("skipped split `{split}`: {why}"))
        .collect();
    if chosen.training_only {
        notes.push("only `train` has labels: these scores measure fit, not generalisation".into());
    }
    Ok(Chosen {
        splits: chosen.splits,
        skipped: chosen.skipped,
        notes,
    })
}

/// Scores one split and returns its metrics; its report, confusion and error rows and text go
/// to `written`, its heatmap to `confusion-<split>.png`.
fn evaluate_split(
    p: &EvaluateParams,
    ctx: &Context,
    batch: &RecordBatch,
    split: &str,
    written: &mut Written,
) -> Result<serde_json::Value, StageError> {
    let names = Names(labels::label_names(&batch.schema()));
    let scored = scored_labels(batch, p, split)?;
    let report = Report::new(&scored.truth, &scored.pred, |id| names.of(id));
    let mut m = json!({
        "accuracy": report.accuracy,
        "f1_weighted": report.weighted_avg.f1,
        "f1_macro": report.macro_avg.f1,
    });
    if let Some(rows) = &scored.rows {
        // Token classification: entities as seqeval scores them.
        let entities = entity_scores(rows, &names);
        m["entity_precision"] = json!(entities.overall.precision);
        m["entity_recall"] = json!(entities.overall.recall);
        m["entity_f1"] = json!(entities.overall.f1);
        write_entity_report(&mut written.report_txt, split, rows.len(), &entities);
        if let Some(losses) = token_losses::analyse(batch, split, p, &names)? {
            written.token_losses.add(split, losses);
        }
    }
    let normalized = report.confusion_normalized();
    let n = scored.truth.len();
    write_report(&mut written.report_txt, split, n, &report, &normalized);
    written.add_report_rows(split, n, &report);
    written.add_confusion_rows(split, &report, &normalized);
    heatmap::confusion_heatmap(
        &ctx.out_dir.join(format!("confusion-{split}.png")),
        &normalized,
        &report.names,
        &format!("Normalized confusion matrix ({split})"),
    )?;

    let per_row_truth: &[i64] = if scored.rows.is_some() {
        &[]
    } else {
        &scored.truth
    };
    if let Some(loss) = example_loss(batch, split, per_row_truth)? {
        let mean = loss.iter().sum::<f64>() / loss.len().max(1) as f64;
        m["loss"] = json!(mean);
        let texts = shown_texts(batch, &p.text, split)?;
        let shown = shown_labels(&scored, &names);
        written.add_examples(split, p.top_k, &loss, texts.as_deref(), &shown);
    }
    Ok(m)
}

/// seqeval's entity scores of the token rows (true, predicted tag ids).
fn entity_scores(rows: &[(Vec<i64>, Vec<i64>)], names: &Names) -> EntityReport {
    let tags = |pick: PickTags| -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| pick(r).iter().map(|&i| names.of(i)).collect())
            .collect()
    };
    seqeval::score(&tags(|r| &r.0), &tags(|r| &r.1))
}

/// Label and prediction of each row, as the error analysis shows them (a token row: its tags
/// joined with spaces).
fn shown_labels(scored: &Scored, names: &Names) -> Vec<(String, String)> {
    match &scored.rows {
        None => scored
            .truth
            .iter()
            .zip(&scored.pred)
            .map(|(t, p)| (names.of(*t), names.of(*p)))
            .collect(),
        Some(rows) => rows
            .iter()
            .map(|(t, p)| {
                let tags =
                    |v: &Vec<i64>| v.iter().map(|&i| names.of(i)).collect::<Vec<_>>().join(" ");
                (tags(t), tags(p))
            })
            .collect(),
    }
}

/// `report.txt`'s entity section of a token split.
fn write_entity_report(text: &mut String, split: &str, sentences: usize, entities: &EntityReport) {
    let _ = writeln!(
        text,
        "== {split}: entities ({sentences} sentences, seqeval)\n\n{:>12} {:>9} {:>9} {:>9} {:>9}",
        "", "precision", "recall", "f1-score", "support"
    );
    let all = std::iter::once(("micro avg".to_string(), entities.overall));
    for (k, e) in entities.per_type.clone().into_iter().chain(all) {
        let _ = writeln!(
            text,
            "{k:>12} {:>9.4} {:>9.4} {:>9.4} {:>9}",
            e.precision, e.recall, e.f1, e.support
        );
    }
    let _ = writeln!(text, "\ntoken-level scores (tokens with a label):\n");
}

/// `report.txt`'s section of a split: scikit-learn's report and the confusion matrix, counts
/// and row-normalised side by side.
fn write_report(
    text: &mut String,
    split: &str,
    examples: usize,
    report: &Report,
    normalized: &[Vec<f64>],
) {
    let _ = writeln!(text, "== {split} ({examples} examples)\n");
    text.push_str(&report.text(2));
    let _ = writeln!(
        text,
        "\nconfusion matrix (rows: true, columns: predicted)\n"
    );
    let w = report
        .names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(1)
        .max(6);
    let _ = write!(text, "{:>w$}", "");
    for n in &report.names {
        let _ = write!(text, " {n:>w$}");
    }
    text.push('\n');
    for (t, n) in report.names.iter().enumerate() {
        let _ = write!(text, "{n:>w$}");
        for c in &report.confusion[t] {
            let _ = write!(text, " {c:>w$}");
        }
        let _ = write!(text, "   |");
        for v in &normalized[t] {
            let _ = write!(text, " {v:>5.2}");
        }
        text.push('\n');
    }
    text.push('\n');
}

/// The examples with the highest losses (NaN last, ties by row) and the `k` lowest non-NaN
/// ones (lowest first).
fn highest_and_lowest(loss: &[f64], k: usize) -> [(&'static str, Vec<Example>); 2] {
    let mut order: Vec<Example> = loss
        .iter()
        .enumerate()
        .map(|(row, &loss)| Example { row, loss })
        .collect();
    // Highest first; NaN last; ties by row for a stable order.
    order.sort_by(|a, b| {
        b.loss
            .partial_cmp(&a.loss)
            .unwrap_or_else(|| a.loss.is_nan().cmp(&b.loss.is_nan()))
            .then(a.row.cmp(&b.row))
    });
    let k = k.min(order.len());
    let mut lowest: Vec<Example> = order
        .iter()
        .rev()
        .filter(|e| !e.loss.is_nan())
        .take(k)
        .map(|e| Example {
            row: e.row,
            loss: e.loss,
        })
        .collect();
    lowest.sort_by(|a, b| a.loss.total_cmp(&b.loss).then(a.row.cmp(&b.row)));
    order.truncate(k);
    [("highest", order), ("lowest", lowest)]
}

/// What the splits add up to: the rows of the `report`, `confusion` and `errors` tables, the
/// text of `report.txt` and `errors.txt`, and the per-token loss analyses.
#[derive(Default)]
struct Written {
    report_rows: Vec<ReportRow>,
    confusion_rows: Vec<ConfusionRow>,
    error_rows: Vec<ErrorRow>,
    report_txt: String,
    errors_txt: String,
    token_losses: token_losses::TokenLossTables,
}

impl Written {
    /// A row per class, the macro and weighted averages, and the accuracy.
    fn add_report_rows(&mut self, split: &str, examples: usize, report: &Report) {
        let rows = report
            .names
            .iter()
            .zip(&report.per_class)
            .map(|(n, s)| (n.as_str(), *s))
            .chain([
                ("macro avg", report.macro_avg),
                ("weighted avg", report.weighted_avg),
            ]);
        for (n, s) in rows {
            self.report_rows.push(ReportRow {
                split: split.to_string(),
                label: n.to_string(),
                precision: s.precision,
                recall: s.recall,
                f1: s.f1,
                support: s.support as i64,
            });
        }
        self.report_rows.push(ReportRow {
            split: split.to_string(),
            label: "accuracy".into(),
            precision: f64::NAN,
            recall: f64::NAN,
            f1: report.accuracy,
            support: examples as i64,
        });
    }

    /// A row per true label: the fraction predicted as each label.
    fn add_confusion_rows(&mut self, split: &str, report: &Report, normalized: &[Vec<f64>]) {
        for (t, n) in report.names.iter().enumerate() {
            let cells = report
                .names
                .iter()
                .cloned()
                .zip(normalized[t].iter().copied())
                .collect();
            self.confusion_rows
                .push((split.to_string(), n.clone(), cells));
        }
    }

    /// The `top_k` highest- and lowest-loss examples, as rows and as `errors.txt` text.
    fn add_examples(
        &mut self,
        split: &str,
        top_k: usize,
        loss: &[f64],
        texts: Option<&[String]>,
        shown: &[(String, String)],
    ) {
        let text = &mut self.errors_txt;
        for (kind, list) in highest_and_lowest(loss, top_k) {
            let k = top_k.min(loss.len());
            let _ = writeln!(text, "== {split}: {k} {kind}-loss examples\n");
            let _ = writeln!(
                text,
                "{:>5}  {:>8}  {:<12}  {:<12}  text",
                "row", "loss", "label", "predicted"
            );
            for (rank, e) in list.iter().enumerate() {
                let t = texts.map_or("", |t| t[e.row].as_str());
                let (label, predicted) = &shown[e.row];
                let _ = writeln!(
                    text,
                    "{:>5}  {:>8.4}  {:<12}  {:<12}  {}",
                    e.row,
                    e.loss,
                    truncate(label, 12),
                    truncate(predicted, 12),
                    truncate(t, 120)
                );
                self.error_rows.push(ErrorRow {
                    split: split.to_string(),
                    kind,
                    rank: rank as i64 + 1,
                    row: e.row as i64,
                    text: t.to_string(),
                    label: label.clone(),
                    predicted: predicted.clone(),
                    loss: e.loss,
                });
            }
            text.push('\n');
        }
    }

    /// The tables into `output`, the text files into `out_dir` (`notes` head `report.txt`).
    fn finish(
        mut self,
        notes: &[String],
        out_dir: &std::path::Path,
        output: &mut Output,
    ) -> Result<(), StageError> {
        if !notes.is_empty() {
            self.report_txt
                .insert_str(0, &format!("{}\n\n", notes.join("\n")));
        }
        output
            .tables
            .insert("report".into(), report_table(&self.report_rows)?);
        output
            .tables
            .insert("confusion".into(), confusion_table(&self.confusion_rows)?);
        if !self.error_rows.is_empty() {
            output
                .tables
                .insert("errors".into(), errors_table(&self.error_rows)?);
            fs_err::write(out_dir.join("errors.txt"), self.errors_txt)?;
        }
        fs_err::write(out_dir.join("report.txt"), self.report_txt)?;
        self.token_losses.finish(out_dir, output)
    }
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn floats(values: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(values))
}

fn integers(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

/// The `report` table.
fn report_table(rows: &[ReportRow]) -> Result<RecordBatch, StageError> {
    Ok(RecordBatch::try_from_iter([
        ("split", strings(rows.iter().map(|r| r.split.as_str()))),
        ("label", strings(rows.iter().map(|r| r.label.as_str()))),
        ("precision", floats(rows.iter().map(|r| r.precision))),
        ("recall", floats(rows.iter().map(|r| r.recall))),
        ("f1-score", floats(rows.iter().map(|r| r.f1))),
        ("support", integers(rows.iter().map(|r| r.support))),
    ])?)
}

/// The wide `confusion` table over the union of labels seen in the splits (0 where a split
/// lacks a label); a label named `split` or `label` becomes `pred:split` / `pred:label`.
fn confusion_table(rows: &[ConfusionRow]) -> Result<RecordBatch, StageError> {
    let mut columns: Vec<String> = Vec::new();
    for (_, _, cells) in rows {
        for (n, _) in cells {
            if !columns.contains(n) {
                columns.push(n.clone());
            }
        }
    }
    let mut table: Vec<(String, ArrayRef)> = vec![
        ("split".into(), strings(rows.iter().map(|r| r.0.as_str()))),
        ("label".into(), strings(rows.iter().map(|r| r.1.as_str()))),
    ];
    for c in &columns {
        let v = rows
            .iter()
            .map(|r| r.2.iter().find(|(n, _)| n == c).map_or(0.0, |x| x.1));
        let name = if c == "split" || c == "label" {
            format!("pred:{c}")
        } else {
            c.clone()
        };
        table.push((name, floats(v)));
    }
    Ok(RecordBatch::try_from_iter(table)?)
}

/// The `errors` table.
fn errors_table(rows: &[ErrorRow]) -> Result<RecordBatch, StageError> {
    Ok(RecordBatch::try_from_iter([
        ("split", strings(rows.iter().map(|r| r.split.as_str()))),
        ("kind", strings(rows.iter().map(|r| r.kind))),
        ("rank", integers(rows.iter().map(|r| r.rank))),
        ("row", integers(rows.iter().map(|r| r.row))),
        ("text", strings(rows.iter().map(|r| r.text.as_str()))),
        ("label", strings(rows.iter().map(|r| r.label.as_str()))),
        (
            "predicted",
            strings(rows.iter().map(|r| r.predicted.as_str())),
        ),
        ("loss", floats(rows.iter().map(|r| r.loss))),
    ])?)
}

#[cfg(test)]
mod tests {

    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Field, Float64Type, Schema};

    use super::*;
    use crate::columns::matrix::fixed_size_list_f32;

    fn fixture() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/classify/metrics.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A token-classification fine-tune's output: aligned labels (-100 unscored), per-token
    /// predictions, words, per-sentence loss. Entities are scored as seqeval does (lenient:
    /// an I- tag after O opens an entity), tokens with a label in the report.
    #[test]
    fn token_labels_get_entity_scores_and_a_token_report() {
        let names: Vec<String> = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let labels = vec![
            vec![-100, 1, 2, 0, -100],
            vec![-100, 5, 0, -100],
            vec![-100, 3, -100],
        ];
        let preds = vec![vec![0, 1, 2, 0, 0], vec![3, 6, 0, 0], vec![0, 0, 0]];
        let words = vec![
            vec!["Jeff", "Dean", "works"],
            vec!["Paris", "rocks"],
            vec!["Google"],
        ];
        let batch = RecordBatch::try_from_iter([
            ("tokens", table::list_utf8(&words)),
            ("labels", table::list_i32(&labels)),
            ("pred", table::list_i32(&preds)),
            (
                "loss",
                Arc::new(Float64Array::from(vec![0.1, 0.5, 2.0])) as ArrayRef,
            ),
        ])
        .unwrap();
        let meta: std::collections::HashMap<String, String> =
            labels::metadata("labels", &names).into_iter().collect();
        let schema = Arc::new(batch.schema().as_ref().clone().with_metadata(meta));
        let batch = RecordBatch::try_new(schema, batch.columns().to_vec()).unwrap();
        let p: EvaluateParams = crate::params_from_yaml("label: labels\ntext: tokens\ntop-k: 1");
        let (out, dir) =
            crate::run_for_test::<Evaluate>(&p, [("validation".to_string(), batch)]).unwrap();
        let m = &out.metrics["validation"];
        // Entities: PER and LOC found (I-LOC after O opens LOC), ORG missed: P 1, R 2/3.
        assert_eq!(m["entity_precision"], 1.0);
        assert!((m["entity_recall"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m["entity_f1"].as_f64().unwrap() - 0.8).abs() < 1e-12);
        // Tokens with a label: 6, of which 4 right (I-LOC for B-LOC and O for B-ORG are wrong).
        assert!((m["accuracy"].as_f64().unwrap() - 4.0 / 6.0).abs() < 1e-12);
        let report = std::fs::read_to_string(dir.path().join("report.txt")).unwrap();
        assert!(
            report.contains("entities (3 sentences, seqeval)") && report.contains("ORG"),
            "{report}"
        );
        let errors = std::fs::read_to_string(dir.path().join("errors.txt")).unwrap();
        assert!(
            errors.contains("Google") && errors.contains("B-ORG"),
            "{errors}"
        );
    }

    /// What a fine-tuning stage writes: label, pred, logits (no probs, no loss), text.
    fn finetune_like(with_pred: bool) -> RecordBatch {
        let fx = fixture();
        let names: Vec<String> = serde_json::from_value(fx["names"].clone()).unwrap();
        let y: Vec<i64> = serde_json::from_value(fx["y_true"].clone()).unwrap();
        let pred: Vec<i64> = serde_json::from_value(fx["y_pred"].clone()).unwrap();
        let logits: Vec<Vec<f64>> = serde_json::from_value(fx["logits"].clone()).unwrap();
        let k = names.len();
        let mut fields = vec![
            Field::new("text", DataType::Utf8, false),
            Field::new("label", DataType::Int64, false),
            Field::new(
                "logits",
                DataType::FixedSizeList(
                    Arc::new(Field::new_list_field(DataType::Float32, false)),
                    k as i32,
                ),
                false,
            ),
        ];
        let text: Vec<String> = (0..y.len()).map(|i| format!("tweet number {i}")).collect();
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(text)),
            Arc::new(Int64Array::from(y)),
            fixed_size_list_f32(logits.concat().iter().map(|&v| v as f32).collect(), k),
        ];
        if with_pred {
            fields.push(Field::new("pred", DataType::Int64, false));
            cols.push(Arc::new(Int64Array::from(pred)));
        }
        let schema = Schema::new(fields).with_metadata(
            labels::metadata("label", &names)
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        RecordBatch::try_new(Arc::new(schema), cols).unwrap()
    }

    fn run(p: &EvaluateParams, tables: Vec<(&str, RecordBatch)>) -> (Output, tempfile::TempDir) {
        crate::run_for_test::<Evaluate>(p, tables.into_iter().map(|(s, b)| (s.to_string(), b)))
            .unwrap()
    }

    #[test]
    fn logits_input_gives_scikit_learn_scores_and_loss_ranking() {
        let fx = fixture();
        let p: EvaluateParams = crate::params_from_yaml("top-k: 3");
        let b = finetune_like(true);
        let (out, dir) = run(&p, vec![("train", b.clone()), ("validation", b)]);
        // train is left out by default.
        assert_eq!(out.metrics.keys().collect::<Vec<_>>(), ["validation"]);
        let m = &out.metrics["validation"];
        let close = |a: &serde_json::Value, b: &serde_json::Value| {
            (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-12
        };
        assert!(close(&m["accuracy"], &fx["accuracy"]));
        assert!(close(&m["f1_weighted"], &fx["f1_weighted"]));
        assert!(close(&m["f1_macro"], &fx["f1_macro"]));
        let loss: Vec<f64> = serde_json::from_value(fx["loss"].clone()).unwrap();
        let mean = loss.iter().sum::<f64>() / loss.len() as f64;
        // Logits went through float32.
        assert!((m["loss"].as_f64().unwrap() - mean).abs() < 1e-5, "{m}");

        let report = std::fs::read_to_string(dir.path().join("report.txt")).unwrap();
        assert!(
            report.contains(fx["report_text"].as_str().unwrap()),
            "{report}"
        );
        let png = std::fs::read(dir.path().join("confusion-validation.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");

        let errors = &out.tables["errors"];
        assert_eq!(errors.num_rows(), 6);
        let rows: Vec<i64> = errors
            .column_by_name("row")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec();
        let mut by_loss: Vec<usize> = (0..loss.len()).collect();
        by_loss.sort_by(|&a, &b| loss[b].total_cmp(&loss[a]));
        let want: Vec<i64> = by_loss[..3]
            .iter()
            .chain(by_loss.iter().rev().take(3))
            .map(|&r| r as i64)
            .collect();
        assert_eq!(rows, want);
        let got_loss = errors
            .column_by_name("loss")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert!((got_loss.value(0) - loss[by_loss[0]]).abs() < 1e-5);
        let text = std::fs::read_to_string(dir.path().join("errors.txt")).unwrap();
        assert!(
            text.contains(&format!("tweet number {}", by_loss[0])),
            "{text}"
        );

        let conf = &out.tables["confusion"];
        let want: Vec<Vec<f64>> =
            serde_json::from_value(fx["confusion_normalized"].clone()).unwrap();
        assert_eq!(conf.num_rows(), want.len());
        let sadness = conf
            .column_by_name("sadness")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert!((sadness.value(0) - want[0][0]).abs() < 1e-12);
        let report = &out.tables["report"];
        assert_eq!(report.num_rows(), 5 + 3);
    }

    #[test]
    fn without_pred_the_argmax_of_the_logits_is_the_prediction() {
        let p: EvaluateParams = crate::params_from_yaml("splits: [validation]");
        let b = finetune_like(false);
        let (out, _dir) = run(&p, vec![("validation", b.clone())]);
        let fx = fixture();
        let logits: Vec<Vec<f64>> = serde_json::from_value(fx["logits"].clone()).unwrap();
        let y: Vec<i64> = serde_json::from_value(fx["y_true"].clone()).unwrap();
        let correct = logits
            .iter()
            .zip(&y)
            .filter(|(l, y)| argmax(l) as i64 == **y)
            .count();
        assert_eq!(
            out.metrics["validation"]["accuracy"],
            json!(correct as f64 / y.len() as f64)
        );
    }

    /// Regression: a validation split without labels made the default fall back, silently, to
    /// scoring `train` (training accuracy 1.0 as the only metric).
    #[test]
    fn default_splits_skip_unlabelled_ones_and_say_so() {
        let p: EvaluateParams = crate::params_from_yaml("top-k: 1");
        let ids = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
        let with_labels =
            RecordBatch::try_from_iter([("label", ids(vec![0])), ("pred", ids(vec![0]))]).unwrap();
        let without = RecordBatch::try_from_iter([("pred", ids(vec![1]))]).unwrap();
        let history = RecordBatch::try_from_iter([("epoch", ids(vec![1]))]).unwrap();
        let tables = |v: Vec<(&str, &RecordBatch)>| -> crate::api::Tables {
            v.into_iter()
                .map(|(s, b)| (s.to_string(), b.clone()))
                .collect()
        };

        let got = default_splits(
            &tables(vec![
                ("train", &with_labels),
                ("validation", &without),
                ("history", &history),
            ]),
            &p,
            "lr",
        )
        .unwrap();
        assert_eq!(got.splits, ["train"]);
        assert!(got.training_only);
        assert_eq!(
            got.skipped,
            [("validation".to_string(), "no `label` column".to_string())]
        );

        let got = default_splits(
            &tables(vec![
                ("train", &with_labels),
                ("validation", &with_labels),
                ("test", &without),
            ]),
            &p,
            "lr",
        )
        .unwrap();
        assert_eq!(
            (got.splits, got.training_only),
            (vec!["validation".to_string()], false)
        );
        assert_eq!(got.skipped.len(), 1);

        let err = default_splits(&tables(vec![("validation", &without)]), &p, "lr").unwrap_err();
        assert!(
            err.to_string()
                .contains("no split of input `lr` has a `label` column"),
            "{err}"
        );
    }
}
