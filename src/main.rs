//! The `cairn` command line: parse arguments, choose the cache and the device, call the engine,
//! turn its results into text and an exit code.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use cairn::commands::status::{self, State};
use cairn::commands::verify::Verdict;
use cairn::exec::{self, RunOptions};
use cairn::spec::diagnostic::Diagnostics;
use cairn::spec::resolve::{Pipeline, parse_device};
use cairn::store::cache::{Cache, split_of};
use cairn::store::manifest::Manifest;
use cairn::{commands::show, commands::verify, graph, store::gc, store::tables};
use cairn_stages::Device;
use clap::{Parser, Subcommand};

/// Declarative, cached transformer NLP pipelines.
#[derive(Parser)]
#[command(name = "cairn", version, about)]
struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Cache directory. Default: `cache/` under the pipeline's root.
    #[arg(long, env = "CAIRN_CACHE_DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// Device for device stages: auto, cpu, cuda:N.
    #[arg(long, env = "CAIRN_DEVICE", default_value = "auto", global = true)]
    device: String,
    /// Never touch the network (also HF_HUB_OFFLINE=1).
    #[arg(long, global = true)]
    offline: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the stages whose results are not cached.
    Run {
        pipeline: PathBuf,
        /// Run only this stage (and what it needs). Repeatable.
        #[arg(long = "target")]
        targets: Vec<String>,
        /// With --target: also run every stage downstream of the targets.
        #[arg(long)]
        downstream: bool,
        /// Rerun this stage even if cached. Repeatable.
        #[arg(long)]
        force: Vec<String>,
        /// Rerun every stage.
        #[arg(long)]
        force_all: bool,
        /// Show what would run; run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Fail (exit 1) instead of running anything stale: for CI.
        #[arg(long)]
        frozen: bool,
        /// Stages run at once on the CPU. Default: the number of cores.
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Seconds to wait for another cairn using the same cache.
        #[arg(long, default_value_t = 600)]
        lock_timeout: u64,
        /// Hash every input file, model file and cached object by content, ignoring the stat
        /// cache (which trusts size + mtime + inode).
        #[arg(long)]
        rehash: bool,
        /// Write stage begin/end events as JSON lines to this file.
        #[arg(long, hide = true)]
        events: Option<PathBuf>,
    },
    /// Show which stages are fresh or stale, and why.
    Status {
        pipeline: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Hash every input file, model file and cached object by content, ignoring the stat
        /// cache (which trusts size + mtime + inode).
        #[arg(long)]
        rehash: bool,
    },
    /// Print the stage graph.
    Dag {
        pipeline: PathBuf,
        #[arg(long, default_value = "text", value_parser = ["text", "mermaid", "dot"])]
        format: String,
    },
    /// Predict on new texts with a model stage's cached result (e.g. a `finetune` stage):
    /// a label with probabilities per text, or a tag per word.
    Predict {
        pipeline: PathBuf,
        stage: String,
        /// The texts, one per argument.
        #[arg(required = true)]
        texts: Vec<String>,
    },
    /// Copy a stage's cached outputs (files, and tables as Parquet) into a directory, e.g. a
    /// fine-tuned model for `transformers`' `from_pretrained`.
    Export {
        pipeline: PathBuf,
        stage: String,
        /// Where to write (created if missing).
        dir: PathBuf,
    },
    /// Print the first rows of a stage's table.
    Show {
        pipeline: PathBuf,
        stage: String,
        /// Which split. Default: `train` if present, else the first.
        #[arg(long)]
        split: Option<String>,
        /// Rows to print.
        #[arg(long, default_value_t = 5)]
        head: usize,
        /// Only these columns (comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        /// Summarise the table instead (class distribution, words per text by class).
        #[arg(long)]
        stats: bool,
    },
    /// Print the metrics recorded in the manifest.
    Metrics {
        pipeline: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Recompute every stage into a temporary cache and compare with the manifest.
    Verify {
        pipeline: PathBuf,
        /// Relative tolerance for metrics when outputs are not byte-identical.
        #[arg(long, default_value_t = 1e-6)]
        tolerance: f64,
        #[arg(long, short)]
        jobs: Option<usize>,
    },
    /// Delete cached results that no manifest references.
    Gc {
        /// Show what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Locate the cache through this pipeline's root (else --cache-dir or ./cache).
        pipeline: Option<PathBuf>,
    },
    /// List the stage kinds.
    Kinds,
}

fn main() -> ExitCode {
    restore_sigpipe();
    install_signal_handlers();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(d) = e.downcast_ref::<Diagnostics>() {
                eprint!("{d}");
                if !d.to_string().ends_with('\n') {
                    eprintln!();
                }
                return ExitCode::from(2);
            }
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn offline(cli_flag: bool) -> bool {
    cli_flag
        || std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn choose_device(text: &str) -> anyhow::Result<Device> {
    let chosen = parse_device(text)
        .map_err(|e| anyhow::anyhow!("--device: {e} (use auto, cpu or cuda:N)"))?;
    Ok(match chosen {
        Some(d) => d,
        None if cairn_stages::cuda_compiled() => Device::Cuda(0),
        None => Device::Cpu,
    })
}

fn cache_for(cli_dir: &Option<PathBuf>, root: &Path) -> Cache {
    match cli_dir {
        Some(d) => Cache::new(d),
        // `./cache` reads better as `cache` in messages.
        None if root == Path::new(".") => Cache::new(Path::new("cache")),
        None => Cache::new(&root.join("cache")),
    }
}

fn jobs(j: Option<usize>) -> usize {
    j.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let offline = offline(cli.offline);
    let device = choose_device(&cli.device)?;
    match cli.command {
        Command::Run {
            pipeline,
            targets,
            downstream,
            force,
            force_all,
            dry_run,
            frozen,
            jobs: j,
            lock_timeout,
            rehash,
            events,
        } => {
            let p = Pipeline::load(&pipeline, offline)?;
            let cache = cache_for(&cli.cache_dir, &p.root);
            if frozen {
                let selected =
                    cairn::plan::selection(&p, &targets, downstream).map_err(anyhow::Error::msg)?;
                let statuses = status::status(&p, &cache, &selected, rehash)?;
                let stale: Vec<_> = statuses
                    .iter()
                    .filter(|s| s.state != State::Fresh)
                    .collect();
                if !stale.is_empty() {
                    eprintln!(
                        "error: --frozen: {} stage(s) are not fresh; nothing was run",
                        stale.len()
                    );
                    let owned: Vec<_> = stale.into_iter().cloned().collect();
                    eprint!("{}", status::render(&owned));
                    return Ok(ExitCode::from(1));
                }
            }
            let _lock = if dry_run {
                None
            } else {
                Some(cache.lock(Duration::from_secs(lock_timeout))?)
            };
            STOP_GRACEFULLY.store(true, Ordering::SeqCst);
            let opts = RunOptions {
                jobs: jobs(j),
                device,
                targets,
                downstream,
                force,
                force_all,
                dry_run,
                offline,
                events,
                progress: true,
                rehash,
            };
            let report = exec::run(&p, &cache, &opts)?;
            print!("{}", exec::summary(&report));
            if let Some(e) = &report.manifest_error {
                eprintln!("error: {e}");
            }
            let ran = report.count(&exec::Outcome::Ran);
            let cached = report.count(&exec::Outcome::Cached);
            println!(
                "{ran} ran, {cached} cached{}{}",
                if report.failed() {
                    ", some failed or were skipped"
                } else {
                    ""
                },
                if report.manifest_written {
                    format!("; manifest {}", cache.manifest_path(&p.name).display())
                } else {
                    String::new()
                }
            );
            if let Some(code) = stopped_by_signal() {
                eprintln!(
                    "interrupted: finished results are cached and recorded; run again to continue"
                );
                return Ok(code);
            }
            Ok(if report.failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Status {
            pipeline,
            json,
            rehash,
        } => {
            let p = Pipeline::load(&pipeline, offline)?;
            let cache = cache_for(&cli.cache_dir, &p.root);
            let statuses = status::status(&p, &cache, &vec![true; p.stages.len()], rehash)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&statuses)?);
            } else {
                print!("{}", status::render(&statuses));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dag { pipeline, format } => {
            let p = Pipeline::load(&pipeline, offline)?;
            print!("{}", graph::render(&p.stages, &p.dag, &format, &p.name));
            Ok(ExitCode::SUCCESS)
        }
        Command::Show {
            pipeline,
            stage,
            split,
            head,
            columns,
            stats,
        } => {
            let p = Pipeline::load(&pipeline, offline)?;
            let cache = cache_for(&cli.cache_dir, &p.root);
            let view = if stats {
                View::Stats
            } else {
                View::Head(head, columns)
            };
            show_stage(&p, &cache, &stage, split, view)
        }
        Command::Predict {
            pipeline,
            stage,
            texts,
        } => {
            let p = Pipeline::load(&pipeline, offline)?;
            let cache = cache_for(&cli.cache_dir, &p.root);
            print!(
                "{}",
                cairn::commands::predict::predict(&p, &cache, &stage, &texts)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            pipeline,
            stage,
            dir,
        } => {
            let p = Pipeline::load(&pipeline, offline)?;
            let cache = cache_for(&cli.cache_dir, &p.root);
            for path in cairn::commands::predict::export(&p, &cache, &stage, &dir)? {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Metrics { pipeline, json } => {
            let p = Pipeline::load(&pipeline, offline)?;
            let cache = cache_for(&cli.cache_dir, &p.root);
            let manifest = Manifest::load(&cache.manifest_path(&p.name))?
                .with_context(|| format!("no manifest for {}: run the pipeline first", p.name))?;
            let metrics: serde_json::Map<String, serde_json::Value> = manifest
                .stages
                .iter()
                .filter(|(_, r)| !r.metrics.is_empty())
                .map(|(id, r)| (id.clone(), serde_json::to_value(&r.metrics).expect("json")))
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&metrics)?);
            } else {
                for (id, m) in &metrics {
                    println!("{id}");
                    print_metrics(m, "  ");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            pipeline,
            tolerance,
            jobs: j,
        } => {
            let p = Pipeline::load(&pipeline, offline)?;
            let cache = cache_for(&cli.cache_dir, &p.root);
            STOP_GRACEFULLY.store(true, Ordering::SeqCst);
            let base = RunOptions {
                jobs: jobs(j),
                device,
                targets: vec![],
                downstream: false,
                force: vec![],
                force_all: true,
                dry_run: false,
                offline,
                events: None,
                progress: true,
                rehash: true,
            };
            let verdicts = verify::verify(&p, &cache, &base, tolerance)?;
            if let Some(code) = stopped_by_signal() {
                eprintln!("interrupted: verify did not finish");
                return Ok(code);
            }
            let mut bad = 0;
            for (id, v) in &verdicts {
                let text = match v {
                    Verdict::Identical => "identical".to_string(),
                    Verdict::SameMetrics => format!("same metrics within {tolerance}"),
                    Verdict::Different(d) => {
                        bad += 1;
                        format!("DIFFERENT: {d}")
                    }
                    Verdict::NotInManifest => {
                        bad += 1;
                        "not in the manifest".to_string()
                    }
                    Verdict::StaleManifest => {
                        bad += 1;
                        "the manifest records another fingerprint (stale): run the pipeline, then verify".to_string()
                    }
                    Verdict::NotRecomputed(why) => {
                        bad += 1;
                        format!("not recomputed: {why}")
                    }
                };
                println!("{id}: {text}");
            }
            Ok(if bad > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Gc { dry_run, pipeline } => {
            let cache = match (&cli.cache_dir, pipeline) {
                (Some(d), _) => Cache::new(d),
                (None, Some(p)) => cache_for(&None, &Pipeline::load(&p, offline)?.root),
                (None, None) => Cache::new(Path::new("cache")),
            };
            let _lock = cache.lock(Duration::from_secs(600))?;
            let r = gc::gc(&cache, dry_run)?;
            println!(
                "{} {} entries and {} objects ({}); kept {} entries referenced by manifests",
                if dry_run { "would delete" } else { "deleted" },
                r.entries_removed,
                r.objects_removed,
                human_bytes(r.bytes_removed),
                r.kept_entries
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Kinds => {
            for k in cairn_stages::registry::KINDS {
                let device = if k.uses_device { " [device]" } else { "" };
                println!("{:16} v{}  {}{device}", k.name, k.version, k.summary);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What `cairn show` prints of a table.
enum View {
    Head(usize, Vec<String>),
    Stats,
}

fn show_stage(
    p: &Pipeline,
    cache: &Cache,
    stage: &str,
    split: Option<String>,
    view: View,
) -> anyhow::Result<ExitCode> {
    let Some(index) = p.index_of(stage) else {
        anyhow::bail!("`{stage}` is not a stage of {}", p.file.display());
    };
    let manifest = Manifest::load(&cache.manifest_path(&p.name))?.unwrap_or_default();
    let Some(record) = manifest.stages.get(stage) else {
        anyhow::bail!(
            "stage {stage} has not run yet: `cairn run {} --target {stage}`",
            p.file.display()
        );
    };
    let selected = p.dag.select(&[index], false);
    let statuses = status::status(p, cache, &selected, false)?;
    if let Some(s) = statuses
        .iter()
        .find(|s| s.stage == stage && s.state != State::Fresh)
    {
        eprintln!(
            "note: {stage} is {} ({}); showing its last recorded result",
            s.state.label(),
            s.reasons.join("; ")
        );
    }
    let splits: Vec<&str> = record.outputs.keys().filter_map(|k| split_of(k)).collect();
    if splits.is_empty() {
        let files: Vec<&String> = record.outputs.keys().collect();
        println!("{stage} has no tables; its outputs:");
        for f in files {
            println!("  {f}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let split = match split {
        Some(s) if splits.contains(&s.as_str()) => s,
        Some(s) => anyhow::bail!(
            "stage {stage} has no split `{s}` (it has: {})",
            splits.join(", ")
        ),
        None if splits.contains(&"train") => "train".to_string(),
        None => splits[0].to_string(),
    };
    let out = &record.outputs[&cairn::store::cache::table_output_name(&split)];
    let bytes = cache.read_verified(&out.digest).map_err(|_| {
        anyhow::anyhow!(
            "the cached table {split} of {stage} is missing or corrupt: run the pipeline again"
        )
    })?;
    let batch = tables::from_parquet(bytes)?;
    println!("# {stage} / {split}");
    match view {
        View::Head(head, columns) => {
            print!("{}", show::metadata(&batch));
            print!("{}", show::head(&batch, head, &columns)?);
        }
        // What a summary means depends on the data, so the stages crate writes it.
        View::Stats => print!("{}", cairn_stages::columns::inspect::describe(&batch)),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_metrics(v: &serde_json::Value, indent: &str) {
    if let serde_json::Value::Object(map) = v {
        for (k, v) in map {
            match v {
                serde_json::Value::Object(_) => {
                    println!("{indent}{k}:");
                    print_metrics(v, &format!("{indent}  "));
                }
                serde_json::Value::Number(n) => match n.as_f64() {
                    Some(f) if n.is_f64() => println!("{indent}{k}: {f:.4}"),
                    _ => println!("{indent}{k}: {n}"),
                },
                other => println!("{indent}{k}: {other}"),
            }
        }
    }
}

fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}

/// Which signal asked us to stop (0: none yet).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Set by commands that stop gracefully (run, verify); the others exit at once on a signal.
static STOP_GRACEFULLY: AtomicBool = AtomicBool::new(false);

/// Installed first thing, so no signal finds the default handler. For `run` and `verify`: the
/// first SIGINT (Ctrl-C), SIGTERM (`timeout`, CI cancellation, `docker stop`) or SIGHUP (a
/// closed terminal): stop starting stages, let running ones notice, record what finished in the
/// manifest, exit 128 + the signal's number (130, 143, 129). A second one: exit at once — the
/// cache stays consistent either way, since every write is atomic.
fn install_signal_handlers() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if !STOP_GRACEFULLY.load(Ordering::SeqCst)
                || exec::CANCELLED.swap(true, Ordering::SeqCst)
            {
                std::process::exit(128 + signal);
            }
            STOP_SIGNAL.store(signal, Ordering::SeqCst);
            let name = signal_hook::low_level::signal_name(signal).unwrap_or("signal");
            // A closed terminal must not turn this message into a panic.
            let _ = writeln!(
                std::io::stderr(),
                "\n{name}: stopping after running stages notice (send it again to quit now)"
            );
        }
    });
}

/// The exit code for a run a signal stopped: 128 + its number, as shells report it.
fn stopped_by_signal() -> Option<ExitCode> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(ExitCode::from((128 + signal) as u8)),
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`cairn metrics P | head`) would panic.
/// Restore the default: the process ends quietly, as other Unix tools do. Every cache write is
/// atomic, so dying mid-print never leaves a half-written entry.
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread starts; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
