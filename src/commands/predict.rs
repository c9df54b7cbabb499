//! `cairn predict` and `cairn export`: a stage's cached outputs, laid out as files. `predict`
//! hands a model stage's files to its kind, which predicts on new texts; `export` copies them
//! out (e.g. a fine-tuned model directory for Python `transformers`). Only a fresh result is
//! used: a stale one would answer for parameters or data the pipeline no longer has.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::commands::context::Context;
use crate::commands::recorded::{self, LastResult};
use crate::spec::resolve::Pipeline;
use crate::store::cache::{Cache, FILE_PREFIX, split_of};
use crate::store::manifest::StageRecord;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn predict pipelines/emotion.yaml finetune \"I saw a movie today and it was really good\"
  cairn predict pipelines/ner-wikiann-en.yaml finetune \"Jeff Dean works at Google in California\"")]
pub struct PredictArgs {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: PathBuf,
    /// The model stage (a `finetune` stage).
    stage: String,
    /// The texts, one per argument.
    #[arg(required = true)]
    texts: Vec<String>,
}

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn export pipelines/emotion.yaml finetune out/emotion-model   # then from_pretrained(...)
  cairn export pipelines/emotion.yaml umap out/umap")]
pub struct ExportArgs {
    /// The pipeline file (YAML; `cairn schema` describes it).
    pipeline: PathBuf,
    /// The stage whose outputs to copy.
    stage: String,
    /// Where to write (created if missing).
    dir: PathBuf,
}

pub fn run_predict(ctx: &Context, args: PredictArgs) -> anyhow::Result<ExitCode> {
    let (p, cache) = ctx.load(&args.pipeline)?;
    print!("{}", predict(&p, &cache, &args.stage, &args.texts)?);
    Ok(ExitCode::SUCCESS)
}

pub fn run_export(ctx: &Context, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let (p, cache) = ctx.load(&args.pipeline)?;
    for path in export(&p, &cache, &args.stage, &args.dir)? {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The kind's printed predictions for `texts` from stage `stage`'s cached model.
pub fn predict(
    p: &Pipeline,
    cache: &Cache,
    stage: &str,
    texts: &[String],
) -> anyhow::Result<String> {
    let Some(index) = p.index_of(stage) else {
        bail!(p.unknown_stage(stage));
    };
    let spec = &p.stages[index];
    let Some(predict) = spec.kind.predict else {
        let models: Vec<&str> = p
            .stages
            .iter()
            .filter(|s| s.kind.predict.is_some())
            .map(|s| s.id.as_str())
            .collect();
        bail!(
            "stage `{stage}` is a `{}` stage, which does not predict; stages of {} that do: {}",
            spec.kind.name,
            p.file.display(),
            if models.is_empty() {
                "none".to_string()
            } else {
                models.join(", ")
            }
        );
    };
    let (record, run_hint) = fresh_record(p, cache, stage)?;
    cache.ensure_layout()?;
    let dir = tempfile::tempdir_in(cache.tmp_dir()).context("making a temporary directory")?;
    export_outputs(
        cache,
        stage,
        &record,
        dir.path(),
        Layout::FOR_KIND,
        &run_hint,
    )?;
    predict(dir.path(), texts).map_err(|e| anyhow::anyhow!("stage `{stage}`: {e}"))
}

/// `cairn export`: a fresh stage's outputs copied out of the cache into `dir`.
pub fn export(
    p: &Pipeline,
    cache: &Cache,
    stage: &str,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let (record, run_hint) = fresh_record(p, cache, stage)?;
    export_outputs(cache, stage, &record, dir, Layout::FOR_USER, &run_hint)
}

/// What [`export_outputs`] writes, and how.
#[derive(Clone, Copy)]
struct Layout {
    /// Also each table, as `<split>.parquet` (else only the stage's files).
    tables: bool,
    /// Mode 0644, readable as any file the user would write (the temp file behind the atomic
    /// write is private).
    user_readable: bool,
}

impl Layout {
    /// For a kind's `predict`: its files, in a private temporary directory.
    const FOR_KIND: Layout = Layout {
        tables: false,
        user_readable: false,
    };
    /// For `cairn export`: everything, as the user's own files.
    const FOR_USER: Layout = Layout {
        tables: true,
        user_readable: true,
    };
}

/// Writes a stage's cached outputs under `dir`: its files at their relative paths and, as
/// `layout` says, its tables. Returns the paths written.
fn export_outputs(
    cache: &Cache,
    stage: &str,
    record: &StageRecord,
    dir: &Path,
    layout: Layout,
    run_hint: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, out) in &record.outputs {
        let rel = match name.strip_prefix(FILE_PREFIX) {
            Some(rel) => rel.to_string(),
            None if layout.tables => match split_of(name) {
                Some(split) => format!("{split}.parquet"),
                None => continue,
            },
            None => continue,
        };
        let bytes = cache.read_verified(&out.digest).map_err(|_| {
            anyhow::anyhow!(
                "the cached output {rel} of `{stage}` is missing or corrupt: `{run_hint}`"
            )
        })?;
        let path = dir.join(&rel);
        write_file(&path, &bytes, layout.user_readable)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `bytes` atomically at `path`, making its directory.
fn write_file(path: &Path, bytes: &[u8], user_readable: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    crate::store::atomic::write_atomic(path, bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if user_readable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// Stage `stage`'s manifest record, when its cached result is fresh, and the command that
/// (re)runs it; otherwise an error saying why and naming that command.
fn fresh_record(p: &Pipeline, cache: &Cache, stage: &str) -> anyhow::Result<(StageRecord, String)> {
    let run_hint = recorded::run_command(p, stage);
    let Some(LastResult { record, not_fresh }) = recorded::last_result(p, cache, stage)? else {
        bail!("stage `{stage}` has not run yet: `{run_hint}`");
    };
    if let Some(s) = not_fresh {
        bail!(
            "stage `{stage}` is {} ({}): `{run_hint}` first",
            s.state.label(),
            s.reasons.join("; ")
        );
    }
    Ok((record, run_hint))
}
