//! `project`: a vector column down to 2-D (UMAP or PCA) to look at, as the chapter does before
//! training a classifier: does the feature space separate the labels at all?
//!
//! Output, per projected split: `x`, `y` (Float32; `z`, `c3`, ... for more components) plus
//! every column but the vector column, with the schema metadata (label names) kept. Files:
//! `projection.png`, one hexbin density panel per label of the fit split (titled by label name,
//! three per row, like the chapter's figure). Metrics: `trustworthiness` (k = n-neighbors, the
//! chosen metric, on the fit split, as scikit-learn's `trustworthiness`), `n-points`, and for
//! UMAP `n-epochs` and `init`; for PCA `explained-variance-ratio`.
//!
//! UMAP places only the split it is fitted on (umap-learn's `transform` of new points is not
//! implemented); PCA fits on one split and projects all.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float32Array};
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::api::{Arity, Context, Input, Output, PrepareEnv, Stage, StageError};
use crate::columns::labels;
use crate::columns::matrix::{self, Matrix};
use crate::columns::table;
use crate::columns::table::{hidden_state, train};
use crate::figures::hexbin::{self, Panel};
use crate::ml::manifold::knn::Metric;
use crate::ml::manifold::pca::Pca;
use crate::ml::manifold::trust::trustworthiness;
use crate::ml::manifold::umap::{self, Hooks, Init, UmapConfig};

/// How to project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProjectMethod {
    /// UMAP, as umap-learn (fit split only).
    Umap,
    /// Principal components (fit on one split, applied to all).
    Pca,
}

/// Params of `project`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProjectParams {
    /// `umap` or `pca`. Default `umap`.
    #[serde(default = "umap_method")]
    pub method: ProjectMethod,
    /// UMAP: neighbours per point (local vs global structure); also the k of trustworthiness.
    /// Default 15.
    #[serde(default = "fifteen")]
    pub n_neighbors: usize,
    /// UMAP: how tightly points may pack in the layout. Default 0.1.
    #[serde(default = "min_dist")]
    pub min_dist: f64,
    /// Distance between feature vectors: `cosine` (the chapter's) or `euclidean`. Default
    /// `cosine`.
    #[serde(default = "cosine")]
    pub metric: Metric,
    /// Dimensions of the layout (columns `x`, `y`, `z`, `c3`, ...). Default 2.
    #[serde(default = "two")]
    pub n_components: usize,
    /// UMAP: seed of the initial-layout noise and negative sampling; same seed, same layout.
    /// Default 42.
    #[serde(default = "seed")]
    pub seed: u64,
    /// UMAP: optimisation epochs. Default: umap-learn's, 500 up to 10,000 points, else 200.
    #[serde(default)]
    pub n_epochs: Option<usize>,
    /// The vector column (`FixedSizeList<Float32>`). Default `hidden_state`.
    #[serde(default = "hidden_state")]
    pub column: String,
    /// The split the projection is fitted on (and the figure drawn from). Default `train`.
    #[serde(default = "train")]
    pub fit_split: String,
    /// Splits to project. Default: the fit split for UMAP, every split for PCA.
    #[serde(default)]
    pub splits: Option<Vec<String>>,
    /// Score the layout with trustworthiness (k = n-neighbors) on the fit split. Costs one more
    /// pass over all pairs of points (about as long as UMAP's nearest-neighbour search: a few
    /// seconds for 16k × 384). Default true.
    #[serde(default = "yes")]
    pub trustworthiness: bool,
}

fn umap_method() -> ProjectMethod {
    ProjectMethod::Umap
}
fn fifteen() -> usize {
    15
}
fn min_dist() -> f64 {
    0.1
}
fn cosine() -> Metric {
    Metric::Cosine
}
fn two() -> usize {
    2
}
fn seed() -> u64 {
    42
}
fn yes() -> bool {
    true
}

/// Column names of the layout's dimensions.
pub fn component_names(k: usize) -> Vec<String> {
    (0..k)
        .map(|i| match i {
            0 => "x".to_string(),
            1 => "y".to_string(),
            2 => "z".to_string(),
            _ => format!("c{i}"),
        })
        .collect()
}

/// `batch` without the vector column, plus the layout columns (metadata kept).
fn layout_table(batch: &RecordBatch, drop: &str, y: &Matrix) -> Result<RecordBatch, StageError> {
    let keep: Vec<usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name() != drop)
        .map(|(i, _)| i)
        .collect();
    let base = batch.project(&keep)?;
    let names = component_names(y.cols);
    let cols: Vec<(&str, ArrayRef)> = names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            (
                name.as_str(),
                Arc::new(Float32Array::from(y.column(c))) as ArrayRef,
            )
        })
        .collect();
    table::with_columns(&base, cols, &[])
}

/// Draws the figure of `layout` (rows of `batch`) to `path`: what the stage writes as
/// `projection.png`.
pub fn draw(
    path: &std::path::Path,
    batch: &RecordBatch,
    layout: &Matrix,
) -> Result<(), StageError> {
    hexbin::hexbin_grid(path, &panels(batch, layout), 20)
}

/// One panel per label of `batch` (by the recorded label column, else `label`), titled by the
/// label names when recorded; a single panel when there are no labels.
fn panels(batch: &RecordBatch, y: &Matrix) -> Vec<Panel> {
    let schema = batch.schema();
    let names = labels::label_names(&schema);
    let column = labels::label_column(&schema).unwrap_or("label");
    let points: Vec<(f32, f32)> = (0..y.rows)
        .map(|i| (y.data[i * y.cols], y.data[i * y.cols + 1]))
        .collect();
    let ids = batch
        .column_by_name(column)
        .filter(|c| c.data_type().is_integer())
        .and_then(|c| arrow::compute::cast(c, &DataType::Int64).ok());
    let Some(ids) = ids else {
        return vec![Panel {
            title: "all points".into(),
            points,
        }];
    };
    let ids = ids.as_primitive::<Int64Type>();
    let mut present: Vec<i64> = ids.iter().flatten().collect();
    present.sort_unstable();
    present.dedup();
    // Every named label gets a panel, even an empty one; ids outside the names too.
    let mut order: Vec<i64> = match &names {
        Some(n) => (0..n.len() as i64).collect(),
        None => Vec::new(),
    };
    for id in present {
        if !order.contains(&id) {
            order.push(id);
        }
    }
    order
        .into_iter()
        .map(|id| Panel {
            title: names
                .as_deref()
                .and_then(|n| labels::int2str(n, id))
                .map(str::to_string)
                .unwrap_or_else(|| format!("{column} {id}")),
            points: (0..y.rows)
                .filter(|&i| ids.is_valid(i) && ids.value(i) == id)
                .map(|i| points[i])
                .collect(),
        })
        .collect()
}

/// `project`: UMAP or PCA layout, a figure, and the layout's trustworthiness.
pub struct Project;

impl Stage for Project {
    type Params = ProjectParams;
    const KIND: &'static str = "project";
    /// Bump when the layout computation changes.
    const VERSION: u32 = 2; // 2: non-finite numbers are refused, never turned into a result
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "UMAP or PCA of a vector column to x, y; hexbin figure per label; trustworthiness";

    fn validate(p: &ProjectParams, _env: &PrepareEnv) -> Result<(), StageError> {
        if p.n_components < 2 {
            return Err(StageError::param(
                "n-components",
                format!(
                    "n-components is {}: the layout needs at least 2",
                    p.n_components
                ),
                None,
            ));
        }
        if let (Some(splits), ProjectMethod::Umap) = (&p.splits, p.method)
            && let Some(s) = splits.iter().find(|s| **s != p.fit_split)
        {
            return Err(StageError::param(
                "splits",
                format!(
                    "UMAP places only the split it is fitted on (`{}`), not `{s}`",
                    p.fit_split
                ),
                Some("use `method: pca` to project every split, or fit on that split".into()),
            ));
        }
        if p.n_neighbors < 2 {
            return Err(StageError::param(
                "n-neighbors",
                "n-neighbors must be at least 2",
                None,
            ));
        }
        Ok(())
    }

    fn run(p: &ProjectParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let fit = input.table_named_by("fit-split", &p.fit_split)?;
        let splits = chosen_splits(p, input)?;
        let x = matrix::read(fit, &p.column, &p.fit_split)?;
        let min_rows = (2 * p.n_neighbors + 1).max(p.n_components + 2);
        if x.rows < min_rows {
            return Err(StageError::failed(format!(
                "split `{}` has {} rows; projecting with n-neighbors {} needs at least {min_rows}",
                p.fit_split, x.rows, p.n_neighbors
            )));
        }
        let mut output = Output::default();
        let fit_layout = match p.method {
            ProjectMethod::Umap => umap_layout(p, ctx, &x, fit, &mut output)?,
            ProjectMethod::Pca => pca_layout(p, ctx, &x, input, &splits, &mut output)?,
        };
        output.metrics.insert("n-points".into(), x.rows.into());
        ctx.progress.message("figure");
        draw(&ctx.out_dir.join("projection.png"), fit, &fit_layout)?;
        if p.trustworthiness {
            ctx.progress.message("trustworthiness");
            let cancelled = || ctx.cancelled.load(std::sync::atomic::Ordering::Relaxed);
            let t = trustworthiness(&x, &fit_layout, p.n_neighbors, p.metric, &cancelled)
                .ok_or(StageError::Cancelled)?;
            output
                .metrics
                .insert("trustworthiness".into(), serde_json::json!(t));
        }
        Ok(output)
    }
}

/// The splits to project (`splits`, each of which the input must have), by default the fit
/// split for UMAP and every split for PCA.
fn chosen_splits(p: &ProjectParams, input: &Input) -> Result<Vec<String>, StageError> {
    let splits: Vec<String> = match (&p.splits, p.method) {
        (Some(s), _) => s.clone(),
        (None, ProjectMethod::Umap) => vec![p.fit_split.clone()],
        (None, ProjectMethod::Pca) => input.tables.keys().cloned().collect(),
    };
    for s in &splits {
        input.table_named_by("splits", s)?;
    }
    Ok(splits)
}

/// Fits UMAP on the fit split `x` (rows of `fit`); its layout table, `n-epochs` and `init` go
/// to `output`. Returns the layout.
fn umap_layout(
    p: &ProjectParams,
    ctx: &Context,
    x: &Matrix,
    fit: &RecordBatch,
    output: &mut Output,
) -> Result<Matrix, StageError> {
    let cfg = UmapConfig {
        n_neighbors: p.n_neighbors,
        min_dist: p.min_dist,
        metric: p.metric,
        n_components: p.n_components,
        n_epochs: p.n_epochs,
        seed: p.seed,
        ..UmapConfig::default()
    };
    let cancelled = || ctx.cancelled.load(std::sync::atomic::Ordering::Relaxed);
    let phase = |m: &str| ctx.progress.message(m);
    let epochs = |total: usize, done: usize| {
        if done == 0 {
            ctx.progress.set_total(total as u64, "epochs");
        } else {
            ctx.progress.advance(1);
        }
    };
    let hooks = Hooks {
        cancelled: &cancelled,
        phase: &phase,
        epochs: &epochs,
    };
    let r = umap::fit(x, &cfg, &hooks).ok_or(StageError::Cancelled)?;
    output.metrics.insert("n-epochs".into(), r.n_epochs.into());
    let init = match r.init {
        Init::Spectral => "spectral",
        Init::Pca => "pca",
    };
    output.metrics.insert("init".into(), init.into());
    let layout = r.embedding;
    output
        .tables
        .insert(p.fit_split.clone(), layout_table(fit, &p.column, &layout)?);
    Ok(layout)
}

/// Fits PCA on the fit split `x` and projects every split of `splits` (their tables go to
/// `output`, with `explained-variance-ratio`). Returns the fit split's layout.
fn pca_layout(
    p: &ProjectParams,
    ctx: &Context,
    x: &Matrix,
    input: &Input,
    splits: &[String],
    output: &mut Output,
) -> Result<Matrix, StageError> {
    if p.n_components > x.cols {
        return Err(StageError::param(
            "n-components",
            format!(
                "n-components is {} but `{}` has {} features",
                p.n_components, p.column, x.cols
            ),
            None,
        ));
    }
    ctx.progress.message("principal components");
    let pca = Pca::fit(x, p.n_components);
    output.metrics.insert(
        "explained-variance-ratio".into(),
        serde_json::json!(pca.explained_variance_ratio),
    );
    for s in splits {
        ctx.check_cancelled()?;
        let batch = &input.tables[s];
        let m = matrix::read(batch, &p.column, s)?;
        if m.cols != x.cols {
            return Err(StageError::failed(format!(
                "split `{s}`: `{}` has {} features, `{}` has {}",
                p.column, m.cols, p.fit_split, x.cols
            )));
        }
        let y = pca.transform(&m);
        output
            .tables
            .insert(s.clone(), layout_table(batch, &p.column, &y)?);
    }
    Ok(pca.transform(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::Schema;

    fn features(n: usize) -> RecordBatch {
        // Three blobs in 8-D, labels 0..3, label names in the metadata.
        let mut rng = crate::ml::rng::Rng::new(5);
        let mut data = Vec::new();
        let mut label = Vec::new();
        for i in 0..n {
            let c = i % 3;
            label.push(c as i64);
            for j in 0..8 {
                let centre = if j % 3 == c { 6.0 } else { 0.0 };
                data.push((centre + rng.normal()) as f32);
            }
        }
        let col = matrix::to_column(Matrix::new(n, 8, data), None);
        let batch = RecordBatch::try_from_iter([
            ("hidden_state", col),
            ("label", Arc::new(Int64Array::from(label)) as ArrayRef),
            (
                "text",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("t{i}")),
                )) as ArrayRef,
            ),
        ])
        .unwrap();
        let names: Vec<String> = ["sadness", "joy", "love"].map(String::from).to_vec();
        let meta: std::collections::HashMap<String, String> =
            labels::metadata("label", &names).into_iter().collect();
        let schema = Schema::new(batch.schema().fields().clone()).with_metadata(meta);
        batch.with_schema(Arc::new(schema)).unwrap()
    }

    fn run(yaml: &str, tables: BTreeMap<String, RecordBatch>) -> (Output, tempfile::TempDir) {
        let p: ProjectParams = crate::params_from_yaml(yaml);
        crate::run_for_test::<Project>(&p, tables).unwrap()
    }

    #[test]
    fn umap_stage_writes_layout_figure_and_trustworthiness() {
        let tables = BTreeMap::from([("train".to_string(), features(300))]);
        let (out, dir) = run("n-epochs: 100", tables);
        let t = &out.tables["train"];
        let names: Vec<String> = t
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["label", "text", "x", "y"]);
        assert_eq!(
            labels::label_names(&t.schema()).unwrap(),
            ["sadness", "joy", "love"]
        );
        let trust = out.metrics["trustworthiness"].as_f64().unwrap();
        assert!(trust > 0.8, "{trust}");
        let png = std::fs::read(dir.path().join("projection.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn pca_projects_every_split_and_umap_refuses_other_splits() {
        let tables = BTreeMap::from([
            ("train".to_string(), features(90)),
            ("test".to_string(), features(30)),
        ]);
        let (out, _dir) = run("method: pca\ntrustworthiness: false", tables);
        assert_eq!(out.tables["test"].num_rows(), 30);
        assert!(!out.metrics.contains_key("trustworthiness"));
        let ratio = out.metrics["explained-variance-ratio"].as_array().unwrap();
        assert_eq!(ratio.len(), 2);

        let p: ProjectParams = crate::params_from_yaml("splits: [train, test]");
        let env = PrepareEnv {
            root: std::path::Path::new("."),
            offline: true,
        };
        // Refused when the pipeline is resolved, before any stage runs.
        let err = Project::validate(&p, &env).unwrap_err().to_string();
        assert!(
            err.contains("UMAP places only the split it is fitted on"),
            "{err}"
        );
    }
}
