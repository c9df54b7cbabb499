//! `load`: reads a dataset into named splits, with label names kept as schema metadata.
//!
//! Sources:
//! - files, one per split (`splits: {train: data/emotion/train.txt, ...}`, relative to the
//!   pipeline root), in one of the [`Format`]s: delimited text, CSV, JSON Lines, Parquet or
//!   token-per-line CoNLL (WikiANN);
//! - a Hub dataset, `source: hf://owner/dataset[@revision]`: its Parquet files, downloaded
//!   through the Hugging Face cache (never with `--offline`).
//!
//! Labels: `labels: [sadness, joy, ...]` maps the label column's names to ids (`int64`, in list
//! order); integer labels are checked against it and the names recorded. The names go into the
//! schema metadata (see [`crate::columns::labels`]). A Hub dataset's own `ClassLabel` names are used
//! when `labels:` is not given.
//!
//! Every problem in a file is an error naming `file:line` and what was found there.
//!
//! This module holds the params, the stage and what every format shares (the labeler, line
//! splitting, building the batch); [`sources`] decides which files a split means, and one module
//! per [`Format`] reads them.

mod conll;
mod csv;
mod delimited;
mod jsonl;
mod parquet;
mod sources;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use self::sources::{SourceFile, sources};
use crate::api::{Arity, Context, External, Output, PrepareEnv, Stage, StageError};
use crate::columns::labels::{self, LabelMap};

/// How the split files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// One example per line, fields separated by `delimiter`, split on the LAST delimiters (so
    /// the first column may contain the delimiter), no quoting: the emotion corpus' `text;label`.
    Delimited,
    /// RFC 4180 CSV (quotes allowed).
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
    /// One token per line, `token<delimiter>tag`; a blank line ends a sentence (WikiANN/PAN-X).
    /// Produces `tokens: list<utf8>` and `ner_tags: list<int32>`.
    Conll,
}

/// Params of `load`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LoadParams {
    /// `hf://owner/dataset` (optionally `@revision`) to load a Hub dataset's Parquet files.
    /// Default: none; the data comes from the files named in `splits`.
    #[serde(default)]
    pub source: Option<String>,
    /// Split name to file, relative to the pipeline root, e.g.
    /// `{train: data/emotion/train.txt, validation: data/emotion/validation.txt}`. With `source`,
    /// paths inside the Hub repository (`*` matches any characters); default there: every
    /// `<split>-*.parquet` / `<split>.parquet` file, grouped by split.
    #[serde(default)]
    pub splits: BTreeMap<String, String>,
    /// Hub datasets: the folder of the repository to read (a dataset with several layouts,
    /// e.g. `split` for `dair-ai/emotion`). Default: the only folder holding Parquet files.
    #[serde(default)]
    pub config: Option<String>,
    /// File format. Default: from the first file's extension (`.csv`, `.jsonl`/`.json`,
    /// `.parquet`, `.txt`/`.tsv` = delimited); `parquet` for Hub datasets.
    #[serde(default)]
    pub format: Option<Format>,
    /// Field separator for `delimited` and `conll` (default `\t`) and `csv` (default `,`).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Column names for `delimited` and `csv` files without a header row (e.g. `[text, label]`).
    /// Default: none, the first line is the header. For `jsonl`/`parquet`: keep only these columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// The column holding the labels. Default `label` (`ner_tags` for `conll`).
    #[serde(default)]
    pub label_column: Option<String>,
    /// Label names in id order, e.g. `[sadness, joy, love, anger, fear, surprise]`. Text labels
    /// are mapped to their index; integer labels must be in range. Required for `conll` (the
    /// tags, e.g. `[O, B-PER, I-PER, ...]`). Default: none (labels kept as found).
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// `conll`: strip everything up to and including the first `:` of each token (WikiANN's
    /// `en:`). Default false.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Keep only the first N examples (sentences for `conll`): one number for every split, or
    /// per split (`{train: 5000, validation: 2000}`; splits not named are kept whole).
    /// Default: all.
    #[serde(default)]
    pub limit: Option<Limit>,
}

/// `limit:` as one number or per split.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Limit {
    All(usize),
    PerSplit(BTreeMap<String, usize>),
}

impl Limit {
    /// The row cap for `split`, if any.
    pub fn of(&self, split: &str) -> Option<usize> {
        match self {
            Limit::All(n) => Some(*n),
            Limit::PerSplit(m) => m.get(split).copied(),
        }
    }
}

/// `load`: reads a dataset into named splits.
pub struct Load;

impl Stage for Load {
    type Params = LoadParams;
    const KIND: &'static str = "load";
    /// Bump when what a load produces from the same files changes.
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::None;
    const SUMMARY: &'static str =
        "reads a dataset (delimited/CSV/JSONL/Parquet/CoNLL files or hf://) into splits";

    fn externals(p: &LoadParams, env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        Ok(sources(p, env.root, env.offline)?
            .into_iter()
            .map(|s| External {
                field: s.field,
                shown: s.shown,
                path: s.path,
                content_only: false,
                files: None,
            })
            .collect())
    }

    fn run(p: &LoadParams, ctx: &Context) -> Result<Output, StageError> {
        let format = p.resolved_format()?;
        let files = sources(p, ctx.root, ctx.offline)?;
        let mut by_split: BTreeMap<&str, Vec<&SourceFile>> = BTreeMap::new();
        for f in &files {
            by_split.entry(f.split.as_str()).or_default().push(f);
        }
        p.check_limit_splits(&by_split.keys().copied().collect::<Vec<_>>())?;
        ctx.progress.set_total(files.len() as u64, "files");
        let mut output = Output::default();
        for (split, files) in by_split {
            let mut batches = Vec::new();
            for f in files {
                ctx.check_cancelled()?;
                batches.push(read_file(p, format, f)?);
                ctx.progress.advance(1);
            }
            let batch = concat(batches, p.limit_of(split))?;
            output
                .metrics
                .insert(format!("rows.{split}"), batch.num_rows().into());
            output.tables.insert(split.to_string(), batch);
        }
        Ok(output)
    }
}

impl LoadParams {
    fn resolved_format(&self) -> Result<Format, StageError> {
        if let Some(f) = self.format {
            return Ok(f);
        }
        if self.source.is_some() {
            return Ok(Format::Parquet);
        }
        let Some(first) = self.splits.values().next() else {
            return Err(StageError::param(
                "splits",
                "no splits given",
                Some("e.g. `splits: {train: data/train.csv}`".into()),
            ));
        };
        let ext = Path::new(first)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "json" | "ndjson" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            "txt" | "tsv" => Ok(Format::Delimited),
            _ => Err(StageError::param(
                "format",
                format!("cannot tell the format of `{first}` from its extension"),
                Some("set `format:` to delimited, csv, jsonl, parquet or conll".into()),
            )),
        }
    }

    fn label_column(&self, format: Format) -> &str {
        match (&self.label_column, format) {
            (Some(c), _) => c,
            (None, Format::Conll) => "ner_tags",
            (None, _) => "label",
        }
    }

    /// The row cap `limit` sets for `split`, if any.
    fn limit_of(&self, split: &str) -> Option<usize> {
        self.limit.as_ref().and_then(|l| l.of(split))
    }

    /// Refuses params that cannot work, before any file is read (from `externals`, at resolve
    /// time).
    fn check(&self, format: Format) -> Result<(), StageError> {
        if format == Format::Conll && self.labels.is_none() {
            return Err(StageError::param(
                "labels",
                "a `conll` load needs `labels:` (the tags in id order)",
                Some("e.g. `labels: [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC]`".into()),
            ));
        }
        self.check_limit()
    }

    /// Refuses a per-split `limit` naming a split that is not loaded (a Hub dataset's splits are
    /// only known once its files are listed).
    fn check_limit_splits(&self, loaded: &[&str]) -> Result<(), StageError> {
        let Some(Limit::PerSplit(m)) = &self.limit else {
            return Ok(());
        };
        match m.keys().find(|k| !loaded.contains(&k.as_str())) {
            Some(bad) => Err(StageError::param(
                "limit",
                format!(
                    "`limit` names split `{bad}`, which is not loaded (splits: {})",
                    loaded.join(", ")
                ),
                None,
            )),
            None => Ok(()),
        }
    }

    /// Refuses `limit: 0` (at resolve time, from `externals`): it would keep no rows, and the
    /// split would later fail as if its file were empty.
    fn check_limit(&self) -> Result<(), StageError> {
        let hint = Some("remove `limit:` to keep every row, or give a positive number".into());
        match &self.limit {
            Some(Limit::All(0)) => {
                let splits: Vec<&str> = self.splits.keys().map(String::as_str).collect();
                let which = match splits.as_slice() {
                    [] => "any split".to_string(),
                    [one] => format!("split `{one}`"),
                    many => format!("splits {}", many.join(", ")),
                };
                Err(StageError::param(
                    "limit",
                    format!("`limit: 0` keeps no rows of {which}"),
                    hint,
                ))
            }
            Some(Limit::PerSplit(m)) => match m.iter().find(|&(_, &n)| n == 0) {
                Some((split, _)) => Err(StageError::param(
                    &format!("limit.{split}"),
                    format!("`limit: {{{split}: 0}}` keeps no rows of split `{split}`"),
                    hint,
                )),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn delimiter(&self, format: Format) -> Result<String, StageError> {
        let d = match (&self.delimiter, format) {
            (Some(d), _) => d.clone(),
            (None, Format::Csv) => ",".into(),
            (None, _) => "\t".into(),
        };
        if d.is_empty() || (format == Format::Csv && d.len() != 1) {
            return Err(StageError::param(
                "delimiter",
                format!("invalid delimiter {d:?}"),
                Some("csv takes one ASCII character".into()),
            ));
        }
        Ok(d)
    }
}

/// The file's bytes; an error when it holds nothing but whitespace.
fn read_bytes(f: &SourceFile) -> Result<Vec<u8>, StageError> {
    let bytes = std::fs::read(&f.path)
        .map_err(|e| StageError::failed(format!("{}: cannot read: {e}", f.shown)))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(empty_file(f));
    }
    Ok(bytes)
}

/// The error for a file without data.
fn empty_file(f: &SourceFile) -> StageError {
    StageError::failed(format!(
        "{}: the file is empty (split `{}`)",
        f.shown, f.split
    ))
}

/// The file's lines as `(line number, text)`, checked for UTF-8; a trailing `\r` is dropped.
fn lines<'a>(f: &SourceFile, bytes: &'a [u8]) -> Result<Vec<(usize, &'a str)>, StageError> {
    let mut out = Vec::new();
    let mut it = bytes.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((i, raw)) = it.next() {
        if raw.is_empty() && it.peek().is_none() {
            break; // after the final newline
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw).map_err(|e| {
            let at = e.valid_up_to();
            StageError::failed(format!(
                "{}:{}: invalid UTF-8 (byte 0x{:02x} at byte {} of the line, after `{}`)",
                f.shown,
                i + 1,
                raw[at],
                at + 1,
                excerpt(&String::from_utf8_lossy(&raw[..at]))
            ))
        })?;
        out.push((i + 1, text));
    }
    Ok(out)
}

/// A line shortened for messages.
fn excerpt(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Maps the label column's text to ids, with `file:line` in errors.
struct Labeler<'a> {
    map: Option<LabelMap>,
    column: &'a str,
}

impl Labeler<'_> {
    fn id(&self, text: &str, at: impl FnOnce() -> String) -> Result<i64, StageError> {
        let map = self.map.as_ref().expect("labels given");
        map.parse(text).ok_or_else(|| {
            StageError::failed(format!(
                "{}: unknown label `{}` (labels: {})",
                at(),
                excerpt(text),
                map.listing()
            ))
        })
    }
}

/// One file as a batch, by the reader of its format; an error when it holds no example.
fn read_file(p: &LoadParams, format: Format, f: &SourceFile) -> Result<RecordBatch, StageError> {
    let labeler = Labeler {
        map: p.labels.as_deref().map(LabelMap::new),
        column: p.label_column(format),
    };
    let batch = match format {
        Format::Delimited => delimited::read(p, f, &labeler)?,
        Format::Csv => csv::read(p, f, &labeler)?,
        Format::Jsonl => jsonl::read(p, f, &labeler)?,
        Format::Parquet => parquet::read(p, f, &labeler)?,
        Format::Conll => conll::read(p, f, &labeler)?,
    };
    if batch.num_rows() == 0 {
        return Err(StageError::failed(format!(
            "{}: no examples in the file (split `{}`)",
            f.shown, f.split
        )));
    }
    Ok(batch)
}

/// Text columns (with the line of each row) to a batch; the label column becomes `int64` ids.
fn text_batch(
    names: &[String],
    columns: Vec<Vec<String>>,
    line_of: &[usize],
    f: &SourceFile,
    labeler: &Labeler,
) -> Result<RecordBatch, StageError> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (name, values) in names.iter().zip(columns) {
        if name == labeler.column && labeler.map.is_some() {
            let ids = values
                .iter()
                .zip(line_of)
                .map(|(v, &line)| labeler.id(v, || format!("{}:{line}", f.shown)))
                .collect::<Result<Vec<i64>, _>>()?;
            fields.push(Field::new(name, DataType::Int64, false));
            arrays.push(Arc::new(Int64Array::from(ids)));
        } else {
            fields.push(Field::new(name, DataType::Utf8, false));
            arrays.push(Arc::new(StringArray::from(values)));
        }
    }
    finish(fields, arrays, names, labeler, f)
}

/// Builds the batch, recording the label names; complains when `labels:` names no column.
fn finish(
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
    names: &[String],
    labeler: &Labeler,
    f: &SourceFile,
) -> Result<RecordBatch, StageError> {
    let mut meta = std::collections::HashMap::new();
    if let Some(map) = &labeler.map {
        if !names.iter().any(|n| n == labeler.column) {
            return Err(StageError::failed(format!(
                "{}: `labels:` is given but there is no column `{}` (columns: {}); set `label-column:`",
                f.shown,
                labeler.column,
                names.join(", ")
            )));
        }
        meta.extend(labels::metadata(labeler.column, map.names()));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, meta)),
        arrays,
    )?)
}

/// One split's files as one table (the first file's schema metadata kept), cut to `limit`.
fn concat(batches: Vec<RecordBatch>, limit: Option<usize>) -> Result<RecordBatch, StageError> {
    let schema = batches[0].schema();
    for b in &batches[1..] {
        if b.schema().fields() != schema.fields() {
            return Err(StageError::failed(
                "the files of one split have different columns".to_string(),
            ));
        }
    }
    let all = arrow::compute::concat_batches(&schema, &batches)?;
    Ok(match limit {
        Some(l) if l < all.num_rows() => all.slice(0, l),
        _ => all,
    })
}

#[cfg(test)]
mod testing {
    //! What the format modules' tests share: params from YAML and a split file on disk.

    use super::*;

    pub(super) fn params(yaml: &str) -> LoadParams {
        crate::params_from_yaml(yaml)
    }

    pub(super) fn file(dir: &Path, name: &str, bytes: &[u8]) -> SourceFile {
        std::fs::write(dir.join(name), bytes).unwrap();
        SourceFile {
            split: "train".into(),
            field: "splits.train".into(),
            shown: format!("data/{name}"),
            path: dir.join(name),
        }
    }

    pub(super) fn load(p: &LoadParams, f: &SourceFile) -> Result<RecordBatch, StageError> {
        read_file(p, p.resolved_format().unwrap(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{file, load, params};
    use super::*;
    use crate::columns::table;
    use arrow::array::AsArray;

    #[test]
    fn csv_and_jsonl_with_integer_labels_as_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = params("{labels: [neg, pos], splits: {train: x.csv}}");
        let b = load(
            &p,
            &file(dir.path(), "a.csv", b"text,label\n\"a, quoted\",1\nb,neg\n"),
        )
        .unwrap();
        assert_eq!(
            table::strings(&b, "text", "t").unwrap(),
            vec!["a, quoted", "b"]
        );
        let e = load(&p, &file(dir.path(), "b.csv", b"text,label\nx,2\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("data/b.csv:2: unknown label `2`"), "{e}");
        let p = params("{labels: [neg, pos], splits: {train: x.jsonl}, limit: 2}");
        let b = load(&p, &file(dir.path(), "a.jsonl", b"{\"text\": \"x\", \"label\": 1, \"n\": 2.5}\n{\"text\": \"y\", \"label\": \"neg\"}\n{\"text\": \"z\", \"label\": 0}\n")).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(
            b.schema().field_with_name("n").unwrap().data_type(),
            &DataType::Float64
        );
        let ids: Vec<i64> = b
            .column_by_name("label")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec();
        assert_eq!(ids, vec![1, 0]);
    }
}
