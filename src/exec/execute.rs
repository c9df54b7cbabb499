//! Running one stage, on a worker thread: its inputs read back from the store (every object's
//! digest checked), the kind's `run` in a scratch directory, its tables and files stored as
//! objects, and its cache entry written last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use cairn_stages::{Context, Device, Input, Output, Progress};

use crate::exec::CANCELLED;
use crate::exec::error::ExecError;
use crate::plan::{self, fingerprint::Digest};
use crate::spec::resolve::{InputRef, Pipeline, StageSpec};
use crate::store::cache::{
    Cache, Damage, Entry, FILE_PREFIX, OutputRecord, TABLE_PREFIX, split_of, table_output_name,
};
use crate::store::tables;

/// A stage ready to run: what it needs, owned, so a worker thread can take it.
pub struct Job<'a> {
    pub pipeline: &'a Pipeline,
    pub cache: &'a Cache,
    pub index: usize,
    pub fingerprint: Digest,
    /// The entries of its inputs, in declared order.
    pub upstream: Vec<Entry>,
    pub device: Device,
    pub offline: bool,
}

impl Job<'_> {
    fn stage(&self) -> &StageSpec {
        &self.pipeline.stages[self.index]
    }

    /// Runs the stage and stores its outputs; its entry is the result.
    pub fn execute(&self, progress: &dyn Progress) -> Result<Entry, ExecError> {
        let start = Instant::now();
        let inputs = self.load_inputs()?;
        let out_dir = self.scratch_dir()?;
        let output = self.run_kind(&inputs, out_dir.path(), progress)?;
        let mut outputs = self.store_tables(&output)?;
        outputs.extend(self.store_files(out_dir.path())?);
        let entry = Entry {
            fingerprint: self.fingerprint.clone(),
            outputs,
            metrics: output.metrics,
            wall_time_s: (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            run_facts: output.run_facts,
        };
        // The entry last: until it exists, the objects above are unreferenced and the stage reruns.
        self.cache
            .write_entry(&entry)
            .map_err(|source| ExecError::RecordResult {
                stage: self.stage().id.clone(),
                fingerprint: self.fingerprint.clone(),
                source,
            })?;
        Ok(entry)
    }

    fn scratch_dir(&self) -> Result<tempfile::TempDir, ExecError> {
        let dir = self.cache.tmp_dir();
        tempfile::Builder::new()
            .prefix(&format!("{}-", self.stage().id))
            .tempdir_in(&dir)
            .map_err(|source| ExecError::ScratchDir {
                stage: self.stage().id.clone(),
                dir,
                source,
            })
    }

    /// The kind's own `run`; a panic in it fails the stage, not the run.
    fn run_kind(
        &self,
        inputs: &[Input],
        out_dir: &Path,
        progress: &dyn Progress,
    ) -> Result<Output, ExecError> {
        let stage = self.stage();
        let ctx = Context {
            stage: &stage.id,
            root: &self.pipeline.root,
            inputs,
            externals: &stage.externals,
            out_dir,
            device: self.device,
            offline: self.offline,
            progress,
            cancelled: &CANCELLED,
        };
        let run = std::panic::AssertUnwindSafe(|| stage.parsed.run(&ctx));
        let result = std::panic::catch_unwind(run).map_err(|panic| ExecError::Panicked {
            stage: stage.id.clone(),
            message: panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into()),
        })?;
        Ok(result?)
    }

    fn store_tables(&self, output: &Output) -> Result<BTreeMap<String, OutputRecord>, ExecError> {
        let mut outputs = BTreeMap::new();
        for (split, batch) in &output.tables {
            let stage = || self.stage().id.clone();
            let bytes = tables::to_parquet(batch).map_err(|reason| ExecError::EncodeTable {
                stage: stage(),
                split: split.clone(),
                reason,
            })?;
            let digest = self
                .cache
                .put_bytes(&bytes)
                .map_err(|source| ExecError::StoreTable {
                    stage: stage(),
                    split: split.clone(),
                    source,
                })?;
            let record = OutputRecord {
                digest,
                bytes: bytes.len() as u64,
                rows: Some(batch.num_rows() as u64),
            };
            outputs.insert(table_output_name(split), record);
        }
        Ok(outputs)
    }

    /// Every file the stage wrote into its scratch directory, stored as an object.
    fn store_files(&self, out_dir: &Path) -> Result<BTreeMap<String, OutputRecord>, ExecError> {
        let stage = || self.stage().id.clone();
        let mut files = Vec::new();
        walk(out_dir, &mut files).map_err(|source| ExecError::ListOutputs {
            stage: stage(),
            dir: out_dir.to_path_buf(),
            source,
        })?;
        let mut outputs = BTreeMap::new();
        for path in files {
            let name = path
                .strip_prefix(out_dir)
                .expect("inside")
                .to_string_lossy()
                .to_string();
            let bytes = match fs_err::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(source) => {
                    return Err(ExecError::ReadOutput {
                        stage: stage(),
                        path,
                        source,
                    });
                }
            };
            let digest = match self.cache.put_file(&path) {
                Ok(digest) => digest,
                Err(source) => {
                    return Err(ExecError::StoreFile {
                        stage: stage(),
                        name,
                        path,
                        source,
                    });
                }
            };
            let record = OutputRecord {
                digest,
                bytes,
                rows: None,
            };
            outputs.insert(format!("{FILE_PREFIX}{name}"), record);
        }
        Ok(outputs)
    }

    /// Upstream outputs as the stage sees them: tables decoded and files as paths into the
    /// store, every object's digest checked by content first (the stat cache may have been
    /// fooled).
    fn load_inputs(&self) -> Result<Vec<Input>, ExecError> {
        self.stage()
            .inputs
            .iter()
            .zip(&self.upstream)
            .map(|(input, entry)| self.load_input(input, entry))
            .collect()
    }

    fn load_input(&self, input: &InputRef, entry: &Entry) -> Result<Input, ExecError> {
        plan::input_digest(entry, input)?;
        let mut loaded = Input {
            stage: input.stage.clone(),
            slot: input.slot,
            matrix: input.matrix.clone(),
            ..Default::default()
        };
        if self.stage().kind.reads_metrics {
            loaded.metrics = entry.metrics.clone();
        }
        for (name, out) in &entry.outputs {
            if let Some(split) = split_of(name) {
                if input.split.as_deref().is_some_and(|s| s != split) {
                    continue;
                }
                let batch = self.read_table(input, name, &out.digest)?;
                loaded.tables.insert(split.to_string(), batch);
            } else if let Some(rel) = name.strip_prefix(FILE_PREFIX) {
                if input.split.is_some() {
                    continue;
                }
                let path = self
                    .cache
                    .verified_object_path(&out.digest)
                    .map_err(|d| self.damaged(input, name, d))?;
                loaded.files.insert(rel.to_string(), path);
            } else if !name.starts_with(TABLE_PREFIX) {
                return Err(ExecError::UnknownOutput {
                    stage: self.stage().id.clone(),
                    input: input.to_string(),
                    output: name.clone(),
                });
            }
        }
        Ok(loaded)
    }

    fn read_table(
        &self,
        input: &InputRef,
        name: &str,
        digest: &str,
    ) -> Result<RecordBatch, ExecError> {
        let bytes = self
            .cache
            .read_verified(digest)
            .map_err(|d| self.damaged(input, name, d))?;
        tables::from_parquet(bytes).map_err(|reason| ExecError::UnreadableInput {
            stage: self.stage().id.clone(),
            input: input.to_string(),
            output: name.to_string(),
            object: self.cache.object_path(digest),
            reason,
        })
    }

    fn damaged(&self, input: &InputRef, output: &str, damage: Damage) -> ExecError {
        ExecError::UpstreamDamaged {
            stage: self.stage().id.clone(),
            upstream: self
                .pipeline
                .index_of(&input.stage)
                .expect("resolved input"),
            upstream_id: input.stage.clone(),
            output: output.to_string(),
            missing: matches!(damage, Damage::Missing(_)),
        }
    }
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
