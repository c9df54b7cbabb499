//! PCA by eigen-decomposition of the covariance matrix (scikit-learn's `covariance_eigh`
//! solver, which it picks for tall dense data like 16k × 384): center, `C = XcᵀXc / (n − 1)`,
//! top eigenvectors. Signs follow scikit-learn's `svd_flip(u_based_decision=False)`: the entry
//! of largest magnitude in each component is positive.

use crate::columns::matrix::{Matrix, matmul_transposed};
use crate::ml::manifold::eigen::symmetric_eigen;

/// A fitted PCA.
#[derive(Debug, Clone)]
pub struct Pca {
    pub mean: Vec<f64>,
    /// `k` components of length `d`, row after row.
    pub components: Vec<f64>,
    pub explained_variance: Vec<f64>,
    pub explained_variance_ratio: Vec<f64>,
    pub k: usize,
    pub d: usize,
}

impl Pca {
    /// Fits `k` components on the rows of `x` (needs at least 2 rows).
    pub fn fit(x: &Matrix, k: usize) -> Pca {
        let (n, d) = (x.rows, x.cols);
        assert!(n >= 2 && k <= d);
        let mut mean = vec![0.0f64; d];
        for i in 0..n {
            for (m, &v) in mean.iter_mut().zip(x.row(i)) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        // Centered data, transposed (d × n), so C = XcᵀXc is one A·Bᵀ product.
        let mut xt = vec![0.0f64; d * n];
        for i in 0..n {
            for (j, &v) in x.row(i).iter().enumerate() {
                xt[j * n + i] = v as f64 - mean[j];
            }
        }
        let mut cov = vec![0.0f64; d * d];
        matmul_transposed(&xt, &xt, &mut cov, d, d, n, 1.0f64);
        cov.iter_mut().for_each(|c| *c /= (n - 1) as f64);
        let total: f64 = (0..d).map(|j| cov[j * d + j]).sum();
        let (values, vectors) = symmetric_eigen(&cov, d);
        let mut components = vec![0.0f64; k * d];
        for c in 0..k {
            let comp = &mut components[c * d..(c + 1) * d];
            for (j, v) in comp.iter_mut().enumerate() {
                *v = vectors[j * d + c];
            }
            let biggest = comp
                .iter()
                .copied()
                .fold(0.0f64, |b, v| if v.abs() > b.abs() { v } else { b });
            if biggest < 0.0 {
                comp.iter_mut().for_each(|v| *v = -*v);
            }
        }
        let explained_variance: Vec<f64> = values[..k].iter().map(|v| v.max(0.0)).collect();
        let explained_variance_ratio = explained_variance
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect();
        Pca {
            mean,
            components,
            explained_variance,
            explained_variance_ratio,
            k,
            d,
        }
    }

    /// Projects the rows of `x` onto the components (`n × k`).
    pub fn transform(&self, x: &Matrix) -> Matrix {
        assert_eq!(x.cols, self.d);
        let mut out = Matrix::zeros(x.rows, self.k);
        for i in 0..x.rows {
            let row = x.row(i);
            for c in 0..self.k {
                let comp = &self.components[c * self.d..(c + 1) * self.d];
                let s: f64 = row
                    .iter()
                    .zip(&self.mean)
                    .zip(comp)
                    .map(|((&v, m), w)| (v as f64 - m) * w)
                    .sum();
                out.data[i * self.k + c] = s as f32;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_decomposition_up_to_sign() {
        // Points built from orthonormal directions u = (3, 4, 0)/5 and w = (0, 0, 1) with
        // uncorrelated coefficients, more spread along u than along w, mean (1, 2, 3).
        let u = [0.6, 0.8, 0.0];
        let w = [0.0, 0.0, 1.0];
        let coef = [
            (-4.0, 1.0),
            (-2.0, -1.0),
            (0.0, 0.0),
            (2.0, -1.0),
            (4.0, 1.0),
        ];
        let mut data = Vec::new();
        for (a, b) in coef {
            for j in 0..3 {
                data.push((1.0 + j as f64 + a * u[j] + b * w[j]) as f32);
            }
        }
        let x = Matrix::new(5, 3, data);
        let pca = Pca::fit(&x, 2);
        for j in 0..3 {
            assert!(
                (pca.components[j].abs() - u[j]).abs() < 1e-6,
                "{:?}",
                pca.components
            );
            assert!((pca.components[3 + j].abs() - w[j]).abs() < 1e-6);
        }
        // Variance along u: (16 + 4 + 0 + 4 + 16) / 4 = 10; along w: 4 / 4 (a and b uncorrelated).
        assert!((pca.explained_variance[0] - 10.0).abs() < 1e-5);
        assert!((pca.explained_variance[1] - 1.0).abs() < 1e-5);
        let y = pca.transform(&x);
        for (i, (a, b)) in coef.iter().enumerate() {
            assert!((y.data[i * 2].abs() - (*a as f32).abs()).abs() < 1e-5);
            assert!((y.data[i * 2 + 1].abs() - (*b as f32).abs()).abs() < 1e-5);
        }
        // svd_flip: the largest entry of each component is positive.
        assert!(pca.components[1] > 0.0 && pca.components[5] > 0.0);
    }
}
