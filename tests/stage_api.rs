//! The stage API as the user meets it through the binary. A param the params alone show to be
//! wrong (`Stage::validate`) is reported when the pipeline is resolved, at its YAML line,
//! before any stage runs: the upstream stage does not run, and a model the stage names is not
//! even looked for (the models here do not exist). A stage's failure prints its hint.

mod common;

use common::Project;

/// (stage kind, its params as `key: value` separated by `; `, the key of the reported line).
const CASES: &[(&str, &str, &str)] = &[
    // Checked inside `externals()` before.
    ("classify", "method: logistic-regression; C: 0", "C"),
    ("classify", "method: logistic-regression; tol: -1", "tol"),
    ("classify", "method: most-frequent; max-iter: 0", "max-iter"),
    (
        "finetune",
        "model: no/such-model; batch-size: 0",
        "batch-size",
    ),
    ("finetune", "model: no/such-model; epochs: 0", "epochs"),
    (
        "finetune",
        "model: no/such-model; max-tokens-per-step: 0",
        "max-tokens-per-step",
    ),
    (
        "finetune",
        "model: no/such-model; eval-batch-size: 0",
        "eval-batch-size",
    ),
    (
        "finetune",
        "model: no/such-model; max-steps: 0",
        "max-steps",
    ),
    (
        "finetune",
        "model: no/such-model; learning-rate: 0",
        "learning-rate",
    ),
    ("finetune", "model: no/such-model; dropout: 1.0", "dropout"),
    // Added with the params themselves.
    (
        "classify",
        "method: most-frequent; class-weight: balanced",
        "class-weight",
    ),
    (
        "classify",
        "method: logistic-regression; class-weight: {a: 0}",
        "class-weight",
    ),
    (
        "finetune",
        "model: no/such-model; label-smoothing: 1.5",
        "label-smoothing",
    ),
    (
        "extract-hidden",
        "model: no/such-model; batch-size: 0",
        "batch-size",
    ),
    ("normalize", "ops: []", "ops"),
    (
        "normalize",
        "ops: [{replace: {pattern: '(', with: ''}}]",
        "ops",
    ),
    // `tokenizer:` is missing: reported at the stage, whose mapping starts on the `kind:` line.
    ("pretokenize", "method: from-tokenizer", "kind"),
    (
        "pretokenize",
        "method: bert; tokenizer: no/such-model",
        "tokenizer",
    ),
    // Checked only at run time before, after the upstream stages had run.
    ("project", "n-components: 1", "n-components"),
    ("project", "n-neighbors: 1", "n-neighbors"),
    ("project", "splits: [train, test]", "splits"),
    (
        "normalize",
        "ops: [lowercase]; from-tokenizer: no/such-model",
        "ops",
    ),
];

#[test]
fn wrong_params_fail_at_their_line_before_any_stage_runs() {
    for (kind, params, field) in CASES {
        let p = Project::new();
        let yaml = format!(
            "name: validate\nstages:\n  src:\n    kind: test-source\n  bad:\n    kind: {kind}\n    inputs: [src]\n    {}\n",
            params.replace("; ", "\n    ")
        );
        p.write("pipeline.yaml", &yaml);
        let run = p.cairn(&["run", "pipeline.yaml"]);
        let case = format!("{kind} ({params}):\n{}", run.stderr);
        assert_ne!(run.code, 0, "{case}");
        assert!(p.executions().is_empty(), "a stage ran: {case}");
        // The error points at the param's line (the param key, or the line of its value).
        let line = yaml
            .lines()
            .enumerate()
            .skip_while(|(_, l)| *l != "  bad:")
            .find(|(_, l)| l.trim_start().starts_with(&format!("{field}:")))
            .map(|(i, _)| i + 1)
            .unwrap_or_else(|| panic!("no line for `{field}` in {yaml}"));
        assert!(
            run.stderr.contains(&format!("pipeline.yaml:{line}:")),
            "not at line {line}: {case}"
        );
        assert!(run.stderr.contains("= stage: bad"), "not the stage: {case}");
        assert!(
            !run.stderr.contains("no/such-model"),
            "resolved the model first: {case}"
        );
    }
}

#[test]
fn a_failed_stage_is_reported_at_its_yaml_line_with_its_hint() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: hint\nstages:\n  src: { kind: test-source }\n  bad: { kind: test-map, inputs: [src], fail: true }\n",
    );
    let run = p.cairn(&["run", "pipeline.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "error: failing on purpose (fail: true)\n  --> pipeline.yaml:4:3\n   = stage: bad\n   = hint: remove `fail: true` to let it succeed"
        ),
        "{}",
        run.stderr
    );
}
