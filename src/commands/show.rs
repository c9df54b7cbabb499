//! `cairn show`: the first rows of a stage's table, like `DataFrame.head()`, with long text cut
//! and vectors abbreviated so a row fits on a line; or, with `--stats`, a summary of it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::commands::context::Context;
use crate::commands::recorded;
use crate::store::cache::{Cache, split_of, table_output_name};
use crate::store::manifest::StageRecord;
use crate::store::tables;

const MAX_CELL: usize = 48;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn show pipelines/emotion.yaml load
  cairn show pipelines/emotion.yaml load --split validation --head 20 --columns text,label
  cairn show pipelines/emotion.yaml load --stats")]
pub struct Args {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: PathBuf,
    stage: String,
    /// Which split. Default: `train` if present, else the first.
    #[arg(long)]
    split: Option<String>,
    /// Rows to print.
    #[arg(long, default_value_t = 5)]
    head: usize,
    /// Only these columns (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Summarise the table instead (class distribution, words per text by class).
    #[arg(long)]
    stats: bool,
}

/// Prints one split of the stage's last recorded table (noting when it is not fresh), or the
/// names of its outputs when it has no table.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let (p, cache) = ctx.load(&args.pipeline)?;
    let stage = args.stage.as_str();
    let Some(last) = recorded::last_result(&p, &cache, stage)? else {
        bail!(
            "stage {stage} has not run yet: `{}`",
            recorded::run_command(&p, stage)
        );
    };
    if let Some(s) = &last.not_fresh {
        eprintln!(
            "note: {stage} is {} ({}); showing its last recorded result",
            s.state.label(),
            s.reasons.join("; ")
        );
    }
    let splits: Vec<&str> = last
        .record
        .outputs
        .keys()
        .filter_map(|k| split_of(k))
        .collect();
    if splits.is_empty() {
        println!("{stage} has no tables; its outputs:");
        for f in last.record.outputs.keys() {
            println!("  {f}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let split = choose_split(stage, &splits, args.split)?;
    let batch = read_table(&cache, stage, &last.record, &split)?;
    println!("# {stage} / {split}");
    if args.stats {
        // What a summary means depends on the data, so the stages crate writes it.
        print!("{}", cairn_stages::columns::inspect::describe(&batch));
    } else {
        print!("{}", metadata(&batch));
        print!("{}", head(&batch, args.head, &args.columns)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--split`, checked, or by default `train` if present, else the first.
fn choose_split(stage: &str, splits: &[&str], asked: Option<String>) -> anyhow::Result<String> {
    Ok(match asked {
        Some(s) if splits.contains(&s.as_str()) => s,
        Some(s) => bail!(
            "stage {stage} has no split `{s}` (it has: {})",
            splits.join(", ")
        ),
        None if splits.contains(&"train") => "train".to_string(),
        None => splits[0].to_string(),
    })
}

/// The cached table `split` of a stage, its digest checked.
fn read_table(
    cache: &Cache,
    stage: &str,
    record: &StageRecord,
    split: &str,
) -> anyhow::Result<RecordBatch> {
    let out = &record.outputs[&table_output_name(split)];
    let bytes = cache.read_verified(&out.digest).map_err(|_| {
        anyhow::anyhow!(
            "the cached table {split} of {stage} is missing or corrupt: run the pipeline again"
        )
    })?;
    tables::from_parquet(bytes)
}

/// Formats rows `0..head` of `batch` (only `columns` when given).
pub fn head(batch: &RecordBatch, head: usize, columns: &[String]) -> anyhow::Result<String> {
    let schema = batch.schema();
    let picked = column_indices(batch, columns)?;
    let options = FormatOptions::default().with_null("null");
    let formatters: Vec<ArrayFormatter> = picked
        .iter()
        .map(|&c| ArrayFormatter::try_new(batch.column(c).as_ref(), &options))
        .collect::<Result<_, _>>()?;
    let mut grid: Vec<Vec<String>> = vec![
        std::iter::once(String::new())
            .chain(picked.iter().map(|&c| schema.field(c).name().clone()))
            .collect(),
    ];
    for r in 0..head.min(batch.num_rows()) {
        let mut line = vec![r.to_string()];
        for (&c, f) in picked.iter().zip(&formatters) {
            let text = if batch.column(c).is_null(r) {
                "null".to_string()
            } else {
                f.value(r).to_string()
            };
            line.push(abbreviate(&text));
        }
        grid.push(line);
    }
    let mut out = aligned(&grid);
    out.push_str(&format!(
        "[{} rows x {} columns]\n",
        batch.num_rows(),
        picked.len()
    ));
    Ok(out)
}

/// The indices of `columns` in `batch` (all of them when empty), or which names exist.
fn column_indices(batch: &RecordBatch, columns: &[String]) -> anyhow::Result<Vec<usize>> {
    let schema = batch.schema();
    if columns.is_empty() {
        return Ok((0..schema.fields().len()).collect());
    }
    columns
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                anyhow::anyhow!("no column `{c}` (columns: {})", names.join(", "))
            })
        })
        .collect()
}

/// The grid's cells padded to their column's width, two spaces apart, one line per row.
fn aligned(grid: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..grid[0].len())
        .map(|c| {
            grid.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in grid {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `[0.1, 0.2, …, 0.9] (384)` for long lists; `text…` for long strings.
fn abbreviate(text: &str) -> String {
    let one_line = text.replace('\n', "\\n");
    if one_line.starts_with('[') && one_line.ends_with(']') {
        let items = top_level_items(&one_line[1..one_line.len() - 1]);
        if items.len() > 6 {
            return format!(
                "[{}, {}, {}, …, {}] ({})",
                items[0],
                items[1],
                items[2],
                items[items.len() - 1],
                items.len()
            );
        }
    }
    if one_line.chars().count() > MAX_CELL {
        format!(
            "{}…",
            one_line.chars().take(MAX_CELL - 1).collect::<String>()
        )
    } else {
        one_line
    }
}

/// Splits `a, {b, c}, [d, e]` at the commas outside braces and brackets.
fn top_level_items(inner: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                items.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner.trim().is_empty() {
        items.push(inner[start..].trim());
    }
    items
}

/// Schema metadata (e.g. label names) worth showing above the rows.
pub fn metadata(batch: &RecordBatch) -> String {
    let schema = batch.schema();
    let mut out = String::new();
    for (k, v) in schema.metadata() {
        out.push_str(&format!("# {k}: {}\n", abbreviate(v)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_vectors_and_text_are_cut() {
        assert_eq!(abbreviate("[1, 2, 3, 4, 5, 6, 7]"), "[1, 2, 3, …, 7] (7)");
        assert_eq!(abbreviate("short"), "short");
        assert_eq!(
            abbreviate(
                "[{a: 1, b: 2}, {a: 3, b: 4}, {a: 5, b: 6}, {a: 7, b: 8}, {a: 9, b: 9}, {a: 0, b: 0}, {a: 1, b: 1}]"
            ),
            "[{a: 1, b: 2}, {a: 3, b: 4}, {a: 5, b: 6}, …, {a: 1, b: 1}] (7)"
        );
        assert!(abbreviate(&"x".repeat(100)).ends_with('…'));
    }
}
