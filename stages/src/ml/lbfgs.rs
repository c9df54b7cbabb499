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
    let mut at = Iterate::start(&mut f, x0);
    if max_abs(&at.g) <= opts.gtol {
        return at.end(Stop::Gradient);
    }
    let mut memory = Memory::new(opts.m);
    let mut d = vec![0.0; x0.len()];
    loop {
        memory.direction(&at.g, &mut d);
        let gd0 = dot(&at.g, &d);
        if gd0 >= 0.0 {
            // Not a descent direction (rounding): drop the memory, as L-BFGS-B does.
            if memory.is_empty() {
                return at.end(Stop::LineSearch);
            }
            memory.clear();
            continue;
        }
        let Some(stp) = at.line_search(&mut f, &d, gd0, opts) else {
            if at.n_fev > opts.max_fun {
                return at.end(Stop::MaxFun);
            }
            if memory.is_empty() {
                return at.end(Stop::LineSearch);
            }
            memory.clear();
            continue;
        };
        at.n_iter += 1;
        if let Some(stop) = at.stop_after_iteration(opts, &mut callback) {
            return at.end(stop);
        }
        memory.remember(&d, stp, &at.g, &at.g_old, gd0);
    }
}

/// The current point, the one before the last line search, and the counts.
struct Iterate {
    x: Vec<f64>,
    g: Vec<f64>,
    fx: f64,
    x_old: Vec<f64>,
    g_old: Vec<f64>,
    f_old: f64,
    n_iter: usize,
    n_fev: usize,
}

impl Iterate {
    fn start(f: &mut impl FnMut(&[f64], &mut [f64]) -> f64, x0: &[f64]) -> Iterate {
        let n = x0.len();
        let x = x0.to_vec();
        let mut g = vec![0.0; n];
        let fx = f(&x, &mut g);
        Iterate {
            x,
            g,
            fx,
            x_old: vec![0.0; n],
            g_old: vec![0.0; n],
            f_old: fx,
            n_iter: 0,
            n_fev: 1,
        }
    }

    fn end(self, stop: Stop) -> Minimum {
        Minimum {
            x: self.x,
            f: self.fx,
            n_iter: self.n_iter,
            n_fev: self.n_fev,
            stop,
        }
    }

    /// Moves along `d` to a point the line search accepts and returns the step, or restores
    /// the point it started from and returns `None` after `max_ls` evaluations (or `max_fun`
    /// in all). The first step is 1/‖d‖ on the first iteration, 1 after.
    fn line_search(
        &mut self,
        f: &mut impl FnMut(&[f64], &mut [f64]) -> f64,
        d: &[f64],
        gd0: f64,
        opts: &Options,
    ) -> Option<f64> {
        self.x_old.copy_from_slice(&self.x);
        self.g_old.copy_from_slice(&self.g);
        self.f_old = self.fx;
        let mut stp = if self.n_iter == 0 {
            (1.0 / dot(d, d).sqrt()).min(STP_MAX)
        } else {
            1.0
        };
        let mut search = LineSearch::new(self.f_old, gd0, stp, 0.0, STP_MAX);
        let mut evals = 0;
        loop {
            for ((x, x_old), d) in self.x.iter_mut().zip(&self.x_old).zip(d) {
                *x = x_old + stp * d;
            }
            self.fx = f(&self.x, &mut self.g);
            self.n_fev += 1;
            evals += 1;
            match search.step(&mut stp, self.fx, dot(&self.g, d)) {
                Task::Done => return Some(stp),
                Task::Evaluate if evals >= opts.max_ls || self.n_fev > opts.max_fun => break,
                Task::Evaluate => {}
            }
        }
        self.x.copy_from_slice(&self.x_old);
        self.g.copy_from_slice(&self.g_old);
        self.fx = self.f_old;
        None
    }

    /// The stopping tests after an iteration, in L-BFGS-B's order (the callback first).
    fn stop_after_iteration(
        &self,
        opts: &Options,
        callback: &mut impl FnMut(usize, f64) -> bool,
    ) -> Option<Stop> {
        let (fx, f_old) = (self.fx, self.f_old);
        if !callback(self.n_iter, fx) {
            Some(Stop::Callback)
        } else if max_abs(&self.g) <= opts.gtol {
            Some(Stop::Gradient)
        } else if f_old - fx <= opts.ftol * f_old.abs().max(fx.abs()).max(1.0) {
            Some(Stop::RelativeReduction)
        } else if self.n_iter >= opts.max_iter {
            Some(Stop::MaxIter)
        } else if self.n_fev > opts.max_fun {
            Some(Stop::MaxFun)
        } else {
            None
        }
    }
}

/// The last `m` correction pairs (s, y), oldest first, with ρ = 1/sᵀy.
struct Memory {
    m: usize,
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    rho: Vec<f64>,
    /// The two-loop recursion's αᵢ (scratch).
    alpha: Vec<f64>,
}

impl Memory {
    fn new(m: usize) -> Memory {
        Memory {
            m,
            s: Vec::new(),
            y: Vec::new(),
            rho: Vec::new(),
            alpha: vec![0.0; m],
        }
    }

    fn is_empty(&self) -> bool {
        self.s.is_empty()
    }

    fn clear(&mut self) {
        self.s.clear();
        self.y.clear();
        self.rho.clear();
    }

    /// d = −H·g by the two-loop recursion, H₀ = (sᵀy / yᵀy)·I from the newest pair.
    fn direction(&mut self, g: &[f64], d: &mut [f64]) {
        d.iter_mut().zip(g).for_each(|(d, g)| *d = -g);
        let k = self.s.len();
        for i in (0..k).rev() {
            let alpha = self.rho[i] * dot(&self.s[i], d);
            self.alpha[i] = alpha;
            d.iter_mut()
                .zip(&self.y[i])
                .for_each(|(d, y)| *d -= alpha * y);
        }
        if k > 0 {
            let gamma = 1.0 / (self.rho[k - 1] * dot(&self.y[k - 1], &self.y[k - 1]));
            d.iter_mut().for_each(|d| *d *= gamma);
        }
        for i in 0..k {
            let beta = self.rho[i] * dot(&self.y[i], d);
            d.iter_mut()
                .zip(&self.s[i])
                .for_each(|(d, s)| *d += (self.alpha[i] - beta) * s);
        }
    }

    /// Keeps the new pair s = x − x_old = stp·d, y = g − g_old when it has enough curvature
    /// (sᵀy > ε·(−gᵀd·stp), as L-BFGS-B), dropping the oldest when full.
    fn remember(&mut self, d: &[f64], stp: f64, g: &[f64], g_old: &[f64], gd0: f64) {
        let s: Vec<f64> = d.iter().map(|d| stp * d).collect();
        let y: Vec<f64> = g.iter().zip(g_old).map(|(g, o)| g - o).collect();
        let sy = dot(&s, &y);
        if sy > f64::EPSILON * (-gd0 * stp) {
            if self.s.len() == self.m {
                self.s.remove(0);
                self.y.remove(0);
                self.rho.remove(0);
            }
            self.s.push(s);
            self.y.push(y);
            self.rho.push(1.0 / sy);
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

/// A step along the search direction with f and f' there.
#[derive(Clone, Copy)]
struct Point {
    stp: f64,
    f: f64,
    g: f64,
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
    /// The best step so far (`stx`, `fx`, `gx` in MINPACK).
    x: Point,
    /// The other end of the interval (`sty`, `fy`, `gy`).
    y: Point,
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
        let origin = Point {
            stp: 0.0,
            f: f0,
            g: g0,
        };
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
            x: origin,
            y: origin,
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
        if (self.brackt && self.outside_interval(*stp))
            || (*stp == self.stpmax && f <= ftest && g <= self.gtest)
            || (*stp == self.stpmin && (f > ftest || g >= self.gtest))
        {
            return Task::Done;
        }
        if f <= ftest && g.abs() <= GTOL * (-self.ginit) {
            return Task::Done;
        }
        let trial = Point { stp: *stp, f, g };
        *stp = if self.stage1 && f <= self.x.f && f > ftest {
            self.modified_step(trial)
        } else {
            dcstep(
                &mut self.x,
                &mut self.y,
                trial,
                &mut self.brackt,
                self.stmin,
                self.stmax,
            )
        };
        self.update_interval(stp);
        Task::Evaluate
    }

    /// Whether `stp` is at or past the bracket's ends, or the bracket is too narrow.
    fn outside_interval(&self, stp: f64) -> bool {
        stp <= self.stmin || stp >= self.stmax || self.stmax - self.stmin <= XTOL * self.stmax
    }

    /// [`dcstep`] on the modified function ψ(stp) = f(stp) − f(0) − stp·gtest, used until a
    /// step has sufficient decrease and f' ≥ 0.
    fn modified_step(&mut self, trial: Point) -> f64 {
        let gt = self.gtest;
        let shift = |p: Point| Point {
            stp: p.stp,
            f: p.f - p.stp * gt,
            g: p.g - gt,
        };
        let (mut xm, mut ym) = (shift(self.x), shift(self.y));
        let stp = dcstep(
            &mut xm,
            &mut ym,
            shift(trial),
            &mut self.brackt,
            self.stmin,
            self.stmax,
        );
        let unshift = |p: Point| Point {
            stp: p.stp,
            f: p.f + p.stp * gt,
            g: p.g + gt,
        };
        self.x = unshift(xm);
        self.y = unshift(ym);
        stp
    }

    /// Bisects when the bracket shrinks too slowly, sets the next interval of trial steps, and
    /// clamps `stp` to it (back to the best step when nothing better can be found).
    fn update_interval(&mut self, stp: &mut f64) {
        let (stx, sty) = (self.x.stp, self.y.stp);
        if self.brackt {
            if (sty - stx).abs() >= 0.66 * self.width1 {
                *stp = stx + 0.5 * (sty - stx);
            }
            self.width1 = self.width;
            self.width = (sty - stx).abs();
            self.stmin = stx.min(sty);
            self.stmax = stx.max(sty);
        } else {
            self.stmin = *stp + XTRAPL * (*stp - stx);
            self.stmax = *stp + XTRAPU * (*stp - stx);
        }
        *stp = stp.max(self.stpmin).min(self.stpmax);
        if self.brackt && self.outside_interval(*stp) {
            *stp = stx;
        }
    }
}

/// MINPACK-2 `dcstep`: a safeguarded cubic/quadratic step from the trial `t`, and the update of
/// the interval [x, y] that holds a minimiser. Returns the next trial step.
fn dcstep(
    x: &mut Point,
    y: &mut Point,
    t: Point,
    brackt: &mut bool,
    stpmin: f64,
    stpmax: f64,
) -> f64 {
    let sgnd = t.g * (x.g / x.g.abs());
    let stpf = if t.f > x.f {
        *brackt = true;
        step_higher_value(*x, t)
    } else if sgnd < 0.0 {
        *brackt = true;
        step_opposite_slopes(*x, t)
    } else if t.g.abs() < x.g.abs() {
        step_shrinking_slope(*x, *y, t, *brackt, stpmin, stpmax)
    } else {
        step_steady_slope(*x, *y, t, *brackt, stpmin, stpmax)
    };
    if t.f > x.f {
        *y = t;
    } else {
        if sgnd < 0.0 {
            *y = *x;
        }
        *x = t;
    }
    stpf
}

/// A higher value at the trial: the minimum is bracketed; the cubic step, or halfway to the
/// quadratic one when that is nearer.
fn step_higher_value(x: Point, t: Point) -> f64 {
    let (stx, fx, dx, stp, fp, dp) = (x.stp, x.f, x.g, t.stp, t.f, t.g);
    let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
    let s = theta.abs().max(dx.abs()).max(dp.abs());
    let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
    if stp < stx {
        gamma = -gamma;
    }
    let p = (gamma - dx) + theta;
    let q = ((gamma - dx) + gamma) + dp;
    let r = p / q;
    let stpc = stx + r * (stp - stx);
    let stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
    if (stpc - stx).abs() < (stpq - stx).abs() {
        stpc
    } else {
        stpc + (stpq - stpc) / 2.0
    }
}

/// A lower value, derivatives of opposite sign: bracketed; the cubic or the secant step,
/// whichever is farther from the trial.
fn step_opposite_slopes(x: Point, t: Point) -> f64 {
    let (stx, fx, dx, stp, fp, dp) = (x.stp, x.f, x.g, t.stp, t.f, t.g);
    let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
    let s = theta.abs().max(dx.abs()).max(dp.abs());
    let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
    if stp > stx {
        gamma = -gamma;
    }
    let p = (gamma - dp) + theta;
    let q = ((gamma - dp) + gamma) + dx;
    let r = p / q;
    let stpc = stp + r * (stx - stp);
    let stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if (stpc - stp).abs() > (stpq - stp).abs() {
        stpc
    } else {
        stpq
    }
}

/// A lower value, derivatives of the same sign, the derivative's magnitude decreasing: the
/// cubic step if it goes the right way (else the bound), or the secant step, safeguarded.
fn step_shrinking_slope(
    x: Point,
    y: Point,
    t: Point,
    brackt: bool,
    stpmin: f64,
    stpmax: f64,
) -> f64 {
    let (stx, fx, dx, stp, fp, dp) = (x.stp, x.f, x.g, t.stp, t.f, t.g);
    let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
    let s = theta.abs().max(dx.abs()).max(dp.abs());
    let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).max(0.0).sqrt();
    if stp > stx {
        gamma = -gamma;
    }
    let p = (gamma - dp) + theta;
    let q = (gamma + (dx - dp)) + gamma;
    let r = p / q;
    let stpc = if r < 0.0 && gamma != 0.0 {
        stp + r * (stx - stp)
    } else if stp > stx {
        stpmax
    } else {
        stpmin
    };
    let stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if brackt {
        let f = if (stpc - stp).abs() < (stpq - stp).abs() {
            stpc
        } else {
            stpq
        };
        if stp > stx {
            f.min(stp + 0.66 * (y.stp - stp))
        } else {
            f.max(stp + 0.66 * (y.stp - stp))
        }
    } else {
        let f = if (stpc - stp).abs() > (stpq - stp).abs() {
            stpc
        } else {
            stpq
        };
        f.min(stpmax).max(stpmin)
    }
}

/// A lower value, derivatives of the same sign, the derivative's magnitude not decreasing: the
/// cubic step between the trial and `y` when bracketed, else the bound.
fn step_steady_slope(x: Point, y: Point, t: Point, brackt: bool, stpmin: f64, stpmax: f64) -> f64 {
    let (sty, fy, dy, stp, fp, dp) = (y.stp, y.f, y.g, t.stp, t.f, t.g);
    if brackt {
        let theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
        let s = theta.abs().max(dy.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (dy / s) * (dp / s)).sqrt();
        if stp > sty {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + dy;
        let r = p / q;
        stp + r * (sty - stp)
    } else if stp > x.stp {
        stpmax
    } else {
        stpmin
    }
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
