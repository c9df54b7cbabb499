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
//! Outputs: tables `report` (one row per class and per average, per split), `confusion`
//! (row-normalised, one row per true label, one column per predicted label) and `errors` (top
//! and bottom `top-k` by loss); files `report.txt` (the report and confusion counts as text),
//! `errors.txt` and `confusion-<split>.png`; metrics `{split: {accuracy, f1_weighted,
//! f1_macro[, loss]}}`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{Arity, Context, Output, Stage, StageError};
use crate::columns::matrix::read_f64 as matrix;
use crate::columns::table::ids;
use crate::metrics::scores::Report;
use crate::ml::logreg::argmax;
use crate::{columns::labels, columns::table, figures::heatmap, metrics::seqeval};

/// Picks the gold or the predicted tag ids of a scored row.
type PickTags = fn(&(Vec<i64>, Vec<i64>)) -> &Vec<i64>;

/// Params of `evaluate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// How many highest- and lowest-loss examples to list. Default 10.
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

/// The label the token task does not score.
const IGNORE_LABEL: i64 = -100;

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

/// One example of the error analysis.
struct Example {
    row: usize,
    loss: f64,
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
    /// named (report.txt, metric `skipped`), never silently replaced by `train`.
    const VERSION: u32 = 2;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str = "accuracy, F1, classification report, confusion matrix (table + PNG) and highest/lowest-loss examples";

    fn run(p: &EvaluateParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        // Splits left out by default, and what to tell about the choice.
        let mut skipped: Vec<(String, String)> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let splits: Vec<String> = match &p.splits {
            Some(list) => {
                for s in list {
                    if !input.tables.contains_key(s) {
                        return Err(StageError::param(
                            "splits",
                            format!(
                                "input `{}` has no split `{s}` (splits: {})",
                                input.stage,
                                input.tables.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                            None,
                        ));
                    }
                }
                list.clone()
            }
            None => {
                let chosen = default_splits(&input.tables, p, &input.stage)?;
                for (split, why) in &chosen.skipped {
                    notes.push(format!("skipped split `{split}`: {why}"));
                }
                if chosen.training_only {
                    notes.push(
                        "only `train` has labels: these scores measure fit, not generalisation"
                            .into(),
                    );
                }
                for n in &notes {
                    ctx.progress.println(&format!("{}: {n}", ctx.stage));
                }
                skipped = chosen.skipped;
                chosen.splits
            }
        };

        let mut output = Output::default();
        let mut report_txt = String::new();
        let mut errors_txt = String::new();
        // Table rows, accumulated over splits.
        let mut rep: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let (mut rep_p, mut rep_r, mut rep_f, mut rep_s) = (vec![], vec![], vec![], vec![]);
        let mut conf_rows: Vec<ConfusionRow> = vec![];
        let (mut err_split, mut err_kind, mut err_rank, mut err_row) =
            (vec![], vec![], vec![], vec![]);
        let (mut err_text, mut err_label, mut err_pred, mut err_loss) =
            (vec![], vec![], vec![], vec![]);

        for split in &splits {
            ctx.check_cancelled()?;
            let batch = &input.tables[split];
            let names = labels::label_names(&batch.schema());
            let name = |id: i64| {
                names
                    .as_deref()
                    .and_then(|n| labels::int2str(n, id))
                    .map_or_else(|| id.to_string(), str::to_string)
            };
            let scored = scored_labels(batch, p, split)?;
            let (truth, pred) = (&scored.truth, &scored.pred);
            let report = Report::new(truth, pred, name);
            let mut m = json!({
                "accuracy": report.accuracy,
                "f1_weighted": report.weighted_avg.f1,
                "f1_macro": report.macro_avg.f1,
            });
            // Label and prediction of each row, as the error analysis shows them.
            let shown: Vec<(String, String)> = match &scored.rows {
                None => truth
                    .iter()
                    .zip(pred)
                    .map(|(t, p)| (name(*t), name(*p)))
                    .collect(),
                Some(rows) => rows
                    .iter()
                    .map(|(t, p)| {
                        let tags =
                            |v: &Vec<i64>| v.iter().map(|&i| name(i)).collect::<Vec<_>>().join(" ");
                        (tags(t), tags(p))
                    })
                    .collect(),
            };
            if let Some(rows) = &scored.rows {
                // Token classification: entities as seqeval scores them.
                let tags = |pick: PickTags| -> Vec<Vec<String>> {
                    rows.iter()
                        .map(|r| pick(r).iter().map(|&i| name(i)).collect())
                        .collect()
                };
                let entities = seqeval::score(&tags(|r| &r.0), &tags(|r| &r.1));
                m["entity_precision"] = json!(entities.overall.precision);
                m["entity_recall"] = json!(entities.overall.recall);
                m["entity_f1"] = json!(entities.overall.f1);
                let _ = writeln!(
                    report_txt,
                    "== {split}: entities ({} sentences, seqeval)\n\n{:>12} {:>9} {:>9} {:>9} {:>9}",
                    rows.len(),
                    "",
                    "precision",
                    "recall",
                    "f1-score",
                    "support"
                );
                let all = std::iter::once(("micro avg".to_string(), entities.overall));
                for (k, e) in entities.per_type.clone().into_iter().chain(all) {
                    let _ = writeln!(
                        report_txt,
                        "{k:>12} {:>9.4} {:>9.4} {:>9.4} {:>9}",
                        e.precision, e.recall, e.f1, e.support
                    );
                }
                let _ = writeln!(report_txt, "\ntoken-level scores (tokens with a label):\n");
            }

            let _ = writeln!(report_txt, "== {split} ({} examples)\n", truth.len());
            report_txt.push_str(&report.text(2));
            let _ = writeln!(
                report_txt,
                "\nconfusion matrix (rows: true, columns: predicted)\n"
            );
            let w = report
                .names
                .iter()
                .map(|n| n.chars().count())
                .max()
                .unwrap_or(1)
                .max(6);
            let _ = write!(report_txt, "{:>w$}", "");
            for n in &report.names {
                let _ = write!(report_txt, " {n:>w$}");
            }
            report_txt.push('\n');
            let normalized = report.confusion_normalized();
            for (t, n) in report.names.iter().enumerate() {
                let _ = write!(report_txt, "{n:>w$}");
                for c in &report.confusion[t] {
                    let _ = write!(report_txt, " {c:>w$}");
                }
                let _ = write!(report_txt, "   |");
                for v in &normalized[t] {
                    let _ = write!(report_txt, " {v:>5.2}");
                }
                report_txt.push('\n');
            }
            report_txt.push('\n');

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
                rep.entry("split").or_default().push(split.clone());
                rep.entry("label").or_default().push(n.to_string());
                rep_p.push(s.precision);
                rep_r.push(s.recall);
                rep_f.push(s.f1);
                rep_s.push(s.support as i64);
            }
            rep.entry("split").or_default().push(split.clone());
            rep.entry("label").or_default().push("accuracy".into());
            rep_p.push(f64::NAN);
            rep_r.push(f64::NAN);
            rep_f.push(report.accuracy);
            rep_s.push(truth.len() as i64);
            for (t, n) in report.names.iter().enumerate() {
                let cells = report
                    .names
                    .iter()
                    .cloned()
                    .zip(normalized[t].iter().copied())
                    .collect();
                conf_rows.push((split.clone(), n.clone(), cells));
            }
            heatmap::confusion_heatmap(
                &ctx.out_dir.join(format!("confusion-{split}.png")),
                &normalized,
                &report.names,
                &format!("Normalized confusion matrix ({split})"),
            )?;

            let per_row_truth: &[i64] = if scored.rows.is_some() { &[] } else { truth };
            if let Some(loss) = example_loss(batch, split, per_row_truth)? {
                let mean = loss.iter().sum::<f64>() / loss.len().max(1) as f64;
                m["loss"] = json!(mean);
                let texts = shown_texts(batch, &p.text, split)?;
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
                let k = p.top_k.min(order.len());
                let mut lowest: Vec<&Example> = order
                    .iter()
                    .rev()
                    .filter(|e| !e.loss.is_nan())
                    .take(k)
                    .collect();
                lowest.sort_by(|a, b| a.loss.total_cmp(&b.loss).then(a.row.cmp(&b.row)));
                for (kind, list) in [
                    ("highest", order.iter().take(k).collect::<Vec<_>>()),
                    ("lowest", lowest),
                ] {
                    let _ = writeln!(errors_txt, "== {split}: {k} {kind}-loss examples\n");
                    let _ = writeln!(
                        errors_txt,
                        "{:>5}  {:>8}  {:<12}  {:<12}  text",
                        "row", "loss", "label", "predicted"
                    );
                    for (rank, e) in list.iter().enumerate() {
                        let t = texts.as_ref().map_or("", |t| t[e.row].as_str());
                        let _ = writeln!(
                            errors_txt,
                            "{:>5}  {:>8.4}  {:<12}  {:<12}  {}",
                            e.row,
                            e.loss,
                            truncate(&shown[e.row].0, 12),
                            truncate(&shown[e.row].1, 12),
                            truncate(t, 120)
                        );
                        err_split.push(split.clone());
                        err_kind.push(kind.to_string());
                        err_rank.push(rank as i64 + 1);
                        err_row.push(e.row as i64);
                        err_text.push(t.to_string());
                        err_label.push(shown[e.row].0.clone());
                        err_pred.push(shown[e.row].1.clone());
                        err_loss.push(e.loss);
                    }
                    errors_txt.push('\n');
                }
            }
            output.metrics.insert(split.clone(), m);
        }

        if !notes.is_empty() {
            report_txt.insert_str(0, &format!("{}\n\n", notes.join("\n")));
        }
        if !skipped.is_empty() {
            output.metrics.insert(
                "skipped".into(),
                skipped
                    .iter()
                    .map(|(s, why)| (s.clone(), json!(why)))
                    .collect(),
            );
        }

        let strings = |v: &Vec<String>| Arc::new(StringArray::from(v.clone())) as ArrayRef;
        let floats = |v: Vec<f64>| Arc::new(Float64Array::from(v)) as ArrayRef;
        let report_table = RecordBatch::try_from_iter([
            ("split", strings(&rep["split"])),
            ("label", strings(&rep["label"])),
            ("precision", floats(rep_p)),
            ("recall", floats(rep_r)),
            ("f1-score", floats(rep_f)),
            ("support", Arc::new(Int64Array::from(rep_s)) as ArrayRef),
        ])?;
        output.tables.insert("report".into(), report_table);

        // Wide confusion table over the union of labels seen in the splits.
        let mut columns: Vec<String> = Vec::new();
        for (_, _, cells) in &conf_rows {
            for (n, _) in cells {
                if !columns.contains(n) {
                    columns.push(n.clone());
                }
            }
        }
        let mut conf: Vec<(String, ArrayRef)> = vec![
            (
                "split".into(),
                strings(&conf_rows.iter().map(|r| r.0.clone()).collect()),
            ),
            (
                "label".into(),
                strings(&conf_rows.iter().map(|r| r.1.clone()).collect()),
            ),
        ];
        for c in &columns {
            let v = conf_rows
                .iter()
                .map(|r| r.2.iter().find(|(n, _)| n == c).map_or(0.0, |x| x.1))
                .collect();
            let name = if c == "split" || c == "label" {
                format!("pred:{c}")
            } else {
                c.clone()
            };
            conf.push((name, floats(v)));
        }
        output
            .tables
            .insert("confusion".into(), RecordBatch::try_from_iter(conf)?);

        if !err_split.is_empty() {
            let errors = RecordBatch::try_from_iter([
                ("split", strings(&err_split)),
                ("kind", strings(&err_kind)),
                ("rank", Arc::new(Int64Array::from(err_rank)) as ArrayRef),
                ("row", Arc::new(Int64Array::from(err_row)) as ArrayRef),
                ("text", strings(&err_text)),
                ("label", strings(&err_label)),
                ("predicted", strings(&err_pred)),
                ("loss", floats(err_loss)),
            ])?;
            output.tables.insert("errors".into(), errors);
            std::fs::write(ctx.out_dir.join("errors.txt"), errors_txt)?;
        }
        std::fs::write(ctx.out_dir.join("report.txt"), report_txt)?;
        Ok(output)
    }
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
