//! CPU inference kernels for what candle 0.11 does slowly at extract-hidden's shapes (many short
//! sequences): the erf GELU (candle's is a scalar, single-threaded `erf` per element) and
//! attention (candle runs one small gemm per (sequence, head) in a serial loop, after
//! permute/contiguous copies). Both are inference only (no backward); the training path keeps
//! candle's differentiable ops. Used for f32 on CPU; other devices and dtypes take the generic
//! path.
//!
//! Their loops run on the instruction set [`crate::nn::simd`] picks at run time, and give the
//! same bits on all of them: attention's dot products run eight keys at a time over one head's
//! transposed keys, but each is still summed in the order of its components.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, bail};
use rayon::prelude::*;

use crate::nn::simd;

/// erf(x) for f32 as a rational function on [-4, 4] (±1 outside, where f32 erf is ±1): odd
/// numerator of degree 13 over an even denominator of degree 8, the approximation Eigen and
/// XLA use. No branches, so it vectorizes; max |error| vs f64 erf is checked below.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2.mul_add(-2.726_142_3e-10, 2.770_681_4e-8);
    p = x2.mul_add(p, -2.101_024e-6);
    p = x2.mul_add(p, -5.692_506_4e-5);
    p = x2.mul_add(p, -7.349_906e-4);
    p = x2.mul_add(p, -2.954_6e-3);
    p = x2.mul_add(p, -1.609_603_3e-2);
    p *= x;
    let mut q = x2.mul_add(-1.456_607_2e-5, -2.133_740_6e-4);
    q = x2.mul_add(q, -1.682_827e-3);
    q = x2.mul_add(q, -7.373_329e-3);
    q = x2.mul_add(q, -1.426_474e-2);
    p / q
}

/// `out[i] = 0.5 x (1 + erf(x / √2))` for `x = x[i]`, vectorized where the CPU allows.
pub fn gelu_into(out: &mut [f32], x: &[f32]) {
    simd::vectorize(|| {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = 0.5 * v * (1.0 + erf_f32(v * std::f32::consts::FRAC_1_SQRT_2));
        }
    })
}

/// `0.5 x (1 + erf(x / sqrt 2))` on contiguous f32, in parallel chunks.
pub struct GeluErf;

const CHUNK: usize = 16 * 1024;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "cairn-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = l.contiguous_offsets() else {
            bail!("cairn-gelu-erf: input not contiguous");
        };
        let x = &s.as_slice::<f32>()?[start..end];
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| gelu_into(o, x));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// Scaled dot-product self-attention straight from the fused projection: `qkv` `[b, t, 3h]`
/// (Q, K, V side by side, heads inside each), additive f32 mask `[b, t]` (over keys); output
/// `[b, t, h]` with heads side by side, ready for the output projection. One task per sequence.
pub struct FusedAttention {
    pub heads: usize,
}

impl CustomOp2 for FusedAttention {
    fn name(&self) -> &'static str {
        "cairn-fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (Some((a1, e1)), Some((a2, e2))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            bail!("cairn-fused-attention: inputs not contiguous");
        };
        let qkv = &s1.as_slice::<f32>()?[a1..e1];
        let mask = &s2.as_slice::<f32>()?[a2..e2];
        let (b, t, h3) = l1.shape().dims3()?;
        if l2.shape().dims2()? != (b, t) || h3 % (3 * self.heads) != 0 {
            bail!(
                "cairn-fused-attention: qkv {:?} / mask {:?} / heads {}",
                l1.shape(),
                l2.shape(),
                self.heads
            );
        }
        let h = h3 / 3;
        let dh = h / self.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut out = vec![0f32; b * t * h];
        // One dispatch per sequence: the helpers below inline into it and take its
        // instruction set (a dispatch per query and head would sit in the innermost loop).
        out.par_chunks_mut(t * h).enumerate().for_each(|(s, out)| {
            simd::vectorize(|| {
                let x = &qkv[s * t * h3..(s + 1) * t * h3];
                let mask = &mask[s * t..(s + 1) * t];
                let mut keys = vec![0f32; dh * t];
                let mut scores = vec![0f32; t];
                for head in 0..self.heads {
                    let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
                    transpose_keys(&mut keys, x, h3, ko, dh);
                    for i in 0..t {
                        let q = &x[i * h3 + qo..i * h3 + qo + dh];
                        key_dots(&mut scores, q, &keys);
                        let mut max = f32::NEG_INFINITY;
                        for (sc, &m) in scores.iter_mut().zip(mask) {
                            *sc = *sc * scale + m;
                            max = max.max(*sc);
                        }
                        let mut sum = 0f32;
                        for sc in scores.iter_mut() {
                            *sc = (*sc - max).exp();
                            sum += *sc;
                        }
                        let o = &mut out[i * h + head * dh..i * h + head * dh + dh];
                        add_weighted_values(o, &scores, 1.0 / sum, x, h3, vo);
                    }
                }
            })
        });
        Ok((CpuStorage::F32(out), Shape::from((b, t, h))))
    }
}

/// `keys[d·t + j]` = component `d` of key `j` (its `dh` values start at column `ko` of row `j`
/// of `x`, rows `h3` apart): one head's keys transposed, so a query's dot products with all
/// keys run along contiguous memory.
#[inline(always)]
fn transpose_keys(keys: &mut [f32], x: &[f32], h3: usize, ko: usize, dh: usize) {
    let t = keys.len() / dh;
    for j in 0..t {
        for (d, &k) in x[j * h3 + ko..j * h3 + ko + dh].iter().enumerate() {
            keys[d * t + j] = k;
        }
    }
}

/// `scores[j] = Σ_d q[d]·keys[d·t + j]`, each sum in `d` order from −0.0, as
/// `q.iter().zip(k).map(|(a, b)| a * b).sum()` computes it per key — the same bits, eight keys
/// at a time (the loop over `j` is the one that vectorizes).
#[inline(always)]
fn key_dots(scores: &mut [f32], q: &[f32], keys: &[f32]) {
    let t = scores.len();
    scores.fill(-0.0);
    for (&qd, row) in q.iter().zip(keys.chunks_exact(t)) {
        for (s, &k) in scores.iter_mut().zip(row) {
            *s += qd * k;
        }
    }
}

/// `o += Σ_j (p[j]·inv)·v_j` in `j` order, `v_j` being `o.len()` values at column `vo` of row
/// `j` of `x`.
#[inline(always)]
fn add_weighted_values(o: &mut [f32], p: &[f32], inv: f32, x: &[f32], h3: usize, vo: usize) {
    let dh = o.len();
    for (j, &p) in p.iter().enumerate() {
        let p = p * inv;
        for (o, &v) in o.iter_mut().zip(&x[j * h3 + vo..j * h3 + vo + dh]) {
            *o += p * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Maclaurin series in f64 (converges fast enough for |x| <= 3).
    fn erf_f64(x: f64) -> f64 {
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    /// Attention as the kernel computed it before keys were transposed: per query, per key, a
    /// sequential dot product.
    fn plain_attention(qkv: &[f32], mask: &[f32], b: usize, t: usize, heads: usize) -> Vec<f32> {
        let h3 = qkv.len() / (b * t);
        let (h, dh) = (h3 / 3, h3 / 3 / heads);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut out = vec![0f32; b * t * h];
        for s in 0..b {
            let x = &qkv[s * t * h3..(s + 1) * t * h3];
            for head in 0..heads {
                let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
                for i in 0..t {
                    let q = &x[i * h3 + qo..][..dh];
                    let scores: Vec<f32> = (0..t)
                        .map(|j| {
                            let dot: f32 = q
                                .iter()
                                .zip(&x[j * h3 + ko..][..dh])
                                .map(|(a, b)| a * b)
                                .sum();
                            dot * scale + mask[s * t + j]
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = scores.iter().map(|v| (v - max).exp()).collect();
                    let inv = 1.0 / e.iter().fold(0f32, |a, v| a + v);
                    let o = &mut out[(s * t + i) * h + head * dh..][..dh];
                    for (j, p) in e.iter().enumerate() {
                        for (o, v) in o.iter_mut().zip(&x[j * h3 + vo..][..dh]) {
                            *o += p * inv * v;
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn attention_gives_the_plain_loops_bits_on_both_instruction_sets() {
        let (b, t, heads, dh) = (3, 13, 4, 8);
        let h3 = 3 * heads * dh;
        let mut seed = 9u64;
        let mut draw = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
        };
        let qkv: Vec<f32> = (0..b * t * h3).map(|_| draw()).collect();
        // The last sequence ends in padding.
        let mask: Vec<f32> = (0..b * t)
            .map(|i| if i >= 2 * t + 9 { f32::MIN } else { 0.0 })
            .collect();
        let want = plain_attention(&qkv, &mask, b, t, heads);
        let qkv_t =
            candle_core::Tensor::from_vec(qkv, (b, t, h3), &candle_core::Device::Cpu).unwrap();
        let mask_t =
            candle_core::Tensor::from_vec(mask, (b, t), &candle_core::Device::Cpu).unwrap();
        for portable in [true, false] {
            let got = simd::with_portable(portable, || {
                let out = qkv_t.apply_op2_no_bwd(&mask_t, &FusedAttention { heads });
                out.unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            });
            let same = got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "portable = {portable}");
        }
    }

    #[test]
    fn gelu_gives_the_same_bits_on_both_instruction_sets() {
        let x: Vec<f32> = (-5000..5000).map(|i| i as f32 / 997.0).collect();
        let mut fast = vec![0f32; x.len()];
        let mut portable = vec![0f32; x.len()];
        simd::with_portable(true, || gelu_into(&mut portable, &x));
        simd::with_portable(false, || gelu_into(&mut fast, &x));
        assert!(
            fast.iter()
                .zip(&portable)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }

    #[test]
    fn fast_erf_is_accurate_to_a_few_ulp() {
        let mut worst = 0f64;
        for i in -30_000..=30_000 {
            let x = i as f64 / 10_000.0;
            worst = worst.max((erf_f32(x as f32) as f64 - erf_f64(x)).abs());
        }
        assert!(worst < 1e-6, "max |erf error| {worst:e}");
        // erf(4) = 1 - 1.5e-8: the clamp costs nothing in f32.
        assert!((erf_f32(4.0) - 1.0).abs() < 1e-6 && erf_f32(9.0) == erf_f32(4.0));
        assert_eq!(erf_f32(-9.0), -erf_f32(9.0));
    }
}
