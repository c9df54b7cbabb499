#!/usr/bin/env python3
"""Python side of the classify benchmark: the chapter's classifiers on the [CLS] features.

Fits scikit-learn's `LogisticRegression(max_iter=3000)` (multinomial, L2, C=1.0, lbfgs) and
`DummyClassifier(strategy="most_frequent")` on the train features, scores validation, and
prints accuracy, weighted F1, n_iter and the fit time (best of --repeat), then one
`key=value` line for scripts. Compare with the Rust side run on the same files:

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 .venv-ref-full/bin/python bench/python/classify.py \
        --features data/reference/emotion-minilm-cls
    cargo run --release -p cairn-stages --example classify_reference -- \
        data/reference/emotion-minilm-cls

The parquet files hold `hidden_state` (fixed-size list of float32), `label` and `text`.
"""
import os
import sys

# bench/python/tokenize_datasets.py shadows the standard library's `tokenize`: keep this directory off
# the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402


def load(prefix, split):
    t = pq.read_table(f"{prefix}-{split}.parquet", columns=["hidden_state", "label"])
    col = t.column("hidden_state").combine_chunks()
    x = col.values.to_numpy(zero_copy_only=False).reshape(len(col), -1)
    return x, t.column("label").to_numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", default="data/reference/emotion-minilm-cls")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    x_train, y_train = load(args.features, "train")
    x_valid, y_valid = load(args.features, "validation")
    print(f"train {x_train.shape} {x_train.dtype}, validation {x_valid.shape}")

    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        lr = LogisticRegression(max_iter=3000).fit(x_train, y_train)
        best = min(best, time.perf_counter() - start)
    pred = lr.predict(x_valid)
    acc = accuracy_score(y_valid, pred)
    f1 = f1_score(y_valid, pred, average="weighted")
    print(
        f"logistic-regression: validation accuracy {acc:.4f}, weighted F1 {f1:.4f}, "
        f"train accuracy {lr.score(x_train, y_train):.4f}, n_iter {lr.n_iter_[0]}, fit {best:.2f}s"
    )
    dummy = DummyClassifier(strategy="most_frequent").fit(x_train, y_train)
    dacc = dummy.score(x_valid, y_valid)
    print(f"most-frequent: validation accuracy {dacc:.4f}")
    print(f"accuracy={acc:.6f} f1_weighted={f1:.6f} n_iter={lr.n_iter_[0]} seconds={best:.3f} dummy={dacc:.6f}")


if __name__ == "__main__":
    main()
