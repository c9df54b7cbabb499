//! `describe`: the chapter's first look at a labelled text dataset, drawn and cached. Per split
//! described: how often each class occurs (a horizontal bar chart) and how many words its texts
//! have (a box plot per class; words are whitespace-separated, as `str.split()` counts them).
//!
//! Output, per split: a table of one row per class (`label`, `count`, `share`, and the words per
//! text's `words_min`, `words_q1`, `words_median`, `words_q3`, `words_max`, `words_mean`), the
//! figures `<split>-classes.png` and `<split>-words-per-text.png`, and the metrics `rows` and
//! `classes`.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{Arity, Context, Output, Stage, StageError};
use crate::columns::{labels, table};
use crate::figures::distribution::{BoxStats, box_plot, class_bars};

/// Params of `describe`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DescribeParams {
    /// The text column. Default `text`.
    #[serde(default = "text")]
    pub text: String,
    /// The label-id column (its names from the table's label metadata). Default `label`.
    #[serde(default = "label")]
    pub label: String,
    /// The splits to describe, each of which the input must have. Default `[train]`.
    #[serde(default = "train_only")]
    pub splits: Vec<String>,
}

fn text() -> String {
    "text".into()
}
fn label() -> String {
    "label".into()
}
fn train_only() -> Vec<String> {
    vec!["train".into()]
}

/// One class of one split.
struct ClassSummary {
    name: String,
    count: usize,
    words: Vec<f64>,
}

/// `describe`: class frequencies and words per text, as tables and figures.
pub struct Describe;

impl Stage for Describe {
    type Params = DescribeParams;
    const KIND: &'static str = "describe";
    /// Bump when the summary or the figures change.
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "class frequencies and words per text per class, as tables and the chapter's two figures";

    fn run(p: &DescribeParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let mut output = Output::default();
        let mut metrics = serde_json::Map::new();
        for split in &p.splits {
            let batch = input.tables.get(split).ok_or_else(|| {
                let have: Vec<&str> = input.tables.keys().map(String::as_str).collect();
                StageError::param(
                    "splits",
                    format!(
                        "the input has no split `{split}` (splits: {})",
                        have.join(", ")
                    ),
                    None,
                )
            })?;
            let classes = summarise(batch, p, split)?;
            output
                .tables
                .insert(split.clone(), summary_table(&classes, batch.num_rows())?);
            draw(ctx, split, &classes)?;
            metrics.insert(
                split.clone(),
                json!({"rows": batch.num_rows(), "classes": classes.iter().filter(|c| c.count > 0).count()}),
            );
        }
        output.metrics = metrics.into_iter().collect();
        Ok(output)
    }
}

/// Every class of the label names (in their order, absent ones with count 0), then any id the
/// names do not cover.
fn summarise(
    batch: &RecordBatch,
    p: &DescribeParams,
    split: &str,
) -> Result<Vec<ClassSummary>, StageError> {
    let texts = table::strings(batch, &p.text, split)?;
    let ids = table::ids(batch, &p.label, split)?;
    let names = labels::label_names(batch.schema().as_ref()).unwrap_or_default();
    let mut classes: Vec<ClassSummary> = names
        .iter()
        .map(|n| ClassSummary {
            name: n.clone(),
            count: 0,
            words: Vec::new(),
        })
        .collect();
    for (row, (text, id)) in texts.iter().zip(&ids).enumerate() {
        let Some(id) = id else {
            return Err(StageError::failed(format!(
                "split `{split}`, row {row}: `{}` is empty",
                p.label
            )));
        };
        let name = labels::int2str(&names, *id).map_or_else(|| id.to_string(), str::to_string);
        let at = match classes.iter().position(|c| c.name == name) {
            Some(at) => at,
            None => {
                classes.push(ClassSummary {
                    name,
                    count: 0,
                    words: Vec::new(),
                });
                classes.len() - 1
            }
        };
        classes[at].count += 1;
        classes[at]
            .words
            .push(text.split_whitespace().count() as f64);
    }
    Ok(classes)
}

fn summary_table(classes: &[ClassSummary], rows: usize) -> Result<RecordBatch, StageError> {
    let stats: Vec<Option<BoxStats>> = classes.iter().map(|c| BoxStats::of(&c.words)).collect();
    let pick = |f: fn(&BoxStats) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from(
            stats.iter().map(|s| s.as_ref().map(f)).collect::<Vec<_>>(),
        ))
    };
    let min = |c: &ClassSummary| c.words.iter().copied().reduce(f64::min);
    let max = |c: &ClassSummary| c.words.iter().copied().reduce(f64::max);
    let mean = |c: &ClassSummary| {
        (!c.words.is_empty()).then(|| c.words.iter().sum::<f64>() / c.words.len() as f64)
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "label",
            Arc::new(StringArray::from_iter_values(
                classes.iter().map(|c| c.name.as_str()),
            )),
        ),
        (
            "count",
            Arc::new(UInt64Array::from_iter_values(
                classes.iter().map(|c| c.count as u64),
            )),
        ),
        (
            "share",
            Arc::new(Float64Array::from_iter_values(
                classes.iter().map(|c| c.count as f64 / rows.max(1) as f64),
            )),
        ),
        (
            "words_min",
            Arc::new(Float64Array::from(
                classes.iter().map(min).collect::<Vec<_>>(),
            )),
        ),
        ("words_q1", pick(|s| s.q1)),
        ("words_median", pick(|s| s.median)),
        ("words_q3", pick(|s| s.q3)),
        (
            "words_max",
            Arc::new(Float64Array::from(
                classes.iter().map(max).collect::<Vec<_>>(),
            )),
        ),
        (
            "words_mean",
            Arc::new(Float64Array::from(
                classes.iter().map(mean).collect::<Vec<_>>(),
            )),
        ),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, array)| {
                let nullable = *array.data_type() == DataType::Float64 && name.starts_with("words");
                Field::new(*name, array.data_type().clone(), nullable)
            })
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .map_err(|e| StageError::failed(format!("summary table: {e}")))
}

fn draw(ctx: &Context, split: &str, classes: &[ClassSummary]) -> Result<(), StageError> {
    let counts: Vec<(String, usize)> = classes.iter().map(|c| (c.name.clone(), c.count)).collect();
    class_bars(
        &ctx.out_dir.join(format!("{split}-classes.png")),
        &format!("Frequency of classes ({split})"),
        &counts,
    )?;
    let groups: Vec<(String, BoxStats)> = classes
        .iter()
        .filter_map(|c| BoxStats::of(&c.words).map(|b| (c.name.clone(), b)))
        .collect();
    box_plot(
        &ctx.out_dir.join(format!("{split}-words-per-text.png")),
        &format!("Words per text by class ({split})"),
        "words",
        &groups,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(yaml: &str) -> Result<(Output, tempfile::TempDir), StageError> {
        let p: DescribeParams = crate::params_from_yaml(yaml);
        crate::run_for_test::<Describe>(&p, [("train".to_string(), tweets())])
    }

    fn tweets() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("text", DataType::Utf8, false),
            Field::new("label", DataType::Int64, false),
        ])
        .with_metadata(
            labels::metadata("label", &["sadness".into(), "joy".into(), "love".into()])
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![
                    "i feel sad",
                    "so happy today friends",
                    "yay",
                    "blue",
                ])),
                Arc::new(arrow::array::Int64Array::from(vec![0, 1, 1, 0])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn counts_shares_and_words_per_class_with_absent_classes_kept() {
        let (out, dir) = run("{}").unwrap();
        let t = &out.tables["train"];
        let col = |name: &str| t.column_by_name(name).unwrap().clone();
        let names = col("label");
        let names = names.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(
            names.iter().flatten().collect::<Vec<_>>(),
            ["sadness", "joy", "love"]
        );
        let counts = col("count");
        let counts = counts.as_any().downcast_ref::<UInt64Array>().unwrap();
        assert_eq!(counts.values().to_vec(), [2, 2, 0]);
        let median = col("words_median");
        let median = median.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!((median.value(0), median.value(1)), (2.0, 2.5));
        assert!(
            arrow::array::Array::is_null(median, 2),
            "no texts, no median"
        );
        assert_eq!(out.metrics["train"], json!({"rows": 4, "classes": 2}));
        for f in ["train-classes.png", "train-words-per-text.png"] {
            assert_eq!(
                &std::fs::read(dir.path().join(f)).unwrap()[..4],
                b"\x89PNG",
                "{f}"
            );
        }
    }

    #[test]
    fn a_missing_split_is_a_param_error_naming_the_splits() {
        let e = run("splits: [test]").err().unwrap();
        assert!(
            e.to_string().contains("no split `test`") && e.to_string().contains("train"),
            "{e}"
        );
    }
}
