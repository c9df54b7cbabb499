//! Why a run, or one stage of it, ended without a result. Each error keeps the stage id and the
//! path involved; its message is what the located failure report shows (the stage id and its
//! place in the pipeline file are added by the layer that knows them).

use std::path::PathBuf;

use cairn_stages::StageError;

use crate::plan::PlanError;

/// Why a stage produced no result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The run is stopping (a signal); the stage noticed and gave up.
    #[error("cancelled")]
    Cancelled,
    /// An upstream object failed its digest check as the stage read it (changed on disk behind
    /// the stat cache's back): the upstream stage is recomputed, then this one.
    #[error("the cached output {output} of stage {upstream_id} is {}", damage_word(*.missing))]
    UpstreamDamaged {
        stage: String,
        /// The index of the stage that owns the object.
        upstream: usize,
        upstream_id: String,
        output: String,
        /// The object is gone (else: corrupt, and removed).
        missing: bool,
    },
    /// An input's digest cannot be computed (it lacks the split the stage names).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The stage kind failed (never with `StageError::Cancelled`: that is [`Self::Cancelled`]).
    #[error(transparent)]
    Stage(StageError),
    #[error("the stage panicked: {message}")]
    Panicked { stage: String, message: String },
    #[error("cannot create a scratch directory: {source}")]
    ScratchDir {
        stage: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write table {split}: {reason}")]
    EncodeTable {
        stage: String,
        split: String,
        reason: anyhow::Error,
    },
    #[error("cannot store table {split}: {source}")]
    StoreTable {
        stage: String,
        split: String,
        source: std::io::Error,
    },
    #[error("cannot list output files: {source}")]
    ListOutputs {
        stage: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    /// An output file the stage wrote cannot be read back (its message names the path).
    #[error("{source}")]
    ReadOutput {
        stage: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot store {name}: {source}")]
    StoreFile {
        stage: String,
        /// The file's path inside the stage's output directory.
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot record the result: {source}")]
    RecordResult {
        stage: String,
        fingerprint: String,
        source: std::io::Error,
    },
    #[error("input {input}: cannot read {output}: {reason}")]
    UnreadableInput {
        stage: String,
        input: String,
        output: String,
        object: PathBuf,
        reason: anyhow::Error,
    },
    #[error("input {input}: unknown output {output}")]
    UnknownOutput {
        stage: String,
        input: String,
        output: String,
    },
}

impl ExecError {
    /// What the user can do about it, when the stage kind said.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ExecError::Stage(e) => e.hint(),
            _ => None,
        }
    }
}

fn damage_word(missing: bool) -> &'static str {
    if missing {
        "missing"
    } else {
        "corrupt (removed)"
    }
}

impl From<StageError> for ExecError {
    fn from(e: StageError) -> Self {
        match e {
            StageError::Cancelled => ExecError::Cancelled,
            other => ExecError::Stage(other),
        }
    }
}

/// Why a run stopped before its stages could end (their results stay cached).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("--force {stage}: no such stage in {}", .file.display())]
    UnknownForced { stage: String, file: PathBuf },
    /// Nothing runs, nothing can start, and these stages have not ended: a bug, not a hang.
    #[error("internal error: scheduler stalled")]
    Stalled { stages: Vec<String> },
}

/// The manifest could not be written (the results are cached all the same).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot write the manifest {}: {source}\nhint: the results are cached; free space or fix permissions, then run again to record them",
    .path.display()
)]
pub struct ManifestError {
    pub path: PathBuf,
    pub source: std::io::Error,
}
