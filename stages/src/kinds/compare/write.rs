//! What `compare` writes: the `values` and `matrix` tables, `comparison.md`, `comparison.png`
//! and its metrics.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde_json::{Value, json};

use super::CompareParams;
use super::gather::Entry;
use super::layout::{Curve, Grid, Layout};
use crate::api::StageError;
use crate::figures::heatmap::{self, Heatmap};
use crate::figures::lines::{self, LineChart, Reference, Series};

/// The `values` table's own columns, which no sweep variable may be called.
const FIXED: [&str; 3] = ["stage", "role", "value"];

/// Long form, one row per entry in order: `stage`, `role`, one column per sweep variable in
/// the order first seen (null where an entry lacks it), `value`.
pub fn values_table(entries: &[Entry]) -> Result<RecordBatch, StageError> {
    let mut variables: Vec<&str> = Vec::new();
    for entry in entries {
        for name in entry.matrix.keys() {
            if FIXED.contains(&name.as_str()) {
                return Err(StageError::failed(format!(
                    "{} `{}` has a matrix variable `{name}`, which the `values` table names \
                     a column of its own",
                    entry.role.name(),
                    entry.stage
                ))
                .with_hint(format!("rename the sweep variable `{name}`")));
            }
            if !variables.contains(&name.as_str()) {
                variables.push(name);
            }
        }
    }
    let mut fields = vec![
        Field::new("stage", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, false),
    ];
    let mut columns = vec![
        utf8(entries, |e| Some(e.stage)),
        utf8(entries, |e| Some(e.role.name())),
    ];
    for name in &variables {
        fields.push(Field::new(*name, DataType::Utf8, true));
        columns.push(utf8(entries, |e| e.matrix.get(*name).map(String::as_str)));
    }
    fields.push(Field::new("value", DataType::Float64, false));
    let values: Float64Array = entries.iter().map(|e| e.value).collect();
    columns.push(Arc::new(values));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// A utf8 column of what `f` reads of each entry (null for `None`).
fn utf8<'a>(entries: &[Entry<'a>], f: impl Fn(&Entry<'a>) -> Option<&'a str>) -> ArrayRef {
    Arc::new(entries.iter().map(f).collect::<StringArray>())
}

/// The grid as a table: the row names in a column named after `rows` (or `stage`), then one
/// float64 column per column name, null where no run landed.
pub fn matrix_table(p: &CompareParams, grid: &Grid) -> Result<RecordBatch, StageError> {
    let first = p.rows.as_deref().unwrap_or("stage");
    if grid.columns.contains(&first) {
        return Err(StageError::failed(format!(
            "the `matrix` table names its first column `{first}`, and a column holds the runs \
             with `{first}` too"
        ))
        .with_hint("sweep the variables over values that differ from their names"));
    }
    let mut fields = vec![Field::new(first, DataType::Utf8, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(grid.rows.clone()))];
    for (c, name) in grid.columns.iter().enumerate() {
        fields.push(Field::new(*name, DataType::Float64, true));
        let values: Float64Array = grid.cells.iter().map(|row| row[c]).collect();
        columns.push(Arc::new(values));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// `comparison.md`: the title, the table (or for a chart, x down and one column per line), and
/// the references in a table of their own.
pub fn markdown(p: &CompareParams, layout: &Layout, references: &[Entry]) -> String {
    let value = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.*}", p.digits));
    let (header, rows) = match layout {
        Layout::Grid(grid) => grid_rows(p, grid),
        Layout::Curves(curves) => curve_rows(p, curves),
    };
    let mut md = format!("# {}\n\n", cell(&p.title()));
    let lines = rows.into_iter().map(|(name, values)| {
        let values: Vec<String> = values.into_iter().map(value).collect();
        (name, values)
    });
    table(&mut md, &header, lines);
    if !references.is_empty() {
        md.push_str("\nReferences:\n\n");
        let header = ["reference".to_string(), p.shown(&p.metric).to_string()];
        let lines = references
            .iter()
            .map(|r| (p.shown(r.stage).to_string(), vec![value(Some(r.value))]));
        table(&mut md, &header, lines);
    }
    md
}

/// A Markdown table: the header, then each row's name and values (right-aligned).
fn table(md: &mut String, header: &[String], rows: impl Iterator<Item = (String, Vec<String>)>) {
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    md.push_str(&line(header));
    let rule: Vec<&str> = (0..header.len())
        .map(|i| if i == 0 { "---" } else { "---:" })
        .collect();
    md.push_str(&format!("| {} |\n", rule.join(" | ")));
    for (name, values) in rows {
        md.push_str(&line(&[vec![name], values].concat()));
    }
}

/// Text safe in a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A table's header and rows: a corner cell naming what runs down and across, then the names.
type Rows = (Vec<String>, Vec<(String, Vec<Option<f64>>)>);

fn grid_rows(p: &CompareParams, grid: &Grid) -> Rows {
    let corner = match (&p.rows, &p.columns) {
        (Some(rows), Some(columns)) => format!("{rows} \\ {columns}"),
        (rows, _) => rows.as_deref().unwrap_or("stage").to_string(),
    };
    let mut header = vec![corner];
    header.extend(grid.columns.iter().map(|c| p.shown(c).to_string()));
    let rows = grid.rows.iter().zip(&grid.cells);
    let rows = rows.map(|(name, values)| (p.shown(name).to_string(), values.clone()));
    (header, rows.collect())
}

/// One row per x value (ascending, as the first run at it wrote it), one column per line.
fn curve_rows(p: &CompareParams, curves: &[Curve]) -> Rows {
    let x = p.x.as_deref().unwrap_or("x");
    let corner = match &p.series {
        Some(series) => format!("{x} \\ {series}"),
        None => x.to_string(),
    };
    let mut header = vec![corner];
    header.extend(curves.iter().map(|c| p.shown(c.key).to_string()));
    let mut xs: Vec<(f64, &str)> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|q| (q.x, q.written)))
        .collect();
    xs.sort_by(|a, b| a.0.total_cmp(&b.0));
    xs.dedup_by(|a, b| a.0 == b.0);
    let rows = xs.into_iter().map(|(x, written)| {
        let at_x = curves.iter().map(|c| {
            let point = c.points.iter().find(|q| q.x == x);
            point.map(|q| q.value)
        });
        (written.to_string(), at_x.collect())
    });
    (header, rows.collect())
}

/// The cell width at which the title, centred over the cells, fits over them (19-pixel text:
/// about 10 pixels a character).
fn title_fit(title: &str, columns: usize) -> i32 {
    let title_px = 10 * title.chars().count() as i32;
    let columns = columns.max(1) as i32;
    (title_px + columns - 1) / columns
}

/// `comparison.png`: the grid as a heatmap, or the curves as a line chart with the references.
pub fn figure(
    p: &CompareParams,
    layout: &Layout,
    references: &[Entry],
    path: &Path,
) -> Result<(), StageError> {
    let title = p.title();
    match layout {
        Layout::Grid(grid) => {
            let rows: Vec<String> = grid.rows.iter().map(|r| p.shown(r).into()).collect();
            let columns: Vec<String> = grid.columns.iter().map(|c| p.shown(c).into()).collect();
            let (range, tick_digits) = shading(grid);
            let longest = columns.iter().map(|c| c.chars().count()).max().unwrap_or(0);
            let map = Heatmap {
                title: &title,
                cells: grid.cells.clone(),
                row_names: &rows,
                column_names: &columns,
                row_title: p.rows.as_deref().unwrap_or(""),
                column_title: p.columns.as_deref().unwrap_or(""),
                range,
                cell_digits: p.digits,
                tick_digits: tick_digits.unwrap_or(p.digits),
                cell_width: 84
                    .max(8 * longest as i32 + 16)
                    .max(title_fit(&title, columns.len())),
            };
            heatmap::annotated_heatmap(path, &map)
        }
        Layout::Curves(curves) => {
            let series: Vec<Series> = curves
                .iter()
                .map(|c| Series {
                    name: p.shown(c.key).into(),
                    points: c.points.iter().map(|q| (q.x, q.value)).collect(),
                })
                .collect();
            let references: Vec<Reference> = references
                .iter()
                .map(|r| Reference {
                    name: p.shown(r.stage).into(),
                    value: r.value,
                })
                .collect();
            let chart = LineChart {
                title: &title,
                x_label: p.x.as_deref().unwrap_or("x"),
                y_label: p.shown(&p.metric),
                log_x: p.x_scale.is_log(),
                series: &series,
                references: &references,
            };
            lines::line_chart(path, &chart)
        }
    }
}

/// The heatmap's range, and the colour bar's decimals when they are fixed: 0 to 1 (ticks 0.0,
/// 0.5, 1.0) when every value lies there (scores), else the smallest to the largest value.
fn shading(grid: &Grid) -> ((f64, f64), Option<usize>) {
    let values: Vec<f64> = grid.cells.iter().flatten().flatten().copied().collect();
    if values.iter().all(|v| (0.0..=1.0).contains(v)) {
        return ((0.0, 1.0), Some(1));
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    ((lo, hi), None)
}

/// `count` (runs), and the runs with the largest and the smallest value (the first on a tie).
pub fn metrics(runs: &[Entry]) -> BTreeMap<String, Value> {
    let pick = |better: fn(f64, f64) -> bool| {
        let mut best = runs.first();
        for run in runs {
            if best.is_some_and(|b| better(run.value, b.value)) {
                best = Some(run);
            }
        }
        best.map_or(Value::Null, |b| json!({"stage": b.stage, "value": b.value}))
    };
    BTreeMap::from([
        ("count".to_string(), json!(runs.len())),
        ("max".to_string(), pick(|a, b| a > b)),
        ("min".to_string(), pick(|a, b| a < b)),
    ])
}
