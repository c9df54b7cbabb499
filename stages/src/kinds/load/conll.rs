//! `format: conll`: one token per line, `token<delimiter>tag`, a blank line ending a sentence
//! (WikiANN/PAN-X); becomes `tokens: list<utf8>` and the tag ids as `list<int32>`.

use arrow::datatypes::Field;
use arrow::record_batch::RecordBatch;

use super::{Format, Labeler, LoadParams, SourceFile, excerpt, finish, lines, read_bytes};
use crate::api::StageError;
use crate::columns::table;

/// Reads a CoNLL file into sentences of tokens and tag ids.
pub(super) fn read(
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

#[cfg(test)]
mod tests {
    use super::super::testing::{file, load, params};
    use crate::columns::{labels, table};

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
}
