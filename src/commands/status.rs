//! `cairn status`: for each stage, whether its cached result is current, and why not, field by
//! field, compared with the manifest's record of its last run. Reads only; runs nothing.

use serde::Serialize;

use crate::plan::fingerprint::StatCache;
use crate::plan::{self, Lookup};
use crate::spec::resolve::Pipeline;
use crate::store::cache::{Cache, Damage, Entry};
use crate::store::manifest::Manifest;

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
    let mut results: Vec<Option<Entry>> = vec![None; n];
    let mut out: Vec<Option<StageStatus>> = vec![None; n];
    for i in pipeline.dag.topological_order() {
        if !selected[i] {
            continue;
        }
        let stage = &pipeline.stages[i];
        let last = manifest.stages.get(&stage.id);
        let stale_inputs: Vec<&str> = stage
            .inputs
            .iter()
            .filter(|inp| results[pipeline.index_of(&inp.stage).expect("resolved")].is_none())
            .map(|inp| inp.stage.as_str())
            .collect();
        let status = if !stale_inputs.is_empty() {
            let mut reasons = last
                .map(|l| plan::reasons(stage, None, l))
                .unwrap_or_default();
            reasons.extend(
                stale_inputs
                    .iter()
                    .map(|s| format!("input {s} is not fresh")),
            );
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
        } else {
            let upstream: Vec<Entry> = stage
                .inputs
                .iter()
                .map(|inp| {
                    results[pipeline.index_of(&inp.stage).expect("resolved")]
                        .clone()
                        .expect("fresh")
                })
                .collect();
            let refs: Vec<&Entry> = upstream.iter().collect();
            match plan::plan(stage, &refs, &mut stats) {
                Err(e) => StageStatus {
                    stage: stage.id.clone(),
                    state: State::Stale,
                    reasons: vec![e],
                    fingerprint: None,
                },
                Ok(planned) => {
                    let fp = Some(planned.fingerprint.clone());
                    let (state, mut reasons) = match plan::lookup(
                        cache, &planned, &mut stats, false,
                    ) {
                        Lookup::Hit(entry) => {
                            let note = match last {
                                Some(l) if l.fingerprint != planned.fingerprint => {
                                    vec!["restored from the cache on the next run (the manifest records another result)".to_string()]
                                }
                                None => vec!["in the cache; not yet in the manifest".to_string()],
                                Some(l) if !record_matches(l, &entry) => {
                                    vec!["the manifest's record differs from the cached result (edited?); the next run rewrites it".to_string()]
                                }
                                _ => vec![],
                            };
                            results[i] = Some(entry);
                            (State::Fresh, note)
                        }
                        Lookup::Damaged(Damage::Missing(o)) => (
                            State::OutputMissing,
                            vec![format!("{o} is not in the cache")],
                        ),
                        Lookup::Damaged(Damage::Corrupt(o)) => (
                            State::OutputCorrupt,
                            vec![format!("{o} fails its digest check")],
                        ),
                        Lookup::Damaged(Damage::BadEntry(why)) => {
                            (State::OutputCorrupt, vec![format!("cache entry: {why}")])
                        }
                        Lookup::Miss => {
                            match last {
                                None => (State::NeverRun, vec![]),
                                Some(l) => {
                                    let mut why = plan::reasons(stage, Some(&planned), l);
                                    if why.is_empty() {
                                        why.push("no cached result for this fingerprint (cache cleared?)".into());
                                    }
                                    (State::Stale, why)
                                }
                            }
                        }
                    };
                    reasons.dedup();
                    StageStatus {
                        stage: stage.id.clone(),
                        state,
                        reasons,
                        fingerprint: fp,
                    }
                }
            }
        };
        out[i] = Some(status);
    }
    let _ = stats.save(&cache.stat_cache_path(), &cache.tmp_dir());
    Ok(out.into_iter().flatten().collect())
}

/// Whether a manifest record states what the cache entry holds (outputs and metrics).
fn record_matches(record: &crate::store::manifest::StageRecord, entry: &Entry) -> bool {
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
pub fn run(
    ctx: &crate::commands::context::Context,
    pipeline: &std::path::Path,
    json: bool,
    rehash: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let (p, cache) = ctx.load(pipeline)?;
    let statuses = status(&p, &cache, &vec![true; p.stages.len()], rehash)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        print!("{}", render(&statuses));
    }
    Ok(std::process::ExitCode::SUCCESS)
}
