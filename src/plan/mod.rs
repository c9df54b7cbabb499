//! Deciding whether a stage must run: its fingerprint from its params, version, external files
//! and upstream results, and whether the cache holds a sound result for it.

pub mod fingerprint;

use std::collections::BTreeMap;
use std::path::PathBuf;

use cairn_stages::Device;
use serde_json::Value;

use crate::plan::fingerprint::{Digest, FingerprintInputs, SCHEME, StatCache, digest_json};
use crate::spec::resolve::{InputRef, Pipeline, StageSpec};
use crate::store::cache::{Cache, Damage, Entry, split_of, table_output_name};
use crate::store::manifest::{ExternalRecord, InputRecord, StageRecord};

/// A stage whose fingerprint is known.
#[derive(Debug, Clone)]
pub struct Planned {
    pub fingerprint: Digest,
    pub inputs: Vec<InputRecord>,
    pub externals: BTreeMap<String, ExternalRecord>,
}

/// What the cache holds for a planned stage.
pub enum Lookup {
    Hit(Entry),
    Damaged(Damage),
    Miss,
}

/// Why a stage's fingerprint cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("input `{input}`: stage `{stage}` has no split `{split}` (it has: {})", listing(.available))]
    NoSuchSplit {
        input: String,
        stage: String,
        split: String,
        /// The splits the upstream stage has.
        available: Vec<String>,
    },
    #[error("cannot read `{shown}`: {source}")]
    UnreadableExternal {
        /// The path as the pipeline file names it.
        shown: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn listing(splits: &[String]) -> String {
    if splits.is_empty() {
        "no tables".to_string()
    } else {
        splits.join(", ")
    }
}

/// What is known of a stage once every input has a result: one answer, shared by `run` (which
/// acts on it) and `status` (which tells it), so the two never disagree.
pub enum Assessment {
    /// The fingerprint cannot be computed: an input lacks the split it names, or an external
    /// file is unreadable.
    CannotPlan(PlanError),
    /// The cache holds a sound result for this fingerprint.
    Hit(Planned, Entry),
    /// The cache holds a result for this fingerprint, but it is damaged.
    Damaged(Planned, Damage),
    /// No result to use: none is cached, or the cache was not consulted ([`CacheCheck::Skip`]).
    MustRun(Planned),
}

/// How [`assess`] consults the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheCheck {
    /// Look, and remove what is corrupt so that a rerun can store good objects (`run`).
    Repair,
    /// Look without changing anything (`status`).
    ReadOnly,
    /// Do not look: the stage runs whatever the cache holds (`--force`, a recompute).
    Skip,
}

/// Fingerprints a stage whose inputs have these results (in declared order) and looks its
/// result up.
pub fn assess(
    stage: &StageSpec,
    upstream: &[&Entry],
    cache: &Cache,
    stats: &mut StatCache,
    check: CacheCheck,
) -> Assessment {
    let planned = match plan(stage, upstream, stats) {
        Ok(planned) => planned,
        Err(e) => return Assessment::CannotPlan(e),
    };
    let repair = match check {
        CacheCheck::Skip => return Assessment::MustRun(planned),
        CacheCheck::Repair => true,
        CacheCheck::ReadOnly => false,
    };
    match lookup(cache, &planned, stats, repair) {
        Lookup::Hit(entry) => Assessment::Hit(planned, entry),
        Lookup::Damaged(damage) => Assessment::Damaged(planned, damage),
        Lookup::Miss => Assessment::MustRun(planned),
    }
}

/// The digest a consumer sees of an upstream result: all its outputs, or one split's table.
pub fn input_digest(upstream: &Entry, input: &InputRef) -> Result<Digest, PlanError> {
    match &input.split {
        None => {
            let listing: serde_json::Map<String, Value> = upstream
                .outputs
                .iter()
                .map(|(name, o)| (name.clone(), Value::from(o.digest.clone())))
                .collect();
            Ok(digest_json(&Value::Object(listing)))
        }
        Some(split) => upstream
            .outputs
            .get(&table_output_name(split))
            .map(|o| o.digest.clone())
            .ok_or_else(|| PlanError::NoSuchSplit {
                input: input.to_string(),
                stage: input.stage.clone(),
                split: split.clone(),
                available: upstream
                    .outputs
                    .keys()
                    .filter_map(|k| split_of(k))
                    .map(str::to_string)
                    .collect(),
            }),
    }
}

/// Params as the fingerprint sees them: without fields that only name content (a model
/// directory vs. its Hub id), whose digest is hashed instead.
fn fingerprinted_params(stage: &StageSpec) -> Value {
    let mut params = stage.params.clone();
    if let Value::Object(map) = &mut params {
        for ext in stage.externals.iter().filter(|e| e.content_only) {
            map.remove(&ext.field);
        }
    }
    params
}

/// Computes a stage's fingerprint. `upstream` holds the entry of each declared input, in order.
pub fn plan(
    stage: &StageSpec,
    upstream: &[&Entry],
    stats: &mut StatCache,
) -> Result<Planned, PlanError> {
    let mut inputs = Vec::new();
    for (input, entry) in stage.inputs.iter().zip(upstream) {
        inputs.push(InputRecord {
            from: input.to_string(),
            digest: input_digest(entry, input)?,
        });
    }
    let mut externals = BTreeMap::new();
    for ext in &stage.externals {
        let digest = stats
            .external_digest(&ext.path, ext.files.as_deref())
            .map_err(|source| PlanError::UnreadableExternal {
                shown: ext.shown.clone(),
                path: ext.path.clone(),
                source,
            })?;
        externals.insert(
            ext.field.clone(),
            ExternalRecord {
                path: ext.shown.clone(),
                digest,
            },
        );
    }
    let params = fingerprinted_params(stage);
    let metrics = upstream_metrics(stage, upstream);
    let fingerprint = FingerprintInputs {
        scheme: SCHEME,
        kind: stage.kind.name,
        version: stage.kind.version,
        params: &params,
        inputs: stage
            .inputs
            .iter()
            .zip(&inputs)
            .map(|(i, r)| (i.split.as_deref(), r.digest.as_str()))
            .collect(),
        slots: input_slots(stage),
        matrix: input_cells(stage),
        metrics,
        externals: externals
            .iter()
            .map(|(k, v)| (k.as_str(), v.digest.as_str()))
            .collect(),
        device: matches!(stage.device, Some(Device::Cuda(_))).then_some("cuda"),
    }
    .fingerprint();
    Ok(Planned {
        fingerprint,
        inputs,
        externals,
    })
}

/// The named input each input fills, when the stage's kind names its inputs.
fn input_slots(stage: &StageSpec) -> Option<Vec<&str>> {
    stage.kind.named_inputs().then(|| {
        stage
            .inputs
            .iter()
            .map(|i| i.slot.unwrap_or_default())
            .collect()
    })
}

/// The digest of each input's metrics, for a kind that reads them (`reads_metrics`):
/// they are part of what it computes from, though no output object holds them.
fn upstream_metrics(stage: &StageSpec, upstream: &[&Entry]) -> Option<Vec<Digest>> {
    stage.kind.reads_metrics.then(|| {
        upstream
            .iter()
            .map(|entry| digest_json(&serde_json::to_value(&entry.metrics).expect("metrics")))
            .collect()
    })
}

/// Each input's sweep values, when any input is a sweep's cell.
fn input_cells(stage: &StageSpec) -> Option<Vec<&BTreeMap<String, String>>> {
    let cells: Vec<&BTreeMap<String, String>> = stage.inputs.iter().map(|i| &i.matrix).collect();
    cells.iter().any(|m| !m.is_empty()).then_some(cells)
}

/// With `repair`, corrupt objects are removed (so the rerun can store good ones).
pub fn lookup(cache: &Cache, planned: &Planned, stats: &mut StatCache, repair: bool) -> Lookup {
    match cache.read_entry(&planned.fingerprint, repair) {
        Ok(None) => Lookup::Miss,
        Ok(Some(entry)) => match cache.check(&entry, stats, repair) {
            Ok(()) => Lookup::Hit(entry),
            Err(damage) => Lookup::Damaged(damage),
        },
        Err(damage) => Lookup::Damaged(damage),
    }
}

/// The manifest record of a stage that has a result.
pub fn record(stage: &StageSpec, planned: &Planned, entry: &Entry) -> StageRecord {
    StageRecord {
        fingerprint: planned.fingerprint.clone(),
        kind: stage.kind.name.to_string(),
        version: stage.kind.version,
        params: stage.params.clone(),
        inputs: planned.inputs.clone(),
        externals: planned.externals.clone(),
        outputs: entry.outputs.clone(),
        metrics: entry.metrics.clone(),
        wall_time_s: entry.wall_time_s,
        run_facts: entry.run_facts.clone(),
    }
}

/// Field-level reasons a stage differs from its last recorded run.
pub fn reasons(stage: &StageSpec, planned: Option<&Planned>, last: &StageRecord) -> Vec<String> {
    let mut why = Vec::new();
    if last.kind != stage.kind.name {
        why.push(format!("kind {} → {}", last.kind, stage.kind.name));
    } else if last.version != stage.kind.version {
        why.push(format!(
            "implementation version {} → {}",
            last.version, stage.kind.version
        ));
    }
    diff_values("params", &last.params, &stage.params, &mut why);
    if let Some(p) = planned {
        let last_inputs: Vec<&str> = last.inputs.iter().map(|i| i.from.as_str()).collect();
        let now_inputs: Vec<&str> = p.inputs.iter().map(|i| i.from.as_str()).collect();
        if last_inputs != now_inputs {
            why.push(format!(
                "inputs [{}] → [{}]",
                last_inputs.join(", "),
                now_inputs.join(", ")
            ));
        } else {
            for (a, b) in last.inputs.iter().zip(&p.inputs) {
                if a.digest != b.digest {
                    why.push(format!("input {} changed", b.from));
                }
            }
        }
        for (field, now) in &p.externals {
            match last.externals.get(field) {
                Some(was) if was.digest != now.digest => {
                    if was.path == now.path {
                        why.push(format!("file {} changed", now.path));
                    } else {
                        why.push(format!(
                            "file {} → {} (different content)",
                            was.path, now.path
                        ));
                    }
                }
                None => why.push(format!("file {} added", now.path)),
                _ => {}
            }
        }
    }
    why
}

fn diff_values(path: &str, was: &Value, now: &Value, out: &mut Vec<String>) {
    match (was, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let sub = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_values(&sub, x, y, out),
                    (Some(x), None) => out.push(format!("{sub} {} removed", short(x))),
                    (None, Some(y)) => out.push(format!("{sub} added: {}", short(y))),
                    (None, None) => {}
                }
            }
        }
        (a, b)
            if crate::plan::fingerprint::canonical_bytes(a)
                != crate::plan::fingerprint::canonical_bytes(b) =>
        {
            out.push(format!("{path} {} → {}", short(a), short(b)));
        }
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// Indices of the stages a run or status covers: `--target`s (a sweep's id: all its cells),
/// their ancestors and, with `downstream`, their descendants. All stages when no target is named.
pub fn selection(
    pipeline: &Pipeline,
    targets: &[String],
    downstream: bool,
) -> Result<Vec<bool>, String> {
    if targets.is_empty() {
        return Ok(vec![true; pipeline.stages.len()]);
    }
    let mut idx = Vec::new();
    for t in targets {
        // A sweep's id names all its cells.
        let named = pipeline.named(t);
        if named.is_empty() {
            return Err(pipeline.unknown_stage(t));
        }
        idx.extend(named);
    }
    Ok(pipeline.dag.select(&idx, downstream))
}
