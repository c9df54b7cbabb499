//! The manifest a run leaves: for each stage, the record of the result it has now, or of the one
//! it had before when this run produced none.

use crate::exec::error::ManifestError;
use crate::plan::{self, Planned};
use crate::spec::resolve::Pipeline;
use crate::store::cache::{Cache, Entry};
use crate::store::manifest::Manifest;

/// Writes the manifest: every stage that has a result now, old records of the others. Nothing
/// is written when nothing changed, nor a first manifest with no stage in it (a run that failed
/// at once leaves no trace). Returns whether it was written.
/// `old` is the manifest as read before the run (the cache lock keeps it current); `results`
/// holds each stage's result, by index.
pub fn record_results(
    pipeline: &Pipeline,
    cache: &Cache,
    old: Option<&Manifest>,
    results: &[Option<(&Planned, &Entry)>],
) -> Result<bool, ManifestError> {
    let mut manifest = Manifest {
        pipeline: pipeline.name.clone(),
        cairn_version: env!("CARGO_PKG_VERSION").to_string(),
        stages: Default::default(),
    };
    for (stage, result) in pipeline.stages.iter().zip(results) {
        let record = match result {
            Some((planned, entry)) => Some(plan::record(stage, planned, entry)),
            None => old.and_then(|m| m.stages.get(&stage.id).cloned()),
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
    manifest.save(cache).map_err(|source| ManifestError {
        path: cache.manifest_path(&pipeline.name),
        source,
    })
}
