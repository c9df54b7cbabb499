//! CPU inference kernels for what candle 0.11 does slowly at extract-hidden's shapes (many short
//! sequences): the erf GELU (candle's is a scalar, single-threaded `erf` per element) and
//! attention (candle runs one small gemm per (sequence, head) in a serial loop, after
//! permute/contiguous copies). Both are inference only (no backward); the training path keeps
//! candle's differentiable ops. Used for f32 on CPU; other devices and dtypes take the generic
//! path.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, bail};
use rayon::prelude::*;

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
            .for_each(|(o, x)| {
                for (o, &v) in o.iter_mut().zip(x) {
                    *o = 0.5 * v * (1.0 + erf_f32(v * std::f32::consts::FRAC_1_SQRT_2));
                }
            });
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
        out.par_chunks_mut(t * h).enumerate().for_each(|(s, out)| {
            let x = &qkv[s * t * h3..(s + 1) * t * h3];
            let mask = &mask[s * t..(s + 1) * t];
            let mut scores = vec![0f32; t];
            for head in 0..self.heads {
                let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
                for i in 0..t {
                    let q = &x[i * h3 + qo..i * h3 + qo + dh];
                    let mut max = f32::NEG_INFINITY;
                    for (j, sc) in scores.iter_mut().enumerate() {
                        let k = &x[j * h3 + ko..j * h3 + ko + dh];
                        let dot: f32 = q.iter().zip(k).map(|(a, b)| a * b).sum();
                        *sc = dot * scale + mask[j];
                        max = max.max(*sc);
                    }
                    let mut sum = 0f32;
                    for sc in scores.iter_mut() {
                        *sc = (*sc - max).exp();
                        sum += *sc;
                    }
                    let inv = 1.0 / sum;
                    let o = &mut out[i * h + head * dh..i * h + head * dh + dh];
                    for (j, &p) in scores.iter().enumerate() {
                        let p = p * inv;
                        let v = &x[j * h3 + vo..j * h3 + vo + dh];
                        for (o, &v) in o.iter_mut().zip(v) {
                            *o += p * v;
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, t, h))))
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
