//! A first look at a table, for `cairn show --stats`: the text-classification chapter's
//! class distribution and words-per-text summary per class, or a per-column summary when the
//! table has no labels.

use std::collections::BTreeMap;
use std::fmt::Write;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::RecordBatch;

use crate::columns::labels;

/// min / median / mean / max of some counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub min: usize,
    pub median: f64,
    pub mean: f64,
    pub max: usize,
}

impl Summary {
    pub fn of(mut values: Vec<usize>) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2] as f64
        } else {
            (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0
        };
        Some(Summary {
            min: values[0],
            median,
            mean: values.iter().sum::<usize>() as f64 / n as f64,
            max: values[n - 1],
        })
    }
}

fn fmt_summary(s: Option<Summary>) -> String {
    match s {
        Some(s) => format!(
            "{:>5} {:>7.1} {:>7.1} {:>5}",
            s.min, s.median, s.mean, s.max
        ),
        None => format!("{:>5} {:>7} {:>7} {:>5}", "-", "-", "-", "-"),
    }
}

/// Words (whitespace-separated) per row of a text column.
fn word_counts(batch: &RecordBatch, column: &str) -> Option<Vec<usize>> {
    let col = batch.column_by_name(column)?;
    let text = arrow::compute::cast(col, &DataType::Utf8).ok()?;
    Some(
        text.as_string::<i32>()
            .iter()
            .map(|t| t.map_or(0, |t| t.split_whitespace().count()))
            .collect(),
    )
}

/// The class distribution and words-per-text per class when the table has labels (label
/// names from the schema metadata, see [`crate::columns::labels`]); else a summary of each column.
pub fn describe(batch: &RecordBatch) -> String {
    let schema = batch.schema();
    let names = labels::label_names(&schema);
    let column = labels::label_column(&schema).unwrap_or("label");
    match batch.column_by_name(column) {
        Some(col) if col.data_type().is_integer() => {
            describe_classes(batch, col.as_ref(), names.as_deref())
        }
        Some(col) if matches!(col.data_type(), DataType::List(f) if f.data_type().is_integer()) => {
            describe_tags(batch, col.as_ref(), column, names.as_deref())
        }
        _ => describe_columns(batch),
    }
}

fn label_name(names: Option<&[String]>, id: i64) -> String {
    names
        .and_then(|n| labels::int2str(n, id))
        .map(str::to_string)
        .unwrap_or_else(|| id.to_string())
}

fn pct(n: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    }
}

fn describe_classes(batch: &RecordBatch, col: &dyn Array, names: Option<&[String]>) -> String {
    let ids = arrow::compute::cast(col, &DataType::Int64).expect("integer cast");
    let ids = ids.as_primitive::<Int64Type>();
    let words = word_counts(batch, "text");
    let mut per_class: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    if let Some(n) = names {
        for i in 0..n.len() {
            per_class.insert(i as i64, Vec::new());
        }
    }
    for (row, id) in ids.iter().enumerate() {
        let id = id.unwrap_or(-1);
        per_class
            .entry(id)
            .or_default()
            .push(words.as_ref().map_or(0, |w| w[row]));
    }
    let total = ids.len();
    let width = per_class
        .keys()
        .map(|&id| label_name(names, id).chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = String::new();
    let _ = match words {
        Some(_) => writeln!(
            out,
            "{total} rows; words per text (whitespace-split `text`) by label"
        ),
        None => writeln!(out, "{total} rows"),
    };
    let mut header = format!("{:<width$} {:>7} {:>6}", "label", "count", "%");
    if words.is_some() {
        let _ = write!(
            header,
            "  {:>5} {:>7} {:>7} {:>5}",
            "min", "median", "mean", "max"
        );
    }
    let _ = writeln!(out, "{header}");
    let row = |name: &str, n: usize, counts: Option<Vec<usize>>| {
        let mut line = format!("{name:<width$} {n:>7} {:>5.1}%", pct(n, total));
        if let Some(c) = counts {
            let _ = write!(line, "  {}", fmt_summary(Summary::of(c)));
        }
        line
    };
    let mut order: Vec<(&i64, &Vec<usize>)> = per_class.iter().collect();
    // Most frequent first, as the chapter's bar chart.
    order.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    for (id, counts) in order {
        let name = label_name(names, *id);
        let _ = writeln!(
            out,
            "{}",
            row(&name, counts.len(), words.as_ref().map(|_| counts.clone()))
        );
    }
    if let Some(w) = words {
        let _ = writeln!(out, "{}", row("(all)", total, Some(w)));
    }
    out
}

fn describe_tags(
    batch: &RecordBatch,
    col: &dyn Array,
    column: &str,
    names: Option<&[String]>,
) -> String {
    let list = col.as_list::<i32>();
    let values = arrow::compute::cast(list.values(), &DataType::Int64).expect("integer cast");
    let values = values.as_primitive::<Int64Type>();
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    if let Some(n) = names {
        for i in 0..n.len() {
            counts.insert(i as i64, 0);
        }
    }
    for v in values.iter() {
        *counts.entry(v.unwrap_or(-1)).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let lengths: Vec<usize> = (0..list.len())
        .map(|i| list.value_length(i) as usize)
        .collect();
    let width = counts
        .keys()
        .map(|&id| label_name(names, id).chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} rows, {total} tagged tokens in `{column}`",
        batch.num_rows()
    );
    let _ = writeln!(
        out,
        "tokens per row: min  median    mean   max\n               {}",
        fmt_summary(Summary::of(lengths))
    );
    let _ = writeln!(out, "{:<width$} {:>7} {:>6}", "tag", "count", "%");
    for (id, n) in &counts {
        let _ = writeln!(
            out,
            "{:<width$} {:>7} {:>5.1}%",
            label_name(names, *id),
            n,
            pct(*n, total)
        );
    }
    out
}

fn describe_columns(batch: &RecordBatch) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} rows", batch.num_rows());
    let _ = writeln!(
        out,
        "{:<20} {:<24} {:>6}  summary",
        "column", "type", "nulls"
    );
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let summary = match col.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let words = word_counts(batch, field.name()).unwrap_or_default();
                format!(
                    "words min/median/mean/max {}",
                    fmt_summary(Summary::of(words))
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" / ")
                )
            }
            DataType::List(_) => {
                let list = col.as_list::<i32>();
                let lengths: Vec<usize> = (0..list.len())
                    .map(|i| list.value_length(i) as usize)
                    .collect();
                format!(
                    "length min/median/mean/max {}",
                    fmt_summary(Summary::of(lengths))
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" / ")
                )
            }
            t if t.is_numeric() => match arrow::compute::cast(col, &DataType::Float64) {
                Ok(f) => {
                    let f = f.as_primitive::<arrow::datatypes::Float64Type>();
                    let vals: Vec<f64> = f.iter().flatten().collect();
                    if vals.is_empty() {
                        String::new()
                    } else {
                        let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
                        let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                        format!("min {min} / mean {mean:.4} / max {max}")
                    }
                }
                Err(_) => String::new(),
            },
            _ => String::new(),
        };
        let ty = field.data_type().to_string();
        let _ = writeln!(
            out,
            "{:<20} {:<24} {:>6}  {summary}",
            field.name(),
            ty,
            col.null_count()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn class_distribution_and_words_per_class() {
        let names: Vec<String> = ["sadness", "joy", "love"].map(String::from).to_vec();
        let schema = Schema::new(vec![
            Field::new("text", DataType::Utf8, false),
            Field::new("label", DataType::Int64, false),
        ])
        .with_metadata(
            labels::metadata("label", &names)
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![
                    "i am sad",
                    "so happy",
                    "happy happy joy joy",
                    "a",
                ])),
                Arc::new(Int64Array::from(vec![0, 1, 1, 0])),
            ],
        )
        .unwrap();
        let text = describe(&batch);
        assert!(text.starts_with("4 rows; words per text"), "{text}");
        let line = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(line("joy"), ["joy", "2", "50.0%", "2", "3.0", "3.0", "4"]);
        assert_eq!(
            line("sadness"),
            ["sadness", "2", "50.0%", "1", "2.0", "2.0", "3"]
        );
        assert_eq!(line("love"), ["love", "0", "0.0%", "-", "-", "-", "-"]);
        assert_eq!(line("(all)")[3..], ["1", "2.5", "2.5", "4"]);
    }

    #[test]
    fn without_labels_each_column_is_summarised() {
        let batch = RecordBatch::try_from_iter([
            ("text", Arc::new(StringArray::from(vec!["a b", "c"])) as _),
            ("n", Arc::new(Int64Array::from(vec![1, 3])) as _),
        ])
        .unwrap();
        let text = describe(&batch);
        assert!(
            text.contains("words min/median/mean/max 1 / 1.5 / 1.5 / 2"),
            "{text}"
        );
        assert!(text.contains("min 1 / mean 2.0000 / max 3"), "{text}");
    }
}
