//! `cairn show`: the first rows of a stage's table, like `DataFrame.head()`, with long text cut
//! and vectors abbreviated so a row fits on a line.

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

const MAX_CELL: usize = 48;

/// Formats rows `0..head` of `batch` (only `columns` when given).
pub fn head(batch: &RecordBatch, head: usize, columns: &[String]) -> anyhow::Result<String> {
    let schema = batch.schema();
    let picked: Vec<usize> = if columns.is_empty() {
        (0..schema.fields().len()).collect()
    } else {
        columns
            .iter()
            .map(|c| {
                schema.index_of(c).map_err(|_| {
                    let names: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    anyhow::anyhow!("no column `{c}` (columns: {})", names.join(", "))
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let rows = head.min(batch.num_rows());
    let options = FormatOptions::default().with_null("null");
    let mut grid: Vec<Vec<String>> = vec![
        std::iter::once(String::new())
            .chain(picked.iter().map(|&c| schema.field(c).name().clone()))
            .collect(),
    ];
    let formatters: Vec<ArrayFormatter> = picked
        .iter()
        .map(|&c| ArrayFormatter::try_new(batch.column(c).as_ref(), &options))
        .collect::<Result<_, _>>()?;
    for r in 0..rows {
        let mut line = vec![r.to_string()];
        for (k, f) in formatters.iter().enumerate() {
            let array = batch.column(picked[k]);
            let text = if array.is_null(r) {
                "null".to_string()
            } else {
                f.value(r).to_string()
            };
            line.push(abbreviate(&text));
        }
        grid.push(line);
    }
    let widths: Vec<usize> = (0..grid[0].len())
        .map(|c| {
            grid.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &grid {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "[{} rows x {} columns]\n",
        batch.num_rows(),
        picked.len()
    ));
    Ok(out)
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
