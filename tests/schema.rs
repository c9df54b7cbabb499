//! `cairn schema`: the JSON Schema editors use. The checked-in copy is what cairn prints; every
//! pipeline in the repository validates against it; broken pipelines it can judge are refused.

mod common;

use std::path::{Path, PathBuf};

use common::Project;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn printed_schema() -> Value {
    let out = Project::new().cairn(&["schema"]).ok();
    serde_json::from_str(&out.stdout).expect("cairn schema prints JSON")
}

fn as_json(yaml: &str) -> Value {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
    serde_json::to_value(value).expect("json")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_checked_in_schema_is_what_cairn_prints() {
    let checked_in = std::fs::read_to_string(repo().join("pipelines/pipeline.schema.json"))
        .expect("pipelines/pipeline.schema.json");
    let checked_in: Value = serde_json::from_str(&checked_in).unwrap();
    assert!(
        checked_in == printed_schema(),
        "pipelines/pipeline.schema.json is out of date: cargo run -- schema > pipelines/pipeline.schema.json"
    );
}

#[test]
fn every_pipeline_in_the_repository_validates_and_names_the_schema() {
    let validator = jsonschema::draft7::new(&printed_schema()).expect("a valid draft-07 schema");
    let mut files = yaml_files(&repo().join("pipelines"));
    files.extend(yaml_files(&repo().join("scripts/reference")));
    files.extend(yaml_files(&repo().join("bench/pipelines")));
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&as_json(&text))
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
        assert!(
            text.lines()
                .next()
                .is_some_and(|l| l.starts_with("# yaml-language-server: $schema=")
                    && l.ends_with("pipeline.schema.json")),
            "{}: its first line names the schema",
            file.display()
        );
    }
}

#[test]
fn broken_pipelines_it_can_judge_are_refused() {
    let validator = jsonschema::draft7::new(&printed_schema()).unwrap();
    let stage = |body: &str| format!("name: p\nstages:\n  s: {body}\n");
    let broken = [
        ("no name", "stages: {}\n".to_string()),
        ("unknown top-level key", "name: p\nstage: {}\n".to_string()),
        ("no kind", stage("{inputs: [a]}")),
        ("unknown kind", stage("{kind: tokenise}")),
        ("unknown param", stage("{kind: scale, methd: min-max}")),
        ("wrong enum value", stage("{kind: scale, method: max-min}")),
        (
            "wrong type",
            stage("{kind: finetune, model: m, epochs: many}"),
        ),
        ("missing required param", stage("{kind: classify}")),
        ("device on a CPU kind", stage("{kind: scale, device: cpu}")),
        (
            "bad device",
            stage("{kind: extract-hidden, model: m, device: gpu0}"),
        ),
        (
            "unknown named input",
            stage("{kind: predict, inputs: {modle: ft, data: d}}"),
        ),
        ("inputs not a list", stage("{kind: scale, inputs: hidden}")),
    ];
    for (what, yaml) in broken {
        assert!(
            !validator.is_valid(&as_json(&yaml)),
            "accepted: {what}\n{yaml}"
        );
    }
    let fine = [
        stage("{kind: scale, inputs: [hidden], method: min-max}"),
        stage("{kind: finetune, model: m, epochs: \"${params.epochs}\", seed: \"${matrix.seed}\"}"),
        stage("{kind: extract-hidden, model: m, device: \"cuda:1\"}"),
        stage("{kind: predict, inputs: {model: ft, data: d}, splits: [test]}"),
        stage("{kind: sample, inputs: [l], keep: {train: 250, validation: 0.5}}"),
    ];
    for yaml in fine {
        let errors: Vec<String> = validator
            .iter_errors(&as_json(&yaml))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "refused:\n{yaml}{errors:#?}");
    }
}
