//! A stage's last recorded result, and whether it is still fresh: what `show`, `predict` and
//! `export` read. `show` shows a stale result with a note; `predict` and `export` refuse it.

use anyhow::bail;

use crate::commands::status::{self, StageStatus, State};
use crate::spec::resolve::Pipeline;
use crate::store::cache::Cache;
use crate::store::manifest::{Manifest, StageRecord};

/// What the manifest records of a stage's last run.
pub struct LastResult {
    pub record: StageRecord,
    /// Its status when it is not fresh (stale, outputs missing…), saying why.
    pub not_fresh: Option<StageStatus>,
}

/// Stage `stage`'s last recorded result; `None` when it has not run. An error when the pipeline
/// has no such stage.
pub fn last_result(p: &Pipeline, cache: &Cache, stage: &str) -> anyhow::Result<Option<LastResult>> {
    let Some(index) = p.index_of(stage) else {
        bail!(p.unknown_stage(stage));
    };
    let mut manifest = Manifest::load(&cache.manifest_path(&p.name))?.unwrap_or_default();
    let Some(record) = manifest.stages.swap_remove(stage) else {
        return Ok(None);
    };
    let selected = p.dag.select(&[index], false);
    let not_fresh = status::status(p, cache, &selected, false)?
        .into_iter()
        .find(|s| s.stage == stage && s.state != State::Fresh);
    Ok(Some(LastResult { record, not_fresh }))
}

/// The command that (re)runs `stage`, for messages.
pub fn run_command(p: &Pipeline, stage: &str) -> String {
    format!("cairn run {} --target {stage}", p.file.display())
}
