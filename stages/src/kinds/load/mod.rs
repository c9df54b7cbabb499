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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::api::{Arity, Context, External, Output, PrepareEnv, Stage, StageError};
use crate::columns::labels::{self, LabelMap};
use crate::columns::table;
use crate::hub::model::{HubRepo, RepoKind};

/// How the split files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
        if let Some(Limit::PerSplit(m)) = &p.limit
            && let Some(bad) = m.keys().find(|k| !by_split.contains_key(k.as_str()))
        {
            let have: Vec<&str> = by_split.keys().copied().collect();
            return Err(StageError::param(
                "limit",
                format!(
                    "`limit` names split `{bad}`, which is not loaded (splits: {})",
                    have.join(", ")
                ),
                None,
            ));
        }
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

/// One file to read, for one split.
struct SourceFile {
    split: String,
    field: String,
    shown: String,
    path: PathBuf,
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

/// The files to read: the `splits` map, or the Hub dataset's Parquet files (downloaded now,
/// when allowed).
fn sources(p: &LoadParams, root: &Path, offline: bool) -> Result<Vec<SourceFile>, StageError> {
    let format = p.resolved_format()?;
    if format == Format::Conll && p.labels.is_none() {
        return Err(StageError::param(
            "labels",
            "a `conll` load needs `labels:` (the tags in id order)",
            Some("e.g. `labels: [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC]`".into()),
        ));
    }
    p.check_limit()?;
    let Some(source) = &p.source else {
        if p.splits.is_empty() {
            return Err(StageError::param(
                "splits",
                "no splits given",
                Some("e.g. `splits: {train: data/train.csv}`".into()),
            ));
        }
        return Ok(p
            .splits
            .iter()
            .map(|(split, file)| SourceFile {
                split: split.clone(),
                field: format!("splits.{split}"),
                shown: file.clone(),
                path: root.join(file),
            })
            .collect());
    };
    let Some(repo) = source
        .strip_prefix("hf://")
        .and_then(|id| HubRepo::parse(RepoKind::Dataset, id))
    else {
        return Err(StageError::param(
            "source",
            format!("`{source}` is not a Hub dataset reference"),
            Some("write `hf://owner/dataset`, e.g. `hf://dair-ai/emotion`".into()),
        ));
    };
    if format != Format::Parquet {
        return Err(StageError::param(
            "format",
            "Hub datasets are read as parquet",
            None,
        ));
    }
    let listing = repo.list_files(offline, "source")?;
    let chosen = select_hub_files(&listing, &p.splits, p.config.as_deref())
        .map_err(|m| StageError::param("source", m, None))?;
    let mut out = Vec::new();
    for (split, files) in chosen {
        let names: Vec<&str> = files.iter().map(String::as_str).collect();
        let snapshot = repo.fetch(&names, &[], offline, "source")?;
        let many = files.len() > 1;
        for (i, f) in files.iter().enumerate() {
            out.push(SourceFile {
                split: split.clone(),
                field: if many {
                    format!("splits.{split}.{i}")
                } else {
                    format!("splits.{split}")
                },
                shown: format!("{source}/{f}"),
                path: snapshot.join(f),
            });
        }
    }
    Ok(out)
}

/// `*` matches any run of characters (including `/`).
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Chooses a Hub dataset's Parquet files per split: by the `splits` patterns, or by the usual
/// `<folder>/<split>-NNNNN-of-NNNNN.parquet` naming.
fn select_hub_files(
    listing: &[String],
    patterns: &BTreeMap<String, String>,
    config: Option<&str>,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !patterns.is_empty() {
        for (split, pattern) in patterns {
            let files: Vec<String> = listing
                .iter()
                .filter(|f| glob_match(pattern, f))
                .cloned()
                .collect();
            if files.is_empty() {
                return Err(format!(
                    "no file of the repository matches `{pattern}` (split `{split}`)"
                ));
            }
            out.insert(split.clone(), files);
        }
        return Ok(out);
    }
    let parquet: Vec<&String> = listing.iter().filter(|f| f.ends_with(".parquet")).collect();
    let folder = |f: &str| {
        f.rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default()
    };
    let mut folders: Vec<String> = parquet.iter().map(|f| folder(f)).collect();
    folders.sort();
    folders.dedup();
    let chosen = match config {
        Some(c) => c.trim_end_matches('/').to_string(),
        None if folders.len() == 1 => folders[0].clone(),
        None if folders.is_empty() => return Err("the repository has no Parquet files".into()),
        None => {
            return Err(format!(
                "the repository has Parquet files in several folders ({}): choose one with `config:`",
                folders.join(", ")
            ));
        }
    };
    for f in parquet.into_iter().filter(|f| folder(f) == chosen) {
        let base = f.rsplit('/').next().unwrap_or(f);
        let split = base.split(['-', '.']).next().unwrap_or(base);
        out.entry(split.to_string()).or_default().push(f.clone());
    }
    if out.is_empty() {
        return Err(format!(
            "no Parquet files in folder `{chosen}` (folders: {})",
            folders.join(", ")
        ));
    }
    for files in out.values_mut() {
        files.sort();
    }
    Ok(out)
}

fn read_bytes(f: &SourceFile) -> Result<Vec<u8>, StageError> {
    let bytes = std::fs::read(&f.path)
        .map_err(|e| StageError::failed(format!("{}: cannot read: {e}", f.shown)))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(empty_file(f));
    }
    Ok(bytes)
}

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

fn read_file(p: &LoadParams, format: Format, f: &SourceFile) -> Result<RecordBatch, StageError> {
    let labeler = Labeler {
        map: p.labels.as_deref().map(LabelMap::new),
        column: p.label_column(format),
    };
    let batch = match format {
        Format::Delimited => read_delimited(p, f, &labeler)?,
        Format::Csv => read_csv(p, f, &labeler)?,
        Format::Jsonl => read_jsonl(p, f, &labeler)?,
        Format::Parquet => read_parquet(p, f, &labeler)?,
        Format::Conll => read_conll(p, f, &labeler)?,
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

fn read_delimited(
    p: &LoadParams,
    f: &SourceFile,
    labeler: &Labeler,
) -> Result<RecordBatch, StageError> {
    let delim = p.delimiter(Format::Delimited)?;
    let bytes = read_bytes(f)?;
    let all = lines(f, &bytes)?;
    let mut rows = all.into_iter().filter(|(_, l)| !l.trim().is_empty());
    let names: Vec<String> = match &p.columns {
        Some(c) => c.clone(),
        None => {
            // `read_bytes` saw a non-ASCII-whitespace byte, but `trim` also drops Unicode
            // whitespace (`\u{b}`, `\u{a0}`, `\u{3000}`...): the file may still have no line.
            let Some((_, header)) = rows.next() else {
                return Err(empty_file(f));
            };
            header
                .split(delim.as_str())
                .map(|s| s.trim().to_string())
                .collect()
        }
    };
    let n = names.len();
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut line_of = Vec::new();
    for (line, text) in rows {
        if p.limit_of(&f.split).is_some_and(|l| line_of.len() >= l) {
            break;
        }
        // Split on the LAST n-1 delimiters: only the first column may contain the delimiter.
        let mut fields: Vec<&str> = text.rsplitn(n, delim.as_str()).collect();
        if fields.len() != n {
            return Err(StageError::failed(format!(
                "{}:{line}: expected {n} fields ({}) separated by {:?}, found {}: `{}`",
                f.shown,
                names.join(&delim),
                delim,
                fields.len(),
                excerpt(text)
            )));
        }
        fields.reverse();
        for (col, v) in columns.iter_mut().zip(fields) {
            col.push(v.to_string());
        }
        line_of.push(line);
    }
    text_batch(&names, columns, &line_of, f, labeler)
}

fn read_csv(p: &LoadParams, f: &SourceFile, labeler: &Labeler) -> Result<RecordBatch, StageError> {
    let delim = p.delimiter(Format::Csv)?;
    let bytes = read_bytes(f)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delim.as_bytes()[0])
        .has_headers(p.columns.is_none())
        .flexible(true)
        .from_reader(bytes.as_slice());
    let utf8 = |rec: &csv::ByteRecord, line: usize| -> Result<Vec<String>, StageError> {
        rec.iter()
            .map(|field| {
                std::str::from_utf8(field).map(str::to_string).map_err(|e| {
                    StageError::failed(format!(
                        "{}:{line}: invalid UTF-8 (byte 0x{:02x} in field `{}`)",
                        f.shown,
                        field[e.valid_up_to()],
                        excerpt(&String::from_utf8_lossy(field))
                    ))
                })
            })
            .collect()
    };
    let csv_err = |e: csv::Error| {
        let line = e
            .position()
            .map(|p| LineCounter::new(&bytes).line_at(p.byte()).to_string())
            .unwrap_or_else(|| "?".into());
        StageError::failed(format!("{}:{line}: {e}", f.shown))
    };
    let mut counter = LineCounter::new(&bytes);
    let names = match &p.columns {
        Some(c) => c.clone(),
        None => {
            let header = reader.byte_headers().map_err(csv_err)?.clone();
            utf8(&header, 1)?
                .into_iter()
                .map(|s| s.trim().to_string())
                .collect()
        }
    };
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    let mut line_of = Vec::new();
    let mut rec = csv::ByteRecord::new();
    while reader.read_byte_record(&mut rec).map_err(csv_err)? {
        if p.limit_of(&f.split).is_some_and(|l| line_of.len() >= l) {
            break;
        }
        let line = rec.position().map_or(0, |p| counter.line_at(p.byte()));
        if rec.len() == 1 && rec[0].is_empty() {
            continue;
        }
        let fields = utf8(&rec, line)?;
        if fields.len() != names.len() {
            return Err(StageError::failed(format!(
                "{}:{line}: expected {} fields ({}), found {}",
                f.shown,
                names.len(),
                names.join(&delim),
                fields.len()
            )));
        }
        for (col, v) in columns.iter_mut().zip(fields) {
            col.push(v);
        }
        line_of.push(line);
    }
    text_batch(&names, columns, &line_of, f, labeler)
}

/// The line of a CSV record from its byte offset. The `csv` crate's own line numbers are one
/// too low after `\r\n` (it ends a record at the `\r`) and after blank lines (the record's
/// position is where the skipped terminators begin), so count the `\n`s ourselves.
struct LineCounter<'a> {
    bytes: &'a [u8],
    /// Bytes before `at` hold `line - 1` newlines.
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            at: 0,
            line: 1,
        }
    }

    /// The 1-based line of the first byte at or after `offset` that is not a line terminator.
    /// Offsets must not decrease between calls (each record is counted once).
    fn line_at(&mut self, offset: u64) -> usize {
        let mut start =
            usize::try_from(offset).map_or(self.bytes.len(), |o| o.min(self.bytes.len()));
        while self
            .bytes
            .get(start)
            .is_some_and(|b| matches!(b, b'\r' | b'\n'))
        {
            start += 1;
        }
        if start > self.at {
            self.line += self.bytes[self.at..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.at = start;
        }
        self.line
    }
}

fn read_jsonl(
    p: &LoadParams,
    f: &SourceFile,
    labeler: &Labeler,
) -> Result<RecordBatch, StageError> {
    use serde_json::Value;
    let bytes = read_bytes(f)?;
    let mut names: Vec<String> = p.columns.clone().unwrap_or_default();
    let mut known: std::collections::HashSet<String> = names.iter().cloned().collect();
    // Sparse (row, value) per column until every row is read: rows that each bring new fields
    // would otherwise pad every column to every row as they go.
    let mut values: BTreeMap<String, Vec<(usize, Value)>> = BTreeMap::new();
    let mut present = 0usize;
    let mut line_of = Vec::new();
    for (line, text) in lines(f, &bytes)? {
        if text.trim().is_empty() {
            continue;
        }
        if p.limit_of(&f.split).is_some_and(|l| line_of.len() >= l) {
            break;
        }
        let obj: serde_json::Map<String, Value> = serde_json::from_str(text).map_err(|e| {
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
        })?;
        if p.columns.is_none() {
            for k in obj.keys() {
                if known.insert(k.clone()) {
                    names.push(k.clone());
                }
            }
        }
        for (field, want) in [(TEXT_FIELD, Want::Text), (labeler.column, Want::Label)] {
            if let Some(v) = obj.get(field)
                && known.contains(field)
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
        let row = line_of.len();
        for (k, v) in obj {
            if known.contains(&k) {
                values.entry(k).or_default().push((row, v));
                present += 1;
            }
        }
        line_of.push(line);
    }
    let rows = line_of.len();
    // The table is rows × fields; refuse one that is mostly holes (every row with fields of its
    // own), which would take memory out of all proportion to the file.
    if rows.saturating_mul(names.len()) > (1 << 22).max(present.saturating_mul(16)) {
        return Err(StageError::param(
            "columns",
            format!(
                "{}: {} different fields over {rows} rows, most of them missing from most rows",
                f.shown,
                names.len()
            ),
            Some("list the fields to keep with `columns:`".into()),
        ));
    }
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for name in &names {
        let mut col = vec![Value::Null; rows];
        for (row, v) in values.remove(name).unwrap_or_default() {
            col[row] = v;
        }
        // Explicit nulls were refused above: a null here is a row without the field.
        if (name == TEXT_FIELD || name == labeler.column)
            && let Some(row) = col.iter().position(Value::is_null)
        {
            return Err(StageError::failed(format!(
                "{}:{}: no field `{name}` (the {} column)",
                f.shown,
                line_of[row],
                if name == TEXT_FIELD { "text" } else { "label" }
            )));
        }
        let (field, array) = if name == labeler.column && labeler.map.is_some() {
            let ids = col
                .iter()
                .zip(&line_of)
                .map(|(v, &line)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    labeler.id(&text, || format!("{}:{line}", f.shown))
                })
                .collect::<Result<Vec<i64>, _>>()?;
            (
                Field::new(name, DataType::Int64, false),
                Arc::new(Int64Array::from(ids)) as ArrayRef,
            )
        } else {
            json_column(name, &col)
        };
        fields.push(field);
        arrays.push(array);
    }
    finish(fields, arrays, &names, labeler, f)
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
    use serde_json::Value;
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
    use serde_json::Value;
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

fn read_parquet(
    p: &LoadParams,
    f: &SourceFile,
    labeler: &Labeler,
) -> Result<RecordBatch, StageError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = ParquetBytes(read_bytes(f)?.into());
    let bad = |e: &dyn std::fmt::Display| {
        StageError::failed(format!("{}: not a readable Parquet file: {e}", f.shown))
    };
    let decode = || -> Result<_, StageError> {
        check_dictionary_pages(&file).map_err(|e| bad(&e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(&e))?;
        let schema = builder.schema().clone();
        let mut builder = builder;
        if let Some(limit) = p.limit_of(&f.split) {
            builder = builder.with_limit(limit);
        }
        let batches = builder
            .build()
            .map_err(|e| bad(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        Ok((schema, batches))
    };
    // The parquet crate still asserts on some corrupt encodings (fuzz/load_parquet: a
    // DELTA_BINARY_PACKED varint longer than 10 bytes panics in `get_vlq_int`). A corrupt file
    // is the user's to fix: name it, rather than fail as "the stage panicked".
    let (schema, batches) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .map_err(|panic| {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("corrupt data");
            bad(&format!("the Parquet reader failed: {msg}"))
        })??;
    let batch = arrow::compute::concat_batches(&schema, &batches)?;
    let batch = match &p.columns {
        Some(cols) => {
            let idx = cols
                .iter()
                .map(|c| {
                    schema.index_of(c).map_err(|_| {
                        StageError::failed(format!(
                            "{}: no column `{c}` (columns: {})",
                            f.shown,
                            field_names(&schema)
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            batch.project(&idx)?
        }
        None => batch,
    };
    // Map or check the labels; otherwise use the dataset's own ClassLabel names.
    let hub_names = hub_label_names(&schema, labeler.column);
    let labeler = match (&labeler.map, hub_names) {
        (None, Some(names)) => Labeler {
            map: Some(LabelMap::new(&names)),
            column: labeler.column,
        },
        _ => Labeler {
            map: labeler.map.clone(),
            column: labeler.column,
        },
    };
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut arrays = batch.columns().to_vec();
    if let (Some(_), Some(i)) = (&labeler.map, names.iter().position(|n| n == labeler.column)) {
        let col = &arrays[i];
        let ids: Vec<i64> = if col.data_type().is_integer() {
            let ids = arrow::compute::cast(col, &DataType::Int64)?;
            let map = labeler.map.as_ref().expect("labels");
            ids.as_primitive::<arrow::datatypes::Int64Type>()
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
                .collect::<Result<_, _>>()?
        } else {
            let text = arrow::compute::cast(col, &DataType::Utf8)?;
            text.as_string::<i32>()
                .iter()
                .enumerate()
                .map(|(row, v)| labeler.id(v.unwrap_or(""), || format!("{}: row {row}", f.shown)))
                .collect::<Result<_, _>>()?
        };
        fields[i] = Field::new(labeler.column, DataType::Int64, false);
        arrays[i] = Arc::new(Int64Array::from(ids));
    }
    finish(fields, arrays, &names, &labeler, f)
}

fn field_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_conll(
    p: &LoadParams,
    f: &SourceFile,
    labeler: &Labeler,
) -> Result<RecordBatch, StageError> {
    let delim = p.delimiter(Format::Conll)?;
    let bytes = read_bytes(f)?;
    let mut tokens: Vec<Vec<String>> = Vec::new();
    let mut tags: Vec<Vec<i32>> = Vec::new();
    let (mut words, mut ids) = (Vec::new(), Vec::new());
    let full = |n: usize| p.limit_of(&f.split).is_some_and(|l| n >= l);
    for (line, text) in lines(f, &bytes)? {
        if text.trim().is_empty() {
            if !words.is_empty() {
                tokens.push(std::mem::take(&mut words));
                tags.push(std::mem::take(&mut ids));
                if full(tokens.len()) {
                    break;
                }
            }
            continue;
        }
        let Some((token, tag)) = text.rsplit_once(delim.as_str()) else {
            return Err(StageError::failed(format!(
                "{}:{line}: expected `token{}tag`, found no {:?}: `{}`",
                f.shown,
                delim.escape_default(),
                delim,
                excerpt(text)
            )));
        };
        let token = if p.strip_prefix {
            token.split_once(':').map_or(token, |(_, w)| w)
        } else {
            token
        };
        let id = labeler.id(tag.trim(), || format!("{}:{line}", f.shown))?;
        words.push(token.to_string());
        ids.push(id as i32);
    }
    if !words.is_empty() && !full(tokens.len()) {
        tokens.push(words);
        tags.push(ids);
    }
    let names = vec!["tokens".to_string(), labeler.column.to_string()];
    let a = table::list_utf8(&tokens);
    let b = table::list_i32(&tags);
    let fields = vec![
        Field::new("tokens", a.data_type().clone(), false),
        Field::new(labeler.column, b.data_type().clone(), false),
    ];
    finish(fields, vec![a, b], &names, labeler, f)
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
mod tests {
    use super::*;

    fn params(yaml: &str) -> LoadParams {
        crate::params_from_yaml(yaml)
    }

    fn file(dir: &Path, name: &str, bytes: &[u8]) -> SourceFile {
        std::fs::write(dir.join(name), bytes).unwrap();
        SourceFile {
            split: "train".into(),
            field: "splits.train".into(),
            shown: format!("data/{name}"),
            path: dir.join(name),
        }
    }

    fn load(p: &LoadParams, f: &SourceFile) -> Result<RecordBatch, StageError> {
        read_file(p, p.resolved_format().unwrap(), f)
    }

    const EMOTION: &str = "{format: delimited, delimiter: ';', columns: [text, label], labels: [sadness, joy, love, anger, fear, surprise], splits: {train: x.txt}}";

    #[test]
    fn delimited_splits_on_the_last_delimiter_and_maps_labels() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(
            dir.path(),
            "a.txt",
            b"i feel; odd;joy\r\ni am sad;sadness\n\n",
        );
        let b = load(&params(EMOTION), &f).unwrap();
        assert_eq!(
            table::strings(&b, "text", "t").unwrap(),
            vec!["i feel; odd", "i am sad"]
        );
        let ids: Vec<i64> = b
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec();
        assert_eq!(ids, vec![1, 0]);
        assert_eq!(labels::label_names(&b.schema()).unwrap()[5], "surprise");
        assert_eq!(labels::label_column(&b.schema()), Some("label"));
    }

    #[test]
    fn bad_lines_are_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = params(EMOTION);
        let e = load(&p, &file(dir.path(), "b.txt", b"ok;joy\nfine;joyy\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "data/b.txt:2: unknown label `joyy` (labels: sadness, joy, love, anger, fear, surprise)"
        );
        let e = load(
            &p,
            &file(dir.path(), "c.txt", b"ok;joy\nno delimiter here\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("data/c.txt:2: expected 2 fields (text;label)"),
            "{e}"
        );
        let e = load(
            &p,
            &file(dir.path(), "d.txt", b"ok;joy\nok;joy\nbad \xff byte;joy\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("data/d.txt:3: invalid UTF-8 (byte 0xff"),
            "{e}"
        );
        let e = load(&p, &file(dir.path(), "e.txt", b""))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "data/e.txt: the file is empty (split `train`)");
    }

    #[test]
    fn delimited_header_of_only_unicode_whitespace_is_an_empty_file_not_a_panic() {
        // Found by fuzz/load_delimited: `expect("non-empty file")` on the header.
        let dir = tempfile::tempdir().unwrap();
        let p = params("{format: delimited, delimiter: ';', splits: {train: x.txt}}");
        for bytes in [&b"\x0b\n"[..], "\u{a0}\r\n\u{3000}\n".as_bytes()] {
            let e = load(&p, &file(dir.path(), "ws.txt", bytes))
                .unwrap_err()
                .to_string();
            assert_eq!(e, "data/ws.txt: the file is empty (split `train`)");
        }
    }

    #[test]
    fn conll_strips_prefixes_and_ends_sentences_at_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = params(
            "{format: conll, strip-prefix: true, labels: [O, B-PER, I-PER], splits: {train: x}}",
        );
        let f = file(
            dir.path(),
            "w",
            b"en:John\tB-PER\nen:a:b\tO\n\n\nen:Smith\tI-PER\n",
        );
        let b = load(&p, &f).unwrap();
        assert_eq!(
            table::string_lists(&b, "tokens", "t").unwrap(),
            vec![vec!["John", "a:b"], vec!["Smith"]]
        );
        assert_eq!(
            table::int_lists(&b, "ner_tags", "t").unwrap(),
            vec![vec![1, 0], vec![2]]
        );
        assert_eq!(labels::label_column(&b.schema()), Some("ner_tags"));
        let e = load(&p, &file(dir.path(), "v", b"en:x\tB-XYZ\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("data/v:1: unknown label `B-XYZ`"), "{e}");
    }

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

    #[test]
    fn csv_with_crlf_line_endings_names_the_right_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = params("{labels: [neg, pos], splits: {train: x.csv}}");
        let crlf = b"text,label\r\nok,neg\r\nfine,pos\r\nbad,maybe\r\nok,pos\r\n";
        let e = load(&p, &file(dir.path(), "crlf.csv", crlf))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("data/crlf.csv:4: unknown label `maybe`"),
            "{e}"
        );
        // Blank lines are skipped but still counted; a quoted newline is inside its record.
        let gaps = b"text,label\r\n\r\n\"two\r\nlines\",neg\r\n\n\nbad,maybe\n";
        let e = load(&p, &file(dir.path(), "gaps.csv", gaps))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("data/gaps.csv:7: unknown label `maybe`"),
            "{e}"
        );
        let lf = b"text,label\nok,neg\nbad,maybe\n";
        let e = load(&p, &file(dir.path(), "lf.csv", lf))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("data/lf.csv:3: unknown label `maybe`"), "{e}");
    }

    #[test]
    fn limit_zero_is_refused_naming_the_split_and_the_param() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |yaml: &str| match sources(&params(yaml), dir.path(), true) {
            Err(StageError::Param { field, message, .. }) => (field, message),
            Err(e) => panic!("not a param error: {e}"),
            Ok(_) => panic!("limit 0 accepted: {yaml}"),
        };
        assert_eq!(
            refused("{splits: {train: a.txt}, limit: 0}"),
            (
                "limit".into(),
                "`limit: 0` keeps no rows of split `train`".into()
            )
        );
        assert_eq!(
            refused("{splits: {train: a.txt, test: b.txt}, limit: 0}").1,
            "`limit: 0` keeps no rows of splits test, train"
        );
        assert_eq!(
            refused("{splits: {train: a.txt, test: b.txt}, limit: {train: 5, test: 0}}"),
            (
                "limit.test".into(),
                "`limit: {test: 0}` keeps no rows of split `test`".into()
            )
        );
        assert!(
            sources(
                &params("{splits: {train: a.txt}, limit: 1}"),
                dir.path(),
                true
            )
            .is_ok()
        );
    }

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

    #[test]
    fn a_dictionary_page_claiming_more_values_than_its_bytes_is_refused_before_allocating() {
        // Found by fuzz/load_parquet: 961 bytes whose dictionary page claims ~10^9 values made
        // the parquet crate ask for 8.6 GB before reading any.
        let bytes =
            include_bytes!("../../../../tests/fixtures/parquet/dictionary-claims-1e9-values.parquet");
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

    #[test]
    fn hub_files_are_grouped_by_split_within_one_folder() {
        let listing: Vec<String> = [
            "README.md",
            "split/train-00000-of-00001.parquet",
            "split/validation-00000-of-00001.parquet",
            "unsplit/train-00000-of-00001.parquet",
        ]
        .map(String::from)
        .to_vec();
        let e = select_hub_files(&listing, &BTreeMap::new(), None).unwrap_err();
        assert!(e.contains("several folders (split, unsplit)"), "{e}");
        let got = select_hub_files(&listing, &BTreeMap::new(), Some("split")).unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["train", "validation"]);
        let pats: BTreeMap<String, String> =
            [("all".to_string(), "*/train-*.parquet".to_string())].into();
        assert_eq!(
            select_hub_files(&listing, &pats, None).unwrap()["all"].len(),
            2
        );
        assert!(
            glob_match("a*c*e", "abcde")
                && !glob_match("a*c*e", "abde")
                && !glob_match("ab*ba", "aba")
        );
    }
}
