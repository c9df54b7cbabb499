//! `cairn gc`: finds the cache (through `--cache-dir`, a pipeline's root, or `./cache`), takes
//! its lock and deletes what no manifest references (the work is in `store::gc`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::commands::context::Context;
use crate::store::cache::Cache;
use crate::store::gc;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn gc --dry-run pipelines/emotion.yaml
  cairn gc --cache-dir /data/cairn-cache")]
pub struct Args {
    /// Show what would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// Locate the cache through this pipeline's root (else --cache-dir or ./cache).
    pipeline: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let cache = match (&ctx.cache_dir, &args.pipeline) {
        (Some(d), _) => Cache::new(d),
        (None, Some(p)) => ctx.cache_under(&ctx.pipeline(p)?.root),
        (None, None) => Cache::new(Path::new("cache")),
    };
    let _lock = cache.lock(Duration::from_secs(600))?;
    let r = gc::gc(&cache, args.dry_run)?;
    println!(
        "{} {} entries and {} objects ({}); kept {} entries referenced by manifests",
        if args.dry_run {
            "would delete"
        } else {
            "deleted"
        },
        r.entries_removed,
        r.objects_removed,
        human_bytes(r.bytes_removed),
        r.kept_entries
    );
    Ok(ExitCode::SUCCESS)
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
