//! `cairn status`: for each stage, whether its cached result is current, and why not, field by
//! field, compared with the manifest's record of its last run. Reads only; runs nothing.

use serde::Serialize;

use crate::plan::fingerprint::StatCache;
use crate::plan::{self, Assessment, CacheCheck, Planned};
use crate::spec::resolve::{Pipeline, StageSpec};
use crate::store::cache::{Cache, Damage, Entry};
use crate::store::manifest::{Manifest, StageRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Fresh,
    Stale,
    NeverRun,
    OutputMissing,
    OutputCorrupt,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Fresh => "fresh",
            State::Stale => "stale",
            State::NeverRun => "never run",
            State::OutputMissing => "output missing",
            State::OutputCorrupt => "output corrupt",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub stage: String,
    pub state: State,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

pub fn status(
    pipeline: &Pipeline,
    cache: &Cache,
    selected: &[bool],
    rehash: bool,
) -> anyhow::Result<Vec<StageStatus>> {
    let manifest = Manifest::load(&cache.manifest_path(&pipeline.name))?.unwrap_or_default();
    let mut stats = StatCache::open(&cache.stat_cache_path(), rehash);
    let n = pipeline.stages.len();
    // The cached result of each fresh stage: what its consumers are fingerprinted against.
    let mut fresh: Vec<Option<Entry>> = vec![None; n];
    let mut out: Vec<Option<StageStatus>> = vec![None; n];
    for i in pipeline.dag.topological_order() {
        if !selected[i] {
            continue;
        }
        let stage = &pipeline.stages[i];
        let last = manifest.stages.get(&stage.id);
        let (status, result) = match fresh_inputs(pipeline, stage, &fresh) {
            Err(not_fresh) => (blocked(stage, last, &not_fresh), None),
            Ok(upstream) => {
                let check = CacheCheck::ReadOnly;
                let assessment = plan::assess(stage, &upstream, cache, &mut stats, check);
                assessed(stage, last, assessment)
            }
        };
        fresh[i] = result;
        out[i] = Some(status);
    }
    let _ = stats.save(&cache.stat_cache_path(), &cache.tmp_dir());
    Ok(out.into_iter().flatten().collect())
}

/// The cached results of a stage's inputs, in declared order; or the inputs that are not fresh.
fn fresh_inputs<'a>(
    pipeline: &Pipeline,
    stage: &'a StageSpec,
    fresh: &'a [Option<Entry>],
) -> Result<Vec<&'a Entry>, Vec<&'a str>> {
    let results: Vec<Option<&Entry>> = stage
        .inputs
        .iter()
        .map(|input| fresh[pipeline.index_of(&input.stage).expect("resolved")].as_ref())
        .collect();
    let not_fresh: Vec<&str> = stage
        .inputs
        .iter()
        .zip(&results)
        .filter(|(_, result)| result.is_none())
        .map(|(input, _)| input.stage.as_str())
        .collect();
    if not_fresh.is_empty() {
        Ok(results.into_iter().flatten().collect())
    } else {
        Err(not_fresh)
    }
}

/// A stage whose inputs are not all fresh: its fingerprint cannot be known yet.
fn blocked(stage: &StageSpec, last: Option<&StageRecord>, not_fresh: &[&str]) -> StageStatus {
    let mut reasons = last
        .map(|l| plan::reasons(stage, None, l))
        .unwrap_or_default();
    reasons.extend(not_fresh.iter().map(|s| format!("input {s} is not fresh")));
    StageStatus {
        stage: stage.id.clone(),
        state: if last.is_some() {
            State::Stale
        } else {
            State::NeverRun
        },
        reasons,
        fingerprint: None,
    }
}

/// A stage's status from the cache's answer; with its cached result when it is fresh.
fn assessed(
    stage: &StageSpec,
    last: Option<&StageRecord>,
    assessment: Assessment,
) -> (StageStatus, Option<Entry>) {
    let (planned, state, mut reasons, result) = match assessment {
        Assessment::CannotPlan(e) => {
            let status = StageStatus {
                stage: stage.id.clone(),
                state: State::Stale,
                reasons: vec![e.to_string()],
                fingerprint: None,
            };
            return (status, None);
        }
        Assessment::Hit(planned, entry) => {
            let notes = fresh_notes(last, &planned, &entry);
            (planned, State::Fresh, notes, Some(entry))
        }
        Assessment::Damaged(planned, damage) => {
            let (state, why) = damaged(damage);
            (planned, state, vec![why], None)
        }
        Assessment::MustRun(planned) => {
            match last {
                None => (planned, State::NeverRun, vec![], None),
                Some(l) => {
                    let mut why = plan::reasons(stage, Some(&planned), l);
                    if why.is_empty() && matches!(stage.device, Some(cairn_stages::Device::Cuda(_)))
                    {
                        // Params and inputs as recorded: the GPU is what differs (see the fingerprint).
                        why.push("no result on a GPU yet (a GPU's result is cached apart from the CPU's)".into());
                    }
                    if why.is_empty() {
                        why.push("no cached result for this fingerprint (cache cleared?)".into());
                    }
                    (planned, State::Stale, why, None)
                }
            }
        }
    };
    reasons.dedup();
    let status = StageStatus {
        stage: stage.id.clone(),
        state,
        reasons,
        fingerprint: Some(planned.fingerprint),
    };
    (status, result)
}

/// What is worth saying of a fresh stage: where its manifest record disagrees with the cache.
fn fresh_notes(last: Option<&StageRecord>, planned: &Planned, entry: &Entry) -> Vec<String> {
    let note = match last {
        Some(l) if l.fingerprint != planned.fingerprint => {
            "restored from the cache on the next run (the manifest records another result)"
        }
        None => "in the cache; not yet in the manifest",
        Some(l) if !record_matches(l, entry) => {
            "the manifest's record differs from the cached result (edited?); the next run rewrites it"
        }
        _ => return vec![],
    };
    vec![note.to_string()]
}

fn damaged(damage: Damage) -> (State, String) {
    match damage {
        Damage::Missing(o) => (State::OutputMissing, format!("{o} is not in the cache")),
        Damage::Corrupt(o) => (State::OutputCorrupt, format!("{o} fails its digest check")),
        Damage::BadEntry(why) => (State::OutputCorrupt, format!("cache entry: {why}")),
    }
}

/// Whether a manifest record states what the cache entry holds (outputs and metrics).
fn record_matches(record: &StageRecord, entry: &Entry) -> bool {
    record.outputs == entry.outputs && record.metrics == entry.metrics
}

pub fn render(statuses: &[StageStatus]) -> String {
    let width = statuses.iter().map(|s| s.stage.len()).max().unwrap_or(0);
    let mut out = String::new();
    for s in statuses {
        let first = s.reasons.first().map(String::as_str).unwrap_or("");
        out.push_str(format!("{:width$}  {:14}  {first}", s.stage, s.state.label()).trim_end());
        out.push('\n');
        for r in s.reasons.iter().skip(1) {
            out.push_str(&format!("{:width$}  {:14}  {r}\n", "", ""));
        }
    }
    out
}

/// `cairn status`: every stage's status, as a table or (`json`) machine-readable.
/// `cairn status`'s arguments.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn status pipelines/emotion.yaml
  cairn status pipelines/emotion.yaml --json")]
pub struct Args {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: std::path::PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Hash every input file, model file and cached object by content, ignoring the stat
    /// cache (which trusts size + mtime + inode).
    #[arg(long)]
    rehash: bool,
}

pub fn run(
    ctx: &crate::commands::context::Context,
    args: Args,
) -> anyhow::Result<std::process::ExitCode> {
    let Args {
        pipeline,
        json,
        rehash,
    } = args;
    let (p, cache) = ctx.load(&pipeline)?;
    let statuses = status(&p, &cache, &vec![true; p.stages.len()], rehash)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        print!("{}", render(&statuses));
    }
    Ok(std::process::ExitCode::SUCCESS)
}
