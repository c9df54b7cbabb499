//! Multinomial logistic regression with an L2 penalty, fitted as scikit-learn's
//! `LogisticRegression(solver="lbfgs")` fits it, so the chapter's classifier gives the same
//! numbers here:
//!
//! - objective: mean cross-entropy + ‖W‖² / (2·C·n) (scikit-learn scales `C·Σ loss + ½‖W‖²` by
//!   1/(C·n), which changes nothing at the optimum but sets the scale its `tol` applies to);
//!   intercepts are not penalised;
//! - more than two classes: one weight row per class (softmax over k logits); two classes: one
//!   row for the second class against a fixed zero logit for the first (scikit-learn's binary
//!   model, which is *not* the k = 2 multinomial one: the penalty differs);
//! - start at zero, minimise with [`crate::ml::lbfgs`] (SciPy's L-BFGS-B behaviour), m = 10,
//!   `gtol = tol`, `ftol = 64·ε`, 50 line-search evaluations, as scikit-learn sets them.
//!
//! The loss and gradient run over fixed blocks of rows (X·Wᵀ and Gᵀ·X as small GEMMs), in
//! parallel, and the blocks' sums are added in block order: the result does not depend on the
//! number of threads.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ml::lbfgs;
use crate::numeric::argmax;

/// Rows per block of the loss/gradient pass: a block of 384-wide f64 features is 1.5 MiB.
const BLOCK: usize = 512;

/// Features in row-major f64 and class indices `0..k`.
pub struct Data<'a> {
    /// n × d, row-major.
    pub x: &'a [f64],
    pub d: usize,
    /// Class index of each row, in `0..k`.
    pub y: &'a [usize],
    /// Number of classes (≥ 2).
    pub k: usize,
    /// Per-row weights (scikit-learn's `sample_weight` after `class_weight`); `None`: all 1.
    /// The objective is then Σ wᵢ·lossᵢ / Σ wᵢ + ‖W‖² / (2·C·Σ wᵢ), as scikit-learn scales it.
    pub weights: Option<&'a [f64]>,
}

impl Data<'_> {
    pub fn n(&self) -> usize {
        self.y.len()
    }
}

/// Fit settings (scikit-learn's names and defaults, except `max_iter`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Inverse regularisation strength. scikit-learn default 1.0.
    pub c: f64,
    /// L-BFGS iterations at most.
    pub max_iter: usize,
    /// Stop when the largest gradient component is at most this. scikit-learn default 1e-4.
    pub tol: f64,
}

/// A fitted model: `rows` weight vectors (k, or 1 for two classes) over `d` features.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    /// `rows` × `d`, row-major: scikit-learn's `coef_`.
    pub coef: Vec<Vec<f64>>,
    /// scikit-learn's `intercept_`.
    pub intercept: Vec<f64>,
    /// Number of classes the probabilities range over.
    pub k: usize,
}

/// The model and how the optimisation went.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub model: Model,
    /// L-BFGS iterations (scikit-learn's `n_iter_`).
    pub n_iter: usize,
    /// Objective evaluations.
    pub n_fev: usize,
    /// The objective at the end: mean cross-entropy plus penalty.
    pub objective: f64,
    pub stop: lbfgs::Stop,
}

/// Weight rows the model has for `k` classes.
fn param_rows(k: usize) -> usize {
    if k == 2 { 1 } else { k }
}

/// Writes the k logits of `z` (the `rows` raw scores of one example) into `out`.
fn logits_of(z: &[f64], k: usize, out: &mut [f64]) {
    if k == 2 {
        out[0] = 0.0;
        out[1] = z[0];
    } else {
        out.copy_from_slice(z);
    }
}

/// In place softmax; returns log Σ exp(zᵢ).
fn softmax(z: &mut [f64]) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
    max + sum.ln()
}

/// Raw scores Z = X_block · Wᵀ + b for a block of rows; `w` is rows × (d + 1) (intercept last).
fn scores(xb: &[f64], d: usize, w: &[f64], rows: usize, z: &mut [f64]) {
    let nb = xb.len() / d;
    // SAFETY: the strides describe xb (nb × d), w's first d columns read as d × rows, and z
    // (nb × rows), all in bounds.
    unsafe {
        matrixmultiply::dgemm(
            nb,
            d,
            rows,
            1.0,
            xb.as_ptr(),
            d as isize,
            1,
            w.as_ptr(),
            1,
            (d + 1) as isize,
            0.0,
            z.as_mut_ptr(),
            rows as isize,
            1,
        );
    }
    for zi in z.chunks_exact_mut(rows) {
        for (r, v) in zi.iter_mut().enumerate() {
            *v += w[r * (d + 1) + d];
        }
    }
}

/// Σ cross-entropy over one block and its gradient (rows × (d + 1)), unscaled.
fn block_loss_grad(data: &Data, start: usize, w: &[f64], grad: &mut [f64]) -> f64 {
    let (d, k) = (data.d, data.k);
    let rows = param_rows(k);
    let end = (start + BLOCK).min(data.n());
    let nb = end - start;
    let xb = &data.x[start * d..end * d];
    let mut z = vec![0.0; nb * rows];
    scores(xb, d, w, rows, &mut z);
    // z becomes G = ∂loss/∂z: p − onehot(y), over the parameter rows.
    let mut p = vec![0.0; k];
    let mut loss = 0.0;
    for (i, zi) in z.chunks_exact_mut(rows).enumerate() {
        let y = data.y[start + i];
        logits_of(zi, k, &mut p);
        let zy = p[y];
        let row_loss = softmax(&mut p) - zy;
        p[y] -= 1.0;
        match data.weights {
            None => loss += row_loss,
            Some(w) => {
                let wi = w[start + i];
                loss += wi * row_loss;
                p.iter_mut().for_each(|g| *g *= wi);
            }
        }
        if k == 2 {
            zi[0] = p[1];
        } else {
            zi.copy_from_slice(&p);
        }
    }
    // SAFETY: Gᵀ read from z (nb × rows) with swapped strides, xb is nb × d, and grad's
    // first d columns of each of its `rows` rows (row stride d + 1) are written.
    unsafe {
        matrixmultiply::dgemm(
            rows,
            nb,
            d,
            1.0,
            z.as_ptr(),
            1,
            rows as isize,
            xb.as_ptr(),
            d as isize,
            1,
            0.0,
            grad.as_mut_ptr(),
            (d + 1) as isize,
            1,
        );
    }
    for r in 0..rows {
        grad[r * (d + 1) + d] = z.iter().skip(r).step_by(rows).sum();
    }
    loss
}

/// The objective and its gradient at `w` (rows × (d + 1)).
pub fn objective(data: &Data, c: f64, w: &[f64], grad: &mut [f64]) -> f64 {
    let (n, d) = (data.n(), data.d);
    let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
    let parts: Vec<(f64, Vec<f64>)> = starts
        .par_iter()
        .map(|&s| {
            let mut g = vec![0.0; w.len()];
            let l = block_loss_grad(data, s, w, &mut g);
            (l, g)
        })
        .collect();
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut loss = 0.0;
    for (l, g) in &parts {
        loss += l;
        grad.iter_mut().zip(g).for_each(|(a, b)| *a += b);
    }
    // scikit-learn divides by the number of rows, or by the sum of the weights when given.
    let sw_sum = data.weights.map_or(n as f64, |w| w.iter().sum());
    let inv_n = 1.0 / sw_sum;
    let l2 = 1.0 / (c * sw_sum);
    let mut penalty = 0.0;
    for (j, (g, wj)) in grad.iter_mut().zip(w).enumerate() {
        *g *= inv_n;
        if j % (d + 1) != d {
            *g += l2 * wj;
            penalty += wj * wj;
        }
    }
    loss * inv_n + 0.5 * l2 * penalty
}

/// Fits the model from zero. `callback(iter, objective)` returns false to stop early.
pub fn fit(data: &Data, s: &Settings, callback: impl FnMut(usize, f64) -> bool) -> Fitted {
    let (d, k) = (data.d, data.k);
    let rows = param_rows(k);
    let opts = lbfgs::Options {
        m: 10,
        max_iter: s.max_iter,
        max_fun: 15000,
        gtol: s.tol,
        ftol: 64.0 * f64::EPSILON,
        max_ls: 50,
    };
    let min = lbfgs::minimize(
        |w, g| objective(data, s.c, w, g),
        &vec![0.0; rows * (d + 1)],
        &opts,
        callback,
    );
    let coef = min.x.chunks_exact(d + 1).map(|r| r[..d].to_vec()).collect();
    let intercept = min.x.chunks_exact(d + 1).map(|r| r[d]).collect();
    Fitted {
        model: Model { coef, intercept, k },
        n_iter: min.n_iter,
        n_fev: min.n_fev,
        objective: min.f,
        stop: min.stop,
    }
}

/// scikit-learn's `class_weight="balanced"`: n / (k · count of the class), per class.
/// A class with no rows gets weight 0 (it contributes nothing either way).
pub fn balanced_class_weights(y: &[usize], k: usize) -> Vec<f64> {
    let mut counts = vec![0usize; k];
    y.iter().for_each(|&c| counts[c] += 1);
    let n = y.len() as f64;
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                n / (k as f64 * c as f64)
            }
        })
        .collect()
}

/// Each row's weight from its class's weight (scikit-learn's `sample_weight *= class_weight_[y]`).
pub fn row_weights(y: &[usize], class_weights: &[f64]) -> Vec<f64> {
    y.iter().map(|&c| class_weights[c]).collect()
}

impl Model {
    /// Class probabilities (n × k, row-major) and per-row log Σ exp of the logits, for `x`
    /// (n × d, row-major).
    pub fn predict(&self, x: &[f64]) -> Prediction {
        let d = self.coef.first().map_or(0, Vec::len);
        let rows = self.coef.len();
        let k = self.k;
        let w: Vec<f64> = self
            .coef
            .iter()
            .zip(&self.intercept)
            .flat_map(|(c, b)| c.iter().copied().chain([*b]))
            .collect();
        let n = x.len().checked_div(d).unwrap_or(0);
        let mut probs = vec![0.0; n * k];
        let mut logits = vec![0.0; n * k];
        probs
            .par_chunks_mut(BLOCK * k)
            .zip(logits.par_chunks_mut(BLOCK * k))
            .enumerate()
            .for_each(|(b, (pb, lb))| {
                let nb = pb.len() / k;
                let xb = &x[b * BLOCK * d..(b * BLOCK + nb) * d];
                let mut z = vec![0.0; nb * rows];
                scores(xb, d, &w, rows, &mut z);
                for i in 0..nb {
                    let l = &mut lb[i * k..(i + 1) * k];
                    logits_of(&z[i * rows..(i + 1) * rows], k, l);
                    let p = &mut pb[i * k..(i + 1) * k];
                    p.copy_from_slice(l);
                    softmax(p);
                }
            });
        Prediction { probs, logits, k }
    }
}

/// What [`Model::predict`] returns.
pub struct Prediction {
    /// n × k, row-major.
    pub probs: Vec<f64>,
    /// n × k, row-major (the first is 0 for a binary model).
    pub logits: Vec<f64>,
    pub k: usize,
}

impl Prediction {
    /// argmax of each row (the first on ties, as numpy's).
    pub fn classes(&self) -> Vec<usize> {
        self.probs.chunks_exact(self.k).map(argmax).collect()
    }

    /// −log p(y) of row `i`, from the logits (no rounding to 0 of tiny probabilities).
    pub fn cross_entropy(&self, i: usize, y: usize) -> f64 {
        let l = &self.logits[i * self.k..(i + 1) * self.k];
        let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + l.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        lse - l[y]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Case {
        coef: Vec<Vec<f64>>,
        intercept: Vec<f64>,
        n_iter: usize,
        probs: Vec<Vec<f64>>,
        pred: Vec<usize>,
    }

    #[derive(Deserialize)]
    struct Problem {
        #[serde(rename = "X")]
        x: Vec<Vec<f64>>,
        y: Vec<usize>,
        #[serde(flatten)]
        cases: std::collections::BTreeMap<String, Case>,
    }

    fn fixture() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/classify/logreg.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn problem(name: &str) -> Problem {
        serde_json::from_value(fixture()[name].clone()).unwrap()
    }

    fn run(p: &Problem, c: f64, tol: f64) -> (Fitted, Prediction) {
        run_weighted(p, c, tol, None)
    }

    fn run_weighted(
        p: &Problem,
        c: f64,
        tol: f64,
        class_weights: Option<&[f64]>,
    ) -> (Fitted, Prediction) {
        let x: Vec<f64> = p.x.iter().flatten().copied().collect();
        let k = p.y.iter().max().unwrap() + 1;
        let weights = class_weights.map(|w| row_weights(&p.y, w));
        let data = Data {
            x: &x,
            d: p.x[0].len(),
            y: &p.y,
            k,
            weights: weights.as_deref(),
        };
        let settings = Settings {
            c,
            max_iter: 3000,
            tol,
        };
        let fitted = fit(&data, &settings, |_, _| true);
        let pred = fitted.model.predict(&x);
        (fitted, pred)
    }

    fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "{what}[{i}]: {g} vs scikit-learn {w}");
        }
    }

    fn check(fitted: &Fitted, pred: &Prediction, want: &Case, tol: f64) {
        let coef: Vec<f64> = fitted.model.coef.iter().flatten().copied().collect();
        let want_coef: Vec<f64> = want.coef.iter().flatten().copied().collect();
        assert_close("coef", &coef, &want_coef, tol);
        assert_close("intercept", &fitted.model.intercept, &want.intercept, tol);
        let probs: Vec<f64> = want.probs.iter().flatten().copied().collect();
        assert_close("probs", &pred.probs, &probs, tol);
        assert_eq!(pred.classes(), want.pred);
    }

    #[test]
    fn multiclass_matches_scikit_learn_at_a_tight_tolerance() {
        let p = problem("multiclass");
        // scikit-learn stores coef_ in the features' dtype (float32): compare to ~1e-6.
        let (fitted, pred) = run(&p, 1.0, 1e-10);
        check(&fitted, &pred, &p.cases["tight"], 2e-6);
        let (fitted, pred) = run(&p, 0.1, 1e-10);
        check(&fitted, &pred, &p.cases["c_0_1"], 2e-6);
    }

    #[test]
    fn default_tolerance_stops_where_scikit_learn_stops() {
        let p = problem("multiclass");
        let want = &p.cases["default"];
        let (fitted, pred) = run(&p, 1.0, 1e-4);
        assert!(fitted.stop.converged(), "{fitted:?}");
        assert_eq!(fitted.n_iter, want.n_iter, "{fitted:?}");
        check(&fitted, &pred, want, 1e-5);
    }

    fn weighted_problem(name: &str) -> Problem {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/classify/logreg_weighted.json"
        );
        let all: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        serde_json::from_value(all[name].clone()).unwrap()
    }

    #[test]
    fn class_weights_match_scikit_learn_balanced_and_explicit() {
        let p = weighted_problem("multiclass");
        let balanced = balanced_class_weights(&p.y, 3);
        // 48 rows as 30/12/6: 48 / (3 · count).
        assert_eq!(balanced, [48.0 / 90.0, 48.0 / 36.0, 48.0 / 18.0]);
        let (fitted, pred) = run_weighted(&p, 1.0, 1e-10, Some(&balanced));
        check(&fitted, &pred, &p.cases["balanced"], 2e-6);
        let (fitted, pred) = run_weighted(&p, 0.5, 1e-10, Some(&[1.0, 3.0, 0.5]));
        check(&fitted, &pred, &p.cases["map"], 2e-6);
        let unweighted = run(&p, 1.0, 1e-10).0.model.coef;
        let balanced_coef = run_weighted(&p, 1.0, 1e-10, Some(&balanced)).0.model.coef;
        assert_ne!(unweighted, balanced_coef, "the weights must change the fit");

        let p = weighted_problem("binary");
        let balanced = balanced_class_weights(&p.y, 2);
        let (fitted, pred) = run_weighted(&p, 1.0, 1e-10, Some(&balanced));
        check(&fitted, &pred, &p.cases["balanced"], 2e-6);
    }

    #[test]
    fn binary_has_one_weight_row_like_scikit_learn() {
        let p = problem("binary");
        let (fitted, pred) = run(&p, 1.0, 1e-10);
        assert_eq!(fitted.model.coef.len(), 1);
        check(&fitted, &pred, &p.cases["tight"], 2e-6);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = [0.5, -1.0, 2.0, 0.0, 1.5, 1.0, -0.5, 0.25];
        let y = [0, 2, 1, 2];
        for k in [2usize, 3] {
            let y: Vec<usize> = y.iter().map(|&c| c % k).collect();
            let data = Data {
                x: &x,
                d: 2,
                y: &y,
                k,
                weights: None,
            };
            let w: Vec<f64> = (0..param_rows(k) * 3)
                .map(|i| 0.1 * i as f64 - 0.2)
                .collect();
            let mut g = vec![0.0; w.len()];
            objective(&data, 0.7, &w, &mut g);
            for j in 0..w.len() {
                let (mut a, mut b) = (w.clone(), w.clone());
                a[j] += 1e-6;
                b[j] -= 1e-6;
                let mut tmp = vec![0.0; w.len()];
                let num = (objective(&data, 0.7, &a, &mut tmp)
                    - objective(&data, 0.7, &b, &mut tmp))
                    / 2e-6;
                assert!((num - g[j]).abs() < 1e-7, "k={k} j={j}: {num} vs {}", g[j]);
            }
        }
    }
}
