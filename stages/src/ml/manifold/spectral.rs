//! The spectral initial layout umap-learn uses: eigenvectors 2..=dim+1 of the symmetric
//! normalized Laplacian L = I − D^-½ W D^-½ of the fuzzy graph (the smallest eigenvalues after the
//! trivial one), i.e. the largest eigenvalues of M = D^-½ W D^-½.
//!
//! umap-learn calls ARPACK. Here: Chebyshev-filtered subspace iteration (a polynomial in M that
//! damps the unwanted part of the spectrum [−1, b] and amplifies the top, then Rayleigh–Ritz),
//! which converges in tens of iterations where plain power iteration needs thousands on kNN
//! graphs whose top eigenvalues crowd near 1. Small graphs get an exact dense solve.

use rayon::prelude::*;

use crate::ml::manifold::eigen::symmetric_eigen;
use crate::ml::rng::Rng;

/// A symmetric sparse graph in CSR form.
#[derive(Debug, Clone)]
pub struct Graph {
    pub n: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub weights: Vec<f32>,
}

impl Graph {
    /// Connected components (union–find); returns the number of components.
    pub fn components(&self) -> usize {
        let mut parent: Vec<usize> = (0..self.n).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        for i in 0..self.n {
            for &j in &self.indices[self.indptr[i]..self.indptr[i + 1]] {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j as usize));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        (0..self.n).filter(|&i| find(&mut parent, i) == i).count()
    }
}

/// `out = M · x` for `x`, `out` of shape n × p (row-major).
fn apply_m(g: &Graph, inv_sqrt_deg: &[f64], x: &[f64], out: &mut [f64], p: usize) {
    out.par_chunks_mut(p).enumerate().for_each(|(i, o)| {
        o.fill(0.0);
        for e in g.indptr[i]..g.indptr[i + 1] {
            let j = g.indices[e] as usize;
            let w = g.weights[e] as f64 * inv_sqrt_deg[j];
            for (ov, xv) in o.iter_mut().zip(&x[j * p..(j + 1) * p]) {
                *ov += w * xv;
            }
        }
        let s = inv_sqrt_deg[i];
        o.iter_mut().for_each(|v| *v *= s);
    });
}

/// Orthonormalizes the p columns of `x` (n × p) in place: modified Gram–Schmidt, twice.
fn orthonormalize(x: &mut [f64], n: usize, p: usize, rng: &mut Rng) {
    for _pass in 0..2 {
        for c in 0..p {
            for prev in 0..c {
                let dot: f64 = (0..n).map(|i| x[i * p + c] * x[i * p + prev]).sum();
                for i in 0..n {
                    x[i * p + c] -= dot * x[i * p + prev];
                }
            }
            let mut norm: f64 = (0..n)
                .map(|i| x[i * p + c] * x[i * p + c])
                .sum::<f64>()
                .sqrt();
            if norm < 1e-12 {
                // A lost direction: restart it at random (then orthogonalize on the next pass).
                for i in 0..n {
                    x[i * p + c] = rng.normal();
                }
                norm = (0..n)
                    .map(|i| x[i * p + c] * x[i * p + c])
                    .sum::<f64>()
                    .sqrt();
            }
            for i in 0..n {
                x[i * p + c] /= norm;
            }
        }
    }
}

/// The `dim` spectral coordinates (n × dim, row-major), or `None` when the graph is not
/// connected or has an isolated vertex (umap-learn then lays components out separately; the
/// caller falls back to another initialisation).
pub fn spectral_layout(g: &Graph, dim: usize, rng: &mut Rng) -> Option<Vec<f64>> {
    let n = g.n;
    if n <= dim + 1 || g.components() != 1 {
        return None;
    }
    let inv_sqrt_deg = inverse_sqrt_degrees(g)?;
    if n <= 400 {
        let (_, v) = symmetric_eigen(&dense_m(g, &inv_sqrt_deg), n);
        return Some(columns_1_to_dim(&v, n, n, dim));
    }
    let p = (dim + 1 + 6).min(n);
    let x = subspace_iteration(g, &inv_sqrt_deg, dim + 1, p, rng);
    Some(columns_1_to_dim(&x, n, p, dim))
}

/// D^-½ for the weighted degrees; `None` if a vertex has none.
fn inverse_sqrt_degrees(g: &Graph) -> Option<Vec<f64>> {
    let deg: Vec<f64> = (0..g.n)
        .map(|i| {
            g.weights[g.indptr[i]..g.indptr[i + 1]]
                .iter()
                .map(|&w| w as f64)
                .sum()
        })
        .collect();
    if deg.iter().any(|&d| d <= 0.0) {
        return None;
    }
    Some(deg.iter().map(|d| 1.0 / d.sqrt()).collect())
}

/// M = D^-½ W D^-½ as a dense n × n matrix (small graphs get an exact eigen-decomposition).
fn dense_m(g: &Graph, inv_sqrt_deg: &[f64]) -> Vec<f64> {
    let n = g.n;
    let mut m = vec![0.0f64; n * n];
    for i in 0..n {
        for e in g.indptr[i]..g.indptr[i + 1] {
            let j = g.indices[e] as usize;
            m[i * n + j] = g.weights[e] as f64 * inv_sqrt_deg[i] * inv_sqrt_deg[j];
        }
    }
    m
}

/// Columns 1..=dim of an n × p row-major matrix (column 0 is the trivial eigenvector).
fn columns_1_to_dim(v: &[f64], n: usize, p: usize, dim: usize) -> Vec<f64> {
    (0..n)
        .flat_map(|i| (1..=dim).map(move |c| (i, c)))
        .map(|(i, c)| v[i * p + c])
        .collect()
}

/// The top `want` eigenvectors of M as the first columns of an n × p basis (p > `want` for
/// room): Chebyshev-filtered subspace iteration with Rayleigh–Ritz, until each wanted residual
/// ‖M x − θ x‖ is below 1e-6 (400 rounds at most).
fn subspace_iteration(
    g: &Graph,
    inv_sqrt_deg: &[f64],
    want: usize,
    p: usize,
    rng: &mut Rng,
) -> Vec<f64> {
    let n = g.n;
    let mut x: Vec<f64> = (0..n * p).map(|_| rng.normal()).collect();
    orthonormalize(&mut x, n, p, rng);
    let mut work = Chebyshev {
        mx: vec![0.0f64; n * p],
        y_prev: vec![0.0f64; n * p],
        y_next: vec![0.0f64; n * p],
    };
    let lower = -1.0f64;
    let mut cut = 0.0f64;
    for _iter in 0..400 {
        let mut y = work.filter(g, inv_sqrt_deg, &x, p, (lower, cut));
        orthonormalize(&mut y, n, p, rng);
        let (theta, res) = rayleigh_ritz(g, inv_sqrt_deg, &y, &mut work.mx, &mut x, p, want);
        cut = theta[p - 1].max(lower + 1e-3);
        if res.iter().all(|r| r.sqrt() < 1e-6) {
            break;
        }
    }
    x
}

/// Buffers of the Chebyshev filter: M·Y and the recurrence's previous and next terms.
struct Chebyshev {
    mx: Vec<f64>,
    y_prev: Vec<f64>,
    y_next: Vec<f64>,
}

impl Chebyshev {
    /// Degree of the polynomial.
    const DEGREE: usize = 12;

    /// The Chebyshev polynomial of M scaled to damp [lower, cut], applied to `x` (n × p).
    fn filter(
        &mut self,
        g: &Graph,
        inv_sqrt_deg: &[f64],
        x: &[f64],
        p: usize,
        (lower, cut): (f64, f64),
    ) -> Vec<f64> {
        let e = (cut - lower) / 2.0;
        let c = (cut + lower) / 2.0;
        let Chebyshev { mx, y_prev, y_next } = self;
        y_prev.copy_from_slice(x);
        apply_m(g, inv_sqrt_deg, y_prev, mx, p);
        let mut y: Vec<f64> = mx
            .iter()
            .zip(y_prev.iter())
            .map(|(m, v)| (m - c * v) / e)
            .collect();
        for _ in 2..=Self::DEGREE {
            apply_m(g, inv_sqrt_deg, &y, mx, p);
            y_next
                .par_iter_mut()
                .zip(mx.par_iter())
                .zip(y.par_iter())
                .zip(y_prev.par_iter())
                .for_each(|(((o, m), v), pv)| *o = 2.0 * (m - c * v) / e - pv);
            std::mem::swap(y_prev, &mut y);
            std::mem::swap(&mut y, y_next);
        }
        y
    }
}

/// Rayleigh–Ritz on the orthonormal basis `y`: H = Yᵀ M Y, its eigenpairs (θ, V), and x = Y V.
/// Returns θ and, for the first `want` columns, ‖M x − θ x‖² (from M x = (M Y) V).
fn rayleigh_ritz(
    g: &Graph,
    inv_sqrt_deg: &[f64],
    y: &[f64],
    mx: &mut [f64],
    x: &mut [f64],
    p: usize,
    want: usize,
) -> (Vec<f64>, Vec<f64>) {
    let n = g.n;
    apply_m(g, inv_sqrt_deg, y, mx, p);
    let mut h = vec![0.0f64; p * p];
    for a in 0..p {
        for b in a..p {
            let s: f64 = (0..n).map(|i| y[i * p + a] * mx[i * p + b]).sum();
            h[a * p + b] = s;
            h[b * p + a] = s;
        }
    }
    let (theta, v) = symmetric_eigen(&h, p);
    let mut res = vec![0.0f64; want];
    for i in 0..n {
        for col in 0..p {
            let mut xv = 0.0;
            let mut mv = 0.0;
            for k in 0..p {
                xv += y[i * p + k] * v[k * p + col];
                mv += mx[i * p + k] * v[k * p + col];
            }
            x[i * p + col] = xv;
            if col < want {
                res[col] += (mv - theta[col] * xv).powi(2);
            }
        }
    }
    (theta, res)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring of n vertices, each joined to its two neighbours.
    fn ring(n: usize) -> Graph {
        let mut indptr = vec![0];
        let mut indices = Vec::new();
        for i in 0..n {
            indices.push(((i + n - 1) % n) as u32);
            indices.push(((i + 1) % n) as u32);
            indptr.push(indices.len());
        }
        let weights = vec![1.0; indices.len()];
        Graph {
            n,
            indptr,
            indices,
            weights,
        }
    }

    #[test]
    fn ring_lays_out_as_a_circle() {
        // The ring's Laplacian eigenvectors 2 and 3 are cos and sin of the angle: every vertex
        // lands at the same radius. Dense (n ≤ 400) and iterative paths both.
        for n in [60, 1000] {
            let g = ring(n);
            assert_eq!(g.components(), 1);
            let y = spectral_layout(&g, 2, &mut Rng::new(1)).unwrap();
            let r: Vec<f64> = (0..n).map(|i| y[2 * i].hypot(y[2 * i + 1])).collect();
            let mean = r.iter().sum::<f64>() / n as f64;
            for ri in &r {
                assert!((ri - mean).abs() < 1e-3 * mean, "n={n}: {ri} vs {mean}");
            }
        }
    }
}
