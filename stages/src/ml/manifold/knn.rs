//! Exact k nearest neighbours by brute force: distances come from one matmul per block of rows
//! (`X_blk · Xᵀ` through gemm), and each row keeps its k best in a small sorted buffer.
//! For 16k × 384 that is ~0.2 TFLOP, a few seconds on two cores, and it is exact where
//! umap-learn's NN-descent is approximate.

use rayon::prelude::*;

use crate::columns::matrix::{Matrix, matmul_transposed};

/// A distance between feature vectors.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// 1 − cos(x, y), as scikit-learn's `cosine_distances` and umap-learn's `cosine`.
    Cosine,
    /// ‖x − y‖.
    Euclidean,
}

/// Rows of a matrix prepared for [`Metric`] distances by dot products.
pub struct Prepared {
    data: Vec<f32>,
    sq_norms: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
    metric: Metric,
}

impl Prepared {
    pub fn new(x: &Matrix, metric: Metric) -> Prepared {
        let mut data = x.data.clone();
        let mut sq_norms = vec![0.0f32; x.rows];
        if x.cols > 0 {
            data.par_chunks_mut(x.cols)
                .zip(sq_norms.par_iter_mut())
                .for_each(|(row, sq)| {
                    let s: f32 = row.iter().map(|v| v * v).sum();
                    match metric {
                        Metric::Cosine => {
                            // scikit-learn's normalize(): zero rows stay zero.
                            if s > 0.0 {
                                let inv = 1.0 / s.sqrt();
                                row.iter_mut().for_each(|v| *v *= inv);
                            }
                            *sq = 1.0;
                        }
                        Metric::Euclidean => *sq = s,
                    }
                });
        }
        Prepared {
            data,
            sq_norms,
            rows: x.rows,
            cols: x.cols,
            metric,
        }
    }

    /// Distances from rows `start..start + len` to every row, into `out` (`len × rows`).
    pub fn distance_block(&self, start: usize, len: usize, out: &mut [f32]) {
        let n = self.rows;
        let d = self.cols;
        matmul_transposed(
            &self.data[start * d..(start + len) * d],
            &self.data,
            &mut out[..len * n],
            len,
            n,
            d,
            1.0f32,
        );
        out[..len * n]
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(r, row)| {
                let i = start + r;
                match self.metric {
                    Metric::Cosine => {
                        for v in row.iter_mut() {
                            *v = (1.0 - *v).clamp(0.0, 2.0);
                        }
                    }
                    Metric::Euclidean => {
                        let si = self.sq_norms[i];
                        for (v, &sj) in row.iter_mut().zip(&self.sq_norms) {
                            *v = (si + sj - 2.0 * *v).max(0.0).sqrt();
                        }
                    }
                }
                row[i] = 0.0;
            });
    }

    /// Rows per block so a block of distances stays near 64 MiB.
    pub fn block_rows(&self) -> usize {
        ((16 << 20) / self.rows.max(1)).clamp(64, 4096)
    }
}

/// The k nearest neighbours of every row, the row itself first (distance 0), then by distance
/// (ties by index). `indices` and `distances` are `n × k`, row-major.
pub struct Knn {
    pub k: usize,
    pub indices: Vec<u32>,
    pub distances: Vec<f32>,
}

/// Keeps the `k` smallest `(distance, index)` pairs of a row, sorted.
fn top_k(row: &[f32], self_index: usize, k: usize, idx: &mut [u32], dist: &mut [f32]) {
    let mut len = 0usize;
    // Self first, whatever rounding says about its distance.
    idx[0] = self_index as u32;
    dist[0] = 0.0;
    len += 1;
    for (j, &dj) in row.iter().enumerate() {
        if j == self_index {
            continue;
        }
        if len == k {
            if dj >= dist[k - 1] {
                continue;
            }
            len -= 1;
        }
        // Insert keeping order; equal distances keep the lower index first.
        let mut p = len;
        while p > 1 && dist[p - 1] > dj {
            dist[p] = dist[p - 1];
            idx[p] = idx[p - 1];
            p -= 1;
        }
        dist[p] = dj;
        idx[p] = j as u32;
        len += 1;
    }
}

/// Exact kNN of the rows of `x` (`k` counts the row itself). `k` must be at most `x.rows`.
pub fn knn(x: &Matrix, k: usize, metric: Metric, cancelled: &dyn Fn() -> bool) -> Option<Knn> {
    let n = x.rows;
    assert!(k >= 1 && k <= n, "k = {k} for {n} rows");
    let prep = Prepared::new(x, metric);
    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0.0f32; n * k];
    let block = prep.block_rows();
    let mut buf = vec![0.0f32; block * n];
    let mut start = 0;
    while start < n {
        if cancelled() {
            return None;
        }
        let len = block.min(n - start);
        prep.distance_block(start, len, &mut buf);
        buf[..len * n]
            .par_chunks(n)
            .zip(indices[start * k..(start + len) * k].par_chunks_mut(k))
            .zip(distances[start * k..(start + len) * k].par_chunks_mut(k))
            .enumerate()
            .for_each(|(r, ((row, idx), dist))| top_k(row, start + r, k, idx, dist));
        start += len;
    }
    Some(Knn {
        k,
        indices,
        distances,
    })
}

/// Exact kNN in a low-dimensional space (the layout), by direct differences: the dot-product
/// trick loses the small distances that matter here to f32 cancellation. Excludes the row itself,
/// as scikit-learn's `kneighbors()` does.
pub fn knn_low_dim(y: &Matrix, k: usize) -> Vec<u32> {
    let n = y.rows;
    assert!(k < n, "k = {k} for {n} rows");
    let mut out = vec![0u32; n * k];
    out.par_chunks_mut(k).enumerate().for_each(|(i, idx)| {
        let yi = y.row(i);
        let mut row = vec![0.0f32; n];
        for (j, r) in row.iter_mut().enumerate() {
            let yj = y.row(j);
            *r = yi.iter().zip(yj).map(|(a, b)| (a - b) * (a - b)).sum();
        }
        let mut full_idx = vec![0u32; k + 1];
        let mut full_dist = vec![0.0f32; k + 1];
        top_k(&row, i, k + 1, &mut full_idx, &mut full_dist);
        idx.copy_from_slice(&full_idx[1..]);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_neighbours_on_a_line() {
        // Points 0, 1, 3, 7 on a line (second coordinate 0).
        let x = Matrix::new(4, 2, vec![0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 7.0, 0.0]);
        let r = knn(&x, 3, Metric::Euclidean, &|| false).unwrap();
        assert_eq!(r.indices, vec![0, 1, 2, 1, 0, 2, 2, 1, 0, 3, 2, 1]);
        assert!((r.distances[1] - 1.0).abs() < 1e-6 && (r.distances[5] - 2.0).abs() < 1e-6);
        assert_eq!(knn_low_dim(&x, 2), vec![1, 2, 0, 2, 1, 0, 2, 1]);
    }

    /// gemm (behind every distance here, and candle's matmul) parallelises over output tiles
    /// and walks K in blocks sized from the CPU's caches, so its result does not depend on the
    /// thread count: K = 1500 spans several K blocks, 200 × 200 outputs many tiles.
    #[test]
    fn gemm_results_do_not_depend_on_the_thread_count() {
        let (m, n, k) = (200, 200, 1500);
        let mut rng = crate::ml::rng::Rng::new(1);
        let mut draw = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.normal() as f32).collect() };
        let (a, b) = (draw(m * k), draw(n * k));
        let product = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = vec![0f32; m * n];
            pool.install(|| matmul_transposed(&a, &b, &mut c, m, n, k, 1.0f32));
            c.into_iter().map(f32::to_bits).collect::<Vec<_>>()
        };
        let one = product(1);
        for threads in [2, 3, 4] {
            assert!(
                product(threads) == one,
                "{threads} threads round differently"
            );
        }
    }

    #[test]
    fn cosine_ignores_length() {
        let x = Matrix::new(3, 2, vec![1.0, 0.0, 10.0, 1.0, 0.0, 1.0]);
        let r = knn(&x, 2, Metric::Cosine, &|| false).unwrap();
        assert_eq!(r.indices, vec![0, 1, 1, 0, 2, 1]);
        let cos01 = 10.0 / 101f32.sqrt();
        assert!((r.distances[1] - (1.0 - cos01)).abs() < 1e-6);
    }
}
