//! Limited-memory BFGS for smooth unconstrained minimisation, written to behave like SciPy's
//! `L-BFGS-B` without bounds (what scikit-learn's `LogisticRegression(solver="lbfgs")` calls),
//! so that a fit stops where scikit-learn's stops:
//!
//! - the direction is the L-BFGS two-loop recursion over the last `m` (s, y) pairs with
//!   H₀ = (sᵀy / yᵀy)·I, which is what L-BFGS-B's compact form gives when no bound is active;
//!   a pair with sᵀy ≤ ε·(−gᵀd·stp) is skipped, as L-BFGS-B does;
//! - the line search is Moré–Thuente (MINPACK-2 `dcsrch`/`dcstep`) with L-BFGS-B's constants
//!   (ftol 1e-3, gtol 0.9, xtol 0.1), first step 1/‖d‖ on the first iteration and 1 after;
//!   after `max_ls` evaluations without success the memory is dropped and the iteration
//!   restarts from steepest descent (an error when the memory was already empty);
//! - it stops when max |gᵢ| ≤ `gtol` (SciPy's `gtol`/`pgtol`), when
//!   (f_old − f)/max(|f_old|, |f|, 1) ≤ `ftol` (SciPy's `ftol` = factr·ε), or after `max_iter`
//!   iterations or more than `max_fun` evaluations; the iteration count is SciPy's `nit`.

/// Stopping rules and memory; defaults are SciPy's `minimize(method="L-BFGS-B")` ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Correction pairs kept (SciPy `maxcor`). Default 10.
    pub m: usize,
    /// Iterations at most (SciPy `maxiter`). Default 15000.
    pub max_iter: usize,
    /// Function evaluations at most (SciPy `maxfun`). Default 15000.
    pub max_fun: usize,
    /// Stop when the largest gradient component is at most this (SciPy `gtol`). Default 1e-5.
    pub gtol: f64,
    /// Stop when the relative decrease of f is at most this (SciPy `ftol`). Default 2.22e-9.
    pub ftol: f64,
    /// Evaluations per line search at most (SciPy `maxls`). Default 20.
    pub max_ls: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            m: 10,
            max_iter: 15000,
            max_fun: 15000,
            gtol: 1e-5,
            ftol: 1e7 * f64::EPSILON,
            max_ls: 20,
        }
    }
}

/// Why the minimisation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// max |gᵢ| ≤ gtol.
    Gradient,
    /// The relative decrease of f fell to ftol or below.
    RelativeReduction,
    /// `max_iter` iterations done.
    MaxIter,
    /// More than `max_fun` evaluations.
    MaxFun,
    /// The line search failed with no curvature memory left to drop (SciPy's
    /// `ABNORMAL_TERMINATION_IN_LNSRCH`); `x` is the best point found.
    LineSearch,
    /// The caller's callback asked to stop.
    Callback,
}

impl Stop {
    /// Whether the stop is a convergence test (SciPy's `success`).
    pub fn converged(self) -> bool {
        matches!(self, Stop::Gradient | Stop::RelativeReduction)
    }
}

/// The end point and how it was reached.
#[derive(Debug, Clone)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
    /// Iterations (SciPy's `nit`).
    pub n_iter: usize,
    /// Objective evaluations (SciPy's `nfev`).
    pub n_fev: usize,
    pub stop: Stop,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimises `f` from `x0`. `f(x, g)` returns f(x) and writes ∇f(x) into `g`. `callback(iter, f)`
/// runs after each iteration; returning false stops with [`Stop::Callback`].
pub fn minimize(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    x0: &[f64],
    opts: &Options,
    mut callback: impl FnMut(usize, f64) -> bool,
) -> Minimum {
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut n_fev = 1;
    let mut n_iter = 0;
    // Correction pairs, oldest first, with ρ = 1/sᵀy.
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho: Vec<f64> = Vec::new();
    let mut alpha = vec![0.0; opts.m];
    let mut d = vec![0.0; n];
    let (mut x_old, mut g_old) = (vec![0.0; n], vec![0.0; n]);

    let done = |x: Vec<f64>, f: f64, n_iter, n_fev, stop| Minimum {
        x,
        f,
        n_iter,
        n_fev,
        stop,
    };
    if max_abs(&g) <= opts.gtol {
        return done(x, fx, 0, n_fev, Stop::Gradient);
    }
    loop {
        // d = −H·g by the two-loop recursion.
        d.iter_mut().zip(&g).for_each(|(d, g)| *d = -g);
        let k = s_hist.len();
        for i in (0..k).rev() {
            alpha[i] = rho[i] * dot(&s_hist[i], &d);
            d.iter_mut()
                .zip(&y_hist[i])
                .for_each(|(d, y)| *d -= alpha[i] * y);
        }
        if k > 0 {
            let gamma = 1.0 / (rho[k - 1] * dot(&y_hist[k - 1], &y_hist[k - 1]));
            d.iter_mut().for_each(|d| *d *= gamma);
        }
        for i in 0..k {
            let beta = rho[i] * dot(&y_hist[i], &d);
            d.iter_mut()
                .zip(&s_hist[i])
                .for_each(|(d, s)| *d += (alpha[i] - beta) * s);
        }
        let gd0 = dot(&g, &d);
        if gd0 >= 0.0 {
            // Not a descent direction (rounding): drop the memory, as L-BFGS-B does.
            if k == 0 {
                return done(x, fx, n_iter, n_fev, Stop::LineSearch);
            }
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            continue;
        }

        x_old.copy_from_slice(&x);
        g_old.copy_from_slice(&g);
        let f_old = fx;
        let mut stp = if n_iter == 0 {
            (1.0 / dot(&d, &d).sqrt()).min(STP_MAX)
        } else {
            1.0
        };
        let mut search = LineSearch::new(f_old, gd0, stp, 0.0, STP_MAX);
        let mut evals = 0;
        let found = loop {
            for i in 0..n {
                x[i] = x_old[i] + stp * d[i];
            }
            fx = f(&x, &mut g);
            n_fev += 1;
            evals += 1;
            match search.step(&mut stp, fx, dot(&g, &d)) {
                Task::Done => break true,
                Task::Evaluate if evals >= opts.max_ls || n_fev > opts.max_fun => break false,
                Task::Evaluate => {}
            }
        };
        if !found {
            x.copy_from_slice(&x_old);
            g.copy_from_slice(&g_old);
            fx = f_old;
            if n_fev > opts.max_fun {
                return done(x, fx, n_iter, n_fev, Stop::MaxFun);
            }
            if s_hist.is_empty() {
                return done(x, fx, n_iter, n_fev, Stop::LineSearch);
            }
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            continue;
        }
        n_iter += 1;
        if !callback(n_iter, fx) {
            return done(x, fx, n_iter, n_fev, Stop::Callback);
        }
        if max_abs(&g) <= opts.gtol {
            return done(x, fx, n_iter, n_fev, Stop::Gradient);
        }
        if f_old - fx <= opts.ftol * f_old.abs().max(fx.abs()).max(1.0) {
            return done(x, fx, n_iter, n_fev, Stop::RelativeReduction);
        }
        if n_iter >= opts.max_iter {
            return done(x, fx, n_iter, n_fev, Stop::MaxIter);
        }
        if n_fev > opts.max_fun {
            return done(x, fx, n_iter, n_fev, Stop::MaxFun);
        }
        // The new pair s = x − x_old, y = g − g_old, kept only with enough curvature.
        let s: Vec<f64> = d.iter().map(|d| stp * d).collect();
        let y: Vec<f64> = g.iter().zip(&g_old).map(|(g, o)| g - o).collect();
        let sy = dot(&s, &y);
        if sy > f64::EPSILON * (-gd0 * stp) {
            if s_hist.len() == opts.m {
                s_hist.remove(0);
                y_hist.remove(0);
                rho.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
            rho.push(1.0 / sy);
        }
    }
}

/// L-BFGS-B's step bound when no variable is bounded.
const STP_MAX: f64 = 1e10;

enum Task {
    /// Evaluate f and f' at the new `stp`.
    Evaluate,
    /// The current `stp` is accepted (sufficient decrease and curvature, or a rounding /
    /// interval warning, which L-BFGS-B also accepts).
    Done,
}

/// Moré–Thuente line search, MINPACK-2 `dcsrch` with L-BFGS-B's constants.
struct LineSearch {
    finit: f64,
    ginit: f64,
    gtest: f64,
    stpmin: f64,
    stpmax: f64,
    brackt: bool,
    stage1: bool,
    width: f64,
    width1: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
}

const FTOL: f64 = 1e-3;
const GTOL: f64 = 0.9;
const XTOL: f64 = 0.1;
const XTRAPL: f64 = 1.1;
const XTRAPU: f64 = 4.0;

impl LineSearch {
    /// `f0`, `g0`: value and directional derivative at step 0 (`g0` < 0); `stp`: first trial.
    fn new(f0: f64, g0: f64, stp: f64, stpmin: f64, stpmax: f64) -> LineSearch {
        let width = stpmax - stpmin;
        LineSearch {
            finit: f0,
            ginit: g0,
            gtest: FTOL * g0,
            stpmin,
            stpmax,
            brackt: false,
            stage1: true,
            width,
            width1: width / 0.5,
            stx: 0.0,
            fx: f0,
            gx: g0,
            sty: 0.0,
            fy: f0,
            gy: g0,
            stmin: 0.0,
            stmax: stp + XTRAPU * stp,
        }
    }

    /// Takes f and f' at `stp`; either accepts it or moves `stp` to the next trial.
    fn step(&mut self, stp: &mut f64, f: f64, g: f64) -> Task {
        let ftest = self.finit + *stp * self.gtest;
        if self.stage1 && f <= ftest && g >= 0.0 {
            self.stage1 = false;
        }
        // Warnings: the step cannot improve (rounding, interval too small, at a bound).
        if (self.brackt
            && (*stp <= self.stmin
                || *stp >= self.stmax
                || self.stmax - self.stmin <= XTOL * self.stmax))
            || (*stp == self.stpmax && f <= ftest && g <= self.gtest)
            || (*stp == self.stpmin && (f > ftest || g >= self.gtest))
        {
            return Task::Done;
        }
        if f <= ftest && g.abs() <= GTOL * (-self.ginit) {
            return Task::Done;
        }
        if self.stage1 && f <= self.fx && f > ftest {
            // A modified function (ψ) until the step has sufficient decrease and f' ≥ 0.
            let gt = self.gtest;
            let mut fxm = self.fx - self.stx * gt;
            let mut fym = self.fy - self.sty * gt;
            let mut gxm = self.gx - gt;
            let mut gym = self.gy - gt;
            let fm = f - *stp * gt;
            let gm = g - gt;
            dcstep(
                &mut self.stx,
                &mut fxm,
                &mut gxm,
                &mut self.sty,
                &mut fym,
                &mut gym,
                stp,
                fm,
                gm,
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
            self.fx = fxm + self.stx * gt;
            self.fy = fym + self.sty * gt;
            self.gx = gxm + gt;
            self.gy = gym + gt;
        } else {
            dcstep(
                &mut self.stx,
                &mut self.fx,
                &mut self.gx,
                &mut self.sty,
                &mut self.fy,
                &mut self.gy,
                stp,
                f,
                g,
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
        }
        if self.brackt {
            if (self.sty - self.stx).abs() >= 0.66 * self.width1 {
                *stp = self.stx + 0.5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
            self.stmin = self.stx.min(self.sty);
            self.stmax = self.stx.max(self.sty);
        } else {
            self.stmin = *stp + XTRAPL * (*stp - self.stx);
            self.stmax = *stp + XTRAPU * (*stp - self.stx);
        }
        *stp = stp.max(self.stpmin).min(self.stpmax);
        if self.brackt
            && (*stp <= self.stmin
                || *stp >= self.stmax
                || self.stmax - self.stmin <= XTOL * self.stmax)
        {
            *stp = self.stx;
        }
        Task::Evaluate
    }
}

/// MINPACK-2 `dcstep`: a safeguarded cubic/quadratic step and the update of the interval
/// [stx, sty] that holds a minimiser.
#[allow(clippy::too_many_arguments)]
fn dcstep(
    stx: &mut f64,
    fx: &mut f64,
    dx: &mut f64,
    sty: &mut f64,
    fy: &mut f64,
    dy: &mut f64,
    stp: &mut f64,
    fp: f64,
    dp: f64,
    brackt: &mut bool,
    stpmin: f64,
    stpmax: f64,
) {
    let sgnd = dp * (*dx / dx.abs());
    let stpf;
    if fp > *fx {
        // Higher value: the minimum is bracketed.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).sqrt();
        if *stp < *stx {
            gamma = -gamma;
        }
        let p = (gamma - *dx) + theta;
        let q = ((gamma - *dx) + gamma) + dp;
        let r = p / q;
        let stpc = *stx + r * (*stp - *stx);
        let stpq = *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        stpf = if (stpc - *stx).abs() < (stpq - *stx).abs() {
            stpc
        } else {
            stpc + (stpq - stpc) / 2.0
        };
        *brackt = true;
    } else if sgnd < 0.0 {
        // Derivatives of opposite sign: bracketed.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + *dx;
        let r = p / q;
        let stpc = *stp + r * (*stx - *stp);
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = if (stpc - *stp).abs() > (stpq - *stp).abs() {
            stpc
        } else {
            stpq
        };
        *brackt = true;
    } else if dp.abs() < dx.abs() {
        // Same sign, derivative magnitude decreases.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).max(0.0).sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = (gamma + (*dx - dp)) + gamma;
        let r = p / q;
        let stpc = if r < 0.0 && gamma != 0.0 {
            *stp + r * (*stx - *stp)
        } else if *stp > *stx {
            stpmax
        } else {
            stpmin
        };
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if *brackt {
            let mut f = if (stpc - *stp).abs() < (stpq - *stp).abs() {
                stpc
            } else {
                stpq
            };
            f = if *stp > *stx {
                f.min(*stp + 0.66 * (*sty - *stp))
            } else {
                f.max(*stp + 0.66 * (*sty - *stp))
            };
            stpf = f;
        } else {
            let f = if (stpc - *stp).abs() > (stpq - *stp).abs() {
                stpc
            } else {
                stpq
            };
            stpf = f.min(stpmax).max(stpmin);
        }
    } else {
        // Same sign, derivative magnitude does not decrease.
        stpf = if *brackt {
            let theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
            let s = theta.abs().max(dy.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (*dy / s) * (dp / s)).sqrt();
            if *stp > *sty {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + *dy;
            let r = p / q;
            *stp + r * (*sty - *stp)
        } else if *stp > *stx {
            stpmax
        } else {
            stpmin
        };
    }
    if fp > *fx {
        *sty = *stp;
        *fy = fp;
        *dy = dp;
    } else {
        if sgnd < 0.0 {
            *sty = *stx;
            *fy = *fx;
            *dy = *dx;
        }
        *stx = *stp;
        *fx = fp;
        *dx = dp;
    }
    *stp = stpf;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn rosenbrock_reaches_the_minimum() {
        let opts = Options {
            gtol: 1e-8,
            ftol: 0.0,
            ..Options::default()
        };
        let m = minimize(rosenbrock, &[-1.2, 1.0], &opts, |_, _| true);
        assert_eq!(m.stop, Stop::Gradient, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{m:?}"
        );
        // SciPy's L-BFGS-B (1.17.1) on the same problem and tolerances: nit 38, nfev 46.
        assert_eq!((m.n_iter, m.n_fev), (38, 46), "{m:?}");
    }

    #[test]
    fn quadratic_in_one_step_per_dimension_and_max_iter_stops() {
        // f = Σ cᵢ xᵢ², exact line searches are not needed for L-BFGS to finish quickly.
        let c = [1.0, 10.0, 100.0];
        let f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for i in 0..3 {
                g[i] = 2.0 * c[i] * x[i];
                v += c[i] * x[i] * x[i];
            }
            v
        };
        let m = minimize(f, &[1.0, 1.0, 1.0], &Options::default(), |_, _| true);
        assert!(m.stop.converged(), "{m:?}");
        // SciPy: nit 11, nfev 12, f 4.577e-14.
        assert_eq!((m.n_iter, m.n_fev), (11, 12), "{m:?}");
        assert!(m.f < 1e-12, "{m:?}");
        let capped = Options {
            max_iter: 2,
            ..Options::default()
        };
        let m = minimize(f, &[1.0, 1.0, 1.0], &capped, |_, _| true);
        assert_eq!((m.stop, m.n_iter), (Stop::MaxIter, 2));
        let m = minimize(f, &[1.0, 1.0, 1.0], &Options::default(), |i, _| i < 1);
        assert_eq!((m.stop, m.n_iter), (Stop::Callback, 1));
    }
}
