//! The encoder layers' training pass on CPU as one op, forward and backward written out.
//!
//! Under candle's autograd a fine-tuning step spent about half its time outside the matmuls:
//! a graph node, a fresh tensor and a zero-filled gradient accumulator per elementwise op,
//! sequential bias-gradient sums, transposed copies, and one small gemm per (sequence, head)
//! in a serial loop. Here the whole layer stack is one node: the forward keeps what the
//! backward needs (the layer inputs, Q/K/V, attention probabilities, the normalized rows, the
//! feed-forward activations, the dropout masks), and the backward walks the layers in reverse
//! with gemm calls on strided views (no transposed copies), bias and residual folded into the
//! gemm's output, and attention run one sequence per task.
//!
//! The parameters' gradients cannot leave a candle op (it returns the gradient of its input
//! only), so the backward hands them to a per-thread sink that [`backward`] adds to candle's
//! `GradStore`: train through [`backward`], not `Tensor::backward`, whenever the layers may
//! run here.
//!
//! Deterministic whatever the thread count: gemm splits the output, never the sum over K;
//! rows are processed independently; bias and norm-weight gradients are column sums over rows
//! in row order. Dropout draws from the same per-thread stream as [`super::dropout`], in the
//! same order as the composite path (attention probabilities, attention output, feed-forward
//! output, layer by layer), so with the same seed both paths drop the same units.

use std::cell::RefCell;
use std::sync::Mutex;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor, bail};
use gemm::Parallelism;
use rayon::prelude::*;

use super::cpu_kernels::gelu_into;
use super::train_kernels::{gelu_grad_into, moments};
use super::{Activation, Layer, dropout_scales};
use crate::nn::simd;

/// Rows per rayon task in the elementwise passes (a constant: results never depend on it).
const ROWS_PER_TASK: usize = 64;

thread_local! {
    /// Parameter gradients the op's backward produced, waiting for [`backward`].
    static PARAM_GRADS: RefCell<Vec<(Tensor, Tensor)>> = const { RefCell::new(Vec::new()) };
}

/// `loss.backward()`, plus the gradients of the layers' parameters when they ran in
/// [`TrainLayers`].
pub fn backward(loss: &Tensor) -> Result<GradStore> {
    PARAM_GRADS.with(|s| s.borrow_mut().clear());
    let mut grads = loss.backward()?;
    for (param, g) in PARAM_GRADS.with(|s| std::mem::take(&mut *s.borrow_mut())) {
        let g = match grads.remove(&param) {
            Some(prev) => (prev + g)?,
            None => g,
        };
        grads.insert(&param, g);
    }
    Ok(grads)
}

/// Whether [`TrainLayers`] can run `layers` on `x`: f32 on CPU, erf GELU, f32 parameters.
pub fn applies(layers: &[Layer], x: &Tensor) -> bool {
    let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    f32_cpu(x)
        && layers
            .iter()
            .all(|l| l.activation == Activation::Gelu && params(l).iter().all(|p| f32_cpu(p)))
}

/// Every parameter of a layer, in the order [`LayerValues::into_tensors`] lists their gradients.
fn params(l: &Layer) -> [&Tensor; 16] {
    let a = &l.attention;
    [
        &a.query.weight,
        &a.query.bias,
        &a.key.weight,
        &a.key.bias,
        &a.value.weight,
        &a.value.bias,
        &a.output.weight,
        &a.output.bias,
        &l.attention_norm.weight,
        &l.attention_norm.bias,
        &l.ffn_in.weight,
        &l.ffn_in.bias,
        &l.ffn_out.weight,
        &l.ffn_out.bias,
        &l.output_norm.weight,
        &l.output_norm.bias,
    ]
}

/// Runs `layers` on `x` (`[b, t, h]`) with the additive key mask `mask` (`[b, 1, 1, t]`), in
/// training mode, as one differentiable op.
pub fn run(layers: &[Layer], x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, t, _) = x.dims3()?;
    let mask = mask.flatten_all()?.to_vec1::<f32>()?;
    if mask.len() != b * t {
        bail!("train-layers: a mask of {} for {b}×{t} tokens", mask.len());
    }
    let weights = layers
        .iter()
        .map(Weights::read)
        .collect::<Result<Vec<_>>>()?;
    x.contiguous()?.apply_op1(TrainLayers {
        layers: layers.to_vec(),
        weights,
        mask,
        saved: Mutex::new(Vec::new()),
    })
}

/// One layer's settings and parameters as f32 values.
struct Weights {
    heads: usize,
    p_attention: f32,
    p_hidden: f32,
    eps1: f32,
    eps2: f32,
    values: LayerValues,
}

/// One f32 vector per parameter of a layer (Q, K and V stacked into one projection): the
/// weights, and in the backward their gradients.
struct LayerValues {
    qkv: Vec<f32>,
    qkv_bias: Vec<f32>,
    out: Vec<f32>,
    out_bias: Vec<f32>,
    norm1: Vec<f32>,
    norm1_bias: Vec<f32>,
    ffn_in: Vec<f32>,
    ffn_in_bias: Vec<f32>,
    ffn_out: Vec<f32>,
    ffn_out_bias: Vec<f32>,
    norm2: Vec<f32>,
    norm2_bias: Vec<f32>,
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

impl Weights {
    fn read(l: &Layer) -> Result<Weights> {
        let a = &l.attention;
        let stack = |ts: [&Tensor; 3]| -> Result<Vec<f32>> {
            let mut v = Vec::new();
            for t in ts {
                v.extend(values(t)?);
            }
            Ok(v)
        };
        Ok(Weights {
            heads: a.heads,
            p_attention: a.dropout,
            p_hidden: l.dropout,
            eps1: l.attention_norm.eps as f32,
            eps2: l.output_norm.eps as f32,
            values: LayerValues {
                qkv: stack([&a.query.weight, &a.key.weight, &a.value.weight])?,
                qkv_bias: stack([&a.query.bias, &a.key.bias, &a.value.bias])?,
                out: values(&a.output.weight)?,
                out_bias: values(&a.output.bias)?,
                norm1: values(&l.attention_norm.weight)?,
                norm1_bias: values(&l.attention_norm.bias)?,
                ffn_in: values(&l.ffn_in.weight)?,
                ffn_in_bias: values(&l.ffn_in.bias)?,
                ffn_out: values(&l.ffn_out.weight)?,
                ffn_out_bias: values(&l.ffn_out.bias)?,
                norm2: values(&l.output_norm.weight)?,
                norm2_bias: values(&l.output_norm.bias)?,
            },
        })
    }

    fn hidden(&self) -> usize {
        self.values.out_bias.len()
    }

    fn intermediate(&self) -> usize {
        self.values.ffn_in_bias.len()
    }
}

/// What one layer's backward needs from its forward.
struct Saved {
    /// The layer's input `[n, h]`.
    x: Vec<f32>,
    /// The stacked projection `[n, 3h]`: Q, K, V side by side.
    qkv: Vec<f32>,
    /// Attention probabilities before dropout `[b, heads, t, t]`.
    probs: Vec<f32>,
    probs_drop: Option<Vec<f32>>,
    /// Heads' outputs side by side `[n, h]`, the output projection's input.
    context: Vec<f32>,
    attention_drop: Option<Vec<f32>>,
    norm1: Normalized,
    /// The first layer norm's output `[n, h]`, the feed-forward's input.
    x1: Vec<f32>,
    /// The feed-forward's pre-activation and activation `[n, f]`.
    inter: Vec<f32>,
    act: Vec<f32>,
    ffn_drop: Option<Vec<f32>>,
    norm2: Normalized,
}

/// A layer norm's normalized rows `(x − mean) · rstd` and each row's `rstd`.
struct Normalized {
    xhat: Vec<f32>,
    rstd: Vec<f32>,
}

struct TrainLayers {
    layers: Vec<Layer>,
    weights: Vec<Weights>,
    /// Additive key mask `[b, t]`.
    mask: Vec<f32>,
    saved: Mutex<Vec<Saved>>,
}

impl CustomOp1 for TrainLayers {
    fn name(&self) -> &'static str {
        "cairn-train-layers"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = l.contiguous_offsets() else {
            bail!("{}: input not contiguous", self.name());
        };
        let (b, t, h) = l.shape().dims3()?;
        let mut x = s.as_slice::<f32>()?[start..end].to_vec();
        let mut saved = Vec::with_capacity(self.weights.len());
        for w in &self.weights {
            if w.hidden() != h {
                bail!(
                    "{}: a layer of width {} on rows of {h}",
                    self.name(),
                    w.hidden()
                );
            }
            let (out, s) = forward_layer(w, x, &self.mask, b, t);
            saved.push(s);
            x = out;
        }
        *self.saved.lock().expect("saved activations") = saved;
        Ok((CpuStorage::F32(x), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (b, t, _) = arg.dims3()?;
        let saved = std::mem::take(&mut *self.saved.lock().expect("saved activations"));
        if saved.len() != self.weights.len() {
            bail!("{}: backward without a forward", self.name());
        }
        let mut dy = values(&grad.contiguous()?)?;
        let mut param_grads = Vec::new();
        for ((w, s), layer) in self.weights.iter().zip(saved).zip(&self.layers).rev() {
            let (dx, g) = backward_layer(w, s, dy, b, t);
            for (p, g) in params(layer).into_iter().zip(g.into_tensors(w)?) {
                param_grads.push((p.clone(), g));
            }
            dy = dx;
        }
        PARAM_GRADS.with(|s| s.borrow_mut().extend(param_grads));
        Ok(Some(Tensor::from_vec(dy, arg.shape(), &Device::Cpu)?))
    }
}

// ---------------------------------------------------------------------------------------------
// Forward

fn forward_layer(w: &Weights, x: Vec<f32>, mask: &[f32], b: usize, t: usize) -> (Vec<f32>, Saved) {
    let (n, h, f) = (b * t, w.hidden(), w.intermediate());
    let qkv = linear(&x, n, h, &w.values.qkv, &w.values.qkv_bias);
    let probs_drop = dropout_scales(b * w.heads * t * t, w.p_attention);
    let (probs, context) = attention(&qkv, mask, probs_drop.as_deref(), b, t, h, w.heads);
    let a = linear(&context, n, h, &w.values.out, &w.values.out_bias);
    let attention_drop = dropout_scales(n * h, w.p_hidden);
    let (x1, norm1) = add_and_norm(
        &a,
        attention_drop.as_deref(),
        &x,
        &w.values.norm1,
        &w.values.norm1_bias,
        w.eps1,
    );
    let inter = linear(&x1, n, h, &w.values.ffn_in, &w.values.ffn_in_bias);
    let mut act = vec![0f32; n * f];
    act.par_chunks_mut(ROWS_PER_TASK * f)
        .zip(inter.par_chunks(ROWS_PER_TASK * f))
        .for_each(|(o, i)| gelu_into(o, i));
    let ffn = linear(&act, n, f, &w.values.ffn_out, &w.values.ffn_out_bias);
    let ffn_drop = dropout_scales(n * h, w.p_hidden);
    let (out, norm2) = add_and_norm(
        &ffn,
        ffn_drop.as_deref(),
        &x1,
        &w.values.norm2,
        &w.values.norm2_bias,
        w.eps2,
    );
    let saved = Saved {
        x,
        qkv,
        probs,
        probs_drop,
        context,
        attention_drop,
        norm1,
        x1,
        inter,
        act,
        ffn_drop,
        norm2,
    };
    (out, saved)
}

/// `x W^T + b` for `x` of `rows × k` and `weight` of `out × k`: the bias fills the output and
/// the gemm adds into it.
fn linear(x: &[f32], rows: usize, k: usize, weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let o = bias.len();
    let mut y = Vec::with_capacity(rows * o);
    for _ in 0..rows {
        y.extend_from_slice(bias);
    }
    gemm_into(
        &mut y,
        o,
        (rows, o, k),
        View::rows(x, k),
        View::transposed(weight, k),
        true,
        1.0,
        all_threads(),
    );
    y
}

/// Scaled dot-product attention from the stacked projection, one sequence per task: the
/// probabilities `[b, heads, t, t]` (before dropout) and the heads' outputs `[n, h]`.
fn attention(
    qkv: &[f32],
    mask: &[f32],
    drop: Option<&[f32]>,
    b: usize,
    t: usize,
    h: usize,
    heads: usize,
) -> (Vec<f32>, Vec<f32>) {
    let dh = h / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let (h3, tt) = (3 * h, t * t);
    let mut probs = vec![0f32; b * heads * tt];
    let mut context = vec![0f32; b * t * h];
    context
        .par_chunks_mut(t * h)
        .zip(probs.par_chunks_mut(heads * tt))
        .enumerate()
        .for_each(|(s, (ctx, probs))| {
            let x = &qkv[s * t * h3..(s + 1) * t * h3];
            let mask = &mask[s * t..(s + 1) * t];
            let mut dropped = vec![0f32; if drop.is_some() { tt } else { 0 }];
            for head in 0..heads {
                let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
                let p = &mut probs[head * tt..(head + 1) * tt];
                // scores = scale · Q Kᵀ, read straight from the stacked rows.
                gemm_into(
                    p,
                    t,
                    (t, t, dh),
                    View::strided(&x[qo..], h3, 1),
                    View::strided(&x[ko..], 1, h3),
                    false,
                    scale,
                    Parallelism::None,
                );
                simd::vectorize(|| {
                    for row in p.chunks_exact_mut(t) {
                        softmax_row(row, mask);
                    }
                });
                let p: &[f32] = match drop {
                    Some(d) => {
                        let d = &d[(s * heads + head) * tt..(s * heads + head + 1) * tt];
                        simd::vectorize(|| {
                            for ((o, &p), &d) in dropped.iter_mut().zip(p.iter()).zip(d) {
                                *o = p * d;
                            }
                        });
                        &dropped
                    }
                    None => p,
                };
                gemm_into(
                    &mut ctx[head * dh..],
                    h,
                    (t, dh, t),
                    View::rows(p, t),
                    View::strided(&x[vo..], h3, 1),
                    false,
                    1.0,
                    Parallelism::None,
                );
            }
        });
    (probs, context)
}

/// `row + mask`, then softmax, in place.
#[inline(always)]
fn softmax_row(row: &mut [f32], mask: &[f32]) {
    for (v, &m) in row.iter_mut().zip(mask) {
        *v += m;
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// `LN(a ⊙ drop + residual)`: the output and what the backward needs.
fn add_and_norm(
    a: &[f32],
    drop: Option<&[f32]>,
    residual: &[f32],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) -> (Vec<f32>, Normalized) {
    let h = weight.len();
    let rows = a.len() / h;
    let mut out = vec![0f32; a.len()];
    let mut xhat = vec![0f32; a.len()];
    let mut rstd = vec![0f32; rows];
    let chunk = ROWS_PER_TASK * h;
    out.par_chunks_mut(chunk)
        .zip(xhat.par_chunks_mut(chunk))
        .zip(rstd.par_chunks_mut(ROWS_PER_TASK))
        .enumerate()
        .for_each(|(c, ((out, xhat), rstd))| {
            let range = c * chunk..c * chunk + out.len();
            let (a, residual) = (&a[range.clone()], &residual[range.clone()]);
            let drop = drop.map(|d| &d[range]);
            simd::vectorize(|| {
                let mut y = vec![0f32; h];
                for (r, (out, xhat)) in out
                    .chunks_exact_mut(h)
                    .zip(xhat.chunks_exact_mut(h))
                    .enumerate()
                {
                    let row = r * h..(r + 1) * h;
                    match drop {
                        Some(d) => {
                            for (((y, &a), &d), &x) in y
                                .iter_mut()
                                .zip(&a[row.clone()])
                                .zip(&d[row.clone()])
                                .zip(&residual[row.clone()])
                            {
                                *y = a * d + x;
                            }
                        }
                        None => {
                            for ((y, &a), &x) in y
                                .iter_mut()
                                .zip(&a[row.clone()])
                                .zip(&residual[row.clone()])
                            {
                                *y = a + x;
                            }
                        }
                    }
                    let (mean, s) = moments(&y, eps);
                    rstd[r] = s;
                    for i in 0..h {
                        xhat[i] = (y[i] - mean) * s;
                        out[i] = xhat[i] * weight[i] + bias[i];
                    }
                }
            })
        });
    (out, Normalized { xhat, rstd })
}

// ---------------------------------------------------------------------------------------------
// Backward

impl LayerValues {
    /// As tensors in the order of [`params`] (the stacked Q/K/V split back); `w` gives the shapes.
    fn into_tensors(self, w: &Weights) -> Result<Vec<Tensor>> {
        let (h, f) = (w.hidden(), w.intermediate());
        let dev = Device::Cpu;
        let mat = |v: &[f32], r: usize, c: usize| Tensor::from_slice(v, (r, c), &dev);
        let vec = |v: &[f32]| Tensor::from_slice(v, v.len(), &dev);
        let hh = h * h;
        Ok(vec![
            mat(&self.qkv[..hh], h, h)?,
            vec(&self.qkv_bias[..h])?,
            mat(&self.qkv[hh..2 * hh], h, h)?,
            vec(&self.qkv_bias[h..2 * h])?,
            mat(&self.qkv[2 * hh..], h, h)?,
            vec(&self.qkv_bias[2 * h..])?,
            mat(&self.out, h, h)?,
            vec(&self.out_bias)?,
            vec(&self.norm1)?,
            vec(&self.norm1_bias)?,
            mat(&self.ffn_in, f, h)?,
            vec(&self.ffn_in_bias)?,
            mat(&self.ffn_out, h, f)?,
            vec(&self.ffn_out_bias)?,
            vec(&self.norm2)?,
            vec(&self.norm2_bias)?,
        ])
    }
}

/// From the gradient of the layer's output, the gradient of its input and of its parameters.
fn backward_layer(
    w: &Weights,
    s: Saved,
    dout: Vec<f32>,
    b: usize,
    t: usize,
) -> (Vec<f32>, LayerValues) {
    let (n, h, f) = (b * t, w.hidden(), w.intermediate());
    // out = LN2(ffn ⊙ drop + x1)
    let (dy2, norm2, norm2_bias) = norm_backward(&dout, &s.norm2, &w.values.norm2);
    let dffn = masked(&dy2, s.ffn_drop.as_deref());
    let (ffn_out, ffn_out_bias) = weight_grads(&dffn, &s.act, n, h, f);
    // act = gelu(inter); ffn = act W2ᵀ + b2
    let dact = input_grad(&dffn, &w.values.ffn_out, (n, h, f), None);
    drop(dffn);
    let mut dinter = vec![0f32; n * f];
    dinter
        .par_chunks_mut(ROWS_PER_TASK * f)
        .zip(
            s.inter
                .par_chunks(ROWS_PER_TASK * f)
                .zip(dact.par_chunks(ROWS_PER_TASK * f)),
        )
        .for_each(|(o, (x, g))| gelu_grad_into(o, x, g));
    drop(dact);
    let (ffn_in, ffn_in_bias) = weight_grads(&dinter, &s.x1, n, f, h);
    // x1 feeds both the feed-forward and the residual: dx1 = dy2 + dinter W1.
    let dx1 = input_grad(&dinter, &w.values.ffn_in, (n, f, h), Some(dy2));
    drop(dinter);
    // x1 = LN1(a ⊙ drop + x)
    let (dy1, norm1, norm1_bias) = norm_backward(&dx1, &s.norm1, &w.values.norm1);
    let da = masked(&dy1, s.attention_drop.as_deref());
    let (out, out_bias) = weight_grads(&da, &s.context, n, h, h);
    let dcontext = input_grad(&da, &w.values.out, (n, h, h), None);
    let dqkv = attention_backward(&s, &dcontext, b, t, h, w.heads);
    let (qkv, qkv_bias) = weight_grads(&dqkv, &s.x, n, 3 * h, h);
    // x feeds both the projection and the residual: dx = dy1 + dqkv Wqkv.
    let dx = input_grad(&dqkv, &w.values.qkv, (n, 3 * h, h), Some(dy1));
    let grads = LayerValues {
        qkv,
        qkv_bias,
        out,
        out_bias,
        norm1,
        norm1_bias,
        ffn_in,
        ffn_in_bias,
        ffn_out,
        ffn_out_bias,
        norm2,
        norm2_bias,
    };
    (dx, grads)
}

/// For `y = x Wᵀ + b` with `dy` of `rows × out` and `weight` of `out × k`: `dx = dy W`
/// (`rows × k`), added onto `into` when given (the gradient a residual brings).
fn input_grad(
    dy: &[f32],
    weight: &[f32],
    (rows, out, k): (usize, usize, usize),
    into: Option<Vec<f32>>,
) -> Vec<f32> {
    let accumulate = into.is_some();
    let mut dx = into.unwrap_or_else(|| vec![0f32; rows * k]);
    gemm_into(
        &mut dx,
        k,
        (rows, k, out),
        View::rows(dy, out),
        View::rows(weight, k),
        accumulate,
        1.0,
        all_threads(),
    );
    dx
}

/// `dy ⊙ drop` (a copy of `dy` without dropout).
fn masked(dy: &[f32], drop: Option<&[f32]>) -> Vec<f32> {
    match drop {
        None => dy.to_vec(),
        Some(d) => {
            let mut out = vec![0f32; dy.len()];
            out.par_chunks_mut(16 * 1024)
                .zip(dy.par_chunks(16 * 1024).zip(d.par_chunks(16 * 1024)))
                .for_each(|(o, (g, d))| {
                    simd::vectorize(|| {
                        for ((o, &g), &d) in o.iter_mut().zip(g).zip(d) {
                            *o = g * d;
                        }
                    })
                });
            out
        }
    }
}

/// For `y = x Wᵀ + b` with `dy` of `rows × out` and `x` of `rows × k`: `dW = dyᵀ x`
/// (`out × k`) and `db` = the column sums of `dy`.
fn weight_grads(dy: &[f32], x: &[f32], rows: usize, out: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
    let mut dw = vec![0f32; out * k];
    gemm_into(
        &mut dw,
        k,
        (out, k, rows),
        View::transposed(dy, out),
        View::rows(x, k),
        false,
        1.0,
        all_threads(),
    );
    (dw, column_sums(dy, out))
}

/// The sum of each column over the rows, rows added in order.
fn column_sums(x: &[f32], cols: usize) -> Vec<f32> {
    let mut sums = vec![0f32; cols];
    simd::vectorize(|| {
        for row in x.chunks_exact(cols) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
    });
    sums
}

/// A layer norm's backward from its output gradient: the input gradient, then the weight's
/// and the bias's.
fn norm_backward(
    dout: &[f32],
    norm: &Normalized,
    weight: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let h = weight.len();
    let chunk = ROWS_PER_TASK * h;
    let mut dx = vec![0f32; dout.len()];
    dx.par_chunks_mut(chunk)
        .zip(dout.par_chunks(chunk).zip(norm.xhat.par_chunks(chunk)))
        .zip(norm.rstd.par_chunks(ROWS_PER_TASK))
        .for_each(|((dx, (g, xhat)), rstd)| {
            simd::vectorize(|| {
                for (((dx, g), xhat), &rstd) in dx
                    .chunks_exact_mut(h)
                    .zip(g.chunks_exact(h))
                    .zip(xhat.chunks_exact(h))
                    .zip(rstd)
                {
                    let (mut m1, mut m2) = (0f32, 0f32);
                    for i in 0..h {
                        let gw = g[i] * weight[i];
                        m1 += gw;
                        m2 += gw * xhat[i];
                    }
                    let (m1, m2) = (m1 / h as f32, m2 / h as f32);
                    for i in 0..h {
                        dx[i] = rstd * (g[i] * weight[i] - m1 - xhat[i] * m2);
                    }
                }
            })
        });
    let mut dw = vec![0f32; h];
    simd::vectorize(|| {
        for (g, xhat) in dout.chunks_exact(h).zip(norm.xhat.chunks_exact(h)) {
            for ((s, &g), &x) in dw.iter_mut().zip(g).zip(xhat) {
                *s += g * x;
            }
        }
    });
    (dx, dw, column_sums(dout, h))
}

/// Attention's backward, one sequence per task: the gradient of the stacked projection
/// `[n, 3h]` from that of the heads' outputs.
fn attention_backward(
    s: &Saved,
    dcontext: &[f32],
    b: usize,
    t: usize,
    h: usize,
    heads: usize,
) -> Vec<f32> {
    let dh = h / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let (h3, tt) = (3 * h, t * t);
    let mut dqkv = vec![0f32; b * t * h3];
    dqkv.par_chunks_mut(t * h3)
        .enumerate()
        .for_each(|(seq, dx)| {
            let x = &s.qkv[seq * t * h3..(seq + 1) * t * h3];
            let dctx = &dcontext[seq * t * h..(seq + 1) * t * h];
            let mut dropped = vec![0f32; tt];
            let mut dp = vec![0f32; tt];
            for head in 0..heads {
                let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
                let at = (seq * heads + head) * tt;
                let p = &s.probs[at..at + tt];
                let drop = s.probs_drop.as_ref().map(|d| &d[at..at + tt]);
                let pd: &[f32] = match drop {
                    Some(d) => {
                        simd::vectorize(|| {
                            for ((o, &p), &d) in dropped.iter_mut().zip(p).zip(d) {
                                *o = p * d;
                            }
                        });
                        &dropped
                    }
                    None => p,
                };
                // dV = P'ᵀ dC
                gemm_into(
                    &mut dx[vo..],
                    h3,
                    (t, dh, t),
                    View::transposed(pd, t),
                    View::strided(&dctx[head * dh..], h, 1),
                    false,
                    1.0,
                    Parallelism::None,
                );
                // dP' = dC Vᵀ
                gemm_into(
                    &mut dp,
                    t,
                    (t, t, dh),
                    View::strided(&dctx[head * dh..], h, 1),
                    View::strided(&x[vo..], 1, h3),
                    false,
                    1.0,
                    Parallelism::None,
                );
                // Through dropout and softmax: dS = P ⊙ (dP − Σ dP ⊙ P).
                simd::vectorize(|| {
                    for (r, (dp, p)) in dp.chunks_exact_mut(t).zip(p.chunks_exact(t)).enumerate() {
                        if let Some(d) = drop {
                            for (g, &d) in dp.iter_mut().zip(&d[r * t..(r + 1) * t]) {
                                *g *= d;
                            }
                        }
                        let dot: f32 = dp.iter().zip(p).map(|(g, p)| g * p).sum();
                        for (g, &p) in dp.iter_mut().zip(p) {
                            *g = p * (*g - dot);
                        }
                    }
                });
                // scores = scale · Q Kᵀ: dQ = scale · dS K, dK = scale · dSᵀ Q.
                gemm_into(
                    &mut dx[qo..],
                    h3,
                    (t, dh, t),
                    View::rows(&dp, t),
                    View::strided(&x[ko..], h3, 1),
                    false,
                    scale,
                    Parallelism::None,
                );
                gemm_into(
                    &mut dx[ko..],
                    h3,
                    (t, dh, t),
                    View::transposed(&dp, t),
                    View::strided(&x[qo..], h3, 1),
                    false,
                    scale,
                    Parallelism::None,
                );
            }
        });
    dqkv
}

// ---------------------------------------------------------------------------------------------
// gemm on strided views

/// A matrix read from a slice with element strides between rows and between columns.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// Row-major with `cols` columns.
    fn rows(data: &'a [f32], cols: usize) -> View<'a> {
        View {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of the row-major matrix with `cols` columns stored in `data`.
    fn transposed(data: &'a [f32], cols: usize) -> View<'a> {
        View {
            data,
            rs: 1,
            cs: cols,
        }
    }

    fn strided(data: &'a [f32], rs: usize, cs: usize) -> View<'a> {
        View { data, rs, cs }
    }

    /// Panics unless a `rows × cols` matrix read this way stays inside the slice.
    fn check(&self, rows: usize, cols: usize) {
        assert!(
            rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len(),
            "a {rows}×{cols} view out of its slice"
        );
    }
}

fn all_threads() -> Parallelism {
    match rayon::current_num_threads() {
        1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `dst (m × n, row stride dst_rs) = [dst +] scale · lhs (m × k) · rhs (k × n)`.
#[allow(clippy::too_many_arguments)]
fn gemm_into(
    dst: &mut [f32],
    dst_rs: usize,
    (m, n, k): (usize, usize, usize),
    lhs: View,
    rhs: View,
    accumulate: bool,
    scale: f32,
    par: Parallelism,
) {
    lhs.check(m, k);
    rhs.check(k, n);
    assert!(
        m == 0 || n == 0 || (m - 1) * dst_rs + n <= dst.len(),
        "gemm output out of its slice"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the checks above bound every element gemm reads or writes; `dst` is borrowed
    // mutably, so it does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use candle_core::{DType, Device, Tensor, Var};
    use candle_nn::{VarBuilder, VarMap};

    use super::super::{Config, Encoder, Layer, additive_mask, seed_dropout};
    use super::*;

    fn layers(family: &str) -> (Vec<Layer>, VarMap, usize) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/encoders")
            .join(family);
        let cfg = Config::from_file(&dir.join("config.json")).unwrap();
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let encoder = Encoder::load(vb, &cfg).unwrap();
        varmap.load(dir.join("model.safetensors")).unwrap();
        let layers = match encoder {
            Encoder::Bert(m) => m.layers,
            Encoder::DistilBert(m) => m.layers,
            Encoder::XlmRoberta(m) => m.layers,
        };
        (layers, varmap, cfg.hidden_size())
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The op's output and every gradient (input and all parameters) equal those of the
    /// composite path (candle's autograd over the same layers), dropout on and drawn alike.
    #[test]
    fn the_op_matches_the_composite_layers_forward_and_backward() {
        for family in ["bert", "distilbert", "xlm_roberta"] {
            let (layers, varmap, h) = layers(family);
            let (b, t) = (3, 7);
            let mut rng = crate::ml::rng::Rng::new(5);
            let x: Vec<f32> = (0..b * t * h).map(|_| rng.normal() as f32).collect();
            let x = Var::from_vec(x, (b, t, h), &Device::Cpu).unwrap();
            // Sequences of 7, 4 and 1 tokens.
            let keep: Vec<f32> = [7, 4, 1]
                .iter()
                .flat_map(|&n| (0..t).map(move |i| if i < n { 1.0 } else { 0.0 }))
                .collect();
            let mask =
                additive_mask(&Tensor::from_vec(keep, (b, t), &Device::Cpu).unwrap()).unwrap();
            let weights: Vec<f32> = (0..b * t * h).map(|_| rng.normal() as f32).collect();
            let weights = Tensor::from_vec(weights, (b, t, h), &Device::Cpu).unwrap();
            let loss = |y: &Tensor| (y * &weights).unwrap().sum_all().unwrap();

            seed_dropout(9);
            let fused = run(&layers, x.as_tensor(), &mask).unwrap();
            let g1 = backward(&loss(&fused)).unwrap();
            seed_dropout(9);
            let composite = layers
                .iter()
                .try_fold(x.as_tensor().clone(), |x, l| l.forward(&x, &mask, true))
                .unwrap();
            let g2 = loss(&composite).backward().unwrap();

            let d = max_diff(&fused, &composite);
            assert!(d < 1e-4, "{family}: outputs differ by {d}");
            let d = max_diff(
                g1.get(x.as_tensor()).unwrap(),
                g2.get(x.as_tensor()).unwrap(),
            );
            assert!(d < 1e-3, "{family}: input gradients differ by {d}");
            let vars = varmap.data().lock().unwrap();
            let mut checked = 0;
            for (name, var) in vars.iter().filter(|(n, _)| n.contains("layer")) {
                let (a, b) = (g1.get(var.as_tensor()), g2.get(var.as_tensor()));
                let (a, b) = (
                    a.unwrap_or_else(|| panic!("{family}: no gradient for {name}")),
                    b.unwrap(),
                );
                let scale = b
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    .max(1.0);
                let d = max_diff(a, b) / scale;
                assert!(
                    d < 1e-4,
                    "{family}: {name}: gradients differ by {d} (relative)"
                );
                checked += 1;
            }
            assert_eq!(checked, layers.len() * 16, "{family}");
        }
    }

    /// The same bits whatever the thread count.
    #[test]
    fn the_op_is_deterministic_across_thread_counts() {
        let (layers, _, h) = layers("bert");
        let (b, t) = (4, 9);
        let mut rng = crate::ml::rng::Rng::new(6);
        let x: Vec<f32> = (0..b * t * h).map(|_| rng.normal() as f32).collect();
        let x = Var::from_vec(x, (b, t, h), &Device::Cpu).unwrap();
        let mask = additive_mask(&Tensor::ones((b, t), DType::F32, &Device::Cpu).unwrap()).unwrap();
        let bits = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                seed_dropout(1);
                let y = run(&layers, x.as_tensor(), &mask).unwrap();
                let g = backward(&y.sqr().unwrap().sum_all().unwrap()).unwrap();
                let mut out: Vec<u32> = y
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                for l in &layers {
                    for p in params(l) {
                        out.extend(
                            g.get(p)
                                .unwrap()
                                .flatten_all()
                                .unwrap()
                                .to_vec1::<f32>()
                                .unwrap()
                                .iter()
                                .map(|v| v.to_bits()),
                        );
                    }
                }
                out
            })
        };
        assert!(bits(1) == bits(3));
    }
}
