//! Small Arrow helpers the text stages share: reading string and list columns with errors that
//! name the column, building list columns from `Vec<Vec<_>>`, and adding columns to a batch
//! while keeping its schema metadata (label names travel with the table).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int8Array, Int32Array, ListArray, StringArray,
    StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema};
use arrow::record_batch::RecordBatch;

use crate::api::StageError;

/// The column `name`, or an error listing the columns there are.
pub fn column<'a>(
    batch: &'a RecordBatch,
    name: &str,
    split: &str,
) -> Result<&'a ArrayRef, StageError> {
    batch.column_by_name(name).ok_or_else(|| {
        let have: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        StageError::failed(format!(
            "split `{split}` has no column `{name}` (columns: {})",
            have.join(", ")
        ))
    })
}

fn wrong_type(name: &str, split: &str, want: &str, got: &DataType) -> StageError {
    StageError::failed(format!(
        "column `{name}` of split `{split}` is {got}, expected {want}"
    ))
}

/// A utf8 column as owned-free `&str`s (nulls read as "").
pub fn strings<'a>(
    batch: &'a RecordBatch,
    name: &str,
    split: &str,
) -> Result<Vec<&'a str>, StageError> {
    let col = column(batch, name, split)?;
    match col.data_type() {
        DataType::Utf8 => Ok(col
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap_or(""))
            .collect()),
        DataType::LargeUtf8 => Ok(col
            .as_string::<i64>()
            .iter()
            .map(|s| s.unwrap_or(""))
            .collect()),
        DataType::Utf8View => Ok(col
            .as_string_view()
            .iter()
            .map(|s| s.unwrap_or(""))
            .collect()),
        other => Err(wrong_type(name, split, "utf8", other)),
    }
}

/// A `list<utf8>` column as one `Vec<&str>` per row (nulls read as empty).
pub fn string_lists<'a>(
    batch: &'a RecordBatch,
    name: &str,
    split: &str,
) -> Result<Vec<Vec<&'a str>>, StageError> {
    let col = column(batch, name, split)?;
    let DataType::List(inner) = col.data_type() else {
        return Err(wrong_type(name, split, "list<utf8>", col.data_type()));
    };
    if inner.data_type() != &DataType::Utf8 {
        return Err(wrong_type(name, split, "list<utf8>", col.data_type()));
    }
    let list = col.as_list::<i32>();
    let values = list.values().as_string::<i32>();
    Ok(list_rows(list, |j| values.value(j)))
}

/// A `list<float>` column (any float width) as one `Vec<Option<f64>>` per row, `None` for a
/// null item (a null row reads as empty).
pub fn float_lists(
    batch: &RecordBatch,
    name: &str,
    split: &str,
) -> Result<Vec<Vec<Option<f64>>>, StageError> {
    let col = column(batch, name, split)?;
    if !matches!(col.data_type(), DataType::List(inner) if inner.data_type().is_floating()) {
        return Err(wrong_type(name, split, "list<float>", col.data_type()));
    }
    let list = col.as_list::<i32>();
    let values = arrow::compute::cast(list.values(), &DataType::Float64)?;
    let values = values.as_primitive::<arrow::datatypes::Float64Type>();
    Ok(list_rows(list, |j| {
        values.is_valid(j).then(|| values.value(j))
    }))
}

/// Each row of `list` as its items, `item(j)` reading the values array at `j`.
fn list_rows<T>(list: &ListArray, item: impl Fn(usize) -> T) -> Vec<Vec<T>> {
    let offsets = list.value_offsets();
    (0..list.len())
        .map(|i| {
            if list.is_null(i) {
                return Vec::new();
            }
            (offsets[i] as usize..offsets[i + 1] as usize)
                .map(&item)
                .collect()
        })
        .collect()
}

/// A list column of integers (any width up to 64 bits) as `Vec<i64>` per row.
pub fn int_lists(
    batch: &RecordBatch,
    name: &str,
    split: &str,
) -> Result<Vec<Vec<i64>>, StageError> {
    let col = column(batch, name, split)?;
    let DataType::List(inner) = col.data_type() else {
        return Err(wrong_type(name, split, "list<int>", col.data_type()));
    };
    if !inner.data_type().is_integer() {
        return Err(wrong_type(name, split, "list<int>", col.data_type()));
    }
    let list = col.as_list::<i32>();
    let values = arrow::compute::cast(list.values(), &DataType::Int64)?;
    let values = values.as_primitive::<arrow::datatypes::Int64Type>();
    let offsets = list.value_offsets();
    Ok((0..list.len())
        .map(|i| {
            if list.is_null(i) {
                return Vec::new();
            }
            values.values()[offsets[i] as usize..offsets[i + 1] as usize].to_vec()
        })
        .collect())
}

fn offsets_of<T>(rows: &[Vec<T>]) -> OffsetBuffer<i32> {
    OffsetBuffer::from_lengths(rows.iter().map(Vec::len))
}

/// `list<int32>` from rows.
pub fn list_i32(rows: &[Vec<i32>]) -> ArrayRef {
    let values: Int32Array = rows.iter().flatten().copied().collect();
    let field = Arc::new(Field::new_list_field(DataType::Int32, false));
    Arc::new(ListArray::new(
        field,
        offsets_of(rows),
        Arc::new(values),
        None,
    ))
}

/// `list<int8>` from rows.
pub fn list_i8(rows: &[Vec<i8>]) -> ArrayRef {
    let values: Int8Array = rows.iter().flatten().copied().collect();
    let field = Arc::new(Field::new_list_field(DataType::Int8, false));
    Arc::new(ListArray::new(
        field,
        offsets_of(rows),
        Arc::new(values),
        None,
    ))
}

/// `list<float64>` from rows whose items may be missing (null).
pub fn list_f64_opt(rows: &[Vec<Option<f64>>]) -> ArrayRef {
    let values: Float64Array = rows.iter().flatten().copied().collect();
    let field = Arc::new(Field::new_list_field(DataType::Float64, true));
    Arc::new(ListArray::new(
        field,
        offsets_of(rows),
        Arc::new(values),
        None,
    ))
}

/// `list<utf8>` from rows.
pub fn list_utf8<S: AsRef<str>>(rows: &[Vec<S>]) -> ArrayRef {
    let values: StringArray = rows.iter().flatten().map(|s| Some(s.as_ref())).collect();
    let field = Arc::new(Field::new_list_field(DataType::Utf8, false));
    Arc::new(ListArray::new(
        field,
        offsets_of(rows),
        Arc::new(values),
        None,
    ))
}

/// The fields of a span: `start` and `end` character offsets, end exclusive.
pub fn span_fields() -> Fields {
    Fields::from(vec![
        Field::new("start", DataType::Int32, false),
        Field::new("end", DataType::Int32, false),
    ])
}

/// `list<struct<start: int32, end: int32>>` from rows of `(start, end)` character offsets.
pub fn list_spans(rows: &[Vec<(usize, usize)>]) -> ArrayRef {
    let starts: Int32Array = rows.iter().flatten().map(|s| s.0 as i32).collect();
    let ends: Int32Array = rows.iter().flatten().map(|s| s.1 as i32).collect();
    let spans = StructArray::new(span_fields(), vec![Arc::new(starts), Arc::new(ends)], None);
    let field = Arc::new(Field::new_list_field(
        DataType::Struct(span_fields()),
        false,
    ));
    Arc::new(ListArray::new(
        field,
        offsets_of(rows),
        Arc::new(spans),
        None,
    ))
}

/// Reads a `list<struct<start, end>>` column back (for tests and downstream stages).
pub fn spans(
    batch: &RecordBatch,
    name: &str,
    split: &str,
) -> Result<Vec<Vec<(usize, usize)>>, StageError> {
    let col = column(batch, name, split)?;
    let DataType::List(_) = col.data_type() else {
        return Err(wrong_type(
            name,
            split,
            "list<struct<start,end>>",
            col.data_type(),
        ));
    };
    let list = col.as_list::<i32>();
    let Some(st) = list.values().as_struct_opt() else {
        return Err(wrong_type(
            name,
            split,
            "list<struct<start,end>>",
            col.data_type(),
        ));
    };
    let starts = st.column(0).as_primitive::<Int32Type>();
    let ends = st.column(1).as_primitive::<Int32Type>();
    let offsets = list.value_offsets();
    Ok((0..list.len())
        .map(|i| {
            (offsets[i] as usize..offsets[i + 1] as usize)
                .map(|j| (starts.value(j) as usize, ends.value(j) as usize))
                .collect()
        })
        .collect())
}

/// `batch` plus `columns` (a column of the same name is replaced in place), keeping the schema
/// metadata and adding `metadata`.
pub fn with_columns(
    batch: &RecordBatch,
    columns: Vec<(&str, ArrayRef)>,
    metadata: &[(&str, String)],
) -> Result<RecordBatch, StageError> {
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, array) in columns {
        let field = Field::new(name, array.data_type().clone(), array.null_count() > 0);
        match fields.iter().position(|f| f.name() == name) {
            Some(i) => {
                fields[i] = field;
                arrays[i] = array;
            }
            None => {
                fields.push(field);
                arrays.push(array);
            }
        }
    }
    let mut meta = schema.metadata().clone();
    for (k, v) in metadata {
        meta.insert(k.to_string(), v.clone());
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, meta)),
        arrays,
    )?)
}

/// An integer column as `Option<i64>` per row.
pub fn ids(batch: &RecordBatch, name: &str, split: &str) -> Result<Vec<Option<i64>>, StageError> {
    let col = column(batch, name, split)?;
    if !col.data_type().is_integer() {
        return Err(StageError::failed(format!(
            "column `{name}` of split `{split}` is {}, expected integer label ids",
            col.data_type()
        )));
    }
    let col = arrow::compute::cast(col, &DataType::Int64)?;
    Ok(col
        .as_primitive::<arrow::datatypes::Int64Type>()
        .iter()
        .collect())
}

/// Serde default of a `features` param: the column extract-hidden writes.
pub(crate) fn hidden_state() -> String {
    "hidden_state".into()
}

/// Serde default of a param naming the training split (`fit-split`, `train-split`, ...).
pub(crate) fn train() -> String {
    "train".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_columns_round_trip() {
        let batch =
            RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef)])
                .unwrap();
        let rows = vec![vec!["a", "bc"], vec![]];
        let spans_in = vec![vec![(0, 1), (2, 4)], vec![]];
        let ints = vec![vec![3, -1], vec![7]];
        let b = with_columns(
            &batch,
            vec![
                ("w", list_utf8(&rows)),
                ("o", list_spans(&spans_in)),
                ("i", list_i32(&ints)),
            ],
            &[("k", "v".into())],
        )
        .unwrap();
        assert_eq!(string_lists(&b, "w", "t").unwrap(), rows);
        assert_eq!(spans(&b, "o", "t").unwrap(), spans_in);
        assert_eq!(int_lists(&b, "i", "t").unwrap(), vec![vec![3, -1], vec![7]]);
        assert_eq!(b.schema().metadata()["k"], "v");
        let err = strings(&b, "nope", "train").unwrap_err().to_string();
        assert!(
            err.contains("no column `nope`") && err.contains("x, w, o, i"),
            "{err}"
        );
    }
}
