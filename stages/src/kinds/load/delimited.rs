//! `format: delimited`: one example per line, fields split on the LAST delimiters (so the first
//! column may hold the delimiter), no quoting, a header row unless `columns:` names them: the
//! emotion corpus' `text;label`.

use arrow::record_batch::RecordBatch;

use super::{
    Format, Labeler, LoadParams, SourceFile, empty_file, excerpt, lines, read_bytes, text_batch,
};
use crate::api::StageError;

/// Reads a delimited file; the label column becomes ids when `labels:` is given.
pub(super) fn read(
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

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;

    use super::super::testing::{file, load, params};
    use crate::columns::{labels, table};

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
}
