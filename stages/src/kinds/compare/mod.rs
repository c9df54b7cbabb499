//! `compare`: one metric gathered from many stages into one table and one figure — the NER
//! chapter's train-language × eval-language F1 table, or a learning curve (F1 against the number
//! of training examples) with the zero-shot score drawn beside it.
//!
//! Inputs, by name:
//! - `runs` (at least one, any kind): the stages compared, usually a sweep's id, which hands
//!   over all its cells in order (`runs: evaluate`). Each cell's `matrix:` values place it.
//! - `reference` (optional, up to 16, any kind): values to compare against (the zero-shot
//!   score), listed under the table and drawn as dashed horizontal lines on the line chart.
//!
//! The value of each input is the metric at the dot path `metric` of its metrics (what
//! `cairn metrics` shows), e.g. `test.entity_f1` of an `evaluate` stage; a key with dots in it
//! (`rows.train`) is found too. It must be a finite number. The metrics enter this stage's
//! fingerprint: a run whose score changed reruns the comparison.
//!
//! Params:
//! - `metric` (required): the dot path.
//! - `rows` / `columns`: sweep variables whose values name the table's rows and columns (the
//!   train × eval table); `rows` alone gives one column, the metric; neither gives one row per
//!   run, named by its stage. Rows and columns come in the order first seen.
//! - `x`: a sweep variable with numeric values: draws a line chart of the metric against it
//!   instead of a table (excludes `rows`). `series`: a variable with one line per value.
//!   `x-scale`: `linear` (default, ticked at round numbers) or `log` (placed by log2 x and
//!   ticked at the runs' own x values, so the base does not show; every x must be above 0).
//! - `title`: the figure's and the Markdown's title. Default: the metric and the variables.
//! - `digits`: decimals in the Markdown and the heatmap's cells. Default 3, at most 12.
//! - `labels`: display names for row, column and series values, reference and run stage ids
//!   and the metric, e.g. `{de: German, zs-eval: zero-shot}`, in the Markdown and the figure
//!   (the tables keep the raw values). A name that is shown nowhere is an error.
//!
//! Every run must have the variables `rows`, `columns`, `x` and `series` name, and no two runs
//! may land in the same cell or the same point of a line: each is an error naming the stages.
//!
//! Outputs:
//! - table `values`: one row per input, runs then references, in input order: `stage` (utf8),
//!   `role` (utf8, `run` or `reference`), one utf8 column per sweep variable seen (null where an
//!   input lacks it), `value` (float64).
//! - table `matrix` (the table layout only): the first column (utf8) is named after `rows` (or
//!   `stage`) and holds the row names; then one float64 column per column name (or one, named
//!   after the metric), null where no run landed.
//! - file `comparison.md`: a `#` title and the table as Markdown (for `x`: one row per x value,
//!   one column per series), then the references in a table of their own.
//! - file `comparison.png`: the table as an annotated heatmap (shaded from 0 to 1 when every
//!   value lies there, else from the smallest value to the largest), or the line chart.
//! - metrics: `count` (runs), `max` and `min`, each `{stage, value}` (over runs; the first in
//!   input order on a tie).
//!
//! ```yaml
//! stages:
//!   # ... predict-<train>-<eval>: one prediction per training and evaluation language
//!   evaluate:
//!     kind: evaluate
//!     matrix: {train: [de, de-fr], eval: [de, fr, it, en]}
//!     inputs: ["predict-${matrix.train}-${matrix.eval}"]
//!   transfer:
//!     kind: compare
//!     inputs: {runs: evaluate}
//!     metric: test.entity_f1
//!     rows: train
//!     columns: eval
//!     title: F1 by training and evaluation language
//!
//!   # ... predict-fr-<n>: trained on n French examples; predict-zero-shot: on German only
//!   curve:
//!     kind: evaluate
//!     matrix: {num_samples: [250, 500, 1000, 2000, 4000]}
//!     inputs: ["predict-fr-${matrix.num_samples}"]
//!   zero-shot:
//!     kind: evaluate
//!     inputs: [predict-zero-shot]
//!   learning-curve:
//!     kind: compare
//!     inputs: {runs: curve, reference: zero-shot}
//!     metric: test.entity_f1
//!     x: num_samples
//!     x-scale: log
//!     labels: {zero-shot: "zero-shot (trained on de)"}
//! ```

mod gather;
mod layout;
mod write;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{Arity, Context, InputSlot, Output, PrepareEnv, Stage, StageError};
use gather::{Entry, Role};
use layout::Layout;

/// Params of `compare`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompareParams {
    /// The dot path of the metric in each input's metrics, e.g. `test.entity_f1`. Required.
    pub metric: String,
    /// The sweep variable whose values name the table's rows. Default: one row per run.
    #[serde(default)]
    pub rows: Option<String>,
    /// The sweep variable whose values name the table's columns (needs `rows`). Default: one
    /// column, the metric.
    #[serde(default)]
    pub columns: Option<String>,
    /// The numeric sweep variable along the line chart's x axis (instead of a table). Default:
    /// none, a table.
    #[serde(default)]
    pub x: Option<String>,
    /// The sweep variable with one line per value (needs `x`). Default: one line.
    #[serde(default)]
    pub series: Option<String>,
    /// `linear` or `log` (base 2). Default `linear`.
    #[serde(default)]
    pub x_scale: XScale,
    /// The title of the figure and the Markdown. Default: the metric and the variables.
    #[serde(default)]
    pub title: Option<String>,
    /// Decimals shown in the Markdown and the heatmap. Default 3.
    #[serde(default = "three")]
    pub digits: usize,
    /// Display names for values, stage ids and the metric. Default: none.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn three() -> usize {
    3
}

/// The line chart's x axis.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum XScale {
    #[default]
    Linear,
    Log,
}

impl XScale {
    pub fn is_log(self) -> bool {
        self == XScale::Log
    }
}

/// The most decimals `digits` may ask for (an f64 holds about 15 significant digits).
const MAX_DIGITS: usize = 12;

impl CompareParams {
    /// The title: the one given, or the metric and the variables.
    fn title(&self) -> String {
        if let Some(title) = &self.title {
            return title.clone();
        }
        let metric = self.shown(&self.metric);
        match (&self.rows, &self.columns, &self.x) {
            (Some(rows), Some(columns), _) => format!("{metric}: {rows} × {columns}"),
            (Some(rows), None, _) => format!("{metric} by {rows}"),
            (None, _, Some(x)) => format!("{metric} vs {x}"),
            (None, _, None) => metric.to_string(),
        }
    }

    /// What `key` is shown as: its label, or itself.
    fn shown<'a>(&'a self, key: &'a str) -> &'a str {
        self.labels.get(key).map_or(key, String::as_str)
    }

    /// Each variable param that is given, with its field.
    fn variables(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("rows", self.rows.as_deref()),
            ("columns", self.columns.as_deref()),
            ("x", self.x.as_deref()),
            ("series", self.series.as_deref()),
        ]
    }
}

/// Param `field` is wrong in a way the params alone show.
fn refuse(field: &str, message: String, hint: &str) -> Result<(), StageError> {
    Err(StageError::param(field, message, Some(hint.into())))
}

/// Every label names something shown: a value placed in the table or chart, a reference or the
/// metric.
fn check_labels(
    p: &CompareParams,
    layout: &Layout,
    references: &[Entry],
) -> Result<(), StageError> {
    let mut shown = layout.names();
    shown.extend(references.iter().map(|r| r.stage));
    shown.push(&p.metric);
    match p.labels.keys().find(|k| !shown.contains(&k.as_str())) {
        Some(unknown) => {
            shown.sort_unstable();
            shown.dedup();
            Err(StageError::param(
                "labels",
                format!(
                    "`labels` names `{unknown}`, which is shown nowhere (the names shown: {})",
                    shown.join(", ")
                ),
                None,
            ))
        }
        None => Ok(()),
    }
}

/// The entries of the inputs in named slot `slot`, in order.
fn read<'a>(
    p: &CompareParams,
    ctx: &'a Context,
    slot: &str,
    role: Role,
) -> Result<Vec<Entry<'a>>, StageError> {
    ctx.inputs_for(slot)
        .into_iter()
        .map(|input| Entry::read(input, role, &p.metric))
        .collect()
}

/// `compare`: one metric of many stages as a table, a heatmap or a line chart.
pub struct Compare;

impl Stage for Compare {
    type Params = CompareParams;
    const KIND: &'static str = "compare";
    /// Bump when the tables, the Markdown, the figures or the metrics change.
    /// 2: the heatmap widens so that a long title fits (it was clipped).
    const VERSION: u32 = 2;
    const INPUT_SLOTS: &'static [InputSlot] = &[
        InputSlot::new("runs", Arity::AtLeast(1)),
        InputSlot::new("reference", Arity::Range(0, 16)),
    ];
    const READS_METRICS: bool = true;
    const SUMMARY: &'static str = "gathers one metric of many stages: a rows × columns \
                                   table and heatmap, or a line chart with reference lines";

    fn validate(p: &CompareParams, _env: &PrepareEnv) -> Result<(), StageError> {
        if p.metric.split('.').any(str::is_empty) {
            let message = format!("`metric` `{}` has an empty part", p.metric);
            return refuse("metric", message, "write a dot path, e.g. `test.entity_f1`");
        }
        for (field, name) in p.variables() {
            if name == Some("") {
                let hint = "name a variable of the runs' `matrix:`, or leave it out";
                return refuse(field, format!("`{field}` names no variable"), hint);
            }
        }
        let hint = "`rows` and `columns` make a table; `x` and `series` a line chart";
        if p.columns.is_some() && p.rows.is_none() {
            return refuse("columns", "`columns` needs `rows`".into(), hint);
        }
        if p.series.is_some() && p.x.is_none() {
            return refuse("series", "`series` needs `x`".into(), hint);
        }
        if p.rows.is_some() && p.x.is_some() {
            let message = "`rows` asks for a table and `x` for a line chart: give one".into();
            return refuse("x", message, hint);
        }
        for (first, second, field) in [
            (&p.rows, &p.columns, "columns"),
            (&p.x, &p.series, "series"),
        ] {
            if first.is_some() && first == second {
                let twice = second.as_deref().unwrap_or_default();
                return refuse(field, format!("`{field}` names `{twice}` again"), hint);
            }
        }
        if p.x_scale.is_log() && p.x.is_none() {
            return refuse("x-scale", "`x-scale` needs `x`".into(), hint);
        }
        if p.digits > MAX_DIGITS {
            let message = format!("`digits` is {}, more than {MAX_DIGITS}", p.digits);
            return refuse(
                "digits",
                message,
                "an f64 holds about 15 significant digits",
            );
        }
        if let Some((key, _)) = p.labels.iter().find(|(_, name)| name.is_empty()) {
            let message = format!("`labels` gives `{key}` an empty name");
            return refuse("labels", message, "leave it out to show it as it is");
        }
        Ok(())
    }

    fn run(p: &CompareParams, ctx: &Context) -> Result<Output, StageError> {
        let runs = read(p, ctx, "runs", Role::Run)?;
        let references = read(p, ctx, "reference", Role::Reference)?;
        if runs.is_empty() {
            return Err(StageError::failed("`runs` names no stage"));
        }
        let layout = Layout::new(p, &runs)?;
        check_labels(p, &layout, &references)?;
        let every: Vec<Entry> = runs.iter().chain(&references).cloned().collect();
        let mut output = Output::default();
        output
            .tables
            .insert("values".into(), write::values_table(&every)?);
        if let Layout::Grid(grid) = &layout {
            output
                .tables
                .insert("matrix".into(), write::matrix_table(p, grid)?);
        }
        let markdown = write::markdown(p, &layout, &references);
        fs_err::write(ctx.out_dir.join("comparison.md"), markdown)?;
        write::figure(p, &layout, &references, &ctx.out_dir.join("comparison.png"))?;
        output.metrics = write::metrics(&runs);
        Ok(output)
    }
}

#[cfg(test)]
mod tests {

    use arrow::array::{Array, AsArray, RecordBatch};
    use arrow::datatypes::Float64Type;
    use serde_json::json;

    use super::*;
    use crate::api::Input;
    use crate::columns::table;

    /// An `evaluate`-like input in `slot` with test F1 `f1`, from a sweep cell with `matrix`.
    fn evaluated(stage: &str, slot: &'static str, matrix: &[(&str, &str)], f1: f64) -> Input {
        Input {
            stage: stage.into(),
            slot: Some(slot),
            matrix: matrix
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            metrics: serde_json::from_value(json!({
                "test": {"accuracy": 0.9, "entity_f1": f1},
            }))
            .unwrap(),
            ..Input::default()
        }
    }

    /// What a run left: its output, `comparison.md` and the bytes of `comparison.png`.
    struct Ran {
        output: Output,
        markdown: String,
        png: Vec<u8>,
    }

    fn run(yaml: &str, inputs: &[Input]) -> Result<Ran, StageError> {
        let p: CompareParams = crate::params_from_yaml(yaml);
        let (output, dir) = crate::run_with_inputs::<Compare>(&p, inputs)?;
        Ok(Ran {
            output,
            markdown: std::fs::read_to_string(dir.path().join("comparison.md")).unwrap(),
            png: std::fs::read(dir.path().join("comparison.png")).unwrap(),
        })
    }

    fn refused(yaml: &str, inputs: &[Input]) -> (String, String) {
        match run(yaml, inputs).err().expect("an error") {
            StageError::Param { field, message, .. } => (field, message),
            other => ("-".into(), other.to_string()),
        }
    }

    fn names(batch: &RecordBatch) -> Vec<String> {
        let schema = batch.schema();
        schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    fn floats(batch: &RecordBatch, column: &str) -> Vec<Option<f64>> {
        let array = batch.column_by_name(column).unwrap();
        array.as_primitive::<Float64Type>().iter().collect()
    }

    fn texts(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
        let array = batch.column_by_name(column).unwrap().as_string::<i32>();
        (0..array.len())
            .map(|i| array.is_valid(i).then(|| array.value(i).to_string()))
            .collect()
    }

    /// Trained on de or fr, evaluated on de or fr (fr → de not run), and the zero-shot score.
    fn transfer() -> Vec<Input> {
        let cell = |train, eval, f1| {
            let stage = format!("eval-{train}-{eval}");
            evaluated(&stage, "runs", &[("train", train), ("eval", eval)], f1)
        };
        vec![
            cell("de", "de", 0.871),
            cell("de", "fr", 0.7024),
            cell("fr", "fr", 0.8449),
            evaluated("zero-shot", "reference", &[], 0.5),
        ]
    }

    /// The width of a PNG, from its IHDR chunk.
    fn png_width(png: &[u8]) -> u32 {
        u32::from_be_bytes(png[16..20].try_into().unwrap())
    }

    /// Regression: a long title was clipped at both sides of a two-column heatmap.
    #[test]
    fn a_long_title_widens_the_heatmap_to_fit() {
        let yaml = |title: &str| {
            format!("{{metric: test.entity_f1, rows: train, columns: eval, title: '{title}'}}")
        };
        let short = run(&yaml("F1"), &transfer()).unwrap();
        let title = "Entity F1 on the test split of each language (rows: fine-tuned on)";
        let long = run(&yaml(title), &transfer()).unwrap();
        assert_eq!(
            png_width(&short.png),
            316,
            "as before: the cells set the width"
        );
        // About 10 pixels a character, centred over the cells.
        assert!(
            png_width(&long.png) >= 10 * title.len() as u32,
            "{}",
            png_width(&long.png)
        );
    }

    #[test]
    fn the_train_by_eval_table_is_a_matrix_markdown_and_a_heatmap() {
        let ran = run(
            "{metric: test.entity_f1, rows: train, columns: eval}",
            &transfer(),
        )
        .unwrap();
        let values = &ran.output.tables["values"];
        assert_eq!(names(values), ["stage", "role", "eval", "train", "value"]);
        assert_eq!(
            table::strings(values, "stage", "values").unwrap(),
            ["eval-de-de", "eval-de-fr", "eval-fr-fr", "zero-shot"]
        );
        assert_eq!(
            table::strings(values, "role", "values").unwrap(),
            ["run", "run", "run", "reference"]
        );
        let de = Some("de".to_string());
        let fr = Some("fr".to_string());
        assert_eq!(
            texts(values, "train"),
            [de.clone(), de.clone(), fr.clone(), None]
        );
        assert_eq!(texts(values, "eval"), [de.clone(), fr.clone(), fr, None]);
        assert_eq!(
            floats(values, "value"),
            [Some(0.871), Some(0.7024), Some(0.8449), Some(0.5)]
        );

        let matrix = &ran.output.tables["matrix"];
        assert_eq!(names(matrix), ["train", "de", "fr"]);
        assert_eq!(
            table::strings(matrix, "train", "matrix").unwrap(),
            ["de", "fr"]
        );
        assert_eq!(floats(matrix, "de"), [Some(0.871), None]);
        assert_eq!(floats(matrix, "fr"), [Some(0.7024), Some(0.8449)]);

        assert_eq!(
            ran.markdown,
            "# test.entity_f1: train × eval\n\n\
             | train \\ eval | de | fr |\n\
             | --- | ---: | ---: |\n\
             | de | 0.871 | 0.702 |\n\
             | fr | — | 0.845 |\n\
             \nReferences:\n\n\
             | reference | test.entity_f1 |\n\
             | --- | ---: |\n\
             | zero-shot | 0.500 |\n"
        );
        assert_eq!(&ran.png[1..4], b"PNG");
        assert_eq!(
            serde_json::to_value(&ran.output.metrics).unwrap(),
            json!({
                "count": 3,
                "max": {"stage": "eval-de-de", "value": 0.871},
                "min": {"stage": "eval-de-fr", "value": 0.7024},
            })
        );
    }

    #[test]
    fn without_rows_there_is_one_row_per_run_named_by_its_stage() {
        let ran = run("{metric: test.accuracy, digits: 1}", &transfer()[..2]).unwrap();
        let matrix = &ran.output.tables["matrix"];
        assert_eq!(names(matrix), ["stage", "test.accuracy"]);
        assert_eq!(floats(matrix, "test.accuracy"), [Some(0.9), Some(0.9)]);
        assert_eq!(
            ran.markdown,
            "# test.accuracy\n\n\
             | stage | test.accuracy |\n\
             | --- | ---: |\n\
             | eval-de-de | 0.9 |\n\
             | eval-de-fr | 0.9 |\n"
        );
    }

    /// German on 250, 500 and 1000 examples, French on 250 (written `250.0`) and 1000, and the
    /// zero-shot score.
    fn curve() -> Vec<Input> {
        let cell = |lang, n: &str, f1| {
            let stage = format!("eval-{lang}-{n}");
            evaluated(&stage, "runs", &[("lang", lang), ("n", n)], f1)
        };
        vec![
            cell("de", "1000", 0.8),
            cell("de", "250", 0.5),
            cell("fr", "250.0", 0.4),
            cell("de", "500", 0.7),
            cell("fr", "1000", 0.75),
            evaluated("zero-shot", "reference", &[], 0.3),
        ]
    }

    #[test]
    fn a_learning_curve_is_a_table_by_x_and_a_line_chart_with_the_references() {
        let yaml = "{metric: test.entity_f1, x: n, series: lang, x-scale: log, \
                    title: F1 by size, labels: {zero-shot: zero-shot (de), fr: French}}";
        let ran = run(yaml, &curve()).unwrap();
        assert!(!ran.output.tables.contains_key("matrix"));
        let values = &ran.output.tables["values"];
        assert_eq!(names(values), ["stage", "role", "lang", "n", "value"]);
        assert_eq!(
            texts(values, "n")[..3],
            [
                Some("1000".to_string()),
                Some("250".to_string()),
                Some("250.0".to_string())
            ]
        );
        assert_eq!(
            ran.markdown,
            "# F1 by size\n\n\
             | n \\ lang | de | French |\n\
             | --- | ---: | ---: |\n\
             | 250 | 0.500 | 0.400 |\n\
             | 500 | 0.700 | — |\n\
             | 1000 | 0.800 | 0.750 |\n\
             \nReferences:\n\n\
             | reference | test.entity_f1 |\n\
             | --- | ---: |\n\
             | zero-shot (de) | 0.300 |\n"
        );
        assert_eq!(&ran.png[1..4], b"PNG");
        let again = run(yaml, &curve()).unwrap();
        assert_eq!(again.png, ran.png, "the same bytes every time");
        let linear = run(&yaml.replace("x-scale: log", "x-scale: linear"), &curve()).unwrap();
        assert_ne!(linear.png, ran.png);
    }

    #[test]
    fn a_missing_metric_names_the_input_and_what_it_has() {
        let (field, message) = refused("{metric: test.f1}", &transfer());
        assert_eq!(field, "metric");
        assert_eq!(
            message,
            "run `eval-de-de` has no metric `test.f1` (`test` has: accuracy, entity_f1)"
        );
        let mut inputs = transfer();
        inputs[3].metrics.clear();
        let (field, message) = refused("{metric: test.entity_f1}", &inputs);
        assert_eq!(field, "metric");
        assert_eq!(
            message,
            "reference `zero-shot` has no metric `test.entity_f1` (it records no metrics)"
        );
    }

    #[test]
    fn a_non_number_or_non_finite_metric_is_refused() {
        let mut inputs = transfer();
        inputs[1].metrics = serde_json::from_value(json!({"test": {"entity_f1": null}})).unwrap();
        let (_, message) = refused("{metric: test.entity_f1}", &inputs);
        assert_eq!(
            message,
            "run `eval-de-fr` has metric `test.entity_f1` = null (a NaN or infinite value is \
             recorded as null)"
        );
        inputs[1].metrics = serde_json::from_value(json!({"test": {"entity_f1": "high"}})).unwrap();
        let (_, message) = refused("{metric: test.entity_f1}", &inputs);
        assert_eq!(
            message,
            "run `eval-de-fr` has metric `test.entity_f1` = \"high\", which is a string"
        );
    }

    #[test]
    fn variables_and_places_are_checked_against_the_runs() {
        let (field, message) = refused("{metric: test.entity_f1, rows: lang}", &transfer());
        assert_eq!(field, "rows");
        assert_eq!(
            message,
            "run `eval-de-de` has no matrix variable `lang` (its variables: eval, train)"
        );
        let (field, message) = refused("{metric: test.entity_f1, x: train}", &transfer());
        assert_eq!(field, "x");
        assert_eq!(
            message,
            "run `eval-de-de` has train = `de`, which is not a number"
        );
        let (_, message) = refused("{metric: test.entity_f1, rows: eval}", &transfer());
        assert_eq!(
            message,
            "runs `eval-de-fr` and `eval-fr-fr` both land at eval = fr"
        );
        let (_, message) = refused("{metric: test.entity_f1, x: n}", &curve());
        assert_eq!(
            message,
            "runs `eval-de-250` and `eval-fr-250.0` both land at n = 250.0"
        );
    }

    #[test]
    fn labels_rename_what_is_shown_and_must_name_something_shown() {
        let yaml = "{metric: test.entity_f1, rows: train, columns: eval, \
                    labels: {de: German, test.entity_f1: F1}}";
        let ran = run(yaml, &transfer()).unwrap();
        assert!(
            ran.markdown.starts_with(
                "# F1: train × eval\n\n| train \\ eval | German | fr |\n| --- | ---: | ---: |\n\
                 | German | 0.871 | 0.702 |\n"
            ),
            "{}",
            ran.markdown
        );
        // The tables keep the raw values.
        assert_eq!(names(&ran.output.tables["matrix"]), ["train", "de", "fr"]);
        let (field, message) = refused(
            "{metric: test.entity_f1, rows: train, columns: eval, labels: {it: Italian}}",
            &transfer(),
        );
        assert_eq!(field, "labels");
        assert_eq!(
            message,
            "`labels` names `it`, which is shown nowhere (the names shown: de, fr, \
             test.entity_f1, zero-shot)"
        );
    }

    #[test]
    fn a_variable_named_like_a_values_column_is_refused() {
        let inputs = [evaluated("e", "runs", &[("value", "1")], 0.5)];
        let (_, message) = refused("{metric: test.entity_f1}", &inputs);
        assert_eq!(
            message,
            "run `e` has a matrix variable `value`, which the `values` table names a column of \
             its own"
        );
    }

    #[test]
    fn validate_refuses_what_the_params_alone_show_is_wrong() {
        let inputs = transfer();
        let cases = [
            (
                "{metric: test..f1}",
                "metric",
                "`metric` `test..f1` has an empty part",
            ),
            ("{metric: f1, rows: ''}", "rows", "`rows` names no variable"),
            (
                "{metric: f1, columns: eval}",
                "columns",
                "`columns` needs `rows`",
            ),
            ("{metric: f1, series: lang}", "series", "`series` needs `x`"),
            (
                "{metric: f1, rows: train, x: n}",
                "x",
                "`rows` asks for a table and `x` for a line chart: give one",
            ),
            (
                "{metric: f1, rows: train, columns: train}",
                "columns",
                "`columns` names `train` again",
            ),
            (
                "{metric: f1, x: n, series: n}",
                "series",
                "`series` names `n` again",
            ),
            (
                "{metric: f1, x-scale: log}",
                "x-scale",
                "`x-scale` needs `x`",
            ),
            (
                "{metric: f1, digits: 13}",
                "digits",
                "`digits` is 13, more than 12",
            ),
            (
                "{metric: f1, labels: {de: ''}}",
                "labels",
                "`labels` gives `de` an empty name",
            ),
        ];
        for (yaml, want_field, want_message) in cases {
            let (field, message) = refused(yaml, &inputs);
            assert_eq!(
                (field.as_str(), message.as_str()),
                (want_field, want_message)
            );
        }
        let unknown = serde_json::from_value::<CompareParams>(json!({"metric": "f1", "row": "x"}));
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `row`")
        );
    }
}
