//! UMAP (McInnes, Healy & Melville 2018), following umap-learn 0.5's `fit` step by step so its
//! layouts and figures carry over:
//!
//! 1. exact kNN (umap-learn uses approximate NN-descent), the point itself first;
//! 2. `smooth_knn_dist`: per point, ρ = distance to the nearest neighbour and σ by bisection
//!    so that Σ exp(−(d − ρ)/σ) = log₂ k;
//! 3. membership strengths exp(−(d − ρ)/σ), fuzzy union A + Aᵀ − A∘Aᵀ;
//! 4. edges below max / n_epochs dropped;
//! 5. spectral initial layout, scaled to ±10 plus N(0, 10⁻⁴) noise, then each axis to [0, 10];
//! 6. SGD over edges sampled in proportion to their weight, with `negative-sample-rate`
//!    random repulsions per positive sample, learning rate decaying linearly to 0;
//!    the curve 1 / (1 + a d^2b) with a, b fitted to `min-dist` and `spread`.
//!
//! Deterministic for a given seed: one seeded generator, and the SGD runs on one thread in edge
//! order (umap-learn does the same when given a `random_state`).

use crate::columns::matrix::Matrix;
use crate::ml::manifold::knn::{Knn, Metric, knn};
use crate::ml::manifold::pca::Pca;
use crate::ml::manifold::spectral::{Graph, spectral_layout};
use crate::ml::rng::Rng;

/// What to compute.
#[derive(Debug, Clone)]
pub struct UmapConfig {
    pub n_neighbors: usize,
    pub min_dist: f64,
    pub spread: f64,
    pub metric: Metric,
    pub n_components: usize,
    /// `None`: 500 up to 10,000 points, else 200 (umap-learn's default).
    pub n_epochs: Option<usize>,
    pub seed: u64,
    pub learning_rate: f64,
    pub negative_sample_rate: usize,
    pub repulsion_strength: f64,
}

impl Default for UmapConfig {
    fn default() -> Self {
        UmapConfig {
            n_neighbors: 15,
            min_dist: 0.1,
            spread: 1.0,
            metric: Metric::Cosine,
            n_components: 2,
            n_epochs: None,
            seed: 42,
            learning_rate: 1.0,
            negative_sample_rate: 5,
            repulsion_strength: 1.0,
        }
    }
}

/// How the initial layout was made (spectral unless the graph is disconnected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Spectral,
    /// Disconnected kNN graph: PCA of the data instead of umap-learn's per-component layout.
    Pca,
}

/// The layout and facts about how it was made.
#[derive(Debug, Clone)]
pub struct UmapResult {
    pub embedding: Matrix,
    pub init: Init,
    pub n_epochs: usize,
    pub a: f64,
    pub b: f64,
    pub edges: usize,
}

/// Hooks into a long run: cancellation and per-epoch progress.
pub struct Hooks<'a> {
    pub cancelled: &'a dyn Fn() -> bool,
    pub phase: &'a dyn Fn(&str),
    /// Called with the total once, then after each epoch with the epoch count done.
    pub epochs: &'a dyn Fn(usize, usize),
}

impl Hooks<'_> {
    pub fn none() -> Hooks<'static> {
        Hooks {
            cancelled: &|| false,
            phase: &|_| {},
            epochs: &|_, _| {},
        }
    }
}

/// umap-learn's `find_ab_params`: least squares fit of 1 / (1 + a x^2b) to the curve that is 1
/// up to `min_dist` and exp(−(x − min_dist) / spread) after, on 300 points of [0, 3·spread]
/// (scipy's `curve_fit` is Levenberg–Marquardt from a = b = 1; so is this).
pub fn find_ab_params(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * spread * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let sse = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let f = 1.0 / (1.0 + a * x.powf(2.0 * b));
                (f - y).powi(2)
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut lambda = 1e-3;
    let mut cost = sse(a, b);
    for _ in 0..500 {
        // Normal equations JᵀJ δ = −Jᵀr for the residuals r = f − y.
        let (jaa, jab, jbb, ga, gb) = normal_equations(&xs, &ys, a, b);
        let (maa, mbb) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
        let det = maa * mbb - jab * jab;
        if det.abs() < 1e-300 {
            break;
        }
        let step_a = -(mbb * ga - jab * gb) / det;
        let step_b = -(maa * gb - jab * ga) / det;
        let new_cost = sse(a + step_a, b + step_b);
        if new_cost < cost {
            a += step_a;
            b += step_b;
            let done = (cost - new_cost) < 1e-15 * cost.max(1e-300);
            cost = new_cost;
            lambda = (lambda / 10.0).max(1e-12);
            if done {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    (a, b)
}

/// JᵀJ (aa, ab, bb) and Jᵀr (a, b) of the curve 1 / (1 + a x^2b) at `xs` against `ys`, for
/// [`find_ab_params`]' Levenberg–Marquardt steps.
fn normal_equations(xs: &[f64], ys: &[f64], a: f64, b: f64) -> (f64, f64, f64, f64, f64) {
    let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (&x, &y) in xs.iter().zip(ys) {
        if x <= 0.0 {
            // f(0) = 1 whatever a and b: no gradient.
            continue;
        }
        let u = x.powf(2.0 * b);
        let f = 1.0 / (1.0 + a * u);
        let r = f - y;
        let da = -u * f * f;
        let db = -a * u * 2.0 * x.ln() * f * f;
        jaa += da * da;
        jab += da * db;
        jbb += db * db;
        ga += da * r;
        gb += db * r;
    }
    (jaa, jab, jbb, ga, gb)
}

const SMOOTH_K_TOLERANCE: f64 = 1e-5;
const MIN_K_DIST_SCALE: f64 = 1e-3;

/// umap-learn's `smooth_knn_dist` (local_connectivity 1, bandwidth 1): σ and ρ per point.
fn smooth_knn_dist(knn: &Knn) -> (Vec<f64>, Vec<f64>) {
    let k = knn.k;
    let n = knn.indices.len() / k;
    let target = (k as f64).log2();
    let mean_all: f64 =
        knn.distances.iter().map(|&d| d as f64).sum::<f64>() / knn.distances.len() as f64;
    let mut sigmas = vec![0.0f64; n];
    let mut rhos = vec![0.0f64; n];
    for i in 0..n {
        let row = &knn.distances[i * k..(i + 1) * k];
        let rho = row
            .iter()
            .copied()
            .find(|&d| d > 0.0)
            .map(|d| d as f64)
            .unwrap_or(0.0);
        let (mut lo, mut hi, mut mid) = (0.0f64, f64::INFINITY, 1.0f64);
        for _ in 0..64 {
            let mut psum = 0.0;
            for &d in &row[1..] {
                let d = d as f64 - rho;
                psum += if d > 0.0 { (-(d / mid)).exp() } else { 1.0 };
            }
            if (psum - target).abs() < SMOOTH_K_TOLERANCE {
                break;
            }
            if psum > target {
                hi = mid;
                mid = (lo + hi) / 2.0;
            } else {
                lo = mid;
                if hi == f64::INFINITY {
                    mid *= 2.0;
                } else {
                    mid = (lo + hi) / 2.0;
                }
            }
        }
        let floor = if rho > 0.0 {
            MIN_K_DIST_SCALE * row.iter().map(|&d| d as f64).sum::<f64>() / k as f64
        } else {
            MIN_K_DIST_SCALE * mean_all
        };
        sigmas[i] = mid.max(floor);
        rhos[i] = rho;
    }
    (sigmas, rhos)
}

/// The fuzzy simplicial set: membership strengths and their fuzzy union, as a CSR graph with
/// sorted columns and no zeros.
pub fn fuzzy_simplicial_set(knn: &Knn) -> Graph {
    let k = knn.k;
    let n = knn.indices.len() / k;
    let (sigmas, rhos) = smooth_knn_dist(knn);
    // Directed memberships (i → j), then each also as its transpose, flagged.
    let mut entries: Vec<(u32, u32, bool, f32)> = Vec::with_capacity(2 * n * k);
    for i in 0..n {
        for e in 0..k {
            let j = knn.indices[i * k + e] as usize;
            if j == i {
                continue;
            }
            let d = knn.distances[i * k + e] as f64;
            let v = if d - rhos[i] <= 0.0 || sigmas[i] == 0.0 {
                1.0
            } else {
                (-(d - rhos[i]) / sigmas[i]).exp()
            } as f32;
            if v > 0.0 {
                entries.push((i as u32, j as u32, false, v));
                entries.push((j as u32, i as u32, true, v));
            }
        }
    }
    entries.sort_unstable_by_key(|e| (e.0, e.1, e.2));
    let mut indptr = vec![0usize; n + 1];
    let mut indices = Vec::with_capacity(entries.len());
    let mut weights = Vec::with_capacity(entries.len());
    let mut e = 0;
    while e < entries.len() {
        let (r, c) = (entries[e].0, entries[e].1);
        let (mut a, mut b) = (0.0f32, 0.0f32);
        while e < entries.len() && entries[e].0 == r && entries[e].1 == c {
            if entries[e].2 {
                b = entries[e].3;
            } else {
                a = entries[e].3;
            }
            e += 1;
        }
        let w = a + b - a * b;
        if w > 0.0 {
            indices.push(c);
            weights.push(w);
            indptr[r as usize + 1] += 1;
        }
    }
    for i in 0..n {
        indptr[i + 1] += indptr[i];
    }
    Graph {
        n,
        indptr,
        indices,
        weights,
    }
}

/// Drops edges below `max / n_epochs` (they would never be sampled), as umap-learn does before
/// the initial layout.
fn prune(g: &Graph, n_epochs: usize) -> Graph {
    let max = g.weights.iter().copied().fold(0.0f32, f32::max);
    let cut = max / n_epochs as f32;
    let mut indptr = vec![0usize; g.n + 1];
    let mut indices = Vec::new();
    let mut weights = Vec::new();
    for i in 0..g.n {
        for e in g.indptr[i]..g.indptr[i + 1] {
            if g.weights[e] >= cut {
                indices.push(g.indices[e]);
                weights.push(g.weights[e]);
            }
        }
        indptr[i + 1] = indices.len();
    }
    Graph {
        n: g.n,
        indptr,
        indices,
        weights,
    }
}

/// The initial layout, each axis scaled to [0, 10].
fn initial_layout(x: &Matrix, g: &Graph, dim: usize, rng: &mut Rng) -> (Vec<f32>, Init) {
    let n = g.n;
    let (raw, init) = match spectral_layout(g, dim, rng) {
        Some(v) => (v, Init::Spectral),
        None => {
            let pca = Pca::fit(x, dim.min(x.cols));
            let y = pca.transform(x);
            let mut v = vec![0.0f64; n * dim];
            for i in 0..n {
                for c in 0..y.cols {
                    v[i * dim + c] = y.data[i * y.cols + c] as f64;
                }
            }
            (v, Init::Pca)
        }
    };
    // umap-learn: expansion = 10 / max|init|, plus N(0, 1e-4) noise, as f32.
    let max_abs = raw.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    let mut y: Vec<f32> = raw
        .iter()
        .map(|v| (v * 10.0 / max_abs) as f32 + (rng.normal() * 1e-4) as f32)
        .collect();
    // Then each axis to [0, 10].
    for c in 0..dim {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for i in 0..n {
            lo = lo.min(y[i * dim + c]);
            hi = hi.max(y[i * dim + c]);
        }
        let span = if hi > lo { hi - lo } else { 1.0 };
        for i in 0..n {
            y[i * dim + c] = 10.0 * (y[i * dim + c] - lo) / span;
        }
    }
    (y, init)
}

#[inline]
fn clip(v: f64) -> f64 {
    v.clamp(-4.0, 4.0)
}

/// UMAP layout of the rows of `x`. `None` when cancelled. Needs more rows than `n_neighbors`.
pub fn fit(x: &Matrix, cfg: &UmapConfig, hooks: &Hooks) -> Option<UmapResult> {
    let n = x.rows;
    let dim = cfg.n_components;
    assert!(n > cfg.n_neighbors && dim >= 1);
    let mut rng = Rng::new(cfg.seed);
    let n_epochs = cfg.n_epochs.unwrap_or(default_epochs(n)).max(1);
    let graph = pruned_graph(x, cfg, n_epochs, hooks)?;
    if (hooks.cancelled)() {
        return None;
    }
    (hooks.phase)("initial layout");
    let (mut y, init) = initial_layout(x, &graph, dim, &mut rng);
    let (a, b) = find_ab_params(cfg.spread, cfg.min_dist);
    let forces = Forces {
        a,
        b,
        gamma: cfg.repulsion_strength,
        dim,
    };
    let mut edges = EdgeSchedule::new(&graph, n_epochs, cfg.negative_sample_rate);

    (hooks.phase)("optimizing layout");
    (hooks.epochs)(n_epochs, 0);
    let mut alpha = cfg.learning_rate;
    for epoch in 0..n_epochs {
        if (hooks.cancelled)() {
            return None;
        }
        edges.epoch(epoch, &mut y, &forces, alpha, &mut rng);
        alpha = cfg.learning_rate * (1.0 - (epoch as f64 + 1.0) / n_epochs as f64);
        (hooks.epochs)(n_epochs, epoch + 1);
    }
    Some(UmapResult {
        embedding: Matrix::new(n, dim, y),
        init,
        n_epochs,
        a,
        b,
        edges: edges.eps.len(),
    })
}

/// umap-learn's default epochs: 500 up to 10,000 points, else 200.
fn default_epochs(n: usize) -> usize {
    if n <= 10_000 { 500 } else { 200 }
}

/// The kNN graph's fuzzy union, pruned for `n_epochs` (for the default epochs when fewer than
/// 11, as umap-learn does). `None` when cancelled.
fn pruned_graph(x: &Matrix, cfg: &UmapConfig, n_epochs: usize, hooks: &Hooks) -> Option<Graph> {
    (hooks.phase)("nearest neighbours");
    let nn = knn(x, cfg.n_neighbors, cfg.metric, hooks.cancelled)?;
    (hooks.phase)("fuzzy graph");
    let graph = fuzzy_simplicial_set(&nn);
    drop(nn);
    let prune_epochs = if n_epochs > 10 {
        n_epochs
    } else {
        default_epochs(x.rows)
    };
    Some(prune(&graph, prune_epochs))
}

/// The low-dimensional curve 1 / (1 + a d^2b) and the repulsion strength γ, as the gradients of
/// the attraction along an edge and the repulsion from a random point.
struct Forces {
    a: f64,
    b: f64,
    gamma: f64,
    dim: usize,
}

impl Forces {
    /// Pulls points `j` and `k` together (a positive sample).
    fn attract(&self, y: &mut [f32], j: usize, k: usize, alpha: f64) {
        let (a, b, dim) = (self.a, self.b, self.dim);
        let mut d2 = 0.0f64;
        for c in 0..dim {
            let diff = y[j * dim + c] as f64 - y[k * dim + c] as f64;
            d2 += diff * diff;
        }
        let coeff = if d2 > 0.0 {
            -2.0 * a * b * d2.powf(b - 1.0) / (a * d2.powf(b) + 1.0)
        } else {
            0.0
        };
        for c in 0..dim {
            let cj = y[j * dim + c] as f64;
            let ck = y[k * dim + c] as f64;
            let g = clip(coeff * (cj - ck));
            y[j * dim + c] = (cj + g * alpha) as f32;
            y[k * dim + c] = (ck - g * alpha) as f32;
        }
    }

    /// Pushes point `j` away from point `k` (a negative sample); `cur` is scratch of `dim`.
    fn repel(&self, y: &mut [f32], j: usize, k: usize, alpha: f64, cur: &mut [f64]) {
        let (a, b, dim) = (self.a, self.b, self.dim);
        for c in 0..dim {
            cur[c] = y[j * dim + c] as f64;
        }
        let mut d2 = 0.0f64;
        for c in 0..dim {
            let diff = cur[c] - y[k * dim + c] as f64;
            d2 += diff * diff;
        }
        let coeff = if d2 > 0.0 {
            2.0 * self.gamma * b / ((0.001 + d2) * (a * d2.powf(b) + 1.0))
        } else if j == k {
            return;
        } else {
            0.0
        };
        if coeff > 0.0 {
            for c in 0..dim {
                let g = clip(coeff * (cur[c] - y[k * dim + c] as f64));
                y[j * dim + c] = (cur[c] + g * alpha) as f32;
            }
        }
    }
}

/// The graph's edges in CSR order and when each is next sampled: every
/// `eps[e]` = max weight / weight epochs, with `negative-sample-rate` negative samples per
/// positive one.
struct EdgeSchedule<'g> {
    head: Vec<u32>,
    tail: &'g [u32],
    /// Epochs per sample (−1: never sampled).
    eps: Vec<f64>,
    /// Epochs per negative sample.
    eps_neg: Vec<f64>,
    next_sample: Vec<f64>,
    next_neg: Vec<f64>,
    /// Points, to draw negative samples from.
    n: usize,
    /// Scratch for [`Forces::repel`].
    cur: Vec<f64>,
}

impl<'g> EdgeSchedule<'g> {
    fn new(graph: &'g Graph, n_epochs: usize, negative_sample_rate: usize) -> EdgeSchedule<'g> {
        let n = graph.n;
        let mut head = Vec::with_capacity(graph.indices.len());
        for i in 0..n {
            head.extend(std::iter::repeat_n(
                i as u32,
                graph.indptr[i + 1] - graph.indptr[i],
            ));
        }
        let wmax = graph.weights.iter().copied().fold(0.0f32, f32::max) as f64;
        let eps: Vec<f64> = graph
            .weights
            .iter()
            .map(|&w| {
                let samples = n_epochs as f64 * (w as f64 / wmax);
                if samples > 0.0 {
                    n_epochs as f64 / samples
                } else {
                    -1.0
                }
            })
            .collect();
        let neg_rate = negative_sample_rate as f64;
        let eps_neg: Vec<f64> = eps.iter().map(|e| e / neg_rate).collect();
        EdgeSchedule {
            head,
            tail: &graph.indices,
            next_sample: eps.clone(),
            next_neg: eps_neg.clone(),
            eps,
            eps_neg,
            n,
            cur: Vec::new(),
        }
    }

    /// One epoch of SGD over the edges due, in edge order (on one thread, so a seed gives one
    /// layout).
    fn epoch(&mut self, epoch: usize, y: &mut [f32], forces: &Forces, alpha: f64, rng: &mut Rng) {
        self.cur.resize(forces.dim, 0.0);
        let ep = epoch as f64;
        for e in 0..self.eps.len() {
            if self.next_sample[e] > ep || self.eps[e] < 0.0 {
                continue;
            }
            let j = self.head[e] as usize;
            forces.attract(y, j, self.tail[e] as usize, alpha);
            self.next_sample[e] += self.eps[e];
            let n_neg = ((ep - self.next_neg[e]) / self.eps_neg[e]) as i64;
            for _ in 0..n_neg.max(0) {
                let k = rng.below(self.n);
                forces.repel(y, j, k, alpha, &mut self.cur);
            }
            self.next_neg[e] += n_neg.max(0) as f64 * self.eps_neg[e];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::manifold::knn::knn_low_dim;

    #[test]
    fn ab_params_match_umap_learn() {
        // umap-learn 0.5: find_ab_params(1.0, 0.1) = (1.5769434604, 0.8950608781).
        let (a, b) = find_ab_params(1.0, 0.1);
        assert!((a - 1.576_943_460_4).abs() < 1e-4, "a = {a}");
        assert!((b - 0.895_060_878_1).abs() < 1e-4, "b = {b}");
    }

    /// `per` points around each of `centers.len()` centres in `d` dimensions.
    pub(crate) fn blobs(centers: usize, per: usize, d: usize, seed: u64) -> (Matrix, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let cs: Vec<Vec<f64>> = (0..centers)
            .map(|_| (0..d).map(|_| rng.normal() * 4.0).collect())
            .collect();
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for i in 0..centers * per {
            let c = i % centers;
            labels.push(c);
            for v in &cs[c] {
                data.push((v + rng.normal()) as f32);
            }
        }
        (Matrix::new(centers * per, d, data), labels)
    }

    fn knn_accuracy(y: &Matrix, labels: &[usize], k: usize) -> f64 {
        let nb = knn_low_dim(y, k);
        let mut right = 0;
        for i in 0..y.rows {
            let mut votes = vec![0usize; labels.iter().max().unwrap() + 1];
            for &j in &nb[i * k..(i + 1) * k] {
                votes[labels[j as usize]] += 1;
            }
            let best = (0..votes.len())
                .max_by_key(|&c| (votes[c], usize::MAX - c))
                .unwrap();
            right += (best == labels[i]) as usize;
        }
        right as f64 / y.rows as f64
    }

    #[test]
    fn separates_blobs_and_is_deterministic() {
        let (x, labels) = blobs(4, 150, 10, 3);
        for metric in [Metric::Euclidean, Metric::Cosine] {
            let cfg = UmapConfig {
                metric,
                n_epochs: Some(200),
                ..UmapConfig::default()
            };
            let r = fit(&x, &cfg, &Hooks::none()).unwrap();
            let acc = knn_accuracy(&r.embedding, &labels, 15);
            assert!(acc > 0.95, "{metric:?}: 15-NN accuracy in 2-D {acc}");
            let again = fit(&x, &cfg, &Hooks::none()).unwrap();
            assert_eq!(r.embedding, again.embedding, "same seed, same layout");
        }
        let other = fit(
            &x,
            &UmapConfig {
                seed: 7,
                n_epochs: Some(50),
                ..UmapConfig::default()
            },
            &Hooks::none(),
        )
        .unwrap();
        let base = fit(
            &x,
            &UmapConfig {
                n_epochs: Some(50),
                ..UmapConfig::default()
            },
            &Hooks::none(),
        )
        .unwrap();
        assert_ne!(other.embedding, base.embedding, "the seed matters");
    }
}
