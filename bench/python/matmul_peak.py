#!/usr/bin/env python3
"""torch's f32 matmul throughput on this CPU: the practical FLOP/s ceiling (2·n³ per product).
Usage: .venv-ref-full/bin/python bench/python/matmul_peak.py [--n 4096] [--threads 2] [--repeat 3]
Prints `gflops=` (best of --repeat) and `seconds=` (that product's time)."""
import argparse
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=4096)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeat", type=int, default=3)
a = ap.parse_args()
torch.set_num_threads(a.threads)
g = torch.Generator().manual_seed(0)
x = torch.randn(a.n, a.n, generator=g)
y = torch.randn(a.n, a.n, generator=g)
x @ y  # warm-up
best = float("inf")
for _ in range(a.repeat):
    t0 = time.perf_counter()
    x @ y
    best = min(best, time.perf_counter() - t0)
print(f"gflops={2 * a.n**3 / best / 1e9:.1f}")
print(f"seconds={best:.4f}")
