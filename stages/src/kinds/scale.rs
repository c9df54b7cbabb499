//! `scale`: per-feature scaling of a vector column, fitted on one split and applied to all (the
//! chapter's `MinMaxScaler` before UMAP).
//!
//! Matches scikit-learn: `min-max` is `MinMaxScaler()` ((x − min) / (max − min), computed as
//! `x · scale + min_` in f32 like scikit-learn on f32 input; a feature whose range is below
//! 10 · f32 ε is constant and maps to 0); `standard` is `StandardScaler()` (population variance
//! in f64; a feature whose variance is within rounding error of 0 keeps scale 1).
//!
//! Output: every split with the column replaced by its scaled values (same name and type), and
//! the fitted parameters as the file `scaler.json`.

use serde::{Deserialize, Serialize};

use crate::api::{Arity, Context, Output, Stage, StageError};
use crate::columns::matrix::{self, Matrix};
use crate::columns::table::{self, hidden_state, train};

/// How to scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleMethod {
    /// Each feature to [0, 1] on the fit split (scikit-learn `MinMaxScaler`).
    MinMax,
    /// Each feature to mean 0, variance 1 on the fit split (scikit-learn `StandardScaler`).
    Standard,
}

/// Params of `scale`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScaleParams {
    /// `min-max` or `standard`. Default `min-max`.
    #[serde(default = "min_max")]
    pub method: ScaleMethod,
    /// The vector column (`FixedSizeList<Float32>`). Default `hidden_state`.
    #[serde(default = "hidden_state")]
    pub column: String,
    /// The split the scaler is fitted on. Default `train`.
    #[serde(default = "train")]
    pub fit_split: String,
}

fn min_max() -> ScaleMethod {
    ScaleMethod::MinMax
}

/// A fitted scaler: `y = f32((x − offset) / scale)` for standard, `y = x · mul + add` (f32) for
/// min-max — each exactly as scikit-learn evaluates it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged, rename_all_fields = "kebab-case")]
pub enum Scaler {
    MinMax {
        data_min: Vec<f32>,
        data_max: Vec<f32>,
        /// scikit-learn's `scale_`: 1 / (max − min), 1 for constant features.
        scale: Vec<f32>,
        /// scikit-learn's `min_`: −min · scale.
        min: Vec<f32>,
    },
    Standard {
        mean: Vec<f64>,
        var: Vec<f64>,
        /// √var, 1 for constant features.
        scale: Vec<f64>,
    },
}

impl Scaler {
    /// Fits on the rows of `x`.
    pub fn fit(method: ScaleMethod, x: &Matrix) -> Scaler {
        match method {
            ScaleMethod::MinMax => Scaler::fit_min_max(x),
            ScaleMethod::Standard => Scaler::fit_standard(x),
        }
    }

    /// scikit-learn's `MinMaxScaler` fit.
    fn fit_min_max(x: &Matrix) -> Scaler {
        let d = x.cols;
        let mut lo = vec![f32::INFINITY; d];
        let mut hi = vec![f32::NEG_INFINITY; d];
        for i in 0..x.rows {
            for (j, &v) in x.row(i).iter().enumerate() {
                // NaN-ignoring like np.nanmin / np.nanmax.
                if v < lo[j] {
                    lo[j] = v;
                }
                if v > hi[j] {
                    hi[j] = v;
                }
            }
        }
        let scale: Vec<f32> = lo
            .iter()
            .zip(&hi)
            .map(|(&l, &h)| {
                let range = h - l;
                // scikit-learn's _handle_zeros_in_scale.
                if range < 10.0 * f32::EPSILON {
                    1.0
                } else {
                    1.0 / range
                }
            })
            .collect();
        let min = lo.iter().zip(&scale).map(|(&l, &s)| 0.0 - l * s).collect();
        Scaler::MinMax {
            data_min: lo,
            data_max: hi,
            scale,
            min,
        }
    }

    /// scikit-learn's `StandardScaler` fit (population variance).
    fn fit_standard(x: &Matrix) -> Scaler {
        let d = x.cols;
        let n = x.rows as f64;
        let mut mean = vec![0.0f64; d];
        for i in 0..x.rows {
            for (m, &v) in mean.iter_mut().zip(x.row(i)) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; d];
        for i in 0..x.rows {
            for ((s, &v), &m) in var.iter_mut().zip(x.row(i)).zip(&mean) {
                let t = v as f64 - m;
                *s += t * t;
            }
        }
        var.iter_mut().for_each(|s| *s /= n);
        let scale = var
            .iter()
            .zip(&mean)
            .map(|(&v, &m)| {
                // scikit-learn's _is_constant_feature: variance within rounding error.
                let eps = f64::EPSILON;
                let bound = n * eps * v + (n * m * eps).powi(2);
                if v <= bound { 1.0 } else { v.sqrt() }
            })
            .collect();
        Scaler::Standard { mean, var, scale }
    }

    pub fn features(&self) -> usize {
        match self {
            Scaler::MinMax { scale, .. } => scale.len(),
            Scaler::Standard { scale, .. } => scale.len(),
        }
    }

    /// Features treated as constant (scale 1 where the data has no spread).
    pub fn constant_features(&self) -> usize {
        match self {
            Scaler::MinMax {
                data_min, data_max, ..
            } => data_min
                .iter()
                .zip(data_max)
                .filter(|(l, h)| *h - *l < 10.0 * f32::EPSILON)
                .count(),
            Scaler::Standard { var, scale, .. } => var
                .iter()
                .zip(scale)
                .filter(|(v, s)| **s == 1.0 && v.sqrt() != 1.0)
                .count(),
        }
    }

    /// Scales `x` in place.
    pub fn apply(&self, x: &mut Matrix) {
        assert_eq!(x.cols, self.features());
        match self {
            Scaler::MinMax { scale, min, .. } => {
                for i in 0..x.rows {
                    for ((v, &s), &m) in x.row_mut(i).iter_mut().zip(scale).zip(min) {
                        // Two f32 roundings, as `X *= scale_; X += min_`.
                        let t = *v * s;
                        *v = t + m;
                    }
                }
            }
            Scaler::Standard { mean, scale, .. } => {
                for i in 0..x.rows {
                    for ((v, &m), &s) in x.row_mut(i).iter_mut().zip(mean).zip(scale) {
                        // f32 data, f64 parameters: `X -= mean_; X /= scale_` rounds each step.
                        let t = (*v as f64 - m) as f32;
                        *v = (t as f64 / s) as f32;
                    }
                }
            }
        }
    }
}

/// What `scaler.json` holds.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ScalerFile<'a> {
    method: ScaleMethod,
    column: &'a str,
    fit_split: &'a str,
    n_samples: usize,
    n_features: usize,
    #[serde(flatten)]
    params: &'a Scaler,
}

/// `scale`: fit a scaler on one split, apply it to all.
pub struct Scale;

impl Stage for Scale {
    type Params = ScaleParams;
    const KIND: &'static str = "scale";
    /// Bump when the scaling arithmetic changes.
    const VERSION: u32 = 2; // 2: non-finite numbers are refused, never turned into a result
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "min-max or standard scaling of a vector column, fitted on one split (scikit-learn's)";

    fn run(p: &ScaleParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let fit = input.table_named_by("fit-split", &p.fit_split)?;
        let x = matrix::read(fit, &p.column, &p.fit_split)?;
        if x.rows == 0 {
            return Err(StageError::failed(format!(
                "split `{}` is empty: nothing to fit the scaler on",
                p.fit_split
            )));
        }
        let scaler = Scaler::fit(p.method, &x);
        drop(x);
        let file = ScalerFile {
            method: p.method,
            column: &p.column,
            fit_split: &p.fit_split,
            n_samples: fit.num_rows(),
            n_features: scaler.features(),
            params: &scaler,
        };
        let json =
            serde_json::to_vec_pretty(&file).map_err(|e| StageError::failed(e.to_string()))?;
        fs_err::write(ctx.out_dir.join("scaler.json"), json)?;

        let mut output = Output::default();
        for (split, batch) in &input.tables {
            ctx.check_cancelled()?;
            let mut m = matrix::read(batch, &p.column, split)?;
            if m.cols != scaler.features() {
                return Err(StageError::failed(format!(
                    "split `{split}`: `{}` has {} features, the scaler was fitted on {}",
                    p.column,
                    m.cols,
                    scaler.features()
                )));
            }
            scaler.apply(&mut m);
            let col = matrix::to_column(m, matrix::item_field(batch, &p.column));
            output.tables.insert(
                split.clone(),
                table::with_columns(batch, vec![(p.column.as_str(), col)], &[])?,
            );
        }
        output
            .metrics
            .insert("n-features".into(), scaler.features().into());
        output.metrics.insert(
            "constant-features".into(),
            scaler.constant_features().into(),
        );
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Matrix {
        // Column 0: 1, 3, 2 → min 1, max 3. Column 1 constant 5. Column 2: -2, 0, 4.
        Matrix::new(3, 3, vec![1.0, 5.0, -2.0, 3.0, 5.0, 0.0, 2.0, 5.0, 4.0])
    }

    #[test]
    fn min_max_by_hand() {
        let s = Scaler::fit(ScaleMethod::MinMax, &x());
        let mut m = x();
        s.apply(&mut m);
        let want = [0.0, 0.0, 0.0, 1.0, 0.0, 2.0 / 6.0, 0.5, 0.0, 1.0];
        for (g, w) in m.data.iter().zip(want) {
            assert!((g - w).abs() < 1e-7, "{:?}", m.data);
        }
        assert_eq!(s.constant_features(), 1);
        // Other splits are not clipped: 5 in column 0 is (5 - 1) / 2 = 2.
        let mut other = Matrix::new(1, 3, vec![5.0, 6.0, -8.0]);
        s.apply(&mut other);
        assert_eq!(other.data, vec![2.0, 1.0, -1.0]);
    }

    #[test]
    fn standard_by_hand() {
        let s = Scaler::fit(ScaleMethod::Standard, &x());
        let Scaler::Standard { mean, var, .. } = &s else {
            panic!()
        };
        assert_eq!(mean, &vec![2.0, 5.0, 2.0 / 3.0]);
        // Population variance: column 0 = ((1-2)² + 1² + 0) / 3 = 2/3.
        assert!((var[0] - 2.0 / 3.0).abs() < 1e-12);
        let mut m = x();
        s.apply(&mut m);
        let sd0 = (2.0f64 / 3.0).sqrt();
        let sd2 = ((8.0f64 / 3.0).powi(2) + (2.0f64 / 3.0).powi(2) + (10.0f64 / 3.0).powi(2)) / 3.0;
        let sd2 = sd2.sqrt();
        let want = [
            -1.0 / sd0,
            0.0,
            (-8.0 / 3.0) / sd2,
            1.0 / sd0,
            0.0,
            (-2.0 / 3.0) / sd2,
            0.0,
            0.0,
            (10.0 / 3.0) / sd2,
        ];
        for (g, w) in m.data.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{:?}", m.data);
        }
        assert_eq!(s.constant_features(), 1);
    }

    #[test]
    fn method_names_in_yaml() {
        let p: ScaleParams = crate::params_from_yaml("method: standard\nfit-split: validation");
        assert_eq!(p.method, ScaleMethod::Standard);
        assert_eq!(p.column, "hidden_state");
        let p: ScaleParams = crate::params_from_yaml("{}");
        assert_eq!(p.method, ScaleMethod::MinMax);
    }

    #[test]
    fn stage_fits_on_train_applies_everywhere_and_writes_the_scaler() {
        use std::collections::{BTreeMap, HashMap};
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;

        use arrow::array::{ArrayRef, Int64Array};
        use arrow::datatypes::Schema;
        use arrow::record_batch::RecordBatch;

        use crate::api::{Device, Input, NoProgress};
        use crate::columns::labels;

        let names: Vec<String> = ["sadness", "joy"].map(String::from).to_vec();
        let batch = |m: Matrix| {
            let n = m.rows;
            let b = RecordBatch::try_from_iter([
                ("hidden_state", matrix::to_column(m, None)),
                ("label", Arc::new(Int64Array::from(vec![0; n])) as ArrayRef),
            ])
            .unwrap();
            let meta: HashMap<String, String> =
                labels::metadata("label", &names).into_iter().collect();
            let schema = Schema::new(b.schema().fields().clone()).with_metadata(meta);
            b.with_schema(Arc::new(schema)).unwrap()
        };
        let tables = BTreeMap::from([
            ("train".to_string(), batch(x())),
            (
                "test".to_string(),
                batch(Matrix::new(1, 3, vec![5.0, 6.0, -8.0])),
            ),
        ]);
        let inputs = [Input {
            stage: "features".into(),
            tables,
            ..Default::default()
        }];
        let dir = tempfile::tempdir().unwrap();
        let cancelled = AtomicBool::new(false);
        let ctx = Context {
            stage: "scale",
            root: dir.path(),
            inputs: &inputs,
            externals: &[],
            out_dir: dir.path(),
            device: Device::Cpu,
            offline: true,
            progress: &NoProgress,
            cancelled: &cancelled,
        };
        let p: ScaleParams = crate::params_from_yaml("{}");
        let out = Scale::run(&p, &ctx).unwrap();
        let test = &out.tables["test"];
        assert_eq!(
            matrix::read(test, "hidden_state", "test").unwrap().data,
            vec![2.0, 1.0, -1.0]
        );
        assert_eq!(labels::label_names(&test.schema()).unwrap(), names);
        assert_eq!(out.metrics["constant-features"], 1);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("scaler.json")).unwrap())
                .unwrap();
        assert_eq!(json["method"], "min-max");
        assert_eq!(json["n-samples"], 3);
        assert_eq!(json["data-max"][0], 3.0);
        assert_eq!(json["scale"][0], 0.5);

        let p: ScaleParams = crate::params_from_yaml("fit-split: validation");
        let err = Scale::run(&p, &ctx).unwrap_err();
        assert!(
            matches!(&err, StageError::Param { field, .. } if field == "fit-split"),
            "{err:?}"
        );
    }
}
