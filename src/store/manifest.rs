//! The manifest: a checked-in, human-diffable record of the last result of every stage of a
//! pipeline. With the pipeline file it lets anyone see (and `cairn verify`) what was computed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::plan::fingerprint::Digest;
use crate::store::cache::OutputRecord;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    pub pipeline: String,
    pub cairn_version: String,
    /// In pipeline declaration order.
    pub stages: indexmap::IndexMap<String, StageRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StageRecord {
    pub fingerprint: Digest,
    pub kind: String,
    pub version: u32,
    pub params: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub externals: BTreeMap<String, ExternalRecord>,
    pub outputs: BTreeMap<String, OutputRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// The run record: when and how fast it ran. Timing never enters outputs or metrics.
    pub wall_time_s: f64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_facts: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InputRecord {
    /// `stage` or `stage.split`, as written in the pipeline.
    pub from: String,
    pub digest: Digest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExternalRecord {
    pub path: String,
    pub digest: Digest,
}

impl Manifest {
    /// None when there is no manifest yet; an unreadable one is an error (it is checked in and
    /// may have been merged badly).
    pub fn load(path: &Path) -> anyhow::Result<Option<Manifest>> {
        let unreadable = |why: String| {
            anyhow::anyhow!(
                "{}: the manifest cannot be read: {why}\nhint: restore it from git or delete it to start afresh",
                path.display()
            )
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Manifest::parse(&text, path).map(Some).map_err(unreadable),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    }

    /// A manifest's text, read from `path` (whose name says which pipeline it must record) or
    /// from git at that path; the error says why it is unreadable.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, String> {
        if let Some(line) = text.lines().position(|l| {
            ["<<<<<<<", "=======", ">>>>>>>"]
                .iter()
                .any(|m| l.starts_with(m))
        }) {
            return Err(format!(
                "it has merge-conflict markers at line {}",
                line + 1
            ));
        }
        let manifest: Manifest = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let expected = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if manifest.pipeline != expected {
            return Err(format!(
                "it records pipeline `{}`, not `{expected}`",
                manifest.pipeline
            ));
        }
        Ok(manifest)
    }

    /// Writes only when the content changed, so a no-op run leaves git clean.
    pub fn save(&self, cache: &crate::store::cache::Cache) -> std::io::Result<bool> {
        let path = &cache.manifest_path(&self.pipeline);
        let mut text = String::from(
            "# Written by `cairn run`. Check it in with the pipeline; `cairn verify` recomputes it.\n",
        );
        text.push_str(&serde_yaml::to_string(self).expect("manifest serializes"));
        if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        cache.write(path, text.as_bytes())?;
        Ok(true)
    }
}
