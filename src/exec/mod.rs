//! Running a pipeline: stages start as soon as their inputs are ready; CPU stages run side by
//! side up to `--jobs`; device stages share one device queue (one at a time). A failed stage
//! skips its dependents while independent branches finish; the exit code is decided at the end.
//!
//! The decisions are the [`scheduler`]'s, a pure state machine; this module carries them out:
//! it settles ready stages against the cache (`plan::assess`), runs the ones to run on worker
//! threads ([`execute`]), records the manifest ([`record`]) and reports ([`report`]).

pub mod error;
mod execute;
mod progress;
mod record;
pub mod report;
pub mod scheduler;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::Scope;
use std::time::{Duration, Instant};

use cairn_stages::Device;

pub use crate::exec::error::{ExecError, ManifestError, RunError};
use crate::exec::execute::Job;
use crate::exec::progress::{BarProgress, Bars, EventLog, warn};
pub use crate::exec::report::{Outcome, RunReport, StageReport, human_duration, summary};
use crate::exec::scheduler::{End, Finish, Landing, Node, Poll, Ready, Scheduler, Settlement};
use crate::plan::fingerprint::StatCache;
use crate::plan::{self, Assessment, CacheCheck, Planned};
use crate::spec::resolve::Pipeline;
use crate::store::cache::{Cache, Damage, Entry};
use crate::store::manifest::Manifest;

/// Set by the first SIGINT/SIGTERM/SIGHUP; running stages see it through their context.
pub static CANCELLED: AtomicBool = AtomicBool::new(false);

pub struct RunOptions {
    pub jobs: usize,
    pub device: Device,
    pub targets: Vec<String>,
    pub downstream: bool,
    pub force: Vec<String>,
    pub force_all: bool,
    pub dry_run: bool,
    pub offline: bool,
    /// Writes begin/end events (JSON lines) here, for tests and post-mortems.
    pub events: Option<PathBuf>,
    pub progress: bool,
    /// Hash every file and cached object by content, ignoring the stat cache.
    pub rehash: bool,
}

pub fn run(pipeline: &Pipeline, cache: &Cache, opts: &RunOptions) -> anyhow::Result<RunReport> {
    let selected =
        plan::selection(pipeline, &opts.targets, opts.downstream).map_err(anyhow::Error::msg)?;
    check_forced(pipeline, &opts.force)?;
    // A manifest that cannot be read (a bad merge) is reported before hours of work, not after.
    let recorded = Manifest::load(&cache.manifest_path(&pipeline.name))?;
    let stats = StatCache::open(&cache.stat_cache_path(), opts.rehash);
    let mut ledger = Ledger::new(pipeline, opts, &selected, stats);
    let shared = Shared {
        pipeline,
        cache,
        opts,
        events: EventLog::open(opts.events.as_deref())?,
        bars: Bars::new(opts.progress),
    };
    std::thread::scope(|scope| ledger.drive(&shared, scope))?;
    let _ = ledger
        .stats
        .save(&cache.stat_cache_path(), &cache.tmp_dir());
    let manifest = if opts.dry_run {
        Ok(false)
    } else {
        record::record_results(pipeline, cache, recorded.as_ref(), &ledger.results())
    };
    Ok(ledger.report(pipeline, manifest))
}

fn check_forced(pipeline: &Pipeline, force: &[String]) -> Result<(), RunError> {
    match force.iter().find(|f| pipeline.index_of(f).is_none()) {
        Some(stage) => Err(RunError::UnknownForced {
            stage: stage.clone(),
            file: pipeline.file.clone(),
        }),
        None => Ok(()),
    }
}

/// What every stage's thread may read, for the whole run.
struct Shared<'a> {
    pipeline: &'a Pipeline,
    cache: &'a Cache,
    opts: &'a RunOptions,
    events: EventLog,
    bars: Bars,
}

/// What a worker thread sends back.
struct Finished {
    index: usize,
    result: Result<Entry, ExecError>,
}

/// What the run knows of one stage beyond the scheduler's state.
#[derive(Default)]
struct Track {
    /// Its plan, from settling to the end of its run.
    planned: Option<Planned>,
    /// Its result in this run (cached or ran), with the plan it answers.
    result: Option<(Planned, Entry)>,
    /// Why it runs, or what was wrong with its cached result.
    note: Option<String>,
    failure: Option<String>,
    started: Option<Instant>,
    wall_s: Option<f64>,
}

impl Track {
    /// Forgets what settling and running found (the stage settles again).
    fn unsettle(&mut self) {
        self.planned = None;
        self.result = None;
        self.note = None;
    }
}

/// The driver's changing state: the scheduler, what each stage has, the stat cache.
struct Ledger {
    scheduler: Scheduler,
    tracks: Vec<Track>,
    stats: StatCache,
}

impl Ledger {
    fn new(pipeline: &Pipeline, opts: &RunOptions, selected: &[bool], stats: StatCache) -> Ledger {
        let nodes = pipeline
            .stages
            .iter()
            .zip(selected)
            .map(|(stage, &selected)| Node {
                upstream: stage
                    .inputs
                    .iter()
                    .map(|input| pipeline.index_of(&input.stage).expect("resolved input"))
                    .collect(),
                uses_device: stage.kind.uses_device,
                selected,
            })
            .collect();
        let order = pipeline.dag.topological_order();
        Ledger {
            scheduler: Scheduler::new(nodes, order, opts.jobs),
            tracks: pipeline.stages.iter().map(|_| Track::default()).collect(),
            stats,
        }
    }

    /// Settle what is ready, start what may start, take in what finished; until every stage
    /// has ended.
    fn drive<'scope, 'env>(
        &mut self,
        shared: &'env Shared<'env>,
        scope: &'scope Scope<'scope, 'env>,
    ) -> Result<(), RunError> {
        let (tx, rx) = mpsc::channel::<Finished>();
        loop {
            self.settle_ready(shared);
            self.notice_cancellation();
            for i in self.scheduler.launch() {
                let job = self.job(shared, i);
                self.tracks[i].started = Some(Instant::now());
                spawn(scope, shared, job, tx.clone());
            }
            match self.scheduler.poll() {
                Poll::Done => return Ok(()),
                Poll::Stalled => return Err(self.stalled(shared.pipeline)),
                Poll::Busy => {}
            }
            if let Ok(done) = rx.recv_timeout(Duration::from_millis(100)) {
                self.finish(shared, done);
            }
        }
    }

    fn notice_cancellation(&mut self) {
        if CANCELLED.load(Ordering::Relaxed) {
            // A stage cancelled before it started gives no reason to run.
            for i in self.scheduler.cancel() {
                self.tracks[i].note = None;
            }
        }
    }

    fn settle_ready(&mut self, shared: &Shared) {
        loop {
            self.notice_cancellation();
            let Some(ready) = self.scheduler.next_to_settle() else {
                return;
            };
            let settlement = self.settle(shared, ready);
            self.scheduler.settled(ready.stage, settlement);
        }
    }

    /// Decides what happens to a stage whose inputs all have results: the cache's answer,
    /// unless it is forced or must be recomputed.
    fn settle(&mut self, shared: &Shared, ready: Ready) -> Settlement {
        let Shared {
            pipeline,
            cache,
            opts,
            ..
        } = shared;
        let i = ready.stage;
        let stage = &pipeline.stages[i];
        let must_run = if ready.recompute {
            Some("cached output found corrupt by a consumer")
        } else if opts.force_all || opts.force.contains(&stage.id) {
            Some("forced")
        } else {
            None
        };
        let check = match must_run {
            Some(_) => CacheCheck::Skip,
            None => CacheCheck::Repair,
        };
        let upstream = upstream_entries(&self.tracks, pipeline, i);
        let assessment = plan::assess(stage, &upstream, cache, &mut self.stats, check);
        let track = &mut self.tracks[i];
        track.unsettle();
        let planned = match assessment {
            Assessment::CannotPlan(e) => {
                warn(
                    pipeline
                        .stage_failure(i, &e.to_string(), None)
                        .to_string()
                        .trim_end(),
                );
                track.failure = Some(e.to_string());
                return Settlement::Failed;
            }
            Assessment::Hit(planned, entry) => {
                track.result = Some((planned, entry));
                return Settlement::Cached;
            }
            Assessment::Damaged(planned, damage) => {
                if !matches!(damage, Damage::Missing(_)) {
                    warn(&format!(
                        "warning: stage {}: {damage}; removed, recomputing",
                        stage.id
                    ));
                }
                track.note = Some(damage.to_string());
                planned
            }
            Assessment::MustRun(planned) => {
                track.note = must_run.map(str::to_string);
                planned
            }
        };
        if opts.dry_run {
            return Settlement::WouldRun;
        }
        track.planned = Some(planned);
        Settlement::Run
    }

    fn job<'a>(&self, shared: &Shared<'a>, i: usize) -> Job<'a> {
        let planned = self.tracks[i]
            .planned
            .as_ref()
            .expect("queued stage is planned");
        Job {
            pipeline: shared.pipeline,
            cache: shared.cache,
            index: i,
            fingerprint: planned.fingerprint.clone(),
            upstream: upstream_entries(&self.tracks, shared.pipeline, i)
                .into_iter()
                .cloned()
                .collect(),
            device: shared.pipeline.stages[i]
                .device
                .unwrap_or(shared.opts.device),
            offline: shared.opts.offline,
        }
    }

    /// Takes in a stage that came back from its worker thread.
    fn finish(&mut self, shared: &Shared, done: Finished) {
        let i = done.index;
        let id = &shared.pipeline.stages[i].id;
        let track = &mut self.tracks[i];
        let elapsed = track.started.expect("started").elapsed().as_secs_f64();
        track.wall_s = Some(elapsed);
        let error = match done.result {
            Ok(entry) => {
                tracing::info!(stage = %id, seconds = elapsed, "ran");
                shared
                    .bars
                    .mention(&format!("  ran {id} in {}", human_duration(elapsed)));
                let planned = track.planned.take().expect("a running stage is planned");
                track.result = Some((planned, entry));
                self.scheduler.finished(i, Finish::Ran);
                return;
            }
            Err(ExecError::Cancelled) => {
                self.scheduler.finished(i, Finish::Cancelled);
                return;
            }
            Err(e) => e,
        };
        let finish = match error {
            ExecError::UpstreamDamaged { upstream, .. } => Finish::UpstreamDamaged { upstream },
            _ => Finish::Failed,
        };
        match (self.scheduler.finished(i, finish), finish) {
            (Landing::Requeued, Finish::UpstreamDamaged { upstream }) => {
                let up = &shared.pipeline.stages[upstream].id;
                let warning = format!("  warning: {id}: {error}; recomputing {up}, then {id}");
                shared.bars.say(&warning);
                // Both settle again: the upstream stage reruns, this one waits for it.
                self.tracks[upstream].unsettle();
                self.tracks[i].unsettle();
            }
            _ => {
                let located = shared
                    .pipeline
                    .stage_failure(i, &error.to_string(), error.hint());
                shared.bars.say(located.to_string().trim_end());
                self.tracks[i].failure = Some(error.to_string());
            }
        }
    }

    fn stalled(&self, pipeline: &Pipeline) -> RunError {
        let stages = self.scheduler.unfinished();
        RunError::Stalled {
            stages: stages
                .into_iter()
                .map(|i| pipeline.stages[i].id.clone())
                .collect(),
        }
    }

    /// Each stage's result in this run, by index, for the manifest.
    fn results(&self) -> Vec<Option<(&Planned, &Entry)>> {
        self.tracks
            .iter()
            .map(|t| t.result.as_ref().map(|(p, e)| (p, e)))
            .collect()
    }

    fn report(&self, pipeline: &Pipeline, manifest: Result<bool, ManifestError>) -> RunReport {
        let stages = (0..pipeline.stages.len())
            .map(|i| self.stage_report(pipeline, i))
            .collect();
        let (manifest_written, manifest_error) = match manifest {
            Ok(written) => (written, None),
            Err(e) => (false, Some(e)),
        };
        RunReport {
            stages,
            manifest_written,
            manifest_error,
        }
    }

    fn stage_report(&self, pipeline: &Pipeline, i: usize) -> StageReport {
        let track = &self.tracks[i];
        let id = |u: usize| pipeline.stages[u].id.clone();
        let outcome = match self.scheduler.end(i).expect("every stage ended") {
            End::Cached => Outcome::Cached,
            End::Ran => Outcome::Ran,
            End::Failed => Outcome::Failed(track.failure.clone().unwrap_or_default()),
            End::Skipped { input } => {
                Outcome::Skipped(format!("input {} has no result", id(input)))
            }
            End::Cancelled => Outcome::Cancelled,
            End::WouldRun { .. } => Outcome::WouldRun,
            End::NotSelected => Outcome::NotSelected,
        };
        let note = match self.scheduler.end(i) {
            Some(End::WouldRun { after: Some(u) }) => Some(format!("after {}", id(u))),
            _ => track.note.clone(),
        };
        // Rows summed over the stage's tables; none for a stage that writes only files.
        let rows = track.result.as_ref().and_then(|(_, e)| {
            let counts: Vec<u64> = e.outputs.values().filter_map(|o| o.rows).collect();
            (!counts.is_empty()).then(|| counts.iter().sum())
        });
        StageReport {
            id: pipeline.stages[i].id.clone(),
            outcome,
            wall_time_s: track.wall_s,
            rows,
            note,
        }
    }
}

/// The entries of stage `i`'s inputs, in declared order (all have a result).
fn upstream_entries<'t>(tracks: &'t [Track], pipeline: &Pipeline, i: usize) -> Vec<&'t Entry> {
    pipeline.stages[i]
        .inputs
        .iter()
        .map(|input| {
            let u = pipeline.index_of(&input.stage).expect("resolved input");
            let (_, entry) = tracks[u].result.as_ref().expect("input has a result");
            entry
        })
        .collect()
}

/// Runs a job on a worker thread of the scope, with its progress bar and events.
fn spawn<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    shared: &'env Shared<'env>,
    job: Job<'env>,
    tx: Sender<Finished>,
) {
    let stage = &shared.pipeline.stages[job.index];
    let bar = shared.bars.stage_bar(&stage.id);
    scope.spawn(move || {
        shared
            .events
            .record("begin", &stage.id, stage.kind.uses_device);
        let result = job.execute(&BarProgress(bar.clone()));
        bar.finish_and_clear();
        shared
            .events
            .record("end", &stage.id, stage.kind.uses_device);
        let _ = tx.send(Finished {
            index: job.index,
            result,
        });
    });
}
