//! The contract between the engine and the stage kinds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::record_batch::RecordBatch;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Named tables, one per split (`train`, `validation`, ...).
pub type Tables = BTreeMap<String, RecordBatch>;

/// Where compute happens. Chosen once by the engine (`--device`) and passed to every stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Whether this build can use a CUDA device (the `cuda` feature).
pub fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// How many CUDA devices the driver reports: 0 in a build without the `cuda` feature; `Err`
/// with the driver's message when it cannot be asked (no device, a driver without a GPU).
pub fn cuda_device_count() -> Result<usize, String> {
    #[cfg(feature = "cuda")]
    {
        use candle_core::cuda_backend::cudarc::driver::CudaContext;
        CudaContext::device_count()
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(0)
    }
}

/// One upstream stage's output, as its consumer sees it.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The upstream stage id.
    pub stage: String,
    /// Its tables by split (only the selected split when the input was written `stage.split`).
    pub tables: Tables,
    /// Its files, by the relative name the producer gave them, as readable paths.
    pub files: BTreeMap<String, PathBuf>,
    /// The named input it fills (`inputs: {model: ft-de}` → `model`), for kinds that declare
    /// [`Stage::INPUT_SLOTS`]; `None` for list inputs.
    pub slot: Option<&'static str>,
    /// When the upstream stage is one cell of a sweep (`matrix:`), its values by variable, e.g.
    /// `lang: de, n: 250`, as written; empty otherwise. Part of the consumer's fingerprint.
    pub matrix: BTreeMap<String, String>,
    /// The upstream stage's metrics (as its `Output::metrics`), handed over only to kinds that
    /// declare [`Stage::READS_METRICS`] (whose fingerprint then covers them); empty otherwise.
    pub metrics: BTreeMap<String, serde_json::Value>,
}

impl Input {
    /// The table of `split`; a missing split is an error naming the input and its splits.
    pub fn table(&self, split: &str) -> Result<&RecordBatch, StageError> {
        self.tables.get(split).ok_or_else(|| {
            StageError::failed(format!(
                "input `{}` has no split `{split}` (splits: {})",
                self.stage,
                self.tables.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// [`Input::table`] for a split that param `field` names: a missing split is that param's
    /// error, so it can be shown at the param.
    pub fn table_named_by(&self, field: &str, split: &str) -> Result<&RecordBatch, StageError> {
        self.table(split).map_err(|e| e.at_param(field))
    }
}

/// What a stage returns. Files go to [`Context::out_dir`] instead.
#[derive(Debug, Default)]
pub struct Output {
    pub tables: Tables,
    /// Numbers (or small JSON values) worth recording in the manifest, e.g. accuracy. They are
    /// results: the same inputs must give the same metrics, and `cairn verify` compares them.
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// How the run went (seconds, samples per second, threads): recorded in the manifest's run
    /// record for people, never part of an output, never compared by `cairn verify`.
    pub run_facts: BTreeMap<String, serde_json::Value>,
}

/// Progress reporting for a running stage; the engine draws it.
pub trait Progress: Send + Sync {
    fn set_total(&self, total: u64, unit: &str);
    fn advance(&self, n: u64);
    fn message(&self, msg: &str);
    /// A line of lasting output (e.g. a training table row), printed above the bars.
    fn println(&self, _line: &str) {}
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn set_total(&self, _: u64, _: &str) {}
    fn advance(&self, _: u64) {}
    fn message(&self, _: &str) {}
}

/// Everything a running stage may use.
pub struct Context<'a> {
    pub stage: &'a str,
    /// Relative paths in params resolve against this directory (the pipeline's root).
    pub root: &'a Path,
    pub inputs: &'a [Input],
    /// The files and models the params name, as [`Stage::externals`] resolved them before the
    /// run (what the fingerprint hashed): a kind reads these rather than resolving again.
    pub externals: &'a [External],
    /// Files written here (any depth) become this stage's file outputs.
    pub out_dir: &'a Path,
    pub device: Device,
    pub offline: bool,
    pub progress: &'a dyn Progress,
    pub cancelled: &'a AtomicBool,
}

impl Context<'_> {
    /// Long loops call this now and then so Ctrl-C stops them promptly.
    pub fn check_cancelled(&self) -> Result<(), StageError> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(StageError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// The single input of a stage that takes exactly one.
    pub fn single_input(&self) -> Result<&Input, StageError> {
        match self.inputs {
            [one] => Ok(one),
            other => Err(StageError::failed(format!(
                "expected exactly one input, got {}",
                other.len()
            ))),
        }
    }

    /// The one input in named slot `slot` (see [`Stage::INPUT_SLOTS`]).
    pub fn input(&self, slot: &str) -> Result<&Input, StageError> {
        match self.inputs_for(slot).as_slice() {
            [one] => Ok(one),
            other => Err(StageError::failed(format!(
                "expected exactly one input `{slot}`, got {}",
                other.len()
            ))),
        }
    }

    /// The input in named slot `slot`, if the stage gives one (an optional slot).
    pub fn optional_input(&self, slot: &str) -> Result<Option<&Input>, StageError> {
        match self.inputs_for(slot).as_slice() {
            [] => Ok(None),
            _ => self.input(slot).map(Some),
        }
    }

    /// Every input in named slot `slot`, in the order the pipeline names them (a sweep's cells
    /// in expansion order); empty when an optional slot is left out.
    pub fn inputs_for(&self, slot: &str) -> Vec<&Input> {
        self.inputs
            .iter()
            .filter(|input| input.slot == Some(slot))
            .collect()
    }

    /// The external that param `field` names, as resolved before the run.
    pub fn external(&self, field: &str) -> Result<&External, StageError> {
        self.externals
            .iter()
            .find(|e| e.field == field)
            .ok_or_else(|| StageError::failed(format!("`{field}` was not resolved before the run")))
    }
}

/// Facts available while a stage prepares, before anything runs.
pub struct PrepareEnv<'a> {
    /// Relative paths in params resolve against this directory (the pipeline's root).
    pub root: &'a Path,
    pub offline: bool,
}

/// A file or directory a stage reads that is not another stage's output (data, model weights).
/// The engine hashes its content into the stage's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// The param that names it (for error locations and `status` reasons), e.g. `path`.
    pub field: String,
    /// What the user wrote, shown in messages, e.g. `data/emotion/train.txt`.
    pub shown: String,
    /// Where it is on this machine.
    pub path: PathBuf,
    /// When the stage's result depends on the content only, not on what the user called it
    /// (a model named by Hub id or by local directory), the engine leaves `field` out of the
    /// fingerprinted params.
    pub content_only: bool,
    /// For a directory: the files in it (relative paths) the stage reads, the only ones hashed
    /// (a model's README does not rerun anything). A listed file that is missing is an error.
    /// `None`: every file under `path`.
    pub files: Option<Vec<String>>,
}

/// One named input of a kind: a stage writes `inputs: {model: ft-de, data: [load-en.test]}`
/// and the kind reads [`Context::input`] / [`Context::inputs_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSlot {
    /// The name a stage writes under `inputs:`.
    pub name: &'static str,
    /// How many stages it takes; a slot that accepts 0 may be left out.
    pub arity: Arity,
    /// The kinds (`kind:` names) its stages may have, e.g. `&["finetune"]`; empty: any kind.
    /// Names, not types: a kind never imports another kind.
    pub kinds: &'static [&'static str],
}

impl InputSlot {
    /// A slot taking `arity` stages of any kind.
    pub const fn new(name: &'static str, arity: Arity) -> Self {
        InputSlot {
            name,
            arity,
            kinds: &[],
        }
    }

    /// The same slot, taking only stages of these kinds.
    pub const fn from_kinds(self, kinds: &'static [&'static str]) -> Self {
        InputSlot { kinds, ..self }
    }

    /// Whether a stage must name it.
    pub fn required(&self) -> bool {
        !self.arity.accepts(0)
    }
}

/// How many upstream stages a kind takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    None,
    One,
    AtLeast(usize),
    Range(usize, usize),
}

impl Arity {
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::None => n == 0,
            Arity::One => n == 1,
            Arity::AtLeast(m) => n >= m,
            Arity::Range(lo, hi) => (lo..=hi).contains(&n),
        }
    }
    pub fn describe(self) -> String {
        match self {
            Arity::None => "no inputs".into(),
            Arity::One => "exactly one input".into(),
            Arity::AtLeast(m) => format!("at least {m} input(s)"),
            Arity::Range(lo, hi) => format!("{lo} to {hi} inputs"),
        }
    }
}

/// Why a stage could not prepare or run.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A param is wrong in a way serde could not see (e.g. a file that does not exist).
    #[error("{message}")]
    Param {
        field: String,
        message: String,
        hint: Option<String>,
    },
    /// The stage could not compute its outputs (bad input data, a model that fails). `hint`
    /// says what the user can do about it; it is not part of the message.
    #[error("{message}")]
    Failed {
        message: String,
        hint: Option<String>,
    },
    #[error("cancelled")]
    Cancelled,
}

impl StageError {
    pub fn failed(msg: impl Into<String>) -> Self {
        StageError::Failed {
            message: msg.into(),
            hint: None,
        }
    }
    pub fn param(field: &str, message: impl Into<String>, hint: Option<String>) -> Self {
        StageError::Param {
            field: field.to_string(),
            message: message.into(),
            hint,
        }
    }

    /// The same error, telling the user what to do about it (replaces any hint it had).
    pub fn with_hint(self, hint: impl Into<String>) -> Self {
        match self {
            StageError::Param { field, message, .. } => StageError::Param {
                field,
                message,
                hint: Some(hint.into()),
            },
            StageError::Failed { message, .. } => StageError::Failed {
                message,
                hint: Some(hint.into()),
            },
            StageError::Cancelled => StageError::Cancelled,
        }
    }

    /// What the user can do about it, when the stage knows.
    pub fn hint(&self) -> Option<&str> {
        match self {
            StageError::Param { hint, .. } | StageError::Failed { hint, .. } => hint.as_deref(),
            StageError::Cancelled => None,
        }
    }

    /// A failure blamed on param `field` (message and hint kept), so it can be shown there.
    pub fn at_param(self, field: &str) -> Self {
        match self {
            StageError::Failed { message, hint } => StageError::Param {
                field: field.to_string(),
                message,
                hint,
            },
            other => other,
        }
    }
}

impl From<std::io::Error> for StageError {
    fn from(e: std::io::Error) -> Self {
        StageError::failed(e.to_string())
    }
}

impl From<arrow::error::ArrowError> for StageError {
    fn from(e: arrow::error::ArrowError) -> Self {
        StageError::failed(e.to_string())
    }
}

/// `cairn predict`'s hook: (the stage's files, texts) → printed predictions.
pub type PredictFn = fn(&Path, &[String]) -> Result<String, StageError>;

/// Figures drawn on demand from a stage's cached tables (`table(name)` reads one, `None` when
/// the stage has no such table), for `cairn report`: derived from outputs, not outputs
/// themselves, so drawing them needs no new version of the kind. Each is (file name, PNG).
pub type FiguresFn =
    fn(table: &dyn Fn(&str) -> Option<RecordBatch>) -> Result<Vec<(String, Vec<u8>)>, StageError>;

/// One stage kind. Implement this in one module, then list it in [`crate::registry::KINDS`].
pub trait Stage: Send + Sync + 'static {
    /// Typed params: `#[serde(deny_unknown_fields, rename_all = "kebab-case")]`, defaults in
    /// `#[serde(default)]`, `schemars::JsonSchema` derived (their doc comments document the
    /// pipeline schema). Serialized back, they are what the fingerprint hashes.
    type Params: DeserializeOwned + Serialize + schemars::JsonSchema + Send + Sync + 'static;
    /// The `kind:` name in YAML.
    const KIND: &'static str;
    /// Bump to invalidate every cached output of this kind when what it computes changes.
    const VERSION: u32;
    /// Device stages share one device queue: never two at once.
    const USES_DEVICE: bool = false;
    /// How many inputs it takes, as a list (`inputs: [a, b.train]`). Default: none (a source,
    /// or a kind with [`Stage::INPUT_SLOTS`]).
    const INPUTS: Arity = Arity::None;
    /// Its inputs by name (`inputs: {model: ft-de, data: load-en}`), in the order the engine
    /// hands them over. Default: none, the kind takes a list ([`Stage::INPUTS`]); a kind
    /// declares one or the other.
    const INPUT_SLOTS: &'static [InputSlot] = &[];
    /// Whether the kind reads its inputs' metrics ([`Input::metrics`]), e.g. to gather one
    /// metric of many stages into a table. The engine then hashes them into its fingerprint.
    const READS_METRICS: bool = false;
    /// One line for `cairn kinds` and the pipeline reference.
    const SUMMARY: &'static str;

    /// Checks what the params alone can tell is wrong (a count of 0, options that exclude each
    /// other, a regex that does not compile), before anything runs: the engine reports a
    /// [`StageError::Param`] at the field's YAML line. Called before [`Stage::externals`].
    fn validate(_params: &Self::Params, _env: &PrepareEnv) -> Result<(), StageError> {
        Ok(())
    }

    /// Declares the files, directories and models the params name. May do I/O (e.g. find a
    /// model in the Hub cache); must not compute anything heavy. The run finds them in
    /// [`Context::externals`].
    fn externals(_params: &Self::Params, _env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        Ok(Vec::new())
    }

    /// Computes the outputs. Params passed [`Stage::validate`]; the externals are resolved.
    fn run(params: &Self::Params, ctx: &Context) -> Result<Output, StageError>;

    /// For kinds whose output is a model (`cairn predict`): the printed predictions for new
    /// texts, given the directory where the stage's output files are laid out. `None`: the
    /// kind does not predict.
    const PREDICT: Option<PredictFn> = None;
    /// Figures of a stage's tables drawn when they are looked at (`cairn report`), e.g. the
    /// training curves from a fine-tune's `history`. `None`: the kind draws none.
    const FIGURES: Option<FiguresFn> = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_split_names_the_input_and_its_splits() {
        let batch = RecordBatch::new_empty(std::sync::Arc::new(arrow::datatypes::Schema::empty()));
        let input = Input {
            stage: "emb".into(),
            tables: [("test", &batch), ("train", &batch)]
                .map(|(s, b)| (s.to_string(), b.clone()))
                .into(),
            ..Input::default()
        };
        assert!(input.table("train").is_ok());
        let err = input.table_named_by("fit-split", "validation").unwrap_err();
        assert_eq!(
            err.to_string(),
            "input `emb` has no split `validation` (splits: test, train)"
        );
        assert!(matches!(err, StageError::Param { ref field, .. } if field == "fit-split"));
    }

    #[test]
    fn named_inputs_are_found_by_name_in_the_order_given() {
        let input = |stage: &str, slot| Input {
            stage: stage.into(),
            slot: Some(slot),
            ..Input::default()
        };
        let inputs = [input("ft", "model"), input("a", "data"), input("b", "data")];
        let cancelled = AtomicBool::new(false);
        let ctx = Context {
            stage: "predict",
            root: Path::new("."),
            inputs: &inputs,
            externals: &[],
            out_dir: Path::new("."),
            device: Device::Cpu,
            offline: true,
            progress: &NoProgress,
            cancelled: &cancelled,
        };
        assert_eq!(ctx.input("model").unwrap().stage, "ft");
        let data: Vec<&str> = ctx
            .inputs_for("data")
            .iter()
            .map(|i| i.stage.as_str())
            .collect();
        assert_eq!(data, ["a", "b"]);
        assert!(ctx.optional_input("bias").unwrap().is_none());
        let err = ctx.input("data").unwrap_err();
        assert_eq!(err.to_string(), "expected exactly one input `data`, got 2");
    }

    #[test]
    fn a_hint_is_kept_beside_the_message() {
        let err = StageError::failed("the loss became NaN").with_hint("lower the learning rate");
        assert_eq!(err.to_string(), "the loss became NaN");
        assert_eq!(err.hint(), Some("lower the learning rate"));
        assert_eq!(StageError::failed("x").hint(), None);
        let located = err.at_param("learning-rate");
        assert!(matches!(located, StageError::Param { ref field, .. } if field == "learning-rate"));
        assert_eq!(located.hint(), Some("lower the learning rate"));
    }
}
