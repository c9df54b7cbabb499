//! The instruction set of the hand-written CPU kernels' loops (GELU, attention, softmax, layer
//! norm, AdamW), chosen at run time: the same build runs on every x86-64 machine and uses AVX2
//! and FMA where the CPU has them. Without this the crate is compiled for baseline x86-64, so a
//! loop runs four lanes wide at most and every `f32::mul_add` is a call to the software `fmaf`.
//!
//! Both paths give the same bits. The loops are elementwise or sum in a written-out order (Rust
//! never reassociates or contracts float arithmetic), and `mul_add` rounds once whether the CPU
//! fuses it or `fmaf` emulates it. So the choice is not a result: it is not in any fingerprint,
//! a cache entry made on one path is valid on the other, and a test checks the encoders give
//! identical outputs on both.

use std::sync::atomic::{AtomicU8, Ordering};

pub use pulp::Arch;

const UNSET: u8 = 0;
const FAST: u8 = 1;
const PORTABLE: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNSET);

/// The instruction set the kernels use: the best this CPU has, or the portable baseline when
/// `CAIRN_KERNELS=portable` was set when first asked (a check of the fallback, not a setting).
pub fn arch() -> Arch {
    let mut choice = CHOICE.load(Ordering::Relaxed);
    if choice == UNSET {
        let portable = std::env::var("CAIRN_KERNELS").is_ok_and(|v| v == "portable");
        choice = if portable { PORTABLE } else { FAST };
        CHOICE.store(choice, Ordering::Relaxed);
    }
    if choice == PORTABLE {
        Arch::Scalar
    } else {
        Arch::new()
    }
}

/// Runs `f` with its loops compiled for [`arch`]. `f` must be small enough to be inlined
/// (a loop over a slice, not a call tree): only inlined code gets the instruction set.
#[inline(always)]
pub fn vectorize<R>(f: impl FnOnce() -> R) -> R {
    arch().dispatch(f)
}

/// A name for the run record: which instruction set the kernels used.
pub fn describe() -> &'static str {
    match arch() {
        Arch::Scalar => "portable",
        _ if cfg!(target_arch = "x86_64") => "avx2+fma",
        _ => "native simd",
    }
}

/// Runs `f` with the portable path forced (`true`) or the fast one, then restores the choice.
/// For tests comparing the two; calls are serialised so two such tests do not interleave, and
/// as both paths give the same bits, other work running meanwhile is unaffected.
pub fn with_portable<R>(portable: bool, f: impl FnOnce() -> R) -> R {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = CHOICE.swap(if portable { PORTABLE } else { FAST }, Ordering::Relaxed);
    let result = f();
    CHOICE.store(before, Ordering::Relaxed);
    result
}
