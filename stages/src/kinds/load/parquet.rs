//! `format: parquet` (and every Hub dataset): Apache Parquet read from memory, with the columns
//! `columns:` keeps and the labels mapped, checked against `labels:`, or named by the dataset's
//! own `ClassLabel`. Corrupt files are errors naming the file, never a hang, a huge allocation
//! or a panic (each guard below was found by fuzz/load_parquet).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Labeler, LoadParams, SourceFile, finish, read_bytes};
use crate::api::StageError;
use crate::columns::labels::{self, LabelMap};

/// Reads a Parquet file: decoded whole (up to `limit` rows), cut to `columns:`, the label column
/// mapped to ids (by `labels:`, or else by the dataset's own `ClassLabel` names).
pub(super) fn read(
    p: &LoadParams,
    f: &SourceFile,
    labeler: &Labeler,
) -> Result<RecordBatch, StageError> {
    let file = ParquetBytes(read_bytes(f)?.into());
    let (schema, batches) = decode_guarded(file, p.limit_of(&f.split), f)?;
    let batch = arrow::compute::concat_batches(&schema, &batches)?;
    let batch = match &p.columns {
        Some(columns) => keep_columns(&batch, &schema, columns, f)?,
        None => batch,
    };
    let labeler = with_hub_names(labeler, &schema);
    label_ids(&batch, &labeler, f)
}

fn not_readable(f: &SourceFile, e: &dyn std::fmt::Display) -> StageError {
    StageError::failed(format!("{}: not a readable Parquet file: {e}", f.shown))
}

/// [`decode`], with the parquet crate's panics made errors. It still asserts on some corrupt
/// encodings (fuzz/load_parquet: a DELTA_BINARY_PACKED varint longer than 10 bytes panics in
/// `get_vlq_int`). A corrupt file is the user's to fix: name it, rather than fail as "the stage
/// panicked".
fn decode_guarded(
    file: ParquetBytes,
    limit: Option<usize>,
    f: &SourceFile,
) -> Result<(SchemaRef, Vec<RecordBatch>), StageError> {
    catch_unwind(AssertUnwindSafe(|| decode(file, limit, f))).map_err(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("corrupt data");
        not_readable(f, &format!("the Parquet reader failed: {msg}"))
    })?
}

/// The file's schema and its first `limit` rows (all by default), dictionary pages checked
/// first.
fn decode(
    file: ParquetBytes,
    limit: Option<usize>,
    f: &SourceFile,
) -> Result<(SchemaRef, Vec<RecordBatch>), StageError> {
    check_dictionary_pages(&file).map_err(|e| not_readable(f, &e))?;
    let mut builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| not_readable(f, &e))?;
    let schema = builder.schema().clone();
    if let Some(limit) = limit {
        builder = builder.with_limit(limit);
    }
    let batches = builder
        .build()
        .map_err(|e| not_readable(f, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_readable(f, &e))?;
    Ok((schema, batches))
}

/// The `columns:` of the batch, in that order; an error names a column the file lacks.
fn keep_columns(
    batch: &RecordBatch,
    schema: &Schema,
    columns: &[String],
    f: &SourceFile,
) -> Result<RecordBatch, StageError> {
    let idx = columns
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| {
                StageError::failed(format!(
                    "{}: no column `{c}` (columns: {})",
                    f.shown,
                    field_names(schema)
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(batch.project(&idx)?)
}

fn field_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The labeler, with the dataset's own `ClassLabel` names when `labels:` is not given.
fn with_hub_names<'a>(labeler: &Labeler<'a>, schema: &Schema) -> Labeler<'a> {
    let map = match (&labeler.map, hub_label_names(schema, labeler.column)) {
        (None, Some(names)) => Some(LabelMap::new(&names)),
        (map, _) => map.clone(),
    };
    Labeler {
        map,
        column: labeler.column,
    }
}

/// The batch with its label column as `int64` ids, when there are labels and the column:
/// integers are checked against the labels, anything else is read as names.
fn label_ids(
    batch: &RecordBatch,
    labeler: &Labeler,
    f: &SourceFile,
) -> Result<RecordBatch, StageError> {
    let schema = batch.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut arrays = batch.columns().to_vec();
    if let (Some(map), Some(i)) = (&labeler.map, names.iter().position(|n| n == labeler.column)) {
        let col = &arrays[i];
        let ids = if col.data_type().is_integer() {
            checked_ids(col, map, f)?
        } else {
            named_ids(col, labeler, f)?
        };
        fields[i] = Field::new(labeler.column, DataType::Int64, false);
        arrays[i] = Arc::new(Int64Array::from(ids));
    }
    finish(fields, arrays, &names, labeler, f)
}

/// An integer label column as ids, each checked to be one of the labels'.
fn checked_ids(col: &ArrayRef, map: &LabelMap, f: &SourceFile) -> Result<Vec<i64>, StageError> {
    let ids = arrow::compute::cast(col, &DataType::Int64)?;
    ids.as_primitive::<Int64Type>()
        .iter()
        .enumerate()
        .map(
            |(row, v)| match v.filter(|&v| labels::int2str(map.names(), v).is_some()) {
                Some(v) => Ok(v),
                None => Err(StageError::failed(format!(
                    "{}: row {row}: label {} is not an id of the {} labels ({})",
                    f.shown,
                    v.map_or("null".into(), |v| v.to_string()),
                    map.names().len(),
                    map.listing()
                ))),
            },
        )
        .collect()
}

/// Any other label column as text, each value through the labeler.
fn named_ids(col: &ArrayRef, labeler: &Labeler, f: &SourceFile) -> Result<Vec<i64>, StageError> {
    let text = arrow::compute::cast(col, &DataType::Utf8)?;
    text.as_string::<i32>()
        .iter()
        .enumerate()
        .map(|(row, v)| labeler.id(v.unwrap_or(""), || format!("{}: row {row}", f.shown)))
        .collect()
}

/// A Hub dataset's `ClassLabel` names for `column`, from the `huggingface` schema metadata.
fn hub_label_names(schema: &Schema, column: &str) -> Option<Vec<String>> {
    let info: serde_json::Value =
        serde_json::from_str(schema.metadata().get("huggingface")?).ok()?;
    let feature = info.get("info")?.get("features")?.get(column)?;
    if feature.get("_type")?.as_str()? != "ClassLabel" {
        return None;
    }
    feature
        .get("names")?
        .as_array()?
        .iter()
        .map(|n| n.as_str().map(String::from))
        .collect()
}

/// A Parquet file held in memory, whose sequential reads fail at the end of the file instead of
/// returning 0 bytes. The parquet crate skips a page header's unknown Thrift fields with
/// `io::copy(reader.take(n))`, which stops silently at end of file, so a header declaring a list
/// of 2^31 byte strings ran 2^31 empty reads (fuzz/load_parquet: 2.7 KB, 78 s). A page header
/// never legitimately runs into the end of the file (the footer follows the pages), so an error
/// there only ever ends a corrupt read early.
#[derive(Clone)]
struct ParquetBytes(bytes::Bytes);

struct StrictEofReader(bytes::Bytes);

impl std::io::Read for StrictEofReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            ));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0.split_to(n));
        Ok(n)
    }
}

impl parquet::file::reader::Length for ParquetBytes {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

impl parquet::file::reader::ChunkReader for ParquetBytes {
    type T = StrictEofReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<StrictEofReader> {
        let rest = usize::try_from(start)
            .ok()
            .and_then(|start| self.0.get(start..))
            .ok_or_else(|| {
                parquet::errors::ParquetError::EOF(format!(
                    "offset {start} is past the end of the file ({} bytes)",
                    self.0.len()
                ))
            })?;
        Ok(StrictEofReader(self.0.slice_ref(rest)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        self.0.get_bytes(start, length)
    }
}

/// Refuses a dictionary page that claims more values than its bytes can hold. The parquet
/// crate allocates room for the claimed count before decoding (fuzz/load_parquet: a 961-byte
/// file claiming 10^9 values asked for 8.6 GB). Only the first page of each column chunk can be
/// a dictionary, so this reads one small page per column.
fn check_dictionary_pages(file: &ParquetBytes) -> Result<(), String> {
    use parquet::column::page::Page;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(file.clone()).map_err(|e| e.to_string())?;
    for g in 0..reader.metadata().num_row_groups() {
        let group = reader.get_row_group(g).map_err(|e| e.to_string())?;
        for c in 0..group.num_columns() {
            let mut pages = group.get_column_page_reader(c).map_err(|e| e.to_string())?;
            let first = pages.peek_next_page().map_err(|e| e.to_string())?;
            if !first.is_some_and(|m| m.is_dict) {
                continue;
            }
            if let Some(Page::DictionaryPage {
                buf, num_values, ..
            }) = pages.get_next_page().map_err(|e| e.to_string())?
            {
                // Even booleans take a bit per value.
                if num_values as u64 > 8 * buf.len() as u64 {
                    return Err(format!(
                        "row group {g}, column {c}: a dictionary page claims {num_values} values in {} bytes (corrupt)",
                        buf.len()
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;

    use super::super::testing::{file, load, params};
    use crate::columns::labels;

    /// A two-row Parquet file (`text`, integer `label`) with a Hub `ClassLabel` in its metadata.
    fn tiny_parquet(labels: [i64; 2]) -> Vec<u8> {
        let hub = r#"{"info": {"features": {"label": {"_type": "ClassLabel", "names": ["neg", "pos"]}}}}"#;
        let schema = Schema::new_with_metadata(
            vec![
                Field::new("text", DataType::Utf8, false),
                Field::new("label", DataType::Int64, false),
            ],
            [("huggingface".to_string(), hub.to_string())],
        );
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["so good", "so bad"])),
                Arc::new(Int64Array::from(labels.to_vec())),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        out
    }

    #[test]
    fn parquet_integer_labels_are_checked_and_hub_names_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = tiny_parquet([1, 0]);
        // The seed of fuzz/seeds/load_parquet (its first byte picks the params).
        if let Some(seed) = std::env::var_os("CAIRN_WRITE_PARQUET_SEED") {
            std::fs::write(seed, [&[1u8][..], &bytes].concat()).unwrap();
        }
        let p = params("{splits: {train: x.parquet}}");
        let b = load(&p, &file(dir.path(), "a.parquet", &bytes)).unwrap();
        assert_eq!(
            labels::label_names(&b.schema()).unwrap(),
            vec!["neg", "pos"]
        );
        let p = params("{labels: [neg, pos], splits: {train: x.parquet}}");
        let e = load(&p, &file(dir.path(), "b.parquet", &tiny_parquet([1, 2])))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("data/b.parquet: row 1: label 2 is not an id"),
            "{e}"
        );
        let e = load(
            &p,
            &file(dir.path(), "c.parquet", &bytes[..bytes.len() / 2]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("data/c.parquet: not a readable Parquet file"),
            "{e}"
        );
    }

    #[test]
    fn a_dictionary_page_claiming_more_values_than_its_bytes_is_refused_before_allocating() {
        // Found by fuzz/load_parquet: 961 bytes whose dictionary page claims ~10^9 values made
        // the parquet crate ask for 8.6 GB before reading any.
        let bytes = include_bytes!(
            "../../../../tests/fixtures/parquet/dictionary-claims-1e9-values.parquet"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = params("{splits: {train: x.parquet}}");
        let e = load(&p, &file(dir.path(), "bomb.parquet", bytes))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("data/bomb.parquet: not a readable Parquet file")
                && e.contains("dictionary page claims"),
            "{e}"
        );
    }

    #[test]
    fn a_page_header_that_runs_past_the_end_of_the_file_is_refused_not_skipped_forever() {
        // Found by fuzz/load_parquet: 2.7 KB whose page header declares a list of ~2^31 byte
        // strings; skipping them read an empty file tail once per element (78 s).
        let bytes =
            include_bytes!("../../../../tests/fixtures/parquet/page-header-skips-past-eof.parquet");
        let dir = tempfile::tempdir().unwrap();
        let p = params("{splits: {train: x.parquet}}");
        let e = load(&p, &file(dir.path(), "bomb.parquet", bytes))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("data/bomb.parquet: not a readable Parquet file"),
            "{e}"
        );
    }

    #[test]
    fn parquet_with_a_corrupt_delta_encoded_page_is_an_error_naming_the_file() {
        // Found by fuzz/load_parquet: an overlong varint in a DELTA_BINARY_PACKED page panicked
        // inside the parquet crate (`Num of bytes exceed MAX_VLQ_BYTE_LEN`).
        use parquet::basic::Encoding;
        use parquet::file::properties::WriterProperties;
        let ids: Vec<i64> = (0..64).map(|i| i * 7 % 5).collect();
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(ids))],
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_encoding(Encoding::DELTA_BINARY_PACKED)
            .build();
        let mut good = Vec::new();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut good, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = params("{splits: {train: x.parquet}}");
        assert_eq!(
            load(&p, &file(dir.path(), "ok.parquet", &good))
                .unwrap()
                .num_rows(),
            64
        );
        // Overwrite each stretch of the file with 0xff bytes (overlong varints): every result
        // is a table or an error, and some hit the decoder's assertion.
        let mut reader_failed = 0;
        for at in 4..good.len() - 8 {
            let mut bad = good.clone();
            let end = (at + 11).min(good.len() - 8);
            bad[at..end].fill(0xff);
            if let Err(e) = load(&p, &file(dir.path(), "bad.parquet", &bad)) {
                let e = e.to_string();
                assert!(
                    e.starts_with("data/bad.parquet: not a readable Parquet file"),
                    "{e}"
                );
                reader_failed += e.contains("the Parquet reader failed") as usize;
            }
        }
        assert!(reader_failed > 0);
    }
}
