//! `cairn predict` and `cairn export`: a stage's cached outputs, laid out as files. `predict`
//! hands a model stage's files to its kind, which predicts on new texts; `export` copies them
//! out (e.g. a fine-tuned model directory for Python `transformers`). Only a fresh result is
//! used: a stale one would answer for parameters or data the pipeline no longer has.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::commands::status::{self, State};
use crate::spec::resolve::Pipeline;
use crate::store::cache::{Cache, FILE_PREFIX, split_of};
use crate::store::manifest::{Manifest, StageRecord};

/// The kind's printed predictions for `texts` from stage `stage`'s cached model.
pub fn predict(
    p: &Pipeline,
    cache: &Cache,
    stage: &str,
    texts: &[String],
) -> anyhow::Result<String> {
    let Some(index) = p.index_of(stage) else {
        bail!("`{stage}` is not a stage of {}", p.file.display());
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
    export_outputs(cache, stage, &record, dir.path(), false, &run_hint)?;
    predict(dir.path(), texts).map_err(|e| anyhow::anyhow!("stage `{stage}`: {e}"))
}

/// Writes a stage's cached outputs under `dir`: its files at their relative paths and, with
/// `tables`, each table as `<split>.parquet`. Returns the paths written.
pub fn export_outputs(
    cache: &Cache,
    stage: &str,
    record: &StageRecord,
    dir: &Path,
    tables: bool,
    run_hint: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, out) in &record.outputs {
        let rel = match name.strip_prefix(FILE_PREFIX) {
            Some(rel) => rel.to_string(),
            None if tables => match split_of(name) {
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
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        crate::store::atomic::write_atomic(&path, &bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        if tables {
            // Exported files are the user's: readable as any file they would write (the
            // temp file behind the atomic write is private).
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
            }
        }
        written.push(path);
    }
    Ok(written)
}

/// `cairn export`: a fresh stage's outputs copied out of the cache into `dir`.
pub fn export(
    p: &Pipeline,
    cache: &Cache,
    stage: &str,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let (record, run_hint) = fresh_record(p, cache, stage)?;
    export_outputs(cache, stage, &record, dir, true, &run_hint)
}

/// Stage `stage`'s manifest record, when its cached result is fresh, and the command that
/// (re)runs it; otherwise an error saying why and naming that command.
fn fresh_record(p: &Pipeline, cache: &Cache, stage: &str) -> anyhow::Result<(StageRecord, String)> {
    let Some(index) = p.index_of(stage) else {
        bail!("`{stage}` is not a stage of {}", p.file.display());
    };
    let run_hint = format!("cairn run {} --target {stage}", p.file.display());
    let mut manifest = Manifest::load(&cache.manifest_path(&p.name))?.unwrap_or_default();
    let Some(record) = manifest.stages.swap_remove(stage) else {
        bail!("stage `{stage}` has not run yet: `{run_hint}`");
    };
    let selected = p.dag.select(&[index], false);
    let statuses = status::status(p, cache, &selected, false)?;
    if let Some(s) = statuses
        .iter()
        .find(|s| s.stage == stage && s.state != State::Fresh)
    {
        bail!(
            "stage `{stage}` is {} ({}): `{run_hint}` first",
            s.state.label(),
            s.reasons.join("; ")
        );
    }
    Ok((record, run_hint))
}
