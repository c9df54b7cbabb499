//! CPU training kernels with their backward passes, for the three places where composing
//! candle's elementwise ops costs most in a fine-tuning step: layer norm (ten ops and as many
//! full-size temporaries forward, more backward), the softmax of attention scores, and the erf
//! GELU (candle's computes a scalar libm `erf` per element, twice in backward). Each is one
//! pass over rows in parallel, forward and backward. f32, CPU only; other devices and dtypes
//! keep the composite ops, which these are tested against.
//!
//! Deterministic whatever the thread count: every kernel works row by row except the layer
//! norm's weight and bias gradients, which sum over rows as partial sums of fixed
//! [`ROWS_PER_TASK`]-row blocks, added up in block order after rayon has computed them.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail,
};
use rayon::prelude::*;

use super::cpu_kernels::{erf_f32, gelu_into};
use crate::nn::simd;

/// Rows handed to one rayon task. A constant, never derived from the thread count: the layer
/// norm's weight and bias gradients are sums over blocks of this many rows.
const ROWS_PER_TASK: usize = 64;

fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<f32>()?[a..b]),
        None => bail!("{op}: input not contiguous"),
    }
}

fn last_dim(l: &Layout) -> usize {
    l.dims().last().copied().unwrap_or(1)
}

// ---------------------------------------------------------------------------------------------
// GELU (erf)

const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// `0.5 x (1 + erf(x/√2))`, with backward `Φ(x) + x φ(x)`.
pub struct Gelu;
struct GeluGrad;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "cairn-gelu-train"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(16 * 1024)
            .zip(x.par_chunks(16 * 1024))
            .for_each(|(o, x)| gelu_into(o, x));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            x.contiguous()?
                .apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?,
        ))
    }
}

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "cairn-gelu-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(16 * 1024)
            .zip(x.par_chunks(16 * 1024).zip(g.par_chunks(16 * 1024)))
            .for_each(|(o, (x, g))| gelu_grad_into(o, x, g));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `out[i] = g[i] · GELU'(x[i])`, GELU' = Φ(x) + x φ(x).
pub fn gelu_grad_into(out: &mut [f32], x: &[f32], g: &[f32]) {
    simd::vectorize(|| {
        for ((o, &v), &g) in out.iter_mut().zip(x).zip(g) {
            let cdf = 0.5 * (1.0 + erf_f32(v * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = FRAC_1_SQRT_2PI * (-0.5 * v * v).exp();
            *o = g * (cdf + v * pdf);
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Softmax over the last dimension

/// Softmax over the last dimension, with backward `y ⊙ (g − Σ g y)`.
pub struct Softmax;
struct SoftmaxGrad;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "cairn-softmax-train"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let n = last_dim(l);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(n * ROWS_PER_TASK)
            .zip(x.par_chunks(n * ROWS_PER_TASK))
            .for_each(|(o, x)| {
                simd::vectorize(|| {
                    for (o, x) in o.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let mut sum = 0.0;
                        for (o, &v) in o.iter_mut().zip(x) {
                            *o = (v - max).exp();
                            sum += *o;
                        }
                        let inv = 1.0 / sum;
                        o.iter_mut().for_each(|v| *v *= inv);
                    }
                })
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            y.contiguous()?
                .apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad)?,
        ))
    }
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "cairn-softmax-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let n = last_dim(l1);
        let mut out = vec![0f32; y.len()];
        let chunk = n * ROWS_PER_TASK;
        out.par_chunks_mut(chunk)
            .zip(y.par_chunks(chunk).zip(g.par_chunks(chunk)))
            .for_each(|(o, (y, g))| {
                simd::vectorize(|| {
                    for ((o, y), g) in o
                        .chunks_exact_mut(n)
                        .zip(y.chunks_exact(n))
                        .zip(g.chunks_exact(n))
                    {
                        let dot: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
                        for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                            *o = y * (g - dot);
                        }
                    }
                })
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// Layer norm

/// `(x − mean) / sqrt(var + eps) · w + b` over the last dimension (biased variance, as
/// PyTorch), with backward for x, w and b.
pub struct LayerNorm {
    pub eps: f32,
}

/// The backward: from x, w and the output gradient, one `[rows + 2, h]` tensor — dx, then dw
/// and db as the last two rows.
struct LayerNormGrad {
    eps: f32,
}

/// Mean and 1/std of one row.
#[inline(always)]
pub fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "cairn-layer-norm-train"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (
            slice(s1, l1, self.name())?,
            slice(s2, l2, self.name())?,
            slice(s3, l3, self.name())?,
        );
        let h = last_dim(l1);
        if w.len() != h || b.len() != h {
            bail!(
                "{}: weight/bias of size {}/{} for rows of {h}",
                self.name(),
                w.len(),
                b.len()
            );
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(h * ROWS_PER_TASK)
            .zip(x.par_chunks(h * ROWS_PER_TASK))
            .for_each(|(o, x)| {
                simd::vectorize(|| {
                    for (o, x) in o.chunks_exact_mut(h).zip(x.chunks_exact(h)) {
                        let (mean, rstd) = moments(x, self.eps);
                        for i in 0..h {
                            o[i] = (x[i] - mean) * rstd * w[i] + b[i];
                        }
                    }
                })
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = w.elem_count();
        let rows = x.elem_count() / h;
        let packed = x.contiguous()?.apply_op3_no_bwd(
            &w.contiguous()?,
            &grad.contiguous()?,
            &LayerNormGrad { eps: self.eps },
        )?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dw = packed.narrow(0, rows, 1)?.reshape(w.shape())?;
        let db = packed.narrow(0, rows + 1, 1)?.reshape(w.shape())?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "cairn-layer-norm-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (
            slice(s1, l1, self.name())?,
            slice(s2, l2, self.name())?,
            slice(s3, l3, self.name())?,
        );
        let h = w.len();
        let rows = x.len() / h;
        let mut out = vec![0f32; (rows + 2) * h];
        let (dx, sums) = out.split_at_mut(rows * h);
        let chunk = h * ROWS_PER_TASK;
        // dx per row; dw and db as per-block partial sums (collect keeps block order), added
        // up in block order.
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk).zip(g.par_chunks(chunk)))
            .map(|(dx, (x, g))| {
                simd::vectorize(|| {
                    let mut acc = vec![0f32; 2 * h];
                    let mut xhat = vec![0f32; h];
                    for ((dx, x), g) in dx
                        .chunks_exact_mut(h)
                        .zip(x.chunks_exact(h))
                        .zip(g.chunks_exact(h))
                    {
                        let (mean, rstd) = moments(x, self.eps);
                        let (mut m1, mut m2) = (0f32, 0f32);
                        for i in 0..h {
                            xhat[i] = (x[i] - mean) * rstd;
                            let gw = g[i] * w[i];
                            m1 += gw;
                            m2 += gw * xhat[i];
                            acc[i] += g[i] * xhat[i];
                            acc[h + i] += g[i];
                        }
                        let (m1, m2) = (m1 / h as f32, m2 / h as f32);
                        for i in 0..h {
                            dx[i] = rstd * (g[i] * w[i] - m1 - xhat[i] * m2);
                        }
                    }
                    acc
                })
            })
            .collect();
        for p in partials {
            for (s, v) in sums.iter_mut().zip(p) {
                *s += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, h))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, Device, Var};

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let d = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < tol, "max |Δ| {d}");
    }

    fn input(shape: (usize, usize, usize), seed: u64) -> Tensor {
        let mut rng = crate::ml::rng::Rng::new(seed);
        let n = shape.0 * shape.1 * shape.2;
        let v: Vec<f32> = (0..n).map(|_| (rng.normal() * 2.0) as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Forward values and all gradients equal those of candle's composite ops.
    #[test]
    fn kernels_match_the_composite_ops_forward_and_backward() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&input((3, 5, 16), 1)).unwrap();
        let w = Var::from_tensor(
            &input((1, 1, 16), 2)
                .flatten_all()
                .unwrap()
                .affine(0.3, 1.0)
                .unwrap(),
        )
        .unwrap();
        let b = Var::from_tensor(&(input((1, 1, 16), 3).flatten_all().unwrap() * 0.1).unwrap())
            .unwrap();
        let weights = input((3, 5, 16), 4);
        // A loss that weighs every output differently, so every gradient entry matters.
        let loss = |y: &Tensor| (y * &weights).unwrap().sum_all().unwrap();

        // Layer norm.
        let fused = x
            .as_tensor()
            .apply_op3(w.as_tensor(), b.as_tensor(), LayerNorm { eps: 1e-12 })
            .unwrap();
        let composite = {
            let x = x.as_tensor();
            let mean = x.mean_keepdim(D::Minus1).unwrap();
            let c = x.broadcast_sub(&mean).unwrap();
            let var = c.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
            c.broadcast_div(&(var + 1e-12).unwrap().sqrt().unwrap())
                .unwrap()
                .broadcast_mul(w.as_tensor())
                .unwrap()
                .broadcast_add(b.as_tensor())
                .unwrap()
        };
        close(&fused, &composite, 1e-5);
        let (g1, g2) = (
            loss(&fused).backward().unwrap(),
            loss(&composite).backward().unwrap(),
        );
        for v in [&x, &w, &b] {
            close(
                g1.get(v.as_tensor()).unwrap(),
                g2.get(v.as_tensor()).unwrap(),
                1e-4,
            );
        }

        // Softmax.
        let fused = x.as_tensor().apply_op1(Softmax).unwrap();
        let composite = candle_nn::ops::softmax(x.as_tensor(), D::Minus1).unwrap();
        close(&fused, &composite, 1e-6);
        let (g1, g2) = (
            loss(&fused).backward().unwrap(),
            loss(&composite).backward().unwrap(),
        );
        close(
            g1.get(x.as_tensor()).unwrap(),
            g2.get(x.as_tensor()).unwrap(),
            1e-5,
        );

        // GELU.
        let fused = x.as_tensor().apply_op1(Gelu).unwrap();
        let composite = x.as_tensor().gelu_erf().unwrap();
        close(&fused, &composite, 1e-5);
        let (g1, g2) = (
            loss(&fused).backward().unwrap(),
            loss(&composite).backward().unwrap(),
        );
        close(
            g1.get(x.as_tensor()).unwrap(),
            g2.get(x.as_tensor()).unwrap(),
            1e-4,
        );
        let _ = dev;
    }
}
