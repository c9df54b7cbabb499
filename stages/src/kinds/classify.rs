//! `classify`: the chapter's classifiers on feature vectors (the hidden states of a frozen
//! encoder): `logistic-regression` (scikit-learn's `LogisticRegression`, multinomial, L2,
//! lbfgs; see [`crate::ml::logreg`]) and `most-frequent` (`DummyClassifier(strategy=
//! "most_frequent")`, the baseline). Fits on one split, predicts every split.
//!
//! Output per split: the input's columns less the features, plus `pred: int64` (label id),
//! `probs: fixed_size_list<float32>[k]` (k = number of label names, or the largest id + 1; the
//! probability of label `i` is entry `i`, 0 for labels absent from the fit split) and
//! `loss: float32` (cross-entropy of the true label, null where the row has none). File
//! `model.json`: the fitted model. Metrics: accuracy per labelled split; for logistic
//! regression also `n_iter` and `converged`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{Arity, Context, Output, PrepareEnv, Stage, StageError};
use crate::columns::labels::{ClassWeight, WeightRule};
use crate::columns::matrix::{fixed_size_list_f32, read_f64 as matrix};
use crate::columns::table::ids;
use crate::ml::logreg;
use crate::numeric::argmax;
use crate::{columns::labels, columns::table};

/// Which classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Multinomial logistic regression, L2 penalty, L-BFGS (scikit-learn's default solver).
    LogisticRegression,
    /// Always the most frequent label of the fit split (ties: the smallest id).
    MostFrequent,
}

/// Params of `classify`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClassifyParams {
    /// `logistic-regression` or `most-frequent`. Required.
    pub method: Method,
    /// The feature column (`fixed_size_list<float32>`). Default `hidden_state`.
    #[serde(default = "hidden_state")]
    pub features: String,
    /// The label-id column (integers). Default `label`.
    #[serde(default = "label")]
    pub label: String,
    /// The split the classifier is fitted on. Default `train`.
    #[serde(default = "crate::columns::table::train")]
    pub fit_split: String,
    /// Inverse L2 strength, as scikit-learn's `C` (logistic regression). Default 1.0.
    #[serde(default = "one", rename = "C", alias = "c")]
    pub c: f64,
    /// L-BFGS iterations at most (logistic regression). Default 3000 (the chapter's;
    /// scikit-learn's default is 100).
    #[serde(default = "max_iter")]
    pub max_iter: usize,
    /// Stop when the largest gradient component is at most this (scikit-learn's `tol`).
    /// Default 1e-4.
    #[serde(default = "tol")]
    pub tol: f64,
    /// scikit-learn's `class_weight` (logistic regression): `balanced` (n / (k · count) per
    /// class) or a weight per label name (id when the labels have no names; others 1). Unset:
    /// every row counts 1 (and the fingerprint is as before the param existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weight: Option<ClassWeight>,
}

fn hidden_state() -> String {
    "hidden_state".into()
}
fn label() -> String {
    "label".into()
}
fn one() -> f64 {
    1.0
}
fn max_iter() -> usize {
    3000
}
fn tol() -> f64 {
    1e-4
}

impl ClassifyParams {
    fn check(&self) -> Result<(), StageError> {
        if !(self.c.is_finite() && self.c > 0.0) {
            return Err(StageError::param(
                "C",
                format!("C must be a positive number, got {}", self.c),
                Some("scikit-learn's default is 1.0; smaller means more regularisation".into()),
            ));
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(StageError::param(
                "tol",
                format!("tol must be a non-negative number, got {}", self.tol),
                None,
            ));
        }
        if self.max_iter == 0 {
            return Err(StageError::param(
                "max-iter",
                "max-iter must be at least 1",
                None,
            ));
        }
        self.check_class_weight()
    }

    fn check_class_weight(&self) -> Result<(), StageError> {
        match (&self.class_weight, self.method) {
            (None, _) => Ok(()),
            (Some(_), Method::MostFrequent) => Err(StageError::param(
                "class-weight",
                "class-weight applies to logistic-regression; most-frequent ignores weights",
                None,
            )),
            (Some(weights), _) => weights.check(),
        }
    }
}

/// What was fitted, as written to `model.json`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum SavedModel {
    LogisticRegression {
        /// The label ids seen in the fit split, sorted: row/column order of the model.
        classes: Vec<i64>,
        /// scikit-learn's `coef_`: one row per class (one row, for the second class, when
        /// there are two classes).
        coefficients: Vec<Vec<f64>>,
        intercepts: Vec<f64>,
        n_iter: usize,
        converged: bool,
        /// Mean cross-entropy plus penalty at the end.
        objective: f64,
        #[serde(rename = "C")]
        c: f64,
        max_iter: usize,
        tol: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class_weight: Option<ClassWeight>,
    },
    MostFrequent {
        classes: Vec<i64>,
        /// Fraction of each class in the fit split (scikit-learn's `class_prior_`).
        class_prior: Vec<f64>,
        /// The label always predicted.
        constant: i64,
    },
}

/// Probabilities over the model's classes, n × classes.len(), and −log p(true) per row where
/// computable exactly (logistic regression: from the logits).
struct Predicted {
    probs: Vec<f64>,
    exact_loss: Option<Box<dyn Fn(usize, usize) -> f64>>,
}

/// Predicts one split: probabilities over the fitted classes.
type Predictor = Box<dyn Fn(&RecordBatch, &str) -> Result<Predicted, StageError>>;

/// −log p with p clipped to ε, as scikit-learn's `log_loss` does.
fn clipped_log_loss(p: f64) -> f64 {
    -p.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln()
}

/// `classify`: logistic regression or most-frequent baseline.
pub struct Classify;

impl Stage for Classify {
    type Params = ClassifyParams;
    const KIND: &'static str = "classify";
    /// Bump when the fit or the outputs change.
    const VERSION: u32 = 2; // 2: non-finite numbers are refused, never turned into a result
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str = "fit logistic regression or a most-frequent baseline on feature vectors; predict every split";

    fn validate(p: &ClassifyParams, _env: &PrepareEnv) -> Result<(), StageError> {
        p.check()
    }

    fn run(p: &ClassifyParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let fit_batch = input.table_named_by("fit-split", &p.fit_split)?;
        let fit = FitLabels::read(p, fit_batch)?;
        let started = Instant::now();
        let (saved, predict) = match p.method {
            Method::MostFrequent => most_frequent(&fit),
            Method::LogisticRegression => logistic_regression(p, ctx, fit_batch, &fit)?,
        };
        tracing::info!(
            stage = ctx.stage,
            "fitted {:?} on `{}` in {:.2}s",
            p.method,
            p.fit_split,
            started.elapsed().as_secs_f64()
        );
        let iterations = match &saved {
            SavedModel::LogisticRegression {
                n_iter, converged, ..
            } => Some((*n_iter, *converged)),
            SavedModel::MostFrequent { .. } => None,
        };
        if let Some((n_iter, converged)) = iterations {
            ctx.progress
                .message(&format!("n_iter {n_iter}, converged {converged}"));
        }

        let mut output = Output::default();
        for (split, batch) in &input.tables {
            ctx.check_cancelled()?;
            let (table, accuracy) = predict_split(p, &fit, &predict, batch, split)?;
            if let Some(accuracy) = accuracy {
                output
                    .metrics
                    .insert(split.clone(), json!({ "accuracy": accuracy }));
            }
            output.tables.insert(split.clone(), table);
        }
        if let Some((n_iter, converged)) = iterations {
            output.metrics.insert("n_iter".into(), json!(n_iter));
            output.metrics.insert("converged".into(), json!(converged));
        }
        let text = serde_json::to_string_pretty(&saved).expect("model serializes");
        fs_err::write(ctx.out_dir.join("model.json"), text + "\n")?;
        Ok(output)
    }
}

/// The labels of the fit split and the classes they make.
struct FitLabels {
    /// One label id per row.
    y: Vec<i64>,
    /// The distinct ids, sorted: the model's class order.
    classes: Vec<i64>,
    /// Position of each id in `classes`.
    class_index: BTreeMap<i64, usize>,
    /// Width of `probs`: every named label, and every id seen.
    k_out: usize,
    /// The label names the table carries, if any (for `class-weight` keys).
    names: Option<Vec<String>>,
}

impl FitLabels {
    /// The fit split's labels: every row has one, a non-negative id; there is at least one row.
    fn read(p: &ClassifyParams, batch: &RecordBatch) -> Result<FitLabels, StageError> {
        let names = labels::label_names(&batch.schema());
        let y: Vec<i64> = ids(batch, &p.label, &p.fit_split)?
            .into_iter()
            .enumerate()
            .map(|(row, y)| match y {
                Some(y) if y >= 0 => Ok(y),
                other => Err(StageError::failed(format!(
                    "split `{}` (fit split), row {row}: label {} is not a label id",
                    p.fit_split,
                    other.map_or("null".to_string(), |v| v.to_string())
                ))),
            })
            .collect::<Result<_, _>>()?;
        if y.is_empty() {
            return Err(StageError::failed(format!(
                "split `{}` (fit split) has no rows",
                p.fit_split
            )));
        }
        let mut classes = y.clone();
        classes.sort_unstable();
        classes.dedup();
        let k_out = names
            .as_ref()
            .map_or(0, Vec::len)
            .max(*classes.last().expect("non-empty") as usize + 1);
        let class_index = classes.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        Ok(FitLabels {
            y,
            classes,
            class_index,
            k_out,
            names,
        })
    }
}

/// The most frequent label of the fit split (the smallest id on ties, as numpy's argmax),
/// predicted for every row with probability 1.
fn most_frequent(fit: &FitLabels) -> (SavedModel, Predictor) {
    let mut counts = vec![0usize; fit.classes.len()];
    for y in &fit.y {
        counts[fit.class_index[y]] += 1;
    }
    let best = argmax(&counts.iter().map(|&c| c as f64).collect::<Vec<_>>());
    let nc = fit.classes.len();
    let saved = SavedModel::MostFrequent {
        classes: fit.classes.clone(),
        class_prior: counts
            .iter()
            .map(|&c| c as f64 / fit.y.len() as f64)
            .collect(),
        constant: fit.classes[best],
    };
    let predict = Box::new(move |batch: &RecordBatch, _: &str| {
        let mut probs = vec![0.0; batch.num_rows() * nc];
        for row in probs.chunks_exact_mut(nc) {
            row[best] = 1.0;
        }
        Ok(Predicted {
            probs,
            exact_loss: None,
        })
    });
    (saved, predict)
}

/// Fits multinomial logistic regression on the fit split's features (at least two classes);
/// the predictor refuses a split whose features have another width.
fn logistic_regression(
    p: &ClassifyParams,
    ctx: &Context,
    fit_batch: &RecordBatch,
    fit: &FitLabels,
) -> Result<(SavedModel, Predictor), StageError> {
    let classes = &fit.classes;
    if classes.len() < 2 {
        return Err(StageError::failed(format!(
            "split `{}` has only one label ({}): logistic regression needs at least two",
            p.fit_split, classes[0]
        )));
    }
    let (x, d) = matrix(fit_batch, &p.features, &p.fit_split)?;
    let y: Vec<usize> = fit.y.iter().map(|y| fit.class_index[y]).collect();
    let weights = class_weights(p, fit, &y)?;
    let data = logreg::Data {
        x: &x,
        d,
        y: &y,
        k: classes.len(),
        weights: weights.as_deref(),
    };
    let fitted = fit_logreg(p, ctx, &data)?;
    let saved = SavedModel::LogisticRegression {
        classes: classes.clone(),
        coefficients: fitted.model.coef.clone(),
        intercepts: fitted.model.intercept.clone(),
        n_iter: fitted.n_iter,
        converged: fitted.stop.converged(),
        objective: fitted.objective,
        c: p.c,
        max_iter: p.max_iter,
        tol: p.tol,
        class_weight: p.class_weight.clone(),
    };
    let model = fitted.model;
    let features = p.features.clone();
    let predict = Box::new(move |batch: &RecordBatch, split: &str| {
        let (x, width) = matrix(batch, &features, split)?;
        if width != d {
            return Err(StageError::failed(format!(
                "split `{split}`: `{features}` has {width} values per row, the fit split has {d}"
            )));
        }
        let pred = model.predict(&x);
        let probs = pred.probs.clone();
        Ok(Predicted {
            probs,
            exact_loss: Some(Box::new(move |i, c| pred.cross_entropy(i, c))),
        })
    });
    Ok((saved, predict))
}

/// Each fit row's weight from `class-weight`, or `None` without it (every row counts 1).
fn class_weights(
    p: &ClassifyParams,
    fit: &FitLabels,
    y: &[usize],
) -> Result<Option<Vec<f64>>, StageError> {
    let k = fit.classes.len();
    let per_class = match &p.class_weight {
        None => return Ok(None),
        Some(ClassWeight::Rule(WeightRule::Balanced)) => logreg::balanced_class_weights(y, k),
        Some(ClassWeight::PerLabel(map)) => {
            let mut weights = vec![1.0; k];
            for (label, &weight) in map {
                weights[class_of(p, fit, label)?] = weight;
            }
            weights
        }
    };
    Ok(Some(logreg::row_weights(y, &per_class)))
}

/// The model class a `class-weight` key names: a label name, or an id when there are none.
fn class_of(p: &ClassifyParams, fit: &FitLabels, label: &str) -> Result<usize, StageError> {
    let id = match &fit.names {
        Some(names) => names.iter().position(|n| n == label).map(|i| i as i64),
        None => label.parse::<i64>().ok(),
    };
    id.and_then(|id| fit.class_index.get(&id).copied())
        .ok_or_else(|| {
            let known: Vec<String> = fit
                .classes
                .iter()
                .map(|&c| {
                    fit.names
                        .as_deref()
                        .and_then(|n| labels::int2str(n, c))
                        .map_or(c.to_string(), str::to_string)
                })
                .collect();
            StageError::failed(format!(
                "class-weight names label `{label}`, which split `{}` does not have (labels: {})",
                p.fit_split,
                known.join(", ")
            ))
        })
}

/// Runs L-BFGS with progress and cancellation; a fit that stops before converging is logged.
fn fit_logreg(
    p: &ClassifyParams,
    ctx: &Context,
    data: &logreg::Data,
) -> Result<logreg::Fitted, StageError> {
    let settings = logreg::Settings {
        c: p.c,
        max_iter: p.max_iter,
        tol: p.tol,
    };
    ctx.progress.set_total(p.max_iter as u64, "iter");
    ctx.progress.message(&format!(
        "fitting on {} rows × {} features, {} classes",
        data.y.len(),
        data.d,
        data.k
    ));
    let fitted = logreg::fit(data, &settings, |_, _| {
        ctx.progress.advance(1);
        !ctx.cancelled.load(std::sync::atomic::Ordering::Relaxed)
    });
    ctx.check_cancelled()?;
    if !fitted.stop.converged() {
        tracing::warn!(
            stage = ctx.stage,
            "logistic regression stopped before converging ({:?} after {} iterations); raise max-iter or scale the features",
            fitted.stop,
            fitted.n_iter
        );
    }
    Ok(fitted)
}

/// One split's output table (its columns less the features, plus `pred`, `probs` and `loss`)
/// and its accuracy when it has labels.
fn predict_split(
    p: &ClassifyParams,
    fit: &FitLabels,
    predict: &Predictor,
    batch: &RecordBatch,
    split: &str,
) -> Result<(RecordBatch, Option<f64>), StageError> {
    let predicted = predict(batch, split)?;
    let (classes, k_out) = (&fit.classes, fit.k_out);
    let nc = classes.len();
    let n = batch.num_rows();
    // A split without labels (new text to predict) gets predictions and no loss.
    let truth = if batch.column_by_name(&p.label).is_some() {
        ids(batch, &p.label, split)?
    } else {
        vec![None; n]
    };
    let mut pred = Vec::with_capacity(n);
    let mut probs = vec![0f32; n * k_out];
    let mut loss = Vec::with_capacity(n);
    let (mut correct, mut labelled) = (0usize, 0usize);
    for i in 0..n {
        let row = &predicted.probs[i * nc..(i + 1) * nc];
        let best = classes[argmax(row)];
        pred.push(best);
        for (c, &v) in classes.iter().zip(row) {
            probs[i * k_out + *c as usize] = v as f32;
        }
        let l = truth[i].and_then(|y| {
            if y < 0 {
                return None;
            }
            labelled += 1;
            correct += usize::from(y == best);
            let l = match (fit.class_index.get(&y), &predicted.exact_loss) {
                (Some(&c), Some(exact)) => exact(i, c),
                (Some(&c), None) => clipped_log_loss(row[c]),
                (None, _) => clipped_log_loss(0.0),
            };
            Some(l as f32)
        });
        loss.push(l);
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("pred", Arc::new(Int64Array::from(pred))),
        ("probs", fixed_size_list_f32(probs, k_out)),
        ("loss", Arc::new(Float32Array::from(loss))),
    ];
    let accuracy = (labelled > 0).then(|| correct as f64 / labelled as f64);
    Ok((without_column(batch, &p.features, columns)?, accuracy))
}

/// `batch` without column `drop`, plus `columns` (replacing same-named ones), keeping the
/// schema metadata (label names).
fn without_column(
    batch: &RecordBatch,
    drop: &str,
    columns: Vec<(&str, ArrayRef)>,
) -> Result<RecordBatch, StageError> {
    let schema = batch.schema();
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| schema.field(i).name() != drop)
        .collect();
    let projected = batch.project(&keep)?;
    let projected = RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(
            projected.schema().fields().clone(),
            schema.metadata().clone(),
        )),
        projected.columns().to_vec(),
    )?;
    table::with_columns(&projected, columns, &[])
}

#[cfg(test)]
mod tests {

    use arrow::array::AsArray;
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field};

    use super::*;

    /// A feature table with label names, as extract-hidden writes one.
    pub(crate) fn features_table(x: &[Vec<f32>], y: &[i64], names: &[&str]) -> RecordBatch {
        let d = x[0].len();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let schema = Schema::new(vec![
            Field::new("text", DataType::Utf8, false),
            Field::new("label", DataType::Int64, false),
            Field::new(
                "hidden_state",
                DataType::FixedSizeList(
                    Arc::new(Field::new_list_field(DataType::Float32, false)),
                    d as i32,
                ),
                false,
            ),
        ])
        .with_metadata(
            labels::metadata("label", &names)
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        let text: Vec<String> = (0..y.len()).map(|i| format!("text {i}")).collect();
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(text)),
                Arc::new(Int64Array::from(y.to_vec())),
                fixed_size_list_f32(x.iter().flatten().copied().collect(), d),
            ],
        )
        .unwrap()
    }

    fn run_stage(
        p: &ClassifyParams,
        tables: Vec<(&str, RecordBatch)>,
    ) -> (Output, tempfile::TempDir) {
        crate::run_for_test::<Classify>(p, tables.into_iter().map(|(s, b)| (s.to_string(), b)))
            .unwrap()
    }

    fn params(yaml: &str) -> ClassifyParams {
        crate::params_from_yaml(yaml)
    }

    #[test]
    fn most_frequent_breaks_ties_towards_the_smallest_id_like_scikit_learn() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/classify/dummy.json"
        );
        let fx: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let y: Vec<i64> = serde_json::from_value(fx["y"].clone()).unwrap();
        let x: Vec<Vec<f32>> = y.iter().map(|_| vec![0.0]).collect();
        let train = features_table(&x, &y, &["a", "b", "c", "d"]);
        let valid = features_table(&x[..2], &[0, 2], &["a", "b", "c", "d"]);
        let (out, dir) = run_stage(
            &params("method: most-frequent"),
            vec![("train", train), ("validation", valid)],
        );
        let v = &out.tables["validation"];
        let pred = ids(v, "pred", "validation").unwrap();
        let want: Vec<Option<i64>> = serde_json::from_value::<Vec<i64>>(fx["pred"].clone())
            .unwrap()
            .into_iter()
            .map(Some)
            .collect();
        assert_eq!(pred, want);
        // One-hot of the constant, as scikit-learn's predict_proba; width = label names (4).
        let (probs, k) = matrix(v, "probs", "validation").unwrap();
        assert_eq!(k, 4);
        assert_eq!(&probs[..4], &[1.0, 0.0, 0.0, 0.0]);
        let loss = v
            .column_by_name("loss")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float32Type>();
        assert!(loss.value(0) < 1e-12, "{}", loss.value(0));
        assert!(
            (loss.value(1) - 36.04365).abs() < 1e-3,
            "−ln ε: {}",
            loss.value(1)
        );
        assert_eq!(out.metrics["validation"]["accuracy"], json!(0.5));
        assert!(v.column_by_name("hidden_state").is_none());
        assert_eq!(labels::label_names(&v.schema()).unwrap().len(), 4);
        let model: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("model.json")).unwrap())
                .unwrap();
        assert_eq!(model["constant"], json!(0));
        assert_eq!(model["method"], json!("most-frequent"));
    }

    #[test]
    fn logistic_regression_stage_matches_scikit_learn_and_is_deterministic() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/classify/logreg.json"
        );
        let fx: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let p = &fx["multiclass"];
        let x: Vec<Vec<f32>> = serde_json::from_value(p["X"].clone()).unwrap();
        let y: Vec<i64> = serde_json::from_value(p["y"].clone()).unwrap();
        let want = &p["default"];
        let run = || {
            run_stage(
                &params("method: logistic-regression"),
                vec![("train", features_table(&x, &y, &["x", "y", "z"]))],
            )
        };
        let (a, dir_a) = run();
        let (b, dir_b) = run();
        assert_eq!(a.tables["train"], b.tables["train"]);
        assert_eq!(a.metrics, b.metrics);
        let model_a = std::fs::read(dir_a.path().join("model.json")).unwrap();
        assert_eq!(
            model_a,
            std::fs::read(dir_b.path().join("model.json")).unwrap()
        );
        assert_eq!(a.metrics["n_iter"], want["n_iter"]);
        assert_eq!(a.metrics["converged"], json!(true));
        let t = &a.tables["train"];
        let (probs, _) = matrix(t, "probs", "train").unwrap();
        let want_probs: Vec<f64> = serde_json::from_value::<Vec<Vec<f64>>>(want["probs"].clone())
            .unwrap()
            .concat();
        for (g, w) in probs.iter().zip(&want_probs) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        let pred: Vec<i64> = ids(t, "pred", "train")
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(
            pred,
            serde_json::from_value::<Vec<i64>>(want["pred"].clone()).unwrap()
        );
        let acc = pred.iter().zip(&y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64;
        assert_eq!(a.metrics["train"]["accuracy"], json!(acc));
    }

    #[test]
    fn class_weight_by_label_name_matches_scikit_learn_and_is_checked() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/classify/logreg_weighted.json"
        );
        let fx: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let p = &fx["multiclass"];
        let x: Vec<Vec<f32>> = serde_json::from_value(p["X"].clone()).unwrap();
        let y: Vec<i64> = serde_json::from_value(p["y"].clone()).unwrap();
        let train = || features_table(&x, &y, &["a", "b", "c"]);
        // The fixture's {1: 3.0, 2: 0.5} with C 0.5, written by label name.
        let yaml =
            "method: logistic-regression\nC: 0.5\ntol: 1e-10\nclass-weight: {b: 3.0, c: 0.5}";
        let (_, dir) = run_stage(&params(yaml), vec![("train", train())]);
        let model: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("model.json")).unwrap())
                .unwrap();
        let got: Vec<f64> = serde_json::from_value(model["coefficients"][1].clone()).unwrap();
        let want: Vec<f64> = serde_json::from_value(p["map"]["coef"][1].clone()).unwrap();
        // The stage fits float32 features widened to f64, as the fixture's float64 ones.
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs scikit-learn {want:?}");
        }
        let unknown = params("method: logistic-regression\nclass-weight: {z: 2.0}");
        let e = crate::run_for_test::<Classify>(&unknown, [("train".to_string(), train())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("label `z`") && e.contains("labels: a, b, c"),
            "{e}"
        );
        let dummy = params("method: most-frequent\nclass-weight: balanced");
        let e = Classify::validate(&dummy, &test_env()).unwrap_err();
        assert!(
            e.to_string().contains("applies to logistic-regression"),
            "{e}"
        );
        let zero = params("method: logistic-regression\nclass-weight: {a: 0}");
        assert!(Classify::validate(&zero, &test_env()).is_err());
    }

    fn test_env() -> PrepareEnv<'static> {
        PrepareEnv {
            root: std::path::Path::new("."),
            offline: true,
        }
    }

    #[test]
    fn a_split_without_labels_gets_predictions_and_no_loss() {
        let x = vec![
            vec![0.0f32, 1.0],
            vec![1.0, 0.0],
            vec![0.9, 0.1],
            vec![0.1, 0.8],
        ];
        let train = features_table(&x, &[1, 0, 0, 1], &["a", "b"]);
        let unlabelled = train.project(&[0, 2]).unwrap();
        let (out, _dir) = run_stage(
            &params("method: logistic-regression"),
            vec![("train", train), ("new", unlabelled)],
        );
        let new = &out.tables["new"];
        assert_eq!(new.column_by_name("loss").unwrap().null_count(), 4);
        assert_eq!(
            ids(new, "pred", "new").unwrap(),
            [Some(1), Some(0), Some(0), Some(1)]
        );
        assert!(out.metrics.contains_key("train") && !out.metrics.contains_key("new"));
    }

    #[test]
    fn params_are_checked() {
        let bad = params("{method: logistic-regression, C: 0}");
        let err = bad.check().unwrap_err();
        assert!(
            matches!(err, StageError::Param { ref field, .. } if field == "C"),
            "{err:?}"
        );
        let p = params("method: most-frequent");
        assert_eq!((p.c, p.max_iter, p.tol), (1.0, 3000, 1e-4));
        assert_eq!(p.features, "hidden_state");
    }
}
