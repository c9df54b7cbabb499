#!/usr/bin/env python3
"""Python side of the tokenize benchmark: the chapter's way to tokenize the emotion corpus.

`datasets.Dataset.map(tokenize, batched=True)` (batches of 1000) with the fast tokenizer of
sentence-transformers/all-MiniLM-L6-v2, `truncation=True`, no padding, over all 20,000 tweets
(train + validation + test), i.e. exactly what cairn's `tokenize` stage computes. Prints the
seconds of the best of --repeat runs (tokenizer loading and reading the files not included),
then `seconds=<best>` alone on the last line for scripts.

Run by bench/run.sh; by hand (after scripts/setup.sh and scripts/reference/venv.sh full):
    HF_HUB_OFFLINE=1 .venv-ref-full/bin/python bench/python/tokenize_datasets.py [--data data] [--repeat 3]
"""
import os
import sys

# This file is named like the standard library's `tokenize` module, which `datasets` imports
# (through linecache): keep its own directory off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import datasets  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SPLITS = ("train", "validation", "test")


def read_split(path):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                text, label = line.rsplit(";", 1)  # split on the LAST ';'
                texts.append(text)
                labels.append(label)
    return {"text": texts, "label": labels}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data", help="directory holding emotion/ (default: data)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    assert tokenizer.is_fast
    corpus = datasets.DatasetDict(
        {s: datasets.Dataset.from_dict(read_split(os.path.join(args.data, "emotion", f"{s}.txt"))) for s in SPLITS}
    )
    rows = sum(len(d) for d in corpus.values())

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True)

    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        out = corpus.map(tokenize, batched=True, load_from_cache_file=False)
        times.append(time.perf_counter() - start)
    tokens = sum(len(ids) for d in out.values() for ids in d["input_ids"])
    best = min(times)
    print(f"python datasets.map(tokenize, batched=True): {rows} rows, {tokens} tokens")
    print("runs: " + ", ".join(f"{t:.3f}s" for t in times) + f"; best {best:.3f}s = {rows / best:,.0f} rows/s")
    print(f"seconds={best:.3f}")


if __name__ == "__main__":
    main()
