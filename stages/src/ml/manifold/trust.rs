//! Trustworthiness of a low-dimensional layout, as `sklearn.manifold.trustworthiness`:
//!
//! T(k) = 1 − 2 / (n k (2n − 3k − 1)) · Σᵢ Σ_{j ∈ Nₖ(i) in the layout} max(0, r(i, j) − k)
//!
//! where r(i, j) is the rank of j among i's neighbours in the original space (1 = nearest) under
//! `metric`, and layout neighbours are Euclidean. scikit-learn argsorts the full n × n distance
//! matrix; here each original-space distance row comes from a block matmul and the ranks of the
//! k layout neighbours are counted against it, so memory stays at one block. Cost: one more
//! n² · d pass (as much as the exact kNN) plus an n² pass in the layout.
//!
//! The penalties are integers and are summed as integers, so the score does not depend on how
//! rayon splits the rows.

use rayon::prelude::*;

use crate::columns::matrix::Matrix;
use crate::ml::manifold::knn::{Metric, Prepared, knn_low_dim};

/// Trustworthiness of `layout` (rows of `x` placed in low dimension) with `k` neighbours.
/// `None` when cancelled. Needs `k < n / 2`.
pub fn trustworthiness(
    x: &Matrix,
    layout: &Matrix,
    k: usize,
    metric: Metric,
    cancelled: &dyn Fn() -> bool,
) -> Option<f64> {
    let n = x.rows;
    assert_eq!(layout.rows, n);
    assert!(
        k >= 1 && 2 * k < n,
        "trustworthiness needs k < n / 2 (k = {k}, n = {n})"
    );
    let neighbours = knn_low_dim(layout, k);
    let prep = Prepared::new(x, metric);
    let block = prep.block_rows();
    let mut buf = vec![0.0f32; block * n];
    let mut penalty = 0u64;
    let mut start = 0;
    while start < n {
        if cancelled() {
            return None;
        }
        let len = block.min(n - start);
        prep.distance_block(start, len, &mut buf);
        penalty += buf[..len * n]
            .par_chunks(n)
            .enumerate()
            .map(|(r, row)| {
                let i = start + r;
                row_penalty(row, i, &neighbours[i * k..(i + 1) * k], k)
            })
            .sum::<u64>();
        start += len;
    }
    let (nf, kf) = (n as f64, k as f64);
    Some(1.0 - penalty as f64 * 2.0 / (nf * kf * (2.0 * nf - 3.0 * kf - 1.0)))
}

/// Σ max(0, rank − k) over `targets` for one point whose original-space distances are `row`.
/// rank(j) = 1 + #{l ≠ i : d(i, l) < d(i, j)} (ties go to j; numpy's unstable argsort may
/// order exact ties either way).
fn row_penalty(row: &[f32], i: usize, targets: &[u32], k: usize) -> u64 {
    let mut thresholds: Vec<f32> = targets.iter().map(|&j| row[j as usize]).collect();
    thresholds.sort_by(f32::total_cmp);
    // hist[p] = how many distances have exactly p thresholds ≤ them, i.e. are below
    // thresholds[p..].
    let mut hist = vec![0u32; thresholds.len() + 1];
    for (l, &d) in row.iter().enumerate() {
        if l == i {
            continue;
        }
        hist[thresholds.partition_point(|&t| t <= d)] += 1;
    }
    // below[q] = #{l : d < thresholds[q]} = Σ_{p ≤ q} hist[p].
    let mut below = Vec::with_capacity(thresholds.len());
    let mut acc = 0u32;
    for h in &hist[..thresholds.len()] {
        acc += h;
        below.push(acc);
    }
    below
        .iter()
        .map(|&b| (u64::from(b) + 1).saturating_sub(k as u64))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_layout_is_fully_trustworthy() {
        let x = Matrix::new(6, 2, (0..12).map(|v| (v * v) as f32).collect());
        let t = trustworthiness(&x, &x, 2, Metric::Euclidean, &|| false).unwrap();
        assert!((t - 1.0).abs() < 1e-12);
    }

    #[test]
    fn hand_checked_line() {
        // Original: points on a line at 0, 1, 3, 7, 15, 31, 63 (no ties in any row). The layout
        // swaps the two ends (point 0 at 63, point 6 at 0). k = 1, layout neighbours:
        // 0 → 5 (original rank 5: penalty 4), 1 → 6 (rank 6: 5), 2 → 1, 3 → 2, 4 → 3, 5 → 4
        // (rank 1: 0), 6 → 1 (rank 5: 4). Σ = 13; T = 1 − 13 · 2 / (7 · 1 · (14 − 3 − 1)).
        // scikit-learn 1.9.1 agrees: trustworthiness(x, y, n_neighbors=1) = 0.628571...
        let pos = [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0];
        let x = Matrix::new(7, 1, pos.to_vec());
        let y = Matrix::new(7, 1, vec![63.0, 1.0, 3.0, 7.0, 15.0, 31.0, 0.0]);
        let t = trustworthiness(&x, &y, 1, Metric::Euclidean, &|| false).unwrap();
        assert!((t - (1.0 - 26.0 / 70.0)).abs() < 1e-12, "{t}");
    }

    #[test]
    fn matches_scikit_learn_on_a_small_case() {
        // Values from scikit-learn 1.9.1 on the same arrays (x and y built the same way in
        // numpy, f32): trustworthiness(x, y, n_neighbors=k, metric=m).
        let (n, d) = (40, 6);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..n {
            let fi = i as f64;
            for j in 0..d {
                let fj = j as f64;
                xs.push(((1.3 * fi + 0.7 * fj * fj).sin() + 0.1 * fj) as f32);
            }
            ys.push(((0.9 * fi).cos() + 0.01 * fi) as f32);
            ys.push((1.7 * fi).sin() as f32);
        }
        let x = Matrix::new(n, d, xs);
        let y = Matrix::new(n, 2, ys);
        for (metric, k, want) in [
            (Metric::Cosine, 3, 0.44214285714285717),
            (Metric::Cosine, 5, 0.45562499999999995),
            (Metric::Euclidean, 3, 0.4402380952380952),
            (Metric::Euclidean, 5, 0.44906250000000003),
        ] {
            let t = trustworthiness(&x, &y, k, metric, &|| false).unwrap();
            assert!((t - want).abs() < 1e-12, "{metric:?} k={k}: {t} vs {want}");
        }
    }
}
