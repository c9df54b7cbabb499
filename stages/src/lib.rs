//! The stage kinds of cairn: what each stage computes.
//!
//! A stage turns its inputs (upstream Arrow tables and files) into outputs (Arrow tables, files,
//! metrics). Nothing here knows about fingerprints, caching or scheduling: the engine in the
//! `cairn` crate decides whether and when a stage runs, and stores what it returns.
//!
//! Adding a kind: write one module implementing [`Stage`], add one line to [`registry::KINDS`].

pub mod api;
pub mod columns;
pub mod figures;
#[cfg(any(test, feature = "test-kinds"))]
pub mod fixtures;
pub mod hub;
pub mod kinds;
pub mod metrics;
pub mod ml;
pub mod nn;
pub mod numeric;
pub mod registry;
#[cfg(feature = "test-kinds")]
mod testing;

pub use api::*;

/// Params as the engine reads them: YAML, through JSON (so enums are written as maps, e.g.
/// `{replace: {pattern: x, with: y}}`), into the typed struct.
#[cfg(test)]
pub(crate) fn params_from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
    serde_json::from_value(serde_json::to_value(value).expect("json")).expect("params")
}

/// Runs stage `S` in a unit test on one input holding `tables` (see [`run_with_inputs`]).
#[cfg(test)]
pub(crate) fn run_for_test<S: Stage>(
    params: &S::Params,
    tables: impl IntoIterator<Item = (String, arrow::record_batch::RecordBatch)>,
) -> Result<(Output, tempfile::TempDir), StageError> {
    let inputs = [Input {
        stage: "upstream".into(),
        tables: tables.into_iter().collect(),
        ..Default::default()
    }];
    run_with_inputs::<S>(params, &inputs)
}

/// Runs stage `S` in a unit test on `inputs`, with a temp dir as root and output directory
/// (kept alive by the returned guard). As the engine does, the params are validated and their
/// externals resolved (offline) first.
#[cfg(test)]
pub(crate) fn run_with_inputs<S: Stage>(
    params: &S::Params,
    inputs: &[Input],
) -> Result<(Output, tempfile::TempDir), StageError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = PrepareEnv {
        root: dir.path(),
        offline: true,
    };
    S::validate(params, &env)?;
    let externals = S::externals(params, &env)?;
    let cancelled = std::sync::atomic::AtomicBool::new(false);
    let ctx = Context {
        stage: S::KIND,
        root: dir.path(),
        inputs,
        externals: &externals,
        out_dir: dir.path(),
        device: Device::Cpu,
        offline: true,
        progress: &NoProgress,
        cancelled: &cancelled,
    };
    S::run(params, &ctx).map(|out| (out, dir))
}
