//! `cairn gc`: deletes cached results that no manifest references. Past results are otherwise
//! kept, so reverting a param restores its old result without recomputing.

use std::collections::BTreeSet;

use crate::store::cache::Cache;
use crate::store::manifest::Manifest;

pub struct GcReport {
    pub entries_removed: usize,
    pub objects_removed: usize,
    pub bytes_removed: u64,
    pub kept_entries: usize,
}

pub fn gc(cache: &Cache, dry_run: bool) -> anyhow::Result<GcReport> {
    let mut keep_fp = BTreeSet::new();
    let mut keep_obj = BTreeSet::new();
    if let Ok(items) = std::fs::read_dir(cache.manifests_dir()) {
        for item in items.flatten() {
            let path = item.path();
            if path.extension().is_some_and(|e| e == "yaml")
                && let Some(m) = Manifest::load(&path)?
            {
                for rec in m.stages.values() {
                    keep_fp.insert(rec.fingerprint.clone());
                    keep_obj.extend(rec.outputs.values().map(|o| o.digest.clone()));
                }
            }
        }
    }
    let (entries, objects) = cache.inventory()?;
    let mut report = GcReport {
        entries_removed: 0,
        objects_removed: 0,
        bytes_removed: 0,
        kept_entries: 0,
    };
    for (fp, path) in entries {
        if keep_fp.contains(&fp) {
            report.kept_entries += 1;
            // An entry the manifests keep keeps all its objects.
            if let Ok(Some(e)) = cache.read_entry(&fp, false) {
                keep_obj.extend(e.outputs.values().map(|o| o.digest.clone()));
            }
        } else {
            report.entries_removed += 1;
            report.bytes_removed += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if !dry_run {
                fs_err::remove_file(&path)?;
            }
        }
    }
    for (digest, path, bytes) in objects {
        if !keep_obj.contains(&digest) {
            report.objects_removed += 1;
            report.bytes_removed += bytes;
            if !dry_run {
                fs_err::remove_file(&path)?;
            }
        }
    }
    Ok(report)
}
