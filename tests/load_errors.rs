//! `load`'s messages about bad data files and params, as the real `cairn` binary prints them:
//! CSV line numbers with CRLF endings, `limit: 0`, JSON Lines fields of the wrong type.

mod common;

use common::Project;

/// A one-stage pipeline loading `file` with the extra params `params` (YAML lines).
fn pipeline(file: &str, params: &str) -> String {
    format!(
        "name: t\nstages:\n  load:\n    kind: load\n    labels: [neg, pos]\n{params}    splits:\n      train: {file}\n"
    )
}

#[test]
fn crlf_csv_bad_row_is_reported_at_its_own_line() {
    let p = Project::new();
    p.write(
        "data/train.csv",
        "text,label\r\nok,neg\r\n\"two\r\nlines\",pos\r\nbad,maybe\r\nok,pos\r\n",
    );
    p.write("p.yaml", &pipeline("data/train.csv", ""));
    let run = p.cairn(&["run", "p.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("data/train.csv:5: unknown label `maybe` (labels: neg, pos)"),
        "{}",
        run.stderr
    );
}

#[test]
fn limit_zero_is_refused_at_its_yaml_line_before_anything_runs() {
    let p = Project::new();
    p.write("data/train.csv", "text,label\nok,neg\n");
    p.write("p.yaml", &pipeline("data/train.csv", "    limit: 0\n"));
    let run = p.cairn(&["run", "p.yaml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: `limit: 0` keeps no rows of split `train`\n  --> p.yaml:6:12\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("= hint: remove `limit:`"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("no examples"), "{}", run.stderr);

    p.write(
        "p.yaml",
        &pipeline("data/train.csv", "    limit: {train: 0}\n"),
    );
    let run = p.cairn(&["run", "p.yaml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "error: `limit: {train: 0}` keeps no rows of split `train`\n  --> p.yaml:6:20\n"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn jsonl_text_that_is_not_a_string_is_refused_with_file_and_line() {
    let p = Project::new();
    p.write("p.yaml", &pipeline("data/train.jsonl", ""));
    for (row, want) in [
        (
            r#"{"text": 42, "label": "pos"}"#,
            "field `text` is a number (42)",
        ),
        (
            r#"{"text": {"a": 1}, "label": "pos"}"#,
            "field `text` is an object",
        ),
        (
            r#"{"text": ["a"], "label": "pos"}"#,
            "field `text` is an array",
        ),
        (r#"{"text": null, "label": "pos"}"#, "field `text` is null"),
    ] {
        p.write(
            "data/train.jsonl",
            &format!("{{\"text\": \"fine\", \"label\": \"neg\"}}\n{row}\n"),
        );
        let run = p.cairn(&["run", "p.yaml"]);
        assert_eq!(run.code, 1, "{row}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("data/train.jsonl:2: {want}, expected a string")),
            "{row}: {}",
            run.stderr
        );
    }
}

#[test]
fn jsonl_label_that_is_not_a_string_or_integer_is_refused_with_file_and_line() {
    let p = Project::new();
    p.write("p.yaml", &pipeline("data/train.jsonl", ""));
    for (row, want) in [
        (
            r#"{"text": "b", "label": 1.5}"#,
            "field `label` is a number (1.5)",
        ),
        (
            r#"{"text": "b", "label": true}"#,
            "field `label` is a boolean (true)",
        ),
        (
            r#"{"text": "b", "label": [1]}"#,
            "field `label` is an array",
        ),
        (r#"{"text": "b", "label": null}"#, "field `label` is null"),
    ] {
        p.write(
            "data/train.jsonl",
            &format!("{{\"text\": \"fine\", \"label\": 1}}\n\n{row}\n"),
        );
        let run = p.cairn(&["run", "p.yaml"]);
        assert_eq!(run.code, 1, "{row}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "data/train.jsonl:3: {want}, expected a string or an integer"
            )),
            "{row}: {}",
            run.stderr
        );
    }
    // Names and ids are both fine.
    p.write(
        "data/train.jsonl",
        "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": \"neg\"}\n",
    );
    p.cairn(&["run", "p.yaml"]).ok();
}
