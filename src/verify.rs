//! `cairn verify`: recomputes every stage into a temporary cache and compares each result with
//! the manifest: identical bytes, the same metrics within a tolerance, or different.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cache::Cache;
use crate::manifest::Manifest;
use crate::resolve::Pipeline;
use crate::run::{self, Outcome, RunOptions};

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Identical,
    SameMetrics,
    Different(String),
    NotInManifest,
    NotRecomputed(String),
}

pub fn verify(
    pipeline: &Pipeline,
    cache: &Cache,
    base: &RunOptions,
    tolerance: f64,
) -> anyhow::Result<Vec<(String, Verdict)>> {
    let manifest = Manifest::load(&cache.manifest_path(&pipeline.name))?.ok_or_else(|| {
        anyhow::anyhow!(
            "no manifest at {}: run the pipeline first",
            cache.manifest_path(&pipeline.name).display()
        )
    })?;
    let scratch = tempfile::tempdir()?;
    let fresh = Cache::new(scratch.path());
    let _lock = fresh.lock(std::time::Duration::from_secs(1))?;
    let opts = RunOptions {
        jobs: base.jobs,
        device: base.device,
        targets: Vec::new(),
        downstream: false,
        force: Vec::new(),
        force_all: true,
        dry_run: false,
        offline: base.offline,
        events: None,
        progress: base.progress,
    };
    let report = run::run(pipeline, &fresh, &opts)?;
    let recomputed = Manifest::load(&fresh.manifest_path(&pipeline.name))?.unwrap_or_default();
    let mut verdicts = Vec::new();
    for s in &report.stages {
        let verdict = match (
            &s.outcome,
            manifest.stages.get(&s.id),
            recomputed.stages.get(&s.id),
        ) {
            (_, None, _) => Verdict::NotInManifest,
            (Outcome::Ran, Some(want), Some(got)) => {
                let digests = |r: &crate::manifest::StageRecord| -> BTreeMap<String, String> {
                    r.outputs
                        .iter()
                        .map(|(k, v)| (k.clone(), v.digest.clone()))
                        .collect()
                };
                if digests(want) == digests(got) {
                    Verdict::Identical
                } else if want.metrics.is_empty() {
                    Verdict::Different("outputs differ and the stage records no metrics".into())
                } else {
                    match metrics_differ(&want.metrics, &got.metrics, tolerance) {
                        None => Verdict::SameMetrics,
                        Some(d) => Verdict::Different(d),
                    }
                }
            }
            (other, _, _) => Verdict::NotRecomputed(format!(
                "{} {}",
                other.label(),
                s.note.clone().unwrap_or_default()
            )),
        };
        verdicts.push((s.id.clone(), verdict));
    }
    Ok(verdicts)
}

/// The first metric that differs by more than `tol` (relative to its magnitude, at least 1).
fn metrics_differ(
    want: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Value>,
    tol: f64,
) -> Option<String> {
    for (k, w) in want {
        let Some(g) = got.get(k) else {
            return Some(format!("metric {k} missing"));
        };
        if let Some(d) = value_differs(w, g, tol) {
            return Some(format!("metric {k}: {d}"));
        }
    }
    None
}

fn value_differs(w: &Value, g: &Value, tol: f64) -> Option<String> {
    match (w, g) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64()?, b.as_f64()?);
            ((a - b).abs() > tol * a.abs().max(1.0)).then(|| format!("{a} vs {b}"))
        }
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(k, x)| match b.get(k) {
            Some(y) => value_differs(x, y, tol).map(|d| format!("{k}: {d}")),
            None => Some(format!("{k} missing")),
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| value_differs(x, y, tol).map(|d| format!("[{i}]: {d}"))),
        (a, b) => (a != b).then(|| format!("{a} vs {b}")),
    }
}
