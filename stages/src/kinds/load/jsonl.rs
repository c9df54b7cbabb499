//! `format: jsonl`: one JSON object per line; each field becomes a column of the narrowest Arrow
//! type that holds all its values, a row without the field a null.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use super::{Labeler, LoadParams, SourceFile, excerpt, finish, lines, read_bytes};
use crate::api::StageError;
use crate::columns::table;

/// Reads a JSON Lines file: every object's fields (or only `columns:`), the text and label
/// fields type-checked as they are read, the label column mapped to ids when `labels:` is given.
pub(super) fn read(
    p: &LoadParams,
    f: &SourceFile,
    labeler: &Labeler,
) -> Result<RecordBatch, StageError> {
    let bytes = read_bytes(f)?;
    let mut rows = Rows::new(p.columns.clone());
    for (line, text) in lines(f, &bytes)? {
        if text.trim().is_empty() {
            continue;
        }
        if p.limit_of(&f.split)
            .is_some_and(|l| rows.line_of.len() >= l)
        {
            break;
        }
        let obj = parse_object(f, line, text)?;
        rows.add_names(&obj, p.columns.is_none());
        rows.check_types(&obj, f, line, labeler)?;
        rows.push(obj, line);
    }
    rows.refuse_mostly_holes(f)?;
    let (fields, arrays) = rows.columns(f, labeler)?;
    finish(fields, arrays, &rows.names, labeler, f)
}

/// The rows read so far, kept as sparse (row, value) pairs per column until every row is read:
/// rows that each bring new fields would otherwise pad every column to every row as they go.
struct Rows {
    /// The columns, in order of first appearance (or as `columns:` lists them).
    names: Vec<String>,
    /// The same names, to look up (a linear search per field took 83 s on a row of 50k fields).
    known: HashSet<String>,
    values: BTreeMap<String, Vec<(usize, Value)>>,
    /// Values kept, over all columns.
    present: usize,
    /// The file line of each row.
    line_of: Vec<usize>,
}

impl Rows {
    fn new(columns: Option<Vec<String>>) -> Rows {
        let names = columns.unwrap_or_default();
        Rows {
            known: names.iter().cloned().collect(),
            names,
            values: BTreeMap::new(),
            present: 0,
            line_of: Vec::new(),
        }
    }

    /// Adds the object's new fields as columns, unless `columns:` fixed them.
    fn add_names(&mut self, obj: &Map<String, Value>, open: bool) {
        if open {
            for k in obj.keys() {
                if self.known.insert(k.clone()) {
                    self.names.push(k.clone());
                }
            }
        }
    }

    /// Refuses a text or label field of the wrong type (a kept column only).
    fn check_types(
        &self,
        obj: &Map<String, Value>,
        f: &SourceFile,
        line: usize,
        labeler: &Labeler,
    ) -> Result<(), StageError> {
        for (field, want) in [(TEXT_FIELD, Want::Text), (labeler.column, Want::Label)] {
            if let Some(v) = obj.get(field)
                && self.known.contains(field)
                && !want.accepts(v)
            {
                return Err(StageError::failed(format!(
                    "{}:{line}: field `{field}` is {}, expected {}",
                    f.shown,
                    json_type(v),
                    want.expected()
                )));
            }
        }
        Ok(())
    }

    /// Keeps the object's values of the kept columns as the next row.
    fn push(&mut self, obj: Map<String, Value>, line: usize) {
        let row = self.line_of.len();
        for (k, v) in obj {
            if self.known.contains(&k) {
                self.values.entry(k).or_default().push((row, v));
                self.present += 1;
            }
        }
        self.line_of.push(line);
    }

    /// The table is rows × fields; refuses one that is mostly holes (every row with fields of
    /// its own), which would take memory out of all proportion to the file.
    fn refuse_mostly_holes(&self, f: &SourceFile) -> Result<(), StageError> {
        let rows = self.line_of.len();
        if rows.saturating_mul(self.names.len()) > (1 << 22).max(self.present.saturating_mul(16)) {
            return Err(StageError::param(
                "columns",
                format!(
                    "{}: {} different fields over {rows} rows, most of them missing from most rows",
                    f.shown,
                    self.names.len()
                ),
                Some("list the fields to keep with `columns:`".into()),
            ));
        }
        Ok(())
    }

    /// Every column as an Arrow field and array; the text and label columns must be in every
    /// row, and the label column becomes ids when `labels:` is given.
    fn columns(
        &mut self,
        f: &SourceFile,
        labeler: &Labeler,
    ) -> Result<(Vec<Field>, Vec<ArrayRef>), StageError> {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for name in &self.names {
            let mut col = vec![Value::Null; self.line_of.len()];
            for (row, v) in self.values.remove(name).unwrap_or_default() {
                col[row] = v;
            }
            // Explicit nulls were refused above: a null here is a row without the field.
            if (name == TEXT_FIELD || name == labeler.column)
                && let Some(row) = col.iter().position(Value::is_null)
            {
                return Err(StageError::failed(format!(
                    "{}:{}: no field `{name}` (the {} column)",
                    f.shown,
                    self.line_of[row],
                    if name == TEXT_FIELD { "text" } else { "label" }
                )));
            }
            let (field, array) = if name == labeler.column && labeler.map.is_some() {
                label_column(name, &col, &self.line_of, f, labeler)?
            } else {
                json_column(name, &col)
            };
            fields.push(field);
            arrays.push(array);
        }
        Ok((fields, arrays))
    }
}

/// One line as a JSON object, or an error at `file:line:column`.
fn parse_object(f: &SourceFile, line: usize, text: &str) -> Result<Map<String, Value>, StageError> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json counts lines within this one line: keep its column, drop its "line 1".
        let full = e.to_string();
        let what = full
            .rsplit_once(" at line ")
            .map_or(full.as_str(), |(w, _)| w);
        StageError::failed(format!(
            "{}:{line}:{}: not a JSON object: {what}",
            f.shown,
            e.column()
        ))
    })
}

/// The label column as `int64` ids, each value (a name or an id; a number as its text) through
/// the labeler.
fn label_column(
    name: &str,
    col: &[Value],
    line_of: &[usize],
    f: &SourceFile,
    labeler: &Labeler,
) -> Result<(Field, ArrayRef), StageError> {
    let ids = col
        .iter()
        .zip(line_of)
        .map(|(v, &line)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            labeler.id(&text, || format!("{}:{line}", f.shown))
        })
        .collect::<Result<Vec<i64>, _>>()?;
    Ok((
        Field::new(name, DataType::Int64, false),
        Arc::new(Int64Array::from(ids)) as ArrayRef,
    ))
}

/// The JSON Lines field the text stages read by default (`tokenize`'s `column: text`).
const TEXT_FIELD: &str = "text";

/// What a JSON Lines field must hold: text to tokenize, or a label (a name or an id).
#[derive(Clone, Copy)]
enum Want {
    Text,
    Label,
}

impl Want {
    fn accepts(self, v: &serde_json::Value) -> bool {
        match self {
            Want::Text => v.is_string(),
            Want::Label => v.is_string() || v.is_i64() || v.is_u64(),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Want::Text => "a string",
            Want::Label => "a string or an integer",
        }
    }
}

/// A JSON value's type for messages, with a short excerpt of scalars.
fn json_type(v: &serde_json::Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({})", excerpt(&n.to_string())),
        Value::String(s) => format!("a string (`{}`)", excerpt(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A JSON column as the narrowest Arrow type that holds every value: int64, float64, bool,
/// utf8, list<utf8>, list<int64>; anything else is kept as JSON text.
fn json_column(name: &str, col: &[serde_json::Value]) -> (Field, ArrayRef) {
    let present = || col.iter().filter(|v| !v.is_null());
    let nullable = col.iter().any(Value::is_null);
    if present().all(|v| v.is_i64()) {
        let a: Int64Array = col.iter().map(Value::as_i64).collect();
        return (Field::new(name, DataType::Int64, nullable), Arc::new(a));
    }
    if present().all(Value::is_number) {
        let a: Float64Array = col.iter().map(Value::as_f64).collect();
        return (Field::new(name, DataType::Float64, nullable), Arc::new(a));
    }
    if present().all(Value::is_boolean) {
        let a: BooleanArray = col.iter().map(Value::as_bool).collect();
        return (Field::new(name, DataType::Boolean, nullable), Arc::new(a));
    }
    let arrays_of = |pred: fn(&Value) -> bool| {
        present().all(|v| v.as_array().is_some_and(|a| a.iter().all(pred)))
    };
    if present().next().is_some() && arrays_of(Value::is_string) {
        let rows: Vec<Vec<&str>> = col
            .iter()
            .map(|v| {
                v.as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default()
            })
            .collect();
        let a = table::list_utf8(&rows);
        return (Field::new(name, a.data_type().clone(), false), a);
    }
    if present().next().is_some() && arrays_of(Value::is_i64) {
        let rows: Vec<Vec<i32>> = col
            .iter()
            .map(|v| {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_i64)
                            .map(|x| x as i32)
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let a = table::list_i32(&rows);
        return (Field::new(name, a.data_type().clone(), false), a);
    }
    let a: StringArray = col
        .iter()
        .map(|v| match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect();
    (Field::new(name, DataType::Utf8, nullable), Arc::new(a))
}

#[cfg(test)]
mod tests {
    use super::super::LoadParams;
    use super::super::testing::{file, load, params};

    #[test]
    fn jsonl_text_and_labels_of_the_wrong_type_are_refused_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let with_labels = params("{labels: [neg, pos], splits: {train: x.jsonl}}");
        let no_labels = params("{splits: {train: x.jsonl}}");
        let cases: [(&LoadParams, &str, &str); 10] = [
            (
                &no_labels,
                r#"{"text": 5}"#,
                "field `text` is a number (5), expected a string",
            ),
            (
                &no_labels,
                r#"{"text": {"a": 1}}"#,
                "field `text` is an object, expected a string",
            ),
            (
                &no_labels,
                r#"{"text": ["a", "b"]}"#,
                "field `text` is an array, expected a string",
            ),
            (
                &no_labels,
                r#"{"text": null}"#,
                "field `text` is null, expected a string",
            ),
            (
                &no_labels,
                r#"{"text": true}"#,
                "field `text` is a boolean (true), expected a string",
            ),
            (
                &no_labels,
                r#"{"text": "a", "label": 2.5}"#,
                "field `label` is a number (2.5), expected a string or an integer",
            ),
            (
                &no_labels,
                r#"{"text": "a", "label": null}"#,
                "field `label` is null, expected a string or an integer",
            ),
            (
                &with_labels,
                r#"{"text": "a", "label": [1]}"#,
                "field `label` is an array, expected a string or an integer",
            ),
            (
                &with_labels,
                r#"{"text": "a", "label": false}"#,
                "field `label` is a boolean (false), expected a string or an integer",
            ),
            (
                &with_labels,
                r#"{"text": "a"}"#,
                "no field `label` (the label column)",
            ),
        ];
        for (p, row, want) in cases {
            let body = format!("{{\"text\": \"fine\", \"label\": 1}}\n\n{row}\n");
            let e = load(p, &file(dir.path(), "t.jsonl", body.as_bytes()))
                .unwrap_err()
                .to_string();
            assert_eq!(e, format!("data/t.jsonl:3: {want}"), "{row}");
        }
        let e = load(
            &no_labels,
            &file(dir.path(), "m.jsonl", b"{\"text\": \"a\"}\n{\"n\": 1}\n"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "data/m.jsonl:2: no field `text` (the text column)");
        // A file without a `text` field, or with other fields of any type, is fine.
        let b = load(
            &no_labels,
            &file(
                dir.path(),
                "o.jsonl",
                b"{\"sentence\": 5, \"label\": \"x\"}\n",
            ),
        )
        .unwrap();
        assert_eq!(b.num_rows(), 1);
    }

    #[test]
    fn jsonl_rows_with_fields_of_their_own_neither_hang_nor_blow_up_memory() {
        // Probing fuzz/load_jsonl with big inputs: one row of 50k fields took 83 s (a linear
        // search per field), 3000 rows of one new field each took 250 MB (every column padded
        // to every row while reading).
        let dir = tempfile::tempdir().unwrap();
        let p = params("{splits: {train: x.jsonl}}");
        let wide: Vec<String> = (0..50_000).map(|i| format!("\"k{i}\": {i}")).collect();
        let start = std::time::Instant::now();
        let b = load(
            &p,
            &file(
                dir.path(),
                "w.jsonl",
                format!("{{{}}}\n", wide.join(", ")).as_bytes(),
            ),
        )
        .unwrap();
        assert_eq!(b.num_columns(), 50_000);
        assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
        let sparse: String = (0..3000).map(|i| format!("{{\"k{i}\": 1}}\n")).collect();
        let e = load(&p, &file(dir.path(), "s.jsonl", sparse.as_bytes()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "data/s.jsonl: 3000 different fields over 3000 rows, most of them missing from most rows"
        );
        // Some missing fields are fine: they are nulls.
        let b = load(
            &p,
            &file(
                dir.path(),
                "m.jsonl",
                b"{\"a\": 1}\n{\"b\": 2}\n{\"a\": 3, \"b\": 4}\n",
            ),
        )
        .unwrap();
        assert_eq!(b.column_by_name("a").unwrap().null_count(), 1);
    }
}
