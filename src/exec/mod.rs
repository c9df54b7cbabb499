//! Running a pipeline: stages start as soon as their inputs are ready; CPU stages run side by
//! side up to `--jobs`; device stages share one device queue (one at a time). A failed stage
//! skips its dependents while independent branches finish; the exit code is decided at the end.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_stages::{Context, Device, Input, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::fingerprint::StatCache;
use crate::plan::{self, Lookup, Planned};
use crate::spec::resolve::Pipeline;
use crate::store::cache::{
    Cache, Damage, Entry, FILE_PREFIX, OutputRecord, TABLE_PREFIX, table_output_name,
};
use crate::store::manifest::Manifest;
use crate::store::tables;

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

/// How a stage ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Its result was already in the cache.
    Cached,
    Ran,
    /// Not run because an input did not produce a result.
    Skipped(String),
    Failed(String),
    Cancelled,
    /// `--dry-run`: would run.
    WouldRun,
    /// Not selected by `--target`.
    NotSelected,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Cached => "cached",
            Outcome::Ran => "ran",
            Outcome::Skipped(_) => "skipped",
            Outcome::Failed(_) => "FAILED",
            Outcome::Cancelled => "cancelled",
            Outcome::WouldRun => "would run",
            Outcome::NotSelected => "-",
        }
    }
}

pub struct StageReport {
    pub id: String,
    pub outcome: Outcome,
    pub wall_time_s: Option<f64>,
    pub rows: Option<u64>,
    /// Why it ran, or what was wrong with its cached result.
    pub note: Option<String>,
}

pub struct RunReport {
    pub stages: Vec<StageReport>,
    pub manifest_written: bool,
    /// The manifest could not be written (the results are cached all the same).
    pub manifest_error: Option<String>,
}

impl RunReport {
    pub fn failed(&self) -> bool {
        self.manifest_error.is_some()
            || self
                .stages
                .iter()
                .any(|s| matches!(s.outcome, Outcome::Failed(_) | Outcome::Skipped(_)))
    }
    pub fn cancelled(&self) -> bool {
        self.stages.iter().any(|s| s.outcome == Outcome::Cancelled)
    }
    pub fn count(&self, label: &str) -> usize {
        self.stages
            .iter()
            .filter(|s| s.outcome.label() == label)
            .count()
    }
}

/// Start/end events with one global sequence, written by the thread that runs the stage.
struct EventLog {
    file: Option<Mutex<std::fs::File>>,
    seq: AtomicU64,
    t0: Instant,
}

impl EventLog {
    fn open(path: Option<&Path>) -> anyhow::Result<EventLog> {
        let file = match path {
            Some(p) => Some(Mutex::new(fs_err::File::create(p)?.into_parts().0)),
            None => None,
        };
        Ok(EventLog {
            file,
            seq: AtomicU64::new(0),
            t0: Instant::now(),
        })
    }
    fn record(&self, event: &str, stage: &str, device: bool) {
        if let Some(f) = &self.file {
            let mut f = f.lock().expect("event log");
            let seq = self.seq.fetch_add(1, Ordering::SeqCst);
            let line = serde_json::json!({
                "seq": seq, "event": event, "stage": stage, "device": device,
                "t_ms": self.t0.elapsed().as_secs_f64() * 1e3,
            });
            let _ = writeln!(f, "{line}");
        }
    }
}

enum State {
    Waiting,
    Queued(Planned, Option<String>),
    Running(Planned, Option<String>),
    Done(Outcome, Option<(Planned, Entry)>, Option<String>),
}

/// What a worker thread sends back.
struct Finished {
    index: usize,
    result: Result<Entry, ExecError>,
}

/// Why a stage produced no result.
enum ExecError {
    Cancelled,
    /// An upstream object failed its digest check as the stage read it (changed on disk behind
    /// the stat cache's back): the upstream stage is recomputed, then this one.
    UpstreamDamaged {
        upstream: usize,
        message: String,
    },
    Failed(String),
}

impl From<String> for ExecError {
    fn from(message: String) -> Self {
        ExecError::Failed(message)
    }
}

struct BarProgress(ProgressBar);

impl Progress for BarProgress {
    fn set_total(&self, total: u64, unit: &str) {
        // A new phase (e.g. the next epoch) starts its bar and ETA from zero.
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(unit.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, msg: &str) {
        self.0.set_message(msg.to_string());
    }
    fn println(&self, line: &str) {
        if self.0.is_hidden() {
            warn(line);
        } else {
            self.0.println(line);
        }
    }
}

pub fn run(pipeline: &Pipeline, cache: &Cache, opts: &RunOptions) -> anyhow::Result<RunReport> {
    let selected =
        plan::selection(pipeline, &opts.targets, opts.downstream).map_err(anyhow::Error::msg)?;
    for f in &opts.force {
        if pipeline.index_of(f).is_none() {
            anyhow::bail!("--force {f}: no such stage in {}", pipeline.file.display());
        }
    }
    // A manifest that cannot be read (a bad merge) is reported before hours of work, not after.
    let recorded = Manifest::load(&cache.manifest_path(&pipeline.name))?;
    let mut stats = StatCache::open(&cache.stat_cache_path(), opts.rehash);
    let events = EventLog::open(opts.events.as_deref())?;
    let multi = MultiProgress::with_draw_target(if opts.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });

    let n = pipeline.stages.len();
    let order = pipeline.dag.topological_order();
    let mut state: Vec<State> = (0..n).map(|_| State::Waiting).collect();
    for i in 0..n {
        if !selected[i] {
            state[i] = State::Done(Outcome::NotSelected, None, None);
        }
    }
    let mut cpu_queue: VecDeque<usize> = VecDeque::new();
    let mut device_queue: VecDeque<usize> = VecDeque::new();
    let mut cpu_running = 0usize;
    let mut device_busy = false;
    let mut started: BTreeMap<usize, Instant> = BTreeMap::new();
    let mut wall: BTreeMap<usize, f64> = BTreeMap::new();
    // Stages whose cached result proved corrupt when a consumer read it: rerun once each.
    let mut recompute: BTreeSet<usize> = BTreeSet::new();
    let (tx, rx) = mpsc::channel::<Finished>();

    std::thread::scope(|scope| -> anyhow::Result<()> {
        loop {
            // Settle every stage whose inputs are all done: cached, skipped, or queued.
            let mut changed = true;
            while changed {
                changed = false;
                for &i in &order {
                    if !matches!(state[i], State::Waiting) {
                        continue;
                    }
                    let ups = pipeline.dag.upstream(i);
                    if ups.iter().any(|&u| !matches!(state[u], State::Done(..))) {
                        continue;
                    }
                    changed = true;
                    state[i] = settle(pipeline, cache, opts, &mut stats, &state, &recompute, i);
                    match &state[i] {
                        State::Queued(..) if pipeline.stages[i].kind.uses_device => {
                            device_queue.push_back(i)
                        }
                        State::Queued(..) => cpu_queue.push_back(i),
                        _ => {}
                    }
                }
            }

            // Start what the slots allow.
            let cancelled = CANCELLED.load(Ordering::Relaxed);
            let mut launch = Vec::new();
            if !cancelled {
                while cpu_running < opts.jobs.max(1) {
                    let Some(i) = cpu_queue.pop_front() else {
                        break;
                    };
                    cpu_running += 1;
                    launch.push(i);
                }
                if !device_busy && let Some(i) = device_queue.pop_front() {
                    device_busy = true;
                    launch.push(i);
                }
            } else {
                for i in cpu_queue.drain(..).chain(device_queue.drain(..)) {
                    state[i] = State::Done(Outcome::Cancelled, None, None);
                }
            }
            for i in launch {
                let State::Queued(planned, note) = std::mem::replace(&mut state[i], State::Waiting)
                else {
                    unreachable!("launched stage is queued")
                };
                let inputs = upstream_entries(pipeline, &state, i);
                let stage = &pipeline.stages[i];
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>14.bold} {spinner} [{bar:30}] {pos}/{len} {msg} {elapsed}/{eta}",
                    )
                    .expect("template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(stage.id.clone());
                bar.enable_steady_tick(Duration::from_millis(200));
                let tx = tx.clone();
                let fingerprint = planned.fingerprint.clone();
                let events = &events;
                let device = stage.device.unwrap_or(opts.device);
                let offline = opts.offline;
                started.insert(i, Instant::now());
                scope.spawn(move || {
                    events.record("begin", &stage.id, stage.kind.uses_device);
                    let progress = BarProgress(bar.clone());
                    let result = execute(
                        pipeline,
                        cache,
                        i,
                        &fingerprint,
                        &inputs,
                        device,
                        offline,
                        &progress,
                    );
                    bar.finish_and_clear();
                    events.record("end", &stage.id, stage.kind.uses_device);
                    let _ = tx.send(Finished { index: i, result });
                });
                state[i] = State::Running(planned, note);
            }

            let running = cpu_running + usize::from(device_busy);
            let pending = state
                .iter()
                .any(|s| matches!(s, State::Waiting | State::Queued(..)));
            if running == 0 && !pending {
                break;
            }
            if running == 0 && pending && cpu_queue.is_empty() && device_queue.is_empty() {
                // Nothing can make progress (should not happen in a DAG); do not hang.
                anyhow::bail!("internal error: scheduler stalled");
            }
            let Ok(done) = rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            let i = done.index;
            if pipeline.stages[i].kind.uses_device {
                device_busy = false;
            } else {
                cpu_running -= 1;
            }
            let elapsed = started[&i].elapsed().as_secs_f64();
            wall.insert(i, elapsed);
            let State::Running(planned, note) = std::mem::replace(&mut state[i], State::Waiting)
            else {
                unreachable!("finished stage was running")
            };
            let id = &pipeline.stages[i].id;
            state[i] = match done.result {
                Ok(entry) => {
                    tracing::info!(stage = %id, seconds = elapsed, "ran");
                    let _ = multi.println(format!("  ran {id} in {}", human_duration(elapsed)));
                    State::Done(Outcome::Ran, Some((planned, entry)), note)
                }
                Err(ExecError::Cancelled) => State::Done(Outcome::Cancelled, None, note),
                Err(ExecError::UpstreamDamaged { upstream, message })
                    if recompute.insert(upstream) =>
                {
                    let up = &pipeline.stages[upstream].id;
                    say(
                        &multi,
                        &format!("  warning: {id}: {message}; recomputing {up}, then {id}"),
                    );
                    // Both settle again: the upstream stage reruns, this one waits for it.
                    state[upstream] = State::Waiting;
                    State::Waiting
                }
                Err(ExecError::UpstreamDamaged { message, .. } | ExecError::Failed(message)) => {
                    say(&multi, &format!("  FAILED {id}: {message}"));
                    State::Done(Outcome::Failed(message), None, note)
                }
            };
        }
        Ok(())
    })?;

    let _ = stats.save(&cache.stat_cache_path(), &cache.tmp_dir());

    let (manifest_written, manifest_error) = if opts.dry_run {
        (false, None)
    } else {
        match record_results(pipeline, cache, recorded.as_ref(), &state) {
            Ok(written) => (written, None),
            Err(e) => (false, Some(e)),
        }
    };

    let stages = pipeline
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let State::Done(outcome, result, note) = &state[i] else {
                unreachable!("every stage is done")
            };
            // Rows summed over the stage's tables; none for a stage that writes only files.
            let rows = result.as_ref().and_then(|(_, e)| {
                let counts: Vec<u64> = e.outputs.values().filter_map(|o| o.rows).collect();
                (!counts.is_empty()).then(|| counts.iter().sum())
            });
            StageReport {
                id: s.id.clone(),
                outcome: outcome.clone(),
                wall_time_s: wall.get(&i).copied(),
                rows,
                note: note.clone(),
            }
        })
        .collect();
    Ok(RunReport {
        stages,
        manifest_written,
        manifest_error,
    })
}

/// Writes the manifest: every stage that has a result now, old records of the others. Nothing
/// is written when nothing changed, nor a first manifest with no stage in it (a run that failed
/// at once leaves no trace).
/// `old` is the manifest as read before the run (the cache lock keeps it current).
fn record_results(
    pipeline: &Pipeline,
    cache: &Cache,
    old: Option<&Manifest>,
    state: &[State],
) -> Result<bool, String> {
    let path = cache.manifest_path(&pipeline.name);
    let mut manifest = Manifest {
        pipeline: pipeline.name.clone(),
        cairn_version: env!("CARGO_PKG_VERSION").to_string(),
        stages: Default::default(),
    };
    for (i, stage) in pipeline.stages.iter().enumerate() {
        let record = match &state[i] {
            State::Done(_, Some((planned, entry)), _) => Some(plan::record(stage, planned, entry)),
            _ => old.and_then(|m| m.stages.get(&stage.id).cloned()),
        };
        if let Some(r) = record {
            manifest.stages.insert(stage.id.clone(), r);
        }
    }
    let changed = match old {
        Some(old) => *old != manifest,
        None => !manifest.stages.is_empty(),
    };
    if !changed {
        return Ok(false);
    }
    manifest.save(cache).map_err(|e| {
        format!(
            "cannot write the manifest {}: {e}\nhint: the results are cached; free space or fix permissions, then run again to record them",
            path.display()
        )
    })
}

/// Decides what happens to a stage whose inputs are all done.
fn settle(
    pipeline: &Pipeline,
    cache: &Cache,
    opts: &RunOptions,
    stats: &mut StatCache,
    state: &[State],
    recompute: &BTreeSet<usize>,
    i: usize,
) -> State {
    let stage = &pipeline.stages[i];
    if CANCELLED.load(Ordering::Relaxed) {
        return State::Done(Outcome::Cancelled, None, None);
    }
    for input in &stage.inputs {
        let u = pipeline.index_of(&input.stage).expect("resolved input");
        match &state[u] {
            State::Done(_, Some(_), _) => {}
            State::Done(Outcome::WouldRun, ..) => {
                return State::Done(
                    Outcome::WouldRun,
                    None,
                    Some(format!("after {}", input.stage)),
                );
            }
            State::Done(Outcome::Cancelled, ..) => {
                return State::Done(Outcome::Cancelled, None, None);
            }
            _ => {
                return State::Done(
                    Outcome::Skipped(format!("input {} has no result", input.stage)),
                    None,
                    None,
                );
            }
        }
    }
    let entries = upstream_entries(pipeline, state, i);
    let refs: Vec<&Entry> = entries.iter().collect();
    let planned = match plan::plan(stage, &refs, stats) {
        Ok(p) => p,
        Err(e) => {
            warn(&format!("  FAILED {}: {e}", stage.id));
            return State::Done(Outcome::Failed(e), None, None);
        }
    };
    let mut note = if recompute.contains(&i) {
        Some("cached output found corrupt by a consumer".to_string())
    } else if opts.force_all || opts.force.contains(&stage.id) {
        Some("forced".to_string())
    } else {
        None
    };
    if note.is_none() {
        match plan::lookup(cache, &planned, stats, true) {
            Lookup::Hit(entry) => {
                return State::Done(Outcome::Cached, Some((planned, entry)), None);
            }
            Lookup::Damaged(damage) => {
                if !matches!(damage, Damage::Missing(_)) {
                    warn(&format!(
                        "warning: stage {}: {damage}; removed, recomputing",
                        stage.id
                    ));
                }
                note = Some(damage.to_string());
            }
            Lookup::Miss => {}
        }
    }
    if opts.dry_run {
        return State::Done(Outcome::WouldRun, None, note);
    }
    State::Queued(planned, note)
}

/// The entries of stage `i`'s inputs, in declared order (all are done with a result).
fn upstream_entries(pipeline: &Pipeline, state: &[State], i: usize) -> Vec<Entry> {
    pipeline.stages[i]
        .inputs
        .iter()
        .map(|input| {
            let u = pipeline.index_of(&input.stage).expect("resolved input");
            match &state[u] {
                State::Done(_, Some((_, e)), _) => e.clone(),
                _ => unreachable!("input has a result"),
            }
        })
        .collect()
}

/// Runs one stage and stores its outputs. Called on a worker thread.
#[allow(clippy::too_many_arguments)]
fn execute(
    pipeline: &Pipeline,
    cache: &Cache,
    i: usize,
    fingerprint: &str,
    upstream: &[Entry],
    device: Device,
    offline: bool,
    progress: &dyn Progress,
) -> Result<Entry, ExecError> {
    let stage = &pipeline.stages[i];
    let start = Instant::now();
    let inputs = load_inputs(pipeline, cache, i, upstream)?;
    let out_dir = tempfile::Builder::new()
        .prefix(&format!("{}-", stage.id))
        .tempdir_in(cache.tmp_dir())
        .map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    let ctx = Context {
        stage: &stage.id,
        root: &pipeline.root,
        inputs: &inputs,
        externals: &stage.externals,
        out_dir: out_dir.path(),
        device,
        offline,
        progress,
        cancelled: &CANCELLED,
    };
    let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stage.parsed.run(&ctx)))
        .map_err(|panic| {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            ExecError::Failed(format!("the stage panicked: {msg}"))
        })?
        .map_err(|e| match e {
            cairn_stages::StageError::Cancelled => ExecError::Cancelled,
            cairn_stages::StageError::Failed {
                message,
                hint: Some(hint),
            } => ExecError::Failed(format!("{message}\nhint: {hint}")),
            other => ExecError::Failed(other.to_string()),
        })?;

    let mut outputs = BTreeMap::new();
    for (split, batch) in &output.tables {
        let bytes =
            tables::to_parquet(batch).map_err(|e| format!("cannot write table {split}: {e}"))?;
        let digest = cache
            .put_bytes(&bytes)
            .map_err(|e| format!("cannot store table {split}: {e}"))?;
        outputs.insert(
            table_output_name(split),
            OutputRecord {
                digest,
                bytes: bytes.len() as u64,
                rows: Some(batch.num_rows() as u64),
            },
        );
    }
    let mut files = Vec::new();
    walk(out_dir.path(), &mut files).map_err(|e| format!("cannot list output files: {e}"))?;
    for file in files {
        let rel = file
            .strip_prefix(out_dir.path())
            .expect("inside")
            .to_string_lossy()
            .to_string();
        let bytes = fs_err::metadata(&file).map_err(|e| e.to_string())?.len();
        let digest = cache
            .put_file(&file)
            .map_err(|e| format!("cannot store {rel}: {e}"))?;
        outputs.insert(
            format!("{FILE_PREFIX}{rel}"),
            OutputRecord {
                digest,
                bytes,
                rows: None,
            },
        );
    }
    let entry = Entry {
        fingerprint: fingerprint.to_string(),
        outputs,
        metrics: output.metrics,
        wall_time_s: (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        run_facts: output.run_facts,
    };
    // The entry last: until it exists, the objects above are unreferenced and the stage reruns.
    cache
        .write_entry(&entry)
        .map_err(|e| format!("cannot record the result: {e}"))?;
    Ok(entry)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for item in fs_err::read_dir(dir)? {
        let path = item?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// Upstream outputs as the stage sees them: tables decoded and files as paths into the store,
/// every object's digest checked by content first (the stat cache may have been fooled).
fn load_inputs(
    pipeline: &Pipeline,
    cache: &Cache,
    i: usize,
    upstream: &[Entry],
) -> Result<Vec<Input>, ExecError> {
    let stage = &pipeline.stages[i];
    let mut inputs = Vec::new();
    for (input, entry) in stage.inputs.iter().zip(upstream) {
        plan::input_digest(entry, input)?;
        let damaged = |name: &str, d: Damage| ExecError::UpstreamDamaged {
            upstream: pipeline.index_of(&input.stage).expect("resolved input"),
            message: format!(
                "the cached output {name} of stage {} is {}",
                input.stage,
                match d {
                    Damage::Missing(_) => "missing",
                    _ => "corrupt (removed)",
                }
            ),
        };
        let mut loaded = Input {
            stage: input.stage.clone(),
            ..Default::default()
        };
        for (name, out) in &entry.outputs {
            if let Some(split) = crate::store::cache::split_of(name) {
                if input.split.as_deref().is_some_and(|s| s != split) {
                    continue;
                }
                let bytes = cache
                    .read_verified(&out.digest)
                    .map_err(|d| damaged(name, d))?;
                let batch = tables::from_parquet(bytes)
                    .map_err(|e| format!("input {input}: cannot read {name}: {e}"))?;
                loaded.tables.insert(split.to_string(), batch);
            } else if let Some(rel) = name.strip_prefix(FILE_PREFIX) {
                if input.split.is_some() {
                    continue;
                }
                let path = cache
                    .verified_object_path(&out.digest)
                    .map_err(|d| damaged(name, d))?;
                loaded.files.insert(rel.to_string(), path);
            } else if !name.starts_with(TABLE_PREFIX) {
                return Err(format!("input {input}: unknown output {name}").into());
            }
        }
        inputs.push(loaded);
    }
    Ok(inputs)
}

/// A lasting line above the progress bars, or on stderr when there are none (not a terminal):
/// a failure's whole message, with its hint, must reach CI logs too.
fn say(multi: &MultiProgress, line: &str) {
    if multi.is_hidden() {
        warn(line);
    } else {
        let _ = multi.println(line);
    }
}

/// Writes a warning to stderr; a closed terminal (SIGHUP) must not turn it into a panic.
fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn human_duration(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

/// The end-of-run table for people.
pub fn summary(report: &RunReport) -> String {
    let width = report
        .stages
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:width$}  {:9}  {:>8}  {:>9}  note\n",
        "stage", "outcome", "time", "rows"
    );
    for s in &report.stages {
        if s.outcome == Outcome::NotSelected {
            continue;
        }
        let time = s
            .wall_time_s
            .map(human_duration)
            .unwrap_or_else(|| "-".into());
        let rows = s.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
        let note = match (&s.outcome, &s.note) {
            (Outcome::Failed(e), _) => e.lines().next().unwrap_or_default().to_string(),
            (Outcome::Skipped(why), _) => why.clone(),
            (_, Some(n)) => n.clone(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:width$}  {:9}  {:>8}  {:>9}  {note}\n",
            s.id,
            s.outcome.label(),
            time,
            rows
        ));
    }
    out
}
