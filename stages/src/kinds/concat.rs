//! `concat`: several datasets into one, split by split (Hugging Face's `concatenate_datasets`),
//! with a column recording which upstream stage each row came from — the NER chapter's
//! multilingual training set.
//!
//! The rules:
//! - **Splits** are aligned by name. By default every input must have the same splits: a split
//!   only some inputs have is an error naming it and the inputs that lack it (a `test` split
//!   that held German only would pass for a multilingual one). `splits: [train, validation]`
//!   keeps only those, and every input must have each.
//! - **Columns**: every input has the same columns (by name, in any order) with the same types;
//!   a mismatch is an error naming the split, the column and both stages. The output keeps the
//!   first input's column order and schema metadata.
//! - **Labels**: every input has the same label names in the same order (the schema metadata of
//!   [`crate::columns::labels`]), in the same column; a mismatch is an error naming both stages
//!   and both lists. The output keeps them, so later stages still print names.
//! - **Rows**: each input's rows in turn, in the order the inputs are listed, then the
//!   `source-column` (utf8, the upstream stage id; an input that already has that column is an
//!   error). Metrics: `rows.<split>`.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::api::{Arity, Context, Input, Output, PrepareEnv, Stage, StageError};
use crate::columns::labels::{self, LabelMap};
use crate::columns::table;

/// Params of `concat`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConcatParams {
    /// The column added to hold each row's upstream stage id. Default `source`.
    #[serde(default = "source")]
    pub source_column: String,
    /// The splits to write, e.g. `[train, validation]`; every input must have each. Default:
    /// every split, and then every input must have the same splits.
    #[serde(default)]
    pub splits: Option<Vec<String>>,
}

fn source() -> String {
    "source".into()
}

/// One input's table of the split being joined, with the stage it came from.
type Part<'a> = (&'a str, &'a RecordBatch);

/// `"`a`"`, `"`a` and `b`"`, `"`a`, `b` and `c`"`.
fn stages(inputs: &[&Input]) -> String {
    let names: Vec<String> = inputs.iter().map(|i| format!("`{}`", i.stage)).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The splits to write: those `splits:` names (every input must have each), or else every
/// split, which every input must then have.
fn splits_to_write(p: &ConcatParams, inputs: &[Input]) -> Result<Vec<String>, StageError> {
    if let Some(wanted) = &p.splits {
        for input in inputs {
            for split in wanted {
                input.table_named_by("splits", split)?;
            }
        }
        return Ok(wanted.clone());
    }
    let all: BTreeSet<&String> = inputs.iter().flat_map(|i| i.tables.keys()).collect();
    let shared: Vec<&str> = all
        .iter()
        .filter(|s| inputs.iter().all(|i| i.tables.contains_key(**s)))
        .map(|s| s.as_str())
        .collect();
    for split in &all {
        let (have, lack): (Vec<&Input>, Vec<&Input>) =
            inputs.iter().partition(|i| i.tables.contains_key(*split));
        if !lack.is_empty() {
            let hint = if shared.is_empty() {
                "the inputs share no split: concat joins splits of the same name".to_string()
            } else {
                format!(
                    "keep the splits they share with `splits: [{}]`",
                    shared.join(", ")
                )
            };
            return Err(StageError::failed(format!(
                "split `{split}` is in {} but not in {}",
                stages(&have),
                stages(&lack)
            ))
            .with_hint(hint));
        }
    }
    Ok(all.into_iter().cloned().collect())
}

/// `[O, B-PER, ...]`, or `no label names`.
fn listing(names: &Option<Vec<String>>) -> String {
    match names {
        Some(n) => format!("[{}]", LabelMap::new(n).listing()),
        None => "no label names".into(),
    }
}

/// Where two label lists part: the first id they disagree on, or their lengths.
fn first_difference(a: &[String], b: &[String]) -> String {
    match (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        Some(i) if i < a.len().min(b.len()) => {
            format!("they differ at id {i}: `{}` vs `{}`", a[i], b[i])
        }
        _ => format!("{} labels vs {}", a.len(), b.len()),
    }
}

/// Every part has the first one's label names, in the same order and the same column.
fn check_labels(split: &str, parts: &[Part]) -> Result<(), StageError> {
    let hint = "concat needs the same label names in the same order: give the stages that load \
                the inputs the same `labels:` list";
    let (first, first_batch) = parts[0];
    let first_schema = first_batch.schema();
    let want = labels::label_names(&first_schema);
    for (stage, batch) in &parts[1..] {
        let schema = batch.schema();
        let got = labels::label_names(&schema);
        if got != want {
            let detail = match (&want, &got) {
                (Some(a), Some(b)) => format!(" ({})", first_difference(a, b)),
                _ => String::new(),
            };
            return Err(StageError::failed(format!(
                "split `{split}`: `{first}` has labels {} but `{stage}` has {}{detail}",
                listing(&want),
                listing(&got)
            ))
            .with_hint(hint));
        }
        let (a, b) = (
            labels::label_column(&first_schema),
            labels::label_column(&schema),
        );
        if a != b {
            return Err(StageError::failed(format!(
                "split `{split}`: `{first}` keeps its labels in column `{}` but `{stage}` in `{}`",
                a.unwrap_or("-"),
                b.unwrap_or("-")
            ))
            .with_hint(hint));
        }
    }
    Ok(())
}

/// No input already has the column `concat` adds.
fn check_source_column_is_new(
    p: &ConcatParams,
    split: &str,
    parts: &[Part],
) -> Result<(), StageError> {
    match parts
        .iter()
        .find(|(_, b)| b.column_by_name(&p.source_column).is_some())
    {
        Some((stage, _)) => Err(StageError::param(
            "source-column",
            format!(
                "split `{split}` of `{stage}` already has a column `{}`",
                p.source_column
            ),
            Some("name the added column otherwise with `source-column:`".into()),
        )),
        None => Ok(()),
    }
}

/// Every part has the first one's columns (by name) with the same types, and no other.
fn check_columns(split: &str, parts: &[Part]) -> Result<(), StageError> {
    let differ = |message: String| {
        StageError::failed(message)
            .with_hint("concat needs the same columns, with the same types, in every input")
    };
    let (first, first_batch) = parts[0];
    let want = first_batch.schema();
    for (stage, batch) in &parts[1..] {
        let got = batch.schema();
        for field in want.fields() {
            let name = field.name();
            let Ok(other) = got.field_with_name(name) else {
                return Err(differ(format!(
                    "split `{split}`: `{stage}` has no column `{name}`, which `{first}` has"
                )));
            };
            if !other.data_type().equals_datatype(field.data_type()) {
                return Err(differ(format!(
                    "split `{split}`, column `{name}`: `{first}` has {} but `{stage}` has {}",
                    field.data_type(),
                    other.data_type()
                )));
            }
        }
        let extra = got
            .fields()
            .iter()
            .find(|f| want.column_with_name(f.name()).is_none());
        if let Some(extra) = extra {
            return Err(differ(format!(
                "split `{split}`: `{stage}` has a column `{}`, which `{first}` lacks",
                extra.name()
            )));
        }
    }
    Ok(())
}

/// The parts one after another (columns in the first part's order and types), then the source
/// column.
fn join(p: &ConcatParams, split: &str, parts: &[Part]) -> Result<RecordBatch, StageError> {
    let schema = parts[0].1.schema();
    let mut fields = Vec::with_capacity(schema.fields().len() + 1);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.capacity());
    for field in schema.fields() {
        let pieces = parts
            .iter()
            .map(|(_, batch)| {
                let piece = table::column(batch, field.name(), split)?;
                // Equal types may still differ in a nested field's name (`item`, `element`).
                Ok(arrow::compute::cast(piece, field.data_type())?)
            })
            .collect::<Result<Vec<ArrayRef>, StageError>>()?;
        let column =
            arrow::compute::concat(&pieces.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?;
        let nullable = field.is_nullable() || column.null_count() > 0;
        fields.push(field.as_ref().clone().with_nullable(nullable));
        columns.push(column);
    }
    let source = StringArray::from_iter_values(
        parts
            .iter()
            .flat_map(|(stage, batch)| std::iter::repeat_n(*stage, batch.num_rows())),
    );
    fields.push(Field::new(&p.source_column, DataType::Utf8, false));
    columns.push(Arc::new(source));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        columns,
    )?)
}

/// `concat`: several inputs' splits joined by name, with a source column.
pub struct Concat;

impl Stage for Concat {
    type Params = ConcatParams;
    const KIND: &'static str = "concat";
    /// Bump when the joined rows, their order or the added column change.
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::AtLeast(2);
    const SUMMARY: &'static str =
        "joins several datasets split by split, adding a source column; labels must agree";

    fn validate(p: &ConcatParams, _env: &PrepareEnv) -> Result<(), StageError> {
        if p.source_column.is_empty() {
            return Err(StageError::param(
                "source-column",
                "`source-column` names no column",
                Some("leave it out for `source`, or name the column to add".into()),
            ));
        }
        let Some(splits) = &p.splits else {
            return Ok(());
        };
        if splits.is_empty() {
            return Err(StageError::param(
                "splits",
                "`splits` names no split",
                Some("leave it out to join every split, or name some: `[train]`".into()),
            ));
        }
        let mut seen = BTreeSet::new();
        match splits.iter().find(|s| !seen.insert(*s)) {
            Some(twice) => Err(StageError::param(
                "splits",
                format!("`splits` names `{twice}` twice"),
                None,
            )),
            None => Ok(()),
        }
    }

    fn run(p: &ConcatParams, ctx: &Context) -> Result<Output, StageError> {
        if !Self::INPUTS.accepts(ctx.inputs.len()) {
            return Err(StageError::failed(format!(
                "expected {}, got {}",
                Self::INPUTS.describe(),
                ctx.inputs.len()
            )));
        }
        let mut output = Output::default();
        for split in splits_to_write(p, ctx.inputs)? {
            ctx.check_cancelled()?;
            let parts = ctx
                .inputs
                .iter()
                .map(|i| Ok((i.stage.as_str(), i.table(&split)?)))
                .collect::<Result<Vec<Part>, StageError>>()?;
            check_labels(&split, &parts)?;
            check_source_column_is_new(p, &split, &parts)?;
            check_columns(&split, &parts)?;
            let joined = join(p, &split, &parts)?;
            output
                .metrics
                .insert(format!("rows.{split}"), joined.num_rows().into());
            output.tables.insert(split, joined);
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    const NER: [&str; 7] = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"];

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A CoNLL-like split: `tokens: list<utf8>`, `ner_tags: list<int32>`, with `labels` as the
    /// names of `ner_tags` (none when empty).
    fn conll(words: &[&str], labels: &[&str]) -> RecordBatch {
        let tokens: Vec<Vec<&str>> = words.iter().map(|w| vec![*w]).collect();
        let tags: Vec<Vec<i32>> = words.iter().map(|_| vec![0]).collect();
        let b = RecordBatch::try_from_iter([
            ("tokens", table::list_utf8(&tokens)),
            ("ner_tags", table::list_i32(&tags)),
        ])
        .unwrap();
        with_labels(b, "ner_tags", labels)
    }

    fn with_labels(b: RecordBatch, column: &str, list: &[&str]) -> RecordBatch {
        if list.is_empty() {
            return b;
        }
        let meta: HashMap<String, String> =
            labels::metadata(column, &names(list)).into_iter().collect();
        let schema = Schema::new(b.schema().fields().clone()).with_metadata(meta);
        b.with_schema(Arc::new(schema)).unwrap()
    }

    fn input(stage: &str, splits: &[(&str, RecordBatch)]) -> Input {
        Input {
            stage: stage.into(),
            tables: splits
                .iter()
                .map(|(s, b)| (s.to_string(), b.clone()))
                .collect(),
            files: BTreeMap::new(),
            ..Default::default()
        }
    }

    fn run(yaml: &str, inputs: &[Input]) -> Result<Output, StageError> {
        let p: ConcatParams = crate::params_from_yaml(yaml);
        crate::run_with_inputs::<Concat>(&p, inputs).map(|(output, _dir)| output)
    }

    fn failure(err: StageError) -> (String, Option<String>) {
        let hint = err.hint().map(String::from);
        (err.to_string(), hint)
    }

    fn words(batch: &RecordBatch) -> Vec<String> {
        table::string_lists(batch, "tokens", "t")
            .unwrap()
            .into_iter()
            .map(|w| w.concat())
            .collect()
    }

    fn de_en() -> [Input; 2] {
        [
            input(
                "load-de",
                &[
                    ("train", conll(&["Berlin", "Hamburg"], &NER)),
                    ("validation", conll(&["Bonn"], &NER)),
                ],
            ),
            input(
                "load-en",
                &[
                    ("train", conll(&["London"], &NER)),
                    ("validation", conll(&["Leeds", "York"], &NER)),
                ],
            ),
        ]
    }

    #[test]
    fn splits_are_joined_by_name_in_input_order_with_the_source() {
        let out = run("{}", &de_en()).unwrap();
        let train = &out.tables["train"];
        assert_eq!(words(train), ["Berlin", "Hamburg", "London"]);
        assert_eq!(
            table::strings(train, "source", "train").unwrap(),
            ["load-de", "load-de", "load-en"]
        );
        assert_eq!(labels::label_names(&train.schema()).unwrap(), names(&NER));
        assert_eq!(labels::label_column(&train.schema()), Some("ner_tags"));
        assert_eq!(
            table::int_lists(train, "ner_tags", "train").unwrap(),
            vec![vec![0]; 3]
        );
        assert_eq!(words(&out.tables["validation"]), ["Bonn", "Leeds", "York"]);
        assert_eq!(out.metrics["rows.train"], 3);
        assert_eq!(out.metrics["rows.validation"], 3);
        let again = run("{}", &de_en()).unwrap();
        assert_eq!(again.tables, out.tables);
    }

    #[test]
    fn the_source_column_can_be_named_and_splits_chosen() {
        let [de, mut en] = de_en();
        en.tables.remove("validation");
        let out = run("source-column: lang\nsplits: [train]", &[de, en]).unwrap();
        assert_eq!(out.tables.keys().collect::<Vec<_>>(), ["train"]);
        let train = &out.tables["train"];
        assert_eq!(
            table::strings(train, "lang", "train").unwrap(),
            ["load-de", "load-de", "load-en"]
        );
        assert!(train.column_by_name("source").is_none());
    }

    #[test]
    fn a_split_only_some_inputs_have_is_an_error_unless_splits_says() {
        let [de, mut en] = de_en();
        en.tables.remove("validation");
        let inputs = [de, en];
        assert_eq!(
            failure(run("{}", &inputs).unwrap_err()),
            (
                "split `validation` is in `load-de` but not in `load-en`".into(),
                Some("keep the splits they share with `splits: [train]`".into())
            )
        );
        let err = run("splits: [train, validation]", &inputs).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input `load-en` has no split `validation` (splits: train)"
        );
        assert!(matches!(err, StageError::Param { ref field, .. } if field == "splits"));
        let third = input("load-fr", &[("test", conll(&["Paris"], &NER))]);
        let (message, hint) = failure(run("{}", &[inputs[1].clone(), third]).unwrap_err());
        assert_eq!(message, "split `test` is in `load-fr` but not in `load-en`");
        assert_eq!(
            hint.as_deref(),
            Some("the inputs share no split: concat joins splits of the same name")
        );
    }

    #[test]
    fn different_label_names_are_an_error_naming_both_sides_and_both_lists() {
        let [de, _] = de_en();
        let other = ["O", "B-ORG", "I-ORG", "B-PER", "I-PER", "B-LOC", "I-LOC"];
        let en = input(
            "load-en",
            &[
                ("train", conll(&["London"], &other)),
                ("validation", conll(&["York"], &other)),
            ],
        );
        let (message, hint) = failure(run("{}", &[de.clone(), en]).unwrap_err());
        assert_eq!(
            message,
            "split `train`: `load-de` has labels [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC] \
             but `load-en` has [O, B-ORG, I-ORG, B-PER, I-PER, B-LOC, I-LOC] (they differ at id \
             1: `B-PER` vs `B-ORG`)"
        );
        assert!(hint.unwrap().contains("the same `labels:` list"));

        let shorter = input("load-en", &[("train", conll(&["a"], &NER[..3]))]);
        let (message, _) = failure(run("splits: [train]", &[de.clone(), shorter]).unwrap_err());
        assert!(message.ends_with("(7 labels vs 3)"), "{message}");
        let unnamed = input("load-en", &[("train", conll(&["a"], &[]))]);
        let (message, _) = failure(run("splits: [train]", &[de.clone(), unnamed]).unwrap_err());
        assert_eq!(
            message,
            "split `train`: `load-de` has labels [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC] \
             but `load-en` has no label names"
        );
        let b = conll(&["a"], &[]);
        let elsewhere = input("load-en", &[("train", with_labels(b, "tags", &NER))]);
        let (message, _) = failure(run("splits: [train]", &[de, elsewhere]).unwrap_err());
        assert_eq!(
            message,
            "split `train`: `load-de` keeps its labels in column `ner_tags` but `load-en` in `tags`"
        );
    }

    #[test]
    fn different_columns_are_an_error_naming_the_stage_split_and_column() {
        let [de, _] = de_en();
        let run_with = |b: RecordBatch| {
            let en = input("load-en", &[("train", with_labels(b, "ner_tags", &NER))]);
            failure(run("splits: [train]", &[de.clone(), en]).unwrap_err())
        };
        let tokens = table::list_utf8(&[vec!["a"]]);
        let (message, hint) =
            run_with(RecordBatch::try_from_iter([("tokens", tokens.clone())]).unwrap());
        assert_eq!(
            message,
            "split `train`: `load-en` has no column `ner_tags`, which `load-de` has"
        );
        assert_eq!(
            hint.as_deref(),
            Some("concat needs the same columns, with the same types, in every input")
        );
        let wide = table::list_i8(&[vec![0]]);
        let (message, _) = run_with(
            RecordBatch::try_from_iter([("tokens", tokens.clone()), ("ner_tags", wide)]).unwrap(),
        );
        assert!(
            message.starts_with("split `train`, column `ner_tags`: `load-de` has List(")
                && message.contains("but `load-en` has List("),
            "{message}"
        );
        let tags = table::list_i32(&[vec![0]]);
        let (message, _) = run_with(
            RecordBatch::try_from_iter([
                ("ner_tags", tags.clone()),
                ("tokens", tokens.clone()),
                ("langs", tokens),
            ])
            .unwrap(),
        );
        assert_eq!(
            message,
            "split `train`: `load-en` has a column `langs`, which `load-de` lacks"
        );
    }

    #[test]
    fn columns_are_matched_by_name_and_nested_field_names_do_not_matter() {
        let [de, _] = de_en();
        // `ner_tags` first, and its list items named `element` (as some Parquet writers do).
        let items = Arc::new(Field::new("element", DataType::Int32, false));
        let tags = arrow::array::ListArray::new(
            items,
            arrow::buffer::OffsetBuffer::from_lengths([1]),
            Arc::new(arrow::array::Int32Array::from(vec![3])),
            None,
        );
        let b = RecordBatch::try_from_iter([
            ("ner_tags", Arc::new(tags) as ArrayRef),
            ("tokens", table::list_utf8(&[vec!["London"]])),
        ])
        .unwrap();
        let en = input("load-en", &[("train", with_labels(b, "ner_tags", &NER))]);
        let out = run("splits: [train]", &[de.clone(), en]).unwrap();
        let train = &out.tables["train"];
        assert_eq!(words(train), ["Berlin", "Hamburg", "London"]);
        assert_eq!(
            table::int_lists(train, "ner_tags", "train").unwrap(),
            [vec![0], vec![0], vec![3]]
        );
        let fields: Vec<String> = train
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(fields, ["tokens", "ner_tags", "source"]);
    }

    #[test]
    fn an_input_with_the_source_column_already_is_an_error() {
        let [de, en] = de_en();
        let once = run("{}", &[de.clone(), en]).unwrap();
        let joined = input("joined", &[("train", once.tables["train"].clone())]);
        let err = run("splits: [train]", &[joined, de]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "split `train` of `joined` already has a column `source`"
        );
        assert!(matches!(err, StageError::Param { ref field, .. } if field == "source-column"));
    }

    #[test]
    fn validate_refuses_empty_names_and_repeated_splits() {
        let refused = |yaml: &str| run(yaml, &de_en()).unwrap_err().to_string();
        assert_eq!(
            refused("source-column: ''"),
            "`source-column` names no column"
        );
        assert_eq!(refused("splits: []"), "`splits` names no split");
        assert_eq!(
            refused("splits: [train, validation, train]"),
            "`splits` names `train` twice"
        );
    }
}
