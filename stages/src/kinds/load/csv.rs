//! `format: csv`: RFC 4180 CSV (quotes allowed), a header row unless `columns:` names them.

use arrow::record_batch::RecordBatch;

use super::{Format, Labeler, LoadParams, SourceFile, excerpt, read_bytes, text_batch};
use crate::api::StageError;

/// Reads a CSV file; the label column becomes ids when `labels:` is given.
pub(super) fn read(
    p: &LoadParams,
    f: &SourceFile,
    labeler: &Labeler,
) -> Result<RecordBatch, StageError> {
    let delim = p.delimiter(Format::Csv)?;
    let bytes = read_bytes(f)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delim.as_bytes()[0])
        .has_headers(p.columns.is_none())
        .flexible(true)
        .from_reader(bytes.as_slice());
    let csv_err = |e: csv::Error| csv_error(f, &bytes, e);
    let mut counter = LineCounter::new(&bytes);
    let names = match &p.columns {
        Some(c) => c.clone(),
        None => {
            let header = reader.byte_headers().map_err(csv_err)?.clone();
            utf8_fields(f, &header, 1)?
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
        let fields = utf8_fields(f, &rec, line)?;
        if fields.len() != names.len() {
            return Err(wrong_field_count(f, line, &names, &delim, &fields));
        }
        for (col, v) in columns.iter_mut().zip(fields) {
            col.push(v);
        }
        line_of.push(line);
    }
    text_batch(&names, columns, &line_of, f, labeler)
}

/// A record with the wrong number of fields. When one of its fields spans lines, the likely
/// cause is a quote that is never closed: the rest of the file became that one field.
fn wrong_field_count(
    f: &SourceFile,
    line: usize,
    names: &[String],
    delim: &str,
    fields: &[String],
) -> StageError {
    let expected = format!("expected {} fields ({})", names.len(), names.join(delim));
    let spanned = fields
        .iter()
        .map(|v| v.trim_end_matches(['\r', '\n']).matches('\n').count())
        .max()
        .unwrap_or(0);
    if spanned == 0 {
        return StageError::failed(format!(
            "{}:{line}: {expected}, found {}",
            f.shown,
            fields.len()
        ));
    }
    StageError::failed(format!(
        "{}:{line}: {expected}, found {}: a quoted field opened on this line runs over {} lines",
        f.shown,
        fields.len(),
        spanned + 1
    ))
    .with_hint("a closing `\"` is probably missing; inside a quoted field, write a quote as `\"\"`")
}

/// A record's fields as text, or an error at `file:line` naming the field that is not UTF-8.
fn utf8_fields(
    f: &SourceFile,
    rec: &csv::ByteRecord,
    line: usize,
) -> Result<Vec<String>, StageError> {
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
}

/// The csv crate's error at `file:line` (its line counted from the error's byte offset).
fn csv_error(f: &SourceFile, bytes: &[u8], e: csv::Error) -> StageError {
    let line = e
        .position()
        .map(|p| LineCounter::new(bytes).line_at(p.byte()).to_string())
        .unwrap_or_else(|| "?".into());
    StageError::failed(format!("{}:{line}: {e}", f.shown))
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

#[cfg(test)]
mod tests {
    use super::super::testing::{file, load, params};

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
}
