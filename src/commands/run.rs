//! `cairn run`: run the stages whose results are not cached, print what happened, and exit 1
//! when a stage failed. Also the one place [`RunOptions`] are made, which `verify` shares.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::commands::context::Context;
use crate::commands::signals;
use crate::commands::status::{self, State};
use crate::exec::{self, RunOptions};
use crate::spec::resolve::Pipeline;
use crate::store::cache::Cache;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn run pipelines/emotion.yaml
  cairn run pipelines/emotion.yaml --target logreg          # logreg and what it needs
  cairn run pipelines/emotion.yaml --force finetune         # rerun one stage though cached
  cairn run pipelines/emotion.yaml --dry-run                # what would run, and why
  cairn run pipelines/emotion.yaml --frozen                 # CI: fail if anything is stale
  cairn run pipelines/emotion.yaml --device cuda:0")]
pub struct Args {
    /// The pipeline file (YAML; `cairn schema` describes it).
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
}

/// Options that run every stage not cached, on `ctx`'s device, `jobs` at once (default: the
/// number of cores), showing progress. `run` narrows them with its flags; `verify` forces all.
pub fn options(ctx: &Context, jobs: Option<usize>) -> RunOptions {
    RunOptions {
        jobs: jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
        device: ctx.device,
        targets: Vec::new(),
        downstream: false,
        force: Vec::new(),
        force_all: false,
        dry_run: false,
        offline: ctx.offline,
        events: None,
        progress: true,
        rehash: false,
    }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let (p, cache) = ctx.load(&args.pipeline)?;
    if args.frozen && !all_fresh(&p, &cache, &args)? {
        return Ok(ExitCode::from(1));
    }
    let _lock = if args.dry_run {
        None
    } else {
        Some(cache.lock(Duration::from_secs(args.lock_timeout))?)
    };
    signals::stop_gracefully();
    let opts = RunOptions {
        targets: args.targets,
        downstream: args.downstream,
        force: args.force,
        force_all: args.force_all,
        dry_run: args.dry_run,
        events: args.events,
        rehash: args.rehash,
        ..options(ctx, args.jobs)
    };
    let report = exec::run(&p, &cache, &opts)?;
    print_report(&report, &p, &cache);
    if let Some(code) = signals::stopped_by_signal() {
        eprintln!("interrupted: finished results are cached and recorded; run again to continue");
        return Ok(code);
    }
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--frozen`: whether every selected stage is fresh; if not, says which are not.
fn all_fresh(p: &Pipeline, cache: &Cache, args: &Args) -> anyhow::Result<bool> {
    let selected =
        crate::plan::selection(p, &args.targets, args.downstream).map_err(anyhow::Error::msg)?;
    let stale: Vec<_> = status::status(p, cache, &selected, args.rehash)?
        .into_iter()
        .filter(|s| s.state != State::Fresh)
        .collect();
    if stale.is_empty() {
        return Ok(true);
    }
    eprintln!(
        "error: --frozen: {} stage(s) are not fresh; nothing was run",
        stale.len()
    );
    eprint!("{}", status::render(&stale));
    Ok(false)
}

/// A line per stage, then the counts and where the manifest is.
fn print_report(report: &exec::RunReport, p: &Pipeline, cache: &Cache) {
    print!("{}", exec::summary(report));
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
}
