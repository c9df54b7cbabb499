//! `finetune` run by the real `cairn` binary on a tiny random BERT (tests/fixtures/encoders/bert)
//! with a word-level tokenizer and a toy task: its outputs are results, so forcing it to rerun
//! gives byte-identical outputs and metrics, and the stage after it stays cached (early cutoff);
//! a NaN loss fails the stage with where it happened.

mod common;

use cairn::store::cache::Cache;
use cairn::store::manifest::{Manifest, StageRecord};
use common::Project;

/// The tiny BERT fixture plus a word-level tokenizer over its 100 ids, into `model/`.
fn write_tiny_model(p: &Project) {
    common::write_tiny_bert(p, "model", &[]);
}

fn project(extra_finetune: &str) -> Project {
    let p = Project::new();
    write_tiny_model(&p);
    p.write("data/train.txt", &common::toy_lines(96, 1));
    p.write("data/validation.txt", &common::toy_lines(32, 2));
    p.write(
        "p.yaml",
        &format!(
            r#"
name: ft
stages:
  load:
    kind: load
    format: delimited
    delimiter: ";"
    columns: [text, label]
    labels: [other, high]
    splits: {{train: data/train.txt, validation: data/validation.txt}}
  tok: {{kind: tokenize, inputs: [load], tokenizer: ./model, max-length: 32}}
  ft: {{kind: finetune, inputs: [tok], model: ./model, epochs: 2, batch-size: 8, learning-rate: 0.005, seed: 3{extra_finetune}}}
  eval: {{kind: evaluate, inputs: [ft.validation]}}
"#
        ),
    );
    p
}

fn record(p: &Project, stage: &str) -> StageRecord {
    let cache = Cache::new(&p.path("cache"));
    let m = Manifest::load(&cache.manifest_path("ft"))
        .unwrap()
        .expect("manifest");
    m.stages[stage].clone()
}

/// Regression: the history table and the metrics carried the training time, so every rerun of
/// a fine-tune produced another output digest, its evaluation reran, and `cairn verify` said
/// DIFFERENT.
#[test]
fn forced_finetune_rerun_is_identical_and_keeps_downstream_cached() {
    let p = project("");
    let run = p.cairn(&["run", "p.yaml"]).ok();
    assert_eq!(
        outcomes(&run),
        [
            ("load", "ran"),
            ("tok", "ran"),
            ("ft", "ran"),
            ("eval", "ran")
        ],
        "{}",
        run.stdout
    );
    let first = record(&p, "ft");
    assert!(
        first.outputs.contains_key("files/model/model.safetensors"),
        "{:?}",
        first.outputs.keys()
    );
    assert!(first.metrics.contains_key("validation"));
    assert!(
        first.run_facts.contains_key("train_seconds"),
        "timing belongs in the run record: {:?}",
        first.run_facts
    );
    let eval = record(&p, "eval");

    let run = p.cairn(&["run", "--force", "ft", "p.yaml"]).ok();
    assert_eq!(
        outcomes(&run),
        [
            ("load", "cached"),
            ("tok", "cached"),
            ("ft", "ran"),
            ("eval", "cached")
        ],
        "only the forced stage runs; its unchanged output leaves `eval` cached\n{}",
        run.stdout
    );
    let again = record(&p, "ft");
    assert_eq!(again.outputs, first.outputs, "output digests changed");
    assert_eq!(again.metrics, first.metrics, "metrics changed");
    assert_eq!(record(&p, "eval"), eval);

    // And `cairn verify` recomputes it from scratch with the same bytes.
    let verify = p.cairn(&["verify", "p.yaml"]);
    assert!(
        verify.stdout.lines().any(|l| l == "ft: identical"),
        "{}\n{}",
        verify.stdout,
        verify.stderr
    );
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
}

/// A NaN loss fails the stage at once, saying where, and its dependents are skipped.
#[test]
fn a_nan_loss_fails_the_stage_with_epoch_and_step() {
    let p = project("");
    nan_layer_norm(&p.path("model/model.safetensors"));
    let run = p.cairn(&["run", "p.yaml"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let all = format!("{}\n{}", run.stdout, run.stderr);
    assert!(
        all.contains("the training loss became NaN at epoch 1 step 1;"),
        "{all}"
    );
    let outcomes = outcomes(&run);
    assert_eq!(outcomes[2], ("ft", "FAILED"), "{}", run.stdout);
    assert_eq!(outcomes[3], ("eval", "skipped"), "{}", run.stdout);
}

/// (stage, outcome) per row of `cairn run`'s table, in pipeline order.
fn outcomes(run: &common::Run) -> Vec<(&str, &str)> {
    run.stdout
        .lines()
        .skip_while(|l| !l.starts_with("stage "))
        .skip(1)
        .map_while(|l| {
            let mut words = l.split_whitespace();
            let stage = words.next()?;
            let outcome = words.next()?;
            (!stage.starts_with(|c: char| c.is_ascii_digit())).then_some((stage, outcome))
        })
        .collect()
}

/// Sets every value of the embeddings' LayerNorm weight in a safetensors file to NaN, in place
/// (the format: an 8-byte little-endian header length, a JSON header, then the raw data).
fn nan_layer_norm(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let info = &header["embeddings.LayerNorm.weight"];
    assert_eq!(info["dtype"], "F32");
    let [a, b] = [0, 1].map(|i| info["data_offsets"][i].as_u64().unwrap() as usize);
    for c in bytes[8 + n + a..8 + n + b].chunks_exact_mut(4) {
        c.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// Regression: `CAIRN_TRAIN_KERNELS` switched the training kernels, so the same pipeline gave
/// other weights depending on the environment, outside the fingerprint. Nothing outside it may
/// change an output: not that variable (gone), not the thread count.
#[test]
fn the_environment_changes_no_trained_output() {
    let digests = |env: &[(&str, &str)]| {
        let p = project("");
        let mut cmd = p.command(&["run", "p.yaml"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ft = record(&p, "ft");
        (ft.fingerprint, ft.outputs, ft.metrics)
    };
    let plain = digests(&[]);
    let switched = digests(&[("CAIRN_TRAIN_KERNELS", "none"), ("RAYON_NUM_THREADS", "1")]);
    assert_eq!(plain, switched);
}

/// The fine-tune's manifest record after a run of the toy pipeline with `extra` finetune params.
fn trained(extra: &str) -> StageRecord {
    let p = project(extra);
    let run = p.cairn(&["run", "p.yaml"]).ok();
    assert!(run.stdout.contains("ft "), "{}", run.stdout);
    record(&p, "ft")
}

/// `label-smoothing` changes the trained weights and the fingerprint; left out, the params and
/// the fingerprint are those of a pipeline written before the param existed; out of range, it is
/// refused at its line before anything runs.
#[test]
fn label_smoothing_trains_differently_and_is_checked_at_its_line() {
    let plain = trained("");
    let zero = trained(", label-smoothing: 0");
    let smoothed = trained(", label-smoothing: 0.1");
    assert_eq!(plain.fingerprint, zero.fingerprint);
    assert!(
        plain.params.get("label-smoothing").is_none(),
        "{:?}",
        plain.params
    );
    assert_ne!(plain.fingerprint, smoothed.fingerprint);
    assert_ne!(
        plain.outputs["files/model/model.safetensors"].digest,
        smoothed.outputs["files/model/model.safetensors"].digest
    );

    let p = project(", label-smoothing: 1.5");
    let out = p.cairn(&["run", "p.yaml"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("label-smoothing") && out.stderr.contains("p.yaml:"),
        "{}",
        out.stderr
    );
    assert!(!p.path("cache/manifests/ft.yaml").exists());
}

/// `class-weight` weights the training loss (torch's `CrossEntropyLoss(weight=...)`): the
/// weights and the fingerprint change; a label the data does not have is refused, naming the
/// labels.
#[test]
fn class_weight_trains_differently_and_names_unknown_labels() {
    let plain = trained("");
    let balanced = trained(", class-weight: balanced");
    let by_name = trained(", class-weight: {high: 3.0}");
    assert_ne!(plain.fingerprint, balanced.fingerprint);
    let model = |r: &StageRecord| r.outputs["files/model/model.safetensors"].digest.clone();
    assert_ne!(model(&plain), model(&balanced));
    assert_ne!(model(&plain), model(&by_name));

    let p = project(", class-weight: {medium: 2.0}");
    let out = p.cairn(&["run", "p.yaml"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("label `medium`") && out.stderr.contains("(other, high)"),
        "{}",
        out.stderr
    );
}
