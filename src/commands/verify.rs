//! `cairn verify`: recomputes every stage into a temporary cache and compares each result with
//! the manifest: identical bytes, the same metrics within a tolerance, or different.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use crate::commands::context::Context;
use crate::commands::{run, signals};
use crate::exec::{self, Outcome, RunOptions};
use crate::spec::resolve::Pipeline;
use crate::store::cache::Cache;
use crate::store::manifest::{Manifest, StageRecord};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn verify pipelines/emotion.yaml
  cairn verify pipelines/emotion.yaml --tolerance 1e-4")]
pub struct Args {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: PathBuf,
    /// Relative tolerance for metrics when outputs are not byte-identical.
    #[arg(long, default_value_t = 1e-6)]
    tolerance: f64,
    #[arg(long, short)]
    jobs: Option<usize>,
}

/// Prints a verdict per stage; exit 1 when any is not identical or the same within tolerance.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let (p, cache) = ctx.load(&args.pipeline)?;
    signals::stop_gracefully();
    let verdicts = verify(&p, &cache, run::options(ctx, args.jobs), args.tolerance)?;
    if let Some(code) = signals::stopped_by_signal() {
        eprintln!("interrupted: verify did not finish");
        return Ok(code);
    }
    for (id, v) in &verdicts {
        println!("{id}: {}", v.describe(args.tolerance));
    }
    Ok(if verdicts.iter().all(|(_, v)| v.agrees()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The same output bytes and exactly the same metrics.
    Identical,
    /// Output bytes differ (another CPU or thread count), every metric within tolerance.
    SameMetrics,
    Different(String),
    NotInManifest,
    /// The manifest records a result for another fingerprint: it is not this pipeline's.
    StaleManifest,
    NotRecomputed(String),
}

impl Verdict {
    /// Whether the recomputation confirms the manifest.
    pub fn agrees(&self) -> bool {
        matches!(self, Verdict::Identical | Verdict::SameMetrics)
    }

    /// The verdict as `cairn verify` prints it.
    pub fn describe(&self, tolerance: f64) -> String {
        match self {
            Verdict::Identical => "identical".to_string(),
            Verdict::SameMetrics => format!("same metrics within {tolerance}"),
            Verdict::Different(d) => format!("DIFFERENT: {d}"),
            Verdict::NotInManifest => "not in the manifest".to_string(),
            Verdict::StaleManifest => {
                "the manifest records another fingerprint (stale): run the pipeline, then verify"
                    .to_string()
            }
            Verdict::NotRecomputed(why) => format!("not recomputed: {why}"),
        }
    }
}

/// Recomputes every stage into a scratch cache with `base`'s workers, device and network
/// (from [`run::options`]), forcing and rehashing everything, and judges each result.
pub fn verify(
    pipeline: &Pipeline,
    cache: &Cache,
    base: RunOptions,
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
        force_all: true,
        rehash: true,
        ..base
    };
    let report = exec::run(pipeline, &fresh, &opts)?;
    let recomputed = Manifest::load(&fresh.manifest_path(&pipeline.name))?.unwrap_or_default();
    let verdicts = report
        .stages
        .iter()
        .map(|s| {
            let verdict = match (
                &s.outcome,
                manifest.stages.get(&s.id),
                recomputed.stages.get(&s.id),
            ) {
                (_, None, _) => Verdict::NotInManifest,
                (Outcome::Ran, Some(want), Some(got)) => compare(want, got, tolerance),
                (other, _, _) => Verdict::NotRecomputed(format!(
                    "{} {}",
                    other.label(),
                    s.note.clone().unwrap_or_default()
                )),
            };
            (s.id.clone(), verdict)
        })
        .collect();
    Ok(verdicts)
}

/// A recorded result against its recomputation. Equal bytes must come with exactly equal
/// metrics: otherwise the manifest or the cache was edited, or a metric is not deterministic.
fn compare(want: &StageRecord, got: &StageRecord, tolerance: f64) -> Verdict {
    if want.fingerprint != got.fingerprint {
        return Verdict::StaleManifest;
    }
    let digests = |r: &StageRecord| -> BTreeMap<String, String> {
        r.outputs
            .iter()
            .map(|(k, v)| (k.clone(), v.digest.clone()))
            .collect()
    };
    if digests(want) == digests(got) {
        return match metrics_differ(&want.metrics, &got.metrics, 0.0) {
            None => Verdict::Identical,
            Some(d) => Verdict::Different(format!(
                "outputs are identical but {d} (manifest vs recomputed): the record was edited, or the metric is not deterministic"
            )),
        };
    }
    let changed: Vec<&String> = want
        .outputs
        .iter()
        .filter(|(k, v)| got.outputs.get(*k).map(|g| &g.digest) != Some(&v.digest))
        .map(|(k, _)| k)
        .chain(
            got.outputs
                .keys()
                .filter(|k| !want.outputs.contains_key(*k)),
        )
        .collect();
    let outputs = changed
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if want.metrics.is_empty() {
        return Verdict::Different(format!(
            "outputs differ ({outputs}) and the stage records no metrics"
        ));
    }
    match metrics_differ(&want.metrics, &got.metrics, tolerance) {
        None => Verdict::SameMetrics,
        Some(d) => Verdict::Different(format!("outputs differ ({outputs}); {d}")),
    }
}

/// The first metric that differs (manifest vs recomputed). Tolerance by metric kind: integers
/// (counts, steps, iterations), strings and booleans must be equal; a float may differ by
/// `tol` relative to its magnitude, or absolutely below 1: `|a − b| ≤ tol · max(1, |a|)`.
fn metrics_differ(
    want: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Value>,
    tol: f64,
) -> Option<String> {
    for (k, w) in want {
        let Some(g) = got.get(k) else {
            return Some(format!("metric {k} is missing"));
        };
        if let Some(d) = value_differs(w, g, tol) {
            return Some(format!("metric {k}: {d}"));
        }
    }
    got.keys()
        .find(|k| !want.contains_key(*k))
        .map(|k| format!("metric {k} is new"))
}

fn value_differs(w: &Value, g: &Value, tol: f64) -> Option<String> {
    match (w, g) {
        (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => {
            let (x, y) = (a.as_f64()?, b.as_f64()?);
            ((x - y).abs() > tol * x.abs().max(1.0) || (x - y).is_nan())
                .then(|| format!("{a} vs {b}"))
        }
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .find_map(|(k, x)| match b.get(k) {
                Some(y) => value_differs(x, y, tol).map(|d| format!("{k}: {d}")),
                None => Some(format!("{k} missing")),
            })
            .or_else(|| {
                b.keys()
                    .find(|k| !a.contains_key(*k))
                    .map(|k| format!("{k} is new"))
            }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| value_differs(x, y, tol).map(|d| format!("[{i}]: {d}"))),
        (a, b) => (a != b).then(|| format!("{a} vs {b}")),
    }
}
