#!/usr/bin/env python3
"""The umap-learn side of the UMAP benchmark: MinMax-scaled [CLS] features of the emotion train
split (a Parquet table with `hidden_state`, as `cairn export` writes it), UMAP(n_components=2,
metric="cosine", n_neighbors=15, min_dist=0.1, random_state=42). Scaling happens before the
clock; the clock is `fit_transform`. Prints `seconds=` and the trustworthiness (15 neighbours,
cosine) when --trust is given.

Usage: .venv-ref-full/bin/python bench/python/umap_fit.py FEATURES.parquet [--rows N] [--trust]
"""
import argparse
import time

import numpy as np
import pyarrow.parquet as pq
from sklearn.preprocessing import MinMaxScaler

ap = argparse.ArgumentParser()
ap.add_argument("features")
ap.add_argument("--rows", type=int, default=0)
ap.add_argument("--trust", action="store_true")
a = ap.parse_args()
col = pq.read_table(a.features, columns=["hidden_state"]).column("hidden_state").combine_chunks()
x = np.asarray(col.flatten(), dtype=np.float32).reshape(len(col), -1)
if a.rows:
    x = x[: a.rows]
x = MinMaxScaler().fit_transform(x)
import umap  # noqa: E402  (imported after the data so import time is not in the clock either)

t0 = time.perf_counter()
emb = umap.UMAP(n_components=2, metric="cosine", n_neighbors=15, min_dist=0.1, random_state=42).fit_transform(x)
dt = time.perf_counter() - t0
if a.trust:
    from sklearn.manifold import trustworthiness

    print(f"trustworthiness={trustworthiness(x, emb, n_neighbors=15, metric='cosine'):.4f}")
print(f"seconds={dt:.3f}")
