//! candle's f32 CPU matmul throughput (the backend every encoder here runs on): the practical
//! FLOP/s ceiling for this machine, 2·n³ per product. The Rust side of
//! bench/python/matmul_peak.py.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p cairn-stages --example matmul_peak -- [n=4096] [repeat=3]
//! ```

use std::time::Instant;

use candle_core::{Device, Tensor};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: n repeat"))
        .collect();
    let n = args.first().copied().unwrap_or(4096);
    let repeat = args.get(1).copied().unwrap_or(3);
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (n, n), &dev).unwrap();
    let y = Tensor::randn(0f32, 1.0, (n, n), &dev).unwrap();
    x.matmul(&y).unwrap(); // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let z = x.matmul(&y).unwrap();
        best = best.min(t0.elapsed().as_secs_f64());
        drop(z);
    }
    println!("gflops={:.1}", 2.0 * (n as f64).powi(3) / best / 1e9);
    println!("seconds={best:.4}");
}
